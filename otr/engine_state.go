package otr

import (
	"errors"
	"math/big"
	"time"
)

// Export and Restore carry a conversation across a restart of the
// program holding it (the widget keeps it in the tab's sessionStorage
// across page reloads). The state holds our private key, every
// encrypted session's DH keys, counters and the messages held for
// encryption, so it is as secret as the key: never log it or send it
// anywhere. An AKE or SMP in progress and incomplete fragments are not
// kept; the peer's next query or the user's next Authenticate starts
// them again.
//
// A restored state may be older than the last messages sent (a crash
// between sending and saving), and one saved state may be restored more
// than once (two tabs, or a reload after a reload that never saved; or
// someone who got hold of the state on purpose). Reusing an AES-CTR
// counter with the same key would expose both messages (their XOR is the
// XOR of the plaintexts), so each Restore moves every sending counter
// ahead by 2^32 plus a random 40-bit number, and starts the counters of
// key pairs it derives afresh there; the peer only requires counters to
// grow. 2^32 keeps a restore ahead of whatever was sent after the save;
// the random part keeps two restores of one state apart: two restores
// that send n messages each under one key pair collide with a chance of
// about 2n in 2^40. (A fixed jump would make the second restore repeat
// the first one's key and counters exactly.) Keys rotate with every
// message the peer acknowledges, so a pair rarely carries many messages.
//
// Layout (OTR data types): "OTRDESK-CONV" ‖ BYTE version 1 ‖ DATA private
// key (PrivateBytes) ‖ SHORT policy ‖ INT our tag ‖ INT max size ‖ INT
// heartbeat seconds ‖ BYTE flags (offered, peerNoOTR) ‖ INT chosen ‖ INT
// held count ‖ DATA each ‖ INT session count ‖ per session: INT tag,
// BYTE version, BYTE state, DATA peer public key (empty if none), 8 BYTES
// ssid, INT ourKeyID, MPI our current x, MPI our previous x (0 if none),
// INT theirKeyID, MPI their current y, MPI their previous y (0 if none),
// DATA old MAC keys, INT pair count, per pair: INT our id, INT their id,
// 8 BYTES send counter, 8 BYTES receive counter, BYTE MAC used.

const stateMagic = "OTRDESK-CONV"

// ErrBadState is returned by Restore for input that is not an exported
// conversation.
var ErrBadState = errors.New("otr: not a saved conversation (damaged or from another version)")

// Export returns the conversation's state; see Restore.
func (c *Conversation) Export() []byte {
	b := append([]byte(stateMagic), 1)
	b = appendData(b, c.key.PrivateBytes())
	b = appendShort(b, uint16(c.policy))
	b = appendInt(b, c.ourTag)
	b = appendInt(b, uint32(c.maxSize))
	beat := uint32(0)
	if c.beat > 0 {
		beat = uint32(c.beat / time.Second)
	}
	b = appendInt(b, beat)
	var flags byte
	if c.offered {
		flags |= 1
	}
	if c.peerNoOTR {
		flags |= 2
	}
	b = append(b, flags)
	b = appendInt(b, c.chosen)
	b = appendInt(b, uint32(len(c.held)))
	for _, h := range c.held {
		b = appendData(b, h)
	}
	var kept []*session
	for _, s := range c.sessions {
		if s.state == stateEncrypted || s.state == stateFinished {
			kept = append(kept, s)
		}
	}
	b = appendInt(b, uint32(len(kept)))
	zero := new(big.Int)
	orZero := func(v *big.Int) *big.Int {
		if v == nil {
			return zero
		}
		return v
	}
	for _, s := range kept {
		b = appendInt(b, s.tag)
		b = append(b, byte(s.version), byte(s.state))
		var pub []byte
		if s.theirKey != nil {
			pub = s.theirKey.Bytes()
		}
		b = appendData(b, pub)
		b = append(b, s.ssid[:]...)
		b = appendInt(b, s.ourKeyID)
		b = appendMPI(b, orZero(s.ourCur.priv))
		b = appendMPI(b, orZero(s.ourPrev.priv))
		b = appendInt(b, s.theirKeyID)
		b = appendMPI(b, orZero(s.theirCur))
		b = appendMPI(b, orZero(s.theirPrev))
		b = appendData(b, s.oldMACs)
		b = appendInt(b, uint32(len(s.keys)))
		for id, k := range s.keys {
			b = appendInt(b, id[0])
			b = appendInt(b, id[1])
			b = appendInt(b, uint32(k.sendCtr>>32))
			b = appendInt(b, uint32(k.sendCtr))
			b = appendInt(b, uint32(k.recvCtr>>32))
			b = appendInt(b, uint32(k.recvCtr))
			used := byte(0)
			if k.recvMACUsed {
				used = 1
			}
			b = append(b, used)
		}
	}
	return b
}

// Restore makes a conversation from Export's output. The key, policy,
// instance tag and sizes come from the state; cfg gives only Rand and Now.
func Restore(state []byte, cfg Config) (*Conversation, error) {
	c, err := restore(state, cfg)
	if err != nil {
		return nil, wrap("otr: restoring a conversation", err)
	}
	return c, nil
}

// stateReader reads the fields of a saved state, remembering the first
// failure so the parser reads straight through.
type stateReader struct {
	b   []byte
	bad bool
}

func (r *stateReader) byte() byte {
	v, rest, ok := readByte(r.b)
	r.b, r.bad = rest, r.bad || !ok
	return v
}

func (r *stateReader) short() uint16 {
	v, rest, ok := readShort(r.b)
	r.b, r.bad = rest, r.bad || !ok
	return v
}

