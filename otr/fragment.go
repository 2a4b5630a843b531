package otr

import (
	"bytes"
	"errors"
	"time"
)

// Fragment is one parsed fragment of an encoded OTR message.
type Fragment struct {
	Version int // 2 ("?OTR,k,n,piece,") or 3 ("?OTR|sender|receiver,k,n,piece,")
	// SenderTag and ReceiverTag are the version 3 instance tags; a
	// receiver tag of 0 means the sender does not know the receiver yet.
	SenderTag, ReceiverTag uint32
	K, N                   int    // 1 <= K <= N <= 65535
	Piece                  []byte // part of the encoded message; aliases the input
}

// ParseFragment parses the fragment in body, as libotr 4.1.1 finds it: a
// version 3 marker "?OTR|" anywhere wins over a version 2 marker "?OTR,".
// Instance tags are 1 to 8 hex digits of either case (libotr writes 8,
// otr.js fewer); k and n are decimal and may have leading zeros (libotr
// writes 5 digits). Text after the piece's closing comma is ignored, as
// libotr does. Unlike libotr's sscanf it refuses white space, signs and a
// 0x prefix in the numbers, and more than 8 hex digits in a tag. It
// reports false for anything else and never panics.
func ParseFragment(body []byte) (Fragment, bool) {
	if i := bytes.Index(body, markFragV3); i >= 0 {
		return parseFragmentHeader(body[i:])
	}
	if i := bytes.Index(body, markFragV2); i >= 0 {
		return parseFragmentHeader(body[i:])
	}
	return Fragment{}, false
}

// parseFragmentHeader parses b, which starts with "?OTR|" or "?OTR,".
func parseFragmentHeader(b []byte) (Fragment, bool) {
	var f Fragment
	var ok bool
	switch {
	case bytes.HasPrefix(b, markFragV3):
		f.Version = 3
		b = b[len(markFragV3):]
		if f.SenderTag, b, ok = scanHex32(b, '|'); !ok {
			return Fragment{}, false
		}
		if f.ReceiverTag, b, ok = scanHex32(b, ','); !ok {
			return Fragment{}, false
		}
	case bytes.HasPrefix(b, markFragV2):
		f.Version = 2
		b = b[len(markFragV2):]
	default:
		return Fragment{}, false
	}
	if f.K, b, ok = scanDec16(b); !ok {
		return Fragment{}, false
	}
	if f.N, b, ok = scanDec16(b); !ok {
		return Fragment{}, false
	}
	if f.K < 1 || f.K > f.N {
		return Fragment{}, false
	}
	end := bytes.IndexByte(b, ',')
	if end < 1 {
		return Fragment{}, false
	}
	f.Piece = b[:end]
	return f, true
}

// scanHex32 reads 1 to 8 hex digits followed by sep.
func scanHex32(b []byte, sep byte) (uint32, []byte, bool) {
	var v uint32
	i := 0
	for ; i < len(b) && i <= 8; i++ {
		c := b[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		case c == sep && i > 0:
			return v, b[i+1:], true
		default:
			return 0, b, false
		}
		if i == 8 {
			return 0, b, false
		}
		v = v<<4 | uint32(d)
	}
	return 0, b, false
}

// scanDec16 reads a decimal number from 0 to 65535, leading zeros allowed,
// followed by a comma.
func scanDec16(b []byte) (int, []byte, bool) {
	v := 0
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9':
			v = v*10 + int(c-'0')
			if v > 65535 {
				return 0, b, false
			}
		case c == ',' && i > 0:
			return v, b[i+1:], true
		default:
			return 0, b, false
		}
	}
	return 0, b, false
}

// Fragment header sizes as libotr counts them: the header and trailing
// comma of "?OTR|%08x|%08x,%05hu,%05hu,piece," (36) or
// "?OTR,%05hu,%05hu,piece," (18), plus one for C's terminating NUL.
const (
	fragmentOverheadV3 = 37
	fragmentOverheadV2 = 19
)

