package otr

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	"otrdesk.im/otrdesk/internal/libotrtest"
)

// These tests talk to real libotr 4.1.1 (Debian libotr5-dev) through the
// peer program of internal/libotrtest, over pipes.

// libChat is a Go conversation and one or more libotr peers on one wire:
// what Go sends reaches every peer (an XMPP server delivering to every
// resource), what a peer sends reaches Go.
type libChat struct {
	t     testing.TB
	go_   *endpoint
	peers []*libotrtest.Peer
	// per peer: what libotr showed and its event lines since the last reset
	shown  [][]libotrtest.Shown
	events [][]string
	queued [][][]byte // per peer: messages from the peer not yet delivered to Go
}

func newLibChat(t testing.TB, goPolicy Policy, goMax int, peers ...*libotrtest.Peer) *libChat {
	t.Helper()
	e := newEndpoint(t, "go", testKey(t, 0), goPolicy)
	e.c.maxSize = goMax
	lc := &libChat{t: t, go_: e, peers: peers}
	lc.shown = make([][]libotrtest.Shown, len(peers))
	lc.events = make([][]string, len(peers))
	lc.queued = make([][][]byte, len(peers))
	return lc
}

func (lc *libChat) note(i int, r libotrtest.Reply) {
	lc.shown[i] = append(lc.shown[i], r.Shown...)
	lc.events[i] = append(lc.events[i], r.Events...)
	lc.queued[i] = append(lc.queued[i], r.Out...)
}

func (lc *libChat) reset() {
	for i := range lc.peers {
		lc.shown[i], lc.events[i] = nil, nil
	}
	lc.go_.shown, lc.go_.events, lc.go_.errs = nil, nil, nil
}

// pump delivers until nothing moves.
func (lc *libChat) pump() {
	lc.t.Helper()
	for round := 0; round < 200; round++ {
		moved := false
		out := lc.go_.out
		lc.go_.out = nil
		for _, m := range out {
			moved = true
			for i, p := range lc.peers {
				lc.note(i, p.Receive(m))
			}
		}
		for i := range lc.peers {
			q := lc.queued[i]
			lc.queued[i] = nil
			for _, m := range q {
				moved = true
				lc.go_.receive(m)
			}
		}
		if !moved {
			return
		}
	}
	lc.t.Fatal("messages never settled")
}

func (lc *libChat) peerHas(i int, prefix string) bool {
	for _, e := range lc.events[i] {
		if strings.HasPrefix(e, prefix) {
			return true
		}
	}
	return false
}

func (lc *libChat) lastPeerShown(i int) string {
	s := lc.shown[i]
	if len(s) == 0 {
		return ""
	}
	return string(s[len(s)-1].Text)
}

func (lc *libChat) requireSecure(what string) {
	lc.t.Helper()
	if !lc.go_.c.IsEncrypted() {
		lc.t.Fatalf("%s: Go side not encrypted (errors %v, events %v; libotr %v)", what, lc.go_.errs, lc.go_.events, lc.events)
	}
	for i, p := range lc.peers {
		if st, _ := p.State(lc.go_.c.InstanceTag()); st != 1 {
			lc.t.Fatalf("%s: libotr peer %d in state %d (events %v; go errors %v)", what, i, st, lc.events[i], lc.go_.errs)
		}
	}
	fp, _ := lc.go_.c.PeerFingerprint()
	if want := lc.peers[0].Fingerprint(); !bytes.Equal(fp[:], want[:]) {
		lc.t.Fatalf("%s: Go sees fingerprint %x, libotr has %x", what, fp, want)
	}
	if len(lc.go_.errs) > 0 {
		lc.t.Fatalf("%s: Go errors %v", what, lc.go_.errs)
	}
}

// exchange sends one message each way and checks both arrive intact.
func (lc *libChat) exchange(toLib, toGo string) {
	lc.t.Helper()
	lc.go_.send(toLib)
	lc.pump()
	if got := lc.lastPeerShown(0); got != toLib {
		lc.t.Fatalf("libotr shows %q, want %q (events %v)", abbrev(got), abbrev(toLib), lc.events[0])
	}
	lc.note(0, lc.peers[0].Send([]byte(toGo)))
	lc.pump()
	if got := lc.go_.lastShown(); got != toGo {
		lc.t.Fatalf("Go shows %q, want %q (errors %v)", abbrev(got), abbrev(toGo), lc.go_.errs)
	}
}

