package otr

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"math/big"
	"time"
)

// msgState is the message state of Protocol-v3 "The protocol state machine".
type msgState uint8

const (
	statePlaintext msgState = iota
	stateEncrypted
	stateFinished
)

const flagIgnoreUnreadable = 0x01

// Errors of Data messages.
var (
	ErrUnreadable = errors.New("otr: received an encrypted message that cannot be read (the session may have ended or restarted)")
	ErrBadMAC     = errors.New("otr: received a message whose authenticator does not match (tampered or for another session)")
	ErrReplayed   = errors.New("otr: received a repeated or out-of-order message counter (possible replay)")
)

// session is the state kept for one peer instance (one instance tag, or
// the single version 2 peer): the AKE in progress, the message state and
// the data-message keys (Protocol-v3 "Data Exchange").
type session struct {
	tag     uint32 // the peer's instance tag; 0 for version 2
	version int
	ake     ake
	state   msgState
	seen    uint64 // recency, for choosing the best instance

	theirKey *PublicKey
	ssid     [8]byte

	ourKeyID            uint32 // id of ourCur; ourPrev has ourKeyID-1
	ourCur, ourPrev     dhKey
	theirKeyID          uint32 // id of theirCur; theirPrev has theirKeyID-1
	theirCur, theirPrev *big.Int
	keys                map[[2]uint32]*dataKeys
	ctrBase             uint64 // first send counter of new key pairs; past 2^32 after Restore
	oldMACs             []byte
	lastSent            time.Time

	smp smpState
}

// dataKeys are the keys for one (our key id, their key id) pair.
type dataKeys struct {
	sendAES, recvAES [16]byte
	sendMAC, recvMAC [20]byte
	extra            [32]byte
	sendCtr          uint64
	recvCtr          uint64
	recvMACUsed      bool
}

func deriveDataKeys(our dhKey, their *big.Int) *dataKeys {
	s := new(big.Int).Exp(their, our.priv, dhP)
	secbytes := appendMPI(nil, s)
	sendByte, recvByte := byte(0x02), byte(0x01)
	if our.pub.Cmp(their) > 0 {
		sendByte, recvByte = 0x01, 0x02
	}
	k := new(dataKeys)
	h := sha1.Sum(append([]byte{sendByte}, secbytes...))
	copy(k.sendAES[:], h[:16])
	k.sendMAC = sha1.Sum(k.sendAES[:])
	h = sha1.Sum(append([]byte{recvByte}, secbytes...))
	copy(k.recvAES[:], h[:16])
	k.recvMAC = sha1.Sum(k.recvAES[:])
	k.extra = sha256.Sum256(append([]byte{0xff}, secbytes...))
	return k
}

// goEncrypted installs the keys of a finished AKE: the AKE key becomes our
// previous key (the one the peer knows) and a fresh key our current one.
func (c *Conversation) goEncrypted(s *session, theirKey *PublicKey, theirKeyID uint32) error {
	next, err := c.newDHKey()
	if err != nil {
		return err
	}
	a := &s.ake
	s.version = a.version
	s.theirKey = theirKey
	s.ssid = a.keys.ssid
	s.ourPrev = a.our
	s.ourCur = next
	s.ourKeyID = a.ourKeyID + 1
	s.theirCur = a.theirPub
	s.theirPrev = nil
	s.theirKeyID = theirKeyID
	s.keys = make(map[[2]uint32]*dataKeys)
	s.oldMACs = nil
	s.state = stateEncrypted
	s.smp = smpState{}
	s.ake = ake{}
	return nil
}

// encryptedWith reports whether the session is encrypted with the peer
// key whose fingerprint is fp.
func (s *session) encryptedWith(fp Fingerprint) bool {
	return s.state == stateEncrypted && s.theirKey != nil && s.theirKey.Fingerprint() == fp
}

func (s *session) keysFor(ourID, theirID uint32) (*dataKeys, bool) {
	var our dhKey
	switch {
	case ourID == s.ourKeyID:
		our = s.ourCur
	case ourID+1 == s.ourKeyID && s.ourPrev.priv != nil:
		our = s.ourPrev
	default:
		return nil, false
	}
	var their *big.Int
	switch {
	case theirID == s.theirKeyID:
		their = s.theirCur
	case theirID+1 == s.theirKeyID && s.theirPrev != nil:
		their = s.theirPrev
	default:
		return nil, false
	}
	id := [2]uint32{ourID, theirID}
	if k, ok := s.keys[id]; ok {
		return k, true
	}
	k := deriveDataKeys(our, their)
	k.sendCtr = s.ctrBase
	s.keys[id] = k
	return k, true
}

// forget drops the key pairs that use an id no longer kept, remembering
// the receiving MAC keys that were used so they can be revealed.
func (s *session) forget() {
	for id, k := range s.keys {
		if id[0]+1 >= s.ourKeyID && id[1]+1 >= s.theirKeyID {
			continue
		}
		if k.recvMACUsed {
			s.oldMACs = append(s.oldMACs, k.recvMAC[:]...)
		}
		delete(s.keys, id)
	}
}

