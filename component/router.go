package component

import (
	"encoding/xml"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/store"
)

// Guest states kept in store.Guest.State.
const (
	stateQueued   = "queued"
	stateAssigned = "assigned"
	stateIdle     = "idle"  // expired from memory after guest_idle_timeout
	stateEnded    = "ended" // the visitor or an operator ended it
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
// drive it directly from one goroutine).
type router struct {
	c   *Component
	out sender // nil while disconnected
	now func() time.Time
	// failures counts stanzas whose handling panicked (tests assert zero).
	failures int

	skins map[string]store.Skin
	ops   map[string]*operator // by bare JID; operators of any skin

	guests map[string]*guest          // active guests by id
	byReal map[string]*guest          // active guests by skin + "\x00" + real JID
	queues map[string][]*guest        // queued guests per skin, oldest first
	count  map[string]int             // active guests per skin
	subbed map[string]map[string]bool // skin -> operator bare JIDs greeted on this stream
	// blocked visitors (skin + "\x00" + real JID) until a time; kept in
	// memory only, bounded by guests_per_skin per skin.
	blocked map[string]time.Time
	// newChats and newChatsAll admit chats of visitors without an alias
	// (see admit).
	newChats    map[string]*bucket
	newChatsAll bucket
	// sweepAt is when, after a (re)connect, chats pinned to resources that
	// never answered the probes go back to the queue (silence is offline).
	sweepAt time.Time
}

// operator is one operator (bare JID) and its resources.
type operator struct {
	bare   string
	onDuty bool
	nick   string
	res    map[string]*resource // by full JID
	chats  int                  // active chats pinned to any resource
	tags   map[uint32]string    // OTR instance tag -> full JID that sent it
}

type resource struct {
	full string
	show string // "", chat, away, xa, dnd
	prio int
}

// eligible reports whether a resource may get a new chat.
func (r *resource) eligible() bool { return r.show == "" || r.show == "chat" }

// guest is an active visitor. Idle guests are not kept in memory.
type guest struct {
	rec       store.Guest
	opBare    string      // bare JID of rec.Operator
	held      []*relayMsg // messages waiting for an operator, oldest first
	heldBytes int         // body bytes in held (bounded by 2 × max_body_bytes)
	notified  bool        // the pinned operator got the new-chat notice
	// queueSkin is the skin whose queue and operators serve the chat after
	// a transfer to another skin ("" = rec.Skin).
	queueSkin string
	// prevOp is the operator resource the chat had before it went back to
	// the queue (held ciphertext for it is useless to anyone else).
	prevOp string
	// OTR, from the wire (otr.go).
	otr       string
	encrypted bool      // the chat was encrypted at some point (statistics)
	akeStart  time.Time // first AKE message seen
	revealAt  time.Time // Reveal Signature seen, Signature not yet
	// revealByVisitor says who sent that Reveal Signature (the other side
	// owes the Signature).
	revealByVisitor bool
	// rate is the bucket for guest_messages_per_minute.
	rate bucket
}

func (g *guest) qskin() string {
	if g.queueSkin != "" {
		return g.queueSkin
	}
	return g.rec.Skin
}

func (r *router) init(c *Component) {
	r.c = c
	r.now = time.Now
	r.skins = map[string]store.Skin{}
	r.ops = map[string]*operator{}
	r.guests = map[string]*guest{}
	r.byReal = map[string]*guest{}
	r.queues = map[string][]*guest{}
	r.count = map[string]int{}
	r.subbed = map[string]map[string]bool{}
	r.blocked = map[string]time.Time{}
	r.newChats = map[string]*bucket{}
}

func (r *router) handle(ev any) {
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
			r.c.log.Error("reloading skins", "err", err)
			return
		}
		if r.out != nil {
			r.greetAll()
		}
		r.assignQueued()
	}
}

// loadSkins reads skins and operator records from the store.
// loadBlocks reads the operators' blocks of visitors that are still in
// force; ended ones are dropped from the store.
func (r *router) loadBlocks() error {
	now := r.now()
	if _, err := r.c.st.PurgeBlocks(now); err != nil {
		return fmt.Errorf("component: dropping ended blocks: %w", err)
	}
	blocks, err := r.c.st.Blocks()
	if err != nil {
		return fmt.Errorf("component: reading blocks: %w", err)
	}
	for _, b := range blocks {
		r.blocked[b.Skin+"\x00"+b.RealJID] = b.Until
	}
	return nil
}

