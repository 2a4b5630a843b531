package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"otrdesk.im/otrdesk/component"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/keyfile"
)

// syncBuffer is a log sink safe for the goroutines of serve.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func serveConfig(t *testing.T, srv *xmpptest.Server, secret string, extra ...string) *Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	body := strings.NewReplacer(`"127.0.0.1:5347"`, `"`+srv.ComponentAddr+`"`, `"127.0.0.1:8080"`, `"`+addr+`"`).Replace(minimalConfig) + strings.Join(extra, "\n")
	cfg, err := loadConfig(writeConfig(t, body, secret))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestServe(t *testing.T) {
	const secret = "component-secret-canary-7731"
	srv := xmpptest.Prosody(t, xmpptest.Options{Components: map[string]string{"chat.example.org": secret}})

	t.Run("wrong secret fails at once", func(t *testing.T) {
		cfg := serveConfig(t, srv, "not-the-secret-4419")
		var logs syncBuffer
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		err := serve(ctx, cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		if !errors.Is(err, component.ErrHandshake) || ctx.Err() != nil {
			t.Fatalf("serve with a wrong secret: %v (ctx %v)", err, ctx.Err())
		}
		if !strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "not-the-secret-4419") || strings.Contains(logs.String(), "not-the-secret-4419") {
			t.Fatalf("the error must name the secret as the problem without showing it: %v", err)
		}
	})

	t.Run("ready, metrics, clean stop", func(t *testing.T) {
		cfg := serveConfig(t, srv, secret)
		logs, stop := startServe(t, cfg)
		base := localURL(cfg.HTTP.Listen)
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Contains(metrics, []byte("go_goroutines")) {
			t.Fatalf("/metrics: %d", resp.StatusCode)
		}
		// The CLI sees serve holding the store and says how to reach it.
		if _, errOut, code := otrdesk(t, "skin", "list", "-config", cfg.path); code != 1 || !strings.Contains(errOut, "admin.token_file") {
			t.Errorf("CLI while serve runs: %d %q", code, errOut)
		}
		stop()
		for _, leak := range []string{secret} {
			if strings.Contains(logs.String(), leak) || bytes.Contains(metrics, []byte(leak)) {
				t.Fatal("the component secret reached the log or /metrics")
			}
		}
		if !strings.Contains(logs.String(), "otrdesk serving") {
			t.Errorf("no start line in the log:\n%s", logs.String())
		}
	})

	// A key generated while serve runs is written once, where the command
	// runs, and is nowhere else: not in the store file, not in serve's debug
	// log, not in /metrics. (keys_serve_test.go also watches the admin API's
	// traffic.)
	t.Run("key through the admin API leaves no trace", func(t *testing.T) {
		token := filepath.Join(t.TempDir(), "token")
		os.WriteFile(token, []byte("admin-token-5521-0123456789abcdefghijklmn\n"), 0o600)
		cfg := serveConfig(t, srv, secret, "[admin]", `token_file = "`+token+`"`)
		logs, stop := startServe(t, cfg)
		defer stop()
		mustRun(t, "skin", "add", "clinic", "--title", "Clinic", "--operators", "doc@example.org", "-config", cfg.path)
		keyFile := filepath.Join(t.TempDir(), "key")
		mustRun(t, "keys", "generate", "--skin", "clinic", "--format", "pidgin", "--account", "doc@example.org", "--out", keyFile, "-config", cfg.path)
		text, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		f, err := keyfile.ParsePrivateKeys(text)
		if err != nil {
			t.Fatal(err)
		}
		k, _ := f.Key("doc@example.org", "prpl-jabber")
		xHex := strings.ToUpper(k.X.Text(16))
		resp, err := http.Get(localURL(cfg.HTTP.Listen) + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		backup := filepath.Join(t.TempDir(), "backup.db")
		mustRun(t, "backup", backup, "-config", cfg.path)
		db, _ := os.ReadFile(backup)
		for name, hay := range map[string][]byte{"store": db, "log": []byte(logs.String()), "metrics": metrics} {
			up := bytes.ToUpper(hay)
			if bytes.Contains(up, []byte(xHex)) || bytes.Contains(hay, k.X.Bytes()) || bytes.Contains(up, []byte("(X #")) {
				t.Errorf("the private key is in the %s", name)
			}
		}
		if !bytes.Contains(db, []byte(k.Fingerprint().Hex())) {
			t.Errorf("the store does not hold the fingerprint it publishes")
		}
	})

	// admin.listen: /admin/v1 and /metrics answer there and only there; the
	// CLI finds the API there while serve runs.
	t.Run("admin.listen", func(t *testing.T) {
		token := filepath.Join(t.TempDir(), "token")
		os.WriteFile(token, []byte("admin-token-7731-0123456789abcdefghijklmn\n"), 0o600)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		adminAddr := ln.Addr().String()
		ln.Close()
		cfg := serveConfig(t, srv, secret, "[admin]", `token_file = "`+token+`"`, `listen = "`+adminAddr+`"`)
		_, stop := startServe(t, cfg)
		defer stop()
		mustRun(t, "skin", "add", "clinic", "--title", "Clinic", "--operators", "doc@example.org", "-config", cfg.path)
		get := func(url string) int {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", "Bearer admin-token-7731-0123456789abcdefghijklmn")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		public, private := localURL(cfg.HTTP.Listen), localURL(adminAddr)
		for _, tc := range []struct {
			url  string
			want int
		}{
			{public + "/admin/v1/skins", 404},
			{public + "/admin/v1/skins/clinic", 404},
			{public + "/metrics", 404},
			{public + "/skins/clinic.json", 200},
			{private + "/admin/v1/skins", 200},
			{private + "/metrics", 200},
			{private + "/skins/clinic.json", 404},
		} {
			if got := get(tc.url); got != tc.want {
				t.Errorf("GET %s: %d, want %d", tc.url, got, tc.want)
			}
		}
	})
}

// Issue 6: admins are reminded by XMPP to rotate an old skin key.
func TestServeRotationReminder(t *testing.T) {
	const secret = "s"
	srv := xmpptest.Prosody(t, xmpptest.Options{Components: map[string]string{"chat.example.org": secret}})
	srv.MustRegister(t, "boss", "pw")
	boss := srv.MustDial(t, "boss", "pw", "desk")
	reminderEvery = 50 * time.Millisecond
	t.Cleanup(func() { reminderEvery = 10 * time.Minute })
	cfg := serveConfig(t, srv, secret, "[admin]", `admins = ["boss@example.org"]`, "[keys]", `rotation_reminder = "1ms"`)
	mustRun(t, "skin", "add", "clinic", "--title", "Clinic", "--operators", "doc@example.org", "-config", cfg.path)
	mustRun(t, "keys", "generate", "--skin", "clinic", "--format", "otrjs", "--out", filepath.Join(t.TempDir(), "k"), "-config", cfg.path)
	_, stop := startServe(t, cfg)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := boss.Next(ctx, func(s xmpptest.Stanza) bool {
		return s.Name == "message" && s.From == "chat.example.org" && strings.Contains(s.Body, "skin clinic")
	})
	if err != nil {
		t.Fatalf("no rotation reminder: %v", err)
	}
	if !strings.Contains(st.Body, "otrdesk keys generate --skin clinic") {
		t.Errorf("the reminder does not say what to do: %q", st.Body)
	}
	// Once a day: the next checks send nothing more. A ping round trip is a
	// barrier for anything already routed to boss.
	for i := 0; i < 3; i++ {
		if err := boss.Ping(ctx, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range boss.Pending() {
		if p.Name == "message" && strings.Contains(p.Body, "skin clinic") {
			t.Fatalf("reminded twice in one day: %q", p.Body)
		}
	}
}

// startServe runs serve in the background, waits (polling /readyz) until
// it is ready, and returns its log and a function that stops it.
func startServe(t *testing.T, cfg *Config) (*syncBuffer, func()) {
	t.Helper()
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve after cancel: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop")
		}
	}
	base := localURL(cfg.HTTP.Listen)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return logs, stop
			}
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("serve never became ready: %v\n%s", err, logs.String())
		}
		time.Sleep(20 * time.Millisecond) // polling readiness, not waiting for a fixed time
	}
}
