package omemo

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/logger"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/signalerror"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/util/optional"
)

// Errors of Encrypt and Decrypt, wrapped with the device at fault.
var (
	// ErrNoSession: a recipient has neither a session nor a bundle to
	// build one from.
	ErrNoSession = errors.New("omemo: no session with the device")
	// ErrIdentityChanged: a device shows an identity key other than the
	// one it showed (or was pinned to) first. Its messages are refused
	// and nothing is encrypted to it.
	ErrIdentityChanged = errors.New("omemo: the device's identity key changed")
	// ErrBadBundle: a bundle's signed prekey is not signed by its
	// identity key, or its keys are not usable.
	ErrBadBundle = errors.New("omemo: bundle refused")
	// ErrNotForThisDevice: the message has no key for this device.
	ErrNotForThisDevice = errors.New("omemo: message not encrypted for this device")
	// ErrReplay: the message was decrypted before (or its key was
	// skipped and already used); a replayed message changes nothing.
	ErrReplay = errors.New("omemo: message already received")
	// ErrDecrypt: the device's Signal message did not decrypt.
	ErrDecrypt = errors.New("omemo: cannot decrypt")
	// ErrNoRecipients: Encrypt was given no device to encrypt to.
	ErrNoRecipients = errors.New("omemo: no recipients")

	errKeyType  = errors.New("omemo: key is not Curve25519")
	errReadOnly = errors.New("omemo: libsignal asked to change keys it does not own")
)

func init() {
	// libsignal logs to standard output unless given a logger, and some of
	// its debug lines would carry keys. This package never logs.
	if logger.Logger == nil {
		var l logger.Loggable = silent{}
		logger.Setup(&l)
	}
}

type silent struct{}

func (silent) Debug(string, string)   {}
func (silent) Info(string, string)    {}
func (silent) Warning(string, string) {}
func (silent) Error(string, string)   {}
func (silent) Configure(string)       {}

// DefaultPreKeys is how many one-time prekeys a device keeps published,
// as Conversations and Gajim do.
const DefaultPreKeys = 100

// Options configure NewDevice.
type Options struct {
	// Rand is the source of the device's keys and ID and of every
	// payload key and IV; crypto/rand if nil. (libsignal draws the
	// ratchet's keys and signature nonces from crypto/rand itself.)
	Rand io.Reader
	// PreKeys is how many one-time prekeys the bundle holds:
	// DefaultPreKeys if 0, at most MaxPreKeys. A device that lives for one
	// chat needs a few.
	PreKeys int
}

// A Device is one OMEMO device: its identity key, its signed prekey and
// one-time prekeys, and a session with each peer device it has talked to.
// It does no I/O: Bundle says what to publish, Encrypt returns the element
// to send, Decrypt takes the element that arrived. A Device is not safe
// for concurrent use; one goroutine (or one wasm worker) owns it.
type Device struct {
	rand     io.Reader
	id       uint32
	identity *identity.KeyPair
	signed   *record.SignedPreKey
	target   int    // one-time prekeys to keep
	nextPre  uint32 // next one-time prekey ID; IDs are never reused
	state    state
}

// An Address names a peer device: the account's bare JID and the device ID.
type Address struct {
	JID    string
	Device uint32
}

func (a Address) signal() *protocol.SignalAddress {
	return protocol.NewSignalAddress(a.JID, a.Device)
}

