package component

import (
	"crypto/rand"
	"encoding/base32"
	"strings"

	"mellium.im/xmpp/jid"
)

// XEP-0050 ad-hoc commands on D: the same commands as the text bot, for
// clients with a commands menu. A command without arguments completes at
// once; one with arguments answers "execute" with a jabber:x:data form and
// completes when the form comes back. No session state is kept: the
// submitted form names everything the command needs.

const (
	nsCommands = "http://jabber.org/protocol/commands"
	nsData     = "jabber:x:data"
)

type adhocField struct {
	name, label string
	required    bool
}

type adhocCommand struct {
	node, name string
	fields     []adhocField
}

var adhocCommands = []adhocCommand{
	{node: "status", name: "Status"},
	{node: "on", name: "Go on duty"},
	{node: "off", name: "Go off duty"},
	{node: "chats", name: "List open chats"},
	{node: "nick", name: "Set the name visitors see", fields: []adhocField{{"name", "Name", true}}},
	{node: "transfer", name: "Transfer a chat", fields: []adhocField{{"guest", "Chat (guest-<id>)", true}, {"target", "Operator JID or skin name", true}}},
	{node: "end", name: "End a chat", fields: []adhocField{{"guest", "Chat (guest-<id>)", true}}},
	{node: "block", name: "Block a visitor", fields: []adhocField{{"guest", "Chat (guest-<id>)", true}, {"duration", "For how long (e.g. 24h)", false}}},
}

func findAdhoc(node string) *adhocCommand {
	for i := range adhocCommands {
		if adhocCommands[i].node == node {
			return &adhocCommands[i]
		}
	}
	return nil
}

// adhocItems answers disco#items on the commands node.
func (r *router) adhocItems(t toks) toks {
	t = t.start(nsDiscoItems, "query", "node", nsCommands)
	for _, c := range adhocCommands {
		t = t.empty("", "item", "jid", r.service(), "node", c.node, "name", c.name)
	}
	return t.end(nsDiscoItems, "query")
}

// handleAdhoc executes an ad-hoc command (iq set to D).
func (r *router) handleAdhoc(el, cmd *elem, from jid.JID) {
	if !r.mayCommand(from) {
		r.replyError(el, "auth", "forbidden", "only operators and admins may use this service")
		return
	}
	c := findAdhoc(cmd.get("node"))
	if c == nil {
		r.replyError(el, "cancel", "item-not-found", "")
		return
	}
	session := cmd.get("sessionid")
	if session == "" {
		session = randomID()
	}
	result := toks{}.start(nsAccept, "iq", "from", el.get("to"), "to", el.get("from"), "id", el.get("id"), "type", "result")
	action := cmd.get("action")
	if action == "cancel" {
		result = result.empty(nsCommands, "command", "node", c.node, "sessionid", session, "status", "canceled")
		r.send(result.end(nsAccept, "iq"))
		return
	}
	var x *elem
	if k := cmd.child(nsData, "x"); k != nil && k.get("type") == "submit" {
		x = k
	}
	if len(c.fields) > 0 && x == nil {
		// Ask for the arguments.
		result = result.start(nsCommands, "command", "node", c.node, "sessionid", session, "status", "executing").
			start("", "actions", "execute", "complete").empty("", "complete").end("", "actions").
			start(nsData, "x", "type", "form").text("", "title", []byte(c.name))
		for _, f := range c.fields {
			result = result.start("", "field", "var", f.name, "type", "text-single", "label", f.label)
			if f.required {
				result = result.empty("", "required")
			}
			result = result.end("", "field")
		}
		result = result.end(nsData, "x").end(nsCommands, "command")
		r.send(result.end(nsAccept, "iq"))
		return
	}
	line := []string{c.node}
	for _, f := range c.fields {
		v := strings.TrimSpace(formValue(x, f.name))
		if v == "" && f.required {
			r.replyError(el, "modify", "bad-request", "the field "+f.name+" is required")
			return
		}
		if v != "" {
			line = append(line, v)
		}
	}
	answer := r.command(from, strings.Join(line, " "))
	result = result.start(nsCommands, "command", "node", c.node, "sessionid", session, "status", "completed").
		text("", "note", []byte(answer), "type", "info").end(nsCommands, "command")
	r.send(result.end(nsAccept, "iq"))
}

// formValue returns the first value of a submitted form field.
func formValue(x *elem, name string) string {
	if x == nil {
		return ""
	}
	for _, f := range x.kids {
		if f.name.Local == "field" && f.get("var") == name {
			for _, v := range f.kids {
				if v.name.Local == "value" {
					return string(v.text)
				}
			}
		}
	}
	return ""
}

// randomID returns a short random identifier (ad-hoc session ids).
func randomID() string {
	var b [10]byte
	rand.Read(b[:])
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}
