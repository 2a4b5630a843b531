package hostile_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"otrdesk.im/otrdesk/internal/hostile"
	"otrdesk.im/otrdesk/internal/operator"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/otr"
)

const (
	domain = "chat.example.org"
	secret = "hostile-test-secret"
)

// world is a private Prosody with the attacker as component domain, the
// real operator (internal/operator) logged in, and a visitor played by a
// Go OTR conversation over c2s.
type world struct {
	*visitor
	srv *xmpptest.Server
	att *hostile.Attacker
	bot *operator.Bot
}

// visitor is a visitor's XMPP account and OTR conversation.
type visitor struct {
	t      *testing.T
	ctx    context.Context
	c      *xmpptest.Client
	conv   *otr.Conversation
	shown  []string
	secure []otr.Event
}

func newVisitor(t *testing.T, ctx context.Context, srv *xmpptest.Server, user string) *visitor {
	t.Helper()
	srv.MustRegister(t, user, "pw-"+user)
	conv, err := otr.NewConversation(otr.Config{PrivateKey: newKey(t), Policy: otr.AllowV3 | otr.RequireEncryption, HeartbeatInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	return &visitor{t: t, ctx: ctx, c: srv.MustDial(t, user, "pw-"+user, "web"), conv: conv}
}

func newKey(t *testing.T) *otr.PrivateKey {
	t.Helper()
	k, err := otr.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newWorld(t *testing.T, attKey, opKey *otr.PrivateKey) *world {
	t.Helper()
	s := startStage(t, nil, operator.Config{Key: opKey}, func(*operator.Bot) hostile.Config {
		return hostile.Config{Key: attKey, AnswerQueries: true}
	})
	return &world{visitor: newVisitor(t, s.ctx, s.srv, "visitor"), srv: s.srv, att: s.att, bot: s.bot}
}

// A stage is a private Prosody with the attacker as component domain and
// the real operator (internal/operator), ada, logged in; the tests' world
// and omemoWorld put visitors on it.
type stage struct {
	ctx context.Context
	srv *xmpptest.Server
	att *hostile.Attacker
	bot *operator.Bot
}

// startStage starts a stage: the server with hostModules, the bot from
// botCfg and the attacker from what attCfg says for the bot, each
// completed with its client and the names of the test (the bot answers
// "Operator read: " and what it read).
func startStage(t *testing.T, hostModules []string, botCfg operator.Config, attCfg func(*operator.Bot) hostile.Config) *stage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	srv := xmpptest.Prosody(t, xmpptest.Options{Components: map[string]string{domain: secret}, HostModules: hostModules})
	srv.MustRegister(t, "ada", "pw-ada")
	opClient := srv.MustDial(t, "ada", "pw-ada", "desk")
	botCfg.Client, botCfg.Service = opClient, domain
	botCfg.Answer = func(alias, text string) string { return "Operator read: " + text }
	bot, err := operator.New(botCfg)
	if err != nil {
		t.Fatal(err)
	}
	xmpptest.RunUntilCleanupLogged(t, "operator", bot.Run)

	comp, err := srv.DialComponent(ctx, domain, secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { comp.Close() })
	cfg := attCfg(bot)
	cfg.Client, cfg.Domain, cfg.Skin, cfg.Operator, cfg.OperatorName, cfg.Logf = comp, domain, "shop", opClient.JID().String(), "Ada", t.Logf
	att, err := hostile.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	xmpptest.RunUntilCleanupLogged(t, "attacker", att.Run)
	return &stage{ctx: ctx, srv: srv, att: att, bot: bot}
}

// learned waits until the attacker has read canary, and returns the
// snapshot that says so and how it read it.
func learned(t *testing.T, ctx context.Context, att *hostile.Attacker, canary string) (hostile.Snapshot, string) {
	t.Helper()
	s, err := att.Wait(ctx, "the attacker to read "+canary, func(s hostile.Snapshot) bool {
		_, ok := s.Learned(canary)
		return ok
	})
	if err != nil {
		t.Fatal(err)
	}
	how, _ := s.Learned(canary)
	return s, how
}

// send writes the visitor's bodies to the skin.
func (w *visitor) send(bodies [][]byte) {
	w.t.Helper()
	for _, b := range bodies {
		if err := w.c.Message(w.ctx, "shop@"+domain, string(b)); err != nil {
			w.t.Fatal(err)
		}
	}
}

// pump runs the visitor's engine on what arrives until cond holds.
func (w *visitor) pump(what string, cond func() bool) {
	w.t.Helper()
	for !cond() {
		st, err := w.c.Next(w.ctx, func(s xmpptest.Stanza) bool { return s.Name == "message" && s.HasBody })
		if err != nil {
			w.t.Fatalf("waiting for %s: %v", what, err)
		}
		show, out, events, _ := w.conv.Receive([]byte(st.Body))
		if show != nil {
			w.shown = append(w.shown, string(show))
		}
		for _, e := range events {
			if e.Kind == otr.EventGoneSecure || e.Kind == otr.EventStillSecure {
				w.secure = append(w.secure, e)
			}
		}
		w.send(out)
	}
}

// TestSecondInstanceReadsPlainSend: with two instances encrypted (the real
// operator's and the attacker's), the engine's plain Send goes to the most
// recently active one, which the attacker makes its own by writing last.
// The attacker decrypts what the visitor sends; the real operator gets
// nothing. This is why the widget must send with SendTo to the instance
// it verified.
func TestSecondInstanceReadsPlainSend(t *testing.T) {
	attKey, opKey := newKey(t), newKey(t)
	w := newWorld(t, attKey, opKey)
	q, err := w.conv.Start()
	if err != nil {
		t.Fatal(err)
	}
	w.send(q)
	w.pump("two AKEs", func() bool { return len(w.secure) == 2 })
	if _, err := w.att.Wait(w.ctx, "the attacker's AKE", func(s hostile.Snapshot) bool { return s.AttackerAKEs == 1 }); err != nil {
		t.Fatal(err)
	}
	fps := map[otr.Fingerprint]bool{w.secure[0].Fingerprint: true, w.secure[1].Fingerprint: true}
	if !fps[attKey.PublicKey.Fingerprint()] || !fps[opKey.PublicKey.Fingerprint()] {
		t.Fatalf("the visitor's two sessions are not with the operator and the attacker")
	}
	if err := w.att.Say(w.ctx, "attacker speaking"); err != nil {
		t.Fatal(err)
	}
	w.pump("the attacker's line", func() bool { return len(w.shown) > 0 && w.shown[len(w.shown)-1] == "attacker speaking" })

	out, err := w.conv.Send([]byte("canary-plain-send"))
	if err != nil {
		t.Fatal(err)
	}
	w.send(out)
	s, how := learned(t, w.ctx, w.att, "canary-plain-send")
	t.Logf("the attacker %s", how)
	if s.OperatorTag == 0 || s.VisitorTag == 0 {
		t.Errorf("instance tags not learned: operator %08x visitor %08x", s.OperatorTag, s.VisitorTag)
	}
}

// TestRelayAndInject: without attacks the visitor's chat with the real
// operator works through the attacker's relay, and injected bodies and
// status elements reach the visitor.
func TestRelayAndInject(t *testing.T) {
	w := newWorld(t, newKey(t), newKey(t))
	q, err := w.conv.Start()
	if err != nil {
		t.Fatal(err)
	}
	// Both answer the query; the visitor then picks the operator's
	// instance by hand, as a careful client would.
	w.send(q)
	w.pump("two AKEs", func() bool { return len(w.secure) == 2 })
	if err := w.conv.SetInstance(w.att.Snapshot().OperatorTag); err != nil {
		t.Fatal(err)
	}
	out, err := w.conv.Send([]byte("to the operator only"))
	if err != nil {
		t.Fatal(err)
	}
	w.send(out)
	ctx, cancel := context.WithTimeout(w.ctx, time.Minute)
	defer cancel()
	if _, err := w.bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Message && e.Text == "to the operator only" }); err != nil {
		t.Fatalf("the operator did not read the relayed message: %v", err)
	}
	w.pump("the operator's answer", func() bool {
		return len(w.shown) > 0 && w.shown[len(w.shown)-1] == "Operator read: to the operator only"
	})
	if how, ok := w.att.Snapshot().Learned("to the operator only"); ok {
		t.Errorf("a message to the operator's instance was read by the attacker: %s", how)
	}
	if err := w.att.Inject(w.ctx, "plain words"); err != nil {
		t.Fatal(err)
	}
	if err := w.att.Status(w.ctx, "transferred", "Eve"); err != nil {
		t.Fatal(err)
	}
	st, err := w.c.Next(w.ctx, func(s xmpptest.Stanza) bool {
		return s.Name == "message" && s.HasChild("urn:otrdesk:0", "status") && strings.Contains(string(s.Raw), "transferred")
	})
	if err != nil {
		t.Fatalf("no status element: %v", err)
	}
	if !strings.Contains(string(st.Raw), "operator='Eve'") && !strings.Contains(string(st.Raw), `operator="Eve"`) {
		t.Errorf("status element %s lacks the operator name", st.Raw)
	}
	w.pump("the injected line", func() bool { return len(w.shown) > 0 && w.shown[len(w.shown)-1] == "plain words" })
}

