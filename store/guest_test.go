package store

import (
	"bytes"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func demoGuest(id string) Guest {
	return Guest{
		ID:         id,
		RealJID:    "k3j2x@guest.example.org/abc",
		Skin:       "demo",
		Operator:   "alice@example.org/pidgin",
		State:      "assigned",
		Created:    t0,
		LastActive: t0.Add(5 * time.Minute),
		Queued:     t0.Add(time.Second),
		Assigned:   t0.Add(90*time.Second + 123456789),
	}
}

func TestNewGuestID(t *testing.T) {
	re := regexp.MustCompile(`^[a-z2-7]{16}$`)
	seen := make(map[string]bool)
	for i := 0; i < 1000; i++ {
		id := NewGuestID()
		if !re.MatchString(id) {
			t.Fatalf("NewGuestID() = %q, want 16 characters of [a-z2-7]", id)
		}
		if err := validGuestID(id); err != nil {
			t.Fatalf("NewGuestID() = %q, which PutGuest refuses: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("NewGuestID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestGuestCRUD(t *testing.T) {
	s, clk := newStore(t)
	id := NewGuestID()
	if _, err := s.Guest(id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Guest before put: %v, want ErrNotFound", err)
	}
	g := demoGuest(id)
	if err := s.PutGuest(g); err != nil {
		t.Fatalf("PutGuest: %v", err)
	}
	got, err := s.Guest(id)
	if err != nil || !reflect.DeepEqual(got, g) {
		t.Fatalf("Guest = %+v, %v\nwant %+v", got, err, g)
	}
	got, err = s.GuestByRealJID("demo", g.RealJID)
	if err != nil || !reflect.DeepEqual(got, g) {
		t.Fatalf("GuestByRealJID = %+v, %v\nwant %+v", got, err, g)
	}
	if _, err := s.GuestByRealJID("other", g.RealJID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GuestByRealJID in another skin: %v, want ErrNotFound", err)
	}
	if _, err := s.GuestByRealJID("demo", "k3j2x@guest.example.org/other"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("GuestByRealJID with another resource: %v, want ErrNotFound", err)
	}

	// Created is filled in when zero; times come back in UTC.
	clk.advance(time.Hour)
	id2 := NewGuestID()
	g2 := Guest{ID: id2, RealJID: "Q@Guest.Example.org/x", Skin: "demo", State: "queued",
		LastActive: t0.In(time.FixedZone("X", 3600))}
	if err := s.PutGuest(g2); err != nil {
		t.Fatalf("PutGuest g2: %v", err)
	}
	got2, err := s.Guest(id2)
	if err != nil {
		t.Fatal(err)
	}
	if !got2.Created.Equal(t0.Add(time.Hour)) || got2.LastActive.Location() != time.UTC || !got2.LastActive.Equal(t0) {
		t.Fatalf("Guest g2 times = %v, %v", got2.Created, got2.LastActive)
	}
	if got2.RealJID != "q@guest.example.org/x" {
		t.Fatalf("RealJID stored as %q, want the normalised q@guest.example.org/x", got2.RealJID)
	}
	if _, err := s.GuestByRealJID("demo", "Q@GUEST.example.org/x"); err != nil {
		t.Fatalf("GuestByRealJID with other case: %v", err)
	}
	if !got2.Queued.IsZero() || !got2.Assigned.IsZero() || got2.Operator != "" {
		t.Fatalf("zero fields came back set: %+v", got2)
	}

	all, err := s.Guests()
	if err != nil || len(all) != 2 {
		t.Fatalf("Guests = %d guests, %v; want 2", len(all), err)
	}
	if n, err := s.GuestCount("demo"); n != 2 || err != nil {
		t.Fatalf("GuestCount(demo) = %d, %v; want 2", n, err)
	}
	if n, err := s.GuestCount("dem"); n != 0 || err != nil {
		t.Fatalf("GuestCount(dem) = %d, %v; want 0", n, err)
	}

	if err := s.DeleteGuest(id); err != nil {
		t.Fatalf("DeleteGuest: %v", err)
	}
	wantErr(t, s.DeleteGuest(id), ErrNotFound, id)
	if _, err := s.GuestByRealJID("demo", g.RealJID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("index entry left after delete: %v", err)
	}
	checkIndex(t, s)
}

// checkIndex asserts that guestidx holds exactly one entry per guest,
// pointing at it.
func checkIndex(t *testing.T, s *Store) {
	t.Helper()
	guests, err := s.Guests()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range guests {
		got, err := s.GuestByRealJID(g.Skin, g.RealJID)
		if err != nil || got.ID != g.ID {
			t.Fatalf("index for %s/%s gives %q, %v; want %s", g.Skin, g.RealJID, got.ID, err, g.ID)
		}
	}
	n, err := s.indexLen()
	if err != nil {
		t.Fatal(err)
	}
	if n != len(guests) {
		t.Fatalf("index has %d entries for %d guests", n, len(guests))
	}
}

func TestGuestIndexOnUpdate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Guest)
	}{
		{"state only", func(g *Guest) { g.State = "queued"; g.Operator = "" }},
		{"new skin", func(g *Guest) { g.Skin = "sales" }},
		{"new real JID", func(g *Guest) { g.RealJID = "other@guest.example.org/r" }},
		{"both", func(g *Guest) { g.Skin = "sales"; g.RealJID = "other@guest.example.org/r" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			g := demoGuest(NewGuestID())
			if err := s.PutGuest(g); err != nil {
				t.Fatal(err)
			}
			old := g
			tt.change(&g)
			if err := s.PutGuest(g); err != nil {
				t.Fatalf("PutGuest update: %v", err)
			}
			got, err := s.GuestByRealJID(g.Skin, g.RealJID)
			if err != nil || got.ID != g.ID || got.State != g.State {
				t.Fatalf("GuestByRealJID after update = %+v, %v", got, err)
			}
			if old.Skin != g.Skin || old.RealJID != g.RealJID {
				if _, err := s.GuestByRealJID(old.Skin, old.RealJID); !errors.Is(err, ErrNotFound) {
					t.Fatalf("old index entry survives the update: %v", err)
				}
			}
			checkIndex(t, s)
		})
	}
}

func TestGuestSameVisitorTwice(t *testing.T) {
	s, _ := newStore(t)
	a := demoGuest(NewGuestID())
	if err := s.PutGuest(a); err != nil {
		t.Fatal(err)
	}
	b := demoGuest(NewGuestID())
	wantErr(t, s.PutGuest(b), ErrExists, "reuse it or delete it first")
	if _, err := s.Guest(b.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused guest was stored: %v", err)
	}
	// The same visitor in another skin is another guest.
	b.Skin = "sales"
	if err := s.PutGuest(b); err != nil {
		t.Fatalf("same visitor, other skin: %v", err)
	}
	// Moving b onto a's (skin, JID) is refused too, and b stays as it was.
	b2 := b
	b2.Skin = "demo"
	wantErr(t, s.PutGuest(b2), ErrExists, a.ID)
	if got, _ := s.Guest(b.ID); got.Skin != "sales" {
		t.Fatalf("refused update changed the guest: %+v", got)
	}
	checkIndex(t, s)
}

func TestGuestValidation(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Guest)
		err    string
	}{
		{"valid", func(*Guest) {}, ""},
		{"13 characters", func(g *Guest) { g.ID = "abcdefghijk23" }, ""},
		{"queued without operator", func(g *Guest) { g.Operator = ""; g.State = "queued" }, ""},
		{"empty state", func(g *Guest) { g.State = "" }, ""},
		{"no times", func(g *Guest) {
			g.Created, g.LastActive, g.Queued, g.Assigned = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		}, ""},
		{"empty id", func(g *Guest) { g.ID = "" }, "use NewGuestID"},
		{"short id", func(g *Guest) { g.ID = "abcdefghijk2" }, "12 characters"},
		{"upper-case id", func(g *Guest) { g.ID = "ABCDEFGHIJKLMNOP" }, "'A'"},
		{"id with 1", func(g *Guest) { g.ID = "abcdefghijklmno1" }, "'1'"},
		{"id too long", func(g *Guest) { g.ID = strings.Repeat("a", 65) }, "65 characters"},
		{"no skin", func(g *Guest) { g.Skin = "" }, "skin name is empty"},
		{"bad skin", func(g *Guest) { g.Skin = "Demo" }, "'D'"},
		{"no real JID", func(g *Guest) { g.RealJID = "" }, "set it to the visitor's JID"},
		{"bad real JID", func(g *Guest) { g.RealJID = "a@b@c" }, "not a JID"},
		{"bad operator", func(g *Guest) { g.Operator = "@x" }, "operator"},
		{"state with space", func(g *Guest) { g.State = "on hold" }, "' '"},
		{"long state", func(g *Guest) { g.State = strings.Repeat("a", 33) }, "longer than 32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			g := demoGuest(NewGuestID())
			tt.change(&g)
			err := s.PutGuest(g)
			if tt.err == "" {
				wantErr(t, err, nil, "")
				return
			}
			wantErr(t, err, ErrInvalid, tt.err)
			if all, _ := s.Guests(); len(all) != 0 {
				t.Fatalf("an invalid guest was stored: %+v", all)
			}
		})
	}
}

