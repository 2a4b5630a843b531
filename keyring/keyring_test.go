package keyring

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// testSigner is a fixed key per name, so the golden files do not change
// from run to run (Ed25519 signatures are deterministic).
func testSigner(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("otrdesk keyring test signer: " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

var (
	testNotAfter = time.Date(2026, 12, 21, 6, 0, 0, 0, time.UTC)
	testNow      = time.Date(2026, 12, 7, 6, 0, 0, 0, time.UTC)
	fpA          = "1921C1B48AC86D702A3ADA33A2D7A86A1771FC70"
	fpB          = "00112233445566778899AABBCCDDEEFF00112233"
	fpC          = "AABBCCDDEEFF00112233445566778899AABBCCDD"
)

func exampleKeyring() Keyring {
	return Keyring{Skin: "library", Serial: 1796709600, NotAfter: testNotAfter, Keys: []Key{
		{Kind: KindOTR, Value: fpA},
		{Kind: KindOTR, Value: fpB},
	}}
}

func mustSign(t testing.TB, k Keyring, priv ed25519.PrivateKey) []byte {
	t.Helper()
	b, err := Sign(k, priv)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	priv := testSigner("admin")
	for _, k := range []Keyring{
		exampleKeyring(),
		{Skin: "a", Serial: 0, NotAfter: testNotAfter},
		{Skin: "bank-2", Serial: ^uint64(0), NotAfter: testNotAfter, Keys: []Key{
			{Kind: KindOMEMO, Value: "05" + strings.Repeat("ab", 32)},
			{Kind: "future-kind", Value: "anything:printable/=+"},
			{Kind: KindOTR, Value: fpC},
		}},
	} {
		b := mustSign(t, k, priv)
		got, err := Verify(b, priv.Public().(ed25519.PublicKey), k.Skin, testNow, k.Serial)
		if err != nil {
			t.Fatalf("%s: %v\n%s", k.Skin, err, b)
		}
		if got.Skin != k.Skin || got.Serial != k.Serial || !got.NotAfter.Equal(k.NotAfter) || len(got.Keys) != len(k.Keys) {
			t.Fatalf("round trip: %+v, want %+v", got, k)
		}
		for i := range k.Keys {
			if got.Keys[i] != k.Keys[i] {
				t.Fatalf("key %d: %+v, want %+v", i, got.Keys[i], k.Keys[i])
			}
		}
	}
}

// TestGolden: the documented example is exactly what Sign makes, byte for
// byte; docs/keyring.md shows the same file.
func TestGolden(t *testing.T) {
	b := mustSign(t, exampleKeyring(), testSigner("admin"))
	path := filepath.Join("testdata", "example.keyring")
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, want) {
		t.Fatalf("Sign made\n%s\nthe golden file holds\n%s", b, want)
	}
	pub := testSigner("admin").Public().(ed25519.PublicKey)
	if _, err := Verify(want, pub, "library", testNow, 0); err != nil {
		t.Fatalf("the golden keyring does not verify: %v", err)
	}
}

// replace returns b with the first old replaced by new, failing when old
// is not there (a mutation that does not apply would make a test pass for
// nothing).
func replace(t testing.TB, b []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%q is not in %s", old, b)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

// resign signs text's body (everything before "signature ") again, so a
// change to the body is judged by the parser, not by the signature.
func resign(body []byte, priv ed25519.PrivateKey) []byte {
	out := append([]byte(nil), body...)
	out = append(out, "signature "...)
	out = base64.StdEncoding.AppendEncode(out, ed25519.Sign(priv, body))
	return append(out, '\n')
}

// vector is one case both verifiers (this package and web/src/keyring.js)
// must decide the same way.
type vector struct {
	Name      string `json:"name"`
	Text      string `json:"text"`
	Skin      string `json:"skin"`
	Now       string `json:"now"`
	MinSerial uint64 `json:"minSerial"`
	Signer    string `json:"signer"`
	Want      string `json:"want"` // "ok" or the widget's reason
	Keys      []Key  `json:"keys,omitempty"`
}

type vectorFile struct {
	Comment string   `json:"comment"`
	Vectors []vector `json:"vectors"`
}

// vectors builds every case from the fixed test keys.
func vectors(t testing.TB) []vector {
	admin, other := testSigner("admin"), testSigner("someone else")
	pub := FormatSigner(admin.Public().(ed25519.PublicKey))
	good := mustSign(t, exampleKeyring(), admin)
	body := good[:bytes.Index(good, []byte("signature "))]
	three := exampleKeyring()
	three.Keys = append(three.Keys, Key{Kind: KindOTR, Value: fpC})
	mixed := exampleKeyring()
	mixed.Keys = append(mixed.Keys, Key{Kind: KindOMEMO, Value: "05" + strings.Repeat("0f", 32)}, Key{Kind: "x-later", Value: "v2:abc"})
	empty := exampleKeyring()
	empty.Keys = nil
	one := exampleKeyring()
	one.Keys = one.Keys[:1]
	now := testNow.Format(time.RFC3339)
	v := func(name string, text []byte, want string) vector {
		return vector{Name: name, Text: string(text), Skin: "library", Now: now, MinSerial: 0, Signer: pub, Want: want}
	}
	list := []vector{
		v("good", good, "ok"),
		v("good with one key", mustSign(t, one, admin), "ok"),
		v("good with three keys", mustSign(t, three, admin), "ok"),
		v("good with omemo and an unknown kind", mustSign(t, mixed, admin), "ok"),
		v("good without keys", mustSign(t, empty, admin), "ok"),
		v("signed by another signer", mustSign(t, exampleKeyring(), other), "signature"),
		v("tampered byte in a key", replace(t, good, "1921C1B4", "1921C1B5"), "signature"),
		v("tampered serial", replace(t, good, "serial 1796709600", "serial 1796709601"), "signature"),
		v("tampered signature", replace(t, good, "signature ", "signature A"+""), "malformed"),
		v("trailing data", append(bytes.Clone(good), "key otr "+fpC+"\n"...), "malformed"),
		v("trailing newline", append(bytes.Clone(good), '\n'), "malformed"),
		v("no final newline", good[:len(good)-1], "malformed"),
		v("CRLF line ends", bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")), "malformed"),
		v("CRLF re-signed", resign(bytes.ReplaceAll(body, []byte("\n"), []byte("\r\n")), admin), "malformed"),
		v("unknown version", resign(replace(t, body, "otrdesk-keyring 1", "otrdesk-keyring 2"), admin), "malformed"),
		v("serial with a leading zero", resign(replace(t, body, "serial 1", "serial 01"), admin), "malformed"),
		v("serial over 64 bits", resign(replace(t, body, "serial 1796709600", "serial 18446744073709551616"), admin), "malformed"),
		v("lower-case otr fingerprint", resign(replace(t, body, fpA, strings.ToLower(fpA)), admin), "malformed"),
		v("grouped otr fingerprint", resign(replace(t, body, fpA, "1921C1B4 8AC86D70 2A3ADA33 A2D7A86A 1771FC70"), admin), "malformed"),
		v("not-after with an offset", resign(replace(t, body, "2026-12-21T06:00:00Z", "2026-12-21T06:00:00+00:00"), admin), "malformed"),
		v("not-after with fractions", resign(replace(t, body, "2026-12-21T06:00:00Z", "2026-12-21T06:00:00.5Z"), admin), "malformed"),
		v("duplicate key", resign(append(bytes.Clone(body), "key otr "+fpA+"\n"...), admin), "malformed"),
		v("space after the skin", resign(replace(t, body, "skin library\n", "skin library \n"), admin), "malformed"),
		v("fields out of order", resign(replace(t, replace(t, body, "skin library\n", ""), "not-after", "skin library\nnot-after"), admin), "malformed"),
		v("unpadded signature", []byte(strings.Replace(string(good), "==\n", "\n", 1)), "malformed"),
		v("empty", nil, "malformed"),
		v("binary", []byte{0, 0xff, '\n', 0x80}, "malformed"),
		v("JSON", []byte(`{"skin":"library","keys":[]}`), "malformed"),
	}
	skin := v("another skin's keyring", mustSign(t, Keyring{Skin: "bank", Serial: 5, NotAfter: testNotAfter, Keys: []Key{{KindOTR, fpA}}}, admin), "other-skin")
	expired := v("expired", good, "expired")
	expired.Now = testNotAfter.Add(time.Second).Format(time.RFC3339)
	lastSecond := v("at the not-after second", good, "ok")
	lastSecond.Now = testNotAfter.Format(time.RFC3339)
	old := v("serial lower than one seen", good, "old-serial")
	old.MinSerial = 1796709601
	same := v("the serial seen before", good, "ok")
	same.MinSerial = 1796709600
	list = append(list, skin, expired, lastSecond, old, same)
	for i := range list {
		if list[i].Want == "ok" {
			s, err := Parse([]byte(list[i].Text))
			if err != nil {
				t.Fatalf("%s: %v", list[i].Name, err)
			}
			list[i].Keys = s.Keys
		}
	}
	return list
}

func reason(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrVersion):
		return "malformed"
	case errors.Is(err, ErrSignature):
		return "signature"
	case errors.Is(err, ErrOtherSkin):
		return "other-skin"
	case errors.Is(err, ErrExpired):
		return "expired"
	case errors.Is(err, ErrOldSerial):
		return "old-serial"
	}
	return "unexpected: " + err.Error()
}

// TestVectors decides every shared case and keeps testdata/vectors.json,
// which web/test/keyring.test.mjs decides the same way, in step.
func TestVectors(t *testing.T) {
	list := vectors(t)
	for _, v := range list {
		t.Run(v.Name, func(t *testing.T) {
			signer, err := ParseSigner(v.Signer)
			if err != nil {
				t.Fatal(err)
			}
			now, _ := time.Parse(time.RFC3339, v.Now)
			_, err = Verify([]byte(v.Text), signer, v.Skin, now, v.MinSerial)
			if got := reason(err); got != v.Want {
				t.Fatalf("%s: %v, want %s", got, err, v.Want)
			}
		})
	}
	b, err := json.MarshalIndent(vectorFile{
		Comment: "Made by TestVectors in keyring_test.go (go test ./keyring -run TestVectors -update); web/test/keyring.test.mjs checks the widget decides each the same way.",
		Vectors: list,
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	path := filepath.Join("testdata", "vectors.json")
	if *update {
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want, err := os.ReadFile(path); err != nil || !bytes.Equal(b, want) {
		t.Fatalf("testdata/vectors.json is out of date (%v): run go test ./keyring -run TestVectors -update", err)
	}
}

func TestErrors(t *testing.T) {
	admin := testSigner("admin")
	pub := admin.Public().(ed25519.PublicKey)
	good := mustSign(t, exampleKeyring(), admin)
	body := good[:bytes.Index(good, []byte("signature "))]
	cases := []struct {
		name string
		text []byte
		want error
	}{
		{"bad signature", mustSign(t, exampleKeyring(), testSigner("mallory")), ErrSignature},
		{"tampered byte", replace(t, good, "library", "librarz"), ErrSignature},
		{"trailing data", append(bytes.Clone(good), 'x'), ErrMalformed},
		{"CRLF", bytes.ReplaceAll(good, []byte("\n"), []byte("\r\n")), ErrMalformed},
		{"unknown version", resign(replace(t, body, "keyring 1", "keyring 2"), admin), ErrVersion},
		{"version with a leading zero", resign(replace(t, body, "keyring 1", "keyring 01"), admin), ErrMalformed},
		{"non-canonical serial", resign(replace(t, body, "serial 1", "serial +1"), admin), ErrMalformed},
		{"too big", append(bytes.Repeat([]byte("x"), MaxSize), good...), ErrMalformed},
	}
	for _, c := range cases {
		_, err := Verify(c.text, pub, "library", testNow, 0)
		if !errors.Is(err, c.want) || !strings.HasPrefix(err.Error(), "keyring: ") {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	for name, k := range map[string]Keyring{
		"bad skin":        {Skin: "Library", NotAfter: testNotAfter},
		"guest- skin":     {Skin: "guest-x", NotAfter: testNotAfter},
		"fractional time": {Skin: "a", NotAfter: testNotAfter.Add(time.Millisecond)},
		"lower-case otr":  {Skin: "a", NotAfter: testNotAfter, Keys: []Key{{KindOTR, strings.ToLower(fpA)}}},
		"space in value":  {Skin: "a", NotAfter: testNotAfter, Keys: []Key{{"later", "a b"}}},
		"duplicate":       {Skin: "a", NotAfter: testNotAfter, Keys: []Key{{KindOTR, fpA}, {KindOTR, fpA}}},
	} {
		if _, err := Sign(k, admin); !errors.Is(err, ErrMalformed) {
			t.Errorf("Sign with %s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestSignerForms(t *testing.T) {
	pub := testSigner("admin").Public().(ed25519.PublicKey)
	s := FormatSigner(pub)
	got, err := ParseSigner(" " + s + "\n")
	if err != nil || !got.Equal(pub) {
		t.Fatalf("ParseSigner(FormatSigner) = %v, %v", got, err)
	}
	for _, bad := range []string{"", s[:len(s)-1], strings.TrimSuffix(s, "="), "otrdesk-signer:" + base64.StdEncoding.EncodeToString(make([]byte, 31)), strings.Replace(s, "otrdesk-signer:", "signer:", 1)} {
		if _, err := ParseSigner(bad); !errors.Is(err, ErrSigner) {
			t.Errorf("ParseSigner(%q) = %v", bad, err)
		}
	}
	fp := SignerFingerprint(pub)
	if len(fp) != 44 || strings.Count(fp, " ") != 4 || strings.ToUpper(fp) != fp {
		t.Errorf("fingerprint %q is not five groups of eight upper-case hex digits", fp)
	}
}

func TestSignerFile(t *testing.T) {
	priv := testSigner("admin")
	pub := priv.Public().(ed25519.PublicKey)
	plain, err := MarshalSignerFile(priv, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := MarshalSignerFile(priv, "correct horse", 10)
	if err != nil {
		t.Fatal(err)
	}
	seed := base64.StdEncoding.EncodeToString(priv.Seed())
	if bytes.Contains(enc, []byte(seed)) || bytes.Contains(enc, priv.Seed()) {
		t.Fatal("the encrypted file holds the seed in the clear")
	}
	if SignerFileEncrypted(plain) || !SignerFileEncrypted(enc) {
		t.Fatal("SignerFileEncrypted is wrong")
	}
	for name, f := range map[string][]byte{"plain": plain, "encrypted": enc} {
		if p, err := SignerFilePublic(f); err != nil || !p.Equal(pub) {
			t.Errorf("%s: public %v %v", name, p, err)
		}
		got, err := ReadSignerFile(f, "correct horse")
		if err != nil || !got.Equal(priv) {
			t.Errorf("%s: read %v", name, err)
		}
	}
	if _, err := ReadSignerFile(enc, ""); !errors.Is(err, ErrNeedPassphrase) {
		t.Errorf("no passphrase: %v", err)
	}
	if _, err := ReadSignerFile(enc, "wrong"); !errors.Is(err, ErrWrongPassphrase) {
		t.Errorf("wrong passphrase: %v", err)
	}
	other := FormatSigner(testSigner("x").Public().(ed25519.PublicKey))
	swapped := replace(t, plain, FormatSigner(pub), other)
	if _, err := ReadSignerFile(swapped, ""); !errors.Is(err, ErrSignerKeyMismatch) {
		t.Errorf("public line of another key: %v", err)
	}
	if _, err := ReadSignerFile([]byte("secret abc\n"), ""); !errors.Is(err, ErrNotSignerFile) {
		t.Errorf("not a signer file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, v := range vectors(f) {
		f.Add([]byte(v.Text))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v is neither ErrMalformed nor ErrVersion", err)
			}
			return
		}
		// One spelling: what parses re-encodes to the very bytes it came
		// from, so a reader and a signer never disagree on what is signed.
		body, err := s.Keyring.Body()
		if err != nil {
			t.Fatalf("parsed keyring does not encode: %v", err)
		}
		if !bytes.Equal(body, s.Body) {
			t.Fatalf("body re-encodes as\n%q\nnot\n%q", body, s.Body)
		}
		full := append(body, "signature "+base64.StdEncoding.EncodeToString(s.Signature)+"\n"...)
		if !bytes.Equal(full, b) {
			t.Fatalf("keyring re-encodes as\n%q\nnot\n%q", full, b)
		}
	})
}

// BenchmarkVerify is the work a reader does for a keyring: parse, check the
// signature and the fields.
func BenchmarkVerify(b *testing.B) {
	admin := testSigner("admin")
	pub := admin.Public().(ed25519.PublicKey)
	for _, n := range []int{1, 3} {
		k := exampleKeyring()
		k.Keys = []Key{{KindOTR, fpA}, {KindOTR, fpB}, {KindOTR, fpC}}[:n]
		text := mustSign(b, k, admin)
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := Verify(text, pub, "library", testNow, 0); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(text)), "keyring-bytes")
		})
	}
}
