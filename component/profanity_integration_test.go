package component

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"otrdesk.im/otrdesk/internal/profanity"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/omemo"
	"otrdesk.im/otrdesk/store"
)

// Profanity as the operator: an OMEMO chat between a visitor (a Go client
// with package omemo, doing what docs/control-channel.md asks of the
// widget) and a real operator client, Profanity 0.13 (internal/profanity),
// through otrdesk. Nothing on the operator's side was written for otrdesk:
// Profanity finds the alias's devices from the PEP event and the PEP
// requests the component answers, decrypts the visitor's message and
// encrypts its answer to the visitor's device.

// TestProfanityOMEMOProsody runs it on Prosody (with mod_pep).
func TestProfanityOMEMOProsody(t *testing.T) { runProfanityOMEMO(t, omemoProsody(t)) }

// TestProfanityOMEMOEjabberd runs it on ejabberd.
func TestProfanityOMEMOEjabberd(t *testing.T) { runProfanityOMEMO(t, omemoEjabberd(t)) }

// What the visitor writes and what Profanity answers: neither may reach
// the component's log, store or metrics.
const (
	profCanary = "body-canary-omemo-Kq3v"
	profReply  = "body-reply-omemo-Zt8w"
	profPlain  = "body-plain-before-omemo-Jd2n"
)

