package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/keyring"
	"otrdesk.im/otrdesk/store"
	"otrdesk.im/otrdesk/web"
)

const (
	fpCurrent = "1921c1b48ac86d702a3ada33a2d7a86a1771fc70"
	fpGrace   = "00112233445566778899aabbccddeeff00112233"
	fpRevoked = "aabbccddeeff00112233445566778899aabbccdd"
	fpOld     = "0123456789abcdef0123456789abcdef01234567"
)

// addSkinWithKeys makes skin name in the store of cfgPath with a current
// key, one retired inside the grace, one retired long ago and one revoked.
func addSkinWithKeys(t *testing.T, cfgPath, name string) {
	t.Helper()
	_, st := openStoreOf(t, cfgPath)
	defer st.Close()
	now := time.Now()
	if err := st.CreateSkin(store.Skin{Name: name, Title: name, Policy: store.PolicyRequire, Operators: []string{"ann@example.org"},
		Keys: []store.SkinKey{
			{Fingerprint: mustFingerprint(fpCurrent), Created: now.Add(-time.Hour)},
			{Fingerprint: mustFingerprint(fpGrace), Created: now.Add(-48 * time.Hour), Retired: now.Add(-time.Hour)},
			{Fingerprint: mustFingerprint(fpOld), Created: now.Add(-96 * time.Hour), Retired: now.Add(-48 * time.Hour)},
			{Fingerprint: mustFingerprint(fpRevoked), Created: now.Add(-72 * time.Hour), Retired: now.Add(-30 * time.Minute), Revoked: true},
		}}); err != nil {
		t.Fatal(err)
	}
}

