package component

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// idleGuestBytes opens n chats (each visitor sends one message), lets them
// go idle, and returns the heap bytes per guest while they are idle but
// still in memory, and after they expired (then a guest is only its store
// record, which lives in the bbolt file, not the Go heap).
func idleGuestBytes(tb testing.TB, n int) (active, expired float64) {
	f := newFixture(tb, Config{MaxChatsPerOperator: n, GuestsPerSkin: n, GuestIdleTimeout: time.Minute},
		helpSkin("op1@example.org"))
	f.online(op1, "", 0)
	f.c.r.out = discardSender{}
	before := heapAlloc()
	for i := range n {
		el, err := parseElem(fmt.Sprintf(`<message xmlns='jabber:component:accept' from='v%d@guest.example.org/web' to='help@chat.example.org' type='chat' id='x'><body>hello</body></message>`, i), 1<<20)
		if err != nil {
			tb.Fatal(err)
		}
		f.c.r.handle(evStanza{el: el})
	}
	after := heapAlloc()
	if len(f.c.r.chats) != n {
		tb.Fatalf("%d guests active, want %d", len(f.c.r.chats), n)
	}
	active = (float64(after) - float64(before)) / float64(n)
	f.now = f.now.Add(2 * time.Minute)
	f.c.r.expire(f.now)
	if len(f.c.r.chats) != 0 {
		tb.Fatalf("%d guests still in memory after expiry", len(f.c.r.chats))
	}
	expired = (float64(heapAlloc()) - float64(before)) / float64(n)
	runtime.KeepAlive(f)
	return active, expired
}

type discardSender struct{}

func (discardSender) send(toks) error { return nil }

func heapAlloc() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestIdleGuestMemory checks the memory target (at most 8 KiB per idle
// guest) at a size CI affords; BenchmarkIdleGuestMemory measures 10,000.
func TestIdleGuestMemory(t *testing.T) {
	active, expired := idleGuestBytes(t, 300)
	t.Logf("bytes per idle guest: %.0f in memory, %.0f after expiry", active, expired)
	if active > 8<<10 {
		t.Errorf("%.0f bytes per idle guest, want at most 8 KiB", active)
	}
	if expired > 256 {
		t.Errorf("%.0f bytes per expired guest left in memory", expired)
	}
}

// BenchmarkIdleGuestMemory reports bytes per idle guest at 10,000 guests
// (go test -run X -bench IdleGuestMemory -benchtime 1x ./component/).
func BenchmarkIdleGuestMemory(b *testing.B) {
	for range b.N {
		active, expired := idleGuestBytes(b, 10000)
		b.ReportMetric(active, "B/idle-guest")
		b.ReportMetric(expired, "B/expired-guest")
	}
}
