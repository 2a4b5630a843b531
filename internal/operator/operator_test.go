package operator_test

import (
	"context"
	"crypto/rand"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"otrdesk.im/otrdesk/internal/operator"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/otr"
)

var (
	keyOnce sync.Once
	keys    [2]*otr.PrivateKey
)

func testKeys(t *testing.T) (op, visitor *otr.PrivateKey) {
	t.Helper()
	keyOnce.Do(func() {
		for i := range keys {
			k, err := otr.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatalf("generating an OTR key: %v", err)
			}
			keys[i] = k
		}
	})
	return keys[0], keys[1]
}

// visitor is the far end: a Go OTR conversation on a plain c2s account.
type visitor struct {
	t    *testing.T
	c    *xmpptest.Client
	to   string
	conv *otr.Conversation
}

func (v *visitor) send(ctx context.Context, bodies [][]byte) {
	v.t.Helper()
	for _, b := range bodies {
		if err := v.c.Message(ctx, v.to, string(b)); err != nil {
			v.t.Fatalf("visitor sending: %v", err)
		}
	}
}

// pump feeds the visitor's conversation until want reports done.
func (v *visitor) pump(ctx context.Context, want func(show []byte, events []otr.Event) bool) {
	v.t.Helper()
	for {
		st, err := v.c.Next(ctx, func(s xmpptest.Stanza) bool { return s.Name == "message" && s.HasBody })
		if err != nil {
			v.t.Fatalf("visitor waiting: %v", err)
		}
		show, toSend, events, err := v.conv.Receive([]byte(st.Body))
		if err != nil {
			v.t.Fatalf("visitor receiving: %v", err)
		}
		v.send(ctx, toSend)
		if want(show, events) {
			return
		}
	}
}

// startOTR has a visitor on account c start OTR with to and waits until
// the session is encrypted; it returns the visitor and the event that
// said so.
func startOTR(t *testing.T, ctx context.Context, c *xmpptest.Client, to string, key *otr.PrivateKey) (*visitor, otr.Event) {
	t.Helper()
	conv, err := otr.NewConversation(otr.Config{PrivateKey: key, Policy: otr.PolicyAlways})
	if err != nil {
		t.Fatal(err)
	}
	v := &visitor{t: t, c: c, to: to, conv: conv}
	q, err := conv.Start()
	if err != nil {
		t.Fatal(err)
	}
	v.send(ctx, q)
	var secure otr.Event
	v.pump(ctx, func(_ []byte, evs []otr.Event) bool {
		i := slices.IndexFunc(evs, func(e otr.Event) bool { return e.Kind == otr.EventGoneSecure })
		if i >= 0 {
			secure = evs[i]
		}
		return i >= 0
	})
	return v, secure
}

func TestBotAnswersEncrypted(t *testing.T) {
	opKey, visKey := testKeys(t)
	srv := xmpptest.Prosody(t, xmpptest.Options{Components: map[string]string{"chat.example.org": "unused-secret"}})
	srv.MustRegister(t, "op", "pw-op")
	srv.MustRegister(t, "vis", "pw-vis")
	opc := srv.MustDial(t, "op", "pw-op", "desk")
	visc := srv.MustDial(t, "vis", "pw-vis", "web")

	bot, err := operator.New(operator.Config{
		Client: opc, Key: opKey,
		Answer: func(alias, text string) string { return "echo: " + text },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	xmpptest.RunUntilCleanup(t, "operator", bot.Run)

	v, gone := startOTR(t, ctx, visc, opc.JID().String(), visKey)
	if gone.Fingerprint != bot.Fingerprint() {
		t.Errorf("visitor sees fingerprint %s, the bot's key is %s", gone.Fingerprint, bot.Fingerprint())
	}
	sec, err := bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Secure })
	if err != nil {
		t.Fatal(err)
	}
	if sec.Fingerprint != visKey.PublicKey.Fingerprint() {
		t.Errorf("bot sees fingerprint %s, want the visitor's %s", sec.Fingerprint, visKey.PublicKey.Fingerprint())
	}

	msgs, err := v.conv.Send([]byte("héllo, operator"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if !strings.HasPrefix(string(m), "?OTR:") {
			t.Fatalf("visitor sent %q, not an OTR data message", m)
		}
	}
	v.send(ctx, msgs)
	got, err := bot.Next(ctx, func(e operator.Event) bool { return e.Kind == operator.Message })
	if err != nil {
		t.Fatal(err)
	}
	if got.Text != "héllo, operator" || !got.Encrypted {
		t.Errorf("bot read %q (encrypted %v), want the visitor's text encrypted", got.Text, got.Encrypted)
	}
	var reply string
	v.pump(ctx, func(show []byte, _ []otr.Event) bool {
		if show != nil {
			reply = string(show)
			return true
		}
		return false
	})
	if reply != "echo: héllo, operator" {
		t.Errorf("visitor read %q, want the bot's answer", reply)
	}

	// Operator-initiated message and an OTR disconnect from the bot.
	if err := bot.Say(ctx, got.Alias, "anything else?"); err != nil {
		t.Fatal(err)
	}
	v.pump(ctx, func(show []byte, _ []otr.Event) bool { return string(show) == "anything else?" })
	if err := bot.End(ctx, got.Alias); err != nil {
		t.Fatal(err)
	}
	v.pump(ctx, func(_ []byte, evs []otr.Event) bool {
		for _, e := range evs {
			if e.Kind == otr.EventGoneInsecure {
				return true
			}
		}
		return false
	})
	if err := bot.Say(ctx, "nobody@example.org", "x"); err != operator.ErrNoChat {
		t.Errorf("Say to an unknown alias: %v, want ErrNoChat", err)
	}
}
