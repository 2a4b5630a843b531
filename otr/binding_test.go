package otr

import (
	"errors"
	"strings"
	"testing"
)

// The tests in this file play a hostile server between a visitor (the
// widget's engine, policy "require") and the real operator: it sees every
// message, delivers it to whom it likes, and runs an OTR client of its own
// with its own key (the attacker) under an instance tag of its choosing.
// What the visitor typed after the widget bound itself to the operator's
// session must reach that session only.

// toVisitor delivers everything the peers have sent to the visitor.
func toVisitor(v *endpoint, peers ...*endpoint) {
	for _, p := range peers {
		out := p.out
		p.out = nil
		for _, m := range out {
			v.receive(m)
		}
	}
}

// fromVisitor delivers everything the visitor has sent to every peer, as a
// server that copies all traffic to its own client would; each engine
// drops what is addressed to another instance of the peer account.
func fromVisitor(v *endpoint, peers ...*endpoint) {
	out := v.out
	v.out = nil
	for _, m := range out {
		for _, p := range peers {
			p.receive(m)
		}
	}
}

// exchange moves messages between the visitor and the peers until none
// is left.
func exchange(t *testing.T, v *endpoint, peers ...*endpoint) {
	t.Helper()
	for i := 0; i < 100; i++ {
		n := len(v.out)
		for _, p := range peers {
			n += len(p.out)
		}
		if n == 0 {
			return
		}
		fromVisitor(v, peers...)
		toVisitor(v, peers...)
	}
	t.Fatal("messages never settled")
}

// twoAKEs answers the visitor's query from two instances of the peer
// account at once and lets first's AKE finish at the visitor before
// second's.
func twoAKEs(t *testing.T, v, first, second *endpoint) {
	t.Helper()
	v.out, _ = v.c.Start()
	fromVisitor(v, first, second) // the query: each answers with a DH-Commit
	toVisitor(v, first, second)   // the visitor answers each with a DH-Key
	fromVisitor(v, first, second) // each sends its Reveal Signature
	toVisitor(v, first)           // first's AKE finishes at the visitor
	toVisitor(v, second)          // then second's
	exchange(t, v, first, second) // the Signatures
	if !first.c.IsEncrypted() || !second.c.IsEncrypted() || len(v.c.Instances()) != 2 {
		t.Fatalf("AKEs did not finish: %v %v, instances %x; errors %v %v %v",
			first.c.IsEncrypted(), second.c.IsEncrypted(), v.c.Instances(), v.errs, first.errs, second.errs)
	}
	var last Event
	for _, e := range v.events {
		if e.Kind == EventGoneSecure || e.Kind == EventStillSecure {
			last = e
		}
	}
	if last.Instance != second.c.InstanceTag() {
		t.Fatalf("the last secure event came from %#x, want %#x", last.Instance, second.c.InstanceTag())
	}
}

// shows reports whether e was ever shown text containing s.
func (e *endpoint) shows(s string) bool {
	for _, m := range e.shown {
		if strings.Contains(string(m), s) {
			return true
		}
	}
	return false
}

// sendTo is SendTo that fails the test on an error.
func (e *endpoint) sendTo(instance uint32, fp Fingerprint, msg string) {
	e.t.Helper()
	out, err := e.c.SendTo(instance, fp, []byte(msg))
	if err != nil {
		e.t.Fatalf("%s: SendTo: %v", e.name, err)
	}
	e.out = append(e.out, out...)
}

// readdressed returns the version 3 encoded message m with its receiver
// instance tag replaced, as a server would to hand it to another instance.
func readdressed(t *testing.T, m []byte, receiver uint32) []byte {
	t.Helper()
	bin, err := DecodeMessage(m)
	if err != nil || len(bin) < 11 {
		t.Fatalf("not an encoded v3 message: %.20q", m)
	}
	bin = append([]byte(nil), bin...)
	copy(bin[7:11], appendInt(nil, receiver))
	return []byte(EncodeMessage(bin))
}

