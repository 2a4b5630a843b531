package hostile

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"otrdesk.im/otrdesk/internal/omemoxml"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/omemo"
)

// OMEMO, with Config.OMEMO: the attacker stands in for otrdesk's OMEMO
// hand-over (docs/control-channel.md, "OMEMO keys between the widget and
// the component") and turns it against the visitor:
//
//	visitor  --PEP publish-->     <skin>@D      the visitor's device list and bundles,
//	                                             kept (VisitorDevices), answered with an
//	                                             empty result as otrdesk answers
//	visitor  --PEP items-->       <skin>@D      "the operator's devices": what Offer set —
//	                                             the attacker's own devices (NewDevice),
//	                                             the real operator's bundles relayed
//	                                             (Config.OperatorBundle), or an attacker
//	                                             device under a real device's ID (a
//	                                             swapped identity key)
//	visitor  --<encrypted/>-->    <skin>@D      decrypted by every attacker device with a
//	                                             key in it (OMEMODecrypted), and relayed to
//	                                             the operator from guest-<id>@D as otrdesk
//	                                             relays it (fallback body, EME, no-store)
//	operator --PEP items-->       guest-<id>@D  the visitor's keys, as otrdesk serves them
//	operator --<encrypted/>-->    guest-<id>@D  relayed to the visitor from <skin>@D
//	attacker --<encrypted/>-->    visitor       SayOMEMO, from an attacker device
//
// A new chat gets status assigned with e2ee='omemo' (whatever the visitor
// handed over: the status is the attacker's to forge) and the operator is
// sent the alias's device list as otrdesk's PEP event. The visitor's OTR
// bodies are not relayed to the operator, as otrdesk does in an OMEMO chat.

// ErrNoDevice is returned for an attacker device ID the attacker does not
// have, and by SayOMEMO before the visitor handed over any device.
var ErrNoDevice = errors.New("hostile: no such OMEMO device")

// An Offer is one device the attacker gives the visitor as the operator's,
// when the visitor asks its skin for the operator's devices.
type Offer struct {
	ID uint32
	// Bundle is served for ID as it is. nil: the attacker's own device ID
	// (NewDevice) if it has one, else the real operator's current bundle
	// (Config.OperatorBundle), read at each request.
	Bundle *omemo.Bundle
}

// visitorKeys is what a visitor handed over.
type visitorKeys struct {
	list    omemo.DeviceList
	bundles map[uint32]*omemo.Bundle
}

// OMEMOMessage is one <encrypted/> element the visitor sent: the sender
// device and the devices it has a key for.
type OMEMOMessage struct {
	SID  uint32
	RIDs []uint32
}

// NewDevice makes an attacker OMEMO device and returns its ID and
// fingerprint. id 0 picks a random ID; any other id makes the device under
// that ID, to stand in for the real operator's device of that ID with
// another identity key (offer it with Offer{ID: id}). The device decrypts
// whatever the visitor encrypts to its ID.
func (a *Attacker) NewDevice(id uint32) (uint32, omemo.Fingerprint, error) {
	if id > omemo.MaxDeviceID {
		return 0, omemo.Fingerprint{}, fmt.Errorf("hostile: device ID %d over %d", id, omemo.MaxDeviceID)
	}
	opts := omemo.Options{PreKeys: 10}
	if id != 0 {
		// omemo.NewDevice draws the device ID from the first four bytes
		// of its randomness, big-endian: these come first, the rest is
		// crypto/rand.
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], id)
		opts.Rand = io.MultiReader(strings.NewReader(string(b[:])), rand.Reader)
	}
	d, err := omemo.NewDevice(opts)
	if err != nil {
		return 0, omemo.Fingerprint{}, fmt.Errorf("hostile: %w", err)
	}
	if id != 0 && d.ID() != id {
		return 0, omemo.Fingerprint{}, fmt.Errorf("hostile: omemo.NewDevice made device %d, not %d: it no longer draws the ID first", d.ID(), id)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if slices.ContainsFunc(a.devices, func(x *omemo.Device) bool { return x.ID() == d.ID() }) {
		return 0, omemo.Fingerprint{}, fmt.Errorf("hostile: the attacker already has device %d", d.ID())
	}
	a.devices = append(a.devices, d)
	a.logf("hostile: attacker OMEMO device %d made", d.ID())
	return d.ID(), d.Fingerprint(), nil
}

// Offer sets the devices the visitor is given as the operator's, in
// order; it replaces the previous offer. Nothing is offered until it is
// called.
func (a *Attacker) Offer(offers ...Offer) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.offers = slices.Clone(offers)
}

// offeredBundle is what the attacker serves for device id. a.mu is held.
func (a *Attacker) offeredBundle(id uint32) *omemo.Bundle {
	i := slices.IndexFunc(a.offers, func(o Offer) bool { return o.ID == id })
	if i < 0 {
		return nil
	}
	if b := a.offers[i].Bundle; b != nil {
		return b
	}
	if d := a.device(id); d != nil {
		return d.Bundle()
	}
	if a.cfg.OperatorBundle != nil {
		return a.cfg.OperatorBundle(id)
	}
	return nil
}

