package omemo

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

var updateState = flag.Bool("update-state", false, "rewrite the saved devices in testdata/state-v1")

// reload exports d and restores it, as the widget does across a page
// reload, and checks that the restored device exports to the same bytes.
func reload(t testing.TB, d *Device) *Device {
	t.Helper()
	b, err := d.Export()
	if err != nil {
		t.Fatalf("Export: %v", err)
	}
	r, err := Restore(b, Options{})
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	again, err := r.Export()
	if err != nil {
		t.Fatalf("Export after Restore: %v", err)
	}
	if !bytes.Equal(again, b) {
		t.Fatal("a restored device exports to other bytes than it was restored from")
	}
	return r
}

func send(t *testing.T, from *Device, to Address, text string) *Encrypted {
	t.Helper()
	e, err := from.Encrypt([]byte(text), []Recipient{{Address: to}})
	if err != nil {
		t.Fatalf("Encrypt %q: %v", text, err)
	}
	return onTheWire(t, e)
}

func receive(t *testing.T, d *Device, from string, e *Encrypted, want string) *Message {
	t.Helper()
	m, err := d.Decrypt(from, e)
	if err != nil {
		t.Fatalf("Decrypt %q: %v", want, err)
	}
	if string(m.Plaintext) != want {
		t.Fatalf("Decrypt = %q, want %q", m.Plaintext, want)
	}
	return m
}

// TestExportRestoreMidConversation: both sides reload in the middle of a
// conversation, with a message of each still on its way, and the
// conversation goes on both ways, late messages included.
func TestExportRestoreMidConversation(t *testing.T) {
	p := established(t)
	receive(t, p.o, visitorJID, send(t, p.v, p.oAddr, "before the reload"), "before the reload")
	lateToO := send(t, p.v, p.oAddr, "on its way to the operator")
	lateToV := send(t, p.o, p.vAddr, "on its way to the visitor")

	v, o := reload(t, p.v), reload(t, p.o)
	if v.ID() != p.v.ID() || v.Fingerprint() != p.v.Fingerprint() {
		t.Fatalf("restored visitor is device %d %v, want %d %v", v.ID(), v.Fingerprint(), p.v.ID(), p.v.Fingerprint())
	}
	if !bytes.Equal(v.Bundle().Marshal(), p.v.Bundle().Marshal()) {
		t.Fatal("the restored device publishes another bundle")
	}
	if key, ok := v.Identity(p.oAddr); !ok || key != p.o.IdentityKey() {
		t.Fatalf("restored visitor holds %v (%v) for the operator", key, ok)
	}

	receive(t, o, visitorJID, lateToO, "on its way to the operator")
	receive(t, v, operatorJID, lateToV, "on its way to the visitor")
	for i := range 3 {
		m := receive(t, o, visitorJID, send(t, v, p.oAddr, "visitor after the reload"), "visitor after the reload")
		if m.PreKey || m.Fingerprint != p.v.Fingerprint() {
			t.Fatalf("round %d: prekey %v, fingerprint %v", i, m.PreKey, m.Fingerprint)
		}
		receive(t, v, operatorJID, send(t, o, p.vAddr, "operator after the reload"), "operator after the reload")
	}
	// Replays of what arrived before the reload are still refused.
	if _, err := o.Decrypt(visitorJID, lateToO); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay after the reload: %v, want ErrReplay", err)
	}
}

// TestExportRestoreBeforeAnswer: the visitor reloads after its prekey
// message left and before the operator answered; its next message is a
// prekey message still, and both reach the operator.
func TestExportRestoreBeforeAnswer(t *testing.T) {
	p := newPair(t)
	first, err := p.v.Encrypt([]byte("first"), []Recipient{{p.oAddr, p.o.Bundle()}})
	if err != nil {
		t.Fatal(err)
	}
	v := reload(t, p.v)
	second := send(t, v, p.oAddr, "second")
	if !second.Keys[0].PreKey {
		t.Fatal("after the reload the unanswered session sends a normal message")
	}
	o := reload(t, p.o)
	if m := receive(t, o, visitorJID, first, "first"); !m.PreKey || !m.Republish {
		t.Fatalf("first: prekey %v, republish %v", m.PreKey, m.Republish)
	}
	o = reload(t, o) // with the used prekey replaced
	receive(t, o, visitorJID, second, "second")
	receive(t, v, operatorJID, send(t, o, p.vAddr, "answer"), "answer")
	if e := send(t, v, p.oAddr, "third"); e.Keys[0].PreKey {
		t.Fatal("the answered session still sends prekey messages")
	}
}

