package component

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"otrdesk.im/otrdesk/omemo/wire"
	"otrdesk.im/otrdesk/store"
)

// OMEMO beside OTR (XEP-0384 version 0.3, namespace
// eu.siacs.conversations.axolotl, as Gajim, Conversations, Dino, Monal and
// Profanity speak it). As with OTR the component never decrypts: it checks
// the elements (package omemo/wire, which does not link the Signal
// library), moves them, and serves the keys each side needs to find the
// other.
//
// Relaying. An <encrypted/> element crosses both ways like an OTR body:
// same alias masking, size cap (its payload counts against
// max_body_bytes), rate and metrics (kind "omemo"). It is re-written in its
// canonical form, so nothing a client added inside it crosses; EME
// (<encryption xmlns='urn:xmpp:eme:0'/>) and the fallback body go with it.
// An OMEMO message is encrypted: under "require" its fallback body is not
// refused as plaintext. It carries no-store (no archive keeps it) but not
// no-copy: carbons take it to every device of the operator, whose trusted
// devices all have a key in it, and any resource of the pinned operator's
// account may answer.
//
// The visitor's keys. An anonymous account has no usable PEP, so the
// widget hands its device list and bundle to the component, which keeps
// them in memory with the chat (bounded: maxVisitorDevices devices, maxVisitorPreKeys prekeys each) and
// serves them as the PEP of the alias. The widget publishes to its skin,
// after each login and before its first message (or its resumption):
//
//	<iq type='set' to='<skin>@D' id='…'>
//	  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
//	    <publish node='eu.siacs.conversations.axolotl.devicelist'>
//	      <item id='current'><list xmlns='eu.siacs.conversations.axolotl'>…</list></item>
//	    </publish>
//	  </pubsub>
//	</iq>
//
// and the same with node eu.siacs.conversations.axolotl.bundles:<id> and a
// <bundle/>. Keys handed over before the chat exists wait pendingKeysTTL
// for its first message. The pinned operator's account (and only it) may
// read them at guest-<id>@D with an ordinary PEP items request, and is
// sent the alias's device list as a PEP event (a headline message from the
// alias) when the chat is assigned to it, so its client can build a
// session at once. None of this carries the visitor's real JID.
//
// The operator's keys. The component reads the operator's device list and
// bundles from the operator's account as the skin JID (which holds a
// presence subscription to each operator, so PEP's default "presence"
// access model lets it read them), again on every assignment; between
// reads the operator's server pushes each change of the device list to the
// skin (omemo_push.go), which corrects the read at once. The widget
// asks its skin for them with the same PEP requests, to <skin>@D:
//
//	<iq type='get' to='<skin>@D'><pubsub xmlns='http://jabber.org/protocol/pubsub'>
//	  <items node='eu.siacs.conversations.axolotl.devicelist'/></pubsub></iq>
//
// and gets only the devices of the pinned operator that the skin trusts
// (otrdesk keys add-device), that the operator still lists, whose bundle
// could be read and, when the trust names a fingerprint, whose identity key
// is that one; then bundles:<id> for each of them.
//
// The protocol of a chat: at each assignment (and resumption) the visitor
// is told e2ee='omemo' in the status element when the widget handed over
// its keys and the operator has a device the skin trusts (and the last
// read of the operator's devices, if recent, found one usable), else
// e2ee='otr'. In an OMEMO chat the visitor's OTR messages (the widget's
// opening query, sent before it knew) are not relayed: the operator's
// client does not speak OTR with the visitor.

// Namespaces of OMEMO and its companions.
const (
	nsOMEMO       = wire.NS
	nsEME         = "urn:xmpp:eme:0"
	nsPubSub      = "http://jabber.org/protocol/pubsub"
	nsPubSubEvent = "http://jabber.org/protocol/pubsub#event"
)

// The protocol of a chat, as the status element names it.
const (
	e2eeOTR   = "otr"
	e2eeOMEMO = "omemo"
)

