package component

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/xml"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"otrdesk.im/otrdesk/internal/libotrtest"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/otr"
)

// OTR end to end through the component: real libotr 4.1.1 as the
// operator's client (a C helper), otrdesk's Go engine as the visitor's
// widget, and the real component and XMPP server in between.

// canary is put in every plaintext the OTR tests send; it must never appear
// in the store file, the log, the metrics or any stanza outside <body/>.
const canary = "body-canary-7Qx9"

var (
	visitorKeyOnce sync.Once
	visitorKey     *otr.PrivateKey
)

func goKey(t *testing.T) *otr.PrivateKey {
	visitorKeyOnce.Do(func() {
		k, err := otr.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		visitorKey = k
	})
	if visitorKey == nil {
		t.Fatal("no visitor key")
	}
	return visitorKey
}

// otrVisitor is an anonymous visitor whose widget is the Go OTR engine.
type otrVisitor struct {
	t     *testing.T
	cl    *xmpptest.Client
	conv  *otr.Conversation
	skinJ string
	shown []string
	seen  []xmpptest.Stanza // every stanza from the skin
	// secureWith counts "gone secure" events per operator instance tag.
	secureWith map[uint32]int
	// drop, when set, loses outgoing messages for which it returns true.
	drop func([]byte) bool
}

