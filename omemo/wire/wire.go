// Package wire is OMEMO's XML, as deployed clients (Gajim, Conversations,
// Dino, Monal, Profanity) write it under XEP-0384 version 0.3, namespace
// eu.siacs.conversations.axolotl: the device list, the bundle, the
// <encrypted/> element, and identity-key fingerprints.
//
//	node eu.siacs.conversations.axolotl.devicelist        DeviceList
//	  <list xmlns='eu.siacs.conversations.axolotl'><device id='31415'/></list>
//	node eu.siacs.conversations.axolotl.bundles:31415     Bundle
//	  identityKey, signedPreKeyPublic (+ signedPreKeyId, signedPreKeySignature),
//	  prekeys/preKeyPublic (+ preKeyId) — Curve25519 keys, base64 of 33 bytes
//	<encrypted xmlns='eu.siacs.conversations.axolotl'>    Encrypted
//	  <header sid='27183'><key rid='31415' [prekey='true']>…</key><iv>…</iv></header>
//	  <payload>…</payload>
//	</encrypted>
//
// It is apart from package omemo (the engine: sessions, the Double
// Ratchet, payload encryption) so that a program that only moves and
// checks these elements, such as otrdesk's component, does not link the
// Signal library the engine is built on (GPL-3.0, and about 1.1 MB of
// WebAssembly). It imports nothing outside the standard library; package
// omemo uses it for all of its XML.
//
// The parsers read under hard bounds (element size, devices, prekeys,
// keys, key and payload sizes), never panic, and return errors wrapping
// ErrMalformed or ErrTooLarge; the Marshal methods write the canonical form.
package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// NS is the namespace of OMEMO as deployed clients speak it (XEP-0384
// version 0.3): the device list, the bundle and the encrypted element all
// live in it.
const NS = "eu.siacs.conversations.axolotl"

// DeviceListNode is the PEP node an account publishes its device list on.
const DeviceListNode = NS + ".devicelist"

// BundleNode is the PEP node a device publishes its bundle on.
func BundleNode(device uint32) string {
	return NS + ".bundles:" + strconv.FormatUint(uint64(device), 10)
}

// Bounds on what a parser accepts. Real accounts have a handful of devices
// (stale ones included), clients publish 100 prekeys (Conversations, Gajim,
// python-omemo, Profanity), and a message goes to the devices of two
// accounts; each bound leaves room above that and stops a peer from making
// us allocate or compute without limit.
const (
	// MaxElementBytes is the largest element text a parser reads.
	MaxElementBytes = 256 << 10
	// MaxDevices is the most device IDs a device list may hold.
	MaxDevices = 128
	// MaxPreKeys is the most one-time prekeys a bundle may hold.
	MaxPreKeys = 200
	// MaxKeys is the most <key> elements one header may hold.
	MaxKeys = 128
	// MaxKeyBytes is the largest decoded <key>: a Signal prekey message
	// carrying 32 bytes of key material is about 200 bytes.
	MaxKeyBytes = 1024
	// MaxPayloadBytes is the largest decoded <payload> (and so the
	// largest plaintext), the component's default body limit.
	MaxPayloadBytes = 64 << 10
	// MaxDeviceID is the largest device ID: clients pick IDs in
	// 1..2^31-1 so that Java's signed int holds them.
	MaxDeviceID = 1<<31 - 1
)

// Errors the parsers return, wrapped with the element and field at fault.
var (
	ErrMalformed = errors.New("omemo: malformed element")
	ErrTooLarge  = errors.New("omemo: element over a bound")
)

// A PublicKey is a Curve25519 public key: 32 bytes inside the program. On
// the wire (in bundles and Signal messages) it is 33 bytes, the type byte
// 0x05 first.
type PublicKey [32]byte

const djbType = 0x05

// Wire is the 33-byte form keys have in bundles and Signal messages.
func (k PublicKey) Wire() []byte {
	b := make([]byte, 33)
	b[0] = djbType
	copy(b[1:], k[:])
	return b
}

// ParsePublicKey reads the 33-byte wire form.
func ParsePublicKey(b []byte) (PublicKey, bool) {
	var k PublicKey
	if len(b) != 33 || b[0] != djbType {
		return k, false
	}
	copy(k[:], b[1:])
	return k, true
}

// A DeviceList is the set of device IDs an account publishes:
//
//	<list xmlns='eu.siacs.conversations.axolotl'>
//	  <device id='12345'/>
//	</list>
//
// Dino and newer Conversations add a label attribute; it is ignored.
type DeviceList []uint32