// Bounds.
const (
	// maxVisitorDevices bounds the devices a visitor's widget may hand
	// over (one per browser tab in practice).
	maxVisitorDevices = 4
	// maxVisitorPreKeys bounds the one-time prekeys of a visitor's
	// bundle: only the pinned operator's few devices start sessions with
	// it, so a few dozen are plenty, and a chat's keys stay small in
	// memory (about 1.5 KB a device).
	maxVisitorPreKeys = 32
	// pendingKeysTTL is how long keys handed over before the chat's first
	// message wait for it.
	pendingKeysTTL = 2 * time.Minute
	// iqTimeout bounds an answer to the component's own PEP requests.
	iqTimeout = 10 * time.Second
	// maxPendingIQs bounds the component's unanswered requests.
	maxPendingIQs = 1024
	// maxOperatorBundles bounds the bundles read per operator account.
	maxOperatorBundles = 32
	// devicesFresh is how long a read of an operator's devices is used
	// without reading them again (one read serves the widget's device list
	// and bundle requests that follow an assignment).
	devicesFresh = 10 * time.Second
)

// visitorKeys is what a visitor's widget handed over: its device list and
// the bundles of those devices.
type visitorKeys struct {
	list    wire.DeviceList
	bundles map[uint32]*wire.Bundle
	at      time.Time // when handed over (pending keys expire)
}

// usable reports whether an operator's client can start a session: a
// device listed with its bundle.
func (k *visitorKeys) usable() bool {
	if k == nil {
		return false
	}
	for _, id := range k.list {
		if k.bundles[id] != nil {
			return true
		}
	}
	return false
}

// opDevices is one read of an operator account's devices, made as a skin.
type opDevices struct {
	skin, account string
	done          bool
	at            time.Time // when the read finished
	err           error     // the device list could not be read
	list          wire.DeviceList
	bundles       map[uint32]*wire.Bundle
	waiting       int // bundle requests not yet answered
	waiters       []func(*opDevices)
}

// omemoState is the router's OMEMO bookkeeping; only the router goroutine
// touches it.
type omemoState struct {
	pending map[string]*visitorKeys // realKey -> keys handed over before the chat
	reads   map[string]*opDevices   // skin NUL account -> last read
	iqs     map[string]pendingIQ    // id -> the component's own requests
	seq     uint64
	// fresh is how long a read is used without reading again
	// (devicesFresh; tests that must see a pushed change, not a re-read,
	// make it longer).
	fresh time.Duration
}

type pendingIQ struct {
	to   string // the account asked: only it may answer
	sent time.Time
	fn   func(result *elem) // nil result: an error or no answer
}

func (s *omemoState) init() {
	s.pending = map[string]*visitorKeys{}
	s.reads = map[string]*opDevices{}
	s.iqs = map[string]pendingIQ{}
	s.fresh = devicesFresh
}

// readOMEMO checks an <encrypted/> element of a message and keeps its
// canonical form.
func (m *relayMsg) readOMEMO(e *elem) {
	enc, err := wire.ParseEncrypted(elemXML(e))
	if err != nil {
		m.omemoErr = err
		return
	}
	m.omemo, m.omemoPayload = enc.Marshal(), len(enc.Payload)
}

// checkOMEMO refuses a malformed <encrypted/> element and a payload over
// max_body_bytes.
func (r *router) checkOMEMO(el *elem, m *relayMsg) bool {
	switch {
	case m.omemoErr != nil:
		r.refuse(el, dropBadOMEMO, "the OMEMO element is malformed")
		return false
	case m.omemoPayload > r.cfg.MaxBodyBytes:
		r.refuse(el, dropTooLarge, fmt.Sprintf("the message is larger than %d bytes", r.cfg.MaxBodyBytes))
		return false
	}
	return true
}

