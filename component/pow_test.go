package component

import (
	"encoding/base64"
	"strconv"
	"strings"
	"testing"
	"time"
)

// solve finds a nonce for a challenge as the widget's worker does: a
// decimal counter, from 0. tries is how many hashes it took.
func solve(challenge string, bits int) (nonce string, tries int) {
	for i := 0; ; i++ {
		n := strconv.Itoa(i)
		if leadingZeros(stampHash(challenge, n)) >= bits {
			return n, i + 1
		}
	}
}

func TestPoWVerify(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := newPoW(10)
	const skin, real = "help", "v@guest.example.org/r"
	fresh := func() (string, string) {
		c := p.challenge(skin, real, t0)
		n, _ := solve(c, 10)
		return c, n
	}
	c, n := fresh()
	if len(c) != 44 || !isBase64URL(c) {
		t.Fatalf("challenge %q: want 44 characters of base64url", c)
	}
	cases := []struct {
		name             string
		skin, real, c, n string
		now              time.Time
	}{
		{"other skin", "other", real, c, n, t0},
		{"other visitor", skin, "w@guest.example.org/r", c, n, t0},
		{"too late", skin, real, c, n, t0.Add(powWindow)},
		{"from the future", skin, real, c, n, t0.Add(-2 * time.Minute)},
		{"no nonce", skin, real, c, "", t0},
		{"nonce too long", skin, real, c, strings.Repeat("1", maxPoWNonce+1), t0},
		{"nonce not base64url", skin, real, c, n + "/", t0},
		{"short challenge", skin, real, c[:43], n, t0},
		{"not base64url", skin, real, c[:43] + "!", n, t0},
		{"tampered cost", skin, real, tamper(t, c, 16, 0), n, t0},
	}
	for _, tc := range cases {
		if err := p.verify(tc.skin, tc.real, tc.c, tc.n, tc.now); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	// Too little work: a nonce whose hash has fewer zero bits than asked.
	for i := 0; ; i++ {
		bad := strconv.Itoa(i)
		if leadingZeros(stampHash(c, bad)) < 10 {
			if p.verify(skin, real, c, bad, t0) == nil {
				t.Fatal("a stamp with too few zero bits accepted")
			}
			break
		}
	}
	if err := p.verify(skin, real, c, n, t0.Add(time.Minute)); err != nil {
		t.Fatalf("a good stamp refused: %v", err)
	}
	if p.verify(skin, real, c, n, t0.Add(time.Minute)) == nil {
		t.Fatal("a stamp accepted twice")
	}
	p.expire(t0.Add(powWindow))
	if len(p.used) != 0 {
		t.Fatalf("%d used challenges remembered past their window", len(p.used))
	}
	// Another instance (otrdesk restarted: a new key) refuses old challenges.
	c2, n2 := fresh()
	if newPoW(10).verify(skin, real, c2, n2, t0) == nil {
		t.Fatal("a challenge of another key accepted")
	}
}

// tamper flips a byte of a challenge's payload.
func tamper(t *testing.T, c string, at int, with byte) string {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		t.Fatal(err)
	}
	b[at] = with
	return base64.RawURLEncoding.EncodeToString(b)
}

