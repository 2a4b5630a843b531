package component

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"

	"otrdesk.im/otrdesk/store"
)

// Chat resumption: a visitor whose XMPP session is gone (a network drop
// longer than the server's BOSH timeout, a laptop that slept) logs in again
// under a new anonymous JID and takes the same chat back: same alias, same
// operator, with a fresh OTR key exchange.
//
// Every chat has a resumption secret: 18 bytes from crypto/rand (144
// bits), sent to the visitor as 24 characters of base64url without padding
// in the first status element after it is made or changed:
//
//	<status xmlns='urn:otrdesk:0' state='assigned' operator='Alice' resume='S'/>
//
// otrdesk keeps only SHA-256(S), in the guest record and the store's
// resumption index; S itself is never stored or logged. The widget keeps S
// for the browser tab and, after a new login and before anything else,
// sends
//
//	<message to='<skin>@D' type='chat'><resume xmlns='urn:otrdesk:0' secret='S'/></message>
//
// When S is the secret of a chat of that skin that is neither ended nor
// blocked, the chat moves to the new JID (in memory and in the store), gets
// a new secret (each secret works once) and the visitor gets the chat's
// current status carrying it: assigned with the operator's name, or queued
// with the position. Anything else (a wrong, used, ended, purged or blocked
// secret) is answered with item-not-found and starts nothing: no guest
// record, no operator notice.

// resumeSecretBytes is the size of a resumption secret before encoding.
const resumeSecretBytes = 18

// Bounds on a presented secret's text (what we make is 24 characters).
const (
	minResumeSecret = 22 // 128 bits
	maxResumeSecret = 64
)

var errBadSecret = errors.New("component: not a resumption secret")

// newSecret gives the chat a new resumption secret: its hash goes in the
// record, the secret waits for the next status element.
func (r *router) newSecret(ch *chat) {
	var b [resumeSecretBytes]byte
	rand.Read(b[:]) // never returns an error (crypto/rand, Go 1.24+)
	s := base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(s))
	ch.resume, ch.rec.Resume = s, h[:]
}

// secretHash checks the shape of a presented secret and hashes it.
func secretHash(s string) ([]byte, error) {
	if len(s) < minResumeSecret || len(s) > maxResumeSecret {
		return nil, errBadSecret
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return nil, errBadSecret
		}
	}
	h := sha256.Sum256([]byte(s))
	return h[:], nil
}

// resume handles a resumption request from real to a skin.
func (r *router) resume(el *elem, skin, real, secret string) {
	h, err := secretHash(secret)
	if err != nil {
		r.refuse(el, dropResumeRefused, "")
		return
	}
	rec, err := r.writes.guestByResume(h)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			r.log.Error("looking up a resumption secret", "skin", skin, "err", err)
		}
		r.refuse(el, dropResumeRefused, "")
		return
	}
	if rec.Skin != skin || rec.State == stateEnded || r.isBlocked(rec.Skin, rec.RealJID) {
		r.refuse(el, dropResumeRefused, "")
		return
	}
	// The new JID must not have a chat of its own in this skin already.
	if other := r.byReal[realKey(skin, real)]; other != nil && other.rec.ID != rec.ID {
		r.refuse(el, dropResumeRefused, "")
		return
	}
	if other, err := r.writes.guestByReal(skin, real); err == nil && other.ID != rec.ID {
		r.refuse(el, dropResumeRefused, "")
		return
	}
	now := r.now()
	ch := r.chats[rec.ID]
	if ch == nil {
		if !r.roomFor(skin, true) {
			r.refuse(el, dropTooManyGuests, "too many visitors are waiting; try again later")
			return
		}
		// load makes the new secret; if it assigns the chat at once, its
		// status carries the secret and is the answer.
		rec.RealJID, rec.Resume = real, nil
		ch = r.load(rec, now)
	} else {
		ch.moveTo(real)
		ch.rec.LastActive = now
		r.newSecret(ch)
	}
	ch.freshAKE() // the widget starts a new key exchange
	r.save(ch)
	r.m.resumes.Inc()
	r.log.Info("chat resumed", "skin", skin, "alias", ch.alias(), "state", ch.rec.State)
	if ch.resume == "" {
		return // answered by load
	}
	switch ch.rec.State {
	case stateAssigned:
		r.sendStatus(ch, stateAssigned, 0, r.displayName(ch.rec.Skin, ch.opBare))
		if ch.notified {
			r.send(toks{}.start(nsAccept, "message", "from", r.aliasJID(ch.rec.ID), "to", ch.rec.Operator, "type", "chat").
				text("", "body", []byte("The visitor reconnected; encryption starts again.")).end(nsAccept, "message"))
		}
	case stateQueued:
		r.sendStatus(ch, stateQueued, ch.position(), "")
	}
}
