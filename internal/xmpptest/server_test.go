package xmpptest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"
)

const compDomain = "chat.example.org"

// body exercises what must survive byte-exact: markup characters, quotes,
// and OTR-style trailing spaces and tabs.
const body = "hello <&> \"q\" 'a' \u00e9\u263a  \t \t  "

func TestProsody(t *testing.T) {
	t.Parallel()
	testServer(t, Prosody)
}

func TestEjabberd(t *testing.T) {
	t.Parallel()
	testServer(t, Ejabberd)
}

func randomSecret(t *testing.T) string {
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

func isMessage(st Stanza) bool { return st.Name == "message" }

func messageWithBody(text string) func(Stanza) bool {
	return func(st Stanza) bool { return st.Name == "message" && st.Body == text }
}

// testServer runs every check against one server: a shared server keeps the
// package fast; Restart runs last.
func testServer(t *testing.T, start func(testing.TB, Options) *Server) {
	// Quotes, a backslash and non-ASCII check the templates' quoting.
	secret := randomSecret(t) + `"'\\é`
	s := start(t, Options{Components: map[string]string{compDomain: secret, "bot.example.org": randomSecret(t)}})
	if s.Domain != "example.org" || s.AnonDomain != "guest.example.org" {
		t.Fatalf("domains %q %q", s.Domain, s.AnonDomain)
	}
	for _, addr := range []string{s.C2SAddr, s.ComponentAddr, s.BOSHURL} {
		if !strings.Contains(addr, "127.0.0.1:") || strings.Contains(addr, ":5222") || strings.Contains(addr, ":5347") || strings.Contains(addr, ":5280/") {
			t.Errorf("address %q is not a free loopback port", addr)
		}
	}
	s.MustRegister(t, "alice", "alice-pw")
	s.MustRegister(t, "bob", "bob-pw")
	// Registering again is harmless.
	s.MustRegister(t, "bob", "bob-pw")
	alice := s.MustDial(t, "alice", "alice-pw", "desk")
	bob := s.MustDial(t, "bob", "bob-pw", "")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("Message", func(t *testing.T) {
		if alice.JID().String() != "alice@example.org/desk" {
			t.Errorf("alice bound %s", alice.JID())
		}
		if bob.JID().Bare().String() != "bob@example.org" || bob.JID().Resourcepart() == "" {
			t.Errorf("bob bound %s", bob.JID())
		}
		if err := alice.Message(ctx, bob.JID().String(), body); err != nil {
			t.Fatal(err)
		}
		st, err := bob.Next(ctx, isMessage)
		if err != nil {
			t.Fatal(err)
		}
		if st.Body != body {
			t.Errorf("body %q, want %q", st.Body, body)
		}
		if st.From != alice.JID().String() || st.To != bob.JID().String() || st.Type != "chat" {
			t.Errorf("got %s", st)
		}
		if !bytes.HasPrefix(st.Raw, []byte("<message")) || !bytes.HasSuffix(st.Raw, []byte("</message>")) {
			t.Errorf("raw %s", st.Raw)
		}
		if bytes.Contains(st.OutsideBody(), []byte("hello")) || !bytes.Contains(st.Raw, []byte("hello")) {
			t.Errorf("OutsideBody %s of raw %s", st.OutsideBody(), st.Raw)
		}
		// And back, through Send with a token reader.
		msg := stanza.Message{To: alice.JID(), Type: stanza.ChatMessage}.Wrap(
			xmlstream.Wrap(xmlstream.Token(xml.CharData("pong")), xml.StartElement{Name: xml.Name{Local: "body"}}))
		if err := bob.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
		if st, err = alice.Next(ctx, messageWithBody("pong")); err != nil {
			t.Fatal(err)
		}
		if st.From != bob.JID().String() {
			t.Errorf("pong from %q", st.From)
		}
	})

	t.Run("Queue", func(t *testing.T) {
		for _, b := range []string{"one", "two"} {
			if err := alice.Message(ctx, bob.JID().String(), b); err != nil {
				t.Fatal(err)
			}
		}
		// Taking the second leaves the first queued.
		if _, err := bob.Next(ctx, messageWithBody("two")); err != nil {
			t.Fatal(err)
		}
		st, err := bob.Next(ctx, isMessage)
		if err != nil || st.Body != "one" {
			t.Fatalf("next message %s, %v; want the first one", st, err)
		}
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		if _, err := bob.Next(short, isMessage); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Next with nothing to take: %v", err)
		}
		// Clients answer pings and disco#info themselves.
		if err := alice.Ping(ctx, bob.JID().String()); err != nil {
			t.Fatalf("ping to a client: %v", err)
		}
		st, err = alice.IQ(ctx, "get", bob.JID().String(), "<query xmlns='http://jabber.org/protocol/disco#info'/>")
		if err != nil || !bytes.Contains(st.Raw, []byte("identity")) {
			t.Fatalf("disco#info to a client: %s, %v", st.Raw, err)
		}
		// (Only presence, such as bob's own reflected, may be queued.)
		for _, st := range bob.Pending() {
			if st.Name != "presence" {
				t.Errorf("bob has an unexpected stanza queued: %s", st.Raw)
			}
		}
	})

	t.Run("WrongPassword", func(t *testing.T) {
		c, err := s.Dial(ctx, "alice", "wrong", "")
		if err == nil {
			c.Close()
			t.Fatal("login with a wrong password succeeded")
		}
		if !errors.Is(err, ErrAuth) {
			t.Fatalf("error %v does not wrap ErrAuth", err)
		}
	})

	t.Run("Anonymous", func(t *testing.T) {
		g1 := s.MustDialAnonymous(t)
		g2 := s.MustDialAnonymous(t)
		for _, g := range []*Client{g1, g2} {
			if g.JID().Domainpart() != "guest.example.org" || g.JID().Localpart() == "" || g.JID().Resourcepart() == "" {
				t.Errorf("anonymous JID %s", g.JID())
			}
		}
		if g1.JID().Bare().Equal(g2.JID().Bare()) {
			t.Errorf("two anonymous logins got the same JID %s", g1.JID())
		}
		if err := g1.Message(ctx, bob.JID().String(), "from a guest"); err != nil {
			t.Fatal(err)
		}
		st, err := bob.Next(ctx, messageWithBody("from a guest"))
		if err != nil {
			t.Fatal(err)
		}
		if st.From != g1.JID().String() {
			t.Errorf("guest message from %q, want %s", st.From, g1.JID())
		}
		// Closed clients say so.
		g2.Close()
		if err := g2.Message(ctx, bob.JID().String(), "x"); !errors.Is(err, ErrClosed) {
			t.Errorf("Message after Close: %v", err)
		}
		if _, err := g2.Next(ctx, func(Stanza) bool { return false }); !errors.Is(err, ErrClosed) {
			t.Errorf("Next after Close: %v", err)
		}
	})

	t.Run("Component", func(t *testing.T) {
		c, err := s.DialComponent(ctx, compDomain, secret)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := alice.Message(ctx, "demo@"+compDomain, "to the compDomain"); err != nil {
			t.Fatal(err)
		}
		st, err := c.Next(ctx, messageWithBody("to the compDomain"))
		if err != nil {
			t.Fatal(err)
		}
		if st.From != alice.JID().String() || st.To != "demo@"+compDomain {
			t.Errorf("compDomain got %s", st)
		}
		if err := c.SendRaw(ctx, "<message from='demo@"+compDomain+"' to='"+alice.JID().String()+"' type='chat'><body>from the compDomain</body></message>"); err != nil {
			t.Fatal(err)
		}
		if st, err = alice.Next(ctx, messageWithBody("from the compDomain")); err != nil {
			t.Fatal(err)
		}
		if st.From != "demo@"+compDomain {
			t.Errorf("alice got it from %q", st.From)
		}

		_, err = s.DialComponent(ctx, "bot.example.org", "not the secret")
		if !errors.Is(err, ErrHandshake) {
			t.Fatalf("wrong secret: error %v, want ErrHandshake", err)
		}
		_, err = s.DialComponent(ctx, "unknown.example.org", secret)
		if !errors.Is(err, ErrHandshake) {
			t.Fatalf("unknown compDomain: error %v, want ErrHandshake", err)
		}
	})

	t.Run("Carbons", func(t *testing.T) {
		desk2 := s.MustDial(t, "alice", "alice-pw", "desk2")
		if err := alice.EnableCarbons(ctx); err != nil {
			t.Fatal(err)
		}
		// A plain message from the other resource is copied to "desk".
		if err := desk2.Message(ctx, bob.JID().String(), "copied"); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Next(ctx, messageWithBody("copied")); err != nil {
			t.Fatal(err)
		}
		st, err := alice.Next(ctx, func(st Stanza) bool { return st.HasChild(nsCarbons, "sent") })
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(st.Raw, []byte("copied")) {
			t.Errorf("carbon %s", st.Raw)
		}
		// One marked private is not.
		if err := desk2.SendRaw(ctx, "<message type='chat' to='"+bob.JID().String()+"'><body>private</body><private xmlns='urn:xmpp:carbons:2'/></message>"); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Next(ctx, messageWithBody("private")); err != nil {
			t.Fatal(err)
		}
		if err := alice.Ping(ctx, ""); err != nil {
			t.Fatal(err)
		}
		for _, st := range alice.Pending() {
			if bytes.Contains(st.Raw, []byte("private")) {
				t.Errorf("a message marked private was carbon-copied: %s", st.Raw)
			}
		}
	})

	t.Run("Archive", func(t *testing.T) {
		if err := alice.Message(ctx, bob.JID().String(), "archived"); err != nil {
			t.Fatal(err)
		}
		if err := alice.SendRaw(ctx, "<message type='chat' to='"+bob.JID().String()+"'><body>not archived</body><no-store xmlns='urn:xmpp:hints'/></message>"); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Next(ctx, messageWithBody("archived")); err != nil {
			t.Fatal(err)
		}
		if _, err := bob.Next(ctx, messageWithBody("not archived")); err != nil {
			t.Fatal(err)
		}
		msgs, err := bob.Archive(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		for _, m := range msgs {
			switch m.Body {
			case "archived":
				found = true
			case "not archived":
				t.Errorf("a message marked no-store was archived: %s", m.Raw)
			}
		}
		if !found {
			t.Errorf("archive of %d messages lacks the plain message", len(msgs))
		}
	})

	t.Run("BOSH", func(t *testing.T) {
		j, err := s.BOSHAnonymous(ctx, "https://site.example")
		if err != nil {
			t.Fatal(err)
		}
		if j.Domainpart() != "guest.example.org" || j.Localpart() == "" {
			t.Errorf("bosh login got %s", j)
		}
		// CORS preflight, as a browser sends it for the widget.
		req, err := http.NewRequestWithContext(ctx, http.MethodOptions, s.BOSHURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", "https://site.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") == "" {
			t.Errorf("preflight: %s, headers %v", resp.Status, resp.Header)
		}
	})

	t.Run("Restart", func(t *testing.T) {
		if err := s.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		// The old streams ended...
		if _, err := bob.Next(ctx, func(Stanza) bool { return false }); err == nil || ctx.Err() != nil {
			t.Errorf("bob's stream survived a restart: %v", err)
		}
		// ...the accounts did not.
		a := s.MustDial(t, "alice", "alice-pw", "again")
		b := s.MustDial(t, "bob", "bob-pw", "again")
		if err := a.Message(ctx, b.JID().String(), "after restart"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Next(ctx, messageWithBody("after restart")); err != nil {
			t.Fatal(err)
		}
		c, err := s.DialComponent(ctx, compDomain, secret)
		if err != nil {
			t.Fatalf("compDomain after restart: %v", err)
		}
		c.Close()
		if _, err := s.BOSHAnonymous(ctx, ""); err != nil {
			t.Fatalf("bosh after restart: %v", err)
		}
	})
}

func TestMissingBinary(t *testing.T) {
	_, err := lookPath("xmpptest-no-such-server", "some-debian-package")
	if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "apt-get install some-debian-package") {
		t.Fatalf("error %v", err)
	}
}

func TestEjabberdDirUnreachable(t *testing.T) {
	dir := t.TempDir() // its parent is mode 0700, owned by the test's user
	if err := reachable(dir+"/instance", 65534); err == nil || !strings.Contains(err.Error(), "leave Options.Dir empty") {
		t.Fatalf("error %v", err)
	}
	if err := reachable(os.TempDir()+"/xmpptest-"+randomSecret(t)+"/y", 65534); err != nil {
		t.Fatalf("/tmp is reachable by anyone: %v", err)
	}
}

func TestProsodyFixedPorts(t *testing.T) {
	p, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	s := Prosody(t, Options{C2SPort: p[0], ComponentPort: p[1], HTTPPort: p[2], Components: map[string]string{compDomain: "x"}})
	want := []string{"127.0.0.1:" + strconv.Itoa(p[0]), "127.0.0.1:" + strconv.Itoa(p[1]), "http://127.0.0.1:" + strconv.Itoa(p[2]) + "/http-bind"}
	if got := []string{s.C2SAddr, s.ComponentAddr, s.BOSHURL}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("addresses %v, want %v", got, want)
	}
	if _, err := StartProsody(context.Background(), Options{HTTPPort: 70000}); err == nil || !strings.Contains(err.Error(), "invalid port") {
		t.Errorf("port 70000: %v", err)
	}
}