// device returns the attacker's device id. a.mu is held.
func (a *Attacker) device(id uint32) *omemo.Device {
	for _, d := range a.devices {
		if d.ID() == id {
			return d
		}
	}
	return nil
}

// iq answers PEP requests as otrdesk would, and anything else with an
// error, so that no client waits.
func (a *Attacker) iq(ctx context.Context, st xmpptest.Stanza) error {
	if st.Type != "get" && st.Type != "set" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	to := bare(st.To)
	ps, _, isPubSub := omemoxml.Element(st.Raw, omemoxml.NSPubSub, "pubsub")
	switch {
	case !isPubSub:
	case to == a.skin && st.Type == "set":
		if pub, attrs, ok := omemoxml.Element(ps, omemoxml.NSPubSub, "publish"); ok {
			return a.publishLocked(ctx, st, attrs["node"], pub)
		}
	case to == a.skin && st.Type == "get":
		if _, attrs, ok := omemoxml.Element(ps, omemoxml.NSPubSub, "items"); ok {
			return a.operatorItemsLocked(ctx, st, attrs["node"])
		}
	case a.visitors[to] != "" && st.Type == "get":
		if _, attrs, ok := omemoxml.Element(ps, omemoxml.NSPubSub, "items"); ok {
			return a.aliasItemsLocked(ctx, st, a.visitors[to], attrs["node"])
		}
	}
	return a.iqError(ctx, st, "cancel", "feature-not-implemented")
}

// publishLocked keeps a device list or bundle the visitor hands over to
// its skin. a.mu is held.
func (a *Attacker) publishLocked(ctx context.Context, st xmpptest.Stanza, node string, pub []byte) error {
	keys := a.keys[st.From]
	if keys == nil {
		keys = &visitorKeys{bundles: map[uint32]*omemo.Bundle{}}
		a.keys[st.From] = keys
	}
	switch {
	case node == omemo.DeviceListNode:
		el, _, ok := omemoxml.Element(pub, omemo.NS, "list")
		list, err := omemo.ParseDeviceList(el)
		if !ok || err != nil {
			return a.iqError(ctx, st, "modify", "not-acceptable")
		}
		keys.list = list
		a.logf("hostile: the visitor handed over a list of %d OMEMO devices", len(list))
		defer a.changed()
		if alias := a.aliases[st.From]; alias != "" {
			if err := a.deviceListEventLocked(ctx, alias, list); err != nil {
				return err
			}
		}
	case strings.HasPrefix(node, omemo.NS+".bundles:"):
		id, isBundle := omemoxml.BundleID(node)
		el, _, ok := omemoxml.Element(pub, omemo.NS, "bundle")
		b, err := omemo.ParseBundle(el)
		if !isBundle || !ok || err != nil {
			return a.iqError(ctx, st, "modify", "not-acceptable")
		}
		keys.bundles[id] = b
		a.logf("hostile: the visitor handed over the bundle of OMEMO device %d", id)
		defer a.changed()
	default:
		return a.iqError(ctx, st, "modify", "not-acceptable")
	}
	return a.iqResult(ctx, st, "")
}

// operatorItemsLocked answers the visitor's request for "the operator's"
// device list or a bundle with the offer. a.mu is held.
func (a *Attacker) operatorItemsLocked(ctx context.Context, st xmpptest.Stanza, node string) error {
	defer a.changed()
	if node == omemo.DeviceListNode {
		a.listRequests++
		list := make(omemo.DeviceList, 0, len(a.offers))
		for _, o := range a.offers {
			list = append(list, o.ID)
		}
		return a.itemsLocked(ctx, st, node, list.Marshal())
	}
	id, ok := omemoxml.BundleID(node)
	if !ok {
		return a.iqError(ctx, st, "cancel", "item-not-found")
	}
	a.bundleRequests = append(a.bundleRequests, id)
	b := a.offeredBundle(id)
	if b == nil {
		return a.iqError(ctx, st, "cancel", "item-not-found")
	}
	return a.itemsLocked(ctx, st, node, b.Marshal())
}

// aliasItemsLocked serves a visitor's keys at its alias, as otrdesk serves
// them to the operator. a.mu is held.
func (a *Attacker) aliasItemsLocked(ctx context.Context, st xmpptest.Stanza, visitor, node string) error {
	keys := a.keys[visitor]
	if keys != nil && node == omemo.DeviceListNode && len(keys.list) > 0 {
		return a.itemsLocked(ctx, st, node, keys.list.Marshal())
	}
	if id, ok := omemoxml.BundleID(node); ok && keys != nil && keys.bundles[id] != nil {
		return a.itemsLocked(ctx, st, node, keys.bundles[id].Marshal())
	}
	return a.iqError(ctx, st, "cancel", "item-not-found")
}

// itemsLocked answers a PEP items request with one item. a.mu is held.
func (a *Attacker) itemsLocked(ctx context.Context, st xmpptest.Stanza, node string, payload []byte) error {
	return a.iqResult(ctx, st, omemoxml.ItemsResult(node, payload))
}

