package component

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"otrdesk.im/otrdesk/store"
)

// Unit tests drive the router directly, one goroutine, with a real store and
// a sender that serialises every stanza with encoding/xml as the session
// does. The integration tests (integration_test.go) run the same paths over
// a real XEP-0114 stream.

const testDomain = "chat.example.org"

type capture struct{ out []string }

func (c *capture) send(t toks) error {
	var b bytes.Buffer
	e := xml.NewEncoder(&b)
	for _, tok := range t {
		if err := e.EncodeToken(tok); err != nil {
			return err
		}
	}
	if err := e.Flush(); err != nil {
		return err
	}
	c.out = append(c.out, b.String())
	return nil
}

// take returns and forgets everything sent so far.
func (c *capture) take() []string {
	o := c.out
	c.out = nil
	return o
}

type fixture struct {
	t   testing.TB
	c   *Component
	st  *store.Store
	cap *capture
	now time.Time
}

func newFixture(t testing.TB, cfg Config, skins ...store.Skin) *fixture {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "otrdesk.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, sk := range skins {
		if err := st.CreateSkin(sk); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Domain, cfg.Server, cfg.Secret = testDomain, "127.0.0.1:1", "s3cret"
	c, err := New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, c: c, st: st, cap: &capture{}, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	c.r.now = func() time.Time { return f.now }
	if err := c.r.loadSkins(); err != nil {
		t.Fatal(err)
	}
	c.r.handle(evConnected{out: f.cap})
	f.cap.take() // subscriptions, probes, own presence
	if _, bench := t.(*testing.B); !bench {
		t.Cleanup(func() { checkInvariants(t, f.c.r) })
	}
	return f
}

// in feeds one stanza, given as XML in jabber:component:accept, through the
// same decoder path as the stream.
func (f *fixture) in(format string, args ...any) {
	f.t.Helper()
	el, err := parseElem(fmt.Sprintf(format, args...), f.c.cfg.MaxBodyBytes+64<<10)
	if err != nil {
		f.t.Fatal(err)
	}
	f.c.r.handle(evStanza{el: el})
}

// parseElem reads one stanza from s as the stream reader does.
func parseElem(s string, budget int) (*elem, error) {
	d := xml.NewDecoder(strings.NewReader(s))
	d.DefaultSpace = nsAccept
	tok, err := d.Token()
	if err != nil {
		return nil, err
	}
	start, ok := tok.(xml.StartElement)
	if !ok {
		return nil, errNotStart
	}
	return readElem(d, start, budget)
}

// sent parses what the component sent since the last call.
func (f *fixture) sent() []sentStanza {
	var out []sentStanza
	for _, raw := range f.cap.take() {
		out = append(out, parseSent(f.t, raw))
	}
	return out
}

type sentStanza struct {
	raw, name, from, to, typ, id string
	body                         *string
	errCond                      string
	status                       map[string]string
}

func parseSent(t testing.TB, raw string) sentStanza {
	t.Helper()
	s := sentStanza{raw: raw}
	d := xml.NewDecoder(strings.NewReader(raw))
	tok, err := d.Token()
	if err != nil {
		t.Fatalf("component sent bad XML %q: %v", raw, err)
	}
	el, err := readElem(d, tok.(xml.StartElement), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if el.name.Space != nsAccept {
		t.Errorf("stanza not in %s: %s", nsAccept, raw)
	}
	s.name, s.from, s.to, s.typ, s.id = el.name.Local, el.get("from"), el.get("to"), el.get("type"), el.get("id")
	if s.from == "" {
		t.Errorf("stanza without from: %s", raw)
	}
	if b := el.child("", "body"); b != nil {
		text := string(b.text)
		s.body = &text
	}
	if e := el.child("", "error"); e != nil && len(e.kids) > 0 {
		s.errCond = e.kids[0].name.Local
	}
	if st := el.child(nsOtrdesk, "status"); st != nil {
		s.status = map[string]string{}
		for _, a := range st.attr {
			s.status[a.Name.Local] = a.Value
		}
	}
	return s
}

func (f *fixture) online(full, show string, prio int) {
	f.t.Helper()
	inner := ""
	if show != "" {
		inner += "<show>" + show + "</show>"
	}
	inner += fmt.Sprintf("<priority>%d</priority>", prio)
	f.in(`<presence xmlns='jabber:component:accept' from='%s' to='help@%s'>%s</presence>`, full, testDomain, inner)
}

func (f *fixture) offline(full string) {
	f.t.Helper()
	f.in(`<presence xmlns='jabber:component:accept' from='%s' to='help@%s' type='unavailable'/>`, full, testDomain)
}

func (f *fixture) msg(from, to, body string) {
	f.t.Helper()
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(body))
	f.in(`<message xmlns='jabber:component:accept' from='%s' to='%s' type='chat' id='m1'><body>%s</body></message>`, from, to, b.String())
}

func helpSkin(ops ...string) store.Skin {
	return store.Skin{Name: "help", Title: "Help desk", Policy: store.PolicyOpportunistic, Operators: ops,
		OperatorNames: map[string]string{"op1@example.org": "Alice"}}
}

const (
	visitor  = "k3j2abc@guest.example.org/web1"
	visitor2 = "zz99@guest.example.org/web2"
	op1      = "op1@example.org/pidgin"
	op2      = "op2@example.org/laptop"
	skinJID  = "help@" + testDomain
)

// bodiesTo returns the bodies of messages addressed to "to".
func bodiesTo(ss []sentStanza, to string) []string {
	var out []string
	for _, s := range ss {
		if s.name == "message" && s.to == to && s.body != nil {
			out = append(out, *s.body)
		}
	}
	return out
}

func only(t *testing.T, ss []sentStanza, pred func(sentStanza) bool) sentStanza {
	t.Helper()
	var hits []sentStanza
	for _, s := range ss {
		if pred(s) {
			hits = append(hits, s)
		}
	}
	if len(hits) != 1 {
		t.Fatalf("want exactly one matching stanza, got %d among %d", len(hits), len(ss))
	}
	return hits[0]
}

