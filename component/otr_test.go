package component

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/store"
)

// encoded builds a version 3 OTR encoded message with the given type and
// instance tags (the payload after the header is filler: a relay only reads
// the header).
func encoded(typ otr.MessageType, sender, receiver uint32) string {
	b := []byte{0, 3, byte(typ)}
	b = binary.BigEndian.AppendUint32(b, sender)
	b = binary.BigEndian.AppendUint32(b, receiver)
	b = append(b, []byte("filler bytes of the OTR message body")...)
	return otr.EncodeMessage(b)
}

const (
	visitorTag = 0x11111111
	tagA       = 0xaaaaaaaa
	tagB       = 0xbbbbbbbb
	opA        = "op1@example.org/a"
	opB        = "op1@example.org/b"
)

func aliasOf(t testing.TB, f *fixture, real string) string {
	t.Helper()
	g, err := f.st.GuestByRealJID("help", real)
	if err != nil {
		t.Fatal(err)
	}
	return "guest-" + g.ID + "@" + testDomain
}

func TestOTRStanzasMarkedPrivate(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	commit := encoded(otr.DHCommit, visitorTag, 0)
	f.msg(visitor, skinJID, commit)
	out := f.sent()
	relayed := out[len(out)-1]
	if relayed.body == nil || *relayed.body != commit {
		t.Fatalf("DH-Commit not relayed: %v", out)
	}
	for _, want := range []string{`<private xmlns="urn:xmpp:carbons:2">`, `<no-copy xmlns="urn:xmpp:hints">`, `<no-store xmlns="urn:xmpp:hints">`} {
		if !strings.Contains(relayed.raw, want) {
			t.Errorf("OTR stanza without %s: %s", want, relayed.raw)
		}
	}
	// Plaintext is relayed without hints; a query gets them.
	f.msg(visitor, skinJID, "plain words")
	if s := f.sent()[0]; strings.Contains(s.raw, "no-store") {
		t.Errorf("plaintext marked: %s", s.raw)
	}
	alias := aliasOf(t, f, visitor)
	f.msg(op1, alias, "?OTRv23?")
	if s := f.sent()[0]; !strings.Contains(s.raw, "no-store") || s.to != visitor {
		t.Errorf("query not marked: %s", s.raw)
	}
}

func TestOTRStateFromTheWire(t *testing.T) {
	reg := newTestRegistry()
	f := newFixture(t, Config{Registerer: reg}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "hello")
	f.sent()
	alias := aliasOf(t, f, visitor)
	g := f.c.r.byReal["help\x00"+visitor]
	steps := []struct {
		fromVisitor bool
		body        string
		want        string
	}{
		{true, encoded(otr.DHCommit, visitorTag, 0), otrAKE},
		{false, encoded(otr.DHKey, tagA, visitorTag), otrAKE},
		{true, encoded(otr.RevealSig, visitorTag, tagA), otrAKE},
		{false, encoded(otr.Sig, tagA, visitorTag), otrEncrypted},
		{true, encoded(otr.Data, visitorTag, tagA), otrEncrypted},
		{false, "plain again", otrFinished},
	}
	for i, st := range steps {
		if st.fromVisitor {
			f.msg(visitor, skinJID, st.body)
		} else {
			f.msg(op1, alias, st.body)
		}
		f.sent()
		if g.otr != st.want {
			t.Fatalf("step %d: state %q, want %q", i, g.otr, st.want)
		}
	}
	if n := metricValue(f.c.m.otrG.WithLabelValues(otrFinished)); n != 1 {
		t.Errorf("finished gauge %v", n)
	}
	if n := metricValue(f.c.m.akeSeconds); n != 1 {
		t.Errorf("AKE histogram has %v samples", n)
	}
}

func TestStalledAKERestarts(t *testing.T) {
	f := newFixture(t, Config{AKEStallTimeout: 10 * time.Second}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, encoded(otr.DHCommit, visitorTag, 0))
	alias := aliasOf(t, f, visitor)
	f.msg(op1, alias, encoded(otr.DHKey, tagA, visitorTag))
	f.msg(visitor, skinJID, encoded(otr.RevealSig, visitorTag, tagA))
	f.sent()
	f.now = f.now.Add(9 * time.Second)
	f.c.r.expire(f.now)
	if out := f.sent(); len(out) != 0 {
		t.Fatalf("restarted too early: %v", out)
	}
	f.now = f.now.Add(2 * time.Second)
	f.c.r.expire(f.now)
	s := only(t, f.sent(), func(sentStanza) bool { return true })
	if s.to != visitor || s.from != skinJID || s.body == nil || otr.Classify([]byte(*s.body)).Kind != otr.KindQuery {
		t.Fatalf("want a query to the visitor, got %s", s.raw)
	}
	if n := metricValue(f.c.m.stalls); n != 1 {
		t.Errorf("stalls counted %v", n)
	}
	// Once restarted, no second query for the same stall.
	f.now = f.now.Add(time.Minute)
	f.c.r.expire(f.now)
	for _, s := range f.sent() {
		if s.body != nil {
			t.Fatalf("second restart: %s", s.raw)
		}
	}
}

