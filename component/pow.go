package component

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math/bits"
	"strconv"
	"time"
)

// Proof of work for new chats (limits.proof_of_work = "over-limit"). When
// the new-chat rate of a skin (or of all skins) is spent, a new visitor's
// first message is not refused outright: it is answered with a challenge,
// and the widget sends the same message again with a stamp that took it
// about 2^bits SHA-256 computations to find. A flood then costs the
// flooder CPU per chat, while a visitor's browser spends a fraction of a
// second once.
//
// The challenge travels in the error that answers the message:
//
//	<message from='<skin>@D' to='visitor' type='error' id='...'>
//	  <error type='wait'>
//	    <resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
//	    <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>...</text>
//	    <pow xmlns='urn:otrdesk:0' challenge='C' bits='18'/>
//	  </error>
//	</message>
//
// and the stamp in the message sent again, beside its body:
//
//	<message to='<skin>@D' type='chat'><body>...</body>
//	  <pow xmlns='urn:otrdesk:0' challenge='C' nonce='N'/></message>
//
// The stamp is valid when SHA-256(C ‖ ":" ‖ N), over the ASCII text of C
// and N, starts with at least bits zero bits; N is 1 to 64 characters of
// base64url ([A-Za-z0-9_-]), e.g. a decimal counter.
//
// C is 44 characters of base64url without padding, made by otrdesk alone
// (no state until it is used): a time, 8 random bytes, the cost, and an
// HMAC-SHA-256 (key made at start) over those, the skin and the visitor's
// JID. So a challenge is good for one skin, one visitor JID, powWindow,
// and, remembered once used until it expires, one chat. Checking a stamp
// is two hashes and an HMAC: microseconds (BenchmarkPoWVerify).

const (
	// powWindow is how long a challenge may be answered.
	powWindow = 2 * time.Minute
	// maxPoWUsed bounds the challenges remembered as used; beyond it
	// stamps are refused until some expire.
	maxPoWUsed = 1 << 17
	// DefaultProofOfWorkBits is the default cost: 2^18 hashes, a fraction
	// of a second in a browser's worker.
	DefaultProofOfWorkBits = 18
	// MinProofOfWorkBits and MaxProofOfWorkBits bound the configured cost.
	MinProofOfWorkBits = 8
	MaxProofOfWorkBits = 32
)

const (
	powRandBytes  = 8
	powMACBytes   = 16
	powChallenge  = 8 + powRandBytes + 1 + powMACBytes // time, random, bits, MAC
	maxPoWNonce   = 64
	powMACContext = "otrdesk proof of work 1\x00"
)

var (
	errChallenged = errors.New("component: answered with a proof-of-work challenge")
	errBadStamp   = errors.New("component: the proof-of-work stamp does not verify")
)

// pow makes challenges and checks stamps. The router owns it.
type pow struct {
	key  [32]byte
	bits int
	used map[[powRandBytes]byte]time.Time // used challenges, until they expire
}

func newPoW(bits int) *pow {
	p := &pow{bits: bits, used: map[[powRandBytes]byte]time.Time{}}
	rand.Read(p.key[:]) // never returns an error (crypto/rand, Go 1.24+)
	return p
}

func (p *pow) mac(skin, real string, head []byte) []byte {
	m := hmac.New(sha256.New, p.key[:])
	m.Write([]byte(powMACContext))
	m.Write([]byte(skin))
	m.Write([]byte{0})
	m.Write([]byte(real))
	m.Write([]byte{0})
	m.Write(head)
	return m.Sum(nil)[:powMACBytes]
}

// challenge makes a challenge for a visitor of a skin.
func (p *pow) challenge(skin, real string, now time.Time) string {
	b := make([]byte, 0, powChallenge)
	b = binary.BigEndian.AppendUint64(b, uint64(now.Unix()))
	var rnd [powRandBytes]byte
	rand.Read(rnd[:])
	b = append(b, rnd[:]...)
	b = append(b, byte(p.bits))
	b = append(b, p.mac(skin, real, b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// verify checks a stamp for a visitor of a skin and, when it is good,
// marks its challenge used.
func (p *pow) verify(skin, real, challenge, nonce string, now time.Time) error {
	if len(challenge) != base64.RawURLEncoding.EncodedLen(powChallenge) || len(nonce) == 0 || len(nonce) > maxPoWNonce || !isBase64URL(nonce) {
		return errBadStamp
	}
	b, err := base64.RawURLEncoding.DecodeString(challenge)
	if err != nil || len(b) != powChallenge {
		return errBadStamp
	}
	head, mac := b[:powChallenge-powMACBytes], b[powChallenge-powMACBytes:]
	if !hmac.Equal(mac, p.mac(skin, real, head)) {
		return errBadStamp
	}
	made := time.Unix(int64(binary.BigEndian.Uint64(head[:8])), 0)
	if now.Before(made.Add(-time.Minute)) || !now.Before(made.Add(powWindow)) {
		return errBadStamp // from the future (a clock step) or too old
	}
	var rnd [powRandBytes]byte
	copy(rnd[:], head[8:8+powRandBytes])
	if _, ok := p.used[rnd]; ok || len(p.used) >= maxPoWUsed {
		return errBadStamp
	}
	if leadingZeros(stampHash(challenge, nonce)) < int(head[8+powRandBytes]) {
		return errBadStamp
	}
	p.used[rnd] = made.Add(powWindow)
	return nil
}

// expire forgets used challenges that can no longer be answered.
func (p *pow) expire(now time.Time) {
	for k, until := range p.used {
		if !now.Before(until) {
			delete(p.used, k)
		}
	}
}

func stampHash(challenge, nonce string) [32]byte {
	h := sha256.New()
	h.Write([]byte(challenge))
	h.Write([]byte{':'})
	h.Write([]byte(nonce))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// leadingZeros counts the zero bits at the start of h.
func leadingZeros(h [32]byte) int {
	n := 0
	for _, b := range h {
		if b != 0 {
			return n + bits.LeadingZeros8(b)
		}
		n += 8
	}
	return n
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// sendChallenge answers a new visitor's message with a challenge; count
// says whether it is counted as pow-required (a bad stamp was counted as
// pow-invalid already).
func (r *router) sendChallenge(el *elem, skin, real string, count bool) {
	if count {
		r.m.drop(dropPoWRequired)
	}
	if el.get("type") == "error" || el.get("from") == "" {
		return
	}
	c := r.pow.challenge(skin, real, r.now())
	t := toks{}.start(nsAccept, "message", "from", el.get("to"), "to", el.get("from"), "id", el.get("id"), "type", "error").
		start("", "error", "type", "wait").
		empty(nsStanzas, "resource-constraint").
		text(nsStanzas, "text", []byte("too many new chats right now: the chat starts once your browser has done a little work")).
		empty(nsOtrdesk, "pow", "challenge", c, "bits", strconv.Itoa(r.pow.bits)).
		end("", "error").
		end(nsAccept, "message")
	r.send(t)
}
