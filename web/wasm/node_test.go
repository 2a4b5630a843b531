//go:build !js

package main

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/web/wasm/internal/nodewasm"
)

// The tests here build this package as web/build.mjs does and run it
// under node (testdata/driver.cjs), against the native Go engine.

func TestMain(m *testing.M) { nodewasm.Main(m) }

// nodeEngine is the wasm engine running in a node process.
type nodeEngine struct {
	t testing.TB
	d *nodewasm.Driver
}

func startNode(t testing.TB) *nodeEngine {
	t.Helper()
	return &nodeEngine{t: t, d: nodewasm.StartModule(t, nodewasm.OTR, filepath.Join("testdata", "driver.cjs"))}
}

// jsResult is the Result object of main.go's API, plus the other replies
// of the driver.
type jsResult struct {
	Send []string `json:"send"`
	Show []struct {
		Text        string  `json:"text"`
		Encrypted   bool    `json:"encrypted"`
		Instance    float64 `json:"instance"`
		Fingerprint string  `json:"fingerprint"`
	} `json:"show"`
	Events []struct {
		Type        string  `json:"type"`
		Instance    float64 `json:"instance"`
		Fingerprint string  `json:"fingerprint"`
		Question    string  `json:"question"`
		Message     string  `json:"message"`
		Refreshed   bool    `json:"refreshed"`
	} `json:"events"`
	Error          string  `json:"error"`
	NotSent        bool    `json:"notSent"`
	InstanceTag    float64 `json:"instanceTag"`
	OurFingerprint string  `json:"ourFingerprint"`
	Encrypted      bool    `json:"encrypted"`
	Fingerprint    *string `json:"fingerprint"`
	MS             float64 `json:"ms"`
	CPUMS          float64 `json:"cpuMs"`
	State          string  `json:"state"`
	Restored       bool    `json:"restored"`
}

func (r jsResult) has(typ string) bool {
	for _, e := range r.Events {
		if e.Type == typ {
			return true
		}
	}
	return false
}

func (n *nodeEngine) do(cmd map[string]any) jsResult {
	n.t.Helper()
	var r jsResult
	n.d.Call(cmd, &r)
	return r
}

// wasmChat joins the wasm engine (the visitor) and a native conversation
// (the operator).
type wasmChat struct {
	t       *testing.T
	node    *nodeEngine
	native  *otr.Conversation
	key     *otr.PrivateKey
	toNode  [][]byte
	toGo    []string
	jsAll   []jsResult
	goShown []string
	goEv    []otr.Event
}

func (w *wasmChat) fromJS(r jsResult) {
	w.t.Helper()
	if r.Error != "" {
		w.t.Fatalf("wasm engine error: %s", r.Error)
	}
	w.jsAll = append(w.jsAll, r)
	w.toGo = append(w.toGo, r.Send...)
}

func (w *wasmChat) pump() {
	w.t.Helper()
	for i := 0; i < 100; i++ {
		if len(w.toNode) == 0 && len(w.toGo) == 0 {
			return
		}
		toGo := w.toGo
		w.toGo = nil
		for _, m := range toGo {
			show, send, ev, err := w.native.Receive([]byte(m))
			if err != nil {
				w.t.Fatalf("native engine: %v", err)
			}
			if show != nil {
				w.goShown = append(w.goShown, string(show))
			}
			w.goEv = append(w.goEv, ev...)
			w.toNode = append(w.toNode, send...)
		}
		toNode := w.toNode
		w.toNode = nil
		for _, m := range toNode {
			w.fromJS(w.node.do(map[string]any{"op": "receive", "body": string(m)}))
		}
	}
	w.t.Fatal("messages never settled")
}

func (w *wasmChat) jsEvents(typ string) int {
	n := 0
	for _, r := range w.jsAll {
		if r.has(typ) {
			n++
		}
	}
	return n
}

func (w *wasmChat) jsLastShown() string {
	for i := len(w.jsAll) - 1; i >= 0; i-- {
		if s := w.jsAll[i].Show; len(s) > 0 {
			return s[len(s)-1].Text
		}
	}
	return ""
}