// omemoToks renders the encrypted element and EME.
func (m *relayMsg) omemoToks(t toks) toks {
	t = append(t, rawToks(m.omemo)...)
	return t.empty(nsEME, "encryption", "namespace", nsOMEMO, "name", "OMEMO")
}

// e2eeFor picks the protocol of a chat being (re)assigned: OMEMO when the
// widget handed over usable keys and the operator has a device the skin
// trusts, else OTR. Choosing OMEMO tells the operator the alias's device
// list and reads the operator's devices for the widget.
func (r *router) e2eeFor(ch *chat) string {
	rk := realKey(ch.rec.Skin, ch.rec.RealJID)
	if p := r.omemo.pending[rk]; p != nil {
		ch.keys = p
		delete(r.omemo.pending, rk)
	}
	ch.e2ee = e2eeOTR
	if !ch.keys.usable() {
		return ch.e2ee
	}
	trusted, err := r.st.Devices(ch.rec.Skin, ch.opBare)
	if err != nil {
		r.log.Error("reading trusted devices", "skin", ch.rec.Skin, "err", err)
		return ch.e2ee
	}
	if len(trusted) == 0 {
		return ch.e2ee
	}
	if f := r.omemo.reads[ch.rec.Skin+"\x00"+ch.opBare]; f != nil && f.done && f.err == nil &&
		r.now().Sub(f.at) < r.omemo.fresh && len(usableDevices(f, trusted)) == 0 {
		return ch.e2ee // just read: none of the trusted devices can be used
	}
	ch.e2ee = e2eeOMEMO
	r.notifyDeviceList(ch)
	r.readDevices(ch.rec.Skin, ch.opBare, nil)
	return ch.e2ee
}

// notifyDeviceList sends the pinned operator's account the alias's device
// list as a PEP event, so its client knows the alias speaks OMEMO.
func (r *router) notifyDeviceList(ch *chat) {
	if ch.keys == nil || ch.opBare == "" {
		return
	}
	t := toks{}.start(nsAccept, "message", "from", r.aliasJID(ch.rec.ID), "to", ch.opBare, "type", "headline").
		start(nsPubSubEvent, "event").start("", "items", "node", wire.DeviceListNode).
		start("", "item", "id", "current")
	t = append(t, rawToks(ch.keys.list.Marshal())...)
	r.send(t.end("", "item").end("", "items").end(nsPubSubEvent, "event").end(nsAccept, "message"))
}

// usableDevices are the devices of a read the skin's trust allows: listed
// by the operator now, trusted, with a bundle, and with the trusted
// identity key when the trust names one.
func usableDevices(f *opDevices, trusted []store.TrustedDevice) []uint32 {
	var out []uint32
	for _, id := range f.list {
		b := f.bundles[id]
		if b == nil {
			continue
		}
		for _, t := range trusted {
			if t.Device == id && (t.Fingerprint == nil || bytes.Equal(t.Fingerprint, b.IdentityKey[:])) {
				out = append(out, id)
				break
			}
		}
	}
	return out
}

// handlePubSub answers PEP requests: the widget handing over its keys and
// asking for its operator's (at <skin>@D), and an operator reading an
// alias's keys (at guest-<id>@D). It reports whether the iq was one.
func (r *router) handlePubSub(el, ps *elem, kind string, to jid.JID) bool {
	if ps.name.Space != nsPubSub || ps.name.Local != "pubsub" {
		return false
	}
	from, typ := el.get("from"), el.get("type")
	switch {
	case kind == "skin" && typ == "set":
		if pub := ps.child(nsPubSub, "publish"); pub != nil {
			r.visitorPublish(el, pub, r.skinOf(to), from)
			return true
		}
	case kind == "skin" && typ == "get":
		if items := ps.child(nsPubSub, "items"); items != nil {
			r.operatorItems(el, items, r.skinOf(to), from)
			return true
		}
	case kind == "guest" && typ == "get":
		if items := ps.child(nsPubSub, "items"); items != nil {
			r.aliasItems(el, items, r.guestIDOf(to), from)
			return true
		}
	}
	return false
}