// NewDevice makes a device with a fresh identity key, a random device ID,
// a signed prekey and the one-time prekeys.
func NewDevice(opts Options) (*Device, error) {
	r := opts.Rand
	if r == nil {
		r = rand.Reader
	}
	n := opts.PreKeys
	if n == 0 {
		n = DefaultPreKeys
	}
	if n < 0 || n > MaxPreKeys {
		return nil, fmt.Errorf("omemo: %d prekeys: between 1 and %d", n, MaxPreKeys)
	}
	d := &Device{
		rand:    r,
		target:  n,
		nextPre: 1,
		state: state{
			sessions:   map[addrKey][]byte{},
			identities: map[addrKey]PublicKey{},
			preKeys:    map[uint32]*record.PreKey{},
		},
	}
	var b [4]byte
	for d.id == 0 {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return nil, fmt.Errorf("omemo: reading randomness: %w", err)
		}
		d.id = binary.BigEndian.Uint32(b[:]) & MaxDeviceID
	}
	idPair, err := d.keyPair()
	if err != nil {
		return nil, err
	}
	d.identity = identity.NewKeyPair(identity.NewKey(idPair.PublicKey()), idPair.PrivateKey())
	spk, err := d.keyPair()
	if err != nil {
		return nil, err
	}
	sig := ecc.CalculateSignature(d.identity.PrivateKey(), spk.PublicKey().Serialize())
	d.signed = record.NewSignedPreKey(1, 0, spk, sig, serializer.SignedPreKeyRecord)
	keys, err := d.freshKeys(n)
	if err != nil {
		return nil, err
	}
	d.addPreKeys(keys)
	return d, nil
}

func (d *Device) keyPair() (*ecc.ECKeyPair, error) {
	var priv [32]byte
	if _, err := io.ReadFull(d.rand, priv[:]); err != nil {
		return nil, fmt.Errorf("omemo: reading randomness: %w", err)
	}
	return ecc.CreateKeyPair(priv[:]), nil
}

// freshKeys makes n key pairs for one-time prekeys. They are made before
// anything changes, so that a failure to read randomness leaves the
// device as it was.
func (d *Device) freshKeys(n int) ([]*ecc.ECKeyPair, error) {
	keys := make([]*ecc.ECKeyPair, 0, n)
	for range n {
		kp, err := d.keyPair()
		if err != nil {
			return nil, err
		}
		keys = append(keys, kp)
	}
	return keys, nil
}

// addPreKeys installs one-time prekeys under IDs never used before (a peer
// may hold an old bundle naming a used one).
func (d *Device) addPreKeys(keys []*ecc.ECKeyPair) {
	for _, kp := range keys {
		id := d.nextPre
		d.nextPre++
		if d.nextPre > maxKeyID {
			d.nextPre = 1
		}
		d.state.preKeys[id] = record.NewPreKey(id, kp, serializer.PreKeyRecord)
	}
}

// ID is the device ID, published in the device list and sent as sid.
func (d *Device) ID() uint32 { return d.id }

// IdentityKey is the device's public identity key.
func (d *Device) IdentityKey() PublicKey {
	k, _ := parsePublicKey(d.identity.PublicKey().Serialize())
	return k
}

// Fingerprint is the fingerprint of the device's identity key.
func (d *Device) Fingerprint() Fingerprint { return d.IdentityKey().Fingerprint() }

// Bundle is what the device publishes on BundleNode(d.ID()): it changes
// when a peer used up a one-time prekey (Message.Republish).
func (d *Device) Bundle() *Bundle {
	b := &Bundle{SignedPreKeyID: d.signed.ID(), Signature: d.signed.Signature(), IdentityKey: d.IdentityKey()}
	b.SignedPreKey, _ = parsePublicKey(d.signed.KeyPair().PublicKey().Serialize())
	for id, pk := range d.state.preKeys {
		k, _ := parsePublicKey(pk.KeyPair().PublicKey().Serialize())
		b.PreKeys = append(b.PreKeys, PreKey{ID: id, Key: k})
	}
	// In ID order, so the same keys make the same bundle.
	slices.SortFunc(b.PreKeys, func(x, y PreKey) int { return cmp.Compare(x.ID, y.ID) })
	return b
}

// Pin fixes the identity key a peer device must have before any message
// is exchanged with it: a bundle or message showing another key is then
// refused with ErrIdentityChanged. Without a pin, the first key a device
// shows is kept.
func (d *Device) Pin(a Address, key PublicKey) error {
	k := addrKey{a.JID, a.Device}
	if known, ok := d.state.identities[k]; ok && known != key {
		return fmt.Errorf("%w: %s/%d", ErrIdentityChanged, a.JID, a.Device)
	}
	d.state.identities[k] = key
	return nil
}

// HasSession reports whether the device can encrypt to a without a bundle.
func (d *Device) HasSession(a Address) bool {
	_, ok := d.state.sessions[addrKey{a.JID, a.Device}]
	return ok
}

