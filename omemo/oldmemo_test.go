package omemo

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
)

// The engine against a second implementation written apart from
// libsignal: python-omemo's SessionManager with its oldmemo backend
// (Syndace's libraries, Debian 12 python3-omemo and python3-oldmemo, on
// python3-x3dh and python3-doubleratchet), driven through
// testdata/oldmemo_peer.py. The peer writes and reads its XML with
// oldmemo.etree, which checks every element against the XEP's schema, and
// reaches our device list and bundle through a PEP service in memory that
// the tests fill, as a client reaches them through its server.

var oldmemoImport struct {
	once sync.Once
	err  error
}

// needOldmemo skips the test when the Python libraries cannot be
// imported, saying what to install.
func needOldmemo(t *testing.T) {
	t.Helper()
	oldmemoImport.once.Do(func() {
		out, err := exec.Command("/usr/bin/python3", "-c", "import omemo, oldmemo, oldmemo.etree").CombinedOutput()
		if err != nil {
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			oldmemoImport.err = fmt.Errorf("%v: %s", err, lines[len(lines)-1])
		}
	})
	if oldmemoImport.err != nil {
		t.Skipf("python-oldmemo cannot be imported (make deps, or apt-get install python3-oldmemo python3-xmlschema): %v", oldmemoImport.err)
	}
}

type oldmemoPeer struct{ *pyPeer }

// startOldmemo starts a device of account jid; a device ID of 0 lets the
// library draw one, as it does for a client.
func startOldmemo(t *testing.T, jid string, device uint32) *oldmemoPeer {
	t.Helper()
	needOldmemo(t)
	init := map[string]any{"op": "init", "jid": jid}
	if device != 0 {
		init["device"] = device
	}
	p := &oldmemoPeer{startPyPeer(t, "python-oldmemo", "testdata/oldmemo_peer.py", jid, init)}
	if p.Device == 0 {
		t.Fatal("python-oldmemo peer did not start")
	}
	return p
}

// publish puts d's bundle, as account jid's device, where the peer
// fetches bundles, and pushes the device list to it as PEP would.
func (p *oldmemoPeer) publish(jid string, d *Device) {
	p.t.Helper()
	p.publishBundle(jid, d.ID(), d.Bundle())
}

func (p *oldmemoPeer) publishBundle(jid string, device uint32, b *Bundle) {
	p.t.Helper()
	var r struct{ Error string }
	p.call(map[string]any{"op": "publish", "jid": jid, "device": device, "bundle": string(b.Marshal())}, &r)
	if r.Error != "" {
		p.t.Fatalf("python-oldmemo took our bundle with %s", r.Error)
	}
}

// encrypt asks the peer to write text to every device account to
// published.
func (p *oldmemoPeer) encrypt(to, text string) *Encrypted {
	p.t.Helper()
	var r struct{ XML, Error string }
	p.call(map[string]any{"op": "encrypt", "to": to, "text": text}, &r)
	if r.Error != "" {
		p.t.Fatalf("python-oldmemo could not encrypt to %s: %s", to, r.Error)
	}
	return p.element(r.XML)
}

// newOldmemoPair starts a python-oldmemo device of the operator and makes
// a visitor device of ours, published where the library fetches bundles.
func newOldmemoPair(t *testing.T) (*oldmemoPeer, *Device) {
	t.Helper()
	py := startOldmemo(t, operatorJID, 0)
	d := newTestDevice(t, 5)
	py.publish(visitorJID, d)
	return py, d
}

// newOldmemoSession is newOldmemoPair with a session the library has
// confirmed: we wrote first, and read the empty message it answered with.
func newOldmemoSession(t *testing.T) (*oldmemoPeer, *Device) {
	t.Helper()
	py, d := newOldmemoPair(t)
	b, _ := py.bundle()
	r := py.decrypt(visitorJID, mustEncrypt(t, d, "hi", Recipient{py.addr(), b}))
	if r.Error != "" {
		t.Fatal(r.Error)
	}
	readSent(t, d, operatorJID, r.Sent)
	return py, d
}

// readSent has d decrypt the messages the library sent on its own: empty
// messages that complete a session or keep it fresh.
func readSent(t *testing.T, d *Device, from string, sent []string) {
	t.Helper()
	for _, x := range sent {
		e, err := ParseEncrypted([]byte(x))
		if err != nil {
			t.Fatalf("python-oldmemo's empty message: %v\n%s", err, x)
		}
		m, err := d.Decrypt(from, e)
		if err != nil {
			t.Fatalf("python-oldmemo's empty message: %v", err)
		}
		if m.Plaintext != nil || m.PreKey {
			t.Fatalf("python-oldmemo's empty message read as %q, prekey %v", m.Plaintext, m.PreKey)
		}
	}
}

