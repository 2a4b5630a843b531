package main

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"mellium.im/xmpp/jid"

	"otrdesk.im/otrdesk/component"
	"otrdesk.im/otrdesk/keyring"
)

// Config is otrdesk.toml. Every key is documented in config.example.toml at
// the root of the repository; the field comments here say only what the
// loader does with them.
type Config struct {
	Component ComponentConfig `toml:"component"`
	Store     StoreConfig     `toml:"store"`
	HTTP      HTTPConfig      `toml:"http"`
	Admin     AdminConfig     `toml:"admin"`
	Routing   RoutingConfig   `toml:"routing"`
	Limits    LimitsConfig    `toml:"limits"`
	Keys      KeysConfig      `toml:"keys"`

	// Loaded from the files and environment named above; never printed.
	secret     string
	adminToken string
	path       string

	signers []ed25519.PublicKey // keys.signers, read
}

type ComponentConfig struct {
	Domain     string `toml:"domain"`
	Server     string `toml:"server"`
	SecretFile string `toml:"secret_file"`
}

type StoreConfig struct {
	Path                string   `toml:"path"`
	GuestRetention      duration `toml:"guest_retention"`
	UnassignedRetention duration `toml:"unassigned_retention"`
}

type HTTPConfig struct {
	Listen          string `toml:"listen"`
	PublicURL       string `toml:"public_url"`
	BOSHURL         string `toml:"bosh_url"`
	AnonymousDomain string `toml:"anonymous_domain"`
}

type AdminConfig struct {
	TokenFile string   `toml:"token_file"`
	Admins    []string `toml:"admins"`
	Listen    string   `toml:"listen"` // empty: the admin API and /metrics share http.listen
}

// minAdminToken is the shortest admin token accepted: 32 bytes of a
// random token cannot be guessed through a rate-limited login.
const minAdminToken = 32

type RoutingConfig struct {
	MaxChatsPerOperator int      `toml:"max_chats_per_operator"`
	GuestIdleTimeout    duration `toml:"guest_idle_timeout"`
	AKEStallTimeout     duration `toml:"ake_stall_timeout"`
}

type LimitsConfig struct {
	MaxBodyBytes           int    `toml:"max_body_bytes"`
	GuestsPerSkin          int    `toml:"guests_per_skin"`
	GuestMessagesPerMinute int    `toml:"guest_messages_per_minute"`
	NewChatsPerMinute      int    `toml:"new_chats_per_minute"`
	NewChatsPerMinuteTotal int    `toml:"new_chats_per_minute_total"`
	ProofOfWork            string `toml:"proof_of_work"` // "off" or "over-limit"
	ProofOfWorkBits        int    `toml:"proof_of_work_bits"`
}

type KeysConfig struct {
	RotationReminder         duration `toml:"rotation_reminder"`
	PreviousFingerprintGrace duration `toml:"previous_fingerprint_grace"`
	Signers                  []string `toml:"signers"` // parsed into Config.signers
}

// duration is a time.Duration written as a Go duration string ("30m").
type duration struct{ time.Duration }

func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration (write it like \"30m\", \"24h\" or \"10s\")", b)
	}
	if v <= 0 {
		return fmt.Errorf("%q must be longer than zero", b)
	}
	d.Duration = v
	return nil
}

