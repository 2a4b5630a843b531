package keyfile

// Tests against real libotr 4.1.1 through internal/libotrtest's keytool:
// libotr reads the files we write and we read the ones it writes.

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"otrdesk.im/otrdesk/internal/libotrtest"
	"otrdesk.im/otrdesk/otr"
)

// TestLibotrReadsOurKeys writes an otr.private_key holding our keys (full
// and ephemeral, for the protocol ids of Pidgin, Profanity and mcabber and
// account names that need quoting or hex) and has libotr read it.
func TestLibotrReadsOurKeys(t *testing.T) {
	full, err := otr.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	eph, err := otr.GenerateEphemeralKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	accounts := []Account{
		{"op1@example.org", "prpl-jabber", full},
		{"op1@example.org", "xmpp", eph},
		{"op1@example.org", "jabber", exampleKey()},
		{`quote"back\slash 'x@example.org`, "prpl-jabber", eph},
		{"ünï@example.org", "prpl-jabber", eph},
		{"token.only_name", "some protocol", full},
	}
	var f PrivateKeys
	for _, a := range accounts {
		if err := f.Set(a.Name, a.Protocol, a.Key); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "otr.private_key")
	if err := os.WriteFile(file, f.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	got := map[[2]string]string{}
	for _, k := range libotrtest.ReadKeys(t, file) {
		got[[2]string{k.Account, k.Protocol}] = k.Fingerprint
	}
	if len(got) != len(accounts) {
		t.Fatalf("libotr read %d keys, we wrote %d", len(got), len(accounts))
	}
	for _, a := range accounts {
		if fp := got[[2]string{a.Name, a.Protocol}]; fp != a.Key.Fingerprint().String() {
			t.Errorf("%q %q: libotr fingerprint %q, ours %q", a.Name, a.Protocol, fp, a.Key.Fingerprint())
		}
	}
	if got[[2]string{"op1@example.org", "jabber"}] != exampleFingerprint {
		t.Errorf("libotr's fingerprint of the example key is not %s", exampleFingerprint)
	}
}

// TestWeReadLibotrKeys reads keys libotr generated, checks our
// fingerprints against libotr's, checks that we write an account exactly as
// libotr does, and that replacing or adding one account keeps the others'
// text and libotr still reads the result.
func TestWeReadLibotrKeys(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "otr.private_key")
	libotrKeys := []libotrtest.Key{
		libotrtest.GenerateKey(t, file, "op1@example.org", "prpl-jabber"),
		libotrtest.GenerateKey(t, file, "op2@example.org", "xmpp"),
		libotrtest.GenerateKey(t, file, "op3@example.org", "jabber"),
	}
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	f, err := ReadPrivateKeys(bytes.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Accounts()) != 3 {
		t.Fatalf("read %d accounts, want 3", len(f.Accounts()))
	}
	for _, lk := range libotrKeys {
		k, ok := f.Key(lk.Account, lk.Protocol)
		if !ok {
			t.Fatalf("no key for %s %s", lk.Account, lk.Protocol)
		}
		if k.Fingerprint().String() != lk.Fingerprint {
			t.Errorf("%s: our fingerprint %v, libotr %s", lk.Account, k.Fingerprint(), lk.Fingerprint)
		}
	}
	// Our writer produces libotr's exact text for each account.
	for _, a := range f.accounts {
		if got := appendAccountSexp(nil, a.Name, a.Protocol, a.Key); !bytes.Equal(got, text[a.start:a.end]) {
			t.Errorf("%s: we write\n%s\nlibotr wrote\n%s", a.Name, got, text[a.start:a.end])
		}
	}
	// A file built by us from nothing is libotr's file byte for byte.
	var rebuilt PrivateKeys
	for _, a := range f.Accounts() {
		if err := rebuilt.Set(a.Name, a.Protocol, a.Key); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(rebuilt.Bytes(), text) {
		t.Errorf("rebuilt file differs from libotr's:\n%s\nlibotr:\n%s", rebuilt.Bytes(), text)
	}

	// Replace op2's key and add op4: op1's and op3's text is untouched.
	newKey, err := otr.GenerateEphemeralKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	before := map[string][]byte{}
	for _, a := range f.accounts {
		before[a.Name] = bytes.Clone(text[a.start:a.end])
	}
	if err := f.Set("op2@example.org", "xmpp", newKey); err != nil {
		t.Fatal(err)
	}
	if err := f.Set("op4@example.org", "prpl-jabber", newKey); err != nil {
		t.Fatal(err)
	}
	merged := f.Bytes()
	for _, name := range []string{"op1@example.org", "op3@example.org"} {
		if !bytes.Contains(merged, before[name]) {
			t.Errorf("the text of %s changed", name)
		}
	}
	if bytes.Contains(merged, before["op2@example.org"]) {
		t.Error("op2's old key is still in the file")
	}
	if err := os.WriteFile(file, merged, 0o600); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"op1@example.org": libotrKeys[0].Fingerprint,
		"op2@example.org": newKey.Fingerprint().String(),
		"op3@example.org": libotrKeys[2].Fingerprint,
		"op4@example.org": newKey.Fingerprint().String(),
	}
	got := libotrtest.ReadKeys(t, file)
	if len(got) != len(want) {
		t.Fatalf("libotr read %d keys from the merged file, want %d", len(got), len(want))
	}
	for _, k := range got {
		if want[k.Account] != k.Fingerprint {
			t.Errorf("merged file: libotr reads %s as %s, want %s", k.Account, k.Fingerprint, want[k.Account])
		}
	}

	// libotr adds a key to the file we merged, keeping ours.
	libotrtest.GenerateKey(t, file, "op5@example.org", "prpl-jabber")
	again, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	g, err := ParsePrivateKeys(again)
	if err != nil {
		t.Fatal(err)
	}
	if k, ok := g.Key("op2@example.org", "xmpp"); !ok || k.Fingerprint() != newKey.Fingerprint() {
		t.Error("after libotr rewrote the file, op2's key is not ours")
	}

	// Removing op3 keeps the others, and libotr agrees.
	if !g.Remove("op3@example.org", "jabber") {
		t.Fatal("Remove found no op3")
	}
	if err := os.WriteFile(file, g.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if n := len(libotrtest.ReadKeys(t, file)); n != 4 {
		t.Errorf("after removing one of 5 accounts libotr reads %d", n)
	}
}

// TestLibotrRefusesWhatWeRefuse checks a few broken files both ways: we
// must refuse whatever libotr refuses.
func TestLibotrRefusesWhatWeRefuse(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	libotrtest.GenerateKey(t, good, "op1@example.org", "prpl-jabber")
	text, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"not privkeys":    strings.Replace(string(text), "privkeys", "privkeyz", 1),
		"no protocol":     strings.Replace(string(text), "(protocol prpl-jabber)", "", 1),
		"no dsa":          strings.Replace(string(text), "(dsa", "(rsa", 1),
		"unbalanced":      strings.TrimSuffix(string(text), ")\n"),
		"not an account":  strings.Replace(string(text), "(account", "(acount", 1),
		"empty":           "",
		"pidgin accounts": "<?xml version='1.0' encoding='UTF-8' ?>\n<accounts version='1.0'/>\n",
	} {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
			if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, libErr := libotrtest.ReadKeysErr(t, file)
			_, ourErr := ParsePrivateKeys([]byte(body))
			if libErr != nil && ourErr == nil {
				t.Errorf("libotr refuses (%v), we accept", libErr)
			}
			if ourErr == nil {
				t.Errorf("we accept a broken file")
			} else if !strings.HasPrefix(ourErr.Error(), "keyfile: not a libotr otr.private_key file: ") {
				t.Errorf("error %q does not say what the input is not", ourErr)
			}
		})
	}
}