func TestRoundTripAndMasking(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org"))
	f.online(op1, "", 5)
	if !f.c.Available("help") {
		t.Fatal("operator online, skin not available")
	}
	f.sent()
	f.msg(visitor, skinJID, "hello, I need help")
	out := f.sent()
	// Notice first, then the message, both from the alias to op1.
	var toOp []sentStanza
	for _, s := range out {
		if s.to == op1 {
			toOp = append(toOp, s)
		}
	}
	if len(toOp) != 2 || toOp[0].body == nil || toOp[1].body == nil {
		t.Fatalf("want notice + message to the operator, got %v", out)
	}
	alias := toOp[1].from
	if !strings.HasPrefix(alias, "guest-") || !strings.HasSuffix(alias, "@"+testDomain) || toOp[0].from != alias {
		t.Fatalf("not from an alias: %q, %q", toOp[0].from, alias)
	}
	if !strings.Contains(*toOp[0].body, "Help desk") || strings.Contains(*toOp[0].body, "hello") {
		t.Errorf("notice %q: want the skin title and no content", *toOp[0].body)
	}
	if *toOp[1].body != "hello, I need help" {
		t.Errorf("relayed body %q", *toOp[1].body)
	}
	for _, s := range out {
		if s.to != visitor && (strings.Contains(s.raw, "k3j2abc") || strings.Contains(s.raw, "guest.example.org")) {
			t.Errorf("visitor's real JID leaked: %s", s.raw)
		}
	}
	// The alias is stored.
	g, err := f.st.GuestByRealJID("help", visitor)
	if err != nil || "guest-"+g.ID+"@"+testDomain != alias || g.Operator != op1 || g.State != stateAssigned {
		t.Fatalf("stored guest %+v, %v", g, err)
	}

	f.msg(op1, alias, "hi, how can I help?")
	out = f.sent()
	back := only(t, out, func(s sentStanza) bool { return s.to == visitor })
	if back.from != skinJID || back.body == nil || *back.body != "hi, how can I help?" {
		t.Fatalf("reply to visitor: %+v", back)
	}
	for _, s := range out {
		if strings.Contains(s.raw, "op1") || strings.Contains(s.raw, "pidgin") {
			t.Errorf("operator's JID leaked: %s", s.raw)
		}
	}
	// Same visitor again: same alias, no second notice.
	f.msg(visitor, skinJID, "thanks")
	out = f.sent()
	if got := bodiesTo(out, op1); len(got) != 1 || got[0] != "thanks" || out[0].from != alias {
		t.Fatalf("second message: %v", out)
	}
}

func TestRelayOnlyAllowedElements(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org"))
	f.online(op1, "chat", 0)
	f.msg(visitor, skinJID, "first")
	out := f.sent()
	alias := out[len(out)-1].from
	f.in(`<message xmlns='jabber:component:accept' from='%s' to='%s' type='chat' id='abc'>
		<body>x</body><thread parent='p1'>t-1</thread>
		<composing xmlns='http://jabber.org/protocol/chatstates'/>
		<request xmlns='urn:xmpp:receipts'/>
		<html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>SECRET-HTML</body></html>
		<nick xmlns='http://jabber.org/protocol/nick'>Visitor Name</nick>
		<addresses xmlns='http://jabber.org/protocol/address'><address type='ofrom' jid='real@x'/></addresses>
		<delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z' from='real@x'/>
	</message>`, visitor, skinJID)
	s := only(t, f.sent(), func(s sentStanza) bool { return s.to == op1 })
	for _, bad := range []string{"SECRET-HTML", "Visitor Name", "real@x", "delay", "addresses", "nick"} {
		if strings.Contains(s.raw, bad) {
			t.Errorf("relayed %q: %s", bad, s.raw)
		}
	}
	for _, good := range []string{">x</body>", "parent=\"p1\"", ">t-1</thread>", "<composing xmlns=\"http://jabber.org/protocol/chatstates\">",
		"<request xmlns=\"urn:xmpp:receipts\">", `id="abc"`} {
		if !strings.Contains(s.raw, good) {
			t.Errorf("missing %q in %s", good, s.raw)
		}
	}
	// Receipt back and a bare chat state.
	f.in(`<message xmlns='jabber:component:accept' from='%s' to='%s' id='r1'><received xmlns='urn:xmpp:receipts' id='abc'/></message>`, op1, alias)
	s = only(t, f.sent(), func(s sentStanza) bool { return s.to == visitor })
	if !strings.Contains(s.raw, `<received xmlns="urn:xmpp:receipts" id="abc">`) || s.body != nil {
		t.Errorf("receipt: %s", s.raw)
	}
}

// OTR whitespace tags live in trailing spaces and tabs; the body must come
// out byte-exact through decode → router → encode → decode.
func TestWhitespaceTaggedBodyByteExact(t *testing.T) {
	tag := " \t  \t\t\t\t \t \t \t    \t\t  \t\t"
	bodies := []string{
		"Hello" + tag,
		tag,
		"  leading and trailing  ",
		"line1\nline2\n\n",
		"tabs\t\t\t",
		"<markup> & \"quotes\" 'apos' ]]>",
		"ünïcödé ✓ ",
		"?OTR:AAMDx+/=.",
	}
	for _, body := range bodies {
		f := newFixture(t, Config{}, helpSkin("op1@example.org"))
		f.online(op1, "", 0)
		f.msg(visitor, skinJID, body)
		got := bodiesTo(f.sent(), op1)
		if len(got) != 2 || got[1] != body {
			t.Fatalf("to operator: got %q, want %q", got, body)
		}
		alias, _ := f.st.GuestByRealJID("help", visitor)
		f.msg(op1, "guest-"+alias.ID+"@"+testDomain, body)
		got = bodiesTo(f.sent(), visitor)
		if len(got) != 1 || got[0] != body {
			t.Fatalf("to visitor: got %q, want %q", got, body)
		}
	}
}

