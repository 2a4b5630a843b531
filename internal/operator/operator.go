// Package operator is a scripted otrdesk operator: an XMPP account that
// holds an OTR private key and, optionally, OMEMO devices, and answers
// visitors with the project's Go OTR and OMEMO engines, as Pidgin with
// pidgin-otr, or Conversations, would. The browser tests use it as the far
// end of a widget chat and `make demo` runs one so that the demo page ends
// in a working encrypted chat.
//
// Flow:
//
//	Dial (c2s, xmpptest.Client) -> Run: roster get, available presence,
//	                                  OMEMO keys published on the account's PEP
//	  presence subscribe from <skin>@D   -> approve (subscribed) and re-send presence;
//	                                        with OMEMO also subscribe back
//	  "on" to D                          -> on duty, so the component assigns chats
//	  message from guest-<id>@D          -> otr.Conversation.Receive: answers a query
//	                                        with the AKE, decrypts Data messages;
//	                                        every decrypted visitor message can be
//	                                        answered by Config.Answer
//	  headline / <encrypted/> from
//	  guest-<id>@D                       -> OMEMO (omemo.go): the alias's device list,
//	                                        decrypted messages, answered with OMEMO
//	  message from D                     -> the component's command replies (Event Service)
//
// Everything the bot sees is also an Event that callers wait for with Next
// (tests: "the operator went secure", "the operator read hello"). The bot
// logs metadata only through Config.Logf: never a body, never key material.
//
// # OMEMO
//
// With Config.OMEMODevices = n the bot has n OMEMO devices on its one
// account (2 plays a desktop and a phone). A test trusts them for a skin
// before the chat:
//
//	bot, _ := operator.New(operator.Config{..., OMEMODevices: 2})
//	for _, d := range bot.Devices() {          // also DeviceIDs(), Fingerprints() (64 hex)
//		st.PutDevice(store.TrustedDevice{Skin: "shop", Account: "ada@example.org",
//			Device: d.ID, Fingerprint: d.Fingerprint[:]})
//	}
//	go bot.Run(ctx)                            // publishes bundles and the list, then "on"
//
// The server needs PEP (xmpptest.Options{HostModules: []string{"pep"}} for
// Prosody). A chat is an OMEMO chat for the bot once the component sent the
// alias's device list (Event Keys) or an <encrypted/> came from the alias;
// then Say encrypts with OMEMO from the first device (SayFrom: another one)
// to every device of the alias, reading its list and bundles at the alias,
// and to the bot's other devices. Visitor messages give Secure (first
// message of a visitor device), Message and KeyTransport events with
// OMEMO set, Device and OMEMOFingerprint naming the visitor's device and
// Devices the bot's devices that could decrypt it. AddDevice publishes one
// more device (trusted or not: the test decides), RemoveDevice drops one;
// Bundle gives a device's current bundle (for a hostile service that
// relays it). The bot trusts visitor devices on first use.
package operator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"otrdesk.im/otrdesk/internal/omemoxml"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/omemo"
	"otrdesk.im/otrdesk/otr"
)

const nsChatStates = "http://jabber.org/protocol/chatstates"

// Operator policy: libotr's opportunistic policy without the whitespace
// tag, as Pidgin answers a visitor's query.
const policy = otr.AllowV2 | otr.AllowV3 | otr.WhitespaceStartAKE | otr.ErrorStartAKE

// ErrStopped is returned by Next once Run has returned.
var ErrStopped = errors.New("operator: the bot stopped")

// ErrNoChat is returned by Say for an alias the bot has no conversation with.
var ErrNoChat = errors.New("operator: no chat with this visitor")

// Config configures a Bot.
type Config struct {
	// Client is a logged-in operator account. The bot reads every stanza
	// from it while Run runs.
	Client *xmpptest.Client
	// Key is the OTR private key (the skin key, or another one to test the
	// widget's not-verified sentence).
	Key *otr.PrivateKey
	// Service is the component domain D; "on" is sent there when Run starts.
	// Empty: no command is sent.
	Service string
	// Answer, if set, is called with each message a visitor writes and the
	// alias it came from; a non-empty result is sent back encrypted.
	Answer func(alias, text string) string
	// Logf, if set, receives one line per chat event (aliases and kinds, no
	// content).
	Logf func(format string, args ...any)

	// OMEMODevices, when above 0, gives the bot that many OMEMO devices
	// (2: the operator's desktop and phone on one account), published on
	// the account's PEP when Run starts. The server needs PEP (Prosody:
	// xmpptest.Options.HostModules "pep"). At most MaxOMEMODevices.
	OMEMODevices int
	// OMEMOPreKeys is how many one-time prekeys each device publishes;
	// 0 means DefaultOMEMOPreKeys.
	OMEMOPreKeys int
}

