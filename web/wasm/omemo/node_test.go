//go:build !js

package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"otrdesk.im/otrdesk/omemo"
	"otrdesk.im/otrdesk/web/wasm/internal/nodewasm"
)

// The tests here build this package as web/build.mjs does and run it
// under node: wasm devices talk to each other and to a native
// omemo.Device, through the JavaScript API the widget's worker uses
// (testdata/driver.cjs), through the worker script (testdata/worker.cjs)
// and through the page's client (testdata/client.mjs).

func TestMain(m *testing.M) { nodewasm.Main(m) }

// node is one node process running the module; devices live in it by name.
type node struct {
	t testing.TB
	d *nodewasm.Driver
}

func startNode(t testing.TB) *node {
	t.Helper()
	return &node{t: t, d: nodewasm.StartModule(t, nodewasm.OMEMO, filepath.Join("testdata", "driver.cjs"))}
}

// reply is a driver's answer; Result is what the API call returned.
type reply struct {
	Result   json.RawMessage `json:"result"`
	Restored bool            `json:"restored"`
	devInfo
	NewDevice, Session, RoundTrip float64
}

type devInfo struct {
	ID          float64 `json:"id"`
	Fingerprint string  `json:"fingerprint"`
	List        string  `json:"list"`
	Bundle      string  `json:"bundle"`
}

func (n *node) do(cmd map[string]any) reply {
	n.t.Helper()
	var r reply
	n.d.Call(cmd, &r)
	return r
}

// A wasmDevice is a device of the wasm API in a node process.
type wasmDevice struct {
	n    *node
	name string
	jid  string
	devInfo
}

func newWasmDevice(n *node, name, jid string) *wasmDevice {
	n.t.Helper()
	r := n.do(map[string]any{"op": "new", "name": name, "preKeys": 10})
	var info devInfo
	if err := json.Unmarshal(r.Result, &info); err != nil || info.ID == 0 {
		n.t.Fatalf("newDevice: %s", r.Result)
	}
	return &wasmDevice{n: n, name: name, jid: jid, devInfo: info}
}

func (d *wasmDevice) call(method string, args ...any) json.RawMessage {
	d.n.t.Helper()
	return d.n.do(map[string]any{"op": "call", "name": d.name, "method": method, "args": args}).Result
}

func (d *wasmDevice) str(method string) string {
	d.n.t.Helper()
	var s string
	if err := json.Unmarshal(d.call(method), &s); err != nil {
		d.n.t.Fatalf("%s: %v", method, err)
	}
	return s
}

// recipient is one entry of encrypt's list.
type recipient struct {
	JID         string  `json:"jid"`
	Device      float64 `json:"device"`
	Fingerprint string  `json:"fingerprint"`
}

func (d *wasmDevice) as() recipient { return recipient{d.jid, d.ID, d.Fingerprint} }

type peerResult struct {
	Fingerprint string `json:"fingerprint"`
	Error       string `json:"error"`
}

type encResult struct {
	XML     string `json:"xml"`
	State   string `json:"state"`
	NotSent bool   `json:"notSent"`
	Error   string `json:"error"`
}

type decResult struct {
	Text        *string `json:"text"`
	Device      float64 `json:"device"`
	Fingerprint string  `json:"fingerprint"`
	PreKey      bool    `json:"preKey"`
	Republish   bool    `json:"republish"`
	State       string  `json:"state"`
	Error       string  `json:"error"`
}

func decode[T any](t testing.TB, raw json.RawMessage) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("API result %s: %v", raw, err)
	}
	return v
}

func (d *wasmDevice) peer(jid string, device float64, bundle string) peerResult {
	return decode[peerResult](d.n.t, d.call("peer", jid, device, bundle))
}

func (d *wasmDevice) encrypt(text string, to ...recipient) encResult {
	return decode[encResult](d.n.t, d.call("encrypt", text, to))
}

func (d *wasmDevice) keyTransport(to ...recipient) encResult {
	return decode[encResult](d.n.t, d.call("keyTransport", to))
}

func (d *wasmDevice) decrypt(from, xml string) decResult {
	return decode[decResult](d.n.t, d.call("decrypt", from, xml))
}

func (d *wasmDevice) export() string { return d.str("export") }

// sent is encrypt that must succeed.
func sent(t *testing.T, r encResult) string {
	t.Helper()
	if r.Error != "" || r.NotSent || r.XML == "" || r.State == "" {
		t.Fatalf("encrypt: %+v", r)
	}
	return r.XML
}