func (s *suite) newOTRVisitor(t *testing.T, skin string) *otrVisitor {
	conv, err := otr.NewConversation(otr.Config{PrivateKey: goKey(t), Policy: otr.PolicyManual, HeartbeatInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &otrVisitor{t: t, cl: s.srv.MustDialAnonymous(t), conv: conv, skinJ: skin + "@" + itDomain}
}

func (v *otrVisitor) sendAll(msgs [][]byte) {
	v.t.Helper()
	for _, m := range msgs {
		if v.drop != nil && v.drop(m) {
			continue
		}
		send(v.t, v.cl, v.skinJ, string(m))
	}
}

// say encrypts text and sends it.
func (v *otrVisitor) say(text string) {
	v.t.Helper()
	out, err := v.conv.Send([]byte(text))
	if err != nil {
		v.t.Fatal(err)
	}
	v.sendAll(out)
}

// step handles one queued OTR message from the skin, if any.
func (v *otrVisitor) step() bool {
	st, ok := takeOTR(v.cl, v.skinJ)
	if !ok {
		return false
	}
	v.seen = append(v.seen, st)
	show, out, events, err := v.conv.Receive([]byte(st.Body))
	if err != nil {
		v.t.Fatalf("visitor engine: %v", err)
	}
	for _, e := range events {
		if e.Kind == otr.EventGoneSecure || e.Kind == otr.EventStillSecure {
			if v.secureWith == nil {
				v.secureWith = map[uint32]int{}
			}
			v.secureWith[e.Instance]++
		}
	}
	if len(show) > 0 {
		v.shown = append(v.shown, string(show))
	}
	v.sendAll(out)
	return true
}

// otrOperator is one operator resource whose client is libotr.
type otrOperator struct {
	t       *testing.T
	cl      *xmpptest.Client
	peer    *libotrtest.Peer
	alias   string // the chat it serves
	secured int    // "secure" events from libotr
	shown   []string
	seen    []xmpptest.Stanza
}

func (s *suite) newOTROperator(t *testing.T, user, resource, skin string, approve bool, keyFile string, maxSize int) *otrOperator {
	cl := s.operator(t, user, resource, skin, approve)
	peer := libotrtest.StartPeer(t, libotrtest.PeerConfig{
		Account: user + "@example.org", PeerName: "visitor@" + itDomain, KeyFile: keyFile, MaxSize: maxSize,
	})
	return &otrOperator{t: t, cl: cl, peer: peer}
}

// sendAll sends libotr's messages the way a carbons-aware OTR client does:
// marked private, so the server does not copy its own ciphertext to the
// account's other resources.
func (o *otrOperator) sendAll(msgs [][]byte) {
	o.t.Helper()
	for _, m := range msgs {
		var b bytes.Buffer
		xml.EscapeText(&b, m)
		err := o.cl.SendRaw(ctxT(o.t), `<message type='chat' to='`+o.alias+`'><body>`+b.String()+
			`</body><private xmlns='urn:xmpp:carbons:2'/><no-copy xmlns='urn:xmpp:hints'/></message>`)
		if err != nil {
			o.t.Fatal(err)
		}
	}
}

func (o *otrOperator) step() bool {
	st, ok := takeOTR(o.cl, "")
	if !ok {
		return false
	}
	if !strings.HasPrefix(st.From, "guest-") {
		o.t.Fatalf("OTR message to the operator not from an alias: %s", st)
	}
	if o.alias == "" {
		o.alias = st.From
	}
	o.seen = append(o.seen, st)
	r := o.peer.Receive([]byte(st.Body))
	if r.Has("secure") {
		o.secured++
	}
	for _, sh := range r.Shown {
		o.shown = append(o.shown, string(sh.Text))
	}
	o.sendAll(r.Out)
	return true
}

// takeOTR takes the first queued message with an OTR body (from "from", or
// from anyone when empty) without waiting.
func takeOTR(cl *xmpptest.Client, from string) (xmpptest.Stanza, bool) {
	for _, st := range cl.Pending() {
		if st.Name == "message" && st.Type != "error" && strings.Contains(st.Body, "?OTR") && (from == "" || st.From == from) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			got, err := cl.Next(ctx, func(x xmpptest.Stanza) bool { return bytes.Equal(x.Raw, st.Raw) })
			cancel()
			if err != nil {
				return xmpptest.Stanza{}, false
			}
			return got, true
		}
	}
	return xmpptest.Stanza{}, false
}

type stepper interface{ step() bool }

// pump moves OTR messages between the parties until cond holds, with a
// bounded deadline.
func pump(t *testing.T, what string, cond func() bool, parties ...stepper) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		moved := false
		for _, p := range parties {
			if p.step() {
				moved = true
			}
		}
		if moved {
			continue
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// secure runs the AKE, started by the visitor, until both ends are
// encrypted.
func secure(t *testing.T, v *otrVisitor, op *otrOperator) {
	t.Helper()
	q, err := v.conv.Start()
	if err != nil {
		t.Fatal(err)
	}
	v.sendAll(q)
	pump(t, "AKE", func() bool {
		return v.secureWith[op.peer.InstanceTag()] > 0 && op.secured > 0
	}, v, op)
}

// assertPrivate checks that every OTR stanza carries the hints (the
// server strips <private/> on delivery, as XEP-0280 says; that it was sent
// shows in the carbons test) and that nothing outside <body/> holds the
// canary.
func assertPrivate(t *testing.T, sts []xmpptest.Stanza) {
	t.Helper()
	for _, st := range sts {
		if !st.HasChild(nsHints, "no-copy") || !st.HasChild(nsHints, "no-store") {
			t.Errorf("OTR stanza without no-copy/no-store: %s", st.OutsideBody())
		}
		if bytes.Contains(st.OutsideBody(), []byte(canary)) {
			t.Errorf("canary outside the body: %s", st.OutsideBody())
		}
	}
}

func (s *suite) otrEncryptedChat(t *testing.T) {
	v := s.newOTRVisitor(t, "secure")
	op := s.newOTROperator(t, "op7", "pidgin", "secure", true, "", 0)
	secure(t, v, op)
	v.say(canary + " from the visitor")
	pump(t, "operator reads", func() bool { return len(op.shown) > 0 }, v, op)
	if op.shown[0] != canary+" from the visitor" {
		t.Fatalf("libotr showed %q", op.shown)
	}
	op.sendAll(op.peer.Send([]byte(canary + " from the operator")).Out)
	pump(t, "visitor reads", func() bool { return len(v.shown) > 0 }, v, op)
	if v.shown[0] != canary+" from the operator" {
		t.Fatalf("visitor showed %q", v.shown)
	}
	assertPrivate(t, op.seen)
	assertPrivate(t, v.seen)
	s.canaryStanzas = append(s.canaryStanzas, op.seen...)
	s.canaryStanzas = append(s.canaryStanzas, v.seen...)
	s.endChat(t, v.cl, nil, "secure")
}

// Fragments: libotr with a small maximum message size.
func (s *suite) otrFragments(t *testing.T) {
	v := s.newOTRVisitor(t, "secure")
	op := s.newOTROperator(t, "op7", "small", "secure", false, "", 160)
	secure(t, v, op)
	long := canary + strings.Repeat(" and more words", 20)
	op.sendAll(op.peer.Send([]byte(long)).Out)
	pump(t, "visitor reassembles", func() bool { return len(v.shown) > 0 }, v, op)
	if v.shown[0] != long {
		t.Fatalf("visitor showed %q", v.shown)
	}
	frags := 0
	for _, st := range v.seen {
		if otr.Classify([]byte(st.Body)).Kind == otr.KindFragment {
			frags++
		}
	}
	if frags < 2 {
		t.Fatalf("libotr did not fragment (%d fragments)", frags)
	}
	assertPrivate(t, v.seen)
	s.endChat(t, v.cl, nil, "secure")
}

// Two resources of one operator with carbons: each message reaches exactly
// the instance it is for, no ciphertext is carbon-copied, and the operator
// switches device with a new AKE.
func (s *suite) otrTwoResources(t *testing.T) {
	key := t.TempDir() + "/otr.private_key"
	a := s.newOTROperator(t, "op8", "desktop", "multi", true, key, 0)
	if err := a.cl.EnableCarbons(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	cl := s.srv.MustDial(t, "op8", itPassword, "phone")
	if err := cl.Presence(ctxT(t), "", -1); err != nil { // lower priority: the chat goes to the desktop
		t.Fatal(err)
	}
	if err := cl.EnableCarbons(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	b := &otrOperator{t: t, cl: cl, peer: libotrtest.StartPeer(t, libotrtest.PeerConfig{
		Account: "op8@example.org", PeerName: "visitor@" + itDomain, KeyFile: key})}
	s.poll("both resources seen", func() bool { return s.onlineCount("op8@example.org") == 2 })

	v := s.newOTRVisitor(t, "multi")
	secure(t, v, a)
	b.alias = a.alias
	v.say(canary + " for the desktop")
	pump(t, "desktop reads", func() bool { return len(a.shown) > 0 }, v, a)

	// Barrier, then the phone must have nothing: no relayed copy, no carbon.
	if err := b.cl.Ping(ctxT(t), a.alias); err != nil {
		t.Fatal(err)
	}
	for _, st := range b.cl.Pending() {
		if strings.Contains(string(st.Raw), "?OTR") {
			t.Fatalf("ciphertext reached the other resource: %s", st.OutsideBody())
		}
	}

	// The operator picks up the phone and starts a new AKE from there.
	b.sendAll(b.peer.Query().Out)
	pump(t, "AKE with the phone", func() bool {
		return b.secured > 0 && v.secureWith[b.peer.InstanceTag()] > 0
	}, v, b)
	if err := v.conv.SetInstance(b.peer.InstanceTag()); err != nil {
		t.Fatal(err)
	}
	v.say(canary + " for the phone")
	pump(t, "phone reads", func() bool { return len(b.shown) > 0 }, v, b)
	if b.shown[0] != canary+" for the phone" {
		t.Fatalf("phone showed %q", b.shown)
	}
	// A message for the desktop's instance still goes to the desktop.
	if err := v.conv.SetInstance(a.peer.InstanceTag()); err != nil {
		t.Fatal(err)
	}
	v.say(canary + " for the desktop again")
	pump(t, "desktop reads again", func() bool { return len(a.shown) > 1 }, v, a)
	if a.shown[1] != canary+" for the desktop again" {
		t.Fatalf("desktop showed %q", a.shown)
	}
	if err := a.cl.Ping(ctxT(t), a.alias); err != nil {
		t.Fatal(err)
	}
	if err := b.cl.Ping(ctxT(t), a.alias); err != nil {
		t.Fatal(err)
	}
	for _, op := range []*otrOperator{a, b} {
		for _, st := range op.cl.Pending() {
			if strings.Contains(string(st.Raw), "?OTR") {
				t.Fatalf("stray ciphertext at %s: %s", op.cl.JID(), st.OutsideBody())
			}
		}
		assertPrivate(t, op.seen)
	}
	s.endChat(t, v.cl, nil, "multi")
}

// require: no plaintext crosses in either direction.
func (s *suite) otrRequire(t *testing.T) {
	ctx := ctxT(t)
	op := s.newOTROperator(t, "op9", "main", "locked", true, "", 0)
	v := s.newOTRVisitor(t, "locked")
	send(t, v.cl, v.skinJ, canary+" plaintext from the visitor")
	next(t, v.cl, "explanation", func(st xmpptest.Stanza) bool {
		return st.From == v.skinJ && strings.Contains(st.Body, "requires encryption")
	})
	// The component's query starts the AKE from the visitor's engine.
	pump(t, "AKE after the refusal", func() bool {
		return v.secureWith[op.peer.InstanceTag()] > 0 && op.secured > 0
	}, v, op)
	if len(op.shown) != 0 {
		t.Fatalf("plaintext reached the operator: %q", op.shown)
	}
	if op.alias == "" {
		t.Fatal("no alias learned")
	}
	if err := op.cl.Message(ctx, op.alias, canary+" plaintext from the operator"); err != nil {
		t.Fatal(err)
	}
	next(t, op.cl, "explanation", func(st xmpptest.Stanza) bool {
		return st.From == op.alias && strings.Contains(st.Body, "requires encryption")
	})
	if err := v.cl.Ping(ctx, v.skinJ); err != nil {
		t.Fatal(err)
	}
	if err := op.cl.Ping(ctx, op.alias); err != nil {
		t.Fatal(err)
	}
	for _, st := range v.cl.Pending() {
		if strings.Contains(st.Body, canary) {
			t.Fatalf("operator plaintext relayed: %s", st)
		}
	}
	s.endChat(t, v.cl, nil, "locked")
}

// A stalled AKE (the Signature message is lost) is restarted with a query
// and the second AKE succeeds.
func (s *suite) otrStalledAKE(t *testing.T) {
	v := s.newOTRVisitor(t, "secure")
	op := s.newOTROperator(t, "op7", "flaky", "secure", false, "", 0)
	q, err := v.conv.Start()
	if err != nil {
		t.Fatal(err)
	}
	v.sendAll(q)
	// Run the AKE but drop the visitor's Signature message on the floor.
	dropped := false
	v.drop = func(m []byte) bool {
		if !dropped && otr.Classify(m).Type == otr.Sig {
			dropped = true
			return true
		}
		return false
	}
	pump(t, "AKE up to the lost Signature", func() bool { return dropped }, v, op)
	// The component notices and sends a query; the visitor's engine starts
	// over and this time everything arrives.
	pump(t, "AKE after the restart", func() bool {
		return op.secured > 0 && v.secureWith[op.peer.InstanceTag()] >= 2
	}, v, op)
	if n := metricValue(s.c.m.stalls); n < 1 {
		t.Fatalf("stall not counted")
	}
	s.endChat(t, v.cl, nil, "secure")
}

// Transfer re-keys with the new operator; the old one receives nothing more.
func (s *suite) otrTransfer(t *testing.T) {
	ctx := ctxT(t)
	old := s.newOTROperator(t, "op7", "first", "secure", false, "", 0)
	v := s.newOTRVisitor(t, "secure")
	secure(t, v, old)
	id := strings.TrimSuffix(old.alias, "@"+itDomain)
	nu := s.newOTROperator(t, "op10", "second", "secure", true, "", 0)
	if err := old.cl.Message(ctx, itDomain, "transfer "+id+" op10@example.org"); err != nil {
		t.Fatal(err)
	}
	next(t, v.cl, "transferred", statusFrom(v.skinJ, "transferred"))
	next(t, v.cl, "assigned", statusFrom(v.skinJ, "assigned"))
	next(t, old.cl, "told", func(st xmpptest.Stanza) bool { return st.From == old.alias && strings.Contains(st.Body, "transferred") })
	// The widget starts a fresh AKE on "transferred"/"assigned".
	nu.alias = old.alias
	secure(t, v, nu)
	v.say(canary + " after the transfer")
	pump(t, "new operator reads", func() bool { return len(nu.shown) > 0 }, v, nu)
	if err := old.cl.Ping(ctx, ""); err != nil {
		t.Fatal(err)
	}
	for _, st := range old.cl.Pending() {
		if st.From == old.alias && strings.Contains(st.Body, "?OTR") {
			t.Fatalf("old operator still receives the chat: %s", st.OutsideBody())
		}
	}
	s.endChat(t, v.cl, nil, "secure")
}

// canaryEverywhere searches the store file, the log and the metrics for
// the canary after all OTR tests ran.
func (s *suite) canaryEverywhere(t *testing.T) {
	db, err := os.ReadFile(s.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(db, []byte(canary)) {
		t.Error("canary in the store file")
	}
	if strings.Contains(s.logs.String(), canary) {
		t.Error("canary in the log")
	}
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if strings.Contains(mf.String(), canary) {
			t.Errorf("canary in metric %s", mf.GetName())
		}
	}
	for _, st := range s.canaryStanzas {
		if bytes.Contains(st.OutsideBody(), []byte(canary)) {
			t.Errorf("canary outside a body: %s", st.OutsideBody())
		}
	}
}
