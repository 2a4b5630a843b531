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
	// An OMEMO message's body is the fallback text saying it is encrypted.
	return m.hasBody && m.omemo == nil && (m.info.Kind == otr.KindPlaintext || m.info.Kind == otr.KindTaggedPlaintext || m.info.Kind == otr.KindUnknown)
}

// kind is the metric label of a message's OTR kind.
func (m *relayMsg) kind() string {
	if m.omemo != nil {
		return "omemo"
	}
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
		r.refuse(el, dropTooManyFragments, fmt.Sprintf("OTR messages of more than %d fragments are refused", maxFragments))
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
func (r *router) routeByTag(ch *chat, m *relayMsg) {
	if !m.hasBody || m.info.Version != 3 || m.info.ReceiverTag < otr.MinInstanceTag {
		return
	}
	o := r.ops[ch.opBare]
	if o == nil {
		return
	}
	full, ok := o.tags[m.info.ReceiverTag]
	if ok && full != ch.rec.Operator && r.online(full) {
		r.repin(ch, full)
	}
}

// refusePlaintext enforces the "require" policy: plaintext is not relayed;
// the sender is told why and, in an OTR chat, gets an OTR query from its
// peer's address, so its client starts encryption.
func (r *router) refusePlaintext(ch *chat, m *relayMsg, fromOperator bool) bool {
	if !m.isPlaintext() || r.skins[ch.rec.Skin].Policy != store.PolicyRequire {
		return false
	}
	r.m.drop(dropPlaintextRefused)
	from, to := r.skinJID(ch.rec.Skin), ch.rec.RealJID
	if fromOperator {
		from, to = r.aliasJID(ch.rec.ID), ch.rec.Operator
	}
	// In an OMEMO chat no OTR query follows: it would only confuse both
	// sides (the widget was told the chat is OMEMO, and an operator's OTR
	// is not relayed in it). The sender is told what to do instead.
	omemo := ch.e2ee == e2eeOMEMO
	text := "This chat requires encryption, so your message was not sent. Encryption is starting; send it again once the chat is private."
	if omemo {
		text = "This chat is encrypted with OMEMO, so your message was not sent."
		if fromOperator {
			text += " Turn OMEMO on for this contact (Profanity: /omemo start; Gajim, Dino, Conversations: the lock) and send it again."
		}
	}
	r.send(toks{}.start(nsAccept, "message", "from", from, "to", to, "type", "chat").
		text("", "body", []byte(text)).end(nsAccept, "message"))
	if omemo {
		return true
	}
	q := &relayMsg{typ: "chat", body: []byte(otr.QueryMessage(otr.OfferV2 | otr.OfferV3)), hasBody: true}
	q.info = otr.Classify(q.body)
	r.send(q.toks(from, to))
	return true
}

// observe follows a chat's OTR state from the wire. byVisitor says which
// side sent m.
func (r *router) observe(ch *chat, m *relayMsg, byVisitor bool) {
	if !m.hasBody || m.omemo != nil {
		return
	}
	now := r.now()
	switch m.info.Kind {
	case otr.KindEncoded:
		switch m.info.Type {
		case otr.DHCommit:
			ch.setOTR(otrAKE)
			ch.akeStart, ch.revealAt = now, time.Time{}
		case otr.DHKey:
			if ch.otr != otrAKE {
				ch.setOTR(otrAKE)
				ch.akeStart = now
			}
		case otr.RevealSig:
			if ch.otr != otrAKE {
				ch.setOTR(otrAKE)
				ch.akeStart = now
			}
			ch.revealAt, ch.revealByVisitor = now, byVisitor
		case otr.Sig:
			r.akeDone(ch, now)
		case otr.Data:
			switch {
			case ch.revealAt.IsZero():
				ch.setOTR(otrEncrypted)
			case byVisitor == ch.revealByVisitor:
				// The Reveal Signature's sender is encrypted only once it
				// has the Signature: it arrived (perhaps in fragments).
				r.akeDone(ch, now)
			}
		}
	case otr.KindFragment:
		// A Signature can travel in fragments, whose type is unreadable:
		// the last fragment from the side that owes it counts as it.
		if !ch.revealAt.IsZero() && byVisitor != ch.revealByVisitor && m.info.K == m.info.N {
			r.akeDone(ch, now)
		}
	case otr.KindPlaintext, otr.KindTaggedPlaintext:
		// libotr never sends plaintext while encrypted: one side ended.
		if ch.otr == otrEncrypted {
			ch.setOTR(otrFinished)
		}
	}
}

// akeDone records a finished AKE.
func (r *router) akeDone(ch *chat, now time.Time) {
	if !ch.akeStart.IsZero() {
		r.m.akeSeconds.Observe(now.Sub(ch.akeStart).Seconds())
	}
	ch.akeStart, ch.revealAt = time.Time{}, time.Time{}
	ch.setOTR(otrEncrypted)
}

// checkStalls restarts AKEs whose Reveal Signature got no Signature in
// time: the visitor's widget gets a query from the skin, as if from the
// operator, and starts over.
func (r *router) checkStalls(now time.Time) {
	for _, ch := range r.chats {
		if ch.revealAt.IsZero() || now.Sub(ch.revealAt) < r.cfg.AKEStallTimeout {
			continue
		}
		ch.revealAt, ch.akeStart = time.Time{}, now
		r.m.stalls.Inc()
		r.log.Warn("OTR key exchange stalled; restarting it", "skin", ch.rec.Skin, "alias", ch.alias())
		q := &relayMsg{typ: "chat", body: []byte(otr.QueryMessage(otr.OfferV2 | otr.OfferV3)), hasBody: true}
		q.info = otr.Classify(q.body)
		r.send(q.toks(r.skinJID(ch.rec.Skin), ch.rec.RealJID))
	}
}
