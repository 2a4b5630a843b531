package store

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// benchGuest is a realistic guest: a Prosody anonymous JID with a resource,
// a pinned operator full JID, all four times set.
func benchGuest(i int) Guest {
	g := demoGuest(NewGuestID())
	g.RealJID = fmt.Sprintf("%08x-5c1e-4b8a-9d2f-3e7a%08x@guest.example.org/%d", i, i, i)
	return g
}

// fill puts n guests without fsync per transaction (the numbers measured
// after it are about the file, not the fill).
func fill(b *testing.B, s *Store, n int) []Guest {
	b.Helper()
	s.db.NoSync = true
	defer func() { s.db.NoSync = false; s.db.Sync() }()
	gs := make([]Guest, n)
	for i := range gs {
		gs[i] = benchGuest(i)
		if err := s.PutGuest(gs[i]); err != nil {
			b.Fatal(err)
		}
	}
	return gs
}

// BenchmarkPutGuest writes one new guest per op (one fsynced transaction
// each) into a store that already has 10,000; "bbolt" is the baseline: the
// same encoded record put with one bare bbolt transaction, no validation
// and no index.
func BenchmarkPutGuest(b *testing.B) {
	b.Run("store", func(b *testing.B) {
		s, _ := newStore(b)
		fill(b, s, 10000)
		gs := make([]Guest, b.N)
		for i := range gs {
			gs[i] = benchGuest(10000 + i)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := s.PutGuest(gs[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bbolt", func(b *testing.B) {
		s, _ := newStore(b)
		fill(b, s, 10000)
		vs := make([][]byte, b.N)
		ids := make([][]byte, b.N)
		for i := range vs {
			g := benchGuest(10000 + i)
			vs[i], ids[i] = encodeGuest(g), []byte(g.ID)
		}
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketGuests).Put(ids[i], vs[i]) })
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkGuest reads one guest per op out of 10,000, by ID and through
// the (skin, real JID) index; "bbolt" is a bare Get of the same key.
func BenchmarkGuest(b *testing.B) {
	s, _ := newStore(b)
	gs := fill(b, s, 10000)
	b.Run("by-id", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := s.Guest(gs[i%len(gs)].ID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("by-real-jid", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			g := gs[i%len(gs)]
			if _, err := s.GuestByRealJID(g.Skin, g.RealJID); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("bbolt", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			var n int
			s.db.View(func(tx *bolt.Tx) error {
				n = len(tx.Bucket(bucketGuests).Get([]byte(gs[i%len(gs)].ID)))
				return nil
			})
			if n == 0 {
				b.Fatal("missing guest")
			}
		}
	})
}

// BenchmarkDiskPerGuest reports what 10,000 guests cost on disk: the
// encoded record, the store's used size (what Backup writes) and the file
// as bbolt grew it, each divided by the number of guests.
func BenchmarkDiskPerGuest(b *testing.B) {
	const n = 10000
	s, _ := newStore(b)
	empty := backupSize(b, s)
	gs := fill(b, s, n)
	used := backupSize(b, s)
	fi, err := os.Stat(s.Path())
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		// The numbers are about one fill, not about time.
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(float64(len(encodeGuest(gs[0]))), "record-B")
	b.ReportMetric(float64(used-empty)/n, "used-B/guest")
	b.ReportMetric(float64(fi.Size())/n, "file-B/guest")
}

func backupSize(b *testing.B, s *Store) int64 {
	n, err := s.Backup(io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// BenchmarkOpen opens and closes a store of 10,000 guests; "bbolt" is a
// bare bolt.Open of the same file, so the difference is checkFile's walk
// and the schema check.
func BenchmarkOpen(b *testing.B) {
	path := filepath.Join(b.TempDir(), "otrdesk.db")
	s, err := Open(path)
	if err != nil {
		b.Fatal(err)
	}
	fill(b, s, 10000)
	s.Close()
	b.Run("store", func(b *testing.B) {
		for b.Loop() {
			s, err := Open(path)
			if err != nil {
				b.Fatal(err)
			}
			s.Close()
		}
	})
	b.Run("bbolt", func(b *testing.B) {
		for b.Loop() {
			db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
			if err != nil {
				b.Fatal(err)
			}
			db.Close()
		}
	})
}
