package keyfile

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"otrdesk.im/otrdesk/internal/libotrtest"
	"otrdesk.im/otrdesk/otr"
)

// exampleKey is a fixed key on otr's ephemeral parameters, so that
// examples have stable output; TestLibotrReadsOurKeys checks
// exampleFingerprint against libotr.
func exampleKey() *otr.PrivateKey {
	params, err := otr.GenerateEphemeralKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	x, _ := new(big.Int).SetString("1234567890ABCDEF1234567890ABCDEF12345678", 16)
	return &otr.PrivateKey{
		PublicKey: otr.PublicKey{P: params.P, Q: params.Q, G: params.G, Y: new(big.Int).Exp(params.G, x, params.P)},
		X:         x,
	}
}

func mustEphemeral(t testing.TB) *otr.PrivateKey {
	k, err := otr.GenerateEphemeralKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const exampleFingerprint = "6AE246D7 CE41A5EF 36F611E7 7CBFD12C 5C1C7955"

func TestParsePrivateKeyFile(t *testing.T) {
	k := exampleKey()
	var f PrivateKeys
	if err := f.Set("op1@example.org", "prpl-jabber", k); err != nil {
		t.Fatal(err)
	}
	good := string(f.Bytes())
	for _, tc := range []struct {
		name, text string
		why        string // part of the error; "" for success
	}{
		{"libotr layout", good, ""},
		{"one line", strings.Join(strings.Fields(good), " "), ""},
		{"CRLF", strings.ReplaceAll(good, "\n", "\r\n"), ""},
		{"name as hex", strings.Replace(good, `"op1@example.org"`, "#6F7031406578616D706C652E6F7267#", 1), ""},
		{"name verbatim", strings.Replace(good, `"op1@example.org"`, "15:op1@example.org", 1), ""},
		{"name base64", strings.Replace(good, `"op1@example.org"`, "|b3AxQGV4YW1wbGUub3Jn|", 1), ""},
		{"hex with spaces", strings.Replace(good, "(x #", "(x # 00 ", 1), ""},
		{"empty", "", "it is empty"},
		{"white space", " \n\t", "it is empty"},
		{"not privkeys", strings.Replace(good, "privkeys", "keys", 1), "does not start with (privkeys"},
		{"atom", "privkeys", "does not start with (privkeys"},
		{"instance tag file", instagWarning, "line 1: it does not start with (privkeys"},
		{"unclosed", good[:len(good)-3], "is not closed"},
		{"extra close", good + ")", "text after the end"},
		{"two expressions", good + good, "text after the end"},
		{"not an account", strings.Replace(good, "(account", "(acount", 1), "not an (account ...) list"},
		{"no name", strings.Replace(good, `(name "op1@example.org")`, "", 1), "has no (name"},
		{"no protocol", strings.Replace(good, "(protocol prpl-jabber)", "", 1), "has no (protocol"},
		{"no private key", strings.Replace(good, "private-key", "public-key", 1), "has no (private-key"},
		{"rsa", strings.Replace(good, "(dsa", "(rsa", 1), "not a (dsa ...) key"},
		{"no x", strings.Replace(good, "(x #", "(z #", 1), "has no x"},
		{"wrong y", replaceField(good, "y", "#02#"), "y is not g^x mod p"},
		{"x zero", replaceField(good, "x", "#00#"), "x is not between 0 and q"},
		{"q not dividing p-1", replaceField(good, "q", "#00FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF#"), "q does not divide p-1"},
		{"small p", replaceField(good, "p", "#00FFFF#"), "wrong size"},
		{"odd hex", strings.Replace(good, "(x #", "(x #0", 1), "bad #-delimited string"},
		{"bad escape", strings.Replace(good, `"op1@`, `"op1\q@`, 1), `unknown escape \q`},
		{"unclosed string", `(privkeys (account (name "op1`, "quoted string is not closed"},
		{"verbatim too long", "(privkeys 99:abc)", "length prefix runs past the end"},
		{"stray character", "(privkeys [x] )", "unexpected character"},
		{"deep nesting", strings.Repeat("(", 100) + strings.Repeat(")", 100), "nested more than"},
		{"pidgin accounts.xml", "<?xml version='1.0'?><accounts/>", "does not start with (privkeys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParsePrivateKeys([]byte(tc.text))
			if tc.why == "" {
				if err != nil {
					t.Fatal(err)
				}
				got, ok := f.Key("op1@example.org", "prpl-jabber")
				if !ok || got.Fingerprint() != k.Fingerprint() {
					t.Fatal("the key did not come back")
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrNotPrivateKeyFile) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("err = %q, want ErrNotPrivateKeyFile saying %q", err, tc.why)
			}
		})
	}
}

