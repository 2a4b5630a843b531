package otr

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test keys are generated once per test binary: DSA parameter generation
// is the slow part of a test run.
var (
	testKeysOnce sync.Once
	testKeys     [3]*PrivateKey
)

func testKey(t testing.TB, i int) *PrivateKey {
	t.Helper()
	testKeysOnce.Do(func() {
		for j := range testKeys {
			k, err := GenerateKey(rand.Reader)
			if err != nil {
				panic(err)
			}
			testKeys[j] = k
		}
	})
	return testKeys[i]
}

// endpoint is one side of an in-memory chat.
type endpoint struct {
	t      testing.TB
	name   string
	c      *Conversation
	shown  [][]byte
	events []Event
	errs   []error
	out    [][]byte // sent, not yet delivered
}

func newEndpoint(t testing.TB, name string, key *PrivateKey, p Policy) *endpoint {
	t.Helper()
	c, err := NewConversation(Config{PrivateKey: key, Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	return &endpoint{t: t, name: name, c: c}
}

func (e *endpoint) send(msg string) {
	e.t.Helper()
	out, err := e.c.Send([]byte(msg))
	if err != nil {
		e.t.Fatalf("%s: Send: %v", e.name, err)
	}
	e.out = append(e.out, out...)
}

func (e *endpoint) receive(msg []byte) {
	show, send, ev, err := e.c.Receive(msg)
	if show != nil {
		e.shown = append(e.shown, show)
	}
	e.events = append(e.events, ev...)
	if err != nil {
		e.errs = append(e.errs, err)
	}
	e.out = append(e.out, send...)
}

func (e *endpoint) has(k EventKind) bool {
	for _, ev := range e.events {
		if ev.Kind == k {
			return true
		}
	}
	return false
}

func (e *endpoint) lastShown() string {
	if len(e.shown) == 0 {
		return ""
	}
	return string(e.shown[len(e.shown)-1])
}

// pump delivers messages both ways until nothing is left, and fails on a
// loop that does not settle.
func pump(t testing.TB, a, b *endpoint) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if len(a.out) == 0 && len(b.out) == 0 {
			return
		}
		ao, bo := a.out, b.out
		a.out, b.out = nil, nil
		for _, m := range ao {
			b.receive(m)
		}
		for _, m := range bo {
			a.receive(m)
		}
	}
	t.Fatal("messages never settled")
}

func securePair(t testing.TB, pa, pb Policy) (*endpoint, *endpoint) {
	t.Helper()
	a := newEndpoint(t, "alice", testKey(t, 0), pa)
	b := newEndpoint(t, "bob", testKey(t, 1), pb)
	q, err := a.c.Start()
	if err != nil {
		t.Fatal(err)
	}
	a.out = q
	pump(t, a, b)
	if !a.c.IsEncrypted() || !b.c.IsEncrypted() {
		t.Fatalf("not encrypted after AKE: alice %v bob %v (errs %v %v)", a.c.IsEncrypted(), b.c.IsEncrypted(), a.errs, b.errs)
	}
	return a, b
}

func TestAKEAndData(t *testing.T) {
	a, b := securePair(t, PolicyManual, PolicyManual)
	fa, _ := a.c.PeerFingerprint()
	fb, _ := b.c.PeerFingerprint()
	if fa != testKey(t, 1).Fingerprint() || fb != testKey(t, 0).Fingerprint() {
		t.Fatal("fingerprints do not match the keys")
	}
	if !a.has(EventGoneSecure) || !b.has(EventGoneSecure) {
		t.Fatal("no gone-secure event")
	}
	sa, _ := a.c.SessionID()
	sb, _ := b.c.SessionID()
	if !bytes.Equal(sa, sb) {
		t.Fatal("session ids differ")
	}
	for i := 0; i < 10; i++ {
		msg := fmt.Sprintf("hello %d, ünïcödé ✓", i)
		a.send(msg)
		if !bytes.HasPrefix(a.out[0], []byte("?OTR:AAMD")) {
			t.Fatalf("not a v3 data message: %q", a.out[0])
		}
		pump(t, a, b)
		if b.lastShown() != msg {
			t.Fatalf("bob got %q, want %q", b.lastShown(), msg)
		}
		reply := fmt.Sprintf("reply %d", i)
		b.send(reply)
		pump(t, a, b)
		if a.lastShown() != reply {
			t.Fatalf("alice got %q, want %q", a.lastShown(), reply)
		}
	}
	if len(a.errs)+len(b.errs) > 0 {
		t.Fatalf("errors: %v %v", a.errs, b.errs)
	}
}