func (r *router) loadSkins() error {
	skins, err := r.c.st.Skins()
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
		rec, err := r.c.st.Operator(bare)
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
		r.c.m.drop("disconnected")
		return errors.New("component: not connected")
	}
	if r.c.debug {
		if st, ok := t[0].(xml.StartElement); ok {
			r.c.log.Debug("sending", "stanza", st.Name.Local, "type", attrOf(st, "type"), "to", attrOf(st, "to"), "from", attrOf(st, "from"))
		}
	}
	if err := r.out.send(t); err != nil {
		r.c.m.drop("write-failed")
		r.c.log.Warn("writing stanza", "err", err)
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
			r.c.log.Error("handling stanza failed", "stanza", el.name.Local, "panic", fmt.Sprint(p))
			r.c.m.drop("internal-error")
			r.replyError(el, "wait", "internal-server-error", "")
		}
	}()
	if r.c.debug {
		r.c.log.Debug("received", "stanza", el.name.Local, "type", el.get("type"), "to", el.get("to"), "from", el.get("from"))
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

// ---- messages ----

// relayMsg is what the component relays of a message: nothing else.
type relayMsg struct {
	typ, id      string
	body         []byte
	hasBody      bool
	thread       []byte
	threadParent string
	chatState    string
	receiptReq   bool
	receiptID    string // <received id=.../>
	received     time.Time
	info         otr.Info // what the body is, as far as OTR is concerned
}

func parseRelay(el *elem) *relayMsg {
	m := &relayMsg{typ: el.get("type"), id: el.get("id")}
	if b := el.child("", "body"); b != nil {
		m.body, m.hasBody = b.text, true
		m.info = otr.Classify(b.text)
	}
	if t := el.child("", "thread"); t != nil {
		m.thread, m.threadParent = t.text, t.get("parent")
	}
	for _, k := range el.kids {
		switch k.name.Space {
		case nsChatStates:
			switch k.name.Local {
			case "active", "composing", "paused", "inactive", "gone":
				m.chatState = k.name.Local
			}
		case nsReceipts:
			switch k.name.Local {
			case "request":
				m.receiptReq = true
			case "received":
				m.receiptID = k.get("id")
			}
		}
	}
	return m
}

// empty reports whether there is nothing to relay.
func (m *relayMsg) empty() bool {
	return !m.hasBody && m.chatState == "" && !m.receiptReq && m.receiptID == "" && len(m.thread) == 0
}

// toks renders the relayed message from → to.
func (m *relayMsg) toks(from, to string) toks {
	typ := m.typ
	if typ == "" {
		typ = "chat"
	}
	t := make(toks, 0, 20).start(nsAccept, "message", "from", from, "to", to, "type", typ, "id", m.id)
	if m.hasBody {
		t = t.text("", "body", m.body)
	}
	if len(m.thread) > 0 {
		t = t.text("", "thread", m.thread, "parent", m.threadParent)
	}
	if m.chatState != "" {
		t = t.empty(nsChatStates, m.chatState)
	}
	if m.receiptReq {
		t = t.empty(nsReceipts, "request")
	}
	if m.receiptID != "" {
		t = t.empty(nsReceipts, "received", "id", m.receiptID)
	}
	if m.isOTR() {
		// Keep ciphertext out of carbons and archives: only the one
		// resource the chat is pinned to can use it.
		t = t.empty(nsCarbons, "private").empty(nsHints, "no-copy").empty(nsHints, "no-store")
	}
	return t.end(nsAccept, "message")
}

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
	if to.Domainpart() != r.c.domain.Domainpart() {
		r.c.m.drop("not-for-us")
		return
	}
	if typ == "groupchat" || typ == "headline" {
		r.c.m.drop("unsupported-type")
		r.replyError(el, "modify", "bad-request", "only chat and normal messages are relayed")
		return
	}
	switch {
	case to.Localpart() == "":
		r.handleCommand(el, from)
	case r.c.guestIDOf(to) != "":
		r.fromOperator(el, from, r.c.guestIDOf(to))
	case strings.HasPrefix(to.Localpart(), "guest-"):
		r.c.m.drop("unknown-alias")
		r.replyError(el, "cancel", "item-not-found", "")
	default:
		r.fromVisitor(el, from, to.Localpart())
	}
}