// read is decrypt that must succeed with text (nil: key transport).
func read(t *testing.T, r decResult, from *wasmDevice, text *string) decResult {
	t.Helper()
	if r.Error != "" {
		t.Fatalf("decrypt: %s", r.Error)
	}
	if (r.Text == nil) != (text == nil) || (text != nil && *r.Text != *text) {
		t.Fatalf("decrypt gave %v, want %v", deref(r.Text), deref(text))
	}
	if from != nil && (r.Device != from.ID || r.Fingerprint != from.Fingerprint) {
		t.Fatalf("decrypt names device %v %s, want %v %s", r.Device, r.Fingerprint, from.ID, from.Fingerprint)
	}
	if r.State == "" {
		t.Fatal("decrypt returned no state")
	}
	return r
}

func deref(s *string) string {
	if s == nil {
		return "<null>"
	}
	return fmt.Sprintf("%q", *s)
}

func ptr(s string) *string { return &s }

const (
	visitorJID  = "guest-1@desk.example"
	operatorJID = "alice@example.org"
)

// TestTwoWasmDevices: the widget's flow between two wasm devices: the
// visitor reads the operator's bundle, its first message is a prekey
// message, the operator's answer and everything after are normal
// messages; both learn each other's fingerprint; the operator's used
// prekey asks for a republish.
func TestTwoWasmDevices(t *testing.T) {
	n := startNode(t)
	if v := n.do(map[string]any{"op": "version"}).Result; string(v) != `"1"` {
		t.Fatalf("version %s", v)
	}
	v := newWasmDevice(n, "v", visitorJID)
	o := newWasmDevice(n, "o", operatorJID)
	if len(v.Fingerprint) != 64 || strings.ToLower(v.Fingerprint) != v.Fingerprint {
		t.Fatalf("fingerprint %q: want 64 lower-case hex digits", v.Fingerprint)
	}
	if want := fmt.Sprintf("<list xmlns='eu.siacs.conversations.axolotl'><device id='%d'/></list>", int(v.ID)); v.List != want {
		t.Fatalf("device list %q, want %q", v.List, want)
	}
	bundle, err := omemo.ParseBundle([]byte(o.Bundle))
	if err != nil || len(bundle.PreKeys) != 10 {
		t.Fatalf("bundle: %v, %d prekeys", err, len(bundle.PreKeys))
	}
	if fp, _ := bundle.IdentityKey.Fingerprint().MarshalText(); string(fp) != o.Fingerprint {
		t.Fatalf("bundle identity %s, fingerprint() %s", fp, o.Fingerprint)
	}

	if p := v.peer(operatorJID, o.ID, o.Bundle); p.Error != "" || p.Fingerprint != o.Fingerprint {
		t.Fatalf("peer: %+v", p)
	}
	first := sent(t, v.encrypt("Hallo, wie geht's? ✓", o.as()))
	if !strings.Contains(first, "prekey='true'") {
		t.Fatalf("first message is no prekey message: %s", first)
	}
	if r := read(t, o.decrypt(visitorJID, first), v, ptr("Hallo, wie geht's? ✓")); !r.PreKey || !r.Republish {
		t.Fatalf("first message: preKey %v republish %v", r.PreKey, r.Republish)
	}
	if o.str("bundle") == o.Bundle {
		t.Fatal("the bundle did not change after a prekey was used")
	}
	// The operator knows the visitor's key from the session: it may
	// encrypt to it without a bundle.
	reply := sent(t, o.encrypt("Guten Tag!", v.as()))
	if strings.Contains(reply, "prekey=") {
		t.Fatal("the answer is a prekey message")
	}
	if r := read(t, v.decrypt(operatorJID, reply), o, ptr("Guten Tag!")); r.PreKey || r.Republish {
		t.Fatalf("answer: preKey %v republish %v", r.PreKey, r.Republish)
	}
	for i := range 3 {
		text := fmt.Sprintf("message %d 日本語", i)
		m := sent(t, v.encrypt(text, o.as()))
		if strings.Contains(m, "prekey=") {
			t.Fatalf("message %d after the answer is a prekey message", i)
		}
		read(t, o.decrypt(visitorJID, m), v, &text)
		read(t, v.decrypt(operatorJID, sent(t, o.encrypt("ok "+text, v.as()))), o, ptr("ok "+text))
	}
	// A replayed message changes nothing and is refused.
	before := v.export()
	if r := v.decrypt(operatorJID, reply); r.Error == "" {
		t.Fatal("a replayed message decrypted")
	}
	if v.export() != before {
		t.Fatal("a replayed message changed the device")
	}
}