func (a *Attacker) iqResult(ctx context.Context, st xmpptest.Stanza, payload string) error {
	return a.raw(ctx, "<iq type='result' from='"+esc(st.To)+"' to='"+esc(st.From)+"' id='"+esc(st.ID)+"'>"+payload+"</iq>")
}

func (a *Attacker) iqError(ctx context.Context, st xmpptest.Stanza, typ, cond string) error {
	return a.raw(ctx, "<iq type='error' from='"+esc(st.To)+"' to='"+esc(st.From)+"' id='"+esc(st.ID)+"'><error type='"+typ+"'><"+cond+" xmlns='"+omemoxml.NSStanzas+"'/></error></iq>")
}

func (a *Attacker) raw(ctx context.Context, s string) error {
	if err := a.cfg.Client.SendRaw(ctx, s); err != nil {
		return fmt.Errorf("hostile: sending: %w", err)
	}
	return nil
}

// deviceListEventLocked tells the operator the alias's device list, as
// otrdesk's PEP event does. a.mu is held.
func (a *Attacker) deviceListEventLocked(ctx context.Context, alias string, list omemo.DeviceList) error {
	if a.cfg.Operator == "" {
		return nil
	}
	return a.raw(ctx, "<message type='headline' from='"+esc(alias)+"' to='"+esc(bare(a.cfg.Operator))+"'>"+
		omemoxml.Event(omemo.DeviceListNode, list.Marshal())+"</message>")
}

// encryptedMessage is a message carrying enc as otrdesk relays it.
func encryptedMessage(from, to string, enc *omemo.Encrypted) string {
	return omemoxml.Message(from, to, omemoxml.FallbackBody, enc, "no-store")
}

// omemoFromVisitor decrypts what the attacker's devices can of a
// visitor's <encrypted/> element and relays it to the operator.
func (a *Attacker) omemoFromVisitor(ctx context.Context, st xmpptest.Stanza) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	alias, err := a.chatLocked(ctx, st.From)
	if err != nil {
		return err
	}
	defer a.changed()
	if st.HasBody {
		a.sent = append(a.sent, st.Body) // the fallback body, in plaintext
	}
	enc, ok := omemoxml.Encrypted(st.Raw)
	if !ok {
		a.logf("hostile: the visitor sent a malformed OMEMO element")
		return nil
	}
	seen := OMEMOMessage{SID: enc.SID}
	for _, k := range enc.Keys {
		seen.RIDs = append(seen.RIDs, k.RID)
	}
	a.omemoSeen = append(a.omemoSeen, seen)
	a.logf("hostile: visitor sent OMEMO from device %d with %d keys", enc.SID, len(enc.Keys))
	if st.From == a.visitor {
		for _, d := range a.devices {
			if !slices.Contains(seen.RIDs, d.ID()) {
				continue
			}
			m, err := d.Decrypt(bare(st.From), enc)
			if err != nil {
				a.logf("hostile: attacker device %d could not decrypt: %v", d.ID(), err)
				continue
			}
			if m.Plaintext != nil {
				a.omemoDecrypted = append(a.omemoDecrypted, string(m.Plaintext))
				a.logf("hostile: attacker device %d decrypted a visitor message (%d bytes)", d.ID(), len(m.Plaintext))
			}
		}
	}
	if a.cfg.Operator == "" {
		return nil
	}
	return a.raw(ctx, encryptedMessage(alias, a.cfg.Operator, enc))
}

// omemoFromOperator relays the operator's <encrypted/> element to the
// visitor behind alias.
func (a *Attacker) omemoFromOperator(ctx context.Context, alias string, st xmpptest.Stanza) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	visitor, ok := a.visitors[alias]
	if !ok {
		return nil
	}
	enc, ok := omemoxml.Encrypted(st.Raw)
	if !ok {
		return nil
	}
	a.opOMEMO++
	defer a.changed()
	a.logf("hostile: operator sent OMEMO from device %d with %d keys", enc.SID, len(enc.Keys))
	return a.raw(ctx, encryptedMessage(a.skin, visitor, enc))
}

// SayOMEMO sends text to the latest visitor's devices (the ones it handed
// over) from the attacker's device id, from the skin's address: a message
// that claims to be the operator's.
func (a *Attacker) SayOMEMO(ctx context.Context, id uint32, text string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	d := a.device(id)
	keys := a.keys[a.visitor]
	if a.visitor == "" {
		return ErrNoVisitor
	}
	if d == nil || keys == nil || len(keys.list) == 0 {
		return ErrNoDevice
	}
	var to []omemo.Recipient
	for _, v := range keys.list {
		r := omemo.Recipient{Address: omemo.Address{JID: bare(a.visitor), Device: v}}
		if !d.HasSession(r.Address) {
			if r.Bundle = keys.bundles[v]; r.Bundle == nil {
				continue
			}
		}
		to = append(to, r)
	}
	enc, err := d.Encrypt([]byte(text), to)
	if err != nil {
		return fmt.Errorf("hostile: OMEMO encrypting: %w", err)
	}
	return a.raw(ctx, encryptedMessage(a.skin, a.visitor, enc))
}