// visitorPublish keeps a device list or bundle the widget hands over.
func (r *router) visitorPublish(el, pub *elem, skin, from string) {
	if _, ok := r.skins[skin]; !ok || r.isBlocked(skin, from) {
		r.refuse(el, dropKeysRefused, "")
		return
	}
	var payload *elem
	if item := pub.child(nsPubSub, "item"); item != nil && len(item.kids) == 1 {
		payload = item.kids[0]
	}
	if payload == nil || el.truncated {
		r.refuse(el, dropKeysRefused, "publish one item")
		return
	}
	rk := realKey(skin, from)
	ch := r.byReal[rk]
	keys := r.omemo.pending[rk]
	if ch != nil {
		keys = ch.keys
	}
	fresh := keys == nil
	if fresh {
		keys = &visitorKeys{bundles: map[uint32]*wire.Bundle{}}
	}
	node := pub.get("node")
	listChanged := false
	switch {
	case node == wire.DeviceListNode:
		list, err := wire.ParseDeviceList(elemXML(payload))
		if err != nil || len(list) == 0 || len(list) > maxVisitorDevices {
			r.refuse(el, dropKeysRefused, fmt.Sprintf("a device list of 1 to %d devices", maxVisitorDevices))
			return
		}
		keys.list, listChanged = list, true
		for id := range keys.bundles {
			if !slices.Contains(list, id) {
				delete(keys.bundles, id)
			}
		}
	case strings.HasPrefix(node, wire.NS+".bundles:"):
		id, err := strconv.ParseUint(node[len(wire.NS+".bundles:"):], 10, 32)
		b, perr := wire.ParseBundle(elemXML(payload))
		if err != nil || id == 0 || id > wire.MaxDeviceID || perr != nil {
			r.refuse(el, dropKeysRefused, "not a bundle")
			return
		}
		if len(b.PreKeys) > maxVisitorPreKeys {
			r.refuse(el, dropKeysRefused, fmt.Sprintf("at most %d prekeys", maxVisitorPreKeys))
			return
		}
		if keys.bundles[uint32(id)] == nil && len(keys.bundles) >= maxVisitorDevices {
			r.refuse(el, dropKeysRefused, fmt.Sprintf("at most %d devices", maxVisitorDevices))
			return
		}
		keys.bundles[uint32(id)] = b
	default:
		r.refuse(el, dropKeysRefused, "only OMEMO keys are kept here")
		return
	}
	if fresh && ch == nil && len(r.omemo.pending) >= r.cfg.GuestsPerSkin {
		r.refuse(el, dropKeysRefused, "too many visitors are waiting; try again later")
		return
	}
	keys.at = r.now()
	if ch != nil {
		ch.keys = keys
		if listChanged && ch.rec.State == stateAssigned && ch.e2ee == e2eeOMEMO {
			r.notifyDeviceList(ch)
		}
	} else {
		r.omemo.pending[rk] = keys
	}
	r.send(toks{}.empty(nsAccept, "iq", "from", el.get("to"), "to", from, "id", el.get("id"), "type", "result"))
}

// aliasItems serves an alias's PEP: the keys its visitor handed over, to
// the pinned operator's account only. Anyone else learns nothing, not even
// whether the alias has keys.
func (r *router) aliasItems(el, items *elem, id, from string) {
	ch := r.chats[id]
	if ch == nil || ch.keys == nil || ch.rec.State != stateAssigned || ch.opBare != bareOf(from) {
		r.replyError(el, "cancel", "item-not-found", "")
		return
	}
	node := items.get("node")
	var payload []byte
	switch {
	case node == wire.DeviceListNode && len(ch.keys.list) > 0:
		payload = ch.keys.list.Marshal()
	case strings.HasPrefix(node, wire.NS+".bundles:"):
		id, err := strconv.ParseUint(node[len(wire.NS+".bundles:"):], 10, 32)
		if b := ch.keys.bundles[uint32(id)]; err == nil && b != nil {
			payload = b.Marshal()
		}
	}
	if payload == nil {
		r.replyError(el, "cancel", "item-not-found", "")
		return
	}
	r.sendItems(el, node, payload)
}