// TestSendAfterSecondInstanceGoesOnlyToVerified: sending after a second
// instance finishes goes only to the verified instance. The attacker
// finishes an AKE with its own key beside the real operator's, in either
// order, and may then send a Data message so that its session is the most
// recently active; what the visitor sends with SendTo to the operator's
// instance and key reaches the operator and nothing the attacker holds
// can read it, even readdressed to the attacker's instance.
func TestSendAfterSecondInstanceGoesOnlyToVerified(t *testing.T) {
	realFP, attackerFP := testKey(t, 1).Fingerprint(), testKey(t, 2).Fingerprint()
	for _, tc := range []struct {
		name         string
		realFirst    bool
		attackerData bool
	}{
		{"real operator finishes first", true, false},
		{"real operator finishes first, attacker sends after", true, true},
		{"attacker finishes first", false, false},
		{"attacker finishes first, attacker sends after", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := newEndpoint(t, "visitor", testKey(t, 0), PolicyAlways)
			op := newEndpoint(t, "operator", testKey(t, 1), PolicyOpportunistic)
			m := newEndpoint(t, "attacker", testKey(t, 2), PolicyOpportunistic)
			if tc.realFirst {
				twoAKEs(t, v, op, m)
			} else {
				twoAKEs(t, v, m, op)
			}
			opTag, mTag := op.c.InstanceTag(), m.c.InstanceTag()
			if tc.attackerData {
				m.send("hello from the other session")
				toVisitor(v, m)
				if !v.shows("hello from the other session") {
					t.Fatal("the attacker's Data message was not read")
				}
				if s := v.c.LastShown(); !s.Encrypted || s.Instance != mTag || s.Fingerprint != attackerFP {
					t.Fatalf("LastShown %+v, want encrypted by %#x with the attacker's key", s, mTag)
				}
				// What libotr's Send does now: the most recently active
				// session is the attacker's.
				if s := v.c.best(); s.tag != mTag {
					t.Fatalf("the attacker's Data did not make its session the best (%#x)", s.tag)
				}
			}

			out, err := v.c.SendTo(opTag, realFP, []byte("my card number"))
			if err != nil {
				t.Fatal(err)
			}
			if len(out) != 1 || Classify(out[0]).ReceiverTag != opTag {
				t.Fatalf("SendTo produced %d messages, to %#x", len(out), Classify(out[0]).ReceiverTag)
			}
			op.receive(out[0])
			m.receive(out[0])
			m.receive(readdressed(t, out[0], mTag))
			if op.lastShown() != "my card number" {
				t.Fatalf("the operator shows %q", op.lastShown())
			}
			if s := op.c.LastShown(); !s.Encrypted || s.Instance != v.c.InstanceTag() || s.Fingerprint != testKey(t, 0).Fingerprint() {
				t.Fatalf("operator's LastShown %+v", s)
			}
			if m.shows("card") {
				t.Fatal("the attacker read what the visitor sent to the operator")
			}
			if len(m.errs) == 0 {
				t.Fatal("the readdressed message did not fail at the attacker")
			}
			for _, bad := range []struct {
				tag uint32
				fp  Fingerprint
			}{{mTag, realFP}, {opTag, attackerFP}, {0x4242, realFP}, {0, realFP}} {
				if out, err := v.c.SendTo(bad.tag, bad.fp, []byte("x")); !errors.Is(err, ErrNotBound) || out != nil {
					t.Fatalf("SendTo(%#x, %s): %q, %v; want ErrNotBound", bad.tag, bad.fp, out, err)
				}
			}
		})
	}
}

