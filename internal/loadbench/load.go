package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/jid"

	"otrdesk.im/otrdesk/internal/xmpptest"
)

// visitor is one website visitor: a JID, the connection it writes on, and
// the message it has in flight (guarded by load.mu).
type visitor struct {
	id     int
	jid    string // full JID
	bare   string
	client *xmpptest.Client
	comp   bool   // written by the visitors' component: stanzas carry from
	to     string // the skin's JID it writes to

	seq       int       // the message in flight, or the last one sent
	busy      bool      // a message is in flight
	resend    bool      // the next send repeats seq (bounced or unanswered)
	sentAt    time.Time // last send of seq
	firstSent time.Time // first send of seq (latency is measured from it)
	backoff   time.Duration
	answered  int       // echoes received
	relayedAt time.Time // first echo of a message sent after the kill
	silent    bool      // a message of its went unanswered (neither echo nor bounce)

	op    int    // operator that answered first (-1: none yet)
	alias string // the alias the operator saw first
}

// phase counts what happened while it ran.
type phase struct {
	name                string
	start, end          time.Time
	sent, resent        int
	echoed, dup         int
	bounced, unanswered int
	lat                 []time.Duration
}

// load drives the visitors: one sender keeps a window of messages in
// flight, taking visitors round robin from ready, so every chat carries
// traffic; echoes, bounces and timeouts free the window again.
type load struct {
	size    int
	timeout time.Duration

	window chan struct{} // one token per message in flight
	ready  chan int      // visitors with nothing in flight, oldest first

	mu        sync.Mutex
	vs        []*visitor
	ph        *phase
	draining  bool  // send only re-sends; park the rest
	parked    []int // visitors taken out of ready while draining
	killAt    time.Time
	crossed   int // echoes delivered to another visitor than the sender
	moved     map[int]bool
	movedHow  []string // the first few moves, for the report
	opBounces int      // operators' echoes bounced (otrdesk down)
}

func newLoad(vs []*visitor, window, size int, timeout time.Duration) *load {
	l := &load{
		size: size, timeout: timeout,
		window: make(chan struct{}, window),
		ready:  make(chan int, len(vs)),
		vs:     vs, moved: map[int]bool{},
		ph: &phase{},
	}
	for _, v := range vs {
		v.op = -1
		l.ready <- v.id
	}
	return l
}

// begin starts a phase: counts go to a fresh phase and parked visitors
// come back.
func (l *load) begin(name string) *phase {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ph = &phase{name: name, start: time.Now()}
	l.draining = false
	for _, id := range l.parked {
		l.ready <- id
	}
	l.parked = nil
	return l.ph
}

// send runs until ctx ends: take the next ready visitor, wait for room in
// the window, send its message.
func (l *load) send(ctx context.Context) error {
	for {
		var id int
		select {
		case id = <-l.ready:
		case <-ctx.Done():
			return nil
		}
		l.mu.Lock()
		v := l.vs[id]
		if l.draining && !v.resend {
			l.parked = append(l.parked, id)
			l.mu.Unlock()
			continue
		}
		l.mu.Unlock()
		select {
		case l.window <- struct{}{}:
		case <-ctx.Done():
			l.mu.Lock()
			l.parked = append(l.parked, id)
			l.mu.Unlock()
			return nil
		}
		now := time.Now()
		l.mu.Lock()
		if v.resend {
			l.ph.resent++
		} else {
			v.seq++
			v.firstSent = now
			l.ph.sent++
		}
		v.resend, v.busy, v.sentAt = false, true, now
		raw := l.stanza(v)
		l.mu.Unlock()
		if err := v.client.SendRaw(ctx, raw); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

// stanza is the visitor's message: its id names visitor and sequence number
// (a bounce carries it back), and so does the start of the body (an echo
// carries it back).
func (l *load) stanza(v *visitor) string {
	mark := "lb " + strconv.Itoa(v.id) + " " + strconv.Itoa(v.seq) + " "
	body := mark + strings.Repeat("x", max(l.size-len(mark), 1))
	s := "<message type='chat' to='" + v.to + "' id='lb-" + strconv.Itoa(v.id) + "-" + strconv.Itoa(v.seq) + "'"
	if v.comp {
		s += " from='" + v.jid + "'"
	}
	return s + "><body>" + body + "</body></message>"
}

// parseMark returns the visitor and sequence number at the start of a body.
func parseMark(body string) (id, seq int, ok bool) {
	rest, ok := strings.CutPrefix(body, "lb ")
	if !ok {
		return 0, 0, false
	}
	f := strings.SplitN(rest, " ", 3)
	if len(f) < 3 {
		return 0, 0, false
	}
	id, err1 := strconv.Atoi(f[0])
	seq, err2 := strconv.Atoi(f[1])
	return id, seq, err1 == nil && err2 == nil
}

// parseID returns the visitor and sequence number of a message id.
func parseID(s string) (id, seq int, ok bool) {
	rest, ok := strings.CutPrefix(s, "lb-")
	if !ok {
		return 0, 0, false
	}
	a, b, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, 0, false
	}
	id, err1 := strconv.Atoi(a)
	seq, err2 := strconv.Atoi(b)
	return id, seq, err1 == nil && err2 == nil
}

// receive reads what one visitor connection gets until it ends.
func (l *load) receive(ctx context.Context, c *xmpptest.Client) {
	for {
		st, err := c.Next(ctx, nil)
		if err != nil {
			return
		}
		if st.Name != "message" {
			continue
		}
		if st.Type == "error" {
			if id, seq, ok := parseID(st.ID); ok {
				l.bounce(id, seq)
			}
			continue
		}
		if id, seq, ok := parseMark(st.Body); ok && st.HasBody {
			l.echo(id, seq, st.To)
		}
	}
}

func (l *load) visitor(id int) *visitor {
	if id < 0 || id >= len(l.vs) {
		return nil
	}
	return l.vs[id]
}

// echo is an operator's answer reaching the visitor.
func (l *load) echo(id, seq int, to string) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	v := l.visitor(id)
	if v == nil {
		return
	}
	if bareOf(to) != v.bare {
		l.crossed++
	}
	if !v.busy || seq != v.seq {
		l.ph.dup++
		return
	}
	if v.sentAt.Equal(v.firstSent) { // not re-sent
		l.ph.lat = append(l.ph.lat, now.Sub(v.firstSent))
	}
	l.ph.echoed++
	v.busy, v.backoff = false, 0
	v.answered++
	if !l.killAt.IsZero() && v.relayedAt.IsZero() && v.sentAt.After(l.killAt) {
		v.relayedAt = now
	}
	<-l.window
	l.ready <- id
}