// operatorItems answers the widget's request for its operator's device
// list or a bundle, with the devices the skin trusts only, once the
// operator's account has been read.
func (r *router) operatorItems(el, items *elem, skin, from string) {
	ch := r.byReal[realKey(skin, from)]
	if ch == nil || ch.rec.State != stateAssigned || ch.e2ee != e2eeOMEMO {
		r.replyError(el, "cancel", "item-not-found", "")
		return
	}
	node, id, op := items.get("node"), ch.rec.ID, ch.opBare
	r.readDevices(skin, op, func(f *opDevices) {
		ch := r.chats[id]
		if ch == nil || ch.opBare != op || ch.rec.State != stateAssigned {
			r.replyError(el, "cancel", "item-not-found", "")
			return
		}
		if f.err != nil {
			r.replyError(el, "wait", "remote-server-timeout", "the operator's devices could not be read")
			return
		}
		trusted, err := r.st.Devices(skin, op)
		if err != nil {
			r.replyError(el, "wait", "internal-server-error", "")
			return
		}
		ok := usableDevices(f, trusted)
		switch {
		case node == wire.DeviceListNode:
			r.sendItems(el, node, wire.DeviceList(ok).Marshal())
			return
		case strings.HasPrefix(node, wire.NS+".bundles:"):
			n, err := strconv.ParseUint(node[len(wire.NS+".bundles:"):], 10, 32)
			if err == nil && slices.Contains(ok, uint32(n)) {
				r.freshBundle(el, f, uint32(n))
				return
			}
		}
		r.replyError(el, "cancel", "item-not-found", "")
	})
}

// freshBundle answers a widget's bundle request with the bundle the
// operator's device publishes now. The device list may come from a read
// up to devicesFresh old, but a bundle that old may offer a one-time
// prekey another visitor has used up since (the operator's client then
// replaced it, in some clients under the same ID): the operator could not
// decrypt this visitor's first message. The bundle must still carry the
// identity key the read checked against the skin's trust; if the device's
// server does not answer, the bundle of the read is what there is.
func (r *router) freshBundle(el *elem, f *opDevices, id uint32) {
	node := wire.BundleNode(id)
	checked := f.bundles[id]
	sent := r.askPEP(f.skin, f.account, node, func(res *elem) {
		b := checked
		if item := pepItem(res, "bundle"); item != nil {
			fresh, err := wire.ParseBundle(elemXML(item))
			if err != nil || fresh.IdentityKey != checked.IdentityKey {
				// Not the device the read vouched for: the next request reads afresh.
				f.at = time.Time{}
				r.replyError(el, "cancel", "item-not-found", "")
				return
			}
			b, f.bundles[id] = fresh, fresh
		}
		r.sendItems(el, node, b.Marshal())
	})
	if !sent {
		r.sendItems(el, node, checked.Marshal())
	}
}

// sendItems answers a PEP items request with one item.
func (r *router) sendItems(el *elem, node string, payload []byte) {
	t := toks{}.start(nsAccept, "iq", "from", el.get("to"), "to", el.get("from"), "id", el.get("id"), "type", "result").
		start(nsPubSub, "pubsub").start("", "items", "node", node).start("", "item", "id", "current")
	t = append(t, rawToks(payload)...)
	r.send(t.end("", "item").end("", "items").end(nsPubSub, "pubsub").end(nsAccept, "iq"))
}

