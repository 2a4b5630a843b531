//go:build js && wasm

// Command wasm is the OTR engine of package otr compiled to WebAssembly
// for the visitor widget, run in a Web Worker (GOOS=js GOARCH=wasm go
// build ./web/wasm). It has no network access: the page moves bodies
// between the worker and XMPP.
//
// # JavaScript API
//
// When the module runs (new Go(); go.run(instance) — do not await it: main
// never returns, so the API stays alive), it registers globalThis.otrdesk:
//
//	otrdesk.version                      "1"
//	otrdesk.generateKey() -> string      a new visitor key, base64 of the otr.js /
//	                                     x/crypto/otr form 0x0000 ‖ MPI p,q,g,y,x
//	                                     (DSA-1024 on fixed domain parameters: ~1 ms)
//	otrdesk.newConversation(opts) -> conv
//	    opts.policy          "require" (default) | "opportunistic" | "plaintext" |
//	                         a number (bits of otr.Policy)
//	    opts.key             base64 key as from generateKey; default: a new key
//	    opts.maxMessageSize  split encoded messages longer than this (0: never)
//	    opts.instanceTag     our instance tag (>= 0x100); default random
//
//	conv.query()            -> Result  the OTR query that starts the AKE
//	conv.send(text)         -> Result  what the visitor typed
//	conv.receive(body)      -> Result  a body that arrived from the operator
//	conv.end()              -> Result  end the private chat (disconnect TLV)
//	conv.smp(question, secret) -> Result  start SMP, or answer the operator's
//	                                   (question is ignored when answering; "" for none)
//	conv.smpAbort()         -> Result
//	conv.fingerprint()      -> string | null  the operator's fingerprint once secure,
//	                                   "XXXXXXXX XXXXXXXX XXXXXXXX XXXXXXXX XXXXXXXX"
//	conv.ourFingerprint()   -> string  the visitor key's fingerprint
//	conv.isEncrypted()      -> boolean
//	conv.instanceTag()      -> number
//
// Every call that can produce output returns a Result (never throws; bad
// arguments give Result.error):
//
//	{
//	  send:   [string],                  bodies to send to the operator, in order
//	  show:   [{text, encrypted}],       text to show; encrypted is false for plaintext
//	  events: [{type, ...}],             see below
//	  error:  string | undefined         why the call's input was rejected
//	}
//
// Event types: "secure" {fingerprint, instance, refreshed} (refreshed is
// true when an AKE finished while already secure — the key may differ, so
// check the fingerprint again), "insecure" {message} (the operator ended
// the private chat; send refuses until end() or a new query()),
// "unencrypted" {message}, "error" {message}, "peer-error" {message} (an
// OTR error from the operator), "smp-question" {question} (answer with
// smp), "smp-progress", "smp-succeeded", "smp-failed", "smp-aborted",
// "extra-key" {use}. Messages in events are sentences for a user and never
// contain message text or keys.
package main

import (
	"crypto/dsa" //nolint:staticcheck // OTR v3 long-term keys are DSA-1024/160.
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math/big"
	"syscall/js"

	"otrdesk.im/otrdesk/otr"
)

// Fixed DSA-1024/160 domain parameters for visitor keys: generating fresh
// parameters takes up to a second in the browser, a key on these takes a
// millisecond. Sharing domain parameters is normal DSA practice (FIPS
// 186); each visitor still has its own x.
var visitorParams = dsa.Parameters{
	P: mustHex("E381B4A1CA7BDF3FD2213311EC970324ADDC44F329F0664A835F17D06224A8FE9C7140CCE3491142C4B3C7D94638388689599269295EDD5CC72AC9D79E871AE26EF527F0FD1B9E8E9C6BFDDF9679C92E378FC87656C691B5DB6893A6889B98E8384387D901A6A193C09C249F9989BED29B53856876752F9C300C43E4CA56CC49"),
	Q: mustHex("B773CBA78357C8AE140AAA231A774BA94D942EC7"),
	G: mustHex("B0E18A5839D4347C3C2F1FAA597A741AF8F312D3BCF1D9DA62765DD4DFC35B77DA111105D2CBEDBE9BA6A89DAFF3BD9E14E6D1BDF245A632135E9BCB62A77C38A44A1A6A748CE2F7ACAEC1CAFA33FDAD767F17C1BB835D5E449107D23A194C8B601A9BAD8992FBEE8BF03C88CB094874F1F20773054E054F54E3B336F8BBE800"),
}

