package omemo

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/chain"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/message"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/state/record"
)

// Export and Restore carry a device across a restart of the program
// holding it: the widget keeps its device in the tab's sessionStorage, so
// that a page reload goes on with the same device ID, keys and sessions.
// The state holds the device's private keys and every session's ratchet
// keys, so it is as secret as the keys: never log it or send it anywhere.
//
// Save the state after Encrypt and before the element leaves ("commit
// before send"), and after every Decrypt: a reload then never restores a
// state older than something already sent. Should one state be restored
// twice all the same (two tabs), the two copies encrypt their next
// messages with the same Signal message keys. That exposes nothing: what
// those keys encrypt is the 32 bytes of fresh random key material of
// each message (its payload has a key of its own), and the peer reads the
// first of the two and refuses the second as a replay. Nothing else in
// the state is ever used twice to encrypt.
//
// Layout, integers big-endian:
//
//	"OTRDESK-OMEMO" ‖ version 1 (1 byte)
//	device ID (4) ‖ identity private key (32)
//	signed prekey: ID (4) ‖ timestamp (8) ‖ private key (32) ‖ signature (64)
//	one-time prekeys to keep (2) ‖ next one-time prekey ID (4)
//	count (2), then per one-time prekey: ID (4) ‖ private key (32)
//	count (4), then per known identity: JID (2 + n) ‖ device (4) ‖ key (32)
//	count (4), then per session: JID (2 + n) ‖ device (4) ‖ record (4 + n)
//
// Public keys are derived again from the private ones. A session record is
// libsignal's own serialization (its JSON form); Restore checks every field
// libsignal would later read unchecked, so what it accepts cannot make
// libsignal panic, and checks that each session belongs to this device's
// identity and to the identity key the device holds for that peer.
// Prekeys are written in order of ID, identities and sessions in order of
// JID and device, each once; Restore requires that order, so a device
// has exactly one encoding and exports to the bytes it was restored from.

const (
	stateMagic   = "OTRDESK-OMEMO"
	stateVersion = 1

	// MaxStateBytes is the largest state Restore reads (and Export
	// writes): well within what a browser keeps in sessionStorage.
	MaxStateBytes = 4 << 20
	// MaxPeers is the most peer devices a saved device may hold
	// identities and sessions for. A visitor's device talks to the few
	// devices of the operators of one chat.
	MaxPeers = 1024
	// maxJIDBytes is the longest JID XMPP allows (RFC 7622: three parts
	// of at most 1023 bytes, and two separators).
	maxJIDBytes = 3071
	// maxSessionBytes bounds one serialized session record. A session
	// keeps at most 40 earlier states and 5 receiving chains; a peer can
	// make it grow only with messages that decrypt, by skipping message
	// keys (up to 2000 per chain), and then its state grows by about
	// 140 bytes per skipped key.
	maxSessionBytes = 1 << 20
	// Bounds libsignal keeps on a session, checked again on restore.
	maxPreviousStates = 40
	maxReceiverChains = 5
	maxMessageKeys    = 2000
)

// ErrBadState is returned by Restore for input that is not a saved device.
var ErrBadState = errors.New("omemo: not a saved device (damaged, or saved by another version of otrdesk)")

// errCannotSave is Export's error for a device Restore would refuse (over
// a bound, or a peer's JID no XMPP address can have): a device that could
// not be restored is not exported.
var errCannotSave = errors.New("omemo: the device cannot be saved")

// Identity returns the identity key the device holds for a peer device:
// the one Pin gave it, or the one the device showed when a session was
// built. ok is false for a device never seen.
func (d *Device) Identity(a Address) (key PublicKey, ok bool) {
	key, ok = d.state.identities[addrKey{a.JID, a.Device}]
	return key, ok
}