// A Recipient is a device to encrypt to, with its bundle when there may
// be no session with it yet. With a session the bundle is only checked
// against the identity key the device showed before.
type Recipient struct {
	Address
	Bundle *Bundle
}

// Encrypt encrypts plaintext for every recipient and returns the
// <encrypted/> element. It builds a session from the bundle for a
// recipient without one (X3DH on a one-time prekey picked at random), and
// then the key for that device is a prekey message until the device
// answers. Either every recipient gets a key or the device is unchanged
// and an error names the first recipient that failed.
func (d *Device) Encrypt(plaintext []byte, to []Recipient) (*Encrypted, error) {
	if len(plaintext) > MaxPayloadBytes {
		return nil, fmt.Errorf("%w: plaintext of %d bytes", ErrTooLarge, len(plaintext))
	}
	material, iv, payload, err := sealPayload(d.rand, plaintext)
	if err != nil {
		return nil, err
	}
	e, err := d.encryptKey(material, iv, to)
	if err != nil {
		return nil, err
	}
	e.Payload = payload
	return e, nil
}

// KeyTransport returns an <encrypted/> element without payload for the
// recipients: it moves their sessions on without a message to show.
// Send one to a device whose prekey message arrived (Message.PreKey) when
// there is nothing else to say, so that it stops sending prekey messages.
func (d *Device) KeyTransport(to []Recipient) (*Encrypted, error) {
	material, iv, _, err := sealPayload(d.rand, nil)
	if err != nil {
		return nil, err
	}
	return d.encryptKey(material, iv, to)
}

func (d *Device) encryptKey(material, iv []byte, to []Recipient) (*Encrypted, error) {
	if len(to) == 0 {
		return nil, ErrNoRecipients
	}
	if len(to) > MaxKeys {
		return nil, fmt.Errorf("%w: %d recipients", ErrTooLarge, len(to))
	}
	ctx := context.Background()
	t := d.begin()
	e := &Encrypted{SID: d.id, IV: iv}
	seen := make(map[Address]bool, len(to))
	for _, r := range to {
		if seen[r.Address] {
			continue
		}
		seen[r.Address] = true
		k, err := d.encryptTo(ctx, t, r, material)
		if err != nil {
			return nil, fmt.Errorf("%w (device %s/%d)", err, r.JID, r.Device)
		}
		e.Keys = append(e.Keys, k)
	}
	t.commit()
	return e, nil
}

func (d *Device) encryptTo(ctx context.Context, t *tx, r Recipient, material []byte) (Key, error) {
	if r.Device == 0 || r.Device > MaxDeviceID {
		return Key{}, fmt.Errorf("%w: device id", ErrMalformed)
	}
	addr := r.Address.signal()
	builder := session.NewBuilder(t, t, t, t, addr, serializer)
	_, has := t.session(keyOf(addr))
	if r.Bundle != nil {
		if known, ok := t.identity(keyOf(addr)); ok && known != r.Bundle.IdentityKey {
			return Key{}, ErrIdentityChanged
		}
	}
	if !has {
		if r.Bundle == nil {
			return Key{}, ErrNoSession
		}
		if err := builder.ProcessBundle(ctx, d.signalBundle(r)); err != nil {
			if errors.Is(err, signalerror.ErrUntrustedIdentity) {
				return Key{}, ErrIdentityChanged
			}
			return Key{}, fmt.Errorf("%w: %v", ErrBadBundle, err)
		}
	}
	msg, err := session.NewCipher(builder, addr).Encrypt(ctx, material)
	if err != nil {
		return Key{}, mapError(err)
	}
	return Key{RID: r.Device, PreKey: msg.Type() == protocol.PREKEY_TYPE, Data: msg.Serialize()}, nil
}