func mustHex(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 16)
	if !ok {
		panic("wasm: bad constant")
	}
	return v
}

func main() {
	api := map[string]any{
		"version":         "1",
		"generateKey":     js.FuncOf(jsGenerateKey),
		"newConversation": js.FuncOf(jsNewConversation),
	}
	js.Global().Set("otrdesk", js.ValueOf(api))
	select {} // keep the callbacks alive
}

func generateKey() (*otr.PrivateKey, error) {
	k := dsa.PrivateKey{PublicKey: dsa.PublicKey{Parameters: visitorParams}}
	if err := dsa.GenerateKey(&k, rand.Reader); err != nil {
		return nil, err
	}
	return &otr.PrivateKey{PublicKey: otr.PublicKey{P: k.P, Q: k.Q, G: k.G, Y: k.Y}, X: k.X}, nil
}

// encodeKey writes the otr.js / x/crypto/otr private key form.
func encodeKey(k *otr.PrivateKey) string {
	b := k.PublicKey.Bytes()
	x := k.X.Bytes()
	b = append(b, byte(len(x)>>24), byte(len(x)>>16), byte(len(x)>>8), byte(len(x)))
	b = append(b, x...)
	return base64.StdEncoding.EncodeToString(b)
}

var errBadKey = errors.New("wasm: the key is not a base64 OTR DSA private key")

func decodeKey(s string) (*otr.PrivateKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errBadKey
	}
	pub, rest, ok := otr.ParsePublicKey(b)
	if !ok || len(rest) < 4 {
		return nil, errBadKey
	}
	n := int(rest[0])<<24 | int(rest[1])<<16 | int(rest[2])<<8 | int(rest[3])
	if n < 1 || n > len(rest)-4 {
		return nil, errBadKey
	}
	x := new(big.Int).SetBytes(rest[4 : 4+n])
	k := &otr.PrivateKey{PublicKey: *pub, X: x}
	if x.Sign() <= 0 || x.Cmp(pub.Q) >= 0 || new(big.Int).Exp(pub.G, x, pub.P).Cmp(pub.Y) != 0 {
		return nil, errBadKey
	}
	return k, nil
}

func jsGenerateKey(this js.Value, args []js.Value) any {
	k, err := generateKey()
	if err != nil {
		return js.Null()
	}
	return encodeKey(k)
}

func policyOf(v js.Value) (otr.Policy, error) {
	switch v.Type() {
	case js.TypeUndefined, js.TypeNull:
		return otr.PolicyAlways, nil
	case js.TypeNumber:
		return otr.Policy(v.Int()), nil
	case js.TypeString:
		switch v.String() {
		case "require":
			return otr.PolicyAlways, nil
		case "opportunistic":
			return otr.PolicyOpportunistic, nil
		case "plaintext":
			return otr.PolicyManual, nil
		}
	}
	return 0, fmt.Errorf("wasm: unknown policy %q", v.String())
}

func jsNewConversation(this js.Value, args []js.Value) any {
	opts := js.Undefined()
	if len(args) > 0 {
		opts = args[0]
	}
	get := func(name string) js.Value {
		if opts.Type() != js.TypeObject {
			return js.Undefined()
		}
		return opts.Get(name)
	}
	policy, err := policyOf(get("policy"))
	if err != nil {
		panic(js.Global().Get("Error").New(err.Error()))
	}
	var key *otr.PrivateKey
	if k := get("key"); k.Type() == js.TypeString {
		key, err = decodeKey(k.String())
	} else {
		key, err = generateKey()
	}
	if err != nil {
		panic(js.Global().Get("Error").New(err.Error()))
	}
	cfg := otr.Config{PrivateKey: key, Policy: policy}
	if v := get("maxMessageSize"); v.Type() == js.TypeNumber {
		cfg.MaxMessageSize = v.Int()
	}
	if v := get("instanceTag"); v.Type() == js.TypeNumber {
		cfg.InstanceTag = uint32(v.Float())
	}
	c, err := otr.NewConversation(cfg)
	if err != nil {
		panic(js.Global().Get("Error").New(err.Error()))
	}
	return newJSConversation(c, key)
}

