package component

import (
	"crypto/sha1"
	"encoding/base64"
	"slices"
	"strings"

	"mellium.im/xmpp/jid"

	"otrdesk.im/otrdesk/omemo/wire"
)

// IQs: disco#info, disco#items, ping and ad-hoc commands; anything else
// gets service-unavailable.

func (r *router) handleIQ(el *elem) {
	typ := el.get("type")
	if typ == "result" || typ == "error" {
		r.iqAnswered(el) // the component's own PEP requests (omemo.go)
		return
	}
	if typ != "get" && typ != "set" {
		return
	}
	to, err := jid.Parse(el.get("to"))
	if err != nil {
		r.replyError(el, "modify", "jid-malformed", "")
		return
	}
	var payload *elem
	if len(el.kids) > 0 {
		payload = el.kids[0]
	}
	known, kind, name := r.entity(to)
	if !known {
		r.replyError(el, "cancel", "item-not-found", "")
		return
	}
	if payload != nil && kind != "service" && r.handlePubSub(el, payload, kind, to) {
		return // OMEMO keys (omemo.go)
	}
	if typ == "set" && kind == "service" && payload != nil && payload.name.Space == nsCommands && payload.name.Local == "command" {
		from, err := jid.Parse(el.get("from"))
		if err != nil {
			return
		}
		r.handleAdhoc(el, payload, from)
		return
	}
	if payload == nil || typ != "get" {
		r.replyError(el, "cancel", "service-unavailable", "")
		return
	}
	result := toks{}.start(nsAccept, "iq", "from", el.get("to"), "to", el.get("from"), "id", el.get("id"), "type", "result")
	switch {
	case payload.name.Space == nsPing && payload.name.Local == "ping":
	case payload.name.Space == nsDiscoInfo && payload.name.Local == "query" &&
		(payload.get("node") == "" || kind == "skin" && payload.get("node") == capsNode+"#"+capsVer(name)):
		// The node form is what a server asks after seeing a skin's
		// entity capabilities (presence.go); the answer names it.
		if node := payload.get("node"); node != "" {
			result = result.start(nsDiscoInfo, "query", "node", node)
		} else {
			result = result.start(nsDiscoInfo, "query")
		}
		switch kind {
		case "service":
			result = result.empty("", "identity", "category", "component", "type", "generic", "name", "otrdesk")
		case "skin":
			result = result.empty("", "identity", "category", "client", "type", "bot", "name", name)
		case "guest":
			result = result.empty("", "identity", "category", "client", "type", "web", "name", "Visitor")
		}
		for _, f := range discoFeatures(kind) {
			result = result.empty("", "feature", "var", f)
		}
		result = result.end(nsDiscoInfo, "query")
	case payload.name.Space == nsDiscoItems && payload.name.Local == "query" && payload.get("node") == "":
		result = result.empty(nsDiscoItems, "query")
	case payload.name.Space == nsDiscoItems && payload.name.Local == "query" && payload.get("node") == nsCommands && kind == "service":
		result = r.adhocItems(result)
	default:
		r.replyError(el, "cancel", "service-unavailable", "")
		return
	}
	r.send(result.end(nsAccept, "iq"))
}

// entity says whether j is one of the component's addresses.
func (r *router) entity(j jid.JID) (known bool, kind, name string) {
	if j.Domainpart() != r.domain.Domainpart() {
		return false, "", ""
	}
	if j.Localpart() == "" {
		return true, "service", ""
	}
	if id := r.guestIDOf(j); id != "" {
		if _, ok := r.chats[id]; ok {
			return true, "guest", ""
		}
		if _, err := r.st.Guest(id); err == nil {
			return true, "guest", ""
		}
		return false, "", ""
	}
	if sk, ok := r.skins[r.skinOf(j)]; ok {
		return true, "skin", sk.Title
	}
	return false, "", ""
}

// discoFeatures are the features disco#info lists for an address of the
// given kind, sorted. A skin asks for notifications of its operators'
// OMEMO device lists (XEP-0163 filtered notifications): their servers then
// push every change to the skin (omemo_push.go).
func discoFeatures(kind string) []string {
	feats := []string{nsDiscoInfo, nsDiscoItems, nsPing}
	switch kind {
	case "service":
		feats = append(feats, nsCommands)
	case "skin":
		feats = append(feats, nsChatStates, nsReceipts, wire.DeviceListNode+"+notify")
	default:
		feats = append(feats, nsChatStates, nsReceipts)
	}
	slices.Sort(feats)
	return feats
}

// capsNode names otrdesk in entity capabilities (XEP-0115).
const capsNode = "https://otrdesk.im/otrdesk"

// capsVer is the XEP-0115 verification string of a skin titled name: the
// SHA-1, in base64, of its identity and features as disco#info lists them.
// Servers cache what a disco#info query returned under it and may check
// that the answer hashes to it.
func capsVer(name string) string {
	var b strings.Builder
	b.WriteString("client/bot//" + name + "<")
	for _, f := range discoFeatures("skin") {
		b.WriteString(f + "<")
	}
	sum := sha1.Sum([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(sum[:])
}