// Kind says what an Event is.
type Kind string

// Event kinds.
const (
	Secure   Kind = "secure"   // an AKE finished; Fingerprint is the visitor's key
	Insecure Kind = "insecure" // the visitor ended the encrypted session
	Message  Kind = "message"  // the visitor wrote Text (Encrypted tells how it came)
	Notice   Kind = "notice"   // plaintext from the alias: otrdesk's new-chat notice and similar
	Typing   Kind = "typing"   // a chat state; Text is its name (composing, paused, active...)
	Failure  Kind = "error"    // an OTR error or an error stanza; Text says which
	Service  Kind = "service"  // a reply of the component's command bot (from D)

	// OMEMO only (Event.OMEMO is set on these and on OMEMO's Secure,
	// Message and Failure events):
	Keys         Kind = "keys"          // the component told the alias's device list (List)
	KeyTransport Kind = "key-transport" // an OMEMO element without payload decrypted
)

// Event is something the bot saw.
type Event struct {
	Alias       string // guest-<id>@D, or D for Service
	Kind        Kind
	Text        string
	Encrypted   bool
	Fingerprint otr.Fingerprint // OTR: the visitor's key

	// OMEMO tells an OMEMO event from an OTR one. For Secure (the first
	// message from a visitor device decrypted), Message and KeyTransport:
	// Device is the visitor's device that sent it, OMEMOFingerprint its
	// identity key, Devices the bot's devices that decrypted it (one that
	// had no key in it is not listed). For Keys: List is the alias's
	// device list.
	OMEMO            bool
	Device           uint32
	OMEMOFingerprint omemo.Fingerprint
	Devices          []uint32
	List             []uint32
}

// Bot is one operator. Its methods are safe for concurrent use.
type Bot struct {
	cfg Config

	mu      sync.Mutex // guards convs, devices and omemo, and serialises state changes with their sends
	convs   map[string]*otr.Conversation
	devices []*omemo.Device       // the bot's OMEMO devices, the first one Say's
	omemo   map[string]*omemoChat // aliases the bot speaks OMEMO with
	pubMu   sync.Mutex            // one PEP publish at a time

	evMu    sync.Mutex // guards events, seq and wake
	events  []queuedEvent
	seq     uint64
	wake    chan struct{}
	stopped bool
	runErr  error
}

type queuedEvent struct {
	seq uint64
	ev  Event
}

// New returns a bot; Run starts it.
func New(cfg Config) (*Bot, error) {
	if cfg.Client == nil {
		return nil, errors.New("operator: a logged-in client is required")
	}
	if cfg.Key == nil {
		return nil, errors.New("operator: an OTR private key is required")
	}
	devs, err := newDevices(cfg)
	if err != nil {
		return nil, err
	}
	return &Bot{cfg: cfg, convs: make(map[string]*otr.Conversation), devices: devs, omemo: map[string]*omemoChat{},
		wake: make(chan struct{})}, nil
}

// Fingerprint is the fingerprint of the bot's OTR key.
func (b *Bot) Fingerprint() otr.Fingerprint { return b.cfg.Key.PublicKey.Fingerprint() }

func (b *Bot) logf(format string, args ...any) {
	if b.cfg.Logf != nil {
		b.cfg.Logf(format, args...)
	}
}

// Run sends available presence and "on", then handles stanzas until ctx
// ends or the stream closes.
func (b *Bot) Run(ctx context.Context) error {
	err := b.run(ctx)
	b.evMu.Lock()
	b.stopped, b.runErr = true, err
	close(b.wake)
	b.wake = make(chan struct{})
	b.evMu.Unlock()
	return err
}

func (b *Bot) run(ctx context.Context) error {
	c := b.cfg.Client
	// Fetch the roster as Pidgin does: the server delivers subscription
	// requests only to resources that did (RFC 6121 "interested resources").
	if _, err := c.IQ(ctx, "get", "", "<query xmlns='jabber:iq:roster'/>"); err != nil {
		return fmt.Errorf("operator: fetching the roster: %w", err)
	}
	if err := c.Presence(ctx, "", 1); err != nil {
		return fmt.Errorf("operator: sending presence: %w", err)
	}
	// The keys are on the account before the bot is on duty: the
	// component reads them when it assigns a chat.
	if b.cfg.OMEMODevices > 0 {
		if err := b.publishKeys(ctx); err != nil {
			return err
		}
	}
	if b.cfg.Service != "" {
		if err := c.Message(ctx, b.cfg.Service, "on"); err != nil {
			return fmt.Errorf("operator: going on duty: %w", err)
		}
	}
	for {
		// Answers to the bot's own requests (PEP publishes and reads)
		// stay queued for the call waiting for them.
		st, err := c.Next(ctx, notAnswer)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("operator: reading: %w", err)
		}
		if err := b.handle(ctx, st); err != nil {
			return err
		}
	}
}

