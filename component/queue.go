package component

import (
	"fmt"
	"sort"

	"otrdesk.im/otrdesk/otr"
)

// The queue and assignment: which operator resource gets a chat, and what
// the visitor is told while it waits.

// pickNow picks an operator for a new chat only when nobody is queued ahead.
func (r *router) pickNow(skin string) *resource {
	if len(r.queues[skin]) > 0 {
		return nil
	}
	return r.pick(skin)
}

// online reports whether a full JID is a known online operator resource.
func (r *router) online(full string) bool {
	o := r.ops[bareOf(full)]
	return o != nil && o.res[full] != nil
}

// pick chooses an operator resource for a new chat of the skin: available
// (show chat or none), on duty, fewest chats below the maximum (counted
// across skins), then highest priority.
func (r *router) pick(skin string) *resource {
	var best *resource
	bestChats := 0
	for _, bare := range r.skins[skin].Operators {
		o := r.ops[bare]
		if o == nil || !o.onDuty || o.chats >= r.cfg.MaxChatsPerOperator {
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

// assignQueued gives queued chats to eligible operators, oldest first, and
// tells those still waiting their new place.
func (r *router) assignQueued() {
	names := make([]string, 0, len(r.queues))
	for name, q := range r.queues {
		if len(q) > 0 {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		moved := false
		for len(r.queues[name]) > 0 {
			res := r.pick(name)
			if res == nil {
				break
			}
			r.assign(r.queues[name][0], res)
			moved = true
		}
		if moved {
			for i, ch := range r.queues[name] {
				r.sendStatus(ch, stateQueued, i+1, "")
			}
		}
	}
}

// assign gives a chat to an operator resource: the visitor is told, and the
// messages held while it waited are delivered.
func (r *router) assign(ch *chat, res *resource) {
	ch.assign(res.full, r.now())
	r.save(ch)
	r.log.Info("chat assigned", "skin", ch.rec.Skin, "alias", ch.alias())
	r.sendStatus(ch, stateAssigned, 0, r.displayName(ch.rec.Skin, ch.opBare))
	held := ch.held
	ch.held, ch.heldBytes = nil, 0
	stale := ch.prevOp != "" && ch.prevOp != res.full
	ch.prevOp = ""
	for _, m := range held {
		if stale && (m.info.Kind == otr.KindEncoded && m.info.Type == otr.Data || m.info.Kind == otr.KindFragment || m.omemo != nil) {
			// Encrypted for the previous operator's session: nobody
			// else can read it, and the widget starts a fresh AKE.
			r.m.drop(dropStaleCiphertext)
			continue
		}
		r.deliver(ch, m)
	}
}

// requeue puts a chat back in its queue (its operator left, or it moved to
// a skin's queue); tell says whether the visitor hears its place now.
func (r *router) requeue(ch *chat, tell bool) {
	ch.enqueue(r.now())
	r.save(ch)
	if tell {
		r.sendStatus(ch, stateQueued, ch.position(), "")
	}
}

// repin moves a chat to another resource of its operator.
func (r *router) repin(ch *chat, full string) {
	ch.repin(full)
	r.save(ch)
	r.log.Info("chat re-pinned to another resource of its operator", "skin", ch.rec.Skin, "alias", ch.alias())
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

// sendStatus tells the visitor's widget the chat's state. A resumption
// secret not yet given to the visitor goes with it, this once.
func (r *router) sendStatus(ch *chat, state string, position int, operator string) {
	pos := ""
	if position > 0 {
		pos = fmt.Sprint(position)
	}
	secret := ch.resume
	if state == stateEnded {
		secret = "" // an ended chat cannot be resumed
	}
	e2ee := ""
	if state == stateAssigned {
		e2ee = r.e2eeFor(ch) // OMEMO or OTR, picked at each assignment (omemo.go)
	}
	if r.send(toks{}.start(nsAccept, "message", "from", r.skinJID(ch.rec.Skin), "to", ch.rec.RealJID, "type", "chat").
		empty(nsOtrdesk, "status", "state", state, "position", pos, "operator", operator, "resume", secret, "e2ee", e2ee).
		end(nsAccept, "message")) == nil {
		ch.resume = ""
	}
}

// save marks the chat's record for the next flush.
func (r *router) save(ch *chat) {
	r.writes.put(ch.rec)
}
