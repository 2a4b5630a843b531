package component

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"otrdesk.im/otrdesk/omemo/wire"
	"otrdesk.im/otrdesk/store"
)

// OMEMO through the router: the widget hands over its keys, the operator's
// devices are read as the skin, the skin's trust filters what the widget
// gets, and <encrypted/> crosses both ways under the alias.

const opBare1 = "op1@example.org"

// testBundle is a bundle whose keys are filled with seed (the component
// checks form, not cryptography).
func testBundle(seed byte) *wire.Bundle {
	b := &wire.Bundle{SignedPreKeyID: 1, PreKeys: []wire.PreKey{{ID: 1}, {ID: 2}}}
	for i := range b.IdentityKey {
		b.IdentityKey[i] = seed
		b.SignedPreKey[i] = seed + 1
		b.PreKeys[0].Key[i], b.PreKeys[1].Key[i] = seed+2, seed+3
	}
	b.Signature[0] = seed
	return b
}

// publish hands the component a PEP item from the visitor, as the widget
// does, and returns what the component answered.
func (f *fixture) publish(from, node string, payload []byte) []sentStanza {
	f.t.Helper()
	f.in(`<iq xmlns='jabber:component:accept' type='set' from='%s' to='%s' id='pub1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='%s'><item id='current'>%s</item></publish></pubsub></iq>`,
		from, skinJID, node, payload)
	return f.sent()
}

// handOver publishes a visitor device's list and bundle.
func (f *fixture) handOver(from string, device uint32, seed byte) {
	f.t.Helper()
	for _, out := range [][]sentStanza{
		f.publish(from, wire.DeviceListNode, wire.DeviceList{device}.Marshal()),
		f.publish(from, wire.BundleNode(device), testBundle(seed).Marshal()),
	} {
		if len(out) != 1 || out[0].typ != "result" || out[0].to != from || out[0].from != skinJID {
			f.t.Fatalf("hand-over answered %+v", out)
		}
	}
}

// getItems asks for a PEP node as from at to and returns the answer.
func (f *fixture) getItems(from, to, node string) sentStanza {
	f.t.Helper()
	f.in(`<iq xmlns='jabber:component:accept' type='get' from='%s' to='%s' id='get1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='%s'/></pubsub></iq>`,
		from, to, node)
	return one(f.t, f.sent(), func(s sentStanza) bool { return s.name == "iq" && s.id == "get1" })
}

// getBundle asks the skin for an operator's bundle as the widget does;
// the component reads it afresh from the operator's account, which
// answers with bundles (as answerPEP does).
func (f *fixture) getBundle(from, to string, id uint32, account string, bundles map[uint32]*wire.Bundle) sentStanza {
	f.t.Helper()
	f.in(`<iq xmlns='jabber:component:accept' type='get' from='%s' to='%s' id='get1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='%s'/></pubsub></iq>`,
		from, to, wire.BundleNode(id))
	out := f.answerPEP(f.sent(), account, nil, bundles)
	return one(f.t, out, func(s sentStanza) bool { return s.name == "iq" && s.id == "get1" })
}

var nodeRE = regexp.MustCompile(`node="([^"]+)"`)

// answerPEP answers every PEP request the component sent to the operator
// account as the operator's server would: the device list and bundles
// given (a missing bundle gets item-not-found). It returns what else was
// sent.
func (f *fixture) answerPEP(out []sentStanza, account string, list wire.DeviceList, bundles map[uint32]*wire.Bundle) []sentStanza {
	f.t.Helper()
	for round := 0; round < 4; round++ {
		var rest []sentStanza
		asked := 0
		for _, s := range out {
			if s.name != "iq" || s.to != account || s.typ != "get" {
				rest = append(rest, s)
				continue
			}
			asked++
			if !strings.HasPrefix(s.from, "help@") {
				f.t.Errorf("operator's devices read as %q, not as the skin", s.from)
			}
			node := nodeRE.FindStringSubmatch(s.raw)[1]
			var payload []byte
			if node == wire.DeviceListNode {
				payload = list.Marshal()
			} else {
				var id uint32
				fmt.Sscanf(strings.TrimPrefix(node, wire.NS+".bundles:"), "%d", &id)
				if b := bundles[id]; b != nil {
					payload = b.Marshal()
				}
			}
			if payload == nil {
				f.in(`<iq xmlns='jabber:component:accept' type='error' from='%s' to='%s' id='%s'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`, account, s.from, s.id)
				continue
			}
			f.in(`<iq xmlns='jabber:component:accept' type='result' from='%s' to='%s' id='%s'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='%s'><item id='current'>%s</item></items></pubsub></iq>`,
				account, s.from, s.id, node, payload)
		}
		if asked == 0 {
			return rest
		}
		out = append(rest, f.sent()...)
	}
	f.t.Fatal("the component keeps asking")
	return nil
}

