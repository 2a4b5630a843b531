package operator

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"otrdesk.im/otrdesk/internal/omemoxml"
	"otrdesk.im/otrdesk/internal/xmpptest"
	"otrdesk.im/otrdesk/omemo"
)

// The bot's OMEMO (XEP-0384 version 0.3, as package omemo speaks it),
// played as Conversations or Gajim would on the operator's account:
//
//	Run: publish each device's bundle and the device list on the
//	  account's own PEP (iq set without 'to'), before "on"
//	headline from guest-<id>@D with the alias's
//	  device list (the component's PEP event)   -> Keys event; the chat is OMEMO
//	message from guest-<id>@D with <encrypted/> -> decrypted by every device of
//	                                               the bot that has a key in it:
//	                                               Secure (first message of a
//	                                               visitor device) and Message
//	                                               events; a used one-time prekey
//	                                               republishes that device's bundle
//	Say in an OMEMO chat                         -> the alias's device list and
//	                                               bundles read at guest-<id>@D
//	                                               (PEP items requests the
//	                                               component answers), encrypted
//	                                               to them and to the bot's other
//	                                               devices, with a fallback body
//	                                               and EME as Conversations sends
//
// The bot trusts every visitor device on first use, as Conversations'
// "blind trust before verification" does: the tests check fingerprints
// through the events.

const (
	// FallbackBody is the body the bot sends beside <encrypted/>, the
	// sentence Conversations sends, for clients without OMEMO.
	FallbackBody = omemoxml.FallbackBody + " Find more information on https://conversations.im/omemo"

	// DefaultOMEMOPreKeys is how many one-time prekeys each device of the
	// bot publishes unless Config.OMEMOPreKeys says otherwise: enough for
	// a test's visitors, and small bundles.
	DefaultOMEMOPreKeys = 20
	// MaxOMEMODevices bounds Config.OMEMODevices and AddDevice.
	MaxOMEMODevices = 8
)

// ErrNoDevice is returned by SayFrom and RemoveDevice for a device ID the
// bot does not have.
var ErrNoDevice = errors.New("operator: no OMEMO device with this ID")

// Device is one of the bot's OMEMO devices as a test trusts it
// (store.PutDevice takes Fingerprint[:]).
type Device struct {
	ID          uint32
	Fingerprint omemo.Fingerprint
}

// Hex is the fingerprint as programs exchange it: 64 lower-case hex digits
// of the identity key (omemo/wire's MarshalText).
func (d Device) Hex() string { return hex.EncodeToString(d.Fingerprint[:]) }

// omemoChat is an alias the bot speaks OMEMO with.
type omemoChat struct {
	list   omemo.DeviceList // the visitor's devices; nil until told or read
	secure map[uint32]bool  // visitor devices a message decrypted from
	// otr: an OTR session was made with the alias since the last sign of
	// OMEMO (a transfer back to this operator that picked OTR): Say uses
	// OTR until the component tells a device list again or OMEMO arrives.
	otr bool
}

// newDevices makes the devices of Config.OMEMODevices.
func newDevices(cfg Config) ([]*omemo.Device, error) {
	if cfg.OMEMODevices < 0 || cfg.OMEMODevices > MaxOMEMODevices {
		return nil, fmt.Errorf("operator: %d OMEMO devices: between 0 and %d", cfg.OMEMODevices, MaxOMEMODevices)
	}
	devs := make([]*omemo.Device, 0, cfg.OMEMODevices)
	for range cfg.OMEMODevices {
		d, err := omemo.NewDevice(omemo.Options{PreKeys: preKeys(cfg)})
		if err != nil {
			return nil, fmt.Errorf("operator: making an OMEMO device: %w", err)
		}
		devs = append(devs, d)
	}
	return devs, nil
}

func preKeys(cfg Config) int {
	if cfg.OMEMOPreKeys > 0 {
		return cfg.OMEMOPreKeys
	}
	return DefaultOMEMOPreKeys
}

// Devices lists the bot's OMEMO devices, in the order they were made (the
// first is the one Say encrypts from).
func (b *Bot) Devices() []Device {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Device, len(b.devices))
	for i, d := range b.devices {
		out[i] = Device{ID: d.ID(), Fingerprint: d.Fingerprint()}
	}
	return out
}

// DeviceIDs lists the IDs of the bot's OMEMO devices, as Devices orders them.
func (b *Bot) DeviceIDs() []uint32 {
	var ids []uint32
	for _, d := range b.Devices() {
		ids = append(ids, d.ID)
	}
	return ids
}