func newJSConversation(c *otr.Conversation, key *otr.PrivateKey) js.Value {
	str := func(args []js.Value, i int) string {
		if i < len(args) && args[i].Type() == js.TypeString {
			return args[i].String()
		}
		return ""
	}
	conv := map[string]any{
		"query": js.FuncOf(func(this js.Value, args []js.Value) any {
			out, err := c.Start()
			return result(out, nil, false, nil, err)
		}),
		"send": js.FuncOf(func(this js.Value, args []js.Value) any {
			out, err := c.Send([]byte(str(args, 0)))
			return result(out, nil, false, nil, err)
		}),
		"receive": js.FuncOf(func(this js.Value, args []js.Value) any {
			body := []byte(str(args, 0))
			k := otr.Classify(body).Kind
			show, out, ev, err := c.Receive(body)
			return result(out, show, k == otr.KindEncoded || k == otr.KindFragment, ev, err)
		}),
		"end": js.FuncOf(func(this js.Value, args []js.Value) any {
			out, err := c.End()
			return result(out, nil, false, nil, err)
		}),
		"smp": js.FuncOf(func(this js.Value, args []js.Value) any {
			out, err := c.Authenticate(str(args, 0), []byte(str(args, 1)))
			return result(out, nil, false, nil, err)
		}),
		"smpAbort": js.FuncOf(func(this js.Value, args []js.Value) any {
			out, err := c.AbortSMP()
			return result(out, nil, false, nil, err)
		}),
		"fingerprint": js.FuncOf(func(this js.Value, args []js.Value) any {
			if fp, ok := c.PeerFingerprint(); ok {
				return fp.String()
			}
			return js.Null()
		}),
		"ourFingerprint": js.FuncOf(func(this js.Value, args []js.Value) any {
			return key.PublicKey.Fingerprint().String()
		}),
		"isEncrypted": js.FuncOf(func(this js.Value, args []js.Value) any {
			return c.IsEncrypted()
		}),
		"instanceTag": js.FuncOf(func(this js.Value, args []js.Value) any {
			return float64(c.InstanceTag())
		}),
	}
	return js.ValueOf(conv)
}

// result builds a Result object.
func result(send [][]byte, show []byte, encrypted bool, events []otr.Event, err error) any {
	sends := make([]any, len(send))
	for i, s := range send {
		sends[i] = string(s)
	}
	shows := []any{}
	if show != nil {
		shows = append(shows, map[string]any{"text": string(show), "encrypted": encrypted})
	}
	evs := make([]any, 0, len(events))
	for _, e := range events {
		evs = append(evs, jsEvent(e))
	}
	r := map[string]any{"send": sends, "show": shows, "events": evs}
	if err != nil {
		r["error"] = err.Error()
	}
	return js.ValueOf(r)
}

func jsEvent(e otr.Event) map[string]any {
	m := map[string]any{"instance": float64(e.Instance)}
	switch e.Kind {
	case otr.EventGoneSecure, otr.EventStillSecure:
		m["type"] = "secure"
		m["fingerprint"] = e.Fingerprint.String()
		m["refreshed"] = e.Kind == otr.EventStillSecure
	case otr.EventGoneInsecure:
		m["type"], m["message"] = "insecure", e.Text
	case otr.EventUnencrypted:
		m["type"], m["message"] = "unencrypted", e.Text
	case otr.EventPeerError:
		m["type"], m["message"] = "peer-error", e.Text
	case otr.EventError:
		m["type"], m["message"] = "error", e.Text
	case otr.EventSMPSecretNeeded:
		m["type"], m["question"] = "smp-question", e.Text
	case otr.EventSMPProgress:
		m["type"] = "smp-progress"
	case otr.EventSMPSucceeded:
		m["type"] = "smp-succeeded"
	case otr.EventSMPFailed:
		m["type"] = "smp-failed"
	case otr.EventSMPAborted:
		m["type"] = "smp-aborted"
	case otr.EventExtraKey:
		m["type"], m["use"] = "extra-key", float64(e.Use)
	default:
		m["type"] = e.Kind.String()
	}
	return m
}