// omemoChat starts a chat whose visitor handed over device 1001 and whose
// operator op1 has devices 7 (trusted) and 8 (not trusted); it returns the
// alias and what the start sent (PEP requests answered).
func omemoChat(t testing.TB, policy store.Policy) (*fixture, string, []sentStanza) {
	sk := helpSkin(opBare1)
	sk.Policy = policy
	f := newFixture(t, Config{}, sk)
	if err := f.st.PutDevice(store.TrustedDevice{Skin: "help", Account: opBare1, Device: 7}); err != nil {
		t.Fatal(err)
	}
	f.online(op1, "", 0)
	f.sent()
	f.handOver(visitor, 1001, 40)
	f.msg(visitor, skinJID, "?OTRv23?")
	out := f.answerPEP(f.sent(), opBare1, wire.DeviceList{7, 8}, map[uint32]*wire.Bundle{7: testBundle(70), 8: testBundle(80)})
	st := one(t, out, func(s sentStanza) bool { return s.status != nil })
	if st.status["state"] != stateAssigned || st.status["e2ee"] != e2eeOMEMO {
		t.Fatalf("status %v, want assigned with e2ee='omemo'", st.status)
	}
	var alias string
	for _, s := range out {
		if s.to == op1 || s.to == opBare1 {
			alias = s.from
		}
	}
	return f, alias, out
}

func TestOMEMOChatStart(t *testing.T) {
	f, alias, out := omemoChat(t, store.PolicyOpportunistic)
	// The operator gets the notice, and the alias's device list as a PEP
	// event to the account (every device of it), but not the widget's OTR
	// query: its client does not speak OTR in this chat.
	ev := only(t, out, func(s sentStanza) bool { return s.typ == "headline" })
	if ev.to != opBare1 || ev.from != alias ||
		!strings.Contains(ev.raw, `<event xmlns="http://jabber.org/protocol/pubsub#event"><items node="eu.siacs.conversations.axolotl.devicelist">`) ||
		!strings.Contains(ev.raw, `<device id="1001">`) {
		t.Fatalf("device list event: %s", ev.raw)
	}
	if got := bodiesTo(out, op1); len(got) != 1 || !strings.HasPrefix(got[0], "New chat on Help desk") {
		t.Fatalf("bodies to the operator: %q", got)
	}
	for _, s := range out {
		if s.to != visitor && strings.Contains(s.raw, "guest.example.org") {
			t.Errorf("the visitor's real JID went out: %s", s.raw)
		}
	}
	// The alias's PEP: the visitor's keys, to any device of the pinned
	// operator's account.
	got := f.getItems("op1@example.org/phone", alias, wire.DeviceListNode)
	if got.typ != "result" || got.from != alias || !strings.Contains(got.raw, `<list xmlns="eu.siacs.conversations.axolotl"><device id="1001">`) {
		t.Fatalf("alias device list: %s", got.raw)
	}
	got = f.getItems(op1, alias, wire.BundleNode(1001))
	b64 := base64.StdEncoding.EncodeToString(testBundle(40).IdentityKey.Wire())
	if got.typ != "result" || !strings.Contains(got.raw, b64) {
		t.Fatalf("alias bundle: %s", got.raw)
	}
	if got := f.getItems(op1, alias, wire.BundleNode(1002)); got.errCond != "item-not-found" {
		t.Fatalf("bundle of a device the visitor does not have: %s", got.raw)
	}
	// Nobody else reads them, not even whether there are any.
	if got := f.getItems("op2@example.org/laptop", alias, wire.DeviceListNode); got.errCond != "item-not-found" {
		t.Fatalf("another account read the alias's keys: %s", got.raw)
	}
}