// checkSize refuses truncated stanzas and bodies over max_body_bytes.
func (r *router) checkSize(el *elem, m *relayMsg) bool {
	if el.truncated || len(m.body) > r.c.cfg.MaxBodyBytes {
		r.c.m.drop("too-large")
		r.replyError(el, "modify", "policy-violation",
			fmt.Sprintf("the message is larger than %d bytes", r.c.cfg.MaxBodyBytes))
		return false
	}
	return true
}

// fromVisitor handles a message to <skin>@D.
func (r *router) fromVisitor(el *elem, from jid.JID, skin string) {
	sk, ok := r.skins[skin]
	if !ok {
		r.c.m.drop("unknown-skin")
		r.replyError(el, "cancel", "item-not-found", "")
		return
	}
	m := parseRelay(el)
	if !r.checkSize(el, m) {
		return
	}
	end := el.child(nsOtrdesk, "end") != nil
	real := from.String()
	if until, ok := r.blocked[skin+"\x00"+real]; ok {
		if r.now().Before(until) {
			r.c.m.drop("blocked")
			r.replyError(el, "auth", "forbidden", "")
			return
		}
		delete(r.blocked, skin+"\x00"+real)
	}
	g := r.byReal[skin+"\x00"+real]
	fresh := false // the chat entered the queue with this message
	if g == nil {
		if !m.hasBody || end {
			// A chat state, receipt or end before the first message opens
			// nothing: an operator is assigned only for something to read.
			r.c.m.drop("no-chat")
			return
		}
		var err error
		g, err = r.activate(sk, real)
		if err != nil {
			switch {
			case errors.Is(err, errTooManyGuests):
				r.c.m.drop("too-many-guests")
				r.replyError(el, "wait", "resource-constraint", "too many visitors are waiting; try again later")
			case errors.Is(err, errTooManyNewChats):
				r.c.m.drop("new-chat-rate")
				r.replyError(el, "wait", "resource-constraint", "too many new chats right now; try again in a minute")
			default:
				r.c.m.drop("store-error")
				r.c.log.Error("activating guest", "skin", skin, "err", err)
				r.replyError(el, "wait", "internal-server-error", "")
			}
			return
		}
		fresh = g.rec.State == stateQueued
	}
	if !r.allow(g) {
		r.c.m.drop("rate-limited")
		r.replyError(el, "wait", "policy-violation",
			fmt.Sprintf("more than %d messages per minute", r.c.cfg.GuestMessagesPerMinute))
		return
	}
	now := r.now()
	g.rec.LastActive = now
	if end {
		r.endChat(g, "the visitor ended the chat")
		return
	}
	m.received = now
	if !r.checkFragment(el, m) || r.refusePlaintext(g, m, false) {
		return
	}
	if g.rec.State == stateAssigned && !r.online(g.rec.Operator) {
		// The pinned resource is not known to be online (for example just
		// after a reconnect): hold the message until someone takes the chat.
		r.unpin(g)
		r.enqueue(g, false)
		fresh = true
	}
	if g.rec.State == stateAssigned {
		r.deliver(g, m)
		return
	}
	if m.hasBody {
		if len(g.held) >= heldPerGuest || g.heldBytes+len(m.body) > 2*r.c.cfg.MaxBodyBytes {
			r.c.m.drop("queue-full")
			r.replyError(el, "wait", "resource-constraint", "too many messages are waiting for an operator")
			return
		}
		g.held = append(g.held, m)
		g.heldBytes += len(m.body)
	} // chat states of a queued visitor are not kept
	r.assignQueued()
	if fresh && g.rec.State == stateQueued {
		r.sendStatus(g, "queued", r.position(g), "")
	}
}

var (
	errTooManyGuests   = errors.New("component: too many guests for this skin")
	errTooManyNewChats = errors.New("component: too many new chats this minute")
)

