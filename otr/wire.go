package otr

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
)

// Kind says what an XMPP body is, as far as OTR is concerned.
type Kind uint8

const (
	// KindPlaintext is a body with no OTR marker at all.
	KindPlaintext Kind = iota
	// KindTaggedPlaintext is plaintext carrying the whitespace tag;
	// Info.Versions holds the versions it offers.
	KindTaggedPlaintext
	// KindQuery is an OTR query message; Info.Versions holds the versions
	// it offers.
	KindQuery
	// KindError is an OTR error message ("?OTR Error:"); ErrorText gives
	// its text.
	KindError
	// KindEncoded is a binary OTR message ("?OTR:" base64 "."); Info.Version,
	// Info.Type and, for version 3, the instance tags come from its header.
	KindEncoded
	// KindFragment is one fragment of an encoded message; Info.Version,
	// K, N and, for version 3, the instance tags come from its header.
	KindFragment
	// KindUnknown is a body that contains "?OTR" but is none of the forms
	// above: an OTR version 1 message, an encoded message whose header does
	// not decode, a fragment whose header does not parse. libotr drops such
	// a message (OTRL_MSGTYPE_UNKNOWN, or a malformed fragment).
	KindUnknown
)

var kindNames = [...]string{"plaintext", "tagged plaintext", "query", "error", "encoded", "fragment", "unknown"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + decimal(int(k)) + ")"
}

// MessageType is the type byte of an encoded OTR message.
type MessageType uint8

// The encoded message types of OTR versions 2 and 3.
const (
	DHCommit  MessageType = 0x02
	DHKey     MessageType = 0x0a
	RevealSig MessageType = 0x11
	Sig       MessageType = 0x12
	Data      MessageType = 0x03
)

func (t MessageType) String() string {
	switch t {
	case DHCommit:
		return "DH-Commit"
	case DHKey:
		return "DH-Key"
	case RevealSig:
		return "Reveal Signature"
	case Sig:
		return "Signature"
	case Data:
		return "Data"
	}
	return "MessageType(0x" + padded(hexDigits(uint32(t)), 2) + ")"
}

// Version bits of Info.Versions, and the versions argument of QueryMessage
// and WhitespaceTag: bit v set means version v is offered.
const (
	OfferV1 uint8 = 1 << 1
	OfferV2 uint8 = 1 << 2
	OfferV3 uint8 = 1 << 3
)

// MinInstanceTag is the smallest valid instance tag; smaller non-zero tags
// are reserved, and a receiver tag of 0 means "not known yet".
const MinInstanceTag = 0x00000100

// Info is what Classify learns about a body.
type Info struct {
	Kind     Kind
	Versions uint8 // OfferV1|OfferV2|OfferV3 bits offered by a query or whitespace tag
	Version  int   // 2 or 3 for an encoded message or fragment
	Type     MessageType
	// SenderTag and ReceiverTag are the instance tags of a version 3
	// encoded message or fragment.
	SenderTag, ReceiverTag uint32
	K, N                   int // fragment k of n
}

// Markers and tags of the wire format (Protocol-v3 "OTR messages").
var (
	markOTR       = []byte("?OTR")
	markFragV3    = []byte("?OTR|")
	markFragV2    = []byte("?OTR,")
	markEncoded   = []byte("?OTR:")
	markError     = []byte("?OTR Error:")
	whitespaceTag = []byte("\x20\x09\x20\x20\x09\x09\x09\x09\x20\x09\x20\x09\x20\x09\x20\x20")
	tagV1         = []byte("\x20\x09\x20\x09\x20\x20\x09\x20")
	tagV2         = []byte("\x20\x20\x09\x09\x20\x20\x09\x20")
	tagV3         = []byte("\x20\x20\x09\x09\x20\x20\x09\x09")
)