// powOf returns the challenge and cost in an error answering a message.
func powOf(t *testing.T, s sentStanza) (challenge string, bits int) {
	t.Helper()
	el, err := parseElem(s.raw, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	e := el.child("", "error")
	if e == nil {
		t.Fatalf("no error: %s", s.raw)
	}
	p := e.child(nsOtrdesk, "pow")
	if p == nil {
		t.Fatalf("no challenge in %s", s.raw)
	}
	bits, err = strconv.Atoi(p.get("bits"))
	if err != nil {
		t.Fatalf("bits %q", p.get("bits"))
	}
	return p.get("challenge"), bits
}

func (f *fixture) stamped(from, body, challenge, nonce string) {
	f.t.Helper()
	f.in(`<message xmlns='jabber:component:accept' from='%s' to='%s' type='chat' id='m2'><body>%s</body><pow xmlns='urn:otrdesk:0' challenge='%s' nonce='%s'/></message>`,
		from, skinJID, body, challenge, nonce)
}

func TestPoWOverLimit(t *testing.T) {
	reg := newTestRegistry()
	f := newFixture(t, Config{Registerer: reg, NewChatsPerMinute: 1, ProofOfWork: true, ProofOfWorkBits: 10},
		helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "first")
	if errs := errorsIn(f.sent()); len(errs) != 0 {
		t.Fatalf("a chat within the rate got %v", errs)
	}
	// Over the rate: a challenge instead of a chat.
	f.msg(visitor2, skinJID, "CANARY-second")
	s := only(t, f.sent(), func(sentStanza) bool { return true })
	if s.typ != "error" || s.errCond != "resource-constraint" || s.to != visitor2 || s.from != skinJID || strings.Contains(s.raw, "CANARY") {
		t.Fatalf("over the rate: %s", s.raw)
	}
	c, bits := powOf(t, s)
	if bits != 10 {
		t.Fatalf("asked for %d bits, configured 10", bits)
	}
	if _, err := f.st.GuestByRealJID("help", visitor2); err == nil {
		t.Fatal("a challenged visitor got a guest record")
	}
	// A wrong stamp: a new challenge, counted as invalid.
	f.stamped(visitor2, "second", c, "x")
	c2, _ := powOf(t, only(t, f.sent(), func(sentStanza) bool { return true }))
	if c2 == c {
		t.Fatal("the same challenge twice")
	}
	// The stamp: the chat starts, the message reaches the operator.
	nonce, _ := solve(c2, bits)
	f.stamped(visitor2, "second", c2, nonce)
	out := f.sent()
	if errs := errorsIn(out); len(errs) != 0 {
		t.Fatalf("a good stamp refused: %v", errs)
	}
	if got := bodiesTo(out, op1); len(got) != 2 || got[1] != "second" {
		t.Fatalf("the stamped chat: %q", got)
	}
	for _, st := range out {
		if strings.Contains(st.raw, "pow") || strings.Contains(st.raw, c2) {
			t.Fatalf("the stamp was relayed: %s", st.raw)
		}
	}
	// Another visitor cannot use that stamp (nor any it was not given).
	f.stamped(visitor3, "third", c2, nonce)
	powOf(t, only(t, f.sent(), func(sentStanza) bool { return true }))
	for reason, want := range map[string]float64{"pow-required": 1, "pow-invalid": 2, "new-chat-rate": 0} {
		if got := metricValue(f.c.m.dropsC.WithLabelValues(reason)); got != want {
			t.Errorf("%s counted %v, want %v", reason, got, want)
		}
	}
}

// With proof of work on, a flood pays per chat: about 2^bits hashes for
// each chat beyond the rate. The flooder here is a Go loop (faster than a
// browser); the mean is what matters.
func TestPoWFloodCost(t *testing.T) {
	const bits, perMinute, chats = 12, 10, 200
	f := newFixture(t, Config{NewChatsPerMinute: perMinute, ProofOfWork: true, ProofOfWorkBits: bits, GuestsPerSkin: 1000},
		helpSkin("op1@example.org"))
	hashes, paid, free := 0, 0, 0
	for i := range chats {
		from := newVisitor(i)
		f.msg(from, skinJID, "spam")
		out := f.sent()
		errs := errorsIn(out)
		if len(errs) == 0 {
			free++
			continue
		}
		c, b := powOf(t, only(t, out, func(sentStanza) bool { return true }))
		n, tries := solve(c, b)
		hashes += tries
		f.stamped(from, "spam", c, n)
		if errs := errorsIn(f.sent()); len(errs) != 0 {
			t.Fatalf("chat %d: the stamp was refused: %s", i, errs[0].raw)
		}
		paid++
	}
	mean := float64(hashes) / float64(paid)
	t.Logf("flood with proof of work at %d bits: %d chats free (the rate), %d paid, %.0f SHA-256 per paid chat (2^%d = %d)",
		bits, free, paid, mean, bits, 1<<bits)
	if free != perMinute || paid != chats-perMinute {
		t.Fatalf("%d free, %d paid", free, paid)
	}
	if mean < float64(int(1)<<bits)/2 || mean > float64(int(1)<<bits)*2 {
		t.Fatalf("mean cost %.0f hashes per chat, want about %d", mean, 1<<bits)
	}
}

// BenchmarkPoWVerify is the component's cost of checking one good stamp
// (what a flood costs otrdesk per chat it admits this way).
func BenchmarkPoWVerify(b *testing.B) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := newPoW(MinProofOfWorkBits)
	c := p.challenge("help", visitor, t0)
	n, _ := solve(c, MinProofOfWorkBits)
	raw, _ := base64.RawURLEncoding.DecodeString(c)
	var rnd [powRandBytes]byte
	copy(rnd[:], raw[8:])
	b.ResetTimer()
	for range b.N {
		if err := p.verify("help", visitor, c, n, t0); err != nil {
			b.Fatal(err)
		}
		delete(p.used, rnd)
	}
}

// BenchmarkStampHash is one try of the flooder (or the visitor's worker):
// the expected cost of a stamp is 2^bits of these.
func BenchmarkStampHash(b *testing.B) {
	c := newPoW(MinProofOfWorkBits).challenge("help", visitor, time.Now())
	for i := range b.N {
		stampHash(c, strconv.Itoa(i))
	}
}

func FuzzPoWVerify(f *testing.F) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	p := newPoW(MinProofOfWorkBits)
	c := p.challenge("help", visitor, t0)
	n, _ := solve(c, MinProofOfWorkBits)
	f.Add(c, n)
	f.Add(c[:40], "0")
	f.Add("", "")
	f.Add(strings.Repeat("A", 44), strings.Repeat("9", 64))
	f.Fuzz(func(t *testing.T, challenge, nonce string) {
		q := newPoW(MinProofOfWorkBits)
		q.key = p.key
		if q.verify("help", visitor, challenge, nonce, t0) == nil {
			if leadingZeros(stampHash(challenge, nonce)) < MinProofOfWorkBits {
				t.Fatalf("accepted %q %q without the work", challenge, nonce)
			}
			if q.verify("help", visitor, challenge, nonce, t0) == nil {
				t.Fatal("accepted twice")
			}
		}
	})
}
