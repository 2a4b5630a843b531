package component

import (
	"time"

	"otrdesk.im/otrdesk/store"
)

// A chat's state, as kept in store.Guest.State, and the chat methods that
// change it:
//
//	open        a visitor (new, returning or resuming) becomes an active
//	            chat; enqueue or assign follows at once
//	enqueue     -> queued: waits in its skin's queue (also when its
//	            operator is lost)
//	assign      -> assigned: pinned to an operator resource (from the queue,
//	            at once when an operator is free, or a transfer to an
//	            operator)
//	repin       assigned, to another resource of the same operator
//	transferTo  -> queued, in another skin's queue (a transfer to a skin)
//	moveTo      the same state, for the visitor's new JID (resumption)
//	close       -> ended (the visitor or an operator ended it) or idle
//	            (silent for guest_idle_timeout; the pin is kept)
//
// Only queued and assigned chats are in memory; idle and ended ones are
// store records. "transferred" is not a state: it is what the visitor is
// told while a chat moves (then "queued" or "assigned" follows).
const (
	stateQueued   = "queued"
	stateAssigned = "assigned"
	stateIdle     = "idle"
	stateEnded    = "ended"
)

// chat is one active visitor's chat. Its state changes are its methods
// (open, enqueue, transferTo, assign, repin, moveTo, close): each keeps the book's
// indexes, queues, counts and gauges right, so no caller adjusts a counter
// by hand. What a change says to whom (status elements, notices) and what
// it writes to the store is the router's.
type chat struct {
	b *book

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
	// OMEMO (omemo.go): the keys the visitor's widget handed over, and
	// the protocol picked at the last assignment ("otr" or "omemo").
	keys *visitorKeys
	e2ee string
	// resume is a resumption secret made for this chat and not yet sent to
	// the visitor: the next status element carries it, once (resume.go).
	// Only its hash is kept (rec.Resume).
	resume string
}

// qskin is the skin whose queue and operators serve the chat.
func (ch *chat) qskin() string {
	if ch.queueSkin != "" {
		return ch.queueSkin
	}
	return ch.rec.Skin
}

func (ch *chat) alias() string { return "guest-" + ch.rec.ID }

// operator is one operator (bare JID) and its resources.
type operator struct {
	bare   string
	onDuty bool
	nick   string
	res    map[string]*resource // by full JID
	chats  int                  // assigned chats pinned to any resource
	tags   map[uint32]string    // OTR instance tag -> full JID that sent it
}

type resource struct {
	full string
	show string // "", chat, away, xa, dnd
	prio int
}

// eligible reports whether a resource may get a new chat.
func (r *resource) eligible() bool { return r.show == "" || r.show == "chat" }

// book is the bookkeeping of active chats: every index and count that
// depends on a chat's state. Only chat methods change it.
type book struct {
	m      *metrics
	chats  map[string]*chat     // active chats by guest id
	byReal map[string]*chat     // active chats by skin + "\x00" + real JID
	queues map[string][]*chat   // queued chats per skin, oldest first
	count  map[string]int       // active chats per skin (for guests_per_skin)
	ops    map[string]*operator // by bare JID; operators of any skin
}

func (b *book) init(m *metrics) {
	b.m = m
	b.chats = map[string]*chat{}
	b.byReal = map[string]*chat{}
	b.queues = map[string][]*chat{}
	b.count = map[string]int{}
	b.ops = map[string]*operator{}
}

func realKey(skin, real string) string { return skin + "\x00" + real }

// open makes rec an active chat, in no queue and with no operator yet: the
// caller follows with enqueue or assign.
func (b *book) open(rec store.Guest) *chat {
	ch := &chat{b: b, rec: rec}
	ch.rec.State, ch.rec.Operator = "", ""
	b.chats[rec.ID] = ch
	b.byReal[realKey(rec.Skin, rec.RealJID)] = ch
	b.count[rec.Skin]++
	ch.setOTR(otrPlaintext)
	return ch
}

