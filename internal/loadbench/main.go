// Command loadbench puts many visitors and operators through otrdesk and
// one private Prosody in one run, then kills otrdesk mid-run and measures
// what a crash costs:
//
//	visitors ──┬── one XEP-0114 connection (visitors.example.org) ──┐
//	           └── anonymous c2s clients (guest.example.org) ───────┤
//	                                                                ▼
//	                          Prosody 0.12 ◀──XEP-0114──▶ otrdesk (child process:
//	                                │                      component.Run over a bbolt store)
//	                          operators (c2s, one resource each, echo every body)
//
// By default most visitors are addresses of one component connection:
// otrdesk sees the same stanzas either way, and 10,000 TLS c2s logins make
// the run more than twice as long on a shared 2-core machine. -c2s sets how
// many visitors log in as real anonymous c2s clients instead (-c2s 10000
// puts every one of them on c2s). Bodies are plaintext: the
// operators answer by echoing, and OTR's cost is measured by the otr
// package's benchmarks and by internal/bench (otrdesk only classifies OTR
// messages; it never encrypts). Prosody runs with Nagle off, without
// message archive and without rate limits (Debian's default "limits" would
// throttle c2s). More than 100 operators (a skin's limit) are spread over
// several skins, and visitors with them.
//
// otrdesk is this same program started again as a child process (with
// OTRDESK_LOADBENCH_CHILD set): the real component over the real store, in
// a temporary directory. So its memory is its own (heap after two
// collections, measured by the child on request) and the crash is real:
// SIGKILL, the store file left as a crash leaves it, then a new process on
// the same file.
//
// Phases, all with a window of messages in flight taken round robin over
// the visitors, so that every chat carries traffic:
//
//	open     every visitor's first message: a new chat, an alias, an operator
//	steady   -duration of relay; otrdesk's heap is measured halfway
//	crash    relay; after a quarter of -duration otrdesk is killed, restarted
//	         after -down; runs until every chat relayed a message sent after
//	         the kill (bounded), then drains
//
// A bounced message (otrdesk down: the server answers with an error) is
// sent again, the same bytes, after a backoff, as the widget does. A message
// unanswered after -timeout (otrdesk took it in and died) is counted and
// sent again. A chat is lost when, after the restart, the visitor's messages
// reach another operator or another alias, or none reach anyone.
//
// Bounded in count and time (-bound), loopback only; it stops by itself.
// Run: make bench, or go run ./internal/loadbench [-visitors N] [-operators M]
// [-duration D] [-c2s K].
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/store"
)

const (
	otrdeskDomain  = "chat.example.org"
	visitorsDomain = "visitors.example.org"
	// opsPerSkin is the store's limit of operators per skin: more operators
	// means more skins (bench0, bench1, ...), visitors spread over them.
	opsPerSkin = 100
)

func skinName(i int) string { return "bench" + strconv.Itoa(i) }

// options are the benchmark's flags.
type options struct {
	visitors, operators, c2s int
	duration, down, timeout  time.Duration
	window, size             int
	bound                    time.Duration
}

func main() {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := runChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.IntVar(&o.visitors, "visitors", 10000, "visitors, each with one chat")
	flag.IntVar(&o.operators, "operators", 200, "operators (c2s), one resource each")
	flag.IntVar(&o.c2s, "c2s", 100, "visitors that log in as anonymous c2s clients (the rest share one component connection)")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "length of the steady phase and of the crash phase's load before the kill (a quarter of it)")
	flag.DurationVar(&o.down, "down", 3*time.Second, "how long otrdesk stays dead before it is started again")
	flag.DurationVar(&o.timeout, "timeout", time.Second, "a message unanswered this long is counted and sent again (the widget checks each message with a ping)")
	flag.IntVar(&o.window, "window", 64, "messages in flight")
	flag.IntVar(&o.size, "size", 100, "body size in bytes")
	flag.DurationVar(&o.bound, "bound", 15*time.Minute, "the whole run's time limit")
	flag.Parse()
	res, err := run(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
	res.print(os.Stdout)
}

