package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"otrdesk.im/otrdesk/keyring"
)

// Keyring is a skin's signed keyring as the store holds it: the bytes
// exactly as the admin signed them (served as they are, never re-encoded),
// and the fields otrdesk reads from them to check uploads and remind
// admins before expiry. The store cannot check the signature: the signer's
// private key never reaches the service, and its public key lives in the
// pages that embed the chat. Removing a skin keeps its keyring, so that if
// a skin of that name comes back its serials still only grow (the HTTP
// side serves keyrings of existing skins only).
type Keyring struct {
	Skin     string
	Serial   uint64
	NotAfter time.Time
	Signed   []byte
}

func decodeKeyring(name string, v []byte) (Keyring, error) {
	k, err := keyring.Parse(v)
	if err != nil {
		return Keyring{}, failf(ErrCorrupt, "keyring of skin %q: %v", name, err)
	}
	if k.Skin != name {
		return Keyring{}, failf(ErrCorrupt, "keyring stored under skin %q names skin %q", name, k.Skin)
	}
	return Keyring{Skin: k.Skin, Serial: k.Serial, NotAfter: k.NotAfter, Signed: bytes.Clone(v)}, nil
}

// PutKeyring stores a signed keyring for the skin it names, replacing the
// one before. The bytes must parse as a keyring (ErrInvalid), the skin
// must exist (ErrNotFound), and the serial must be above the stored one
// (ErrInvalid): a browser that saw the higher serial would refuse a lower
// one, so the store never goes back.
func (s *Store) PutKeyring(signed []byte) (Keyring, error) {
	k, err := keyring.Parse(signed)
	if err != nil {
		return Keyring{}, invalid("the keyring does not parse: %v", err)
	}
	out := Keyring{Skin: k.Skin, Serial: k.Serial, NotAfter: k.NotAfter, Signed: bytes.Clone(signed)}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketSkins).Get([]byte(k.Skin)) == nil {
			return failf(ErrNotFound, "skin %q does not exist", k.Skin)
		}
		b := tx.Bucket(bucketKeyrings)
		if old := b.Get([]byte(k.Skin)); old != nil {
			prev, err := decodeKeyring(k.Skin, old)
			if err != nil && !errors.Is(err, ErrCorrupt) {
				return err
			}
			// A damaged stored keyring is replaced, not kept forever.
			if err == nil && k.Serial <= prev.Serial {
				return invalid("keyring serial %d of skin %s is not above the stored serial %d: sign a new keyring", k.Serial, k.Skin, prev.Serial)
			}
		}
		if err := b.Put([]byte(k.Skin), out.Signed); err != nil {
			return fmt.Errorf("store: saving the keyring of skin %s: %w", k.Skin, err)
		}
		return nil
	})
	if err != nil {
		return Keyring{}, err
	}
	return out, nil
}

// Keyring returns the skin's keyring, or ErrNotFound when it has none.
func (s *Store) Keyring(skin string) (Keyring, error) {
	return getOne(s, bucketKeyrings, skin, decodeKeyring, func() error {
		return failf(ErrNotFound, "skin %q has no keyring", skin)
	})
}

// Keyrings returns every stored keyring, ordered by skin.
func (s *Store) Keyrings() ([]Keyring, error) {
	return listAll(s, bucketKeyrings, decodeKeyring)
}
