package xmpptest

import (
	"context"
	"testing"
	"time"
)

func TestQuickEjabberd(t *testing.T) {
	s := Ejabberd(t, Options{Components: map[string]string{"chat.example.org": "s3cret"}})
	t0 := time.Now()
	s.MustRegister(t, "alice", "pw-a")
	t.Log("register took", time.Since(t0))
	s.MustRegister(t, "bob", "pw-b")
	a := s.MustDial(t, "alice", "pw-a", "r1")
	b := s.MustDial(t, "bob", "pw-b", "")
	t.Log(a.JID(), b.JID())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Message(ctx, b.JID().String(), "hi  \t"); err != nil {
		t.Fatal(err)
	}
	st, err := b.Next(ctx, func(s Stanza) bool { return s.Name == "message" })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %q %s", st, st.Body, st.Raw)
	g := s.MustDialAnonymous(t)
	t.Log(g.JID())
	t0 = time.Now()
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	t.Log("restart took", time.Since(t0))
}
