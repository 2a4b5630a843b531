package wire

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// Every parser gets arbitrary input: it must not panic, must fail with a
// sentinel, and what it accepts must survive a round trip. (Package omemo
// fuzzes the same parsers again with seeds its engine writes.)

func fuzzErr(t *testing.T, err error) {
	if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
		t.Fatalf("error without sentinel: %v", err)
	}
}

func FuzzParseDeviceList(f *testing.F) {
	f.Add(DeviceList{1, 42, MaxDeviceID}.Marshal())
	f.Add([]byte(`<list xmlns="eu.siacs.conversations.axolotl"><device id="7" label="Dino"/></list>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseDeviceList(data)
		if err != nil {
			fuzzErr(t, err)
			return
		}
		again, err := ParseDeviceList(l.Marshal())
		if err != nil || !slices.Equal(again, l) {
			t.Fatalf("round trip of %v: %v, %v", l, again, err)
		}
	})
}

func FuzzParseBundle(f *testing.F) {
	b := &Bundle{SignedPreKeyID: 1, PreKeys: []PreKey{{ID: 1}, {ID: 2}}}
	b.IdentityKey[0], b.SignedPreKey[0] = 9, 8
	f.Add(b.Marshal())
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBundle(data)
		if err != nil {
			fuzzErr(t, err)
			return
		}
		again, err := ParseBundle(b.Marshal())
		if err != nil || fmt.Sprint(again) != fmt.Sprint(b) {
			t.Fatalf("round trip of %+v: %+v, %v", b, again, err)
		}
	})
}

func FuzzParseEncrypted(f *testing.F) {
	e := &Encrypted{SID: 1, Keys: []Key{{RID: 2, PreKey: true, Data: []byte{1, 2, 3}}}, IV: make([]byte, 12), Payload: []byte("x")}
	f.Add(e.Marshal())
	f.Add([]byte(`<encrypted xmlns='eu.siacs.conversations.axolotl'><header sid='1'><key rid='2'>AQID</key><iv>` +
		base64.StdEncoding.EncodeToString(make([]byte, 16)) + `</iv></header></encrypted>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEncrypted(data)
		if err != nil {
			fuzzErr(t, err)
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
	f.Fuzz(func(t *testing.T, s string) {
		fp, err := ParseFingerprint(s)
		if err != nil {
			if !errors.Is(err, ErrFingerprint) {
				t.Fatalf("error without sentinel: %v", err)
			}
			return
		}
		if again, err := ParseFingerprint(fp.String()); err != nil || again != fp || !bytes.Equal(fp[:], again[:]) {
			t.Fatalf("round trip of %v: %v, %v", fp, again, err)
		}
	})
}