// TestEncryptBound: encrypt refuses, with notSent and nothing changed,
// a recipient whose fingerprint is not the key the device holds for it,
// a device it holds no key for, and a list with one of those among good
// ones; peer refuses a bundle under another identity key and a bundle
// whose signature does not hold. A later good encrypt still decrypts.
// Bad arguments give errors, never exceptions.
func TestEncryptBound(t *testing.T) {
	n := startNode(t)
	v := newWasmDevice(n, "v", visitorJID)
	o := newWasmDevice(n, "o", operatorJID)
	x := newWasmDevice(n, "x", "mallory@example.org")
	if p := v.peer(operatorJID, o.ID, o.Bundle); p.Error != "" {
		t.Fatal(p.Error)
	}
	state := v.export()
	unchanged := func(what string) {
		t.Helper()
		if v.export() != state {
			t.Fatalf("%s changed the device", what)
		}
	}
	refused := func(what string, r encResult) {
		t.Helper()
		if !r.NotSent || r.Error == "" || r.XML != "" || r.State != "" {
			t.Fatalf("%s: notSent %v, error %q, xml %v, state %v: want notSent with an error, no xml, no state", what, r.NotSent, r.Error, r.XML != "", r.State != "")
		}
		if strings.Contains(r.Error, "secret") || strings.Contains(r.Error, o.Fingerprint) || strings.Contains(r.Error, x.Fingerprint) {
			t.Fatalf("%s: error %q names a key or the text", what, r.Error)
		}
		unchanged(what)
	}
	wrongKey := o.as()
	wrongKey.Fingerprint = x.Fingerprint
	unknown := o.as()
	unknown.Device = o.ID + 1
	grouped := o.as()
	grouped.Fingerprint = strings.ToUpper(o.Fingerprint[:8] + " " + o.Fingerprint[8:])

	refused("a wrong fingerprint", v.encrypt("secret", wrongKey))
	refused("an unknown device", v.encrypt("secret", unknown))
	refused("an unknown account", v.encrypt("secret", x.as()))
	refused("a good and an unknown device", v.encrypt("secret", o.as(), unknown))
	refused("a wrong fingerprint after a good one", v.encrypt("secret", o.as(), wrongKey))
	refused("a key transport with a wrong fingerprint", v.keyTransport(wrongKey))
	refused("no fingerprint", v.encrypt("secret", recipient{operatorJID, o.ID, ""}))
	refused("no recipients", v.encrypt("secret"))
	refused("device 0", v.encrypt("secret", recipient{operatorJID, 0, o.Fingerprint}))
	refused("a fractional device", v.encrypt("secret", recipient{operatorJID, o.ID + 0.5, o.Fingerprint}))
	refused("recipients not a list", decode[encResult](t, v.call("encrypt", "secret", "alice@example.org")))
	refused("a text not a string", decode[encResult](t, v.call("encrypt", 42, []recipient{o.as()})))
	refused("recipient not an object", decode[encResult](t, v.call("encrypt", "secret", []any{"x"})))

	// peer refuses another identity for a known device, and a forged
	// signature.
	if p := v.peer(operatorJID, o.ID, x.Bundle); !strings.Contains(p.Error, "identity changed") {
		t.Fatalf("peer with another identity key: %+v", p)
	}
	unchanged("peer with another identity key")
	forged, err := omemo.ParseBundle([]byte(x.Bundle))
	if err != nil {
		t.Fatal(err)
	}
	forged.Signature[5] ^= 1
	if p := v.peer("mallory@example.org", x.ID, string(forged.Marshal())); p.Error == "" {
		t.Fatal("peer accepted a bundle with a forged signature")
	}
	unchanged("peer with a forged signature")
	for name, args := range map[string][]any{
		"no arguments":   {},
		"device 0":       {operatorJID, 0, o.Bundle},
		"no JID":         {"", o.ID, o.Bundle},
		"not a bundle":   {operatorJID, o.ID, "<bundle/>"},
		"device too big": {operatorJID, 1 << 31, o.Bundle},
	} {
		if p := decode[peerResult](t, v.call("peer", args...)); p.Error == "" {
			t.Fatalf("peer with %s: %+v", name, p)
		}
	}
	unchanged("peer with bad arguments")
	if r := v.decrypt(operatorJID, "<encrypted/>"); r.Error == "" {
		t.Fatal("decrypt of garbage gave no error")
	}
	if r := v.decrypt("", "x"); r.Error == "" {
		t.Fatal("decrypt without a JID gave no error")
	}
	unchanged("decrypt of garbage")
	for _, pk := range []any{0, 33, 2.5, "10", nil} {
		if r := n.do(map[string]any{"op": "new", "name": "bad", "args": []any{pk}}); !strings.Contains(string(r.Result), `"error"`) {
			t.Fatalf("newDevice(%v): %s", pk, r.Result)
		}
	}

	// After all that, the bound encrypt works, grouped and upper-case
	// fingerprints included, and the operator reads it.
	read(t, o.decrypt(visitorJID, sent(t, v.encrypt("good", o.as()))), v, ptr("good"))
	read(t, o.decrypt(visitorJID, sent(t, v.encrypt("grouped", grouped))), v, ptr("grouped"))
}