// header returns the header of an encoded message to this session.
func (c *Conversation) header(version int, typ MessageType, receiver uint32) []byte {
	b := appendShort(nil, uint16(version))
	b = append(b, byte(typ))
	if version == 3 {
		b = appendInt(b, c.ourTag)
		b = appendInt(b, receiver)
	}
	return b
}

// encrypt builds a Data message carrying plaintext and tlvs.
func (c *Conversation) encrypt(s *session, plaintext []byte, tlvs []tlv, flags byte) ([]byte, error) {
	k, ok := s.keysFor(s.ourKeyID-1, s.theirKeyID)
	if !ok {
		return nil, wrap("otr: choosing data keys", ErrUnreadable)
	}
	k.sendCtr++
	var ctr [8]byte
	binary.BigEndian.PutUint64(ctr[:], k.sendCtr)

	p := append([]byte(nil), plaintext...)
	if len(tlvs) > 0 {
		p = append(p, 0)
		for _, t := range tlvs {
			p = appendTLV(p, t)
		}
	}
	enc := aesCTR(k.sendAES[:], ctr[:], p)

	b := c.header(s.version, Data, s.tag)
	b = append(b, flags)
	b = appendInt(b, s.ourKeyID-1)
	b = appendInt(b, s.theirKeyID)
	b = appendMPI(b, s.ourCur.pub)
	b = append(b, ctr[:]...)
	b = appendData(b, enc)
	h := hmac.New(sha1.New, k.sendMAC[:])
	h.Write(b)
	b = h.Sum(b)
	b = appendData(b, s.oldMACs)
	s.oldMACs = nil
	s.lastSent = c.now()
	return b, nil
}

// dataMessage is a parsed Data message; signed is the part the
// authenticator covers.
type dataMessage struct {
	flags             byte
	senderID, recipID uint32
	next              *big.Int
	ctr               [8]byte
	enc               []byte
	mac               []byte
	signed            []byte
}

// parseData reads a Data message; msg is the whole binary message and
// hdrLen the length of its header.
func parseData(msg []byte, hdrLen int) (dataMessage, bool) {
	var d dataMessage
	var ok bool
	b := msg[hdrLen:]
	if d.flags, b, ok = readByte(b); !ok {
		return d, false
	}
	if d.senderID, b, ok = readInt(b); !ok {
		return d, false
	}
	if d.recipID, b, ok = readInt(b); !ok {
		return d, false
	}
	if d.next, b, ok = readMPI(b); !ok {
		return d, false
	}
	if len(b) < 8 {
		return d, false
	}
	copy(d.ctr[:], b)
	b = b[8:]
	if d.enc, b, ok = readData(b); !ok {
		return d, false
	}
	d.signed = msg[:len(msg)-len(b)]
	if len(b) < 20 {
		return d, false
	}
	d.mac = b[:20]
	// The old MAC keys that follow carry nothing we need.
	return d, true
}

// decrypt authenticates and decrypts a Data message and rotates keys. It
// returns the plaintext (message and TLVs).
func (s *session) decrypt(d dataMessage) ([]byte, *dataKeys, error) {
	if d.senderID == 0 || d.recipID == 0 {
		return nil, nil, wrap("otr: reading Data key ids", ErrUnreadable)
	}
	k, ok := s.keysFor(d.recipID, d.senderID)
	if !ok {
		return nil, nil, wrap("otr: finding keys for Data message", ErrUnreadable)
	}
	h := hmac.New(sha1.New, k.recvMAC[:])
	h.Write(d.signed)
	if subtle.ConstantTimeCompare(h.Sum(nil), d.mac) != 1 {
		return nil, nil, wrap("otr: checking Data message", ErrBadMAC)
	}
	ctr := binary.BigEndian.Uint64(d.ctr[:])
	if ctr <= k.recvCtr {
		return nil, nil, wrap("otr: checking Data message counter", ErrReplayed)
	}
	if d.senderID == s.theirKeyID && !validDHPublic(d.next) {
		return nil, nil, wrap("otr: reading the next DH key", ErrMalformed)
	}
	k.recvCtr = ctr
	k.recvMACUsed = true
	plain := aesCTR(k.recvAES[:], d.ctr[:], d.enc)
	return plain, k, nil
}

// rotate moves the key window after an authenticated Data message.
func (c *Conversation) rotate(s *session, d dataMessage) error {
	if d.recipID == s.ourKeyID {
		next, err := c.newDHKey()
		if err != nil {
			return err
		}
		s.ourPrev = s.ourCur
		s.ourCur = next
		s.ourKeyID++
	}
	if d.senderID == s.theirKeyID {
		s.theirPrev = s.theirCur
		s.theirCur = d.next
		s.theirKeyID++
	}
	s.forget()
	return nil
}