// Errors of fragmentation and reassembly.
var (
	ErrMaxSizeTooSmall  = errors.New("otr: maximum message size too small for a fragment header")
	ErrTooManyFragments = errors.New("otr: message needs more than 65535 fragments")
	ErrNotFragment      = errors.New("otr: not an OTR fragment")
	ErrBadFragment      = errors.New("otr: malformed OTR fragment")
	ErrOtherInstance    = errors.New("otr: fragment addressed to another instance")
	ErrBadInstanceTag   = errors.New("otr: invalid sender instance tag")
	ErrFragmentOrder    = errors.New("otr: fragment out of order")
	ErrFragmentLimit    = errors.New("otr: fragmented message over the limits")
	ErrFragmentExpired  = errors.New("otr: fragmented message took too long to arrive")
	ErrNestedFragment   = errors.New("otr: reassembled message is itself a fragment")
)

// SplitMessage splits an encoded message into fragments for a network
// that carries at most maxSize bytes per message, exactly as libotr 4.1.1
// does: a message of at most maxSize bytes, or any message when maxSize
// is 0, is returned whole; otherwise each fragment carries maxSize-37
// bytes of it (maxSize-19 for version 2), so that with its header it is
// maxSize-1 bytes long (libotr counts C's terminating NUL). Version 3
// fragments carry the instance tags as 8 hex digits.
func SplitMessage(msg string, maxSize, version int, senderTag, receiverTag uint32) ([]string, error) {
	if version != 2 && version != 3 {
		return nil, errors.New("otr: splitting a message: OTR version " + decimal(version) + " has no fragments")
	}
	if maxSize == 0 || len(msg) <= maxSize {
		return []string{msg}, nil
	}
	overhead := fragmentOverheadV3
	if version == 2 {
		overhead = fragmentOverheadV2
	}
	size := maxSize - overhead
	if size < 1 {
		return nil, wrap("otr: splitting for "+decimal(maxSize)+" bytes", ErrMaxSizeTooSmall)
	}
	n := (len(msg)-1)/size + 1
	if n > 65535 {
		return nil, wrap("otr: splitting "+decimal(len(msg))+" bytes for "+decimal(maxSize), ErrTooManyFragments)
	}
	frags := make([]string, 0, n)
	for k := 1; k <= n; k++ {
		piece := msg[:min(size, len(msg))]
		msg = msg[len(piece):]
		if version == 2 {
			frags = append(frags, "?OTR,"+padded(decimal(k), 5)+","+padded(decimal(n), 5)+","+piece+",")
		} else {
			frags = append(frags, "?OTR|"+padded(hexDigits(senderTag), 8)+"|"+padded(hexDigits(receiverTag), 8)+
				","+padded(decimal(k), 5)+","+padded(decimal(n), 5)+","+piece+",")
		}
	}
	return frags, nil
}

// Defaults of a Reassembler's limits.
const (
	DefaultMaxFragments    = 512
	DefaultMaxMessageBytes = 1 << 20
	DefaultFragmentTimeout = 2 * time.Minute
	DefaultMaxSenders      = 8
)

// A Reassembler joins fragments into encoded messages, one message in
// progress per sender instance, with libotr's rules: fragment 1 starts a
// message (dropping any unfinished one from that sender), fragment k+1 of
// the same n continues it, anything else drops it. Every limit is a hard
// bound; a zero field takes its default. A Reassembler is not safe for
// concurrent use.
type Reassembler struct {
	// OurTag is our instance tag. Fragments whose receiver tag is neither
	// 0 nor OurTag are discarded. When OurTag is 0 none are.
	OurTag uint32
	// MaxFragments bounds n.
	MaxFragments int
	// MaxMessageBytes bounds the size of a reassembled message.
	MaxMessageBytes int
	// Timeout bounds the time from a message's first fragment to its last.
	Timeout time.Duration
	// MaxSenders bounds the sender instances with a message in progress;
	// a new one evicts the oldest.
	MaxSenders int

	pending map[uint32]*partial
}

type partial struct {
	version int
	k, n    int
	started time.Time
	buf     []byte
}

// NewReassembler returns a Reassembler for the instance ourTag with the
// default limits.
func NewReassembler(ourTag uint32) *Reassembler { return &Reassembler{OurTag: ourTag} }

func (r *Reassembler) limits() (maxN, maxBytes int, timeout time.Duration, maxSenders int) {
	maxN, maxBytes, timeout, maxSenders = r.MaxFragments, r.MaxMessageBytes, r.Timeout, r.MaxSenders
	if maxN <= 0 {
		maxN = DefaultMaxFragments
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxMessageBytes
	}
	if timeout <= 0 {
		timeout = DefaultFragmentTimeout
	}
	if maxSenders <= 0 {
		maxSenders = DefaultMaxSenders
	}
	return
}

