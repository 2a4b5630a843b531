package component

import (
	"bufio"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"otrdesk.im/otrdesk/store"
)

// fakeServer is a scripted XEP-0114 listener for the stream layer's unit
// tests: each accepted connection gets the next behaviour from the script.
type fakeServer struct {
	ln      net.Listener
	mu      sync.Mutex
	script  []string // "accept", "refuse", "host-unknown", "close"
	conns   int
	got     chan string // raw bytes read after the handshake, per read
	current net.Conn
}

func newFakeServer(t *testing.T, script ...string) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{ln: ln, script: script, got: make(chan string, 64)}
	t.Cleanup(func() { ln.Close() })
	go s.serve()
	return s
}

func (s *fakeServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		what := "accept"
		if s.conns < len(s.script) {
			what = s.script[s.conns]
		}
		s.conns++
		s.current = c
		s.mu.Unlock()
		go s.handle(c, what)
	}
}

func (s *fakeServer) handle(c net.Conn, what string) {
	defer c.Close()
	r := bufio.NewReader(c)
	if what == "close" {
		return
	}
	// The component's stream header ends with '>'.
	if _, err := r.ReadString('>'); err != nil {
		return
	}
	fmt.Fprint(c, `<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' id='fake-id' from='chat.example.org'>`)
	if _, err := r.ReadString('>'); err != nil { // <handshake>
		return
	}
	if _, err := r.ReadString('>'); err != nil { // </handshake>
		return
	}
	switch what {
	case "refuse":
		fmt.Fprint(c, `<stream:error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)
		return
	case "host-unknown":
		fmt.Fprint(c, `<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></stream:stream>`)
		return
	}
	fmt.Fprint(c, `<handshake/>`)
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			s.got <- string(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// write sends raw XML to the current connection.
func (s *fakeServer) write(t *testing.T, x string) {
	s.mu.Lock()
	c := s.current
	s.mu.Unlock()
	if _, err := io.WriteString(c, x); err != nil {
		t.Fatal(err)
	}
}

// dropCurrent closes the current connection, as a server restart would.
func (s *fakeServer) dropCurrent() {
	s.mu.Lock()
	c := s.current
	s.mu.Unlock()
	c.Close()
}

func (s *fakeServer) connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns
}

// expect waits until the component has written something containing want.
func (s *fakeServer) expect(t *testing.T, want string) string {
	t.Helper()
	var all strings.Builder
	deadline := time.After(10 * time.Second)
	for {
		select {
		case x := <-s.got:
			all.WriteString(x)
			if strings.Contains(all.String(), want) {
				return all.String()
			}
		case <-deadline:
			t.Fatalf("component never wrote %q; wrote %q", want, all.String())
		}
	}
}

func streamComponent(t *testing.T, addr string) *Component {
	st, err := store.Open(filepath.Join(t.TempDir(), "otrdesk.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateSkin(helpSkin("op1@example.org")); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Domain: testDomain, Server: addr, Secret: "the-secret"}, st)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFirstHandshakeRefused(t *testing.T) {
	for _, tc := range []struct{ script, want string }{
		{"refuse", "refused the component secret for chat.example.org; check component.secret_file"},
		{"host-unknown", "does not serve the component domain chat.example.org"},
	} {
		srv := newFakeServer(t, tc.script)
		c := streamComponent(t, srv.ln.Addr().String())
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := c.Run(ctx)
		cancel()
		if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "the-secret") {
			t.Errorf("%s: Run returned %v", tc.script, err)
		}
		if ok, reason := c.Ready(); ok || reason == "" {
			t.Errorf("%s: Ready %v %q", tc.script, ok, reason)
		}
	}
}

// Transient failures before the first handshake are retried with backoff;
// once connected, a dropped stream reconnects and a later refusal is
// retried too (the server may be mid-reconfiguration), not fatal.
func TestReconnect(t *testing.T) {
	srv := newFakeServer(t, "close", "close", "accept", "refuse", "accept")
	c := streamComponent(t, srv.ln.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	waitFor(t, "ready", func() bool { ok, _ := c.Ready(); return ok })
	srv.expect(t, `type="subscribe"`)
	// A stanza in: a ping to the domain gets its answer, with from set.
	srv.write(t, `<iq type='get' id='p1' from='op1@example.org/x' to='chat.example.org'><ping xmlns='urn:xmpp:ping'/></iq>`)
	out := srv.expect(t, `id="p1"`)
	if !strings.Contains(out, `from="chat.example.org"`) || !strings.Contains(out, `type="result"`) {
		t.Fatalf("ping answer: %s", out)
	}
	// Garbage inside one stanza is answered, the stream stays.
	srv.write(t, `<message from='v@guest.example.org/w' to='nosuch@chat.example.org' id='m1'><body>x</body></message>`)
	srv.expect(t, `item-not-found`)

	srv.dropCurrent()
	waitFor(t, "reconnected twice more", func() bool { return srv.connections() >= 5 })
	waitFor(t, "ready again", func() bool { ok, _ := c.Ready(); return ok })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	if ok, _ := c.Ready(); ok {
		t.Fatal("ready after Run returned")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestQuietSyntaxErrors(t *testing.T) {
	err := quiet(&xml.SyntaxError{Msg: "invalid character entity &secretword;", Line: 7})
	if !errors.Is(err, errMalformed) || strings.Contains(err.Error(), "secretword") || !strings.Contains(err.Error(), "line 7") {
		t.Fatalf("quiet: %v", err)
	}
	if e := errors.New("x"); quiet(e) != e {
		t.Fatal("quiet changed another error")
	}
}
