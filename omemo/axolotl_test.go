package omemo

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

// The engine against python-axolotl, the library under Gajim's OMEMO
// plugin in Debian 12: testdata/axolotl_peer.py is a device written the
// way that plugin writes one (its own XML, its own AES-GCM payload).

const axolotlModule = "/usr/lib/python3/dist-packages/axolotl/sessioncipher.py"

type axolotlPeer struct{ *pyPeer }

func startAxolotl(t *testing.T, jid string, prekeys int) *axolotlPeer {
	t.Helper()
	if _, err := os.Stat(axolotlModule); err != nil {
		t.Fatalf("python-axolotl is missing: apt-get install python3-axolotl (%v)", err)
	}
	return &axolotlPeer{startPyPeer(t, "python-axolotl", "testdata/axolotl_peer.py", jid, map[string]any{"op": "init", "prekeys": prekeys})}
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
	return p.element(r.XML)
}

func TestAxolotlWeStart(t *testing.T) {
	py := startAxolotl(t, operatorJID, 5)
	d := newTestDevice(t, 5)
	b, _ := py.bundle()
	if got := hexFingerprint(b.IdentityKey.Fingerprint()); got != py.Fingerprint {
		t.Fatalf("fingerprint %s, python-axolotl (as Gajim computes it) %s", got, py.Fingerprint)
	}
	// Several messages before the peer answers: all prekey messages.
	for i := 0; i < 3; i++ {
		text := fmt.Sprintf("visitor %d", i)
		e := mustEncrypt(t, d, text, Recipient{py.addr(), b})
		if !e.Keys[0].PreKey {
			t.Fatalf("message %d is not a prekey message", i)
		}
		if r := py.decrypt(visitorJID, e); !r.read(text) || !r.PreKey {
			t.Fatalf("message %d: python-axolotl read %+v", i, r)
		}
	}
	exchange(t, d, py, 20)
}

func TestAxolotlTheyStart(t *testing.T) {
	py := startAxolotl(t, operatorJID, 5)
	d := newTestDevice(t, 5)
	e := py.encrypt("operator first", d, true)
	if !e.Keys[0].PreKey {
		t.Fatal("python-axolotl's first message is not a prekey message")
	}
	m, err := d.Decrypt(operatorJID, e)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Plaintext) != "operator first" || !m.PreKey || !m.Republish ||
		hexFingerprint(m.Fingerprint) != py.Fingerprint {
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
		if r := py.decrypt(visitorJID, mustEncrypt(t, d, text, Recipient{Address: py.addr()})); !r.read(text) {
			t.Fatalf("ours %d: python-axolotl read %+v", i, r)
		}
		var burst []*Encrypted
		for j := 0; j <= i%3; j++ {
			burst = append(burst, py.encrypt(fmt.Sprintf("theirs %d.%d", i, j), d, false))
		}
		for _, j := range burstOrder(len(burst), i == 5) {
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
	d := newTestDevice(t, 5)
	b, _ := py.bundle()
	if r := py.decrypt(visitorJID, mustEncrypt(t, d, "hi", Recipient{py.addr(), b})); r.Error != "" {
		t.Fatal(r.Error)
	}
	// Another device of ours takes our device ID: a new identity key.
	impostor := newTestDevice(t, 1)
	impostor.id = d.ID()
	b, _ = py.bundle()
	if r := py.decrypt(visitorJID, mustEncrypt(t, impostor, "trust me", Recipient{py.addr(), b})); r.Error != "UntrustedIdentityException" {
		t.Fatalf("python-axolotl read an impostor's message: %+v", r)
	}
	other := startAxolotl(t, operatorJID, 2)
	otherBundle, _ := other.bundle()
	if _, err := d.Encrypt([]byte("x"), []Recipient{{py.addr(), otherBundle}}); !errors.Is(err, ErrIdentityChanged) {
		t.Fatalf("another identity's bundle for a known device: %v", err)
	}
}

// Prekey exhaustion on our side: python-axolotl devices take our prekeys
// one by one from the bundles we republish.
func TestAxolotlPreKeyReplenishment(t *testing.T) {
	d := newTestDevice(t, 2)
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
		reply := mustEncrypt(t, d, "hi "+strings.Repeat("!", i), Recipient{Address: m.From})
		if r := py.decrypt(visitorJID, reply); r.Error != "" || r.Text == nil {
			t.Fatalf("sender %d read %+v", i, r)
		}
	}
}
