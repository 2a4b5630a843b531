package otr

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"sort"
	"time"
)

// How the engine is laid out:
//
//	Conversation            one peer account; policy, our instance tag, fragment
//	 │                      reassembly, the DH-Commit sent to every instance
//	 └─ session per peer instance tag (0 = the version 2 peer)
//	     ├─ ake             AKE state machine (ake.go): none → awaiting DH-Key /
//	     │                  awaiting Reveal Signature → awaiting Signature → done
//	     ├─ msgstate        plaintext | encrypted | finished (data.go)
//	     ├─ DH key window   our keys ourKeyID-1, ourKeyID; theirs theirKeyID-1,
//	     │                  theirKeyID; per-pair AES/MAC keys and counters; used
//	     │                  receiving MAC keys revealed when a pair is dropped
//	     └─ smp             SMP state machine (smp.go): expect 1 → 2 → 3 → 4
//
// A conversation, as libotr and Pidgin run it:
//
//	Alice (query)            Bob
//	?OTRv23?           ───►                    (or a whitespace-tagged message)
//	                   ◄───  DH-Commit          AES_r(g^x), SHA256(g^x); receiver tag 0
//	DH-Key g^y         ───►                     one per answering instance
//	                   ◄───  Reveal Signature   r, AES_c(pubB, keyidB, sig), MAC
//	Signature          ───►                     AES_c'(pubA, keyidA, sig), MAC
//	Data (flags, key ids, next DH key, counter, AES-CTR text ‖ NUL ‖ TLVs, MAC,
//	      old MAC keys) both ways; each side rotates its key when the peer
//	      acknowledges it; TLV 1 ends the session (finished until End or a new AKE)
//
// Randomness comes from Config.Rand (crypto/rand by default). Timing:
// modular exponentiation uses math/big, whose Exp, Mul and Mod are not
// constant-time, so DH and SMP exponents could leak through timing to
// someone measuring this process closely (libgcrypt's exponentiation in
// libotr had the same exposure for years). Where it is cheap we do better:
// g^x for new DH keys reads its precomputed table in constant time
// (dh_fixed.go); MACs and hashes are compared in constant time. A
// constant-time Nat arithmetic is the remedy if the rest matters.
//
// One verified session, bound to what is sent. Send picks the peer
// instance itself (the chosen one, else the most secure, most recently
// active one), as libotr does; that suits a bot, not a user interface that
// tells its user who can read what they type. A peer account may run
// several instances, and anyone who can inject messages (a hostile server)
// can finish an AKE with a key of its own under an instance tag of its
// choosing, then send one Data message so that it becomes "the most
// recently active". The interface's claim ("encrypted to the key you
// trust") and what is sent must therefore be one fact, not two that
// usually agree: SendTo names the instance and the fingerprint the
// interface showed, and encrypts only while that instance's session is up
// with that very key. Otherwise it returns ErrNotBound and neither sends
// nor holds anything, so another instance finishing an AKE, a message from
// another instance, or a re-key of the same instance to another key can
// never redirect the text. The one message the engine sends on its own
// follows the same rule: the "[resent]" copy after the peer's OTR error
// goes only to the instance and key it was first encrypted to. And
// LastShown says whether the text the last Receive returned was decrypted,
// and by which session, so that plaintext (bare, whitespace-tagged, or
// reassembled from fragments) is never taken for encrypted text.
//
// Bounds: at most maxInstances peer instances are kept (the least recently
// active one that is not encrypted makes room), fragments are reassembled
// under the Reassembler's limits, and nothing is buffered for the peer.

// Config configures a Conversation.
type Config struct {
	// PrivateKey is our long-term key. Required.
	PrivateKey *PrivateKey
	// Policy says which versions to speak and how eagerly. The zero
	// Policy disables OTR.
	Policy Policy
	// InstanceTag is our instance tag (at least 0x100); 0 picks a random one.
	InstanceTag uint32
	// MaxMessageSize splits encoded messages longer than this many bytes
	// into fragments (libotr's max_message_size); 0 never splits.
	MaxMessageSize int
	// Rand is the source of randomness; nil means crypto/rand.
	Rand io.Reader
	// Now gives the time, for heartbeats and fragment timeouts; nil means
	// time.Now.
	Now func() time.Time
	// HeartbeatInterval: after receiving a readable message, send an
	// empty Data message if we sent nothing for this long. 0 means
	// libotr's 60 s; a negative value disables heartbeats.
	HeartbeatInterval time.Duration
}

// EventKind says what happened.
type EventKind uint8

