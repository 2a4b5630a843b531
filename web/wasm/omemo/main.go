//go:build js && wasm

// Command omemo is the OMEMO engine of package omemo compiled to
// WebAssembly for the visitor widget, run in a Web Worker (GOOS=js
// GOARCH=wasm go build ./web/wasm/omemo). Like the OTR module beside it,
// it has no network access: the page moves elements between the worker
// and XMPP, and keeps the state the calls return.
//
// # JavaScript API
//
// When the module runs (new Go(); go.run(instance), not awaited: main
// never returns, so the API stays alive), it registers
// globalThis.otrdeskOmemo:
//
//	otrdeskOmemo.version                "1"
//	otrdeskOmemo.newDevice(preKeys) -> dev | {error}
//	                                    a new device: random device ID, identity
//	                                    key, signed prekey and preKeys one-time
//	                                    prekeys (1 to 32; the widget uses 10)
//	otrdeskOmemo.restore(state) -> dev | null
//	                                    the device dev.export() saved (a page
//	                                    reload); null if state is not one
//
//	dev.id() -> number                  the device ID (sid, and the device list's)
//	dev.fingerprint() -> string         the identity key's fingerprint
//	dev.deviceList() -> string          <list xmlns='eu.siacs.conversations.axolotl'>
//	                                      <device id='N'/></list>, to publish
//	dev.bundle() -> string              <bundle xmlns='eu.siacs.conversations.axolotl'>
//	                                    …</bundle>, to publish (again when decrypt
//	                                    says republish)
//	dev.peer(jid, device, bundle) -> {fingerprint} | {error}
//	                                    read a peer device's bundle: its signed
//	                                    prekey must be signed by its identity key,
//	                                    and that key must be the one the device
//	                                    already holds for (jid, device) if it holds
//	                                    one ("identity changed" otherwise). The
//	                                    key is then held (pinned) for that device
//	                                    and the bundle kept, to build a session
//	                                    from at the first encrypt.
//	dev.encrypt(text, recipients) -> {xml, state} | {notSent: true, error}
//	                                    text encrypted to every recipient at once,
//	                                    recipients: [{jid, device, fingerprint}].
//	                                    Bound: refused unless, for every recipient,
//	                                    the device holds exactly that identity key
//	                                    for (jid, device), from peer() or from a
//	                                    session; and it needs a session or a bundle
//	                                    from peer() for each. A refusal changes
//	                                    nothing. xml: the whole <encrypted/>
//	                                    element; state: the device after it, to
//	                                    save BEFORE the element is sent
//	dev.keyTransport(recipients) -> {xml, state} | {notSent: true, error}
//	                                    the same without a message: an <encrypted/>
//	                                    without payload that moves the sessions on
//	                                    (answer a prekey message with it when there
//	                                    is nothing to say)
//	dev.decrypt(from, xml) -> {text, device, fingerprint, preKey, republish, state}
//	                          | {error}
//	                                    an <encrypted/> element that came from the
//	                                    account from (a bare JID). text is null for
//	                                    a key transport element; device and
//	                                    fingerprint name the sending device and its
//	                                    identity key (whether to trust it is the
//	                                    caller's decision); preKey: the message
//	                                    built the session (answer soon, so the
//	                                    sender stops sending prekey messages);
//	                                    republish: a one-time prekey was used and
//	                                    replaced, publish dev.bundle() again. A
//	                                    message that does not decrypt changes
//	                                    nothing.
//	dev.export() -> string | null       the device (keys, sessions, held identity
//	                                    keys; not the bundles peer() kept), base64;
//	                                    as secret as the keys: keep it in the tab
//	                                    only
//
// A fingerprint is 64 lower-case hex digits, the 32 bytes of the
// Curve25519 identity key; encrypt also reads the grouped forms clients
// show, and compares bytes. Calls never throw: bad arguments give
// {error} (or notSent and error). Error texts are sentences for a log or
// a user; they never hold key bytes or message text.
package main

import (
	"encoding/base64"
	"errors"
	"math"
	"strconv"
	"syscall/js"
	"unicode/utf8"

	"go.mau.fi/libsignal/ecc"

	"otrdesk.im/otrdesk/omemo"
)

// maxWidgetPreKeys bounds newDevice: a visitor's device lives for the
// chats of one tab and needs few one-time prekeys.
const maxWidgetPreKeys = 32

// maxJIDBytes is the longest JID XMPP allows.
const maxJIDBytes = 3071

