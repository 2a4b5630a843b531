package component

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/store"
)

// Integration tests: the real component over XEP-0114 to a private Prosody
// and a private ejabberd (internal/xmpptest), with c2s test clients as
// operators and anonymous visitors. One server per test function; the
// scenarios run as subtests in order on it.

const (
	itDomain   = "chat.example.org"
	itSecret   = "component-secret-for-tests"
	itPassword = "pw-for-tests"
	waitLimit  = 30 * time.Second
)

func TestProsody(t *testing.T) {
	srv := xmpptest.Prosody(t, xmpptest.Options{Components: map[string]string{itDomain: itSecret}})
	runSuite(t, srv)
}

func TestEjabberd(t *testing.T) {
	srv := xmpptest.Ejabberd(t, xmpptest.Options{Components: map[string]string{itDomain: itSecret}})
	runSuite(t, srv)
}

// suite is one server, one store and the running component.
type suite struct {
	t    *testing.T
	srv  *xmpptest.Server
	st   *store.Store
	cfg  Config
	logs *lockedBuffer

	c      *Component
	cancel context.CancelFunc
	done   chan error

	dbPath        string
	reg           *prometheus.Registry // the running component's metrics
	canaryStanzas []xmpptest.Stanza    // relayed stanzas to search for the canary
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func runSuite(t *testing.T, srv *xmpptest.Server) {
	dbPath := filepath.Join(t.TempDir(), "otrdesk.db")
	st, err := store.Open(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	skins := map[string][]string{
		"help":   {"op1@example.org"},
		"duo":    {"op2@example.org", "op3@example.org"},
		"queue":  {"op4@example.org"},
		"again":  {"op5@example.org"},
		"tiny":   {"op6@example.org"},
		"secure": {"op7@example.org", "op10@example.org"},
		"multi":  {"op8@example.org"},
		"locked": {"op9@example.org"},
		"resume": {"op11@example.org"},
	}
	for name, ops := range skins {
		sk := store.Skin{Name: name, Title: "Skin " + name, Policy: store.PolicyOpportunistic, Operators: ops,
			OperatorNames: map[string]string{ops[0]: "Agent " + name}}
		if name == "locked" {
			sk.Policy = store.PolicyRequire
		}
		if err := st.CreateSkin(sk); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"op1", "op2", "op3", "op4", "op5", "op6", "op7", "op8", "op9", "op10", "op11", "visitor"} {
		srv.MustRegister(t, u, itPassword)
	}
	logs := &lockedBuffer{}
	s := &suite{t: t, srv: srv, st: st, logs: logs, dbPath: dbPath, cfg: Config{
		Domain: itDomain, Server: srv.ComponentAddr, Secret: itSecret,
		MaxBodyBytes: 4096, GuestsPerSkin: 3, GuestMessagesPerMinute: 30,
		AKEStallTimeout: 3 * time.Second,
		Logger:          slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}}
	s.start()
	t.Cleanup(s.stop)
	t.Cleanup(s.logsOnFailure)

	t.Run("WrongSecret", s.wrongSecret)
	t.Run("RoundTrip", s.roundTrip)
	t.Run("TwoVisitorsTwoOperators", s.twoByTwo)
	t.Run("QueueThenOnline", s.queueThenOnline)
	t.Run("Errors", s.errors)
	t.Run("ComponentRestart", s.componentRestart)
	t.Run("ServerRestart", s.serverRestart)
	t.Run("OTREncryptedChat", s.otrEncryptedChat)
	t.Run("OTRFragments", s.otrFragments)
	t.Run("OTRTwoResourcesCarbons", s.otrTwoResources)
	t.Run("OTRRequire", s.otrRequire)
	t.Run("OTRStalledAKE", s.otrStalledAKE)
	t.Run("OTRTransfer", s.otrTransfer)
	t.Run("Resume", s.resume)
	t.Run("ProofOfWork", s.proofOfWork)
	t.Run("Canary", s.canaryEverywhere)
	t.Run("Bookkeeping", func(t *testing.T) {
		done := make(chan struct{})
		s.c.events <- evFunc(func(r *router) {
			defer close(done)
			checkInvariants(t, r)
		})
		<-done
	})

	// Privacy: bodies sent in this suite all carry "body-" and never reach
	// a log line.
	if strings.Contains(logs.String(), "body-") {
		t.Errorf("a message body reached the log")
	}
	if strings.Contains(logs.String(), itSecret) {
		t.Errorf("the component secret reached the log")
	}
}

// logsOnFailure shows the component's log and the tail of the server's
// when the test failed.
func (s *suite) logsOnFailure() {
	if !s.t.Failed() {
		return
	}
	s.t.Logf("component log:\n%s", s.logs.String())
	if b, err := os.ReadFile(s.srv.LogFile); err == nil {
		if len(b) > 20000 {
			b = b[len(b)-20000:]
		}
		s.t.Logf("%s log (tail):\n%s", s.srv.Kind, b)
	}
}

func (s *suite) start() {
	s.t.Helper()
	s.reg = prometheus.NewRegistry()
	s.cfg.Registerer = s.reg
	c, err := New(s.cfg, s.st)
	if err != nil {
		s.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	s.c, s.cancel, s.done = c, cancel, done
	s.poll("component ready", func() bool { ok, _ := c.Ready(); return ok })
}

func (s *suite) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			s.t.Errorf("Run: %v", err)
		}
	case <-time.After(waitLimit):
		s.t.Errorf("Run did not return after cancel")
	}
	s.cancel = nil
}

