package component

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"otrdesk.im/otrdesk/store"
)

// Events the router receives.
type (
	evStanza       struct{ el *elem }
	evConnected    struct{ out sender }
	evDisconnected struct{}
	evSkinsChanged struct{}
	// evFunc runs a function on the router goroutine (tests inspect state
	// with it without racing).
	evFunc func(*router)
)

// sender writes one stanza to the current stream.
type sender interface {
	send(t toks) error
}

// router owns all chat state. Only the router goroutine touches it (tests
// drive it directly from one goroutine). It holds its own dependencies: it
// never reaches back into the Component.
type router struct {
	// Dependencies, set by newRouter and read-only afterwards.
	names
	cfg   Config
	st    *store.Store
	log   *slog.Logger
	m     *metrics
	snap  *snapshot // where publish puts availability for the HTTP side
	debug bool      // the logger wants debug records (stanza metadata)

	out sender // nil while disconnected
	now func() time.Time
	// failures counts stanzas whose handling panicked (tests assert zero).
	failures int

	// book holds the active chats and everything their state changes keep
	// in step: indexes, queues, per-skin counts, operator loads, gauges.
	book
	skins  map[string]store.Skin
	subbed map[string]map[string]bool // skin -> operator bare JIDs greeted on this stream
	avail  map[string]bool            // skins with an operator available (as published)
	// writes holds guest records changed since the last flush.
	writes writes

	// Admission of new chats (admit.go).
	//
	// blocked visitors (skin + "\x00" + real JID) until a time, as stored
	// in the store's blocks (loaded at start, written when an operator
	// blocks). Bounded by guests_per_skin per skin.
	blocked map[string]time.Time
	// newChats and newChatsAll are the token buckets of
	// new_chats_per_minute (per skin) and new_chats_per_minute_total.
	newChats    map[string]*bucket
	newChatsAll bucket
	// pow makes and checks proof-of-work challenges; nil when
	// limits.proof_of_work is off.
	pow *pow

	// sweepAt is when, after a (re)connect, chats pinned to resources that
	// never answered the probes go back to the queue (silence is offline).
	sweepAt time.Time
	// purgeAt is when chats that never reached an operator are next
	// purged from the store (end.go).
	purgeAt time.Time

	// omemo holds visitors' keys handed over before their chat, reads of
	// operators' devices and the component's own PEP requests (omemo.go).
	omemo omemoState
}

func newRouter(cfg Config, st *store.Store, log *slog.Logger, m *metrics, domain jid.JID, snap *snapshot) *router {
	r := &router{
		names:    names{domain: domain},
		cfg:      cfg,
		st:       st,
		log:      log,
		m:        m,
		snap:     snap,
		now:      time.Now,
		skins:    map[string]store.Skin{},
		subbed:   map[string]map[string]bool{},
		avail:    map[string]bool{},
		blocked:  map[string]time.Time{},
		newChats: map[string]*bucket{},
	}
	r.debug = log.Enabled(context.Background(), slog.LevelDebug)
	if cfg.ProofOfWork {
		r.pow = newPoW(cfg.ProofOfWorkBits)
	}
	r.book.init(m)
	r.writes.init(st)
	r.omemo.init()
	return r
}

// handle handles one event and commits what it changed.
func (r *router) handle(ev any) {
	r.handleOne(ev)
	r.flush()
}

// handleOne handles one event; the guest records it changed wait for flush.
func (r *router) handleOne(ev any) {
	switch ev := ev.(type) {
	case evFunc:
		ev(r)
	case evStanza:
		r.handleStanza(ev.el)
	case evConnected:
		r.out = ev.out
		r.connected()
	case evDisconnected:
		r.out = nil
		// Silence is offline: forget every resource until presence says
		// otherwise. Pinned chats keep their pin; a message that arrives
		// before the operator's presence does is held.
		for _, o := range r.ops {
			clear(o.res)
		}
		r.publish()
	case evSkinsChanged:
		if err := r.loadSkins(); err != nil {
			r.log.Error("reloading skins", "err", err)
			return
		}
		if r.out != nil {
			r.greetAll()
		}
		r.assignQueued()
	}
}

// flush commits the guest records changed since the last flush, in one
// transaction.
func (r *router) flush() {
	if err := r.writes.flush(); err != nil {
		r.log.Error("saving guests", "err", err)
	}
}

// loadBlocks reads the operators' blocks of visitors that are still in
// force; ended ones are dropped from the store.
func (r *router) loadBlocks() error {
	now := r.now()
	if _, err := r.st.PurgeBlocks(now); err != nil {
		return fmt.Errorf("component: dropping ended blocks: %w", err)
	}
	blocks, err := r.st.Blocks()
	if err != nil {
		return fmt.Errorf("component: reading blocks: %w", err)
	}
	for _, b := range blocks {
		r.blocked[b.Skin+"\x00"+b.RealJID] = b.Until
	}
	return nil
}

