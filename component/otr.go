package component

import (
	"fmt"
	"time"

	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/store"
)

// OTR-aware routing. The component never decrypts: it reads
// the kind of each body and, for version 3 messages, the instance tags in
// the clear header, and from those alone it
//
//   - learns which operator resource owns which instance tag, and routes a
//     visitor message addressed to another resource's tag to that resource;
//   - lets another resource of the pinned operator take the chat over by
//     starting a new AKE (DH-Commit or query);
//   - marks every OTR stanza private for carbons and no-copy/no-store;
//   - tracks each chat's OTR state from the wire and restarts an AKE whose
//     Reveal Signature got no Signature within ake_stall_timeout;
//   - enforces the skin's policy: under "require" no plaintext crosses.

// OTR states of a chat, from the wire only.
const (
	otrPlaintext = "plaintext"
	otrAKE       = "ake"
	otrEncrypted = "encrypted"
	otrFinished  = "finished"
)

// maxFragments bounds n in a fragment k/n; more is refused.
const maxFragments = 64

// maxTagsPerOperator bounds the instance tags remembered per operator.
const maxTagsPerOperator = 16

// isOTR reports whether a message carries OTR protocol data (anything but
// plaintext, tagged or not).
func (m *relayMsg) isOTR() bool {
	if !m.hasBody {
		return false
	}
	switch m.info.Kind {
	case otr.KindQuery, otr.KindError, otr.KindEncoded, otr.KindFragment, otr.KindUnknown:
		return true
	}
	return false
}

// isPlaintext reports whether a message may carry readable text: plaintext,
// tagged or not, and bodies that only look like OTR (libotr drops those,
// other clients may show them).
func (m *relayMsg) isPlaintext() bool {
	return m.hasBody && (m.info.Kind == otr.KindPlaintext || m.info.Kind == otr.KindTaggedPlaintext || m.info.Kind == otr.KindUnknown)
}

// kind is the metric label of a message's OTR kind.
func (m *relayMsg) kind() string {
	if !m.hasBody {
		return "none"
	}
	if m.info.Kind == otr.KindEncoded {
		return m.info.Type.String()
	}
	return m.info.Kind.String()
}

// startsAKE reports whether a message starts a new OTR conversation.
func startsAKE(m *relayMsg) bool {
	return m.hasBody && (m.info.Kind == otr.KindEncoded && m.info.Type == otr.DHCommit || m.info.Kind == otr.KindQuery)
}

// checkFragment refuses fragments beyond the bound.
func (r *router) checkFragment(el *elem, m *relayMsg) bool {
	if m.hasBody && m.info.Kind == otr.KindFragment && m.info.N > maxFragments {
		r.c.m.drop("too-many-fragments")
		r.replyError(el, "modify", "policy-violation", fmt.Sprintf("OTR messages of more than %d fragments are refused", maxFragments))
		return false
	}
	return true
}

// learnTag remembers the sender instance tag of an operator resource.
func (r *router) learnTag(full string, m *relayMsg) {
	if !m.hasBody || m.info.Version != 3 || m.info.SenderTag < otr.MinInstanceTag {
		return
	}
	o := r.ops[bareOf(full)]
	if o == nil {
		return
	}
	if o.tags == nil || len(o.tags) >= maxTagsPerOperator && o.tags[m.info.SenderTag] == "" {
		o.tags = map[uint32]string{}
	}
	o.tags[m.info.SenderTag] = full
}

// routeByTag re-pins a chat when the visitor's message is addressed (by
// receiver instance tag) to another online resource of the pinned operator.
func (r *router) routeByTag(g *guest, m *relayMsg) {
	if !m.hasBody || m.info.Version != 3 || m.info.ReceiverTag < otr.MinInstanceTag {
		return
	}
	o := r.ops[g.opBare]
	if o == nil {
		return
	}
	full, ok := o.tags[m.info.ReceiverTag]
	if ok && full != g.rec.Operator && r.online(full) {
		r.repin(g, full)
	}
}

// repin moves a chat to another resource of the same operator.
func (r *router) repin(g *guest, full string) {
	g.rec.Operator = full
	r.save(g)
	r.c.m.repins.Inc()
	r.c.log.Info("chat re-pinned to another resource of its operator", "skin", g.rec.Skin, "alias", "guest-"+g.rec.ID)
}

