package store

import (
	"bytes"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Block keeps one visitor (a real JID, as the server gave it) from starting
// chats in one skin until a time. Operators set blocks with the command bot;
// they outlive a restart of otrdesk.
type Block struct {
	Skin    string
	RealJID string
	Until   time.Time
}

func blockKey(skin, realJID string) []byte {
	k := make([]byte, 0, len(skin)+1+len(realJID))
	k = append(k, skin...)
	k = append(k, 0)
	return append(k, realJID...)
}

// decodeBlock reads a blocks entry: the key is skin 0x00 real JID, the value
// the time it ends.
func decodeBlock(k, v []byte) (Block, error) {
	skin, real, ok := bytes.Cut(k, []byte{0})
	if !ok || len(skin) == 0 || len(real) == 0 {
		return Block{}, failf(ErrCorrupt, "block key %q is not skin NUL JID", k)
	}
	until, rest, ok := readTime(v)
	if !ok || len(rest) != 0 {
		return Block{}, failf(ErrCorrupt, "block of %s in skin %s has a damaged time", real, skin)
	}
	return Block{Skin: string(skin), RealJID: string(real), Until: until}, nil
}

// PutBlock records or replaces a block.
func (s *Store) PutBlock(b Block) error {
	if err := ValidSkinName(b.Skin); err != nil {
		return err
	}
	real, err := anyJID("blocked visitor", b.RealJID)
	if err != nil {
		return err
	}
	if b.Until.IsZero() {
		return invalid("a block needs the time it ends")
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketBlocks).Put(blockKey(b.Skin, real), appendTime(nil, b.Until)); err != nil {
			return fmt.Errorf("store: saving a block: %w", err)
		}
		return nil
	})
}

// Blocks returns every block, expired ones included (PurgeBlocks drops
// those), ordered by skin then JID.
func (s *Store) Blocks() ([]Block, error) {
	var out []Block
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBlocks).ForEach(func(k, v []byte) error {
			b, err := decodeBlock(k, v)
			if err != nil {
				return err
			}
			out = append(out, b)
			return nil
		})
	})
	return out, err
}

// DeleteBlock lifts a block; lifting one that does not exist is no error.
func (s *Store) DeleteBlock(skin, realJID string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketBlocks).Delete(blockKey(skin, realJID))
	})
}

// PurgeBlocks drops the blocks that ended before t and says how many.
func (s *Store) PurgeBlocks(t time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketBlocks)
		var dead [][]byte
		if err := bk.ForEach(func(k, v []byte) error {
			b, err := decodeBlock(k, v)
			if err != nil {
				return err
			}
			if b.Until.Before(t) {
				dead = append(dead, bytes.Clone(k))
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range dead {
			if err := bk.Delete(k); err != nil {
				return err
			}
		}
		n = len(dead)
		return nil
	})
	return n, err
}