// result is what a run measured.
type result struct {
	o                       options
	open, steady, crash     *phase
	openLeft, steadyLeft    int // messages never answered (after drains)
	crashLeft               int
	crossed                 int
	moved                   int // chats that came back to another operator or alias
	notRecovered            int
	heapBase, heapIdle      uint64
	heapActive, heapRestart uint64
	storeOpen, storeEnd     int64
	killToReady, killToAll  time.Duration
	recovery                []time.Duration
	opBounces               int
	movedHow                []string
	movedSilent             int // moved chats that had a message unanswered
	killAt                  time.Time
	drops                   map[string]float64
	clientDrops             int
}

// silent is how many messages got neither an answer nor a bounce and had
// to be sent again (unanswered minus those whose answer came late: each
// late answer shows up as a duplicate).
func (p *phase) silent() int { return max(p.unanswered-p.dup, 0) }

func run(ctx context.Context, o options) (*result, error) {
	if o.visitors < 1 || o.operators < 1 || o.c2s < 0 || o.c2s > o.visitors || o.window < 1 {
		return nil, errors.New("loadbench: need visitors ≥ 1, operators ≥ 1, 0 ≤ c2s ≤ visitors, window ≥ 1")
	}
	ctx, cancel := context.WithTimeout(ctx, o.bound)
	defer cancel()
	dir, err := os.MkdirTemp("", "otrdesk-loadbench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)

	srv, err := xmpptest.StartProsody(ctx, xmpptest.Options{
		Components: map[string]string{otrdeskDomain: "s1", visitorsDomain: "s2"},
		NoArchive:  true,
	})
	if err != nil {
		return nil, err
	}
	defer srv.Close()

	// Operators: registered and logged in a few at a time.
	ops := make([]*xmpptest.Client, o.operators)
	if err := parallel(ctx, o.operators, 8, func(i int) error {
		user := "op" + strconv.Itoa(i)
		if _, err := srv.Register(ctx, user, "pw"); err != nil {
			return err
		}
		c, err := srv.Dial(ctx, user, "pw", "desk")
		ops[i] = c
		return err
	}); err != nil {
		closeAll(ops)
		return nil, err
	}
	defer closeAll(ops)

	// Visitors: c2s ones first, the rest on one component connection.
	vcomp, err := srv.DialComponent(ctx, visitorsDomain, "s2")
	if err != nil {
		return nil, err
	}
	defer vcomp.Close()
	skins := (o.operators + opsPerSkin - 1) / opsPerSkin
	vs := make([]*visitor, o.visitors)
	c2s := make([]*xmpptest.Client, o.c2s)
	if err := parallel(ctx, o.c2s, 8, func(i int) error {
		c, err := srv.DialAnonymous(ctx)
		c2s[i] = c
		return err
	}); err != nil {
		closeAll(c2s)
		return nil, err
	}
	defer closeAll(c2s)
	for i := range vs {
		v := &visitor{id: i}
		if i < o.c2s {
			v.client, v.jid = c2s[i], c2s[i].JID().String()
		} else {
			v.client, v.comp = vcomp, true
			v.jid = "v" + strconv.Itoa(i) + "@" + visitorsDomain + "/web"
		}
		v.bare = bareOf(v.jid)
		v.to = skinName(i%skins) + "@" + otrdeskDomain
		vs[i] = v
	}

	// The skin, in a store otrdesk will open.
	storePath := filepath.Join(dir, "otrdesk.db")
	if err := createSkins(storePath, ops, skins); err != nil {
		return nil, err
	}
	perOp := (o.visitors + o.operators - 1) / o.operators
	ccfg := childConfig{
		Domain: otrdeskDomain, Server: srv.ComponentAddr, Secret: "s1", Store: storePath,
		MaxChatsPerOperator: 2*perOp + 1, Guests: 2 * o.visitors,
	}

	l := newLoad(vs, o.window, o.size, o.timeout)
	var wg sync.WaitGroup
	defer wg.Wait()
	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	for i, c := range ops {
		wg.Add(1)
		go func() { defer wg.Done(); l.operate(loopCtx, i, c) }()
	}
	for _, c := range append([]*xmpptest.Client{vcomp}, c2s...) {
		wg.Add(1)
		go func() { defer wg.Done(); l.receive(loopCtx, c) }()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(o.timeout / 10)
		defer t.Stop()
		for {
			select {
			case <-loopCtx.Done():
				return
			case now := <-t.C:
				l.expire(now)
			}
		}
	}()

	od, err := startOtrdesk(ccfg)
	if err != nil {
		return nil, err
	}
	defer func() { od.stop() }()
	if err := waitOnDuty(ctx, od, skins, o.operators); err != nil {
		return nil, err
	}

	res := &result{o: o}
	if res.heapBase, err = od.heap(); err != nil {
		return nil, err
	}

	// open: every visitor's first message starts a chat.
	res.open = l.begin("open")
	if err := l.during(ctx, func() bool { return l.answeredAll(1) }, o.bound); err != nil {
		return nil, fmt.Errorf("opening chats: %w", err)
	}
	res.openLeft = l.drain(ctx, 3*o.timeout)
	if res.heapIdle, err = od.heap(); err != nil {
		return nil, err
	}
	res.storeOpen = fileSize(storePath)

	// steady: relay for the duration, heap measured halfway.
	res.steady = l.begin("steady")
	half := time.Now().Add(o.duration / 2)
	end := time.Now().Add(o.duration)
	measured := false
	var heapErr error
	err = l.during(ctx, func() bool {
		if !measured && time.Now().After(half) {
			measured = true
			res.heapActive, heapErr = od.heap()
		}
		return heapErr != nil || time.Now().After(end)
	}, o.bound)
	if err = errors.Join(err, heapErr); err != nil {
		return nil, fmt.Errorf("steady relay: %w", err)
	}
	res.steadyLeft = l.drain(ctx, 3*o.timeout)

	// crash: relay, SIGKILL otrdesk, start it again on the same store, relay
	// until every chat relayed a message sent after the kill.
	res.crash = l.begin("crash")
	killAt := time.Now().Add(o.duration / 4)
	var restarted bool
	var restartErr error
	readyAfter := make(chan time.Duration, 1)
	crashBound := 2*o.timeout + o.down + 2*time.Minute + time.Duration(o.visitors)*time.Millisecond
	err = l.during(ctx, func() bool {
		now := time.Now()
		switch {
		case l.killAt.IsZero() && now.After(killAt):
			od.kill()
			l.mu.Lock()
			l.killAt = time.Now()
			l.mu.Unlock()
		case !l.killAt.IsZero() && !restarted && now.Sub(l.killAt) >= o.down:
			restarted = true
			od, restartErr = startOtrdesk(ccfg)
			if restartErr != nil {
				return true
			}
			go func(p *otrdeskProc, kill time.Time) {
				if waitReady(ctx, p) == nil {
					readyAfter <- time.Since(kill)
				}
			}(od, l.killAt)
		case restarted:
			n, _ := l.recovered()
			return n == o.visitors
		}
		return false
	}, o.duration/4+crashBound)
	if restartErr != nil {
		return nil, restartErr
	}
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return nil, fmt.Errorf("crash: %w", err)
	}
	res.crashLeft = l.drain(ctx, 3*o.timeout)
	n, last := l.recovered()
	res.notRecovered = o.visitors - n
	res.recovery = l.recoveryTimes()
	if n > 0 {
		res.killToAll = last.Sub(l.killAt)
	}
	select {
	case res.killToReady = <-readyAfter:
	default: // never ready: the table says 0
	}
	if res.heapRestart, err = od.heap(); err != nil {
		return nil, err
	}
	if res.drops, err = od.metrics(); err != nil {
		return nil, err
	}
	od.stop()
	res.storeEnd = fileSize(storePath)

	l.mu.Lock()
	res.crossed, res.moved, res.opBounces = l.crossed, len(l.moved), l.opBounces
	res.movedHow = l.movedHow
	for id := range l.moved {
		if l.vs[id].silent {
			res.movedSilent++
		}
	}
	res.killAt = l.killAt
	l.mu.Unlock()
	for _, c := range append(append([]*xmpptest.Client{vcomp}, c2s...), ops...) {
		res.clientDrops += c.Dropped()
	}
	return res, nil
}