// activate brings a visitor into memory: the stored alias if there is one,
// else a new one. The chat starts queued or, with a stored pin whose
// resource is online, assigned to it.
func (r *router) activate(sk store.Skin, real string) (*guest, error) {
	if r.count[sk.Name] >= r.c.cfg.GuestsPerSkin {
		return nil, errTooManyGuests
	}
	now := r.now()
	rec, err := r.c.st.GuestByRealJID(sk.Name, real)
	switch {
	case err == nil:
	case errors.Is(err, store.ErrNotFound):
		if !r.admit(sk.Name) {
			return nil, errTooManyNewChats
		}
		rec = store.Guest{ID: store.NewGuestID(), RealJID: real, Skin: sk.Name, Created: now}
	default:
		return nil, fmt.Errorf("component: looking up the visitor's alias: %w", err)
	}
	return r.load(rec, now)
}

// load puts a stored guest record into memory.
func (r *router) load(rec store.Guest, now time.Time) (*guest, error) {
	g := &guest{rec: rec}
	g.rec.LastActive = now
	pinned := rec.Operator
	g.rec.Operator, g.rec.State = "", ""
	picked := false // assigned now, without waiting in the queue
	if pinned != "" && r.online(pinned) {
		g.rec.Operator, g.rec.State, g.opBare = pinned, stateAssigned, bareOf(pinned)
		if g.rec.Assigned.IsZero() {
			g.rec.Assigned = now
		}
	} else if res := r.pickNow(g.rec.Skin); res != nil {
		// Nobody is waiting and an operator is free: one store write
		// instead of queue-then-assign.
		g.rec.Operator, g.rec.State, g.opBare = res.full, stateAssigned, bareOf(res.full)
		g.rec.Queued, g.rec.Assigned = now, now
		picked = true
	} else {
		g.rec.State = stateQueued
		g.rec.Queued = now
	}
	if err := r.c.st.PutGuest(g.rec); err != nil {
		return nil, fmt.Errorf("component: saving the visitor's alias: %w", err)
	}
	r.guests[g.rec.ID] = g
	r.byReal[g.rec.Skin+"\x00"+g.rec.RealJID] = g
	r.setOTR(g, otrPlaintext)
	r.count[g.rec.Skin]++
	if g.rec.State == stateAssigned {
		r.ops[g.opBare].chats++
		r.c.m.chat(stateAssigned, 1)
	} else {
		r.queues[g.rec.Skin] = append(r.queues[g.rec.Skin], g)
		r.c.m.chat(stateQueued, 1)
		r.c.m.queue(g.rec.Skin, len(r.queues[g.rec.Skin]))
	}
	r.c.log.Info("guest active", "skin", g.rec.Skin, "alias", "guest-"+g.rec.ID, "state", g.rec.State)
	if picked {
		r.sendStatus(g, "assigned", 0, r.displayName(g.rec.Skin, g.opBare))
	}
	return g, nil
}

// pickNow picks an operator for a new chat only when nobody is queued ahead.
func (r *router) pickNow(skin string) *resource {
	if len(r.queues[skin]) > 0 {
		return nil
	}
	return r.pick(skin)
}

func bareOf(full string) string {
	if i := strings.IndexByte(full, '/'); i >= 0 {
		return full[:i]
	}
	return full
}

// online reports whether a full JID is a known online operator resource.
func (r *router) online(full string) bool {
	o := r.ops[bareOf(full)]
	return o != nil && o.res[full] != nil
}

// allow applies guest_messages_per_minute.
func (r *router) allow(g *guest) bool {
	return g.rate.take(r.now(), r.c.cfg.GuestMessagesPerMinute)
}

// admit applies new_chats_per_minute (per skin) and
// new_chats_per_minute_total to a visitor otrdesk has no alias for. A chat
// refused by its skin's bucket takes nothing from the shared one.
func (r *router) admit(skin string) bool {
	now := r.now()
	b := r.newChats[skin]
	if b == nil {
		b = &bucket{}
		r.newChats[skin] = b
	}
	if !b.ok(now, r.c.cfg.NewChatsPerMinute) || !r.newChatsAll.ok(now, r.c.cfg.NewChatsPerMinuteTotal) {
		return false
	}
	b.take(now, r.c.cfg.NewChatsPerMinute)
	r.newChatsAll.take(now, r.c.cfg.NewChatsPerMinuteTotal)
	return true
}

