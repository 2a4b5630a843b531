package component

import "testing"

// The metric labels of drop reasons are what dashboards and alerts match:
// they must stay exactly these strings, one per reason.
func TestDropReasonLabels(t *testing.T) {
	want := map[dropReason]string{
		dropDisconnected: "disconnected", dropWriteFailed: "write-failed", dropInternalError: "internal-error",
		dropEventQueueFull: "event-queue-full", dropNotForUs: "not-for-us", dropUnsupportedType: "unsupported-type",
		dropUnknownAlias: "unknown-alias", dropUnknownSkin: "unknown-skin", dropTooLarge: "too-large",
		dropTooManyFragments: "too-many-fragments", dropBlocked: "blocked", dropNoChat: "no-chat",
		dropTooManyGuests: "too-many-guests", dropNewChatRate: "new-chat-rate", dropStoreError: "store-error",
		dropRateLimited: "rate-limited", dropQueueFull: "queue-full", dropNotPinnedOperator: "not-pinned-operator",
		dropStaleCiphertext: "stale-ciphertext", dropExpiredWhileQueued: "expired-while-queued",
		dropPlaintextRefused: "plaintext-refused",
	}
	seen := map[string]dropReason{}
	for d := range numDropReasons {
		l := d.String()
		if l == "" || l == "unknown" {
			t.Errorf("reason %d has no label", d)
		}
		if o, dup := seen[l]; dup {
			t.Errorf("reasons %d and %d share the label %q", o, d, l)
		}
		seen[l] = d
		if w, ok := want[d]; ok && w != l {
			t.Errorf("reason %d is labelled %q, dashboards know it as %q", d, l, w)
		}
	}
	for d, w := range want {
		if d.String() != w {
			t.Errorf("%q: got %q", w, d.String())
		}
	}
	if numDropReasons.String() != "unknown" {
		t.Error("an out-of-range reason has a label")
	}
}

// Within one batch of events (before the store write), a chat that ends
// and is opened again by the same visitor starts from its own last change,
// not from the older stored record (which still has the operator's pin).
func TestBatchSeesItsOwnWrites(t *testing.T) {
	f := newFixture(t, Config{}, helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.msg(visitor, skinJID, "hi")
	alias := aliasOf(t, f, visitor)
	// Off duty: the open chat goes on, but a new one would wait. The stored
	// record pins the chat to op1; only the pending "ended" says otherwise.
	f.msg(op1, testDomain, "off")
	f.sent()
	for _, s := range []string{
		`<message xmlns='jabber:component:accept' from='` + visitor + `' to='` + skinJID + `' type='chat'><end xmlns='urn:otrdesk:0'/></message>`,
		`<message xmlns='jabber:component:accept' from='` + visitor + `' to='` + skinJID + `' type='chat'><body>again</body></message>`,
	} {
		el, err := parseElem(s, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		f.c.r.handleOne(evStanza{el: el})
	}
	if !f.c.r.writes.isPending(alias[len("guest-") : len(alias)-len("@"+testDomain)]) {
		t.Fatal("the batch's change is not pending: the test would not test anything")
	}
	f.c.r.flush()
	g, err := f.st.GuestByRealJID("help", visitor)
	if err != nil || "guest-"+g.ID+"@"+testDomain != alias {
		t.Fatalf("the visitor lost the alias: %+v %v", g, err)
	}
	out := f.sent()
	if st := only(t, out, func(s sentStanza) bool { return s.to == visitor && s.status != nil && s.status["state"] != "ended" }); st.status["state"] != "queued" {
		t.Fatalf("the reopened chat went back to its old pin: %s", st.raw)
	}
	if g.State != stateQueued || g.Operator != "" {
		t.Fatalf("stored %+v", g)
	}
}