// Add takes one received body at time now. It returns the reassembled
// message when body was the last fragment of one, nil while more are
// needed, and an error when body is not a usable fragment; a legal
// fragment that breaks a message in progress drops that message, an
// illegal one (ErrBadFragment, ErrOtherInstance, ErrBadInstanceTag) is
// discarded alone. Any body that is
// not a fragment should be given to Add too: as the spec says, it makes
// its sender's message in progress be forgotten (a version 3 encoded
// message its sender instance's, anything else the version 2 one), and
// Add returns ErrNotFragment.
func (r *Reassembler) Add(body []byte, now time.Time) ([]byte, error) {
	f, ok := ParseFragment(body)
	if !ok {
		if bytes.Contains(body, markFragV3) || bytes.Contains(body, markFragV2) {
			// An illegal fragment is discarded alone (Protocol-v3,
			// "Receiving Fragments"), as libotr does.
			return nil, ErrBadFragment
		}
		if info := Classify(body); info.Kind == KindEncoded && info.Version == 3 {
			delete(r.pending, info.SenderTag)
		} else {
			delete(r.pending, 0)
		}
		return nil, ErrNotFragment
	}
	maxN, maxBytes, timeout, maxSenders := r.limits()
	if f.Version == 3 {
		if f.SenderTag < MinInstanceTag {
			return nil, wrap("otr: reassembling from "+hex0x(f.SenderTag), ErrBadInstanceTag)
		}
		if f.ReceiverTag != 0 && r.OurTag != 0 && f.ReceiverTag != r.OurTag {
			return nil, wrap("otr: reassembling for "+hex0x(f.ReceiverTag), ErrOtherInstance)
		}
	}
	key := f.SenderTag // 0 for version 2, never a valid version 3 tag
	if f.N > maxN {
		delete(r.pending, key)
		return nil, wrap("otr: reassembling "+decimal(f.N)+" fragments (at most "+decimal(maxN)+")", ErrFragmentLimit)
	}
	p := r.pending[key]
	if f.K == 1 {
		if r.pending == nil {
			r.pending = make(map[uint32]*partial)
		}
		if p == nil {
			r.evict(maxSenders - 1)
		}
		p = &partial{version: f.Version, n: f.N, started: now}
		r.pending[key] = p
	} else {
		switch {
		case p == nil || p.version != f.Version || p.n != f.N || p.k+1 != f.K:
			delete(r.pending, key)
			return nil, wrap("otr: reassembling fragment "+decimal(f.K)+" of "+decimal(f.N), ErrFragmentOrder)
		case now.Sub(p.started) > timeout:
			delete(r.pending, key)
			return nil, wrap("otr: reassembling fragment "+decimal(f.K)+" of "+decimal(f.N), ErrFragmentExpired)
		}
	}
	if len(p.buf)+len(f.Piece) > maxBytes {
		delete(r.pending, key)
		return nil, wrap("otr: reassembling more than "+decimal(maxBytes)+" bytes", ErrFragmentLimit)
	}
	p.buf = append(p.buf, f.Piece...)
	p.k = f.K
	if p.k < p.n {
		return nil, nil
	}
	delete(r.pending, key)
	if bytes.Contains(p.buf, markFragV3) || bytes.Contains(p.buf, markFragV2) {
		return nil, ErrNestedFragment
	}
	return p.buf, nil
}

// evict drops the oldest messages in progress until at most keep remain.
func (r *Reassembler) evict(keep int) {
	for len(r.pending) > keep {
		var oldest uint32
		var t time.Time
		first := true
		for k, p := range r.pending {
			if first || p.started.Before(t) {
				oldest, t, first = k, p.started, false
			}
		}
		delete(r.pending, oldest)
	}
}

// Expire drops the messages in progress whose first fragment arrived more
// than the timeout before now and returns how many it dropped.
func (r *Reassembler) Expire(now time.Time) int {
	_, _, timeout, _ := r.limits()
	n := 0
	for k, p := range r.pending {
		if now.Sub(p.started) > timeout {
			delete(r.pending, k)
			n++
		}
	}
	return n
}

// Pending returns the number of messages in progress.
func (r *Reassembler) Pending() int { return len(r.pending) }