func TestQueueThenAssignInOrder(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org"))
	f.msg(visitor, skinJID, "one")
	out := f.sent()
	st := only(t, out, func(s sentStanza) bool { return s.to == visitor })
	if st.from != skinJID || st.status["state"] != "queued" || st.status["position"] != "1" || st.body != nil {
		t.Fatalf("queued status: %s", st.raw)
	}
	f.msg(visitor, skinJID, "two")
	if out := f.sent(); len(out) != 0 {
		t.Fatalf("second queued message sent %v", out)
	}
	f.msg(visitor2, skinJID, "other")
	st = only(t, f.sent(), func(s sentStanza) bool { return s.to == visitor2 })
	if st.status["position"] != "2" {
		t.Fatalf("second visitor position: %s", st.raw)
	}
	if f.c.Available("help") {
		t.Fatal("available with no operator")
	}
	f.online(op1, "", 0)
	out = f.sent()
	st = only(t, out, func(s sentStanza) bool { return s.to == visitor })
	if st.status["state"] != "assigned" || st.status["operator"] != "Alice" {
		t.Fatalf("assigned status: %s", st.raw)
	}
	if strings.Contains(st.raw, "op1") {
		t.Errorf("operator JID in status: %s", st.raw)
	}
	got := bodiesTo(out, op1)
	if len(got) < 3 || got[1] != "one" || got[2] != "two" {
		t.Fatalf("held messages out of order: %q", got)
	}
	if !strings.Contains(got[0], "Help desk") || !strings.Contains(got[3], "Help desk") || got[4] != "other" {
		t.Fatalf("second chat: %q", got)
	}
}

func TestPickOperator(t *testing.T) {
	f := newFixture(t, Config{MaxChatsPerOperator: 1}, helpSkin("op1@example.org", "op2@example.org"))
	f.online("op1@example.org/away", "away", 100)
	f.online("op1@example.org/low", "", 1)
	f.online("op1@example.org/high", "chat", 9)
	f.online(op2, "dnd", 50)
	f.sent()
	f.msg(visitor, skinJID, "a")
	if got := bodiesTo(f.sent(), "op1@example.org/high"); len(got) != 2 {
		t.Fatalf("want the highest-priority available resource, got %q", got)
	}
	// op1 is at max_chats_per_operator, op2 is dnd: the next visitor waits.
	f.msg(visitor2, skinJID, "b")
	st := only(t, f.sent(), func(s sentStanza) bool { return s.to == visitor2 })
	if st.status["state"] != "queued" {
		t.Fatalf("want queued, got %s", st.raw)
	}
	// op2 becomes available: it gets the queued chat.
	f.online(op2, "", 0)
	if got := bodiesTo(f.sent(), op2); len(got) != 2 || got[1] != "b" {
		t.Fatalf("op2 got %q", got)
	}
}

func TestOffDutyAndCommands(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.msg(op1, testDomain, "off")
	out := f.sent()
	if got := bodiesTo(out, op1); len(got) != 1 || !strings.Contains(got[0], "off duty") {
		t.Fatalf("off: %q", got)
	}
	if f.c.Available("help") {
		t.Fatal("off duty operator counts as available")
	}
	if o, err := f.st.Operator("op1@example.org"); err != nil || o.OnDuty {
		t.Fatalf("duty flag not stored: %+v %v", o, err)
	}
	f.msg(visitor, skinJID, "hi")
	if st := only(t, f.sent(), func(s sentStanza) bool { return s.to == visitor }); st.status["state"] != "queued" {
		t.Fatalf("want queued: %s", st.raw)
	}
	f.msg(op1, testDomain, "nick Bob")
	f.sent()
	f.msg(op1, testDomain, "on")
	out = f.sent()
	st := only(t, out, func(s sentStanza) bool { return s.to == visitor && s.status != nil })
	if st.status["operator"] != "Alice" { // skin name wins over nick
		t.Errorf("display name %q", st.status["operator"])
	}
	f.msg(op1, testDomain, "chats")
	if got := bodiesTo(f.sent(), op1); len(got) != 1 || !strings.Contains(got[0], "guest-") {
		t.Fatalf("chats: %q", got)
	}
	// A stranger may not use the bot.
	f.msg("stranger@example.org/x", testDomain, "status")
	if s := only(t, f.sent(), func(s sentStanza) bool { return true }); s.errCond != "forbidden" {
		t.Fatalf("stranger: %s", s.raw)
	}
}

func TestErrors(t *testing.T) {
	secret := "CANARY-body-never-echoed"
	cases := []struct {
		name  string
		cfg   Config
		setup func(f *fixture) (from, to string)
		body  string
		cond  string
	}{
		{"unknown skin", Config{}, func(f *fixture) (string, string) { return visitor, "nosuch@" + testDomain }, secret, "item-not-found"},
		{"unknown alias", Config{}, func(f *fixture) (string, string) {
			return op1, "guest-aaaaaaaaaaaaaaaa@" + testDomain
		}, secret, "item-not-found"},
		{"malformed alias", Config{}, func(f *fixture) (string, string) { return op1, "guest-x@" + testDomain }, secret, "item-not-found"},
		{"not the pinned operator", Config{}, func(f *fixture) (string, string) {
			f.online(op1, "", 0)
			f.msg(visitor, skinJID, "hi")
			f.sent()
			g, _ := f.st.GuestByRealJID("help", visitor)
			return "op1@example.org/other-resource", "guest-" + g.ID + "@" + testDomain
		}, secret, "forbidden"},
		{"stranger to an alias", Config{}, func(f *fixture) (string, string) {
			f.online(op1, "", 0)
			f.msg(visitor, skinJID, "hi")
			f.sent()
			g, _ := f.st.GuestByRealJID("help", visitor)
			return visitor2, "guest-" + g.ID + "@" + testDomain
		}, secret, "forbidden"},
		{"body too large", Config{MaxBodyBytes: 16}, func(f *fixture) (string, string) { return visitor, skinJID }, secret + strings.Repeat("x", 17), "policy-violation"},
		{"operator body too large", Config{MaxBodyBytes: 16}, func(f *fixture) (string, string) {
			f.online(op1, "", 0)
			f.msg(visitor, skinJID, "hi")
			f.sent()
			g, _ := f.st.GuestByRealJID("help", visitor)
			return op1, "guest-" + g.ID + "@" + testDomain
		}, secret + strings.Repeat("x", 17), "policy-violation"},
		{"too many guests", Config{GuestsPerSkin: 1}, func(f *fixture) (string, string) {
			f.msg(visitor, skinJID, "hi")
			f.sent()
			return visitor2, skinJID
		}, secret, "resource-constraint"},
		{"rate limit", Config{GuestMessagesPerMinute: 3}, func(f *fixture) (string, string) {
			f.online(op1, "", 0)
			for i := 0; i < 3; i++ {
				f.msg(visitor, skinJID, "hi")
			}
			f.sent()
			return visitor, skinJID
		}, secret, "policy-violation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, tc.cfg, helpSkin("op1@example.org"))
			from, to := tc.setup(f)
			f.msg(from, to, tc.body)
			out := f.sent()
			s := only(t, out, func(sentStanza) bool { return true })
			if s.name != "message" || s.typ != "error" || s.errCond != tc.cond || s.to != from || s.from != to || s.id != "m1" {
				t.Fatalf("want a %s message error to the sender, got %s", tc.cond, s.raw)
			}
			if strings.Contains(s.raw, "CANARY") || s.body != nil {
				t.Fatalf("error echoes the body: %s", s.raw)
			}
		})
	}
}

