package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Ping reports whether the database still answers a read transaction; the
// HTTP /readyz check uses it.
func (s *Store) Ping() error {
	if err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return fmt.Errorf("store: the meta bucket is missing: %w", ErrCorrupt)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("store: ping: %w", err)
	}
	return nil
}
