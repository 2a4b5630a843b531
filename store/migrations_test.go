package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestMigration0to1: a bbolt file with nothing in it (what bbolt makes of a
// new path, and what a crash before the first commit leaves) gets the
// bucket tree and version 1.
func TestMigration0to1(t *testing.T) {
	path := makeDB(t, func(*bolt.Tx) error { return nil })
	s, err := open(path, migrations[:1])
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	var got []string
	err = s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			got = append(got, string(name))
			return nil
		})
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"guestidx", "guests", "meta", "operators", "skins", "stats"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("buckets after 0 -> 1 = %v, want %v", got, want)
	}
	if v := readVersion(t, path); v != 1 {
		t.Fatalf("version after 0 -> 1 = %d, want 1", v)
	}
}

// TestMigrateRunsInOrder checks the machinery with a made-up history: only
// the steps above the file's version run, in order, and the version follows.
func TestMigrateRunsInOrder(t *testing.T) {
	var ran []string
	step := func(name string) migration {
		return migration{name, func(tx *bolt.Tx) error {
			ran = append(ran, name)
			_, err := tx.CreateBucket([]byte(name))
			return err
		}}
	}
	migs := []migration{migrations[0], step("b"), step("c"), step("d")}
	path := makeDB(t, func(tx *bolt.Tx) error {
		if err := migrateCreateBuckets(tx); err != nil {
			return err
		}
		if _, err := tx.CreateBucket([]byte("b")); err != nil {
			return err
		}
		return setVersion(2)(tx)
	})
	s, err := open(path, migs)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	s.Close()
	if !reflect.DeepEqual(ran, []string{"c", "d"}) {
		t.Fatalf("ran %v, want [c d]", ran)
	}
	if v := readVersion(t, path); v != 4 {
		t.Fatalf("version %d, want 4", v)
	}
	// Opening again runs nothing.
	ran = nil
	s, err = open(path, migs)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if len(ran) != 0 {
		t.Fatalf("second open ran %v", ran)
	}
}

// TestMigrateFailureChangesNothing: a failing step rolls back every step of
// the same Open, and the error names the step.
func TestMigrateFailureChangesNothing(t *testing.T) {
	boom := errors.New("boom")
	migs := []migration{
		migrations[0],
		{"add x", func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("x")); return err }},
		{"break", func(*bolt.Tx) error { return boom }},
	}
	path := makeDB(t, func(tx *bolt.Tx) error {
		if err := migrateCreateBuckets(tx); err != nil {
			return err
		}
		return setVersion(1)(tx)
	})
	_, err := open(path, migs)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "store: migrating schema 2 -> 3 (break): boom") {
		t.Fatalf("open: %v", err)
	}
	if v := readVersion(t, path); v != 1 {
		t.Fatalf("version after a failed upgrade = %d, want 1", v)
	}
	s, err := open(path, migs[:1])
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket([]byte("x")) != nil {
			t.Error("bucket x from the rolled-back step exists")
		}
		return nil
	})
}

func TestSchemaVersion(t *testing.T) {
	s, _ := newStore(t)
	if v := readVersionOpen(t, s); v != SchemaVersion() || v != uint64(len(migrations)) {
		t.Fatalf("new store has version %d, want %d", v, SchemaVersion())
	}
}

