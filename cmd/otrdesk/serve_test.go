package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"otrdesk.im/otrdesk/component"
	"otrdesk.im/otrdesk/internal/xmpptest"
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

func serveConfig(t *testing.T, srv *xmpptest.Server, secret string) *Config {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	body := strings.NewReplacer(`"127.0.0.1:5347"`, `"`+srv.ComponentAddr+`"`, `"127.0.0.1:8080"`, `"`+addr+`"`).Replace(minimalConfig)
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
		var logs syncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- serve(ctx, cfg, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
		}()
		base := localURL(cfg.HTTP.Listen)
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := http.Get(base + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("serve never became ready: %v\n%s", err, logs.String())
			}
			time.Sleep(20 * time.Millisecond) // polling readiness, not waiting for a fixed time
		}
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
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("serve after cancel: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not stop")
		}
		for _, leak := range []string{secret} {
			if strings.Contains(logs.String(), leak) || bytes.Contains(metrics, []byte(leak)) {
				t.Fatal("the component secret reached the log or /metrics")
			}
		}
		if !strings.Contains(logs.String(), "otrdesk serving") {
			t.Errorf("no start line in the log:\n%s", logs.String())
		}
	})
}
