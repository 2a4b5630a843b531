package hostile_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"otrdesk.im/otrdesk/internal/hostile"
	"otrdesk.im/otrdesk/internal/omemoxml"
	"otrdesk.im/otrdesk/internal/operator"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/omemo"
)

// omemoWorld is a private Prosody with PEP, the real operator with one
// OMEMO device, and the attacker in OMEMO mode relaying the operator's
// bundles from the bot itself.
type omemoWorld struct {
	*stage
	op operator.Device
}

func newOMEMOWorld(t *testing.T) *omemoWorld {
	t.Helper()
	s := startStage(t, []string{"pep"}, operator.Config{Key: newKey(t), OMEMODevices: 1, Logf: t.Logf}, func(bot *operator.Bot) hostile.Config {
		return hostile.Config{Key: newKey(t), OMEMO: true, OperatorBundle: bot.Bundle}
	})
	return &omemoWorld{stage: s, op: s.bot.Devices()[0]}
}

// omemoVisitor plays the widget's OMEMO with one device. trusted is what
// the page's anchors trust (device ID -> fingerprint); careless makes it
// pin nothing and encrypt to every device the skin gives, as a widget
// must not.
type omemoVisitor struct {
	t        *testing.T
	ctx      context.Context
	c        *xmpptest.Client
	dev      *omemo.Device
	skin     string
	trusted  map[uint32]omemo.Fingerprint
	careless bool
}

