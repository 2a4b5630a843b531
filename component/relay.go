package component

import (
	"errors"
	"fmt"
	"time"

	"mellium.im/xmpp/jid"

	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/store"
)

// Relaying: what crosses between a visitor and the chat's operator, both
// ways. Only the body (byte-exact), the thread, chat states and receipts
// cross; everything else a client adds is dropped.

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
	// OMEMO (omemo.go): the <encrypted/> element in canonical form, or
	// why it was refused, and the size of its payload.
	omemo        []byte
	omemoErr     error
	omemoPayload int
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
	if e := el.child(nsOMEMO, "encrypted"); e != nil {
		m.readOMEMO(e)
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
	return !m.hasBody && m.omemo == nil && m.chatState == "" && !m.receiptReq && m.receiptID == "" && len(m.thread) == 0
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
	if m.omemo != nil {
		// Out of archives too, but carbons may copy it: every trusted
		// device of the operator has a key in it.
		t = m.omemoToks(t).empty(nsHints, "no-store")
	}
	return t.end(nsAccept, "message")
}

// deliver relays a visitor message to the pinned operator resource, after
// the one-time new-chat notice.
func (r *router) deliver(ch *chat, m *relayMsg) {
	r.routeByTag(ch, m)
	alias := r.aliasJID(ch.rec.ID)
	if !ch.notified {
		ch.notified = true
		sk := r.skins[ch.rec.Skin]
		title := sk.Title
		if title == "" {
			title = sk.Name
		}
		wait := ch.rec.Assigned.Sub(ch.rec.Created)
		if !ch.rec.Queued.IsZero() {
			wait = ch.rec.Assigned.Sub(ch.rec.Queued)
		}
		if wait < 0 {
			wait = 0
		}
		text := fmt.Sprintf("New chat on %s. The visitor waited %s.", title, wait.Round(time.Second))
		r.send(toks{}.start(nsAccept, "message", "from", alias, "to", ch.rec.Operator, "type", "chat").
			text("", "body", []byte(text)).end(nsAccept, "message"))
	}
	if ch.e2ee == e2eeOMEMO && m.isOTR() {
		// The widget's OTR (its opening query, sent before it knew the
		// chat is OMEMO): the operator's client does not speak it here.
		r.m.drop(dropOTRInOMEMOChat)
		return
	}
	r.observe(ch, m, true)
	if r.send(m.toks(alias, ch.rec.Operator)) == nil {
		r.m.relay("to-operator", m)
	}
}

// fromOperator handles a message to guest-<id>@D. Only the pinned resource
// may write, except that another resource of the same operator takes the
// chat over by starting a new AKE (an operator moving to another device).
func (r *router) fromOperator(el *elem, from jid.JID, id string) {
	m := parseRelay(el)
	full := from.String()
	ch := r.chats[id]
	if ch == nil {
		rec, err := r.writes.guest(id)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				r.log.Error("looking up guest", "err", err)
			}
			r.refuse(el, dropUnknownAlias, "")
			return
		}
		if rec.Operator == "" || rec.Operator != full && !(bareOf(rec.Operator) == bareOf(full) && startsAKE(m)) {
			r.refuse(el, dropNotPinnedOperator, "this chat is not yours")
			return
		}
		if _, ok := r.skins[rec.Skin]; !ok {
			r.refuse(el, dropUnknownSkin, "")
			return
		}
		if !r.roomFor(rec.Skin, true) {
			r.refuse(el, dropTooManyGuests, "")
			return
		}
		// The resource just wrote to us, so it is online even if its
		// presence has not arrived yet (for example right after a restart).
		if o := r.ops[bareOf(full)]; o != nil && o.res[full] == nil {
			o.res[full] = &resource{full: full}
			r.publish()
		}
		rec.Operator = full
		ch = r.load(rec, r.now())
		ch.notified = true // the operator is already talking in this chat
	}
	if ch.rec.State != stateAssigned {
		r.refuse(el, dropNotPinnedOperator, "this chat is not yours")
		return
	}
	if ch.rec.Operator != full {
		// In an OMEMO chat every device of the operator's account has the
		// messages and may answer; in OTR another resource takes the chat
		// over by starting an AKE.
		omemo := ch.e2ee == e2eeOMEMO
		if ch.opBare != bareOf(full) || !omemo && !startsAKE(m) {
			r.refuse(el, dropNotPinnedOperator, "this chat is not yours")
			return
		}
		if !omemo {
			r.repin(ch, full)
		}
	}
	if !r.checkSize(el, m) || !r.checkFragment(el, m) || !r.checkOMEMO(el, m) {
		return
	}
	if m.empty() {
		return
	}
	ch.rec.LastActive = r.now()
	r.learnTag(full, m)
	if r.refusePlaintext(ch, m, true) {
		return
	}
	if ch.e2ee == e2eeOMEMO && m.isOTR() {
		// The operator's client speaking OTR in a chat the visitor was
		// told is OMEMO (an AKE its client started on its own): the
		// widget would not follow it, and must never be asked to.
		r.m.drop(dropOTRInOMEMOChat)
		return
	}
	r.observe(ch, m, false)
	if r.send(m.toks(r.skinJID(ch.rec.Skin), ch.rec.RealJID)) == nil {
		r.m.relay("to-visitor", m)
	}
}