// Fingerprints lists the fingerprints of the bot's OMEMO devices (64
// lower-case hex digits each), as Devices orders them.
func (b *Bot) Fingerprints() []string {
	var fps []string
	for _, d := range b.Devices() {
		fps = append(fps, d.Hex())
	}
	return fps
}

// Bundle is the bundle the bot publishes now for its device id (nil for a
// device it does not have). A hostile service in a test hands it to the
// visitor as the operator's.
func (b *Bot) Bundle(id uint32) *omemo.Bundle {
	b.mu.Lock()
	defer b.mu.Unlock()
	if d := b.device(id); d != nil {
		return d.Bundle()
	}
	return nil
}

// device returns the bot's device id. b.mu is held.
func (b *Bot) device(id uint32) *omemo.Device {
	for _, d := range b.devices {
		if d.ID() == id {
			return d
		}
	}
	return nil
}

// AddDevice makes one more OMEMO device, publishes its bundle and then the
// new device list: the operator installed another client. Whether the skin
// trusts it is the test's choice (store.PutDevice); an untrusted one must
// not be given the visitor's messages.
func (b *Bot) AddDevice(ctx context.Context) (Device, error) {
	d, err := omemo.NewDevice(omemo.Options{PreKeys: preKeys(b.cfg)})
	if err != nil {
		return Device{}, fmt.Errorf("operator: making an OMEMO device: %w", err)
	}
	b.mu.Lock()
	if len(b.devices) >= MaxOMEMODevices {
		b.mu.Unlock()
		return Device{}, fmt.Errorf("operator: already %d OMEMO devices", MaxOMEMODevices)
	}
	bundle := d.Bundle().Marshal()
	b.devices = append(b.devices, d)
	b.mu.Unlock()
	if err := b.publish(ctx, omemo.BundleNode(d.ID()), bundle); err != nil {
		return Device{}, err
	}
	if err := b.publishList(ctx); err != nil {
		return Device{}, err
	}
	b.logf("operator: OMEMO device %d added", d.ID())
	return Device{ID: d.ID(), Fingerprint: d.Fingerprint()}, nil
}

// RemoveDevice drops the bot's device id and publishes the device list
// without it: the operator uninstalled a client. The device decrypts
// nothing from then on.
func (b *Bot) RemoveDevice(ctx context.Context, id uint32) error {
	b.mu.Lock()
	i := slices.IndexFunc(b.devices, func(d *omemo.Device) bool { return d.ID() == id })
	if i < 0 {
		b.mu.Unlock()
		return ErrNoDevice
	}
	b.devices = slices.Delete(b.devices, i, i+1)
	b.mu.Unlock()
	return b.publishList(ctx)
}

// publishKeys publishes every device's bundle, then the device list.
func (b *Bot) publishKeys(ctx context.Context) error {
	b.mu.Lock()
	type item struct {
		node    string
		payload []byte
	}
	var items []item
	for _, d := range b.devices {
		items = append(items, item{omemo.BundleNode(d.ID()), d.Bundle().Marshal()})
	}
	b.mu.Unlock()
	for _, it := range items {
		if err := b.publish(ctx, it.node, it.payload); err != nil {
			return err
		}
	}
	return b.publishList(ctx)
}

func (b *Bot) publishList(ctx context.Context) error {
	b.mu.Lock()
	list := make(omemo.DeviceList, 0, len(b.devices))
	for _, d := range b.devices {
		list = append(list, d.ID())
	}
	b.mu.Unlock()
	return b.publish(ctx, omemo.DeviceListNode, list.Marshal())
}

// publish sets the one item of a node of the account's own PEP. Publishes
// go one at a time, so a device list never overtakes the bundle it names.
func (b *Bot) publish(ctx context.Context, node string, payload []byte) error {
	b.pubMu.Lock()
	defer b.pubMu.Unlock()
	_, err := b.cfg.Client.IQ(ctx, "set", "", omemoxml.Publish(node, payload))
	if err != nil {
		return fmt.Errorf("operator: publishing %s on the account's PEP (does the server have PEP? Prosody: xmpptest.Options.HostModules pep): %w", node, err)
	}
	return nil
}

// omemoChatLocked returns the OMEMO chat with alias, making it. b.mu is held.
func (b *Bot) omemoChatLocked(alias string) *omemoChat {
	ch := b.omemo[alias]
	if ch == nil {
		ch = &omemoChat{secure: map[uint32]bool{}}
		b.omemo[alias] = ch
	}
	return ch
}

