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