func TestOldmemoWeStart(t *testing.T) {
	py, d := newOldmemoPair(t)
	b, uploads := py.bundle()
	if got := hexFingerprint(b.IdentityKey.Fingerprint()); got != py.Fingerprint {
		t.Fatalf("fingerprint %s, python-oldmemo's %s", got, py.Fingerprint)
	}
	// Several messages before the peer's answer arrives: all prekey
	// messages, on one prekey. The library answers each with an empty
	// message, held back here.
	var held []string
	for i := range 3 {
		text := fmt.Sprintf("visitor %d", i)
		e := mustEncrypt(t, d, text, Recipient{py.addr(), b})
		if !e.Keys[0].PreKey {
			t.Fatalf("message %d is not a prekey message", i)
		}
		r := py.decrypt(visitorJID, e)
		if !r.read(text) || !r.PreKey {
			t.Fatalf("message %d: python-oldmemo read %+v", i, r)
		}
		if len(r.Sent) != 1 {
			t.Fatalf("message %d: python-oldmemo answered %d empty messages, want 1", i, len(r.Sent))
		}
		held = append(held, r.Sent...)
	}
	// The used prekey was replaced and the bundle published again, once.
	after, n := py.bundle()
	if n != uploads+1 || len(after.PreKeys) != len(b.PreKeys) {
		t.Fatalf("after the first message: %d uploads (was %d), %d prekeys (was %d)",
			n, uploads, len(after.PreKeys), len(b.PreKeys))
	}
	if gone := preKeysGone(b, after); len(gone) != 1 {
		t.Fatalf("prekeys gone from python-oldmemo's bundle: %v, want one", gone)
	}
	readSent(t, d, operatorJID, held)
	// The session is confirmed: no more prekey messages.
	e := mustEncrypt(t, d, "confirmed", Recipient{Address: py.addr()})
	if e.Keys[0].PreKey {
		t.Fatal("still a prekey message after python-oldmemo's answer")
	}
	if r := py.decrypt(visitorJID, e); !r.read("confirmed") {
		t.Fatalf("python-oldmemo read %+v", r)
	}
	exchangeOldmemo(t, d, py, 20)
}

func TestOldmemoTheyStart(t *testing.T) {
	py, d := newOldmemoPair(t)
	e := py.encrypt(visitorJID, "operator first")
	if len(e.Keys) != 1 || e.Keys[0].RID != d.ID() || !e.Keys[0].PreKey {
		t.Fatalf("python-oldmemo's first message: keys %+v, want one prekey key for device %d", e.Keys, d.ID())
	}
	m, err := d.Decrypt(operatorJID, e)
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Plaintext) != "operator first" || !m.PreKey || !m.Republish ||
		hexFingerprint(m.Fingerprint) != py.Fingerprint {
		t.Fatalf("got %q prekey %v republish %v fingerprint %v, want python-oldmemo's %s",
			m.Plaintext, m.PreKey, m.Republish, m.Fingerprint, py.Fingerprint)
	}
	py.publish(visitorJID, d)
	// Until we answer, the library keeps sending prekey messages.
	e = py.encrypt(visitorJID, "operator second")
	if !e.Keys[0].PreKey {
		t.Fatal("python-oldmemo's second message before our answer is not a prekey message")
	}
	if m, err := d.Decrypt(operatorJID, e); err != nil || string(m.Plaintext) != "operator second" {
		t.Fatalf("second message: %v", err)
	}
	exchangeOldmemo(t, d, py, 20)
}

// exchangeOldmemo sends n rounds each way, in bursts. Each side receives
// the other's bursts in reverse order, loses one message in round 5, and
// refuses a replay.
func exchangeOldmemo(t *testing.T, d *Device, py *oldmemoPeer, n int) {
	t.Helper()
	for i := range n {
		var ours []*Encrypted
		for j := 0; j <= (i+1)%3; j++ {
			ours = append(ours, mustEncrypt(t, d, fmt.Sprintf("ours %d.%d", i, j), Recipient{Address: py.addr()}))
		}
		for _, j := range burstOrder(len(ours), i == 5) {
			r := py.decrypt(visitorJID, ours[j])
			if want := fmt.Sprintf("ours %d.%d", i, j); !r.read(want) {
				t.Fatalf("%s: python-oldmemo read %+v", want, r)
			}
			if r.PreKey {
				t.Fatalf("ours %d.%d still a prekey message", i, j)
			}
			readSent(t, d, operatorJID, r.Sent)
		}
		if r := py.decrypt(visitorJID, ours[0]); r.Error != "DecryptionFailed" {
			t.Fatalf("python-oldmemo read a replay of ours %d.0: %+v", i, r)
		}

		var theirs []*Encrypted
		for j := 0; j <= i%3; j++ {
			theirs = append(theirs, py.encrypt(visitorJID, fmt.Sprintf("theirs %d.%d", i, j)))
		}
		for _, j := range burstOrder(len(theirs), i == 5) {
			m, err := d.Decrypt(operatorJID, theirs[j])
			if err != nil {
				t.Fatalf("theirs %d.%d: %v", i, j, err)
			}
			if want := fmt.Sprintf("theirs %d.%d", i, j); string(m.Plaintext) != want || m.PreKey {
				t.Fatalf("got %q (prekey %v), want %q", m.Plaintext, m.PreKey, want)
			}
		}
		if _, err := d.Decrypt(operatorJID, theirs[0]); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay of theirs %d.0: %v", i, err)
		}
	}
}

