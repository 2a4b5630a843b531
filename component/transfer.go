package component

import (
	"strings"

	"mellium.im/xmpp/jid"
)

// Transfer: an operator (or admin) hands a chat to another operator or to
// a skin's queue.

// transfer moves a chat to an operator (bare JID) or to a skin's queue. The
// visitor's widget gets "transferred" (and later "assigned") and starts a
// fresh AKE; the old operator is told and gets nothing more.
func (r *router) transfer(ch *chat, target string) string {
	var res *resource
	skin := ""
	if strings.Contains(target, "@") {
		j, err := jid.Parse(target)
		if err != nil {
			return "Not a JID: " + target
		}
		o := r.ops[j.Bare().String()]
		if o == nil {
			return target + " is not an operator of any skin."
		}
		for _, x := range o.res {
			if res == nil || x.eligible() && !res.eligible() || x.eligible() == res.eligible() && (x.prio > res.prio || x.prio == res.prio && x.full < res.full) {
				res = x
			}
		}
		if res == nil {
			return target + " is not online."
		}
		if res.full == ch.rec.Operator {
			return "The chat is already with " + target + "."
		}
	} else {
		if _, ok := r.skins[target]; !ok {
			return "No such skin: " + target
		}
		skin = target
	}
	if ch.rec.State == stateAssigned {
		r.send(toks{}.start(nsAccept, "message", "from", r.aliasJID(ch.rec.ID), "to", ch.rec.Operator, "type", "chat").
			text("", "body", []byte("This chat was transferred; you will receive nothing more from it.")).end(nsAccept, "message"))
	}
	ch.freshAKE() // the widget starts a new key exchange
	r.sendStatus(ch, "transferred", 0, "")
	r.log.Info("chat transferred", "skin", ch.rec.Skin, "alias", ch.alias())
	if res != nil {
		r.assign(ch, res)
		return "Transferred guest-" + ch.rec.ID + " to " + target + "."
	}
	queueSkin := "" // its own skin's queue
	if skin != ch.rec.Skin {
		queueSkin = skin
	}
	ch.transferTo(queueSkin, r.now())
	r.save(ch)
	r.assignQueued()
	if ch.rec.State == stateQueued {
		r.sendStatus(ch, stateQueued, ch.position(), "")
		return "guest-" + ch.rec.ID + " waits in the queue of " + skin + "."
	}
	return "Transferred guest-" + ch.rec.ID + " to " + skin + "."
}