// newSigner runs 'signer generate' into a temporary file and returns the
// file and the public form it printed.
func newSigner(t *testing.T, extra ...string) (string, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "signer.key")
	out := mustRun(t, append([]string{"signer", "generate", "--out", path}, extra...)...)
	m := regexp.MustCompile(`signer:\s+(otrdesk-signer:\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("signer generate printed no public form:\n%s", out)
	}
	return path, m[1]
}

func storedKeyring(t *testing.T, cfgPath, skin string) store.Keyring {
	t.Helper()
	_, st := openStoreOf(t, cfgPath)
	defer st.Close()
	k, err := st.Keyring(skin)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSignerGenerate(t *testing.T) {
	signerWorkFactor = 10
	t.Cleanup(func() { signerWorkFactor = 0 })
	dir := t.TempDir()
	passFile := filepath.Join(dir, "pass")
	os.WriteFile(passFile, []byte("correct horse battery\n"), 0o600)
	keyFile := filepath.Join(dir, "signer.key")
	out := mustRun(t, "signer", "generate", "--out", keyFile, "--passphrase-file", passFile)
	fi, err := os.Stat(keyFile)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("signer key file mode: %v %v", fi, err)
	}
	b, _ := os.ReadFile(keyFile)
	priv, err := keyring.ReadSignerFile(b, "correct horse battery")
	if err != nil {
		t.Fatalf("the file does not open with the passphrase: %v", err)
	}
	pub := priv.Public().(ed25519.PublicKey)
	if !strings.Contains(out, keyring.FormatSigner(pub)) || !strings.Contains(out, keyring.SignerFingerprint(pub)) || !strings.Contains(out, "encrypted with the passphrase") {
		t.Fatalf("output lacks the public form or fingerprint:\n%s", out)
	}
	for _, leak := range secretForms(priv) {
		if bytes.Contains(b, leak) || strings.Contains(out, string(leak)) {
			t.Fatalf("the private key is readable in the encrypted file or the output")
		}
	}
	// Never overwritten.
	if _, errOut, code := otrdesk(t, "signer", "generate", "--out", keyFile); code != 1 || !strings.Contains(errOut, "already exists") {
		t.Fatalf("second generate: %d %q", code, errOut)
	}
	if after, _ := os.ReadFile(keyFile); !bytes.Equal(after, b) {
		t.Fatal("the existing key file changed")
	}
	// OTRDESK_PASSPHRASE works too; without any passphrase the file is plain and says so.
	t.Setenv("OTRDESK_PASSPHRASE", "from the environment")
	envFile := filepath.Join(dir, "env.key")
	mustRun(t, "signer", "generate", "--out", envFile)
	eb, _ := os.ReadFile(envFile)
	if _, err := keyring.ReadSignerFile(eb, "from the environment"); err != nil || !keyring.SignerFileEncrypted(eb) {
		t.Fatalf("OTRDESK_PASSPHRASE was not used: %v", err)
	}
	t.Setenv("OTRDESK_PASSPHRASE", "")
	plainFile := filepath.Join(dir, "plain.key")
	if out := mustRun(t, "signer", "generate", "--out", plainFile); !strings.Contains(out, "NOT encrypted") {
		t.Fatalf("an unencrypted key must be called that:\n%s", out)
	}
	if _, errOut, code := otrdesk(t, "signer", "generate"); code != 2 || !strings.Contains(errOut, "--out") {
		t.Fatalf("no --out: %d %q", code, errOut)
	}
}

// secretForms lists the ways a signer's private key could be written down.
func secretForms(priv ed25519.PrivateKey) [][]byte {
	var out [][]byte
	for _, raw := range [][]byte{priv.Seed(), priv} {
		out = append(out, raw,
			[]byte(hex.EncodeToString(raw)), []byte(strings.ToUpper(hex.EncodeToString(raw))),
			[]byte(base64.StdEncoding.EncodeToString(raw)), []byte(base64.RawStdEncoding.EncodeToString(raw)),
			[]byte(base64.URLEncoding.EncodeToString(raw)), []byte(base64.RawURLEncoding.EncodeToString(raw)))
	}
	return out
}

func TestKeyringSignAndShow(t *testing.T) {
	cfg := writeConfig(t, minimalConfig, "secret")
	addSkinWithKeys(t, cfg, "library")
	addSkinWithKeys(t, cfg, "bank")
	signerFile, public := newSigner(t)
	pub, _ := keyring.ParseSigner(public)

	out := mustRun(t, "keyring", "sign", "--skin", "library", "--signer", signerFile, "-config", cfg)
	if !strings.Contains(out, "signed the keyring of skin library") || !strings.Contains(out, "2 key(s)") {
		t.Fatalf("sign output:\n%s", out)
	}
	first := storedKeyring(t, cfg, "library")
	k, err := keyring.Verify(first.Signed, pub, "library", time.Now(), 0)
	if err != nil {
		t.Fatalf("the stored keyring does not verify with the printed signer: %v", err)
	}
	// Current then in-grace, as the skin JSON lists them; never the revoked
	// or the long-retired key.
	if got := strings.Join(k.OTRFingerprints(), ","); got != strings.ToUpper(fpCurrent+","+fpGrace) {
		t.Fatalf("keys %s", got)
	}
	if d := time.Until(k.NotAfter); d < 335*time.Hour || d > 336*time.Hour {
		t.Fatalf("default validity: not-after in %v, want 14 days", d)
	}
	if k.Serial < uint64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("serial %d is below the clock", k.Serial)
	}

	// Signing again: a higher serial, and --valid is honoured.
	mustRun(t, "keyring", "sign", "--skin", "library", "--signer", signerFile, "--valid", "1h", "-config", cfg)
	second := storedKeyring(t, cfg, "library")
	if second.Serial <= first.Serial {
		t.Fatalf("serial %d after %d", second.Serial, first.Serial)
	}
	if d := time.Until(second.NotAfter); d > time.Hour || d < 59*time.Minute {
		t.Fatalf("--valid 1h: not-after in %v", d)
	}

	out = mustRun(t, "keyring", "show", "library", "--signer", public, "-config", cfg)
	if !strings.HasPrefix(out, string(second.Signed)) || !strings.Contains(out, "expires ") || !strings.Contains(out, "signature verifies with "+public) {
		t.Fatalf("show:\n%s", out)
	}
	// The signer key file works for show too, without its passphrase.
	if out := mustRun(t, "keyring", "show", "library", "--signer", signerFile, "-config", cfg); !strings.Contains(out, "signature verifies") {
		t.Fatalf("show --signer FILE:\n%s", out)
	}
	_, other := newSigner(t)
	if _, errOut, code := otrdesk(t, "keyring", "show", "library", "--signer", other, "-config", cfg); code != 1 || !strings.Contains(errOut, "NOT signed by "+other) {
		t.Fatalf("show with another signer: %d %q", code, errOut)
	}
	if _, errOut, code := otrdesk(t, "keyring", "show", "bank", "-config", cfg); code != 1 || !strings.Contains(errOut, "keyring sign --skin bank") {
		t.Fatalf("show without a keyring: %d %q", code, errOut)
	}

	// Revocation: keys revoke, then sign, gives a keyring without the key.
	mustRun(t, "keys", "revoke", "--skin", "library", "-config", cfg)
	out, errOut, code := otrdesk(t, "keyring", "sign", "--all", "--signer", signerFile, "-config", cfg)
	if code != 0 || !strings.Contains(out, "skin bank") || !strings.Contains(out, "skin library") || !strings.Contains(errOut, "skin library has no current key") {
		t.Fatalf("sign --all after revoke: %d\n%s%s", code, out, errOut)
	}
	revoked, err := keyring.Verify(storedKeyring(t, cfg, "library").Signed, pub, "library", time.Now(), second.Serial+1)
	if err != nil || len(revoked.Keys) != 0 {
		t.Fatalf("keyring after revoke: %+v %v", revoked, err)
	}

	for _, c := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no signer", []string{"keyring", "sign", "--skin", "library"}, 2, "--signer"},
		{"skin and all", []string{"keyring", "sign", "--skin", "library", "--all", "--signer", signerFile}, 2, "not both"},
		{"unknown skin", []string{"keyring", "sign", "--skin", "nope", "--signer", signerFile}, 1, "does not exist"},
		{"not a signer file", []string{"keyring", "sign", "--skin", "library", "--signer", cfg}, 1, "not an otrdesk signer key file"},
		{"no subcommand", []string{"keyring"}, 2, "sign or show"},
	} {
		_, errOut, code := otrdesk(t, append(c.args, "-config", cfg)...)
		if code != c.code || !strings.Contains(errOut, c.stderr) || strings.Count(strings.TrimSpace(errOut), "\n") > 0 {
			t.Errorf("%s: %d %q", c.name, code, errOut)
		}
	}
}

// The keyring vouches for the OMEMO devices the skin trusts with a
// recorded identity key, beside its OTR keys; a device trusted by ID alone,
// or of an account that left the skin, cannot be in it, and keyring sign
// says which and what to run.
func TestKeyringSignOMEMODevices(t *testing.T) {
	cfg := writeConfig(t, minimalConfig, "secret")
	addSkinWithKeys(t, cfg, "library")
	const annKey = "b7a2c5e10f3d4a99123456789abcdef00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	const bobKey = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
	raw := func(h string) []byte { b, _ := hex.DecodeString(h); return b }
	_, st := openStoreOf(t, cfg)
	for _, d := range []store.TrustedDevice{
		{Skin: "library", Account: "ann@example.org", Device: 11, Fingerprint: raw(annKey)},
		{Skin: "library", Account: "ann@example.org", Device: 12},                           // by ID alone
		{Skin: "library", Account: "bob@example.org", Device: 13, Fingerprint: raw(bobKey)}, // bob is no operator of library
	} {
		if err := st.PutDevice(d); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	signerFile, public := newSigner(t)
	pub, _ := keyring.ParseSigner(public)

	out, errOut, code := otrdesk(t, "keyring", "sign", "--skin", "library", "--signer", signerFile, "-config", cfg)
	if code != 0 || !strings.Contains(out, "3 key(s)") {
		t.Fatalf("sign: %d\n%s%s", code, out, errOut)
	}
	k, err := keyring.Verify(storedKeyring(t, cfg, "library").Signed, pub, "library", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []keyring.Key{
		{Kind: "otr", Value: strings.ToUpper(fpCurrent)},
		{Kind: "otr", Value: strings.ToUpper(fpGrace)},
		{Kind: "omemo", Value: annKey},
	}
	if fmt.Sprint(k.Keys) != fmt.Sprint(want) {
		t.Fatalf("keys %v, want %v", k.Keys, want)
	}
	for _, says := range []string{
		"device 12 of ann@example.org without a recorded identity key",
		"'otrdesk keys add-device --skin library --account ann@example.org --device 12' while serve runs",
		"device 13 of bob@example.org, which is no longer its operator",
		"'otrdesk keys revoke-device --skin library --account bob@example.org --device 13'",
	} {
		if !strings.Contains(errOut, says) {
			t.Errorf("stderr does not say %q:\n%s", says, errOut)
		}
	}
	if strings.Contains(errOut, "device 11") {
		t.Errorf("stderr warns about a device the keyring lists:\n%s", errOut)
	}

	// Without OTR keys, the OMEMO keys still make a keyring worth having,
	// and the admin hears what is missing.
	mustRun(t, "keys", "revoke", "--skin", "library", "-config", cfg)
	out, errOut, code = otrdesk(t, "keyring", "sign", "--skin", "library", "--signer", signerFile, "-config", cfg)
	if code != 0 || !strings.Contains(out, "1 key(s)") || !strings.Contains(errOut, "skin library has no current OTR key") {
		t.Fatalf("sign after revoke: %d\n%s%s", code, out, errOut)
	}
}

func TestKeyringSignEncryptedSigner(t *testing.T) {
	signerWorkFactor = 10
	t.Cleanup(func() { signerWorkFactor = 0 })
	cfg := writeConfig(t, minimalConfig, "secret")
	addSkinWithKeys(t, cfg, "library")
	pass := filepath.Join(t.TempDir(), "pass")
	os.WriteFile(pass, []byte("s3cret passphrase"), 0o600)
	signerFile, _ := newSigner(t, "--passphrase-file", pass)
	if _, errOut, code := otrdesk(t, "keyring", "sign", "--skin", "library", "--signer", signerFile, "-config", cfg); code != 1 || !strings.Contains(errOut, "passphrase") {
		t.Fatalf("encrypted signer without a passphrase: %d %q", code, errOut)
	}
	wrong := filepath.Join(t.TempDir(), "wrong")
	os.WriteFile(wrong, []byte("not it"), 0o600)
	if _, errOut, code := otrdesk(t, "keyring", "sign", "--skin", "library", "--signer", signerFile, "--passphrase-file", wrong, "-config", cfg); code != 1 || !strings.Contains(errOut, "wrong passphrase") {
		t.Fatalf("wrong passphrase: %d %q", code, errOut)
	}
	_, st := openStoreOf(t, cfg)
	if _, err := st.Keyring("library"); err == nil {
		t.Fatal("a refused signer left a keyring")
	}
	st.Close()
	mustRun(t, "keyring", "sign", "--skin", "library", "--signer", signerFile, "--passphrase-file", pass, "-config", cfg)
}

func TestSnippetWithSigner(t *testing.T) {
	assets := fstest.MapFS{"widget.js": {Data: []byte("/* launcher */\n")}}
	w, err := web.LoadWidget(assets)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := writeConfig(t, minimalConfig, "x")
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	sk := store.Skin{Name: "library", Keys: []store.SkinKey{{Fingerprint: mustFingerprint(fpCurrent), Created: now}}}
	pub := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	out, err := snippetSigned(sk, cfg, now, w, pub, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`data-skin="library" data-signer="%s" async>`, keyring.FormatSigner(pub))
	if !strings.Contains(out, want) || strings.Contains(out, "data-fingerprint") || !strings.Contains(out, `integrity="`+w.SRI+`"`) || !strings.Contains(out, "/widget-"+w.Hash+".js") {
		t.Fatalf("signer snippet:\n%s", out)
	}
	both, err := snippetSigned(sk, cfg, now, w, pub, true, nil)
	if err != nil || !strings.Contains(both, `data-signer="`+keyring.FormatSigner(pub)+`"`) || !strings.Contains(both, `data-fingerprint="1921C1B4 8AC86D70 2A3ADA33 A2D7A86A 1771FC70"`) {
		t.Fatalf("signer and fingerprint snippet: %v\n%s", err, both)
	}
	// A signer pin needs no key yet (the keyring brings them); a
	// fingerprint pin does.
	if _, err := snippetSigned(store.Skin{Name: "nokey"}, cfg, now, w, pub, false, nil); err != nil {
		t.Fatalf("signer snippet of a skin without keys: %v", err)
	}
	if _, err := snippetSigned(store.Skin{Name: "nokey"}, cfg, now, w, pub, true, nil); err == nil {
		t.Fatal("--fingerprint for a skin without keys must fail")
	}
	mustRun(t, "skin", "add", "library", "--title", "Library", "--operators", "ann@example.org", "-config", cfgPath)
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"--floating", "--signer", keyring.FormatSigner(pub)}, "--floating pins nothing"},
		{[]string{"--fingerprint"}, "--fingerprint adds"},
		{[]string{"--signer", "otrdesk-signer:AAAA"}, "otrdesk-signer"},
	} {
		_, errOut, code := otrdesk(t, append([]string{"snippet", "library", "-config", cfgPath}, c.args...)...)
		if code == 0 || !strings.Contains(errOut, c.stderr) {
			t.Errorf("snippet %v: %d %q", c.args, code, errOut)
		}
	}
}

// Issue 11: the signer's private key never reaches the service. keyring
// sign runs against a real serve through a recording proxy; no request
// (method, URL, headers or body) holds the key in any encoding, and what
// the service then serves is byte for byte what was signed.
func TestKeyringSignThroughServeSendsNoPrivateKey(t *testing.T) {
	const secret = "component-secret-4410"
	srv := xmpptest.Prosody(t, xmpptest.Options{Components: map[string]string{"chat.example.org": secret}})
	token := filepath.Join(t.TempDir(), "token")
	os.WriteFile(token, []byte("admin-token-keyring-7781-padded-to-be-long-enough\n"), 0o600)
	cfg := serveConfig(t, srv, secret, "[admin]", `token_file = "`+token+`"`)
	addSkinWithKeys(t, cfg.path, "clinic")
	signerFile, _ := newSigner(t)
	b, _ := os.ReadFile(signerFile)
	priv, err := keyring.ReadSignerFile(b, "")
	if err != nil {
		t.Fatal(err)
	}

	logs, stop := startServe(t, cfg)
	defer stop()
	target, _ := url.Parse(localURL(cfg.HTTP.Listen))
	forward := httputil.NewSingleHostReverseProxy(target)
	var mu sync.Mutex
	var seen [][]byte
	var puts [][]byte
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req bytes.Buffer
		fmt.Fprintf(&req, "%s %s\n", r.Method, r.URL)
		r.Header.Write(&req)
		req.Write(body)
		mu.Lock()
		seen = append(seen, req.Bytes())
		if r.Method == "PUT" {
			puts = append(puts, body)
		}
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		forward.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	// The CLI's configuration: the same store (held by serve) and token,
	// but the HTTP address of the proxy.
	cliCfg, _ := os.ReadFile(cfg.path)
	viaProxy := filepath.Join(t.TempDir(), "cli.toml")
	os.WriteFile(viaProxy, bytes.Replace(cliCfg, []byte(cfg.HTTP.Listen), []byte(proxy.Listener.Addr().String()), 1), 0o600)

	mustRun(t, "keyring", "sign", "--skin", "clinic", "--signer", signerFile, "-config", viaProxy)
	mustRun(t, "keyring", "sign", "--all", "--signer", signerFile, "-config", viaProxy)
	mu.Lock()
	defer mu.Unlock()
	if len(puts) != 2 {
		t.Fatalf("%d keyring uploads seen, want 2 (did the CLI bypass the proxy?)", len(puts))
	}
	for _, req := range seen {
		for _, leak := range secretForms(priv) {
			if bytes.Contains(req, leak) {
				t.Fatalf("the signer's private key went to the service in:\n%s", req)
			}
		}
	}
	for _, leak := range secretForms(priv) {
		if strings.Contains(logs.String(), string(leak)) {
			t.Fatal("the signer's private key is in serve's log")
		}
	}
	resp, err := http.Get(localURL(cfg.HTTP.Listen) + "/skins/clinic.keyring")
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(served, puts[1]) {
		t.Fatalf("served\n%s\nbut uploaded\n%s", served, puts[1])
	}
	if _, err := keyring.Verify(served, priv.Public().(ed25519.PublicKey), "clinic", time.Now(), 0); err != nil {
		t.Fatalf("the served keyring does not verify: %v", err)
	}
}

// Admins are reminded by XMPP to sign a new keyring before it expires.
func TestServeKeyringReminder(t *testing.T) {
	const secret = "s"
	srv := xmpptest.Prosody(t, xmpptest.Options{Components: map[string]string{"chat.example.org": secret}})
	srv.MustRegister(t, "boss", "pw")
	boss := srv.MustDial(t, "boss", "pw", "desk")
	reminderEvery = 50 * time.Millisecond
	t.Cleanup(func() { reminderEvery = 10 * time.Minute })
	cfg := serveConfig(t, srv, secret, "[admin]", `admins = ["boss@example.org"]`)
	addSkinWithKeys(t, cfg.path, "clinic")
	addSkinWithKeys(t, cfg.path, "library")
	signerFile, _ := newSigner(t)
	// clinic's keyring ends in two days, library's in ten.
	mustRun(t, "keyring", "sign", "--skin", "clinic", "--signer", signerFile, "--valid", "48h", "-config", cfg.path)
	mustRun(t, "keyring", "sign", "--skin", "library", "--signer", signerFile, "--valid", "240h", "-config", cfg.path)
	_, stop := startServe(t, cfg)
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := boss.Next(ctx, func(s xmpptest.Stanza) bool {
		return s.Name == "message" && s.From == "chat.example.org" && strings.Contains(s.Body, "keyring of skin")
	})
	if err != nil {
		t.Fatalf("no keyring reminder: %v", err)
	}
	if !strings.Contains(st.Body, "keyring of skin clinic") || !strings.Contains(st.Body, "otrdesk keyring sign --skin clinic") {
		t.Errorf("the reminder names the wrong skin or not what to do: %q", st.Body)
	}
	// Once a day, and never for library: a ping round trip is a barrier for
	// anything already routed to boss.
	for i := 0; i < 3; i++ {
		if err := boss.Ping(ctx, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range boss.Pending() {
		if p.Name == "message" && strings.Contains(p.Body, "keyring of skin") {
			t.Fatalf("a second keyring reminder: %q", p.Body)
		}
	}
}

func TestKeyringSignersInConfig(t *testing.T) {
	signerFile, public := newSigner(t)
	_, other := newSigner(t)
	bad := writeConfig(t, minimalConfig+"[keys]\nsigners = [\"otrdesk-signer:nope\"]\n", "secret")
	if _, errOut, code := otrdesk(t, "skin", "list", "-config", bad); code != 1 || !strings.Contains(errOut, "keys.signers[0]") {
		t.Fatalf("an unreadable signer in the config: %d %q", code, errOut)
	}
	onlyOther := writeConfig(t, minimalConfig+"[keys]\nsigners = [\""+other+"\"]\n", "secret")
	addSkinWithKeys(t, onlyOther, "library")
	if _, errOut, code := otrdesk(t, "keyring", "sign", "--skin", "library", "--signer", signerFile, "-config", onlyOther); code != 1 || !strings.Contains(errOut, "not signed by any signer in keys.signers") {
		t.Fatalf("signing with a signer the service does not list: %d %q", code, errOut)
	}
	both := writeConfig(t, minimalConfig+"[keys]\nsigners = [\""+other+"\", \""+public+"\"]\n", "secret")
	addSkinWithKeys(t, both, "library")
	mustRun(t, "keyring", "sign", "--skin", "library", "--signer", signerFile, "-config", both)
}