// preKeysGone lists the prekey IDs of before that after no longer has.
func preKeysGone(before, after *Bundle) []uint32 {
	var gone []uint32
	for _, p := range before.PreKeys {
		if !slices.ContainsFunc(after.PreKeys, func(q PreKey) bool { return q.ID == p.ID }) {
			gone = append(gone, p.ID)
		}
	}
	return gone
}

// The library refuses our device once another identity key speaks for
// it, even when that key's bundle was published in its place; and we
// refuse the library's device the same way.
func TestOldmemoWrongIdentity(t *testing.T) {
	py, d := newOldmemoSession(t)

	// Another device takes our device ID, and its bundle replaces ours.
	impostor := newTestDevice(t, 1)
	impostor.id = d.ID()
	py.publish(visitorJID, impostor)
	fresh, _ := py.bundle()
	if r := py.decrypt(visitorJID, mustEncrypt(t, impostor, "trust me", Recipient{py.addr(), fresh})); r.Error != "PublicDataInconsistency" {
		t.Fatalf("python-oldmemo read an impostor's message: %+v", r)
	}
	// Our own session goes on.
	if r := py.decrypt(visitorJID, mustEncrypt(t, d, "still me", Recipient{Address: py.addr()})); !r.read("still me") {
		t.Fatalf("after the impostor, python-oldmemo read %+v", r)
	}

	// A second library device under the first one's ID: its bundle and
	// its messages are refused, and the first one's session is untouched.
	other := startOldmemo(t, operatorJID, py.Device)
	otherBundle, _ := other.bundle()
	if _, err := d.Encrypt([]byte("x"), []Recipient{{py.addr(), otherBundle}}); !errors.Is(err, ErrIdentityChanged) {
		t.Fatalf("another identity's bundle for a known device: %v", err)
	}
	other.publish(visitorJID, d)
	if _, err := d.Decrypt(operatorJID, other.encrypt(visitorJID, "trust me")); !errors.Is(err, ErrIdentityChanged) {
		t.Fatalf("another identity's message for a known device: %v", err)
	}
	if m, err := d.Decrypt(operatorJID, py.encrypt(visitorJID, "still them")); err != nil || string(m.Plaintext) != "still them" {
		t.Fatalf("after the impostor, from python-oldmemo: %v", err)
	}
}

// Our prekeys used up by library devices, one each, from the bundles we
// republish; one that holds a bundle from before gets nothing from a
// prekey already used.
func TestOldmemoOurPreKeysUsedUp(t *testing.T) {
	d := newTestDevice(t, 2)
	first := d.Bundle()
	left := func() int { return len(first.PreKeys) - len(preKeysGone(first, d.Bundle())) }
	// python-oldmemo picks one of the bundle's prekeys at random, so the
	// senders go on until every prekey of the first bundle is used up: at
	// least four, and a bound far above what chance needs (each sender
	// leaves a given key unused with probability 1/2).
	for i := 0; i < 4 || left() > 0; i++ {
		if i == 40 {
			t.Fatalf("%d prekeys of the first bundle still there after %d senders", left(), i)
		}
		py := startOldmemo(t, fmt.Sprintf("op%d@example.org", i), 0)
		py.publish(visitorJID, d)
		before := d.Bundle()
		m, err := d.Decrypt(py.jid, py.encrypt(visitorJID, "hello"))
		if err != nil {
			t.Fatalf("sender %d: %v", i, err)
		}
		if !m.Republish || len(d.Bundle().PreKeys) != 2 || len(preKeysGone(before, d.Bundle())) != 1 {
			t.Fatalf("sender %d: republish %v, %d prekeys, %v gone", i, m.Republish,
				len(d.Bundle().PreKeys), preKeysGone(before, d.Bundle()))
		}
		reply := "hi " + strings.Repeat("!", i)
		if r := py.decrypt(visitorJID, mustEncrypt(t, d, reply, Recipient{Address: m.From})); !r.read(reply) {
			t.Fatalf("sender %d read %+v", i, r)
		}
	}
	// Every prekey of the first bundle is used up by now: a sender that
	// still holds it builds a session we cannot answer.
	late := startOldmemo(t, "late@example.org", 0)
	late.publishBundle(visitorJID, d.ID(), first)
	if _, err := d.Decrypt(late.jid, late.encrypt(visitorJID, "hello")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("a prekey message on a used prekey: %v", err)
	}
	// The library keeps the session it built on the stale bundle; a new
	// device of the account starts afresh from the bundle of now.
	renewed := startOldmemo(t, "late@example.org", 0)
	renewed.publish(visitorJID, d)
	if m, err := d.Decrypt(renewed.jid, renewed.encrypt(visitorJID, "hello")); err != nil || string(m.Plaintext) != "hello" {
		t.Fatalf("from the republished bundle: %v", err)
	}
}

