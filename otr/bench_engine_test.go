package otr

import (
	"bytes"
	"crypto/rand"
	"syscall"
	"testing"
	"time"

	"otrdesk.im/otrdesk/internal/libotrtest"
)

// Benchmarks of the engine, read as ratios within one run:
//
//	go test -run '^$' -bench Engine ./otr/
//
// Each compares the native Go engine (two conversations in one process)
// with libotr 4.1.1 doing the same between two libotr user states in one
// process (the peer program's bench mode), and reports both and the
// ratio. The ratio is of CPU time (the process's user+system time per
// operation, GC included): on a shared machine wall time mostly measures
// the other tenants. Wall times are reported too.

// relayAll delivers msgs from one conversation to the other and the
// replies back until both are quiet.
func relayAll(tb testing.TB, from, to *Conversation, msgs [][]byte) {
	type item struct {
		to, from *Conversation
		m        []byte
	}
	var q []item
	for _, m := range msgs {
		q = append(q, item{to, from, m})
	}
	for len(q) > 0 {
		it := q[0]
		q = q[1:]
		_, send, _, err := it.to.Receive(it.m)
		if err != nil {
			tb.Fatal(err)
		}
		for _, m := range send {
			q = append(q, item{it.from, it.to, m})
		}
	}
}

func benchPair(tb testing.TB) (*Conversation, *Conversation) {
	x, err := NewConversation(Config{PrivateKey: testKey(tb, 0), Policy: PolicyAlways})
	if err != nil {
		tb.Fatal(err)
	}
	y, err := NewConversation(Config{PrivateKey: testKey(tb, 1), Policy: PolicyAlways})
	if err != nil {
		tb.Fatal(err)
	}
	q, _ := x.Start()
	relayAll(tb, x, y, q)
	if !x.IsEncrypted() || !y.IsEncrypted() {
		tb.Fatal("no AKE")
	}
	return x, y
}

func BenchmarkEngine(b *testing.B) {
	for _, bc := range []struct {
		name, what string
		size       int
		libN       int
	}{
		{"AKE", "ake", 0, 200},
		{"Data100B", "data", 100, 2000},
		{"Data4KiB", "data", 4096, 1000},
		{"SMP", "smp", 0, 20},
		{"KeyGen", "keygen", 0, 20},
	} {
		b.Run(bc.name, func(b *testing.B) {
			x, y := benchPair(b)
			msg := bytes.Repeat([]byte("x"), bc.size)
			b.ResetTimer()
			t0, c0 := time.Now(), cpuTime()
			for i := 0; i < b.N; i++ {
				switch bc.what {
				case "ake":
					q, _ := x.Start()
					relayAll(b, x, y, q)
				case "data":
					m, err := x.Send(msg)
					if err != nil {
						b.Fatal(err)
					}
					relayAll(b, x, y, m)
					m, _ = y.Send(msg)
					relayAll(b, y, x, m)
				case "smp":
					m, _ := x.Authenticate("", []byte("secret"))
					relayAll(b, x, y, m)
					m, _ = y.Authenticate("", []byte("secret"))
					relayAll(b, y, x, m)
				case "keygen":
					if _, err := GenerateKey(rand.Reader); err != nil {
						b.Fatal(err)
					}
				}
			}
			goWall := float64(time.Since(t0).Nanoseconds()) / float64(b.N)
			goCPU := float64((cpuTime() - c0).Nanoseconds()) / float64(b.N)
			b.StopTimer()
			lib := libotrtest.Bench(b, bc.what, bc.libN, bc.size)
			b.ReportMetric(goCPU/1e6, "go-cpu-ms/op")
			b.ReportMetric(float64(lib.CPU.Nanoseconds())/1e6, "libotr-cpu-ms/op")
			b.ReportMetric(goCPU/float64(lib.CPU.Nanoseconds()), "go/libotr-cpu")
			b.ReportMetric(goWall/1e6, "go-wall-ms/op")
			b.ReportMetric(float64(lib.Wall.Nanoseconds())/1e6, "libotr-wall-ms/op")
		})
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