// deviceListEvent takes the alias's device list from the component's PEP
// event: the chat is an OMEMO chat from now on.
func (b *Bot) deviceListEvent(alias string, st xmpptest.Stanza) {
	el, _, ok := omemoxml.Element(st.Raw, omemo.NS, "list")
	if !ok {
		return
	}
	list, err := omemo.ParseDeviceList(el)
	if err != nil {
		b.emit(Event{Alias: alias, Kind: Failure, Text: "the alias's device list is malformed", OMEMO: true})
		return
	}
	b.mu.Lock()
	ch := b.omemoChatLocked(alias)
	ch.list, ch.otr = list, false
	b.mu.Unlock()
	b.logf("operator: %s: told %d OMEMO devices", alias, len(list))
	b.emit(Event{Alias: alias, Kind: Keys, OMEMO: true, List: slices.Clone([]uint32(list))})
}

// receiveOMEMO decrypts an <encrypted/> element from alias with every
// device of the bot that has a key in it.
func (b *Bot) receiveOMEMO(ctx context.Context, alias string, st xmpptest.Stanza) error {
	enc, ok := omemoxml.Encrypted(st.Raw)
	if !ok {
		b.logf("operator: %s: a malformed OMEMO element", alias)
		b.emit(Event{Alias: alias, Kind: Failure, Text: "malformed OMEMO element", OMEMO: true})
		return nil
	}
	b.mu.Lock()
	ch := b.omemoChatLocked(alias)
	var (
		got       *omemo.Message
		mine      []uint32
		failures  []string
		republish []uint32
		bundles   [][]byte
	)
	for _, d := range b.devices {
		if !hasKey(enc, d.ID()) {
			continue
		}
		m, err := d.Decrypt(alias, enc)
		if err != nil {
			failures = append(failures, fmt.Sprintf("device %d: %v", d.ID(), err))
			continue
		}
		got = m
		mine = append(mine, d.ID())
		if m.Republish {
			republish = append(republish, d.ID())
			bundles = append(bundles, d.Bundle().Marshal())
		}
	}
	first := false
	if got != nil {
		ch.otr = false
		first = !ch.secure[got.From.Device]
		ch.secure[got.From.Device] = true
		if ch.list != nil && !slices.Contains(ch.list, got.From.Device) {
			ch.list = append(ch.list, got.From.Device)
		}
	}
	b.mu.Unlock()

	for i, id := range republish {
		if err := b.publish(ctx, omemo.BundleNode(id), bundles[i]); err != nil {
			return err
		}
		b.logf("operator: OMEMO device %d republished its bundle", id)
	}
	for _, f := range failures {
		b.logf("operator: %s: OMEMO refused a message: %s", alias, f)
		b.emit(Event{Alias: alias, Kind: Failure, Text: f, OMEMO: true})
	}
	if got == nil {
		if len(failures) == 0 {
			b.logf("operator: %s: an OMEMO message for none of the bot's devices", alias)
			b.emit(Event{Alias: alias, Kind: Failure, Text: "not encrypted for any of the operator's devices", OMEMO: true})
		}
		return nil
	}
	base := Event{Alias: alias, Encrypted: true, OMEMO: true, Device: got.From.Device, OMEMOFingerprint: got.Fingerprint, Devices: mine}
	if first {
		b.logf("operator: %s: OMEMO from visitor device %d", alias, got.From.Device)
		ev := base
		ev.Kind = Secure
		b.emit(ev)
	}
	if got.Plaintext == nil {
		ev := base
		ev.Kind = KeyTransport
		b.emit(ev)
		return nil
	}
	text := string(got.Plaintext)
	ev := base
	ev.Kind, ev.Text = Message, text
	b.emit(ev)
	if b.cfg.Answer != nil {
		if reply := b.cfg.Answer(alias, text); reply != "" {
			return b.Say(ctx, alias, reply)
		}
	}
	return nil
}

func hasKey(e *omemo.Encrypted, device uint32) bool {
	return slices.ContainsFunc(e.Keys, func(k omemo.Key) bool { return k.RID == device })
}

