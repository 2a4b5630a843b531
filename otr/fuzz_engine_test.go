package otr

import (
	"bytes"
	"fmt"
	"testing"
)

// Conversation states the fuzz target starts from.
const (
	fzFresh = iota
	fzQuerySent
	fzAwaitingDHKey
	fzAwaitingRevealSig
	fzAwaitingSig
	fzEncrypted
	fzSMPExpect2
	fzSMPPending1
	fzSMPExpect3
	fzSMPExpect4
	fzFinished
	fzStates
)

// fuzzState builds a conversation (alice) in the given state, with bob as
// the honest peer, and returns the messages seen on the way, as seeds.
func fuzzState(t testing.TB, state int) (alice, bob *endpoint, transcript [][]byte) {
	a := newEndpoint(t, "alice", testKey(t, 0), PolicyOpportunistic)
	b := newEndpoint(t, "bob", testKey(t, 1), PolicyOpportunistic)
	step := func(from, to *endpoint) {
		out := from.out
		from.out = nil
		for _, m := range out {
			transcript = append(transcript, m)
			to.receive(m)
		}
	}
	switch state {
	case fzFresh:
		return a, b, nil
	case fzQuerySent:
		a.out, _ = a.c.Start()
		transcript = a.out
		a.out = nil
		return a, b, transcript
	}
	b.out, _ = b.c.Start()
	step(b, a) // query → alice sends DH-Commit
	if state == fzAwaitingDHKey {
		return a, b, transcript
	}
	step(a, b) // DH-Commit → bob sends DH-Key
	if state == fzAwaitingRevealSig {
		// Alice as the responder: start over with alice answering bob's commit.
		a2 := newEndpoint(t, "alice", testKey(t, 0), PolicyOpportunistic)
		b2 := newEndpoint(t, "bob", testKey(t, 1), PolicyOpportunistic)
		a2.out, _ = a2.c.Start()
		for _, m := range a2.out {
			b2.receive(m)
		}
		a2.out = nil
		for _, m := range b2.out {
			transcript = append(transcript, m)
			a2.receive(m)
		}
		b2.out = nil
		return a2, b2, transcript
	}
	step(b, a) // DH-Key → alice sends Reveal Signature
	if state == fzAwaitingSig {
		return a, b, transcript
	}
	step(a, b) // Reveal Signature → bob sends Signature
	step(b, a)
	if !a.c.IsEncrypted() {
		t.Fatal("fuzz setup: no AKE")
	}
	b.send("hello")
	step(b, a)
	a.send("hi")
	step(a, b)
	switch state {
	case fzEncrypted:
	case fzSMPExpect2:
		a.out, _ = a.c.Authenticate("q?", []byte("s"))
		step(a, b)
	case fzSMPPending1, fzSMPExpect3, fzSMPExpect4:
		b.out, _ = b.c.Authenticate("q?", []byte("s"))
		step(b, a) // alice has a pending SMP1
		if state == fzSMPPending1 {
			break
		}
		a.out, _ = a.c.Authenticate("", []byte("s"))
		if state == fzSMPExpect3 {
			transcript = append(transcript, a.out...)
			a.out = nil
			break
		}
		step(a, b) // bob sends SMP3; alice expects... bob now expects 4
		// Make alice the one expecting 4: alice starts.
		a2, b2, tr := fuzzState(t, fzEncrypted)
		a2.out, _ = a2.c.Authenticate("", []byte("s"))
		for _, m := range a2.out {
			b2.receive(m)
		}
		a2.out = nil
		b2.out, _ = b2.c.Authenticate("", []byte("s"))
		for _, m := range b2.out {
			a2.receive(m) // alice sends SMP3, now expects 4
		}
		b2.out = nil
		transcript = append(transcript, tr...)
		transcript = append(transcript, a2.out...)
		a2.out = nil
		return a2, b2, transcript
	case fzFinished:
		b.out, _ = b.c.End()
		step(b, a)
	}
	return a, b, transcript
}

// cloneConv deep-copies a conversation for the fuzz target, so that each
// input starts from the same state without redoing the AKE. Big integers
// are shared: the engine never changes one in place.
func cloneConv(c *Conversation) *Conversation {
	d := *c
	d.sessions = make(map[uint32]*session, len(c.sessions))
	for tag, s := range c.sessions {
		s2 := *s
		if s.keys != nil {
			s2.keys = make(map[[2]uint32]*dataKeys, len(s.keys))
			for id, k := range s.keys {
				k2 := *k
				s2.keys[id] = &k2
			}
		}
		s2.oldMACs = bytes.Clone(s.oldMACs)
		d.sessions[tag] = &s2
	}
	if c.commit != nil {
		a := *c.commit
		d.commit = &a
	}
	d.held = append([][]byte(nil), c.held...)
	d.reasm.pending = nil
	for k, p := range c.reasm.pending {
		if d.reasm.pending == nil {
			d.reasm.pending = make(map[uint32]*partial)
		}
		p2 := *p
		p2.buf = bytes.Clone(p.buf)
		d.reasm.pending[k] = &p2
	}
	return &d
}

func cloneEndpoint(e *endpoint) *endpoint {
	return &endpoint{t: e.t, name: e.name, c: cloneConv(e.c)}
}

var fuzzSeedsExtra = []string{
	"", "hello", "?OTR", "?OTR:", "?OTR:.", "?OTR:AAMD.", "?OTR:AAID.", "?OTR:AAMC!!!!.", "?OTRv23?", "?OTR?v2?", "?OTRv?",
	"?OTR Error: bad", "?OTR|00000100|00000000,1,2,AAAA,", "?OTR,1,1,?OTR:AAIC.,", "?OTR|1|0,00001,00001,?OTR:AAMC,",
	"plain \t  \t\t\t\t \t \t \t    \t\t  \t   \t\t  \t\t",
}

