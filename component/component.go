// Package component is otrdesk's XMPP side: an external component
// (XEP-0114, jabber:component:accept) that gives every website visitor a
// stable alias, pins the chat to one operator resource and relays the chat
// between the two without either side learning the other's address.
//
// Addresses, for component domain D:
//
//	D               the service: disco#info, ping, and the operator text commands
//	<skin>@D        a skin; visitors write here; presence subscriptions to operators
//	guest-<id>@D    one visitor, as operators see it
//
// Flow of one chat:
//
//	visitor ──message──▶ <skin>@D        new visitor: alias guest-<id>@D (store), rate and size caps
//	                        │            pick an operator resource: show chat/none, on duty,
//	                        │            fewest chats below max, then highest priority
//	                        │            none: <status state='queued' position='N'/>, hold (bounded)
//	                        ▼
//	operator ◀── notice + message ── guest-<id>@D   (body byte-exact, thread, chat states, receipts)
//	operator ──reply──▶ guest-<id>@D ──▶ visitor, from <skin>@D
//
// Only <body>, <thread>, chat states (XEP-0085) and receipts (XEP-0184) are
// relayed; everything else a client adds is dropped. A stanza that cannot be
// handled is answered with a stanza error (never echoing the body); the
// stream stays up.
//
// OTR-aware routing (otr.go): every body is classified with
// otr.Classify. Operator resources' instance tags are learned from what they
// send; a visitor message for another resource's tag goes to that resource;
// another resource of the pinned operator takes the chat over by starting
// an AKE. OTR stanzas are marked <private/> (carbons) and no-copy/no-store
// (hints). The chat's OTR state (plaintext, ake, encrypted, finished) comes
// from the wire; a Reveal Signature without a Signature within
// ake_stall_timeout makes the component send the visitor a query. Under a
// "require" skin no plaintext crosses: the sender is told and gets a query.
//
// OMEMO (omemo.go) beside OTR: <encrypted/> elements cross both ways
// under the same masking, caps and metrics; the widget hands its device
// list and bundle to <skin>@D (PEP publish), the alias serves them to the
// pinned operator's account (PEP items, and an event on assignment); the
// operator's devices are read as the skin, and the widget asking <skin>@D
// gets only those the skin trusts; the operator's server pushes changes of
// its device list to the skin (entity capabilities with the device list's
// +notify, omemo_push.go). A chat is OMEMO (e2ee='omemo' in the
// status) when the widget handed over keys and the operator has a device
// the skin trusts, else OTR.
//
// Commands on D (commands: text bot; adhoc.go: XEP-0050, the same set):
// help, status, on, off, chats, nick NAME, transfer guest-<id>
// <operator|skin>, end guest-<id>, block guest-<id> [duration]. Only
// operators of the chat's skin and admins act on a chat.
//
// Concurrency: Run owns one connection loop (dial, handshake, read tokens,
// reconnect with exponential backoff and jitter) and one router goroutine
// that owns every piece of chat state (skins, operator resources, active
// chats, queues) and receives typed events. An idle guest is a store
// record, not a goroutine and not a map entry: active chats are dropped
// from memory after guest_idle_timeout. The HTTP side reads Ready and
// Available from a small snapshot guarded by a mutex. The router commits
// the guest records a batch of events changed in one store transaction
// (writes.go).
//
// Chats: a chat's state (queued, assigned; then ended or idle) changes
// only through its own methods (chat.go), which keep the queues, the
// per-skin and per-operator counts and the gauges in step. Every stanza
// refused or dropped is counted under one named reason (drop.go), which
// also says which stanza error answers it.
//
// The widget's control channel (namespace urn:otrdesk:0, in messages
// between a visitor and <skin>@D):
//
//	<status state='queued|assigned|transferred|ended' position='N'
//	        operator='Display name' resume='S'
//	        e2ee='otr|omemo'/>                      to the visitor
//	<end/>                                          from the visitor: end the chat
//	<resume secret='S'/>                            from the visitor after a new login
//	<pow challenge='C' bits='B'/>                   to the visitor, inside an error
//	<pow challenge='C' nonce='N'/>                  from the visitor, beside the body
//
// resume.go says how a chat survives a lost session (a single-use secret,
// only its SHA-256 stored); pow.go how a new chat over the new-chat rate
// proves work when limits.proof_of_work is "over-limit" (SHA-256 of C ":"
// N with B leading zero bits, C bound by HMAC to the skin, the visitor's
// JID and two minutes, each C good for one chat).
//
// Admission (admit.go): guests_per_skin bounds active chats per skin
// (visitors who already have an alias may come in up to twice that, so a
// flood of strangers does not lock them out); new_chats_per_minute and
// new_chats_per_minute_total bound new aliases; records of chats that
// never reached an operator are purged after store.unassigned_retention.
//
// Presence: on every (re)connect each skin probes each of its operators,
// asks for a presence subscription and announces itself (probe first:
// Prosody cancels a pending subscription request when it answers a probe
// with "unsubscribed"); skins added later are greeted on SkinsChanged.
// Silence is offline: chats pinned to a resource that has not shown up a
// few seconds after a reconnect go back to the queue, as do chats of a
// resource that goes unavailable.
//
// Privacy: bodies never reach a log line, an error text, the store or a
// metric label. Logs carry metadata only (skin, alias, state, sizes).
//
// Files, one per concern: component.go (API, config, addresses),
// stream.go (dial, handshake, read loop, reconnect), stanza.go (the small
// element tree, token building), router.go (the router, its events and
// dispatch), chat.go (a chat's states and bookkeeping), drop.go (reasons),
// visitor.go (a visitor's message), admit.go, rate.go and pow.go
// (admitting new chats), resume.go (resumption), queue.go (queue and assignment), relay.go (what crosses, both
// ways), transfer.go, end.go (ending, idling, the router's clock),
// writes.go (coalesced store writes), presence.go, iq.go, commands.go and
// adhoc.go (operators' commands), otr.go (OTR-aware routing), omemo.go
// (OMEMO relaying and keys), omemo_push.go (pushed device lists), notify.go, metrics.go.
package component

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"mellium.im/xmpp/jid"

	"otrdesk.im/otrdesk/store"
)

