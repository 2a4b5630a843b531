package xmpptest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp/jid"
)

// Errors of the test client.
var (
	// ErrAuth is returned when the server refuses the credentials.
	ErrAuth = errors.New("xmpptest: authentication refused")
	// ErrNoMechanism is returned when the server offers no usable SASL
	// mechanism.
	ErrNoMechanism = errors.New("xmpptest: no usable SASL mechanism")
	// ErrIQ is wrapped by IQ when the answer is an error.
	ErrIQ = errors.New("xmpptest: iq answered with an error")
	// ErrClosed is returned by methods of a closed Client.
	ErrClosed = errors.New("xmpptest: client closed")
)

// defaultTimeout bounds stream negotiation when the caller's context has no
// deadline.
const defaultTimeout = 30 * time.Second

// maxQueued bounds the stanzas a Client keeps for Next; beyond it the oldest
// are dropped (and counted by Dropped).
const maxQueued = 10000

// Client is a c2s test client: one authenticated, bound stream with initial
// presence sent. A goroutine reads the stream and queues every stanza; Next
// takes them out. Pings and disco#info requests to the client are answered
// automatically (as any real client does) and not queued.
type Client struct {
	jid       jid.JID
	conn      net.Conn
	component bool // an XEP-0114 stream: replies carry from

	wmu sync.Mutex // serialises writes on conn

	mu      sync.Mutex // guards the fields below
	queue   []queued
	seq     uint64
	wake    chan struct{} // closed and replaced whenever queue or readErr change
	readErr error
	dropped int

	ids       atomic.Uint64
	done      chan struct{} // closed when the read loop ends
	closeOnce sync.Once
	closed    atomic.Bool
	logf      func(string, ...any)
}

type queued struct {
	seq uint64
	st  Stanza
}

// credentials for Dial; nil means SASL ANONYMOUS.
type credentials struct {
	user, password string
}

// features of a stream we care about.
type features struct {
	StartTLS *struct{} `xml:"urn:ietf:params:xml:ns:xmpp-tls starttls"`
	Mechs    []string  `xml:"urn:ietf:params:xml:ns:xmpp-sasl mechanisms>mechanism"`
	Bind     *struct{} `xml:"urn:ietf:params:xml:ns:xmpp-bind bind"`
	Session  *struct {
		Optional *struct{} `xml:"optional"`
	} `xml:"urn:ietf:params:xml:ns:xmpp-session session"`
}

// dial connects to a c2s listener at addr, negotiates STARTTLS (any
// certificate is accepted: the harness uses a throwaway one), authenticates
// (SCRAM-SHA-1 or PLAIN with creds, ANONYMOUS without), binds resource and
// sends initial presence.
func dial(ctx context.Context, addr, domain string, creds *credentials, resource string, logf func(string, ...any)) (*Client, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultTimeout)
		defer cancel()
	}
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("xmpptest: dialing c2s %s: %w", addr, err)
	}
	dl, _ := ctx.Deadline()
	_ = raw.SetDeadline(dl)
	stop := closeOnDone(ctx, raw)
	c, sr, err := negotiate(ctx, raw, domain, creds, resource)
	if !stop() || err != nil {
		raw.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	c.logf = logf
	if err := c.conn.SetDeadline(time.Time{}); err != nil {
		c.conn.Close()
		return nil, fmt.Errorf("xmpptest: clearing deadline: %w", err)
	}
	go c.readLoop(sr)
	if err := c.SendRaw(ctx, "<presence/>"); err != nil {
		c.Close()
		return nil, fmt.Errorf("xmpptest: sending initial presence: %w", err)
	}
	return c, nil
}

// closeOnDone closes conn's deadlines when ctx ends. The returned stop
// reports whether ctx was still live (and waits for the callback otherwise).
func closeOnDone(ctx context.Context, conn net.Conn) (stop func() bool) {
	fired := make(chan struct{})
	s := context.AfterFunc(ctx, func() {
		_ = conn.SetDeadline(time.Unix(1, 0))
		close(fired)
	})
	return func() bool {
		if s() {
			return true
		}
		<-fired
		return false
	}
}

