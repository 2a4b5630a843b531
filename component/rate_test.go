package component

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"otrdesk.im/otrdesk/store"
)

func TestBucket(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var b bucket
	for i := 0; i < 3; i++ {
		if !b.take(t0, 3) {
			t.Fatalf("a new bucket is full: take %d refused", i+1)
		}
	}
	if b.take(t0, 3) {
		t.Fatal("an empty bucket gave a token")
	}
	if b.take(t0.Add(19*time.Second), 3) {
		t.Fatal("a token after 19 s at 3 a minute (one every 20 s)")
	}
	if !b.take(t0.Add(20*time.Second), 3) {
		t.Fatal("no token after 20 s at 3 a minute")
	}
	// A long pause refills to the brim, not beyond.
	n := 0
	for b.take(t0.Add(time.Hour), 3) {
		n++
	}
	if n != 3 {
		t.Fatalf("after an hour: %d tokens, want 3", n)
	}
	// A clock that goes back takes nothing away and adds nothing.
	if b.take(t0, 3) {
		t.Fatal("a token from a clock that went back")
	}
}

// newVisitor is a fresh anonymous JID, as a flood would use.
func newVisitor(i int) string { return fmt.Sprintf("flood%d@guest.example.org/r", i) }

func TestNewChatsPerSkin(t *testing.T) {
	other := helpSkin("op1@example.org")
	other.Name = "other"
	f := newFixture(t, Config{NewChatsPerMinute: 2, NewChatsPerMinuteTotal: 100}, helpSkin("op1@example.org"), other)
	for i := 0; i < 2; i++ {
		f.msg(newVisitor(i), skinJID, "hi")
		if s := f.sent(); len(errorsIn(s)) != 0 {
			t.Fatalf("chat %d refused: %v", i+1, s)
		}
	}
	f.msg(newVisitor(2), skinJID, "CANARY-flood")
	s := only(t, f.sent(), func(sentStanza) bool { return true })
	if s.errCond != "resource-constraint" || s.typ != "error" || s.to != newVisitor(2) {
		t.Fatalf("third new chat in a minute: want resource-constraint to the visitor, got %s", s.raw)
	}
	if s.body != nil || strings.Contains(s.raw, "CANARY") {
		t.Fatalf("the refusal echoes the body: %s", s.raw)
	}
	if _, err := f.st.GuestByRealJID("help", newVisitor(2)); err == nil {
		t.Fatal("a refused chat left a guest record")
	}
	// Another skin has its own bucket.
	f.msg(newVisitor(3), "other@"+testDomain, "hi")
	if s := f.sent(); len(errorsIn(s)) != 0 {
		t.Fatalf("a chat of another skin refused: %v", s)
	}
	// A visitor who already has an alias is not a new chat.
	f.msg(newVisitor(0), skinJID, "still here")
	if s := f.sent(); len(errorsIn(s)) != 0 {
		t.Fatalf("a running chat refused: %v", s)
	}
	// A minute later the skin takes new chats again.
	f.now = f.now.Add(30 * time.Second)
	f.msg(newVisitor(4), skinJID, "hi")
	if s := f.sent(); len(errorsIn(s)) != 0 {
		t.Fatalf("half a minute later (one token back): %v", s)
	}
}

func TestNewChatsTotal(t *testing.T) {
	var skins []store.Skin
	for _, n := range []string{"a", "b", "c"} {
		sk := helpSkin("op1@example.org")
		sk.Name = n
		skins = append(skins, sk)
	}
	f := newFixture(t, Config{NewChatsPerMinute: 100, NewChatsPerMinuteTotal: 2}, skins...)
	f.msg(newVisitor(0), "a@"+testDomain, "hi")
	f.msg(newVisitor(1), "b@"+testDomain, "hi")
	if s := f.sent(); len(errorsIn(s)) != 0 {
		t.Fatalf("chats within the total refused: %v", s)
	}
	f.msg(newVisitor(2), "c@"+testDomain, "hi")
	s := only(t, f.sent(), func(sentStanza) bool { return true })
	if s.errCond != "resource-constraint" {
		t.Fatalf("over the total: %s", s.raw)
	}
}

func errorsIn(out []sentStanza) []sentStanza {
	var errs []sentStanza
	for _, s := range out {
		if s.typ == "error" {
			errs = append(errs, s)
		}
	}
	return errs
}