func (b *Bot) handle(ctx context.Context, st xmpptest.Stanza) error {
	c := b.cfg.Client
	b.logf("operator: %s: received %s", c.JID(), st) // Stanza.String leaves the body out
	switch st.Name {
	case "presence":
		if st.Type == "subscribe" {
			b.logf("operator: approving the subscription of %s", st.From)
			if err := c.Subscribed(ctx, st.From); err != nil {
				return fmt.Errorf("operator: approving a subscription: %w", err)
			}
			if err := c.Presence(ctx, "", 1); err != nil {
				return fmt.Errorf("operator: sending presence: %w", err)
			}
			// An OMEMO operator adds the skin back, as Gajim and
			// Conversations offer to: ejabberd pushes a changed device
			// list only to contacts whose presence the account has.
			if b.cfg.OMEMODevices > 0 {
				if err := c.SendRaw(ctx, "<presence type='subscribe' to='"+xmlEscape(bare(st.From))+"'/>"); err != nil {
					return fmt.Errorf("operator: subscribing back: %w", err)
				}
			}
		}
		return nil
	case "message":
	default:
		return nil
	}
	from := bare(st.From)
	if b.cfg.Service != "" && from == b.cfg.Service {
		b.emit(Event{Alias: from, Kind: Service, Text: st.Body})
		return nil
	}
	if from == bare(b.cfg.Client.JID().String()) {
		return nil // our own carbons or echoes
	}
	if st.Type == "error" {
		b.emit(Event{Alias: from, Kind: Failure, Text: "error stanza"})
		return nil
	}
	if st.Type == "headline" {
		if st.HasChild(omemoxml.NSPubSubEvent, "event") {
			b.deviceListEvent(from, st)
		}
		return nil
	}
	for _, n := range st.Children {
		if n.Space == nsChatStates {
			b.emit(Event{Alias: from, Kind: Typing, Text: n.Local})
		}
	}
	if st.HasChild(omemo.NS, "encrypted") {
		return b.receiveOMEMO(ctx, from, st)
	}
	if !st.HasBody {
		return nil
	}
	return b.receive(ctx, from, st.Body)
}

func (b *Bot) receive(ctx context.Context, alias, body string) error {
	b.mu.Lock()
	conv, err := b.conv(alias)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	wasEncrypted := conv.IsEncrypted()
	show, toSend, events, rerr := conv.Receive([]byte(body))
	encrypted := conv.IsEncrypted() || wasEncrypted
	serr := b.sendAll(ctx, alias, toSend)
	b.mu.Unlock()
	if serr != nil {
		return serr
	}
	for _, e := range events {
		switch e.Kind {
		case otr.EventGoneSecure, otr.EventStillSecure:
			b.logf("operator: %s: encrypted (%s)", alias, e.Kind)
			b.mu.Lock()
			if ch := b.omemo[alias]; ch != nil {
				ch.otr = true // this chat is an OTR chat now
			}
			b.mu.Unlock()
			b.emit(Event{Alias: alias, Kind: Secure, Fingerprint: e.Fingerprint, Encrypted: true})
		case otr.EventGoneInsecure:
			b.logf("operator: %s: the visitor ended encryption", alias)
			b.emit(Event{Alias: alias, Kind: Insecure})
		case otr.EventError, otr.EventPeerError:
			b.emit(Event{Alias: alias, Kind: Failure, Text: e.Text})
		}
	}
	if rerr != nil {
		b.logf("operator: %s: OTR refused a message: %v", alias, rerr)
		b.emit(Event{Alias: alias, Kind: Failure, Text: rerr.Error()})
	}
	if show == nil {
		return nil
	}
	text := string(show)
	isOTR := strings.HasPrefix(body, "?OTR")
	if !isOTR || !encrypted {
		b.emit(Event{Alias: alias, Kind: Notice, Text: text})
		return nil
	}
	b.emit(Event{Alias: alias, Kind: Message, Text: text, Encrypted: true})
	if b.cfg.Answer != nil {
		if reply := b.cfg.Answer(alias, text); reply != "" {
			return b.Say(ctx, alias, reply)
		}
	}
	return nil
}

// conv returns the conversation with alias, making it on first contact.
// b.mu is held.
func (b *Bot) conv(alias string) (*otr.Conversation, error) {
	if c := b.convs[alias]; c != nil {
		return c, nil
	}
	c, err := otr.NewConversation(otr.Config{PrivateKey: b.cfg.Key, Policy: policy})
	if err != nil {
		return nil, fmt.Errorf("operator: starting an OTR conversation: %w", err)
	}
	b.convs[alias] = c
	return c, nil
}