// TestNewVisitorNewChat: a second visitor is a chat of its own, under
// another alias for the operator, and the attacker's OTR moves to it.
func TestNewVisitorNewChat(t *testing.T) {
	w := newWorld(t, newKey(t), newKey(t))
	q, _ := w.conv.Start()
	w.send(q)
	w.pump("the first visitor's two AKEs", func() bool { return len(w.secure) == 2 })
	first := w.att.Alias()

	v2 := newVisitor(t, w.ctx, w.srv, "visitor2")
	q, _ = v2.conv.Start()
	v2.send(q)
	v2.pump("the second visitor's two AKEs", func() bool { return len(v2.secure) == 2 })
	if second := w.att.Alias(); second == first || second == "" {
		t.Errorf("the second visitor's alias is %q, the first's %q", second, first)
	}
	// The visitor is secure once it sent its Signature; the attacker only
	// once that Signature arrived.
	sn, err := w.att.Wait(w.ctx, "the attacker's second AKE", func(sn hostile.Snapshot) bool { return sn.AttackerAKEs >= 2 })
	if err != nil {
		t.Fatal(err)
	}
	if sn.Visitor != v2.c.JID().String() || sn.AttackerAKEs != 2 {
		t.Errorf("after the second visitor: current visitor %q (want %q), attacker AKEs %d (want 2)", sn.Visitor, v2.c.JID(), sn.AttackerAKEs)
	}
	if n := len(w.bot.Aliases()); n != 2 {
		t.Errorf("the operator talked with %d aliases, want 2", n)
	}
}

func TestPlaintextFragment(t *testing.T) {
	f := hostile.PlaintextFragment(0x1234, 0xabcd, "hello")
	info := otr.Classify([]byte(f))
	if info.Kind != otr.KindFragment || info.SenderTag != 0x1234 || info.ReceiverTag != 0xabcd || info.K != 1 || info.N != 1 {
		t.Fatalf("PlaintextFragment = %q classified as %+v", f, info)
	}
	r := otr.NewReassembler(0xabcd)
	whole, err := r.Add([]byte(f), time.Now())
	if err != nil || string(whole) != "hello" {
		t.Fatalf("reassembled %q, %v; want hello", whole, err)
	}
}
