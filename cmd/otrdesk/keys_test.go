package main

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"otrdesk.im/otrdesk/internal/libotrtest"
	"otrdesk.im/otrdesk/keyfile"
	"otrdesk.im/otrdesk/store"
	"otrdesk.im/otrdesk/web"
)

// mustRun runs the CLI and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := otrdesk(t, args...)
	if code != 0 {
		t.Fatalf("otrdesk %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// openStoreOf loads a config file and opens its store.
func openStoreOf(t *testing.T, cfgPath string) (*Config, *store.Store) {
	t.Helper()
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(cfg.Store.Path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, st
}

// publishedFingerprints fetches /skins/<name>.json from the real handler.
func publishedFingerprints(t *testing.T, cfgPath, skin string) []string {
	t.Helper()
	cfg, st := openStoreOf(t, cfgPath)
	defer st.Close()
	srv := httptest.NewServer(web.New(web.Config{Store: st, ComponentDomain: cfg.Component.Domain, FingerprintGrace: cfg.Keys.PreviousFingerprintGrace.Duration}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/skins/" + skin + ".json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sj web.SkinJSON
	if err := json.NewDecoder(resp.Body).Decode(&sj); err != nil {
		t.Fatal(err)
	}
	return sj.Fingerprints
}

func TestKeysGenerateForPidginReadByLibotr(t *testing.T) {
	cfg := writeConfig(t, minimalConfig, "secret")
	mustRun(t, "skin", "add", "library", "--title", "Library", "--operators", "ann@example.org,bob@example.org", "-config", cfg)
	keyFile := filepath.Join(t.TempDir(), "otr.private_key")
	out := mustRun(t, "keys", "generate", "--skin", "library", "--format", "pidgin",
		"--account", "ann@example.org", "--account", "bob@example.org", "--out", keyFile, "-config", cfg)

	fi, err := os.Stat(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	published := publishedFingerprints(t, cfg, "library")
	if len(published) != 1 || !strings.Contains(out, published[0]) {
		t.Fatalf("published %v; generate said %q", published, out)
	}
	keys := libotrtest.ReadKeys(t, keyFile)
	if len(keys) != 2 {
		t.Fatalf("libotr read %d keys, want 2: %+v", len(keys), keys)
	}
	for _, k := range keys {
		if k.Protocol != "prpl-jabber" || k.Fingerprint != published[0] {
			t.Errorf("libotr: %s/%s has %s; the skin publishes %s", k.Account, k.Protocol, k.Fingerprint, published[0])
		}
	}

	// The private key is nowhere in the store.
	text, _ := os.ReadFile(keyFile)
	f, err := keyfile.ParsePrivateKeys(text)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := f.Key("ann@example.org", "prpl-jabber")
	c, _ := loadConfig(cfg)
	db, _ := os.ReadFile(c.Store.Path)
	x := k.X.Bytes()
	if bytes.Contains(db, x) || bytes.Contains(bytes.ToUpper(db), []byte(strings.ToUpper(k.X.Text(16)))) {
		t.Fatal("the private exponent x is in the store file")
	}

	// Rotation: the old fingerprint stays published (grace), after the new.
	mustRun(t, "keys", "generate", "--skin", "library", "--format", "otrjs", "--out", filepath.Join(t.TempDir(), "k"), "-config", cfg)
	after := publishedFingerprints(t, cfg, "library")
	if len(after) != 2 || after[1] != published[0] || after[0] == published[0] {
		t.Fatalf("after rotation published %v, want [new, %s]", after, published[0])
	}
	show := mustRun(t, "skin", "show", "library", "-config", cfg)
	if !strings.Contains(show, published[0]) || !strings.Contains(show, "retired") || !strings.Contains(show, "current") {
		t.Errorf("skin show does not list the history:\n%s", show)
	}

	// Revoke drops both at once, no grace.
	mustRun(t, "keys", "revoke", "--skin", "library", "-config", cfg)
	if fps := publishedFingerprints(t, cfg, "library"); len(fps) != 0 {
		t.Fatalf("after revoke published %v", fps)
	}
}

func TestKeysGenerateErrorsChangeNothing(t *testing.T) {
	cfg := writeConfig(t, minimalConfig, "secret")
	mustRun(t, "skin", "add", "bank", "--title", "Bank", "--operators", "ann@example.org", "-config", cfg)
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"no skin":          {[]string{"--format", "pidgin", "--account", "ann@example.org"}, "--skin NAME or --all"},
		"skin and all":     {[]string{"--skin", "bank", "--all", "--format", "otrjs"}, "--skin NAME or --all"},
		"unknown skin":     {[]string{"--skin", "nope", "--format", "otrjs"}, `skin "nope"`},
		"bad format":       {[]string{"--skin", "bank", "--format", "gajim"}, "--format must be"},
		"pidgin no acct":   {[]string{"--skin", "bank", "--format", "pidgin"}, "--account"},
		"acct w/ resource": {[]string{"--skin", "bank", "--format", "pidgin", "--account", "ann@example.org/laptop"}, "not a bare JID"},
		"age no pass":      {[]string{"--skin", "bank", "--format", "age", "--account", "ann@example.org"}, "passphrase"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("OTRDESK_PASSPHRASE", "")
			out := filepath.Join(dir, strings.ReplaceAll(name, "/", "_"))
			args := append([]string{"keys", "generate", "-config", cfg, "--out", out}, tc.args...)
			_, errOut, code := otrdesk(t, args...)
			if code == 0 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q, want %q", code, errOut, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a failed generate left a key file")
			}
		})
	}
	if fps := publishedFingerprints(t, cfg, "bank"); len(fps) != 0 {
		t.Fatalf("failed generates stored fingerprints %v", fps)
	}
}

// libotrKeyFile makes an otr.private_key with libotr's own keys for other
// accounts, the file an operator's Pidgin already has.
func libotrKeyFile(t *testing.T, path string, accounts ...string) []byte {
	t.Helper()
	for _, a := range accounts {
		libotrtest.GenerateKey(t, path, a, "prpl-jabber")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeysInstallKeepsOtherAccounts(t *testing.T) {
	cfg := writeConfig(t, minimalConfig, "secret")
	mustRun(t, "skin", "add", "library", "--title", "Library", "--operators", "ann@example.org", "-config", cfg)
	key := filepath.Join(t.TempDir(), "key")
	mustRun(t, "keys", "generate", "--skin", "library", "--format", "pidgin", "--account", "ann@example.org", "--out", key, "-config", cfg)
	published := publishedFingerprints(t, cfg, "library")[0]

	purple := t.TempDir()
	target := filepath.Join(purple, "otr.private_key")
	before := libotrKeyFile(t, target, "ann@work.example", "ann@home.example")
	beforeKeys := libotrtest.ReadKeys(t, target)

	out := mustRun(t, "keys", "install", "--client", "pidgin", "--account", "ann@example.org", "--key", key, "--dir", purple)
	if !strings.Contains(out, "restart pidgin") {
		t.Errorf("install does not say to restart the client: %q", out)
	}
	after, _ := os.ReadFile(target)
	// Every other account's text is there byte for byte: the old file minus
	// its closing parenthesis is a prefix of the new one.
	body := bytes.TrimRight(before, "\n")
	body = body[:len(body)-1]
	if !bytes.HasPrefix(after, body) {
		t.Fatalf("other accounts changed:\n--- before\n%s\n--- after\n%s", before, after)
	}
	got := map[string]string{}
	for _, k := range libotrtest.ReadKeys(t, target) {
		got[k.Account] = k.Fingerprint
	}
	for _, k := range beforeKeys {
		if got[k.Account] != k.Fingerprint {
			t.Errorf("libotr: %s changed from %s to %s", k.Account, k.Fingerprint, got[k.Account])
		}
	}
	if got["ann@example.org"] != published {
		t.Errorf("libotr: installed key %q, skin publishes %q", got["ann@example.org"], published)
	}
	backups, _ := filepath.Glob(target + ".bak-*")
	if len(backups) != 1 {
		t.Fatalf("backups %v", backups)
	}
	if b, _ := os.ReadFile(backups[0]); !bytes.Equal(b, before) {
		t.Error("the backup is not the old file")
	}
	if fi, _ := os.Stat(target); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode().Perm())
	}

	// A key for another account, or no key at all: clear error, no change.
	for name, tc := range map[string]struct {
		key, account, want string
	}{
		"other account": {key, "bob@example.org", "holds keys for ann@example.org, not for bob@example.org"},
		"not a key":     {writeTemp(t, "hello, I am a shopping list\n"), "ann@example.org", "not an OTR private key"},
		"broken sexp":   {writeTemp(t, "(privkeys (account (name \"x\")"), "ann@example.org", "keyfile:"},
	} {
		_, errOut, code := otrdesk(t, "keys", "install", "--client", "pidgin", "--account", tc.account, "--key", tc.key, "--dir", purple)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d, %q, want %q", name, code, errOut, tc.want)
		}
		if now, _ := os.ReadFile(target); !bytes.Equal(now, after) {
			t.Errorf("%s: the client's file changed", name)
		}
	}
}

func writeTemp(t *testing.T, s string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestKeysAgeBundleToProfanity(t *testing.T) {
	// age's default scrypt cost is for people; the format is the same.
	ageWorkFactor = 12
	t.Cleanup(func() { ageWorkFactor = 0 })
	cfg := writeConfig(t, minimalConfig, "secret")
	mustRun(t, "skin", "add", "a", "--title", "A", "--operators", "ann@example.org", "-config", cfg)
	mustRun(t, "skin", "add", "b", "--title", "B", "--operators", "ann@example.org", "-config", cfg)
	pass := writeTemp(t, "correct horse battery staple\n")
	bundle := filepath.Join(t.TempDir(), "bundle.age")
	mustRun(t, "keys", "generate", "--all", "--format", "age", "--account", "ann@example.org", "--passphrase-file", pass, "--out", bundle, "-config", cfg)
	fa, fb := publishedFingerprints(t, cfg, "a"), publishedFingerprints(t, cfg, "b")
	if len(fa) != 1 || len(fb) != 1 || fa[0] != fb[0] {
		t.Fatalf("--all must give every skin one shared key: %v %v", fa, fb)
	}
	raw, _ := os.ReadFile(bundle)
	if bytes.Contains(raw, []byte("private-key")) {
		t.Fatal("the age bundle holds the key in the clear")
	}
	if out := mustRun(t, "keys", "fingerprint", bundle, "--passphrase-file", pass); !strings.Contains(out, fa[0]) {
		t.Fatalf("fingerprint of bundle: %q, want %s", out, fa[0])
	}
	if _, errOut, code := otrdesk(t, "keys", "fingerprint", bundle, "--passphrase-file", writeTemp(t, "wrong\n")); code == 0 || !strings.Contains(errOut, "wrong passphrase") {
		t.Fatalf("wrong passphrase: %d %q", code, errOut)
	}
	data := t.TempDir()
	mustRun(t, "keys", "install", "--client", "profanity", "--account", "ann@example.org", "--key", bundle, "--passphrase-file", pass, "--dir", data)
	target := filepath.Join(data, "otr", "ann_at_example.org", "keys.txt")
	keys := libotrtest.ReadKeys(t, target)
	if len(keys) != 1 || keys[0].Protocol != "xmpp" || keys[0].Fingerprint != fa[0] {
		t.Fatalf("libotr reads %+v from Profanity's file, want xmpp %s", keys, fa[0])
	}
}

// keys register without serve: the key's public part goes into the skin,
// whatever form the file is in; files it cannot use change nothing.
func TestKeysRegister(t *testing.T) {
	cfg := writeConfig(t, minimalConfig, "secret")
	mustRun(t, "skin", "add", "bank", "--title", "Bank", "--operators", "ann@example.org", "-config", cfg)
	dir := t.TempDir()
	lib := filepath.Join(dir, "otr.private_key")
	libotrtest.GenerateKey(t, lib, "ann@example.org", "prpl-jabber")
	keys := libotrtest.ReadKeys(t, lib)
	out := mustRun(t, "keys", "register", "--skin", "bank", "--public-key", lib, "-config", cfg)
	if fps := publishedFingerprints(t, cfg, "bank"); len(fps) != 1 || fps[0] != keys[0].Fingerprint || !strings.Contains(out, fps[0]) {
		t.Fatalf("after register: published %v, said %q, libotr %s", fps, out, keys[0].Fingerprint)
	}
	two := filepath.Join(dir, "two")
	libotrtest.GenerateKey(t, two, "ann@example.org", "prpl-jabber")
	libotrtest.GenerateKey(t, two, "bob@example.org", "prpl-jabber")
	for name, tc := range map[string]struct {
		args []string
		want string
	}{
		"two keys":      {[]string{"--skin", "bank", "--public-key", two}, "2 different keys"},
		"not a key":     {[]string{"--skin", "bank", "--public-key", writeTemp(t, "eggs\n")}, "not an OTR private key"},
		"no file":       {[]string{"--skin", "bank"}, "--public-key FILE"},
		"no skin":       {[]string{"--public-key", lib}, "--skin NAME or --all"},
		"unknown skin":  {[]string{"--skin", "nope", "--public-key", lib}, "nope"},
		"same key back": {[]string{"--skin", "bank", "--public-key", lib}, ""},
	} {
		_, errOut, code := otrdesk(t, append([]string{"keys", "register", "-config", cfg}, tc.args...)...)
		if tc.want == "" {
			if code != 0 {
				t.Errorf("%s: exit %d %q", name, code, errOut)
			}
		} else if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("%s: exit %d %q, want %q", name, code, errOut, tc.want)
		}
	}
	if fps := publishedFingerprints(t, cfg, "bank"); len(fps) != 1 || fps[0] != keys[0].Fingerprint {
		t.Fatalf("refused registrations changed the published keys: %v", fps)
	}
}
