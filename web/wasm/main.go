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
//	                                     (otr.GenerateEphemeralKey: DSA-1024 on fixed,
//	                                     published domain parameters, ~1 ms)
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
//	conv.export()           -> string  the whole conversation (keys, session keys,
//	                                   counters, messages held for encryption), base64;
//	                                   as secret as the key: keep it in the tab only
//	conv.restore(state)     -> boolean replace this conversation with an exported one
//	                                   (a page reload); false if state is not one
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
// "extra-key" {use}, "resent" {message} (the operator's session had
// restarted and could not read the last message; it was sent again). Messages in events are sentences for a user and never
// contain message text or keys.
package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"syscall/js"

	"otrdesk.im/otrdesk/otr"
)

func main() {
	api := map[string]any{
		"version":         "1",
		"generateKey":     js.FuncOf(jsGenerateKey),
		"newConversation": js.FuncOf(jsNewConversation),
	}
	js.Global().Set("otrdesk", js.ValueOf(api))
	select {} // keep the callbacks alive
}

func jsGenerateKey(this js.Value, args []js.Value) any {
	k, err := otr.GenerateEphemeralKey(rand.Reader)
	if err != nil {
		return js.Null()
	}
	return base64.StdEncoding.EncodeToString(k.PrivateBytes())
}

// parseKey reads a key as jsGenerateKey returns it: base64 of
// otr.PrivateKey.PrivateBytes (otr.js's form).
func parseKey(s string) (*otr.PrivateKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("wasm: the key is not base64")
	}
	k, rest, ok := otr.ParsePrivateKey(b)
	if !ok || len(rest) != 0 {
		return nil, errors.New("wasm: not an OTR DSA private key")
	}
	return k, nil
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
		key, err = parseKey(k.String())
	} else {
		key, err = otr.GenerateEphemeralKey(rand.Reader)
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
	return newJSConversation(c)
}

func newJSConversation(c *otr.Conversation) js.Value {
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
			return c.OurFingerprint().String()
		}),
		"export": js.FuncOf(func(this js.Value, args []js.Value) any {
			return base64.StdEncoding.EncodeToString(c.Export())
		}),
		"restore": js.FuncOf(func(this js.Value, args []js.Value) any {
			b, err := base64.StdEncoding.DecodeString(str(args, 0))
			if err != nil {
				return false
			}
			r, err := otr.Restore(b, otr.Config{})
			if err != nil {
				return false
			}
			c = r
			return true
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
	case otr.EventResent:
		m["type"], m["message"] = "resent", e.Text
	default:
		m["type"] = e.Kind.String()
	}
	return m
}