// deliver relays a visitor message to the pinned operator resource, after
// the one-time new-chat notice.
func (r *router) deliver(g *guest, m *relayMsg) {
	r.routeByTag(g, m)
	alias := r.c.aliasJID(g.rec.ID)
	if !g.notified {
		g.notified = true
		sk := r.skins[g.rec.Skin]
		title := sk.Title
		if title == "" {
			title = sk.Name
		}
		wait := g.rec.Assigned.Sub(g.rec.Created)
		if !g.rec.Queued.IsZero() {
			wait = g.rec.Assigned.Sub(g.rec.Queued)
		}
		if wait < 0 {
			wait = 0
		}
		text := fmt.Sprintf("New chat on %s. The visitor waited %s.", title, wait.Round(time.Second))
		r.send(toks{}.start(nsAccept, "message", "from", alias, "to", g.rec.Operator, "type", "chat").
			text("", "body", []byte(text)).end(nsAccept, "message"))
	}
	r.observe(g, m, true)
	if r.send(m.toks(alias, g.rec.Operator)) == nil {
		r.c.m.relay("to-operator", m)
	}
}

// fromOperator handles a message to guest-<id>@D. Only the pinned resource
// may write, except that another resource of the same operator takes the
// chat over by starting a new AKE (an operator moving to another device).
func (r *router) fromOperator(el *elem, from jid.JID, id string) {
	m := parseRelay(el)
	full := from.String()
	g := r.guests[id]
	if g == nil {
		rec, err := r.c.st.Guest(id)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				r.c.log.Error("looking up guest", "err", err)
			}
			r.c.m.drop("unknown-alias")
			r.replyError(el, "cancel", "item-not-found", "")
			return
		}
		if rec.Operator == "" || rec.Operator != full && !(bareOf(rec.Operator) == bareOf(full) && startsAKE(m)) {
			r.c.m.drop("not-pinned-operator")
			r.replyError(el, "auth", "forbidden", "this chat is not yours")
			return
		}
		if _, ok := r.skins[rec.Skin]; !ok {
			r.c.m.drop("unknown-skin")
			r.replyError(el, "cancel", "item-not-found", "")
			return
		}
		if r.count[rec.Skin] >= r.c.cfg.GuestsPerSkin {
			r.c.m.drop("too-many-guests")
			r.replyError(el, "wait", "resource-constraint", "")
			return
		}
		// The resource just wrote to us, so it is online even if its
		// presence has not arrived yet (for example right after a restart).
		if o := r.ops[bareOf(full)]; o != nil && o.res[full] == nil {
			o.res[full] = &resource{full: full}
			r.publish()
		}
		rec.Operator = full
		g, err = r.load(rec, r.now())
		if err != nil {
			r.c.m.drop("store-error")
			r.c.log.Error("activating guest", "err", err)
			r.replyError(el, "wait", "internal-server-error", "")
			return
		}
		g.notified = true // the operator is already talking in this chat
	}
	if g.rec.State != stateAssigned {
		r.c.m.drop("not-pinned-operator")
		r.replyError(el, "auth", "forbidden", "this chat is not yours")
		return
	}
	if g.rec.Operator != full {
		if g.opBare != bareOf(full) || !startsAKE(m) {
			r.c.m.drop("not-pinned-operator")
			r.replyError(el, "auth", "forbidden", "this chat is not yours")
			return
		}
		r.repin(g, full)
	}
	if !r.checkSize(el, m) || !r.checkFragment(el, m) {
		return
	}
	if m.empty() {
		return
	}
	g.rec.LastActive = r.now()
	r.learnTag(full, m)
	if r.refusePlaintext(g, m, true) {
		return
	}
	r.observe(g, m, false)
	if r.send(m.toks(r.c.skinJID(g.rec.Skin), g.rec.RealJID)) == nil {
		r.c.m.relay("to-visitor", m)
	}
}

// ---- queue and assignment ----