// Export returns the device's state; see Restore.
func (d *Device) Export() ([]byte, error) {
	if len(d.state.identities) > MaxPeers || len(d.state.sessions) > MaxPeers {
		return nil, fmt.Errorf("%w: more than %d peer devices", errCannotSave, MaxPeers)
	}
	identities, sessions := sortedAddrs(d.state.identities), sortedAddrs(d.state.sessions)
	for _, k := range append(identities[:len(identities):len(identities)], sessions...) {
		if !validJID(k.jid) {
			return nil, fmt.Errorf("%w: a peer's JID is not one XMPP allows", errCannotSave)
		}
	}
	b := append([]byte(stateMagic), stateVersion)
	b = binary.BigEndian.AppendUint32(b, d.id)
	b = appendPrivate(b, d.identity.PrivateKey())
	b = binary.BigEndian.AppendUint32(b, d.signed.ID())
	b = binary.BigEndian.AppendUint64(b, uint64(d.signed.Timestamp()))
	b = appendPrivate(b, d.signed.KeyPair().PrivateKey())
	sig := d.signed.Signature()
	b = append(b, sig[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(d.target))
	b = binary.BigEndian.AppendUint32(b, d.nextPre)

	ids := make([]uint32, 0, len(d.state.preKeys))
	for id := range d.state.preKeys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ids)))
	for _, id := range ids {
		b = binary.BigEndian.AppendUint32(b, id)
		b = appendPrivate(b, d.state.preKeys[id].KeyPair().PrivateKey())
	}

	b = binary.BigEndian.AppendUint32(b, uint32(len(d.state.identities)))
	for _, k := range identities {
		b = appendAddr(b, k)
		key := d.state.identities[k]
		b = append(b, key[:]...)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(d.state.sessions)))
	for _, k := range sessions {
		s := d.state.sessions[k]
		if len(s) > maxSessionBytes {
			return nil, fmt.Errorf("%w: a session of %d bytes", errCannotSave, len(s))
		}
		b = appendAddr(b, k)
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	if len(b) > MaxStateBytes {
		return nil, fmt.Errorf("%w: %d bytes", errCannotSave, len(b))
	}
	return b, nil
}

func appendPrivate(b []byte, k ecc.ECPrivateKeyable) []byte {
	priv := k.Serialize()
	return append(b, priv[:]...)
}

func appendAddr(b []byte, k addrKey) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(k.jid)))
	b = append(b, k.jid...)
	return binary.BigEndian.AppendUint32(b, k.device)
}

// sortedAddrs returns m's peer devices in the order the state lists
// them: by JID, then device.
func sortedAddrs[V any](m map[addrKey]V) []addrKey {
	keys := make([]addrKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareAddr)
	return keys
}

func compareAddr(x, y addrKey) int {
	if c := cmp.Compare(x.jid, y.jid); c != 0 {
		return c
	}
	return cmp.Compare(x.device, y.device)
}

func addrLess(x, y addrKey) bool { return compareAddr(x, y) < 0 }

// keyPair makes the key pair of a saved private key. ok is false for
// bytes that are not a private key as this package makes them (clamped,
// as Curve25519 uses them): Export writes no others, so Restore reads no
// others, and one state has one encoding.
func keyPair(priv []byte) (kp *ecc.ECKeyPair, ok bool) {
	ok = len(priv) == 32 && priv[0]&7 == 0 && priv[31]&0xc0 == 0x40
	return ecc.CreateKeyPair(priv), ok
}

// Restore makes a device from a state Export returned. It refuses (with
// ErrBadState, naming the part at fault but never its bytes) anything
// else: a damaged or truncated state, a state of another version, one
// over a bound, one whose parts do not belong together. opts.Rand is the
// restored device's source of randomness (crypto/rand if nil);
// opts.PreKeys is ignored: the device keeps as many one-time prekeys as
// it was made with.
func Restore(b []byte, opts Options) (*Device, error) {
	if len(b) > MaxStateBytes {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadState, len(b))
	}
	r := &stateReader{b: b}
	if string(r.bytes(len(stateMagic))) != stateMagic {
		return nil, fmt.Errorf("%w: no state header", ErrBadState)
	}
	if v := r.u8(); v != stateVersion {
		if r.failed {
			return nil, fmt.Errorf("%w: truncated", ErrBadState)
		}
		return nil, fmt.Errorf("%w: state version %d", ErrBadState, v)
	}
	d := &Device{
		rand: opts.Rand,
		state: state{
			sessions:   map[addrKey][]byte{},
			identities: map[addrKey]PublicKey{},
			preKeys:    map[uint32]*record.PreKey{},
		},
	}
	if d.rand == nil {
		d.rand = rand.Reader
	}
	if err := d.readKeys(r); err != nil {
		return nil, err
	}
	if err := d.readPeers(r); err != nil {
		return nil, err
	}
	if r.failed {
		return nil, fmt.Errorf("%w: truncated", ErrBadState)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the end", ErrBadState, len(r.b))
	}
	return d, nil
}

