package operator_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"otrdesk.im/otrdesk/component"
	"otrdesk.im/otrdesk/internal/omemoxml"
	"otrdesk.im/otrdesk/internal/operator"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/omemo"
	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/store"
)

const (
	omemoDomain = "chat.example.org"
	omemoSecret = "omemo-test-secret"
)

// omemoVisitor is the widget's part: an anonymous account with OMEMO
// devices (two tabs: the component keeps up to four), talking to the skin.
type omemoVisitor struct {
	t    *testing.T
	ctx  context.Context
	c    *xmpptest.Client
	skin string
	devs []*omemo.Device
}

func (v *omemoVisitor) publish(node string, payload []byte) {
	v.t.Helper()
	if _, err := v.c.IQ(v.ctx, "set", v.skin, omemoxml.Publish(node, payload)); err != nil {
		v.t.Fatalf("handing over %s: %v", node, err)
	}
}

// items reads a PEP node at jid as a client does and returns its payload.
func items(t *testing.T, ctx context.Context, c *xmpptest.Client, jid, node, local string) []byte {
	t.Helper()
	res, err := c.IQ(ctx, "get", jid, omemoxml.Items(node))
	if err != nil {
		t.Fatalf("reading %s at %q: %v", node, jid, err)
	}
	el, _, ok := omemoxml.Element(res.Raw, omemo.NS, local)
	if !ok {
		t.Fatalf("reading %s at %q: no %s in %s", node, jid, local, res.Raw)
	}
	return el
}

// operatorRecipients asks the skin for the operator's devices and bundles
// (what the widget does after e2ee='omemo').
func (v *omemoVisitor) operatorRecipients() []omemo.Recipient {
	v.t.Helper()
	list, err := omemo.ParseDeviceList(items(v.t, v.ctx, v.c, v.skin, omemo.DeviceListNode, "list"))
	if err != nil {
		v.t.Fatal(err)
	}
	var to []omemo.Recipient
	for _, id := range list {
		b, err := omemo.ParseBundle(items(v.t, v.ctx, v.c, v.skin, omemo.BundleNode(id), "bundle"))
		if err != nil {
			v.t.Fatal(err)
		}
		to = append(to, omemo.Recipient{Address: omemo.Address{JID: v.skin, Device: id}, Bundle: b})
	}
	return to
}

func (v *omemoVisitor) send(text string, to []omemo.Recipient) {
	v.t.Helper()
	enc, err := v.devs[0].Encrypt([]byte(text), to)
	if err != nil {
		v.t.Fatal(err)
	}
	if err := v.c.SendRaw(v.ctx, "<message type='chat' to='"+v.skin+"'><body>I sent you an OMEMO encrypted message.</body>"+
		string(enc.Marshal())+"</message>"); err != nil {
		v.t.Fatal(err)
	}
}

// receive waits for the next OMEMO message from the skin and decrypts it
// with each of the visitor's devices; every one must have a key in it.
func (v *omemoVisitor) receive() (text string, from []*omemo.Message, enc *omemo.Encrypted) {
	v.t.Helper()
	st, err := v.c.Next(v.ctx, func(st xmpptest.Stanza) bool {
		return st.Name == "message" && st.From == v.skin && st.HasChild(omemo.NS, "encrypted")
	})
	if err != nil {
		v.t.Fatalf("waiting for an OMEMO message: %v", err)
	}
	if st.Body != operator.FallbackBody || !st.HasChild("urn:xmpp:eme:0", "encryption") {
		v.t.Errorf("the operator's message lacks the fallback body or EME: %s", st.Raw)
	}
	enc, ok := omemoxml.Encrypted(st.Raw)
	if !ok {
		v.t.Fatalf("a malformed OMEMO element: %s", st.Raw)
	}
	for _, d := range v.devs {
		m, err := d.Decrypt(v.skin, enc)
		if err != nil {
			v.t.Fatalf("visitor device %d: %v", d.ID(), err)
		}
		if text != "" && string(m.Plaintext) != text {
			v.t.Fatalf("the visitor's devices read %q and %q", text, m.Plaintext)
		}
		text = string(m.Plaintext)
		from = append(from, m)
		// As the widget does: a used one-time prekey is replaced and the
		// bundle handed over again, or the next device of the operator
		// that reads it could pick the used one.
		if m.Republish {
			v.publish(omemo.BundleNode(d.ID()), d.Bundle().Marshal())
		}
	}
	return text, from, enc
}

// canonical is a bundle as omemo/wire writes it.
func canonical(t *testing.T, el []byte) []byte {
	t.Helper()
	b, err := omemo.ParseBundle(el)
	if err != nil {
		t.Fatal(err)
	}
	return b.Marshal()
}