func TestPurgeGuests(t *testing.T) {
	s, _ := newStore(t)
	ages := map[string]time.Duration{ // LastActive before the cut-off
		"old-a": 3 * time.Hour, "old-b": time.Hour + time.Nanosecond, "edge": time.Hour,
		"new-a": 0, "never": -1,
	}
	ids := make(map[string]string)
	i := 0
	for name, age := range ages {
		g := demoGuest(NewGuestID())
		g.RealJID = name + "@guest.example.org/r"
		g.Skin = []string{"demo", "sales"}[i%2]
		i++
		g.LastActive = t0.Add(-age)
		if age < 0 {
			g.LastActive = time.Time{}
		}
		if err := s.PutGuest(g); err != nil {
			t.Fatal(err)
		}
		ids[name] = g.ID
	}
	n, err := s.PurgeGuests(t0.Add(-time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("PurgeGuests = %d, %v; want 3 (old-a, old-b, never)", n, err)
	}
	for name, id := range ids {
		_, err := s.Guest(id)
		gone := errors.Is(err, ErrNotFound)
		if wantGone := name == "old-a" || name == "old-b" || name == "never"; gone != wantGone {
			t.Errorf("guest %s: gone = %v, want %v (%v)", name, gone, wantGone, err)
		}
	}
	checkIndex(t, s)
	if n, err := s.PurgeGuests(t0.Add(-time.Hour)); n != 0 || err != nil {
		t.Fatalf("second PurgeGuests = %d, %v; want 0", n, err)
	}
}

// PutGuests writes a batch in one transaction; a guest PutGuest would
// refuse is left out with its error, the others are written.
func TestPutGuests(t *testing.T) {
	s, _ := newStore(t)
	a, b := demoGuest(NewGuestID()), demoGuest(NewGuestID())
	b.RealJID = "other@guest.example.org/r"
	dup := demoGuest(NewGuestID()) // a's visitor and skin again
	bad := demoGuest("short")
	a2 := a
	a2.State = "queued" // the later change of a in the same batch wins
	err := s.PutGuests([]Guest{a, b, dup, bad, a2})
	if !errors.Is(err, ErrExists) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("PutGuests: %v, want ErrExists and ErrInvalid for the two bad guests", err)
	}
	for _, want := range []Guest{a2, b} {
		got, err := s.Guest(want.ID)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("Guest %s = %+v, %v\nwant %+v", want.ID, got, err, want)
		}
	}
	for _, id := range []string{dup.ID, bad.ID} {
		if _, err := s.Guest(id); !errors.Is(err, ErrNotFound) {
			t.Fatalf("refused guest %s stored: %v", id, err)
		}
	}
	checkIndex(t, s)
	if err := s.PutGuests(nil); err != nil {
		t.Fatalf("an empty batch: %v", err)
	}
}