const (
	// EventGoneSecure: an AKE finished; messages are now encrypted.
	// Event.Fingerprint is the peer's key.
	EventGoneSecure EventKind = iota + 1
	// EventStillSecure: an AKE finished while already encrypted (a
	// refresh); Event.Fingerprint is the peer's key, which may be new.
	EventStillSecure
	// EventGoneInsecure: the peer ended the encrypted session. Sending is
	// refused until End or a new AKE.
	EventGoneInsecure
	// EventUnencrypted: a plaintext message arrived while encryption was
	// expected or up; it is shown with this warning.
	EventUnencrypted
	// EventPeerError: the peer sent an OTR error message; Event.Text is
	// its text.
	EventPeerError
	// EventError: something went wrong that the user should know about;
	// Event.Text says what, in words for a user.
	EventError
	// EventSMPSecretNeeded: the peer started SMP; answer with
	// Authenticate. Event.Text is the peer's question, if any.
	EventSMPSecretNeeded
	// EventSMPProgress: an SMP step passed.
	EventSMPProgress
	// EventSMPSucceeded: both sides gave the same secret; the peer's key
	// is verified.
	EventSMPSucceeded
	// EventSMPFailed: the secrets differ.
	EventSMPFailed
	// EventSMPAborted: SMP was aborted (by either side or a protocol error).
	EventSMPAborted
	// EventExtraKey: the peer announced use of the extra symmetric key.
	// Event.Key is the key, Event.Use and Event.Data its context.
	EventExtraKey
	// EventResent: the peer could not read our last message (its session
	// had restarted); it was sent again, marked "[resent]", once the new
	// session was up, as libotr does.
	EventResent
)

var eventNames = [...]string{"", "gone secure", "still secure", "gone insecure", "unencrypted message",
	"peer error", "error", "SMP secret needed", "SMP progress", "SMP succeeded", "SMP failed", "SMP aborted", "extra key", "resent"}

func (k EventKind) String() string {
	if int(k) < len(eventNames) && k != 0 {
		return eventNames[k]
	}
	return "EventKind(" + decimal(int(k)) + ")"
}

// Event is something the user interface should know about.
type Event struct {
	Kind EventKind
	// Instance is the peer's instance tag (0 for version 2).
	Instance    uint32
	Text        string
	Fingerprint Fingerprint
	Key         []byte
	Use         uint32
	Data        []byte
}

// Errors of the conversation.
var (
	ErrFinished    = errors.New("otr: the other side ended the encrypted chat; the message was not sent (end the chat or start a new private one)")
	ErrNotSecure   = errors.New("otr: the chat is not encrypted")
	ErrNoKey       = errors.New("otr: a private key is required")
	ErrBadTag      = errors.New("otr: an instance tag must be at least 0x100")
	ErrNoInstance  = errors.New("otr: no such peer instance")
	ErrDisabled    = errors.New("otr: the policy allows no OTR version")
	ErrTooManyHeld = errors.New("otr: too many messages are waiting for the encrypted chat to start; this one was not sent")
	ErrNUL         = errors.New("otr: a message cannot contain a NUL byte (OTR ends the text there)")
	ErrNotBound    = errors.New("otr: the message was not sent: that peer instance is not encrypted with that key")
)

// Conversation is one OTR conversation with one peer account, which may
// be logged in at several places (instances). It does no I/O and is not
// safe for concurrent use.
type Conversation struct {
	key     *PrivateKey
	policy  Policy
	ourTag  uint32
	maxSize int
	rand    io.Reader
	now     func() time.Time
	beat    time.Duration

	sessions map[uint32]*session // by peer instance tag; 0 is the version 2 peer
	commit   *ake                // our DH-Commit sent to every instance
	chosen   uint32              // instance picked by SetInstance; 0 means the best
	seq      uint64
	lastFrom uint32

	// The last message sent encrypted, kept so that it can be sent again
	// when the peer reports it unreadable and a new AKE follows within
	// resendWindow (libotr's RESEND_INTERVAL), and the instance and key it
	// was encrypted to: it is sent again only to those.
	lastPlain   []byte
	lastPlainAt time.Time
	lastTo      uint32
	lastFP      Fingerprint
	mayResend   bool

	shown Shown // what the text the last Receive returned was

	offered   bool // we sent the whitespace tag
	peerNoOTR bool // the peer sent untagged plaintext
	held      [][]byte
	reasm     Reassembler
}