func main() {
	api := map[string]any{
		"version":   "1",
		"newDevice": js.FuncOf(jsNewDevice),
		"restore":   js.FuncOf(jsRestore),
	}
	js.Global().Set("otrdeskOmemo", js.ValueOf(api))
	select {} // keep the callbacks alive
}

func jsNewDevice(this js.Value, args []js.Value) any {
	n, ok := intArg(args, 0, 1, maxWidgetPreKeys)
	if !ok {
		return errorResult(errors.New("omemo: newDevice takes a number of prekeys from 1 to " + strconv.Itoa(maxWidgetPreKeys)))
	}
	d, err := omemo.NewDevice(omemo.Options{PreKeys: n})
	if err != nil {
		return errorResult(err)
	}
	return newJSDevice(d)
}

func jsRestore(this js.Value, args []js.Value) any {
	b, err := base64.StdEncoding.DecodeString(str(args, 0))
	if err != nil {
		return js.Null()
	}
	d, err := omemo.Restore(b, omemo.Options{})
	if err != nil {
		return js.Null()
	}
	return newJSDevice(d)
}

// device is a Device with the bundles peer() kept.
type device struct {
	d       *omemo.Device
	bundles map[omemo.Address]*omemo.Bundle
}

func newJSDevice(d *omemo.Device) js.Value {
	dev := &device{d: d, bundles: map[omemo.Address]*omemo.Bundle{}}
	fn := func(f func(args []js.Value) any) js.Func {
		return js.FuncOf(func(this js.Value, args []js.Value) any { return f(args) })
	}
	return js.ValueOf(map[string]any{
		"id":          fn(func([]js.Value) any { return float64(d.ID()) }),
		"fingerprint": fn(func([]js.Value) any { return fingerprint(d.Fingerprint()) }),
		"deviceList":  fn(func([]js.Value) any { return string(omemo.DeviceList{d.ID()}.Marshal()) }),
		"bundle":      fn(func([]js.Value) any { return string(d.Bundle().Marshal()) }),
		"peer":        fn(dev.peer),
		"encrypt":     fn(func(args []js.Value) any { return dev.encrypt(args, true) }),
		"keyTransport": fn(func(args []js.Value) any {
			return dev.encrypt(args, false)
		}),
		"decrypt": fn(dev.decrypt),
		"export": fn(func([]js.Value) any {
			s, err := dev.export()
			if err != nil {
				return js.Null()
			}
			return s
		}),
	})
}

var (
	errIdentityChanged = errors.New("omemo: identity changed: the device shows another key than the one held for it")
	errBadSignature    = errors.New("omemo: the bundle's signed prekey is not signed by its identity key")
	errBadJID          = errors.New("omemo: a JID is a non-empty string of at most 3071 bytes")
	errBadDevice       = errors.New("omemo: a device ID is a whole number from 1 to 2^31-1")
	errBadRecipients   = errors.New("omemo: recipients is a non-empty list of {jid, device, fingerprint}")
)

// peer is dev.peer: check a bundle and hold its identity key for the
// device.
func (dev *device) peer(args []js.Value) any {
	a, err := address(args, 0)
	if err != nil {
		return errorResult(err)
	}
	b, err := omemo.ParseBundle([]byte(str(args, 2)))
	if err != nil {
		return errorResult(err)
	}
	// libsignal checks the signature too, but only when it builds the
	// session; peer answers for the key now, so it checks now.
	if !ecc.VerifySignature(ecc.NewDjbECPublicKey(b.IdentityKey), b.SignedPreKey.Wire(), b.Signature) {
		return errorResult(errBadSignature)
	}
	if err := dev.d.Pin(a, b.IdentityKey); err != nil {
		return errorResult(errIdentityChanged)
	}
	dev.bundles[a] = b
	return map[string]any{"fingerprint": fingerprint(b.IdentityKey.Fingerprint())}
}

// encrypt is dev.encrypt (withText) and dev.keyTransport: to the devices
// named, each with the identity key named, or to none.
func (dev *device) encrypt(args []js.Value, withText bool) any {
	notSent := func(err error) any {
		r := errorResult(err)
		r["notSent"] = true
		return r
	}
	i := 0
	var text string
	if withText {
		if len(args) == 0 || args[0].Type() != js.TypeString {
			return notSent(errors.New("omemo: the text to encrypt is not a string"))
		}
		text, i = args[0].String(), 1
	}
	to, err := dev.recipients(args, i)
	if err != nil {
		return notSent(err)
	}
	var e *omemo.Encrypted
	if withText {
		e, err = dev.d.Encrypt([]byte(text), to)
	} else {
		e, err = dev.d.KeyTransport(to)
	}
	if err != nil {
		return notSent(err)
	}
	state, err := dev.export()
	if err != nil {
		// The sessions moved on by one message that is never sent: the
		// peers skip it. Nothing was sent.
		return notSent(err)
	}
	return map[string]any{"xml": string(e.Marshal()), "state": state}
}