// bounce is the server (or otrdesk) refusing the visitor's message: it is
// sent again, the same bytes, after a backoff (as the widget does).
func (l *load) bounce(id, seq int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	v := l.visitor(id)
	if v == nil || !v.busy || seq != v.seq {
		return
	}
	l.ph.bounced++
	l.retryLocked(v)
}

func (l *load) retryLocked(v *visitor) {
	v.busy, v.resend = false, true
	v.backoff = min(max(2*v.backoff, 100*time.Millisecond), 2*time.Second)
	<-l.window
	id := v.id
	time.AfterFunc(v.backoff, func() { l.ready <- id })
}

// expire re-sends messages unanswered for longer than the timeout (a
// message otrdesk took in and died with is never answered nor bounced).
func (l *load) expire(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.vs {
		if v.busy && now.Sub(v.sentAt) > l.timeout {
			l.ph.unanswered++
			v.silent = true
			v.backoff = 0
			l.retryLocked(v)
		}
	}
}

// quiet reports whether nothing is in flight and nothing waits to be sent
// again.
func (l *load) quiet() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.vs {
		if v.busy || v.resend {
			return false
		}
	}
	return true
}

// drain stops new messages and waits (bounded) until the ones in flight
// are answered; it returns how many never were.
func (l *load) drain(ctx context.Context, bound time.Duration) int {
	l.mu.Lock()
	l.draining = true
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	for !l.quiet() && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ph.end = time.Now()
	n := 0
	for _, v := range l.vs {
		if v.busy || v.resend {
			n++
		}
	}
	return n
}

// operate is one operator: approve otrdesk's subscription, answer every
// benchmark message with the same body, and note which alias each visitor
// came from (a chat that comes back under another alias or operator after
// a restart is a lost chat).
func (l *load) operate(ctx context.Context, op int, c *xmpptest.Client) {
	for {
		st, err := c.Next(ctx, nil)
		if err != nil {
			return
		}
		switch {
		case st.Name == "presence" && st.Type == "subscribe":
			_ = c.Subscribed(ctx, st.From)
			_ = c.Presence(ctx, "", 5)
		case st.Name == "message" && st.Type == "error":
			l.mu.Lock()
			l.opBounces++
			l.mu.Unlock()
		case st.Name == "message" && st.HasBody:
			id, _, ok := parseMark(st.Body)
			if !ok {
				continue // otrdesk's notice of a new chat
			}
			alias := bareOf(st.From)
			l.mu.Lock()
			if v := l.visitor(id); v != nil {
				switch {
				case v.op < 0:
					v.op, v.alias = op, alias
				case v.op != op || v.alias != alias:
					if !l.moved[id] && len(l.movedHow) < 5 {
						l.movedHow = append(l.movedHow, fmt.Sprintf("visitor %d (c2s %t, a message unanswered %t): op%d %s → op%d %s at %s",
							id, !v.comp, v.silent, v.op, v.alias, op, alias, time.Now().Format("15:04:05.000")))
					}
					l.moved[id] = true
				}
			}
			l.mu.Unlock()
			_ = c.Message(ctx, st.From, st.Body)
		}
	}
}

// answeredAll reports whether every visitor has had at least n echoes.
func (l *load) answeredAll(n int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.vs {
		if v.answered < n {
			return false
		}
	}
	return true
}

// recovered returns how many visitors relayed a message sent after the
// kill, and when the last of them did.
func (l *load) recovered() (n int, last time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range l.vs {
		if !v.relayedAt.IsZero() {
			n++
			if v.relayedAt.After(last) {
				last = v.relayedAt
			}
		}
	}
	return n, last
}

// recoveryTimes returns, sorted, each recovered visitor's time from the
// kill to its first relayed message.
func (l *load) recoveryTimes() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var d []time.Duration
	for _, v := range l.vs {
		if !v.relayedAt.IsZero() {
			d = append(d, v.relayedAt.Sub(l.killAt))
		}
	}
	slices.Sort(d)
	return d
}

func quantile(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[int(q*float64(len(s)-1))]
}

func bareOf(s string) string {
	if j, err := jid.Parse(s); err == nil {
		return j.Bare().String()
	}
	return s
}