// NewConversation returns a conversation in plaintext state.
func NewConversation(cfg Config) (*Conversation, error) {
	if cfg.PrivateKey == nil {
		return nil, ErrNoKey
	}
	c := &Conversation{
		key: cfg.PrivateKey, policy: cfg.Policy, ourTag: cfg.InstanceTag, maxSize: cfg.MaxMessageSize,
		rand: cfg.Rand, now: cfg.Now, beat: cfg.HeartbeatInterval,
		sessions: make(map[uint32]*session),
	}
	if c.rand == nil {
		c.rand = rand.Reader
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.beat == 0 {
		c.beat = 60 * time.Second
	}
	if c.ourTag == 0 {
		var b [4]byte
		for c.ourTag < MinInstanceTag {
			if _, err := fullRead(c.rand, b[:]); err != nil {
				return nil, wrap("otr: choosing an instance tag", err)
			}
			c.ourTag = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		}
	} else if c.ourTag < MinInstanceTag {
		return nil, ErrBadTag
	}
	c.reasm.OurTag = c.ourTag
	return c, nil
}

const resendWindow = 60 * time.Second

// maxHeld bounds the messages Send holds until the chat is private.
const maxHeld = 64

func fullRead(r io.Reader, b []byte) (int, error) { return io.ReadFull(r, b) }

// InstanceTag returns our instance tag.
func (c *Conversation) InstanceTag() uint32 { return c.ourTag }

// OurFingerprint returns the fingerprint of our own long-term key.
func (c *Conversation) OurFingerprint() Fingerprint { return c.key.PublicKey.Fingerprint() }

// Policy returns the conversation's policy.
func (c *Conversation) Policy() Policy { return c.policy }

// versions returns the OfferVn bits our policy allows.
func (c *Conversation) versions() uint8 {
	var v uint8
	if c.policy.has(AllowV2) {
		v |= OfferV2
	}
	if c.policy.has(AllowV3) {
		v |= OfferV3
	}
	return v
}

// bestVersion picks the highest version both offered and allowed.
func (c *Conversation) bestVersion(offered uint8) int {
	switch {
	case offered&OfferV3 != 0 && c.policy.has(AllowV3):
		return 3
	case offered&OfferV2 != 0 && c.policy.has(AllowV2):
		return 2
	}
	return 0
}

// Start returns the OTR query message that asks the peer to begin the AKE.
func (c *Conversation) Start() ([][]byte, error) {
	if !c.policy.enabled() {
		return nil, ErrDisabled
	}
	return [][]byte{[]byte(QueryMessage(c.versions()))}, nil
}

// best returns the session Send uses: the chosen one, else the most
// secure, most recently active one.
func (c *Conversation) best() *session {
	if c.chosen != 0 {
		return c.sessions[c.chosen]
	}
	var best *session
	rank := func(s *session) int {
		switch s.state {
		case stateEncrypted:
			return 2
		case stateFinished:
			return 1
		}
		return 0
	}
	for _, s := range c.sessions {
		if best == nil || rank(s) > rank(best) || rank(s) == rank(best) && s.seen > best.seen {
			best = s
		}
	}
	return best
}

// Instances returns the peer instance tags known, in increasing order (0
// stands for a version 2 peer).
func (c *Conversation) Instances() []uint32 {
	tags := make([]uint32, 0, len(c.sessions))
	for t := range c.sessions {
		tags = append(tags, t)
	}
	sort.Slice(tags, func(i, j int) bool { return tags[i] < tags[j] })
	return tags
}

// SetInstance makes Send, End, Authenticate and the queries below use the
// peer instance tag; 0 returns to picking the best instance (the most
// recently active encrypted one), as libotr does.
func (c *Conversation) SetInstance(tag uint32) error {
	if tag != 0 {
		if _, ok := c.sessions[tag]; !ok {
			return ErrNoInstance
		}
	}
	c.chosen = tag
	return nil
}

// IsEncrypted reports whether messages to the current instance are
// encrypted.
func (c *Conversation) IsEncrypted() bool {
	s := c.best()
	return s != nil && s.state == stateEncrypted
}

// PeerFingerprint returns the fingerprint of the current instance's key,
// once an AKE finished with it.
func (c *Conversation) PeerFingerprint() (Fingerprint, bool) {
	s := c.best()
	if s == nil || s.theirKey == nil || s.state != stateEncrypted {
		return Fingerprint{}, false
	}
	return s.theirKey.Fingerprint(), true
}

// PeerKey returns the current instance's long-term public key, once an
// AKE finished with it.
func (c *Conversation) PeerKey() (*PublicKey, bool) {
	s := c.best()
	if s == nil || s.theirKey == nil || s.state != stateEncrypted {
		return nil, false
	}
	return s.theirKey, true
}

// SessionID returns the 8-byte secure session id of the current instance.
func (c *Conversation) SessionID() ([]byte, bool) {
	s := c.best()
	if s == nil || s.state != stateEncrypted {
		return nil, false
	}
	return append([]byte(nil), s.ssid[:]...), true
}

// Send prepares what the user typed for the wire. In plaintext state it
// returns the message (with the whitespace tag when the policy says so),
// or, when encryption is required, holds it, returns a query and sends it
// encrypted once the AKE finishes. In encrypted state it returns a Data
// message, split into fragments if needed. In finished state it refuses
// with ErrFinished. Send picks the peer instance itself (and held messages
// go to whichever instance finishes an AKE first): text that a user was
// told is encrypted to a particular key goes through SendTo instead.
func (c *Conversation) Send(plaintext []byte) ([][]byte, error) {
	if !c.policy.enabled() {
		return [][]byte{plaintext}, nil
	}
	if bytes.IndexByte(plaintext, 0) >= 0 {
		return nil, ErrNUL
	}
	s := c.best()
	state := statePlaintext
	if s != nil {
		state = s.state
	}
	switch state {
	case stateEncrypted:
		c.remember(s, plaintext)
		return c.sendData(s, plaintext, nil, 0)
	case stateFinished:
		return nil, ErrFinished
	}
	if c.policy.has(RequireEncryption) {
		if len(c.held) >= maxHeld {
			return nil, ErrTooManyHeld
		}
		first := len(c.held) == 0
		c.held = append(c.held, append([]byte(nil), plaintext...))
		if first {
			return [][]byte{[]byte(QueryMessage(c.versions()))}, nil
		}
		return nil, nil
	}
	if c.policy.has(SendWhitespaceTag) && !c.offered && !c.peerNoOTR {
		c.offered = true
		msg := append(append([]byte(nil), plaintext...), WhitespaceTag(c.versions())...)
		return [][]byte{msg}, nil
	}
	return [][]byte{plaintext}, nil
}

// SendTo encrypts what the user typed to one peer instance only, and only
// while that instance's session is encrypted with the key whose
// fingerprint is fp: the session the user interface told its user about.
// In any other case (no such instance, not encrypted, finished, or
// encrypted with another key since an AKE the peer or anyone else ran) it
// returns ErrNotBound, sends nothing and holds nothing: the caller decides
// what to do with the text once it knows again whom it would reach.
func (c *Conversation) SendTo(instance uint32, fp Fingerprint, plaintext []byte) ([][]byte, error) {
	s := c.sessions[instance]
	if s == nil || !s.encryptedWith(fp) {
		return nil, ErrNotBound
	}
	if bytes.IndexByte(plaintext, 0) >= 0 {
		return nil, ErrNUL
	}
	c.remember(s, plaintext)
	return c.sendData(s, plaintext, nil, 0)
}

// remember keeps the message being sent encrypted to s, and to whom, for
// a resend after the peer's OTR error.
func (c *Conversation) remember(s *session, plaintext []byte) {
	c.lastPlain, c.lastPlainAt, c.mayResend = append([]byte(nil), plaintext...), c.now(), false
	c.lastTo, c.lastFP = s.tag, s.theirKey.Fingerprint()
}

// sendData encrypts and encodes, splitting for the maximum size.
func (c *Conversation) sendData(s *session, plaintext []byte, tlvs []tlv, flags byte) ([][]byte, error) {
	msg, err := c.encrypt(s, plaintext, tlvs, flags)
	if err != nil {
		return nil, err
	}
	return c.encode(s.version, s.tag, msg)
}

func (c *Conversation) encode(version int, receiver uint32, msg []byte) ([][]byte, error) {
	frags, err := SplitMessage(EncodeMessage(msg), c.maxSize, version, c.ourTag, receiver)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(frags))
	for i, f := range frags {
		out[i] = []byte(f)
	}
	return out, nil
}