// ErrHandshake is returned by Run when the XMPP server refuses the very first
// component handshake (wrong secret or unknown component domain): that is a
// configuration error, not a transient one.
var ErrHandshake = errors.New("component: handshake refused")

// Config configures a Component. Zero values get the defaults below, which
// are also the documented defaults of config.example.toml.
type Config struct {
	Domain          string // component JID, e.g. chat.example.org
	Server          string // host:port of the server's XEP-0114 listener
	Secret          string // shared component secret; never logged
	AnonymousDomain string
	Admins          []string // bare JIDs allowed to run admin commands

	MaxChatsPerOperator int
	GuestIdleTimeout    time.Duration
	AKEStallTimeout     time.Duration

	MaxBodyBytes           int
	GuestsPerSkin          int
	GuestMessagesPerMinute int
	NewChatsPerMinute      int // per skin, for visitors otrdesk has no alias for
	NewChatsPerMinuteTotal int // the same, all skins together

	// ProofOfWork makes a new chat over the new-chat rate prove work
	// (pow.go) instead of being refused; ProofOfWorkBits is the cost:
	// about 2^bits SHA-256 computations per chat.
	ProofOfWork     bool
	ProofOfWorkBits int

	// UnassignedRetention is how long the record of a chat that never
	// reached an operator is kept after its last activity (a flood of new
	// chats leaves only such records behind).
	UnassignedRetention time.Duration

	Logger     *slog.Logger          // nil: discard
	Registerer prometheus.Registerer // nil: no metrics
}

