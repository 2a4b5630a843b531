// Command bench measures otrdesk's relay against two baselines through the
// same private Prosody, in one run, and prints a table of ratios
// (ratios, because absolute times vary from run to run on shared machines):
//
//	direct   visitor ──c2s──► operator                                (one crossing each way)
//	bare     visitor ──► bare component ──► operator                  (a minimal forwarder with a
//	                                                                    fixed guest↔operator mapping)
//	otrdesk  visitor ──► otrdesk component ──► operator               (the real thing)
//	otr      the same as otrdesk, with OTR v3 Data messages of the same size as
//	         bodies (otrdesk classifies, learns instance tags, marks hints)
//
// The operator echoes every "bench ..." body to whoever sent it. Latency is
// the round trip of one message at a time; throughput keeps a window of
// messages in flight. Modes are interleaved round by round so that noise
// from other work on the machine falls on all of them alike.
//
// Run: make bench, or go run ./internal/bench [-rounds N] [-n N].
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"otrdesk.im/otrdesk/component"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/store"
)

const (
	otrdeskDomain = "chat.example.org"
	bareDomain    = "bare.example.org"
	skin          = "bench"
)

func main() {
	rounds := flag.Int("rounds", 5, "interleaved rounds per mode")
	n := flag.Int("n", 200, "round trips per round (latency)")
	tn := flag.Int("tn", 1000, "messages per round (throughput)")
	window := flag.Int("window", 32, "messages in flight (throughput)")
	size := flag.Int("size", 100, "body size in bytes")
	flag.Parse()
	if err := run(*rounds, *n, *tn, *window, *size); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type mode struct {
	name    string
	visitor *xmpptest.Client
	to      string // where the visitor writes
	otr     bool   // bodies are OTR Data messages
	lat     []time.Duration
	tput    []float64
}

func run(rounds, n, tn, window, size int) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "otrdesk-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	srv, err := xmpptest.StartProsody(ctx, xmpptest.Options{Components: map[string]string{otrdeskDomain: "s1", bareDomain: "s2"}, NoArchive: true})
	if err != nil {
		return err
	}
	defer srv.Close()
	if _, err := srv.Register(ctx, "op", "pw"); err != nil {
		return err
	}
	oper, err := srv.Dial(ctx, "op", "pw", "desk")
	if err != nil {
		return err
	}
	defer oper.Close()

	// otrdesk, in this process, with limits that do not throttle a benchmark.
	st, err := store.Open(filepath.Join(dir, "otrdesk.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.CreateSkin(store.Skin{Name: skin, Title: "Bench", Policy: store.PolicyOpportunistic, Operators: []string{oper.JID().Bare().String()}}); err != nil {
		return err
	}
	comp, err := component.New(component.Config{
		Domain: otrdeskDomain, Server: srv.ComponentAddr, Secret: "s1",
		MaxChatsPerOperator: 1000, GuestsPerSkin: 100000, GuestMessagesPerMinute: 1 << 30,
		Logger: logger(),
	}, st)
	if err != nil {
		return err
	}
	// Stop otrdesk before the store closes (defers run last-first).
	compCtx, stopComp := context.WithCancel(ctx)
	compDone := make(chan struct{})
	defer func() { stopComp(); <-compDone }()
	go func() {
		defer close(compDone)
		if err := comp.Run(compCtx); err != nil && compCtx.Err() == nil {
			fmt.Fprintln(os.Stderr, "bench: otrdesk stopped:", err)
		}
	}()

	// The operator approves otrdesk's subscription and echoes bench bodies.
	go echo(ctx, oper)
	if err := poll(ctx, "otrdesk available", func() bool { return comp.Available(skin) }); err != nil {
		return err
	}

	bare, err := srv.DialComponent(ctx, bareDomain, "s2")
	if err != nil {
		return err
	}
	defer bare.Close()

	var modes []*mode
	for _, name := range []string{"direct", "bare", "otrdesk", "otr"} {
		v, err := srv.DialAnonymous(ctx)
		if err != nil {
			return err
		}
		defer v.Close()
		m := &mode{name: name, visitor: v}
		switch name {
		case "direct":
			m.to = oper.JID().String()
		case "bare":
			m.to = skin + "@" + bareDomain
			go forward(ctx, bare, v.JID().String(), oper.JID().String())
		case "otrdesk":
			m.to = skin + "@" + otrdeskDomain
		case "otr":
			m.to = skin + "@" + otrdeskDomain
			m.otr = true
		}
		modes = append(modes, m)
	}

	for _, m := range modes { // warm up: first-message notices, routes, caches
		if _, err := latency(ctx, m, 20, size); err != nil {
			return fmt.Errorf("%s warm-up: %w", m.name, err)
		}
	}
	for r := 0; r < rounds; r++ {
		for _, m := range modes {
			l, err := latency(ctx, m, n, size)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			m.lat = append(m.lat, l...)
			t, err := throughput(ctx, m, tn, window, size)
			if err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			m.tput = append(m.tput, t)
		}
	}
	report(modes, size, rounds, n, tn, window)
	return nil
}

// benchBody returns a body of about size bytes that the echo operator
// recognises by its prefix: plain text, or an OTR v3 Data message whose
// payload starts with the same marker (so otrdesk sees real OTR traffic).
func benchBody(m *mode, id string, size int) string {
	if !m.otr {
		return id + strings.Repeat("x", max(size-len(id), 1))
	}
	// version 3, type Data, sender and receiver instance tags, flags, then
	// the marker inside what would be the encrypted payload.
	bin := []byte{0x00, 0x03, 0x03, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00}
	bin = append(bin, id...)
	raw := len(otr.EncodeMessage(bin))
	bin = append(bin, strings.Repeat("y", max((size-raw)*3/4, 1))...)
	return otr.EncodeMessage(bin)
}

// marker returns the id a bench body carries, or "".
func marker(body string) string {
	if strings.HasPrefix(body, "bench ") {
		if i := strings.Index(body[6:], " "); i >= 0 {
			return body[:6+i+1]
		}
	}
	if strings.HasPrefix(body, "?OTR:") {
		bin, err := otr.DecodeMessage([]byte(body))
		if err == nil && len(bin) > 12 && strings.HasPrefix(string(bin[12:]), "bench ") {
			return marker(string(bin[12:]))
		}
	}
	return ""
}

// echo answers every "bench" body with the same body to its sender, and
// approves subscription requests (otrdesk's skin JID asks once).
func echo(ctx context.Context, c *xmpptest.Client) {
	for {
		st, err := c.Next(ctx, func(s xmpptest.Stanza) bool {
			return isBench(s) || (s.Name == "presence" && s.Type == "subscribe")
		})
		if err != nil {
			return
		}
		if st.Name == "presence" {
			_ = c.Subscribed(ctx, st.From)
			_ = c.Presence(ctx, "", 5)
			continue
		}
		// Whatever else arrives (otrdesk's new-chat notice) stays queued:
		// discarding here could drop the next bench message too.
		_ = c.Message(ctx, st.From, st.Body)
	}
}

// forward is the bare baseline: a fixed mapping, bodies copied as they are.
func forward(ctx context.Context, comp *xmpptest.Client, visitor, operator string) {
	alias := "guest-bench@" + bareDomain
	skinJID := skin + "@" + bareDomain
	for {
		st, err := comp.Next(ctx, func(s xmpptest.Stanza) bool { return s.Name == "message" && s.HasBody })
		if err != nil {
			return
		}
		from, to := alias, operator
		if strings.HasPrefix(st.From, operator) {
			from, to = skinJID, visitor
		}
		_ = comp.SendRaw(ctx, "<message type='chat' from='"+from+"' to='"+to+"'><body>"+xmlEscape(st.Body)+"</body></message>")
	}
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func isBench(s xmpptest.Stanza) bool {
	return s.Name == "message" && s.Type != "error" && marker(s.Body) != ""
}

func latency(ctx context.Context, m *mode, n int, size int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		id := "bench " + strconv.Itoa(i) + " "
		body := benchBody(m, id, size)
		start := time.Now()
		if err := m.visitor.Message(ctx, m.to, body); err != nil {
			return nil, err
		}
		if _, err := m.visitor.Next(ctx, func(s xmpptest.Stanza) bool { return isBench(s) && marker(s.Body) == id }); err != nil {
			return nil, err
		}
		out = append(out, time.Since(start))
		m.visitor.Discard()
	}
	return out, nil
}

func throughput(ctx context.Context, m *mode, n, window int, size int) (float64, error) {
	var wg sync.WaitGroup
	got := make(chan error, 1)
	start := time.Now()
	sem := make(chan struct{}, window)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			if _, err := m.visitor.Next(ctx, isBench); err != nil {
				got <- err
				return
			}
			<-sem
		}
		got <- nil
	}()
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		if err := m.visitor.Message(ctx, m.to, benchBody(m, "bench t"+strconv.Itoa(i)+" ", size)); err != nil {
			return 0, err
		}
	}
	if err := <-got; err != nil {
		return 0, err
	}
	wg.Wait()
	return float64(n) / time.Since(start).Seconds(), nil
}

