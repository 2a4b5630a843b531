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
	if f := strings.Fields(string(b.text)); len(f) > 0 && strings.EqualFold(f[0], "devices") {
		r.devicesCommand(from, f[1:]) // answered once the devices are read (omemo.go)
		return
	}
	text := r.command(from, string(b.text))
	r.send(toks{}.start(nsAccept, "message", "from", r.service(), "to", from.String(), "type", "chat").
		text("", "body", []byte(text)).end(nsAccept, "message"))
}

// isAdmin reports whether a bare JID is in [admin] admins.
func (r *router) isAdmin(bare string) bool {
	for _, a := range r.cfg.Admins {
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
		if err := r.st.PutOperator(store.Operator{JID: o.bare, OnDuty: o.onDuty, Nick: o.nick}); err != nil {
			r.log.Error("saving operator", "err", err)
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
		if err := r.st.PutOperator(store.Operator{JID: o.bare, OnDuty: o.onDuty, Nick: o.nick}); err != nil {
			r.log.Error("saving operator", "err", err)
			reply("Could not save your name; try again.")
			return
		}
		reply("Visitors now see you as " + name + ".")
	case "end":
		if len(fields) != 2 {
			reply("Usage: end guest-<id>")
			return
		}
		ch := r.guestByName(fields[1])
		if ch == nil || !r.mayAct(ch, bare, admin) {
			reply("No such chat of yours: " + fields[1])
			return
		}
		r.endChat(ch, "the operator ended the chat")
		reply("Ended " + fields[1] + ".")
	case "transfer":
		if len(fields) != 3 {
			reply("Usage: transfer guest-<id> <operator-bare-jid|skin-name>")
			return
		}
		ch := r.guestByName(fields[1])
		if ch == nil || !r.mayAct(ch, bare, admin) {
			reply("No such chat of yours: " + fields[1])
			return
		}
		reply(r.transfer(ch, fields[2]))
	case "block":
		if len(fields) < 2 || len(fields) > 3 {
			reply("Usage: block guest-<id> [duration, e.ch. 24h]")
			return
		}
		ch := r.guestByName(fields[1])
		if ch == nil || !r.mayAct(ch, bare, admin) {
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
		if len(r.blocked) >= r.cfg.GuestsPerSkin*max(len(r.skins), 1) {
			reply("Too many visitors are blocked already.")
			return
		}
		until := r.now().Add(d)
		r.blocked[realKey(ch.rec.Skin, ch.rec.RealJID)] = until
		r.endChat(ch, "the visitor was blocked")
		if err := r.st.PutBlock(store.Block{Skin: ch.rec.Skin, RealJID: ch.rec.RealJID, Until: until}); err != nil {
			r.log.Error("saving a block", "skin", ch.rec.Skin, "err", err)
			reply(fmt.Sprintf("Blocked %s for %s, but only until otrdesk restarts: the block could not be saved.", fields[1], d))
			return
		}
		reply(fmt.Sprintf("Blocked %s for %s.", fields[1], d))
	default:
		reply("Unknown command. " + helpText)
	}
	return answer
}

const helpText = `Commands: help, status, on, off, chats, nick NAME, transfer guest-<id> <operator-bare-jid|skin-name>, end guest-<id>, block guest-<id> [duration], devices (your OMEMO devices and which skins trust them).`

func (r *router) guestByName(name string) *chat {
	j, err := jid.Parse(name)
	if err != nil {
		return nil
	}
	if j.Domainpart() != r.domain.Domainpart() {
		j, err = jid.New(j.Domainpart(), r.domain.Domainpart(), "")
		if err != nil {
			return nil
		}
	}
	return r.chats[r.guestIDOf(j)]
}

// mayAct: only operators of the chat's skin and admins act on a chat.
func (r *router) mayAct(ch *chat, bare string, admin bool) bool {
	if admin {
		return true
	}
	for _, skin := range []string{ch.rec.Skin, ch.queueSkin} {
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
		fmt.Fprintf(&b, "You are %s with %d open chats (at most %d).", duty, o.chats, r.cfg.MaxChatsPerOperator)
	}
	names := make([]string, 0, len(r.skins))
	for n := range r.skins {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		avail := "no operator available"
		if r.avail[n] {
			avail = "available"
		}
		fmt.Fprintf(&b, "\n%s: %s, %d waiting.", n, avail, len(r.queues[n]))
	}
	return b.String()
}

func (r *router) chatsText(bare string, admin bool) string {
	var lines []string
	for _, ch := range r.chats {
		if !r.mayAct(ch, bare, admin) {
			continue
		}
		lines = append(lines, fmt.Sprintf("guest-%s (%s, %s)", ch.rec.ID, ch.rec.Skin, ch.rec.State))
	}
	if len(lines) == 0 {
		return "No open chats."
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
