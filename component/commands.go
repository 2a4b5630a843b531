package component

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"otrdesk.im/otrdesk/store"
)

// The text command bot on D (the ad-hoc commands in adhoc.go run the same
// command function).

// handleCommand answers the text command bot on D.
func (r *router) handleCommand(el *elem, from jid.JID) {
	b := el.child("", "body")
	if b == nil {
		return
	}
	if len(b.text) > 1024 {
		r.replyError(el, "modify", "policy-violation", "commands are short")
		return
	}
	if !r.mayCommand(from) {
		r.replyError(el, "auth", "forbidden", "only operators and admins may use this service")
		return
	}
	text := r.command(from, string(b.text))
	r.send(toks{}.start(nsAccept, "message", "from", r.c.domain.String(), "to", from.String(), "type", "chat").
		text("", "body", []byte(text)).end(nsAccept, "message"))
}

// isAdmin reports whether a bare JID is in [admin] admins.
func (r *router) isAdmin(bare string) bool {
	for _, a := range r.c.cfg.Admins {
		if a == bare {
			return true
		}
	}
	return false
}

// mayCommand: operators of any skin and admins use the service.
func (r *router) mayCommand(from jid.JID) bool {
	bare := from.Bare().String()
	return r.ops[bare] != nil || r.isAdmin(bare)
}

// command runs one text command line and returns the answer.
func (r *router) command(from jid.JID, line string) (answer string) {
	bare := from.Bare().String()
	o := r.ops[bare]
	admin := r.isAdmin(bare)
	reply := func(text string) { answer = text }
	fields := strings.Fields(line)
	if len(fields) == 0 {
		return helpText
	}
	switch strings.ToLower(fields[0]) {
	case "help":
		reply(helpText)
	case "status":
		reply(r.statusText(o))
	case "on", "off":
		if o == nil {
			reply("You are not an operator of any skin.")
			return
		}
		o.onDuty = strings.ToLower(fields[0]) == "on"
		if err := r.c.st.PutOperator(store.Operator{JID: o.bare, OnDuty: o.onDuty, Nick: o.nick}); err != nil {
			r.c.log.Error("saving operator", "err", err)
			reply("Could not save your duty flag; try again.")
			return
		}
		r.publish()
		if o.onDuty {
			reply("You are on duty: new chats come to you while you are available.")
			r.assignQueued()
		} else {
			reply("You are off duty: you get no new chats. Your open chats go on.")
		}
	case "chats":
		reply(r.chatsText(bare, admin))
	case "nick":
		if o == nil {
			reply("You are not an operator of any skin.")
			return
		}
		name := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), fields[0]))
		if name == "" || len(name) > 64 {
			reply("Usage: nick NAME (at most 64 characters)")
			return
		}
		o.nick = name
		if err := r.c.st.PutOperator(store.Operator{JID: o.bare, OnDuty: o.onDuty, Nick: o.nick}); err != nil {
			r.c.log.Error("saving operator", "err", err)
			reply("Could not save your name; try again.")
			return
		}
		reply("Visitors now see you as " + name + ".")
	case "end":
		if len(fields) != 2 {
			reply("Usage: end guest-<id>")
			return
		}
		g := r.guestByName(fields[1])
		if g == nil || !r.mayAct(g, bare, admin) {
			reply("No such chat of yours: " + fields[1])
			return
		}
		r.endChat(g, "the operator ended the chat")
		reply("Ended " + fields[1] + ".")
	case "transfer":
		if len(fields) != 3 {
			reply("Usage: transfer guest-<id> <operator-bare-jid|skin-name>")
			return
		}
		g := r.guestByName(fields[1])
		if g == nil || !r.mayAct(g, bare, admin) {
			reply("No such chat of yours: " + fields[1])
			return
		}
		reply(r.transfer(g, fields[2]))
	case "block":
		if len(fields) < 2 || len(fields) > 3 {
			reply("Usage: block guest-<id> [duration, e.g. 24h]")
			return
		}
		g := r.guestByName(fields[1])
		if g == nil || !r.mayAct(g, bare, admin) {
			reply("No such chat of yours: " + fields[1])
			return
		}
		d := 24 * time.Hour
		if len(fields) == 3 {
			var err error
			d, err = time.ParseDuration(fields[2])
			if err != nil || d <= 0 || d > 30*24*time.Hour {
				reply("The duration must be like 30m or 24h, at most 720h.")
				return
			}
		}
		if len(r.blocked) >= r.c.cfg.GuestsPerSkin*max(len(r.skins), 1) {
			reply("Too many visitors are blocked already.")
			return
		}
		until := r.now().Add(d)
		r.blocked[g.rec.Skin+"\x00"+g.rec.RealJID] = until
		r.endChat(g, "the visitor was blocked")
		if err := r.c.st.PutBlock(store.Block{Skin: g.rec.Skin, RealJID: g.rec.RealJID, Until: until}); err != nil {
			r.c.log.Error("saving a block", "skin", g.rec.Skin, "err", err)
			reply(fmt.Sprintf("Blocked %s for %s, but only until otrdesk restarts: the block could not be saved.", fields[1], d))
			return
		}
		reply(fmt.Sprintf("Blocked %s for %s.", fields[1], d))
	default:
		reply("Unknown command. " + helpText)
	}
	return answer
}