// readDevices reads an operator account's device list and bundles as the
// skin, unless a read finished less than devicesFresh ago; done (if not
// nil) gets the read when it finishes.
func (r *router) readDevices(skin, account string, done func(*opDevices)) {
	key := skin + "\x00" + account
	f := r.omemo.reads[key]
	if f != nil && !f.done {
		if done != nil {
			f.waiters = append(f.waiters, done)
		}
		return
	}
	if f != nil && r.now().Sub(f.at) < r.omemo.fresh {
		if done != nil {
			done(f)
		}
		return
	}
	f = &opDevices{skin: skin, account: account, bundles: map[uint32]*wire.Bundle{}}
	if done != nil {
		f.waiters = append(f.waiters, done)
	}
	r.omemo.reads[key] = f
	ok := r.askPEP(skin, account, wire.DeviceListNode, func(res *elem) {
		item := pepItem(res, "list")
		if item == nil {
			r.finishRead(f, errors.New("component: no device list"))
			return
		}
		list, err := wire.ParseDeviceList(elemXML(item))
		if err != nil {
			r.finishRead(f, err)
			return
		}
		f.list = list
		r.readBundles(f, nil)
	})
	if !ok {
		r.finishRead(f, errors.New("component: cannot ask the operator's server now"))
	}
}

// readBundles reads the bundles of the devices f lists (the first
// maxOperatorBundles), except those known already, and finishes f when
// all are answered.
func (r *router) readBundles(f *opDevices, known map[uint32]*wire.Bundle) {
	for _, id := range f.list[:min(len(f.list), maxOperatorBundles)] {
		if b := known[id]; b != nil {
			f.bundles[id] = b
			continue
		}
		f.waiting++
		ok := r.askPEP(f.skin, f.account, wire.BundleNode(id), func(res *elem) {
			f.waiting--
			if item := pepItem(res, "bundle"); item != nil {
				if b, err := wire.ParseBundle(elemXML(item)); err == nil {
					f.bundles[id] = b
				}
			}
			if f.waiting == 0 {
				r.finishRead(f, nil)
			}
		})
		if !ok {
			f.waiting--
		}
	}
	if f.waiting == 0 {
		r.finishRead(f, nil)
	}
}

// finishRead marks a read done and hands it to those waiting for it. A
// read that a pushed device list corrected keeps the time of the read it
// corrected: its other bundles are that old.
func (r *router) finishRead(f *opDevices, err error) {
	if f.done {
		return
	}
	f.done, f.err = true, err
	if f.at.IsZero() {
		f.at = r.now()
	}
	if err != nil {
		r.log.Warn("reading an operator's OMEMO devices", "skin", f.skin, "err", err)
	}
	w := f.waiters
	f.waiters = nil
	for _, fn := range w {
		fn(f)
	}
}

// askPEP sends a PEP items request from a skin; fn gets the result (nil
// for an error or no answer within iqTimeout). It reports whether the
// request went out.
func (r *router) askPEP(skin, account, node string, fn func(*elem)) bool {
	if len(r.omemo.iqs) >= maxPendingIQs {
		return false
	}
	r.omemo.seq++
	id := "omemo-" + strconv.FormatUint(r.omemo.seq, 36)
	t := toks{}.start(nsAccept, "iq", "from", r.skinJID(skin), "to", account, "id", id, "type", "get").
		start(nsPubSub, "pubsub").empty("", "items", "node", node).end(nsPubSub, "pubsub").end(nsAccept, "iq")
	if r.send(t) != nil {
		return false
	}
	r.omemo.iqs[id] = pendingIQ{to: account, sent: r.now(), fn: fn}
	return true
}

// iqAnswered hands a result or error to the request it answers. Only the
// account asked may answer it.
func (r *router) iqAnswered(el *elem) {
	p, ok := r.omemo.iqs[el.get("id")]
	if !ok || bareOf(el.get("from")) != p.to {
		return
	}
	delete(r.omemo.iqs, el.get("id"))
	if el.get("type") == "result" {
		p.fn(el)
	} else {
		p.fn(nil)
	}
}