func TestOMEMOTrustFiltering(t *testing.T) {
	sk := helpSkin(opBare1)
	f := newFixture(t, Config{}, sk)
	fp := testBundle(20).IdentityKey
	wrong := testBundle(99).IdentityKey
	for _, d := range []store.TrustedDevice{
		{Skin: "help", Account: opBare1, Device: 1},                     // any key
		{Skin: "help", Account: opBare1, Device: 2, Fingerprint: fp[:]}, // this key, which it shows
		{Skin: "help", Account: opBare1, Device: 3, Fingerprint: wrong[:]},
		{Skin: "help", Account: opBare1, Device: 4}, // no longer listed
		{Skin: "help", Account: opBare1, Device: 6}, // listed, bundle unreadable
	} {
		if err := f.st.PutDevice(d); err != nil {
			t.Fatal(err)
		}
	}
	f.online(op1, "", 0)
	f.handOver(visitor, 1001, 40)
	f.msg(visitor, skinJID, "?OTRv23?")
	bundles := map[uint32]*wire.Bundle{1: testBundle(10), 2: testBundle(20), 3: testBundle(30), 5: testBundle(50)}
	f.answerPEP(f.sent(), opBare1, wire.DeviceList{1, 2, 3, 5, 6}, bundles)

	got := f.getItems(visitor, skinJID, wire.DeviceListNode)
	if got.typ != "result" || got.from != skinJID {
		t.Fatalf("operator device list: %s", got.raw)
	}
	var ids []string
	for _, m := range regexp.MustCompile(`<device id="(\d+)">`).FindAllStringSubmatch(got.raw, -1) {
		ids = append(ids, m[1])
	}
	if !slices.Equal(ids, []string{"1", "2"}) {
		t.Fatalf("the widget was given devices %v, want the trusted and usable 1 and 2 (%s)", ids, got.raw)
	}
	for id, want := range map[uint32]bool{1: true, 2: true, 3: false, 4: false, 5: false, 6: false} {
		got := f.getBundle(visitor, skinJID, id, opBare1, bundles)
		if (got.typ == "result") != want {
			t.Errorf("bundle of device %d: %s", id, got.raw)
		}
		if want && !strings.Contains(got.raw, base64.StdEncoding.EncodeToString(bundles[id].IdentityKey.Wire())) {
			t.Errorf("bundle of device %d is not the operator's: %s", id, got.raw)
		}
		if strings.Contains(got.raw, "op1") {
			t.Errorf("the operator's JID went to the visitor: %s", got.raw)
		}
	}
	// Another visitor, with no chat, gets nothing.
	if got := f.getItems(visitor2, skinJID, wire.DeviceListNode); got.errCond != "item-not-found" {
		t.Fatalf("a stranger read the operator's devices: %s", got.raw)
	}
	// A read that shows no usable trusted device makes the next chat OTR.
	if err := f.st.DeleteDevice("help", opBare1, 1); err != nil {
		t.Fatal(err)
	}
	if err := f.st.DeleteDevice("help", opBare1, 2); err != nil {
		t.Fatal(err)
	}
	f.handOver(visitor2, 2002, 41)
	f.msg(visitor2, skinJID, "?OTRv23?")
	st := only(t, f.sent(), func(s sentStanza) bool { return s.status != nil })
	if st.status["e2ee"] != e2eeOTR {
		t.Fatalf("status %v: the operator's trusted devices are unusable, want otr", st.status)
	}
}

