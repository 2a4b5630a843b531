//go:build !js

package keyfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age/armor"

	"otrdesk.im/otrdesk/internal/libotrtest"
	"otrdesk.im/otrdesk/otr"
)

func TestBundle(t *testing.T) {
	k := exampleKey()
	var f PrivateKeys
	f.Set("op1@example.org", "prpl-jabber", k)
	f.Set("op1@example.org", "xmpp", k)
	b := Bundle{Skins: []string{"support", "sales"}, Fingerprint: k.Fingerprint(), PrivateKeys: &f}
	var sealed bytes.Buffer
	if err := WriteBundle(&sealed, "correct horse", b, 10); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sealed.String(), "-----BEGIN AGE ENCRYPTED FILE-----") {
		t.Fatalf("not armored: %q", sealed.String()[:30])
	}
	if bytes.Contains(sealed.Bytes(), []byte("privkeys")) {
		t.Fatal("the key is in the clear")
	}
	got, err := ReadBundle(bytes.NewReader(sealed.Bytes()), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got.Skins) != "[support sales]" || got.Fingerprint != k.Fingerprint() || !bytes.Equal(got.PrivateKeys.Bytes(), f.Bytes()) {
		t.Fatalf("bundle came back as %+v", got)
	}
	if _, err := ReadBundle(bytes.NewReader(sealed.Bytes()), "wrong"); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("wrong passphrase: err=%v", err)
	}
	// A bundle asking for more scrypt work than allowed is refused before
	// any work is done.
	bin, err := io.ReadAll(armor.NewReader(bytes.NewReader(sealed.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	greedy := bytes.Replace(bin, []byte(" 10\n"), []byte(" 30\n"), 1)
	if bytes.Equal(greedy, bin) {
		t.Fatal("no work factor in the age header")
	}
	if _, err := ReadBundle(bytes.NewReader(greedy), "correct horse"); !errors.Is(err, ErrNotBundle) || !strings.Contains(err.Error(), "work factor") {
		t.Fatalf("work factor 30: err=%v", err)
	}
	if _, err := ReadBundle(strings.NewReader("(privkeys)"), "x"); !errors.Is(err, ErrNotBundle) {
		t.Fatalf("a key file: err=%v", err)
	}
	other := b
	other.Fingerprint = mustEphemeral(t).Fingerprint()
	if err := WriteBundle(new(bytes.Buffer), "x", other, 10); !errors.Is(err, ErrBundleMismatch) {
		t.Fatalf("mismatched fingerprint: err=%v", err)
	}
	if err := WriteBundle(new(bytes.Buffer), "x", b, MaxBundleWorkFactor+1); err == nil {
		t.Fatal("wrote a bundle over the work factor limit")
	}
	if err := WriteBundle(new(bytes.Buffer), "", b, 10); !errors.Is(err, ErrBundlePassphrase) {
		t.Fatalf("empty passphrase: err=%v", err)
	}
	// The otr.private_key inside is one libotr reads.
	file := filepath.Join(t.TempDir(), "otr.private_key")
	if err := os.WriteFile(file, got.PrivateKeys.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, lk := range libotrtest.ReadKeys(t, file) {
		if lk.Fingerprint != k.Fingerprint().String() {
			t.Errorf("libotr reads the bundled key of %s as %s", lk.Account, lk.Fingerprint)
		}
	}
}

func FuzzReadBundle(f *testing.F) {
	k := exampleKey()
	var pf PrivateKeys
	pf.Set("op1@example.org", "prpl-jabber", k)
	var sealed bytes.Buffer
	if err := WriteBundle(&sealed, "pass", Bundle{Skins: []string{"support"}, Fingerprint: k.Fingerprint(), PrivateKeys: &pf}, 2); err != nil {
		f.Fatal(err)
	}
	f.Add(sealed.Bytes())
	f.Add([]byte("age-encryption.org/v1\n-> scrypt AAAA 2\nxxxx\n--- abc\n"))
	// A bundle around keys libotr generated.
	file := filepath.Join(f.TempDir(), "otr.private_key")
	lk := libotrtest.GenerateKey(f, file, "op1@example.org", "prpl-jabber")
	text, err := os.ReadFile(file)
	if err != nil {
		f.Fatal(err)
	}
	lf, err := ParsePrivateKeys(text)
	if err != nil {
		f.Fatal(err)
	}
	fp, _ := otr.ParseFingerprint(lk.Fingerprint)
	sealed.Reset()
	if err := WriteBundle(&sealed, "pass", Bundle{Skins: []string{"support", "sales"}, Fingerprint: fp, PrivateKeys: lf}, 2); err != nil {
		f.Fatal(err)
	}
	f.Add(sealed.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		bundle, err := ReadBundle(bytes.NewReader(b), "pass")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "keyfile: ") {
				t.Fatalf("error %q lacks the otr: prefix", err)
			}
			return
		}
		if bundle.check() != nil {
			t.Fatal("accepted a bundle that fails check")
		}
	})
}