// Classify says what body is. It follows libotr 4.1.1: a fragment marker
// ("?OTR|", then "?OTR,") anywhere in the body wins; otherwise the first
// "?OTR" decides; a body without one is plaintext, tagged if it holds the
// whitespace tag. For an encoded message it decodes only the header (16
// base64 characters for version 3, 4 for version 2) and does not check the
// rest. It does not allocate.
func Classify(body []byte) Info {
	i := bytes.Index(body, markOTR)
	if i < 0 {
		if t := indexWhitespaceTag(body); t >= 0 {
			return Info{Kind: KindTaggedPlaintext, Versions: tagVersions(body[t+len(whitespaceTag):])}
		}
		return Info{Kind: KindPlaintext}
	}
	// One pass over the "?OTR" markers: "?OTR|" anywhere wins, then the
	// first "?OTR,".
	v2 := -1
	for j := i; j >= 0; {
		if j+4 < len(body) {
			switch body[j+4] {
			case '|':
				return classifyFragment(body[j:])
			case ',':
				if v2 < 0 {
					v2 = j
				}
			}
		}
		next := bytes.Index(body[j+4:], markOTR)
		if next < 0 {
			break
		}
		j += 4 + next
	}
	if v2 >= 0 {
		return classifyFragment(body[v2:])
	}
	m := body[i:]
	switch {
	case bytes.HasPrefix(m, markEncoded):
		return classifyEncoded(m[len(markEncoded):])
	case len(m) > 4 && (m[4] == '?' || m[4] == 'v'):
		return Info{Kind: KindQuery, Versions: queryVersions(m[4:])}
	case bytes.HasPrefix(m, markError):
		return Info{Kind: KindError}
	}
	return Info{Kind: KindUnknown}
}

func classifyFragment(b []byte) Info {
	f, ok := parseFragmentHeader(b)
	if !ok {
		return Info{Kind: KindUnknown}
	}
	return Info{Kind: KindFragment, Version: f.Version, SenderTag: f.SenderTag, ReceiverTag: f.ReceiverTag, K: f.K, N: f.N}
}

// indexWhitespaceTag finds the whitespace tag. The tag's first tab is its
// second byte, and most text has no tab at all: looking for a tab first is
// several times faster than searching for the 16-byte tag.
func indexWhitespaceTag(body []byte) int {
	t := bytes.IndexByte(body, '\t')
	if t < 0 {
		return -1
	}
	start := max(t-1, 0)
	if r := bytes.Index(body[start:], whitespaceTag); r >= 0 {
		return start + r
	}
	return -1
}

// tagVersions reads the 8-byte version tags that follow the whitespace tag
// base: groups of eight spaces and tabs, unknown groups skipped.
func tagVersions(b []byte) uint8 {
	var v uint8
	for len(b) >= 8 {
		for _, c := range b[:8] {
			if c != ' ' && c != '\t' {
				return v
			}
		}
		switch {
		case bytes.Equal(b[:8], tagV1):
			v |= OfferV1
		case bytes.Equal(b[:8], tagV2):
			v |= OfferV2
		case bytes.Equal(b[:8], tagV3):
			v |= OfferV3
		}
		b = b[8:]
	}
	return v
}

// queryVersions reads what follows "?OTR" in a query: "?" for version 1,
// then optionally "v" and version digits up to "?".
func queryVersions(b []byte) uint8 {
	var v uint8
	if len(b) > 0 && b[0] == '?' {
		v |= OfferV1
		b = b[1:]
	}
	if len(b) > 0 && b[0] == 'v' {
		for _, c := range b[1:] {
			if c == '?' {
				break
			}
			if c >= '2' && c <= '7' { // version 1 is only "?OTR?"
				v |= 1 << (c - '0')
			}
		}
	}
	return v
}