func TestRateLimitRefills(t *testing.T) {
	f := newFixture(t, Config{GuestMessagesPerMinute: 2}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "1")
	f.msg(visitor, skinJID, "2")
	f.msg(visitor, skinJID, "3")
	out := f.sent()
	if got := bodiesTo(out, op1); len(got) != 3 { // notice, 1, 2
		t.Fatalf("relayed %q", got)
	}
	f.now = f.now.Add(time.Minute)
	f.msg(visitor, skinJID, "4")
	if got := bodiesTo(f.sent(), op1); len(got) != 1 || got[0] != "4" {
		t.Fatalf("after a minute: %q", got)
	}
}

func TestIQs(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "hi")
	f.sent()
	g, _ := f.st.GuestByRealJID("help", visitor)
	alias := "guest-" + g.ID + "@" + testDomain
	cases := []struct {
		to, payload, wantType, want string
	}{
		{testDomain, `<query xmlns='http://jabber.org/protocol/disco#info'/>`, "result", `category="component"`},
		{testDomain, `<query xmlns='http://jabber.org/protocol/disco#info'/>`, "result", `var="urn:xmpp:ping"`},
		{skinJID, `<query xmlns='http://jabber.org/protocol/disco#info'/>`, "result", `name="Help desk"`},
		{alias, `<query xmlns='http://jabber.org/protocol/disco#info'/>`, "result", `var="http://jabber.org/protocol/chatstates"`},
		{"nosuch@" + testDomain, `<query xmlns='http://jabber.org/protocol/disco#info'/>`, "error", "item-not-found"},
		{testDomain, `<ping xmlns='urn:xmpp:ping'/>`, "result", `type="result"`},
		{alias, `<ping xmlns='urn:xmpp:ping'/>`, "result", `type="result"`},
		{testDomain, `<query xmlns='jabber:iq:version'/>`, "error", "service-unavailable"},
		{skinJID, `<vCard xmlns='vcard-temp'/>`, "error", "service-unavailable"},
	}
	for _, tc := range cases {
		f.in(`<iq xmlns='jabber:component:accept' type='get' id='q1' from='%s' to='%s'>%s</iq>`, op1, tc.to, tc.payload)
		s := only(t, f.sent(), func(sentStanza) bool { return true })
		if s.name != "iq" || s.typ != tc.wantType || s.id != "q1" || s.to != op1 || s.from != tc.to || !strings.Contains(s.raw, tc.want) {
			t.Errorf("iq to %s %s: %s", tc.to, tc.payload, s.raw)
		}
	}
	f.in(`<iq xmlns='jabber:component:accept' type='set' id='q2' from='%s' to='%s'><query xmlns='jabber:iq:roster'/></iq>`, op1, testDomain)
	if s := only(t, f.sent(), func(sentStanza) bool { return true }); s.errCond != "service-unavailable" {
		t.Errorf("iq set: %s", s.raw)
	}
	f.in(`<iq xmlns='jabber:component:accept' type='result' id='q3' from='%s' to='%s'/>`, op1, testDomain)
	if out := f.sent(); len(out) != 0 {
		t.Errorf("answered a result: %v", out)
	}
}

