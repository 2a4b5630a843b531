package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketDevices holds the OMEMO devices of operators that skins trust
// (schema 5).
var bucketDevices = []byte("devices")

// A TrustedDevice is one OMEMO device of an operator's account that a skin
// trusts: the admin compared its fingerprint with what the operator's
// client shows and added it (otrdesk keys add-device). The component hands
// a visitor's widget only the devices its skin trusts, and picks OMEMO for
// a chat only when the operator has one.
type TrustedDevice struct {
	Skin    string
	Account string // the operator's bare JID
	Device  uint32 // the OMEMO device ID, 1..2^31-1
	// Fingerprint is the device's identity key (32 bytes, the Curve25519
	// key without its type byte), or nil: then the device is trusted with
	// whatever identity key it publishes, and the widget's own pins decide.
	// When set, the device is trusted only while it shows this key.
	Fingerprint []byte
	Added       time.Time
}

// maxDeviceID is the largest OMEMO device ID clients pick (Java's int).
const maxDeviceID = 1<<31 - 1

// FingerprintSize is the size of a TrustedDevice's fingerprint.
const FingerprintSize = 32

func deviceKey(skin, account string, device uint32) []byte {
	k := make([]byte, 0, len(skin)+len(account)+6)
	k = append(k, skin...)
	k = append(k, 0)
	k = append(k, account...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, device)
}

// devicePrefix is the key prefix of a skin's devices, or of one account's
// devices in a skin when account is not empty.
func devicePrefix(skin, account string) []byte {
	k := append([]byte(skin), 0)
	if account != "" {
		k = append(append(k, account...), 0)
	}
	return k
}

// decodeDevice reads a devices entry: the key is skin 0x00 account 0x00
// device (uint32, big-endian), the value the time it was added and the
// fingerprint (none or 32 bytes).
func decodeDevice(k, v []byte) (TrustedDevice, error) {
	skin, rest, ok := bytes.Cut(k, []byte{0})
	if !ok || len(skin) == 0 || len(rest) < 6 || rest[len(rest)-5] != 0 {
		return TrustedDevice{}, failf(ErrCorrupt, "device key %q is not skin NUL account NUL id", k)
	}
	account, id := rest[:len(rest)-5], rest[len(rest)-4:]
	d := TrustedDevice{Skin: string(skin), Account: string(account), Device: binary.BigEndian.Uint32(id)}
	added, fp, ok := readTime(v)
	if !ok || len(fp) != 0 && len(fp) != FingerprintSize {
		return TrustedDevice{}, failf(ErrCorrupt, "trusted device %d of %s in skin %s is damaged", d.Device, d.Account, d.Skin)
	}
	d.Added = added
	if len(fp) > 0 {
		d.Fingerprint = bytes.Clone(fp)
	}
	return d, nil
}

// PutDevice trusts a device for a skin, or replaces the fingerprint and
// time of one already trusted. The skin must exist.
func (s *Store) PutDevice(d TrustedDevice) error {
	if err := ValidSkinName(d.Skin); err != nil {
		return err
	}
	account, err := bareJID("operator account", d.Account)
	if err != nil {
		return err
	}
	if d.Device == 0 || d.Device > maxDeviceID {
		return invalid("OMEMO device ID %d is out of range: clients use 1 to %d", d.Device, maxDeviceID)
	}
	if len(d.Fingerprint) != 0 && len(d.Fingerprint) != FingerprintSize {
		return invalid("a device fingerprint is %d bytes, not %d", FingerprintSize, len(d.Fingerprint))
	}
	if d.Added.IsZero() {
		d.Added = s.now()
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketSkins).Get([]byte(d.Skin)) == nil {
			return fmt.Errorf("skin %q: %w", d.Skin, ErrNotFound)
		}
		v := append(appendTime(nil, d.Added), d.Fingerprint...)
		if err := tx.Bucket(bucketDevices).Put(deviceKey(d.Skin, account, d.Device), v); err != nil {
			return fmt.Errorf("store: saving a trusted device: %w", err)
		}
		return nil
	})
}

// DeleteDevice stops trusting a device for a skin; ErrNotFound when it was
// not trusted.
func (s *Store) DeleteDevice(skin, account string, device uint32) error {
	account, err := bareJID("operator account", account)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		k := deviceKey(skin, account, device)
		if b.Get(k) == nil {
			return fmt.Errorf("device %d of %s in skin %q: %w", device, account, skin, ErrNotFound)
		}
		return b.Delete(k)
	})
}

// deleteDevicesOf forgets every device a skin trusts.
func deleteDevicesOf(tx *bolt.Tx, skin string) error {
	b := tx.Bucket(bucketDevices)
	prefix := devicePrefix(skin, "")
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("store: forgetting the devices of skin %s: %w", skin, err)
		}
	}
	return nil
}

// Devices returns the devices a skin trusts, of one operator account when
// account is not empty, ordered by account then device ID.
func (s *Store) Devices(skin, account string) ([]TrustedDevice, error) {
	if account != "" {
		a, err := bareJID("operator account", account)
		if err != nil {
			return nil, err
		}
		account = a
	}
	prefix := devicePrefix(skin, account)
	var out []TrustedDevice
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDevices).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			d, err := decodeDevice(k, v)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// AllDevices returns every trusted device of every skin.
func (s *Store) AllDevices() ([]TrustedDevice, error) {
	var out []TrustedDevice
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			d, err := decodeDevice(k, v)
			if err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	return out, err
}