func abbrev(s string) string {
	if len(s) > 60 {
		return fmt.Sprintf("%s…(%d bytes)", s[:60], len(s))
	}
	return s
}

// TestLibotrAKE runs 200 AKEs with Go as the responder (Go sends the
// query, libotr the DH-Commit) and 200 with Go as the committer (libotr
// sends the query), each followed by a message both ways. The first AKE of
// each role is on fresh conversations, the rest re-key a running one.
func TestLibotrAKE(t *testing.T) {
	for _, goQueries := range []bool{true, false} {
		peer := libotrtest.StartPeer(t, libotrtest.PeerConfig{})
		lc := newLibChat(t, PolicyOpportunistic, 0, peer)
		for i := 0; i < 200; i++ {
			lc.reset()
			if goQueries {
				q, err := lc.go_.c.Start()
				if err != nil {
					t.Fatal(err)
				}
				lc.go_.out = q
			} else {
				lc.note(0, peer.Query())
			}
			lc.pump()
			what := fmt.Sprintf("AKE %d (Go queries: %v)", i, goQueries)
			lc.requireSecure(what)
			want := EventGoneSecure
			if i > 0 {
				want = EventStillSecure
			}
			if !lc.go_.has(want) {
				t.Fatalf("%s: no %v event: %v", what, want, lc.go_.events)
			}
			lc.exchange(fmt.Sprintf("to libotr %d", i), fmt.Sprintf("to Go %d", i))
		}
	}
}

func TestLibotrMessages(t *testing.T) {
	const max = 1400
	peer := libotrtest.StartPeer(t, libotrtest.PeerConfig{MaxSize: max})
	lc := newLibChat(t, PolicyOpportunistic, max, peer)
	lc.note(0, peer.Query())
	lc.pump()
	lc.requireSecure("AKE")
	lc.exchange("Grüße, 你好, привет, 🙂", "¡Hola! — ça va? ✓ 日本語")
	big := strings.Repeat("0123456789abcdé ", 10*1024/17+1)[:10*1024]
	lc.go_.send(big)
	if len(lc.go_.out) < 2 {
		t.Fatalf("Go did not fragment a 10 KiB message for %d bytes: %d parts", max, len(lc.go_.out))
	}
	for _, m := range lc.go_.out {
		if len(m) > max {
			t.Fatalf("Go fragment of %d bytes exceeds %d", len(m), max)
		}
	}
	lc.pump()
	if got := lc.lastPeerShown(0); got != big {
		t.Fatalf("libotr reassembled %q", abbrev(got))
	}
	r := peer.Send([]byte(big))
	if len(r.Out) < 2 || !bytes.HasPrefix(r.Out[0], []byte("?OTR|")) {
		t.Fatalf("libotr did not fragment: %d parts", len(r.Out))
	}
	lc.note(0, r)
	lc.pump()
	if got := lc.go_.lastShown(); got != big {
		t.Fatalf("Go reassembled %q (errors %v)", abbrev(got), lc.go_.errs)
	}
	// Many messages in a row each way keep keys rotating.
	for i := 0; i < 20; i++ {
		lc.exchange(fmt.Sprintf("round %d", i), hex.EncodeToString([]byte{byte(i)}))
	}
	if len(lc.go_.errs) > 0 {
		t.Fatal(lc.go_.errs)
	}
}

