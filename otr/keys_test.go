package otr

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"testing"
)

func TestKeyRoundTrip(t *testing.T) {
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b := k.PublicKey.Bytes()
	got, rest, ok := ParsePublicKey(append(b, 0xAB))
	if !ok || !bytes.Equal(rest, []byte{0xAB}) {
		t.Fatalf("ParsePublicKey: ok=%v rest=%x", ok, rest)
	}
	if got.Fingerprint() != k.Fingerprint() {
		t.Fatal("fingerprint changed across encode/parse")
	}
	h := sha256.Sum256([]byte("hello"))
	sig, err := k.Sign(rand.Reader, h[:])
	if err != nil {
		t.Fatal(err)
	}
	if len(sig) != 40 || !got.Verify(h[:], sig) {
		t.Fatalf("signature of %d bytes does not verify", len(sig))
	}
	h[0] ^= 1
	if got.Verify(h[:], sig) {
		t.Fatal("signature verifies for another hash")
	}
	for i := range b {
		if _, _, ok := ParsePublicKey(b[:i]); ok {
			t.Fatalf("truncated key of %d bytes parsed", i)
		}
	}
}

func TestParseFingerprint(t *testing.T) {
	for name, tc := range map[string]struct {
		in string
		ok bool
	}{
		"human":     {"1921C1B4 8AC86D70 2A3ADA33 A2D7A86A 1771FC70", true},
		"lower hex": {"1921c1b48ac86d702a3ada33a2d7a86a1771fc70", true},
		"short":     {"1921C1B4 8AC86D70", false},
		"not hex":   {"1921C1B4 8AC86D70 2A3ADA33 A2D7A86A 1771FCZZ", false},
		"empty":     {"", false},
	} {
		f, err := ParseFingerprint(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err=%v", name, err)
			continue
		}
		if tc.ok && f.String() != "1921C1B4 8AC86D70 2A3ADA33 A2D7A86A 1771FC70" {
			t.Errorf("%s: String()=%q", name, f)
		}
	}
}

func FuzzParsePublicKey(f *testing.F) {
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(k.PublicKey.Bytes())
	f.Add([]byte{0, 0, 0, 0, 0, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, _, ok := ParsePublicKey(b)
		if !ok {
			return
		}
		// Whatever parses must re-encode to a key that parses to the same
		// fingerprint (leading zero bytes in an MPI are dropped).
		k2, rest, ok := ParsePublicKey(k.Bytes())
		if !ok || len(rest) != 0 || k2.Fingerprint() != k.Fingerprint() {
			t.Fatalf("re-encoded key does not round-trip: ok=%v rest=%d", ok, len(rest))
		}
	})
}
