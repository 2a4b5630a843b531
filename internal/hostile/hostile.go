// Package hostile is a compromised otrdesk service for tests. It answers
// for the chat domain in otrdesk's place, as an XMPP component on the test
// server, and does what a service that turned against its visitors could
// do:
//
//	visitor  --body-->  <skin>@D         recorded byte-exact; relayed to the real
//	                                      operator's full JID from guest-<id>@D, as
//	                                      otrdesk relays; fed to every OTR
//	                                      conversation of the attacker
//	operator --body-->  guest-<id>@D     relayed to the visitor from <skin>@D,
//	                                      unless the test holds it (HoldOperator)
//	attacker --------->  visitor          its own OTR with its own key and instance
//	                                      tags (StartAKE, Say), forged "?OTR Error:"
//	                                      bodies, plaintext and fragments (Inject),
//	                                      forged urn:otrdesk:0 status elements (Status)
//
// With Config.OMEMO it stands in for otrdesk's OMEMO hand-over as well
// (omemo.go): it keeps the keys the visitor hands over, says e2ee='omemo',
// answers the visitor's requests for the operator's devices with what
// Offer names — its own devices (NewDevice), the real operator's bundles
// relayed (Config.OperatorBundle), or its own device under a real
// device's ID (another identity key) — decrypts what the visitor encrypts
// to its devices, relays <encrypted/> both ways under the alias, and
// writes to the visitor from its own device (SayOMEMO):
//
//	att.Offer(hostile.Offer{ID: bot.DeviceIDs()[0]})        // honest relay
//	id, fp, _ := att.NewDevice(0)                            // an attacker device
//	att.Offer(hostile.Offer{ID: opID}, hostile.Offer{ID: id})
//	att.NewDevice(opID); att.Offer(hostile.Offer{ID: opID})  // the operator's ID, another key
//	s := att.Snapshot(); s.Learned("canary")                 // OMEMODecrypted included
//
// The attacker keeps every body and stanza the visitor sent and everything
// its own OTR sessions and OMEMO devices decrypted, so that a test asserts
// on real bytes what it learned (Learned). Each visitor who writes to the skin's address is a chat with
// an alias of its own; the latest one is the chat the attack methods
// address (a visitor coming back with a new session is a new chat, as with
// otrdesk). The attacker's OTR listens to the latest chat only.
//
// The real operator (package operator) never notices anything but a
// visitor: it runs its AKE with whatever reaches it. The widget is the one
// that must notice.
package hostile

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"otrdesk.im/otrdesk/internal/omemoxml"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/omemo"
	"otrdesk.im/otrdesk/otr"
)

// ErrNoSession is returned by Say before an attacker AKE finished.
var ErrNoSession = errors.New("hostile: no encrypted session of the attacker")

// ErrNoVisitor is returned by what needs a visitor before one wrote.
var ErrNoVisitor = errors.New("hostile: no visitor has written yet")

// attackerPolicy answers queries and starts AKEs, as an operator's client.
const attackerPolicy = otr.AllowV3 | otr.ErrorStartAKE

// Config configures an Attacker.
type Config struct {
	// Client is the component connection for Domain (xmpptest.DialComponent).
	Client *xmpptest.Client
	// Domain is the chat domain D the visitor writes to.
	Domain string
	// Skin is the skin's name: the visitor writes to <Skin>@<Domain>.
	Skin string
	// Operator is the real operator's full JID; "" means none: only the
	// attacker answers the visitor.
	Operator string
	// OperatorName, when set, goes to the visitor in a status element
	// state='assigned' when the visitor first writes, as otrdesk says who
	// took the chat.
	OperatorName string
	// Key is the attacker's OTR key.
	Key *otr.PrivateKey
	// AnswerQueries makes the attacker answer every OTR query of the
	// visitor with an AKE of its own (a new conversation each time, under
	// the attacker's instance tag), beside whatever the operator answers.
	AnswerQueries bool
	// Logf receives one line per stanza (kinds and sizes, never a body).
	Logf func(format string, args ...any)

	// OMEMO makes the attacker stand in for otrdesk's OMEMO too (omemo.go):
	// it takes the visitor's keys, says e2ee='omemo' (in the assigned
	// status, which goes with OperatorName), gives the visitor the devices
	// Offer names as the operator's, decrypts what the visitor encrypts to
	// its own devices and relays <encrypted/> both ways.
	OMEMO bool
	// OperatorBundle, if set, is where relayed bundles of the real
	// operator come from (an Offer without a Bundle for an ID the attacker
	// has no device of): operator.Bot.Bundle fits.
	OperatorBundle func(id uint32) *omemo.Bundle
}