func quantile(d []time.Duration, q float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

func median(f []float64) float64 {
	s := slices.Clone(f)
	slices.Sort(s)
	return s[len(s)/2]
}

func report(modes []*mode, size, rounds, n, tn, window int) {
	by := map[string]*mode{}
	for _, m := range modes {
		by[m.name] = m
	}
	fmt.Printf("otrdesk relay benchmark: %d-byte bodies, %d rounds × %d round trips, throughput %d msgs with %d in flight\n\n", size, rounds, n, tn, window)
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tmedian RTT\tp90 RTT\tthroughput msg/s\t")
	for _, m := range modes {
		fmt.Fprintf(tw, "%s\t%v\t%v\t%.0f\t\n", m.name, quantile(m.lat, .5).Round(time.Microsecond), quantile(m.lat, .9).Round(time.Microsecond), median(m.tput))
	}
	tw.Flush()
	o, b, d, x := by["otrdesk"], by["bare"], by["direct"], by["otr"]
	fmt.Printf("\notrdesk / bare:   latency %.3f (target ≤ 1.05)   throughput %.3f (target ≥ 0.95)\n",
		float64(quantile(o.lat, .5))/float64(quantile(b.lat, .5)), median(o.tput)/median(b.tput))
	fmt.Printf("otrdesk / direct: latency %.3f (about 2: the double crossing)   throughput %.3f\n",
		float64(quantile(o.lat, .5))/float64(quantile(d.lat, .5)), median(o.tput)/median(d.tput))
	fmt.Printf("OTR Data / plaintext through otrdesk: latency %.3f (target ≤ 1.05)   throughput %.3f\n",
		float64(quantile(x.lat, .5))/float64(quantile(o.lat, .5)), median(x.tput)/median(o.tput))
}

func poll(ctx context.Context, what string, ok func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for !ok() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}

// logger discards otrdesk's log unless OTRDESK_BENCH_LOG=debug.
func logger() *slog.Logger {
	if os.Getenv("OTRDESK_BENCH_LOG") == "debug" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}
