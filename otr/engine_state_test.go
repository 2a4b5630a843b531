package otr

import (
	"bytes"
	"errors"
	"testing"
)

func TestExportRestore(t *testing.T) {
	a, b := securePair(t, PolicyAlways, PolicyAlways)
	for i := 0; i < 3; i++ {
		a.send("warm up")
		pump(t, a, b)
		b.send("keys")
		pump(t, a, b)
	}
	saved := a.c.Export()
	// After a save, alice sends once more and then "crashes": the restored
	// state is older than what went out.
	a.send("after the save")
	pump(t, a, b)
	sentAfter := b.shown[len(b.shown)-1]

	r, err := Restore(saved, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !r.IsEncrypted() || r.InstanceTag() != a.c.InstanceTag() || r.Policy() != PolicyAlways {
		t.Fatal("restored conversation lost its session")
	}
	fa, _ := a.c.PeerFingerprint()
	fr, _ := r.PeerFingerprint()
	if fa != fr {
		t.Fatal("fingerprint changed")
	}
	a.c = r
	a.send("after the restore")
	pump(t, a, b)
	if b.lastShown() != "after the restore" || len(b.errs) != 0 {
		t.Fatalf("bob shows %q, errors %v", b.lastShown(), b.errs)
	}
	b.send("welcome back")
	pump(t, a, b)
	if a.lastShown() != "welcome back" || len(a.errs) != 0 {
		t.Fatalf("alice shows %q, errors %v", a.lastShown(), a.errs)
	}
	if string(sentAfter) != "after the save" {
		t.Fatal("setup")
	}
	// The restored state round-trips.
	if again, err := Restore(r.Export(), Config{}); err != nil || !again.IsEncrypted() {
		t.Fatalf("second restore: %v", err)
	}
}

// TestRestoreNoCounterReuse: a state saved before a message went out
// never sends again under the same key pair and counter.
func TestRestoreNoCounterReuse(t *testing.T) {
	a, b := securePair(t, PolicyManual, PolicyManual)
	saved := a.c.Export()
	out, _ := a.c.Send([]byte("first"))
	r, err := Restore(saved, Config{})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := r.Send([]byte("other"))
	d1, _ := DecodeMessage(out[0])
	d2, _ := DecodeMessage(again[0])
	p1, _ := parseData(d1, 11)
	p2, _ := parseData(d2, 11)
	if p1.senderID == p2.senderID && p1.recipID == p2.recipID && p1.ctr == p2.ctr {
		t.Fatal("counter reused after restore")
	}
	for _, m := range append(out, again...) {
		b.receive(m)
	}
	if len(b.errs) != 0 || b.lastShown() != "other" {
		t.Fatalf("bob: %q %v", b.shown, b.errs)
	}
}

func TestRestoreHeld(t *testing.T) {
	a := newEndpoint(t, "alice", testKey(t, 0), PolicyAlways)
	b := newEndpoint(t, "bob", testKey(t, 1), PolicyAlways)
	a.send("held until private")
	a.out = nil // the query is lost with the page
	r, err := Restore(a.c.Export(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	a.c = r
	a.out, _ = a.c.Start()
	pump(t, a, b)
	if b.lastShown() != "held until private" {
		t.Fatalf("held message lost: %q", b.shown)
	}
}

func FuzzRestore(f *testing.F) {
	a, b := securePair(f, PolicyAlways, PolicyAlways)
	a.send("x")
	pump(f, a, b)
	good := a.c.Export()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(stateMagic))
	f.Add([]byte{})
	f.Add(newEndpoint(f, "c", testKey(f, 2), PolicyManual).c.Export())
	f.Fuzz(func(t *testing.T, state []byte) {
		c, err := Restore(state, Config{})
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("error %v is not ErrBadState", err)
			}
			return
		}
		// Whatever restores exports to something that restores again.
		if _, err := Restore(c.Export(), Config{}); err != nil {
			t.Fatalf("re-export: %v", err)
		}
		_, _ = c.Send([]byte("x"))
		_ = bytes.Equal
	})
}