// Attacker is the hostile service. Its methods are safe for concurrent use.
type Attacker struct {
	cfg  Config
	skin string // <skin>@D
	tag  uint32 // the attacker's own instance tag

	mu        sync.Mutex        // guards everything below and orders sends
	visitor   string            // the latest visitor's full JID
	aliases   map[string]string // visitor full JID -> guest-<id>@D, as the operator sees it
	visitors  map[string]string // guest-<id>@D -> visitor full JID
	sent      []string          // bodies from the visitor, in order
	decrypted []string          // what the attacker's sessions decrypted
	opBodies  []string          // bodies from the operator, in order
	opTag     uint32            // the operator's instance tag, from its messages
	visTag    uint32            // the visitor's instance tag, from its messages
	convs     []*otr.Conversation
	secure    int  // attacker AKEs finished
	answer    bool // answer the visitor's queries (Config.AnswerQueries, AnswerQueries)
	holdOp    func(otr.Info) bool
	held      []string

	// OMEMO (omemo.go)
	devices        []*omemo.Device         // the attacker's own devices
	offers         []Offer                 // what the visitor is given as the operator's devices
	keys           map[string]*visitorKeys // visitor full JID -> what it handed over
	omemoSeen      []OMEMOMessage          // the visitor's <encrypted/> elements, in order
	omemoDecrypted []string                // what the attacker's devices decrypted
	opOMEMO        int                     // <encrypted/> elements from the operator
	raws           []string                // every stanza a visitor sent to the skin, whole
	listRequests   int                     // the visitor's requests for the operator's device list
	bundleRequests []uint32                // ... and for bundles, by device ID

	wake    chan struct{}
	runErr  error
	stopped bool
}

// New returns an attacker; Run starts it.
func New(cfg Config) (*Attacker, error) {
	if cfg.Client == nil || cfg.Domain == "" || cfg.Skin == "" || cfg.Key == nil {
		return nil, errors.New("hostile: Client, Domain, Skin and Key are required")
	}
	probe, err := otr.NewConversation(otr.Config{PrivateKey: cfg.Key, Policy: attackerPolicy})
	if err != nil {
		return nil, fmt.Errorf("hostile: %w", err)
	}
	return &Attacker{
		cfg:      cfg,
		skin:     cfg.Skin + "@" + cfg.Domain,
		tag:      probe.InstanceTag(),
		aliases:  map[string]string{},
		visitors: map[string]string{},
		answer:   cfg.AnswerQueries,
		keys:     map[string]*visitorKeys{},
		wake:     make(chan struct{}),
	}, nil
}

// InstanceTag is the attacker's own instance tag.
func (a *Attacker) InstanceTag() uint32 { return a.tag }

// Alias is the address the operator sees the latest visitor as ("" before
// anyone wrote).
func (a *Attacker) Alias() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.aliases[a.visitor]
}

func (a *Attacker) logf(format string, args ...any) {
	if a.cfg.Logf != nil {
		a.cfg.Logf(format, args...)
	}
}

// changed wakes Wait. a.mu is held.
func (a *Attacker) changed() {
	close(a.wake)
	a.wake = make(chan struct{})
}

// Run handles stanzas until ctx ends or the stream closes.
func (a *Attacker) Run(ctx context.Context) error {
	err := a.run(ctx)
	a.mu.Lock()
	a.stopped, a.runErr = true, err
	a.changed()
	a.mu.Unlock()
	return err
}

