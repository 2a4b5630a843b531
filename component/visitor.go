package component

import (
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"
)

// A visitor's message to <skin>@D: a resumption request, the end of the
// chat, or something to relay to the chat's operator (or hold while the
// chat is queued). A visitor otrdesk has no active chat for is admitted
// first (admit.go).

// fromVisitor handles a message to <skin>@D.
func (r *router) fromVisitor(el *elem, from jid.JID, skin string) {
	sk, ok := r.skins[skin]
	if !ok {
		r.refuse(el, dropUnknownSkin, "")
		return
	}
	m := parseRelay(el)
	if !r.checkSize(el, m) {
		return
	}
	real := from.String()
	if r.isBlocked(skin, real) {
		r.refuse(el, dropBlocked, "")
		return
	}
	if rs := el.child(nsOtrdesk, "resume"); rs != nil {
		r.resume(el, skin, real, rs.get("secret"))
		return
	}
	end := el.child(nsOtrdesk, "end") != nil
	ch := r.byReal[realKey(skin, real)]
	fresh := false // the chat entered the queue with this message
	if ch == nil {
		if !m.hasBody || end {
			// A chat state, receipt or end before the first message opens
			// nothing: an operator is assigned only for something to read.
			r.m.drop(dropNoChat)
			return
		}
		var err error
		ch, err = r.activate(el, sk, real)
		if err != nil {
			switch {
			case errors.Is(err, errTooManyGuests):
				r.refuse(el, dropTooManyGuests, "too many visitors are waiting; try again later")
			case errors.Is(err, errTooManyNewChats):
				r.refuse(el, dropNewChatRate, "too many new chats right now; try again in a minute")
			case errors.Is(err, errChallenged):
				// Answered with a proof-of-work challenge (pow.go).
			default:
				r.log.Error("activating guest", "skin", skin, "err", err)
				r.refuse(el, dropStoreError, "")
			}
			return
		}
		fresh = ch.rec.State == stateQueued
	}
	if !r.allow(ch) {
		r.refuse(el, dropRateLimited, fmt.Sprintf("more than %d messages per minute", r.cfg.GuestMessagesPerMinute))
		return
	}
	now := r.now()
	ch.rec.LastActive = now
	if end {
		r.endChat(ch, "the visitor ended the chat")
		return
	}
	m.received = now
	if !r.checkFragment(el, m) || !r.checkOMEMO(el, m) || r.refusePlaintext(ch, m, false) {
		return
	}
	if ch.rec.State == stateAssigned && !r.online(ch.rec.Operator) {
		if r.awaitingProbes() {
			// Just after a reconnect: the pinned resource has not answered
			// its probe yet. The message waits for it (or for the sweep
			// that re-queues the chat when it stays silent).
			// releasePin delivers it when the resource shows up.
			r.hold(el, ch, m)
			return
		}
		// The pinned resource is not known to be online: hold the message
		// until someone takes the chat.
		r.requeue(ch, false)
		fresh = true
	}
	if ch.rec.State == stateAssigned {
		r.deliver(ch, m)
		return
	}
	if !r.hold(el, ch, m) {
		return
	}
	r.assignQueued()
	if fresh && ch.rec.State == stateQueued {
		r.sendStatus(ch, stateQueued, ch.position(), "")
	}
}

// hold keeps a message on a chat that has no operator to read it yet,
// within heldPerGuest messages and twice max_body_bytes; chat states are
// not kept. It reports false when it refused the message.
func (r *router) hold(el *elem, ch *chat, m *relayMsg) bool {
	if !m.hasBody && m.omemo == nil {
		return true
	}
	if len(ch.held) >= heldPerGuest || ch.heldBytes+len(m.body)+len(m.omemo) > 2*r.cfg.MaxBodyBytes {
		r.refuse(el, dropQueueFull, "too many messages are waiting for an operator")
		return false
	}
	ch.held = append(ch.held, m)
	ch.heldBytes += len(m.body) + len(m.omemo)
	return true
}

// awaitingProbes reports whether the router is inside the grace after a
// (re)connect in which operators' probe answers may still arrive.
func (r *router) awaitingProbes() bool {
	return !r.sweepAt.IsZero() && r.now().Before(r.sweepAt)
}

// checkSize refuses truncated stanzas and bodies over max_body_bytes.
func (r *router) checkSize(el *elem, m *relayMsg) bool {
	if el.truncated || len(m.body) > r.cfg.MaxBodyBytes {
		r.refuse(el, dropTooLarge, fmt.Sprintf("the message is larger than %d bytes", r.cfg.MaxBodyBytes))
		return false
	}
	return true
}

// allow applies guest_messages_per_minute.
func (r *router) allow(ch *chat) bool {
	return ch.rate.take(r.now(), r.cfg.GuestMessagesPerMinute)
}