// classifyEncoded decodes the header of an encoded message; b is what
// follows "?OTR:".
func classifyEncoded(b []byte) Info {
	var hdr [12]byte
	need := 4 // version and type: 3 bytes
	if len(b) >= 3 && string(b[:3]) == "AAM" {
		need = 16 // version, type, two instance tags: 11 bytes
	}
	if len(b) < need {
		return Info{Kind: KindUnknown}
	}
	if _, err := base64.StdEncoding.Decode(hdr[:], b[:need]); err != nil {
		return Info{Kind: KindUnknown}
	}
	version := binary.BigEndian.Uint16(hdr[0:2])
	t := MessageType(hdr[2])
	switch t {
	case DHCommit, DHKey, RevealSig, Sig, Data:
	default:
		return Info{Kind: KindUnknown}
	}
	switch version {
	case 2:
		return Info{Kind: KindEncoded, Version: 2, Type: t}
	case 3:
		return Info{Kind: KindEncoded, Version: 3, Type: t,
			SenderTag: binary.BigEndian.Uint32(hdr[3:7]), ReceiverTag: binary.BigEndian.Uint32(hdr[7:11])}
	}
	return Info{Kind: KindUnknown}
}

// ErrorText returns the human-readable text of an OTR error message (what
// follows "?OTR Error:", without leading spaces) and whether body is one.
func ErrorText(body []byte) (string, bool) {
	if Classify(body).Kind != KindError {
		return "", false
	}
	i := bytes.Index(body, markError)
	return string(bytes.TrimLeft(body[i+len(markError):], " ")), true
}

// QueryMessage returns the OTR query message offering the versions set in
// versions (OfferV2|OfferV3 gives "?OTRv23?"). Version 1 is written in the
// old form ("?OTR?v2?"). No versions give "?OTRv?".
func QueryMessage(versions uint8) string {
	b := []byte("?OTR")
	if versions&OfferV1 != 0 {
		b = append(b, '?')
		if versions&^OfferV1 == 0 {
			return string(b)
		}
	}
	b = append(b, 'v')
	for v := byte(2); v <= 7; v++ {
		if versions&(1<<v) != 0 {
			b = append(b, '0'+v)
		}
	}
	return string(append(b, '?'))
}

// WhitespaceTag returns the whitespace tag offering the versions set in
// versions, to be appended to a plaintext message.
func WhitespaceTag(versions uint8) string {
	b := append([]byte(nil), whitespaceTag...)
	if versions&OfferV1 != 0 {
		b = append(b, tagV1...)
	}
	if versions&OfferV2 != 0 {
		b = append(b, tagV2...)
	}
	if versions&OfferV3 != 0 {
		b = append(b, tagV3...)
	}
	return string(b)
}

// ErrorMessage returns an OTR error message carrying text, in libotr's form
// ("?OTR Error: " and the text).
func ErrorMessage(text string) string { return "?OTR Error: " + text }

// EncodeMessage wraps a binary OTR message for the wire: "?OTR:", its
// base64 and ".".
func EncodeMessage(msg []byte) string {
	b := make([]byte, 0, len(markEncoded)+base64.StdEncoding.EncodedLen(len(msg))+1)
	b = append(b, markEncoded...)
	b = base64.StdEncoding.AppendEncode(b, msg)
	return string(append(b, '.'))
}

// Errors of the wire format.
var (
	ErrNotEncoded  = errors.New("otr: not an encoded OTR message")
	ErrBadEncoding = errors.New("otr: bad base64 in an encoded OTR message")
)

// DecodeMessage returns the binary message of an encoded OTR message: the
// base64 between the first "?OTR:" and the next ".", as libotr reads it.
func DecodeMessage(body []byte) ([]byte, error) {
	i := bytes.Index(body, markEncoded)
	if i < 0 {
		return nil, ErrNotEncoded
	}
	b := body[i+len(markEncoded):]
	end := bytes.IndexByte(b, '.')
	if end < 0 {
		return nil, wrap("otr: decoding message: no terminating '.'", ErrNotEncoded)
	}
	msg, err := base64.StdEncoding.AppendDecode(nil, b[:end])
	if err != nil {
		return nil, wrap("otr: decoding message", ErrBadEncoding)
	}
	return msg, nil
}