func (a *Attacker) run(ctx context.Context) error {
	for {
		st, err := a.cfg.Client.Next(ctx, nil)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("hostile: reading: %w", err)
		}
		to := bare(st.To)
		if to == a.skin {
			a.record(st)
		}
		fromOp := a.cfg.Operator != "" && bare(st.From) == bare(a.cfg.Operator)
		omemoMsg := a.cfg.OMEMO && st.Name == "message" && st.Type != "error" && st.HasChild(omemo.NS, "encrypted")
		switch {
		case a.cfg.OMEMO && st.Name == "iq":
			err = a.iq(ctx, st)
		case omemoMsg && to == a.skin:
			err = a.omemoFromVisitor(ctx, st)
		case omemoMsg && fromOp:
			err = a.omemoFromOperator(ctx, to, st)
		case st.Name != "message" || st.Type == "error" || !st.HasBody:
		case to == a.skin:
			err = a.fromVisitor(ctx, st)
		case fromOp:
			err = a.fromOperator(ctx, to, st.Body)
		}
		if err != nil {
			return err
		}
	}
}

// chatLocked returns the alias of the visitor, starting a chat when it is
// new: the status assigned (with OperatorName) and, with OMEMO, the
// visitor's device list to the operator. a.mu is held.
func (a *Attacker) chatLocked(ctx context.Context, visitor string) (string, error) {
	if alias, known := a.aliases[visitor]; known {
		return alias, nil
	}
	var id [10]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", fmt.Errorf("hostile: %w", err)
	}
	alias := "guest-" + strings.ToLower(base32.StdEncoding.EncodeToString(id[:])) + "@" + a.cfg.Domain
	a.aliases[visitor], a.visitors[alias] = alias, visitor
	// A new chat: the attacker's sessions and what it held belonged
	// to the last one (its conversations would answer the new
	// visitor's messages to the same instance tag).
	a.visitor, a.convs, a.held, a.visTag = visitor, nil, nil, 0
	a.logf("hostile: a new chat")
	if a.cfg.OperatorName != "" {
		if err := a.statusLocked(ctx, "assigned", a.cfg.OperatorName); err != nil {
			return "", err
		}
	}
	if k := a.keys[visitor]; a.cfg.OMEMO && k != nil && len(k.list) > 0 {
		if err := a.deviceListEventLocked(ctx, alias, k.list); err != nil {
			return "", err
		}
	}
	return alias, nil
}

// record keeps a stanza a visitor sent, whole: Learned looks for secrets
// in every part of it, not only in bodies.
func (a *Attacker) record(st xmpptest.Stanza) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.raws = append(a.raws, string(st.Raw))
}

func (a *Attacker) fromVisitor(ctx context.Context, st xmpptest.Stanza) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	alias, err := a.chatLocked(ctx, st.From)
	if err != nil {
		return err
	}
	body := st.Body
	info := otr.Classify([]byte(body))
	a.logf("hostile: visitor sent %s %s (%d bytes)", info.Kind, typeName(info), len(body))
	if st.From == a.visitor && (info.Kind == otr.KindEncoded || info.Kind == otr.KindFragment) && info.SenderTag >= otr.MinInstanceTag {
		a.visTag = info.SenderTag
	}
	a.sent = append(a.sent, body)
	defer a.changed()
	// In an OMEMO chat otrdesk does not relay the visitor's OTR.
	if a.cfg.Operator != "" && (!a.cfg.OMEMO || info.Kind == otr.KindPlaintext) {
		if err := a.send(ctx, alias, a.cfg.Operator, body); err != nil {
			return err
		}
	}
	if st.From != a.visitor {
		return nil // an earlier chat: relayed and recorded, not attacked
	}
	if info.Kind == otr.KindQuery {
		if a.answer {
			return a.startLocked(ctx, a.tag, body)
		}
		return nil
	}
	for _, c := range a.convs {
		if err := a.feed(ctx, c, body); err != nil {
			return err
		}
	}
	return nil
}

