package component

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"mellium.im/xmpp/jid"
)

// Presence: greeting operators, tracking their resources, and the
// Available snapshot.

// connected runs after every successful handshake.
func (r *router) connected() {
	clear(r.subbed)
	r.greetAll()
	r.sweepAt = r.now().Add(probeGrace)
}

// probeGrace is how long after a (re)connect the probes may take to be
// answered before silence counts as offline.
const probeGrace = 10 * time.Second

// sweep re-queues assigned chats whose pinned resource is not online.
func (r *router) sweep() {
	for _, ch := range r.chats {
		if ch.rec.State == stateAssigned && !r.online(ch.rec.Operator) {
			r.requeue(ch, true)
		}
	}
	r.assignQueued()
}

// greetAll greets every operator of every skin not yet greeted on this
// stream: a probe, then a subscription request, then the skin's presence.
//
// The order matters: Prosody answers a probe from a contact without a
// subscription with "unsubscribed" and treats that answer as the user
// declining, which cancels a pending subscription request. A request sent
// after the probe stays pending until the operator approves it; to an
// operator who already approved, the server answers "subscribed" itself.
func (r *router) greetAll() {
	for name, sk := range r.skins {
		done := r.subbed[name]
		if done == nil {
			done = map[string]bool{}
			r.subbed[name] = done
		}
		from := r.skinJID(name)
		for _, op := range sk.Operators {
			if done[op] {
				continue
			}
			r.send(toks{}.empty(nsAccept, "presence", "from", from, "to", op, "type", "probe"))
			if r.send(toks{}.empty(nsAccept, "presence", "from", from, "to", op, "type", "subscribe")) == nil {
				done[op] = true
			}
			r.announce(name, op)
		}
	}
}

// announceAll sends each skin's own presence to its operators.
func (r *router) announceAll() {
	for name, sk := range r.skins {
		for _, op := range sk.Operators {
			r.announce(name, op)
		}
	}
}

func (r *router) announce(skin, to string) {
	title := r.skins[skin].Title
	t := toks{}.start(nsAccept, "presence", "from", r.skinJID(skin), "to", to)
	if title != "" {
		t = t.text("", "status", []byte(title))
	}
	// Entity capabilities: the operator's server asks the skin's features
	// once per version and, seeing the device-list +notify among them,
	// pushes the operator's OMEMO device list to the skin.
	t = t.empty(nsCaps, "c", "hash", "sha-1", "node", capsNode, "ver", capsVer(title))
	r.send(t.end(nsAccept, "presence"))
}

