package component

import (
	"slices"

	"mellium.im/xmpp/jid"

	"otrdesk.im/otrdesk/omemo/wire"
)

// Pushed device lists. An operator's device list changes when the operator
// adds a client (a new phone) or removes one (a lost laptop). The component
// learns it at once instead of at the next read:
//
//	skin ──presence + <c node=… ver=…/>──▶ operator's server     (presence.go)
//	skin ◀──disco#info node='…#ver'────── operator's server
//	skin ──features: …devicelist+notify──▶                       (iq.go)
//	skin ◀──<message><event><items node='…devicelist'><item><list/>… (now and at each change)
//
// The server sends the event from the operator's bare JID to each skin that
// holds a presence subscription to the operator (PEP's "presence" access
// model) and announced the +notify feature (XEP-0163 filtered
// notifications). A pushed list corrects the read of that operator's
// devices made for that skin, if one is in use: a device no longer listed
// is no longer given to widgets from that moment, and the bundle of a new
// one is read (it becomes usable once the skin trusts it). Without a read
// in use there is nothing to correct: the next assignment reads anyway.

// pepEvent takes a PEP event sent to one of the component's addresses:
// only an operator's OMEMO device list, from the operator's account to a
// skin it serves, is used. Events are never answered.
func (r *router) pepEvent(el, ev *elem, from, to jid.JID) {
	skin, account := r.skinOf(to), from.Bare().String()
	sk, ok := r.skins[skin]
	items := ev.child(nsPubSubEvent, "items")
	if !ok || from.Resourcepart() != "" || !slices.Contains(sk.Operators, account) ||
		items == nil || items.get("node") != wire.DeviceListNode {
		r.m.drop(dropUnexpectedEvent)
		return
	}
	var payload *elem
	n := 0
	for _, it := range items.kids {
		if it.name.Space == nsPubSubEvent && it.name.Local == "item" {
			n++
			if len(it.kids) == 1 {
				payload = it.kids[0]
			}
		}
	}
	if n == 0 {
		// A retraction or an empty notification: the list itself did
		// not come, so nothing is learned from it.
		r.m.drop(dropUnexpectedEvent)
		return
	}
	if n != 1 || payload == nil || el.truncated {
		r.m.drop(dropBadDeviceListEvent)
		return
	}
	list, err := wire.ParseDeviceList(elemXML(payload))
	if err != nil {
		r.m.drop(dropBadDeviceListEvent)
		return
	}
	r.devicesPushed(skin, account, list)
}

// devicesPushed corrects the read of an operator's devices for a skin with
// the list the operator's server pushed. Bundles already read are kept for
// the devices still listed; those of new devices are read now, and widget
// requests wait for them. Requests that waited for a read still under way
// get the corrected one.
func (r *router) devicesPushed(skin, account string, list wire.DeviceList) {
	key := skin + "\x00" + account
	old := r.omemo.reads[key]
	if old == nil || old.done && (old.err != nil || r.now().Sub(old.at) >= r.omemo.fresh) {
		return // no read in use: the next one reads the new list
	}
	if old.done && slices.Equal(old.list, list) {
		return
	}
	f := &opDevices{skin: skin, account: account, list: list, bundles: map[uint32]*wire.Bundle{}}
	if old.done {
		f.at = old.at
	}
	f.waiters, old.waiters = old.waiters, nil
	r.omemo.reads[key] = f
	r.readBundles(f, old.bundles)
}