// TestExportRestore: the visitor reloads mid-conversation: a new node
// process restores the exported state, and the conversation goes on both
// ways, with a message sent before the reload arriving after it.
func TestExportRestore(t *testing.T) {
	n := startNode(t)
	v := newWasmDevice(n, "v", visitorJID)
	o := newWasmDevice(n, "o", operatorJID)
	v.peer(operatorJID, o.ID, o.Bundle)
	first := sent(t, v.encrypt("before the reload", o.as()))
	read(t, o.decrypt(visitorJID, first), v, ptr("before the reload"))
	late := sent(t, o.encrypt("on its way during the reload", v.as()))
	// The state the widget saved is the one encrypt returned.
	saved := v.encrypt("the last before the reload", o.as())
	read(t, o.decrypt(visitorJID, sent(t, saved)), v, ptr("the last before the reload"))

	n2 := startNode(t)
	if r := n2.do(map[string]any{"op": "restore", "name": "v", "state": "bm90IGEgc3RhdGU="}); r.Restored || string(r.Result) != "null" {
		t.Fatalf("garbage restored: %+v", r)
	}
	if r := n2.do(map[string]any{"op": "restore", "name": "v", "state": saved.State[:len(saved.State)/2]}); r.Restored {
		t.Fatal("half a state restored")
	}
	r := n2.do(map[string]any{"op": "restore", "name": "v", "state": saved.State})
	if !r.Restored || r.ID != v.ID || r.Fingerprint != v.Fingerprint {
		t.Fatalf("restore: %+v", r)
	}
	v2 := &wasmDevice{n: n2, name: "v", jid: visitorJID, devInfo: r.devInfo}
	read(t, v2.decrypt(operatorJID, late), o, ptr("on its way during the reload"))
	for i := range 2 {
		text := fmt.Sprintf("after the reload %d", i)
		read(t, o.decrypt(visitorJID, sent(t, v2.encrypt(text, o.as()))), v, &text)
		read(t, v2.decrypt(operatorJID, sent(t, o.encrypt("re: "+text, v.as()))), o, ptr("re: "+text))
	}
	// The binding holds after the reload: the operator's key was kept.
	wrong := o.as()
	wrong.Fingerprint = v.Fingerprint
	if r := v2.encrypt("x", wrong); !r.NotSent {
		t.Fatal("a wrong fingerprint after the reload")
	}
}

// TestKeyTransport: the operator answers the visitor's prekey message
// with a key transport element; the visitor reads it as no text, and its
// next message is a normal one.
func TestKeyTransport(t *testing.T) {
	n := startNode(t)
	v := newWasmDevice(n, "v", visitorJID)
	o := newWasmDevice(n, "o", operatorJID)
	v.peer(operatorJID, o.ID, o.Bundle)
	read(t, o.decrypt(visitorJID, sent(t, v.encrypt("hello", o.as()))), v, ptr("hello"))
	kt := sent(t, o.keyTransport(v.as()))
	if strings.Contains(kt, "<payload>") {
		t.Fatalf("key transport with a payload: %s", kt)
	}
	read(t, v.decrypt(operatorJID, kt), o, nil)
	next := sent(t, v.encrypt("after the key transport", o.as()))
	if strings.Contains(next, "prekey=") {
		t.Fatal("still a prekey message after the key transport")
	}
	read(t, o.decrypt(visitorJID, next), v, ptr("after the key transport"))
}

