package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// A migration moves the schema from version N (its index in migrations) to
// N+1. Migrations run in order, all of them in the single transaction that
// Open starts, so a failed upgrade leaves the file as it was.
type migration struct {
	name string
	fn   func(tx *bolt.Tx) error
}

// migrations is the schema history. Append only: never edit or reorder an
// entry that has shipped, and add a test for each new one in
// migrations_test.go (a database built by hand at the old version, opened,
// and checked).
var migrations = []migration{
	{"create the buckets", migrateCreateBuckets},                // 0 -> 1
	{"add the blocks bucket", migrateAddBlocks},                 // 1 -> 2
	{"add the keyrings bucket", migrateAddKeyrings},             // 2 -> 3
	{"add the guest resumption index", migrateAddResume},        // 3 -> 4
	{"add the trusted OMEMO devices bucket", migrateAddDevices}, // 4 -> 5
}

// SchemaVersion returns the schema version this otrdesk writes.
func SchemaVersion() uint64 { return uint64(len(migrations)) }

// errStop ends a bbolt ForEach early.
var errStop = errors.New("stop")

// migrateCreateBuckets is 0 -> 1: an empty file gets the bucket tree.
func migrateCreateBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketSkins, bucketGuests, bucketGuestIdx, bucketOperators, bucketStats} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("creating bucket %s: %w", name, err)
		}
	}
	return nil
}

// migrateAddBlocks is 1 -> 2: operators' blocks of visitors, which were
// kept in memory and lost on restart, get a bucket.
func migrateAddBlocks(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketBlocks); err != nil {
		return fmt.Errorf("creating bucket %s: %w", bucketBlocks, err)
	}
	return nil
}

// migrateAddKeyrings is 2 -> 3: skins' signed keyrings get a bucket.
func migrateAddKeyrings(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketKeyrings); err != nil {
		return fmt.Errorf("creating bucket %s: %w", bucketKeyrings, err)
	}
	return nil
}

// migrateAddResume is 3 -> 4: guests may carry the hash of a resumption
// secret, indexed by that hash. Existing guests have none.
func migrateAddResume(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketResume); err != nil {
		return fmt.Errorf("creating bucket %s: %w", bucketResume, err)
	}
	return nil
}

// migrateAddDevices is 4 -> 5: the OMEMO devices of operators that skins
// trust get a bucket. No skin trusts a device yet.
func migrateAddDevices(tx *bolt.Tx) error {
	if _, err := tx.CreateBucketIfNotExists(bucketDevices); err != nil {
		return fmt.Errorf("creating bucket %s: %w", bucketDevices, err)
	}
	return nil
}

// schemaVersion reads meta/version. ok is false when the file has no meta
// bucket at all (a new file, version 0).
func schemaVersion(tx *bolt.Tx) (v uint64, err error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		// A new file has no buckets at all; anything else is someone
		// else's bbolt database.
		var other []byte
		_ = tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			other = append([]byte(nil), name...)
			return errStop
		})
		if other != nil {
			return 0, &notStoreError{why: fmt.Sprintf("a bbolt database without otrdesk's meta bucket; it has a bucket named %q", other)}
		}
		return 0, nil
	}
	v, err = decodeVersion(meta.Get(keyVersion))
	if err != nil {
		return 0, &notStoreError{why: unprefix(err).Error(), err: err}
	}
	return v, nil
}

// decodeVersion decodes the value of meta/version.
func decodeVersion(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, failf(ErrCorrupt, "schema version is %d bytes, want 8", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

func encodeVersion(v uint64) []byte {
	return binary.BigEndian.AppendUint64(nil, v)
}

// migrate brings db to len(migs), or refuses a newer schema. A store that
// is up to date is only read.
func migrate(db *bolt.DB, migs []migration) error {
	want := uint64(len(migs))
	var v uint64
	err := db.View(func(tx *bolt.Tx) error {
		var err error
		if v, err = schemaVersion(tx); err != nil {
			return err
		}
		if v == want {
			return checkBuckets(tx)
		}
		return nil
	})
	if err != nil || v == want {
		return err
	}
	if v > want {
		return &tooNewError{have: v, want: want}
	}
	return db.Update(func(tx *bolt.Tx) error {
		// Read again: the version cannot have moved (Open holds the
		// lock), but the steps must start from what this tx sees.
		v, err := schemaVersion(tx)
		if err != nil {
			return err
		}
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return fmt.Errorf("store: creating the meta bucket: %w", err)
		}
		for ; v < want; v++ {
			m := migs[v]
			if err := m.fn(tx); err != nil {
				return fmt.Errorf("store: migrating schema %d -> %d (%s): %w", v, v+1, m.name, err)
			}
			if err := meta.Put(keyVersion, encodeVersion(v+1)); err != nil {
				return fmt.Errorf("store: recording schema version %d: %w", v+1, err)
			}
		}
		return checkBuckets(tx)
	})
}

// checkBuckets makes sure every top-level bucket exists, so that methods
// can use tx.Bucket without a nil check.
func checkBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketMeta, bucketSkins, bucketGuests, bucketGuestIdx, bucketOperators, bucketStats} {
		if tx.Bucket(name) == nil {
			return &notStoreError{why: fmt.Sprintf("the %s bucket is missing", name), err: ErrCorrupt}
		}
	}
	return nil
}