// SayFrom sends text to alias in an OMEMO chat from the bot's device id
// (Say sends from the first device): the operator answering from the phone.
func (b *Bot) SayFrom(ctx context.Context, alias string, id uint32, text string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.device(id)
	if d == nil {
		return ErrNoDevice
	}
	ch := b.omemo[alias]
	if ch == nil {
		return ErrNoChat
	}
	return b.sayOMEMOLocked(ctx, alias, ch, d, text)
}

// sayOMEMOLocked encrypts text from device from to the alias's devices and
// the bot's other devices, and sends it. b.mu is held.
func (b *Bot) sayOMEMOLocked(ctx context.Context, alias string, ch *omemoChat, from *omemo.Device, text string) error {
	to, err := b.recipientsLocked(ctx, alias, ch, from)
	if err != nil {
		return err
	}
	enc, err := from.Encrypt([]byte(text), to)
	if err != nil {
		return fmt.Errorf("operator: OMEMO encrypting for %s: %w", alias, err)
	}
	if err := b.sendEncrypted(ctx, alias, enc); err != nil {
		return err
	}
	b.logf("operator: %s: OMEMO message from device %d to %d devices", alias, from.ID(), len(to))
	return nil
}

// sendEncrypted sends an <encrypted/> element as Conversations does: with
// the fallback body, EME and the store hint.
func (b *Bot) sendEncrypted(ctx context.Context, alias string, enc *omemo.Encrypted) error {
	err := b.cfg.Client.SendRaw(ctx, omemoxml.Message("", alias, FallbackBody, enc, "store"))
	if err != nil {
		return fmt.Errorf("operator: sending to %s: %w", alias, err)
	}
	return nil
}

// recipientsLocked lists the devices a message from device from goes to:
// every device of the alias it can reach (reading the alias's device list
// and the bundles it has no session with at guest-<id>@D) and the bot's
// other devices, as a client encrypts to its account's other devices too.
// b.mu is held.
func (b *Bot) recipientsLocked(ctx context.Context, alias string, ch *omemoChat, from *omemo.Device) ([]omemo.Recipient, error) {
	if ch.list == nil {
		el, err := b.readPEP(ctx, alias, omemo.DeviceListNode, "list")
		if err != nil {
			return nil, err
		}
		list, err := omemo.ParseDeviceList(el)
		if err != nil {
			return nil, fmt.Errorf("operator: the device list of %s: %w", alias, err)
		}
		ch.list = list
	}
	var to []omemo.Recipient
	var missed error
	for _, id := range ch.list {
		r := omemo.Recipient{Address: omemo.Address{JID: alias, Device: id}}
		if !from.HasSession(r.Address) {
			el, err := b.readPEP(ctx, alias, omemo.BundleNode(id), "bundle")
			if err == nil {
				r.Bundle, err = omemo.ParseBundle(el)
			}
			if err != nil {
				// A device without a readable bundle is left out, as
				// clients do; the others still get the message.
				missed = fmt.Errorf("operator: the bundle of %s device %d: %w", alias, id, err)
				b.logf("operator: %v", missed)
				continue
			}
		}
		to = append(to, r)
	}
	if len(to) == 0 {
		if missed == nil {
			missed = fmt.Errorf("operator: %s lists no OMEMO device", alias)
		}
		return nil, missed
	}
	own := bare(b.cfg.Client.JID().String())
	for _, d := range b.devices {
		if d == from {
			continue
		}
		r := omemo.Recipient{Address: omemo.Address{JID: own, Device: d.ID()}}
		if !from.HasSession(r.Address) {
			r.Bundle = d.Bundle()
		}
		to = append(to, r)
	}
	return to, nil
}

// readPEP reads the item of node at jid (a PEP items request) and returns
// its payload element {omemo.NS}local.
func (b *Bot) readPEP(ctx context.Context, jid, node, local string) ([]byte, error) {
	res, err := b.cfg.Client.IQ(ctx, "get", jid, omemoxml.Items(node))
	if err != nil {
		return nil, fmt.Errorf("operator: reading %s at %s: %w", node, jid, err)
	}
	el, _, ok := omemoxml.Element(res.Raw, omemo.NS, local)
	if !ok {
		return nil, fmt.Errorf("operator: reading %s at %s: no %s in the answer", node, jid, local)
	}
	return el, nil
}

// isOMEMOChatLocked reports whether alias is an OMEMO chat the bot can
// answer. b.mu is held.
func (b *Bot) isOMEMOChatLocked(alias string) (*omemoChat, bool) {
	ch := b.omemo[alias]
	return ch, ch != nil && !ch.otr && len(b.devices) > 0
}