// TestExportPinned: a pin survives the reload; a fresh device with no
// peers exports and restores too.
func TestExportPinned(t *testing.T) {
	p := newPair(t)
	if err := p.v.Pin(p.oAddr, p.o.IdentityKey()); err != nil {
		t.Fatal(err)
	}
	v := reload(t, p.v)
	other, err := NewDevice(Options{PreKeys: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Pin(p.oAddr, other.IdentityKey()); !errors.Is(err, ErrIdentityChanged) {
		t.Fatalf("another key for a pinned device after the reload: %v", err)
	}
	if _, ok := v.Identity(Address{operatorJID, p.o.ID() + 1}); ok {
		t.Fatal("an identity for a device never seen")
	}
	reload(t, other)

	// A device that could not be restored is not saved: a peer JID
	// longer than XMPP allows.
	if err := other.Pin(Address{string(bytes.Repeat([]byte("a"), maxJIDBytes+1)), 1}, p.o.IdentityKey()); err != nil {
		t.Fatal(err)
	}
	if b, err := other.Export(); err == nil {
		t.Fatalf("exported %d bytes with a JID of %d bytes", len(b), maxJIDBytes+1)
	}
}

// hexRun finds what might be key bytes in an error text.
var hexRun = regexp.MustCompile(`[0-9a-fA-F]{16,}|[A-Za-z0-9+/]{20,}`)

// TestRestoreRefuses: every truncation, trailing bytes, another version,
// and damage to the parts Restore can check are refused with ErrBadState,
// in words that hold no key.
func TestRestoreRefuses(t *testing.T) {
	p := established(t)
	good, err := p.v.Export()
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, b []byte) {
		t.Helper()
		d, err := Restore(b, Options{})
		if err == nil || d != nil {
			t.Fatalf("%s: restored", name)
		}
		if !errors.Is(err, ErrBadState) {
			t.Fatalf("%s: %v, want ErrBadState", name, err)
		}
		if hexRun.MatchString(err.Error()) {
			t.Fatalf("%s: error %q may hold key bytes", name, err)
		}
	}
	for n := range len(good) {
		check("truncated", good[:n])
	}
	check("trailing byte", append(bytes.Clone(good), 0))
	check("nil", nil)
	check("garbage", bytes.Repeat([]byte{0xa5}, 300))

	header := len(stateMagic)
	identityAt := header + 1 + 4
	signatureAt := identityAt + 32 + 4 + 8 + 32
	for _, c := range []struct {
		name string
		at   int
		to   byte
	}{
		{"version 2", header, 2},
		{"device ID 0", header + 1, 0},
		{"identity key", identityAt + 5, 0x42},
		{"signature", signatureAt + 3, 0x42},
	} {
		b := bytes.Clone(good)
		if c.at == header+1 {
			binary.BigEndian.PutUint32(b[c.at:], 0)
		} else {
			b[c.at] ^= c.to
		}
		check(c.name, b)
	}

	// A session record belongs to this device's identity key and to the
	// identity key the device holds for the peer.
	k := addrKey{operatorJID, p.o.ID()}
	stranger, err := NewDevice(Options{PreKeys: 1})
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(d *Device){
		"the operator's session under the visitor's key": func(d *Device) {
			d.state.sessions[k] = p.o.state.sessions[addrKey{visitorJID, p.v.ID()}]
		},
		"a session with another identity than the one held": func(d *Device) {
			d.state.identities[k] = stranger.IdentityKey()
		},
		"a session without an identity": func(d *Device) {
			delete(d.state.identities, k)
		},
	} {
		d := reload(t, p.v)
		edit(d)
		b, err := d.Export()
		if err != nil {
			t.Fatal(err)
		}
		check(name, b)
	}
}

// TestRestoreDamagedSession: session records that libsignal would load
// and then index unchecked are refused.
func TestRestoreDamagedSession(t *testing.T) {
	p := established(t)
	k := addrKey{operatorJID, p.o.ID()}
	orig := p.v.state.sessions[k]
	for name, edit := range map[string]func([]byte) []byte{
		"not JSON":     func(b []byte) []byte { return []byte("{") },
		"no state":     func(b []byte) []byte { return []byte(`{"SessionState":null}`) },
		"empty record": func(b []byte) []byte { return []byte(`{}`) },
		"no sending chain": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"SenderChain":{`), []byte(`"SenderChain":null,"X":{`), 1)
		},
		"null message key": func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"MessageKeys":[]`), []byte(`"MessageKeys":[null]`), 1)
		},
		"short root key": func(b []byte) []byte {
			return regexp.MustCompile(`"RootKey":"[^"]*"`).ReplaceAll(b, []byte(`"RootKey":"AAAA"`))
		},
		"empty ratchet key": func(b []byte) []byte {
			return regexp.MustCompile(`"SenderRatchetKeyPublic":"[^"]*"`).ReplaceAll(b, []byte(`"SenderRatchetKeyPublic":""`))
		},
	} {
		edited := edit(bytes.Clone(orig))
		if bytes.Equal(edited, orig) {
			t.Fatalf("%s: the edit changed nothing", name)
		}
		p.v.state.sessions[k] = edited
		b, err := p.v.Export()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Restore(b, Options{}); !errors.Is(err, ErrBadState) {
			t.Errorf("%s: %v, want ErrBadState", name, err)
		}
	}
	p.v.state.sessions[k] = orig
	reload(t, p.v)
}