// refusePlaintext enforces the "require" policy: plaintext is not relayed;
// the sender is told why and gets an OTR query from its peer's address, so
// its client starts encryption.
func (r *router) refusePlaintext(g *guest, m *relayMsg, fromOperator bool) bool {
	if !m.isPlaintext() || r.skins[g.rec.Skin].Policy != store.PolicyRequire {
		return false
	}
	r.c.m.drop("plaintext-refused")
	from, to := r.c.skinJID(g.rec.Skin), g.rec.RealJID
	if fromOperator {
		from, to = r.c.aliasJID(g.rec.ID), g.rec.Operator
	}
	text := "This chat requires encryption, so your message was not sent. Encryption is starting; send it again once the chat is private."
	r.send(toks{}.start(nsAccept, "message", "from", from, "to", to, "type", "chat").
		text("", "body", []byte(text)).end(nsAccept, "message"))
	q := &relayMsg{typ: "chat", body: []byte(otr.QueryMessage(otr.OfferV2 | otr.OfferV3)), hasBody: true}
	q.info = otr.Classify(q.body)
	r.send(q.toks(from, to))
	return true
}

// observe follows a chat's OTR state from the wire. byVisitor says which
// side sent m.
func (r *router) observe(g *guest, m *relayMsg, byVisitor bool) {
	if !m.hasBody {
		return
	}
	now := r.now()
	switch m.info.Kind {
	case otr.KindEncoded:
		switch m.info.Type {
		case otr.DHCommit:
			r.setOTR(g, otrAKE)
			g.akeStart, g.revealAt = now, time.Time{}
		case otr.DHKey:
			if g.otr != otrAKE {
				r.setOTR(g, otrAKE)
				g.akeStart = now
			}
		case otr.RevealSig:
			if g.otr != otrAKE {
				r.setOTR(g, otrAKE)
				g.akeStart = now
			}
			g.revealAt, g.revealByVisitor = now, byVisitor
		case otr.Sig:
			r.akeDone(g, now)
		case otr.Data:
			switch {
			case g.revealAt.IsZero():
				r.setOTR(g, otrEncrypted)
			case byVisitor == g.revealByVisitor:
				// The Reveal Signature's sender is encrypted only once it
				// has the Signature: it arrived (perhaps in fragments).
				r.akeDone(g, now)
			}
		}
	case otr.KindFragment:
		// A Signature can travel in fragments, whose type is unreadable:
		// the last fragment from the side that owes it counts as it.
		if !g.revealAt.IsZero() && byVisitor != g.revealByVisitor && m.info.K == m.info.N {
			r.akeDone(g, now)
		}
	case otr.KindPlaintext, otr.KindTaggedPlaintext:
		// libotr never sends plaintext while encrypted: one side ended.
		if g.otr == otrEncrypted {
			r.setOTR(g, otrFinished)
		}
	}
}

// akeDone records a finished AKE.
func (r *router) akeDone(g *guest, now time.Time) {
	if !g.akeStart.IsZero() {
		r.c.m.akeSeconds.Observe(now.Sub(g.akeStart).Seconds())
	}
	g.akeStart, g.revealAt = time.Time{}, time.Time{}
	r.setOTR(g, otrEncrypted)
}

// setOTR changes a chat's OTR state and its gauge.
func (r *router) setOTR(g *guest, state string) {
	if g.otr == state {
		return
	}
	if g.otr != "" {
		r.c.m.otrState(g.otr, -1)
	}
	g.otr = state
	if state == otrEncrypted {
		g.encrypted = true
	}
	if state != "" {
		r.c.m.otrState(state, 1)
	}
}

// checkStalls restarts AKEs whose Reveal Signature got no Signature in
// time: the visitor's widget gets a query from the skin, as if from the
// operator, and starts over.
func (r *router) checkStalls(now time.Time) {
	for _, g := range r.guests {
		if g.revealAt.IsZero() || now.Sub(g.revealAt) < r.c.cfg.AKEStallTimeout {
			continue
		}
		g.revealAt, g.akeStart = time.Time{}, now
		r.c.m.stalls.Inc()
		r.c.log.Warn("OTR key exchange stalled; restarting it", "skin", g.rec.Skin, "alias", "guest-"+g.rec.ID)
		q := &relayMsg{typ: "chat", body: []byte(otr.QueryMessage(otr.OfferV2 | otr.OfferV3)), hasBody: true}
		q.info = otr.Classify(q.body)
		r.send(q.toks(r.c.skinJID(g.rec.Skin), g.rec.RealJID))
	}
}