func TestOMEMOBundleReadAfresh(t *testing.T) {
	sk := helpSkin(opBare1)
	f := newFixture(t, Config{}, sk)
	fp := testBundle(20).IdentityKey
	if err := f.st.PutDevice(store.TrustedDevice{Skin: "help", Account: opBare1, Device: 2, Fingerprint: fp[:]}); err != nil {
		t.Fatal(err)
	}
	f.online(op1, "", 0)
	f.handOver(visitor, 1001, 40)
	f.msg(visitor, skinJID, "?OTRv23?")
	f.answerPEP(f.sent(), opBare1, wire.DeviceList{2}, map[uint32]*wire.Bundle{2: testBundle(20)})
	// A bundle goes out as the device publishes it now, although the
	// device list comes from the read: a one-time prekey another visitor
	// used up since is not offered (here prekey 1, replaced by 3).
	now := testBundle(20)
	now.PreKeys[0].ID = 3
	now.PreKeys[0].Key[0] ^= 0xff
	got := f.getBundle(visitor, skinJID, 2, opBare1, map[uint32]*wire.Bundle{2: now})
	if got.typ != "result" || !strings.Contains(got.raw, `preKeyId="3"`) || strings.Contains(got.raw, `preKeyId="1"`) {
		t.Fatalf("the bundle of device 2 is not the one it publishes now: %s", got.raw)
	}
	// A device that now shows another identity key than the one the read
	// checked against the skin's trust is not handed out.
	if got := f.getBundle(visitor, skinJID, 2, opBare1, map[uint32]*wire.Bundle{2: testBundle(98)}); got.errCond != "item-not-found" {
		t.Fatalf("a bundle with another identity key was served: %s", got.raw)
	}
}

func TestOMEMOPickedOnlyWithKeysAndTrust(t *testing.T) {
	for _, tc := range []struct {
		name    string
		keys    bool
		trusted bool
		want    string
	}{
		{"keys and trust", true, true, e2eeOMEMO},
		{"no keys handed over", false, true, e2eeOTR},
		{"no trusted device", true, false, e2eeOTR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{}, helpSkin(opBare1))
			if tc.trusted {
				if err := f.st.PutDevice(store.TrustedDevice{Skin: "help", Account: opBare1, Device: 7}); err != nil {
					t.Fatal(err)
				}
			}
			f.online(op1, "", 0)
			if tc.keys {
				f.handOver(visitor, 1001, 40)
			}
			f.msg(visitor, skinJID, "?OTRv23?")
			out := f.sent()
			st := only(t, out, func(s sentStanza) bool { return s.status != nil })
			if st.status["e2ee"] != tc.want {
				t.Fatalf("e2ee %q, want %q", st.status["e2ee"], tc.want)
			}
			// In an OTR chat the query reaches the operator.
			if q := slices.Contains(bodiesTo(out, op1), "?OTRv23?"); q != (tc.want == e2eeOTR) {
				t.Fatalf("OTR query relayed: %v", q)
			}
		})
	}
}

// encryptedXML is an OMEMO message as Conversations writes it: encrypted
// element, EME, store hint and fallback body.
func encryptedXML(from, to string, sid, rid uint32, payload []byte) string {
	e := &wire.Encrypted{SID: sid, Keys: []wire.Key{{RID: rid, PreKey: true, Data: []byte("key material")}}, IV: make([]byte, 12), Payload: payload}
	return fmt.Sprintf(`<message xmlns='jabber:component:accept' from='%s' to='%s' type='chat' id='o1'>`+
		`<body>I sent you an OMEMO encrypted message but your client doesn’t seem to support that.</body>%s`+
		`<encryption xmlns='urn:xmpp:eme:0' namespace='eu.siacs.conversations.axolotl' name='OMEMO'/>`+
		`<store xmlns='urn:xmpp:hints'/><request xmlns='urn:xmpp:receipts'/></message>`, from, to, e.Marshal())
}