type xmlDeviceList struct {
	XMLName xml.Name `xml:"eu.siacs.conversations.axolotl list"`
	Devices []struct {
		ID string `xml:"id,attr"`
	} `xml:"device"`
}

// ParseDeviceList reads a <list/> element. Duplicate IDs are kept once, in
// their first position.
func ParseDeviceList(data []byte) (DeviceList, error) {
	var x xmlDeviceList
	if err := unmarshal(data, &x, "device list"); err != nil {
		return nil, err
	}
	if len(x.Devices) > MaxDevices {
		return nil, fmt.Errorf("%w: device list: %d devices", ErrTooLarge, len(x.Devices))
	}
	list := make(DeviceList, 0, len(x.Devices))
	seen := make(map[uint32]bool, len(x.Devices))
	for _, d := range x.Devices {
		id, ok := parseDeviceID(d.ID)
		if !ok {
			return nil, fmt.Errorf("%w: device list: device id", ErrMalformed)
		}
		if !seen[id] {
			seen[id] = true
			list = append(list, id)
		}
	}
	return list, nil
}

// Marshal returns the <list/> element.
func (l DeviceList) Marshal() []byte {
	var b bytes.Buffer
	b.WriteString(`<list xmlns='` + NS + `'>`)
	for _, id := range l {
		fmt.Fprintf(&b, `<device id='%d'/>`, id)
	}
	b.WriteString(`</list>`)
	return b.Bytes()
}

// A PreKey is one one-time prekey of a bundle.
type PreKey struct {
	ID  uint32
	Key PublicKey
}

// A Bundle is what a device publishes so that others can start sessions
// with it without it being online:
//
//	<bundle xmlns='eu.siacs.conversations.axolotl'>
//	  <signedPreKeyPublic signedPreKeyId='1'>base64</signedPreKeyPublic>
//	  <signedPreKeySignature>base64</signedPreKeySignature>
//	  <identityKey>base64</identityKey>
//	  <prekeys>
//	    <preKeyPublic preKeyId='1'>base64</preKeyPublic>
//	  </prekeys>
//	</bundle>
//
// The keys are 33 bytes on the wire (type byte 0x05 first), the signature
// 64 bytes: XEdDSA by the identity key over the signed prekey's wire form.
// ParseBundle checks the form; the signature is checked when a session is
// built from the bundle.
type Bundle struct {
	SignedPreKeyID uint32
	SignedPreKey   PublicKey
	Signature      [64]byte
	IdentityKey    PublicKey
	PreKeys        []PreKey
}

type xmlBundle struct {
	XMLName      xml.Name `xml:"eu.siacs.conversations.axolotl bundle"`
	SignedPreKey struct {
		ID   string `xml:"signedPreKeyId,attr"`
		Text string `xml:",chardata"`
	} `xml:"signedPreKeyPublic"`
	Signature   string `xml:"signedPreKeySignature"`
	IdentityKey string `xml:"identityKey"`
	PreKeys     struct {
		Keys []struct {
			ID   string `xml:"preKeyId,attr"`
			Text string `xml:",chardata"`
		} `xml:"preKeyPublic"`
	} `xml:"prekeys"`
}

// ParseBundle reads a <bundle/> element. A bundle without one-time prekeys
// is accepted (a session can be built from the signed prekey alone).
func ParseBundle(data []byte) (*Bundle, error) {
	var x xmlBundle
	if err := unmarshal(data, &x, "bundle"); err != nil {
		return nil, err
	}
	if len(x.PreKeys.Keys) > MaxPreKeys {
		return nil, fmt.Errorf("%w: bundle: %d prekeys", ErrTooLarge, len(x.PreKeys.Keys))
	}
	b := &Bundle{}
	var ok bool
	if b.SignedPreKeyID, ok = parseKeyID(x.SignedPreKey.ID); !ok {
		return nil, fmt.Errorf("%w: bundle: signedPreKeyId", ErrMalformed)
	}
	if b.SignedPreKey, ok = parseKeyText(x.SignedPreKey.Text); !ok {
		return nil, fmt.Errorf("%w: bundle: signedPreKeyPublic", ErrMalformed)
	}
	sig, ok := decodeBase64(x.Signature, 64)
	if !ok || len(sig) != 64 {
		return nil, fmt.Errorf("%w: bundle: signedPreKeySignature", ErrMalformed)
	}
	copy(b.Signature[:], sig)
	if b.IdentityKey, ok = parseKeyText(x.IdentityKey); !ok {
		return nil, fmt.Errorf("%w: bundle: identityKey", ErrMalformed)
	}
	seen := make(map[uint32]bool, len(x.PreKeys.Keys))
	for _, k := range x.PreKeys.Keys {
		var pk PreKey
		if pk.ID, ok = parseKeyID(k.ID); !ok {
			return nil, fmt.Errorf("%w: bundle: preKeyId", ErrMalformed)
		}
		if pk.Key, ok = parseKeyText(k.Text); !ok {
			return nil, fmt.Errorf("%w: bundle: preKeyPublic", ErrMalformed)
		}
		if seen[pk.ID] {
			return nil, fmt.Errorf("%w: bundle: preKeyId %d twice", ErrMalformed, pk.ID)
		}
		seen[pk.ID] = true
		b.PreKeys = append(b.PreKeys, pk)
	}
	return b, nil
}