func TestPresenceSubscriptions(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org"))
	// On connect: subscribe, own presence and probe to each operator.
	f.c.r.handle(evDisconnected{})
	f.c.r.subbed = map[string]map[string]bool{}
	f.c.r.handle(evConnected{out: f.cap})
	kinds := map[string]bool{}
	for _, s := range f.sent() {
		if s.name == "presence" && s.from == skinJID && s.to == "op1@example.org" {
			kinds[s.typ] = true
		}
	}
	for _, k := range []string{"subscribe", "probe", ""} {
		if !kinds[k] {
			t.Errorf("no presence type %q to the operator on connect: %v", k, kinds)
		}
	}
	f.in(`<presence xmlns='jabber:component:accept' from='op1@example.org/x' to='%s' type='subscribe'/>`, skinJID)
	out := f.sent()
	if s := out[0]; s.typ != "subscribed" || s.to != "op1@example.org" || s.from != skinJID {
		t.Errorf("subscribe answer: %s", s.raw)
	}
	// SkinsChanged subscribes a new operator once.
	if _, err := f.st.UpdateSkin("help", func(sk *store.Skin) error {
		sk.Operators = append(sk.Operators, "op2@example.org")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f.c.r.handle(evSkinsChanged{})
	n := 0
	for _, s := range f.sent() {
		if s.typ == "subscribe" {
			n++
			if s.to != "op2@example.org" {
				t.Errorf("resubscribed %s", s.to)
			}
		}
	}
	if n != 1 {
		t.Errorf("want one new subscription, got %d", n)
	}
}

func TestOperatorLostRequeues(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org", "op2@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "hi")
	f.sent()
	f.offline(op1)
	st := only(t, f.sent(), func(s sentStanza) bool { return s.to == visitor })
	if st.status["state"] != "queued" {
		t.Fatalf("want queued after the operator left: %s", st.raw)
	}
	f.online(op2, "", 0)
	out := f.sent()
	if st := only(t, out, func(s sentStanza) bool { return s.to == visitor }); st.status["state"] != "assigned" {
		t.Fatalf("want assigned: %s", st.raw)
	}
	f.msg(visitor, skinJID, "still there?")
	if got := bodiesTo(f.sent(), op2); len(got) != 2 || got[1] != "still there?" {
		t.Fatalf("op2 got %q", got)
	}
	// The old operator is refused now.
	g, _ := f.st.GuestByRealJID("help", visitor)
	f.msg(op1, "guest-"+g.ID+"@"+testDomain, "me again")
	if s := only(t, f.sent(), func(sentStanza) bool { return true }); s.errCond != "forbidden" {
		t.Fatalf("old operator: %s", s.raw)
	}
}

func TestIdleExpiryAndRevival(t *testing.T) {
	f := newFixture(t, Config{GuestIdleTimeout: time.Minute}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "hi")
	f.sent()
	g, _ := f.st.GuestByRealJID("help", visitor)
	f.now = f.now.Add(59 * time.Second)
	f.c.r.expire(f.now)
	if len(f.c.r.chats) != 1 {
		t.Fatal("expired too early")
	}
	f.now = f.now.Add(2 * time.Second)
	f.c.r.expire(f.now)
	if len(f.c.r.chats) != 0 || f.c.r.ops["op1@example.org"].chats != 0 {
		t.Fatal("idle guest still in memory")
	}
	rec, err := f.st.Guest(g.ID)
	if err != nil || rec.State != stateIdle {
		t.Fatalf("record after expiry: %+v %v", rec, err)
	}
	// The visitor comes back: same alias, same operator, a new notice.
	f.msg(visitor, skinJID, "back")
	out := f.sent()
	got := bodiesTo(out, op1)
	if len(got) != 2 || got[1] != "back" || out[len(out)-1].from != "guest-"+g.ID+"@"+testDomain {
		t.Fatalf("revival: %v", out)
	}
}

func TestRestartKeepsAliasAndPin(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org", "op2@example.org"))
	f.online(op1, "", 0)
	f.online(op2, "", 0)
	f.msg(visitor, skinJID, "hi")
	first := bodiesTo(f.sent(), op1)
	g, _ := f.st.GuestByRealJID("help", visitor)
	// A second component on the same store, as after a restart.
	c2, err := New(f.c.cfg, f.st)
	if err != nil {
		t.Fatal(err)
	}
	c2.r.loadSkins()
	cap2 := &capture{}
	c2.r.handle(evConnected{out: cap2})
	cap2.take()
	f.c = c2
	f.cap = cap2
	f.online(op2, "", 0)
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "after restart")
	out := f.sent()
	got := bodiesTo(out, op1)
	if len(first) != 2 || len(got) == 0 || got[len(got)-1] != "after restart" || out[len(out)-1].from != "guest-"+g.ID+"@"+testDomain {
		t.Fatalf("after restart: %v", out)
	}
	// The operator replies before its presence could have arrived: still
	// allowed, it is the pinned resource.
	f.msg(op1, "guest-"+g.ID+"@"+testDomain, "welcome back")
	if got := bodiesTo(f.sent(), visitor); len(got) != 1 {
		t.Fatalf("operator reply after restart: %q", got)
	}
}

func TestVisitorEnds(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "hi")
	f.sent()
	f.in(`<message xmlns='jabber:component:accept' from='%s' to='%s' type='chat'><end xmlns='urn:otrdesk:0'/></message>`, visitor, skinJID)
	out := f.sent()
	if got := bodiesTo(out, op1); len(got) != 1 || !strings.Contains(got[0], "ended") {
		t.Fatalf("operator not told: %v", out)
	}
	if st := only(t, out, func(s sentStanza) bool { return s.to == visitor }); st.status["state"] != "ended" {
		t.Fatalf("visitor status: %s", st.raw)
	}
	if f.c.r.ops["op1@example.org"].chats != 0 || len(f.c.r.chats) != 0 {
		t.Fatal("chat not released")
	}
}

func TestReadElemBudget(t *testing.T) {
	big := strings.Repeat("a", 1000)
	d := xml.NewDecoder(strings.NewReader("<message><body>" + big + "</body><x><y><z/></y></x></message><next/>"))
	tok, _ := d.Token()
	el, err := readElem(d, tok.(xml.StartElement), 100)
	if err != nil || !el.truncated {
		t.Fatalf("budget: %v truncated=%v", err, el.truncated)
	}
	tok, err = d.Token()
	if se, ok := tok.(xml.StartElement); err != nil || !ok || se.Name.Local != "next" {
		t.Fatalf("stream not left at the next element: %v %v", tok, err)
	}
	// Deep nesting is consumed, not kept.
	deep := strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100)
	d = xml.NewDecoder(strings.NewReader("<message>" + deep + "</message>"))
	tok, _ = d.Token()
	el, err = readElem(d, tok.(xml.StartElement), 1<<20)
	if err != nil || !el.truncated {
		t.Fatalf("deep: %v %v", err, el)
	}
	// A stream that ends mid-stanza is an error, not a panic.
	d = xml.NewDecoder(strings.NewReader("<message><body>x"))
	tok, _ = d.Token()
	if _, err := readElem(d, tok.(xml.StartElement), 1<<20); err == nil {
		t.Fatal("truncated stream accepted")
	}
}