// leave undoes the bookkeeping of the chat's current state and leaves it
// with no state and no operator.
func (ch *chat) leave() {
	b := ch.b
	switch ch.rec.State {
	case stateAssigned:
		if o := b.ops[ch.opBare]; o != nil && o.chats > 0 {
			o.chats--
		}
		b.m.chat(stateAssigned, -1)
		ch.prevOp = ch.rec.Operator
	case stateQueued:
		q := b.queues[ch.qskin()]
		for i, x := range q {
			if x == ch {
				b.queues[ch.qskin()] = append(q[:i:i], q[i+1:]...)
				break
			}
		}
		b.m.chat(stateQueued, -1)
		b.m.queue(ch.qskin(), len(b.queues[ch.qskin()]))
	}
	ch.rec.State, ch.rec.Operator, ch.opBare = "", "", ""
}

// enqueue puts the chat at the end of its skin's queue, releasing its
// operator if it had one. A chat already queued keeps its place.
func (ch *chat) enqueue(now time.Time) {
	if ch.rec.State == stateQueued {
		return
	}
	ch.leave()
	b := ch.b
	ch.rec.State = stateQueued
	ch.rec.Queued = now
	ch.notified = false
	b.queues[ch.qskin()] = append(b.queues[ch.qskin()], ch)
	b.m.chat(stateQueued, 1)
	b.m.queue(ch.qskin(), len(b.queues[ch.qskin()]))
}

// transferTo puts the chat at the end of another queue: that of skin
// queueSkin, whose operators then serve it ("" is the chat's own skin).
func (ch *chat) transferTo(queueSkin string, now time.Time) {
	ch.leave() // out of its operator's load or its old queue first
	ch.queueSkin = queueSkin
	ch.enqueue(now)
}

// assign pins the chat to an operator resource, taking it out of the queue
// or away from its previous operator.
func (ch *chat) assign(full string, now time.Time) {
	ch.leave()
	ch.rec.State, ch.rec.Operator, ch.opBare = stateAssigned, full, bareOf(full)
	ch.rec.Assigned = now
	ch.notified = false
	if o := ch.b.ops[ch.opBare]; o != nil {
		o.chats++
	}
	ch.b.m.chat(stateAssigned, 1)
}

// repin moves an assigned chat to another resource of the same operator:
// the operator's load does not change.
func (ch *chat) repin(full string) {
	ch.rec.Operator = full
	ch.b.m.repins.Inc()
}

// moveTo gives the chat a new real JID (the visitor resumed it after a new
// login): same alias, same state, same operator.
func (ch *chat) moveTo(real string) {
	b := ch.b
	delete(b.byReal, realKey(ch.rec.Skin, ch.rec.RealJID))
	ch.rec.RealJID = real
	b.byReal[realKey(ch.rec.Skin, real)] = ch
}

// close takes the chat out of memory as ended or idle. An idle chat keeps
// its pin in the record (the visitor may come back to the same operator);
// an ended one does not. Held messages are dropped and counted.
func (ch *chat) close(state string) {
	b := ch.b
	pin := ch.rec.Operator
	if ch.rec.State == stateQueued && len(ch.held) > 0 {
		b.m.dropN(dropExpiredWhileQueued, len(ch.held))
	}
	ch.held, ch.heldBytes = nil, 0
	ch.leave()
	if state == stateIdle {
		ch.rec.Operator = pin
	}
	ch.rec.State = state
	ch.setOTR("")
	delete(b.chats, ch.rec.ID)
	delete(b.byReal, realKey(ch.rec.Skin, ch.rec.RealJID))
	b.count[ch.rec.Skin]--
}

// position is the chat's place in its queue (1 is next), 0 if not queued.
func (ch *chat) position() int {
	for i, x := range ch.b.queues[ch.qskin()] {
		if x == ch {
			return i + 1
		}
	}
	return 0
}

// freshAKE forgets the chat's OTR state: the widget starts a new key
// exchange (after a transfer or a resumption).
func (ch *chat) freshAKE() {
	ch.setOTR(otrPlaintext)
	ch.akeStart, ch.revealAt = time.Time{}, time.Time{}
}

// setOTR changes a chat's OTR state and its gauge ("" when it closes).
func (ch *chat) setOTR(state string) {
	if ch.otr == state {
		return
	}
	if ch.otr != "" {
		ch.b.m.otrState(ch.otr, -1)
	}
	ch.otr = state
	if state == otrEncrypted {
		ch.encrypted = true
	}
	if state != "" {
		ch.b.m.otrState(state, 1)
	}
}
