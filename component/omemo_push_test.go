package component

import (
	"crypto/sha1"
	"encoding/base64"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"otrdesk.im/otrdesk/omemo/wire"
	"otrdesk.im/otrdesk/store"
)

// pushList sends the component a PEP event with a device list, as an
// operator's server does, and returns what the component sent.
func (f *fixture) pushList(from string, payload []byte) []sentStanza {
	f.t.Helper()
	f.in(`<message xmlns='jabber:component:accept' from='%s' to='%s' type='headline' id='ev1'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='%s'><item id='current'>%s</item></items></event></message>`,
		from, skinJID, wire.DeviceListNode, payload)
	return f.sent()
}

var deviceRE = regexp.MustCompile(`<device id="(\d+)">`)

// widgetDevices is the operator's device list as the visitor's widget gets
// it from the skin.
func (f *fixture) widgetDevices() []string {
	f.t.Helper()
	got := f.getItems(visitor, skinJID, wire.DeviceListNode)
	if got.typ != "result" {
		f.t.Fatalf("operator device list: %s", got.raw)
	}
	ids := []string{}
	for _, m := range deviceRE.FindAllStringSubmatch(got.raw, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func TestOMEMOPushedDeviceList(t *testing.T) {
	f, _, _ := omemoChat(t, store.PolicyOpportunistic)
	if err := f.st.PutDevice(store.TrustedDevice{Skin: "help", Account: opBare1, Device: 9}); err != nil {
		t.Fatal(err)
	}
	if got := f.widgetDevices(); !slices.Equal(got, []string{"7"}) {
		t.Fatalf("before the push the widget gets %v, want [7]", got)
	}

	// The operator adds device 9 (trusted) and removes 7: the component
	// reads the new device's bundle only, and the widget's request waits
	// for it.
	out := f.pushList(opBare1, wire.DeviceList{8, 9}.Marshal())
	asked := only(t, out, func(s sentStanza) bool { return s.name == "iq" })
	if asked.to != opBare1 || asked.from != skinJID || !strings.Contains(asked.raw, `node="`+wire.BundleNode(9)+`"`) {
		t.Fatalf("after the push the component asked %s", asked.raw)
	}
	f.in(`<iq xmlns='jabber:component:accept' type='get' from='%s' to='%s' id='get1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='%s'/></pubsub></iq>`,
		visitor, skinJID, wire.DeviceListNode)
	if early := f.sent(); len(early) != 0 {
		t.Fatalf("answered before the new device's bundle was read: %+v", early)
	}
	out = f.answerPEP(out, opBare1, nil, map[uint32]*wire.Bundle{9: testBundle(90)})
	got := one(t, out, func(s sentStanza) bool { return s.id == "get1" })
	if ids := deviceRE.FindAllStringSubmatch(got.raw, -1); len(ids) != 1 || ids[0][1] != "9" {
		t.Fatalf("after the push the widget got %s, want device 9 only", got.raw)
	}
	if got := f.getBundle(visitor, skinJID, 7, opBare1, map[uint32]*wire.Bundle{7: testBundle(70)}); got.errCond != "item-not-found" {
		t.Fatalf("the bundle of a removed device was served: %s", got.raw)
	}
	b9 := base64.StdEncoding.EncodeToString(testBundle(90).IdentityKey.Wire())
	if got := f.getBundle(visitor, skinJID, 9, opBare1, map[uint32]*wire.Bundle{9: testBundle(90)}); got.typ != "result" || !strings.Contains(got.raw, b9) {
		t.Fatalf("the bundle of the new device: %s", got.raw)
	}

	// Removing a device needs no request: the next answer lacks it.
	if out := f.pushList(opBare1, wire.DeviceList{8}.Marshal()); len(out) != 0 {
		t.Fatalf("a removal sent %+v", out)
	}
	if got := f.widgetDevices(); len(got) != 0 {
		t.Fatalf("after removing 9 the widget gets %v", got)
	}
}

func TestOMEMOPushedDeviceListRefused(t *testing.T) {
	f, _, _ := omemoChat(t, store.PolicyOpportunistic)
	for _, tc := range []struct {
		name    string
		from    string
		payload string
		reason  dropReason
	}{
		{"device id not a number", opBare1, `<list xmlns='eu.siacs.conversations.axolotl'><device id='x'/></list>`, dropBadDeviceListEvent},
		{"device id zero", opBare1, `<list xmlns='eu.siacs.conversations.axolotl'><device id='0'/></list>`, dropBadDeviceListEvent},
		{"not a list", opBare1, `<bundle xmlns='eu.siacs.conversations.axolotl'/>`, dropBadDeviceListEvent},
		{"too many devices", opBare1, string(manyDevices(wire.MaxDevices + 1)), dropBadDeviceListEvent},
		{"not an operator of the skin", "op2@example.org", string(wire.DeviceList{5}.Marshal()), dropUnexpectedEvent},
		{"a resource, not the account", op1, string(wire.DeviceList{5}.Marshal()), dropUnexpectedEvent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := testutilDrops(f, tc.reason)
			if out := f.pushList(tc.from, []byte(tc.payload)); len(out) != 0 {
				t.Fatalf("an event was answered or acted on: %+v", out)
			}
			if got := testutilDrops(f, tc.reason) - before; got != 1 {
				t.Fatalf("counted %v times as %s, want once", got, tc.reason)
			}
			if got := f.widgetDevices(); !slices.Equal(got, []string{"7"}) {
				t.Fatalf("the widget now gets %v, want [7] as read", got)
			}
		})
	}
	// Another node is not a device list.
	before := testutilDrops(f, dropUnexpectedEvent)
	f.in(`<message xmlns='jabber:component:accept' from='%s' to='%s' type='headline'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:avatar:metadata'><item id='a'><metadata xmlns='urn:xmpp:avatar:metadata'/></item></items></event></message>`,
		opBare1, skinJID)
	if out := f.sent(); len(out) != 0 || testutilDrops(f, dropUnexpectedEvent)-before != 1 {
		t.Fatalf("another node: sent %+v", out)
	}
}

func manyDevices(n int) []byte {
	var b strings.Builder
	b.WriteString(`<list xmlns='eu.siacs.conversations.axolotl'>`)
	for i := 1; i <= n; i++ {
		b.WriteString(`<device id='` + strconv.Itoa(i) + `'/>`)
	}
	b.WriteString(`</list>`)
	return []byte(b.String())
}

// TestSkinCaps checks what makes the operator's server push: the skin's
// presence carries entity capabilities whose verification string is the
// hash of what the skin's disco#info answers (computed here as XEP-0115
// says), and that answer asks for device-list notifications.
func TestSkinCaps(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin(opBare1))
	// Approving the subscription makes the skin announce itself again.
	f.in(`<presence xmlns='jabber:component:accept' from='%s' to='%s' type='subscribed'/>`, opBare1, skinJID)
	pres := only(t, f.sent(), func(s sentStanza) bool { return s.name == "presence" && s.to == opBare1 })
	m := regexp.MustCompile(`<c xmlns="http://jabber.org/protocol/caps" hash="sha-1" node="([^"]+)" ver="([^"]+)">`).FindStringSubmatch(pres.raw)
	if m == nil {
		t.Fatalf("skin presence without caps: %s", pres.raw)
	}
	node, ver := m[1], m[2]

	f.in(`<iq xmlns='jabber:component:accept' type='get' from='%s' to='%s' id='disco'><query xmlns='http://jabber.org/protocol/disco#info' node='%s#%s'/></iq>`,
		opBare1, skinJID, node, ver)
	got := one(t, f.sent(), func(s sentStanza) bool { return s.id == "disco" })
	if got.typ != "result" || !strings.Contains(got.raw, `node="`+node+`#`+ver+`"`) {
		t.Fatalf("disco#info of the caps node: %s", got.raw)
	}
	idm := regexp.MustCompile(`<identity category="([^"]*)" type="([^"]*)" name="([^"]*)">`).FindStringSubmatch(got.raw)
	if idm == nil {
		t.Fatalf("no identity: %s", got.raw)
	}
	var feats []string
	for _, fm := range regexp.MustCompile(`<feature var="([^"]+)">`).FindAllStringSubmatch(got.raw, -1) {
		feats = append(feats, fm[1])
	}
	if !slices.Contains(feats, wire.DeviceListNode+"+notify") {
		t.Fatalf("the skin does not ask for device-list notifications: %v", feats)
	}
	sort.Strings(feats)
	s := idm[1] + "/" + idm[2] + "//" + idm[3] + "<" + strings.Join(feats, "<") + "<"
	sum := sha1.Sum([]byte(s))
	if want := base64.StdEncoding.EncodeToString(sum[:]); ver != want {
		t.Fatalf("caps ver %s, the disco#info answer hashes to %s", ver, want)
	}
	// A node of another version is not ours.
	f.in(`<iq xmlns='jabber:component:accept' type='get' from='%s' to='%s' id='disco2'><query xmlns='http://jabber.org/protocol/disco#info' node='%s#AAAA'/></iq>`,
		opBare1, skinJID, node)
	if got := one(t, f.sent(), func(s sentStanza) bool { return s.id == "disco2" }); got.typ != "error" {
		t.Fatalf("disco#info of an unknown node: %s", got.raw)
	}
}

// FuzzPEPEvent feeds arbitrary device lists, pushed by the operator's
// server, to a router whose read of the operator's devices is in use.
func FuzzPEPEvent(f *testing.F) {
	for _, s := range []string{
		string(wire.DeviceList{7, 9}.Marshal()),
		`<list xmlns='eu.siacs.conversations.axolotl'/>`,
		`<list xmlns='eu.siacs.conversations.axolotl'><device id='4294967296'/></list>`,
		`<list xmlns='eu.siacs.conversations.axolotl'><device id='7'/><device id='7'/></list>`,
		`</item><item id='2'>`,
	} {
		f.Add(s)
	}
	fx, _, _ := omemoChat(f, store.PolicyOpportunistic)
	f.Fuzz(func(t *testing.T, payload string) {
		el, err := parseElem(`<message xmlns='jabber:component:accept' from='`+opBare1+`' to='`+skinJID+`' type='headline'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='`+wire.DeviceListNode+`'><item id='current'>`+payload+`</item></items></event></message>`, 4096)
		if err != nil {
			return
		}
		fx.c.r.handle(evStanza{el: el})
		fx.cap.take()
		if fx.c.r.failures != 0 {
			t.Fatalf("handling a pushed list %q panicked", payload)
		}
	})
}
