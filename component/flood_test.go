package component

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// A flood of new anonymous chats against one skin, on a fake clock: 2,000
// fresh JIDs a minute for 20 minutes, each sending one message, while a
// visitor keeps talking to the operator and another, idle, comes back with
// the alias it has. The new-chat rate admits its share and counts the rest
// as refused; the visitors with an alias get through all along; the
// records the flood leaves are purged, so the store stays bounded.
func TestFloodOfNewChats(t *testing.T) {
	const (
		perMinute = 100 // limits.new_chats_per_minute
		flood     = 2000
		minutes   = 20
		idle      = 2 * time.Minute
		retention = 5 * time.Minute
	)
	reg := newTestRegistry()
	f := newFixture(t, Config{Registerer: reg, NewChatsPerMinute: perMinute, NewChatsPerMinuteTotal: 10 * perMinute,
		GuestsPerSkin: 150, GuestIdleTimeout: idle, UnassignedRetention: retention},
		helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	const talker, returner = "talker@guest.example.org/a", "returner@guest.example.org/b"
	f.msg(talker, skinJID, "hello")
	f.msg(returner, skinJID, "hello too")
	f.sent()
	talkerAlias, returnerAlias := aliasOf(t, f, talker), aliasOf(t, f, returner)

	n := 0
	maxUnassigned := 0
	for minute := range minutes {
		for i := range flood {
			f.now = f.now.Add(time.Minute / flood)
			el, err := parseElem(fmt.Sprintf(`<message xmlns='jabber:component:accept' from='flood%d@guest.example.org/r' to='%s' type='chat' id='f'><body>spam</body></message>`, n, skinJID), 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			n++
			f.c.r.handleOne(evStanza{el: el}) // as Run does: batches, then one commit
			if i%maxBatch == maxBatch-1 {
				f.c.r.flush()
			}
		}
		f.c.r.flush()
		f.cap.take()
		// The visitor in a chat goes on talking, both ways.
		f.msg(talker, skinJID, fmt.Sprint("minute ", minute))
		if got := bodiesTo(f.sent(), op1); len(got) != 1 || got[0] != fmt.Sprint("minute ", minute) {
			t.Fatalf("minute %d: the talker's message: %q", minute, got)
		}
		f.msg(op1, talkerAlias, "answer")
		if got := bodiesTo(f.sent(), talker); len(got) != 1 {
			t.Fatalf("minute %d: the operator's answer: %q", minute, got)
		}
		f.c.r.expire(f.now)
		f.cap.take()
		guests, err := f.st.Guests()
		if err != nil {
			t.Fatal(err)
		}
		unassigned := 0
		for _, g := range guests {
			if g.Assigned.IsZero() {
				unassigned++
			}
		}
		maxUnassigned = max(maxUnassigned, unassigned)
	}
	// The idle visitor comes back (its chat left memory long ago, the skin
	// is full of strangers): same alias, same operator.
	f.msg(returner, skinJID, "back again")
	if got := only(t, f.sent(), func(s sentStanza) bool { return s.to == op1 && s.body != nil && *s.body == "back again" }); got.from != returnerAlias {
		t.Fatalf("the returning visitor came back as %s, want %s", got.from, returnerAlias)
	}

	refusedRate := metricValue(f.c.m.dropsC.WithLabelValues("new-chat-rate"))
	refusedFull := metricValue(f.c.m.dropsC.WithLabelValues("too-many-guests"))
	admitted := float64(n) - refusedRate - refusedFull
	t.Logf("flood: %d new chats in %d minutes; admitted %.0f, refused %.0f by the rate, %.0f by guests_per_skin; at most %d unpurged records of chats that never reached an operator",
		n, minutes, admitted, refusedRate, refusedFull, maxUnassigned)
	if admitted > perMinute*(minutes+1) {
		t.Errorf("admitted %.0f new chats, the rate allows %d", admitted, perMinute*(minutes+1))
	}
	if refusedRate < float64(n-perMinute*(minutes+1))-refusedFull {
		t.Errorf("only %.0f refusals counted for the rate", refusedRate)
	}
	// Records last at most idle + retention + one purge interval (+ the
	// minute between our expire calls) after their chat's last word.
	bound := perMinute * int((idle+retention+purgeEvery(retention))/time.Minute+2)
	if maxUnassigned > bound {
		t.Errorf("%d records of unassigned chats, want at most %d: the purge does not keep up", maxUnassigned, bound)
	}
	// Once the flood is over and the retention has passed, nothing of it
	// is left but the chats an operator took.
	f.now = f.now.Add(idle + retention + purgeEvery(retention) + time.Minute)
	f.c.r.expire(f.now)
	f.now = f.now.Add(purgeEvery(retention))
	f.c.r.expire(f.now)
	guests, err := f.st.Guests()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range guests {
		if g.Assigned.IsZero() {
			t.Fatalf("%d records; an unassigned one survived the retention: %+v", len(guests), g)
		}
		if g.RealJID != talker && g.RealJID != returner && !strings.HasPrefix(g.RealJID, "flood") {
			t.Fatalf("unexpected record %+v", g)
		}
	}
	t.Logf("after the retention: %d records left (the visitors and the flood chats op1 took)", len(guests))
}

// BenchmarkNewChatWrites measures the router's cost per new chat (decode,
// admit, alias, queue, status, and the store write on a real file) when
// each event is committed alone ("batch=1", how the router wrote before
// coalescing, and what an idle router still does) and when Run handles a
// full batch before one commit ("batch=64", a flood).
func BenchmarkNewChatWrites(b *testing.B) {
	for _, batch := range []int{1, maxBatch} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			f := newFixture(b, Config{NewChatsPerMinute: 1 << 30, NewChatsPerMinuteTotal: 1 << 30, GuestsPerSkin: 1 << 30},
				helpSkin("op1@example.org"))
			f.c.r.out = discardSender{}
			els := make([]*elem, b.N)
			for i := range els {
				el, err := parseElem(fmt.Sprintf(`<message xmlns='jabber:component:accept' from='v%d@guest.example.org/r' to='%s' type='chat' id='f'><body>hi</body></message>`, i, skinJID), 1<<20)
				if err != nil {
					b.Fatal(err)
				}
				els[i] = el
			}
			b.ResetTimer()
			for i, el := range els {
				f.c.r.handleOne(evStanza{el: el})
				if i%batch == batch-1 {
					f.c.r.flush()
				}
			}
			f.c.r.flush()
			b.StopTimer()
			if len(f.c.r.chats) != b.N {
				b.Fatalf("%d chats, want %d", len(f.c.r.chats), b.N)
			}
		})
	}
}
