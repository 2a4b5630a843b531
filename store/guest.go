package store

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"mellium.im/xmpp/jid"
)

// Guest is one visitor's alias, guest-<ID>@D as operators see it. It is
// metadata only.
type Guest struct {
	ID       string // NewGuestID: lower-case base32, no padding; the key
	RealJID  string // the visitor's own JID (normalised); never shown to operators
	Skin     string // the skin the visitor wrote to
	Operator string // pinned operator full JID, "" while queued
	State    string // chat state as the component names it (e.g. "queued", "assigned")
	// Resume is the SHA-256 of the chat's resumption secret (32 bytes), or
	// nil. The secret itself is never stored: whoever presents it proves
	// they are the visitor of this chat (GuestByResume finds it by hash).
	Resume []byte

	Created, LastActive, Queued, Assigned time.Time
}

// ResumeHashSize is the length of Guest.Resume.
const ResumeHashSize = 32

// bucketResume indexes guests by Guest.Resume (schema 4).
var bucketResume = []byte("guestresume")

// guestEncoding is lower-case RFC 4648 base32 without padding.
var guestEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewGuestID returns a fresh guest ID: 16 characters of [a-z2-7] carrying
// 80 bits from crypto/rand, never derived from the visitor's JID.
func NewGuestID() string {
	var b [10]byte
	rand.Read(b[:]) // never returns an error (crypto/rand, Go 1.24+)
	return guestEncoding.EncodeToString(b[:])
}

// Limits on guest fields.
const (
	minGuestID = 13 // aliases carry at least 64 random bits: 13 base32 characters
	maxGuestID = 64
	maxState   = 32
)

// validGuestID checks the shape of a guest ID (not its randomness).
func validGuestID(id string) error {
	if len(id) < minGuestID || len(id) > maxGuestID {
		return invalid("guest id %q is %d characters: use NewGuestID (%d to %d characters of a-z, 2-7)", id, len(id), minGuestID, maxGuestID)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return invalid("guest id %q contains %q: use NewGuestID (characters a-z, 2-7)", id, rune(c))
		}
	}
	return nil
}

// checkGuest validates g and returns it normalised.
func checkGuest(g Guest) (Guest, error) {
	if err := validGuestID(g.ID); err != nil {
		return g, err
	}
	in := func(err error) error { return fmt.Errorf("store: guest %s: %w", g.ID, unprefix(err)) }
	if err := ValidSkinName(g.Skin); err != nil {
		return g, in(err)
	}
	if g.RealJID == "" {
		return g, in(invalid("real JID is empty: set it to the visitor's JID"))
	}
	j, err := anyJID("real JID", g.RealJID)
	if err != nil {
		return g, in(err)
	}
	g.RealJID = j
	if g.Operator != "" {
		j, err := anyJID("operator", g.Operator)
		if err != nil {
			return g, in(err)
		}
		g.Operator = j
	}
	if len(g.Resume) != 0 && len(g.Resume) != ResumeHashSize {
		return g, in(invalid("resumption hash is %d bytes, want %d (SHA-256) or none", len(g.Resume), ResumeHashSize))
	}
	if len(g.Resume) == 0 {
		g.Resume = nil
	}
	if len(g.State) > maxState {
		return g, in(invalid("state %q is longer than %d bytes", g.State, maxState))
	}
	for i := 0; i < len(g.State); i++ {
		c := g.State[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return g, in(invalid("state %q contains %q: use a-z, 0-9, '-' and '_'", g.State, rune(c)))
		}
	}
	for _, t := range []*time.Time{&g.Created, &g.LastActive, &g.Queued, &g.Assigned} {
		if !t.IsZero() {
			*t = t.UTC().Round(0)
		}
	}
	return g, nil
}

// Guest record, version 1 (the key is the ID):
//
//	byte     1 (record version)
//	string   real JID            (uvarint length ‖ bytes)
//	string   skin
//	string   operator
//	string   state
//	byte     mask: bit 0 Created, 1 LastActive, 2 Queued, 3 Assigned
//	time...  each time whose bit is set: varint seconds ‖ uvarint nanoseconds
//
// About 125 bytes with a Prosody-style anonymous JID (BenchmarkDiskPerGuest).
//
// Version 2 is version 1 followed by
//
//	string   resumption hash     (32 bytes: SHA-256 of the secret)
//
// and is written only for a guest with a resumption hash.
const (
	guestRecordV1 = 1
	guestRecordV2 = 2
)

