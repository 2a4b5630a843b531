package main

import (
	"errors"
	"net"
	"net/http"
	"time"

	"otrdesk.im/otrdesk/admin"
	"otrdesk.im/otrdesk/store"
)

// ageWorkFactor is the scrypt work factor of age key bundles; 0 is age's
// default. Only tests change it.
var ageWorkFactor = 0

// openService gives the admin operations: directly on the store when no
// serve holds it, through the running serve's admin API when one does (bbolt
// allows one writer process, and serve must see every change at once).
func openService(cfg *Config) (admin.Service, func(), error) {
	st, err := store.Open(cfg.Store.Path)
	if err == nil {
		return &admin.Local{Store: st, Signers: cfg.signers}, func() { st.Close() }, nil
	}
	if !errors.Is(err, store.ErrInUse) {
		return nil, nil, err
	}
	if cfg.adminToken == "" {
		return nil, nil, errors.New("otrdesk serve holds the store, and without admin.token_file (or OTRDESK_ADMIN_TOKEN) this command cannot use its admin API: set one, or stop serve")
	}
	return &admin.Client{BaseURL: cfg.adminURL(), Token: cfg.adminToken, HTTP: &http.Client{Timeout: 30 * time.Second}}, func() {}, nil
}

// adminURL is where this machine reaches serve's admin API: admin.listen
// when set, else http.listen.
func (c *Config) adminURL() string {
	if c.Admin.Listen != "" {
		return localURL(c.Admin.Listen)
	}
	return localURL(c.HTTP.Listen)
}

// localURL turns a listen address into a URL this machine can reach.
func localURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// openServiceFlag loads the configuration named by -config and opens the
// admin operations on it.
func openServiceFlag(cfgPath string) (*Config, admin.Service, func(), error) {
	cfg, err := loadConfigFlag(cfgPath)
	if err != nil {
		return nil, nil, nil, err
	}
	svc, done, err := openService(cfg)
	return cfg, svc, done, err
}