// End ends the encrypted session with the current instance (all instances
// when none is chosen): it tells the peer with a disconnected TLV and
// returns to plaintext.
func (c *Conversation) End() ([][]byte, error) {
	var out [][]byte
	for _, s := range c.sessions {
		if c.chosen != 0 && s.tag != c.chosen {
			continue
		}
		if s.state == stateEncrypted {
			msgs, err := c.sendData(s, nil, []tlv{{typ: tlvDisconnected}}, flagIgnoreUnreadable)
			if err != nil {
				return out, err
			}
			out = append(out, msgs...)
		}
		c.goPlaintext(s)
		s.ake = ake{}
	}
	c.commit = nil
	c.held = nil
	c.lastPlain, c.lastTo, c.lastFP, c.mayResend = nil, 0, Fingerprint{}, false
	return out, nil
}

func (c *Conversation) goPlaintext(s *session) {
	s.state = statePlaintext
	s.keys = nil
	s.ourCur, s.ourPrev = dhKey{}, dhKey{}
	s.theirCur, s.theirPrev = nil, nil
	s.oldMACs = nil
	s.smp = smpState{}
}

// Receive takes one message body from the peer. It returns the text to
// show the user (nil if none), the messages to send back, and events.
// toSend and events are valid even when err is not nil: an error means
// the message was rejected (malformed, unreadable, failed authentication)
// and says why without revealing any content.
func (c *Conversation) Receive(msg []byte) (toShow []byte, toSend [][]byte, events []Event, err error) {
	c.shown = Shown{}
	if !c.policy.enabled() {
		return msg, nil, nil, nil
	}
	r := &result{}
	c.lastFrom = 0
	err = c.receive(r, msg, 0)
	if r.show != nil {
		c.shown = r.shown
	}
	return r.show, r.send, r.events, err
}