func encodeGuest(g Guest) []byte {
	b := make([]byte, 0, 32+len(g.RealJID)+len(g.Skin)+len(g.Operator)+len(g.State)+4*10+1+len(g.Resume))
	if len(g.Resume) > 0 {
		b = append(b, guestRecordV2)
	} else {
		b = append(b, guestRecordV1)
	}
	b = appendString(b, g.RealJID)
	b = appendString(b, g.Skin)
	b = appendString(b, g.Operator)
	b = appendString(b, g.State)
	times := [...]time.Time{g.Created, g.LastActive, g.Queued, g.Assigned}
	var mask byte
	for i, t := range times {
		if !t.IsZero() {
			mask |= 1 << i
		}
	}
	b = append(b, mask)
	for _, t := range times {
		if !t.IsZero() {
			b = appendTime(b, t)
		}
	}
	if len(g.Resume) > 0 {
		b = appendString(b, string(g.Resume))
	}
	return b
}

// decodeGuest decodes the value stored under guests/<id>.
func decodeGuest(id string, b []byte) (Guest, error) {
	g, ok := decodeGuestFields(b)
	if !ok {
		return Guest{}, failf(ErrCorrupt, "guest %q: the stored record is damaged", id)
	}
	g.ID = id
	return g, nil
}

func decodeGuestFields(b []byte) (g Guest, ok bool) {
	var ver, mask byte
	if ver, b, ok = readByte(b); !ok || ver != guestRecordV1 && ver != guestRecordV2 {
		return g, false
	}
	for _, s := range []*string{&g.RealJID, &g.Skin, &g.Operator, &g.State} {
		if *s, b, ok = readString(b); !ok {
			return g, false
		}
	}
	if mask, b, ok = readByte(b); !ok || mask&^0x0f != 0 {
		return g, false
	}
	for i, t := range []*time.Time{&g.Created, &g.LastActive, &g.Queued, &g.Assigned} {
		if mask&(1<<i) == 0 {
			continue
		}
		if *t, b, ok = readTime(b); !ok {
			return g, false
		}
	}
	if ver == guestRecordV2 {
		var h string
		if h, b, ok = readString(b); !ok || len(h) != ResumeHashSize {
			return g, false
		}
		g.Resume = []byte(h)
	}
	return g, len(b) == 0
}

// guestIndexKey is the key under guestidx: skin ‖ 0x00 ‖ real JID. Neither
// a skin name nor a JID can contain 0x00.
func guestIndexKey(skin, realJID string) []byte {
	k := make([]byte, 0, len(skin)+1+len(realJID))
	k = append(k, skin...)
	k = append(k, 0)
	return append(k, realJID...)
}

// PutGuest creates or replaces a guest, keeping the (skin, real JID) index
// in step. Created is set to now when zero. A second guest for the same
// visitor and skin is refused with ErrExists: look it up with
// GuestByRealJID and reuse it, or delete it first.
func (s *Store) PutGuest(g Guest) error {
	g, err := s.prepareGuest(g)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error { return putGuest(tx, g) })
}

