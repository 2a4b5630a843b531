package profanity_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"otrdesk.im/otrdesk/internal/profanity"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/omemo/wire"
)

// TestProfanityProsody logs Profanity in on a private Prosody and checks
// what it tells about itself against what it published, then exchanges a
// plain message each way with a test client.
func TestProfanityProsody(t *testing.T) {
	runProfanity(t, xmpptest.Prosody(t, xmpptest.Options{HostModules: []string{"pep"}}))
}

// TestProfanityEjabberd does the same on ejabberd, which, unlike Prosody,
// announces publish-options on the server's JID: Profanity then publishes
// its keys with them, and Start must not let it publish before it knows.
func TestProfanityEjabberd(t *testing.T) {
	runProfanity(t, xmpptest.Ejabberd(t, xmpptest.Options{}))
}

func runProfanity(t *testing.T, srv *xmpptest.Server) {
	srv.MustRegister(t, "alice", "pw-alice")
	srv.MustRegister(t, "bob", "pw-bob")
	host, port, err := net.SplitHostPort(srv.C2SAddr)
	if err != nil {
		t.Fatal(err)
	}
	portN, _ := strconv.Atoi(port)
	start := time.Now()
	p := profanity.Start(t, profanity.Config{JID: "alice@example.org", Password: "pw-alice", Host: host, Port: portN})
	t.Logf("Profanity logged in with OMEMO keys in %v", time.Since(start).Round(time.Millisecond))
	if p.DeviceID() == 0 || len(p.Fingerprint()) != 64 {
		t.Fatalf("device %d, fingerprint %q", p.DeviceID(), p.Fingerprint())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// What Profanity shows is what it published: its device in its own
	// device list (Start waited for that), its identity key in its bundle.
	self := srv.MustDial(t, "alice", "pw-alice", "check")
	var list wire.DeviceList
	for deadline := time.Now().Add(30 * time.Second); ; {
		res, err := self.IQ(ctx, "get", "", `<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='`+wire.DeviceListNode+`'/></pubsub>`)
		if err == nil {
			list, _ = wire.ParseDeviceList(inner(res.Raw, "<list", "</list>"))
		}
		if len(list) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(list) != 1 || list[0] != p.DeviceID() {
		t.Fatalf("published device list %v, Profanity says %d", list, p.DeviceID())
	}
	res, err := self.IQ(ctx, "get", "", `<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='`+wire.BundleNode(p.DeviceID())+`'/></pubsub>`)
	if err != nil {
		t.Fatal(err)
	}
	b, err := wire.ParseBundle(inner(res.Raw, "<bundle", "</bundle>"))
	if err != nil {
		t.Fatalf("bundle: %v: %s", err, res.Raw)
	}
	if got := hex.EncodeToString(b.IdentityKey[:]); got != p.Fingerprint() {
		t.Fatalf("bundle's identity key %s, Profanity shows %s", got, p.Fingerprint())
	}

	// A plain chat: bob writes, Profanity shows it; Profanity answers.
	bob := srv.MustDial(t, "bob", "pw-bob", "desk")
	if err := bob.Message(ctx, "alice@example.org", "hello from bob 4711"); err != nil {
		t.Fatal(err)
	}
	p.WaitFor(ctx, regexp.MustCompile(`bob@example.org`))
	p.Cmd("/msg bob@example.org")
	p.WaitFor(ctx, regexp.MustCompile(`hello from bob 4711`))
	p.Cmd("hello from alice 0815")
	got, err := bob.Next(ctx, func(st xmpptest.Stanza) bool { return st.Name == "message" && st.HasBody })
	if err != nil {
		t.Fatal(err)
	}
	if got.Body != "hello from alice 0815" {
		t.Fatalf("bob got %q", got.Body)
	}
	if log, err := os.ReadFile(p.LogFile()); err == nil && (bytes.Contains(log, []byte("4711")) || bytes.Contains(log, []byte("0815"))) {
		t.Error("a message body reached Profanity's log")
	}
}

// inner cuts the first element that starts with open out of raw XML.
func inner(raw []byte, open, close string) []byte {
	s := string(raw)
	i := strings.Index(s, open)
	j := strings.LastIndex(s, close)
	if i < 0 || j < i {
		return nil
	}
	return []byte(s[i : j+len(close)])
}
