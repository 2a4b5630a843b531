package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"otrdesk.im/otrdesk/admin"
	"otrdesk.im/otrdesk/store"
)

// otrdesk runs the CLI in-process and returns stdout, stderr and the exit code.
func otrdesk(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestSkinLifecycle(t *testing.T) {
	cfg := writeConfig(t, minimalConfig, "secret")
	steps := []struct {
		name   string
		args   []string
		code   int
		stdout string // substring expected
		stderr string
	}{
		{"add, flags after name", []string{"skin", "add", "library", "-config", cfg, "--title", "Ask a Librarian", "--operators", "ann@example.org,bob@example.org", "--operator-name", "ann@example.org=Ann"}, 0, "added skin library", ""},
		{"add twice", []string{"skin", "add", "library", "-config", cfg, "--title", "x", "--operators", "ann@example.org"}, 1, "", "already exists"},
		{"add without title", []string{"skin", "add", "bank", "-config", cfg, "--operators", "ann@example.org"}, 2, "", "needs --title"},
		{"add bad name", []string{"skin", "add", "guest-x", "-config", cfg, "--title", "x", "--operators", "ann@example.org"}, 1, "", "guest-"},
		{"add bad policy", []string{"skin", "add", "bank", "-config", cfg, "--title", "x", "--operators", "ann@example.org", "--policy", "maybe"}, 1, "", "policy"},
		{"add operator with resource", []string{"skin", "add", "bank", "-config", cfg, "--title", "x", "--operators", "ann@example.org/phone"}, 1, "", "bare JID"},
		{"flags first", []string{"skin", "-config", cfg, "list"}, 0, "library", ""},
		{"no subcommand", []string{"skin", "-config", cfg}, 2, "", "unknown subcommand"},
		{"list", []string{"skin", "list", "-config", cfg}, 0, "library  Ask a Librarian  opportunistic", ""},
		{"show", []string{"skin", "show", "-config", cfg, "library"}, 0, "ann@example.org (Ann)", ""},
		{"set", []string{"skin", "set", "library", "--policy", "require", "--color", "#336699", "-config", cfg}, 0, "updated skin library", ""},
		{"show after set", []string{"skin", "show", "library", "-config", cfg}, 0, "policy:     require", ""},
		{"set keeps title", []string{"skin", "show", "library", "-config", cfg}, 0, "title:      Ask a Librarian", ""},
		{"show unknown", []string{"skin", "show", "nope", "-config", cfg}, 1, "", `skin "nope" does not exist`},
		{"remove", []string{"skin", "remove", "library", "-config", cfg}, 0, "removed skin library", ""},
		{"remove again", []string{"skin", "remove", "library", "-config", cfg}, 1, "", "does not exist"},
	}
	for _, s := range steps {
		out, errOut, code := otrdesk(t, s.args...)
		if code != s.code || !strings.Contains(out, s.stdout) || !strings.Contains(errOut, s.stderr) {
			t.Fatalf("%s: code %d (want %d)\nstdout: %s\nstderr: %s", s.name, code, s.code, out, errOut)
		}
		if code != 0 && strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%s: error is not one line: %q", s.name, errOut)
		}
	}
}

// While serve holds the store, the CLI must go through the admin API and the
// change must be visible in the store serve holds.
func TestSkinThroughAdminAPI(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(minimalConfig, `listen = "127.0.0.1:8080"`, `listen = "`+ln.Addr().String()+`"`, 1)
	body += "[admin]\ntoken_file = \"TOKEN\"\n"
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("tok-123-0123456789abcdef0123456789\n"), 0o600)
	cfgPath := writeConfig(t, strings.Replace(body, `"TOKEN"`, `"`+tokenFile+`"`, 1), "secret")
	cfg, st := openStoreOf(t, cfgPath)
	defer st.Close()
	var changed atomic.Int32
	srv := &http.Server{Handler: admin.Handler(&admin.Local{Store: st, OnChange: func() { changed.Add(1) }}, st, "tok-123-0123456789abcdef0123456789")}
	go srv.Serve(ln)
	defer srv.Close()

	if out, errOut, code := otrdesk(t, "skin", "add", "bank", "-config", cfgPath, "--title", "Your bank", "--operators", "ann@example.org"); code != 0 {
		t.Fatalf("add through API: %d %s %s", code, out, errOut)
	}
	if s, err := st.Skin("bank"); err != nil || s.Title != "Your bank" {
		t.Fatalf("skin not in serve's store: %v %+v", err, s)
	}
	if n := changed.Load(); n != 1 {
		t.Errorf("serve was told of %d changes, want 1", n)
	}
	if _, errOut, code := otrdesk(t, "skin", "show", "nope", "-config", cfgPath); code != 1 || !strings.Contains(errOut, `skin "nope" does not exist`) {
		t.Fatalf("unknown skin through API: %d %q", code, errOut)
	}

	// Without the token the CLI says what to do instead of hanging or
	// writing behind serve's back.
	noTok := writeConfig(t, strings.Replace(minimalConfig, `path = "DB"`, `path = "`+cfg.Store.Path+`"`, 1), "secret")
	if _, errOut, code := otrdesk(t, "skin", "list", "-config", noTok); code != 1 || !strings.Contains(errOut, "admin.token_file") {
		t.Fatalf("no token: %d %q", code, errOut)
	}
}

func TestUnknownCommand(t *testing.T) {
	if _, errOut, code := otrdesk(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("%d %q", code, errOut)
	}
	if out, _, code := otrdesk(t, "version"); code != 0 || !strings.HasPrefix(out, "otrdesk ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestSkinStats(t *testing.T) {
	cfg := writeConfig(t, minimalConfig, "secret")
	mustRun(t, "skin", "add", "library", "--title", "Library", "--operators", "ann@example.org", "-config", cfg)
	_, st := openStoreOf(t, cfg)
	day := time.Now().UTC().Add(-time.Hour)
	for _, r := range []store.ChatRecord{
		{Skin: "library", Start: day, Wait: 10 * time.Second, Duration: 5 * time.Minute, Encrypted: true},
		{Skin: "library", Start: day, Wait: 30 * time.Second, Duration: 7 * time.Minute, Encrypted: true},
		{Skin: "library", Start: day, Wait: 20 * time.Second, Duration: 6 * time.Minute, Encrypted: false},
	} {
		if err := st.RecordChat(r); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	out := mustRun(t, "skin", "stats", "library", "-config", cfg)
	if !strings.Contains(out, day.Format(time.DateOnly)) || !regexp.MustCompile(`\b3\s+20s\s+6m0s\s+67%`).MatchString(out) {
		t.Fatalf("stats table:\n%s", out)
	}
	if _, errOut, code := otrdesk(t, "skin", "stats", "nope", "-config", cfg); code != 1 || !strings.Contains(errOut, "does not exist") {
		t.Fatalf("stats of an unknown skin: %d %q", code, errOut)
	}
}