func TestOMEMORelayBothWays(t *testing.T) {
	for _, policy := range []store.Policy{store.PolicyOpportunistic, store.PolicyRequire} {
		t.Run(string(policy), func(t *testing.T) {
			f, alias, _ := omemoChat(t, policy)
			payload := []byte("ciphertext bytes")
			f.in("%s", encryptedXML(visitor, skinJID, 1001, 7, payload))
			out := f.sent()
			s := only(t, out, func(s sentStanza) bool { return s.to == op1 })
			pb := base64.StdEncoding.EncodeToString(payload)
			for _, want := range []string{
				`<encrypted xmlns="eu.siacs.conversations.axolotl"><header sid="1001"><key prekey="true" rid="7">`,
				`<payload>` + pb + `</payload>`,
				`<encryption xmlns="urn:xmpp:eme:0" namespace="eu.siacs.conversations.axolotl" name="OMEMO">`,
				`<no-store xmlns="urn:xmpp:hints">`, `<request xmlns="urn:xmpp:receipts">`,
			} {
				if !strings.Contains(s.raw, want) {
					t.Errorf("to the operator, missing %s in %s", want, s.raw)
				}
			}
			// Carbons may copy it to the operator's other devices; the
			// visitor's store hint is not relayed.
			for _, bad := range []string{"no-copy", "carbons", `<store `, "guest.example.org", "k3j2abc"} {
				if strings.Contains(s.raw, bad) {
					t.Errorf("to the operator, %q in %s", bad, s.raw)
				}
			}
			if s.from != alias || s.body == nil || !strings.Contains(*s.body, "OMEMO") {
				t.Errorf("to the operator: %+v", s)
			}
			// The operator answers from its phone, another resource of the
			// same account: it reaches the visitor, and the chat stays
			// pinned where it was.
			f.in("%s", encryptedXML("op1@example.org/phone", alias, 7, 1001, []byte("reply")))
			back := only(t, f.sent(), func(s sentStanza) bool { return s.to == visitor })
			if back.from != skinJID || !strings.Contains(back.raw, `<header sid="7">`) || strings.Contains(back.raw, "op1") {
				t.Fatalf("to the visitor: %s", back.raw)
			}
			var pinned string
			f.c.r.handle(evFunc(func(r *router) { pinned = r.byReal[realKey("help", visitor)].rec.Operator }))
			if pinned != op1 {
				t.Fatalf("an OMEMO reply re-pinned the chat to %s", pinned)
			}
			// Key transport (no payload, no body) crosses too.
			kt := &wire.Encrypted{SID: 7, Keys: []wire.Key{{RID: 1001, Data: []byte{1}}}, IV: make([]byte, 12)}
			f.in(`<message xmlns='jabber:component:accept' from='%s' to='%s' type='chat'>%s</message>`, op1, alias, kt.Marshal())
			only(t, f.sent(), func(s sentStanza) bool { return s.to == visitor && strings.Contains(s.raw, "<encrypted") })
			// Plaintext is still plaintext.
			f.msg(visitor, skinJID, "in clear")
			got := bodiesTo(f.sent(), op1)
			if refused := !slices.Contains(got, "in clear"); refused != (policy == store.PolicyRequire) {
				t.Fatalf("policy %s: plaintext refused = %v", policy, refused)
			}
			if v := testutilDrops(f, dropPlaintextRefused); (v > 0) != (policy == store.PolicyRequire) {
				t.Fatalf("plaintext-refused drops %v", v)
			}
			if v := testutilRelayed(f, "to-operator", "omemo"); v != 1 {
				t.Fatalf("relayed OMEMO to the operator counted %v times, want 1", v)
			}
		})
	}
}