func TestGroupConstants(t *testing.T) {
	if !dhP.ProbablyPrime(20) || !dhQ.ProbablyPrime(20) || dhP.BitLen() != 1536 {
		t.Fatal("the DH modulus is not the 1536-bit safe prime")
	}
	_ = errors.New
}

// TestPolicies runs every combination of the six policy flags on both
// sides (64×64): a chat started by a query (when that side allows OTR at
// all) and one started by plaintext, checking the outcome against the
// rules. ErrorStartAKE must not change these outcomes; what it does is
// covered by TestErrorStartAKE.
func TestPolicies(t *testing.T) {
	flags := []Policy{AllowV2, AllowV3, RequireEncryption, SendWhitespaceTag, WhitespaceStartAKE, ErrorStartAKE}
	var all []Policy
	for m := 0; m < 1<<len(flags); m++ {
		var p Policy
		for i, f := range flags {
			if m&(1<<i) != 0 {
				p |= f
			}
		}
		all = append(all, p)
	}
	common := func(pa, pb Policy) int {
		switch {
		case pa.has(AllowV3) && pb.has(AllowV3):
			return 3
		case pa.has(AllowV2) && pb.has(AllowV2):
			return 2
		}
		return 0
	}
	for _, pa := range all {
		for _, pb := range all {
			// Query started by alice.
			a := newEndpoint(t, "alice", testKey(t, 0), pa)
			b := newEndpoint(t, "bob", testKey(t, 1), pb)
			q, err := a.c.Start()
			if !pa.enabled() {
				if err == nil {
					t.Fatalf("%b: Start with OTR disabled worked", pa)
				}
				continue
			}
			a.out = q
			pump(t, a, b)
			want := common(pa, pb) != 0
			if a.c.IsEncrypted() != want || b.c.IsEncrypted() != want {
				t.Fatalf("query %06b->%06b: encrypted %v/%v, want %v", pa, pb, a.c.IsEncrypted(), b.c.IsEncrypted(), want)
			}
			if want {
				if v := a.c.best().version; v != common(pa, pb) {
					t.Fatalf("query %06b->%06b: version %d, want %d", pa, pb, v, common(pa, pb))
				}
				a.send("hi")
				pump(t, a, b)
				if b.lastShown() != "hi" {
					t.Fatalf("query %06b->%06b: bob shows %q", pa, pb, b.lastShown())
				}
			}
			if len(a.errs)+len(b.errs) > 0 {
				t.Fatalf("query %06b->%06b: errors %v %v", pa, pb, a.errs, b.errs)
			}

			// Plaintext sent first by alice.
			a = newEndpoint(t, "alice", testKey(t, 0), pa)
			b = newEndpoint(t, "bob", testKey(t, 1), pb)
			a.send("first")
			pump(t, a, b)
			tagged := pa.has(SendWhitespaceTag) && !pa.has(RequireEncryption)
			ake := common(pa, pb) != 0 && (pa.has(RequireEncryption) || tagged && pb.has(WhitespaceStartAKE))
			if a.c.IsEncrypted() != ake || b.c.IsEncrypted() != ake {
				t.Fatalf("plain %06b->%06b: encrypted %v/%v, want %v", pa, pb, a.c.IsEncrypted(), b.c.IsEncrypted(), ake)
			}
			// Nothing the user typed is lost: either shown at once, or
			// (require-encryption) sent once the chat is private.
			if pa.has(RequireEncryption) && !ake {
				for _, m := range b.shown {
					if string(m) == "first" {
						t.Fatalf("plain %06b->%06b: required encryption but bob saw %q", pa, pb, b.shown)
					}
				}
			} else if string(stripTag([]byte(b.lastShown()))) != "first" {
				t.Fatalf("plain %06b->%06b: bob shows %q", pa, pb, b.shown)
			}
		}
	}
}