// enqueue puts a guest at the end of its skin's queue.
func (r *router) enqueue(g *guest, tell bool) {
	g.rec.State, g.rec.Operator, g.opBare = stateQueued, "", ""
	g.rec.Queued = r.now()
	g.notified = false
	q := r.queues[g.qskin()]
	for _, x := range q {
		if x == g {
			return
		}
	}
	r.queues[g.qskin()] = append(q, g)
	r.c.m.chat(stateQueued, 1)
	r.c.m.queue(g.qskin(), len(r.queues[g.qskin()]))
	r.save(g)
	if tell {
		r.sendStatus(g, "queued", r.position(g), "")
	}
}

// unpin releases the operator of an assigned chat.
func (r *router) unpin(g *guest) {
	if g.rec.State != stateAssigned {
		return
	}
	if o := r.ops[g.opBare]; o != nil && o.chats > 0 {
		o.chats--
	}
	r.c.m.chat(stateAssigned, -1)
	g.prevOp = g.rec.Operator
	g.rec.State, g.rec.Operator, g.opBare = "", "", ""
}

func (r *router) position(g *guest) int {
	for i, x := range r.queues[g.qskin()] {
		if x == g {
			return i + 1
		}
	}
	return 0
}

// assignQueued gives queued chats to eligible operators, oldest first.
func (r *router) assignQueued() {
	names := make([]string, 0, len(r.queues))
	for name, q := range r.queues {
		if len(q) > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		q := r.queues[name]
		moved := false
		for len(q) > 0 {
			res := r.pick(name)
			if res == nil {
				break
			}
			g := q[0]
			q = q[1:]
			r.queues[name] = q
			moved = true
			r.c.m.chat(stateQueued, -1)
			r.assign(g, res)
		}
		r.c.m.queue(name, len(q))
		if moved {
			for i, g := range q {
				r.sendStatus(g, "queued", i+1, "")
			}
		}
	}
}

// pick chooses an operator resource for a new chat of the skin: available
// (show chat or none), on duty, fewest chats below the maximum (counted
// across skins), then highest priority.
func (r *router) pick(skin string) *resource {
	var best *resource
	bestChats := 0
	for _, bare := range r.skins[skin].Operators {
		o := r.ops[bare]
		if o == nil || !o.onDuty || o.chats >= r.c.cfg.MaxChatsPerOperator {
			continue
		}
		for _, res := range o.res {
			if !res.eligible() {
				continue
			}
			if best == nil || o.chats < bestChats ||
				o.chats == bestChats && (res.prio > best.prio || res.prio == best.prio && res.full < best.full) {
				best, bestChats = res, o.chats
			}
		}
	}
	return best
}

func (r *router) assign(g *guest, res *resource) {
	now := r.now()
	g.rec.State, g.rec.Operator, g.opBare = stateAssigned, res.full, bareOf(res.full)
	g.rec.Assigned = now
	g.notified = false
	r.ops[g.opBare].chats++
	r.c.m.chat(stateAssigned, 1)
	r.save(g)
	r.c.log.Info("chat assigned", "skin", g.rec.Skin, "alias", "guest-"+g.rec.ID)
	r.sendStatus(g, "assigned", 0, r.displayName(g.rec.Skin, g.opBare))
	held := g.held
	g.held, g.heldBytes = nil, 0
	stale := g.prevOp != "" && g.prevOp != res.full
	g.prevOp = ""
	for _, m := range held {
		if stale && (m.info.Kind == otr.KindEncoded && m.info.Type == otr.Data || m.info.Kind == otr.KindFragment) {
			// Encrypted for the previous operator's session: nobody
			// else can read it, and the widget starts a fresh AKE.
			r.c.m.drop("stale-ciphertext")
			continue
		}
		r.deliver(g, m)
	}
}

// displayName is the name a visitor sees for an operator: never a JID.
func (r *router) displayName(skin, bare string) string {
	if n := r.skins[skin].OperatorNames[bare]; n != "" {
		return n
	}
	if o := r.ops[bare]; o != nil && o.nick != "" {
		return o.nick
	}
	return "Operator"
}

