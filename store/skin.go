package store

import (
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"otrdesk.im/otrdesk/otr"
)

// Policy is a skin's OTR policy: require, opportunistic or plaintext.
type Policy string

// The three policies.
const (
	// PolicyRequire relays no plaintext either way.
	PolicyRequire Policy = "require"
	// PolicyOpportunistic relays everything; the widget starts OTR itself.
	PolicyOpportunistic Policy = "opportunistic"
	// PolicyPlaintext relays everything; the widget does not start OTR.
	PolicyPlaintext Policy = "plaintext"
)

// Skin is one chat box: what the widget shows, who answers, where it may be
// embedded and which OTR keys vouch for it.
type Skin struct {
	Name     string // [a-z0-9][a-z0-9-]{0,62}, not starting with "guest-"; the key
	Title    string // shown in the widget's header; required
	Greeting string // first line in the chat; may be empty
	Color    string // "#RRGGBB", or empty for the widget's default
	Policy   Policy

	Operators     []string          // bare JIDs, normalised, no duplicates
	OperatorNames map[string]string // bare JID (one of Operators) -> display name
	Origins       []string          // "scheme://host[:port]"; empty means any origin

	Keys []SkinKey // fingerprint history, newest first

	Created, Updated time.Time // set by the store
}

// SkinKey is one OTR public key a skin has published.
type SkinKey struct {
	Fingerprint otr.Fingerprint // SHA-1 over MPI p‖q‖g‖y; stored as 40 lower-case hex digits
	PublicKey   []byte          // OTR encoding 0x0000 ‖ MPI p ‖ q ‖ g ‖ y; may be empty
	Created     time.Time       // when it was generated
	Retired     time.Time       // when a newer key replaced it; zero while current
	Revoked     bool            // dropped at once, no grace
}

// Size limits for skin fields.
const (
	maxTitle     = 200
	maxGreeting  = 2000
	maxNick      = 64
	maxOperators = 100
	maxOrigins   = 100
	maxKeys      = 100
	maxPublicKey = 1024 // a DSA-1024 key is about 430 bytes
)

// skinRecord is the JSON stored under skins/<name>. Field names are short
// and stable: renaming one is a schema change that needs a migration.
type skinRecord struct {
	Title         string            `json:"title"`
	Greeting      string            `json:"greeting,omitempty"`
	Color         string            `json:"color,omitempty"`
	Policy        Policy            `json:"policy"`
	Operators     []string          `json:"operators,omitempty"`
	OperatorNames map[string]string `json:"operator_names,omitempty"`
	Origins       []string          `json:"origins,omitempty"`
	Keys          []keyRecord       `json:"keys,omitempty"`
	Created       time.Time         `json:"created"`
	Updated       time.Time         `json:"updated"`
}

type keyRecord struct {
	Fingerprint string    `json:"fingerprint"`
	PublicKey   []byte    `json:"public_key,omitempty"`
	Created     time.Time `json:"created"`
	Retired     time.Time `json:"retired,omitzero"`
	Revoked     bool      `json:"revoked,omitempty"`
}

func encodeSkin(sk Skin) ([]byte, error) {
	r := skinRecord{
		Title: sk.Title, Greeting: sk.Greeting, Color: sk.Color, Policy: sk.Policy,
		Operators: sk.Operators, OperatorNames: sk.OperatorNames, Origins: sk.Origins,
		Created: sk.Created, Updated: sk.Updated,
	}
	for _, k := range sk.Keys {
		r.Keys = append(r.Keys, keyRecord{Fingerprint: k.Fingerprint.Hex(), PublicKey: k.PublicKey, Created: k.Created, Retired: k.Retired, Revoked: k.Revoked})
	}
	return json.Marshal(r)
}

