package store

import (
	"errors"
	"testing"
	"time"
)

func TestBlocks(t *testing.T) {
	s, _ := newStore(t)
	now := time.Unix(1800000000, 0)
	for _, b := range []Block{
		{Skin: "library", RealJID: "v1@guest.example.org/a", Until: now.Add(time.Hour)},
		{Skin: "library", RealJID: "v2@guest.example.org/b", Until: now.Add(-time.Minute)},
		{Skin: "bank", RealJID: "v1@guest.example.org/a", Until: now.Add(24 * time.Hour)},
	} {
		if err := s.PutBlock(b); err != nil {
			t.Fatal(err)
		}
	}
	for name, bad := range map[string]Block{
		"bad skin":  {Skin: "Bad Skin", RealJID: "v@x.org", Until: now},
		"bad jid":   {Skin: "bank", RealJID: "@@", Until: now},
		"no until":  {Skin: "bank", RealJID: "v@x.org"},
		"guest- pf": {Skin: "guest-x", RealJID: "v@x.org", Until: now},
	} {
		if err := s.PutBlock(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	all, err := s.Blocks()
	if err != nil || len(all) != 3 || all[0].Skin != "bank" || !all[1].Until.Equal(now.Add(time.Hour)) {
		t.Fatalf("blocks %+v %v", all, err)
	}
	if n, err := s.PurgeBlocks(now); err != nil || n != 1 {
		t.Fatalf("purged %d %v, want the one expired block", n, err)
	}
	if err := s.DeleteBlock("bank", "v1@guest.example.org/a"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBlock("bank", "nobody@x.org"); err != nil {
		t.Fatalf("lifting a missing block: %v", err)
	}
	all, _ = s.Blocks()
	if len(all) != 1 || all[0].Skin != "library" || all[0].RealJID != "v1@guest.example.org/a" {
		t.Fatalf("after purge and delete: %+v", all)
	}
}

func FuzzDecodeBlock(f *testing.F) {
	f.Add([]byte("library\x00v@guest.example.org/r"), appendTime(nil, time.Unix(1800000000, 5)))
	f.Add([]byte("x"), []byte{})
	f.Add([]byte("a\x00b"), []byte{0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, k, v []byte) {
		b, err := decodeBlock(k, v)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		// What decodes re-encodes to the same key and an equal time.
		if string(blockKey(b.Skin, b.RealJID)) != string(k) {
			t.Fatalf("key %q re-encodes as %q", k, blockKey(b.Skin, b.RealJID))
		}
		b2, err := decodeBlock(k, appendTime(nil, b.Until))
		if err != nil || !b2.Until.Equal(b.Until) {
			t.Fatalf("time does not round-trip: %v %v", b2.Until, err)
		}
	})
}