// LastSender returns the instance tag of the peer instance whose encoded
// message the last Receive took (0 for plaintext, queries and version 2).
func (c *Conversation) LastSender() uint32 { return c.lastFrom }

// Shown says what the text the last Receive returned was.
type Shown struct {
	// Encrypted is true only when the text was decrypted from a Data
	// message. Plaintext is never encrypted, whether it came bare, with
	// the whitespace tag, or reassembled from fragments (a fragment says
	// nothing about what it carries).
	Encrypted bool
	// Instance and Fingerprint name the peer instance whose session
	// decrypted the text, and that session's key; zero when not Encrypted.
	Instance    uint32
	Fingerprint Fingerprint
}

// LastShown says whether the text the last Receive returned was decrypted,
// and by which session; the zero Shown when it returned no text.
func (c *Conversation) LastShown() Shown { return c.shown }

type result struct {
	show   []byte
	shown  Shown // set with show when show was decrypted
	send   [][]byte
	events []Event
}

func (r *result) event(e Event) { r.events = append(r.events, e) }

func (c *Conversation) receive(r *result, msg []byte, depth int) error {
	info := Classify(msg)
	switch info.Kind {
	case KindFragment:
		if depth > 0 {
			return wrap("otr: reassembling", ErrNestedFragment)
		}
		whole, err := c.reasm.Add(msg, c.now())
		if err != nil {
			if errors.Is(err, ErrOtherInstance) {
				return nil
			}
			return err
		}
		if whole == nil {
			return nil
		}
		return c.receive(r, whole, depth+1)
	case KindEncoded:
		return c.receiveEncoded(r, msg, info)
	case KindError:
		text, _ := ErrorText(msg)
		r.event(Event{Kind: EventPeerError, Text: text})
		if s := c.sessions[c.lastTo]; s != nil && c.lastPlain != nil && s.encryptedWith(c.lastFP) {
			c.mayResend = true
		}
		if c.policy.has(ErrorStartAKE) {
			r.send = append(r.send, []byte(QueryMessage(c.versions())))
		}
		return nil
	case KindQuery:
		v := c.bestVersion(info.Versions)
		if v == 0 {
			return nil
		}
		return c.sendCommit(r, v)
	case KindUnknown:
		if bytes.Contains(msg, markEncoded) || bytes.Contains(msg, markFragV3) || bytes.Contains(msg, markFragV2) {
			return wrap("otr: classifying message", ErrMalformed)
		}
		// Text that merely contains "?OTR" (someone typing about OTR, a
		// version 1 query): shown as the plaintext it is.
	case KindTaggedPlaintext:
		r.show = stripTag(msg)
		c.warnPlaintext(r)
		if c.policy.has(WhitespaceStartAKE) {
			if v := c.bestVersion(info.Versions); v != 0 {
				return c.sendCommit(r, v)
			}
		}
		return nil
	}
	r.show = msg
	c.peerNoOTR = true
	c.warnPlaintext(r)
	return nil
}

// warnPlaintext adds the warning for plaintext that arrived when it
// should not have.
func (c *Conversation) warnPlaintext(r *result) {
	s := c.best()
	if s != nil && s.state != statePlaintext {
		r.event(Event{Kind: EventUnencrypted, Instance: s.tag, Text: "The message was received unencrypted."})
		return
	}
	if c.policy.has(RequireEncryption) {
		r.event(Event{Kind: EventUnencrypted, Text: "The message was received unencrypted."})
	}
}