func TestInstanceTagRouting(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org"))
	f.online(opA, "", 5)
	f.online(opB, "", 1)
	f.msg(visitor, skinJID, "hello")
	if got := bodiesTo(f.sent(), opA); len(got) != 2 {
		t.Fatalf("first chat not with the higher priority resource: %q", got)
	}
	alias := aliasOf(t, f, visitor)
	// A talks OTR, so its tag is learned.
	f.msg(opA, alias, encoded(otr.DHCommit, tagA, 0))
	f.sent()
	// B plaintext: forbidden, nothing relayed.
	f.msg(opB, alias, "let me take it")
	if s := only(t, f.sent(), func(sentStanza) bool { return true }); s.errCond != "forbidden" {
		t.Fatalf("B plaintext: %s", s.raw)
	}
	// B starts a new AKE: the chat moves to B.
	commitB := encoded(otr.DHCommit, tagB, 0)
	f.msg(opB, alias, commitB)
	if got := bodiesTo(f.sent(), visitor); len(got) != 1 || got[0] != commitB {
		t.Fatalf("B's DH-Commit not relayed: %q", got)
	}
	if g, _ := f.st.Guest(strings.TrimSuffix(strings.TrimPrefix(alias, "guest-"), "@"+testDomain)); g.Operator != opB {
		t.Fatalf("pin not moved to B: %q", g.Operator)
	}
	// The visitor answers B.
	key := encoded(otr.DHKey, visitorTag, tagB)
	f.msg(visitor, skinJID, key)
	if got := bodiesTo(f.sent(), opB); len(got) != 1 || got[0] != key {
		t.Fatalf("DH-Key not routed to B: %q", got)
	}
	// A message for A's instance goes to A, which is still online.
	data := encoded(otr.Data, visitorTag, tagA)
	f.msg(visitor, skinJID, data)
	if got := bodiesTo(f.sent(), opA); len(got) != 1 || got[0] != data {
		t.Fatalf("message for A's tag not routed to A: %q", got)
	}
	// A tag nobody owns changes nothing.
	data = encoded(otr.Data, visitorTag, 0x99999999)
	f.msg(visitor, skinJID, data)
	if got := bodiesTo(f.sent(), opA); len(got) != 1 {
		t.Fatalf("unknown tag: %q", got)
	}
	if f.c.r.ops["op1@example.org"].chats != 1 {
		t.Fatalf("re-pinning changed the chat count: %d", f.c.r.ops["op1@example.org"].chats)
	}
}

func TestRequirePolicy(t *testing.T) {
	sk := helpSkin("op1@example.org")
	sk.Policy = store.PolicyRequire
	f := newFixture(t, Config{}, sk)
	f.online(op1, "", 0)
	tagged := "hi" + otr.WhitespaceTag(otr.OfferV2|otr.OfferV3)
	for _, body := range []string{"CANARY plain", "CANARY" + tagged, "?OTR CANARY dressed as OTR"} {
		f.msg(visitor, skinJID, body)
		out := f.sent()
		for _, s := range out {
			if s.to == op1 && s.body != nil && strings.Contains(*s.body, "CANARY") {
				t.Fatalf("plaintext relayed under require: %s", s.raw)
			}
		}
		got := bodiesTo(out, visitor)
		if len(got) != 2 || !strings.Contains(got[0], "requires encryption") || otr.Classify([]byte(got[1])).Kind != otr.KindQuery {
			t.Fatalf("visitor not told and queried: %q", got)
		}
	}
	commit := encoded(otr.DHCommit, visitorTag, 0)
	f.msg(visitor, skinJID, commit)
	got := bodiesTo(f.sent(), op1)
	if len(got) != 2 || got[1] != commit {
		t.Fatalf("DH-Commit not relayed under require: %q", got)
	}
	alias := aliasOf(t, f, visitor)
	f.msg(op1, alias, "CANARY from the operator")
	out := f.sent()
	if len(bodiesTo(out, visitor)) != 0 {
		t.Fatalf("operator plaintext relayed: %v", out)
	}
	got = bodiesTo(out, op1)
	if len(got) != 2 || !strings.Contains(got[0], "requires encryption") || otr.Classify([]byte(got[1])).Kind != otr.KindQuery || out[0].from != alias {
		t.Fatalf("operator not told and queried: %v", out)
	}
}

