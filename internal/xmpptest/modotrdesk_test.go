package xmpptest

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestModOTRDesk checks contrib/prosody/mod_otrdesk.lua on a private
// Prosody: an operator with two carbons-enabled resources and an archive
// sends OTR and plaintext messages to guests of the otrdesk component; the
// other resource must get carbons of the plaintext only, and the archive
// must hold the plaintext only. The "not loaded" case runs the same
// exchange without the module and expects every message copied and
// archived: it shows the checks fail when the module is missing.
func TestModOTRDesk(t *testing.T) {
	t.Parallel()
	dir, err := filepath.Abs(filepath.Join("..", "..", "contrib", "prosody"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		loaded bool
		option map[string]string
		// marksOther: OTR messages to the second component are marked too.
		marksOther bool
	}{
		{name: "component named", loaded: true, option: map[string]string{"otrdesk_component": compDomain}},
		{name: "every component", loaded: true, marksOther: true},
		{name: "not loaded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := Options{Components: map[string]string{compDomain: randomSecret(t), "other.example.org": randomSecret(t)}}
			if tc.loaded {
				opts.PluginPaths = []string{dir}
				opts.HostModules = []string{"otrdesk"}
				opts.HostOptions = tc.option
			}
			testModOTRDesk(t, Prosody(t, opts), tc.loaded, tc.marksOther)
		})
	}
}

// otrSample is one message the operator sends in TestModOTRDesk.
type otrSample struct {
	to, body string
	otr      bool // an OTR protocol message
	other    bool // addressed to the second component, not otrdesk's
	// archived: Prosody's mod_mam archives messages to a user's JID (bare or
	// full) but not to a bare domain, with or without the module.
	archived bool
}

func testModOTRDesk(t *testing.T, s *Server, loaded, marksOther bool) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	comp, err := s.DialComponent(ctx, compDomain, s.ComponentSecret(compDomain))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { comp.Close() })
	other, err := s.DialComponent(ctx, "other.example.org", s.ComponentSecret("other.example.org"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	s.MustRegister(t, "op", "op-pw")
	desk := s.MustDial(t, "op", "op-pw", "desk")
	phone := s.MustDial(t, "op", "op-pw", "phone")
	for _, c := range []*Client{desk, phone} {
		if err := c.EnableCarbons(ctx); err != nil {
			t.Fatal(err)
		}
	}

	guest := "guest-" + randomSecret(t) + "@" + compDomain
	samples := []otrSample{
		{to: guest, body: "hello, plaintext", archived: true},
		{to: guest, body: "what does ?OTR mean", archived: true},
		// Plaintext with an OTR v3 whitespace tag is still plaintext.
		{to: guest, body: "hello, tagged \x20\x09\x20\x20\x09\x09\x09\x09\x20\x09\x20\x09\x20\x09\x20\x20\x20\x20\x09\x09\x20\x20\x09\x09", archived: true},
		{to: guest, body: "?OTRv3?", otr: true, archived: true},
		{to: guest, body: otrData(t), otr: true, archived: true},
		{to: guest + "/widget", body: otrData(t), otr: true, archived: true},
		{to: guest, body: "?OTR|5a73a599|27e31597,00001,00002,?OTR:AAMD" + randomSecret(t) + ",", otr: true, archived: true},
		{to: guest, body: "?OTR Error: You sent encrypted data which was unexpected", otr: true, archived: true},
		{to: compDomain, body: otrData(t), otr: true},
		{to: "guest-1@other.example.org", body: otrData(t), otr: true, other: true, archived: true},
	}
	marked := func(m otrSample) bool { return loaded && m.otr && (!m.other || marksOther) }

	for _, m := range samples {
		if err := desk.Message(ctx, m.to, m.body); err != nil {
			t.Fatal(err)
		}
		to := comp
		if m.other {
			to = other
		}
		got, err := to.Next(ctx, messageWithBody(m.body))
		if err != nil {
			t.Fatalf("message to %s not delivered: %v", m.to, err)
		}
		if marked(m) && !(got.HasChild(nsCarbons, "private") && got.HasChild("urn:xmpp:hints", "no-copy") && got.HasChild("urn:xmpp:hints", "no-store")) {
			t.Errorf("OTR message to %s arrived without the three hints; its children: %v", m.to, got.Children)
		}
	}

	// Carbons were written to the phone's stream while the server handled
	// each message; a ping round trip puts them all in its queue.
	if err := phone.Ping(ctx, ""); err != nil {
		t.Fatal(err)
	}
	copied := map[string]bool{}
	for _, st := range phone.Pending() {
		if !st.HasChild(nsCarbons, "sent") {
			continue
		}
		fwd, err := forwardedMessage(st.Raw)
		if err != nil {
			t.Fatal(err)
		}
		copied[fwd.Body] = true
	}
	archived := map[string]bool{}
	msgs, err := desk.Archive(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		archived[m.Body] = true
	}

	for _, m := range samples {
		if want := !marked(m); copied[m.body] != want {
			t.Errorf("message to %s (otr %v): carbon-copied to the other resource %v, want %v", m.to, m.otr, copied[m.body], want)
		}
		if want := m.archived && !marked(m); archived[m.body] != want {
			t.Errorf("message to %s (otr %v): archived %v, want %v", m.to, m.otr, archived[m.body], want)
		}
	}
	if t.Failed() {
		// Did the module load? (The log at info level holds no bodies.)
		log, _ := os.ReadFile(s.LogFile)
		for _, line := range strings.Split(string(log), "\n") {
			if strings.Contains(line, "otrdesk") || strings.Contains(line, "error") {
				t.Logf("prosody.log: %s", line)
			}
		}
	}
}

// otrData returns a unique OTR data message (as libotr formats them:
// "?OTR:", base64, ".").
func otrData(t *testing.T) string {
	b := make([]byte, 96)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "?OTR:AAMD" + base64.StdEncoding.EncodeToString(b) + "."
}

func TestProsodyExtras(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind string
		opts Options
		ok   bool
	}{
		{"none on ejabberd", "ejabberd", Options{}, true},
		{"module on prosody", "prosody", Options{PluginPaths: []string{"/opt/mods"}, HostModules: []string{"otrdesk"}, HostOptions: map[string]string{"otrdesk_component": "chat.example.org"}}, true},
		{"module on ejabberd", "ejabberd", Options{HostModules: []string{"otrdesk"}}, false},
		{"relative plugin path", "prosody", Options{PluginPaths: []string{"contrib/prosody"}}, false},
		{"option name with a dot", "prosody", Options{HostOptions: map[string]string{"a.b": "x"}}, false},
		{"option name with a leading digit", "prosody", Options{HostOptions: map[string]string{"1a": "x"}}, false},
		{"empty option name", "prosody", Options{HostOptions: map[string]string{"": "x"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := prosodyExtras(tc.kind, tc.opts); (err == nil) != tc.ok {
				t.Errorf("error %v, want ok %v", err, tc.ok)
			}
		})
	}
}
