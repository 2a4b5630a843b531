package component

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/omemo/wire"
	"otrdesk.im/otrdesk/store"
)

// TestOMEMOProsody runs OMEMO's key paths over a real Prosody with PEP: an
// operator account publishes its device list and bundle as its client
// would (the XML written by omemo/wire); the component reads them as the
// skin once the operator approved the skin's subscription (Prosody's
// default PEP access model is "presence"); a visitor hands over its keys,
// gets e2ee='omemo' and only the trusted device; the operator reads the
// alias's keys over PEP; <encrypted/> crosses both ways.
func TestOMEMOProsody(t *testing.T) { runOMEMO(t, omemoProsody(t)) }

// TestOMEMOEjabberd runs the same on ejabberd.
func TestOMEMOEjabberd(t *testing.T) { runOMEMO(t, omemoEjabberd(t)) }

// omemoProsody is the test Prosody with PEP (mod_pep), where OMEMO clients
// publish their keys.
func omemoProsody(t *testing.T) *xmpptest.Server {
	return xmpptest.Prosody(t, xmpptest.Options{
		Components:  map[string]string{itDomain: itSecret},
		HostModules: []string{"pep"},
	})
}

// omemoEjabberd is the test ejabberd: its configuration has mod_pubsub
// with PEP and mod_caps already.
func omemoEjabberd(t *testing.T) *xmpptest.Server {
	return xmpptest.Ejabberd(t, xmpptest.Options{Components: map[string]string{itDomain: itSecret}})
}