// recipients reads encrypt's list and binds it: every device must be one
// whose identity key the device holds, and that key must be the one
// named. A recipient without a session gets the bundle peer() kept.
func (dev *device) recipients(args []js.Value, i int) ([]omemo.Recipient, error) {
	if i >= len(args) || !isArray(args[i]) {
		return nil, errBadRecipients
	}
	list := args[i]
	n := list.Length()
	if n == 0 || n > omemo.MaxKeys {
		return nil, errBadRecipients
	}
	to := make([]omemo.Recipient, 0, n)
	for j := range n {
		r := list.Index(j)
		if r.Type() != js.TypeObject {
			return nil, errBadRecipients
		}
		a, err := addressOf(r.Get("jid"), r.Get("device"))
		if err != nil {
			return nil, err
		}
		name := a.JID + "/" + strconv.FormatUint(uint64(a.Device), 10)
		fp, err := omemo.ParseFingerprint(stringOf(r.Get("fingerprint")))
		if err != nil {
			return nil, errors.New("omemo: the fingerprint given for device " + name + " is not one")
		}
		held, ok := dev.d.Identity(a)
		if !ok {
			return nil, errors.New("omemo: device " + name + " is unknown: give its bundle to peer() first")
		}
		if held.Fingerprint() != fp {
			return nil, errors.New("omemo: device " + name + " has another identity key than the fingerprint given")
		}
		rc := omemo.Recipient{Address: a}
		if !dev.d.HasSession(a) {
			rc.Bundle = dev.bundles[a]
		}
		to = append(to, rc)
	}
	return to, nil
}

// decrypt is dev.decrypt.
func (dev *device) decrypt(args []js.Value) any {
	from := str(args, 0)
	if !validJID(from) {
		return errorResult(errBadJID)
	}
	e, err := omemo.ParseEncrypted([]byte(str(args, 1)))
	if err != nil {
		return errorResult(err)
	}
	m, err := dev.d.Decrypt(from, e)
	if err != nil {
		return errorResult(err)
	}
	state, err := dev.export()
	if err != nil {
		return errorResult(err)
	}
	var text any = js.Null()
	if m.Plaintext != nil {
		text = string(m.Plaintext)
	}
	return map[string]any{
		"text":        text,
		"device":      float64(m.From.Device),
		"fingerprint": fingerprint(m.Fingerprint),
		"preKey":      m.PreKey,
		"republish":   m.Republish,
		"state":       state,
	}
}

func (dev *device) export() (string, error) {
	b, err := dev.d.Export()
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// fingerprint is the one text form this API gives: 64 lower-case hex
// digits.
func fingerprint(f omemo.Fingerprint) string {
	b, _ := f.MarshalText()
	return string(b)
}

func errorResult(err error) map[string]any { return map[string]any{"error": err.Error()} }

func address(args []js.Value, i int) (omemo.Address, error) {
	arg := func(k int) js.Value {
		if k < len(args) {
			return args[k]
		}
		return js.Undefined()
	}
	return addressOf(arg(i), arg(i+1))
}

func addressOf(jid, device js.Value) (omemo.Address, error) {
	a := omemo.Address{JID: stringOf(jid)}
	if !validJID(a.JID) {
		return a, errBadJID
	}
	if device.Type() != js.TypeNumber {
		return a, errBadDevice
	}
	f := device.Float()
	if f < 1 || f > omemo.MaxDeviceID || f != math.Trunc(f) {
		return a, errBadDevice
	}
	a.Device = uint32(f)
	return a, nil
}

func validJID(s string) bool { return s != "" && len(s) <= maxJIDBytes && utf8.ValidString(s) }

func intArg(args []js.Value, i, lo, hi int) (int, bool) {
	if i >= len(args) || args[i].Type() != js.TypeNumber {
		return 0, false
	}
	f := args[i].Float()
	if f < float64(lo) || f > float64(hi) || f != math.Trunc(f) {
		return 0, false
	}
	return int(f), true
}

func isArray(v js.Value) bool {
	return v.Type() == js.TypeObject && js.Global().Get("Array").Call("isArray", v).Bool()
}

func str(args []js.Value, i int) string {
	if i < len(args) {
		return stringOf(args[i])
	}
	return ""
}

func stringOf(v js.Value) string {
	if v.Type() == js.TypeString {
		return v.String()
	}
	return ""
}
