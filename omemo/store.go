package omemo

import (
	"bytes"
	"context"

	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/state/record"
)

// The stores libsignal asks for, in memory. libsignal changes a session
// while it tries a message (it advances the receiving chain before it
// checks the MAC) and saves a prekey message's identity key before the
// message has decrypted, so nothing it does may touch the device directly:
// every Encrypt and Decrypt runs in a tx, a copy-on-write view of the
// device's state, and only an operation that succeeded in full commits it.
// Sessions are kept serialized, so a failed attempt leaves nothing behind.

type addrKey struct {
	jid    string
	device uint32
}

func keyOf(a *protocol.SignalAddress) addrKey { return addrKey{a.Name(), a.DeviceID()} }

// state is what a Device owns besides its own keys.
type state struct {
	sessions   map[addrKey][]byte    // serialized record.Session
	identities map[addrKey]PublicKey // the identity key each peer device first showed
	preKeys    map[uint32]*record.PreKey
}

// tx records writes over a state until commit.
type tx struct {
	d          *Device
	sessions   map[addrKey][]byte
	identities map[addrKey]PublicKey
	removed    map[uint32]bool // one-time prekeys used up
}

func (d *Device) begin() *tx {
	return &tx{
		d:          d,
		sessions:   map[addrKey][]byte{},
		identities: map[addrKey]PublicKey{},
		removed:    map[uint32]bool{},
	}
}

// commit applies the writes.
func (t *tx) commit() {
	for k, v := range t.sessions {
		t.d.state.sessions[k] = v
	}
	for k, v := range t.identities {
		t.d.state.identities[k] = v
	}
	for id := range t.removed {
		delete(t.d.state.preKeys, id)
	}
}

var serializer = serialize.NewProtoBufSerializer()

func (t *tx) session(k addrKey) ([]byte, bool) {
	if b, ok := t.sessions[k]; ok {
		return b, true
	}
	b, ok := t.d.state.sessions[k]
	return b, ok
}

func (t *tx) identity(k addrKey) (PublicKey, bool) {
	if v, ok := t.identities[k]; ok {
		return v, true
	}
	v, ok := t.d.state.identities[k]
	return v, ok
}

// store.IdentityKey

func (t *tx) GetIdentityKeyPair() *identity.KeyPair { return t.d.identity }
func (t *tx) GetLocalRegistrationID() uint32        { return t.d.id }

func (t *tx) SaveIdentity(_ context.Context, a *protocol.SignalAddress, k *identity.Key) error {
	pk, ok := parsePublicKey(k.Serialize())
	if !ok {
		return errKeyType
	}
	t.identities[keyOf(a)] = pk
	return nil
}

// IsTrustedIdentity trusts the first identity key a peer device shows and
// refuses any other one for that device ever after. Whether that first
// key belongs to a device the user trusts is not libsignal's question: the
// caller compares Message.Fingerprint, or pins keys with Device.Pin
// before the first message.
func (t *tx) IsTrustedIdentity(_ context.Context, a *protocol.SignalAddress, k *identity.Key) (bool, error) {
	known, ok := t.identity(keyOf(a))
	if !ok {
		return true, nil
	}
	return bytes.Equal(known.Wire(), k.Serialize()), nil
}

// store.Session

func (t *tx) LoadSession(_ context.Context, a *protocol.SignalAddress) (*record.Session, error) {
	b, ok := t.session(keyOf(a))
	if !ok {
		return record.NewSession(serializer.Session, serializer.State), nil
	}
	return record.NewSessionFromBytes(b, serializer.Session, serializer.State)
}

func (t *tx) GetSubDeviceSessions(_ context.Context, name string) ([]uint32, error) {
	var ids []uint32
	for k := range t.d.state.sessions {
		if k.jid == name {
			ids = append(ids, k.device)
		}
	}
	for k := range t.sessions {
		if _, dup := t.d.state.sessions[k]; k.jid == name && !dup {
			ids = append(ids, k.device)
		}
	}
	return ids, nil
}

func (t *tx) StoreSession(_ context.Context, a *protocol.SignalAddress, r *record.Session) error {
	t.sessions[keyOf(a)] = r.Serialize()
	return nil
}

func (t *tx) ContainsSession(_ context.Context, a *protocol.SignalAddress) (bool, error) {
	_, ok := t.session(keyOf(a))
	return ok, nil
}

// Sessions are never deleted through libsignal: a Device keeps every
// session it built for as long as it lives (a visitor's device lives for
// one chat), and refuses libsignal's requests to drop one.
func (t *tx) DeleteSession(context.Context, *protocol.SignalAddress) error { return errReadOnly }
func (t *tx) DeleteAllSessions(context.Context) error                      { return errReadOnly }

// store.PreKey

func (t *tx) LoadPreKey(_ context.Context, id uint32) (*record.PreKey, error) {
	if t.removed[id] {
		return nil, nil
	}
	return t.d.state.preKeys[id], nil
}

func (t *tx) StorePreKey(context.Context, uint32, *record.PreKey) error { return errReadOnly }

func (t *tx) ContainsPreKey(_ context.Context, id uint32) (bool, error) {
	_, ok := t.d.state.preKeys[id]
	return ok && !t.removed[id], nil
}

func (t *tx) RemovePreKey(_ context.Context, id uint32) error {
	t.removed[id] = true
	return nil
}

// store.SignedPreKey

func (t *tx) LoadSignedPreKey(_ context.Context, id uint32) (*record.SignedPreKey, error) {
	if id != t.d.signed.ID() {
		return nil, nil
	}
	return t.d.signed, nil
}

func (t *tx) LoadSignedPreKeys(context.Context) ([]*record.SignedPreKey, error) {
	return []*record.SignedPreKey{t.d.signed}, nil
}

func (t *tx) StoreSignedPreKey(context.Context, uint32, *record.SignedPreKey) error {
	return errReadOnly
}

func (t *tx) ContainsSignedPreKey(_ context.Context, id uint32) (bool, error) {
	return id == t.d.signed.ID(), nil
}

func (t *tx) RemoveSignedPreKey(context.Context, uint32) error { return errReadOnly }