// pepItem is the payload <local/> of the one item in a PEP result.
func pepItem(res *elem, local string) *elem {
	if res == nil {
		return nil
	}
	ps := res.child(nsPubSub, "pubsub")
	if ps == nil {
		return nil
	}
	items := ps.child(nsPubSub, "items")
	if items == nil {
		return nil
	}
	for _, it := range items.kids {
		if it.name.Local == "item" {
			for _, k := range it.kids {
				if k.name.Space == nsOMEMO && k.name.Local == local {
					return k
				}
			}
		}
	}
	return nil
}

// expireOMEMO forgets keys that waited too long for their chat and fails
// requests that got no answer.
func (r *router) expireOMEMO(now time.Time) {
	for k, p := range r.omemo.pending {
		if ch := r.byReal[k]; ch != nil {
			// The chat opened (and waits in the queue): the keys are its.
			if ch.keys == nil {
				ch.keys = p
			}
			delete(r.omemo.pending, k)
			continue
		}
		if now.Sub(p.at) >= pendingKeysTTL {
			delete(r.omemo.pending, k)
		}
	}
	for id, p := range r.omemo.iqs {
		if now.Sub(p.sent) >= iqTimeout {
			delete(r.omemo.iqs, id)
			p.fn(nil)
		}
	}
}

// OperatorDevice is one OMEMO device of an operator's account as the
// component reads it.
type OperatorDevice struct {
	ID uint32
	// Fingerprint is the identity key of the device's bundle; zero when
	// HasBundle is false.
	Fingerprint wire.Fingerprint
	HasBundle   bool
}

// Errors of OperatorDevices.
var (
	ErrNotOperator  = errors.New("component: not an operator of any skin")
	ErrNotConnected = errors.New("component: not connected to the XMPP server")
	ErrNoDevices    = errors.New("component: the operator's OMEMO device list could not be read")
)