// TestWasmAgainstNative: a wasm device and a native omemo.Device talk,
// each starting a session in turn; each side sees the other's
// fingerprint.
func TestWasmAgainstNative(t *testing.T) {
	n := startNode(t)
	v := newWasmDevice(n, "v", visitorJID)
	native, err := omemo.NewDevice(omemo.Options{PreKeys: 5})
	if err != nil {
		t.Fatal(err)
	}
	nfp, _ := native.Fingerprint().MarshalText()
	op := recipient{operatorJID, float64(native.ID()), string(nfp)}
	vAddr := omemo.Address{JID: visitorJID, Device: uint32(v.ID)}

	nativeRead := func(xml, want string) *omemo.Message {
		t.Helper()
		e, err := omemo.ParseEncrypted([]byte(xml))
		if err != nil {
			t.Fatal(err)
		}
		m, err := native.Decrypt(visitorJID, e)
		if err != nil {
			t.Fatalf("native decrypt: %v", err)
		}
		if string(m.Plaintext) != want || m.From != vAddr {
			t.Fatalf("native read %q from %v", m.Plaintext, m.From)
		}
		if fp, _ := m.Fingerprint.MarshalText(); string(fp) != v.Fingerprint {
			t.Fatalf("native sees fingerprint %s, wasm has %s", fp, v.Fingerprint)
		}
		return m
	}
	nativeSend := func(text string, withBundle bool) string {
		t.Helper()
		r := omemo.Recipient{Address: vAddr}
		if withBundle {
			b, err := omemo.ParseBundle([]byte(v.str("bundle")))
			if err != nil {
				t.Fatal(err)
			}
			r.Bundle = b
		}
		e, err := native.Encrypt([]byte(text), []omemo.Recipient{r})
		if err != nil {
			t.Fatalf("native encrypt: %v", err)
		}
		return string(e.Marshal())
	}
	wasmOp := &wasmDevice{devInfo: devInfo{ID: op.Device, Fingerprint: op.Fingerprint}}

	// The wasm device starts.
	if p := v.peer(operatorJID, op.Device, string(native.Bundle().Marshal())); p.Fingerprint != op.Fingerprint {
		t.Fatalf("peer: %+v", p)
	}
	if m := nativeRead(sent(t, v.encrypt("from wasm", op)), "from wasm"); !m.PreKey {
		t.Fatal("the first message was no prekey message")
	}
	read(t, v.decrypt(operatorJID, nativeSend("from Go", false)), wasmOp, ptr("from Go"))
	nativeRead(sent(t, v.encrypt("from wasm again", op)), "from wasm again")

	// A second wasm device of the visitor: the native device starts.
	w := newWasmDevice(n, "w", visitorJID)
	vAddr = omemo.Address{JID: visitorJID, Device: uint32(w.ID)}
	v = w
	r := read(t, w.decrypt(operatorJID, nativeSend("Go starts", true)), wasmOp, ptr("Go starts"))
	if !r.PreKey || !r.Republish {
		t.Fatalf("Go's first message: preKey %v, republish %v", r.PreKey, r.Republish)
	}
	// w holds the native key from the session: encrypt is bound to it.
	kt := sent(t, w.keyTransport(op))
	e, err := omemo.ParseEncrypted([]byte(kt))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := native.Decrypt(visitorJID, e); err != nil || m.Plaintext != nil {
		t.Fatalf("native read the key transport as %q, %v", m.Plaintext, err)
	}
	nativeRead(sent(t, w.encrypt("from the second wasm device", op)), "from the second wasm device")
}

// BenchmarkWasmOmemo measures the module under node: a new device (10
// one-time prekeys), a session built (peer, the first encrypt with its
// X3DH, its decrypt), and a round trip on that session (a reply and an
// answer, each encrypt and decrypt); every encrypt and decrypt includes
// the export of the state the widget saves. The native engine's times for
// the same steps are reported beside them.
func BenchmarkWasmOmemo(b *testing.B) {
	n := startNode(b)
	const per = 20
	var newDev, session, trip float64
	for i := 0; i < b.N; i++ {
		r := n.do(map[string]any{"op": "bench", "n": per})
		newDev += r.NewDevice
		session += r.Session
		trip += r.RoundTrip
	}
	b.StopTimer()
	nNew, nSession, nTrip := nativeBench(b, per)
	b.ReportMetric(newDev/float64(b.N), "wasm-newdevice-ms")
	b.ReportMetric(session/float64(b.N), "wasm-session-ms")
	b.ReportMetric(trip/float64(b.N), "wasm-roundtrip-ms")
	b.ReportMetric(nNew, "native-newdevice-ms")
	b.ReportMetric(nSession, "native-session-ms")
	b.ReportMetric(nTrip, "native-roundtrip-ms")
}