// stripTag removes the whitespace tag and its version tags.
func stripTag(msg []byte) []byte {
	i := bytes.Index(msg, whitespaceTag)
	if i < 0 {
		return msg
	}
	j := i + len(whitespaceTag)
	for j+8 <= len(msg) && (bytes.Equal(msg[j:j+8], tagV1) || bytes.Equal(msg[j:j+8], tagV2) || bytes.Equal(msg[j:j+8], tagV3)) {
		j += 8
	}
	out := append([]byte(nil), msg[:i]...)
	return append(out, msg[j:]...)
}

// sendCommit starts an AKE of version v with every instance of the peer.
func (c *Conversation) sendCommit(r *result, v int) error {
	a, err := c.startAKE(v)
	if err != nil {
		return err
	}
	c.commit = a
	msgs, err := c.encode(v, 0, append(c.header(v, DHCommit, 0), a.dhCommitBody()...))
	if err != nil {
		return err
	}
	r.send = append(r.send, msgs...)
	return nil
}

// maxInstances bounds the peer instances kept: a peer (or anyone who can
// inject messages) inventing instance tags cannot grow the state.
const maxInstances = 16

// session returns the session of a peer instance, making it if new.
func (c *Conversation) session(tag uint32, version int) *session {
	s, ok := c.sessions[tag]
	if !ok {
		if len(c.sessions) >= maxInstances {
			c.evict()
		}
		s = &session{tag: tag, version: version}
		c.sessions[tag] = s
	}
	c.seq++
	s.seen = c.seq
	return s
}

// evict drops the least recently active session, preferring one that is
// not encrypted.
func (c *Conversation) evict() {
	// before reports whether s should go before v.
	before := func(s, v *session) bool {
		if se, ve := s.state == stateEncrypted, v.state == stateEncrypted; se != ve {
			return !se
		}
		return s.seen < v.seen
	}
	var victim *session
	for _, s := range c.sessions {
		if s.tag != c.chosen && (victim == nil || before(s, victim)) {
			victim = s
		}
	}
	if victim != nil {
		delete(c.sessions, victim.tag)
	}
}

func (c *Conversation) receiveEncoded(r *result, msg []byte, info Info) error {
	if !c.policy.allows(info.Version) {
		return nil
	}
	bin, err := DecodeMessage(msg)
	if err != nil {
		return err
	}
	hdrLen := 3
	var tag uint32
	if info.Version == 3 {
		hdrLen = 11
		if len(bin) < hdrLen {
			return wrap("otr: reading message header", ErrMalformed)
		}
		tag = info.SenderTag
		if tag < MinInstanceTag {
			return wrap("otr: reading sender instance tag", ErrMalformed)
		}
		if info.ReceiverTag != c.ourTag && !(info.ReceiverTag == 0 && info.Type == DHCommit) {
			return nil // for another instance of ours: libotr drops it silently
		}
		if tag == c.ourTag {
			return nil // our own message reflected back (a carbon, a MUC echo)
		}
	}
	if len(bin) < hdrLen {
		return wrap("otr: reading message header", ErrMalformed)
	}
	body := bin[hdrLen:]
	c.lastFrom = tag
	switch info.Type {
	case DHCommit:
		return c.onDHCommit(r, info.Version, tag, body)
	case DHKey:
		return c.onDHKey(r, info.Version, tag, body)
	case RevealSig:
		return c.onRevealSig(r, info.Version, tag, body)
	case Sig:
		return c.onSig(r, info.Version, tag, body)
	case Data:
		return c.onData(r, info.Version, tag, bin, hdrLen)
	}
	return nil
}

// reply encodes an AKE message to the instance tag.
func (c *Conversation) reply(r *result, version int, typ MessageType, tag uint32, body []byte) error {
	msgs, err := c.encode(version, tag, append(c.header(version, typ, tag), body...))
	if err != nil {
		return err
	}
	r.send = append(r.send, msgs...)
	return nil
}

