package omemo

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

const (
	visitorJID  = "guest-1@desk.example"
	operatorJID = "alice@example.org"
)

type pair struct {
	v, o         *Device
	vAddr, oAddr Address
}

func newPair(t testing.TB) *pair {
	t.Helper()
	v, err := NewDevice(Options{PreKeys: 5})
	if err != nil {
		t.Fatal(err)
	}
	o, err := NewDevice(Options{PreKeys: 5})
	if err != nil {
		t.Fatal(err)
	}
	return &pair{v: v, o: o,
		vAddr: Address{visitorJID, v.ID()}, oAddr: Address{operatorJID, o.ID()}}
}

// onTheWire sends e as the element text, the way it travels.
func onTheWire(t *testing.T, e *Encrypted) *Encrypted {
	t.Helper()
	got, err := ParseEncrypted(e.Marshal())
	if err != nil {
		t.Fatalf("ParseEncrypted(Marshal()): %v", err)
	}
	return got
}

func TestConversation(t *testing.T) {
	p := newPair(t)
	// The visitor knows only the operator's published bundle.
	bundle, err := ParseBundle(p.o.Bundle().Marshal())
	if err != nil {
		t.Fatal(err)
	}
	e, err := p.v.Encrypt([]byte("hello from the visitor"), []Recipient{{p.oAddr, bundle}})
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Keys) != 1 || !e.Keys[0].PreKey || e.Keys[0].RID != p.o.ID() || e.SID != p.v.ID() {
		t.Fatalf("first message keys = %+v, sid %d: want one prekey key for the operator", e.Keys, e.SID)
	}
	if len(e.IV) != 12 || len(e.Payload) != len("hello from the visitor") {
		t.Fatalf("iv %d bytes, payload %d bytes: want 12 and the plaintext's length (no tag)", len(e.IV), len(e.Payload))
	}
	m, err := p.o.Decrypt(visitorJID, onTheWire(t, e))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.Plaintext) != "hello from the visitor" || !m.PreKey || !m.Republish ||
		m.From != p.vAddr || m.Fingerprint != p.v.Fingerprint() {
		t.Fatalf("operator got %q from %v (prekey %v, republish %v, fingerprint %v)", m.Plaintext, m.From, m.PreKey, m.Republish, m.Fingerprint)
	}
	if n := len(p.o.Bundle().PreKeys); n != 5 {
		t.Errorf("after a prekey was used the bundle has %d prekeys, want 5 (replenished)", n)
	}
	used := usedPreKey(t, bundle, p.o)
	newest := p.o.Bundle().PreKeys[4]
	if newest.ID != 6 || contains(bundle, newest.ID) {
		t.Errorf("replacement for prekey %d has ID %d, want 6 (IDs are never reused)", used, newest.ID)
	}

	// The operator answers on the session the prekey message built: a
	// normal message, and the visitor's next one is normal too.
	for i, step := range []struct {
		from, to       *Device
		fromJID        string
		toAddr         Address
		text           string
		wantPreKeyFlag bool
	}{
		{p.o, p.v, operatorJID, p.vAddr, "hello from the operator", false},
		{p.v, p.o, visitorJID, p.oAddr, "second from the visitor", false},
		{p.v, p.o, visitorJID, p.oAddr, "third from the visitor", false},
		{p.o, p.v, operatorJID, p.vAddr, "second from the operator", false},
	} {
		e, err := step.from.Encrypt([]byte(step.text), []Recipient{{Address: step.toAddr}})
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if e.Keys[0].PreKey != step.wantPreKeyFlag {
			t.Errorf("step %d: prekey = %v, want %v", i, e.Keys[0].PreKey, step.wantPreKeyFlag)
		}
		m, err := step.to.Decrypt(step.fromJID, onTheWire(t, e))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if string(m.Plaintext) != step.text || m.PreKey || m.Republish {
			t.Fatalf("step %d: got %q (prekey %v, republish %v)", i, m.Plaintext, m.PreKey, m.Republish)
		}
	}
}