// nativeBench times the same steps as the driver's bench with native
// devices, in milliseconds.
func nativeBench(b *testing.B, n int) (newDev, session, trip float64) {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 / float64(n) }
	var tNew, tSession, tTrip time.Duration
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	for range n {
		t0 := time.Now()
		v, err := omemo.NewDevice(omemo.Options{PreKeys: 10})
		must(err)
		o, err := omemo.NewDevice(omemo.Options{PreKeys: 10})
		must(err)
		tNew += time.Since(t0) / 2
		vA, oA := omemo.Address{JID: visitorJID, Device: v.ID()}, omemo.Address{JID: operatorJID, Device: o.ID()}
		step := func(from, to *omemo.Device, fromJID string, r omemo.Recipient) {
			e, err := from.Encrypt([]byte("hello"), []omemo.Recipient{r})
			must(err)
			_, err = from.Export()
			must(err)
			e, err = omemo.ParseEncrypted(e.Marshal())
			must(err)
			_, err = to.Decrypt(fromJID, e)
			must(err)
			_, err = to.Export()
			must(err)
		}
		t0 = time.Now()
		bundle, err := omemo.ParseBundle(o.Bundle().Marshal())
		must(err)
		must(v.Pin(oA, bundle.IdentityKey))
		step(v, o, visitorJID, omemo.Recipient{Address: oA, Bundle: bundle})
		tSession += time.Since(t0)
		t0 = time.Now()
		step(o, v, operatorJID, omemo.Recipient{Address: vA})
		step(v, o, visitorJID, omemo.Recipient{Address: oA})
		tTrip += time.Since(t0)
	}
	return ms(tNew), ms(tSession), ms(tTrip)
}

// workerNode runs web/src/omemo-worker.js under node, the module in it.
type workerNode struct {
	t *testing.T
	d *nodewasm.Driver
}

func startWorker(t *testing.T) *workerNode {
	t.Helper()
	glue := filepath.Join("..", "..", "src", "omemo-worker.js")
	return &workerNode{t: t, d: nodewasm.StartModule(t, nodewasm.OMEMO, filepath.Join("testdata", "worker.cjs"), glue)}
}

// workerReply is one of the worker's replies.
type workerReply struct {
	ID      int             `json:"id"`
	OK      bool            `json:"ok"`
	Result  json.RawMessage `json:"result"`
	Message string          `json:"message"`
	NotSent bool            `json:"notSent"`
}

// post sends the requests at once, numbered from 1, and returns the
// replies in the order the worker gave them, which must be the order of
// the requests.
func (w *workerNode) post(reqs ...map[string]any) []workerReply {
	w.t.Helper()
	for i, r := range reqs {
		r["id"] = i + 1
	}
	var rs []workerReply
	w.d.Call(reqs, &rs)
	for i, r := range rs {
		if r.ID != i+1 {
			w.t.Fatalf("reply %d answers request %d: the worker did not keep the order", i+1, r.ID)
		}
	}
	return rs
}

type initResult struct {
	Device      float64 `json:"device"`
	Fingerprint string  `json:"fingerprint"`
	List        string  `json:"list"`
	Bundle      string  `json:"bundle"`
	State       string  `json:"state"`
	Restored    bool    `json:"restored"`
}

type workerDecrypt struct {
	Text        *string `json:"text"`
	Device      float64 `json:"device"`
	Fingerprint string  `json:"fingerprint"`
	PreKey      bool    `json:"preKey"`
	Bundle      *string `json:"bundle"`
	State       string  `json:"state"`
}

// nativeOperator is a native operator device (three one-time prekeys) and
// the recipient the visitor's encrypt names it by.
func nativeOperator(t *testing.T) (*omemo.Device, recipient) {
	t.Helper()
	native, err := omemo.NewDevice(omemo.Options{PreKeys: 3})
	if err != nil {
		t.Fatal(err)
	}
	fp, _ := native.Fingerprint().MarshalText()
	return native, recipient{operatorJID, float64(native.ID()), string(fp)}
}