// newOMEMOVisitor logs in anonymously, hands over its keys and opens the
// chat with the OTR query the widget sends, until the status says OMEMO.
func (w *omemoWorld) newOMEMOVisitor(t *testing.T, careless bool) *omemoVisitor {
	t.Helper()
	d, err := omemo.NewDevice(omemo.Options{PreKeys: 10})
	if err != nil {
		t.Fatal(err)
	}
	v := &omemoVisitor{t: t, ctx: w.ctx, c: w.srv.MustDialAnonymous(t), dev: d, skin: "shop@" + domain,
		trusted: map[uint32]omemo.Fingerprint{w.op.ID: w.op.Fingerprint}, careless: careless}
	v.publish(omemo.DeviceListNode, omemo.DeviceList{d.ID()}.Marshal())
	v.publish(omemo.BundleNode(d.ID()), d.Bundle().Marshal())
	if err := v.c.Message(w.ctx, v.skin, "?OTRv23?"); err != nil {
		t.Fatal(err)
	}
	st, err := v.c.Next(w.ctx, func(s xmpptest.Stanza) bool {
		return s.Name == "message" && s.HasChild("urn:otrdesk:0", "status")
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(st.Raw), "omemo") || !strings.Contains(string(st.Raw), "assigned") {
		t.Fatalf("status %s, want assigned with e2ee='omemo'", st.Raw)
	}
	// The widget pins the keys it trusts before it uses any bundle; a
	// careless one trusts the first key it sees.
	for id, fp := range v.trusted {
		if careless {
			break
		}
		if err := d.Pin(omemo.Address{JID: v.skin, Device: id}, omemo.PublicKey(fp)); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

func (v *omemoVisitor) publish(node string, payload []byte) {
	v.t.Helper()
	if _, err := v.c.IQ(v.ctx, "set", v.skin, omemoxml.Publish(node, payload)); err != nil {
		v.t.Fatalf("handing over %s: %v", node, err)
	}
}

func (v *omemoVisitor) items(node, local string) []byte {
	v.t.Helper()
	res, err := v.c.IQ(v.ctx, "get", v.skin, omemoxml.Items(node))
	if err != nil {
		v.t.Fatalf("reading %s: %v", node, err)
	}
	el, _, ok := omemoxml.Element(res.Raw, omemo.NS, local)
	if !ok {
		v.t.Fatalf("reading %s: %s", node, res.Raw)
	}
	return el
}

// recipients asks the skin for the operator's devices and keeps those
// the widget may encrypt to: a trusted device showing the trusted key, or
// any when careless.
func (v *omemoVisitor) recipients() (to []omemo.Recipient, offered []uint32) {
	v.t.Helper()
	list, err := omemo.ParseDeviceList(v.items(omemo.DeviceListNode, "list"))
	if err != nil {
		v.t.Fatal(err)
	}
	for _, id := range list {
		b, err := omemo.ParseBundle(v.items(omemo.BundleNode(id), "bundle"))
		if err != nil {
			v.t.Fatal(err)
		}
		offered = append(offered, id)
		if fp, ok := v.trusted[id]; v.careless || ok && b.IdentityKey.Fingerprint() == fp {
			to = append(to, omemo.Recipient{Address: omemo.Address{JID: v.skin, Device: id}, Bundle: b})
		}
	}
	return to, offered
}

func (v *omemoVisitor) send(text string, to []omemo.Recipient) error {
	v.t.Helper()
	enc, err := v.dev.Encrypt([]byte(text), to)
	if err != nil {
		return err
	}
	return v.c.SendRaw(v.ctx, "<message type='chat' to='"+v.skin+"'><body>I sent you an OMEMO encrypted message.</body>"+
		string(enc.Marshal())+"</message>")
}

func (v *omemoVisitor) receive() *omemo.Message {
	v.t.Helper()
	st, err := v.c.Next(v.ctx, func(s xmpptest.Stanza) bool {
		return s.Name == "message" && s.From == v.skin && s.HasChild(omemo.NS, "encrypted")
	})
	if err != nil {
		v.t.Fatal(err)
	}
	enc, ok := omemoxml.Encrypted(st.Raw)
	if !ok {
		v.t.Fatalf("a malformed OMEMO element: %s", st.Raw)
	}
	m, err := v.dev.Decrypt(v.skin, enc)
	if err != nil {
		v.t.Fatalf("decrypting: %v", err)
	}
	return m
}

// TestOMEMO runs the OMEMO attacks over one server, each with a new
// visitor (a new chat, which the attacker follows).
func TestOMEMO(t *testing.T) {
	w := newOMEMOWorld(t)

	// Relayed honestly, the chat with the real operator works and the
	// attacker reads nothing.
	t.Run("Relay", func(t *testing.T) {
		w.att.Offer(hostile.Offer{ID: w.op.ID})
		v := w.newOMEMOVisitor(t, false)
		keys, err := w.bot.Next(w.ctx, func(e operator.Event) bool { return e.Kind == operator.Keys })
		if err != nil {
			t.Fatal(err)
		}
		if keys.Alias != w.att.Alias() || !slices.Equal(keys.List, []uint32{v.dev.ID()}) {
			t.Fatalf("the operator was told %v by %q; the alias is %q", keys.List, keys.Alias, w.att.Alias())
		}
		to, _ := v.recipients()
		if len(to) != 1 {
			t.Fatalf("%d trusted devices offered, want the operator's", len(to))
		}
		if err := v.send("canary-relay", to); err != nil {
			t.Fatal(err)
		}
		msg, err := w.bot.Next(w.ctx, func(e operator.Event) bool { return e.Kind == operator.Message })
		if err != nil {
			t.Fatal(err)
		}
		if msg.Text != "canary-relay" || msg.OMEMOFingerprint != v.dev.Fingerprint() || msg.Alias != keys.Alias {
			t.Fatalf("the operator read %+v", msg)
		}
		if m := v.receive(); string(m.Plaintext) != "Operator read: canary-relay" || m.From.Device != w.op.ID || m.Fingerprint != w.op.Fingerprint {
			t.Fatalf("the visitor read %q from device %d", m.Plaintext, m.From.Device)
		}
		s := w.att.Snapshot()
		if how, ok := s.Learned("canary-relay"); ok {
			t.Errorf("the attacker %s", how)
		}
		if len(s.OMEMOSent) != 1 || !slices.Equal(s.OMEMOSent[0].RIDs, []uint32{w.op.ID}) || s.OMEMOSent[0].SID != v.dev.ID() ||
			s.OperatorOMEMO != 1 || !slices.Equal(s.VisitorDevices, []uint32{v.dev.ID()}) || !slices.Equal(s.VisitorBundles, []uint32{v.dev.ID()}) ||
			s.ListRequests != 1 || !slices.Equal(s.BundleRequests, []uint32{w.op.ID}) {
			t.Errorf("snapshot %+v", s)
		}
	})

	// The attacker offers a device of its own beside the operator's: a
	// widget that encrypts to it hands over the canary, one that keeps to
	// its trusted keys does not.
	attID, attFP, err := w.att.NewDevice(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("AttackerDevice", func(t *testing.T) {
		w.att.Offer(hostile.Offer{ID: w.op.ID}, hostile.Offer{ID: attID})
		v := w.newOMEMOVisitor(t, false)
		to, offered := v.recipients()
		if !slices.Equal(offered, []uint32{w.op.ID, attID}) || len(to) != 1 || to[0].Device != w.op.ID {
			t.Fatalf("offered %v, kept %d", offered, len(to))
		}
		if err := v.send("canary-careful", to); err != nil {
			t.Fatal(err)
		}
		if _, err := w.bot.Next(w.ctx, func(e operator.Event) bool { return e.Kind == operator.Message && e.Text == "canary-careful" }); err != nil {
			t.Fatal(err)
		}
		v.receive() // the operator's answer
		if how, ok := w.att.Snapshot().Learned("canary-careful"); ok {
			t.Errorf("the attacker %s", how)
		}

		careless := w.newOMEMOVisitor(t, true)
		to, _ = careless.recipients()
		if err := careless.send("canary-careless", to); err != nil {
			t.Fatal(err)
		}
		_, how := learned(t, w.ctx, w.att, "canary-careless")
		t.Logf("the attacker %s", how)
		if !strings.Contains(how, "OMEMO") {
			t.Errorf("learned %q, not through its OMEMO device", how)
		}
	})

	// The attacker hands out a device under the operator's device ID with
	// its own identity key: a widget that pinned the operator's key
	// refuses it; one that trusts the first key it sees encrypts to the
	// attacker.
	t.Run("SwappedKey", func(t *testing.T) {
		_, swapFP, err := w.att.NewDevice(w.op.ID)
		if err != nil {
			t.Fatal(err)
		}
		if swapFP == w.op.Fingerprint {
			t.Fatal("the swapped device has the operator's key")
		}
		w.att.Offer(hostile.Offer{ID: w.op.ID})
		v := w.newOMEMOVisitor(t, false)
		to, offered := v.recipients()
		if !slices.Equal(offered, []uint32{w.op.ID}) || len(to) != 0 {
			t.Fatalf("offered %v, kept %d: the swapped key passed the trust check", offered, len(to))
		}
		b, err := omemo.ParseBundle(v.items(omemo.BundleNode(w.op.ID), "bundle"))
		if err != nil {
			t.Fatal(err)
		}
		err = v.send("canary-pinned", []omemo.Recipient{{Address: omemo.Address{JID: v.skin, Device: w.op.ID}, Bundle: b}})
		if !errors.Is(err, omemo.ErrIdentityChanged) {
			t.Fatalf("encrypting to the swapped bundle against the pin: %v, want ErrIdentityChanged", err)
		}

		careless := w.newOMEMOVisitor(t, true)
		to, _ = careless.recipients()
		if err := careless.send("canary-swapped", to); err != nil {
			t.Fatal(err)
		}
		learned(t, w.ctx, w.att, "canary-swapped")
		// The real operator's device of that ID cannot read it.
		fail, err := w.bot.Next(w.ctx, func(e operator.Event) bool { return e.Kind == operator.Failure && e.OMEMO })
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("the operator: %s", fail.Text)
		if how, ok := w.att.Snapshot().Learned("canary-pinned"); ok {
			t.Errorf("the attacker %s", how)
		}
	})

	// The attacker writes to the visitor from its own device, as the
	// skin: the widget sees a device it does not trust.
	t.Run("SayOMEMO", func(t *testing.T) {
		v := w.newOMEMOVisitor(t, false)
		if _, err := w.att.Wait(w.ctx, "the visitor's keys", func(s hostile.Snapshot) bool {
			return slices.Equal(s.VisitorDevices, []uint32{v.dev.ID()})
		}); err != nil {
			t.Fatal(err)
		}
		if err := w.att.SayOMEMO(w.ctx, attID, "I am the operator"); err != nil {
			t.Fatal(err)
		}
		m := v.receive()
		if string(m.Plaintext) != "I am the operator" || m.From.Device != attID || m.Fingerprint != attFP || m.Fingerprint == w.op.Fingerprint {
			t.Fatalf("the visitor read %q from device %d", m.Plaintext, m.From.Device)
		}
		if err := w.att.SayOMEMO(w.ctx, 12345, "x"); !errors.Is(err, hostile.ErrNoDevice) {
			t.Errorf("SayOMEMO from a device the attacker lacks: %v", err)
		}
	})
}