// readKeys reads the device's own keys.
func (d *Device) readKeys(r *stateReader) error {
	d.id = r.u32()
	if d.id == 0 || d.id > MaxDeviceID {
		return fmt.Errorf("%w: device ID", ErrBadState)
	}
	idPair, idOK := keyPair(r.bytes(32))
	d.identity = identity.NewKeyPair(identity.NewKey(idPair.PublicKey()), idPair.PrivateKey())

	spkID, ts := r.u32(), int64(r.u64())
	spk, spkOK := keyPair(r.bytes(32))
	var sig [64]byte
	copy(sig[:], r.bytes(64))
	if r.failed {
		return fmt.Errorf("%w: truncated", ErrBadState)
	}
	if !idOK {
		return fmt.Errorf("%w: identity key", ErrBadState)
	}
	if !spkOK || spkID == 0 || spkID > maxKeyID {
		return fmt.Errorf("%w: signed prekey ID", ErrBadState)
	}
	if !ecc.VerifySignature(idPair.PublicKey(), spk.PublicKey().Serialize(), sig) {
		return fmt.Errorf("%w: the signed prekey is not signed by the identity key", ErrBadState)
	}
	d.signed = record.NewSignedPreKey(spkID, ts, spk, sig, serializer.SignedPreKeyRecord)

	d.target, d.nextPre = int(r.u16()), r.u32()
	if d.target < 1 || d.target > MaxPreKeys {
		return fmt.Errorf("%w: one-time prekeys to keep", ErrBadState)
	}
	if d.nextPre == 0 || d.nextPre > maxKeyID {
		return fmt.Errorf("%w: next one-time prekey ID", ErrBadState)
	}
	n := int(r.u16())
	if n > MaxPreKeys {
		return fmt.Errorf("%w: %d one-time prekeys", ErrBadState, n)
	}
	var last uint32
	for range n {
		id := r.u32()
		kp, ok := keyPair(r.bytes(32))
		if r.failed {
			return fmt.Errorf("%w: truncated", ErrBadState)
		}
		if !ok || id == 0 || id > maxKeyID {
			return fmt.Errorf("%w: one-time prekey", ErrBadState)
		}
		if id <= last {
			return fmt.Errorf("%w: one-time prekeys out of order", ErrBadState)
		}
		last = id
		d.state.preKeys[id] = record.NewPreKey(id, kp, serializer.PreKeyRecord)
	}
	return nil
}

// readPeers reads the identities and sessions of peer devices.
func (d *Device) readPeers(r *stateReader) error {
	var prev addrKey
	n := r.u32()
	if n > MaxPeers {
		return fmt.Errorf("%w: %d identities", ErrBadState, n)
	}
	for i := range n {
		k, ok := r.addr()
		var key PublicKey
		copy(key[:], r.bytes(32))
		if r.failed {
			return fmt.Errorf("%w: truncated", ErrBadState)
		}
		if !ok {
			return fmt.Errorf("%w: identity %d: address", ErrBadState, i)
		}
		if i > 0 && !addrLess(prev, k) {
			return fmt.Errorf("%w: identities out of order", ErrBadState)
		}
		prev = k
		d.state.identities[k] = key
	}
	n = r.u32()
	if n > MaxPeers {
		return fmt.Errorf("%w: %d sessions", ErrBadState, n)
	}
	ours := d.identity.PublicKey().Serialize()
	for i := range n {
		k, ok := r.addr()
		size := r.u32()
		if !r.failed && size > maxSessionBytes {
			return fmt.Errorf("%w: session %d: %d bytes", ErrBadState, i, size)
		}
		s := r.bytes(int(size))
		if r.failed {
			return fmt.Errorf("%w: truncated", ErrBadState)
		}
		if !ok {
			return fmt.Errorf("%w: session %d: address", ErrBadState, i)
		}
		if i > 0 && !addrLess(prev, k) {
			return fmt.Errorf("%w: sessions out of order", ErrBadState)
		}
		prev = k
		peer, known := d.state.identities[k]
		if !known {
			return fmt.Errorf("%w: session %d without the peer's identity", ErrBadState, i)
		}
		if err := checkSession(s, ours, peer.Wire()); err != nil {
			return fmt.Errorf("%w: session %d: %s", ErrBadState, i, err)
		}
		d.state.sessions[k] = bytes.Clone(s)
	}
	return nil
}

// stateReader reads the state's fields in order. A read past the end
// returns zeros and sets failed, so a caller checks once per record.
type stateReader struct {
	b      []byte
	failed bool
}

func (r *stateReader) bytes(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.failed, r.b = true, nil
		return make([]byte, max(n, 0))
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *stateReader) u8() uint8   { return r.bytes(1)[0] }
func (r *stateReader) u16() uint16 { return binary.BigEndian.Uint16(r.bytes(2)) }
func (r *stateReader) u32() uint32 { return binary.BigEndian.Uint32(r.bytes(4)) }
func (r *stateReader) u64() uint64 { return binary.BigEndian.Uint64(r.bytes(8)) }

