// Command demo is `make demo`: everything otrdesk needs, on loopback, in one
// go, ending in a working encrypted chat.
//
//  1. a private Prosody (internal/xmpptest) with example.org, the anonymous
//     vhost guest.example.org, BOSH and the component chat.example.org;
//  2. an operator account operator@example.org;
//  3. the real otrdesk binary: a config file, `otrdesk skin add demo`,
//     `otrdesk keys generate --skin demo --format pidgin`, `otrdesk serve`;
//  4. a demo operator (internal/operator) holding the skin key, answering
//     with the Go OTR engine — or nobody, with -no-bot, so you answer from
//     Pidgin.
//
// It prints where the visitor page is and how to log in with Pidgin, then
// runs until Ctrl-C and cleans up.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"otrdesk.im/otrdesk/internal/operator"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/keyfile"
)

const (
	domain   = "chat.example.org"
	skin     = "demo"
	operName = "operator"
)

func main() {
	bin := flag.String("otrdesk", "./otrdesk", "the otrdesk binary (make build)")
	noBot := flag.Bool("no-bot", false, "start no demo operator: answer from Pidgin yourself")
	dir := flag.String("dir", "", "keep the demo's files here (default: a temporary directory, removed on exit)")
	flag.Parse()
	if err := run(*bin, *dir, *noBot); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func random() string {
	b := make([]byte, 15)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.EncodeToString(b))
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func run(bin, dir string, noBot bool) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("no otrdesk binary at %s: run make build", bin)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if dir == "" {
		if dir, err = os.MkdirTemp("", "otrdesk-demo-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}

	secret := random()
	step("starting a private Prosody on loopback")
	srv, err := xmpptest.StartProsody(ctx, xmpptest.Options{
		Components: map[string]string{domain: secret},
		Dir:        filepath.Join(dir, "prosody"),
	})
	if err != nil {
		return fmt.Errorf("starting Prosody: %w", err)
	}
	defer srv.Close()
	password := random()[:12]
	operJID, err := srv.Register(ctx, operName, password)
	if err != nil {
		return fmt.Errorf("registering %s: %w", operName, err)
	}

	httpAddr, err := freeAddr()
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "otrdesk.toml")
	if err := writeConfig(dir, cfgPath, srv, secret, httpAddr); err != nil {
		return err
	}
	otrdesk := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, bin, append(args, "-config", cfgPath)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("otrdesk %s: %v\n%s", args[0], err, out)
		}
		return string(out), nil
	}
	step("otrdesk skin add demo")
	if _, err := otrdesk("skin", "add", skin, "--title", "otrdesk demo", "--greeting", "Hello! Ask us anything: this chat is end-to-end encrypted.",
		"--operators", operJID.String(), "--operator-name", operJID.String()+"=Demo operator", "--color", "#2E6DB4"); err != nil {
		return err
	}
	keyFile := filepath.Join(dir, "operator.otr.private_key")
	step("otrdesk keys generate --skin demo --format pidgin")
	out, err := otrdesk("keys", "generate", "--skin", skin, "--format", "pidgin", "--account", operJID.String(), "--out", keyFile)
	if err != nil {
		return err
	}
	fmt.Print(indent(out))

	step("otrdesk serve")
	serve := exec.CommandContext(ctx, bin, "serve", "-config", cfgPath)
	logFile, err := os.Create(filepath.Join(dir, "otrdesk.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	serve.Stdout, serve.Stderr = logFile, logFile
	serve.Cancel = func() error { return serve.Process.Signal(os.Interrupt) }
	if err := serve.Start(); err != nil {
		return err
	}
	defer serve.Wait()
	base := "http://" + httpAddr
	if err := waitReady(ctx, base+"/readyz"); err != nil {
		return fmt.Errorf("otrdesk serve did not become ready (log: %s): %w", logFile.Name(), err)
	}

	if !noBot {
		step("starting the demo operator (the Go OTR engine, holding the skin key)")
		if err := startBot(ctx, srv, password, keyFile, operJID.String()); err != nil {
			return err
		}
	}

	fmt.Printf(`
otrdesk demo is running.

  Visitor page:  %s/demo/%s
  Skin JSON:     %s/skins/%s.json
  Embed snippet: %s snippet %s -config %s

`, base, skin, base, skin, bin, skin, cfgPath)
	if noBot {
		fmt.Printf("  Nobody answers yet: log in with Pidgin as below.\n\n")
	} else {
		fmt.Printf("  The demo operator answers every message. To answer from Pidgin instead,\n  stop this and run: go run ./internal/demo -no-bot\n\n")
	}
	fmt.Printf(`  Answer from Pidgin (with the pidgin-otr plugin):
    1. otrdesk keys install --client pidgin --account %s --key %s
    2. Add an XMPP account: username %s, domain example.org, password %s
       Advanced: connect server 127.0.0.1, port %s, "Use encryption if available"
       (the certificate is self-signed: accept it)
    3. Accept the subscription request from %s@%s and set yourself Available.

  Files: %s    Prosody log: %s    otrdesk log: %s
  Ctrl-C stops everything.
`, operJID, keyFile, operName, password, port(srv.C2SAddr), skin, domain, dir, srv.LogFile, logFile.Name())
	<-ctx.Done()
	fmt.Println("\nstopping")
	return nil
}

func startBot(ctx context.Context, srv *xmpptest.Server, password, keyFile, account string) error {
	text, err := os.ReadFile(keyFile)
	if err != nil {
		return err
	}
	f, err := keyfile.ParsePrivateKeys(text)
	if err != nil {
		return err
	}
	key, ok := f.Key(account, "prpl-jabber")
	if !ok {
		return errors.New("the generated key file has no key for the operator")
	}
	client, err := srv.Dial(ctx, operName, password, "demo-bot")
	if err != nil {
		return fmt.Errorf("logging in the demo operator: %w", err)
	}
	bot, err := operator.New(operator.Config{
		Client:  client,
		Key:     key,
		Service: domain,
		Answer: func(alias, text string) string {
			return "You wrote " + fmt.Sprint(len([]rune(text))) + " characters; only you and I can read them. (This is the otrdesk demo operator.)"
		},
	})
	if err != nil {
		return err
	}
	go func() {
		if err := bot.Run(ctx); err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "demo operator stopped:", err)
		}
	}()
	return nil
}

func writeConfig(dir, path string, srv *xmpptest.Server, secret, httpAddr string) error {
	secretFile := filepath.Join(dir, "component-secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		return err
	}
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(random()+random()+"\n"), 0o600); err != nil {
		return err
	}
	cfg := fmt.Sprintf(`# Written by make demo.
[component]
domain = %q
server = %q
secret_file = %q

[store]
path = %q

[http]
listen = %q
bosh_url = %q
anonymous_domain = %q

[admin]
token_file = %q
`, domain, srv.ComponentAddr, secretFile, filepath.Join(dir, "otrdesk.db"), httpAddr, srv.BOSHURL, srv.AnonDomain, tokenFile)
	return os.WriteFile(path, []byte(cfg), 0o600)
}

// waitReady polls url until it answers 200, for at most 30 s.
func waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s answered %s", url, resp.Status)
		} else {
			last = err
		}
		select {
		case <-ctx.Done():
			return last
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func step(s string) { fmt.Println("==>", s) }

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
