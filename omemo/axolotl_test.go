package omemo

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The engine against python-axolotl, the library under Gajim's OMEMO
// plugin in Debian 12: testdata/axolotl_peer.py is a device written the
// way that plugin writes one (its own XML, its own AES-GCM payload).

const axolotlModule = "/usr/lib/python3/dist-packages/axolotl/sessioncipher.py"

type axolotlPeer struct {
	t   *testing.T
	in  *json.Encoder
	out *bufio.Scanner
	jid string
	// from init
	Device      uint32 `json:"device"`
	BundleXML   string `json:"bundle"`
	Fingerprint string `json:"fingerprint"`
}

func startAxolotl(t *testing.T, jid string, prekeys int) *axolotlPeer {
	t.Helper()
	if _, err := os.Stat(axolotlModule); err != nil {
		t.Fatalf("python-axolotl is missing: apt-get install python3-axolotl (%v)", err)
	}
	cmd := exec.Command("/usr/bin/python3", "testdata/axolotl_peer.py")
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
	p := &axolotlPeer{t: t, in: json.NewEncoder(stdin), out: bufio.NewScanner(stdout), jid: jid}
	p.out.Buffer(nil, 1<<20)
	p.call(map[string]any{"op": "init", "prekeys": prekeys}, p)
	return p
}

func (p *axolotlPeer) call(req map[string]any, resp any) {
	p.t.Helper()
	if err := p.in.Encode(req); err != nil {
		p.t.Fatalf("axolotl peer: %v", err)
	}
	if !p.out.Scan() {
		p.t.Fatalf("axolotl peer exited: %v", p.out.Err())
	}
	if err := json.Unmarshal(p.out.Bytes(), resp); err != nil {
		p.t.Fatalf("axolotl peer answered %q: %v", p.out.Text(), err)
	}
}

func (p *axolotlPeer) addr() Address { return Address{p.jid, p.Device} }

func (p *axolotlPeer) bundle() *Bundle {
	p.t.Helper()
	var r struct{ Bundle string }
	p.call(map[string]any{"op": "bundle"}, &r)
	b, err := ParseBundle([]byte(r.Bundle))
	if err != nil {
		p.t.Fatalf("python-axolotl's bundle: %v", err)
	}
	return b
}

// encrypt asks the peer to write text to our device d.
func (p *axolotlPeer) encrypt(text string, d *Device, withBundle bool) *Encrypted {
	p.t.Helper()
	to := map[string]any{"jid": visitorJID, "device": d.ID(), "bundle": ""}
	if withBundle {
		to["bundle"] = string(d.Bundle().Marshal())
	}
	var r struct{ XML string }
	p.call(map[string]any{"op": "encrypt", "text": text, "to": []any{to}}, &r)
	e, err := ParseEncrypted([]byte(r.XML))
	if err != nil {
		p.t.Fatalf("python-axolotl's element: %v\n%s", err, r.XML)
	}
	return e
}

type axolotlResult struct {
	Text   *string
	PreKey bool
	Error  string
}

func (p *axolotlPeer) decrypt(e *Encrypted) axolotlResult {
	p.t.Helper()
	var r axolotlResult
	p.call(map[string]any{"op": "decrypt", "from": visitorJID, "xml": string(e.Marshal())}, &r)
	return r
}

func TestAxolotlWeStart(t *testing.T) {
	py := startAxolotl(t, operatorJID, 5)
	d, err := NewDevice(Options{PreKeys: 5})
	if err != nil {
		t.Fatal(err)
	}
	b := py.bundle()
	if got := b.IdentityKey.Fingerprint(); fmt.Sprintf("%x", got[:]) != py.Fingerprint {
		t.Fatalf("fingerprint %x, python-axolotl (as Gajim computes it) %s", got[:], py.Fingerprint)
	}
	// Several messages before the peer answers: all prekey messages.
	for i := 0; i < 3; i++ {
		text := fmt.Sprintf("visitor %d", i)
		e, err := d.Encrypt([]byte(text), []Recipient{{py.addr(), b}})
		if err != nil {
			t.Fatal(err)
		}
		if !e.Keys[0].PreKey {
			t.Fatalf("message %d is not a prekey message", i)
		}
		if r := py.decrypt(e); r.Error != "" || r.Text == nil || *r.Text != text || !r.PreKey {
			t.Fatalf("message %d: python-axolotl read %+v", i, r)
		}
	}
	exchange(t, d, py, 20)
}