// TestRekeyToAnotherKeyUnbinds: the attacker runs an AKE under the real
// operator's instance tag (tags are not authenticated) with its own key.
// From then on SendTo to that instance and the operator's key refuses and
// holds nothing; when the real operator re-keys, sending works again and
// nothing refused earlier goes out.
func TestRekeyToAnotherKeyUnbinds(t *testing.T) {
	realFP := testKey(t, 1).Fingerprint()
	v := newEndpoint(t, "visitor", testKey(t, 0), PolicyAlways)
	op := newEndpoint(t, "operator", testKey(t, 1), PolicyOpportunistic)

	// Before any AKE nothing is bound: no query, nothing held.
	if out, err := v.c.SendTo(0x100, realFP, []byte("too early")); !errors.Is(err, ErrNotBound) || out != nil {
		t.Fatalf("SendTo before the AKE: %q, %v", out, err)
	}
	v.out, _ = v.c.Start()
	exchange(t, v, op)
	opTag := op.c.InstanceTag()
	v.sendTo(opTag, realFP, "bound")
	exchange(t, v, op)
	if op.lastShown() != "bound" {
		t.Fatalf("operator shows %q", op.lastShown())
	}

	m := newEndpoint(t, "attacker", testKey(t, 2), PolicyOpportunistic)
	mc, err := NewConversation(Config{PrivateKey: testKey(t, 2), Policy: PolicyOpportunistic, InstanceTag: opTag})
	if err != nil {
		t.Fatal(err)
	}
	m.c = mc
	m.out, _ = m.c.Start()
	toVisitor(v, m)
	exchange(t, v, m) // the server keeps the operator out of it
	if !m.c.IsEncrypted() {
		t.Fatalf("the attacker's AKE did not finish: %v %v", v.errs, m.errs)
	}
	var rekey *Event
	for i := range v.events {
		if e := &v.events[i]; e.Kind == EventStillSecure && e.Instance == opTag {
			rekey = e
		}
	}
	if rekey == nil || rekey.Fingerprint != testKey(t, 2).Fingerprint() {
		t.Fatalf("no still-secure event with the new key: %+v", v.events)
	}
	for _, text := range []string{"after the re-key", "and again"} {
		if out, err := v.c.SendTo(opTag, realFP, []byte(text)); !errors.Is(err, ErrNotBound) || out != nil {
			t.Fatalf("SendTo after a re-key to another key: %q, %v", out, err)
		}
	}

	// The real operator re-keys the same instance with its own key.
	op.out, _ = op.c.Start()
	toVisitor(v, op)
	exchange(t, v, op)
	shown := len(op.shown)
	v.sendTo(opTag, realFP, "bound again")
	exchange(t, v, op)
	if len(op.shown) != shown+1 || op.lastShown() != "bound again" {
		t.Fatalf("operator shows %q after re-binding", op.shown[shown:])
	}
	if op.shows("re-key") || op.shows("and again") || m.shows("re-key") {
		t.Fatal("a refused message was sent after all")
	}
}

// TestResendOnlyToSameInstanceAndKey: a forged OTR error followed by an
// AKE with another key (under another instance tag, or under the
// operator's) makes nothing be sent again; the real operator restarting
// (same instance, same key) gets the "[resent]" copy as libotr sends it.
func TestResendOnlyToSameInstanceAndKey(t *testing.T) {
	realFP := testKey(t, 1).Fingerprint()
	setup := func(t *testing.T) (v, op *endpoint) {
		v = newEndpoint(t, "visitor", testKey(t, 0), PolicyAlways)
		op = newEndpoint(t, "operator", testKey(t, 1), PolicyOpportunistic)
		v.out, _ = v.c.Start()
		exchange(t, v, op)
		v.sendTo(op.c.InstanceTag(), realFP, "the secret")
		exchange(t, v, op)
		if op.lastShown() != "the secret" {
			t.Fatalf("operator shows %q", op.lastShown())
		}
		return v, op
	}
	for _, tc := range []struct {
		name      string
		sameTag   bool
		attackKey int
	}{
		{"attacker instance", false, 2},
		{"attacker under the operator's instance tag", true, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, op := setup(t)
			cfg := Config{PrivateKey: testKey(t, tc.attackKey), Policy: PolicyOpportunistic}
			if tc.sameTag {
				cfg.InstanceTag = op.c.InstanceTag()
			}
			mc, err := NewConversation(cfg)
			if err != nil {
				t.Fatal(err)
			}
			m := &endpoint{t: t, name: "attacker", c: mc}
			v.receive([]byte(ErrorMessage("You transmitted an unreadable encrypted message.")))
			if len(v.out) != 1 || Classify(v.out[0]).Kind != KindQuery {
				t.Fatalf("the error was answered with %q", v.out)
			}
			exchange(t, v, m) // the query reaches the attacker only
			if !m.c.IsEncrypted() {
				t.Fatalf("the attacker's AKE did not finish: %v %v", v.errs, m.errs)
			}
			if v.has(EventResent) || m.shows("secret") {
				t.Fatalf("resent to the attacker: attacker shows %q", m.shown)
			}
		})
	}
	t.Run("operator restarted", func(t *testing.T) {
		v, op := setup(t)
		restarted, err := NewConversation(Config{PrivateKey: testKey(t, 1), Policy: PolicyOpportunistic, InstanceTag: op.c.InstanceTag()})
		if err != nil {
			t.Fatal(err)
		}
		op.c = restarted
		v.sendTo(op.c.InstanceTag(), realFP, "did you get this?")
		exchange(t, v, op)
		if !v.has(EventResent) || op.lastShown() != "[resent] did you get this?" {
			t.Fatalf("operator shows %q; visitor events %v", op.shown, v.events)
		}
	})
}