func TestReAKEWhileSecure(t *testing.T) {
	a, b := securePair(t, PolicyManual, PolicyManual)
	a.send("before")
	pump(t, a, b)
	sid1, _ := a.c.SessionID()
	a.events, b.events = nil, nil
	q, _ := b.c.Start()
	b.out = q
	pump(t, a, b)
	if !a.has(EventStillSecure) || !b.has(EventStillSecure) {
		t.Fatalf("no still-secure event: %v %v", a.events, b.events)
	}
	sid2, _ := a.c.SessionID()
	if bytes.Equal(sid1, sid2) {
		t.Fatal("session id unchanged by re-AKE")
	}
	b.send("after")
	pump(t, a, b)
	if a.lastShown() != "after" {
		t.Fatalf("alice shows %q", a.lastShown())
	}
}

func TestLostAndReordered(t *testing.T) {
	a, b := securePair(t, PolicyManual, PolicyManual)
	// Lost: drop a message; the next ones still decrypt.
	a.send("lost")
	a.out = nil
	a.send("kept")
	pump(t, a, b)
	if b.lastShown() != "kept" {
		t.Fatalf("after a loss bob shows %q", b.lastShown())
	}
	// Reordered across a key rotation: two messages, delivered in
	// reverse, are both readable when keys have not moved on twice.
	b.send("rotate")
	pump(t, a, b)
	a.send("one")
	one := a.out
	a.out = nil
	a.send("two")
	two := a.out
	a.out = nil
	for _, m := range two {
		b.receive(m)
	}
	for _, m := range one {
		b.receive(m)
	}
	// "one" has a lower counter on the same keys as "two": rejected as a replay.
	if b.lastShown() != "two" || len(b.errs) != 1 || !errors.Is(b.errs[0], ErrReplayed) {
		t.Fatalf("reordered: shown %q errs %v", b.shown, b.errs)
	}
}

func TestReplayAndBadMAC(t *testing.T) {
	a, b := securePair(t, PolicyManual, PolicyManual)
	a.send("once")
	msg := a.out[0]
	pump(t, a, b)
	b.out = nil
	_, _, _, err := b.c.Receive(msg)
	if !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay: err %v", err)
	}
	a.send("tamper")
	bin, err := DecodeMessage(a.out[0])
	if err != nil {
		t.Fatal(err)
	}
	a.out = nil
	// Flip a bit of the ciphertext (just before the 20-byte MAC and the
	// 4-byte empty old-MAC list).
	bin[len(bin)-25] ^= 1
	show, send, ev, err := b.c.Receive([]byte(EncodeMessage(bin)))
	if !errors.Is(err, ErrBadMAC) || show != nil {
		t.Fatalf("bad MAC: show %q err %v", show, err)
	}
	if len(send) != 1 || !bytes.HasPrefix(send[0], []byte("?OTR Error:")) || len(ev) != 1 || ev[0].Kind != EventError {
		t.Fatalf("bad MAC: send %q events %v", send, ev)
	}
	// The session survives both.
	a.send("still")
	pump(t, a, b)
	if b.lastShown() != "still" {
		t.Fatalf("bob shows %q", b.lastShown())
	}
}

func TestEnd(t *testing.T) {
	a, b := securePair(t, PolicyManual, PolicyManual)
	out, err := a.c.End()
	if err != nil {
		t.Fatal(err)
	}
	a.out = out
	pump(t, a, b)
	if a.c.IsEncrypted() || b.c.IsEncrypted() || !b.has(EventGoneInsecure) {
		t.Fatal("end did not reach bob")
	}
	if _, err := b.c.Send([]byte("into the void")); !errors.Is(err, ErrFinished) {
		t.Fatalf("send in finished state: %v", err)
	}
	out, _ = b.c.End()
	if len(out) != 0 {
		t.Fatal("ending a finished chat sent something")
	}
	b.send("plain again")
	pump(t, a, b)
	if a.lastShown() != "plain again" {
		t.Fatal("plaintext after end not shown")
	}
	// Restart.
	q, _ := a.c.Start()
	a.out = q
	pump(t, a, b)
	if !a.c.IsEncrypted() || !b.c.IsEncrypted() {
		t.Fatal("no re-AKE after end")
	}
}