// during runs the sender until done says so (checked every 20 ms), or the
// bound passes (context.DeadlineExceeded).
func (l *load) during(ctx context.Context, done func() bool, bound time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	sctx, stop := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() { errc <- l.send(sctx) }()
	defer func() { stop(); <-errc }()
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case err := <-errc:
			errc <- err // for the deferred receive
			if err == nil {
				err = ctx.Err()
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			if done() {
				return nil
			}
		}
	}
}

// createSkins writes the skins, operator i in skin i mod n, to a new store
// otrdesk then opens.
func createSkins(path string, ops []*xmpptest.Client, n int) error {
	st, err := store.Open(path)
	if err != nil {
		return err
	}
	jids := make([][]string, n)
	for i, c := range ops {
		jids[i%n] = append(jids[i%n], c.JID().Bare().String())
	}
	for i := range n {
		err = errors.Join(err, st.CreateSkin(store.Skin{Name: skinName(i), Title: "Load", Policy: store.PolicyOpportunistic, Operators: jids[i]}))
	}
	return errors.Join(err, st.Close())
}

// waitOnDuty waits until otrdesk counts every operator of every skin on duty.
func waitOnDuty(ctx context.Context, od *otrdeskProc, skins, n int) error {
	return poll(ctx, time.Minute, func() (bool, error) {
		m, err := od.metrics()
		sum := 0.0
		for i := range skins {
			sum += m["otrdesk_operators_on_duty{skin="+skinName(i)+"}"]
		}
		return sum == float64(n), err
	})
}