// Defaults, as config.example.toml documents them.
const (
	DefaultMaxChatsPerOperator    = 4
	DefaultGuestIdleTimeout       = 30 * time.Minute
	DefaultAKEStallTimeout        = 10 * time.Second
	DefaultMaxBodyBytes           = 65536
	DefaultGuestsPerSkin          = 1000
	DefaultGuestMessagesPerMinute = 120
	DefaultNewChatsPerMinute      = 600
	DefaultNewChatsPerMinuteTotal = 3000
	DefaultUnassignedRetention    = time.Hour

	// heldPerGuest bounds the messages kept for a queued visitor.
	heldPerGuest = 32
	// backoffMin and backoffMax bound the reconnect delay.
	backoffMin = 500 * time.Millisecond
	backoffMax = 30 * time.Second
	// handshakeTimeout bounds dialing and the XEP-0114 handshake.
	handshakeTimeout = 10 * time.Second
	// writeTimeout bounds writing one stanza.
	writeTimeout = 10 * time.Second
	// maxBatch bounds the events handled before the guest records they
	// changed are committed.
	maxBatch = 64
)

// Component is the otrdesk XMPP component. Create it with New, start it with
// Run.
type Component struct {
	// Set by New, read-only afterwards.
	cfg    Config
	log    *slog.Logger
	m      *metrics
	domain jid.JID
	events chan any
	// skinsChanged holds at most one pending reload request.
	skinsChanged chan struct{}

	// snap is what the HTTP side reads (Ready, Available).
	snap *snapshot
	// connects counts successful handshakes (tests poll it across a
	// server restart).
	connects atomic.Int64

	// r owns every piece of chat state; only the goroutine running Run
	// touches it.
	r *router
}

// snapshot is the little the HTTP side needs to know, guarded by a mutex:
// whether the stream is up, and which skins have an operator available.
// The router publishes availability; the connection loop readiness.
type snapshot struct {
	mu        sync.Mutex
	ready     bool
	reason    string
	available map[string]bool
}

func (s *snapshot) setAvailable(avail map[string]bool) {
	s.mu.Lock()
	s.available = avail
	s.mu.Unlock()
}

func (s *snapshot) isAvailable(skin string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.available[skin]
}