// signalBundle converts a bundle for libsignal, picking one of its
// one-time prekeys at random as clients do (so that two senders rarely
// pick the same one).
func (d *Device) signalBundle(r Recipient) *prekey.Bundle {
	b := r.Bundle
	preID := optional.NewEmptyUint32()
	var pre ecc.ECPublicKeyable
	if len(b.PreKeys) > 0 {
		var x [4]byte
		io.ReadFull(d.rand, x[:]) // a failed read picks the first: no harm
		p := b.PreKeys[binary.BigEndian.Uint32(x[:])%uint32(len(b.PreKeys))]
		preID = optional.NewOptionalUint32(p.ID)
		pre = ecc.NewDjbECPublicKey(p.Key)
	}
	return prekey.NewBundle(r.Device, r.Device, preID, b.SignedPreKeyID,
		pre, ecc.NewDjbECPublicKey(b.SignedPreKey), b.Signature,
		identity.NewKey(ecc.NewDjbECPublicKey(b.IdentityKey)))
}

// A Message is what Decrypt found.
type Message struct {
	// Plaintext is the message; nil for a key transport element.
	Plaintext []byte
	// From is the sending device.
	From Address
	// Fingerprint is the sending device's identity key: whether to
	// trust it is the caller's decision.
	Fingerprint Fingerprint
	// PreKey: the message built (or rebuilt) the session. Answer the
	// device soon (a message or KeyTransport) so it stops sending prekey
	// messages.
	PreKey bool
	// Republish: a one-time prekey was used up and replaced; publish
	// Bundle() again.
	Republish bool
}

// Decrypt decrypts an <encrypted/> element that arrived from the account
// from (its bare JID). The device's state changes only if the message
// decrypted in full, payload included: a forged, altered or replayed
// message leaves every session as it was.
func (d *Device) Decrypt(from string, e *Encrypted) (*Message, error) {
	var key *Key
	for i := range e.Keys {
		if e.Keys[i].RID == d.id {
			key = &e.Keys[i]
			break
		}
	}
	if key == nil {
		return nil, ErrNotForThisDevice
	}
	addr := Address{JID: from, Device: e.SID}
	if addr.Device == 0 || addr.Device > MaxDeviceID {
		return nil, fmt.Errorf("%w: sid", ErrMalformed)
	}
	ctx := context.Background()
	t := d.begin()
	builder := session.NewBuilder(t, t, t, t, addr.signal(), serializer)
	cipher := session.NewCipher(builder, addr.signal())
	var material []byte
	if key.PreKey {
		msg, err := parsePreKeyMessage(key.Data)
		if err != nil {
			return nil, err
		}
		if material, err = cipher.DecryptMessage(ctx, msg); err != nil {
			return nil, fmt.Errorf("%w (device %s/%d)", mapError(err), from, e.SID)
		}
	} else {
		msg, err := parseSignalMessage(key.Data)
		if err != nil {
			return nil, err
		}
		if material, err = cipher.Decrypt(ctx, msg); err != nil {
			return nil, fmt.Errorf("%w (device %s/%d)", mapError(err), from, e.SID)
		}
	}
	m := &Message{From: addr, PreKey: key.PreKey}
	if e.Payload != nil {
		pt, err := openPayload(material, e.IV, e.Payload)
		if err != nil {
			return nil, fmt.Errorf("%w (device %s/%d)", err, from, e.SID)
		}
		m.Plaintext = pt
	}
	fp, ok := t.identity(keyOf(addr.signal()))
	if !ok {
		return nil, fmt.Errorf("%w: no identity after decrypting", ErrDecrypt)
	}
	m.Fingerprint = fp.Fingerprint()
	// A used one-time prekey is replaced at once, so that the bundle to
	// republish is full again.
	fresh, err := d.freshKeys(len(t.removed))
	if err != nil {
		return nil, err
	}
	t.commit()
	d.addPreKeys(fresh)
	m.Republish = len(fresh) > 0
	return m, nil
}

// mapError turns libsignal's errors into this package's sentinels.
// libsignal's texts name counters and key IDs, never key bytes.
func mapError(err error) error {
	switch {
	case errors.Is(err, signalerror.ErrUntrustedIdentity):
		return ErrIdentityChanged
	case errors.Is(err, signalerror.ErrOldCounter):
		return ErrReplay
	case errors.Is(err, signalerror.ErrNoSessionForUser):
		return ErrNoSession
	}
	return fmt.Errorf("%w: %v", ErrDecrypt, err)
}