// Marshal returns the <bundle/> element.
func (b *Bundle) Marshal() []byte {
	var w bytes.Buffer
	enc := base64.StdEncoding
	w.WriteString(`<bundle xmlns='` + NS + `'>`)
	fmt.Fprintf(&w, `<signedPreKeyPublic signedPreKeyId='%d'>%s</signedPreKeyPublic>`,
		b.SignedPreKeyID, enc.EncodeToString(b.SignedPreKey.Wire()))
	fmt.Fprintf(&w, `<signedPreKeySignature>%s</signedPreKeySignature>`, enc.EncodeToString(b.Signature[:]))
	fmt.Fprintf(&w, `<identityKey>%s</identityKey>`, enc.EncodeToString(b.IdentityKey.Wire()))
	w.WriteString(`<prekeys>`)
	for _, k := range b.PreKeys {
		fmt.Fprintf(&w, `<preKeyPublic preKeyId='%d'>%s</preKeyPublic>`, k.ID, enc.EncodeToString(k.Key.Wire()))
	}
	w.WriteString(`</prekeys></bundle>`)
	return w.Bytes()
}

// A Key is one recipient device's share of a message: the Signal message
// (a prekey message while the session is not yet confirmed by the peer)
// that carries the payload key and tag.
type Key struct {
	RID    uint32
	PreKey bool
	Data   []byte
}

// Encrypted is an <encrypted/> element:
//
//	<encrypted xmlns='eu.siacs.conversations.axolotl'>
//	  <header sid='27183'>
//	    <key rid='31415'>base64</key>
//	    <key prekey='true' rid='12321'>base64</key>
//	    <iv>base64</iv>
//	  </header>
//	  <payload>base64</payload>
//	</encrypted>
//
// Without a payload it is a key transport element: it only moves the
// ratchet on (clients send one to confirm a session built from a prekey
// message). Conversations and Gajim write prekey='true', others '1'.
type Encrypted struct {
	SID     uint32
	Keys    []Key
	IV      []byte
	Payload []byte // nil for a key transport element
}

type xmlEncrypted struct {
	XMLName xml.Name `xml:"eu.siacs.conversations.axolotl encrypted"`
	Header  struct {
		SID  string `xml:"sid,attr"`
		Keys []struct {
			RID    string `xml:"rid,attr"`
			PreKey string `xml:"prekey,attr"`
			Text   string `xml:",chardata"`
		} `xml:"key"`
		IV []string `xml:"iv"`
	} `xml:"header"`
	Payload []string `xml:"payload"`
}