func FuzzStanza(f *testing.F) {
	for _, s := range []string{
		`<message from='a@b/c' to='help@chat.example.org' type='chat'><body>hi</body></message>`,
		`<message from='op1@example.org/pidgin' to='guest-aaaaaaaaaaaaaaaa@chat.example.org'><body>x</body></message>`,
		`<presence from='op1@example.org/pidgin' to='help@chat.example.org'><show>chat</show><priority>x</priority></presence>`,
		`<iq type='get' id='1' from='a@b/c' to='chat.example.org'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
		`<message from='op1@example.org/pidgin' to='chat.example.org'><body>nick  </body></message>`,
		`<message from='@@' to='help@chat.example.org'/>`,
		`<message from='v@guest.example.org/w' to='help@chat.example.org'><body>?OTR:AAMDERERERERERER.</body></message>`,
		`<message from='v@guest.example.org/w' to='help@chat.example.org'><body>?OTR|11111111|aaaaaaaa,00001,99999,x,</body></message>`,
		`<message from='v@guest.example.org/w' to='help@chat.example.org'><end xmlns='urn:otrdesk:0'/></message>`,
		`<iq type='set' id='2' from='op1@example.org/pidgin' to='chat.example.org'><command xmlns='http://jabber.org/protocol/commands' node='transfer'><x xmlns='jabber:x:data' type='submit'><field var='guest'><value>guest-x</value></field></x></command></iq>`,
		`<message from='op1@example.org/pidgin' to='chat.example.org'><body>block guest-aaaaaaaaaaaaaaaa 99999h</body></message>`,
		`<presence from='op1@example.org' to='help@chat.example.org' type='unavailable'/>`,
		`<message from='v@guest.example.org/w' to='help@chat.example.org' type='chat'><resume xmlns='urn:otrdesk:0' secret='AAAAAAAAAAAAAAAAAAAAAAAA'/></message>`,
		`<message from='v@guest.example.org/w' to='help@chat.example.org' type='chat'><resume xmlns='urn:otrdesk:0'/></message>`,
		`<message from='v@guest.example.org/w' to='help@chat.example.org'><body>x</body><pow xmlns='urn:otrdesk:0' challenge='AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' nonce='1'/></message>`,
	} {
		f.Add(s)
	}
	st, err := store.Open(filepath.Join(f.TempDir(), "otrdesk.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateSkin(helpSkin("op1@example.org")); err != nil {
		f.Fatal(err)
	}
	c, err := New(Config{Domain: testDomain, Server: "x:1", Secret: "s", ProofOfWork: true, ProofOfWorkBits: MinProofOfWorkBits}, st)
	if err != nil {
		f.Fatal(err)
	}
	c.r.loadSkins()
	c.r.handle(evConnected{out: &capture{}})
	f.Fuzz(func(t *testing.T, s string) {
		d := xml.NewDecoder(strings.NewReader(s))
		d.DefaultSpace = nsAccept
		tok, err := d.Token()
		if err != nil {
			return
		}
		start, ok := tok.(xml.StartElement)
		if !ok {
			return
		}
		el, err := readElem(d, start, 4096)
		if err != nil {
			return
		}
		c.r.handle(evStanza{el: el})
		if c.r.failures != 0 {
			t.Fatalf("handling %q panicked", s)
		}
	})
}

func TestAdhocCommands(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.in(`<iq xmlns='jabber:component:accept' type='get' id='d1' from='%s' to='%s'><query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/></iq>`, op1, testDomain)
	s := only(t, f.sent(), func(sentStanza) bool { return true })
	for _, node := range []string{`node="on"`, `node="transfer"`, `node="block"`} {
		if !strings.Contains(s.raw, node) {
			t.Errorf("command list without %s: %s", node, s.raw)
		}
	}
	// No arguments: completes at once.
	f.in(`<iq xmlns='jabber:component:accept' type='set' id='c1' from='%s' to='%s'><command xmlns='http://jabber.org/protocol/commands' node='off' action='execute'/></iq>`, op1, testDomain)
	s = only(t, f.sent(), func(sentStanza) bool { return true })
	if s.typ != "result" || !strings.Contains(s.raw, `status="completed"`) || !strings.Contains(s.raw, "off duty") {
		t.Fatalf("off: %s", s.raw)
	}
	if f.c.Available("help") {
		t.Fatal("ad-hoc off did not take effect")
	}
	// With arguments: a form, then the submitted form.
	f.in(`<iq xmlns='jabber:component:accept' type='set' id='c2' from='%s' to='%s'><command xmlns='http://jabber.org/protocol/commands' node='nick' action='execute'/></iq>`, op1, testDomain)
	s = only(t, f.sent(), func(sentStanza) bool { return true })
	if !strings.Contains(s.raw, `status="executing"`) || !strings.Contains(s.raw, `var="name"`) {
		t.Fatalf("nick form: %s", s.raw)
	}
	f.in(`<iq xmlns='jabber:component:accept' type='set' id='c3' from='%s' to='%s'><command xmlns='http://jabber.org/protocol/commands' node='nick' sessionid='abc'><x xmlns='jabber:x:data' type='submit'><field var='name'><value>Dr Who</value></field></x></command></iq>`, op1, testDomain)
	s = only(t, f.sent(), func(sentStanza) bool { return true })
	if !strings.Contains(s.raw, `status="completed"`) || !strings.Contains(s.raw, "Dr Who") {
		t.Fatalf("nick submit: %s", s.raw)
	}
	if o, _ := f.st.Operator("op1@example.org"); o.Nick != "Dr Who" {
		t.Fatalf("nick not stored: %+v", o)
	}
	// Strangers are refused; unknown nodes are not found.
	f.in(`<iq xmlns='jabber:component:accept' type='set' id='c4' from='x@example.org/y' to='%s'><command xmlns='http://jabber.org/protocol/commands' node='on'/></iq>`, testDomain)
	if s := only(t, f.sent(), func(sentStanza) bool { return true }); s.errCond != "forbidden" {
		t.Fatalf("stranger: %s", s.raw)
	}
	f.in(`<iq xmlns='jabber:component:accept' type='set' id='c5' from='%s' to='%s'><command xmlns='http://jabber.org/protocol/commands' node='nosuch'/></iq>`, op1, testDomain)
	if s := only(t, f.sent(), func(sentStanza) bool { return true }); s.errCond != "item-not-found" {
		t.Fatalf("unknown node: %s", s.raw)
	}
}

// After a reconnect, silence is offline: a chat whose operator never
// answers the probes goes back to the queue; an explicit "unavailable"
// answer does that at once.
func TestReconnectSilenceRequeues(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "hi")
	f.msg(visitor2, skinJID, "hi")
	f.sent()
	f.c.r.handle(evDisconnected{})
	f.c.r.handle(evConnected{out: f.cap})
	f.sent()
	// The operator answers the probes with nothing: at the grace's end both
	// chats are queued.
	f.now = f.now.Add(probeGrace - time.Second)
	f.c.r.expire(f.now)
	if out := f.sent(); len(out) != 0 {
		t.Fatalf("swept before the grace ended: %v", out)
	}
	f.now = f.now.Add(2 * time.Second)
	f.c.r.expire(f.now)
	out := f.sent()
	for _, v := range []string{visitor, visitor2} {
		if st := only(t, out, func(s sentStanza) bool { return s.to == v }); st.status["state"] != "queued" {
			t.Fatalf("%s: %s", v, st.raw)
		}
	}
	f.online(op1, "", 0)
	if got := only(t, f.sent(), func(s sentStanza) bool { return s.to == visitor }); got.status["state"] != "assigned" {
		t.Fatalf("not reassigned: %s", got.raw)
	}
	// A bare "unavailable" (probe answer) re-queues at once.
	f.c.r.handle(evDisconnected{})
	f.c.r.handle(evConnected{out: f.cap})
	f.sent()
	f.in(`<presence xmlns='jabber:component:accept' from='op1@example.org' to='%s' type='unavailable'/>`, skinJID)
	if st := only(t, f.sent(), func(s sentStanza) bool { return s.to == visitor }); st.status["state"] != "queued" {
		t.Fatalf("bare unavailable: %s", st.raw)
	}
}

func TestHeldMessagesBounded(t *testing.T) {
	f := newFixture(t, Config{GuestMessagesPerMinute: 1000, MaxBodyBytes: 100}, helpSkin("op1@example.org"))
	for i := 0; i < heldPerGuest; i++ {
		f.msg(visitor, skinJID, fmt.Sprint("m", i))
	}
	f.sent()
	f.msg(visitor, skinJID, "one too many")
	if s := only(t, f.sent(), func(sentStanza) bool { return true }); s.errCond != "resource-constraint" {
		t.Fatalf("33rd held message: %s", s.raw)
	}
	// Bytes are bounded too: 2 × max_body_bytes per visitor.
	f.msg(visitor2, skinJID, strings.Repeat("x", 100))
	f.msg(visitor2, skinJID, strings.Repeat("y", 100))
	f.sent()
	f.msg(visitor2, skinJID, "z")
	if s := only(t, f.sent(), func(sentStanza) bool { return true }); s.errCond != "resource-constraint" {
		t.Fatalf("held bytes: %s", s.raw)
	}
	// All held messages arrive, in order, once an operator comes.
	f.online(op1, "", 0)
	got := bodiesTo(f.sent(), op1)
	if len(got) != heldPerGuest+1+2+1 || got[1] != "m0" || got[heldPerGuest] != fmt.Sprint("m", heldPerGuest-1) {
		t.Fatalf("delivered %d: %q", len(got), got)
	}
}

func TestProbeAlias(t *testing.T) {
	f := newFixture(t, Config{GuestIdleTimeout: time.Minute}, helpSkin("op1@example.org", "op2@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "hi")
	f.sent()
	alias := aliasOf(t, f, visitor)
	probe := func(from string) []sentStanza {
		f.in(`<presence xmlns='jabber:component:accept' from='%s' to='%s' type='probe'/>`, from, alias)
		return f.sent()
	}
	if out := probe(op1); len(out) != 1 || out[0].typ != "" || out[0].from != alias {
		t.Fatalf("pinned operator's probe: %v", out)
	}
	if out := probe(op2); len(out) != 0 {
		t.Fatalf("another operator learned about the visitor: %v", out)
	}
	f.now = f.now.Add(2 * time.Minute)
	f.c.r.expire(f.now)
	f.sent()
	if out := probe(op1); len(out) != 1 || out[0].typ != "unavailable" {
		t.Fatalf("probe after the visitor left: %v", out)
	}
}

// checkInvariants verifies the router's bookkeeping against its guests.
func checkInvariants(t testing.TB, r *router) {
	t.Helper()
	chats := map[string]int{}
	queued := map[string]int{}
	perSkin := map[string]int{}
	assigned, inQueue := 0, 0
	for id, g := range r.chats {
		if g.rec.ID != id || r.byReal[g.rec.Skin+"\x00"+g.rec.RealJID] != g {
			t.Errorf("guest %s badly indexed", id)
		}
		perSkin[g.rec.Skin]++
		switch g.rec.State {
		case stateAssigned:
			assigned++
			chats[g.opBare]++
			if g.opBare != bareOf(g.rec.Operator) {
				t.Errorf("guest %s: opBare %q, operator %q", id, g.opBare, g.rec.Operator)
			}
		case stateQueued:
			inQueue++
			queued[g.qskin()]++
		default:
			t.Errorf("active guest %s in state %q", id, g.rec.State)
		}
	}
	if len(r.byReal) != len(r.chats) {
		t.Errorf("%d guests, %d in the real-JID index", len(r.chats), len(r.byReal))
	}
	for bare, o := range r.ops {
		if o.chats != chats[bare] {
			t.Errorf("operator %s counts %d chats, has %d", bare, o.chats, chats[bare])
		}
	}
	for skin, q := range r.queues {
		if len(q) != queued[skin] {
			t.Errorf("queue %s holds %d, %d guests are queued there", skin, len(q), queued[skin])
		}
		if v := metricValue(r.m.queueG.WithLabelValues(skin)); int(v) != len(q) {
			t.Errorf("queue gauge %s = %v, want %d", skin, v, len(q))
		}
	}
	for skin, n := range r.count {
		if n != perSkin[skin] {
			t.Errorf("skin %s counts %d guests, has %d", skin, n, perSkin[skin])
		}
	}
	if v := metricValue(r.m.chatsG.WithLabelValues(stateAssigned)); int(v) != assigned {
		t.Errorf("assigned gauge %v, want %d", v, assigned)
	}
	if v := metricValue(r.m.chatsG.WithLabelValues(stateQueued)); int(v) != inQueue {
		t.Errorf("queued gauge %v, want %d", v, inQueue)
	}
	otrSum := 0.0
	for _, st := range []string{otrPlaintext, otrAKE, otrEncrypted, otrFinished} {
		otrSum += metricValue(r.m.otrG.WithLabelValues(st))
	}
	if int(otrSum) != len(r.chats) {
		t.Errorf("OTR state gauges sum to %v, %d guests", otrSum, len(r.chats))
	}
}

// A chat state or receipt before any body opens no chat: no alias, no
// operator assigned, no notice (the widget reported composing opening one).
func TestChatStateAloneOpensNothing(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.sent()
	for _, child := range []string{
		`<composing xmlns='http://jabber.org/protocol/chatstates'/>`,
		`<request xmlns='urn:xmpp:receipts'/>`,
		`<thread>t-1</thread>`,
	} {
		f.in(`<message xmlns='jabber:component:accept' from='%s' to='%s' type='chat'>%s</message>`, visitor, skinJID, child)
	}
	if out := f.sent(); len(out) != 0 {
		t.Fatalf("bodiless messages produced stanzas: %v", out)
	}
	if len(f.c.r.chats) != 0 || f.c.r.ops["op1@example.org"].chats != 0 {
		t.Fatal("a bodiless message opened a chat")
	}
	if _, err := f.st.GuestByRealJID("help", visitor); err == nil {
		t.Fatal("a bodiless message created a guest record")
	}
	// The first body opens the chat as usual.
	f.msg(visitor, skinJID, "hello")
	if got := bodiesTo(f.sent(), op1); len(got) != 2 || got[1] != "hello" {
		t.Fatalf("first body: %v", got)
	}
}

// A block outlives a restart of otrdesk, and ends on time after one.
func TestBlockSurvivesRestart(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "spam")
	alias := aliasOf(t, f, visitor)
	f.sent()
	f.msg(op1, testDomain, "block "+strings.TrimSuffix(alias, "@"+testDomain)+" 2h")
	if got := bodiesTo(f.sent(), op1); len(got) == 0 || !strings.HasPrefix(got[len(got)-1], "Blocked") {
		t.Fatalf("block reply: %q", got)
	}
	if bs, err := f.st.Blocks(); err != nil || len(bs) != 1 || bs[0].RealJID != visitor {
		t.Fatalf("block not stored: %+v %v", bs, err)
	}

	restart := func() {
		c2, err := New(f.c.cfg, f.st)
		if err != nil {
			t.Fatal(err)
		}
		c2.r.now = func() time.Time { return f.now }
		if err := c2.r.loadSkins(); err != nil {
			t.Fatal(err)
		}
		if err := c2.r.loadBlocks(); err != nil {
			t.Fatal(err)
		}
		f.cap = &capture{}
		c2.r.handle(evConnected{out: f.cap})
		f.cap.take()
		f.c = c2
		f.online(op1, "", 0)
		f.sent()
	}
	restart()
	f.msg(visitor, skinJID, "let me in")
	if s := only(t, f.sent(), func(sentStanza) bool { return true }); s.errCond != "forbidden" {
		t.Fatalf("blocked visitor after a restart: %s", s.raw)
	}

	f.now = f.now.Add(3 * time.Hour)
	restart()
	if bs, _ := f.st.Blocks(); len(bs) != 0 {
		t.Fatalf("an ended block stayed in the store: %+v", bs)
	}
	f.msg(visitor, skinJID, "back")
	if got := bodiesTo(f.sent(), op1); len(got) == 0 || got[len(got)-1] != "back" {
		t.Fatalf("block did not end after the restart: %q", got)
	}
}

// restartFixture replaces f's component by a second one on the same store,
// as after a restart, on f's clock; no operator presence is known yet.
func restartFixture(t *testing.T, f *fixture) {
	t.Helper()
	c2, err := New(f.c.cfg, f.st)
	if err != nil {
		t.Fatal(err)
	}
	c2.r.now = func() time.Time { return f.now }
	if err := c2.r.loadSkins(); err != nil {
		t.Fatal(err)
	}
	cap2 := &capture{}
	c2.r.handle(evConnected{out: cap2})
	cap2.take()
	f.c, f.cap = c2, cap2
	t.Cleanup(func() { checkInvariants(t, f.c.r) })
}

// After a restart, the first operator to answer its probe must not take a
// chat pinned to another one whose answer is still on its way; what the
// visitor writes meanwhile waits for the pinned resource.
func TestRestartPinHoldsThroughProbeGrace(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org", "op2@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "hi")
	if got := bodiesTo(f.sent(), op1); len(got) != 2 { // notice, hi
		t.Fatalf("before the restart: %q", got)
	}
	f.online(op2, "", 0)
	f.sent()
	g, _ := f.st.GuestByRealJID("help", visitor)
	alias := "guest-" + g.ID + "@" + testDomain

	restartFixture(t, f)
	f.online(op2, "", 0) // op2 answers its probe first
	f.msg(visitor, skinJID, "during the grace")
	f.msg(visitor, skinJID, "and another")
	out := f.sent()
	if got := bodiesTo(out, op2); len(got) != 0 {
		t.Fatalf("op2 got a chat pinned to op1: %q", got)
	}
	if got := bodiesTo(out, op1); len(got) != 0 {
		t.Fatalf("sent to op1 before its presence was known: %q", got)
	}
	for _, s := range out {
		if s.to == visitor && strings.Contains(s.raw, "state=") {
			t.Fatalf("the visitor was told of a change: %s", s.raw)
		}
	}
	f.online(op1, "", 0) // op1's answer arrives
	out = f.sent()
	got := bodiesTo(out, op1)
	if len(got) < 2 || got[len(got)-2] != "during the grace" || got[len(got)-1] != "and another" {
		t.Fatalf("op1 after its presence: %q", got)
	}
	for _, s := range out {
		if s.to == op1 && s.body != nil && s.from != alias {
			t.Fatalf("delivered from %s, not the alias", s.from)
		}
	}
	f.msg(visitor, skinJID, "now direct")
	if got := bodiesTo(f.sent(), op1); len(got) != 1 || got[0] != "now direct" {
		t.Fatalf("after the release: %q", got)
	}
}

// A pinned resource that stays silent through the grace loses the chat to
// the queue, and the next operator gets what the visitor wrote in
// plaintext.
func TestRestartPinSilentOperatorRequeues(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org", "op2@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "hi")
	f.sent()
	restartFixture(t, f)
	f.online(op2, "", 0)
	f.msg(visitor, skinJID, "anyone there?")
	if got := bodiesTo(f.sent(), op2); len(got) != 0 {
		t.Fatalf("op2 got the chat inside the grace: %q", got)
	}
	f.now = f.now.Add(probeGrace)
	f.c.r.expire(f.now)
	got := bodiesTo(f.sent(), op2)
	if len(got) == 0 || got[len(got)-1] != "anyone there?" {
		t.Fatalf("after the grace, op2 got %q", got)
	}
}