func FuzzReceive(f *testing.F) {
	var transcript [][]byte
	for st := 0; st < fzStates; st++ {
		_, _, tr := fuzzState(f, st)
		transcript = append(transcript, tr...)
	}
	for st := 0; st < fzStates; st++ {
		tr := transcript
		for _, m := range tr {
			f.Add(uint8(st), m)
			// A damaged copy: flip a byte in the base64 body.
			if len(m) > 12 {
				d := bytes.Clone(m)
				d[len(d)/2] ^= 0x01
				f.Add(uint8(st), d)
				f.Add(uint8(st), m[:len(m)/2])
			}
		}
		for _, s := range fuzzSeedsExtra {
			f.Add(uint8(st), []byte(s))
		}
	}
	var base [fzStates][2]*endpoint
	for st := range base {
		a, b, _ := fuzzState(f, st)
		base[st] = [2]*endpoint{a, b}
	}
	f.Fuzz(func(t *testing.T, state uint8, msg []byte) {
		a, b := cloneEndpoint(base[int(state)%fzStates][0]), cloneEndpoint(base[int(state)%fzStates][1])
		a.t, b.t = t, t
		wasEncrypted := a.c.IsEncrypted()
		_, _, _, err := a.c.Receive(msg)
		if err != nil && err.Error() == "" {
			t.Fatal("empty error text")
		}
		if err != nil && !bytes.HasPrefix([]byte(err.Error()), []byte("otr: ")) {
			t.Fatalf("error without the package prefix: %v", err)
		}
		// No corruption: if alice is still encrypted, the honest peer's
		// next message reads, and alice's next message reaches bob.
		if wasEncrypted && a.c.IsEncrypted() {
			b.out = nil
			b.send("ping")
			for _, m := range b.out {
				show, _, _, err := a.c.Receive(m)
				if err != nil || string(show) != "ping" {
					t.Fatalf("state %d: after fuzz input alice reads %q, %v", state%fzStates, show, err)
				}
			}
			out, err := a.c.Send([]byte("pong"))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range out {
				show, _, _, err := b.c.Receive(m)
				if err != nil || string(show) != "pong" {
					t.Fatalf("state %d: after fuzz input bob reads %q, %v", state%fzStates, show, err)
				}
			}
		}
		_ = fmt.Sprint
	})
}

// FuzzReceiveAuthenticated feeds arbitrary decrypted content (text, NUL,
// TLVs) from the authenticated peer, in every encrypted and SMP state: the
// fuzzer cannot forge a MAC, so this is how TLV and SMP parsing gets
// fuzzed. Whatever arrives, nothing panics and a still encrypted
// conversation keeps working.
func FuzzReceiveAuthenticated(f *testing.F) {
	states := []int{fzEncrypted, fzSMPExpect2, fzSMPPending1, fzSMPExpect3, fzSMPExpect4}
	var base [][2]*endpoint
	for _, st := range states {
		a, b, _ := fuzzState(f, st)
		base = append(base, [2]*endpoint{a, b})
	}
	// Real SMP TLV bodies, from a run between two fresh conversations.
	x, y := securePair(f, PolicyManual, PolicyManual)
	var bodies [][]byte
	capture := func(from *endpoint, msgs [][]byte, to *endpoint) {
		for _, m := range msgs {
			bin, _ := DecodeMessage(m)
			d, ok := parseData(bin, 11)
			s := to.c.sessions[from.c.InstanceTag()]
			if ok && s != nil {
				if plain, _, err := cloneConv(to.c).sessions[from.c.InstanceTag()].decrypt(d); err == nil {
					bodies = append(bodies, plain)
				}
			}
			to.receive(m)
		}
	}
	out, _ := x.c.Authenticate("q", []byte("s"))
	capture(x, out, y)
	out, _ = y.c.Authenticate("", []byte("s"))
	capture(y, out, x)
	capture(x, x.out, y)
	capture(y, y.out, x)
	for i := range states {
		for _, b := range bodies {
			f.Add(uint8(i), b)
		}
		for typ := 0; typ <= 9; typ++ {
			f.Add(uint8(i), []byte{'h', 'i', 0, 0, byte(typ), 0, 4, 0, 0, 0, 6})
		}
		f.Add(uint8(i), []byte("plain text"))
		f.Add(uint8(i), []byte{0, 0, 1})
	}
	f.Fuzz(func(t *testing.T, state uint8, plain []byte) {
		i := int(state) % len(base)
		a, b := cloneEndpoint(base[i][0]), cloneEndpoint(base[i][1])
		a.t, b.t = t, t
		s := b.c.sessions[a.c.InstanceTag()]
		msg, err := b.c.encrypt(s, plain, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, _, _, err = a.c.Receive([]byte(EncodeMessage(msg)))
		if err != nil && !bytes.HasPrefix([]byte(err.Error()), []byte("otr: ")) {
			t.Fatalf("error without the package prefix: %v", err)
		}
		if a.c.IsEncrypted() {
			b.out = nil
			b.send("ping")
			for _, m := range b.out {
				show, _, _, err := a.c.Receive(m)
				if err != nil || string(show) != "ping" {
					t.Fatalf("after authenticated fuzz input alice reads %q, %v", show, err)
				}
			}
		}
	})
}