func TestErrorStartAKE(t *testing.T) {
	for _, p := range []Policy{PolicyManual, PolicyManual | ErrorStartAKE} {
		a := newEndpoint(t, "alice", testKey(t, 0), p)
		b := newEndpoint(t, "bob", testKey(t, 1), PolicyManual)
		a.receive([]byte(ErrorMessage("You transmitted an unreadable encrypted message.")))
		if len(a.events) != 1 || a.events[0].Kind != EventPeerError || a.events[0].Text != "You transmitted an unreadable encrypted message." {
			t.Fatalf("events %v", a.events)
		}
		pump(t, a, b)
		if a.c.IsEncrypted() != p.has(ErrorStartAKE) {
			t.Fatalf("policy %06b: encrypted %v after an error message", p, a.c.IsEncrypted())
		}
	}
}

func TestHeartbeat(t *testing.T) {
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a, b := securePair(t, PolicyManual, PolicyManual)
	a.c.now, b.c.now = clock, clock
	b.c.beat = time.Minute
	a.send("one")
	pump(t, a, b) // bob has never sent Data: he may answer with a heartbeat
	b.send("two")
	a.send("three")
	b.out = nil
	for _, m := range a.out {
		_, send, _, err := b.c.Receive(m)
		if err != nil || len(send) != 0 {
			t.Fatalf("heartbeat within the minute: %q %v", send, err)
		}
	}
	a.out = nil
	now = now.Add(61 * time.Second)
	a.send("four")
	var sent [][]byte
	for _, m := range a.out {
		show, send, _, err := b.c.Receive(m)
		if err != nil || string(show) != "four" {
			t.Fatal(show, err)
		}
		sent = append(sent, send...)
	}
	a.out = nil
	if len(sent) != 1 {
		t.Fatalf("no heartbeat after a minute of silence: %d", len(sent))
	}
	show, _, ev, err := a.c.Receive(sent[0])
	if err != nil || show != nil || len(ev) != 0 {
		t.Fatalf("heartbeat shown as %q %v %v", show, ev, err)
	}
}