// New checks cfg and returns a component that uses st for skins, guests and
// operators. It does not connect; call Run.
func New(cfg Config, st *store.Store) (*Component, error) {
	if st == nil {
		return nil, errors.New("component: no store")
	}
	d, err := jid.Parse(cfg.Domain)
	if err != nil || d.Localpart() != "" || d.Resourcepart() != "" || cfg.Domain == "" {
		return nil, fmt.Errorf("component: component.domain %q is not a bare domain like chat.example.org", cfg.Domain)
	}
	if cfg.Server == "" {
		return nil, errors.New("component: component.server is empty; set it to the XEP-0114 listener, e.g. 127.0.0.1:5347")
	}
	if cfg.Secret == "" {
		return nil, errors.New("component: the component secret is empty; set component.secret_file or OTRDESK_COMPONENT_SECRET")
	}
	if cfg.MaxChatsPerOperator <= 0 {
		cfg.MaxChatsPerOperator = DefaultMaxChatsPerOperator
	}
	if cfg.GuestIdleTimeout <= 0 {
		cfg.GuestIdleTimeout = DefaultGuestIdleTimeout
	}
	if cfg.AKEStallTimeout <= 0 {
		cfg.AKEStallTimeout = DefaultAKEStallTimeout
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.GuestsPerSkin <= 0 {
		cfg.GuestsPerSkin = DefaultGuestsPerSkin
	}
	if cfg.GuestMessagesPerMinute <= 0 {
		cfg.GuestMessagesPerMinute = DefaultGuestMessagesPerMinute
	}
	if cfg.NewChatsPerMinute <= 0 {
		cfg.NewChatsPerMinute = DefaultNewChatsPerMinute
	}
	if cfg.NewChatsPerMinuteTotal <= 0 {
		cfg.NewChatsPerMinuteTotal = DefaultNewChatsPerMinuteTotal
	}
	if cfg.ProofOfWorkBits == 0 {
		cfg.ProofOfWorkBits = DefaultProofOfWorkBits
	}
	if cfg.ProofOfWorkBits < MinProofOfWorkBits || cfg.ProofOfWorkBits > MaxProofOfWorkBits {
		return nil, fmt.Errorf("component: limits.proof_of_work_bits is %d: use %d to %d", cfg.ProofOfWorkBits, MinProofOfWorkBits, MaxProofOfWorkBits)
	}
	if cfg.UnassignedRetention <= 0 {
		cfg.UnassignedRetention = DefaultUnassignedRetention
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	log = log.With("domain", d.String())
	snap := &snapshot{reason: "not connected yet", available: map[string]bool{}}
	c := &Component{
		cfg:          cfg,
		log:          log,
		m:            m,
		domain:       d,
		events:       make(chan any, 256),
		skinsChanged: make(chan struct{}, 1),
		snap:         snap,
	}
	c.r = newRouter(cfg, st, log, m, d, snap)
	return c, nil
}

// Ready reports whether the component stream is authenticated. When it is
// not, reason says why in a few words.
func (c *Component) Ready() (ok bool, reason string) {
	c.snap.mu.Lock()
	defer c.snap.mu.Unlock()
	return c.snap.ready, c.snap.reason
}

func (c *Component) setReady(ok bool, reason string) {
	c.snap.mu.Lock()
	c.snap.ready, c.snap.reason = ok, reason
	c.snap.mu.Unlock()
}

// Available reports whether an operator of the skin is on duty and available
// (online with show "chat" or no show).
func (c *Component) Available(skin string) bool {
	return c.snap.isAvailable(skin)
}

// SkinsChanged makes the component re-read the skins from the store and ask
// new operators for a presence subscription. It does not block.
func (c *Component) SkinsChanged() {
	select {
	case c.skinsChanged <- struct{}{}:
	default: // a reload is already pending
	}
}

// Run connects to the XMPP server and serves until ctx is done, reconnecting
// with exponential backoff and jitter when the stream drops. It returns
// ErrHandshake (wrapped, with a clear text) at once if the very first
// handshake is refused, and nil when ctx is done.
func (c *Component) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := c.r.loadSkins(); err != nil {
		return err
	}
	if err := c.r.loadBlocks(); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- c.connectLoop(ctx) }()
	done := ctx.Done()
	tick := time.NewTicker(tickEvery(c.cfg.GuestIdleTimeout, c.cfg.AKEStallTimeout))
	defer tick.Stop()
	for {
		select {
		case err := <-errc:
			cancel()
			c.setReady(false, "stopped")
			return err
		case <-done:
			// Wait for the connection loop to finish so no goroutine outlives Run.
			done = nil
		case ev := <-c.events:
			// Handle what is already waiting, then commit the guest
			// records these events changed in one transaction: under
			// load many writes share one fsync, and when idle each event
			// is committed at once.
			c.r.handleOne(ev)
		more:
			for range maxBatch - 1 {
				select {
				case ev := <-c.events:
					c.r.handleOne(ev)
				default:
					break more
				}
			}
			c.r.flush()
		case <-c.skinsChanged:
			c.r.handle(evSkinsChanged{})
		case now := <-tick.C:
			c.r.expire(now)
		}
	}
}

func tickEvery(idle, stall time.Duration) time.Duration {
	t := min(idle/4, stall/2)
	if t > 30*time.Second {
		t = 30 * time.Second
	}
	if t < 50*time.Millisecond {
		t = 50 * time.Millisecond
	}
	return t
}

// names are the component's addresses for domain D: the service D, skins
// <skin>@D and aliases guest-<id>@D.
type names struct{ domain jid.JID }

// skinOf returns the skin name of a skin address, "" if j is not one.
func (n names) skinOf(j jid.JID) string {
	l := j.Localpart()
	if l == "" || strings.HasPrefix(l, "guest-") || j.Domainpart() != n.domain.Domainpart() {
		return ""
	}
	return l
}

// guestIDOf returns the guest id of an alias, "" if j is not one.
func (n names) guestIDOf(j jid.JID) string {
	l := j.Localpart()
	if j.Domainpart() != n.domain.Domainpart() || !strings.HasPrefix(l, "guest-") {
		return ""
	}
	id := l[len("guest-"):]
	if len(id) < 13 || len(id) > 64 {
		return ""
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !(b >= 'a' && b <= 'z' || b >= '2' && b <= '7') {
			return ""
		}
	}
	return id
}

func (n names) service() string            { return n.domain.String() }
func (n names) skinJID(skin string) string { return skin + "@" + n.domain.String() }
func (n names) aliasJID(id string) string  { return "guest-" + id + "@" + n.domain.String() }
