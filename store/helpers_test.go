package store

import (
	"errors"
	bolt "go.etcd.io/bbolt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable time source for Created/Updated.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var t0 = time.Date(2026, 11, 20, 9, 30, 0, 0, time.UTC)

// newStore opens a fresh store in a temporary directory with a fake clock.
func newStore(t testing.TB) (*Store, *clock) {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "otrdesk.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	c := &clock{t: t0}
	s.now = c.now
	return s, c
}

// wantErr checks err against a sentinel and a substring of its text; a nil
// sentinel and empty substring mean no error is wanted.
func wantErr(t testing.TB, err, sentinel error, substr string) {
	t.Helper()
	if sentinel == nil && substr == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("no error, want %v containing %q", sentinel, substr)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Fatalf("error %q is not %v", err, sentinel)
	}
	if !strings.Contains(err.Error(), substr) {
		t.Fatalf("error %q does not contain %q", err, substr)
	}
	if !strings.HasPrefix(err.Error(), "store: ") {
		t.Fatalf("error %q lacks the \"store: \" prefix", err)
	}
	if strings.Contains(err.Error(), "store: store:") || strings.Contains(err.Error(), ": store: ") {
		t.Fatalf("error %q repeats the package prefix", err)
	}
}

// indexLen counts the guest index entries (for consistency checks).
func (s *Store) indexLen() (int, error) {
	n := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketGuestIdx).Stats().KeyN
		return nil
	})
	return n, err
}
