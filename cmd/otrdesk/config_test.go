package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimalConfig = `
[component]
domain = "chat.example.org"
server = "127.0.0.1:5347"
secret_file = "SECRET"
[store]
path = "DB"
[http]
listen = "127.0.0.1:8080"
`

// writeConfig writes a config into a temp dir, replacing SECRET and DB with
// paths there, and the secret file with secret.
func writeConfig(t *testing.T, body, secret string) string {
	t.Helper()
	dir := t.TempDir()
	sf := filepath.Join(dir, "secret")
	if err := os.WriteFile(sf, []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	body = strings.ReplaceAll(body, `"SECRET"`, `"`+sf+`"`)
	body = strings.ReplaceAll(body, `"DB"`, `"`+filepath.Join(dir, "otrdesk.db")+`"`)
	p := filepath.Join(dir, "otrdesk.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigDefaults(t *testing.T) {
	c, err := loadConfig(writeConfig(t, minimalConfig, "s3cret-canary\n"))
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ got, want any }{
		"secret without newline": {c.secret, "s3cret-canary"},
		"public_url":             {c.HTTP.PublicURL, "http://127.0.0.1:8080"},
		"anonymous_domain":       {c.HTTP.AnonymousDomain, "guest.example.org"},
		"bosh_url":               {c.HTTP.BOSHURL, "http://127.0.0.1:5280/http-bind"},
		"max_chats":              {c.Routing.MaxChatsPerOperator, 4},
		"idle":                   {c.Routing.GuestIdleTimeout.Duration, 30 * time.Minute},
		"stall":                  {c.Routing.AKEStallTimeout.Duration, 10 * time.Second},
		"max_body":               {c.Limits.MaxBodyBytes, 65536},
		"guests_per_skin":        {c.Limits.GuestsPerSkin, 1000},
		"per_minute":             {c.Limits.GuestMessagesPerMinute, 120},
		"new_chats":              {c.Limits.NewChatsPerMinute, 600},
		"new_chats_total":        {c.Limits.NewChatsPerMinuteTotal, 3000},
		"retention":              {c.Store.GuestRetention.Duration, 720 * time.Hour},
		"unassigned_retention":   {c.Store.UnassignedRetention.Duration, time.Hour},
		"proof_of_work":          {c.Limits.ProofOfWork, "off"},
		"proof_of_work_bits":     {c.Limits.ProofOfWorkBits, 18},
		"rotation":               {c.Keys.RotationReminder.Duration, 168 * time.Hour},
		"grace":                  {c.Keys.PreviousFingerprintGrace.Duration, 24 * time.Hour},
		"admins":                 {len(c.Admin.Admins), 0},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", name, tc.got, tc.want)
		}
	}
}