// FuzzRestore: Restore reads arbitrary bytes without panicking; what it
// accepts exports to the same bytes, and its sessions load and encrypt
// without making libsignal panic.
func FuzzRestore(f *testing.F) {
	p := established(f)
	for _, d := range []*Device{p.v, p.o} {
		b, err := d.Export()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	fresh, err := NewDevice(Options{PreKeys: 1})
	if err != nil {
		f.Fatal(err)
	}
	b, err := fresh.Export()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(stateMagic + "\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := Restore(data, Options{})
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("error without ErrBadState: %v", err)
			}
			if hexRun.MatchString(err.Error()) {
				t.Fatalf("error %q may hold key bytes", err)
			}
			return
		}
		again, err := d.Export()
		if err != nil {
			t.Fatalf("Export of a restored device: %v", err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("restored from\n%s\nexports to\n%s", hex.Dump(data), hex.Dump(again))
		}
		d.Bundle()
		for k := range d.state.sessions {
			d.KeyTransport([]Recipient{{Address: Address{k.jid, k.device}}})
		}
	})
}

// TestRestoreSavedV1: devices saved by the first version of the format
// (testdata/state-v1, written by -update-state) restore, export to the
// same bytes, read the message that was on its way when they were saved,
// and go on talking. A change to the format that would lose the devices
// the widgets of visitors hold in their tabs fails here.
func TestRestoreSavedV1(t *testing.T) {
	dir := filepath.Join("testdata", "state-v1")
	if *updateState {
		p := established(t)
		receive(t, p.o, visitorJID, send(t, p.v, p.oAddr, "before the save"), "before the save")
		inFlight := send(t, p.o, p.vAddr, "on its way")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, d := range map[string]*Device{"visitor": p.v, "operator": p.o} {
			b, err := d.Export()
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, name+".bin"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "in-flight.xml"), inFlight.Marshal(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	load := func(name string) *Device {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name+".bin"))
		if err != nil {
			t.Fatal(err)
		}
		d, err := Restore(b, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if again, err := d.Export(); err != nil || !bytes.Equal(again, b) {
			t.Fatalf("%s exports to other bytes (%v)", name, err)
		}
		return d
	}
	v, o := load("visitor"), load("operator")
	vAddr, oAddr := Address{visitorJID, v.ID()}, Address{operatorJID, o.ID()}
	xml, err := os.ReadFile(filepath.Join(dir, "in-flight.xml"))
	if err != nil {
		t.Fatal(err)
	}
	e, err := ParseEncrypted(xml)
	if err != nil {
		t.Fatal(err)
	}
	receive(t, v, operatorJID, e, "on its way")
	receive(t, o, visitorJID, send(t, v, oAddr, "after the restore"), "after the restore")
	receive(t, v, operatorJID, send(t, o, vAddr, "welcome back"), "welcome back")
}
