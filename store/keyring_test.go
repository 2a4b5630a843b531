package store

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"otrdesk.im/otrdesk/keyring"
)

// signedKeyring signs a one-key keyring for skin with a fixed test key.
func signedKeyring(t testing.TB, skin string, serial uint64) []byte {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	b, err := keyring.Sign(keyring.Keyring{
		Skin: skin, Serial: serial, NotAfter: time.Date(2026, 12, 21, 6, 0, 0, 0, time.UTC),
		Keys: []keyring.Key{{Kind: keyring.KindOTR, Value: "1921C1B48AC86D702A3ADA33A2D7A86A1771FC70"}},
	}, priv)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKeyrings(t *testing.T) {
	s, _ := newStore(t)
	for _, n := range []string{"library", "bank"} {
		if err := s.CreateSkin(Skin{Name: n, Title: n, Policy: PolicyRequire}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := s.Keyring("library")
	wantErr(t, err, ErrNotFound, `skin "library" has no keyring`)

	k5 := signedKeyring(t, "library", 5)
	got, err := s.PutKeyring(k5)
	if err != nil || got.Serial != 5 || got.Skin != "library" || !bytes.Equal(got.Signed, k5) {
		t.Fatalf("put: %+v %v", got, err)
	}
	steps := []struct {
		name     string
		signed   []byte
		sentinel error
		substr   string
	}{
		{"same serial", signedKeyring(t, "library", 5), ErrInvalid, "serial 5 of skin library is not above the stored serial 5"},
		{"lower serial", signedKeyring(t, "library", 4), ErrInvalid, "not above the stored serial 5"},
		{"unknown skin", signedKeyring(t, "nope", 9), ErrNotFound, `skin "nope" does not exist`},
		{"not a keyring", []byte("hello\n"), ErrInvalid, "does not parse"},
		{"trailing byte", append(bytes.Clone(k5), 'x'), ErrInvalid, "does not parse"},
		{"higher serial", signedKeyring(t, "library", 6), nil, ""},
		{"another skin", signedKeyring(t, "bank", 1), nil, ""},
	}
	for _, st := range steps {
		_, err := s.PutKeyring(st.signed)
		if st.sentinel == nil {
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			continue
		}
		if !errors.Is(err, st.sentinel) {
			t.Fatalf("%s: %v, want %v", st.name, err, st.sentinel)
		}
		wantErr(t, err, st.sentinel, st.substr)
	}
	got, err = s.Keyring("library")
	if err != nil || got.Serial != 6 || !bytes.Equal(got.Signed, signedKeyring(t, "library", 6)) {
		t.Fatalf("stored keyring: %+v %v", got, err)
	}
	all, err := s.Keyrings()
	if err != nil || len(all) != 2 || all[0].Skin != "bank" || all[1].Skin != "library" {
		t.Fatalf("keyrings: %+v %v", all, err)
	}
	// The caller's slice is not bbolt's memory and not shared with the store.
	got.Signed[0] = 'X'
	again, _ := s.Keyring("library")
	if again.Signed[0] != 'o' {
		t.Fatal("changing a returned keyring changed the stored one")
	}
}

func FuzzDecodeKeyring(f *testing.F) {
	f.Add([]byte(signedKeyring(f, "library", 1)))
	f.Add([]byte("otrdesk-keyring 1\n"))
	f.Fuzz(func(t *testing.T, v []byte) {
		k, err := decodeKeyring("library", v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		if !bytes.Equal(k.Signed, v) || k.Skin != "library" {
			t.Fatalf("decoded %+v from %q", k, v)
		}
	})
}