func TestInstanceTagsWithLibotr(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "otr.instance_tags")
	libotrtest.GenerateInstanceTag(t, file, "op1@example.org", "prpl-jabber")
	lib := libotrtest.GenerateInstanceTag(t, file, "op1@example.org", "xmpp")
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := ReadInstanceTags(bytes.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(ours) != len(lib) || len(ours) != 2 {
		t.Fatalf("we read %d tags, libotr %d", len(ours), len(lib))
	}
	// libotr lists in reverse file order.
	for i, l := range lib {
		o := ours[len(ours)-1-i]
		if o.Account != l.Account || o.Protocol != l.Protocol || o.Tag != l.Tag {
			t.Errorf("we read %+v, libotr %+v", o, l)
		}
	}
	var buf bytes.Buffer
	if err := WriteInstanceTags(&buf, ours); err != nil {
		t.Fatal(err)
	}
	if buf.String() != string(text) {
		t.Errorf("we write\n%q\nlibotr wrote\n%q", buf.String(), text)
	}
	ours = append(ours, InstanceTag{Account: "op2@example.org", Protocol: "jabber", Tag: 0x12345678})
	buf.Reset()
	if err := WriteInstanceTags(&buf, ours); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	lib = libotrtest.ReadInstanceTags(t, file)
	if len(lib) != 3 || lib[0].Tag != 0x12345678 || lib[0].Account != "op2@example.org" {
		t.Errorf("libotr reads our file as %+v", lib)
	}
}