const helpText = `Commands: help, status, on, off, chats, nick NAME, transfer guest-<id> <operator-bare-jid|skin-name>, end guest-<id>, block guest-<id> [duration].`

// transfer moves a chat to an operator (bare JID) or to a skin's queue. The
// visitor's widget gets "transferred" (and later "assigned") and starts a
// fresh AKE; the old operator is told and gets nothing more.
func (r *router) transfer(g *guest, target string) string {
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
		if res.full == g.rec.Operator {
			return "The chat is already with " + target + "."
		}
	} else {
		if _, ok := r.skins[target]; !ok {
			return "No such skin: " + target
		}
		skin = target
	}
	if g.rec.State == stateAssigned {
		r.send(toks{}.start(nsAccept, "message", "from", r.c.aliasJID(g.rec.ID), "to", g.rec.Operator, "type", "chat").
			text("", "body", []byte("This chat was transferred; you will receive nothing more from it.")).end(nsAccept, "message"))
		r.unpin(g)
	} else if g.rec.State == stateQueued {
		r.dequeue(g)
	}
	r.setOTR(g, otrPlaintext)
	g.akeStart, g.revealAt = time.Time{}, time.Time{}
	r.sendStatus(g, "transferred", 0, "")
	r.c.log.Info("chat transferred", "skin", g.rec.Skin, "alias", "guest-"+g.rec.ID)
	if res != nil {
		r.assign(g, res)
		return "Transferred guest-" + g.rec.ID + " to " + target + "."
	}
	if skin != g.rec.Skin {
		g.queueSkin = skin
	} else {
		g.queueSkin = ""
	}
	r.enqueue(g, false)
	r.assignQueued()
	if g.rec.State == stateQueued {
		r.sendStatus(g, "queued", r.position(g), "")
		return "guest-" + g.rec.ID + " waits in the queue of " + skin + "."
	}
	return "Transferred guest-" + g.rec.ID + " to " + skin + "."
}

func (r *router) guestByName(name string) *guest {
	j, err := jid.Parse(name)
	if err != nil {
		return nil
	}
	if j.Domainpart() != r.c.domain.Domainpart() {
		j, err = jid.New(j.Domainpart(), r.c.domain.Domainpart(), "")
		if err != nil {
			return nil
		}
	}
	return r.guests[r.c.guestIDOf(j)]
}

// mayAct: only operators of the chat's skin and admins act on a chat.
func (r *router) mayAct(g *guest, bare string, admin bool) bool {
	if admin {
		return true
	}
	for _, skin := range []string{g.rec.Skin, g.queueSkin} {
		for _, op := range r.skins[skin].Operators {
			if op == bare {
				return true
			}
		}
	}
	return false
}

func (r *router) statusText(o *operator) string {
	var b strings.Builder
	if o != nil {
		duty := "off duty"
		if o.onDuty {
			duty = "on duty"
		}
		fmt.Fprintf(&b, "You are %s with %d open chats (at most %d).", duty, o.chats, r.c.cfg.MaxChatsPerOperator)
	}
	names := make([]string, 0, len(r.skins))
	for n := range r.skins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		avail := "no operator available"
		r.c.snap.Lock()
		if r.c.available[n] {
			avail = "available"
		}
		r.c.snap.Unlock()
		fmt.Fprintf(&b, "\n%s: %s, %d waiting.", n, avail, len(r.queues[n]))
	}
	return b.String()
}

func (r *router) chatsText(bare string, admin bool) string {
	var lines []string
	for _, g := range r.guests {
		if !r.mayAct(g, bare, admin) {
			continue
		}
		lines = append(lines, fmt.Sprintf("guest-%s (%s, %s)", g.rec.ID, g.rec.Skin, g.rec.State))
	}
	if len(lines) == 0 {
		return "No open chats."
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