// poll waits, with a bounded deadline, until cond holds.
func (s *suite) poll(what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

// operator logs in, approves the skin's subscription request (once per
// account; later logins find it approved) and waits until the component
// sees it.
func (s *suite) operator(t *testing.T, user, resource, skin string, approve bool) *xmpptest.Client {
	t.Helper()
	ctx := ctxT(t)
	cl := s.srv.MustDial(t, user, itPassword, resource)
	if approve {
		skinJ := skin + "@" + itDomain
		_, err := cl.Next(ctx, func(st xmpptest.Stanza) bool {
			return st.Name == "presence" && st.Type == "subscribe" && st.From == skinJ
		})
		if err != nil {
			t.Fatalf("%s: no subscription request from %s: %v", user, skinJ, err)
		}
		if err := cl.Subscribed(ctx, skinJ); err != nil {
			t.Fatal(err)
		}
	}
	s.poll(skin+" available", func() bool { return s.c.Available(skin) })
	return cl
}

func bodyFrom(from, body string) func(xmpptest.Stanza) bool {
	return func(st xmpptest.Stanza) bool {
		return st.Name == "message" && st.Type != "error" && st.HasBody && st.Body == body && (from == "" || st.From == from)
	}
}

func statusFrom(from, state string) func(xmpptest.Stanza) bool {
	return func(st xmpptest.Stanza) bool {
		return st.Name == "message" && st.From == from && st.HasChild(nsOtrdesk, "status") &&
			(bytes.Contains(st.Raw, []byte(`state="`+state+`"`)) || bytes.Contains(st.Raw, []byte(`state='`+state+`'`)))
	}
}

func errorFrom(from, cond string) func(xmpptest.Stanza) bool {
	return func(st xmpptest.Stanza) bool {
		return st.Name == "message" && st.Type == "error" && st.From == from && bytes.Contains(st.Raw, []byte(cond))
	}
}

func next(t *testing.T, cl *xmpptest.Client, what string, match func(xmpptest.Stanza) bool) xmpptest.Stanza {
	t.Helper()
	st, err := cl.Next(ctxT(t), match)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return st
}

func send(t *testing.T, cl *xmpptest.Client, to, body string) {
	t.Helper()
	if err := cl.Message(ctxT(t), to, body); err != nil {
		t.Fatal(err)
	}
}

// assertNotIn fails when any of the needles occurs in the raw stanza.
func assertNotIn(t *testing.T, st xmpptest.Stanza, needles ...string) {
	t.Helper()
	for _, n := range needles {
		if n != "" && bytes.Contains(st.Raw, []byte(n)) {
			t.Errorf("stanza leaks %q: %q", n, st.Raw)
		}
	}
}

func (s *suite) wrongSecret(t *testing.T) {
	cfg := s.cfg
	cfg.Secret = "not-the-secret"
	cfg.Registerer = nil
	c, err := New(cfg, s.st)
	if err != nil {
		t.Fatal(err)
	}
	err = c.Run(ctxT(t))
	if !errors.Is(err, ErrHandshake) {
		t.Fatalf("Run with a wrong secret: %v, want ErrHandshake", err)
	}
	if !strings.Contains(err.Error(), "refused the component secret for chat.example.org") ||
		strings.Contains(err.Error(), "not-the-secret") {
		t.Fatalf("unclear or leaking error: %v", err)
	}
	if ok, _ := c.Ready(); ok {
		t.Fatal("ready after a refused handshake")
	}
	// The real component is still connected (Prosody may have closed the
	// loser's stream only).
	s.poll("component still ready", func() bool { ok, _ := s.c.Ready(); return ok })
}

func (s *suite) roundTrip(t *testing.T) {
	ctx := ctxT(t)
	op := s.operator(t, "op1", "zqres1", "help", true)
	v := s.srv.MustDialAnonymous(t)
	vj := v.JID()
	skinJ := "help@" + itDomain

	send(t, v, skinJ, "body-hello operator")
	notice := next(t, op, "new-chat notice", func(st xmpptest.Stanza) bool {
		return st.Name == "message" && strings.HasPrefix(st.From, "guest-") && strings.Contains(st.Body, "Skin help")
	})
	alias := notice.From
	got := next(t, op, "relayed message", bodyFrom(alias, "body-hello operator"))
	for _, st := range []xmpptest.Stanza{notice, got} {
		assertNotIn(t, st, vj.String(), vj.Localpart(), xmpptest.AnonDomain)
	}
	assigned := next(t, v, "assigned status", statusFrom(skinJ, "assigned"))
	if !bytes.Contains(assigned.Raw, []byte("Agent help")) {
		t.Errorf("assigned status without the display name: %s", assigned.Raw)
	}

	if err := op.Message(ctx, alias, "body-hello visitor"); err != nil {
		t.Fatal(err)
	}
	back := next(t, v, "reply", bodyFrom(skinJ, "body-hello visitor"))
	for _, st := range []xmpptest.Stanza{back, assigned} {
		assertNotIn(t, st, op.JID().String(), "op1", "zqres1")
	}

	// OTR whitespace tags are trailing spaces and tabs: byte-exact both ways.
	tagged := "body-tagged \t  \t\t\t\t \t \t \t    \t\t  \t\t"
	send(t, v, skinJ, tagged)
	next(t, op, "whitespace-tagged body to the operator", bodyFrom(alias, tagged))
	if err := op.Message(ctx, alias, tagged+"  "); err != nil {
		t.Fatal(err)
	}
	next(t, v, "whitespace-tagged body to the visitor", bodyFrom(skinJ, tagged+"  "))

	// Chat states and receipts pass; nothing else does.
	err := v.SendRaw(ctx, `<message to='`+skinJ+`' type='chat' id='cs1'><composing xmlns='http://jabber.org/protocol/chatstates'/><nick xmlns='http://jabber.org/protocol/nick'>Real Name</nick></message>`)
	if err != nil {
		t.Fatal(err)
	}
	cs := next(t, op, "chat state", func(st xmpptest.Stanza) bool {
		return st.Name == "message" && st.From == alias && st.HasChild(nsChatStates, "composing")
	})
	assertNotIn(t, cs, "Real Name", vj.Localpart())
	s.endChat(t, v, op, "help")
}

// endChat ends a visitor's chat so the operator's slot is free again.
func (s *suite) endChat(t *testing.T, v, op *xmpptest.Client, skin string) {
	t.Helper()
	if err := v.SendRaw(ctxT(t), `<message to='`+skin+`@`+itDomain+`' type='chat'><end xmlns='urn:otrdesk:0'/></message>`); err != nil {
		t.Fatal(err)
	}
	next(t, v, "ended status", statusFrom(skin+"@"+itDomain, "ended"))
	if op != nil {
		next(t, op, "ended notice", func(st xmpptest.Stanza) bool { return strings.Contains(st.Body, "ended") })
	}
}

func (s *suite) twoByTwo(t *testing.T) {
	ctx := ctxT(t)
	opA := s.operator(t, "op2", "a", "duo", true)
	opB := s.operator(t, "op3", "b", "duo", true)
	s.poll("both operators seen", func() bool {
		return s.c.Available("duo") && s.onlineCount("op2@example.org")+s.onlineCount("op3@example.org") == 2
	})
	v1 := s.srv.MustDialAnonymous(t)
	v2 := s.srv.MustDialAnonymous(t)
	skinJ := "duo@" + itDomain
	send(t, v1, skinJ, "body-from v1")
	next(t, v1, "v1 assigned", statusFrom(skinJ, "assigned"))
	send(t, v2, skinJ, "body-from v2")
	next(t, v2, "v2 assigned", statusFrom(skinJ, "assigned"))

	// Each operator got exactly one of the two chats (fewest chats first).
	var aliases = map[string]string{}
	for _, op := range []*xmpptest.Client{opA, opB} {
		st := next(t, op, "a chat", func(st xmpptest.Stanza) bool {
			return st.Name == "message" && (st.Body == "body-from v1" || st.Body == "body-from v2")
		})
		aliases[st.Body] = st.From
		if err := op.Message(ctx, st.From, "re: "+st.Body); err != nil {
			t.Fatal(err)
		}
	}
	if len(aliases) != 2 || aliases["body-from v1"] == aliases["body-from v2"] {
		t.Fatalf("both chats went to one place: %v", aliases)
	}
	next(t, v1, "v1's answer", bodyFrom(skinJ, "re: body-from v1"))
	next(t, v2, "v2's answer", bodyFrom(skinJ, "re: body-from v2"))
	s.endChat(t, v1, nil, "duo")
	s.endChat(t, v2, nil, "duo")
}

// onlineCount is how many resources of an operator the component tracks.
// It asks the router through its own event loop to stay race-free.
func (s *suite) onlineCount(bare string) int {
	res := make(chan int, 1)
	s.c.events <- evFunc(func(r *router) {
		n := 0
		if o := r.ops[bare]; o != nil {
			n = len(o.res)
		}
		res <- n
	})
	return <-res
}

func (s *suite) queueThenOnline(t *testing.T) {
	skinJ := "queue@" + itDomain
	if s.c.Available("queue") {
		t.Fatal("queue skin available before its operator logged in")
	}
	v := s.srv.MustDialAnonymous(t)
	v2 := s.srv.MustDialAnonymous(t)
	send(t, v, skinJ, "body-q1")
	q := next(t, v, "queued status", statusFrom(skinJ, "queued"))
	if !bytes.Contains(q.Raw, []byte(`position="1"`)) && !bytes.Contains(q.Raw, []byte(`position='1'`)) {
		t.Errorf("first visitor not at position 1: %s", q.Raw)
	}
	send(t, v, skinJ, "body-q2")
	send(t, v, skinJ, "body-q3")
	send(t, v2, skinJ, "body-second visitor")
	q2 := next(t, v2, "second queued status", statusFrom(skinJ, "queued"))
	if !bytes.Contains(q2.Raw, []byte(`position="2"`)) && !bytes.Contains(q2.Raw, []byte(`position='2'`)) {
		t.Errorf("second visitor not at position 2: %s", q2.Raw)
	}
	op := s.operator(t, "op4", "late", "queue", true)
	next(t, v, "assigned status", statusFrom(skinJ, "assigned"))
	var got []string
	for len(got) < 4 {
		st := next(t, op, "held messages", func(st xmpptest.Stanza) bool {
			return st.Name == "message" && st.HasBody && (strings.HasPrefix(st.Body, "body-q") || strings.Contains(st.Body, "Skin queue"))
		})
		got = append(got, st.Body)
	}
	if !strings.Contains(got[0], "Skin queue") || got[1] != "body-q1" || got[2] != "body-q2" || got[3] != "body-q3" {
		t.Fatalf("held messages out of order: %q", got)
	}
	next(t, op, "second visitor's chat", bodyFrom("", "body-second visitor"))
	s.endChat(t, v, nil, "queue")
	s.endChat(t, v2, nil, "queue")
}

func (s *suite) errors(t *testing.T) {
	ctx := ctxT(t)
	op := s.operator(t, "op6", "r1", "tiny", true)
	v := s.srv.MustDialAnonymous(t)
	skinJ := "tiny@" + itDomain

	t.Run("UnknownSkin", func(t *testing.T) {
		send(t, v, "nosuch@"+itDomain, "body-canary-1")
		st := next(t, v, "error", errorFrom("nosuch@"+itDomain, "item-not-found"))
		assertNotIn(t, st, "body-canary-1")
	})
	send(t, v, skinJ, "body-start")
	alias := next(t, op, "chat", bodyFrom("", "body-start")).From
	t.Run("UnknownAlias", func(t *testing.T) {
		bad := "guest-aaaaaaaaaaaaaaaaaaaa@" + itDomain
		send(t, op, bad, "body-canary-2")
		st := next(t, op, "error", errorFrom(bad, "item-not-found"))
		assertNotIn(t, st, "body-canary-2")
	})
	t.Run("NotPinnedOperator", func(t *testing.T) {
		other := s.srv.MustDial(t, "op6", itPassword, "r2")
		send(t, other, alias, "body-canary-3")
		st := next(t, other, "error", errorFrom(alias, "forbidden"))
		assertNotIn(t, st, "body-canary-3")
		stranger := s.srv.MustDialAnonymous(t)
		send(t, stranger, alias, "body-canary-4")
		next(t, stranger, "error", errorFrom(alias, "forbidden"))
		// Barrier: a ping round trip through the component, then nothing of
		// it reached the visitor.
		if err := v.Ping(ctx, skinJ); err != nil {
			t.Fatal(err)
		}
		for _, st := range v.Pending() {
			if strings.Contains(st.Body, "canary") {
				t.Fatalf("forbidden message relayed: %s", st)
			}
		}
	})
	t.Run("BodyTooLarge", func(t *testing.T) {
		big := "body-canary-5" + strings.Repeat("x", 5000)
		send(t, v, skinJ, big)
		st := next(t, v, "error", errorFrom(skinJ, "policy-violation"))
		assertNotIn(t, st, "body-canary-5")
		send(t, op, alias, big)
		next(t, op, "error", errorFrom(alias, "policy-violation"))
	})
	t.Run("RateLimit", func(t *testing.T) {
		for i := 0; i < 40; i++ {
			send(t, v, skinJ, fmt.Sprintf("body-burst-%d", i))
		}
		next(t, v, "error", errorFrom(skinJ, "policy-violation"))
		// Barriers: the visitor's ping to the skin follows all 40 messages
		// through the component; the operator's ping to the alias follows
		// everything relayed to it.
		if err := v.Ping(ctx, skinJ); err != nil {
			t.Fatal(err)
		}
		if err := op.Ping(ctx, alias); err != nil {
			t.Fatal(err)
		}
		relayed := map[string]bool{}
		for _, st := range op.Pending() {
			relayed[st.Body] = true
		}
		if !relayed["body-burst-0"] || relayed["body-burst-39"] {
			t.Fatalf("rate limit: first relayed %v, last relayed %v", relayed["body-burst-0"], relayed["body-burst-39"])
		}
		op.Discard()
	})
	t.Run("TooManyGuests", func(t *testing.T) {
		for i := 0; i < 2; i++ {
			w := s.srv.MustDialAnonymous(t)
			send(t, w, skinJ, "body-filler")
			next(t, w, "status", func(st xmpptest.Stanza) bool { return st.HasChild(nsOtrdesk, "status") })
		}
		w := s.srv.MustDialAnonymous(t)
		send(t, w, skinJ, "body-canary-6")
		st := next(t, w, "error", errorFrom(skinJ, "resource-constraint"))
		assertNotIn(t, st, "body-canary-6")
	})
	t.Run("UnsupportedIQ", func(t *testing.T) {
		_, err := op.IQ(ctx, "get", itDomain, `<query xmlns='jabber:iq:version'/>`)
		if !errors.Is(err, xmpptest.ErrIQ) || !strings.Contains(err.Error(), "service-unavailable") {
			t.Fatalf("version query: %v", err)
		}
		info, err := op.IQ(ctx, "get", skinJ, `<query xmlns='http://jabber.org/protocol/disco#info'/>`)
		if err != nil || !bytes.Contains(info.Raw, []byte("urn:xmpp:ping")) {
			t.Fatalf("disco#info on the skin: %v %s", err, info.Raw)
		}
		if err := op.Ping(ctx, alias); err != nil {
			t.Fatalf("ping the alias: %v", err)
		}
	})
}

func (s *suite) componentRestart(t *testing.T) {
	ctx := ctxT(t)
	op := s.operator(t, "op5", "main", "again", true)
	v := s.srv.MustDialAnonymous(t)
	skinJ := "again@" + itDomain
	send(t, v, skinJ, "body-before restart")
	alias := next(t, op, "first message", bodyFrom("", "body-before restart")).From

	s.stop()
	s.start()
	s.poll("operator seen again", func() bool { return s.c.Available("again") })
	send(t, v, skinJ, "body-after restart")
	next(t, op, "same alias after restart", bodyFrom(alias, "body-after restart"))
	if err := op.Message(ctx, alias, "body-still here"); err != nil {
		t.Fatal(err)
	}
	next(t, v, "reply after restart", bodyFrom(skinJ, "body-still here"))
}

func (s *suite) serverRestart(t *testing.T) {
	ctx := ctxT(t)
	skinJ := "again@" + itDomain
	op := s.srv.MustDial(t, "op5", itPassword, "main2")
	s.poll("op5 available", func() bool { return s.c.Available("again") })
	v := s.srv.MustDial(t, "visitor", itPassword, "browser")
	send(t, v, skinJ, "body-before server restart")
	st := next(t, op, "first message", func(st xmpptest.Stanza) bool {
		return st.Body == "body-before server restart"
	})
	alias := st.From
	before := s.c.connects.Load()
	op.Close()
	v.Close()
	if err := s.srv.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	s.poll("component reconnected", func() bool {
		ok, _ := s.c.Ready()
		return ok && s.c.connects.Load() > before
	})
	op = s.srv.MustDial(t, "op5", itPassword, "main2")
	v = s.srv.MustDial(t, "visitor", itPassword, "browser")
	s.poll("operator seen after the server restart", func() bool { return s.c.Available("again") })
	send(t, v, skinJ, "body-after server restart")
	next(t, op, "same alias after the server restart", bodyFrom(alias, "body-after server restart"))
	if err := op.Message(ctx, alias, "body-welcome back"); err != nil {
		t.Fatal(err)
	}
	next(t, v, "reply after the server restart", bodyFrom(skinJ, "body-welcome back"))
}

// resumeSecret returns the resume attribute of a status element.
func resumeSecret(t *testing.T, st xmpptest.Stanza) string {
	t.Helper()
	el, err := parseElem(string(st.Raw), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range el.kids {
		if k.name.Space == nsOtrdesk && k.name.Local == "status" {
			return k.get("resume")
		}
	}
	return ""
}

// resume: a visitor whose session is gone logs in again (a new anonymous
// JID) and resumes the same chat with its secret: the operator keeps
// talking to the same alias. The used secret is refused afterwards.
func (s *suite) resume(t *testing.T) {
	ctx := ctxT(t)
	op := s.operator(t, "op11", "desk", "resume", true)
	skinJ := "resume@" + itDomain
	v1 := s.srv.MustDialAnonymous(t)
	send(t, v1, skinJ, "body-before the drop")
	assigned := next(t, v1, "assigned status", statusFrom(skinJ, "assigned"))
	secret := resumeSecret(t, assigned)
	if len(secret) < 22 {
		t.Fatalf("no resumption secret in %s", assigned.Raw)
	}
	alias := next(t, op, "first message", bodyFrom("", "body-before the drop")).From
	v1.Close() // the network is gone, and with it the session

	v2 := s.srv.MustDialAnonymous(t)
	if v2.JID().String() == v1.JID().String() {
		t.Fatal("the second login has the first one's JID: the test would prove nothing")
	}
	if err := v2.SendRaw(ctx, `<message to='`+skinJ+`' type='chat' id='rs1'><resume xmlns='urn:otrdesk:0' secret='`+secret+`'/></message>`); err != nil {
		t.Fatal(err)
	}
	again := next(t, v2, "assigned status after resuming", statusFrom(skinJ, "assigned"))
	if !bytes.Contains(again.Raw, []byte("Agent resume")) {
		t.Errorf("the resumed chat has another operator: %s", again.Raw)
	}
	if s2 := resumeSecret(t, again); s2 == "" || s2 == secret {
		t.Fatalf("no new secret after resuming: %s", again.Raw)
	}
	if err := op.Message(ctx, alias, "body-after the drop"); err != nil {
		t.Fatal(err)
	}
	next(t, v2, "the operator's message on the resumed chat", bodyFrom(skinJ, "body-after the drop"))
	send(t, v2, skinJ, "body-I am back")
	next(t, op, "the visitor's message from the same alias", bodyFrom(alias, "body-I am back"))
	op.Discard() // everything before it came before it, on the same route

	// The first secret was used: a third login gets item-not-found and
	// nothing reaches the operator.
	v3 := s.srv.MustDialAnonymous(t)
	if err := v3.SendRaw(ctx, `<message to='`+skinJ+`' type='chat' id='rs2'><resume xmlns='urn:otrdesk:0' secret='`+secret+`'/></message>`); err != nil {
		t.Fatal(err)
	}
	next(t, v3, "a used secret refused", errorFrom(skinJ, "item-not-found"))
	if err := op.Ping(ctx, alias); err != nil {
		t.Fatal(err)
	}
	for _, st := range op.Pending() {
		if st.HasBody {
			t.Fatalf("the operator heard of a refused resumption: %s", st.Raw)
		}
	}
	s.endChat(t, v2, nil, "resume")
}

// proofOfWork: with limits.proof_of_work on and the new-chat rate spent,
// the challenge reaches the visitor inside the error through the real
// server, and the stamped message starts the chat.
func (s *suite) proofOfWork(t *testing.T) {
	saved := s.cfg
	s.stop()
	s.cfg.NewChatsPerMinute, s.cfg.ProofOfWork, s.cfg.ProofOfWorkBits = 1, true, MinProofOfWorkBits
	s.start()
	defer func() {
		s.stop()
		s.cfg = saved
		s.start()
	}()
	ctx := ctxT(t)
	op := s.operator(t, "op11", "pow", "resume", false)
	skinJ := "resume@" + itDomain
	v1 := s.srv.MustDialAnonymous(t)
	send(t, v1, skinJ, "body-within the rate")
	next(t, v1, "the first chat", statusFrom(skinJ, "assigned"))
	v2 := s.srv.MustDialAnonymous(t)
	if err := v2.SendRaw(ctx, `<message to='`+skinJ+`' type='chat' id='p1'><body>body-over the rate</body></message>`); err != nil {
		t.Fatal(err)
	}
	st := next(t, v2, "a challenge", errorFrom(skinJ, "resource-constraint"))
	assertNotIn(t, st, "body-over the rate")
	el, err := parseElem(string(st.Raw), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var pw *elem
	if e := el.child("", "error"); e != nil {
		pw = e.child(nsOtrdesk, "pow")
	}
	if pw == nil || st.ID != "p1" {
		t.Fatalf("no challenge in the error answering the message: %s", st.Raw)
	}
	bits, _ := strconv.Atoi(pw.get("bits"))
	nonce, _ := solve(pw.get("challenge"), bits)
	if err := v2.SendRaw(ctx, `<message to='`+skinJ+`' type='chat' id='p2'><body>body-over the rate</body><pow xmlns='urn:otrdesk:0' challenge='`+pw.get("challenge")+`' nonce='`+nonce+`'/></message>`); err != nil {
		t.Fatal(err)
	}
	next(t, v2, "the stamped chat", statusFrom(skinJ, "assigned"))
	got := next(t, op, "the stamped chat's message", bodyFrom("", "body-over the rate"))
	if bytes.Contains(got.Raw, []byte("challenge")) || bytes.Contains(got.Raw, []byte(nsOtrdesk)) {
		t.Errorf("the stamp was relayed: %s", got.Raw)
	}
	s.endChat(t, v1, nil, "resume")
	s.endChat(t, v2, nil, "resume")
}