// PutGuests writes several guests in one transaction (one fsync), each as
// PutGuest would. A guest PutGuest would refuse is left out and its error
// returned (joined with the others'); the rest are written. An error of
// the database itself writes nothing.
func (s *Store) PutGuests(gs []Guest) error {
	var refused []error
	ok := make([]Guest, 0, len(gs))
	for _, g := range gs {
		g, err := s.prepareGuest(g)
		if err != nil {
			refused = append(refused, err)
			continue
		}
		ok = append(ok, g)
	}
	if len(ok) > 0 {
		err := s.db.Update(func(tx *bolt.Tx) error {
			for _, g := range ok {
				if err := putGuest(tx, g); err != nil {
					if errors.Is(err, ErrExists) || errors.Is(err, ErrCorrupt) {
						refused = append(refused, err)
						continue
					}
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return errors.Join(refused...)
}

// prepareGuest validates g and fills in Created.
func (s *Store) prepareGuest(g Guest) (Guest, error) {
	g, err := checkGuest(g)
	if err != nil {
		return g, err
	}
	if g.Created.IsZero() {
		g.Created = s.now().UTC().Round(0)
	}
	return g, nil
}

// putGuest writes a checked guest and its index entry. A refusal
// (ErrExists, ErrCorrupt) changes nothing.
func putGuest(tx *bolt.Tx, g Guest) error {
	v := encodeGuest(g)
	id := []byte(g.ID)
	guests, idx := tx.Bucket(bucketGuests), tx.Bucket(bucketGuestIdx)
	newKey := guestIndexKey(g.Skin, g.RealJID)
	if other := idx.Get(newKey); other != nil && !bytes.Equal(other, id) {
		return failf(ErrExists, "guest %s: the visitor %s already has guest %s in skin %s: reuse it or delete it first",
			g.ID, g.RealJID, other, g.Skin)
	}
	res := tx.Bucket(bucketResume)
	if len(g.Resume) > 0 {
		if res == nil {
			return fmt.Errorf("store: guest %s: the store predates resumption (schema 4)", g.ID)
		}
		if other := res.Get(g.Resume); other != nil && !bytes.Equal(other, id) {
			return failf(ErrExists, "guest %s: guest %s has the same resumption hash", g.ID, other)
		}
	}
	if old := guests.Get(id); old != nil {
		og, err := decodeGuest(g.ID, old)
		if err != nil {
			return err
		}
		oldKey := guestIndexKey(og.Skin, og.RealJID)
		if !bytes.Equal(oldKey, newKey) && bytes.Equal(idx.Get(oldKey), id) {
			if err := idx.Delete(oldKey); err != nil {
				return fmt.Errorf("store: guest %s: dropping the old index entry: %w", g.ID, err)
			}
		}
		if err := dropResume(res, og, g.Resume); err != nil {
			return err
		}
	}
	if err := idx.Put(newKey, id); err != nil {
		return fmt.Errorf("store: guest %s: writing the index: %w", g.ID, err)
	}
	if len(g.Resume) > 0 {
		if err := res.Put(g.Resume, id); err != nil {
			return fmt.Errorf("store: guest %s: writing the resumption index: %w", g.ID, err)
		}
	}
	if err := guests.Put(id, v); err != nil {
		return fmt.Errorf("store: guest %s: writing: %w", g.ID, err)
	}
	return nil
}

// dropResume removes og's resumption index entry unless it is keep (the
// hash the guest goes on having).
func dropResume(res *bolt.Bucket, og Guest, keep []byte) error {
	if res == nil || len(og.Resume) == 0 || bytes.Equal(og.Resume, keep) {
		return nil
	}
	if !bytes.Equal(res.Get(og.Resume), []byte(og.ID)) {
		return nil
	}
	if err := res.Delete(og.Resume); err != nil {
		return fmt.Errorf("store: guest %s: dropping the old resumption index entry: %w", og.ID, err)
	}
	return nil
}

// GuestByResume returns the guest whose resumption hash is h (the SHA-256
// of the secret the visitor presented), or ErrNotFound.
func (s *Store) GuestByResume(h []byte) (Guest, error) {
	var g Guest
	err := s.db.View(func(tx *bolt.Tx) error {
		res := tx.Bucket(bucketResume)
		var id []byte
		if res != nil && len(h) == ResumeHashSize {
			id = res.Get(h)
		}
		if id == nil {
			return failf(ErrNotFound, "no guest has this resumption hash")
		}
		v := tx.Bucket(bucketGuests).Get(id)
		if v == nil {
			return failf(ErrCorrupt, "the resumption index names guest %s, which does not exist", id)
		}
		var err error
		g, err = decodeGuest(string(id), v)
		return err
	})
	return g, err
}

// Guest returns the guest with the given ID, or ErrNotFound.
func (s *Store) Guest(id string) (Guest, error) {
	return getOne(s, bucketGuests, id, decodeGuest, func() error {
		return failf(ErrNotFound, "guest %q does not exist", id)
	})
}

// GuestByRealJID returns the guest of the visitor realJID in skin, or
// ErrNotFound. realJID need not be normalised.
func (s *Store) GuestByRealJID(skin, realJID string) (Guest, error) {
	var g Guest
	err := s.db.View(func(tx *bolt.Tx) error {
		idx := tx.Bucket(bucketGuestIdx)
		// Stored JIDs are normalised: a JID that is found as given is
		// normalised already, so parsing is needed only on a miss.
		id := idx.Get(guestIndexKey(skin, realJID))
		if id == nil {
			if j, err := jid.Parse(realJID); err == nil && j.String() != realJID {
				id = idx.Get(guestIndexKey(skin, j.String()))
			}
		}
		if id == nil {
			return failf(ErrNotFound, "no guest of %s in skin %q", realJID, skin)
		}
		v := tx.Bucket(bucketGuests).Get(id)
		if v == nil {
			return failf(ErrCorrupt, "the guest index names guest %s, which does not exist", id)
		}
		var err error
		g, err = decodeGuest(string(id), v)
		return err
	})
	return g, err
}

// Guests returns every guest, in ID order.
func (s *Store) Guests() ([]Guest, error) {
	return listAll(s, bucketGuests, decodeGuest)
}

// GuestCount returns how many guests skin has (for limits.guests_per_skin).
func (s *Store) GuestCount(skin string) (int, error) {
	n := 0
	prefix := guestIndexKey(skin, "")
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketGuestIdx).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n, err
}

// DeleteGuest removes a guest and its index entry, or returns ErrNotFound.
func (s *Store) DeleteGuest(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		guests := tx.Bucket(bucketGuests)
		v := guests.Get([]byte(id))
		if v == nil {
			return failf(ErrNotFound, "guest %q does not exist", id)
		}
		return deleteGuest(tx, id, v)
	})
}

// deleteGuest removes guests/<id> (whose value is v) and its index entry.
func deleteGuest(tx *bolt.Tx, id string, v []byte) error {
	g, err := decodeGuest(id, v)
	if err != nil {
		return err
	}
	idx := tx.Bucket(bucketGuestIdx)
	key := guestIndexKey(g.Skin, g.RealJID)
	if bytes.Equal(idx.Get(key), []byte(id)) {
		if err := idx.Delete(key); err != nil {
			return fmt.Errorf("store: guest %s: dropping the index entry: %w", id, err)
		}
	}
	if err := dropResume(tx.Bucket(bucketResume), g, nil); err != nil {
		return err
	}
	if err := tx.Bucket(bucketGuests).Delete([]byte(id)); err != nil {
		return fmt.Errorf("store: guest %s: deleting: %w", id, err)
	}
	return nil
}

// PurgeGuests deletes every guest whose LastActive is before the given time
// (a guest never active counts as active at the zero time) and returns how
// many it deleted. All or nothing: one transaction.
func (s *Store) PurgeGuests(before time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		type kv struct {
			id string
			v  []byte
		}
		var doomed []kv
		err := tx.Bucket(bucketGuests).ForEach(func(k, v []byte) error {
			g, err := decodeGuest(string(k), v)
			if err != nil {
				return err
			}
			if g.LastActive.Before(before) {
				doomed = append(doomed, kv{string(k), bytes.Clone(v)})
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Delete after the walk: deleting under a bbolt cursor skips keys.
		for _, d := range doomed {
			if err := deleteGuest(tx, d.id, d.v); err != nil {
				return err
			}
		}
		n = len(doomed)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: purging guests: %w", unprefix(err))
	}
	return n, nil
}

// PurgeUnassignedGuests deletes every guest that never reached an operator
// (Assigned is zero) and was last active before the given time, except the
// guests keep names (nil keeps none), and returns how many it deleted. Such
// records are what a flood of new chats leaves behind; they need not wait
// for the guest retention. The search only reads; when something is due,
// one write transaction deletes it all (checking each again).
func (s *Store) PurgeUnassignedGuests(before time.Time, keep func(id string) bool) (int, error) {
	due := func(g Guest) bool {
		return g.Assigned.IsZero() && g.LastActive.Before(before) && (keep == nil || !keep(g.ID))
	}
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketGuests).ForEach(func(k, v []byte) error {
			g, err := decodeGuest(string(k), v)
			if err != nil {
				return err
			}
			if due(g) {
				ids = append(ids, g.ID)
			}
			return nil
		})
	})
	if err != nil || len(ids) == 0 {
		if err != nil {
			err = fmt.Errorf("store: purging unassigned guests: %w", unprefix(err))
		}
		return 0, err
	}
	n := 0
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, id := range ids {
			v := tx.Bucket(bucketGuests).Get([]byte(id))
			if v == nil {
				continue
			}
			g, err := decodeGuest(id, v)
			if err != nil {
				return err
			}
			if !due(g) {
				continue
			}
			if err := deleteGuest(tx, id, bytes.Clone(v)); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: purging unassigned guests: %w", unprefix(err))
	}
	return n, nil
}
