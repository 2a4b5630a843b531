package omemo

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	mrand "math/rand/v2"
	"testing"
)

func TestPayloadLayout(t *testing.T) {
	material, iv, payload, err := sealPayload(rand.Reader, []byte("sixteen byte msg!"))
	if err != nil {
		t.Fatal(err)
	}
	if len(material) != 32 || len(iv) != 12 || len(payload) != 17 {
		t.Fatalf("key material %d, iv %d, payload %d bytes; want 32, 12, 17", len(material), len(iv), len(payload))
	}
	// Independently: plain AES-128-GCM with the tag moved from the key
	// material back behind the ciphertext.
	block, _ := aes.NewCipher(material[:16])
	gcm, _ := cipher.NewGCM(block)
	pt, err := gcm.Open(nil, iv, append(bytes.Clone(payload), material[16:]...), nil)
	if err != nil || string(pt) != "sixteen byte msg!" {
		t.Fatalf("standard GCM open: %q, %v", pt, err)
	}
	// The legacy form (tag after the ciphertext, 16-byte key, 16-byte IV).
	iv16 := make([]byte, 16)
	gcm16, _ := cipher.NewGCMWithNonceSize(block, 16)
	legacy := gcm16.Seal(nil, iv16, []byte("old"), nil)
	if pt, err := openPayload(material[:16], iv16, legacy); err != nil || string(pt) != "old" {
		t.Fatalf("legacy form: %q, %v", pt, err)
	}
	for name, f := range map[string]func() ([]byte, error){
		"tag bit":      func() ([]byte, error) { m := bytes.Clone(material); m[31] ^= 1; return openPayload(m, iv, payload) },
		"24-byte key":  func() ([]byte, error) { return openPayload(material[:24], iv, payload) },
		"7-byte iv":    func() ([]byte, error) { return openPayload(material, iv[:7], payload) },
		"legacy short": func() ([]byte, error) { return openPayload(material[:16], iv, payload[:3]) },
	} {
		if pt, err := f(); !errors.Is(err, ErrPayload) {
			t.Errorf("%s: %q, %v; want ErrPayload", name, pt, err)
		}
	}
}

func TestFingerprint(t *testing.T) {
	var f Fingerprint
	for i := range f {
		f[i] = byte(i)
	}
	const grouped = "00010203 04050607 08090a0b 0c0d0e0f 10111213 14151617 18191a1b 1c1d1e1f"
	if f.String() != grouped {
		t.Errorf("String = %q", f.String())
	}
	text, _ := f.MarshalText()
	if string(text) != "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f" {
		t.Errorf("MarshalText = %q", text)
	}
	for _, in := range []string{
		grouped,
		string(text),
		"05" + string(text),
		// Gajim: upper case, four groups to a line.
		"00010203 04050607 08090A0B 0C0D0E0F\n10111213 14151617 18191A1B 1C1D1E1F",
	} {
		got, err := ParseFingerprint(in)
		if err != nil || got != f {
			t.Errorf("ParseFingerprint(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "00", string(text) + "00", "zz" + string(text[2:]), "06" + string(text)} {
		if _, err := ParseFingerprint(bad); !errors.Is(err, ErrFingerprint) {
			t.Errorf("ParseFingerprint(%q): %v", bad, err)
		}
	}
	// A device's fingerprint is its identity key without the type byte.
	d, err := NewDevice(Options{PreKeys: 1})
	if err != nil {
		t.Fatal(err)
	}
	b := d.Bundle()
	fp := d.Fingerprint()
	if fp != Fingerprint(b.IdentityKey) || !bytes.Equal(b.IdentityKey.Wire()[1:], fp[:]) {
		t.Error("fingerprint is not the identity key")
	}
}

// The fingerprint is the X25519 public key of the identity's private key,
// computed here by the standard library from the same random bytes.
func TestFingerprintIsX25519PublicKey(t *testing.T) {
	d, err := NewDevice(Options{Rand: mrand.NewChaCha8([32]byte{9}), PreKeys: 1})
	if err != nil {
		t.Fatal(err)
	}
	stream := mrand.NewChaCha8([32]byte{9})
	var id [4]byte
	var priv [32]byte
	stream.Read(id[:]) // the device ID comes first
	stream.Read(priv[:])
	key, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		t.Fatal(err)
	}
	fp := d.Fingerprint()
	if !bytes.Equal(key.PublicKey().Bytes(), fp[:]) {
		t.Fatalf("fingerprint %v is not the X25519 public key %x", fp, key.PublicKey().Bytes())
	}
}