// TestWorkerGlue drives omemo-worker.js as the page does: requests posted
// at once are answered in order; init makes a device or restores the
// saved one; a refused encrypt says notSent; decrypt hands the bundle to
// republish when a prekey was used; a request before init fails.
func TestWorkerGlue(t *testing.T) {
	native, op := nativeOperator(t)
	wrong := op
	wrong.Fingerprint = strings.Repeat("0", 64)

	w := startWorker(t)
	if rs := w.post(map[string]any{"op": "encrypt", "text": "too early", "recipients": []recipient{op}}); rs[0].OK || !rs[0].NotSent {
		t.Fatalf("encrypt before init: %+v", rs[0])
	}
	rs := w.post(
		map[string]any{"op": "init", "module": true, "state": nil},
		map[string]any{"op": "peer", "jid": operatorJID, "device": native.ID(), "bundle": string(native.Bundle().Marshal())},
		map[string]any{"op": "encrypt", "text": "hello from the worker", "recipients": []recipient{op}},
		map[string]any{"op": "encrypt", "text": "secret", "recipients": []recipient{wrong}},
		map[string]any{"op": "peer", "jid": operatorJID, "device": native.ID(), "bundle": "<bundle/>"},
	)
	for i, want := range []bool{true, true, true, false, false} {
		if rs[i].OK != want {
			t.Fatalf("request %d: %+v", i+1, rs[i])
		}
	}
	info := decode[initResult](t, rs[0].Result)
	if info.Restored || info.Device == 0 || len(info.Fingerprint) != 64 || !strings.Contains(info.List, "<device id=") || info.State == "" {
		t.Fatalf("init: %+v", info)
	}
	if !rs[3].NotSent || rs[3].Message == "" || rs[4].NotSent || rs[4].Message == "" {
		t.Fatalf("refusals: %+v, %+v", rs[3], rs[4])
	}
	enc := decode[encResult](t, rs[2].Result)
	e, err := omemo.ParseEncrypted([]byte(enc.XML))
	if err != nil {
		t.Fatal(err)
	}
	vAddr := omemo.Address{JID: visitorJID, Device: uint32(info.Device)}
	if m, err := native.Decrypt(visitorJID, e); err != nil || string(m.Plaintext) != "hello from the worker" {
		t.Fatalf("native read %v, %v", m, err)
	}

	// The operator answers; a second operator device starts a session
	// with the visitor's bundle and uses one of its prekeys.
	reply, err := native.Encrypt([]byte("hello from Go"), []omemo.Recipient{{Address: vAddr}})
	if err != nil {
		t.Fatal(err)
	}
	second, err := omemo.NewDevice(omemo.Options{PreKeys: 3})
	if err != nil {
		t.Fatal(err)
	}
	vb, err := omemo.ParseBundle([]byte(info.Bundle))
	if err != nil {
		t.Fatal(err)
	}
	fromSecond, err := second.Encrypt([]byte("from the phone"), []omemo.Recipient{{Address: vAddr, Bundle: vb}})
	if err != nil {
		t.Fatal(err)
	}
	rs = w.post(
		map[string]any{"op": "decrypt", "from": operatorJID, "xml": string(reply.Marshal())},
		map[string]any{"op": "decrypt", "from": operatorJID, "xml": string(fromSecond.Marshal())},
		map[string]any{"op": "decrypt", "from": operatorJID, "xml": "<encrypted/>"},
	)
	if !rs[0].OK || !rs[1].OK || rs[2].OK {
		t.Fatalf("decrypts: %+v", rs)
	}
	d1, d2 := decode[workerDecrypt](t, rs[0].Result), decode[workerDecrypt](t, rs[1].Result)
	if d1.Text == nil || *d1.Text != "hello from Go" || d1.Bundle != nil || d1.PreKey || d1.Fingerprint != op.Fingerprint {
		t.Fatalf("answer: %+v", d1)
	}
	if d2.Text == nil || *d2.Text != "from the phone" || d2.Bundle == nil || *d2.Bundle == info.Bundle || !d2.PreKey || d2.Device != float64(second.ID()) {
		t.Fatalf("prekey message from a second device: %+v", d2)
	}

	// A reload: a new worker restores the last state and goes on; a state
	// it cannot read gives a new device.
	w2 := startWorker(t)
	rs = w2.post(
		map[string]any{"op": "init", "module": true, "state": d2.State},
		map[string]any{"op": "encrypt", "text": "after the reload", "recipients": []recipient{op}},
	)
	if !rs[0].OK || !rs[1].OK {
		t.Fatalf("after the reload: %+v", rs)
	}
	if again := decode[initResult](t, rs[0].Result); !again.Restored || again.Device != info.Device || again.Fingerprint != info.Fingerprint || again.Bundle != *d2.Bundle {
		t.Fatalf("restored: %+v", again)
	}
	e, err = omemo.ParseEncrypted([]byte(decode[encResult](t, rs[1].Result).XML))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := native.Decrypt(visitorJID, e); err != nil || string(m.Plaintext) != "after the reload" || m.PreKey {
		t.Fatalf("native read after the reload: %v, %v", m, err)
	}
	w3 := startWorker(t)
	rs = w3.post(map[string]any{"op": "init", "module": true, "state": "bm90IGEgc3RhdGU="})
	if fresh := decode[initResult](t, rs[0].Result); !rs[0].OK || fresh.Restored || fresh.Device == info.Device {
		t.Fatalf("init with a state that is none: %+v", rs[0])
	}
}

// pageNode runs web/src/omemo.js, the page client, under node.
type pageNode struct {
	t *testing.T
	d *nodewasm.Driver
}

func startPage(t *testing.T) *pageNode {
	t.Helper()
	src := filepath.Join("..", "..", "src")
	d := nodewasm.StartModule(t, nodewasm.OMEMO, filepath.Join("testdata", "client.mjs"), filepath.Join(src, "omemo-worker.js"), filepath.Join(src, "omemo.js"))
	return &pageNode{t: t, d: d}
}

