package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"otrdesk.im/otrdesk/internal/libotrtest"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/keyfile"
	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/web"
)

// captured is one admin API exchange as it crossed the wire.
type captured struct {
	method, path string
	header       http.Header
	body, reply  []byte
}

// adminRecorder is a proxy in front of serve's HTTP listener that keeps a
// copy of every request and answer, headers and bodies.
type adminRecorder struct {
	mu   sync.Mutex
	seen []captured
}

func (a *adminRecorder) all() []captured {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]captured(nil), a.seen...)
}

func (a *adminRecorder) proxy(t *testing.T, upstream string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		req, err := http.NewRequest(r.Method, upstream+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		req.Header = r.Header.Clone()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		reply, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		a.mu.Lock()
		a.seen = append(a.seen, captured{r.Method, r.URL.Path, r.Header.Clone(), body, reply})
		a.mu.Unlock()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		w.Write(reply)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// privateForms is every way a private key's x could be written down, and
// the whole file that holds it.
func privateForms(k *otr.PrivateKey, file []byte) map[string][]byte {
	x := k.X.Bytes()
	return map[string][]byte{
		"x hex (upper)":       []byte(strings.ToUpper(k.X.Text(16))),
		"x hex (lower)":       []byte(k.X.Text(16)),
		"x decimal":           []byte(k.X.Text(10)),
		"x bytes":             x,
		"x base64":            []byte(base64.StdEncoding.EncodeToString(x)),
		"x base64 raw":        []byte(base64.RawStdEncoding.EncodeToString(x)),
		"x base64url":         []byte(base64.RawURLEncoding.EncodeToString(x)),
		"otr.js private form": bytes.TrimSpace(keyfile.MarshalOTRJS(k)),
		"private bytes":       k.PrivateBytes(),
		"the key file":        bytes.TrimSpace(file),
	}
}

// Private keys never pass through the running service: keys generate makes
// the key where it runs and keys register sends only a public key, so no
// admin request or answer, and no line of serve's log, holds any form of a
// private key; the skin JSON then publishes the new key.
func TestKeysWhileServeRuns(t *testing.T) {
	ageWorkFactor = 12
	t.Cleanup(func() { ageWorkFactor = 0 })
	const secret = "component-secret-4410"
	srv := xmpptest.Prosody(t, xmpptest.Options{Components: map[string]string{"chat.example.org": secret}})
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("admin-token-5521-0123456789abcdefghijklmn\n"), 0o600)
	cfg := serveConfig(t, srv, secret, "[admin]", `token_file = "`+token+`"`)
	logs, stop := startServe(t, cfg)
	defer stop()

	// The CLI reaches serve through the recording proxy: its config is
	// serve's with http.listen pointing at the proxy.
	var rec adminRecorder
	proxy := rec.proxy(t, localURL(cfg.HTTP.Listen))
	text, err := os.ReadFile(cfg.path)
	if err != nil {
		t.Fatal(err)
	}
	cliCfg := filepath.Join(t.TempDir(), "cli.toml")
	proxyAddr := strings.TrimPrefix(proxy.URL, "http://")
	os.WriteFile(cliCfg, bytes.Replace(text, []byte(`"`+cfg.HTTP.Listen+`"`), []byte(`"`+proxyAddr+`"`), 1), 0o600)

	mustRun(t, "skin", "add", "clinic", "--title", "Clinic", "--operators", "doc@example.org", "-config", cliCfg)
	mustRun(t, "skin", "add", "lab", "--title", "Lab", "--operators", "doc@example.org", "-config", cliCfg)
	dir := t.TempDir()
	pass := writeTemp(t, "correct horse battery staple\n")
	secrets := map[string][]byte{"the passphrase": []byte("correct horse battery staple")}
	addKey := func(name string, k *otr.PrivateKey, file []byte) {
		for form, v := range privateForms(k, file) {
			secrets[name+": "+form] = v
		}
	}
	var want []otr.Fingerprint // the current key after each step, newest last

	// keys generate, in three formats, two to files and one to stdout.
	pidgin := filepath.Join(dir, "otr.private_key")
	mustRun(t, "keys", "generate", "--skin", "clinic", "--format", "pidgin", "--account", "doc@example.org", "--out", pidgin, "-config", cliCfg)
	b, _ := os.ReadFile(pidgin)
	ks, err := keyfile.Read(b, "")
	if err != nil || len(ks.Accounts) != 1 {
		t.Fatalf("generated pidgin file: %v", err)
	}
	addKey("generate pidgin", ks.Accounts[0].Key, b)
	want = append(want, ks.Accounts[0].Key.Fingerprint())

	js := mustRun(t, "keys", "generate", "--skin", "clinic", "--format", "otrjs", "-config", cliCfg)
	k, err := keyfile.ParseOTRJS(js)
	if err != nil {
		t.Fatalf("generate otrjs printed %q: %v", js, err)
	}
	addKey("generate otrjs", k, []byte(js))
	want = append(want, k.Fingerprint())

	bundle := filepath.Join(dir, "bundle.age")
	mustRun(t, "keys", "generate", "--all", "--format", "age", "--account", "doc@example.org", "--passphrase-file", pass, "--out", bundle, "-config", cliCfg)
	b, _ = os.ReadFile(bundle)
	if ks, err = keyfile.Read(b, "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	addKey("generate age", ks.Accounts[0].Key, b)
	addKey("generate age, inside", ks.Accounts[0].Key, ks.Bundle.PrivateKeys.Bytes())
	want = append(want, ks.Accounts[0].Key.Fingerprint())

	// keys register, from files made elsewhere: libotr's own otr.private_key,
	// an otr.js key, a bundle, and the bare public form.
	libotr := filepath.Join(dir, "libotr.private_key")
	libotrtest.GenerateKey(t, libotr, "doc@example.org", "prpl-jabber")
	b, _ = os.ReadFile(libotr)
	if ks, err = keyfile.Read(b, ""); err != nil {
		t.Fatal(err)
	}
	addKey("register libotr", ks.Accounts[0].Key, b)
	mustRun(t, "keys", "register", "--skin", "clinic", "--public-key", libotr, "-config", cliCfg)
	want = append(want, ks.Accounts[0].Key.Fingerprint())

	for _, form := range []string{"otrjs", "age", "public"} {
		k, err := otr.GenerateEphemeralKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		var file []byte
		args := []string{"keys", "register", "--skin", "clinic", "-config", cliCfg}
		switch form {
		case "otrjs":
			file = keyfile.MarshalOTRJS(k)
		case "age":
			var buf bytes.Buffer
			var f keyfile.PrivateKeys
			f.Set("doc@example.org", "prpl-jabber", k)
			if err := keyfile.WriteBundle(&buf, "correct horse battery staple", keyfile.Bundle{Skins: []string{"clinic"}, Fingerprint: k.Fingerprint(), PrivateKeys: &f}, 12); err != nil {
				t.Fatal(err)
			}
			file = buf.Bytes()
			args = append(args, "--passphrase-file", pass)
		case "public":
			file = keyfile.MarshalPublic(&k.PublicKey)
		}
		p := filepath.Join(dir, "register-"+form)
		os.WriteFile(p, file, 0o600)
		addKey("register "+form, k, file)
		if form == "public" {
			delete(secrets, "register public: the key file") // it holds nothing private
		}
		out := mustRun(t, append(args, "--public-key", p)...)
		if !strings.Contains(out, k.Fingerprint().String()) {
			t.Errorf("register %s said %q, not the fingerprint %v", form, out, k.Fingerprint())
		}
		want = append(want, k.Fingerprint())
	}

	// The capture saw the traffic it is meant to judge.
	exchanges := rec.all()
	registers := 0
	for _, x := range exchanges {
		if x.path == "/admin/v1/keys/register" {
			registers++
		}
		if x.path == "/admin/v1/keys" {
			t.Errorf("the CLI still asks serve to generate a key")
		}
	}
	if registers != 7 {
		t.Fatalf("captured %d key registrations, want 7 (3 generate + 4 register): %d exchanges", registers, len(exchanges))
	}
	for _, x := range exchanges {
		for name, v := range secrets {
			if len(v) < 8 {
				continue
			}
			for part, hay := range map[string][]byte{"request body": x.body, "answer": x.reply, "request URL": []byte(x.path)} {
				if bytes.Contains(hay, v) {
					t.Errorf("%s %s: the %s holds %s", x.method, x.path, part, name)
				}
			}
			for h, vs := range x.header {
				if bytes.Contains([]byte(strings.Join(vs, " ")), v) {
					t.Errorf("%s %s: header %s holds %s", x.method, x.path, h, name)
				}
			}
		}
	}
	log := []byte(logs.String())
	for name, v := range secrets {
		if bytes.Contains(log, v) || bytes.Contains(bytes.ToUpper(log), bytes.ToUpper(v)) {
			t.Errorf("serve's log holds %s", name)
		}
	}
	if bytes.Contains(bytes.ToUpper(log), []byte("(X #")) {
		t.Error("serve's log holds an S-expression x")
	}

	// The skin JSON, from serve itself, publishes the newest key first.
	resp, err := http.Get(localURL(cfg.HTTP.Listen) + "/skins/clinic.json")
	if err != nil {
		t.Fatal(err)
	}
	var sj web.SkinJSON
	err = json.NewDecoder(resp.Body).Decode(&sj)
	resp.Body.Close()
	if err != nil || len(sj.Fingerprints) == 0 || sj.Fingerprints[0] != want[len(want)-1].String() {
		t.Fatalf("clinic publishes %v (%v), want %v first", sj.Fingerprints, err, want[len(want)-1])
	}
	resp, err = http.Get(localURL(cfg.HTTP.Listen) + "/skins/lab.json")
	if err != nil {
		t.Fatal(err)
	}
	err = json.NewDecoder(resp.Body).Decode(&sj)
	resp.Body.Close()
	if err != nil || len(sj.Fingerprints) != 1 || sj.Fingerprints[0] != want[2].String() {
		t.Fatalf("lab publishes %v (%v), want the --all key %v", sj.Fingerprints, err, want[2])
	}
}