func (c *Conversation) onDHCommit(r *result, v int, tag uint32, body []byte) error {
	s := c.session(tag, v)
	a := &s.ake
	switch {
	case a.state == akeAwaitingDHKey || a.state == akeNone && c.commit != nil && c.commit.version == v:
		ours := a
		if a.state == akeNone {
			ours = c.commit
		}
		theirHash, ok := commitHash(body)
		if !ok {
			return wrap("otr: reading DH-Commit", ErrMalformed)
		}
		if commitWins(ours.hashGx, theirHash) {
			// Keep our commitment: send it again to this instance.
			if a.state == akeNone {
				*a = cloneAKE(c.commit)
			}
			return c.reply(r, v, DHCommit, tag, a.dhCommitBody())
		}
		out, err := c.respondToCommit(a, v, body, false)
		if err != nil {
			return err
		}
		return c.reply(r, v, DHKey, tag, out)
	case a.state == akeAwaitingRevealSig:
		out, err := c.respondToCommit(a, v, body, true)
		if err != nil {
			return err
		}
		return c.reply(r, v, DHKey, tag, out)
	default: // none (no commit of ours), or awaiting Sig: start afresh
		out, err := c.respondToCommit(a, v, body, false)
		if err != nil {
			return err
		}
		return c.reply(r, v, DHKey, tag, out)
	}
}

func commitHash(body []byte) ([]byte, bool) {
	_, rest, ok := readData(body)
	if !ok {
		return nil, false
	}
	h, _, ok := readData(rest)
	return h, ok && len(h) == 32
}

func cloneAKE(a *ake) ake {
	b := *a
	return b
}

func (c *Conversation) onDHKey(r *result, v int, tag uint32, body []byte) error {
	if c.sessions[tag] == nil && c.commit == nil {
		return nil // no DH-Commit of ours to answer
	}
	s := c.session(tag, v)
	a := &s.ake
	switch {
	case a.state == akeAwaitingDHKey && a.version == v:
	case a.state == akeNone && c.commit != nil && c.commit.version == v:
		*a = cloneAKE(c.commit)
	case a.state == akeAwaitingSig && a.version == v:
		gy, _, ok := readMPI(body)
		if ok && a.theirPub != nil && gy.Cmp(a.theirPub) == 0 {
			return c.reply(r, v, RevealSig, tag, a.last)
		}
		return nil
	default:
		return nil
	}
	out, err := c.receiveDHKey(a, body)
	if err != nil {
		return err // a bad DH-Key is ignored: the AKE may still finish
	}
	return c.reply(r, v, RevealSig, tag, out)
}

func (c *Conversation) onRevealSig(r *result, v int, tag uint32, body []byte) error {
	s := c.sessions[tag]
	if s == nil {
		return nil
	}
	a := &s.ake
	if a.state != akeAwaitingRevealSig || a.version != v {
		return nil
	}
	out, pub, keyID, err := c.receiveRevealSig(a, body)
	if err != nil {
		// Ignored, as the spec says: a forged message must not end an
		// AKE the real peer can still finish.
		r.event(Event{Kind: EventError, Instance: tag, Text: "Setting up the encrypted chat failed: the other side could not be authenticated."})
		return err
	}
	if err := c.reply(r, v, Sig, tag, out); err != nil {
		return err
	}
	return c.finishAKE(r, s, pub, keyID)
}

func (c *Conversation) onSig(r *result, v int, tag uint32, body []byte) error {
	s := c.sessions[tag]
	if s == nil {
		return nil
	}
	a := &s.ake
	if a.state != akeAwaitingSig || a.version != v {
		return nil
	}
	pub, keyID, err := c.receiveSig(a, body)
	if err != nil {
		r.event(Event{Kind: EventError, Instance: tag, Text: "Setting up the encrypted chat failed: the other side could not be authenticated."})
		return err
	}
	return c.finishAKE(r, s, pub, keyID)
}

// finishAKE switches the session to the new keys, reports it and sends
// the messages held until the chat was private.
func (c *Conversation) finishAKE(r *result, s *session, pub *PublicKey, keyID uint32) error {
	was := s.state
	if c.commit != nil && s.ake.our.priv == c.commit.our.priv {
		// Forward secrecy: the committed DH key must not outlive the
		// AKE it served (instances that have not answered yet must ask
		// again).
		c.commit = nil
	}
	if err := c.goEncrypted(s, pub, keyID); err != nil {
		return err
	}
	kind := EventGoneSecure
	if was == stateEncrypted {
		kind = EventStillSecure
	}
	fp := pub.Fingerprint()
	r.event(Event{Kind: kind, Instance: s.tag, Fingerprint: fp})
	// An OTR error carries no instance tag and no authentication: anyone
	// can send one and then finish an AKE of their own. So the message is
	// sent again only to the instance and key it was encrypted to.
	if c.mayResend && c.lastPlain != nil && s.tag == c.lastTo && fp == c.lastFP && c.now().Sub(c.lastPlainAt) <= resendWindow {
		msgs, err := c.sendData(s, append([]byte("[resent] "), c.lastPlain...), nil, 0)
		if err != nil {
			return err
		}
		r.send = append(r.send, msgs...)
		r.event(Event{Kind: EventResent, Instance: s.tag, Text: "Your last message was sent again: the other side's encrypted session had restarted."})
	}
	c.mayResend = false
	if c.chosen == 0 || c.chosen == s.tag {
		held := c.held
		c.held = nil
		for _, p := range held {
			msgs, err := c.sendData(s, p, nil, 0)
			if err != nil {
				return err
			}
			r.send = append(r.send, msgs...)
		}
	}
	return nil
}