// feed gives one visitor body to one attacker conversation and sends what
// it answers. a.mu is held.
func (a *Attacker) feed(ctx context.Context, c *otr.Conversation, body string) error {
	show, toSend, events, _ := c.Receive([]byte(body))
	for _, e := range events {
		if e.Kind == otr.EventGoneSecure || e.Kind == otr.EventStillSecure {
			a.secure++
			a.logf("hostile: the attacker's AKE %d finished (attacker tag %08x)", a.secure, c.InstanceTag())
		}
	}
	if show != nil {
		if k := otr.Classify([]byte(body)).Kind; k == otr.KindEncoded || k == otr.KindFragment {
			a.decrypted = append(a.decrypted, string(show))
			a.logf("hostile: the attacker decrypted a visitor message (%d bytes)", len(show))
		}
	}
	for _, m := range toSend {
		if err := a.toVisitorLocked(ctx, string(m)); err != nil {
			return err
		}
	}
	return nil
}

func (a *Attacker) fromOperator(ctx context.Context, alias, body string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	visitor, ok := a.visitors[alias]
	if !ok {
		return nil // a command for the service, or an unknown alias
	}
	info := otr.Classify([]byte(body))
	a.logf("hostile: operator sent %s %s (%d bytes)", info.Kind, typeName(info), len(body))
	if visitor == a.visitor && (info.Kind == otr.KindEncoded || info.Kind == otr.KindFragment) && info.SenderTag >= otr.MinInstanceTag {
		a.opTag = info.SenderTag
	}
	a.opBodies = append(a.opBodies, body)
	defer a.changed()
	if visitor != a.visitor {
		return a.send(ctx, a.skin, visitor, body)
	}
	if a.holdOp != nil && a.holdOp(info) {
		a.held = append(a.held, body)
		return nil
	}
	return a.toVisitorLocked(ctx, body)
}

func typeName(info otr.Info) string {
	if info.Kind == otr.KindEncoded {
		return info.Type.String()
	}
	return ""
}

// toVisitorLocked sends a body to the visitor from the skin's address. a.mu is held.
func (a *Attacker) toVisitorLocked(ctx context.Context, body string) error {
	if a.visitor == "" {
		return ErrNoVisitor
	}
	return a.send(ctx, a.skin, a.visitor, body)
}

func (a *Attacker) send(ctx context.Context, from, to, body string) error {
	err := a.cfg.Client.SendRaw(ctx, "<message type='chat' from='"+esc(from)+"' to='"+esc(to)+"'><body>"+esc(body)+"</body></message>")
	if err != nil {
		return fmt.Errorf("hostile: sending to %s: %w", to, err)
	}
	return nil
}

// startLocked starts an attacker AKE from a new conversation under tag,
// as an answer to query. a.mu is held.
func (a *Attacker) startLocked(ctx context.Context, tag uint32, query string) error {
	c, err := otr.NewConversation(otr.Config{PrivateKey: a.cfg.Key, Policy: attackerPolicy, InstanceTag: tag, HeartbeatInterval: -1})
	if err != nil {
		return fmt.Errorf("hostile: %w", err)
	}
	a.convs = append(a.convs, c)
	a.logf("hostile: the attacker starts an AKE as instance %08x", tag)
	return a.feed(ctx, c, query)
}

// AnswerQueries turns on or off answering the visitor's OTR queries with
// an AKE of the attacker's own (see Config.AnswerQueries).
func (a *Attacker) AnswerQueries(on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.answer = on
}