// The library's prekeys used up by our devices: it replaces each at
// once and republishes, and refuses a prekey message on a used one.
func TestOldmemoTheirPreKeysUsedUp(t *testing.T) {
	py := startOldmemo(t, operatorJID, 0)
	first, uploads := py.bundle()
	for i := range 3 {
		jid := fmt.Sprintf("guest-%d@desk.example", i+2)
		d := newTestDevice(t, 1)
		py.publish(jid, d)
		before, _ := py.bundle()
		if r := py.decrypt(jid, mustEncrypt(t, d, "hello", Recipient{py.addr(), before})); !r.read("hello") {
			t.Fatalf("device %d: python-oldmemo read %+v", i, r)
		}
		after, n := py.bundle()
		if n != uploads+i+1 || len(after.PreKeys) != len(before.PreKeys) || len(preKeysGone(before, after)) != 1 {
			t.Fatalf("device %d: %d uploads, %d prekeys (was %d), %v gone",
				i, n, len(after.PreKeys), len(before.PreKeys), preKeysGone(before, after))
		}
	}
	// A device holding the first bundle picks a used prekey.
	now, _ := py.bundle()
	gone := preKeysGone(first, now)
	stale := *first
	stale.PreKeys = slices.DeleteFunc(slices.Clone(first.PreKeys), func(p PreKey) bool { return !slices.Contains(gone, p.ID) })
	d := newTestDevice(t, 1)
	py.publish("late@desk.example", d)
	if r := py.decrypt("late@desk.example", mustEncrypt(t, d, "hello", Recipient{py.addr(), &stale})); r.Error != "KeyExchangeFailed" {
		t.Fatalf("python-oldmemo read a prekey message on a used prekey: %+v", r)
	}
}

// A long one-sided run and long gaps. After 53 messages without an
// answer the library sends an empty message of its own, so that the
// ratchet moves on; we read it, and our next message does move the
// ratchet, so it sends only one. Then each side loses most of a long run
// and reads the rest late.
func TestOldmemoLongRuns(t *testing.T) {
	py, d := newOldmemoSession(t)

	heartbeats := 0
	for i := range 70 {
		r := py.decrypt(visitorJID, mustEncrypt(t, d, fmt.Sprintf("ours %d", i), Recipient{Address: py.addr()}))
		if r.Error != "" || r.Text == nil {
			t.Fatalf("ours %d: python-oldmemo read %+v", i, r)
		}
		if len(r.Sent) > 0 && i < 50 {
			t.Fatalf("python-oldmemo sent %d empty messages after %d of ours", len(r.Sent), i+1)
		}
		heartbeats += len(r.Sent)
		readSent(t, d, operatorJID, r.Sent)
	}
	if heartbeats != 1 {
		t.Fatalf("python-oldmemo sent %d empty messages in a run of 70, want 1", heartbeats)
	}

	const run = 100
	var theirs []*Encrypted
	for i := range run {
		theirs = append(theirs, py.encrypt(visitorJID, fmt.Sprintf("theirs %d", i)))
	}
	for _, i := range []int{run - 1, run / 2, 0} {
		m, err := d.Decrypt(operatorJID, theirs[i])
		if err != nil {
			t.Fatalf("theirs %d after a gap: %v", i, err)
		}
		if want := fmt.Sprintf("theirs %d", i); string(m.Plaintext) != want {
			t.Fatalf("got %q, want %q", m.Plaintext, want)
		}
	}
	var ours []*Encrypted
	for i := range run {
		ours = append(ours, mustEncrypt(t, d, fmt.Sprintf("ours %d", i), Recipient{Address: py.addr()}))
	}
	for _, i := range []int{run - 1, run / 2, 0} {
		r := py.decrypt(visitorJID, ours[i])
		if want := fmt.Sprintf("ours %d", i); !r.read(want) {
			t.Fatalf("%s after a gap: python-oldmemo read %+v", want, r)
		}
		readSent(t, d, operatorJID, r.Sent)
	}
}