func waitReady(ctx context.Context, od *otrdeskProc) error {
	return poll(ctx, time.Minute, func() (bool, error) {
		s, err := od.ask("ready")
		return s == "true", err
	})
}

func poll(ctx context.Context, bound time.Duration, ok func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	for {
		done, err := ok()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("loadbench: waiting for otrdesk: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// parallel runs f(0..n-1), at most k at a time, and returns the first error.
func parallel(ctx context.Context, n, k int, f func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	sem := make(chan struct{}, k)
	for i := range n {
		sem <- struct{}{}
		mu.Lock()
		stop := first != nil || ctx.Err() != nil
		mu.Unlock()
		if stop {
			<-sem
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				mu.Lock()
				first = cmpOr(first, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return cmpOr(first, ctx.Err())
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func closeAll(cs []*xmpptest.Client) {
	for _, c := range cs {
		if c != nil {
			c.Close()
		}
	}
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return fi.Size()
}

func (r *result) print(w io.Writer) {
	o := r.o
	fmt.Fprintf(w, "otrdesk load benchmark: %d visitors (%d anonymous c2s, %d on one XEP-0114 connection), %d operators (c2s, echoing plaintext), skins: %d\n",
		o.visitors, o.c2s, o.visitors-o.c2s, o.operators, (o.operators+opsPerSkin-1)/opsPerSkin)
	fmt.Fprintf(w, "one private Prosody (no archive, no rate limits); otrdesk as a child process (component + bbolt store), crash = SIGKILL\n")
	fmt.Fprintf(w, "%d messages in flight, %d-byte bodies; unanswered after %v = counted and sent again; bounced = sent again after 100 ms, doubling to 2 s\n\n", o.window, o.size, o.timeout)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "phase\tanswered\ttime\trelay msg/s\tp50\tp99\tbounced, re-sent\tsilent, re-sent\tlost\t")
	for _, p := range []struct {
		ph   *phase
		left int
	}{{r.open, r.openLeft}, {r.steady, r.steadyLeft}, {r.crash, r.crashLeft}} {
		d := p.ph.end.Sub(p.ph.start)
		fmt.Fprintf(tw, "%s\t%d\t%v\t%.0f\t%v\t%v\t%d\t%d\t%d\t\n", p.ph.name, p.ph.echoed, d.Round(time.Millisecond),
			float64(p.ph.echoed)/d.Seconds(), quantile(p.ph.lat, .5).Round(time.Microsecond), quantile(p.ph.lat, .99).Round(time.Microsecond),
			p.ph.bounced, p.ph.silent(), p.left)
	}
	tw.Flush()
	fmt.Fprintf(w, "chats opened: %d in %v (%.0f new chats/s, each a new alias, a store record and an operator)\n",
		o.visitors, r.open.end.Sub(r.open.start).Round(time.Millisecond), float64(o.visitors)/r.open.end.Sub(r.open.start).Seconds())
	fmt.Fprintln(w, "(a relay is a visitor's message to an operator and its echo back: 2 otrdesk relays, 4 Prosody routings;")
	fmt.Fprintln(w, " lost = never answered, not even after re-sends; p50/p99 only over messages answered without a re-send)")
	fmt.Fprintf(w, "\nmessages crossed to the wrong visitor: %d (target 0); stanzas dropped by a full client queue: %d\n", r.crossed, r.clientDrops)
	kib := func(a, b uint64) float64 { return (float64(a) - float64(b)) / float64(o.visitors) / 1024 }
	fmt.Fprintf(w, "otrdesk heap after GC: %.1f MiB with operators only; per idle chat %.2f KiB (all open, silent); per active chat %.2f KiB (mid-relay); per chat after the restart %.2f KiB\n",
		float64(r.heapBase)/(1<<20), kib(r.heapIdle, r.heapBase), kib(r.heapActive, r.heapBase), kib(r.heapRestart, r.heapBase))
	fmt.Fprintf(w, "store file: %.1f MiB after opening the chats, %.1f MiB at the end (%.0f bytes per guest)\n",
		float64(r.storeOpen)/(1<<20), float64(r.storeEnd)/(1<<20), float64(r.storeEnd)/float64(o.visitors))
	fmt.Fprintf(w, "\ncrash: SIGKILL, restarted after %v: otrdesk ready %v after the kill; first chat relayed again after %v, every chat after %v (p50 %v, p99 %v)\n",
		o.down, r.killToReady.Round(time.Millisecond), quantile(r.recovery, 0).Round(time.Millisecond), r.killToAll.Round(time.Millisecond),
		quantile(r.recovery, .5).Round(time.Millisecond), quantile(r.recovery, .99).Round(time.Millisecond))
	fmt.Fprintf(w, "(every chat must send a message to count: at %.0f msg/s, touching %d chats takes %v by itself)\n",
		float64(r.steady.echoed)/r.steady.end.Sub(r.steady.start).Seconds(), o.visitors,
		time.Duration(float64(o.visitors)/(float64(r.steady.echoed)/r.steady.end.Sub(r.steady.start).Seconds())*float64(time.Second)).Round(time.Millisecond))
	fmt.Fprintf(w, "chats lost: %d (target 0): %d came back to another operator or alias, %d never relayed again\n",
		r.moved+r.notRecovered, r.moved, r.notRecovered)
	if r.moved > 0 {
		fmt.Fprintf(w, "of the chats that moved, %d had a message vanish silently around the kill\n", r.movedSilent)
	}
	if len(r.movedHow) > 0 {
		fmt.Fprintf(w, "moves (killed at %s): %s\n", r.killAt.Format("15:04:05.000"), strings.Join(r.movedHow, "; "))
	}
	fmt.Fprintf(w, "around the kill: %d visitor messages bounced and sent again; %d vanished silently (in otrdesk, or answered into the outage) and were sent again after %v; %d operators' answers bounced\n",
		r.crash.bounced, r.crash.silent(), o.timeout, r.opBounces)
	var drops []string
	for k, v := range r.drops {
		if strings.HasPrefix(k, "otrdesk_dropped_stanzas_total") && v > 0 {
			drops = append(drops, fmt.Sprintf("%s %.0f", strings.TrimSuffix(strings.TrimPrefix(k, "otrdesk_dropped_stanzas_total{reason="), "}"), v))
		}
	}
	sort.Strings(drops)
	if len(drops) == 0 {
		drops = []string{"none"}
	}
	fmt.Fprintf(w, "otrdesk's refusals after the restart (its counters start at zero there): %s\n", strings.Join(drops, ", "))
}