// StartAKE starts an AKE with the visitor under the attacker's key, as
// peer instance tag (0: the attacker's own tag; the operator's tag to
// impersonate the operator's instance).
func (a *Attacker) StartAKE(ctx context.Context, tag uint32) error {
	if tag == 0 {
		tag = a.tag
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	defer a.changed()
	return a.startLocked(ctx, tag, otr.QueryMessage(otr.OfferV3))
}

// Say sends text to the visitor encrypted under the attacker's latest
// encrypted session.
func (a *Attacker) Say(ctx context.Context, text string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := len(a.convs) - 1; i >= 0; i-- {
		c := a.convs[i]
		if !c.IsEncrypted() {
			continue
		}
		msgs, err := c.Send([]byte(text))
		if err != nil {
			return fmt.Errorf("hostile: encrypting: %w", err)
		}
		for _, m := range msgs {
			if err := a.toVisitorLocked(ctx, string(m)); err != nil {
				return err
			}
		}
		return nil
	}
	return ErrNoSession
}

// Inject sends any body to the visitor from the skin's address: a forged
// OTR error, a plaintext line, a fragment.
func (a *Attacker) Inject(ctx context.Context, body string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.toVisitorLocked(ctx, body)
}

// Status sends otrdesk's control element <status xmlns='urn:otrdesk:0'/>
// with state and, when set, operator (the display name); with
// Config.OMEMO, state assigned carries e2ee='omemo'.
func (a *Attacker) Status(ctx context.Context, state, operator string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.statusLocked(ctx, state, operator)
}

func (a *Attacker) statusLocked(ctx context.Context, state, operator string) error {
	if a.visitor == "" {
		return ErrNoVisitor
	}
	el := "<status xmlns='urn:otrdesk:0' state='" + esc(state) + "'"
	if operator != "" {
		el += " operator='" + esc(operator) + "'"
	}
	if a.cfg.OMEMO && state == "assigned" {
		el += " e2ee='omemo'"
	}
	return a.cfg.Client.SendRaw(ctx, "<message type='chat' from='"+esc(a.skin)+"' to='"+esc(a.visitor)+"'>"+el+"/></message>")
}

// HoldOperator holds back, in order, the operator's bodies for which hold
// returns true (it sees their classification); nil relays everything at
// once again (what is held stays held until ReleaseOperator).
func (a *Attacker) HoldOperator(hold func(otr.Info) bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.holdOp = hold
}

// ReleaseOperator stops holding and delivers what was held, in order.
// With status set, a status element of that state goes in the same write,
// right behind the last held body (a transfer racing the operator's AKE),
// and a decoy stanza the widget ignores goes first: a BOSH server answers
// the request it holds with the first stanza at once and keeps what
// follows for the client's next request, so the held bodies and the status
// then reach the browser in one response, handled in one go.
func (a *Attacker) ReleaseOperator(ctx context.Context, status string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.holdOp = nil
	held := a.held
	a.held = nil
	var raw strings.Builder
	if status != "" {
		raw.WriteString("<message type='chat' from='" + esc(a.cfg.Domain) + "' to='" + esc(a.visitor) + "'><active xmlns='http://jabber.org/protocol/chatstates'/></message>")
	}
	for _, body := range held {
		raw.WriteString("<message type='chat' from='" + esc(a.skin) + "' to='" + esc(a.visitor) + "'><body>" + esc(body) + "</body></message>")
	}
	if status != "" {
		raw.WriteString("<message type='chat' from='" + esc(a.skin) + "' to='" + esc(a.visitor) + "'><status xmlns='urn:otrdesk:0' state='" + esc(status) + "'/></message>")
	}
	if raw.Len() == 0 {
		return nil
	}
	if a.visitor == "" {
		return ErrNoVisitor
	}
	return a.cfg.Client.SendRaw(ctx, raw.String())
}

// Snapshot is what the attacker has seen so far.
type Snapshot struct {
	Visitor        string
	Sent           []string // bodies from the visitor, in order
	Decrypted      []string // what the attacker's sessions decrypted
	OperatorBodies []string // bodies from the real operator, in order
	Held           int      // operator bodies held back now
	OperatorTag    uint32
	VisitorTag     uint32
	AttackerAKEs   int // attacker AKEs finished

	// OMEMO
	VisitorDevices []uint32       // the latest visitor's device list, as handed over
	VisitorBundles []uint32       // the devices whose bundles it handed over
	OMEMOSent      []OMEMOMessage // the visitor's <encrypted/> elements (all chats), in order
	OMEMODecrypted []string       // what the attacker's devices decrypted
	OperatorOMEMO  int            // <encrypted/> elements from the real operator
	Stanzas        []string       // every stanza visitors sent to the skin, whole
	ListRequests   int            // the visitor's requests for the operator's device list
	BundleRequests []uint32       // the visitor's requests for bundles, by device ID
}

// Snapshot returns a copy of what the attacker has seen.
func (a *Attacker) Snapshot() Snapshot {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.snapshot()
}

func (a *Attacker) snapshot() Snapshot {
	s := Snapshot{
		Visitor: a.visitor, Sent: append([]string(nil), a.sent...), Decrypted: append([]string(nil), a.decrypted...),
		OperatorBodies: append([]string(nil), a.opBodies...), Held: len(a.held), OperatorTag: a.opTag, VisitorTag: a.visTag, AttackerAKEs: a.secure,
		OMEMOSent: slices.Clone(a.omemoSeen), OMEMODecrypted: slices.Clone(a.omemoDecrypted), OperatorOMEMO: a.opOMEMO,
		Stanzas: slices.Clone(a.raws), ListRequests: a.listRequests, BundleRequests: slices.Clone(a.bundleRequests),
	}
	if k := a.keys[a.visitor]; k != nil {
		s.VisitorDevices = slices.Clone([]uint32(k.list))
		for id := range k.bundles {
			s.VisitorBundles = append(s.VisitorBundles, id)
		}
		slices.Sort(s.VisitorBundles)
	}
	return s
}

// Learned reports whether the attacker can read secret: it travelled in
// plaintext, or one of the attacker's OTR sessions or OMEMO devices
// decrypted a message holding it (a "[resent]" copy included). It says
// how.
func (s Snapshot) Learned(secret string) (how string, ok bool) {
	for _, d := range s.OMEMODecrypted {
		if strings.Contains(d, secret) {
			return fmt.Sprintf("decrypted it with its own OMEMO device from a message reading %q", d), true
		}
	}
	for _, d := range s.Decrypted {
		if strings.Contains(d, secret) {
			return fmt.Sprintf("decrypted it with its own key from a message reading %q", d), true
		}
	}
	for _, b := range s.Sent {
		if strings.Contains(b, secret) {
			return fmt.Sprintf("received it in plaintext, in a body of %d bytes", len(b)), true
		}
	}
	for _, r := range s.Stanzas {
		if strings.Contains(r, secret) {
			return fmt.Sprintf("received it in plaintext, in a stanza of %d bytes", len(r)), true
		}
	}
	return "", false
}

// Wait waits until cond holds for a snapshot, ctx ends or Run stops.
func (a *Attacker) Wait(ctx context.Context, what string, cond func(Snapshot) bool) (Snapshot, error) {
	for {
		a.mu.Lock()
		s, wake, stopped, runErr := a.snapshot(), a.wake, a.stopped, a.runErr
		a.mu.Unlock()
		if cond(s) {
			return s, nil
		}
		if stopped {
			if runErr == nil {
				runErr = errors.New("stopped")
			}
			return s, fmt.Errorf("hostile: waiting for %s: %w", what, runErr)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return s, fmt.Errorf("hostile: waiting for %s: %w", what, ctx.Err())
		}
	}
}

// Count returns how many bodies match kind (and, for encoded messages,
// type when it is not 0).
func Count(bodies []string, kind otr.Kind, typ otr.MessageType) int {
	n := 0
	for _, b := range bodies {
		info := otr.Classify([]byte(b))
		if info.Kind == kind && (typ == 0 || info.Type == typ) {
			n++
		}
	}
	return n
}

// PlaintextFragment is a one-piece OTR version 3 fragment whose content is
// not an encoded message but plain text: reassembled, it is plaintext.
func PlaintextFragment(sender, receiver uint32, text string) string {
	return fmt.Sprintf("?OTR|%08x|%08x,%05d,%05d,%s,", sender, receiver, 1, 1, text)
}

func bare(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		j = j[:i]
	}
	return strings.ToLower(j)
}

func esc(s string) string { return omemoxml.Escape(s) }