// addr reads a peer device's JID and device ID; ok is false for a JID
// that cannot be one or a device ID out of range.
func (r *stateReader) addr() (k addrKey, ok bool) {
	n := int(r.u16())
	jid := r.bytes(n)
	k = addrKey{string(jid), r.u32()}
	ok = validJID(k.jid) && k.device != 0 && k.device <= MaxDeviceID
	return k, ok
}

// validJID: a JID may be at most maxJIDBytes of UTF-8.
func validJID(s string) bool { return s != "" && len(s) <= maxJIDBytes && utf8.ValidString(s) }

// errSession is what checkSession says of a record it refuses; the
// reason is a field's name, never its content.
type errSession string

func (e errSession) Error() string { return string(e) }

// checkSession reads a serialized session record and checks every field
// libsignal reads without checking when it loads and uses the session:
// keys of the right length and type, chains and message keys present,
// the bounds libsignal itself keeps. Every state of the record (the
// current one and the earlier ones libsignal keeps to read late
// messages) must be between this device's identity key (ours, 33 bytes)
// and the peer's (peer).
func checkSession(b []byte, ours, peer []byte) error {
	s, err := serializer.Session.Deserialize(b)
	if err != nil {
		return errSession("not a session record")
	}
	if s.SessionState == nil {
		return errSession("no current state")
	}
	if len(s.PreviousStates) > maxPreviousStates {
		return errSession("too many earlier states")
	}
	for _, st := range append([]*record.StateStructure{s.SessionState}, s.PreviousStates...) {
		if err := checkSessionState(st, ours, peer); err != nil {
			return err
		}
	}
	// What passed the checks above must load; this is the call
	// LoadSession makes.
	if _, err := record.NewSessionFromStructure(s, serializer.Session, serializer.State); err != nil {
		return errSession("does not load")
	}
	return nil
}

func checkSessionState(st *record.StateStructure, ours, peer []byte) error {
	switch {
	case st == nil:
		return errSession("empty state")
	case st.SessionVersion != protocol.CurrentVersion:
		return errSession("session version")
	case !bytes.Equal(st.LocalIdentityPublic, ours):
		return errSession("not this device's session")
	case !bytes.Equal(st.RemoteIdentityPublic, peer):
		return errSession("not the identity key held for the peer")
	case !isPublicKey(st.SenderBaseKey):
		return errSession("sender base key")
	case len(st.RootKey) != 32:
		return errSession("root key")
	case len(st.ReceiverChains) > maxReceiverChains:
		return errSession("too many receiving chains")
	}
	if p := st.PendingPreKey; p != nil && (p.PreKeyID == nil || !isPublicKey(p.BaseKey)) {
		return errSession("pending prekey")
	}
	if st.PendingKeyExchange != nil {
		// The key exchange messages of TextSecure version 2, which OMEMO
		// never sends: no session of this package has one.
		return errSession("pending key exchange")
	}
	if st.SenderChain == nil {
		return errSession("no sending chain")
	}
	if err := checkChain(st.SenderChain); err != nil {
		return err
	}
	if len(st.SenderChain.SenderRatchetKeyPrivate) != 32 {
		return errSession("sending chain without its private key")
	}
	for _, c := range st.ReceiverChains {
		if c == nil {
			return errSession("empty receiving chain")
		}
		if err := checkChain(c); err != nil {
			return err
		}
	}
	return nil
}

func checkChain(c *record.ChainStructure) error {
	if !isPublicKey(c.SenderRatchetKeyPublic) {
		return errSession("ratchet key")
	}
	if n := len(c.SenderRatchetKeyPrivate); n != 0 && n != 32 {
		return errSession("ratchet private key")
	}
	if !isChainKey(c.ChainKey) {
		return errSession("chain key")
	}
	if len(c.MessageKeys) > maxMessageKeys {
		return errSession("too many message keys")
	}
	for _, k := range c.MessageKeys {
		if !isMessageKey(k) {
			return errSession("message key")
		}
	}
	return nil
}

func isPublicKey(b []byte) bool {
	_, ok := parsePublicKey(b)
	return ok
}

func isChainKey(k *chain.KeyStructure) bool { return k != nil && len(k.Key) == 32 }

func isMessageKey(k *message.KeysStructure) bool {
	return k != nil && len(k.CipherKey) == 32 && len(k.MacKey) == 32 && len(k.IV) == 16
}