// usedPreKey returns the ID of the prekey in old that d no longer has.
func usedPreKey(t *testing.T, old *Bundle, d *Device) uint32 {
	t.Helper()
	have := map[uint32]bool{}
	for _, pk := range d.Bundle().PreKeys {
		have[pk.ID] = true
	}
	for _, pk := range old.PreKeys {
		if !have[pk.ID] {
			return pk.ID
		}
	}
	t.Fatal("no prekey was used up")
	return 0
}

// established returns a pair that exchanged one message each way.
func established(t testing.TB) *pair {
	t.Helper()
	p := newPair(t)
	e, err := p.v.Encrypt([]byte("hi"), []Recipient{{p.oAddr, p.o.Bundle()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.o.Decrypt(visitorJID, e); err != nil {
		t.Fatal(err)
	}
	e, err = p.o.Encrypt([]byte("hello"), []Recipient{{Address: p.vAddr}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.v.Decrypt(operatorJID, e); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOutOfOrderAndLost(t *testing.T) {
	p := established(t)
	var sent []*Encrypted
	for _, s := range []string{"one", "two", "three", "four"} {
		e, err := p.o.Encrypt([]byte(s), []Recipient{{Address: p.vAddr}})
		if err != nil {
			t.Fatal(err)
		}
		sent = append(sent, e)
	}
	// "two" is lost; the others arrive backwards.
	for _, i := range []int{3, 2, 0} {
		m, err := p.v.Decrypt(operatorJID, sent[i])
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if want := []string{"one", "two", "three", "four"}[i]; string(m.Plaintext) != want {
			t.Fatalf("message %d = %q, want %q", i, m.Plaintext, want)
		}
	}
}

func TestReplayRejected(t *testing.T) {
	p := newPair(t)
	first, err := p.v.Encrypt([]byte("first"), []Recipient{{p.oAddr, p.o.Bundle()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.o.Decrypt(visitorJID, first); err != nil {
		t.Fatal(err)
	}
	second, err := p.v.Encrypt([]byte("second"), []Recipient{{Address: p.oAddr}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.o.Decrypt(visitorJID, second); err != nil {
		t.Fatal(err)
	}
	for name, e := range map[string]*Encrypted{"prekey message": first, "second message": second} {
		if m, err := p.o.Decrypt(visitorJID, e); !errors.Is(err, ErrReplay) {
			t.Errorf("%s replayed: got %v, %v; want ErrReplay", name, m, err)
		}
	}
	// The session still works after the replays.
	third, err := p.v.Encrypt([]byte("third"), []Recipient{{Address: p.oAddr}})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := p.o.Decrypt(visitorJID, third); err != nil || string(m.Plaintext) != "third" {
		t.Fatalf("after replays: %v, %v", m, err)
	}
}

func TestWrongRecipient(t *testing.T) {
	p := newPair(t)
	eve, err := NewDevice(Options{PreKeys: 1})
	if err != nil {
		t.Fatal(err)
	}
	e, err := p.v.Encrypt([]byte("for the operator"), []Recipient{{p.oAddr, p.o.Bundle()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eve.Decrypt(visitorJID, e); !errors.Is(err, ErrNotForThisDevice) {
		t.Errorf("another device: %v, want ErrNotForThisDevice", err)
	}
	// Eve relabels the key as hers: her prekey store lacks the prekey.
	stolen := *e
	stolen.Keys = []Key{e.Keys[0]}
	stolen.Keys[0].RID = eve.ID()
	if m, err := eve.Decrypt(visitorJID, &stolen); err == nil {
		t.Fatalf("another device decrypted %q", m.Plaintext)
	}
	if _, err := p.o.Decrypt(visitorJID, e); err != nil {
		t.Fatalf("the real recipient, after: %v", err)
	}
}

func TestTamperedRejected(t *testing.T) {
	p := established(t)
	send := func() *Encrypted {
		e, err := p.v.Encrypt([]byte("the text"), []Recipient{{Address: p.oAddr}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	for _, tc := range []struct {
		name   string
		tamper func(e *Encrypted)
		want   error
	}{
		{"payload bit", func(e *Encrypted) { e.Payload[0] ^= 1 }, ErrPayload},
		{"payload truncated", func(e *Encrypted) { e.Payload = e.Payload[:len(e.Payload)-1] }, ErrPayload},
		{"iv bit", func(e *Encrypted) { e.IV[0] ^= 1 }, ErrPayload},
		{"key (tag) bit", func(e *Encrypted) { e.Keys[0].Data[len(e.Keys[0].Data)-12] ^= 1 }, ErrDecrypt},
		{"key mac bit", func(e *Encrypted) { e.Keys[0].Data[len(e.Keys[0].Data)-1] ^= 1 }, ErrDecrypt},
		{"other sender id", func(e *Encrypted) { e.SID++ }, ErrNoSession},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := send()
			good := *e
			good.Keys = append([]Key(nil), e.Keys...)
			good.Keys[0].Data = bytes.Clone(e.Keys[0].Data)
			good.IV, good.Payload = bytes.Clone(e.IV), bytes.Clone(e.Payload)
			tc.tamper(e)
			if m, err := p.o.Decrypt(visitorJID, e); !errors.Is(err, tc.want) {
				t.Fatalf("tampered: got %v, %v; want %v", m, err, tc.want)
			}
			// Nothing changed: the untouched message still decrypts.
			if m, err := p.o.Decrypt(visitorJID, &good); err != nil || string(m.Plaintext) != "the text" {
				t.Fatalf("untouched after tampered: %v, %v", m, err)
			}
		})
	}
}

func TestIdentityChangedRefused(t *testing.T) {
	p := established(t)
	// A new device claims the operator's device ID: another identity key.
	impostor, err := NewDevice(Options{PreKeys: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.v.Encrypt([]byte("x"), []Recipient{{p.oAddr, impostor.Bundle()}}); !errors.Is(err, ErrIdentityChanged) {
		t.Errorf("encrypt to a bundle with another identity: %v, want ErrIdentityChanged", err)
	}
	impostor.id = p.o.ID()
	e, err := impostor.Encrypt([]byte("x"), []Recipient{{p.vAddr, p.v.Bundle()}})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := p.v.Decrypt(operatorJID, e); !errors.Is(err, ErrIdentityChanged) {
		t.Errorf("prekey message from another identity: %v, %v; want ErrIdentityChanged", m, err)
	}

	// A pin refuses a bundle before any session.
	q := newPair(t)
	if err := q.v.Pin(q.oAddr, impostor.IdentityKey()); err != nil {
		t.Fatal(err)
	}
	if _, err := q.v.Encrypt([]byte("x"), []Recipient{{q.oAddr, q.o.Bundle()}}); !errors.Is(err, ErrIdentityChanged) {
		t.Errorf("encrypt against a pin: %v, want ErrIdentityChanged", err)
	}
	if err := q.v.Pin(q.oAddr, q.o.IdentityKey()); !errors.Is(err, ErrIdentityChanged) {
		t.Errorf("re-pinning another key: %v, want ErrIdentityChanged", err)
	}
}

func TestBadBundleRefused(t *testing.T) {
	p := newPair(t)
	b := p.o.Bundle()
	b.Signature[0] ^= 1
	if _, err := p.v.Encrypt([]byte("x"), []Recipient{{p.oAddr, b}}); !errors.Is(err, ErrBadBundle) {
		t.Errorf("bad signature: %v, want ErrBadBundle", err)
	}
	if p.v.HasSession(p.oAddr) {
		t.Error("a session was kept from a refused bundle")
	}
	if _, err := p.v.Encrypt([]byte("x"), []Recipient{{Address: p.oAddr}}); !errors.Is(err, ErrNoSession) {
		t.Errorf("no bundle, no session: %v, want ErrNoSession", err)
	}
	if _, err := p.v.Encrypt([]byte("x"), nil); !errors.Is(err, ErrNoRecipients) {
		t.Errorf("no recipients: %v", err)
	}
	if _, err := p.v.Encrypt(make([]byte, MaxPayloadBytes+1), []Recipient{{p.oAddr, p.o.Bundle()}}); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized plaintext: %v, want ErrTooLarge", err)
	}
}

// Many devices of two accounts, one failing: nothing is committed.
func TestEncryptAllOrNothing(t *testing.T) {
	p := newPair(t)
	phone, err := NewDevice(Options{PreKeys: 2})
	if err != nil {
		t.Fatal(err)
	}
	phoneAddr := Address{operatorJID, phone.ID()}
	bad := phone.Bundle()
	bad.Signature[5] ^= 0x40
	_, err = p.v.Encrypt([]byte("x"), []Recipient{{p.oAddr, p.o.Bundle()}, {phoneAddr, bad}})
	if !errors.Is(err, ErrBadBundle) {
		t.Fatalf("one bad bundle: %v", err)
	}
	if p.v.HasSession(p.oAddr) {
		t.Fatal("a failed Encrypt kept the session with the good device")
	}
	e, err := p.v.Encrypt([]byte("to both"), []Recipient{{p.oAddr, p.o.Bundle()}, {phoneAddr, phone.Bundle()}})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []*Device{p.o, phone} {
		m, err := d.Decrypt(visitorJID, onTheWire(t, e))
		if err != nil || string(m.Plaintext) != "to both" {
			t.Fatalf("device %d: %v, %v", d.ID(), m, err)
		}
	}
}

func TestKeyTransport(t *testing.T) {
	p := newPair(t)
	e, err := p.v.Encrypt([]byte("hi"), []Recipient{{p.oAddr, p.o.Bundle()}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.o.Decrypt(visitorJID, e); err != nil {
		t.Fatal(err)
	}
	// The operator confirms the session without a message.
	kt, err := p.o.KeyTransport([]Recipient{{Address: p.vAddr}})
	if err != nil {
		t.Fatal(err)
	}
	if kt.Payload != nil || bytes.Contains(kt.Marshal(), []byte("payload")) {
		t.Fatal("key transport element has a payload")
	}
	m, err := p.v.Decrypt(operatorJID, onTheWire(t, kt))
	if err != nil || m.Plaintext != nil {
		t.Fatalf("key transport: %v, %v", m, err)
	}
	// Now the visitor's messages are no longer prekey messages.
	e, err = p.v.Encrypt([]byte("again"), []Recipient{{Address: p.oAddr}})
	if err != nil {
		t.Fatal(err)
	}
	if e.Keys[0].PreKey {
		t.Error("still a prekey message after the peer answered")
	}
}

// Prekey exhaustion: every sender takes a prekey from the same old bundle;
// each is replaced, and prekey IDs are never reused.
func TestPreKeyReplenishment(t *testing.T) {
	o, err := NewDevice(Options{PreKeys: 3})
	if err != nil {
		t.Fatal(err)
	}
	old := o.Bundle()
	seenIDs := map[uint32]bool{}
	for _, pk := range old.PreKeys {
		seenIDs[pk.ID] = true
	}
	for i := 0; i < 10; i++ {
		v, err := NewDevice(Options{PreKeys: 1})
		if err != nil {
			t.Fatal(err)
		}
		oAddr := Address{operatorJID, o.ID()}
		e, err := v.Encrypt([]byte("hi"), []Recipient{{oAddr, o.Bundle()}})
		if err != nil {
			t.Fatal(err)
		}
		m, err := o.Decrypt(visitorJID, e)
		if err != nil {
			t.Fatalf("sender %d: %v", i, err)
		}
		if !m.Republish {
			t.Errorf("sender %d: Republish not set", i)
		}
		b := o.Bundle()
		if len(b.PreKeys) != 3 {
			t.Fatalf("sender %d: %d prekeys left", i, len(b.PreKeys))
		}
		for _, pk := range b.PreKeys {
			seenIDs[pk.ID] = true
		}
	}
	if len(seenIDs) != 13 {
		t.Errorf("%d distinct prekey IDs over 10 replacements of 3, want 13", len(seenIDs))
	}
	// A sender with the stale first bundle whose prekey is gone fails.
	v, err := NewDevice(Options{PreKeys: 1})
	if err != nil {
		t.Fatal(err)
	}
	e, err := v.Encrypt([]byte("late"), []Recipient{{Address{operatorJID, o.ID()}, old}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Decrypt("late@example.org", e); !errors.Is(err, ErrDecrypt) {
		t.Errorf("prekey message on a used prekey: %v, want ErrDecrypt", err)
	}
}

func contains(b *Bundle, id uint32) bool {
	for _, pk := range b.PreKeys {
		if pk.ID == id {
			return true
		}
	}
	return false
}

func TestNewDeviceOptions(t *testing.T) {
	if _, err := NewDevice(Options{PreKeys: MaxPreKeys + 1}); err == nil {
		t.Error("more prekeys than a bundle may hold accepted")
	}
	d, err := NewDevice(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(d.Bundle().PreKeys); n != DefaultPreKeys {
		t.Errorf("default device publishes %d prekeys", n)
	}
	if d.ID() == 0 || d.ID() > MaxDeviceID {
		t.Errorf("device id %d out of range", d.ID())
	}
	if _, err := ParseBundle(d.Bundle().Marshal()); err != nil {
		t.Errorf("own bundle does not parse: %v", err)
	}
}

// switchableRand reads crypto/rand until broken.
type switchableRand struct{ broken bool }

func (r *switchableRand) Read(p []byte) (int, error) {
	if r.broken {
		return 0, errors.New("no entropy")
	}
	return rand.Read(p)
}

// Without randomness, neither sending nor receiving changes the device.
func TestRandomnessFailureChangesNothing(t *testing.T) {
	r := &switchableRand{}
	o, err := NewDevice(Options{Rand: r, PreKeys: 2})
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewDevice(Options{PreKeys: 2})
	if err != nil {
		t.Fatal(err)
	}
	e, err := v.Encrypt([]byte("hi"), []Recipient{{Address{operatorJID, o.ID()}, o.Bundle()}})
	if err != nil {
		t.Fatal(err)
	}
	r.broken = true
	before := snapshot(o)
	if _, err := o.Decrypt(visitorJID, e); err == nil {
		t.Fatal("a prekey message decrypted with no randomness to replace the prekey")
	}
	if _, err := o.Encrypt([]byte("x"), []Recipient{{Address{visitorJID, v.ID()}, v.Bundle()}}); err == nil {
		t.Fatal("encrypted with no randomness")
	}
	if snapshot(o) != before {
		t.Fatal("the device changed")
	}
	r.broken = false
	m, err := o.Decrypt(visitorJID, e)
	if err != nil || string(m.Plaintext) != "hi" || !m.Republish {
		t.Fatalf("once randomness is back: %v, %v", m, err)
	}
}

// A bundle whose one-time prekeys are all gone still gives a session
// (X3DH on the signed prekey alone), as libsignal allows.
func TestBundleWithoutPreKeys(t *testing.T) {
	p := newPair(t)
	b := p.o.Bundle()
	b.PreKeys = nil
	b, err := ParseBundle(b.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	e, err := p.v.Encrypt([]byte("no prekey"), []Recipient{{p.oAddr, b}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := p.o.Decrypt(visitorJID, e)
	if err != nil || string(m.Plaintext) != "no prekey" || !m.PreKey || m.Republish {
		t.Fatalf("got %v, %v", m, err)
	}
}
