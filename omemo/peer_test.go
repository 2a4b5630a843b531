package omemo

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// A pyPeer is an OMEMO device of a Python library, run by a script in
// testdata that reads one JSON request a line on its stdin and answers
// each with one line of JSON. The python-axolotl and python-oldmemo tests
// drive their libraries through it; what the requests ask of each library
// is in their own files.
type pyPeer struct {
	t   *testing.T
	lib string // the library, as failures name it: "python-axolotl"
	in  *json.Encoder
	out *bufio.Scanner
	jid string
	// from the answer to init
	Device      uint32 `json:"device"`
	Fingerprint string `json:"fingerprint"`
}

// startPyPeer runs script as a device of account jid, until the test
// ends, and sends it init.
func startPyPeer(t *testing.T, lib, script, jid string, init map[string]any) *pyPeer {
	t.Helper()
	cmd := exec.Command("/usr/bin/python3", script)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	p := &pyPeer{t: t, lib: lib, in: json.NewEncoder(stdin), out: bufio.NewScanner(stdout), jid: jid}
	p.out.Buffer(nil, 1<<20)
	p.call(init, p)
	return p
}

// call sends req and reads the answer into resp.
func (p *pyPeer) call(req map[string]any, resp any) {
	p.t.Helper()
	if err := p.in.Encode(req); err != nil {
		p.t.Fatalf("%s peer: %v", p.lib, err)
	}
	if !p.out.Scan() {
		p.t.Fatalf("%s peer exited: %v", p.lib, p.out.Err())
	}
	if err := json.Unmarshal(p.out.Bytes(), resp); err != nil {
		p.t.Fatalf("%s peer answered %q: %v", p.lib, p.out.Text(), err)
	}
}

func (p *pyPeer) addr() Address { return Address{p.jid, p.Device} }

// bundle is the peer's bundle as its library wrote it, and how many times
// the peer published one (python-oldmemo counts; python-axolotl says 0).
func (p *pyPeer) bundle() (*Bundle, int) {
	p.t.Helper()
	var r struct {
		Bundle  string
		Uploads int
	}
	p.call(map[string]any{"op": "bundle"}, &r)
	b, err := ParseBundle([]byte(r.Bundle))
	if err != nil {
		p.t.Fatalf("%s's bundle: %v\n%s", p.lib, err, r.Bundle)
	}
	return b, r.Uploads
}

// element parses an <encrypted/> element the library wrote.
func (p *pyPeer) element(xml string) *Encrypted {
	p.t.Helper()
	e, err := ParseEncrypted([]byte(xml))
	if err != nil {
		p.t.Fatalf("%s's element: %v\n%s", p.lib, err, xml)
	}
	return e
}

// peerResult is what the peer read of an element.
type peerResult struct {
	Text   *string
	PreKey bool
	Sent   []string // what the library sent back on its own (python-oldmemo)
	Error  string
}

// read reports whether the peer read text, without an error.
func (r peerResult) read(text string) bool { return r.Error == "" && r.Text != nil && *r.Text == text }

// decrypt has the peer read e, sent by account from.
func (p *pyPeer) decrypt(from string, e *Encrypted) peerResult {
	p.t.Helper()
	var r peerResult
	p.call(map[string]any{"op": "decrypt", "from": from, "xml": string(e.Marshal())}, &r)
	return r
}

func newTestDevice(t *testing.T, prekeys int) *Device {
	t.Helper()
	d, err := NewDevice(Options{PreKeys: prekeys})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// mustEncrypt is d's message of text to the recipients.
func mustEncrypt(t *testing.T, d *Device, text string, to ...Recipient) *Encrypted {
	t.Helper()
	e, err := d.Encrypt([]byte(text), to)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func hexFingerprint(f Fingerprint) string { return fmt.Sprintf("%x", f[:]) }

// burstOrder is the order a burst of n arrives in: reversed, and without
// its second message when lose is set and there is one to lose.
func burstOrder(n int, lose bool) []int {
	var order []int
	for j := n - 1; j >= 0; j-- {
		if lose && j == 1 {
			continue
		}
		order = append(order, j)
	}
	return order
}