// decodeSkin decodes the value stored under skins/<name>.
func decodeSkin(name string, b []byte) (Skin, error) {
	var r skinRecord
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&r); err != nil {
		return Skin{}, failf(ErrCorrupt, "skin %q: the stored record is damaged: %w", name, err)
	}
	if d.More() {
		return Skin{}, failf(ErrCorrupt, "skin %q: the stored record is damaged: trailing data", name)
	}
	sk := Skin{
		Name: name, Title: r.Title, Greeting: r.Greeting, Color: r.Color, Policy: r.Policy,
		Operators: r.Operators, OperatorNames: r.OperatorNames, Origins: r.Origins,
		Created: r.Created, Updated: r.Updated,
	}
	for _, k := range r.Keys {
		var fp otr.Fingerprint
		if len(k.Fingerprint) != hex.EncodedLen(len(fp)) {
			return Skin{}, failf(ErrCorrupt, "skin %q: the stored record is damaged: a fingerprint is not 40 hex digits", name)
		}
		if _, err := hex.Decode(fp[:], []byte(k.Fingerprint)); err != nil {
			return Skin{}, failf(ErrCorrupt, "skin %q: the stored record is damaged: a fingerprint is not 40 hex digits", name)
		}
		sk.Keys = append(sk.Keys, SkinKey{Fingerprint: fp, PublicKey: k.PublicKey, Created: k.Created, Retired: k.Retired, Revoked: k.Revoked})
	}
	return sk, nil
}

// checkSkin validates sk and returns it normalised (JIDs and origins in
// canonical form). It does not look at Created and Updated.
func checkSkin(sk Skin) (Skin, error) {
	if err := ValidSkinName(sk.Name); err != nil {
		return sk, err
	}
	in := func(err error) error { return fmt.Errorf("store: skin %s: %w", sk.Name, unprefix(err)) }
	if sk.Title == "" {
		return sk, in(invalid("title is empty: give the skin a title such as \"Support\""))
	}
	if err := text("title", sk.Title, maxTitle, false); err != nil {
		return sk, in(err)
	}
	if err := text("greeting", sk.Greeting, maxGreeting, true); err != nil {
		return sk, in(err)
	}
	if err := validColor(sk.Color); err != nil {
		return sk, in(err)
	}
	if err := validPolicy(sk.Policy); err != nil {
		return sk, in(err)
	}

	if len(sk.Operators) > maxOperators {
		return sk, in(invalid("%d operators: use at most %d", len(sk.Operators), maxOperators))
	}
	ops := make([]string, 0, len(sk.Operators))
	seen := make(map[string]bool)
	for _, o := range sk.Operators {
		j, err := bareJID("operator", o)
		if err != nil {
			return sk, in(err)
		}
		if seen[j] {
			return sk, in(invalid("operator %s is listed twice: list each operator once", j))
		}
		seen[j] = true
		ops = append(ops, j)
	}
	var names map[string]string
	for o, n := range sk.OperatorNames {
		j, err := bareJID("operator name key", o)
		if err != nil {
			return sk, in(err)
		}
		if !seen[j] {
			return sk, in(invalid("display name for %s, who is not an operator of the skin: add %s to the operators or drop the name", j, j))
		}
		if n == "" {
			continue
		}
		if err := text("display name of "+j, n, maxNick, false); err != nil {
			return sk, in(err)
		}
		if names == nil {
			names = make(map[string]string)
		}
		names[j] = n
	}

	if len(sk.Origins) > maxOrigins {
		return sk, in(invalid("%d origins: use at most %d", len(sk.Origins), maxOrigins))
	}
	var origins []string
	seenOrigin := make(map[string]bool)
	for _, o := range sk.Origins {
		n, err := origin(o)
		if err != nil {
			return sk, in(err)
		}
		if !seenOrigin[n] {
			seenOrigin[n] = true
			origins = append(origins, n)
		}
	}

	if len(sk.Keys) > maxKeys {
		return sk, in(invalid("%d keys in the history: keep at most %d", len(sk.Keys), maxKeys))
	}
	var keys []SkinKey
	seenKey := make(map[otr.Fingerprint]bool)
	for i, k := range sk.Keys {
		if err := checkKey(k); err != nil {
			return sk, in(fmt.Errorf("key %d: %w", i, unprefix(err)))
		}
		if seenKey[k.Fingerprint] {
			return sk, in(invalid("key %s appears twice in the history", k.Fingerprint))
		}
		seenKey[k.Fingerprint] = true
		k.PublicKey = bytes.Clone(k.PublicKey)
		keys = append(keys, k)
	}

	sk.Operators = ops
	if len(ops) == 0 {
		sk.Operators = nil
	}
	sk.OperatorNames = names
	sk.Origins = origins
	sk.Keys = keys
	return sk, nil
}