func TestLibotrDisconnectAndReAKE(t *testing.T) {
	peer := libotrtest.StartPeer(t, libotrtest.PeerConfig{})
	lc := newLibChat(t, PolicyOpportunistic, 0, peer)
	lc.note(0, peer.Query())
	lc.pump()
	lc.requireSecure("AKE")

	// libotr ends: Go goes to finished and refuses to send.
	lc.note(0, peer.Disconnect(0))
	lc.pump()
	if lc.go_.c.IsEncrypted() || !lc.go_.has(EventGoneInsecure) {
		t.Fatalf("Go did not notice the disconnect: %v", lc.go_.events)
	}
	if _, err := lc.go_.c.Send([]byte("lost?")); err != ErrFinished {
		t.Fatalf("send after peer ended: %v", err)
	}
	// Restart from Go.
	q, _ := lc.go_.c.Start()
	lc.go_.out = q
	lc.pump()
	lc.requireSecure("re-AKE after libotr ended")
	lc.exchange("again", "yes")

	// Go ends: libotr goes to finished.
	lc.reset()
	out, err := lc.go_.c.End()
	if err != nil {
		t.Fatal(err)
	}
	lc.go_.out = out
	lc.pump()
	if st, _ := peer.State(lc.go_.c.InstanceTag()); st != 2 {
		t.Fatalf("libotr state %d after Go ended, want finished (events %v)", st, lc.events[0])
	}
	lc.note(0, peer.Query())
	lc.pump()
	lc.requireSecure("re-AKE after Go ended")
	lc.exchange("third", "time")
}

// TestLibotrV2 checks version 2 both ways: Go allowing only v2 against a
// default libotr, and libotr allowing only v2 against a default Go.
func TestLibotrV2(t *testing.T) {
	for _, goV2Only := range []bool{true, false} {
		goPolicy, libPolicy := Policy(PolicyOpportunistic), uint32(libotrtest.PolicyDefault)
		if goV2Only {
			goPolicy &^= AllowV3
		} else {
			libPolicy &^= libotrtest.PolicyAllowV3
		}
		peer := libotrtest.StartPeer(t, libotrtest.PeerConfig{Policy: libPolicy, MaxSize: 500})
		lc := newLibChat(t, goPolicy, 500, peer)
		for _, goQueries := range []bool{true, false} {
			lc.reset()
			if goQueries {
				lc.go_.out, _ = lc.go_.c.Start()
			} else {
				lc.note(0, peer.Query())
			}
			lc.pump()
			if !lc.go_.c.IsEncrypted() {
				t.Fatalf("v2 (Go v2 only %v): not encrypted: %v %v", goV2Only, lc.go_.errs, lc.events[0])
			}
			if _, v := peer.State(0); v != 2 {
				t.Fatalf("libotr speaks version %d, want 2", v)
			}
			if s := lc.go_.c.best(); s.version != 2 || s.tag != 0 {
				t.Fatalf("Go session version %d tag %#x", s.version, s.tag)
			}
			lc.go_.send("v2 to libotr")
			if !bytes.HasPrefix(lc.go_.out[0], []byte("?OTR:AAID")) {
				t.Fatalf("not a v2 data message: %.20q", lc.go_.out[0])
			}
			lc.pump()
			lc.exchange("v2 ✓", "v2 back ✓")
			// Version 2 fragments ("?OTR,k,n,piece,") both ways.
			long := strings.Repeat("v2 fragments ", 300)
			lc.go_.send(long)
			if len(lc.go_.out) < 2 || !bytes.HasPrefix(lc.go_.out[0], []byte("?OTR,")) {
				t.Fatalf("Go did not send v2 fragments: %.20q", lc.go_.out)
			}
			lc.pump()
			lc.exchange(long+"!", long+"?")
		}
	}
}