func (r *router) handlePresence(el *elem) {
	from, err := jid.Parse(el.get("from"))
	if err != nil {
		return
	}
	to, err := jid.Parse(el.get("to"))
	if err != nil {
		return
	}
	skin := r.skinOf(to)
	typ := el.get("type")
	switch typ {
	case "subscribe":
		if _, ok := r.skins[skin]; !ok {
			r.send(toks{}.empty(nsAccept, "presence", "from", to.Bare().String(), "to", from.Bare().String(), "type", "unsubscribed"))
			return
		}
		r.send(toks{}.empty(nsAccept, "presence", "from", to.Bare().String(), "to", from.Bare().String(), "type", "subscribed"))
		r.announce(skin, from.Bare().String())
		return
	case "unsubscribe":
		r.send(toks{}.empty(nsAccept, "presence", "from", to.Bare().String(), "to", from.Bare().String(), "type", "unsubscribed"))
		return
	case "probe":
		if _, ok := r.skins[skin]; ok {
			r.announce(skin, from.String())
			return
		}
		// The pinned operator may see whether its visitor is still here.
		if id := r.guestIDOf(to); id != "" {
			if ch := r.chats[id]; ch != nil && ch.opBare == from.Bare().String() {
				r.send(toks{}.empty(nsAccept, "presence", "from", r.aliasJID(id), "to", from.String()))
			} else if rec, err := r.st.Guest(id); err == nil && bareOf(rec.Operator) == from.Bare().String() {
				r.send(toks{}.empty(nsAccept, "presence", "from", r.aliasJID(id), "to", from.String(), "type", "unavailable"))
			}
		}
		return
	case "subscribed":
		// An operator approved the skin's request: the skin's presence,
		// sent before, was not taken for a contact's. Sent again now, its
		// capabilities make the operator's server push device lists.
		if sk, ok := r.skins[skin]; ok && slices.Contains(sk.Operators, from.Bare().String()) {
			r.announce(skin, from.Bare().String())
		}
		return
	case "unsubscribed":
		return
	}
	o := r.ops[from.Bare().String()]
	if o == nil {
		return // not an operator: nothing to track
	}
	full := from.String()
	switch typ {
	case "", "unavailable", "error":
	default:
		return
	}
	if typ == "error" && from.Resourcepart() == "" {
		// The operator's server could not deliver to the bare JID: treat
		// every resource as gone.
		for f := range o.res {
			r.resourceGone(o, f)
		}
		r.publish()
		return
	}
	if typ == "unavailable" && from.Resourcepart() == "" {
		// The answer to a probe for an operator with no resource online
		// (Prosody also sends it to acknowledge a subscription request,
		// so known resources are kept): chats pinned to a resource that
		// is not online go back to the queue.
		for _, ch := range r.chats {
			if ch.opBare == o.bare && ch.rec.State == stateAssigned && !r.online(ch.rec.Operator) {
				r.requeue(ch, true)
			}
		}
		r.publish()
		return
	}
	if typ == "unavailable" || typ == "error" {
		if _, ok := o.res[full]; ok {
			r.resourceGone(o, full)
			r.publish()
		}
		return
	}
	if from.Resourcepart() == "" {
		return
	}
	res := o.res[full]
	if res == nil {
		res = &resource{full: full}
		o.res[full] = res
	}
	res.show, res.prio = "", 0
	if s := el.child("", "show"); s != nil {
		res.show = strings.TrimSpace(string(s.text))
	}
	if p := el.child("", "priority"); p != nil {
		fmt.Sscan(strings.TrimSpace(string(p.text)), &res.prio)
	}
	r.releasePin(full)
	r.publish()
	r.assignQueued()
}

// releasePin delivers what waited for a pinned resource that has now shown
// up (after a reconnect, before its probe answer; see the visitor path), in the
// order the visitor sent it.
func (r *router) releasePin(full string) {
	for _, ch := range r.chats {
		if ch.rec.State != stateAssigned || ch.rec.Operator != full || len(ch.held) == 0 {
			continue
		}
		held := ch.held
		ch.held, ch.heldBytes = nil, 0
		for _, m := range held {
			r.deliver(ch, m)
		}
	}
}

// resourceGone forgets a resource; chats pinned to it go back to the queue.
func (r *router) resourceGone(o *operator, full string) {
	delete(o.res, full)
	for _, ch := range r.chats {
		if ch.rec.Operator == full && ch.rec.State == stateAssigned {
			r.requeue(ch, true)
		}
	}
	r.assignQueued()
}

// publish recomputes the Available snapshot and the operator gauges.
func (r *router) publish() {
	avail := make(map[string]bool, len(r.skins))
	for name, sk := range r.skins {
		for _, bare := range sk.Operators {
			o := r.ops[bare]
			if o == nil || !o.onDuty {
				continue
			}
			for _, res := range o.res {
				if res.eligible() {
					avail[name] = true
				}
			}
		}
	}
	r.avail = avail
	r.snap.setAvailable(avail)
	for name, sk := range r.skins {
		r.m.queue(name, len(r.queues[name]))
		n := 0
		for _, bare := range sk.Operators {
			if o := r.ops[bare]; o != nil && o.onDuty && len(o.res) > 0 {
				n++
			}
		}
		r.m.onDuty(name, n)
	}
}
