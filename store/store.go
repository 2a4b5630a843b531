// Package store is otrdesk's database: skins, their OTR fingerprints,
// guests (visitor aliases), operators and chat statistics, kept in one
// bbolt file.
//
// The store holds metadata only. There is no field for a message body or a
// private key, and the package never logs.
//
// # Opening
//
// [Open] creates the parent directory (0700) and the file (0600) when they
// are missing, and narrows a looser mode to 0600. An existing file is first
// checked page by page under the same exclusive flock bbolt uses
// (fileheader.go): bbolt trusts the file it maps, and a truncated or
// damaged one would crash or hang the process instead of failing. Then
// bbolt opens it with a one-second lock timeout (a second process, or a
// second Open in the same process, gets [ErrInUse] instead of hanging) and
// the ordered migrations in migrations.go bring the schema up to date, all
// in one transaction. A database written by a newer otrdesk is refused with
// [ErrTooNew]; a file that is not an otrdesk store with [ErrNotStore], and
// a damaged one with [ErrNotStore] and [ErrCorrupt].
//
// # Bucket tree
//
//	meta
//	├── version                      uint64, big-endian: schema version (see migrations.go)
//	skins
//	└── <name>                       JSON skinRecord: title, greeting, colour, policy,
//	                                 operators and their display names, origins, key history
//	guests
//	└── <id>                         binary guest record (guest.go): real JID, skin,
//	                                 pinned operator, state, four timestamps, resumption hash
//	guestidx
//	└── <skin> 0x00 <real JID>       guest id; kept in step with guests in the same transaction
//	guestresume                      (schema 4)
//	└── <SHA-256 of the secret>      guest id of the chat that secret resumes; kept in step with guests
//	operators
//	└── <bare JID>                   binary operator record (operator.go): on-duty flag, nick
//	blocks                           (schema 2)
//	└── <skin> 0x00 <real JID>       time the block ends (block.go)
//	keyrings                         (schema 3)
//	└── <skin>                       the signed keyring, byte for byte as signed (keyring.go)
//	devices                          (schema 5)
//	└── <skin> 0x00 <account> 0x00 <device uint32>
//	                                 an operator's OMEMO device the skin trusts: time
//	                                 added, identity-key fingerprint if given (device.go)
//	stats
//	└── <skin>                       bucket per skin
//	    └── <YYYYMMDD><seq uint64>   binary chat record (stats.go): start, wait, duration, encrypted
//
// Every method runs in exactly one transaction, and every value is decoded
// (copied) before that transaction ends, so callers never hold memory that
// bbolt owns. Names and JIDs are validated on the way in; an invalid value is
// refused with an error that says what to put there ([ErrInvalid]).
package store

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Sentinel errors. Test for them with errors.Is.
var (
	// ErrInUse is returned by Open when another process (or another Store in
	// this process) holds the database open.
	ErrInUse = errors.New("store: the store is in use by another process (is otrdesk serve running?)")
	// ErrTooNew is returned by Open when the database was written by a newer
	// otrdesk with a schema this binary does not know.
	ErrTooNew = errors.New("store: database schema is newer than this otrdesk")
	// ErrNotStore is returned by Open when the file is not an otrdesk store
	// or is damaged (then the error also matches ErrCorrupt).
	ErrNotStore = errors.New("store: not an otrdesk store")
	// ErrNotFound is returned when a skin, guest or operator does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrExists is returned when creating something that already exists.
	ErrExists = errors.New("store: already exists")
	// ErrInvalid is wrapped by every validation error.
	ErrInvalid = errors.New("store: invalid value")
	// ErrCorrupt is wrapped when the file or a stored value is damaged.
	ErrCorrupt = errors.New("store: stored value is damaged")
)

// lockTimeout is how long Open waits for bbolt's file lock.
const lockTimeout = time.Second

// Bucket and key names (see the tree in the package comment).
var (
	bucketMeta      = []byte("meta")
	bucketSkins     = []byte("skins")
	bucketGuests    = []byte("guests")
	bucketGuestIdx  = []byte("guestidx")
	bucketOperators = []byte("operators")
	bucketStats     = []byte("stats")
	bucketBlocks    = []byte("blocks")
	bucketKeyrings  = []byte("keyrings")
	keyVersion      = []byte("version")
)

// Store is an open otrdesk database. It is safe for concurrent use.
type Store struct {
	db  *bolt.DB
	now func() time.Time // time source for Created/Updated; replaced in tests
}

// Open opens the store at path, creating it (and its directory) if needed,
// and migrates it to the current schema.
func Open(path string) (*Store, error) {
	return open(path, migrations)
}

