package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"otrdesk.im/otrdesk/admin"
	"otrdesk.im/otrdesk/component"
	"otrdesk.im/otrdesk/store"
	"otrdesk.im/otrdesk/web"
)

func cmdServe(c *cli, args []string) error {
	fs, cfgPath := c.newFlags("serve")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("serve takes no arguments, got %q", pos[0])
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return usagef("-log-level %q: use debug, info, warn or error", *logLevel)
	}
	cfg, err := loadConfigFlag(*cfgPath)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, cfg, log)
}

// serve runs until ctx ends or the component fails for good. The order is
// the order of dependence: store, component, HTTP.
func serve(ctx context.Context, cfg *Config, log *slog.Logger) error {
	st, err := store.Open(cfg.Store.Path)
	if err != nil {
		return err
	}
	defer st.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	comp, err := component.New(component.Config{
		Domain:                 cfg.Component.Domain,
		Server:                 cfg.Component.Server,
		Secret:                 cfg.secret,
		AnonymousDomain:        cfg.HTTP.AnonymousDomain,
		Admins:                 cfg.Admin.Admins,
		MaxChatsPerOperator:    cfg.Routing.MaxChatsPerOperator,
		GuestIdleTimeout:       cfg.Routing.GuestIdleTimeout.Duration,
		AKEStallTimeout:        cfg.Routing.AKEStallTimeout.Duration,
		MaxBodyBytes:           cfg.Limits.MaxBodyBytes,
		GuestsPerSkin:          cfg.Limits.GuestsPerSkin,
		GuestMessagesPerMinute: cfg.Limits.GuestMessagesPerMinute,
		NewChatsPerMinute:      cfg.Limits.NewChatsPerMinute,
		NewChatsPerMinuteTotal: cfg.Limits.NewChatsPerMinuteTotal,
		ProofOfWork:            cfg.Limits.ProofOfWork == "over-limit",
		ProofOfWorkBits:        cfg.Limits.ProofOfWorkBits,
		UnassignedRetention:    cfg.Store.UnassignedRetention.Duration,
		Logger:                 log.With("part", "component"),
		Registerer:             reg,
	}, st)
	if err != nil {
		return err
	}

	svc := &admin.Local{Store: st, OnChange: comp.SkinsChanged, Signers: cfg.signers, ReadDevices: deviceReader(comp)}
	adminAPI := admin.Handler(svc, st, cfg.adminToken)
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	webCfg := web.Config{
		PublicURL:        cfg.HTTP.PublicURL,
		BOSHURL:          cfg.HTTP.BOSHURL,
		AnonymousDomain:  cfg.HTTP.AnonymousDomain,
		ComponentDomain:  cfg.Component.Domain,
		Store:            st,
		Component:        comp,
		Logger:           log.With("part", "http"),
		FingerprintGrace: cfg.Keys.PreviousFingerprintGrace.Duration,
	}
	// With admin.listen the admin API and /metrics live only there, and the
	// public listener answers 404 for them.
	var adminMux *http.ServeMux
	if cfg.Admin.Listen == "" {
		webCfg.Admin, webCfg.Metrics = adminAPI, metrics
	} else {
		adminMux = http.NewServeMux()
		adminMux.Handle("/admin/v1/", adminAPI)
		adminMux.Handle("GET /metrics", metrics)
	}
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	servers := []*http.Server{{Handler: web.New(webCfg), ReadHeaderTimeout: 10 * time.Second}}
	listeners := []net.Listener{ln}
	adminAddr := ln.Addr().String()
	if adminMux != nil {
		aln, err := net.Listen("tcp", cfg.Admin.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("admin.listen %s: %w", cfg.Admin.Listen, err)
		}
		servers = append(servers, &http.Server{Handler: adminMux, ReadHeaderTimeout: 10 * time.Second})
		listeners = append(listeners, aln)
		adminAddr = aln.Addr().String()
	}
	httpErr := make(chan error, len(servers))
	for i, srv := range servers {
		go func() { httpErr <- srv.Serve(listeners[i]) }()
	}
	log.Info("otrdesk serving", "version", version, "domain", cfg.Component.Domain,
		"server", cfg.Component.Server, "http", ln.Addr().String(), "admin", adminAddr, "store", cfg.Store.Path)

	go purgeGuests(ctx, st, cfg.Store.GuestRetention.Duration, log)
	go remindRotations(ctx, st, comp, cfg.Keys.RotationReminder.Duration, log)

	compErr := make(chan error, 1)
	go func() { compErr <- comp.Run(ctx) }()

	select {
	case err = <-compErr:
	case err = <-httpErr:
	case <-ctx.Done():
		err = <-compErr
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range servers {
		_ = srv.Shutdown(shutdownCtx)
	}
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Info("otrdesk stopped")
	return nil
}

// purgeGuests removes guest records older than the retention once an hour.
func purgeGuests(ctx context.Context, st *store.Store, retention time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := st.PurgeGuests(time.Now().Add(-retention))
		switch {
		case err != nil:
			log.Warn("purging old guest records", "err", err)
		case n > 0:
			log.Info("purged old guest records", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reminderEvery is how often serve looks for skin keys due for rotation;
// admins hear of each at most once a day. Tests shorten it.
var reminderEvery = 10 * time.Minute

// remindRotations tells the admins, by XMPP message from the service JID,
// about skin keys older than age and signed keyrings about to expire, once
// a day per skin until rotated or renewed.
func remindRotations(ctx context.Context, st *store.Store, comp *component.Component, age time.Duration, log *slog.Logger) {
	m := &admin.Reminder{Age: age}
	t := time.NewTicker(reminderEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if ok, _ := comp.Ready(); !ok {
			continue // Due marks what it returns as sent: ask only when it can be sent
		}
		skins, err := st.Skins()
		if err != nil {
			log.Warn("reading skins for rotation reminders", "err", err)
			continue
		}
		now := time.Now()
		for _, r := range m.Due(skins, now) {
			if comp.NotifyAdmins(r.Text(now)) {
				log.Info("reminded admins to rotate a skin key", "skin", r.Skin)
			}
		}
		keyrings, err := st.Keyrings()
		if err != nil {
			log.Warn("reading keyrings for expiry reminders", "err", err)
			continue
		}
		for _, e := range m.DueKeyrings(skins, keyrings, now) {
			if comp.NotifyAdmins(e.Text(now)) {
				log.Info("reminded admins to sign a new keyring", "skin", e.Skin)
			}
		}
	}
}

func loadConfigFlag(flagValue string) (*Config, error) {
	path, err := findConfig(flagValue)
	if err != nil {
		return nil, err
	}
	return loadConfig(path)
}