// TestLibotrSMP runs SMP in both directions, with and without a question,
// with the right and a wrong secret.
func TestLibotrSMP(t *testing.T) {
	peer := libotrtest.StartPeer(t, libotrtest.PeerConfig{})
	lc := newLibChat(t, PolicyOpportunistic, 0, peer)
	lc.note(0, peer.Query())
	lc.pump()
	lc.requireSecure("AKE")
	tag := lc.go_.c.InstanceTag()
	for _, tc := range []struct {
		goStarts      bool
		question      string
		goSec, libSec string
		succeeds      bool
	}{
		{true, "", "shared secret ✓", "shared secret ✓", true},
		{true, "Which city?", "Zürich", "Zurich", false},
		{false, "", "42", "42", true},
		{false, "Favourite number?", "42", "43", false},
		{true, "Again?", "yes", "yes", true},
	} {
		lc.reset()
		name := fmt.Sprintf("Go starts %v, question %q, same secret %v", tc.goStarts, tc.question, tc.succeeds)
		if tc.goStarts {
			out, err := lc.go_.c.Authenticate(tc.question, []byte(tc.goSec))
			if err != nil {
				t.Fatal(err)
			}
			lc.go_.out = out
			lc.pump()
			want := "smp ask "
			if tc.question != "" {
				want = "smp askq "
			}
			if !lc.peerHas(0, want) {
				t.Fatalf("%s: libotr events %v", name, lc.events[0])
			}
			if tc.question != "" && !lc.peerHas(0, want+fmt.Sprintf("%08x 25 %s", tag, hex.EncodeToString([]byte(tc.question)))) {
				t.Fatalf("%s: libotr did not get the question: %v", name, lc.events[0])
			}
			lc.note(0, peer.SMPRespond(tag, []byte(tc.libSec)))
			lc.pump()
		} else {
			lc.note(0, peer.SMP(tag, tc.question, []byte(tc.libSec)))
			lc.pump()
			ev, ok := eventOf(lc.go_, EventSMPSecretNeeded)
			if !ok || ev.Text != tc.question {
				t.Fatalf("%s: Go events %v", name, lc.go_.events)
			}
			out, err := lc.go_.c.Authenticate("", []byte(tc.goSec))
			if err != nil {
				t.Fatal(err)
			}
			lc.go_.out = out
			lc.pump()
		}
		goWant, libWant := EventSMPFailed, "smp failure"
		if tc.succeeds {
			goWant, libWant = EventSMPSucceeded, "smp success"
		}
		if !lc.go_.has(goWant) || !lc.peerHas(0, libWant) {
			t.Fatalf("%s: Go events %v (errors %v), libotr events %v", name, lc.go_.events, lc.go_.errs, lc.events[0])
		}
		lc.exchange("after SMP", "still here")
	}
	// libotr aborts an SMP that Go started.
	lc.reset()
	lc.go_.out, _ = lc.go_.c.Authenticate("", []byte("x"))
	lc.pump()
	lc.note(0, peer.Do(fmt.Sprintf("smpabort %08x", tag)))
	lc.pump()
	if !lc.go_.has(EventSMPAborted) {
		t.Fatalf("Go did not see libotr's abort: %v", lc.go_.events)
	}
}

// TestLibotrTwoInstances: one libotr account logged in twice (two libotr
// processes, one key, two instance tags) talks to one Go conversation.
// Both AKEs complete; each libotr instance reads only what Go sends to it
// and ignores the rest, and Go tells the senders apart.
func TestLibotrTwoInstances(t *testing.T) {
	dir := t.TempDir()
	key := dir + "/otr.private_key"
	a := libotrtest.StartPeer(t, libotrtest.PeerConfig{KeyFile: key, Dir: dir})
	b := libotrtest.StartPeer(t, libotrtest.PeerConfig{KeyFile: key, Dir: dir})
	if a.Fingerprint() != b.Fingerprint() || a.InstanceTag() == b.InstanceTag() {
		t.Fatalf("not one account twice: %x/%x tags %#x/%#x", a.Fingerprint(), b.Fingerprint(), a.InstanceTag(), b.InstanceTag())
	}
	lc := newLibChat(t, PolicyOpportunistic, 0, a, b)
	lc.go_.out, _ = lc.go_.c.Start()
	lc.pump()
	lc.requireSecure("two instances")
	if got := lc.go_.c.Instances(); len(got) != 2 {
		t.Fatalf("Go knows instances %x", got)
	}
	for i, p := range []*libotrtest.Peer{a, b} {
		lc.reset()
		// Go → instance i only.
		if err := lc.go_.c.SetInstance(p.InstanceTag()); err != nil {
			t.Fatal(err)
		}
		text := fmt.Sprintf("for instance %d", i)
		lc.go_.send(text)
		lc.pump()
		other := 1 - i
		if lc.lastPeerShown(i) != text || len(lc.shown[other]) != 0 {
			t.Fatalf("Go to instance %d: shown %v / %v", i, lc.shown[i], lc.shown[other])
		}
		if !lc.peerHas(other, "event rcvdmsg_for_other_instance") {
			t.Fatalf("instance %d did not drop the message for %d: %v", other, i, lc.events[other])
		}
		// instance i → Go.
		reply := fmt.Sprintf("from instance %d", i)
		lc.note(i, p.SendTo(lc.go_.c.InstanceTag(), []byte(reply)))
		lc.pump()
		if lc.go_.lastShown() != reply || lc.go_.c.LastSender() != p.InstanceTag() {
			t.Fatalf("Go got %q from %#x", lc.go_.lastShown(), lc.go_.c.LastSender())
		}
	}
}