func TestFragmentsBounded(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	ok := "?OTR|11111111|aaaaaaaa,00001,00002,?OTR:AAMD,"
	f.msg(visitor, skinJID, ok)
	if got := bodiesTo(f.sent(), op1); len(got) != 2 || got[1] != ok {
		t.Fatalf("fragment not relayed: %q", got)
	}
	f.msg(visitor, skinJID, "?OTR|11111111|aaaaaaaa,00001,65000,piece,")
	if s := only(t, f.sent(), func(sentStanza) bool { return true }); s.errCond != "policy-violation" {
		t.Fatalf("huge fragment count: %s", s.raw)
	}
}

func TestTransferAndBlock(t *testing.T) {
	sales := store.Skin{Name: "sales", Title: "Sales", Policy: store.PolicyOpportunistic, Operators: []string{"op3@example.org"}}
	f := newFixture(t, Config{}, helpSkin("op1@example.org", "op2@example.org"), sales)
	f.online(op1, "", 5)
	f.msg(visitor, skinJID, "hello")
	f.sent()
	alias := aliasOf(t, f, visitor)
	id := strings.TrimSuffix(alias, "@"+testDomain)

	// To an operator who is offline: refused.
	f.msg(op1, testDomain, "transfer "+id+" op2@example.org")
	if got := bodiesTo(f.sent(), op1); len(got) != 1 || !strings.Contains(got[0], "not online") {
		t.Fatalf("transfer to offline operator: %q", got)
	}
	f.online(op2, "away", 0)
	f.msg(op1, testDomain, "transfer "+id+" op2@example.org")
	out := f.sent()
	var states []string
	for _, s := range out {
		if s.to == visitor && s.status != nil {
			states = append(states, s.status["state"])
		}
	}
	if strings.Join(states, ",") != "transferred,assigned" {
		t.Fatalf("visitor statuses %q", states)
	}
	told := bodiesTo(out, op1)
	if len(told) != 2 || !strings.Contains(told[0], "transferred") {
		t.Fatalf("old operator not told: %q", told)
	}
	// The old operator gets nothing more and may not write.
	f.msg(visitor, skinJID, "are you there?")
	out = f.sent()
	if len(bodiesTo(out, op1)) != 0 || len(bodiesTo(out, op2)) != 2 {
		t.Fatalf("after transfer: %v", out)
	}
	f.msg(op1, alias, "me again")
	if s := only(t, f.sent(), func(sentStanza) bool { return true }); s.errCond != "forbidden" {
		t.Fatalf("old operator wrote: %s", s.raw)
	}

	// To another skin whose operator is offline: queued there, then
	// assigned when it comes online.
	f.msg(op2, testDomain, "transfer "+id+" sales")
	out = f.sent()
	if got := bodiesTo(out, op2); len(got) != 2 || !strings.Contains(got[1], "queue of sales") {
		t.Fatalf("transfer to skin: %q", got)
	}
	f.online("op3@example.org/x", "", 0)
	if st := only(t, f.sent(), func(s sentStanza) bool { return s.to == visitor }); st.status["state"] != "assigned" {
		t.Fatalf("not assigned in the other skin: %s", st.raw)
	}

	// Block: the chat ends and the visitor is refused until it expires.
	f.msg("op3@example.org/x", testDomain, "block "+id+" 1h")
	out = f.sent()
	if got := bodiesTo(out, "op3@example.org/x"); len(got) < 1 || !strings.Contains(got[len(got)-1], "Blocked") {
		t.Fatalf("block: %v", out)
	}
	f.msg(visitor, skinJID, "let me in")
	if s := only(t, f.sent(), func(sentStanza) bool { return true }); s.errCond != "forbidden" {
		t.Fatalf("blocked visitor: %s", s.raw)
	}
	f.now = f.now.Add(2 * time.Hour)
	f.msg(visitor, skinJID, "back")
	if got := bodiesTo(f.sent(), op1); len(got) != 2 {
		t.Fatalf("block did not expire: %q", got)
	}
}

