package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Ping reports whether the database still answers a read transaction; the
// HTTP /readyz check uses it.
func (s *Store) Ping() error {
	err := s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return failf(ErrCorrupt, "the meta bucket is missing")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: ping: %w", unprefix(err))
	}
	return nil
}
