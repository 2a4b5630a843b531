package otr

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"strings"
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

// exampleKey is a fixed key on the ephemeral parameters, so that examples
// have stable output; package keyfile's libotr tests check its fingerprint
// against libotr.
func exampleKey() *PrivateKey {
	x, _ := new(big.Int).SetString("1234567890ABCDEF1234567890ABCDEF12345678", 16)
	return &PrivateKey{
		PublicKey: PublicKey{P: ephemeralP, Q: ephemeralQ, G: ephemeralG, Y: new(big.Int).Exp(ephemeralG, x, ephemeralP)},
		X:         x,
	}
}

func mustEphemeral(t testing.TB) *PrivateKey {
	k, err := GenerateEphemeralKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestEphemeralParameters(t *testing.T) {
	one := big.NewInt(1)
	switch {
	case ephemeralP == nil || ephemeralQ == nil || ephemeralG == nil:
		t.Fatal("a parameter constant is not hex")
	case ephemeralP.BitLen() != 1024 || ephemeralQ.BitLen() != 160:
		t.Fatalf("p has %d bits, q %d; want 1024 and 160", ephemeralP.BitLen(), ephemeralQ.BitLen())
	case !ephemeralP.ProbablyPrime(64):
		t.Fatal("p is not prime")
	case !ephemeralQ.ProbablyPrime(64):
		t.Fatal("q is not prime")
	case new(big.Int).Mod(new(big.Int).Sub(ephemeralP, one), ephemeralQ).Sign() != 0:
		t.Fatal("q does not divide p-1")
	case ephemeralG.Cmp(one) <= 0 || ephemeralG.Cmp(ephemeralP) >= 0:
		t.Fatal("g is not in (1, p)")
	case new(big.Int).Exp(ephemeralG, ephemeralQ, ephemeralP).Cmp(one) != 0:
		t.Fatal("g is not in the subgroup of order q")
	}
}

func TestEphemeralKey(t *testing.T) {
	a, b := mustEphemeral(t), mustEphemeral(t)
	if err := a.Check(); err != nil {
		t.Fatal(err)
	}
	if a.X.Cmp(b.X) == 0 || a.Fingerprint() == b.Fingerprint() {
		t.Fatal("two ephemeral keys are the same")
	}
	// The key is a working DSA key.
	h := make([]byte, 32)
	sig, err := a.Sign(rand.Reader, h)
	if err != nil || !a.Verify(h, sig) || b.Verify(h, sig) {
		t.Fatalf("signature: err=%v", err)
	}
	// Mutating the returned key does not change the shared parameters.
	a.P.SetInt64(7)
	if ephemeralP.BitLen() != 1024 {
		t.Fatal("GenerateEphemeralKey shares its parameters with the caller")
	}
	if _, err := GenerateEphemeralKey(bytes.NewReader(nil)); err == nil || !strings.HasPrefix(err.Error(), "otr: ") {
		t.Fatalf("no randomness: err=%v", err)
	}
}

func ExamplePublicKey_Fingerprint() {
	k := exampleKey()
	fmt.Println(k.Fingerprint())
	fmt.Println(k.Fingerprint().Hex())
	// Output:
	// 6AE246D7 CE41A5EF 36F611E7 7CBFD12C 5C1C7955
	// 6ae246d7ce41a5ef36f611e77cbfd12c5c1c7955
}

// A fingerprint is 40 upper-case hex digits between programs and reads
// back from every form people paste.
func TestFingerprintText(t *testing.T) {
	f := exampleKey().Fingerprint()
	b, err := f.MarshalText()
	if err != nil || string(b) != "6AE246D7CE41A5EF36F611E77CBFD12C5C1C7955" {
		t.Fatalf("MarshalText %q %v", b, err)
	}
	for _, in := range []string{
		"6AE246D7CE41A5EF36F611E77CBFD12C5C1C7955",
		"6ae246d7ce41a5ef36f611e77cbfd12c5c1c7955",
		"6AE246D7 CE41A5EF 36F611E7 7CBFD12C 5C1C7955",
		"6A:E2:46:D7:CE:41:A5:EF:36:F6:11:E7:7C:BF:D1:2C:5C:1C:79:55",
	} {
		var g Fingerprint
		if err := g.UnmarshalText([]byte(in)); err != nil || g != f {
			t.Errorf("%q: %v %v", in, g, err)
		}
	}
	var g Fingerprint
	if err := g.UnmarshalText([]byte("6AE246D7")); !errors.Is(err, ErrBadFingerprint) || !g.IsZero() {
		t.Errorf("short: %v %v", g, err)
	}
}