func newTestRegistry() *prometheus.Registry { return prometheus.NewRegistry() }

// metricValue reads a gauge, a counter, or a histogram's sample count.
func metricValue(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// Metric labels carry skins, directions, kinds, states and reasons: never a
// JID or a body.
func TestMetricsCarryNoAddresses(t *testing.T) {
	reg := newTestRegistry()
	f := newFixture(t, Config{Registerer: reg, MaxBodyBytes: 200}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "CANARY hello")
	f.msg(visitor, skinJID, encoded(otr.DHCommit, visitorTag, 0))
	f.msg(visitor, "nosuch@"+testDomain, "CANARY lost")
	f.msg(visitor, skinJID, "CANARY "+strings.Repeat("x", 300))
	f.msg(visitor2, skinJID, "CANARY queued?")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "@") || strings.Contains(l.GetValue(), "CANARY") {
					t.Errorf("metric %s label %s=%q", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	for _, name := range []string{"otrdesk_relayed_stanzas_total", "otrdesk_dropped_stanzas_total", "otrdesk_queue_length", "otrdesk_chats", "otrdesk_chats_otr", "otrdesk_operators_on_duty"} {
		if !seen[name] {
			t.Errorf("metric %s missing", name)
		}
	}
	if v := metricValue(f.c.m.relayedC.WithLabelValues("to-operator", "DH-Commit")); v != 1 {
		labels := []string{}
		for _, mf := range mfs {
			if mf.GetName() == "otrdesk_relayed_stanzas_total" {
				for _, m := range mf.GetMetric() {
					labels = append(labels, m.String())
				}
			}
		}
		t.Errorf("relayed DH-Commit counted %v; series %v", v, labels)
	}
}

// A Signature sent in fragments (its type is unreadable) or proven by the
// Reveal Signature sender's own Data completes the AKE: no false stall.
func TestFragmentedSignatureIsNoStall(t *testing.T) {
	for _, tc := range []struct {
		name string
		sig  func(f *fixture, alias string)
	}{
		{"fragmented signature", func(f *fixture, alias string) {
			f.msg(op1, alias, "?OTR|aaaaaaaa|11111111,00001,00002,?OTR:AAMS,")
			f.msg(op1, alias, "?OTR|aaaaaaaa|11111111,00002,00002,rest.,")
		}},
		{"data from the reveal side", func(f *fixture, alias string) {
			f.msg(visitor, skinJID, encoded(otr.Data, visitorTag, tagA))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Config{AKEStallTimeout: 10 * time.Second}, helpSkin("op1@example.org"))
			f.online(op1, "", 0)
			f.msg(visitor, skinJID, encoded(otr.DHCommit, visitorTag, 0))
			alias := aliasOf(t, f, visitor)
			f.msg(op1, alias, encoded(otr.DHKey, tagA, visitorTag))
			f.msg(visitor, skinJID, encoded(otr.RevealSig, visitorTag, tagA))
			tc.sig(f, alias)
			f.sent()
			g := f.c.r.byReal["help\x00"+visitor]
			if g.otr != otrEncrypted {
				t.Fatalf("state %q", g.otr)
			}
			f.now = f.now.Add(time.Minute)
			f.c.r.expire(f.now)
			for _, s := range f.sent() {
				if s.body != nil {
					t.Fatalf("false stall restart: %s", s.raw)
				}
			}
		})
	}
}

// Ciphertext held while a chat waits after losing its operator is for the
// old session: a new operator does not get it, the same resource does.
func TestStaleCiphertextDropped(t *testing.T) {
	for _, tc := range []struct {
		back    string
		wantLen int // bodies the returning resource gets: notice, query, [data]
	}{
		{op2, 2},
		{op1, 3},
	} {
		f := newFixture(t, Config{}, helpSkin("op1@example.org", "op2@example.org"))
		f.online(op1, "", 0)
		f.msg(visitor, skinJID, encoded(otr.DHCommit, visitorTag, 0))
		f.offline(op1)
		f.sent()
		f.msg(visitor, skinJID, "?OTRv3?")
		f.msg(visitor, skinJID, encoded(otr.Data, visitorTag, tagA))
		f.online(tc.back, "", 0)
		got := bodiesTo(f.sent(), tc.back)
		if len(got) != tc.wantLen || got[1] != "?OTRv3?" {
			t.Fatalf("back %s: %q", tc.back, got)
		}
	}
}