// checkKey validates one published key.
func checkKey(k SkinKey) error {
	fp := k.Fingerprint
	if fp.IsZero() {
		return invalid("the fingerprint is missing")
	}
	if len(k.PublicKey) > maxPublicKey {
		return invalid("public key is %d bytes: an OTR DSA public key is at most %d", len(k.PublicKey), maxPublicKey)
	}
	if len(k.PublicKey) > 0 {
		if len(k.PublicKey) < 3 || k.PublicKey[0] != 0 || k.PublicKey[1] != 0 {
			return invalid("public key does not start with the OTR DSA key type 0x0000")
		}
		if got := otr.Fingerprint(sha1.Sum(k.PublicKey[2:])); got != fp {
			return invalid("fingerprint %v does not match the public key (whose fingerprint is %v)", fp, got)
		}
	}
	if k.Created.IsZero() {
		return invalid("key %s has no creation time: set Created", fp)
	}
	return nil
}

// CreateSkin stores a new skin. Created and Updated are set to now unless
// given. It returns ErrExists if the name is taken and an ErrInvalid error
// that says what to change if a field is invalid.
func (s *Store) CreateSkin(sk Skin) error {
	sk, err := checkSkin(sk)
	if err != nil {
		return err
	}
	now := s.now().UTC().Round(0)
	if sk.Created.IsZero() {
		sk.Created = now
	}
	if sk.Updated.IsZero() {
		sk.Updated = sk.Created
	}
	v, err := encodeSkin(sk)
	if err != nil {
		return fmt.Errorf("store: encoding skin %s: %w", sk.Name, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSkins)
		if b.Get([]byte(sk.Name)) != nil {
			return failf(ErrExists, "skin %s already exists", sk.Name)
		}
		return b.Put([]byte(sk.Name), v)
	})
	if err != nil && !errors.Is(err, ErrExists) {
		return fmt.Errorf("store: creating skin %s: %w", sk.Name, err)
	}
	return err
}

// Skin returns the named skin, or ErrNotFound.
func (s *Store) Skin(name string) (Skin, error) {
	return getOne(s, bucketSkins, name, decodeSkin, func() error {
		return failf(ErrNotFound, "skin %q does not exist", name)
	})
}

// Skins returns every skin, sorted by name (bbolt keeps keys in byte
// order, and a skin name is its key).
func (s *Store) Skins() ([]Skin, error) {
	return listAll(s, bucketSkins, decodeSkin)
}

// UpdateSkin reads the named skin, lets fn change it, validates the result
// and stores it, all in one transaction, and returns the stored skin. fn
// must not change Name; Created is kept and Updated set to now. An error
// from fn is returned as is and nothing changes.
func (s *Store) UpdateSkin(name string, fn func(*Skin) error) (Skin, error) {
	var out Skin
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSkins)
		v := b.Get([]byte(name))
		if v == nil {
			return failf(ErrNotFound, "skin %q does not exist", name)
		}
		sk, err := decodeSkin(name, v)
		if err != nil {
			return err
		}
		created := sk.Created
		if err := fn(&sk); err != nil {
			return err
		}
		if sk.Name != name {
			return invalid("skin %s: the name cannot be changed (to %q): create a new skin and delete this one", name, sk.Name)
		}
		sk, err = checkSkin(sk)
		if err != nil {
			return err
		}
		sk.Created = created
		sk.Updated = s.now().UTC().Round(0)
		nv, err := encodeSkin(sk)
		if err != nil {
			return fmt.Errorf("store: encoding skin %s: %w", name, err)
		}
		if err := b.Put([]byte(name), nv); err != nil {
			return fmt.Errorf("store: updating skin %s: %w", name, err)
		}
		out = sk
		return nil
	})
	if err != nil {
		return Skin{}, err
	}
	return out, nil
}

// DeleteSkin removes the named skin, or returns ErrNotFound. Its guests and
// statistics stay: guests expire through PurgeGuests, and statistics stay
// readable through Stats.
func (s *Store) DeleteSkin(name string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSkins)
		if b.Get([]byte(name)) == nil {
			return failf(ErrNotFound, "skin %q does not exist", name)
		}
		if err := b.Delete([]byte(name)); err != nil {
			return fmt.Errorf("store: deleting skin %s: %w", name, err)
		}
		// The OMEMO devices the skin trusted go with it: a skin made
		// again under the same name starts trusting nothing. (Its signed
		// keyring stays, so that a new keyring's serial still has to grow.)
		return deleteDevicesOf(tx, name)
	})
}