// sendStatus tells the visitor's widget the chat's state.
func (r *router) sendStatus(g *guest, state string, position int, operator string) {
	pos := ""
	if position > 0 {
		pos = fmt.Sprint(position)
	}
	r.send(toks{}.start(nsAccept, "message", "from", r.c.skinJID(g.rec.Skin), "to", g.rec.RealJID, "type", "chat").
		empty(nsOtrdesk, "status", "state", state, "position", pos, "operator", operator).
		end(nsAccept, "message"))
}

func (r *router) save(g *guest) {
	if err := r.c.st.PutGuest(g.rec); err != nil {
		r.c.log.Error("saving guest", "alias", "guest-"+g.rec.ID, "err", err)
	}
}

// endChat ends a chat: tells both sides, records metadata, forgets it.
func (r *router) endChat(g *guest, why string) {
	if g.rec.State == stateAssigned {
		r.send(toks{}.start(nsAccept, "message", "from", r.c.aliasJID(g.rec.ID), "to", g.rec.Operator, "type", "chat").
			text("", "body", []byte("This chat has ended: "+why+".")).end(nsAccept, "message"))
	}
	r.sendStatus(g, stateEnded, 0, "")
	r.drop(g, stateEnded)
}

// expire drops guests idle for longer than guest_idle_timeout and restarts
// stalled AKEs.
func (r *router) expire(now time.Time) {
	r.checkStalls(now)
	if !r.sweepAt.IsZero() && !now.Before(r.sweepAt) && r.out != nil {
		r.sweepAt = time.Time{}
		r.sweep()
	}
	expired := false
	for k, until := range r.blocked {
		if !now.Before(until) {
			delete(r.blocked, k)
			expired = true
		}
	}
	if expired {
		if _, err := r.c.st.PurgeBlocks(now); err != nil {
			r.c.log.Error("dropping ended blocks", "err", err)
		}
	}
	for _, g := range r.guests {
		if now.Sub(g.rec.LastActive) >= r.c.cfg.GuestIdleTimeout {
			r.drop(g, stateIdle)
		}
	}
}

// drop removes a guest from memory, keeping its record (with its pin) for
// the retention purge.
func (r *router) drop(g *guest, state string) {
	if g.rec.State == stateAssigned {
		r.record(g)
		if o := r.ops[g.opBare]; o != nil && o.chats > 0 {
			o.chats--
		}
		r.c.m.chat(stateAssigned, -1)
	} else if g.rec.State == stateQueued {
		r.dequeue(g)
		if len(g.held) > 0 {
			r.c.m.dropN("expired-while-queued", len(g.held))
		}
	}
	if state == stateEnded {
		g.rec.Operator = ""
	}
	r.setOTR(g, "")
	g.rec.State = state
	r.save(g)
	delete(r.guests, g.rec.ID)
	delete(r.byReal, g.rec.Skin+"\x00"+g.rec.RealJID)
	r.count[g.rec.Skin]--
	r.c.log.Info("guest inactive", "skin", g.rec.Skin, "alias", "guest-"+g.rec.ID, "state", state)
	r.assignQueued()
}

func (r *router) record(g *guest) {
	start := g.rec.Queued
	if start.IsZero() {
		start = g.rec.Created
	}
	rec := store.ChatRecord{
		Skin:      g.rec.Skin,
		Start:     start,
		Wait:      max(g.rec.Assigned.Sub(start), 0),
		Duration:  max(g.rec.LastActive.Sub(g.rec.Assigned), 0),
		Encrypted: g.encrypted,
	}
	if err := r.c.st.RecordChat(rec); err != nil {
		r.c.log.Error("recording chat", "skin", g.rec.Skin, "err", err)
	}
}

// dequeue takes a queued guest out of its queue.
func (r *router) dequeue(g *guest) {
	q := r.queues[g.qskin()]
	for i, x := range q {
		if x == g {
			r.queues[g.qskin()] = append(q[:i:i], q[i+1:]...)
			r.c.m.chat(stateQueued, -1)
			r.c.m.queue(g.qskin(), len(r.queues[g.qskin()]))
			break
		}
	}
	g.rec.State = ""
}

func attrOf(s xml.StartElement, local string) string {
	for _, a := range s.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}