// replaceField replaces the hex value of one DSA field.
func replaceField(text, field, v string) string {
	i := strings.Index(text, "("+field+" #")
	j := strings.Index(text[i+4:], "#")
	return text[:i+3] + v + text[i+4+j+1:]
}

func TestSexpAtomEncoding(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"prpl-jabber", "prpl-jabber"},
		{"op1@example.org", `"op1@example.org"`},
		{"1abc", `"1abc"`},
		{"with space", `"with space"`},
		{`q"\`, `"q\"\\"`},
		{"tab\there", `"tab\there"`},
		{"\x00bin", "#0062696E#"},
		{"\x01", "#01#"},
		{"ü", "#C3BC#"},
		{"", `""`},
	} {
		if got := string(appendSexpAtom(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("%q: got %s, want %s", tc.in, got, tc.want)
		}
		// And it reads back.
		s, err := parseSexp([]byte("(a " + string(appendSexpAtom(nil, []byte(tc.in))) + ")"))
		if err != nil || string(s.list[1].atom) != tc.in {
			t.Errorf("%q does not read back: %v", tc.in, err)
		}
	}
}

func TestPrivateKeyFileSetRemove(t *testing.T) {
	var f PrivateKeys
	k1, k2 := exampleKey(), mustEphemeral(t)
	if got := string(f.Bytes()); got != "(privkeys\n)\n" {
		t.Fatalf("empty file %q", got)
	}
	for _, a := range []Account{{"a@x", "prpl-jabber", k1}, {"b@x", "prpl-jabber", k1}, {"a@x", "xmpp", k1}} {
		if err := f.Set(a.Name, a.Protocol, a.Key); err != nil {
			t.Fatal(err)
		}
	}
	before := f.Bytes()
	if err := f.Set("b@x", "prpl-jabber", k2); err != nil {
		t.Fatal(err)
	}
	after := f.Bytes()
	if len(f.Accounts()) != 3 {
		t.Fatalf("%d accounts after replacing one", len(f.Accounts()))
	}
	i := bytes.Index(before, []byte(`(name "b@x")`))
	if !bytes.Equal(before[:i], after[:i]) {
		t.Fatal("text before the replaced account changed")
	}
	if k, _ := f.Key("b@x", "prpl-jabber"); k.Fingerprint() != k2.Fingerprint() {
		t.Fatal("the key was not replaced")
	}
	if !f.Remove("a@x", "prpl-jabber") || f.Remove("a@x", "prpl-jabber") {
		t.Fatal("Remove reported wrongly")
	}
	if as := f.Accounts(); len(as) != 2 || as[0].Name != "b@x" || as[1].Protocol != "xmpp" {
		t.Fatalf("accounts after Remove: %+v", as)
	}
	bad := &otr.PrivateKey{PublicKey: k1.PublicKey, X: big.NewInt(5)}
	if err := f.Set("c@x", "xmpp", bad); !errors.Is(err, ErrBadPrivateKey) {
		t.Fatalf("Set with a broken key: err=%v", err)
	}
}

func TestOTRJS(t *testing.T) {
	k := exampleKey()
	s := string(MarshalOTRJS(k))
	got, err := ParseOTRJS(s[:40] + "\n" + s[40:])
	if err != nil || got.Fingerprint() != k.Fingerprint() || got.X.Cmp(k.X) != 0 {
		t.Fatalf("round trip: %v", err)
	}
	raw := k.PrivateBytes()
	for _, tc := range []struct {
		name, in, why string
	}{
		{"not base64", "not base64!", "not base64"},
		{"empty", "", "shorter than a key type"},
		{"rsa type", b64(append([]byte{0, 1}, raw[2:]...)), "key type is 0x0001"},
		{"cut", b64(raw[:len(raw)-3]), "ends before the MPI x"},
		{"trailing", b64(append(bytes.Clone(raw), 1, 2)), "2 bytes follow the key"},
		{"public only", b64(k.PublicKey.Bytes()), "ends before the MPI x"},
		{"wrong x", b64(append(append(k.PublicKey.Bytes(), 0, 0, 0, 1), 7)), "y is not g^x mod p"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseOTRJS(tc.in)
			if !errors.Is(err, ErrBadPrivateKey) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("err=%v, want ErrBadPrivateKey saying %q", err, tc.why)
			}
		})
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestReadInstanceTags(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []InstanceTag
		why        string
	}{
		{"libotr", instagWarning + "op1@example.org\tprpl-jabber\t1a2b3c4d\n", []InstanceTag{{"op1@example.org", "prpl-jabber", 0x1a2b3c4d}}, ""},
		{"CRLF and blank lines", "op1\txmpp\t00000100\r\n\r\nop2\txmpp\tFFFFFFFF\r\n", []InstanceTag{{"op1", "xmpp", 0x100}, {"op2", "xmpp", 0xffffffff}}, ""},
		{"no final newline", "op1\txmpp\t00000100", []InstanceTag{{"op1", "xmpp", 0x100}}, ""},
		{"empty", "", nil, ""},
		{"too few fields", "op1\t00000100\n", nil, "line 1 has 2 tab-separated fields"},
		{"short tag", "op1\txmpp\t100\n", nil, "not 8 hex digits"},
		{"not hex", "op1\txmpp\t0000010g\n", nil, "not 8 hex digits"},
		{"reserved tag", "#\nop1\txmpp\t000000ff\n", nil, "line 2: instance tag 000000ff is below"},
		{"a private key file", "(privkeys\n (account\n", nil, "line 1 has 1 tab-separated fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadInstanceTags(strings.NewReader(tc.text))
			if tc.why != "" {
				if !errors.Is(err, ErrNotInstanceTagFile) || !strings.Contains(err.Error(), tc.why) {
					t.Fatalf("err=%v, want ErrNotInstanceTagFile saying %q", err, tc.why)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
	if err := WriteInstanceTags(new(bytes.Buffer), []InstanceTag{{"a\tb", "xmpp", 0x100}}); err == nil {
		t.Error("wrote an account with a tab")
	}
	if err := WriteInstanceTags(new(bytes.Buffer), []InstanceTag{{"a", "xmpp", 0x10}}); err == nil {
		t.Error("wrote a reserved tag")
	}
}

func TestReadFingerprintFile(t *testing.T) {
	fp := exampleKey().Fingerprint()
	for _, tc := range []struct {
		name, text string
		n          int
		why        string
	}{
		{"libotr", "v@g\top1@e\tprpl-jabber\t" + fp.Hex() + "\tverified\nw@g\top1@e\txmpp\t" + fp.Hex() + "\t\n", 2, ""},
		{"no trust field", "v@g\top1@e\tprpl-jabber\t" + fp.Hex() + "\n", 1, ""},
		{"upper-case hex", "v@g\top1@e\tprpl-jabber\t" + strings.ToUpper(fp.Hex()) + "\tsmp\n", 1, ""},
		{"short hex", "v@g\top1@e\tprpl-jabber\tabcdef\t\n", 0, "not 40 hex digits"},
		{"human form", "v@g\top1@e\tprpl-jabber\t" + fp.String() + "\t\n", 0, "not 40 hex digits"},
		{"three fields", "v@g\top1@e\tprpl-jabber\n", 0, "line 1 has 3 tab-separated fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadFingerprints(strings.NewReader(tc.text))
			if tc.why != "" {
				if !errors.Is(err, ErrNotFingerprintFile) || !strings.Contains(err.Error(), tc.why) {
					t.Fatalf("err=%v, want ErrNotFingerprintFile saying %q", err, tc.why)
				}
				return
			}
			if err != nil || len(got) != tc.n || got[0].Fingerprint != fp {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
	var buf bytes.Buffer
	want := []KnownFingerprint{{"v@g", "op1@e", "prpl-jabber", fp, "verified"}, {"w@g", "op1@e", "xmpp", fp, ""}}
	if err := WriteFingerprints(&buf, want); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "v@g\top1@e\tprpl-jabber\t"+fp.Hex()+"\tverified\nw@g\top1@e\txmpp\t"+fp.Hex()+"\t\n" {
		t.Fatalf("wrote %q", got)
	}
}

func ExampleReadPrivateKeys() {
	// A file as Pidgin keeps it in ~/.purple/otr.private_key.
	var pidgin PrivateKeys
	pidgin.Set("op1@example.org", "prpl-jabber", exampleKey())
	text := pidgin.Bytes()

	f, err := ReadPrivateKeys(bytes.NewReader(text))
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range f.Accounts() {
		fmt.Printf("%s (%s): %v\n", a.Name, a.Protocol, a.Key.Fingerprint())
	}
	_, err = ReadPrivateKeys(strings.NewReader("op1@example.org\tprpl-jabber\t1a2b3c4d\n"))
	fmt.Println(err)
	// Output:
	// op1@example.org (prpl-jabber): 6AE246D7 CE41A5EF 36F611E7 7CBFD12C 5C1C7955
	// keyfile: not a libotr otr.private_key file: line 1: it does not start with (privkeys
}

func FuzzParsePrivateKeyFile(f *testing.F) {
	var ours PrivateKeys
	ours.Set("op1@example.org", "prpl-jabber", exampleKey())
	f.Add(ours.Bytes())
	f.Add([]byte("(privkeys)"))
	f.Add([]byte(`(privkeys (account (name "a\x41\101") (protocol 3:abc) (private-key (dsa (p |AQ==|)))))`))
	dir := f.TempDir()
	file := filepath.Join(dir, "otr.private_key")
	libotrtest.GenerateKey(f, file, "op1@example.org", "prpl-jabber")
	libotrtest.GenerateKey(f, file, "op2@example.org", "xmpp")
	text, err := os.ReadFile(file)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(text)
	f.Fuzz(func(t *testing.T, b []byte) {
		pf, err := ParsePrivateKeys(b)
		if err != nil {
			if !errors.Is(err, ErrNotPrivateKeyFile) {
				t.Fatalf("error %v is not ErrNotPrivateKeyFile", err)
			}
			return
		}
		// Whatever we accept, we can rewrite account by account, and
		// the result reads back to the same keys.
		var again PrivateKeys
		for _, a := range pf.Accounts() {
			if err := again.Set(a.Name, a.Protocol, a.Key); err != nil {
				t.Fatalf("Set(%q, %q): %v", a.Name, a.Protocol, err)
			}
		}
		back, err := ParsePrivateKeys(again.Bytes())
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v", err)
		}
		for _, a := range back.Accounts() {
			k, ok := pf.Key(a.Name, a.Protocol)
			if !ok || k.Fingerprint() != a.Key.Fingerprint() {
				t.Fatalf("account %q changed in the rewrite", a.Name)
			}
		}
	})
}

func FuzzReadInstanceTags(f *testing.F) {
	f.Add([]byte(instagWarning + "op1@example.org\tprpl-jabber\t1a2b3c4d\n"))
	file := filepath.Join(f.TempDir(), "otr.instance_tags")
	libotrtest.GenerateInstanceTag(f, file, "op1@example.org", "prpl-jabber")
	libotrtest.GenerateInstanceTag(f, file, "op1@example.org", "xmpp")
	text, err := os.ReadFile(file)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(text)
	f.Fuzz(func(t *testing.T, b []byte) {
		tags, err := ReadInstanceTags(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrNotInstanceTagFile) {
				t.Fatalf("error %v is not ErrNotInstanceTagFile", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := WriteInstanceTags(&buf, tags); err != nil {
			return // an empty account or protocol reads but cannot be written
		}
		again, err := ReadInstanceTags(&buf)
		if err != nil || fmt.Sprint(again) != fmt.Sprint(tags) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzReadFingerprintFile(f *testing.F) {
	fp := exampleKey().Fingerprint().Hex()
	f.Add([]byte("v@g\top1@e\tprpl-jabber\t" + fp + "\tverified\n"))
	dir := f.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	os.WriteFile(in, []byte("v@g\top1@e\tprpl-jabber\t"+fp+"\tsmp\nw@g\top1@e\txmpp\t"+fp+"\n"), 0o600)
	libotrtest.ReadFingerprints(f, in, out)
	text, err := os.ReadFile(out)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(text)
	f.Fuzz(func(t *testing.T, b []byte) {
		fs, err := ReadFingerprints(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrNotFingerprintFile) {
				t.Fatalf("error %v is not ErrNotFingerprintFile", err)
			}
			return
		}
		var buf bytes.Buffer
		if err := WriteFingerprints(&buf, fs); err != nil {
			return
		}
		again, err := ReadFingerprints(&buf)
		if err != nil || len(again) != len(fs) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzParseOTRJS(f *testing.F) {
	f.Add(string(MarshalOTRJS(exampleKey())))
	dir := f.TempDir()
	file := filepath.Join(dir, "otr.private_key")
	libotrtest.GenerateKey(f, file, "op1@example.org", "prpl-jabber")
	text, err := os.ReadFile(file)
	if err != nil {
		f.Fatal(err)
	}
	pf, err := ParsePrivateKeys(text)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(MarshalOTRJS(pf.Accounts()[0].Key)))
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseOTRJS(s)
		if err != nil {
			if !errors.Is(err, ErrBadPrivateKey) {
				t.Fatalf("error %v is not ErrBadPrivateKey", err)
			}
			return
		}
		if k.Check() != nil {
			t.Fatal("accepted a key that fails check")
		}
	})
}

// Read tells every form apart, and a bare public key gives nothing private.
func TestRead(t *testing.T) {
	k := mustEphemeral(t)
	var f PrivateKeys
	if err := f.Set("ann@example.org", "prpl-jabber", k); err != nil {
		t.Fatal(err)
	}
	other := mustEphemeral(t)
	var two PrivateKeys
	two.Set("ann@example.org", "prpl-jabber", k)
	two.Set("bob@example.org", "xmpp", other)
	two.Set("ann@example.org", "xmpp", k)
	var bundle bytes.Buffer
	if err := WriteBundle(&bundle, "pass", Bundle{Skins: []string{"a"}, Fingerprint: k.Fingerprint(), PrivateKeys: &f}, 10); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, pass string
		in         []byte
		want       []otr.Fingerprint
		private    bool
		err        error
	}{
		{"otr.private_key", "", f.Bytes(), []otr.Fingerprint{k.Fingerprint()}, true, nil},
		{"two keys", "", two.Bytes(), []otr.Fingerprint{k.Fingerprint(), other.Fingerprint()}, true, nil},
		{"otr.js", "", MarshalOTRJS(k), []otr.Fingerprint{k.Fingerprint()}, true, nil},
		{"bundle", "pass", bundle.Bytes(), []otr.Fingerprint{k.Fingerprint()}, true, nil},
		{"public", "", MarshalPublic(&k.PublicKey), []otr.Fingerprint{k.Fingerprint()}, false, nil},
		{"bundle without passphrase", "", bundle.Bytes(), nil, false, ErrNeedPassphrase},
		{"bundle, wrong passphrase", "nope", bundle.Bytes(), nil, false, ErrWrongPassphrase},
		{"shopping list", "", []byte("eggs\nmilk\n"), nil, false, ErrNotKeyFile},
		{"empty", "", nil, nil, false, ErrNotKeyFile},
		{"broken sexp", "", []byte("(privkeys (account"), nil, false, ErrNotPrivateKeyFile},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ks, err := Read(tc.in, tc.pass)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			var got []otr.Fingerprint
			for _, p := range ks.PublicKeys() {
				got = append(got, p.Fingerprint())
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("public keys %v, want %v", got, tc.want)
			}
			if private := ks.Key != nil || len(ks.Accounts) > 0; private != tc.private {
				t.Errorf("private part: %v, want %v", private, tc.private)
			}
		})
	}
}

func TestPublicForm(t *testing.T) {
	k := exampleKey()
	s := string(MarshalPublic(&k.PublicKey))
	if strings.Contains(s, b64(k.X.Bytes())) {
		t.Fatal("the public form holds x")
	}
	pub, err := ParsePublic(s)
	if err != nil || pub.Fingerprint() != k.Fingerprint() {
		t.Fatalf("round trip: %v", err)
	}
	for name, in := range map[string]string{
		"private form": string(MarshalOTRJS(k)),
		"not base64":   "!!",
		"cut":          b64(k.PublicKey.Bytes()[:100]),
	} {
		if _, err := ParsePublic(in); !errors.Is(err, ErrBadPublicKey) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestEncode(t *testing.T) {
	k := exampleKey()
	for _, tc := range []struct {
		o     EncodeOptions
		proto string
		err   error
	}{
		{EncodeOptions{Format: Pidgin, Accounts: []string{"ann@example.org"}}, "prpl-jabber", nil},
		{EncodeOptions{Format: Profanity, Accounts: []string{"ann@example.org"}}, "xmpp", nil},
		{EncodeOptions{Format: Mcabber, Accounts: []string{"ann@example.org"}}, "jabber", nil},
		{EncodeOptions{Format: OTRJS}, "", nil},
		{EncodeOptions{Format: Age, Accounts: []string{"ann@example.org"}, Passphrase: "p", WorkFactor: 10}, "prpl-jabber", nil},
		{EncodeOptions{Format: Age, Accounts: []string{"ann@example.org"}}, "", ErrNeedPassphrase},
		{EncodeOptions{Format: "gajim", Accounts: []string{"ann@example.org"}}, "", ErrUnknownFormat},
		{EncodeOptions{Format: Pidgin, Accounts: []string{"ann@example.org/laptop"}}, "", ErrBadAccount},
		{EncodeOptions{Format: Pidgin}, "", nil},
	} {
		b, err := Encode(k, tc.o)
		if tc.o.Format == Pidgin && len(tc.o.Accounts) == 0 {
			if err == nil {
				t.Errorf("pidgin without accounts: no error")
			}
			continue
		}
		if !errors.Is(err, tc.err) {
			t.Errorf("%+v: err %v, want %v", tc.o, err, tc.err)
			continue
		}
		if err != nil {
			continue
		}
		ks, err := Read(b, tc.o.Passphrase)
		if err != nil || len(ks.PublicKeys()) != 1 || ks.PublicKeys()[0].Fingerprint() != k.Fingerprint() {
			t.Errorf("%s: reads back as %+v, %v", tc.o.Format, ks, err)
			continue
		}
		if tc.proto != "" && (len(ks.Accounts) != 1 || ks.Accounts[0].Protocol != tc.proto || ks.Accounts[0].Name != "ann@example.org") {
			t.Errorf("%s: accounts %+v, want ann@example.org on %s", tc.o.Format, ks.Accounts, tc.proto)
		}
	}
}

func TestClientPaths(t *testing.T) {
	for _, tc := range []struct{ client, want string }{
		{Pidgin, "/d/otr.private_key"},
		{Profanity, "/d/otr/ann_at_example.org/keys.txt"},
		{Mcabber, "/d/otr/ann@example.org.key"},
	} {
		if got, err := Path(tc.client, "ann@example.org", "/d"); err != nil || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.client, got, err, tc.want)
		}
	}
	if _, err := Path("gajim", "ann@example.org", ""); !errors.Is(err, ErrUnknownClient) {
		t.Errorf("unknown client: %v", err)
	}
	for _, a := range []string{"example.org", "ann@example.org/res", "ANN@example.org ", ""} {
		if err := CheckAccount(a); !errors.Is(err, ErrBadAccount) {
			t.Errorf("account %q: %v", a, err)
		}
	}
}

func FuzzRead(f *testing.F) {
	k := exampleKey()
	var pk PrivateKeys
	pk.Set("ann@example.org", "prpl-jabber", k)
	f.Add(pk.Bytes())
	f.Add(MarshalOTRJS(k))
	f.Add(MarshalPublic(&k.PublicKey))
	f.Add([]byte("-----BEGIN AGE ENCRYPTED FILE-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ks, err := Read(b, "")
		if err != nil {
			return
		}
		for _, p := range ks.PublicKeys() {
			if _, rest, ok := otr.ParsePublicKey(p.Bytes()); !ok || len(rest) != 0 {
				t.Fatal("Read gave a public key that does not parse back")
			}
		}
	})
}
