package component

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"otrdesk.im/otrdesk/store"
)

const visitor3 = "fresh77@guest.example.org/web3"

// secretOf returns the resumption secret carried by the status elements to
// a visitor among out; it fails unless exactly one carries one.
func secretOf(t *testing.T, out []sentStanza, to string) string {
	t.Helper()
	var secrets []string
	for _, s := range out {
		if s.to == to && s.status != nil && s.status["resume"] != "" {
			secrets = append(secrets, s.status["resume"])
		}
	}
	if len(secrets) != 1 {
		t.Fatalf("want one status with a resumption secret to %s, got %d: %v", to, len(secrets), out)
	}
	return secrets[0]
}

func (f *fixture) resume(from, secret string) {
	f.t.Helper()
	f.in(`<message xmlns='jabber:component:accept' from='%s' to='%s' type='chat' id='rs1'><resume xmlns='urn:otrdesk:0' secret='%s'/></message>`, from, skinJID, secret)
}

// refused asserts the component answered a resumption request with
// item-not-found from the skin, and nothing else.
func refused(t *testing.T, f *fixture, from string) {
	t.Helper()
	out := f.sent()
	s := only(t, out, func(sentStanza) bool { return true })
	if s.typ != "error" || s.errCond != "item-not-found" || s.from != skinJID || s.to != from || s.id != "rs1" {
		t.Fatalf("want item-not-found from the skin, got %s", s.raw)
	}
	if _, err := f.st.GuestByRealJID("help", from); err == nil {
		t.Fatal("a refused resumption left a guest record")
	}
	if ch := f.c.r.byReal[realKey("help", from)]; ch != nil {
		t.Fatal("a refused resumption started a chat")
	}
}

func TestResumeMovesTheChat(t *testing.T) {
	reg := newTestRegistry()
	f := newFixture(t, Config{Registerer: reg}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "hello")
	out := f.sent()
	s1 := secretOf(t, out, visitor)
	if len(s1) < 22 || strings.ContainsAny(s1, "+/=") {
		t.Fatalf("secret %q: want 22+ characters of base64url without padding", s1)
	}
	alias := aliasOf(t, f, visitor)
	f.msg(op1, alias, "welcome")
	f.msg(visitor, skinJID, "more")
	for _, s := range f.sent() {
		if s.status != nil && s.status["resume"] != "" {
			t.Fatalf("the secret went out twice: %s", s.raw)
		}
	}

	// The visitor's session is gone; a new login resumes.
	f.resume(visitor3, s1)
	out = f.sent()
	st := only(t, out, func(s sentStanza) bool { return s.to == visitor3 })
	if st.from != skinJID || st.status["state"] != "assigned" || st.status["operator"] != "Alice" {
		t.Fatalf("answer to the resumption: %s", st.raw)
	}
	s2 := st.status["resume"]
	if s2 == "" || s2 == s1 {
		t.Fatalf("no new secret after a resumption: %q", s2)
	}
	for _, s := range out {
		if s.to == op1 && (strings.Contains(s.raw, "fresh77") || strings.Contains(s.raw, "guest.example.org")) {
			t.Fatalf("the visitor's new JID leaked to the operator: %s", s.raw)
		}
	}
	// Same alias, same operator, both ways.
	f.msg(op1, alias, "still here")
	back := only(t, f.sent(), func(s sentStanza) bool { return s.body != nil })
	if back.to != visitor3 || back.from != skinJID || *back.body != "still here" {
		t.Fatalf("the operator's message after resumption: %s", back.raw)
	}
	f.msg(visitor3, skinJID, "I am back")
	if got := only(t, f.sent(), func(s sentStanza) bool { return s.to == op1 }); got.from != alias || *got.body != "I am back" {
		t.Fatalf("the visitor's message after resumption: %s", got.raw)
	}
	g, err := f.st.GuestByRealJID("help", visitor3)
	if err != nil || "guest-"+g.ID+"@"+testDomain != alias || g.Operator != op1 || g.State != stateAssigned {
		t.Fatalf("stored after resumption: %+v %v", g, err)
	}
	if _, err := f.st.GuestByRealJID("help", visitor); err == nil {
		t.Fatal("the old JID still names the chat")
	}
	if f.c.r.byReal[realKey("help", visitor)] != nil || f.c.r.ops["op1@example.org"].chats != 1 {
		t.Fatal("the move left the old JID indexed or changed the operator's load")
	}

	// Single use: the first secret no longer works, from anyone.
	f.resume(visitor2, s1)
	refused(t, f, visitor2)
	if n := metricValue(f.c.m.dropsC.WithLabelValues("resume-refused")); n != 1 {
		t.Errorf("refusals counted %v", n)
	}
	if n := metricValue(f.c.m.resumes); n != 1 {
		t.Errorf("resumptions counted %v", n)
	}
}

