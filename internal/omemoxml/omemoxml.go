// Package omemoxml is the XMPP around OMEMO elements that otrdesk's test
// peers write and read: internal/operator (an operator's client, as
// Conversations or Gajim) and internal/hostile (a service that attacks the
// visitor). It holds the namespaces, the fallback body, the PEP requests,
// answers and events that carry device lists and bundles, the message
// that carries <encrypted/>, and Element, which takes one element out of
// a stanza. The elements themselves are package omemo's.
package omemoxml

import (
	"strconv"
	"strings"

	"otrdesk.im/otrdesk/omemo"
)

const (
	NSPubSub      = "http://jabber.org/protocol/pubsub"
	NSPubSubEvent = "http://jabber.org/protocol/pubsub#event"
	NSEME         = "urn:xmpp:eme:0" // explicit message encryption: names OMEMO beside the body
	NSHints       = "urn:xmpp:hints" // message processing hints: store, no-store
	NSStanzas     = "urn:ietf:params:xml:ns:xmpp-stanzas"
)

// FallbackBody is the body OMEMO clients send beside <encrypted/>, for
// clients without OMEMO (Conversations adds a link after it).
const FallbackBody = "I sent you an OMEMO encrypted message but your client doesn't seem to support that."

var escaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;", `"`, "&quot;")

// Escape makes s safe in XML text and in attribute values of either quote.
func Escape(s string) string { return escaper.Replace(s) }

// Publish is a PEP publish (the payload of an iq set) making payload the
// one item of node.
func Publish(node string, payload []byte) string {
	return "<pubsub xmlns='" + NSPubSub + "'><publish node='" + Escape(node) + "'>" + item(payload) + "</publish></pubsub>"
}

// Items asks for the items of node (the payload of an iq get).
func Items(node string) string {
	return "<pubsub xmlns='" + NSPubSub + "'><items node='" + Escape(node) + "'/></pubsub>"
}

// ItemsResult answers Items with payload as node's one item.
func ItemsResult(node string, payload []byte) string {
	return "<pubsub xmlns='" + NSPubSub + "'><items node='" + Escape(node) + "'>" + item(payload) + "</items></pubsub>"
}

// Event is the PEP event (the child of a headline message) telling that
// payload is now node's one item.
func Event(node string, payload []byte) string {
	return "<event xmlns='" + NSPubSubEvent + "'><items node='" + Escape(node) + "'>" + item(payload) + "</items></event>"
}

func item(payload []byte) string { return "<item id='current'>" + string(payload) + "</item>" }

// Message is a chat message carrying enc as OMEMO clients send one: body
// for clients without OMEMO (FallbackBody, or a client's own sentence),
// the EME element naming OMEMO, and the storage hint hint ("store" or
// "no-store"). An empty from is left out, for the server to set.
func Message(from, to, body string, enc *omemo.Encrypted, hint string) string {
	var b strings.Builder
	b.WriteString("<message type='chat'")
	if from != "" {
		b.WriteString(" from='" + Escape(from) + "'")
	}
	b.WriteString(" to='" + Escape(to) + "'><body>" + Escape(body) + "</body>")
	b.Write(enc.Marshal())
	b.WriteString("<encryption xmlns='" + NSEME + "' namespace='" + omemo.NS + "' name='OMEMO'/><" + hint + " xmlns='" + NSHints + "'/></message>")
	return b.String()
}

// Encrypted takes the <encrypted/> element out of a stanza and parses it;
// ok is false when there is none or it is malformed.
func Encrypted(raw []byte) (enc *omemo.Encrypted, ok bool) {
	el, _, ok := Element(raw, omemo.NS, "encrypted")
	if !ok {
		return nil, false
	}
	enc, err := omemo.ParseEncrypted(el)
	return enc, err == nil
}

// BundleID is the device ID of a bundle node (omemo.BundleNode); ok is
// false for any other node and for device 0.
func BundleID(node string) (id uint32, ok bool) {
	s, ok := strings.CutPrefix(node, omemo.NS+".bundles:")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	return uint32(n), err == nil && n != 0
}