// loadSkins reads skins and operator records from the store.
func (r *router) loadSkins() error {
	skins, err := r.st.Skins()
	if err != nil {
		return fmt.Errorf("component: reading skins: %w", err)
	}
	r.skins = make(map[string]store.Skin, len(skins))
	want := map[string]bool{}
	for _, sk := range skins {
		r.skins[sk.Name] = sk
		for _, op := range sk.Operators {
			want[op] = true
		}
	}
	for bare := range want {
		o := r.ops[bare]
		if o == nil {
			o = &operator{bare: bare, onDuty: true, res: map[string]*resource{}}
		}
		rec, err := r.st.Operator(bare)
		switch {
		case err == nil:
			o.onDuty, o.nick = rec.OnDuty, rec.Nick
		case errors.Is(err, store.ErrNotFound):
			// No record yet: on duty by default, `off` flips it.
		default:
			return fmt.Errorf("component: reading operator record: %w", err)
		}
		r.ops[bare] = o
	}
	for bare, o := range r.ops {
		if !want[bare] && o.chats == 0 {
			delete(r.ops, bare)
		}
	}
	for name := range r.subbed {
		if _, ok := r.skins[name]; !ok {
			delete(r.subbed, name)
		}
	}
	r.publish()
	return nil
}

// send writes a stanza; while disconnected the stanza is dropped and counted.
func (r *router) send(t toks) error {
	if r.out == nil {
		r.m.drop(dropDisconnected)
		return errors.New("component: not connected")
	}
	if r.debug {
		if st, ok := t[0].(xml.StartElement); ok {
			r.log.Debug("sending", "stanza", st.Name.Local, "type", attrOf(st, "type"), "to", attrOf(st, "to"), "from", attrOf(st, "from"))
		}
	}
	if err := r.out.send(t); err != nil {
		r.m.drop(dropWriteFailed)
		r.log.Warn("writing stanza", "err", err)
		return err
	}
	return nil
}

// handleStanza dispatches one incoming stanza. A panic while handling it is
// answered with an internal-server-error and logged; the stream stays up.
func (r *router) handleStanza(el *elem) {
	defer func() {
		if p := recover(); p != nil {
			r.failures++
			r.log.Error("handling stanza failed", "stanza", el.name.Local, "panic", fmt.Sprint(p))
			r.refuse(el, dropInternalError, "")
		}
	}()
	if r.debug {
		r.log.Debug("received", "stanza", el.name.Local, "type", el.get("type"), "to", el.get("to"), "from", el.get("from"))
	}
	if !isStanzaNS(el.name.Space) {
		return
	}
	switch el.name.Local {
	case "message":
		r.handleMessage(el)
	case "presence":
		r.handlePresence(el)
	case "iq":
		r.handleIQ(el)
	}
}

// replyError answers el with a stanza error. The error never carries the
// original payload (in particular never the body).
func (r *router) replyError(el *elem, typ, cond, text string) {
	if el.get("type") == "error" || el.get("from") == "" {
		return // never answer an error; nobody to answer
	}
	t := toks{}.start(nsAccept, el.name.Local,
		"from", el.get("to"), "to", el.get("from"), "id", el.get("id"), "type", "error")
	t = t.stanzaError(typ, cond, text)
	r.send(t.end(nsAccept, el.name.Local))
}

// refuse counts a stanza not handled for reason and answers it with the
// reason's stanza error (if it has one) and text.
func (r *router) refuse(el *elem, reason dropReason, text string) {
	r.m.drop(reason)
	if typ, cond := reason.stanzaError(); cond != "" {
		r.replyError(el, typ, cond, text)
	}
}

// handleMessage routes a message by its address: D is the command bot,
// guest-<id>@D an operator writing to a visitor, <skin>@D a visitor.
func (r *router) handleMessage(el *elem) {
	typ := el.get("type")
	if typ == "error" {
		return // never answer or relay errors
	}
	from, err := jid.Parse(el.get("from"))
	if err != nil {
		return
	}
	to, err := jid.Parse(el.get("to"))
	if err != nil {
		r.replyError(el, "modify", "jid-malformed", "")
		return
	}
	if to.Domainpart() != r.domain.Domainpart() {
		r.m.drop(dropNotForUs)
		return
	}
	if ev := el.child(nsPubSubEvent, "event"); ev != nil {
		r.pepEvent(el, ev, from, to) // an operator's device list, pushed (omemo_push.go)
		return
	}
	if typ == "groupchat" || typ == "headline" {
		r.refuse(el, dropUnsupportedType, "only chat and normal messages are relayed")
		return
	}
	switch {
	case to.Localpart() == "":
		r.handleCommand(el, from)
	case r.guestIDOf(to) != "":
		r.fromOperator(el, from, r.guestIDOf(to))
	case strings.HasPrefix(to.Localpart(), "guest-"):
		r.refuse(el, dropUnknownAlias, "")
	default:
		r.fromVisitor(el, from, to.Localpart())
	}
}

func bareOf(full string) string {
	if i := strings.IndexByte(full, '/'); i >= 0 {
		return full[:i]
	}
	return full
}

func attrOf(s xml.StartElement, local string) string {
	for _, a := range s.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}