func TestAxolotlTheyStart(t *testing.T) {
	py := startAxolotl(t, operatorJID, 5)
	d, err := NewDevice(Options{PreKeys: 5})
	if err != nil {
		t.Fatal(err)
	}
	e := py.encrypt("operator first", d, true)
	if !e.Keys[0].PreKey {
		t.Fatal("python-axolotl's first message is not a prekey message")
	}
	m, err := d.Decrypt(operatorJID, e)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Plaintext) != "operator first" || !m.PreKey || !m.Republish ||
		fmt.Sprintf("%x", m.Fingerprint[:]) != py.Fingerprint {
		t.Fatalf("got %q prekey %v republish %v fingerprint %v", m.Plaintext, m.PreKey, m.Republish, m.Fingerprint)
	}
	exchange(t, d, py, 20)
}

// exchange sends n messages each way, alternating, some in bursts, with
// python-axolotl's messages delivered out of order and one lost.
func exchange(t *testing.T, d *Device, py *axolotlPeer, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		text := fmt.Sprintf("ours %d", i)
		e, err := d.Encrypt([]byte(text), []Recipient{{Address: py.addr()}})
		if err != nil {
			t.Fatal(err)
		}
		if r := py.decrypt(e); r.Error != "" || r.Text == nil || *r.Text != text {
			t.Fatalf("ours %d: python-axolotl read %+v", i, r)
		}
		var burst []*Encrypted
		for j := 0; j <= i%3; j++ {
			burst = append(burst, py.encrypt(fmt.Sprintf("theirs %d.%d", i, j), d, false))
		}
		order := []int{}
		for j := len(burst) - 1; j >= 0; j-- {
			if i == 5 && j == 1 {
				continue // lost
			}
			order = append(order, j)
		}
		for _, j := range order {
			m, err := d.Decrypt(operatorJID, burst[j])
			if err != nil {
				t.Fatalf("theirs %d.%d: %v", i, j, err)
			}
			if want := fmt.Sprintf("theirs %d.%d", i, j); string(m.Plaintext) != want {
				t.Fatalf("got %q, want %q", m.Plaintext, want)
			}
			if m.PreKey {
				t.Fatalf("theirs %d.%d still a prekey message", i, j)
			}
		}
		if _, err := d.Decrypt(operatorJID, burst[0]); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay of theirs %d.0: %v", i, err)
		}
	}
}

// python-axolotl refuses our message once it knows another identity for
// our address, and we refuse its bundle once we know another for its.
func TestAxolotlWrongIdentity(t *testing.T) {
	py := startAxolotl(t, operatorJID, 5)
	d, err := NewDevice(Options{PreKeys: 5})
	if err != nil {
		t.Fatal(err)
	}
	e, err := d.Encrypt([]byte("hi"), []Recipient{{py.addr(), py.bundle()}})
	if err != nil {
		t.Fatal(err)
	}
	if r := py.decrypt(e); r.Error != "" {
		t.Fatal(r.Error)
	}
	// Another device of ours takes our device ID: a new identity key.
	impostor, err := NewDevice(Options{PreKeys: 1})
	if err != nil {
		t.Fatal(err)
	}
	impostor.id = d.ID()
	e, err = impostor.Encrypt([]byte("trust me"), []Recipient{{py.addr(), py.bundle()}})
	if err != nil {
		t.Fatal(err)
	}
	if r := py.decrypt(e); r.Error != "UntrustedIdentityException" {
		t.Fatalf("python-axolotl read an impostor's message: %+v", r)
	}
	other := startAxolotl(t, operatorJID, 2)
	if _, err := d.Encrypt([]byte("x"), []Recipient{{py.addr(), other.bundle()}}); !errors.Is(err, ErrIdentityChanged) {
		t.Fatalf("another identity's bundle for a known device: %v", err)
	}
}

// Prekey exhaustion on our side: python-axolotl devices take our prekeys
// one by one from the bundles we republish.
func TestAxolotlPreKeyReplenishment(t *testing.T) {
	d, err := NewDevice(Options{PreKeys: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		py := startAxolotl(t, fmt.Sprintf("op%d@example.org", i), 1)
		e := py.encrypt("hello", d, true)
		m, err := d.Decrypt(py.jid, e)
		if err != nil {
			t.Fatalf("sender %d: %v", i, err)
		}
		if !m.Republish || len(d.Bundle().PreKeys) != 2 {
			t.Fatalf("sender %d: republish %v, %d prekeys", i, m.Republish, len(d.Bundle().PreKeys))
		}
		// The answer goes back on the new session.
		reply, err := d.Encrypt([]byte("hi "+strings.Repeat("!", i)), []Recipient{{Address: m.From}})
		if err != nil {
			t.Fatal(err)
		}
		if r := py.decrypt(reply); r.Error != "" || r.Text == nil {
			t.Fatalf("sender %d read %+v", i, r)
		}
	}
}