func TestFingerprintFileWithLibotr(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := exampleKey(), mustEphemeral(t)
	ours := []KnownFingerprint{
		{Username: "visitor@guest.example.org", Account: "op1@example.org", Protocol: "prpl-jabber", Fingerprint: k1.Fingerprint(), Trust: "verified"},
		{Username: "visitor@guest.example.org", Account: "op1@example.org", Protocol: "prpl-jabber", Fingerprint: k2.Fingerprint()},
		{Username: "guest-abc@chat.example.org", Account: "op1@example.org", Protocol: "xmpp", Fingerprint: k2.Fingerprint(), Trust: "smp"},
	}
	var buf bytes.Buffer
	if err := WriteFingerprints(&buf, ours); err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	if err := os.WriteFile(in, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	lib := libotrtest.ReadFingerprints(t, in, out)
	if len(lib) != len(ours) {
		t.Fatalf("libotr read %d fingerprints, we wrote %d", len(lib), len(ours))
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ReadFingerprints(bytes.NewReader(written))
	if err != nil {
		t.Fatal(err)
	}
	key := func(f KnownFingerprint) string {
		return f.Username + "|" + f.Account + "|" + f.Protocol + "|" + f.Fingerprint.Hex() + "|" + f.Trust
	}
	want := map[string]bool{}
	for _, f := range ours {
		want[key(f)] = true
	}
	for _, l := range lib {
		if !want[l.Username+"|"+l.Account+"|"+l.Protocol+"|"+l.Hex+"|"+l.Trust] {
			t.Errorf("libotr read %+v, which we did not write", l)
		}
	}
	if len(back) != len(ours) {
		t.Fatalf("we read %d fingerprints from libotr's file, want %d", len(back), len(ours))
	}
	for _, f := range back {
		if !want[key(f)] {
			t.Errorf("libotr's file gave %+v", f)
		}
	}
}

// TestPrivateKeyFileEdgesWithLibotr: an empty file, and a file naming one
// account twice, where libotr uses the last key and so must Key and Set.
func TestPrivateKeyFileEdgesWithLibotr(t *testing.T) {
	dir := t.TempDir()
	var empty PrivateKeys
	file := filepath.Join(dir, "empty")
	if err := os.WriteFile(file, empty.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if ks, err := libotrtest.ReadKeysErr(t, file); err != nil || len(ks) != 0 {
		t.Fatalf("libotr on our empty file: %v, %v", ks, err)
	}

	first, second := exampleKey(), mustEphemeral(t)
	var one PrivateKeys
	one.Set("op1@example.org", "prpl-jabber", first)
	var two PrivateKeys
	two.Set("op1@example.org", "prpl-jabber", second)
	block := func(f *PrivateKeys) []byte { return f.text[f.accounts[0].start:f.accounts[0].end] }
	dup := []byte("(privkeys\n " + string(block(&one)) + "\n " + string(block(&two)) + "\n)\n")
	file = filepath.Join(dir, "dup")
	if err := os.WriteFile(file, dup, 0o600); err != nil {
		t.Fatal(err)
	}
	lib := libotrtest.ReadKeys(t, file)
	f, err := ParsePrivateKeys(dup)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := f.Key("op1@example.org", "prpl-jabber")
	if len(lib) != 2 || lib[0].Fingerprint != second.Fingerprint().String() || k.Fingerprint() != second.Fingerprint() {
		t.Fatalf("libotr lists %v first (the key it uses); we use %v", lib, k.Fingerprint())
	}
	if !f.Remove("op1@example.org", "prpl-jabber") || len(f.Accounts()) != 0 {
		t.Fatalf("Remove left %d accounts", len(f.Accounts()))
	}
}

// TestPrivateKeyFileMatchesLibotrMutations has libotr and
// ParsePrivateKeys read systematic variations of an otr.private_key
// libotr wrote — every truncation at a line end, every line deleted, every
// structural byte replaced — and requires: what we accept, libotr accepts
// with the same fingerprints; what libotr accepts, we accept too, unless
// the key itself is broken (ErrNotPrivateKeyFile naming the key), which
// libotr does not check.
func TestPrivateKeyFileMatchesLibotrMutations(t *testing.T) {
	dir := t.TempDir()
	orig := filepath.Join(dir, "orig")
	libotrtest.GenerateKey(t, orig, "op1@example.org", "prpl-jabber")
	libotrtest.GenerateKey(t, orig, "op2@example.org", "xmpp")
	text, err := os.ReadFile(orig)
	if err != nil {
		t.Fatal(err)
	}
	var variants [][]byte
	seen := map[string]bool{}
	add := func(b []byte) {
		if !seen[string(b)] {
			seen[string(b)] = true
			variants = append(variants, b)
		}
	}
	lines := bytes.SplitAfter(text, []byte("\n"))
	for i := range lines {
		add(bytes.Join(lines[:i], nil))
		add(bytes.Join(append(slices.Clone(lines[:i]), lines[i+1:]...), nil))
	}
	for i, c := range text {
		if !bytes.ContainsRune([]byte("()#\" "), rune(c)) {
			continue
		}
		for _, r := range []byte("()#\" x") {
			if r != c {
				b := bytes.Clone(text)
				b[i] = r
				add(b)
			}
		}
	}
	files := make([]string, len(variants))
	for i, v := range variants {
		files[i] = filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(files[i], v, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	libKeys, libErrs := libotrtest.ReadKeysMany(t, files)
	accepted, keyOnly := 0, 0
	for i, v := range variants {
		f, ourErr := ParsePrivateKeys(v)
		switch {
		case ourErr == nil && libErrs[i] != nil:
			t.Errorf("variant %d: we accept, libotr refuses (%v):\n%s", i, libErrs[i], v)
		case ourErr == nil:
			accepted++
			got := map[[2]string]string{}
			for _, k := range libKeys[i] {
				got[[2]string{k.Account, k.Protocol}] = k.Fingerprint
			}
			for _, a := range f.Accounts() {
				k, _ := f.Key(a.Name, a.Protocol)
				if got[[2]string{a.Name, a.Protocol}] != k.Fingerprint().String() {
					t.Errorf("variant %d: %s: libotr %q, we %v", i, a.Name, got[[2]string{a.Name, a.Protocol}], k.Fingerprint())
				}
			}
			if len(libKeys[i]) != len(f.Accounts()) {
				t.Errorf("variant %d: libotr reads %d keys, we %d", i, len(libKeys[i]), len(f.Accounts()))
			}
		case libErrs[i] == nil:
			if !strings.Contains(ourErr.Error(), "the key of") && !strings.Contains(ourErr.Error(), "the DSA key of") {
				t.Errorf("variant %d: libotr accepts, we refuse: %v\n%s", i, ourErr, v)
			} else {
				t.Logf("variant %d: libotr accepts, our key check refuses: %v", i, ourErr)
				keyOnly++
			}
		}
	}
	t.Logf("%d variants: %d accepted by both, %d refused only by our key check", len(variants), accepted, keyOnly)
	if accepted < 2 {
		t.Fatal("the variants include too few valid files to mean anything")
	}
}