// TestLibotrGoTwice: a Go account logged in twice (two conversations, one
// key) against one libotr. Both AKEs complete; what libotr sends to one Go
// instance is ignored by the other.
func TestLibotrGoTwice(t *testing.T) {
	peer := libotrtest.StartPeer(t, libotrtest.PeerConfig{})
	g1 := newEndpoint(t, "go1", testKey(t, 0), PolicyOpportunistic)
	g2 := newEndpoint(t, "go2", testKey(t, 0), PolicyOpportunistic)
	gos := []*endpoint{g1, g2}
	var events []string
	var shown []libotrtest.Shown
	deliver := func(r libotrtest.Reply) {
		events = append(events, r.Events...)
		shown = append(shown, r.Shown...)
		for _, m := range r.Out {
			for _, g := range gos {
				g.receive(m)
			}
		}
	}
	settle := func() {
		for round := 0; round < 50; round++ {
			moved := false
			for _, g := range gos {
				out := g.out
				g.out = nil
				for _, m := range out {
					moved = true
					deliver(peer.Receive(m))
				}
			}
			if !moved {
				return
			}
		}
		t.Fatal("never settled")
	}
	deliver(peer.Query())
	settle()
	for i, g := range gos {
		if !g.c.IsEncrypted() || len(g.errs) > 0 {
			t.Fatalf("go%d: encrypted %v errors %v", i+1, g.c.IsEncrypted(), g.errs)
		}
		if st, _ := peer.State(g.c.InstanceTag()); st != 1 {
			t.Fatalf("libotr not encrypted with go%d", i+1)
		}
	}
	for i, g := range gos {
		text := fmt.Sprintf("to go%d", i+1)
		before1, before2 := len(g1.shown), len(g2.shown)
		deliver(peer.SendTo(g.c.InstanceTag(), []byte(text)))
		settle()
		if g.lastShown() != text {
			t.Fatalf("go%d shows %q", i+1, g.lastShown())
		}
		if len(g1.shown)-before1+len(g2.shown)-before2 != 1 {
			t.Fatalf("message for go%d shown %d times", i+1, len(g1.shown)-before1+len(g2.shown)-before2)
		}
		if len(g1.errs)+len(g2.errs) > 0 {
			t.Fatalf("errors: %v %v", g1.errs, g2.errs)
		}
		g.send(fmt.Sprintf("from go%d", i+1))
		settle()
		if len(shown) == 0 || string(shown[len(shown)-1].Text) != fmt.Sprintf("from go%d", i+1) || shown[len(shown)-1].Instance != g.c.InstanceTag() {
			t.Fatalf("libotr shows %v", shown)
		}
	}
}

// TestLibotrExtraKey: the extra symmetric key agrees with libotr's both ways.
func TestLibotrExtraKey(t *testing.T) {
	peer := libotrtest.StartPeer(t, libotrtest.PeerConfig{})
	lc := newLibChat(t, PolicyOpportunistic, 0, peer)
	lc.note(0, peer.Query())
	lc.pump()
	lc.requireSecure("AKE")
	key, out, err := lc.go_.c.ExtraKey(3, []byte("upload-9"))
	if err != nil {
		t.Fatal(err)
	}
	lc.go_.out = out
	lc.pump()
	want := fmt.Sprintf("symkey 3 %s %s", hex.EncodeToString([]byte("upload-9")), hex.EncodeToString(key))
	if !lc.peerHas(0, want) {
		t.Fatalf("libotr: %v, want %q", lc.events[0], want)
	}
	r := peer.Do(fmt.Sprintf("symkey %08x 5 %s", lc.go_.c.InstanceTag(), hex.EncodeToString([]byte("x"))))
	var libKey string
	for _, e := range r.Events {
		if strings.HasPrefix(e, "key ") {
			libKey = strings.TrimPrefix(e, "key ")
		}
	}
	lc.note(0, r)
	lc.pump()
	ev, ok := eventOf(lc.go_, EventExtraKey)
	if !ok || hex.EncodeToString(ev.Key) != libKey || ev.Use != 5 || string(ev.Data) != "x" {
		t.Fatalf("Go extra key event %+v, libotr key %s", ev, libKey)
	}
}