// send sends one command and returns the answer as it came.
func (p *pageNode) send(cmd map[string]any) json.RawMessage {
	p.t.Helper()
	var r json.RawMessage
	p.d.Call(cmd, &r)
	return r
}

// pageCall is one call of the client and how its promise settled.
type pageCall struct {
	OK      bool            `json:"ok"`
	Result  json.RawMessage `json:"result"`
	Message string          `json:"message"`
	NotSent bool            `json:"notSent"`
	IsError bool            `json:"isError"`
}

// calls makes the calls at once, each {name, method, args}, and returns
// how each promise settled.
func (p *pageNode) calls(cs ...map[string]any) []pageCall {
	p.t.Helper()
	var r []pageCall
	if err := json.Unmarshal(p.send(map[string]any{"op": "calls", "calls": cs}), &r); err != nil || len(r) != len(cs) {
		p.t.Fatalf("calls: %v", err)
	}
	return r
}

func call(name, method string, args ...any) map[string]any {
	return map[string]any{"name": name, "method": method, "args": args}
}

// TestPageClient drives omemo.js as chat.js does: calls made at once
// settle in order with their own results; a refused encrypt rejects with
// notSent; after terminate every call rejects; a worker script or engine
// that fails its integrity check, or a build without the OMEMO assets,
// makes init reject.
func TestPageClient(t *testing.T) {
	native, op := nativeOperator(t)
	wrong := op
	wrong.Fingerprint = strings.Repeat("ab", 32)

	p := startPage(t)
	p.send(map[string]any{"op": "start", "name": "v"})
	rs := p.calls(
		call("v", "init", nil),
		call("v", "peer", operatorJID, native.ID(), string(native.Bundle().Marshal())),
		call("v", "encrypt", "hello from the page", []recipient{op}),
		call("v", "encrypt", "secret", []recipient{wrong}),
		call("v", "keyTransport", []recipient{op}),
	)
	for i, want := range []bool{true, true, true, false, true} {
		if rs[i].OK != want {
			t.Fatalf("call %d: %+v", i+1, rs[i])
		}
	}
	info := decode[initResult](t, rs[0].Result)
	if info.Restored || info.Device == 0 || info.State == "" || info.Bundle == "" {
		t.Fatalf("init: %+v", info)
	}
	if !rs[3].NotSent || !rs[3].IsError || rs[3].Message == "" || strings.Contains(rs[3].Message, "secret") {
		t.Fatalf("refused encrypt: %+v", rs[3])
	}
	for i, want := range []string{"hello from the page", ""} {
		e, err := omemo.ParseEncrypted([]byte(decode[encResult](t, rs[2+2*i].Result).XML))
		if err != nil {
			t.Fatal(err)
		}
		m, err := native.Decrypt(visitorJID, e)
		if err != nil || string(m.Plaintext) != want {
			t.Fatalf("native read %v, %v; want %q", m, err, want)
		}
	}
	reply, err := native.Encrypt([]byte("hello from Go"), []omemo.Recipient{{Address: omemo.Address{JID: visitorJID, Device: uint32(info.Device)}}})
	if err != nil {
		t.Fatal(err)
	}
	rs = p.calls(call("v", "decrypt", operatorJID, string(reply.Marshal())), call("v", "decrypt", operatorJID, "<x/>"))
	if d := decode[workerDecrypt](t, rs[0].Result); !rs[0].OK || d.Text == nil || *d.Text != "hello from Go" || d.Fingerprint != op.Fingerprint {
		t.Fatalf("decrypt: %+v", rs[0])
	}
	if rs[1].OK || !rs[1].IsError || rs[1].NotSent {
		t.Fatalf("decrypt of garbage: %+v", rs[1])
	}

	p.send(map[string]any{"op": "terminate", "name": "v"})
	rs = p.calls(call("v", "encrypt", "after the end", []recipient{op}), call("v", "peer", operatorJID, native.ID(), string(native.Bundle().Marshal())))
	if rs[0].OK || !rs[0].NotSent || rs[1].OK {
		t.Fatalf("calls after terminate: %+v", rs)
	}

	for _, damage := range []string{"worker", "wasm", "assets"} {
		p.send(map[string]any{"op": "start", "name": damage, "damage": damage})
		rs = p.calls(call(damage, "init", nil), call(damage, "encrypt", "x", []recipient{op}))
		if rs[0].OK || rs[0].Message == "" || rs[1].OK || !rs[1].NotSent {
			t.Fatalf("damaged %s: %+v", damage, rs)
		}
		t.Logf("damaged %s: init says %q", damage, rs[0].Message)
		p.send(map[string]any{"op": "terminate", "name": damage})
	}
}
