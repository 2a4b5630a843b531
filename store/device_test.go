package store

import (
	"bytes"
	"errors"
	"testing"
)

func TestTrustedDevices(t *testing.T) {
	s, _ := newStore(t)
	for _, name := range []string{"help", "sales"} {
		if err := s.CreateSkin(Skin{Name: name, Title: name, Policy: PolicyOpportunistic, Operators: []string{"alice@example.org"}}); err != nil {
			t.Fatal(err)
		}
	}
	fp := bytes.Repeat([]byte{0xab}, FingerprintSize)
	for _, d := range []TrustedDevice{
		{Skin: "help", Account: "alice@example.org", Device: 31415, Fingerprint: fp},
		{Skin: "help", Account: "alice@example.org", Device: 2},
		{Skin: "help", Account: "bob@example.org", Device: 5},
		{Skin: "sales", Account: "alice@example.org", Device: 31415},
		// The account is normalised: the same device as the first.
		{Skin: "help", Account: "Alice@Example.org", Device: 31415, Fingerprint: fp},
	} {
		if err := s.PutDevice(d); err != nil {
			t.Fatalf("PutDevice(%+v): %v", d, err)
		}
	}
	got, err := s.Devices("help", "alice@example.org")
	if err != nil || len(got) != 2 || got[0].Device != 2 || got[1].Device != 31415 ||
		got[0].Fingerprint != nil || !bytes.Equal(got[1].Fingerprint, fp) || !got[1].Added.Equal(t0) {
		t.Fatalf("Devices(help, alice) = %+v, %v", got, err)
	}
	if got, err := s.Devices("help", ""); err != nil || len(got) != 3 || got[2].Account != "bob@example.org" {
		t.Fatalf("Devices(help) = %+v, %v", got, err)
	}
	// "help" is a prefix of no other skin here, but a skin named "hel"
	// must not see help's devices.
	if err := s.CreateSkin(Skin{Name: "hel", Title: "x", Policy: PolicyOpportunistic}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Devices("hel", ""); err != nil || len(got) != 0 {
		t.Fatalf("Devices(hel) = %+v, %v", got, err)
	}
	if err := s.DeleteDevice("help", "alice@example.org", 31415); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDevice("help", "alice@example.org", 31415); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting twice: %v", err)
	}
	if got, _ := s.Devices("sales", "alice@example.org"); len(got) != 1 {
		t.Fatalf("revoking in one skin touched another: %+v", got)
	}
	if all, err := s.AllDevices(); err != nil || len(all) != 3 {
		t.Fatalf("AllDevices = %+v, %v", all, err)
	}
}

func TestPutDeviceRefuses(t *testing.T) {
	s, _ := newStore(t)
	if err := s.CreateSkin(Skin{Name: "help", Title: "Help", Policy: PolicyOpportunistic}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		d        TrustedDevice
		sentinel error
	}{
		{"no skin", TrustedDevice{Skin: "nope", Account: "a@example.org", Device: 1}, ErrNotFound},
		{"bad skin name", TrustedDevice{Skin: "Nope!", Account: "a@example.org", Device: 1}, ErrInvalid},
		{"full JID", TrustedDevice{Skin: "help", Account: "a@example.org/phone", Device: 1}, ErrInvalid},
		{"device 0", TrustedDevice{Skin: "help", Account: "a@example.org", Device: 0}, ErrInvalid},
		{"device 2^31", TrustedDevice{Skin: "help", Account: "a@example.org", Device: 1 << 31}, ErrInvalid},
		{"short fingerprint", TrustedDevice{Skin: "help", Account: "a@example.org", Device: 1, Fingerprint: []byte{1}}, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.PutDevice(tc.d); !errors.Is(err, tc.sentinel) {
				t.Fatalf("PutDevice = %v, want %v", err, tc.sentinel)
			}
		})
	}
	if all, _ := s.AllDevices(); len(all) != 0 {
		t.Fatalf("refused devices were stored: %+v", all)
	}
}

func FuzzDecodeDevice(f *testing.F) {
	f.Add(deviceKey("help", "a@example.org", 7), appendTime(nil, t0))
	f.Add([]byte("help\x00\x00\x00\x00\x00\x01"), []byte{1})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		d, err := decodeDevice(k, v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		if !bytes.Equal(deviceKey(d.Skin, d.Account, d.Device), k) {
			t.Fatalf("key round trip: %q -> %+v", k, d)
		}
	})
}

func TestDeleteSkinForgetsItsDevices(t *testing.T) {
	s, _ := newStore(t)
	for _, name := range []string{"help", "help-2"} {
		if err := s.CreateSkin(Skin{Name: name, Title: name, Policy: PolicyOpportunistic, Operators: []string{"alice@example.org"}}); err != nil {
			t.Fatal(err)
		}
		if err := s.PutDevice(TrustedDevice{Skin: name, Account: "alice@example.org", Device: 7}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteSkin("help"); err != nil {
		t.Fatal(err)
	}
	// Made again under the same name, the skin trusts nothing yet.
	if err := s.CreateSkin(Skin{Name: "help", Title: "again", Policy: PolicyOpportunistic, Operators: []string{"alice@example.org"}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Devices("help", ""); err != nil || len(got) != 0 {
		t.Fatalf("a re-created skin inherited trust: %+v, %v", got, err)
	}
	if got, err := s.Devices("help-2", ""); err != nil || len(got) != 1 {
		t.Fatalf("deleting help touched help-2: %+v, %v", got, err)
	}
}