func rids(e *omemo.Encrypted) []uint32 {
	var out []uint32
	for _, k := range e.Keys {
		out = append(out, k.RID)
	}
	slices.Sort(out)
	return out
}

func sorted(ids ...uint32) []uint32 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// TestOMEMOThroughComponent: the bot with two devices (desktop and phone)
// behind the real otrdesk component on Prosody with PEP, and a Go OMEMO
// visitor with two devices as the widget hands them over. The component
// reads the bot's published keys and says e2ee='omemo'; messages cross
// both ways, the bot reads the alias's second device's bundle at the alias,
// republishes bundles whose prekeys were used, and a device added later
// and not trusted by the skin gets nothing from the visitor.
func TestOMEMOThroughComponent(t *testing.T) {
	runOMEMO(t, xmpptest.Prosody(t, xmpptest.Options{Components: map[string]string{omemoDomain: omemoSecret}, HostModules: []string{"pep"}}))
}

// TestOMEMOEjabberd runs the same on ejabberd (mod_pubsub with PEP).
func TestOMEMOEjabberd(t *testing.T) {
	runOMEMO(t, xmpptest.Ejabberd(t, xmpptest.Options{Components: map[string]string{omemoDomain: omemoSecret}}))
}

func runOMEMO(t *testing.T, srv *xmpptest.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	st, err := store.Open(filepath.Join(t.TempDir(), "otrdesk.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	const account = "op@" + xmpptest.Domain
	if err := st.CreateSkin(store.Skin{Name: "shop", Title: "Shop", Policy: store.PolicyRequire, Operators: []string{account}}); err != nil {
		t.Fatal(err)
	}
	srv.MustRegister(t, "op", "pw-op")

	opKey, _ := testKeys(t)
	bot, err := operator.New(operator.Config{
		Client: srv.MustDial(t, "op", "pw-op", "desk"), Key: opKey, Service: omemoDomain, OMEMODevices: 2,
		Answer: func(alias, text string) string { return "echo: " + text },
		Logf:   t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	devs := bot.Devices()
	if len(devs) != 2 || devs[0].ID == devs[1].ID || bot.Fingerprints()[0] != devs[0].Hex() || len(devs[0].Hex()) != 64 ||
		!slices.Equal(bot.DeviceIDs(), []uint32{devs[0].ID, devs[1].ID}) {
		t.Fatalf("devices %+v, fingerprints %q", devs, bot.Fingerprints())
	}
	desk, phone := devs[0], devs[1]
	for _, d := range devs {
		if err := st.PutDevice(store.TrustedDevice{Skin: "shop", Account: account, Device: d.ID, Fingerprint: d.Fingerprint[:]}); err != nil {
			t.Fatal(err)
		}
	}

	logs := &lockedLog{}
	comp, err := component.New(component.Config{Domain: omemoDomain, Server: srv.ComponentAddr, Secret: omemoSecret,
		AnonymousDomain: xmpptest.AnonDomain, Logger: slog.New(slog.NewTextHandler(logs, nil))}, st)
	if err != nil {
		t.Fatal(err)
	}
	xmpptest.RunUntilCleanup(t, "component", comp.Run)
	poll(t, ctx, "the component ready", func() bool { ok, _ := comp.Ready(); return ok })
	xmpptest.RunUntilCleanup(t, "operator", bot.Run)
	poll(t, ctx, "the skin available", func() bool { return comp.Available("shop") })

	// A second resource of the operator's account reads its own PEP: what
	// the bot published.
	check := srv.MustDial(t, "op", "pw-op", "check")
	pub, err := omemo.ParseDeviceList(items(t, ctx, check, "", omemo.DeviceListNode, "list"))
	if err != nil || !slices.Equal(pub, omemo.DeviceList{desk.ID, phone.ID}) {
		t.Fatalf("published device list %v (%v), want %v", pub, err, bot.DeviceIDs())
	}
	// The bot added the skin back (ejabberd pushes device lists only to
	// contacts the account is subscribed to).
	poll(t, ctx, "the skin in the roster both ways", func() bool {
		res, err := check.IQ(ctx, "get", "", "<query xmlns='jabber:iq:roster'/>")
		if err != nil {
			t.Fatal(err)
		}
		_, item, ok := omemoxml.Element(res.Raw, "jabber:iq:roster", "item")
		return ok && item["jid"] == "shop@"+omemoDomain && item["subscription"] == "both"
	})
	firstBundle := canonical(t, items(t, ctx, check, "", omemo.BundleNode(desk.ID), "bundle"))
	if !bytes.Equal(firstBundle, bot.Bundle(desk.ID).Marshal()) {
		t.Fatalf("published bundle differs from the device's")
	}

	v := &omemoVisitor{t: t, ctx: ctx, c: srv.MustDialAnonymous(t), skin: "shop@" + omemoDomain}
	for range 2 {
		d, err := omemo.NewDevice(omemo.Options{PreKeys: 10})
		if err != nil {
			t.Fatal(err)
		}
		v.devs = append(v.devs, d)
	}
	v1, v2 := v.devs[0], v.devs[1]
	v.publish(omemo.DeviceListNode, omemo.DeviceList{v1.ID(), v2.ID()}.Marshal())
	v.publish(omemo.BundleNode(v1.ID()), v1.Bundle().Marshal())
	v.publish(omemo.BundleNode(v2.ID()), v2.Bundle().Marshal())
	if err := v.c.Message(ctx, v.skin, "?OTRv23?"); err != nil {
		t.Fatal(err)
	}
	status, err := v.c.Next(ctx, func(s xmpptest.Stanza) bool {
		return s.Name == "message" && s.HasChild("urn:otrdesk:0", "status") && strings.Contains(string(s.Raw), "assigned")
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(status.Raw), `e2ee="omemo"`) && !strings.Contains(string(status.Raw), `e2ee='omemo'`) {
		t.Fatalf("status %s, want e2ee='omemo'", status.Raw)
	}
	keys, err := bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Keys })
	if err != nil {
		t.Fatal(err)
	}
	alias := keys.Alias
	if !strings.HasPrefix(alias, "guest-") || !slices.Equal(keys.List, []uint32{v1.ID(), v2.ID()}) {
		t.Fatalf("the bot was told %v by %q", keys.List, alias)
	}

	// The visitor encrypts to what the skin gives it: both trusted
	// devices, with the keys the bot has.
	to := v.operatorRecipients()
	for _, r := range to {
		d := slices.IndexFunc(devs, func(d operator.Device) bool { return d.ID == r.Device })
		if d < 0 || r.Bundle.IdentityKey.Fingerprint() != devs[d].Fingerprint {
			t.Fatalf("the skin gave device %d with another key", r.Device)
		}
	}
	if len(to) != 2 {
		t.Fatalf("the skin gave %d devices, want 2", len(to))
	}
	v.send("hello, operator", to)
	sec, err := bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Secure })
	if err != nil {
		t.Fatal(err)
	}
	if !sec.OMEMO || sec.Device != v1.ID() || sec.OMEMOFingerprint != v1.Fingerprint() || sec.Alias != alias {
		t.Fatalf("secure event %+v", sec)
	}
	msg, err := bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Message })
	if err != nil {
		t.Fatal(err)
	}
	if msg.Text != "hello, operator" || !msg.Encrypted || !msg.OMEMO || !slices.Equal(sorted(msg.Devices...), sorted(desk.ID, phone.ID)) {
		t.Fatalf("message event %+v", msg)
	}

	// The answer (Config.Answer) goes to both visitor devices: v1 has a
	// session, v2's bundle the bot reads at the alias. And to the phone.
	text, from, enc := v.receive()
	if text != "echo: hello, operator" || from[0].From.Device != desk.ID || from[0].Fingerprint != desk.Fingerprint {
		t.Fatalf("the visitor read %q from %+v", text, from[0].From)
	}
	if got, want := rids(enc), sorted(v1.ID(), v2.ID(), phone.ID); !slices.Equal(got, want) {
		t.Errorf("the answer has keys for %v, want the visitor's two devices and the phone %v", got, want)
	}

	// The phone answers too.
	if err := bot.SayFrom(ctx, alias, phone.ID, "from the phone"); err != nil {
		t.Fatal(err)
	}
	text, from, _ = v.receive()
	if text != "from the phone" || from[0].From.Device != phone.ID || from[0].Fingerprint != phone.Fingerprint {
		t.Fatalf("the visitor read %q from %+v", text, from[0].From)
	}

	// The visitor's prekey message used a one-time prekey of each device:
	// the bot published the refilled bundles.
	poll(t, ctx, "the refilled bundle published", func() bool {
		b := canonical(t, items(t, ctx, check, "", omemo.BundleNode(desk.ID), "bundle"))
		return !bytes.Equal(b, firstBundle) && bytes.Equal(b, bot.Bundle(desk.ID).Marshal())
	})

	// A new client of the operator, which the skin does not trust: it is
	// published, but the visitor is not given it, and it reads nothing.
	extra, err := bot.AddDevice(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pub, err = omemo.ParseDeviceList(items(t, ctx, check, "", omemo.DeviceListNode, "list"))
	if err != nil || !slices.Equal(pub, omemo.DeviceList{desk.ID, phone.ID, extra.ID}) {
		t.Fatalf("device list after AddDevice %v (%v)", pub, err)
	}
	if b := canonical(t, items(t, ctx, check, "", omemo.BundleNode(extra.ID), "bundle")); !bytes.Equal(b, bot.Bundle(extra.ID).Marshal()) {
		t.Fatal("the new device's bundle is not published")
	}
	to = v.operatorRecipients()
	if len(to) != 2 || slices.ContainsFunc(to, func(r omemo.Recipient) bool { return r.Device == extra.ID }) {
		t.Fatalf("the skin gave %d devices after an untrusted one was added", len(to))
	}
	v.send("second", to)
	msg, err = bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Message })
	if err != nil {
		t.Fatal(err)
	}
	if msg.Text != "second" || slices.Contains(msg.Devices, extra.ID) || len(msg.Devices) != 2 {
		t.Fatalf("second message event %+v", msg)
	}
	text, _, enc = v.receive()
	if text != "echo: second" || !slices.Contains(rids(enc), extra.ID) {
		t.Errorf("the answer %q has keys for %v: the bot's own new device should have one", text, rids(enc))
	}
	if err := bot.RemoveDevice(ctx, extra.ID); err != nil {
		t.Fatal(err)
	}
	if err := bot.RemoveDevice(ctx, extra.ID); err != operator.ErrNoDevice {
		t.Errorf("removing a device twice: %v", err)
	}
	pub, _ = omemo.ParseDeviceList(items(t, ctx, check, "", omemo.DeviceListNode, "list"))
	if slices.Contains(pub, extra.ID) {
		t.Errorf("device list after RemoveDevice: %v", pub)
	}
	if err := bot.SayFrom(ctx, alias, extra.ID, "x"); err != operator.ErrNoDevice {
		t.Errorf("SayFrom a removed device: %v", err)
	}
	if err := bot.End(ctx, alias); err != nil {
		t.Errorf("End in an OMEMO chat: %v", err)
	}
	if strings.Contains(logs.String(), "hello, operator") {
		t.Error("a message reached the component's log")
	}
}

