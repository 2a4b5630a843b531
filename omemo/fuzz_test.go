package omemo

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// Every parser gets arbitrary input: it must not panic, must fail with a
// sentinel, and what it accepts must survive a round trip.

func FuzzParseDeviceList(f *testing.F) {
	f.Add(DeviceList{1, 42, MaxDeviceID}.Marshal())
	f.Add([]byte(`<list xmlns="eu.siacs.conversations.axolotl"><device id="7" label="Dino"/></list>`))
	f.Add([]byte(`<list xmlns='eu.siacs.conversations.axolotl'><device id='0'/></list>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseDeviceList(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		again, err := ParseDeviceList(l.Marshal())
		if err != nil || !slices.Equal(again, l) {
			t.Fatalf("round trip of %v: %v, %v", l, again, err)
		}
	})
}

func FuzzParseBundle(f *testing.F) {
	d, err := NewDevice(Options{PreKeys: 3})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(d.Bundle().Marshal())
	f.Add([]byte(`<bundle xmlns='eu.siacs.conversations.axolotl'><signedPreKeyPublic signedPreKeyId='1'>BQ==</signedPreKeyPublic></bundle>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		again, err := ParseBundle(b.Marshal())
		if err != nil || fmt.Sprint(again) != fmt.Sprint(b) {
			t.Fatalf("round trip of %+v: %+v, %v", b, again, err)
		}
	})
}

func FuzzParseEncrypted(f *testing.F) {
	p := newPair(f)
	e, err := p.v.Encrypt([]byte("seed"), []Recipient{{p.oAddr, p.o.Bundle()}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(e.Marshal())
	kt, err := p.v.KeyTransport([]Recipient{{Address: p.oAddr}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(kt.Marshal())
	f.Add([]byte(`<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key prekey='1' rid='2'>AQID</key><iv>AAAAAAAAAAAAAAAAAAAAAA==</iv></header><payload/></encrypted>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEncrypted(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		again, err := ParseEncrypted(e.Marshal())
		if err != nil || fmt.Sprint(again) != fmt.Sprint(e) {
			t.Fatalf("round trip of %+v: %+v, %v", e, again, err)
		}
	})
}

func FuzzParseFingerprint(f *testing.F) {
	f.Add("00010203 04050607 08090a0b 0c0d0e0f 10111213 14151617 18191a1b 1c1d1e1f")
	f.Add("0500010203040506")
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := ParseFingerprint(s)
		if err != nil {
			if !errors.Is(err, ErrFingerprint) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		if again, err := ParseFingerprint(fp.String()); err != nil || again != fp {
			t.Fatalf("round trip of %v: %v, %v", fp, again, err)
		}
	})
}

// FuzzSignalMessage feeds libsignal's message decoders only what our
// checks let through: they index their input unchecked.
func FuzzSignalMessage(f *testing.F) {
	p := newPair(f)
	e, err := p.v.Encrypt([]byte("seed"), []Recipient{{p.oAddr, p.o.Bundle()}})
	if err != nil {
		f.Fatal(err)
	}
	pre := e.Keys[0].Data
	f.Add(pre, true)
	if _, err := p.o.Decrypt(visitorJID, e); err != nil {
		f.Fatal(err)
	}
	e, err = p.o.Encrypt([]byte("seed"), []Recipient{{Address: p.vAddr}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(e.Keys[0].Data, false)
	f.Add([]byte{0x33}, false)
	f.Add([]byte{0x33, 0x0a, 0x00}, true)
	f.Fuzz(func(t *testing.T, data []byte, prekey bool) {
		var err error
		if prekey {
			_, err = parsePreKeyMessage(data)
		} else {
			_, err = parseSignalMessage(data)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error without sentinel: %v", err)
		}
	})
}

// snapshot is everything Decrypt may change, as text.
func snapshot(d *Device) string {
	var b bytes.Buffer
	for _, k := range sortedKeys(d.state.sessions) {
		fmt.Fprintf(&b, "s %v %x\n", k, d.state.sessions[k])
	}
	for _, k := range sortedKeys(d.state.identities) {
		fmt.Fprintf(&b, "i %v %x\n", k, d.state.identities[k])
	}
	ids := make([]uint32, 0, len(d.state.preKeys))
	for id := range d.state.preKeys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	fmt.Fprintf(&b, "p %v %d\n", ids, d.nextPre)
	return b.String()
}

func sortedKeys[V any](m map[addrKey]V) []addrKey {
	keys := make([]addrKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y addrKey) int {
		if c := bytes.Compare([]byte(x.jid), []byte(y.jid)); c != 0 {
			return c
		}
		return int(int64(x.device) - int64(y.device))
	})
	return keys
}

// FuzzDecrypt sends the operator's device arbitrary keys, IVs and payloads
// from a device it has a session with, and from one it has not. A message
// that does not decrypt must leave the device exactly as it was.
func FuzzDecrypt(f *testing.F) {
	p := established(f)
	stranger, err := NewDevice(Options{PreKeys: 1})
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range []func() (*Encrypted, error){
		func() (*Encrypted, error) { return p.v.Encrypt([]byte("seed"), []Recipient{{Address: p.oAddr}}) },
		func() (*Encrypted, error) { return p.v.KeyTransport([]Recipient{{Address: p.oAddr}}) },
		func() (*Encrypted, error) {
			return stranger.Encrypt([]byte("seed"), []Recipient{{p.oAddr, p.o.Bundle()}})
		},
	} {
		e, err := e()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.SID == stranger.ID(), e.Keys[0].PreKey, e.Keys[0].Data, e.IV, e.Payload)
	}
	f.Fuzz(func(t *testing.T, fromStranger, prekey bool, key, iv, payload []byte) {
		e := &Encrypted{SID: p.v.ID(), Keys: []Key{{RID: p.o.ID(), PreKey: prekey, Data: key}}, IV: iv, Payload: payload}
		from := visitorJID
		if fromStranger {
			e.SID, from = stranger.ID(), "stranger@example.org"
		}
		before := snapshot(p.o)
		m, err := p.o.Decrypt(from, e)
		if err != nil {
			if after := snapshot(p.o); after != before {
				t.Fatalf("failed Decrypt (%v) changed the device", err)
			}
			for _, s := range []error{ErrMalformed, ErrDecrypt, ErrReplay, ErrPayload, ErrIdentityChanged, ErrNoSession} {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error without sentinel: %v", err)
		}
		if m.From.Device != e.SID {
			t.Fatalf("decrypted from %v, sid %d", m.From, e.SID)
		}
	})
}