func TestResumeRefused(t *testing.T) {
	cases := []struct {
		name   string
		secret func(t *testing.T, f *fixture, s string) string
	}{
		{"wrong", func(t *testing.T, f *fixture, s string) string { return "A" + s[1:] + "x" }},
		{"malformed", func(t *testing.T, f *fixture, s string) string { return "short" }},
		{"bad characters", func(t *testing.T, f *fixture, s string) string { return s[:len(s)-1] + "/" }},
		{"empty", func(t *testing.T, f *fixture, s string) string { return "" }},
		{"reused", func(t *testing.T, f *fixture, s string) string {
			f.resume(visitor2, s)
			if st := only(t, f.sent(), func(s sentStanza) bool { return s.to == visitor2 }); st.status["state"] != "assigned" {
				t.Fatalf("the first use failed: %s", st.raw)
			}
			return s
		}},
		{"ended", func(t *testing.T, f *fixture, s string) string {
			f.in(`<message xmlns='jabber:component:accept' from='%s' to='%s' type='chat'><end xmlns='urn:otrdesk:0'/></message>`, visitor, skinJID)
			for _, st := range f.sent() {
				if st.status != nil && st.status["resume"] != "" {
					t.Fatalf("the ended status carries a secret: %s", st.raw)
				}
			}
			return s
		}},
		{"blocked", func(t *testing.T, f *fixture, s string) string {
			f.msg(op1, testDomain, "block "+strings.TrimSuffix(aliasOf(t, f, visitor), "@"+testDomain))
			f.sent()
			return s
		}},
		{"other skin", func(t *testing.T, f *fixture, s string) string {
			sk := helpSkin("op1@example.org")
			sk.Name = "other"
			if err := f.st.CreateSkin(sk); err != nil {
				t.Fatal(err)
			}
			f.c.r.handle(evSkinsChanged{})
			f.sent()
			f.in(`<message xmlns='jabber:component:accept' from='%s' to='other@%s' type='chat' id='rs1'><resume xmlns='urn:otrdesk:0' secret='%s'/></message>`, visitor3, testDomain, s)
			s2 := only(t, f.sent(), func(sentStanza) bool { return true })
			if s2.errCond != "item-not-found" || s2.from != "other@"+testDomain {
				t.Fatalf("a secret of skin help resumed in skin other: %s", s2.raw)
			}
			return "A" + s[1:]
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{}, helpSkin("op1@example.org"))
			f.online(op1, "", 0)
			f.msg(visitor, skinJID, "hello")
			s := secretOf(t, f.sent(), visitor)
			secret := tc.secret(t, f, s)
			f.resume(visitor3, secret)
			refused(t, f, visitor3)
			if got := bodiesTo(f.sent(), op1); len(got) != 0 {
				t.Fatalf("the operator heard of a refused resumption: %q", got)
			}
		})
	}
}

// A chat that went idle (only a store record) and a chat still queued both
// resume; so does a chat after otrdesk restarted.
func TestResumeIdleQueuedAndAfterRestart(t *testing.T) {
	f := newFixture(t, Config{GuestIdleTimeout: time.Minute}, helpSkin("op1@example.org"))
	f.msg(visitor, skinJID, "anyone?")
	s1 := secretOf(t, f.sent(), visitor)
	f.msg(visitor2, skinJID, "me too")
	f.sent()
	// Queued: the answer is the place in the queue.
	f.resume(visitor3, s1)
	st := only(t, f.sent(), func(s sentStanza) bool { return s.to == visitor3 })
	if st.status["state"] != "queued" || st.status["position"] != "1" || st.status["resume"] == "" {
		t.Fatalf("resumed queued chat: %s", st.raw)
	}
	s2 := st.status["resume"]
	// The held message still reaches the operator, from the same alias.
	f.online(op1, "", 0)
	out := f.sent()
	if got := bodiesTo(out, op1); len(got) < 2 || got[1] != "anyone?" {
		t.Fatalf("held message after resumption: %q", got)
	}
	if a := only(t, out, func(s sentStanza) bool { return s.to == visitor3 }); a.status["state"] != "assigned" {
		t.Fatalf("assigned after resumption: %s", a.raw)
	}
	alias := aliasOf(t, f, visitor3)

	// Idle, then otrdesk restarts: the record (with its hash) resumes, to
	// the same pinned operator.
	f.now = f.now.Add(2 * time.Minute)
	f.c.r.expire(f.now)
	f.sent()
	c2, err := New(f.c.cfg, f.st)
	if err != nil {
		t.Fatal(err)
	}
	c2.r.now = func() time.Time { return f.now }
	if err := c2.r.loadSkins(); err != nil {
		t.Fatal(err)
	}
	c2.r.handle(evConnected{out: f.cap})
	f.c = c2
	f.online(op1, "", 0)
	f.sent()
	const visitor4 = "later@guest.example.org/web4"
	f.resume(visitor4, s2)
	out = f.sent()
	st = only(t, out, func(s sentStanza) bool { return s.to == visitor4 })
	if st.status["state"] != "assigned" || st.status["resume"] == "" || st.status["resume"] == s2 {
		t.Fatalf("resumed idle chat: %s", st.raw)
	}
	f.msg(op1, alias, "hello again")
	if back := only(t, f.sent(), func(s sentStanza) bool { return s.body != nil }); back.to != visitor4 {
		t.Fatalf("the operator's message went to %s", back.to)
	}
}

// The secret is never stored or logged: only its hash is.
func TestResumeSecretCanary(t *testing.T) {
	var logs bytes.Buffer
	f := newFixture(t, Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))},
		helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "hello")
	s1 := secretOf(t, f.sent(), visitor)
	f.resume(visitor3, s1)
	s2 := secretOf(t, f.sent(), visitor3)
	f.resume(visitor2, s1) // refused: counted, never logged with the secret
	f.sent()
	db, err := os.ReadFile(f.st.Path())
	if err != nil {
		t.Fatal(err)
	}
	g, err := f.st.GuestByRealJID("help", visitor3)
	if err != nil || len(g.Resume) != store.ResumeHashSize || !bytes.Contains(db, g.Resume) {
		t.Fatalf("the canary reads a store file without the chat's hash in it: %v", err)
	}
	for _, s := range []string{s1, s2} {
		if bytes.Contains(db, []byte(s)) {
			t.Fatalf("a resumption secret is in the store file")
		}
		if strings.Contains(logs.String(), s) {
			t.Fatalf("a resumption secret is in the log")
		}
	}
	if !strings.Contains(logs.String(), "chat resumed") {
		t.Fatal("the canary reads a log without the resumption in it")
	}
}