// TestLastShown: only text decrypted from a Data message is encrypted,
// with the instance and key of the session that decrypted it; plaintext
// inside version 3 fragments, whitespace-tagged and bare plaintext are
// not, even while the chat is encrypted.
func TestLastShown(t *testing.T) {
	v := newEndpoint(t, "visitor", testKey(t, 0), PolicyAlways)
	op := newEndpoint(t, "operator", testKey(t, 1), PolicyOpportunistic)
	v.out, _ = v.c.Start()
	exchange(t, v, op)
	opTag, vTag := op.c.InstanceTag(), v.c.InstanceTag()
	want := Shown{Encrypted: true, Instance: opTag, Fingerprint: testKey(t, 1).Fingerprint()}

	op.send("encrypted hello")
	toVisitor(v, op)
	if v.lastShown() != "encrypted hello" || v.c.LastShown() != want {
		t.Fatalf("Data: shown %q, LastShown %+v", v.lastShown(), v.c.LastShown())
	}

	// A Data message in fragments is still a Data message.
	op.c.maxSize = 100
	op.send(strings.Repeat("long encrypted ", 20))
	if len(op.out) < 2 {
		t.Fatal("not fragmented")
	}
	toVisitor(v, op)
	if v.lastShown() != strings.Repeat("long encrypted ", 20) || v.c.LastShown() != want {
		t.Fatalf("fragmented Data: LastShown %+v", v.c.LastShown())
	}

	inFrags := "plain text in fragments is not encrypted whatever the fragment header says"
	frags, err := SplitMessage(inFrags, 60, 3, opTag, vTag)
	if err != nil || len(frags) < 2 {
		t.Fatalf("split: %d, %v", len(frags), err)
	}
	for i, cs := range []struct {
		name   string
		bodies []string
		text   string
	}{
		{"plaintext in v3 fragments", frags, inFrags},
		{"whitespace-tagged plaintext", []string{"tagged" + WhitespaceTag(OfferV3)}, "tagged"},
		{"plaintext", []string{"bare"}, "bare"},
	} {
		for _, b := range cs.bodies {
			v.receive([]byte(b))
		}
		if v.lastShown() != cs.text || len(v.errs) != 0 {
			t.Fatalf("%s: shown %q, errors %v", cs.name, v.lastShown(), v.errs)
		}
		if s := v.c.LastShown(); s != (Shown{}) {
			t.Fatalf("%s: LastShown %+v, want not encrypted", cs.name, s)
		}
		if n := countKind(v.events, EventUnencrypted); n != i+1 {
			t.Fatalf("%s: %d unencrypted warnings", cs.name, n)
		}
	}

	// A Receive that shows nothing leaves no claim behind.
	op.send("again")
	toVisitor(v, op)
	if v.c.LastShown() != want {
		t.Fatal("Data after plaintext not encrypted")
	}
	v.receive([]byte(QueryMessage(OfferV3)))
	if v.c.LastShown() != (Shown{}) {
		t.Fatalf("LastShown %+v after a message that showed nothing", v.c.LastShown())
	}
}

func countKind(evs []Event, k EventKind) int {
	n := 0
	for _, e := range evs {
		if e.Kind == k {
			n++
		}
	}
	return n
}
