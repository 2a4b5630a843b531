package store

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Every decoder of stored values must refuse damage with an error, never
// panic, and be a fixed point after one round: decode(x) = d implies
// encode(decode(encode(d))) = encode(d).

func FuzzDecodeGuest(f *testing.F) {
	f.Add(encodeGuest(demoGuest("abcdefghijklmnop")))
	f.Add(encodeGuest(Guest{RealJID: "a@b/c", Skin: "s"}))
	full := encodeGuest(demoGuest("abcdefghijklmnop"))
	f.Add(full[:len(full)-1])
	f.Add(append(bytes.Clone(full), 0))
	f.Add([]byte{})
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Add([]byte{1, 0, 0, 0, 0, 0x0f, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		g, err := decodeGuest("abcdefghijklmnop", b)
		if err != nil {
			return
		}
		e := encodeGuest(g)
		g2, err := decodeGuest("abcdefghijklmnop", e)
		if err != nil {
			t.Fatalf("re-encoded guest does not decode: %v", err)
		}
		if !bytes.Equal(encodeGuest(g2), e) {
			t.Fatalf("guest encoding is not stable: %+v vs %+v", g, g2)
		}
	})
}

func FuzzDecodeOperator(f *testing.F) {
	f.Add(encodeOperator(Operator{OnDuty: true, Nick: "Alice"}))
	f.Add(encodeOperator(Operator{}))
	f.Add([]byte{1, 2, 0})
	f.Add([]byte{1, 1, 5, 'a'})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		o, err := decodeOperator("alice@example.org", b)
		if err != nil {
			return
		}
		e := encodeOperator(o)
		o2, err := decodeOperator("alice@example.org", e)
		if err != nil || o2 != o {
			t.Fatalf("operator round trip: %+v -> %+v, %v", o, o2, err)
		}
	})
}

func FuzzDecodeChat(f *testing.F) {
	f.Add(encodeChat(ChatRecord{Start: t0, Wait: time.Second, Duration: time.Minute, Encrypted: true}))
	f.Add(encodeChat(ChatRecord{Start: time.Unix(0, 0)}))
	f.Add([]byte{1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 2})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeChat("demo", b)
		if err != nil {
			return
		}
		if r.Wait < 0 || r.Duration < 0 {
			t.Fatalf("negative duration decoded: %+v", r)
		}
		e := encodeChat(r)
		r2, err := decodeChat("demo", e)
		if err != nil || r2 != r {
			t.Fatalf("chat round trip: %+v -> %+v, %v", r, r2, err)
		}
	})
}

func FuzzDecodeSkin(f *testing.F) {
	sk := demoSkin()
	sk.Keys = []SkinKey{testKey(1, t0)}
	sk.Created, sk.Updated = t0, t0
	v, _ := encodeSkin(sk)
	f.Add(v)
	f.Add([]byte(`{"title":"x","policy":"require","created":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"keys":[{"public_key":"AAAB"}]}`))
	f.Add([]byte(`{"operator_names":{"a":"b"},"operators":[]}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(`{"created":"10000-01-01T00:00:00Z"}`))
	f.Add([]byte(`null`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		sk, err := decodeSkin("demo", b)
		if err != nil {
			return
		}
		e, err := encodeSkin(sk)
		if err != nil {
			return // e.g. a year JSON cannot hold: CreateSkin reports it
		}
		sk2, err := decodeSkin("demo", e)
		if err != nil {
			t.Fatalf("re-encoded skin does not decode: %v\n%s", err, e)
		}
		e2, err := encodeSkin(sk2)
		if err != nil || !bytes.Equal(e, e2) {
			t.Fatalf("skin encoding is not stable:\n%s\n%s", e, e2)
		}
	})
}

func FuzzDecodeVersion(f *testing.F) {
	f.Add(encodeVersion(1))
	f.Add([]byte{1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeVersion(b)
		if err != nil {
			return
		}
		if !bytes.Equal(encodeVersion(v), b) {
			t.Fatalf("version %d re-encodes differently", v)
		}
	})
}

// FuzzOpen feeds whole files to Open: anything that is not a sound store
// must be refused with an error, never a crash or a hang, and a store that
// opens must survive reads and writes.
func FuzzOpen(f *testing.F) {
	good := storeBytes(f)
	f.Add(good)
	f.Add(good[:4096])
	f.Add(good[:8192+100])
	for _, off := range []int{16, 4096 + 40, 2*4096 + 9, 2*4096 + 17, 3*4096 + 16, 4*4096 + 30} {
		d := bytes.Clone(good)
		if off < len(d) {
			d[off] ^= 0x41
		}
		f.Add(d)
	}
	f.Add([]byte("not a database"))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "f.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := Open(path)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "store: ") {
				t.Fatalf("error without prefix: %v", err)
			}
			return
		}
		defer s.Close()
		// Errors (a damaged record) are fine; crashes are not.
		s.Skins()
		s.Guests()
		s.Operators()
		s.Stats("demo", time.Time{})
		s.UpdateSkin("demo", func(sk *Skin) error { sk.Title = "changed"; return nil })
		s.PutGuest(demoGuest("abcdefghijklmnop"))
		s.RecordChat(ChatRecord{Skin: "demo", Start: t0})
		s.PurgeGuests(t0.Add(time.Hour))
		s.Backup(io.Discard)
	})
}

var skinNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// FuzzValidSkinName checks ValidSkinName against design §2's pattern.
func FuzzValidSkinName(f *testing.F) {
	for _, s := range []string{"demo", "guest-x", "guest", "-a", "a-", "A", strings.Repeat("a", 64), "", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		want := skinNameRE.MatchString(name) && !strings.HasPrefix(name, "guest-")
		if got := ValidSkinName(name) == nil; got != want {
			t.Fatalf("ValidSkinName(%q) accepts = %v, want %v", name, got, want)
		}
	})
}

// FuzzOrigin: origin never panics, and what it returns is a fixed point.
func FuzzOrigin(f *testing.F) {
	for _, s := range []string{"https://www.example.com", "HTTP://A:80", "http://[::1]:8080", "https://a/b", "https://:443", "https://a:", "http://a%20b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := origin(s)
		if err != nil {
			return
		}
		n2, err := origin(n)
		if err != nil || n2 != n {
			t.Fatalf("origin(%q) = %q, but origin(%q) = %q, %v", s, n, n, n2, err)
		}
	})
}