func hashOf(b byte) []byte { return bytes.Repeat([]byte{b}, ResumeHashSize) }

// The resumption index follows the guest: found by hash, moved when the
// hash changes (a secret is single-use), kept when the visitor's JID
// moves, gone with the guest.
func TestGuestByResume(t *testing.T) {
	s, clk := newStore(t)
	g := demoGuest(NewGuestID())
	g.Resume = hashOf(1)
	if err := s.PutGuest(g); err != nil {
		t.Fatal(err)
	}
	got, err := s.GuestByResume(hashOf(1))
	if err != nil || !reflect.DeepEqual(got, g) {
		t.Fatalf("GuestByResume = %+v, %v\nwant %+v", got, err, g)
	}
	for name, h := range map[string][]byte{"unknown": hashOf(9), "short": []byte("x"), "nil": nil} {
		if _, err := s.GuestByResume(h); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s hash: %v, want ErrNotFound", name, err)
		}
	}
	// A new secret: the old hash finds nothing any more.
	g.Resume = hashOf(2)
	g.RealJID = "new@guest.example.org/r2"
	if err := s.PutGuest(g); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GuestByResume(hashOf(1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a replaced secret still resumes: %v", err)
	}
	if got, err := s.GuestByResume(hashOf(2)); err != nil || got.RealJID != g.RealJID {
		t.Fatalf("after the move: %+v %v", got, err)
	}
	// Another guest cannot take the same hash.
	other := demoGuest(NewGuestID())
	other.RealJID, other.Resume = "o@guest.example.org/x", hashOf(2)
	wantErr(t, s.PutGuest(other), ErrExists, "resumption hash")
	// Dropping the hash (an ended chat) drops the index entry.
	g.Resume = nil
	if err := s.PutGuest(g); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GuestByResume(hashOf(2)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a guest without a hash is still indexed: %v", err)
	}
	// Deleting and purging take the entry with them.
	g.Resume = hashOf(3)
	if err := s.PutGuest(g); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteGuest(g.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GuestByResume(hashOf(3)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	g.Resume = hashOf(4)
	if err := s.PutGuest(g); err != nil {
		t.Fatal(err)
	}
	clk.advance(time.Hour)
	if n, err := s.PurgeGuests(clk.now()); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	if _, err := s.GuestByResume(hashOf(4)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after purge: %v", err)
	}
	// Only SHA-256 sized hashes are stored.
	g.Resume = []byte("too short")
	wantErr(t, s.PutGuest(g), ErrInvalid, "resumption hash")
}

// A record with a resumption hash is version 2 and decodes to itself; one
// without stays version 1, byte for byte what older otrdesk wrote.
func TestGuestRecordVersions(t *testing.T) {
	g := demoGuest("abcdefghijklmnop")
	v1 := encodeGuest(g)
	if v1[0] != guestRecordV1 {
		t.Fatalf("a guest without a hash encodes as version %d", v1[0])
	}
	g.Resume = hashOf(7)
	v2 := encodeGuest(g)
	if v2[0] != guestRecordV2 || !bytes.HasPrefix(v2[1:], v1[1:]) {
		t.Fatalf("version 2 is not version 1 plus the hash")
	}
	got, err := decodeGuest(g.ID, v2)
	if err != nil || !reflect.DeepEqual(got, g) {
		t.Fatalf("decode v2 = %+v, %v", got, err)
	}
	bad := append(bytes.Clone(v1), 0)
	bad[0] = guestRecordV2
	if _, err := decodeGuest(g.ID, bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a version 2 record with an empty hash: %v", err)
	}
}

// Only guests that never reached an operator go early, and not those the
// caller keeps (chats still active).
func TestPurgeUnassignedGuests(t *testing.T) {
	s, clk := newStore(t)
	mk := func(jid string, assigned bool, active time.Time) Guest {
		g := demoGuest(NewGuestID())
		g.RealJID, g.LastActive = jid, active
		if !assigned {
			g.Assigned, g.Operator, g.State = time.Time{}, "", "queued"
		}
		g.Resume = hashOf(byte(len(jid)))
		if err := s.PutGuest(g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	old := clk.now().Add(-2 * time.Hour)
	flood := mk("a@guest.example.org/r", false, old)
	kept := mk("bb@guest.example.org/r", false, old)
	served := mk("ccc@guest.example.org/r", true, old)
	recent := mk("dddd@guest.example.org/r", false, clk.now())
	n, err := s.PurgeUnassignedGuests(clk.now().Add(-time.Hour), func(id string) bool { return id == kept.ID })
	if err != nil || n != 1 {
		t.Fatalf("purged %d, %v; want 1", n, err)
	}
	if _, err := s.Guest(flood.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an old unassigned guest survived: %v", err)
	}
	if _, err := s.GuestByResume(flood.Resume); !errors.Is(err, ErrNotFound) {
		t.Fatalf("its resumption index entry survived: %v", err)
	}
	for _, g := range []Guest{kept, served, recent} {
		if _, err := s.Guest(g.ID); err != nil {
			t.Fatalf("%s purged: %v", g.RealJID, err)
		}
	}
	checkIndex(t, s)
}

// BenchmarkGuestWrites compares, per guest written by one goroutine (the
// component's router): one fsynced transaction each (PutGuest, what the
// router did before), a bbolt Batch call each (it waits MaxBatchDelay for
// company that a single goroutine never brings), and 64 guests per
// transaction (PutGuests, what the router does with a batch of events).
func BenchmarkGuestWrites(b *testing.B) {
	setup := func(b *testing.B) (*Store, []Guest) {
		s, _ := newStore(b)
		fill(b, s, 1000)
		gs := make([]Guest, b.N)
		for i := range gs {
			gs[i] = benchGuest(1000 + i)
		}
		b.ResetTimer()
		return s, gs
	}
	b.Run("put-each", func(b *testing.B) {
		s, gs := setup(b)
		for _, g := range gs {
			if err := s.PutGuest(g); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bbolt-batch-each", func(b *testing.B) {
		s, gs := setup(b)
		for _, g := range gs {
			g, err := s.prepareGuest(g)
			if err != nil {
				b.Fatal(err)
			}
			if err := s.db.Batch(func(tx *bolt.Tx) error { return putGuest(tx, g) }); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("put-64", func(b *testing.B) {
		s, gs := setup(b)
		for len(gs) > 0 {
			n := min(64, len(gs))
			if err := s.PutGuests(gs[:n]); err != nil {
				b.Fatal(err)
			}
			gs = gs[n:]
		}
	})
}

// BenchmarkPurgeUnassignedGuests is one purge pass over 20,000 guests of
// which none is due (the common case): the time the component's router
// spends on it every store.unassigned_retention / 4.
func BenchmarkPurgeUnassignedGuests(b *testing.B) {
	s, clk := newStore(b)
	fill(b, s, 20000)
	b.ResetTimer()
	for range b.N {
		if _, err := s.PurgeUnassignedGuests(clk.now().Add(-time.Hour*24*365), nil); err != nil {
			b.Fatal(err)
		}
	}
}