func (c *Conversation) onData(r *result, v int, tag uint32, bin []byte, hdrLen int) error {
	d, ok := parseData(bin, hdrLen)
	if !ok {
		return wrap("otr: reading Data message", ErrMalformed)
	}
	s := c.sessions[tag]
	if s == nil || s.state != stateEncrypted || s.version != v {
		flags := d.flags
		if v == 2 {
			// Without instance tags the message may be for another
			// login of ours: tell the user, not the peer (libotr).
			flags |= flagIgnoreUnreadable
			r.event(Event{Kind: EventError, Instance: tag, Text: "An encrypted message arrived, but this chat is not encrypted: it cannot be read."})
		}
		return c.unreadable(r, tag, flags, wrap("otr: receiving Data message while not encrypted", ErrUnreadable))
	}
	plain, k, err := s.decrypt(d)
	if err != nil {
		if errors.Is(err, ErrMalformed) {
			return err
		}
		return c.unreadable(r, tag, d.flags, err)
	}
	c.seq++
	s.seen = c.seq
	if err := c.rotate(s, d); err != nil {
		return err
	}
	text, tlvs, tlvErr := splitPlaintext(plain)
	if len(text) > 0 {
		r.show = text
		r.shown = Shown{Encrypted: true, Instance: tag, Fingerprint: s.theirKey.Fingerprint()}
	}
	for _, t := range tlvs {
		switch t.typ {
		case tlvDisconnected:
			c.goPlaintext(s)
			s.state = stateFinished
			r.event(Event{Kind: EventGoneInsecure, Instance: tag, Text: "The other side ended the encrypted chat."})
			if tlvErr != nil {
				return wrap("otr: reading TLVs", ErrMalformed)
			}
			return nil
		case tlvExtraKey:
			e := Event{Kind: EventExtraKey, Instance: tag, Key: append([]byte(nil), k.extra[:]...)}
			if use, rest, ok := readInt(t.value); ok {
				e.Use, e.Data = use, append([]byte(nil), rest...)
			}
			r.event(e)
		case tlvSMP1, tlvSMP1Q, tlvSMP2, tlvSMP3, tlvSMP4, tlvSMPAbort:
			if err := c.onSMP(r, s, t); err != nil {
				return err
			}
		}
	}
	if tlvErr != nil {
		return wrap("otr: reading TLVs", ErrMalformed)
	}
	if len(text) > 0 && c.beat > 0 && c.now().Sub(s.lastSent) >= c.beat {
		msgs, err := c.sendData(s, nil, nil, flagIgnoreUnreadable)
		if err != nil {
			return err
		}
		r.send = append(r.send, msgs...)
	}
	return nil
}

// unreadable reports a Data message we cannot read: silently when the
// sender flagged it ignorable, else with an OTR error to the peer.
func (c *Conversation) unreadable(r *result, tag uint32, flags byte, err error) error {
	if flags&flagIgnoreUnreadable != 0 {
		return nil
	}
	r.event(Event{Kind: EventError, Instance: tag, Text: "An encrypted message from the other side could not be read."})
	r.send = append(r.send, []byte(ErrorMessage("You transmitted an unreadable encrypted message.")))
	return err
}

// ExtraKey returns the extra symmetric key of the current instance's
// session (Protocol-v3 "Extra symmetric key") and the Data message that
// tells the peer it is being used for use, with data as its context
// (TLV 8). The peer gets the same key in an EventExtraKey.
func (c *Conversation) ExtraKey(use uint32, data []byte) (key []byte, toSend [][]byte, err error) {
	s := c.best()
	if s == nil || s.state != stateEncrypted {
		return nil, nil, ErrNotSecure
	}
	k, ok := s.keysFor(s.ourKeyID-1, s.theirKeyID)
	if !ok {
		return nil, nil, ErrNotSecure
	}
	key = append([]byte(nil), k.extra[:]...)
	value := append(appendInt(nil, use), data...)
	toSend, err = c.sendData(s, nil, []tlv{{typ: tlvExtraKey, value: value}}, flagIgnoreUnreadable)
	return key, toSend, err
}
