package wire

import (
	"encoding/hex"
	"errors"
	"strings"
)

// A Fingerprint identifies a device's identity key: the 32 bytes of the
// Curve25519 public key, without the 0x05 type byte the wire form carries.
// Inside the program it is these bytes; between programs it is 64
// lower-case hex digits (MarshalText); to a person it is eight groups of
// eight (String).
//
// That is exactly what the clients show, checked against their sources:
// Conversations hex-encodes the serialized identity key, drops the first
// two digits (the type byte) and inserts a space after every eight digits
// (CryptoHelper.prettifyFingerprint, lower case); Dino does the same in
// lower case; Gajim's OMEMO (get_fingerprint in the plugin, later in Gajim
// itself) drops the same two digits, splits into eight words and shows
// them in upper case, four to a line. ParseFingerprint reads all of these.
type Fingerprint [32]byte

// ErrFingerprint means a text is not a fingerprint in any of the forms
// clients show.
var ErrFingerprint = errors.New("omemo: not a fingerprint")

// Fingerprint returns the fingerprint of an identity key.
func (k PublicKey) Fingerprint() Fingerprint { return Fingerprint(k) }

// String is the form for people: eight groups of eight lower-case hex
// digits, as Conversations and Dino show it.
func (f Fingerprint) String() string {
	h := hex.EncodeToString(f[:])
	var b strings.Builder
	b.Grow(len(h) + 7)
	for i := 0; i < len(h); i += 8 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(h[i : i+8])
	}
	return b.String()
}

// MarshalText is the form between programs: 64 lower-case hex digits.
func (f Fingerprint) MarshalText() ([]byte, error) {
	return []byte(hex.EncodeToString(f[:])), nil
}

// UnmarshalText reads any form ParseFingerprint reads.
func (f *Fingerprint) UnmarshalText(text []byte) error {
	v, err := ParseFingerprint(string(text))
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// ParseFingerprint reads a fingerprint as a person may paste it from any
// client: either case, spaces, line breaks or colons between digits, and
// the 66-digit form that keeps the type byte 05 in front.
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	if len(s) > 256 {
		return f, ErrFingerprint
	}
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r', ':':
			return -1
		}
		return r
	}, s)
	if len(s) == 66 && s[:2] == "05" {
		s = s[2:]
	}
	if len(s) != 64 {
		return f, ErrFingerprint
	}
	if _, err := hex.Decode(f[:], []byte(s)); err != nil {
		return Fingerprint{}, ErrFingerprint
	}
	return f, nil
}