func TestOMEMOLimits(t *testing.T) {
	f, alias, _ := omemoChat(t, store.PolicyOpportunistic)
	// A payload over max_body_bytes.
	f.in("%s", encryptedXML(visitor, skinJID, 1001, 7, bytes.Repeat([]byte{1}, DefaultMaxBodyBytes+1)))
	out := f.sent()
	if s := only(t, out, func(s sentStanza) bool { return s.to == visitor }); s.errCond != "policy-violation" {
		t.Fatalf("oversized payload: %s", s.raw)
	}
	// Malformed: two IVs; a key without rid; from either side.
	for _, bad := range []string{
		`<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='7'>AQ==</key><iv>AAAAAAAAAAAAAAAA</iv><iv>AAAAAAAAAAAAAAAA</iv></header></encrypted>`,
		`<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key>AQ==</key><iv>AAAAAAAAAAAAAAAA</iv></header></encrypted>`,
	} {
		f.in(`<message xmlns='jabber:component:accept' from='%s' to='%s' type='chat' id='b'><body>fallback</body>%s</message>`, visitor, skinJID, bad)
		out := f.sent()
		if len(out) != 1 || out[0].to != visitor || out[0].errCond != "bad-request" {
			t.Fatalf("malformed from the visitor: %+v", out)
		}
		f.in(`<message xmlns='jabber:component:accept' from='%s' to='%s' type='chat' id='b'>%s</message>`, op1, alias, bad)
		out = f.sent()
		if len(out) != 1 || out[0].to != op1 || out[0].errCond != "bad-request" {
			t.Fatalf("malformed from the operator: %+v", out)
		}
	}
	// The visitor's message rate counts OMEMO messages.
	n := 0
	for i := 0; i < DefaultGuestMessagesPerMinute+5; i++ {
		f.in("%s", encryptedXML(visitor, skinJID, 1001, 7, []byte("x")))
		for _, s := range f.sent() {
			if s.to == visitor && s.errCond == "policy-violation" {
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("no OMEMO message was refused over guest_messages_per_minute")
	}
}

func TestOMEMOHandOverBounds(t *testing.T) {
	f := newFixture(t, Config{GuestsPerSkin: 2}, helpSkin(opBare1))
	many := wire.DeviceList{1, 2, 3, 4, 5}
	if out := f.publish(visitor, wire.DeviceListNode, many.Marshal()); out[0].errCond != "not-acceptable" {
		t.Fatalf("a list of %d devices: %s", len(many), out[0].raw)
	}
	if out := f.publish(visitor, "urn:example:other", []byte(`<x xmlns='urn:example'/>`)); out[0].errCond != "not-acceptable" {
		t.Fatalf("another node: %s", out[0].raw)
	}
	if out := f.publish(visitor, wire.BundleNode(5), []byte(`<bundle xmlns='eu.siacs.conversations.axolotl'/>`)); out[0].errCond != "not-acceptable" {
		t.Fatalf("a malformed bundle: %s", out[0].raw)
	}
	big := testBundle(5)
	for i := len(big.PreKeys); i <= maxVisitorPreKeys; i++ {
		big.PreKeys = append(big.PreKeys, wire.PreKey{ID: uint32(i + 1)})
	}
	if out := f.publish(visitor, wire.BundleNode(5), big.Marshal()); out[0].errCond != "not-acceptable" {
		t.Fatalf("a bundle of %d prekeys: %s", len(big.PreKeys), out[0].raw)
	}
	for i := uint32(1); i <= maxVisitorDevices; i++ {
		if out := f.publish(visitor, wire.BundleNode(i), testBundle(byte(i)).Marshal()); out[0].typ != "result" {
			t.Fatalf("bundle %d: %s", i, out[0].raw)
		}
	}
	if out := f.publish(visitor, wire.BundleNode(99), testBundle(9).Marshal()); out[0].errCond != "not-acceptable" {
		t.Fatalf("a fifth bundle: %s", out[0].raw)
	}
	// Keys waiting for a chat are bounded (guests_per_skin) and expire.
	f.handOver(visitor2, 1, 1)
	if out := f.publish("third@guest.example.org/x", wire.DeviceListNode, wire.DeviceList{1}.Marshal()); out[0].errCond != "not-acceptable" {
		t.Fatalf("keys beyond the bound: %s", out[0].raw)
	}
	f.now = f.now.Add(pendingKeysTTL)
	f.c.r.expire(f.now)
	var pending int
	f.c.r.handle(evFunc(func(r *router) { pending = len(r.omemo.pending) }))
	if pending != 0 {
		t.Fatalf("%d visitors' keys outlived their wait", pending)
	}
}

func TestOperatorDevices(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin(opBare1))
	var got []OperatorDevice
	var gotErr error
	answered := false
	f.c.r.handle(evFunc(func(r *router) {
		r.operatorDevices(opBare1, func(d []OperatorDevice, err error) { got, gotErr, answered = d, err, true })
	}))
	f.answerPEP(f.sent(), opBare1, wire.DeviceList{7, 8}, map[uint32]*wire.Bundle{7: testBundle(70)})
	if !answered || gotErr != nil || len(got) != 2 || got[0].ID != 7 || !got[0].HasBundle ||
		got[0].Fingerprint != testBundle(70).IdentityKey.Fingerprint() || got[1].HasBundle {
		t.Fatalf("OperatorDevices = %+v, %v (answered %v)", got, gotErr, answered)
	}
	// Not an operator of any skin.
	f.c.r.handle(evFunc(func(r *router) {
		r.operatorDevices("nobody@example.org", func(d []OperatorDevice, err error) { gotErr = err })
	}))
	if gotErr == nil || !strings.Contains(gotErr.Error(), "not an operator") {
		t.Fatalf("a stranger's devices: %v", gotErr)
	}
	// An account that never answers: the read fails after iqTimeout.
	f.now = f.now.Add(devicesFresh)
	answered = false
	f.c.r.handle(evFunc(func(r *router) {
		r.operatorDevices(opBare1, func(d []OperatorDevice, err error) { gotErr, answered = err, true })
	}))
	f.sent()
	f.now = f.now.Add(iqTimeout + time.Second)
	f.c.r.expire(f.now)
	if !answered || gotErr == nil {
		t.Fatalf("no answer: answered %v, %v", answered, gotErr)
	}
}

func testutilDrops(f *fixture, d dropReason) float64 {
	return testutil.ToFloat64(f.c.m.dropsC.WithLabelValues(d.String()))
}

func testutilRelayed(f *fixture, direction, kind string) float64 {
	return testutil.ToFloat64(f.c.m.relayedC.WithLabelValues(direction, kind))
}

// FuzzOMEMOStanza feeds the router OMEMO stanzas of every kind, with a
// chat in OMEMO and the operator's devices being read: nothing panics.
func FuzzOMEMOStanza(f *testing.F) {
	b := string(testBundle(3).Marshal())
	for _, s := range []string{
		encryptedXML(visitor, skinJID, 1001, 7, []byte("x")),
		`<iq type='set' id='p' from='` + visitor2 + `' to='help@chat.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='eu.siacs.conversations.axolotl.bundles:5'><item>` + b + `</item></publish></pubsub></iq>`,
		`<iq type='set' id='p' from='` + visitor2 + `' to='help@chat.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='eu.siacs.conversations.axolotl.devicelist'><item><list xmlns='eu.siacs.conversations.axolotl'><device id='5'/></list></item></publish></pubsub></iq>`,
		`<iq type='get' id='g' from='` + visitor + `' to='help@chat.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='eu.siacs.conversations.axolotl.bundles:7'/></pubsub></iq>`,
		`<iq type='get' id='g' from='` + op1 + `' to='guest-aaaaaaaaaaaaaaaa@chat.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='eu.siacs.conversations.axolotl.bundles:99999999999'/></pubsub></iq>`,
		`<iq type='result' id='omemo-2' from='op1@example.org' to='help@chat.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='eu.siacs.conversations.axolotl.devicelist'><item><list xmlns='eu.siacs.conversations.axolotl'><device id='7'/></list></item></items></pubsub></iq>`,
		`<iq type='result' id='omemo-3' from='op1@example.org' to='help@chat.example.org'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items><item>` + b + `</item></items></pubsub></iq>`,
		`<iq type='error' id='omemo-3' from='op1@example.org' to='help@chat.example.org'/>`,
	} {
		f.Add(s)
	}
	fx, _, _ := omemoChat(f, store.PolicyRequire)
	f.Fuzz(func(t *testing.T, s string) {
		el, err := parseElem(s, 4096)
		if err != nil {
			return
		}
		fx.c.r.handle(evStanza{el: el})
		fx.cap.take()
		if fx.c.r.failures != 0 {
			t.Fatalf("handling %q panicked", s)
		}
	})
}

// one is only for any testing.TB.
func one(t testing.TB, ss []sentStanza, pred func(sentStanza) bool) sentStanza {
	t.Helper()
	var hits []sentStanza
	for _, s := range ss {
		if pred(s) {
			hits = append(hits, s)
		}
	}
	if len(hits) != 1 {
		t.Fatalf("want exactly one matching stanza, got %d among %d", len(hits), len(ss))
	}
	return hits[0]
}

func TestDevicesCommand(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin(opBare1))
	if err := f.st.PutDevice(store.TrustedDevice{Skin: "help", Account: opBare1, Device: 7}); err != nil {
		t.Fatal(err)
	}
	f.online(op1, "", 0)
	f.sent()
	f.msg(op1, testDomain, "devices")
	out := f.answerPEP(f.sent(), opBare1, wire.DeviceList{7, 8, 9}, map[uint32]*wire.Bundle{7: testBundle(70), 8: testBundle(80)})
	got := bodiesTo(out, op1)
	if len(got) != 1 {
		t.Fatalf("answers %q", got)
	}
	for _, want := range []string{
		"7: " + testBundle(70).IdentityKey.Fingerprint().String() + " (trusted by help)",
		"8: " + testBundle(80).IdentityKey.Fingerprint().String() + " (not trusted",
		"9: no bundle",
	} {
		if !strings.Contains(got[0], want) {
			t.Errorf("missing %q in %q", want, got[0])
		}
	}
	// Another account's devices are for admins only.
	f.msg(op1, testDomain, "devices op2@example.org")
	if got := bodiesTo(f.sent(), op1); len(got) != 1 || !strings.HasPrefix(got[0], "Usage: devices") {
		t.Fatalf("an operator asked for another account's devices: %q", got)
	}
}