// OperatorDevices reads the OMEMO devices an operator's account publishes,
// as the first skin (by name) that lists the operator: that skin holds the
// presence subscription PEP asks for.
func (c *Component) OperatorDevices(ctx context.Context, account string) ([]OperatorDevice, error) {
	type answer struct {
		devs []OperatorDevice
		err  error
	}
	ch := make(chan answer, 1)
	ask := evFunc(func(r *router) {
		r.operatorDevices(account, func(d []OperatorDevice, err error) { ch <- answer{d, err} })
	})
	select {
	case c.events <- ask:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case a := <-ch:
		return a.devs, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r *router) operatorDevices(account string, done func([]OperatorDevice, error)) {
	bare := bareOf(account)
	var skins []string
	for name, sk := range r.skins {
		if slices.Contains(sk.Operators, bare) {
			skins = append(skins, name)
		}
	}
	if len(skins) == 0 {
		done(nil, fmt.Errorf("%w: %s", ErrNotOperator, bare))
		return
	}
	if r.out == nil {
		done(nil, ErrNotConnected)
		return
	}
	sort.Strings(skins)
	r.readDevices(skins[0], bare, func(f *opDevices) {
		if f.err != nil {
			done(nil, fmt.Errorf("%w (is %s subscribed to %s, and does its server run PEP?)", ErrNoDevices, r.skinJID(skins[0]), bare))
			return
		}
		out := make([]OperatorDevice, 0, len(f.list))
		for _, id := range f.list {
			d := OperatorDevice{ID: id}
			if b := f.bundles[id]; b != nil {
				d.Fingerprint, d.HasBundle = b.IdentityKey.Fingerprint(), true
			}
			out = append(out, d)
		}
		done(out, nil)
	})
}

// devicesCommand answers the command "devices" on D: the OMEMO devices of
// the operator's account as otrdesk reads them, with their fingerprints
// and the skins that trust each, so the operator can compare them with
// what the client shows and ask an admin to trust a device. An admin may
// name another account: "devices alice@example.org".
func (r *router) devicesCommand(from jid.JID, args []string) {
	reply := func(text string) {
		r.send(toks{}.start(nsAccept, "message", "from", r.service(), "to", from.String(), "type", "chat").
			text("", "body", []byte(text)).end(nsAccept, "message"))
	}
	account := from.Bare().String()
	if len(args) > 0 {
		j, err := jid.Parse(args[0])
		if err != nil || !r.isAdmin(account) {
			reply("Usage: devices (your own account; admins may name another)")
			return
		}
		account = j.Bare().String()
	}
	r.operatorDevices(account, func(devs []OperatorDevice, err error) {
		if err != nil {
			reply("Could not read the OMEMO devices of " + account + ": " + err.Error())
			return
		}
		if len(devs) == 0 {
			reply(account + " publishes no OMEMO device.")
			return
		}
		var b strings.Builder
		fmt.Fprintf(&b, "OMEMO devices of %s, as otrdesk reads them:", account)
		for _, d := range devs {
			fmt.Fprintf(&b, "\n%d: ", d.ID)
			if !d.HasBundle {
				b.WriteString("no bundle published (the device cannot be used)")
				continue
			}
			b.WriteString(d.Fingerprint.String())
			var by []string
			for name, sk := range r.skins {
				if !slices.Contains(sk.Operators, account) {
					continue
				}
				trusted, err := r.st.Devices(name, account)
				if err != nil {
					continue
				}
				for _, t := range trusted {
					if t.Device == d.ID && (t.Fingerprint == nil || bytes.Equal(t.Fingerprint, d.Fingerprint[:])) {
						by = append(by, name)
					}
				}
			}
			sort.Strings(by)
			if len(by) > 0 {
				b.WriteString(" (trusted by " + strings.Join(by, ", ") + ")")
			} else {
				b.WriteString(" (not trusted: compare it with your client, then ask an admin to run 'otrdesk keys add-device')")
			}
		}
		reply(b.String())
	})
}

// elemXML writes an element of an incoming stanza back as XML, for the
// omemo/wire parsers. Namespace declarations are left to the encoder.
func elemXML(e *elem) []byte {
	var b bytes.Buffer
	enc := xml.NewEncoder(&b)
	var walk func(e *elem)
	walk = func(e *elem) {
		s := xml.StartElement{Name: e.name}
		for _, a := range e.attr {
			if a.Name.Space == "" && a.Name.Local != "xmlns" {
				s.Attr = append(s.Attr, a)
			}
		}
		enc.EncodeToken(s)
		if len(e.text) > 0 {
			enc.EncodeToken(xml.CharData(e.text))
		}
		for _, k := range e.kids {
			walk(k)
		}
		enc.EncodeToken(xml.EndElement{Name: e.name})
	}
	walk(e)
	enc.Flush()
	return b.Bytes()
}

// rawToks turns an element omemo/wire wrote into tokens for a stanza. A
// child in its parent's namespace is written without a declaration of its
// own, as the clients write it.
func rawToks(b []byte) toks {
	d := xml.NewDecoder(bytes.NewReader(b))
	var t toks
	var spaces []string // namespace of each open element, as read
	for {
		tok, err := d.Token()
		if err != nil {
			return t
		}
		switch x := tok.(type) {
		case xml.StartElement:
			s := xml.StartElement{Name: x.Name}
			if n := len(spaces); n > 0 && spaces[n-1] == x.Name.Space {
				s.Name.Space = ""
			}
			spaces = append(spaces, x.Name.Space)
			for _, a := range x.Attr {
				if a.Name.Space == "" && a.Name.Local != "xmlns" {
					s.Attr = append(s.Attr, a)
				}
			}
			t = append(t, s)
		case xml.EndElement:
			spaces = spaces[:len(spaces)-1]
			if n := len(spaces); n > 0 && spaces[n-1] == x.Name.Space {
				x.Name.Space = ""
			}
			t = append(t, x)
		case xml.CharData:
			t = append(t, x.Copy())
		}
	}
}
