package otr

import (
	"testing"
)

func eventOf(e *endpoint, k EventKind) (Event, bool) {
	for _, ev := range e.events {
		if ev.Kind == k {
			return ev, true
		}
	}
	return Event{}, false
}

func TestSMP(t *testing.T) {
	for _, tc := range []struct {
		name             string
		question         string
		secretA, secretB string
		want             EventKind
	}{
		{"right secret", "", "the colour of the sky", "the colour of the sky", EventSMPSucceeded},
		{"right secret with question", "Where did we meet?", "Zürich", "Zürich", EventSMPSucceeded},
		{"wrong secret", "", "one", "two", EventSMPFailed},
		{"wrong secret with question", "Pet's name?", "Rex", "rex", EventSMPFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := securePair(t, PolicyManual, PolicyManual)
			a.events, b.events = nil, nil
			out, err := a.c.Authenticate(tc.question, []byte(tc.secretA))
			if err != nil {
				t.Fatal(err)
			}
			a.out = out
			pump(t, a, b)
			ev, ok := eventOf(b, EventSMPSecretNeeded)
			if !ok || ev.Text != tc.question {
				t.Fatalf("bob's events %v, want a secret request with %q", b.events, tc.question)
			}
			out, err = b.c.Authenticate("", []byte(tc.secretB))
			if err != nil {
				t.Fatal(err)
			}
			b.out = out
			pump(t, a, b)
			if !a.has(tc.want) || !b.has(tc.want) {
				t.Fatalf("want %v on both sides: alice %v bob %v", tc.want, a.events, b.events)
			}
			if a.has(EventSMPAborted) || b.has(EventSMPAborted) || len(a.errs)+len(b.errs) > 0 {
				t.Fatalf("aborted or errors: %v %v %v %v", a.events, b.events, a.errs, b.errs)
			}
			// SMP leaves the chat usable.
			a.send("after SMP")
			pump(t, a, b)
			if b.lastShown() != "after SMP" {
				t.Fatal("chat broken after SMP")
			}
		})
	}
}

func TestSMPAbortAndOutOfOrder(t *testing.T) {
	a, b := securePair(t, PolicyManual, PolicyManual)
	out, _ := a.c.Authenticate("", []byte("s"))
	a.out = out
	pump(t, a, b)
	out, err := b.c.AbortSMP()
	if err != nil {
		t.Fatal(err)
	}
	b.out = out
	pump(t, a, b)
	if !a.has(EventSMPAborted) {
		t.Fatalf("alice did not see the abort: %v", a.events)
	}
	// Answering an aborted SMP is not possible any more on alice's side;
	// bob's pending question is gone too.
	if _, err := b.c.Authenticate("", []byte("s")); err != nil {
		t.Fatal(err) // starts a new SMP instead
	}
	// An SMP message 3 with nothing before is answered with an abort.
	a.events, b.events = nil, nil
	s := b.c.best()
	msgs, err := b.c.sendData(s, nil, []tlv{{typ: tlvSMP3, value: smpEncode(dhG, dhG, dhG, dhG, dhG, dhG, dhG, dhG)}}, flagIgnoreUnreadable)
	if err != nil {
		t.Fatal(err)
	}
	b.out = msgs
	pump(t, a, b)
	if !a.has(EventSMPAborted) || !b.has(EventSMPAborted) {
		t.Fatalf("out-of-order SMP not aborted: %v / %v", a.events, b.events)
	}
	if _, err := newEndpoint(t, "x", testKey(t, 2), PolicyManual).c.Authenticate("", nil); err != ErrNotSecure {
		t.Fatalf("SMP without encryption: %v", err)
	}
}