// sendAll sends bodies to alias in order. b.mu is held.
func (b *Bot) sendAll(ctx context.Context, alias string, bodies [][]byte) error {
	for _, m := range bodies {
		if err := b.cfg.Client.SendRaw(ctx, "<message type='chat' to='"+xmlEscape(alias)+"'><body>"+xmlEscape(string(m))+"</body>"+
			"<private xmlns='urn:xmpp:carbons:2'/><no-copy xmlns='urn:xmpp:hints'/><no-store xmlns='urn:xmpp:hints'/></message>"); err != nil {
			return fmt.Errorf("operator: sending to %s: %w", alias, err)
		}
	}
	return nil
}

// Say sends text to the visitor behind alias, encrypted when the chat is:
// with OMEMO from the bot's first device when the chat is an OMEMO chat
// (the component told the alias's device list, or an OMEMO message came
// from it), else with OTR.
func (b *Bot) Say(ctx context.Context, alias, text string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if ch, ok := b.isOMEMOChatLocked(alias); ok {
		return b.sayOMEMOLocked(ctx, alias, ch, b.devices[0], text)
	}
	conv := b.convs[alias]
	if conv == nil {
		return ErrNoChat
	}
	msgs, err := conv.Send([]byte(text))
	if err != nil {
		return fmt.Errorf("operator: encrypting for %s: %w", alias, err)
	}
	return b.sendAll(ctx, alias, msgs)
}

// Typing sends a chat state (composing, paused, active) to alias.
func (b *Bot) Typing(ctx context.Context, alias, state string) error {
	return b.cfg.Client.SendRaw(ctx, "<message type='chat' to='"+xmlEscape(alias)+"'><"+xmlEscape(state)+" xmlns='"+nsChatStates+"'/></message>")
}

// End ends the encrypted session with alias (OTR disconnect). OMEMO has
// no session to end: in an OMEMO chat without an OTR conversation it sends
// nothing.
func (b *Bot) End(ctx context.Context, alias string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	conv := b.convs[alias]
	if _, ok := b.omemo[alias]; conv == nil && ok {
		return nil
	}
	if conv == nil {
		return ErrNoChat
	}
	msgs, err := conv.End()
	if err != nil {
		return fmt.Errorf("operator: ending the OTR session with %s: %w", alias, err)
	}
	return b.sendAll(ctx, alias, msgs)
}

// Command sends a text command (transfer, end, nick...) to the component.
func (b *Bot) Command(ctx context.Context, text string) error {
	if b.cfg.Service == "" {
		return errors.New("operator: no service domain configured")
	}
	return b.cfg.Client.Message(ctx, b.cfg.Service, text)
}

// Aliases lists the visitors the bot has talked with.
func (b *Bot) Aliases() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.convs)+len(b.omemo))
	for a := range b.convs {
		out = append(out, a)
	}
	for a := range b.omemo {
		if b.convs[a] == nil {
			out = append(out, a)
		}
	}
	return out
}

func (b *Bot) emit(ev Event) {
	b.evMu.Lock()
	defer b.evMu.Unlock()
	b.seq++
	b.events = append(b.events, queuedEvent{seq: b.seq, ev: ev})
	if len(b.events) > 10000 {
		b.events = b.events[1:]
	}
	close(b.wake)
	b.wake = make(chan struct{})
}

// Next waits for the next event for which match returns true (any event
// when match is nil) and removes it; other events stay for later calls.
func (b *Bot) Next(ctx context.Context, match func(Event) bool) (Event, error) {
	var seen uint64
	for {
		b.evMu.Lock()
		for i, q := range b.events {
			if q.seq <= seen {
				continue
			}
			seen = q.seq
			if match == nil || match(q.ev) {
				b.events = append(b.events[:i:i], b.events[i+1:]...)
				b.evMu.Unlock()
				return q.ev, nil
			}
		}
		wake, stopped, runErr := b.wake, b.stopped, b.runErr
		b.evMu.Unlock()
		if stopped {
			if runErr == nil {
				runErr = ErrStopped
			}
			return Event{}, fmt.Errorf("operator: waiting for an event: %w", runErr)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return Event{}, fmt.Errorf("operator: waiting for an event: %w", ctx.Err())
		}
	}
}

// notAnswer matches every stanza but the answers to requests (iq result
// and error).
func notAnswer(st xmpptest.Stanza) bool {
	return st.Name != "iq" || (st.Type != "result" && st.Type != "error")
}

func bare(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return strings.ToLower(j[:i])
	}
	return strings.ToLower(j)
}

func xmlEscape(s string) string { return omemoxml.Escape(s) }

// Element is omemoxml.Element: it takes one element, {space}local, out of
// a stanza. It stays here for the tests that read stanzas through this
// package.
func Element(raw []byte, space, local string) (el []byte, attrs map[string]string, ok bool) {
	return omemoxml.Element(raw, space, local)
}
