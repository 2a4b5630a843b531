package component

import (
	"errors"
	"fmt"
	"time"

	"otrdesk.im/otrdesk/store"
)

// Admission: a visitor without an active chat becomes one, if the visitor
// is not blocked, the skin has room (guests_per_skin) and, for a visitor
// otrdesk has no alias for, the new-chat rate allows it. The stored alias
// of a returning visitor is reused.
//
// Anonymous JIDs cost nothing, so limits per visitor alone are no limit: the
// new-chat buckets (rate.go) bound what a flood of fresh visitors can make
// otrdesk do (a store write, an alias kept until purged, an operator
// notified) without looking at anything that identifies a visitor.

var (
	errTooManyGuests   = errors.New("component: too many guests for this skin")
	errTooManyNewChats = errors.New("component: too many new chats this minute")
)

// isBlocked reports whether an operator blocked this visitor of the skin;
// a block that ended is forgotten.
func (r *router) isBlocked(skin, real string) bool {
	until, ok := r.blocked[realKey(skin, real)]
	if !ok {
		return false
	}
	if r.now().Before(until) {
		return true
	}
	delete(r.blocked, realKey(skin, real))
	return false
}

// activate brings a visitor into memory: the stored alias if there is one,
// else a new one. The chat starts queued or, with a stored pin whose
// resource is online, assigned to it.
func (r *router) activate(el *elem, sk store.Skin, real string) (*chat, error) {
	now := r.now()
	rec, err := r.writes.guestByReal(sk.Name, real)
	switch {
	case err == nil:
		if !r.roomFor(sk.Name, true) {
			return nil, errTooManyGuests
		}
	case errors.Is(err, store.ErrNotFound):
		if !r.roomFor(sk.Name, false) {
			return nil, errTooManyGuests
		}
		if err := r.admitNew(el, sk.Name, real); err != nil {
			return nil, err
		}
		rec = store.Guest{ID: store.NewGuestID(), RealJID: real, Skin: sk.Name, Created: now}
	default:
		return nil, fmt.Errorf("component: looking up the visitor's alias: %w", err)
	}
	return r.load(rec, now), nil
}

// roomFor applies guests_per_skin. Chats that wait in a queue stay in
// memory until they go idle, so a flood of new chats fills a skin; a
// visitor who already has an alias (returning, or resuming) may still come
// in, up to twice the limit, so memory stays bounded and the visitors an
// operator already knows are not locked out by strangers.
func (r *router) roomFor(skin string, hasAlias bool) bool {
	limit := r.cfg.GuestsPerSkin
	if hasAlias {
		limit *= 2
	}
	return r.count[skin] < limit
}

// admitNew decides on a visitor otrdesk has no alias for: a valid
// proof-of-work stamp admits it (its work was done: no token is taken), else
// a token of the new-chat rate; over the rate, with proof of work on, the
// visitor gets a challenge (errChallenged), else errTooManyNewChats.
func (r *router) admitNew(el *elem, skin, real string) error {
	badStamp := false
	if r.pow != nil {
		if st := el.child(nsOtrdesk, "pow"); st != nil {
			if r.pow.verify(skin, real, st.get("challenge"), st.get("nonce"), r.now()) == nil {
				return nil
			}
			badStamp = true
		}
	}
	if r.admit(skin) {
		return nil
	}
	if r.pow == nil {
		return errTooManyNewChats
	}
	if badStamp {
		r.m.drop(dropPoWInvalid)
	}
	r.sendChallenge(el, skin, real, !badStamp)
	return errChallenged
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
	if !b.ok(now, r.cfg.NewChatsPerMinute) || !r.newChatsAll.ok(now, r.cfg.NewChatsPerMinuteTotal) {
		return false
	}
	b.take(now, r.cfg.NewChatsPerMinute)
	r.newChatsAll.take(now, r.cfg.NewChatsPerMinuteTotal)
	return true
}

// load makes a guest record an active chat: assigned to its pinned
// resource if that is online, else to a free operator if nobody waits
// (one store write instead of queue-then-assign), else queued. A chat
// without a resumption secret gets one (resume.go).
func (r *router) load(rec store.Guest, now time.Time) *chat {
	pinned, assignedAt := rec.Operator, rec.Assigned
	rec.LastActive = now
	ch := r.book.open(rec)
	if len(ch.rec.Resume) == 0 {
		r.newSecret(ch)
	}
	picked := false // assigned now, without waiting in the queue
	switch {
	case pinned != "" && (r.online(pinned) || r.awaitingProbes() && r.ops[bareOf(pinned)] != nil):
		// Just after a (re)connect no resource is known until the probes
		// are answered: the pin holds through that grace (messages wait on
		// the chat until releasePin) instead of handing the chat to
		// whichever operator answered first.
		ch.assign(pinned, now)
		if !assignedAt.IsZero() {
			ch.rec.Assigned = assignedAt
		}
	default:
		if res := r.pickNow(ch.rec.Skin); res != nil {
			ch.rec.Queued = now
			ch.assign(res.full, now)
			picked = true
		} else {
			ch.enqueue(now)
		}
	}
	r.save(ch)
	r.log.Info("guest active", "skin", ch.rec.Skin, "alias", ch.alias(), "state", ch.rec.State)
	if picked {
		r.sendStatus(ch, stateAssigned, 0, r.displayName(ch.rec.Skin, ch.opBare))
	}
	return ch
}