// A transfer between an OMEMO operator and an OTR one switches the chat's
// protocol both ways; the old operator gets nothing more.
func TestOMEMOTransfer(t *testing.T) {
	sk := helpSkin(opBare1, "op2@example.org")
	f := newFixture(t, Config{}, sk)
	if err := f.st.PutDevice(store.TrustedDevice{Skin: "help", Account: opBare1, Device: 7}); err != nil {
		t.Fatal(err)
	}
	f.online(op1, "", 5)
	f.online(op2, "", 0)
	f.sent()
	f.handOver(visitor, 1001, 40)
	f.msg(visitor, skinJID, "?OTRv23?")
	out := f.answerPEP(f.sent(), opBare1, wire.DeviceList{7}, map[uint32]*wire.Bundle{7: testBundle(70)})
	st := one(t, out, func(s sentStanza) bool { return s.status != nil })
	if st.status["e2ee"] != e2eeOMEMO {
		t.Fatalf("first operator: %v", st.status)
	}
	alias := one(t, out, func(s sentStanza) bool { return s.typ == "headline" }).from
	f.msg(op1, testDomain, "transfer "+alias+" op2@example.org")
	out = f.sent()
	var states []string
	for _, s := range out {
		if s.status != nil {
			states = append(states, s.status["state"]+"/"+s.status["e2ee"])
		}
		if s.typ == "headline" {
			t.Errorf("the alias's device list went to an OTR operator: %s", s.raw)
		}
	}
	if !slices.Equal(states, []string{"transferred/", "assigned/otr"}) {
		t.Fatalf("statuses after the transfer to an OTR operator: %v", states)
	}
	// Now OTR reaches op2, and OMEMO from op1 is refused.
	f.msg(visitor, skinJID, "?OTRv23?")
	if got := bodiesTo(f.sent(), op2); !slices.Contains(got, "?OTRv23?") {
		t.Fatalf("the OTR query did not reach the OTR operator: %q", got)
	}
	f.in("%s", encryptedXML(op1, alias, 7, 1001, []byte("late")))
	if s := one(t, f.sent(), func(s sentStanza) bool { return true }); s.to != op1 || s.errCond != "forbidden" {
		t.Fatalf("the old operator wrote into the chat: %s", s.raw)
	}
	// And back to the OMEMO operator.
	f.msg(op2, testDomain, "transfer "+alias+" op1@example.org")
	out = f.sent()
	states = nil
	for _, s := range out {
		if s.status != nil {
			states = append(states, s.status["state"]+"/"+s.status["e2ee"])
		}
	}
	if !slices.Equal(states, []string{"transferred/", "assigned/omemo"}) {
		t.Fatalf("statuses after the transfer back: %v", states)
	}
	one(t, out, func(s sentStanza) bool { return s.typ == "headline" && s.to == opBare1 })
}

// Keys handed over before a chat that then waits in the queue longer than
// pendingKeysTTL are still the chat's when an operator takes it.
func TestOMEMOKeysOutlastTheQueue(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin(opBare1))
	if err := f.st.PutDevice(store.TrustedDevice{Skin: "help", Account: opBare1, Device: 7}); err != nil {
		t.Fatal(err)
	}
	f.handOver(visitor, 1001, 40)
	f.msg(visitor, skinJID, "?OTRv23?")
	if st := one(t, f.sent(), func(s sentStanza) bool { return s.status != nil }); st.status["state"] != stateQueued {
		t.Fatalf("status %v, want queued", st.status)
	}
	for i := 0; i < 3; i++ {
		f.now = f.now.Add(pendingKeysTTL)
		f.c.r.expire(f.now)
	}
	f.online(op1, "", 0)
	st := one(t, f.sent(), func(s sentStanza) bool { return s.status != nil })
	if st.status["state"] != stateAssigned || st.status["e2ee"] != e2eeOMEMO {
		t.Fatalf("status %v, want assigned with e2ee='omemo'", st.status)
	}
}
