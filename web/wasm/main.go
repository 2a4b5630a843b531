//go:build js && wasm

// Command wasm is the OTR engine of package otr compiled to WebAssembly
// for the visitor widget, run in a Web Worker (GOOS=js GOARCH=wasm go
// build ./web/wasm). It has no network access: the page moves bodies
// between the worker and XMPP.
//
// Every visitor downloads this module before the first chat, so it is kept
// small: no package fmt (strconv and errors instead; linked_test.go fails
// when something heavy is linked again); ./pack, run on the built module,
// joins its data segments so that they compress far better.
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
//	conv.sendTo(instance, fingerprint, text) -> Result
//	                                   what the visitor typed, encrypted to that
//	                                   operator instance only, and only while its
//	                                   session is encrypted with that key (fingerprint:
//	                                   40 hex digits in either case, grouped or not,
//	                                   compared as bytes). Otherwise Result.notSent is
//	                                   true, Result.error says why, Result.send is empty
//	                                   and nothing is kept to send later.
//	conv.send(text)         -> Result  what the visitor typed, to whichever session
//	                                   the engine finds best (the most recently active
//	                                   encrypted one), held until the AKE under
//	                                   "require". Not for text the widget has told the
//	                                   visitor is encrypted to a verified key: a second
//	                                   instance of the operator's account (or a hostile
//	                                   server posing as one) can become "best".
//	conv.receive(body)      -> Result  a body that arrived from the operator
//	conv.end()              -> Result  end the private chat (disconnect TLV)
//	conv.smp(question, secret) -> Result  start SMP, or answer the operator's
//	                                   (question is ignored when answering; "" for none)
//	conv.smpAbort()         -> Result
//	conv.fingerprint()      -> string | null  the fingerprint of the session send()
//	                                   would use, once secure (see send for why the
//	                                   widget follows secure events instead)
//	conv.ourFingerprint()   -> string  the visitor key's fingerprint
//	conv.isEncrypted()      -> boolean whether send() would encrypt
//	conv.instanceTag()      -> number
//	conv.export()           -> string  the whole conversation (keys, session keys,
//	                                   counters, messages held for encryption), base64;
//	                                   as secret as the key: keep it in the tab only
//	conv.restore(state)     -> boolean replace this conversation with an exported one
//	                                   (a page reload); false if state is not one.
//	                                   Every restore moves the sending counters by a
//	                                   new random amount, so restoring one state twice
//	                                   never reuses a key and counter.
//
// Every fingerprint this API gives is the canonical text form: 40
// upper-case hex digits, no spaces ("0123ABCD..."). Group it for people
// only when showing it.
//
// Every call that can produce output returns a Result (never throws; bad
// arguments give Result.error):
//
//	{
//	  send:    [string],                  bodies to send to the operator, in order
//	  show:    [{text, encrypted, instance, fingerprint}],
//	                                      text to show; encrypted is true only for text
//	                                      decrypted from an OTR Data message (never for
//	                                      plaintext, also when it arrived in fragments),
//	                                      and then instance and fingerprint name the
//	                                      session that decrypted it (0 and "" otherwise)
//	  events:  [{type, ...}],             see below
//	  error:   string | undefined         why the call's input was rejected
//	  notSent: true | undefined           (sendTo) nothing was sent
//	}
//
// Event types: "secure" {fingerprint, instance, refreshed} (an AKE with
// that operator instance finished; refreshed is true when that instance
// was already secure — the key may differ, so check the fingerprint
// again), "insecure" {message} (the operator ended the private chat; send
// refuses until end() or a new query()), "unencrypted" {message}, "error"
// {message}, "peer-error" {message} (an OTR error from the operator),
// "smp-question" {question} (answer with smp), "smp-progress",
// "smp-succeeded", "smp-failed", "smp-aborted", "extra-key" {use},
// "resent" {message} (the operator's session had restarted and could not
// read the last message; it was sent again, only ever to the instance and
// key it was first encrypted to). Every event has instance, the operator
// instance it concerns (0 when none). Messages in events are sentences for
// a user and never contain message text or keys.
package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"math"
	"strconv"
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
	return 0, errors.New("wasm: unknown policy " + strconv.Quote(v.String())) // not fmt: with the reflect it needs, ~60 KB more to download
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
	conv := map[string]any{
		"query": js.FuncOf(func(this js.Value, args []js.Value) any {
			out, err := c.Start()
			return js.ValueOf(result(out, nil, err))
		}),
		"sendTo": js.FuncOf(func(this js.Value, args []js.Value) any {
			return js.ValueOf(sendTo(c, args))
		}),
		"send": js.FuncOf(func(this js.Value, args []js.Value) any {
			out, err := c.Send([]byte(str(args, 0)))
			return js.ValueOf(result(out, nil, err))
		}),
		"receive": js.FuncOf(func(this js.Value, args []js.Value) any {
			show, out, ev, err := c.Receive([]byte(str(args, 0)))
			r := result(out, ev, err)
			if show != nil {
				r["show"] = []any{showEntry(show, c.LastShown())}
			}
			return js.ValueOf(r)
		}),
		"end": js.FuncOf(func(this js.Value, args []js.Value) any {
			out, err := c.End()
			return js.ValueOf(result(out, nil, err))
		}),
		"smp": js.FuncOf(func(this js.Value, args []js.Value) any {
			out, err := c.Authenticate(str(args, 0), []byte(str(args, 1)))
			return js.ValueOf(result(out, nil, err))
		}),
		"smpAbort": js.FuncOf(func(this js.Value, args []js.Value) any {
			out, err := c.AbortSMP()
			return js.ValueOf(result(out, nil, err))
		}),
		"fingerprint": js.FuncOf(func(this js.Value, args []js.Value) any {
			if fp, ok := c.PeerFingerprint(); ok {
				return canonical(fp)
			}
			return js.Null()
		}),
		"ourFingerprint": js.FuncOf(func(this js.Value, args []js.Value) any {
			return canonical(c.OurFingerprint())
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

func str(args []js.Value, i int) string {
	if i < len(args) && args[i].Type() == js.TypeString {
		return args[i].String()
	}
	return ""
}

// sendTo is conv.sendTo: the widget names the session it told the visitor
// about (instance and fingerprint from the secure event it trusted), and
// the text goes there or nowhere.
func sendTo(c *otr.Conversation, args []js.Value) map[string]any {
	notSent := func(err error) map[string]any {
		r := result(nil, nil, err)
		r["notSent"] = true
		return r
	}
	instance, err := instanceArg(args, 0)
	if err != nil {
		return notSent(err)
	}
	fp, err := otr.ParseFingerprint(str(args, 1))
	if err != nil {
		return notSent(err)
	}
	out, err := c.SendTo(instance, fp, []byte(str(args, 2)))
	if err != nil {
		return notSent(err)
	}
	return result(out, nil, nil)
}

// errBadInstance is sendTo's answer to an instance that is not a number
// an instance tag can be.
var errBadInstance = errors.New("wasm: an instance is a whole number from 0 to 2^32-1")

func instanceArg(args []js.Value, i int) (uint32, error) {
	if i >= len(args) || args[i].Type() != js.TypeNumber {
		return 0, errBadInstance
	}
	f := args[i].Float()
	if f < 0 || f > math.MaxUint32 || f != math.Trunc(f) {
		return 0, errBadInstance
	}
	return uint32(f), nil
}

// canonical is the one text form of a fingerprint this API gives
// JavaScript: 40 upper-case hex digits, no grouping.
func canonical(fp otr.Fingerprint) string {
	b, _ := fp.MarshalText()
	return string(b)
}

// showEntry is one entry of Result.show: whether the text was decrypted,
// and by which session, is the engine's fact (Conversation.LastShown), not
// a guess from what the body looked like.
func showEntry(text []byte, s otr.Shown) map[string]any {
	m := map[string]any{"text": string(text), "encrypted": s.Encrypted, "instance": float64(0), "fingerprint": ""}
	if s.Encrypted {
		m["instance"], m["fingerprint"] = float64(s.Instance), canonical(s.Fingerprint)
	}
	return m
}

// result builds a Result object with no text to show.
func result(send [][]byte, events []otr.Event, err error) map[string]any {
	sends := make([]any, len(send))
	for i, s := range send {
		sends[i] = string(s)
	}
	evs := make([]any, 0, len(events))
	for _, e := range events {
		evs = append(evs, jsEvent(e))
	}
	r := map[string]any{"send": sends, "show": []any{}, "events": evs}
	if err != nil {
		r["error"] = err.Error()
	}
	return r
}

func jsEvent(e otr.Event) map[string]any {
	m := map[string]any{"instance": float64(e.Instance)}
	switch e.Kind {
	case otr.EventGoneSecure, otr.EventStillSecure:
		m["type"] = "secure"
		m["fingerprint"] = canonical(e.Fingerprint)
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