func runProfanityOMEMO(t *testing.T, srv *xmpptest.Server) {
	const skin, opAccount = "desk", "prof@example.org"
	skinJ := skin + "@" + itDomain
	dbPath := filepath.Join(t.TempDir(), "otrdesk.db")
	st, err := store.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateSkin(store.Skin{Name: skin, Title: "Skin desk", Policy: store.PolicyRequire,
		Operators: []string{opAccount}}); err != nil {
		t.Fatal(err)
	}
	srv.MustRegister(t, "prof", itPassword)
	logs := &lockedBuffer{}
	s := &suite{t: t, srv: srv, st: st, logs: logs, dbPath: dbPath, cfg: Config{
		Domain: itDomain, Server: srv.ComponentAddr, Secret: itSecret,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}}
	s.start()
	t.Cleanup(s.stop)
	t.Cleanup(s.logsOnFailure)
	ctx := ctxT(t)

	host, port, err := net.SplitHostPort(srv.C2SAddr)
	if err != nil {
		t.Fatal(err)
	}
	portN, _ := strconv.Atoi(port)
	began := time.Now()
	p := profanity.Start(t, profanity.Config{JID: opAccount, Password: itPassword, Host: host, Port: portN})
	t.Logf("Profanity logged in with OMEMO device %d in %v", p.DeviceID(), time.Since(began).Round(time.Millisecond))

	// The operator approves the skin's subscription request and adds the
	// skin back (ejabberd pushes device lists only to contacts the
	// account is subscribed to). The request came while Profanity logged
	// in and has scrolled away since; /sub allow would pre-approve it
	// anyway. The skin becoming available is what shows it worked.
	p.Cmd("/sub allow " + skinJ)
	p.Cmd("/sub request " + skinJ)
	s.poll(skin+" available", func() bool { return s.c.Available(skin) })

	// The component reads, as the skin, the device Profanity published,
	// with the identity key Profanity shows.
	var devs []OperatorDevice
	for deadline := time.Now().Add(waitLimit); ; {
		devs, err = s.c.OperatorDevices(ctx, opAccount)
		if err == nil && len(devs) == 1 && devs[0].ID == p.DeviceID() && devs[0].HasBundle {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the component never read Profanity's device %d: last read %+v, %v", p.DeviceID(), devs, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	fp, err := omemo.ParseFingerprint(p.Fingerprint())
	if err != nil {
		t.Fatal(err)
	}
	if devs[0].Fingerprint != fp {
		t.Fatalf("the component read identity key %s, Profanity shows %s", devs[0].Fingerprint, fp)
	}
	// From now on that read is the one in use: what follows must not
	// depend on when the component happens to read again.
	s.c.events <- evFunc(func(r *router) { r.omemo.fresh = time.Hour })

	t.Run("NotTrusted", func(t *testing.T) {
		// No device of the operator is trusted for the skin: the chat is
		// OTR, and the widget is given no OMEMO device.
		v := newOMEMOVisitor(t, s.srv, skinJ)
		send(t, v.cl, skinJ, "?OTRv23?")
		status := next(t, v.cl, "assigned status", statusFrom(skinJ, "assigned"))
		if e2ee := rawAttr(status.Raw, "e2ee"); e2ee != e2eeOTR {
			t.Fatalf("e2ee=%q with no trusted device, want otr: %s", e2ee, status.Raw)
		}
		if _, err := v.operatorBundle(ctx, p.DeviceID()); !errors.Is(err, xmpptest.ErrIQ) {
			t.Fatalf("the widget was given an untrusted device's bundle (err %v)", err)
		}
		s.endChat(t, v.cl, nil, skin)

		// Trusted under another identity key (the device was made again
		// with new keys since an admin trusted it): still not used.
		other := testBundle(0x61).IdentityKey
		if err := s.st.PutDevice(store.TrustedDevice{Skin: skin, Account: opAccount, Device: p.DeviceID(), Fingerprint: other[:]}); err != nil {
			t.Fatal(err)
		}
		v = newOMEMOVisitor(t, s.srv, skinJ)
		send(t, v.cl, skinJ, "?OTRv23?")
		status = next(t, v.cl, "assigned status", statusFrom(skinJ, "assigned"))
		if e2ee := rawAttr(status.Raw, "e2ee"); e2ee != e2eeOTR {
			t.Fatalf("e2ee=%q with the device trusted under another key, want otr: %s", e2ee, status.Raw)
		}
		s.endChat(t, v.cl, nil, skin)
	})

	var beforeAnswer []xmpptest.Stanza // what the visitor got before Profanity's answer
	t.Run("Chat", func(t *testing.T) {
		if err := s.st.PutDevice(store.TrustedDevice{Skin: skin, Account: opAccount, Device: p.DeviceID(), Fingerprint: fp[:]}); err != nil {
			t.Fatal(err)
		}
		v := newOMEMOVisitor(t, s.srv, skinJ)
		// The widget opens with its usual OTR query; in an OMEMO chat the
		// component keeps it from the operator.
		send(t, v.cl, skinJ, "?OTRv23?")
		status := next(t, v.cl, "assigned status", statusFrom(skinJ, "assigned"))
		if e2ee := rawAttr(status.Raw, "e2ee"); e2ee != e2eeOMEMO {
			t.Fatalf("e2ee=%q with Profanity's device trusted, want omemo: %s", e2ee, status.Raw)
		}
		// The operator's devices, as the widget asks its skin for them:
		// exactly Profanity's, with the key Profanity shows.
		list, err := v.operatorDevices(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0] != p.DeviceID() {
			t.Fatalf("operator devices %v, want [%d]", list, p.DeviceID())
		}
		bundle, err := v.operatorBundle(ctx, p.DeviceID())
		if err != nil {
			t.Fatal(err)
		}
		if bundle.IdentityKey.Fingerprint() != fp {
			t.Fatalf("the widget was given identity key %s, Profanity shows %s", bundle.IdentityKey.Fingerprint(), fp)
		}
		opDev := omemo.Address{JID: skinJ, Device: p.DeviceID()}
		if err := v.dev.Pin(opDev, bundle.IdentityKey); err != nil {
			t.Fatal(err)
		}
		enc, err := v.dev.Encrypt([]byte(profCanary), []omemo.Recipient{{Address: opDev, Bundle: bundle}})
		if err != nil {
			t.Fatal(err)
		}
		if err := v.cl.SendRaw(ctx, `<message type='chat' to='`+skinJ+`'><body>I sent you an OMEMO encrypted message.</body>`+
			string(enc.Marshal())+`<encryption xmlns='urn:xmpp:eme:0' namespace='eu.siacs.conversations.axolotl' name='OMEMO'/></message>`); err != nil {
			t.Fatal(err)
		}

		// Profanity: the chat with the alias, the canary decrypted.
		alias := s.aliasOf(skin, v.cl.JID().String())
		p.WaitFor(ctx, regexp.MustCompile(regexp.QuoteMeta(alias)))
		p.Cmd("/msg " + alias)
		// "~" marks a message Profanity decrypted with OMEMO.
		p.WaitFor(ctx, regexp.MustCompile(`~ `+regexp.QuoteMeta(alias+": "+profCanary)))

		// Profanity does not turn OMEMO on by itself in a window that
		// opened with an OMEMO message: what the operator types first goes
		// out in plaintext, and the skin's "require" keeps it from the
		// visitor.
		p.Cmd(profPlain)
		p.WaitFor(ctx, regexp.MustCompile(`so your message was not sent`))

		// Profanity answers with OMEMO on, encrypted to the visitor's
		// device. The operator trusts its key first, as a careful operator
		// would; "(trusted)" shows that Profanity holds that key for the
		// alias. (Profanity 0.13.1 would answer without it too: in its
		// "manual" trust mode it still encrypts to a device whose prekey
		// message built the session.)
		vfp, _ := v.dev.Fingerprint().MarshalText()
		p.Cmd("/omemo trust " + alias + " " + profanity.FormatFingerprint(string(vfp)))
		p.WaitFor(ctx, regexp.MustCompile(regexp.QuoteMeta(profanity.FormatFingerprint(string(vfp))+" (trusted)")))
		p.Cmd("/omemo start")
		p.Cmd(profReply)
		got := next(t, v.cl, "Profanity's encrypted answer", func(st xmpptest.Stanza) bool {
			return st.Name == "message" && st.From == skinJ && st.HasChild(nsOMEMO, "encrypted")
		})
		if bytes.Contains(got.Raw, []byte(profReply)) {
			t.Fatalf("the answer crossed in plaintext: %s", got.Raw)
		}
		e, err := omemo.ParseEncrypted(childXML(t, got.Raw, nsOMEMO, "encrypted"))
		if err != nil {
			t.Fatal(err)
		}
		dm, err := v.dev.Decrypt(skinJ, e)
		if err != nil {
			t.Fatalf("decrypting Profanity's answer: %v", err)
		}
		if string(dm.Plaintext) != profReply || dm.From != opDev || dm.Fingerprint != fp {
			t.Fatalf("decrypted %q from %+v (key %s)", dm.Plaintext, dm.From, dm.Fingerprint)
		}
		assertNotIn(t, got, opAccount, "profanity.")
		// Everything else the visitor got meanwhile (it arrived before the
		// answer: one server, one stream).
		beforeAnswer = v.cl.Pending()
		for _, st := range beforeAnswer {
			if bytes.Contains(st.Raw, []byte(profPlain)) {
				t.Errorf("the operator's plaintext reached the visitor: %s", st.Raw)
			}
		}
	})

	t.Run("NoOTRInOMEMOChat", func(t *testing.T) {
		// The refusal above must not start OTR: in an OMEMO chat it sends
		// no OTR query (Profanity would answer it with an AKE), and an
		// operator's OTR is not relayed to a visitor told the chat is OMEMO.
		if beforeAnswer == nil {
			t.Fatal("the chat above did not get this far")
		}
		for _, st := range beforeAnswer {
			if st.Name == "message" && strings.Contains(st.Body, "?OTR") {
				t.Errorf("OTR reached the visitor of an OMEMO chat: %.80s", st.Body)
			}
		}
		if strings.Contains(p.Screen(), "Encryption is starting") {
			t.Error("the operator was told encryption is starting, with OMEMO to turn on")
		}
	})

	t.Run("Canary", func(t *testing.T) {
		db, err := os.ReadFile(dbPath)
		if err != nil {
			t.Fatal(err)
		}
		mfs, err := s.reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var metrics strings.Builder
		for _, mf := range mfs {
			metrics.WriteString(mf.String())
		}
		plog, err := os.ReadFile(p.LogFile())
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for _, secret := range []string{profCanary, profReply, profPlain} {
			if bytes.Contains(db, []byte(secret)) {
				t.Errorf("%s in the store file", secret)
			}
			if strings.Contains(s.logs.String(), secret) {
				t.Errorf("%s in the component's log", secret)
			}
			if strings.Contains(metrics.String(), secret) {
				t.Errorf("%s in the metrics", secret)
			}
			// Profanity's own log: the driver keeps it at a level without
			// message bodies, so that a failed run can show it.
			if bytes.Contains(plog, []byte(secret)) {
				t.Errorf("%s in Profanity's log", secret)
			}
		}
	})
}

// aliasOf is the alias of a visitor's active chat in a skin.
func (s *suite) aliasOf(skin, real string) string {
	got := make(chan string, 1)
	s.c.events <- evFunc(func(r *router) {
		if ch := r.byReal[realKey(skin, real)]; ch != nil {
			got <- r.aliasJID(ch.rec.ID)
		}
		close(got)
	})
	alias := <-got
	if alias == "" {
		s.t.Fatalf("no active chat for the visitor in %s", skin)
	}
	return alias
}

// omemoVisitor is an anonymous visitor with an OMEMO device that handed
// its keys to the skin, as the widget does before its first message.
type omemoVisitor struct {
	cl    *xmpptest.Client
	dev   *omemo.Device
	skinJ string
}

func newOMEMOVisitor(t *testing.T, srv *xmpptest.Server, skinJ string) *omemoVisitor {
	t.Helper()
	dev, err := omemo.NewDevice(omemo.Options{PreKeys: maxVisitorPreKeys})
	if err != nil {
		t.Fatal(err)
	}
	v := &omemoVisitor{cl: srv.MustDialAnonymous(t), dev: dev, skinJ: skinJ}
	ctx := ctxT(t)
	for node, payload := range map[string][]byte{
		omemo.DeviceListNode:       omemo.DeviceList{dev.ID()}.Marshal(),
		omemo.BundleNode(dev.ID()): dev.Bundle().Marshal(),
	} {
		if _, err := v.cl.IQ(ctx, "set", skinJ, `<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='`+node+
			`'><item id='current'>`+string(payload)+`</item></publish></pubsub>`); err != nil {
			t.Fatalf("handing over %s: %v", node, err)
		}
	}
	return v
}

// operatorDevices asks the skin for the operator's device list.
func (v *omemoVisitor) operatorDevices(ctx context.Context) (omemo.DeviceList, error) {
	res, err := v.cl.IQ(ctx, "get", v.skinJ, `<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='`+omemo.DeviceListNode+`'/></pubsub>`)
	if err != nil {
		return nil, err
	}
	return omemo.ParseDeviceList(findChildXML(res.Raw, nsOMEMO, "list"))
}

// operatorBundle asks the skin for the bundle of one of the operator's
// devices.
func (v *omemoVisitor) operatorBundle(ctx context.Context, id uint32) (*omemo.Bundle, error) {
	res, err := v.cl.IQ(ctx, "get", v.skinJ, `<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='`+omemo.BundleNode(id)+`'/></pubsub>`)
	if err != nil {
		return nil, err
	}
	return omemo.ParseBundle(findChildXML(res.Raw, nsOMEMO, "bundle"))
}

// rawAttr is the value of the first attribute named name in raw XML.
func rawAttr(raw []byte, name string) string {
	m := regexp.MustCompile(`\s` + name + `=(?:"([^"]*)"|'([^']*)')`).FindSubmatch(raw)
	if m == nil {
		return ""
	}
	return string(m[1]) + string(m[2])
}

// childXML is the first element {space}local anywhere in raw, as XML of
// its own; it fails the test when there is none.
func childXML(t *testing.T, raw []byte, space, local string) []byte {
	t.Helper()
	b := findChildXML(raw, space, local)
	if b == nil {
		t.Fatalf("no {%s}%s in %s", space, local, raw)
	}
	return b
}

// findChildXML re-encodes the first element {space}local in raw, or
// returns nil.
func findChildXML(raw []byte, space, local string) []byte {
	d := xml.NewDecoder(bytes.NewReader(raw))
	for {
		tok, err := d.Token()
		if err != nil {
			return nil
		}
		start, ok := tok.(xml.StartElement)
		if !ok || start.Name.Space != space || start.Name.Local != local {
			continue
		}
		var out bytes.Buffer
		enc := xml.NewEncoder(&out)
		depth := 0
		for tok := xml.Token(start); ; {
			switch x := tok.(type) {
			case xml.StartElement:
				depth++
				x.Attr = withoutXMLNS(x.Attr)
				tok = x
			case xml.EndElement:
				depth--
			}
			if err := enc.EncodeToken(tok); err != nil {
				return nil
			}
			if depth == 0 {
				break
			}
			if tok, err = d.Token(); err != nil && !errors.Is(err, io.EOF) {
				return nil
			}
		}
		if enc.Flush() != nil {
			return nil
		}
		return out.Bytes()
	}
}

// withoutXMLNS drops namespace declarations: the encoder writes its own
// from each element's name.
func withoutXMLNS(attrs []xml.Attr) []xml.Attr {
	out := attrs[:0:0]
	for _, a := range attrs {
		if a.Name.Space != "xmlns" && a.Name.Local != "xmlns" {
			out = append(out, a)
		}
	}
	return out
}