var (
	nativeKeyOnce sync.Once
	nativeKey     *otr.PrivateKey
)

func operatorKey(t testing.TB) *otr.PrivateKey {
	nativeKeyOnce.Do(func() {
		var err error
		if nativeKey, err = otr.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
	return nativeKey
}

// TestWasmAgainstNative: the widget's flow. The wasm engine sends the
// query, the AKE completes with the native engine, both sides see the
// right fingerprints, messages go both ways (non-ASCII and long ones),
// SMP works, and ending reaches the operator.
func TestWasmAgainstNative(t *testing.T) {
	node := startNode(t)
	key := operatorKey(t)
	native, err := otr.NewConversation(otr.Config{PrivateKey: key, Policy: otr.PolicyOpportunistic})
	if err != nil {
		t.Fatal(err)
	}
	w := &wasmChat{t: t, node: node, native: native, key: key}
	info := node.do(map[string]any{"op": "new", "policy": "require"})
	if info.InstanceTag < 0x100 || len(info.OurFingerprint) != 40 {
		t.Fatalf("new conversation: %+v", info)
	}

	// A message typed before the AKE is held and sent encrypted after it.
	early := node.do(map[string]any{"op": "send", "text": "typed before the AKE"})
	if len(early.Send) != 1 || !strings.HasPrefix(early.Send[0], "?OTRv") {
		t.Fatalf("require policy sent %q before the AKE", early.Send)
	}
	w.fromJS(early)
	w.pump()
	if !native.IsEncrypted() {
		t.Fatal("native side not encrypted after the AKE")
	}
	st := node.do(map[string]any{"op": "state"})
	if !st.Encrypted || st.Fingerprint == nil || *st.Fingerprint != canonical(key.PublicKey.Fingerprint()) {
		t.Fatalf("wasm state %+v, want encrypted with %s", st, key.PublicKey.Fingerprint())
	}
	if fp, _ := native.PeerFingerprint(); canonical(fp) != info.OurFingerprint {
		t.Fatalf("native sees %s, wasm key is %s", fp, info.OurFingerprint)
	}
	if w.jsEvents("secure") != 1 {
		t.Fatal("wasm reported no secure event")
	}
	if len(w.goShown) != 1 || w.goShown[0] != "typed before the AKE" {
		t.Fatalf("held message: operator saw %q", w.goShown)
	}

	for i, text := range []string{"Hallo, wie geht's? ✓", strings.Repeat("long ", 2000), "日本語のテキスト"} {
		w.fromJS(node.do(map[string]any{"op": "send", "text": text}))
		w.pump()
		if got := w.goShown[len(w.goShown)-1]; got != text {
			t.Fatalf("message %d: operator saw %.40q", i, got)
		}
		reply := fmt.Sprintf("reply %d — ok", i)
		out, err := native.Send([]byte(reply))
		if err != nil {
			t.Fatal(err)
		}
		w.toNode = append(w.toNode, out...)
		w.pump()
		if got := w.jsLastShown(); got != reply {
			t.Fatalf("visitor saw %q, want %q", got, reply)
		}
	}

	// SMP started by the operator, answered in wasm.
	out, err := native.Authenticate("Order number?", []byte("A-1234"))
	if err != nil {
		t.Fatal(err)
	}
	w.toNode = append(w.toNode, out...)
	w.pump()
	if w.jsEvents("smp-question") != 1 {
		t.Fatal("wasm got no SMP question")
	}
	w.fromJS(node.do(map[string]any{"op": "smp", "question": "", "secret": "A-1234"}))
	w.pump()
	if w.jsEvents("smp-succeeded") != 1 {
		t.Fatal("wasm: SMP did not succeed")
	}
	ok := false
	for _, e := range w.goEv {
		ok = ok || e.Kind == otr.EventSMPSucceeded
	}
	if !ok {
		t.Fatal("native: SMP did not succeed")
	}

	// The visitor reloads the page: the widget saved the conversation,
	// a fresh wasm instance restores it, and the chat goes on.
	saved := node.do(map[string]any{"op": "export"}).State
	reloaded := startNode(t)
	rr := reloaded.do(map[string]any{"op": "restore", "policy": "require", "state": saved})
	if !rr.Restored || rr.OurFingerprint != info.OurFingerprint {
		t.Fatalf("restore after reload: %+v", rr)
	}
	if r := reloaded.do(map[string]any{"op": "restore", "policy": "require", "state": "bm90IGEgc3RhdGU="}); r.Restored {
		t.Fatal("garbage restored")
	}
	reloaded.do(map[string]any{"op": "restore", "policy": "require", "state": saved})
	w.node = reloaded
	w.jsAll = nil
	w.fromJS(reloaded.do(map[string]any{"op": "send", "text": "after the reload"}))
	w.pump()
	if got := w.goShown[len(w.goShown)-1]; got != "after the reload" {
		t.Fatalf("operator saw %q after the reload", got)
	}
	out, err = native.Send([]byte("welcome back"))
	if err != nil {
		t.Fatal(err)
	}
	w.toNode = append(w.toNode, out...)
	w.pump()
	if got := w.jsLastShown(); got != "welcome back" {
		t.Fatalf("visitor saw %q after the reload", got)
	}

	// The visitor ends the chat.
	w.fromJS(reloaded.do(map[string]any{"op": "end"}))
	w.pump()
	if native.IsEncrypted() {
		t.Fatal("operator still encrypted after the visitor ended")
	}
	if _, err := native.Send([]byte("x")); err != otr.ErrFinished {
		t.Fatalf("operator send after end: %v", err)
	}
}

// canonical is the fingerprint form the wasm API gives: 40 upper-case hex
// digits.
func canonical(fp otr.Fingerprint) string { return strings.ToUpper(fp.Hex()) }

// TestWasmSendToAndShown: the calls the widget's trust decision rests on.
// sendTo refuses (notSent, nothing to send, nothing kept) until the named
// instance is encrypted with the named key, and after a second instance
// with another key finishes its AKE and sends; secure events and show
// entries carry the instance and the canonical fingerprint; plaintext that
// arrives inside version 3 fragments is shown as not encrypted.
func TestWasmSendToAndShown(t *testing.T) {
	node := startNode(t)
	key := operatorKey(t)
	native, err := otr.NewConversation(otr.Config{PrivateKey: key, Policy: otr.PolicyOpportunistic})
	if err != nil {
		t.Fatal(err)
	}
	w := &wasmChat{t: t, node: node, native: native, key: key}
	info := node.do(map[string]any{"op": "new", "policy": "require"})
	opTag, fp := float64(native.InstanceTag()), canonical(key.PublicKey.Fingerprint())
	grouped := strings.ToLower(key.PublicKey.Fingerprint().String())
	refused := func(what string, r jsResult) {
		t.Helper()
		if !r.NotSent || r.Error == "" || len(r.Send) != 0 {
			t.Fatalf("%s: %+v, want notSent with an error and nothing to send", what, r)
		}
	}

	refused("before the AKE", node.do(map[string]any{"op": "sendTo", "instance": opTag, "fingerprint": fp, "text": "too early"}))
	w.fromJS(node.do(map[string]any{"op": "query"}))
	w.pump()
	var secure *struct {
		instance float64
		fp       string
	}
	for _, r := range w.jsAll {
		for _, e := range r.Events {
			if e.Type == "secure" {
				secure = &struct {
					instance float64
					fp       string
				}{e.Instance, e.Fingerprint}
			}
		}
	}
	if secure == nil || secure.instance != opTag || secure.fp != fp {
		t.Fatalf("secure event %+v, want instance %#x fingerprint %s", secure, uint32(opTag), fp)
	}
	if len(w.goShown) != 0 {
		t.Fatalf("a refused message reached the operator: %q", w.goShown)
	}

	// Bound: the fingerprint may come grouped and in lower case.
	for _, f := range []string{fp, grouped} {
		w.fromJS(node.do(map[string]any{"op": "sendTo", "instance": opTag, "fingerprint": f, "text": "to the operator " + f[:4]}))
		w.pump()
		if got := w.goShown[len(w.goShown)-1]; got != "to the operator "+f[:4] {
			t.Fatalf("operator saw %q", got)
		}
	}
	other := canonical(otr.Fingerprint{1, 2, 3})
	refused("another instance", node.do(map[string]any{"op": "sendTo", "instance": opTag + 1, "fingerprint": fp, "text": "x"}))
	refused("another key", node.do(map[string]any{"op": "sendTo", "instance": opTag, "fingerprint": other, "text": "x"}))
	refused("no fingerprint", node.do(map[string]any{"op": "sendTo", "instance": opTag, "fingerprint": "", "text": "x"}))
	refused("a malformed fingerprint", node.do(map[string]any{"op": "sendTo", "instance": opTag, "fingerprint": fp[:39] + "G", "text": "x"}))
	refused("an instance that is no number", node.do(map[string]any{"op": "sendTo", "instance": "1", "fingerprint": fp, "text": "x"}))
	refused("a fractional instance", node.do(map[string]any{"op": "sendTo", "instance": opTag + 0.5, "fingerprint": fp, "text": "x"}))

	// A Data message: encrypted, by the operator's instance and key.
	out, err := native.Send([]byte("encrypted reply"))
	if err != nil {
		t.Fatal(err)
	}
	r := node.do(map[string]any{"op": "receive", "body": string(out[0])})
	if len(r.Show) != 1 || r.Show[0].Text != "encrypted reply" || !r.Show[0].Encrypted || r.Show[0].Instance != opTag || r.Show[0].Fingerprint != fp {
		t.Fatalf("Data shown as %+v", r.Show)
	}

	// Plaintext in version 3 fragments from the operator's instance tag
	// is plaintext.
	frags, err := otr.SplitMessage("plain words in fragments that only look like OTR to anyone reading the header", 60, 3, native.InstanceTag(), uint32(info.InstanceTag))
	if err != nil || len(frags) < 2 {
		t.Fatalf("split: %d %v", len(frags), err)
	}
	var last jsResult
	for _, f := range frags {
		last = node.do(map[string]any{"op": "receive", "body": f})
	}
	if len(last.Show) != 1 || last.Show[0].Text != "plain words in fragments that only look like OTR to anyone reading the header" ||
		last.Show[0].Encrypted || last.Show[0].Instance != 0 || last.Show[0].Fingerprint != "" || !last.has("unencrypted") {
		t.Fatalf("plaintext in fragments shown as %+v, events %+v", last.Show, last.Events)
	}

	// A second instance with another key finishes an AKE and sends: the
	// bound session stays the only one sendTo reaches.
	mkey, err := otr.GenerateEphemeralKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	attacker, err := otr.NewConversation(otr.Config{PrivateKey: mkey, Policy: otr.PolicyOpportunistic})
	if err != nil {
		t.Fatal(err)
	}
	toNode, _ := attacker.Start()
	for i := 0; i < 20 && len(toNode) > 0; i++ {
		var toAttacker []string
		for _, m := range toNode {
			toAttacker = append(toAttacker, node.do(map[string]any{"op": "receive", "body": string(m)}).Send...)
		}
		toNode = nil
		for _, m := range toAttacker {
			_, send, _, err := attacker.Receive([]byte(m))
			if err != nil {
				t.Fatal(err)
			}
			toNode = append(toNode, send...)
		}
	}
	if !attacker.IsEncrypted() {
		t.Fatal("the second instance's AKE did not finish")
	}
	out, _ = attacker.Send([]byte("from the other session"))
	if r := node.do(map[string]any{"op": "receive", "body": string(out[0])}); len(r.Show) != 1 || r.Show[0].Instance != float64(attacker.InstanceTag()) || r.Show[0].Fingerprint != canonical(mkey.PublicKey.Fingerprint()) {
		t.Fatalf("second instance's Data shown as %+v", r.Show)
	}
	r = node.do(map[string]any{"op": "sendTo", "instance": opTag, "fingerprint": fp, "text": "still only to the operator"})
	if r.Error != "" || len(r.Send) != 1 || otr.Classify([]byte(r.Send[0])).ReceiverTag != native.InstanceTag() {
		t.Fatalf("sendTo after a second instance: %+v", r)
	}
	if show, _, _, err := attacker.Receive([]byte(r.Send[0])); show != nil || err != nil {
		t.Fatalf("the second instance read %q (%v)", show, err)
	}
	w.fromJS(r)
	w.pump()
	if got := w.goShown[len(w.goShown)-1]; got != "still only to the operator" {
		t.Fatalf("operator saw %q", got)
	}
}

// BenchmarkWasm measures the wasm engine under node (two wasm
// conversations in one node process) against the native engine, and
// reports the times per operation and their ratio.
func BenchmarkWasm(b *testing.B) {
	node := startNode(b)
	for _, bc := range []struct {
		name, what string
		n, size    int
	}{
		{"AKE", "ake", 20, 0},
		{"Data100B", "data", 50, 100},
		{"Data4KiB", "data", 50, 4096},
		{"SMP", "smp", 3, 0},
		{"KeyGen", "keygen", 20, 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var wasmMS, wasmCPU float64
			for i := 0; i < b.N; i++ {
				r := node.do(map[string]any{"op": "bench", "what": bc.what, "n": bc.n, "size": bc.size})
				wasmMS += r.MS
				wasmCPU += r.CPUMS
			}
			wasmMS /= float64(b.N)
			wasmCPU /= float64(b.N)
			b.StopTimer()
			wall, cpu := nativeOp(b, bc.what, bc.n, bc.size)
			b.ReportMetric(wasmMS, "wasm-wall-ms/op")
			b.ReportMetric(wasmCPU, "wasm-cpu-ms/op")
			b.ReportMetric(float64(wall)/1e6, "native-wall-ms/op")
			b.ReportMetric(float64(cpu)/1e6, "native-cpu-ms/op")
			b.ReportMetric(wasmCPU*1e6/float64(cpu), "wasm/native-cpu")
		})
	}
}

// nativeOp times the same operation between two native conversations:
// wall and CPU time per operation.
func nativeOp(b *testing.B, what string, n, size int) (wall, cpu time.Duration) {
	key := operatorKey(b)
	if what == "keygen" {
		// The same fixed-parameter key generation the wasm build uses.
		t0, c0 := time.Now(), cpuTime()
		for i := 0; i < n; i++ {
			if _, err := otr.GenerateEphemeralKey(rand.Reader); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(t0) / time.Duration(n), (cpuTime() - c0) / time.Duration(n)
	}
	mk := func() *otr.Conversation {
		c, err := otr.NewConversation(otr.Config{PrivateKey: key, Policy: otr.PolicyAlways})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	x, y := mk(), mk()
	relay := func(from, to *otr.Conversation, msgs [][]byte) {
		type item struct {
			to, from *otr.Conversation
			m        []byte
		}
		var q []item
		for _, m := range msgs {
			q = append(q, item{to, from, m})
		}
		for len(q) > 0 {
			it := q[0]
			q = q[1:]
			_, send, _, err := it.to.Receive(it.m)
			if err != nil {
				b.Fatal(err)
			}
			for _, m := range send {
				q = append(q, item{it.from, it.to, m})
			}
		}
	}
	ake := func() {
		q, _ := x.Start()
		relay(x, y, q)
	}
	ake()
	msg := []byte(strings.Repeat("x", size))
	t0, c0 := time.Now(), cpuTime()
	for i := 0; i < n; i++ {
		switch what {
		case "ake":
			ake()
		case "data":
			m, _ := x.Send(msg)
			relay(x, y, m)
			m, _ = y.Send(msg)
			relay(y, x, m)
		case "smp":
			m, _ := x.Authenticate("", []byte("secret"))
			relay(x, y, m)
			m, _ = y.Authenticate("", []byte("secret"))
			relay(y, x, m)
		}
	}
	return time.Since(t0) / time.Duration(n), (cpuTime() - c0) / time.Duration(n)
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