func readVersionOpen(t *testing.T, s *Store) uint64 {
	var v uint64
	if err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		v, err = schemaVersion(tx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMigration1to2 opens a schema-1 store holding a skin and a guest: the
// blocks bucket appears, the version is 2, and nothing else changes.
func TestMigration1to2(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "v1.db")
	s1, err := open(path, migrations[:1])
	if err != nil {
		t.Fatal(err)
	}
	sk := Skin{Name: "library", Title: "Library", Policy: PolicyOpportunistic, Operators: []string{"ann@example.org"}}
	if err := s1.CreateSkin(sk); err != nil {
		t.Fatal(err)
	}
	g := Guest{ID: NewGuestID(), RealJID: "v@guest.example.org/r", Skin: "library", State: "queued", Created: time.Unix(1700000000, 0)}
	if err := s1.PutGuest(g); err != nil {
		t.Fatal(err)
	}
	s1.Close()
	if v := readVersion(t, path); v != 1 {
		t.Fatalf("fixture at version %d, want 1", v)
	}

	s, err := open(path, migrations[:2])
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	if got, err := s.Skin("library"); err != nil || got.Title != "Library" {
		t.Fatalf("skin after 1 -> 2: %+v %v", got, err)
	}
	if got, err := s.GuestByRealJID("library", g.RealJID); err != nil || got.ID != g.ID {
		t.Fatalf("guest after 1 -> 2: %+v %v", got, err)
	}
	until := time.Now().Add(time.Hour).Truncate(time.Second)
	if err := s.PutBlock(Block{Skin: "library", RealJID: g.RealJID, Until: until}); err != nil {
		t.Fatalf("the blocks bucket is not usable after 1 -> 2: %v", err)
	}
	if v := readVersionOpen(t, s); v != 2 {
		t.Fatalf("version after 1 -> 2 = %d, want 2", v)
	}
}

// TestMigration2to3 opens a schema-2 store holding a skin and a block: the
// keyrings bucket appears, the version is 3, and nothing else changes.
func TestMigration2to3(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v2.db")
	s2, err := open(path, migrations[:2])
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.CreateSkin(Skin{Name: "library", Title: "Library", Policy: PolicyOpportunistic}); err != nil {
		t.Fatal(err)
	}
	until := time.Unix(1800000000, 0)
	if err := s2.PutBlock(Block{Skin: "library", RealJID: "v@guest.example.org/r", Until: until}); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if v := readVersion(t, path); v != 2 {
		t.Fatalf("fixture at version %d, want 2", v)
	}

	s, err := open(path, migrations[:3])
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	if got, err := s.Skin("library"); err != nil || got.Title != "Library" {
		t.Fatalf("skin after 2 -> 3: %+v %v", got, err)
	}
	if b, err := s.Blocks(); err != nil || len(b) != 1 || !b[0].Until.Equal(until) {
		t.Fatalf("blocks after 2 -> 3: %+v %v", b, err)
	}
	if _, err := s.Keyring("library"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a migrated store has a keyring already: %v", err)
	}
	if _, err := s.PutKeyring(signedKeyring(t, "library", 1)); err != nil {
		t.Fatalf("the keyrings bucket is not usable after 2 -> 3: %v", err)
	}
	if v := readVersionOpen(t, s); v != 3 {
		t.Fatalf("version after 2 -> 3 = %d, want 3", v)
	}
}

// TestMigration3to4 opens a schema-3 store holding a guest: the resumption
// index appears, the version is 4, the guest is as it was (no hash) and can
// be given one.
func TestMigration3to4(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v3.db")
	s3, err := open(path, migrations[:3])
	if err != nil {
		t.Fatal(err)
	}
	g := demoGuest(NewGuestID())
	if err := s3.PutGuest(g); err != nil {
		t.Fatal(err)
	}
	s3.Close()
	if v := readVersion(t, path); v != 3 {
		t.Fatalf("fixture at version %d, want 3", v)
	}
	s, err := open(path, migrations[:4])
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	if got, err := s.Guest(g.ID); err != nil || !reflect.DeepEqual(got, g) {
		t.Fatalf("guest after 3 -> 4: %+v %v", got, err)
	}
	g.Resume = bytes.Repeat([]byte{5}, ResumeHashSize)
	if err := s.PutGuest(g); err != nil {
		t.Fatalf("the resumption index is not usable after 3 -> 4: %v", err)
	}
	if got, err := s.GuestByResume(g.Resume); err != nil || got.ID != g.ID {
		t.Fatalf("GuestByResume after 3 -> 4: %+v %v", got, err)
	}
	if v := readVersionOpen(t, s); v != 4 {
		t.Fatalf("version after 3 -> 4 = %d, want 4", v)
	}
}

// TestMigration4to5 opens a schema-4 store holding a skin and a guest: the
// trusted-devices bucket appears empty, the version is 5, the skin and the
// guest are as they were, and a device can be trusted.
func TestMigration4to5(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v4.db")
	s4, err := open(path, migrations[:4])
	if err != nil {
		t.Fatal(err)
	}
	if err := s4.CreateSkin(Skin{Name: "library", Title: "Library", Policy: PolicyRequire, Operators: []string{"op@example.org"}}); err != nil {
		t.Fatal(err)
	}
	g := demoGuest(NewGuestID())
	if err := s4.PutGuest(g); err != nil {
		t.Fatal(err)
	}
	s4.Close()
	if v := readVersion(t, path); v != 4 {
		t.Fatalf("fixture at version %d, want 4", v)
	}
	s, err := open(path, migrations[:5])
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	if got, err := s.Skin("library"); err != nil || got.Policy != PolicyRequire {
		t.Fatalf("skin after 4 -> 5: %+v %v", got, err)
	}
	if got, err := s.Guest(g.ID); err != nil || !reflect.DeepEqual(got, g) {
		t.Fatalf("guest after 4 -> 5: %+v %v", got, err)
	}
	if d, err := s.AllDevices(); err != nil || len(d) != 0 {
		t.Fatalf("a migrated store trusts devices already: %+v %v", d, err)
	}
	if err := s.PutDevice(TrustedDevice{Skin: "library", Account: "op@example.org", Device: 7}); err != nil {
		t.Fatalf("the devices bucket is not usable after 4 -> 5: %v", err)
	}
	if v := readVersionOpen(t, s); v != 5 {
		t.Fatalf("version after 4 -> 5 = %d, want 5", v)
	}
}