func openStream(conn net.Conn, domain string) (*streamReader, features, error) {
	hdr := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en' to='" + escape(domain) + "'>"
	if _, err := conn.Write([]byte(hdr)); err != nil {
		return nil, features{}, fmt.Errorf("xmpptest: writing stream header: %w", err)
	}
	sr := newStreamReader(conn)
	st, err := sr.next()
	if err != nil {
		return nil, features{}, fmt.Errorf("xmpptest: reading stream features: %w", err)
	}
	if st.Space != nsStream || st.Name != "features" {
		return nil, features{}, fmt.Errorf("xmpptest: expected stream features, got <%s>", st.Name)
	}
	var f features
	if err := xml.Unmarshal(st.Raw, &f); err != nil {
		return nil, features{}, fmt.Errorf("xmpptest: parsing stream features: %w", err)
	}
	return sr, f, nil
}

// negotiate runs the stream negotiation up to resource binding and returns
// the client (its read loop not yet started) with the stream reader.
func negotiate(ctx context.Context, raw net.Conn, domain string, creds *credentials, resource string) (*Client, *streamReader, error) {
	sr, f, err := openStream(raw, domain)
	if err != nil {
		return nil, nil, err
	}
	if f.StartTLS == nil {
		return nil, nil, errors.New("xmpptest: the server offers no STARTTLS")
	}
	if _, err := raw.Write([]byte("<starttls xmlns='" + nsTLS + "'/>")); err != nil {
		return nil, nil, fmt.Errorf("xmpptest: writing starttls: %w", err)
	}
	st, err := sr.next()
	if err != nil {
		return nil, nil, fmt.Errorf("xmpptest: reading starttls answer: %w", err)
	}
	if st.Name != "proceed" {
		return nil, nil, fmt.Errorf("xmpptest: starttls refused: <%s>", st.Name)
	}
	tc := tls.Client(raw, &tls.Config{
		ServerName:         domain,
		InsecureSkipVerify: true, // the harness's own throwaway certificate
		MinVersion:         tls.VersionTLS12,
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, nil, fmt.Errorf("xmpptest: tls handshake: %w", err)
	}
	if sr, f, err = openStream(tc, domain); err != nil {
		return nil, nil, err
	}
	if err := authenticate(tc, sr, f.Mechs, creds); err != nil {
		return nil, nil, err
	}
	if sr, f, err = openStream(tc, domain); err != nil {
		return nil, nil, err
	}
	if f.Bind == nil {
		return nil, nil, errors.New("xmpptest: the server offers no resource binding")
	}
	bind := "<iq type='set' id='bind-1'><bind xmlns='" + nsBind + "'>"
	if resource != "" {
		bind += "<resource>" + escape(resource) + "</resource>"
	}
	bind += "</bind></iq>"
	if _, err := tc.Write([]byte(bind)); err != nil {
		return nil, nil, fmt.Errorf("xmpptest: writing bind request: %w", err)
	}
	st, err = nextIQ(sr, "bind-1")
	if err != nil {
		return nil, nil, fmt.Errorf("xmpptest: binding a resource: %w", err)
	}
	var b struct {
		JID string `xml:"bind>jid"`
	}
	if err := xml.Unmarshal(st.Raw, &b); err != nil {
		return nil, nil, fmt.Errorf("xmpptest: parsing bind result: %w", err)
	}
	j, err := jid.Parse(b.JID)
	if err != nil {
		return nil, nil, fmt.Errorf("xmpptest: parsing bound jid: %w", err)
	}
	if f.Session != nil && f.Session.Optional == nil {
		if _, err := tc.Write([]byte("<iq type='set' id='sess-1'><session xmlns='" + nsSession + "'/></iq>")); err != nil {
			return nil, nil, fmt.Errorf("xmpptest: writing session request: %w", err)
		}
		if _, err := nextIQ(sr, "sess-1"); err != nil {
			return nil, nil, fmt.Errorf("xmpptest: establishing session: %w", err)
		}
	}
	c := &Client{
		jid:  j,
		conn: tc,
		wake: make(chan struct{}),
		done: make(chan struct{}),
	}
	return c, sr, nil
}

// nextIQ reads elements until the iq answering id; an error answer is an error.
func nextIQ(sr *streamReader, id string) (Stanza, error) {
	for {
		st, err := sr.next()
		if err != nil {
			return Stanza{}, err
		}
		if st.Name != "iq" || st.ID != id {
			continue
		}
		if st.Type == "error" {
			return st, fmt.Errorf("%w: %s", ErrIQ, stanzaCondition(st))
		}
		return st, nil
	}
}

// pickMechanism chooses the SASL mechanism: ANONYMOUS without credentials,
// else SCRAM-SHA-1, then PLAIN. -PLUS variants are left out on purpose
// (ejabberd 23.01 gets channel binding wrong on TLS 1.3).
func pickMechanism(offered []string, anonymous bool) (sasl.Mechanism, error) {
	has := make(map[string]bool, len(offered))
	for _, m := range offered {
		has[m] = true
	}
	if anonymous {
		if has["ANONYMOUS"] {
			return sasl.Anonymous, nil
		}
		return sasl.Mechanism{}, fmt.Errorf("%w: ANONYMOUS not offered (offered %v)", ErrNoMechanism, offered)
	}
	for _, m := range []sasl.Mechanism{sasl.ScramSha1, sasl.Plain} {
		if has[m.Name] {
			return m, nil
		}
	}
	return sasl.Mechanism{}, fmt.Errorf("%w: offered %v", ErrNoMechanism, offered)
}

func authenticate(conn net.Conn, sr *streamReader, offered []string, creds *credentials) error {
	mech, err := pickMechanism(offered, creds == nil)
	if err != nil {
		return err
	}
	var opts []sasl.Option
	if creds != nil {
		opts = append(opts, sasl.Credentials(func() ([]byte, []byte, []byte) {
			return []byte(creds.user), []byte(creds.password), nil
		}))
	}
	n := sasl.NewClient(mech, opts...)
	more, resp, err := n.Step(nil)
	if err != nil {
		return fmt.Errorf("xmpptest: sasl %s start: %w", mech.Name, err)
	}
	if _, err := conn.Write([]byte("<auth xmlns='" + nsSASL + "' mechanism='" + mech.Name + "'>" + b64(resp) + "</auth>")); err != nil {
		return fmt.Errorf("xmpptest: writing sasl auth: %w", err)
	}
	for {
		st, err := sr.next()
		if err != nil {
			return fmt.Errorf("xmpptest: reading sasl answer: %w", err)
		}
		var text struct {
			Data string `xml:",chardata"`
		}
		if err := xml.Unmarshal(st.Raw, &text); err != nil {
			return fmt.Errorf("xmpptest: parsing sasl %s: %w", st.Name, err)
		}
		switch st.Name {
		case "challenge":
			data, err := base64.StdEncoding.DecodeString(text.Data)
			if err != nil {
				return fmt.Errorf("xmpptest: decoding sasl challenge: %w", err)
			}
			more, resp, err = n.Step(data)
			if err != nil {
				return fmt.Errorf("xmpptest: sasl %s step: %w", mech.Name, err)
			}
			if _, err := conn.Write([]byte("<response xmlns='" + nsSASL + "'>" + b64(resp) + "</response>")); err != nil {
				return fmt.Errorf("xmpptest: writing sasl response: %w", err)
			}
		case "success":
			if text.Data != "" && text.Data != "=" && more {
				data, err := base64.StdEncoding.DecodeString(text.Data)
				if err != nil {
					return fmt.Errorf("xmpptest: decoding sasl success: %w", err)
				}
				if _, _, err := n.Step(data); err != nil {
					return fmt.Errorf("xmpptest: sasl %s: verifying the server: %w", mech.Name, err)
				}
			}
			return nil
		case "failure":
			cond := "undefined-condition"
			for _, c := range st.Children {
				if c.Local != "text" {
					cond = c.Local
					break
				}
			}
			return fmt.Errorf("%w: sasl %s: %s", ErrAuth, mech.Name, cond)
		default:
			return fmt.Errorf("xmpptest: unexpected <%s> during sasl", st.Name)
		}
	}
}

func b64(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

// stanzaCondition names the defined condition of an error stanza.
func stanzaCondition(st Stanza) string {
	var v struct {
		Error struct {
			Inner []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"error"`
	}
	if xml.Unmarshal(st.Raw, &v) == nil {
		for _, in := range v.Error.Inner {
			if in.XMLName.Space == nsStanzas && in.XMLName.Local != "text" {
				return in.XMLName.Local
			}
		}
	}
	return "undefined-condition"
}

// JID returns the full JID the server bound for this client.
func (c *Client) JID() jid.JID { return c.jid }

func (c *Client) readLoop(sr *streamReader) {
	defer close(c.done)
	for {
		st, err := sr.next()
		if err != nil {
			// The stream is over: answer a close with a close (servers
			// wait for it when shutting down), then drop the connection.
			if errors.Is(err, ErrStreamClosed) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_ = c.writeLocked(ctx, []byte("</stream:stream>"))
				cancel()
			}
			c.conn.Close()
			c.mu.Lock()
			c.readErr = err
			close(c.wake)
			c.wake = make(chan struct{})
			c.mu.Unlock()
			return
		}
		if c.autoAnswer(st) {
			continue
		}
		c.mu.Lock()
		c.seq++
		c.queue = append(c.queue, queued{seq: c.seq, st: st})
		if len(c.queue) > maxQueued {
			c.queue = c.queue[1:]
			c.dropped++
		}
		close(c.wake)
		c.wake = make(chan struct{})
		c.mu.Unlock()
	}
}

// autoAnswer answers pings and disco#info requests, as real clients do.
func (c *Client) autoAnswer(st Stanza) bool {
	if st.Name != "iq" || st.Type != "get" || len(st.Children) != 1 {
		return false
	}
	var payload string
	switch st.Children[0] {
	case xml.Name{Space: nsPing, Local: "ping"}:
	case xml.Name{Space: nsDiscoInf, Local: "query"}:
		payload = "<query xmlns='" + nsDiscoInf + "'><identity category='client' type='pc' name='xmpptest'/>" +
			"<feature var='" + nsDiscoInf + "'/><feature var='" + nsPing + "'/></query>"
	default:
		return false
	}
	reply := "<iq type='result' id='" + escape(st.ID) + "'"
	if c.component && st.To != "" {
		reply += " from='" + escape(st.To) + "'"
	}
	if st.From != "" {
		reply += " to='" + escape(st.From) + "'"
	}
	reply += ">" + payload + "</iq>"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.SendRaw(ctx, reply); err != nil && c.logf != nil {
		c.logf("xmpptest: %s: answering %s: %v", c.jid, st.Children[0].Local, err)
	}
	return true
}

// Next waits for the next received stanza for which match returns true (any
// stanza when match is nil), removes it from the queue and returns it.
// Stanzas that do not match stay queued, in order, for later calls. Once the
// stream has ended and nothing queued matches, Next returns the read error
// (ErrStreamClosed, a *StreamError, ...).
func (c *Client) Next(ctx context.Context, match func(Stanza) bool) (Stanza, error) {
	var seen uint64
	for {
		c.mu.Lock()
		var cand []queued
		for _, q := range c.queue {
			if q.seq > seen {
				cand = append(cand, q)
			}
		}
		wake, readErr := c.wake, c.readErr
		c.mu.Unlock()
		for _, q := range cand {
			seen = q.seq
			if match == nil || match(q.st) {
				if c.take(q.seq) {
					return q.st, nil
				}
			}
		}
		if readErr != nil {
			if c.closed.Load() {
				readErr = ErrClosed
			}
			return Stanza{}, fmt.Errorf("xmpptest: %s: waiting for a stanza: %w", c.jid, readErr)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return Stanza{}, fmt.Errorf("xmpptest: %s: waiting for a stanza: %w", c.jid, ctx.Err())
		}
	}
}

func (c *Client) take(seq uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range c.queue {
		if q.seq == seq {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			return true
		}
	}
	return false
}

// Pending returns a copy of the stanzas received and not yet taken by Next,
// oldest first. Tests use it to assert that nothing arrived (after a Ping
// round trip as a barrier).
func (c *Client) Pending() []Stanza {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Stanza, len(c.queue))
	for i, q := range c.queue {
		out[i] = q.st
	}
	return out
}

// Discard drops every queued stanza and returns how many there were.
func (c *Client) Discard() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := len(c.queue)
	c.queue = nil
	return n
}

// Dropped returns how many stanzas were dropped because the queue was full.
func (c *Client) Dropped() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dropped
}

// SendRaw writes s to the stream as is. It must be one or more complete
// top-level elements.
func (c *Client) SendRaw(ctx context.Context, s string) error {
	return c.write(ctx, []byte(s))
}

// Send encodes the tokens of r and writes them to the stream.
func (c *Client) Send(ctx context.Context, r xml.TokenReader) error {
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	for {
		tok, err := r.Token()
		if tok != nil {
			if err := enc.EncodeToken(tok); err != nil {
				return fmt.Errorf("xmpptest: encoding stanza: %w", err)
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return fmt.Errorf("xmpptest: reading stanza tokens: %w", err)
		}
	}
	if err := enc.Flush(); err != nil {
		return fmt.Errorf("xmpptest: encoding stanza: %w", err)
	}
	return c.write(ctx, buf.Bytes())
}

func (c *Client) write(ctx context.Context, b []byte) error {
	if c.closed.Load() {
		return fmt.Errorf("xmpptest: %s: writing: %w", c.jid, ErrClosed)
	}
	select {
	case <-c.done:
		c.mu.Lock()
		err := c.readErr
		c.mu.Unlock()
		return fmt.Errorf("xmpptest: %s: writing: stream ended: %w", c.jid, err)
	default:
	}
	return c.writeLocked(ctx, b)
}

// writeLocked writes b under the write lock, bounded by ctx.
func (c *Client) writeLocked(ctx context.Context, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	dl, _ := ctx.Deadline()
	if err := c.conn.SetWriteDeadline(dl); err != nil {
		return fmt.Errorf("xmpptest: %s: writing: %w", c.jid, err)
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = c.conn.SetWriteDeadline(time.Unix(1, 0))
		close(fired)
	})
	_, err := c.conn.Write(b)
	if !stop() {
		<-fired
		if err == nil {
			err = ctx.Err()
		}
	}
	_ = c.conn.SetWriteDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("xmpptest: %s: writing: %w", c.jid, err)
	}
	return nil
}

// Presence sends an available presence with the given show ("" for plain
// available, or away, chat, dnd, xa) and priority. show "unavailable" sends
// unavailable presence instead.
func (c *Client) Presence(ctx context.Context, show string, priority int) error {
	if show == "unavailable" {
		return c.SendRaw(ctx, "<presence type='unavailable'/>")
	}
	s := "<presence>"
	if show != "" {
		s += "<show>" + escape(show) + "</show>"
	}
	s += "<priority>" + strconv.Itoa(priority) + "</priority></presence>"
	return c.SendRaw(ctx, s)
}

// Message sends a chat message with body (escaped, otherwise byte-exact) to
// the JID to.
func (c *Client) Message(ctx context.Context, to, body string) error {
	return c.SendRaw(ctx, "<message type='chat' to='"+escape(to)+"' id='"+c.newID()+"'><body>"+escape(body)+"</body></message>")
}

// Subscribed approves a presence subscription request from the JID to.
func (c *Client) Subscribed(ctx context.Context, to string) error {
	return c.SendRaw(ctx, "<presence type='subscribed' to='"+escape(to)+"'/>")
}

func (c *Client) newID() string {
	return "xt-" + strconv.FormatUint(c.ids.Add(1), 10)
}

// IQ sends an iq of type typ ("get" or "set") with the given payload (raw
// XML) to the JID to ("" for the account itself) and waits for its answer.
// An error answer is returned with an error wrapping ErrIQ and naming the
// condition.
func (c *Client) IQ(ctx context.Context, typ, to, payload string) (Stanza, error) {
	id := c.newID()
	s := "<iq type='" + escape(typ) + "' id='" + id + "'"
	if to != "" {
		s += " to='" + escape(to) + "'"
	}
	s += ">" + payload + "</iq>"
	if err := c.SendRaw(ctx, s); err != nil {
		return Stanza{}, err
	}
	st, err := c.Next(ctx, func(st Stanza) bool {
		return st.Name == "iq" && st.ID == id && (st.Type == "result" || st.Type == "error")
	})
	if err != nil {
		return Stanza{}, err
	}
	if st.Type == "error" {
		return st, fmt.Errorf("%w: %s", ErrIQ, stanzaCondition(st))
	}
	return st, nil
}

// Ping sends an XEP-0199 ping to the JID to ("" for the server) and waits
// for the answer. Stanzas are delivered in order, so a ping round trip is a
// barrier: whatever the server routed to this client before the pong is
// queued once Ping returns.
func (c *Client) Ping(ctx context.Context, to string) error {
	_, err := c.IQ(ctx, "get", to, "<ping xmlns='"+nsPing+"'/>")
	return err
}

// EnableCarbons turns on XEP-0280 message carbons for this resource.
func (c *Client) EnableCarbons(ctx context.Context) error {
	_, err := c.IQ(ctx, "set", "", "<enable xmlns='"+nsCarbons+"'/>")
	return err
}

// Archive queries the account's XEP-0313 message archive and returns the
// archived messages (the forwarded <message/> elements), oldest first.
func (c *Client) Archive(ctx context.Context) ([]Stanza, error) {
	var (
		out   []Stanza
		after string
	)
	for page := 0; page < 1000; page++ {
		qid := c.newID()
		rsm := "<set xmlns='http://jabber.org/protocol/rsm'><max>100</max>"
		if after != "" {
			rsm += "<after>" + escape(after) + "</after>"
		}
		rsm += "</set>"
		fin, err := c.IQ(ctx, "set", "", "<query xmlns='"+nsMAM+"' queryid='"+qid+"'>"+rsm+"</query>")
		if err != nil {
			return nil, fmt.Errorf("xmpptest: querying the archive: %w", err)
		}
		// Results arrive before the final iq; they are queued already.
		for {
			st, err := c.takeMatching(func(st Stanza) bool {
				return st.Name == "message" && mamQueryID(st.Raw) == qid
			})
			if err != nil {
				break
			}
			fwd, err := forwardedMessage(st.Raw)
			if err != nil {
				return nil, err
			}
			out = append(out, fwd)
		}
		var f struct {
			Fin struct {
				Complete string `xml:"complete,attr"`
				Last     string `xml:"set>last"`
			} `xml:"fin"`
		}
		if err := xml.Unmarshal(fin.Raw, &f); err != nil {
			return nil, fmt.Errorf("xmpptest: parsing archive result: %w", err)
		}
		if f.Fin.Complete == "true" || f.Fin.Last == "" {
			return out, nil
		}
		after = f.Fin.Last
	}
	return out, nil
}

// takeMatching removes and returns the first queued stanza matching, without
// waiting.
func (c *Client) takeMatching(match func(Stanza) bool) (Stanza, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range c.queue {
		if match(q.st) {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			return q.st, nil
		}
	}
	return Stanza{}, errNone
}

var errNone = errors.New("xmpptest: nothing queued matches")

// mamQueryID returns the queryid of a MAM result message, "" if it is none.
func mamQueryID(raw []byte) string {
	var v struct {
		Result struct {
			XMLName xml.Name
			QueryID string `xml:"queryid,attr"`
		} `xml:"urn:xmpp:mam:2 result"`
	}
	if xml.Unmarshal(raw, &v) != nil {
		return ""
	}
	return v.Result.QueryID
}

// forwardedMessage extracts the <message/> inside result/forwarded of a MAM
// result message.
func forwardedMessage(raw []byte) (Stanza, error) {
	rec := newRecorder(bytes.NewReader(raw))
	dec := xml.NewDecoder(rec)
	dec.DefaultSpace = nsClient
	depth := 0
	for {
		off := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return Stanza{}, fmt.Errorf("xmpptest: archive result without a forwarded message: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 4 && t.Name.Local == "message" {
				return readElement(dec, rec, t, off)
			}
		case xml.EndElement:
			depth--
		}
	}
}

// Close ends the stream and closes the connection. It waits a bounded time
// for the server to close its side.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if c.write(ctx, []byte("</stream:stream>")) == nil {
			select {
			case <-c.done:
			case <-ctx.Done():
			}
		}
		c.closed.Store(true)
		c.conn.Close()
		<-c.done
	})
	return nil
}