// TestLibotrReload: the Go side restarts (a visitor reloading the page:
// a new conversation with the same key and instance tag) while libotr is
// still encrypted. libotr's next message is unreadable: Go tells the user
// so and answers with an OTR error, libotr (error-start-AKE) restarts the
// AKE, and the chat is private again without anyone acting. libotr 4.1.1
// does not resend the lost message (it keeps one only when encryption is
// required and the chat was not yet private), so the user's notice is all
// there is; our engine does resend (TestResendAfterPeerRestart).
func TestLibotrReload(t *testing.T) {
	peer := libotrtest.StartPeer(t, libotrtest.PeerConfig{})
	lc := newLibChat(t, PolicyAlways, 0, peer)
	lc.go_.out, _ = lc.go_.c.Start()
	lc.pump()
	lc.requireSecure("first AKE")
	tag := lc.go_.c.InstanceTag()
	reloaded, err := NewConversation(Config{PrivateKey: testKey(t, 0), Policy: PolicyAlways, InstanceTag: tag})
	if err != nil {
		t.Fatal(err)
	}
	lc.go_.c = reloaded
	lc.reset()
	lc.note(0, peer.Send([]byte("are you still there?")))
	lc.pump()
	if !lc.go_.has(EventError) || !lc.go_.has(EventGoneSecure) || len(lc.go_.errs) != 1 || !errors.Is(lc.go_.errs[0], ErrUnreadable) {
		t.Fatalf("Go events %v, errors %v; libotr %v", lc.go_.events, lc.go_.errs, lc.events[0])
	}
	lc.go_.errs = nil
	lc.requireSecure("after reload")
	lc.exchange("after reload", "ok")
}

// TestLibotrWhitespaceStart: a plaintext message tagged by one side
// starts the AKE at the other, both ways, and the tag is not shown.
func TestLibotrWhitespaceStart(t *testing.T) {
	for _, goFirst := range []bool{true, false} {
		peer := libotrtest.StartPeer(t, libotrtest.PeerConfig{})
		lc := newLibChat(t, PolicyOpportunistic, 0, peer)
		if goFirst {
			lc.go_.send("hello from Go")
			if !bytes.Contains(lc.go_.out[0], whitespaceTag) {
				t.Fatalf("Go sent no whitespace tag: %q", lc.go_.out[0])
			}
			lc.pump()
			if got := lc.lastPeerShown(0); got != "hello from Go" {
				t.Fatalf("libotr shows %q", got)
			}
		} else {
			lc.note(0, peer.Send([]byte("hello from libotr")))
			lc.pump()
			if got := lc.go_.shown; len(got) == 0 || string(got[0]) != "hello from libotr" {
				t.Fatalf("Go shows %q", got)
			}
		}
		lc.requireSecure(fmt.Sprintf("whitespace start (Go first %v)", goFirst))
		lc.exchange("now private", "yes")
	}
}

// TestLibotrSmallFragments: with a small maximum size on both sides even
// the AKE messages travel in fragments.
func TestLibotrSmallFragments(t *testing.T) {
	const max = 180
	for _, goQueries := range []bool{true, false} {
		peer := libotrtest.StartPeer(t, libotrtest.PeerConfig{MaxSize: max})
		lc := newLibChat(t, PolicyOpportunistic, max, peer)
		if goQueries {
			lc.go_.out, _ = lc.go_.c.Start()
		} else {
			lc.note(0, peer.Query())
		}
		lc.pump()
		lc.requireSecure(fmt.Sprintf("AKE in fragments (Go queries %v)", goQueries))
		lc.exchange(strings.Repeat("ü", 300), strings.Repeat("ß", 300))
	}
}