func (d duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

func defaultConfig() Config {
	return Config{
		Store:   StoreConfig{GuestRetention: duration{720 * time.Hour}, UnassignedRetention: duration{time.Hour}},
		Routing: RoutingConfig{MaxChatsPerOperator: 4, GuestIdleTimeout: duration{30 * time.Minute}, AKEStallTimeout: duration{10 * time.Second}},
		Limits: LimitsConfig{MaxBodyBytes: 65536, GuestsPerSkin: 1000, GuestMessagesPerMinute: 120,
			NewChatsPerMinute: 600, NewChatsPerMinuteTotal: 3000, ProofOfWork: "off", ProofOfWorkBits: 18},
		Keys: KeysConfig{RotationReminder: duration{168 * time.Hour}, PreviousFingerprintGrace: duration{24 * time.Hour}},
	}
}

// errNoConfig is returned when no -config was given and neither default
// location has a file.
var errNoConfig = errors.New("no configuration file: pass -config FILE, or create ./otrdesk.toml or /etc/otrdesk/otrdesk.toml (see config.example.toml)")

// findConfig resolves the -config flag: the named file, or the first of the
// default locations that exists.
func findConfig(flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	for _, p := range []string{"otrdesk.toml", "/etc/otrdesk/otrdesk.toml"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errNoConfig
}

// loadConfig reads, checks and completes a configuration file, and loads the
// secrets it names. Each error is one line that says what to put where.
func loadConfig(path string) (*Config, error) {
	c := defaultConfig()
	md, err := toml.DecodeFile(path, &c)
	if err != nil {
		var perr toml.ParseError
		if errors.As(err, &perr) {
			return nil, fmt.Errorf("config %s: line %d: %s", path, perr.Position.Line, perr.Message)
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("config %s: unknown key %s (see config.example.toml for the keys otrdesk knows)", path, strings.Join(keys, ", "))
	}
	c.path = path
	if err := c.complete(); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return &c, nil
}

// complete checks every field, fills the derived defaults and reads the
// component secret and admin token.
func (c *Config) complete() error {
	if c.Component.Domain == "" {
		return errors.New("component.domain is missing: set it to the component's JID, e.g. \"chat.example.org\"")
	}
	d, err := jid.Parse(c.Component.Domain)
	if err != nil || d.Localpart() != "" || d.Resourcepart() != "" || !strings.Contains(d.Domainpart(), ".") {
		return fmt.Errorf("component.domain %q is not a domain name: set it to the component's JID, e.g. \"chat.example.org\"", c.Component.Domain)
	}
	c.Component.Domain = d.Domainpart()
	if c.Component.Server == "" {
		return errors.New("component.server is missing: set it to the XEP-0114 listener of Prosody or ejabberd, e.g. \"127.0.0.1:5347\"")
	}
	if _, _, err := net.SplitHostPort(c.Component.Server); err != nil {
		return fmt.Errorf("component.server %q is not host:port, e.g. \"127.0.0.1:5347\"", c.Component.Server)
	}
	if c.secret, err = readSecret("component.secret_file", c.Component.SecretFile, "OTRDESK_COMPONENT_SECRET"); err != nil {
		return err
	}
	if c.secret == "" {
		return errors.New("the component secret is missing: set component.secret_file to a file holding it, or the environment variable OTRDESK_COMPONENT_SECRET")
	}
	if c.Store.Path == "" {
		return errors.New("store.path is missing: set it to where the database lives, e.g. \"/var/lib/otrdesk/otrdesk.db\"")
	}
	if c.HTTP.Listen == "" {
		return errors.New("http.listen is missing: set it to the address to serve HTTP on, e.g. \"127.0.0.1:8080\"")
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Listen); err != nil {
		return fmt.Errorf("http.listen %q is not host:port, e.g. \"127.0.0.1:8080\"", c.HTTP.Listen)
	}
	if c.HTTP.PublicURL == "" {
		c.HTTP.PublicURL = "http://" + c.HTTP.Listen
	}
	c.HTTP.PublicURL = strings.TrimRight(c.HTTP.PublicURL, "/")
	if err := checkURL("http.public_url", c.HTTP.PublicURL); err != nil {
		return err
	}
	if c.HTTP.BOSHURL == "" {
		c.HTTP.BOSHURL = "http://127.0.0.1:5280/http-bind"
	}
	if err := checkURL("http.bosh_url", c.HTTP.BOSHURL); err != nil {
		return err
	}
	if c.HTTP.AnonymousDomain == "" {
		parent := c.Component.Domain
		if i := strings.IndexByte(parent, '.'); i >= 0 {
			parent = parent[i+1:]
		}
		c.HTTP.AnonymousDomain = "guest." + parent
	}
	for i, a := range c.Admin.Admins {
		j, err := jid.Parse(a)
		if err != nil || j.Localpart() == "" || j.Resourcepart() != "" {
			return fmt.Errorf("admin.admins[%d] %q is not a bare JID: write it like \"admin@example.org\"", i, a)
		}
	}
	if c.adminToken, err = readSecret("admin.token_file", c.Admin.TokenFile, "OTRDESK_ADMIN_TOKEN"); err != nil {
		return err
	}
	if c.adminToken != "" && len(c.adminToken) < minAdminToken {
		from := "admin.token_file " + c.Admin.TokenFile
		if c.Admin.TokenFile == "" {
			from = "OTRDESK_ADMIN_TOKEN"
		}
		return fmt.Errorf("the admin token in %s is %d bytes, shorter than %d: make a new one with: head -c 32 /dev/urandom | base64 > FILE", from, len(c.adminToken), minAdminToken)
	}
	if c.Admin.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Admin.Listen); err != nil {
			return fmt.Errorf("admin.listen %q is not host:port, e.g. \"127.0.0.1:8081\"", c.Admin.Listen)
		}
		if c.Admin.Listen == c.HTTP.Listen {
			return fmt.Errorf("admin.listen %q is http.listen too: give the admin API an address of its own, or leave admin.listen out", c.Admin.Listen)
		}
	}
	for _, p := range []struct {
		name string
		v    int
	}{
		{"routing.max_chats_per_operator", c.Routing.MaxChatsPerOperator},
		{"limits.max_body_bytes", c.Limits.MaxBodyBytes},
		{"limits.guests_per_skin", c.Limits.GuestsPerSkin},
		{"limits.guest_messages_per_minute", c.Limits.GuestMessagesPerMinute},
		{"limits.new_chats_per_minute", c.Limits.NewChatsPerMinute},
		{"limits.new_chats_per_minute_total", c.Limits.NewChatsPerMinuteTotal},
	} {
		if p.v <= 0 {
			return fmt.Errorf("%s must be a whole number above zero", p.name)
		}
	}
	c.signers = nil
	for i, s := range c.Keys.Signers {
		pub, err := keyring.ParseSigner(s)
		if err != nil {
			return fmt.Errorf("keys.signers[%d] %q is not a signer: use the otrdesk-signer:... line that 'otrdesk signer generate' printed", i, s)
		}
		c.signers = append(c.signers, pub)
	}
	switch c.Limits.ProofOfWork {
	case "off", "over-limit":
	default:
		return fmt.Errorf("limits.proof_of_work %q: use \"off\" or \"over-limit\"", c.Limits.ProofOfWork)
	}
	if c.Limits.ProofOfWorkBits < component.MinProofOfWorkBits || c.Limits.ProofOfWorkBits > component.MaxProofOfWorkBits {
		return fmt.Errorf("limits.proof_of_work_bits must be %d to %d (each bit doubles the work a browser does for a new chat over the rate)",
			component.MinProofOfWorkBits, component.MaxProofOfWorkBits)
	}
	// Prosody closes streams whose stanzas exceed 512 KiB; a larger limit here
	// would turn a clear policy-violation into a dropped connection.
	if c.Limits.MaxBodyBytes > 512*1024 {
		return errors.New("limits.max_body_bytes must be at most 524288 (Prosody caps stanzas at 512 KiB)")
	}
	return nil
}

func checkURL(key, v string) error {
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s %q is not an http(s) URL, e.g. \"https://chat.example.org\"", key, v)
	}
	return nil
}

// readSecret loads a secret from a file (trailing newline dropped) or, when no
// file is named, from an environment variable. The secret's value never
// appears in an error.
func readSecret(key, file, env string) (string, error) {
	if file == "" {
		return os.Getenv(env), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s: cannot read %s: %w", key, file, errors.Unwrap(err))
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s: %s is empty: put the secret in it", key, file)
	}
	return s, nil
}