// lockedLog collects the component's log.
type lockedLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// poll waits for cond, bounded by ctx (no sleeps as waits).
func poll(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestOMEMOChatTurnsOTR: an alias the component told a device list of
// (an OMEMO chat) and with which an OTR session is then made (a transfer
// back to this operator that picked OTR) is answered with OTR; a new
// device list makes it an OMEMO chat again. The far end here is a plain
// account standing in for the alias.
func TestOMEMOChatTurnsOTR(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	srv := xmpptest.Prosody(t, xmpptest.Options{Components: map[string]string{omemoDomain: omemoSecret}, HostModules: []string{"pep"}})
	srv.MustRegister(t, "op", "pw-op")
	srv.MustRegister(t, "vis", "pw-vis")
	opKey, visKey := testKeys(t)
	opc := srv.MustDial(t, "op", "pw-op", "desk")
	bot, err := operator.New(operator.Config{Client: opc, Key: opKey, OMEMODevices: 1, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	xmpptest.RunUntilCleanup(t, "operator", bot.Run)
	visc := srv.MustDial(t, "vis", "pw-vis", "web")
	alias := "vis@" + xmpptest.Domain
	event := func() {
		t.Helper()
		if err := visc.SendRaw(ctx, "<message type='headline' to='"+opc.JID().String()+"'>"+
			omemoxml.Event(omemo.DeviceListNode, omemo.DeviceList{4711}.Marshal())+"</message>"); err != nil {
			t.Fatal(err)
		}
		if ev, err := bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Keys }); err != nil || !slices.Equal(ev.List, []uint32{4711}) {
			t.Fatalf("keys event %+v, %v", ev, err)
		}
	}
	event()
	// OMEMO: the bot reads device 4711's bundle at the alias, which this
	// plain account does not have.
	if err := bot.Say(ctx, alias, "over OMEMO?"); err == nil || !strings.Contains(err.Error(), "bundle") {
		t.Fatalf("Say in an OMEMO chat without the visitor's bundle: %v, want an error about the bundle", err)
	}
	v, _ := startOTR(t, ctx, visc, opc.JID().String(), visKey)
	if _, err := bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Secure && !e.OMEMO }); err != nil {
		t.Fatal(err)
	}
	if err := bot.Say(ctx, alias, "over OTR"); err != nil {
		t.Fatal(err)
	}
	v.pump(ctx, func(show []byte, _ []otr.Event) bool { return string(show) == "over OTR" })
	event()
	if err := bot.Say(ctx, alias, "over OMEMO again?"); err == nil || !strings.Contains(err.Error(), "bundle") {
		t.Fatalf("Say after a new device list: %v, want OMEMO's error about the bundle", err)
	}
}