func (r *stateReader) int() uint32 {
	v, rest, ok := readInt(r.b)
	r.b, r.bad = rest, r.bad || !ok
	return v
}

func (r *stateReader) data() []byte {
	v, rest, ok := readData(r.b)
	r.b, r.bad = rest, r.bad || !ok
	return v
}

func (r *stateReader) mpi() *big.Int {
	v, rest, ok := readMPI(r.b)
	r.b, r.bad = rest, r.bad || !ok
	if !ok {
		return new(big.Int)
	}
	return v
}

func (r *stateReader) bytes(n int) []byte {
	if len(r.b) < n {
		r.bad = true
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func restore(state []byte, cfg Config) (*Conversation, error) {
	if len(state) < len(stateMagic)+1 || string(state[:len(stateMagic)]) != stateMagic || state[len(stateMagic)] != 1 {
		return nil, ErrBadState
	}
	r := &stateReader{b: state[len(stateMagic)+1:]}
	key, rest, ok := ParsePrivateKey(r.data())
	if !ok || len(rest) != 0 {
		return nil, ErrBadState
	}
	cfg.PrivateKey = key
	cfg.Policy = Policy(r.short())
	cfg.InstanceTag = r.int()
	cfg.MaxMessageSize = int(r.int())
	beat := r.int()
	cfg.HeartbeatInterval = -1
	if beat > 0 {
		cfg.HeartbeatInterval = time.Duration(beat) * time.Second
	}
	flags := r.byte()
	chosen := r.int()
	nheld := r.int()
	if r.bad || nheld > uint32(len(r.b)) {
		return nil, ErrBadState
	}
	var held [][]byte
	for i := uint32(0); i < nheld && !r.bad; i++ {
		held = append(held, append([]byte(nil), r.data()...))
	}
	nsess := r.int()
	if r.bad || nsess > maxInstances {
		return nil, ErrBadState
	}
	c, err := NewConversation(cfg)
	if err != nil {
		return nil, ErrBadState
	}
	c.offered, c.peerNoOTR = flags&1 != 0, flags&2 != 0
	c.held = held
	jump, err := c.restoreJump()
	if err != nil {
		return nil, err
	}
	for i := uint32(0); i < nsess; i++ {
		s := &session{tag: r.int()}
		s.version = int(r.byte())
		s.state = msgState(r.byte())
		if pub := r.data(); len(pub) > 0 {
			k, rest, ok := ParsePublicKey(pub)
			if !ok || len(rest) != 0 {
				return nil, ErrBadState
			}
			s.theirKey = k
		}
		copy(s.ssid[:], r.bytes(8))
		s.ourKeyID = r.int()
		ourCur, ourPrev := r.mpi(), r.mpi()
		s.theirKeyID = r.int()
		s.theirCur, s.theirPrev = r.mpi(), r.mpi()
		s.oldMACs = append([]byte(nil), r.data()...)
		if r.bad || s.version != 2 && s.version != 3 || s.state != stateEncrypted && s.state != stateFinished ||
			s.theirKey == nil && s.state == stateEncrypted || s.version == 3 && s.tag < MinInstanceTag || s.version == 2 && s.tag != 0 {
			return nil, ErrBadState
		}
		if s.state == stateEncrypted {
			if s.ourKeyID < 2 || s.theirKeyID < 1 || ourCur.Sign() == 0 || ourPrev.Sign() == 0 || !validDHPublic(s.theirCur) ||
				ourCur.BitLen() > 8*dhExponentBytes || ourPrev.BitLen() > 8*dhExponentBytes {
				return nil, ErrBadState
			}
			s.ourCur = dhKey{priv: ourCur, pub: expG(ourCur)}
			s.ourPrev = dhKey{priv: ourPrev, pub: expG(ourPrev)}
			if s.theirPrev.Sign() == 0 {
				s.theirPrev = nil
			} else if !validDHPublic(s.theirPrev) {
				return nil, ErrBadState
			}
		} else {
			s.theirCur, s.theirPrev = nil, nil
		}
		npairs := r.int()
		if r.bad || npairs > 4 {
			return nil, ErrBadState
		}
		s.keys = make(map[[2]uint32]*dataKeys)
		// Any key pair this state derives afresh may have been used to
		// send after the state was saved, or by another restore of it:
		// start its counter past the jump too.
		s.ctrBase = jump
		for j := uint32(0); j < npairs; j++ {
			ourID, theirID := r.int(), r.int()
			send := uint64(r.int())<<32 | uint64(r.int())
			recv := uint64(r.int())<<32 | uint64(r.int())
			used := r.byte() != 0
			if r.bad || s.state != stateEncrypted {
				continue
			}
			k, ok := s.keysFor(ourID, theirID)
			if !ok || send >= 1<<62 {
				return nil, ErrBadState
			}
			k.sendCtr = send + jump
			k.recvCtr = recv
			k.recvMACUsed = used
		}
		if r.bad {
			return nil, ErrBadState
		}
		c.seq++
		s.seen = c.seq
		c.sessions[s.tag] = s
	}
	if len(r.b) != 0 {
		return nil, ErrBadState
	}
	if chosen != 0 && c.sessions[chosen] != nil {
		c.chosen = chosen
	}
	return c, nil
}

// restoreJump returns how far Restore moves sending counters: 2^32 plus a
// random 40-bit number (see the top of this file). Counters stay below
// 2^62 + 2^41, far from wrapping.
func (c *Conversation) restoreJump() (uint64, error) {
	var b [5]byte
	if _, err := fullRead(c.rand, b[:]); err != nil {
		return 0, wrap("choosing a counter jump", err)
	}
	var r uint64
	for _, x := range b {
		r = r<<8 | uint64(x)
	}
	return 1<<32 + r, nil
}