func TestConfigExampleLoads(t *testing.T) {
	b, err := os.ReadFile("../../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	const token = "example-admin-token-0123456789abcdef"
	for f, v := range map[string]string{"secret": "x", "admin-token": token} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := strings.ReplaceAll(string(b), "/etc/otrdesk/", dir+"/")
	p := filepath.Join(dir, "c.toml")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadConfig(p)
	if err != nil {
		t.Fatalf("config.example.toml does not load: %v", err)
	}
	if c.Component.Domain != "chat.example.org" || c.Admin.Admins[0] != "admin@example.org" || c.adminToken != token || c.Admin.Listen != "127.0.0.1:8081" {
		t.Errorf("example loaded wrong: %+v", c)
	}
}

func TestConfigErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		body, want string
	}{
		"unknown key":                 {minimalConfig + "[routing]\nmax_chat = 3\n", "unknown key routing.max_chat"},
		"unknown section":             {minimalConfig + "[bogus]\nx = 1\n", "unknown key bogus"},
		"no domain":                   {strings.Replace(minimalConfig, `domain = "chat.example.org"`, "", 1), "component.domain is missing"},
		"domain with user":            {strings.Replace(minimalConfig, `"chat.example.org"`, `"a@chat.example.org"`, 1), "is not a domain name"},
		"no server":                   {strings.Replace(minimalConfig, `server = "127.0.0.1:5347"`, "", 1), "component.server is missing"},
		"bad server":                  {strings.Replace(minimalConfig, `"127.0.0.1:5347"`, `"localhost"`, 1), "is not host:port"},
		"no store":                    {strings.Replace(minimalConfig, `path = "DB"`, "", 1), "store.path is missing"},
		"no listen":                   {strings.Replace(minimalConfig, `listen = "127.0.0.1:8080"`, "", 1), "http.listen is missing"},
		"bad duration":                {minimalConfig + "[routing]\nguest_idle_timeout = \"soon\"\n", "is not a duration"},
		"negative limit":              {minimalConfig + "[limits]\nmax_body_bytes = -1\n", "limits.max_body_bytes must be a whole number above zero"},
		"huge body":                   {minimalConfig + "[limits]\nmax_body_bytes = 9000000\n", "at most 524288"},
		"bad admin":                   {minimalConfig + "[admin]\nadmins = [\"admin@example.org/phone\"]\n", "not a bare JID"},
		"bad public_url":              {strings.Replace(minimalConfig, "[http]\n", "[http]\npublic_url = \"ftp://x\"\n", 1), "http.public_url"},
		"missing secret":              {strings.Replace(minimalConfig, `"SECRET"`, `"/nonexistent/secret"`, 1), "component.secret_file: cannot read /nonexistent/secret"},
		"toml syntax":                 {minimalConfig + "[limits\n", "line"},
		"short token":                 {minimalConfig + "[admin]\ntoken_file = \"SECRET\"\n", "is 13 bytes, shorter than 32"},
		"bad admin listen":            {minimalConfig + "[admin]\nlisten = \"8081\"\n", "admin.listen \"8081\" is not host:port"},
		"admin listen is http listen": {minimalConfig + "[admin]\nlisten = \"127.0.0.1:8080\"\n", "give the admin API an address of its own"},
		"bad proof of work":           {minimalConfig + "[limits]\nproof_of_work = \"always\"\n", `use "off" or "over-limit"`},
		"proof of work too cheap":     {minimalConfig + "[limits]\nproof_of_work_bits = 4\n", "limits.proof_of_work_bits must be 8 to 32"},
		"bad unassigned retention":    {strings.Replace(minimalConfig, "[store]\n", "[store]\nunassigned_retention = \"0s\"\n", 1), "must be longer than zero"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(writeConfig(t, tc.body, "s3cret-canary"))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "s3cret-canary") || strings.Contains(err.Error(), "s3cret") {
				t.Fatal("the secret appears in the error")
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestConfigSecretFromEnv(t *testing.T) {
	body := strings.Replace(minimalConfig, `secret_file = "SECRET"`, "", 1)
	t.Setenv("OTRDESK_COMPONENT_SECRET", "")
	if _, err := loadConfig(writeConfig(t, body, "")); err == nil || !strings.Contains(err.Error(), "OTRDESK_COMPONENT_SECRET") {
		t.Fatalf("missing secret: %v", err)
	}
	t.Setenv("OTRDESK_COMPONENT_SECRET", "from-env")
	c, err := loadConfig(writeConfig(t, body, ""))
	if err != nil || c.secret != "from-env" {
		t.Fatalf("secret from env: %v %q", err, c.secret)
	}
}

// serve refuses to start with a short admin token, in one line that says
// how to make a good one, and never shows the token.
func TestServeRefusesShortAdminToken(t *testing.T) {
	t.Setenv("OTRDESK_ADMIN_TOKEN", "short-token-canary")
	_, errOut, code := otrdesk(t, "serve", "-config", writeConfig(t, minimalConfig, "secret"))
	if code != 1 || !strings.Contains(errOut, "OTRDESK_ADMIN_TOKEN is 18 bytes, shorter than 32") || !strings.Contains(errOut, "head -c 32 /dev/urandom") {
		t.Fatalf("serve with a short token: exit %d, %q", code, errOut)
	}
	if strings.Count(strings.TrimSpace(errOut), "\n") != 0 || strings.Contains(errOut, "short-token-canary") {
		t.Fatalf("not one line, or the token shows: %q", errOut)
	}
}