func open(path string, migs []migration) (*Store, error) {
	if path == "" {
		return nil, invalid("no path given: set store.path to a file such as /var/lib/otrdesk/otrdesk.db")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: creating the directory of %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, invalid("%s is a directory: set store.path to a file inside it", path)
	}
	if err := checkExisting(path); err != nil {
		return nil, err
	}
	var db *bolt.DB
	err := guard(path, func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
		return err
	})
	if err != nil {
		switch {
		case errors.Is(err, bolt.ErrTimeout):
			return nil, ErrInUse
		case errors.Is(err, ErrNotStore):
			return nil, err
		case errors.Is(err, bolt.ErrInvalid), errors.Is(err, bolt.ErrVersionMismatch), errors.Is(err, bolt.ErrChecksum):
			return nil, &notStoreError{path: path, why: "not a bbolt database: " + err.Error(), err: err}
		}
		return nil, fmt.Errorf("store: opening %s: %w", path, err)
	}
	err = guard(path, func() error { return migrate(db, migs) })
	if err == nil {
		err = restrictMode(path)
	}
	if err != nil {
		db.Close()
		var nse *notStoreError
		if errors.As(err, &nse) {
			nse.path = path
		}
		return nil, err
	}
	return &Store{db: db, now: time.Now}, nil
}

// restrictMode narrows an existing store's mode to 0600: it holds visitors'
// JIDs, and nobody but its owner should read it.
func restrictMode(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return fmt.Errorf("store: restricting %s to mode 0600: %w", path, err)
		}
	}
	return nil
}

// Close closes the database and releases its file lock.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: closing: %w", err)
	}
	return nil
}

// Path returns the file the store was opened from.
func (s *Store) Path() string { return s.db.Path() }

// getOne reads and decodes the value under key in a top-level bucket, or
// returns missing() when there is none.
func getOne[T any](s *Store, bucket []byte, key string, decode func(string, []byte) (T, error), missing func() error) (T, error) {
	var out T
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(key))
		if v == nil {
			return missing()
		}
		var err error
		out, err = decode(key, v)
		return err
	})
	return out, err
}

// listAll decodes every value of a top-level bucket, in key order.
func listAll[T any](s *Store, bucket []byte, decode func(string, []byte) (T, error)) ([]T, error) {
	var out []T
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
			x, err := decode(string(k), v)
			if err != nil {
				return err
			}
			out = append(out, x)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Backup writes a consistent copy of the whole database to w while other
// goroutines keep using the store, and returns the number of bytes written.
// The copy is itself a store that Open reads.
func (s *Store) Backup(w io.Writer) (int64, error) {
	var n int64
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		n, err = tx.WriteTo(w)
		return err
	})
	if err != nil {
		return n, fmt.Errorf("store: writing backup: %w", err)
	}
	return n, nil
}

// notStoreError reports a file that is not an otrdesk store.
type notStoreError struct {
	path string
	why  string
	err  error
}

func (e *notStoreError) Error() string {
	if errors.Is(e.err, ErrCorrupt) {
		return fmt.Sprintf("store: %s is damaged (%s): restore it from a backup (made with otrdesk backup)", e.path, e.why)
	}
	return fmt.Sprintf("store: %s is not an otrdesk store (%s): check store.path", e.path, e.why)
}

func (e *notStoreError) Unwrap() []error {
	if e.err == nil {
		return []error{ErrNotStore}
	}
	return []error{ErrNotStore, e.err}
}

// guard runs fn, turning a bbolt panic or a memory fault on the mapped
// file (both mean a damaged file that checkFile let through) into a
// notStoreError. After a fault inside bolt.Open the half-open file is left
// to the garbage collector.
func guard(path string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &notStoreError{path: path, why: fmt.Sprintf("bbolt: %v", r), err: ErrCorrupt}
		}
	}()
	return fn()
}

// checkExisting runs checkFile on an existing file while holding its lock,
// so that it never reads a store that a running otrdesk is writing.
func checkExisting(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: opening %s: %w", path, err)
	}
	defer f.Close() // releases the lock
	if err := lockFile(f, lockTimeout); err != nil {
		if errors.Is(err, ErrInUse) {
			return ErrInUse
		}
		return fmt.Errorf("store: locking %s: %w", path, err)
	}
	if err := checkFile(f); err != nil {
		var d errDamaged
		if errors.As(err, &d) {
			return &notStoreError{path: path, why: d.why, err: ErrCorrupt}
		}
		return fmt.Errorf("store: checking %s: %w", path, err)
	}
	return nil
}

// tooNewError reports a schema newer than this binary.
type tooNewError struct{ have, want uint64 }

func (e *tooNewError) Error() string {
	return fmt.Sprintf("store: database schema version %d is newer than this otrdesk (%d); upgrade otrdesk", e.have, e.want)
}

func (e *tooNewError) Unwrap() error { return ErrTooNew }