func TestExtraKeyAndPadding(t *testing.T) {
	a, b := securePair(t, PolicyManual, PolicyManual)
	key, out, err := a.c.ExtraKey(7, []byte("file-1"))
	if err != nil {
		t.Fatal(err)
	}
	a.out = out
	pump(t, a, b)
	ev, ok := eventOf(b, EventExtraKey)
	if !ok || !bytes.Equal(ev.Key, key) || ev.Use != 7 || string(ev.Data) != "file-1" || len(key) != 32 {
		t.Fatalf("extra key event %+v", ev)
	}
	// A padding TLV after the text is ignored.
	s := a.c.best()
	msgs, err := a.c.sendData(s, []byte("padded"), []tlv{{typ: tlvPadding, value: make([]byte, 100)}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	a.out = msgs
	pump(t, a, b)
	if b.lastShown() != "padded" || len(b.errs) != 0 {
		t.Fatalf("padded message: %q %v", b.lastShown(), b.errs)
	}
	if _, err := a.c.Send([]byte("nul\x00inside")); err != ErrNUL {
		t.Fatalf("NUL: %v", err)
	}
}

// TestGoInstances: one Go account logged in twice, against a Go peer that
// keeps both instances, as libotr does.
func TestGoInstances(t *testing.T) {
	op := newEndpoint(t, "operator", testKey(t, 0), PolicyManual)
	v1 := newEndpoint(t, "visitor1", testKey(t, 1), PolicyManual)
	v2 := newEndpoint(t, "visitor2", testKey(t, 1), PolicyManual)
	vs := []*endpoint{v1, v2}
	settle := func() {
		for i := 0; i < 50; i++ {
			moved := false
			for _, m := range op.out {
				moved = true
				for _, v := range vs {
					v.receive(m)
				}
			}
			op.out = nil
			for _, v := range vs {
				for _, m := range v.out {
					moved = true
					op.receive(m)
				}
				v.out = nil
			}
			if !moved {
				return
			}
		}
		t.Fatal("never settled")
	}
	op.out, _ = op.c.Start()
	settle()
	if len(op.c.Instances()) != 2 || !v1.c.IsEncrypted() || !v2.c.IsEncrypted() {
		t.Fatalf("instances %x, encrypted %v %v; errs %v %v %v", op.c.Instances(), v1.c.IsEncrypted(), v2.c.IsEncrypted(), op.errs, v1.errs, v2.errs)
	}
	for i, v := range vs {
		if err := op.c.SetInstance(v.c.InstanceTag()); err != nil {
			t.Fatal(err)
		}
		n1, n2 := len(v1.shown), len(v2.shown)
		op.send(fmt.Sprintf("to %d", i))
		settle()
		if v.lastShown() != fmt.Sprintf("to %d", i) || len(v1.shown)+len(v2.shown) != n1+n2+1 {
			t.Fatalf("message to instance %d: %q %q", i, v1.shown, v2.shown)
		}
		v.send(fmt.Sprintf("from %d", i))
		settle()
		if op.lastShown() != fmt.Sprintf("from %d", i) || op.c.LastSender() != v.c.InstanceTag() {
			t.Fatalf("from instance %d: %q from %#x", i, op.lastShown(), op.c.LastSender())
		}
	}
	if len(op.errs)+len(v1.errs)+len(v2.errs) > 0 {
		t.Fatal(op.errs, v1.errs, v2.errs)
	}
	if err := op.c.SetInstance(0x12345); err != ErrNoInstance {
		t.Fatal(err)
	}
}

func TestFixedBaseExp(t *testing.T) {
	for i := 0; i < 50; i++ {
		b := make([]byte, dhExponentBytes)
		rand.Read(b)
		if i == 0 {
			b = []byte{0}
		}
		if i == 1 {
			for j := range b {
				b[j] = 0xff
			}
		}
		x := new(big.Int).SetBytes(b)
		if expG(x).Cmp(new(big.Int).Exp(dhG, x, dhP)) != 0 {
			t.Fatalf("expG(%x) is wrong", b)
		}
	}
}

// TestForgedAKEMessageIgnored: a damaged Reveal Signature or Signature
// is rejected with an error but does not end the AKE the real peer is
// running.
func TestForgedAKEMessageIgnored(t *testing.T) {
	for _, which := range []MessageType{RevealSig, Sig} {
		a := newEndpoint(t, "alice", testKey(t, 0), PolicyManual)
		b := newEndpoint(t, "bob", testKey(t, 1), PolicyManual)
		a.out, _ = a.c.Start()
		forged := 0
		for round := 0; round < 10 && (len(a.out)+len(b.out) > 0); round++ {
			for _, pair := range [][2]*endpoint{{a, b}, {b, a}} {
				from, to := pair[0], pair[1]
				out := from.out
				from.out = nil
				for _, m := range out {
					if Classify(m).Type == which {
						forged++
						bin, _ := DecodeMessage(m)
						bad := bytes.Clone(bin)
						bad[len(bad)-1] ^= 0x80 // the MAC
						_, send, _, err := to.c.Receive([]byte(EncodeMessage(bad)))
						if !errors.Is(err, ErrAKEFailed) || len(send) != 0 {
							t.Fatalf("forged %v: err %v, sent %q", which, err, send)
						}
					}
					to.receive(m)
				}
			}
		}
		if forged != 1 || !a.c.IsEncrypted() || !b.c.IsEncrypted() {
			t.Fatalf("forged %d %v: encrypted %v %v, errors %v %v", forged, which, a.c.IsEncrypted(), b.c.IsEncrypted(), a.errs, b.errs)
		}
	}
}

func TestPlaintextMentioningOTR(t *testing.T) {
	a := newEndpoint(t, "alice", testKey(t, 0), PolicyOpportunistic)
	for _, text := range []string{"what does ?OTR mean?", "?OTRx", "is ?OTR! a command"} {
		show, _, _, err := a.c.Receive([]byte(text))
		if err != nil || string(show) != text {
			t.Fatalf("%q: shown %q, %v", text, show, err)
		}
	}
	if _, _, _, err := a.c.Receive([]byte("?OTR:AAMD!!!!.")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("broken encoded message: %v", err)
	}
}

// TestLateMessageAfterRotation: a message delayed past the next key
// exchange was encrypted to a key its receiver has since forgotten, as
// the spec has it (libotr loses it too): it is rejected with a clear
// error, nothing is shown, and the session goes on.
func TestLateMessageAfterRotation(t *testing.T) {
	a, b := securePair(t, PolicyManual, PolicyManual)
	a.send("old keys")
	early := a.out
	a.out = nil
	b.send("rotate")
	pump(t, a, b) // alice learns bob's next key
	a.send("new keys")
	pump(t, a, b) // acknowledges it: bob forgets his oldest key
	for _, m := range early {
		b.receive(m)
	}
	if len(b.errs) != 1 || !errors.Is(b.errs[0], ErrUnreadable) || b.lastShown() != "new keys" {
		t.Fatalf("shown %q errors %v", b.shown, b.errs)
	}
	b.out = nil // the OTR error bob would send
	a.send("still fine")
	pump(t, a, b)
	if b.lastShown() != "still fine" {
		t.Fatal("session broken by a late message")
	}
}

// TestFragmentsGoToGo: both sides split for a small maximum size; the
// AKE and data messages still work, and a fragment lost mid-message loses
// only that message.
func TestFragmentsGoToGo(t *testing.T) {
	a := newEndpoint(t, "alice", testKey(t, 0), PolicyManual)
	b := newEndpoint(t, "bob", testKey(t, 1), PolicyManual)
	a.c.maxSize, b.c.maxSize = 120, 200
	a.out, _ = a.c.Start()
	pump(t, a, b)
	if !a.c.IsEncrypted() || !b.c.IsEncrypted() {
		t.Fatalf("no AKE through fragments: %v %v", a.errs, b.errs)
	}
	long := strings.Repeat("fragmented ✓ ", 100)
	a.send(long)
	for _, m := range a.out {
		if len(m) > 120 {
			t.Fatalf("fragment of %d bytes", len(m))
		}
	}
	pump(t, a, b)
	if b.lastShown() != long {
		t.Fatal("long message not reassembled")
	}
	b.send("dropped")
	b.out = append(b.out[:1], b.out[2:]...) // lose the second fragment
	b.send("kept")
	pump(t, a, b)
	if a.lastShown() != "kept" {
		t.Fatalf("after a lost fragment alice shows %q", a.lastShown())
	}
	for _, s := range a.shown {
		if string(s) == "dropped" {
			t.Fatal("a message with a lost fragment was shown")
		}
	}
}

// TestResendAfterPeerRestart: the peer restarts (same key and instance
// tag, no session); our next message is unreadable there, the peer says
// so, we restart the AKE and send the message again.
func TestResendAfterPeerRestart(t *testing.T) {
	a, b := securePair(t, PolicyOpportunistic, PolicyOpportunistic)
	restarted, err := NewConversation(Config{PrivateKey: testKey(t, 1), Policy: PolicyOpportunistic, InstanceTag: b.c.InstanceTag()})
	if err != nil {
		t.Fatal(err)
	}
	b.c = restarted
	a.send("did you get this?")
	pump(t, a, b)
	if !a.has(EventResent) || b.lastShown() != "[resent] did you get this?" {
		t.Fatalf("bob shows %q; alice events %v", b.shown, a.events)
	}
	if !a.c.IsEncrypted() || !b.c.IsEncrypted() {
		t.Fatal("no new session")
	}
}

// TestInstanceBound: DH-Commits from ever new instance tags do not grow
// the state without bound, and the encrypted session survives them.
func TestInstanceBound(t *testing.T) {
	a, b := securePair(t, PolicyManual, PolicyManual)
	c := newEndpoint(t, "mallory", testKey(t, 2), PolicyManual)
	for i := 0; i < 3*maxInstances; i++ {
		mc, err := NewConversation(Config{PrivateKey: testKey(t, 2), Policy: PolicyManual})
		if err != nil {
			t.Fatal(err)
		}
		c.c = mc
		var r result
		if err := mc.sendCommit(&r, 3); err != nil {
			t.Fatal(err)
		}
		for _, m := range r.send {
			a.receive(m)
		}
		a.out = nil
	}
	if n := len(a.c.Instances()); n > maxInstances {
		t.Fatalf("%d instances kept", n)
	}
	b.send("still here")
	pump(t, a, b)
	if a.lastShown() != "still here" || !a.c.IsEncrypted() {
		t.Fatalf("encrypted session lost: %q", a.lastShown())
	}
}

func TestHeldBound(t *testing.T) {
	a := newEndpoint(t, "alice", testKey(t, 0), PolicyAlways)
	for i := 0; i < maxHeld; i++ {
		a.send(fmt.Sprint(i))
	}
	if _, err := a.c.Send([]byte("one too many")); err != ErrTooManyHeld {
		t.Fatalf("over the bound: %v", err)
	}
	b := newEndpoint(t, "bob", testKey(t, 1), PolicyAlways)
	pump(t, a, b)
	if len(b.shown) != maxHeld || string(b.shown[maxHeld-1]) != fmt.Sprint(maxHeld-1) {
		t.Fatalf("bob got %d held messages", len(b.shown))
	}
}

func TestReflectedMessagesIgnored(t *testing.T) {
	a, b := securePair(t, PolicyManual, PolicyManual)
	out, _ := a.c.Start()
	var r result
	if err := a.c.sendCommit(&r, 3); err != nil {
		t.Fatal(err)
	}
	for _, m := range append(out, r.send...) {
		if _, send, _, err := a.c.Receive(m); err != nil || len(send) != 0 && Classify(m).Kind == KindEncoded {
			t.Fatalf("reflected %.12q: sent %q, %v", m, send, err)
		}
	}
	a.send("own data")
	for _, m := range a.out {
		if show, _, _, err := a.c.Receive(m); show != nil || err != nil {
			t.Fatalf("reflected data: %q %v", show, err)
		}
	}
	pump(t, a, b)
	if b.lastShown() != "own data" || !a.c.IsEncrypted() {
		t.Fatal("reflection disturbed the session")
	}
}

// TestCommitForgotten: once an AKE that used our DH-Commit finishes, its
// private DH key is kept nowhere but in the session's key window.
func TestCommitForgotten(t *testing.T) {
	a, b := securePair(t, PolicyManual, PolicyManual)
	if b.c.commit != nil || a.c.commit != nil {
		t.Fatal("the DH-Commit's key outlived the AKE")
	}
}

// TestOldMACsRevealed: once a key pair is retired, the receiving MAC keys
// used with it travel in the clear in the next Data message (so that
// anyone could have forged the old messages: deniability).
func TestOldMACsRevealed(t *testing.T) {
	a, b := securePair(t, PolicyManual, PolicyManual)
	used := map[[20]byte]bool{}
	revealed := 0
	for i := 0; i < 6; i++ {
		// Remember bob's receiving MAC keys before they are retired.
		for _, s := range b.c.sessions {
			for _, k := range s.keys {
				if k.recvMACUsed {
					used[k.recvMAC] = true
				}
			}
		}
		a.send(fmt.Sprint("a", i))
		pump(t, a, b)
		b.send(fmt.Sprint("b", i))
		for _, m := range b.out {
			bin, _ := DecodeMessage(m)
			d, ok := parseData(bin, 11)
			if !ok {
				t.Fatal("unparsable data message")
			}
			old, rest, ok := readData(bin[len(d.signed)+20:])
			if !ok || len(rest) != 0 || len(old)%20 != 0 {
				t.Fatalf("old MAC keys field %x", old)
			}
			for j := 0; j < len(old); j += 20 {
				var k [20]byte
				copy(k[:], old[j:])
				if !used[k] {
					t.Fatalf("revealed a MAC key that was never used to receive: %x", k)
				}
				revealed++
			}
		}
		pump(t, a, b)
	}
	if revealed == 0 {
		t.Fatal("no MAC key was ever revealed")
	}
}