func runOMEMO(t *testing.T, srv *xmpptest.Server) {
	st, err := store.Open(filepath.Join(t.TempDir(), "otrdesk.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateSkin(store.Skin{Name: "omemo", Title: "Skin omemo", Policy: store.PolicyRequire,
		Operators: []string{"opo@example.org"}}); err != nil {
		t.Fatal(err)
	}
	trustedKey := testBundle(0x51).IdentityKey
	for _, d := range []store.TrustedDevice{
		{Skin: "omemo", Account: "opo@example.org", Device: 4242, Fingerprint: trustedKey[:]},
		{Skin: "omemo", Account: "opo@example.org", Device: 777}, // listed, but its bundle is never published
	} {
		if err := st.PutDevice(d); err != nil {
			t.Fatal(err)
		}
	}
	srv.MustRegister(t, "opo", itPassword)
	logs := &lockedBuffer{}
	s := &suite{t: t, srv: srv, st: st, logs: logs, cfg: Config{
		Domain: itDomain, Server: srv.ComponentAddr, Secret: itSecret,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}}
	s.start()
	t.Cleanup(s.stop)
	t.Cleanup(s.logsOnFailure)
	ctx := ctxT(t)
	skinJ := "omemo@" + itDomain
	// Reads of the operator's devices stay in use for the whole test: a
	// change the widget sees can only come from the operator's server
	// pushing the new device list, not from a read made later.
	s.c.events <- evFunc(func(r *router) { r.omemo.fresh = time.Hour })

	// The operator's client publishes its device list (4242, 777, 9) and
	// bundles for 4242 (the trusted key) and 9 (not trusted).
	op := s.operator(t, "opo", "gajim", "omemo", true)
	// Having approved the skin's request, the operator adds the skin back,
	// as Gajim and Conversations offer to. ejabberd needs it to push device
	// lists: it takes entity capabilities only from contacts whose presence
	// the account subscribes to.
	if err := op.SendRaw(ctx, `<presence to='`+skinJ+`' type='subscribe'/>`); err != nil {
		t.Fatal(err)
	}
	publish := func(cl *xmpptest.Client, to, node string, payload []byte) {
		t.Helper()
		if _, err := cl.IQ(ctx, "set", to, `<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='`+node+`'><item id='current'>`+string(payload)+`</item></publish></pubsub>`); err != nil {
			t.Fatalf("publishing %s: %v", node, err)
		}
	}
	publish(op, "", wire.DeviceListNode, wire.DeviceList{4242, 777, 9}.Marshal())
	publish(op, "", wire.BundleNode(4242), testBundle(0x51).Marshal())
	publish(op, "", wire.BundleNode(9), testBundle(0x09).Marshal())

	t.Run("OperatorDevices", func(t *testing.T) {
		devs, err := s.c.OperatorDevices(ctx, "opo@example.org")
		if err != nil {
			t.Fatalf("OperatorDevices: %v", err)
		}
		if len(devs) != 3 || devs[0].ID != 4242 || !devs[0].HasBundle || devs[0].Fingerprint != trustedKey.Fingerprint() ||
			devs[1].ID != 777 || devs[1].HasBundle || devs[2].ID != 9 || !devs[2].HasBundle {
			t.Fatalf("read %+v", devs)
		}
	})

	t.Run("Chat", func(t *testing.T) {
		// The operator's phone: lower priority (the chat is pinned to the
		// desktop) and carbons on, as Conversations does.
		phone := s.srv.MustDial(t, "opo", itPassword, "phone")
		if err := phone.Presence(ctx, "", -1); err != nil {
			t.Fatal(err)
		}
		if err := phone.EnableCarbons(ctx); err != nil {
			t.Fatal(err)
		}
		s.poll("both resources seen", func() bool { return s.onlineCount("opo@example.org") == 2 })
		v := s.srv.MustDialAnonymous(t)
		vj := v.JID()
		// The widget hands over its device list and bundle, then opens the
		// chat with the OTR query it sends to every operator.
		publish(v, skinJ, wire.DeviceListNode, wire.DeviceList{31337}.Marshal())
		publish(v, skinJ, wire.BundleNode(31337), testBundle(0x77).Marshal())
		send(t, v, skinJ, "?OTRv23?")
		st := next(t, v, "assigned status", statusFrom(skinJ, "assigned"))
		if !bytes.Contains(st.Raw, []byte(`e2ee="omemo"`)) && !bytes.Contains(st.Raw, []byte(`e2ee='omemo'`)) {
			t.Fatalf("status %s, want e2ee='omemo'", st.Raw)
		}
		// The operator learns the alias's devices from a PEP event.
		ev := next(t, op, "device list event", func(st xmpptest.Stanza) bool {
			return st.Name == "message" && st.Type == "headline" && strings.HasPrefix(st.From, "guest-")
		})
		alias := ev.From
		if !bytes.Contains(ev.Raw, []byte(`id="31337"`)) && !bytes.Contains(ev.Raw, []byte(`id='31337'`)) {
			t.Fatalf("event %s", ev.Raw)
		}
		assertNotIn(t, ev, vj.String(), vj.Localpart(), xmpptest.AnonDomain)
		// ... and can read the bundle at the alias, as PEP.
		res, err := op.IQ(ctx, "get", alias, `<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='`+wire.BundleNode(31337)+`'/></pubsub>`)
		if err != nil {
			t.Fatalf("alias bundle: %v", err)
		}
		if !bytes.Contains(res.Raw, []byte(base64.StdEncoding.EncodeToString(testBundle(0x77).IdentityKey.Wire()))) {
			t.Fatalf("alias bundle: %s", res.Raw)
		}
		assertNotIn(t, res, vj.String(), vj.Localpart(), xmpptest.AnonDomain)

		// The widget asks its skin for the operator's devices: only the
		// trusted one with a bundle and the trusted key.
		res, err = v.IQ(ctx, "get", skinJ, `<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='`+wire.DeviceListNode+`'/></pubsub>`)
		if err != nil {
			t.Fatalf("operator device list: %v", err)
		}
		if !bytes.Contains(res.Raw, []byte(`<device id="4242"`)) && !bytes.Contains(res.Raw, []byte(`<device id='4242'`)) ||
			bytes.Contains(res.Raw, []byte("777")) || bytes.Contains(res.Raw, []byte(`"9"`)) {
			t.Fatalf("operator device list: %s", res.Raw)
		}
		if _, err := v.IQ(ctx, "get", skinJ, `<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='`+wire.BundleNode(4242)+`'/></pubsub>`); err != nil {
			t.Fatalf("operator bundle: %v", err)
		}
		if _, err := v.IQ(ctx, "get", skinJ, `<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='`+wire.BundleNode(9)+`'/></pubsub>`); err == nil {
			t.Fatal("the widget got the bundle of a device the skin does not trust")
		}

		// <encrypted/> both ways; under "require" its fallback body passes.
		msg := func(to string, sid, rid uint32, payload string) string {
			e := &wire.Encrypted{SID: sid, Keys: []wire.Key{{RID: rid, PreKey: true, Data: []byte("key")}}, IV: make([]byte, 12), Payload: []byte(payload)}
			return `<message type='chat' to='` + to + `'><body>I sent you an OMEMO encrypted message.</body>` + string(e.Marshal()) +
				`<encryption xmlns='urn:xmpp:eme:0' namespace='eu.siacs.conversations.axolotl'/><store xmlns='urn:xmpp:hints'/></message>`
		}
		if err := v.SendRaw(ctx, msg(skinJ, 31337, 4242, "body-to-operator")); err != nil {
			t.Fatal(err)
		}
		got := next(t, op, "encrypted message", func(st xmpptest.Stanza) bool {
			return st.Name == "message" && st.From == alias && st.HasChild(nsOMEMO, "encrypted")
		})
		if !bytes.Contains(got.Raw, []byte(base64.StdEncoding.EncodeToString([]byte("body-to-operator")))) || !got.HasChild(nsHints, "no-store") {
			t.Fatalf("to the operator: %s", got.Raw)
		}
		assertNotIn(t, got, vj.String(), vj.Localpart(), xmpptest.AnonDomain)
		// The phone has it too, as a carbon copy: every device of the
		// operator can read and answer an OMEMO chat.
		carbon := next(t, phone, "carbon copy", func(st xmpptest.Stanza) bool {
			return st.Name == "message" && st.HasChild("urn:xmpp:carbons:2", "received") && bytes.Contains(st.Raw, []byte("<encrypted"))
		})
		if !bytes.Contains(carbon.Raw, []byte(base64.StdEncoding.EncodeToString([]byte("body-to-operator")))) {
			t.Fatalf("carbon: %s", carbon.Raw)
		}
		assertNotIn(t, carbon, vj.String(), vj.Localpart(), xmpptest.AnonDomain)
		if err := phone.SendRaw(ctx, msg(alias, 4243, 31337, "body-from-phone")); err != nil {
			t.Fatal(err)
		}
		fromPhone := next(t, v, "reply from the phone", func(st xmpptest.Stanza) bool {
			return st.Name == "message" && st.From == skinJ && st.HasChild(nsOMEMO, "encrypted")
		})
		if !bytes.Contains(fromPhone.Raw, []byte(base64.StdEncoding.EncodeToString([]byte("body-from-phone")))) {
			t.Fatalf("from the phone: %s", fromPhone.Raw)
		}
		assertNotIn(t, fromPhone, "opo", "phone")
		if err := op.SendRaw(ctx, msg(alias, 4242, 31337, "body-to-visitor")); err != nil {
			t.Fatal(err)
		}
		back := next(t, v, "encrypted reply", func(st xmpptest.Stanza) bool {
			return st.Name == "message" && st.From == skinJ && st.HasChild(nsOMEMO, "encrypted")
		})
		if !bytes.Contains(back.Raw, []byte(base64.StdEncoding.EncodeToString([]byte("body-to-visitor")))) {
			t.Fatalf("to the visitor: %s", back.Raw)
		}
		assertNotIn(t, back, "opo", "gajim")

		// no-store: the operator's archive holds none of what otrdesk
		// relayed. (What the operator's own client sends, with the <store/>
		// hint Conversations adds, its server archives: that is the
		// client's choice, as for OTR.)
		archived, err := op.Archive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		relayed := 0
		for _, a := range archived {
			if !strings.HasPrefix(a.From, "guest-") {
				continue
			}
			relayed++
			if bytes.Contains(a.Raw, []byte("encrypted")) {
				t.Errorf("an OMEMO message was archived: %s", a.Raw)
			}
		}
		if relayed == 0 {
			t.Error("the archive holds nothing from the alias, not even the new-chat notice: the check above saw nothing")
		}

		// The operator replaces device 4242 by a new client, 5151, which
		// the skin trusts: its server pushes the new list to the skin, and
		// the widget's next request gets 5151 and no longer 4242.
		newKey := testBundle(0x52).IdentityKey
		if err := s.st.PutDevice(store.TrustedDevice{Skin: "omemo", Account: "opo@example.org", Device: 5151, Fingerprint: newKey[:]}); err != nil {
			t.Fatal(err)
		}
		publish(op, "", wire.BundleNode(5151), testBundle(0x52).Marshal())
		publish(op, "", wire.DeviceListNode, wire.DeviceList{5151, 777, 9}.Marshal())
		var last []byte
		s.poll("the widget given the operator's new device", func() bool {
			res, err := v.IQ(ctx, "get", skinJ, `<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='`+wire.DeviceListNode+`'/></pubsub>`)
			if err != nil {
				t.Fatalf("operator device list after the change: %v", err)
			}
			last = res.Raw
			return bytes.Contains(res.Raw, []byte("5151"))
		})
		if bytes.Contains(last, []byte("4242")) {
			t.Fatalf("the removed device is still given: %s", last)
		}
		if _, err := v.IQ(ctx, "get", skinJ, `<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='`+wire.BundleNode(4242)+`'/></pubsub>`); err == nil {
			t.Fatal("the widget got the bundle of a device the operator removed")
		}
		res, err = v.IQ(ctx, "get", skinJ, `<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='`+wire.BundleNode(5151)+`'/></pubsub>`)
		if err != nil || !bytes.Contains(res.Raw, []byte(base64.StdEncoding.EncodeToString(newKey.Wire()))) {
			t.Fatalf("the new device's bundle: %v %s", err, res.Raw)
		}
	})
	if strings.Contains(logs.String(), "body-") {
		t.Error("a payload reached the log")
	}
}