// ParseEncrypted reads an <encrypted/> element. The IV is 12 bytes (16 in
// messages from Conversations before 2018, still accepted by Gajim and by
// this package).
func ParseEncrypted(data []byte) (*Encrypted, error) {
	var x xmlEncrypted
	if err := unmarshal(data, &x, "encrypted"); err != nil {
		return nil, err
	}
	if len(x.Header.Keys) > MaxKeys {
		return nil, fmt.Errorf("%w: encrypted: %d keys", ErrTooLarge, len(x.Header.Keys))
	}
	e := &Encrypted{}
	var ok bool
	if e.SID, ok = parseDeviceID(x.Header.SID); !ok {
		return nil, fmt.Errorf("%w: encrypted: header sid", ErrMalformed)
	}
	for _, k := range x.Header.Keys {
		var key Key
		if key.RID, ok = parseDeviceID(k.RID); !ok {
			return nil, fmt.Errorf("%w: encrypted: key rid", ErrMalformed)
		}
		switch k.PreKey {
		case "true", "1":
			key.PreKey = true
		case "", "false", "0":
		default:
			return nil, fmt.Errorf("%w: encrypted: key prekey", ErrMalformed)
		}
		if key.Data, ok = decodeBase64(k.Text, MaxKeyBytes); !ok || len(key.Data) == 0 {
			return nil, fmt.Errorf("%w: encrypted: key", ErrMalformed)
		}
		e.Keys = append(e.Keys, key)
	}
	if len(x.Header.IV) != 1 {
		return nil, fmt.Errorf("%w: encrypted: %d iv elements", ErrMalformed, len(x.Header.IV))
	}
	if e.IV, ok = decodeBase64(x.Header.IV[0], 16); !ok || (len(e.IV) != 12 && len(e.IV) != 16) {
		return nil, fmt.Errorf("%w: encrypted: iv", ErrMalformed)
	}
	switch len(x.Payload) {
	case 0:
	case 1:
		if e.Payload, ok = decodeBase64(x.Payload[0], MaxPayloadBytes+16); !ok {
			return nil, fmt.Errorf("%w: encrypted: payload", ErrMalformed)
		}
		if e.Payload == nil {
			e.Payload = []byte{}
		}
	default:
		return nil, fmt.Errorf("%w: encrypted: %d payload elements", ErrMalformed, len(x.Payload))
	}
	return e, nil
}

// Marshal returns the <encrypted/> element.
func (e *Encrypted) Marshal() []byte {
	var w bytes.Buffer
	enc := base64.StdEncoding
	w.WriteString(`<encrypted xmlns='` + NS + `'>`)
	fmt.Fprintf(&w, `<header sid='%d'>`, e.SID)
	for _, k := range e.Keys {
		if k.PreKey {
			fmt.Fprintf(&w, `<key prekey='true' rid='%d'>%s</key>`, k.RID, enc.EncodeToString(k.Data))
		} else {
			fmt.Fprintf(&w, `<key rid='%d'>%s</key>`, k.RID, enc.EncodeToString(k.Data))
		}
	}
	fmt.Fprintf(&w, `<iv>%s</iv></header>`, enc.EncodeToString(e.IV))
	if e.Payload != nil {
		fmt.Fprintf(&w, `<payload>%s</payload>`, enc.EncodeToString(e.Payload))
	}
	w.WriteString(`</encrypted>`)
	return w.Bytes()
}

// unmarshal bounds the input, then decodes one element strictly: nothing
// but whitespace may follow it.
func unmarshal(data []byte, v any, what string) error {
	if len(data) > MaxElementBytes {
		return fmt.Errorf("%w: %s: %d bytes", ErrTooLarge, what, len(data))
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	if err := d.Decode(v); err != nil {
		// encoding/xml's text may quote the input; name only the element.
		return fmt.Errorf("%w: %s", ErrMalformed, what)
	}
	for {
		tok, err := d.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("%w: %s: after the element", ErrMalformed, what)
		}
		if cd, ok := tok.(xml.CharData); !ok || len(bytes.TrimSpace(cd)) != 0 {
			return fmt.Errorf("%w: %s: after the element", ErrMalformed, what)
		}
	}
}

// parseDeviceID reads a device ID: decimal digits only, 1..MaxDeviceID.
func parseDeviceID(s string) (uint32, bool) {
	v, ok := parseDecimal(s)
	if !ok || v == 0 || v > MaxDeviceID {
		return 0, false
	}
	return uint32(v), true
}

// parseKeyID reads a prekey or signed prekey ID, at most MaxKeyID; 0 is
// allowed because Signal's last-resort prekey has it.
func parseKeyID(s string) (uint32, bool) {
	v, ok := parseDecimal(s)
	if !ok || v > MaxKeyID {
		return 0, false
	}
	return uint32(v), true
}

// MaxKeyID is the largest prekey or signed prekey ID: libsignal keeps them
// below 2^24.
const MaxKeyID = 1<<24 - 1

func parseDecimal(s string) (uint64, bool) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 10 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

func parseKeyText(s string) (PublicKey, bool) {
	b, ok := decodeBase64(s, 33)
	if !ok {
		return PublicKey{}, false
	}
	return ParsePublicKey(b)
}

// decodeBase64 decodes standard base64, ignoring whitespace (Android's
// encoder wraps lines) and accepting missing padding, and refuses a result
// longer than max before decoding it.
func decodeBase64(s string, max int) ([]byte, bool) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r':
			return -1
		}
		return r
	}, s)
	s = strings.TrimRight(s, "=")
	if base64.RawStdEncoding.DecodedLen(len(s)) > max {
		return nil, false
	}
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		return nil, false
	}
	return b, true
}
