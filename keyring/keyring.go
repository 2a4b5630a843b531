// Package keyring is the signed list of keys a skin's operators may use: the
// admin signs it offline with an Ed25519 key, otrdesk serves it as signed at
// /skins/<name>.keyring, and a page that pins the admin's public key (the
// widget's data-signer attribute) trusts exactly the keys in it. Rotating or
// revoking a key then needs a new keyring, not a new page.
//
// # Format (version 1)
//
// ASCII text, one LF after every line, nothing else:
//
//	otrdesk-keyring 1
//	skin <skin name>
//	serial <decimal uint64, no leading zeros>
//	not-after <RFC 3339 UTC, whole seconds: 2026-12-21T06:00:00Z>
//	key <kind> <value>          zero or more
//	signature <standard padded base64 of the 64-byte Ed25519 signature>
//
// The signature covers every byte before the "signature " line, the LF that
// ends the last key line included. Nothing may follow the signature line's
// LF. Key kinds: "otr" (value: the fingerprint as 40 upper-case hex digits)
// and "omemo" (value: the identity key in lower-case hex); a reader keeps
// other kinds and trusts nothing from them, so new key types need no new
// version.
//
// Every field has exactly one spelling (no leading zeros, no lower-case OTR
// fingerprints, no CR, no trailing space, canonical base64), so the bytes a
// signer made and the bytes a reader checks are the same bytes: nothing is
// decoded and re-encoded on the way. The widget's web/src/keyring.js reads
// the same format; the vectors in testdata/vectors.json hold both to it.
//
// The flow:
//
//	admin machine:  Keyring{...} ──Sign(private key)──► signed bytes ──PUT /admin/v1──► store
//	browser:        GET /skins/<name>.keyring ──verify(pinned public key, skin, now, last serial)──► trusted keys
//
// The service in the middle can withhold a keyring or serve an old one; it
// cannot make one. Serials only grow and the widget remembers the highest it
// has seen, and not-after bounds how long an old keyring can be replayed.
package keyring

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Version is the format version this package reads and writes.
const Version = 1

// Limits on what a keyring may hold: far above any real skin, low enough
// that a hostile service cannot make a reader do much work.
const (
	MaxSize     = 64 << 10 // bytes of the whole signed text
	MaxKeys     = 256
	maxKindLen  = 32
	maxValueLen = 512
)

// The kinds of key this version knows.
const (
	KindOTR   = "otr"
	KindOMEMO = "omemo"
)

// Key is one key the keyring vouches for.
type Key struct {
	Kind  string `json:"kind"`  // "otr", "omemo", or a kind a later version adds
	Value string `json:"value"` // canonical text: see the package comment
}

// Keyring is the content of a keyring, without its signature.
type Keyring struct {
	Skin     string
	Serial   uint64
	NotAfter time.Time // whole seconds; compared in UTC
	Keys     []Key
}

// Signed is a parsed keyring with the bytes its signature covers. Its
// signature is not checked until Verify.
type Signed struct {
	Keyring
	Body      []byte // every byte before the "signature " line
	Signature []byte // 64 bytes
}

// Errors callers can test. Parse returns ErrMalformed (or ErrVersion for a
// well-formed first line with another version); Verify adds ErrSignature;
// Check the three refusals a reader makes of a good signature.
var (
	ErrMalformed = errors.New("keyring: malformed")
	ErrVersion   = errors.New("keyring: unknown format version")
	ErrSignature = errors.New("keyring: the signature does not verify with the signer's key")
	ErrOtherSkin = errors.New("keyring: signed for another skin")
	ErrExpired   = errors.New("keyring: expired")
	ErrOldSerial = errors.New("keyring: serial lower than one seen before")
)

const (
	header       = "otrdesk-keyring 1\n"
	headerPrefix = "otrdesk-keyring "
	timeLayout   = "2006-01-02T15:04:05Z"
	sigLen       = 88 // base64 of 64 bytes, padded
)

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, a...))
}

// Body returns the canonical bytes the signature covers, after checking
// every field.
func (k Keyring) Body() ([]byte, error) {
	if err := checkSkin(k.Skin); err != nil {
		return nil, err
	}
	if len(k.Keys) > MaxKeys {
		return nil, malformed("%d keys: at most %d", len(k.Keys), MaxKeys)
	}
	na := k.NotAfter.UTC()
	if na.Nanosecond() != 0 || na.Year() < 0 || na.Year() > 9999 {
		return nil, malformed("not-after %v is not a whole second in years 0 to 9999", k.NotAfter)
	}
	b := []byte(header)
	b = append(b, "skin "...)
	b = append(b, k.Skin...)
	b = append(b, "\nserial "...)
	b = strconv.AppendUint(b, k.Serial, 10)
	b = append(b, "\nnot-after "...)
	b = na.AppendFormat(b, timeLayout)
	b = append(b, '\n')
	seen := map[Key]bool{}
	for _, key := range k.Keys {
		if err := checkKey(key); err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, malformed("key %s %s is listed twice", key.Kind, key.Value)
		}
		seen[key] = true
		b = append(b, "key "...)
		b = append(b, key.Kind...)
		b = append(b, ' ')
		b = append(b, key.Value...)
		b = append(b, '\n')
	}
	if len(b)+len("signature ")+sigLen+1 > MaxSize {
		return nil, malformed("%d bytes: at most %d", len(b), MaxSize)
	}
	return b, nil
}

// Sign returns the signed keyring's bytes, ready to serve.
func Sign(k Keyring, priv ed25519.PrivateKey) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("keyring: signing: the private key is not an Ed25519 key")
	}
	body, err := k.Body()
	if err != nil {
		return nil, err
	}
	sig := ed25519.Sign(priv, body)
	out := append(body, "signature "...)
	out = base64.StdEncoding.AppendEncode(out, sig)
	return append(out, '\n'), nil
}

// Parse reads a signed keyring without checking its signature. Anything
// that is not exactly the canonical form is ErrMalformed; a first line
// naming another version is ErrVersion.
func Parse(b []byte) (*Signed, error) {
	if len(b) > MaxSize {
		return nil, malformed("%d bytes: at most %d", len(b), MaxSize)
	}
	first, _, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return nil, malformed("no line ends")
	}
	if string(first)+"\n" != header {
		if v, isV := bytes.CutPrefix(first, []byte(headerPrefix)); isV && canonicalUint(string(v)) {
			return nil, fmt.Errorf("%w: version %s (this otrdesk reads %d)", ErrVersion, v, Version)
		}
		return nil, malformed("the first line is not %q", header[:len(header)-1])
	}
	s := &Signed{}
	rest := b[len(header):]
	field := func(name string) (string, error) {
		line, r, ok := bytes.Cut(rest, []byte("\n"))
		if !ok {
			return "", malformed("the %s line does not end", name)
		}
		v, ok := bytes.CutPrefix(line, []byte(name+" "))
		if !ok {
			return "", malformed("expected the %s line", name)
		}
		rest = r
		return string(v), nil
	}
	skin, err := field("skin")
	if err != nil {
		return nil, err
	}
	if err := checkSkin(skin); err != nil {
		return nil, err
	}
	s.Skin = skin
	serial, err := field("serial")
	if err != nil {
		return nil, err
	}
	if !canonicalUint(serial) {
		return nil, malformed("serial %q is not a decimal number without leading zeros", serial)
	}
	if s.Serial, err = strconv.ParseUint(serial, 10, 64); err != nil {
		return nil, malformed("serial %q does not fit 64 bits", serial)
	}
	na, err := field("not-after")
	if err != nil {
		return nil, err
	}
	t, err := time.Parse(timeLayout, na)
	if err != nil || t.Format(timeLayout) != na {
		return nil, malformed("not-after %q is not RFC 3339 UTC in whole seconds (like 2026-12-21T06:00:00Z)", na)
	}
	s.NotAfter = t
	seen := map[Key]bool{}
	for bytes.HasPrefix(rest, []byte("key ")) {
		line, _, _ := bytes.Cut(rest, []byte("\n"))
		v, err := field("key")
		if err != nil {
			return nil, err
		}
		kind, value, ok := bytes.Cut([]byte(v), []byte(" "))
		if !ok {
			return nil, malformed("key line %q is not \"key KIND VALUE\"", line)
		}
		k := Key{Kind: string(kind), Value: string(value)}
		if err := checkKey(k); err != nil {
			return nil, err
		}
		if seen[k] {
			return nil, malformed("key %s %s is listed twice", k.Kind, k.Value)
		}
		if len(s.Keys) == MaxKeys {
			return nil, malformed("more than %d keys", MaxKeys)
		}
		seen[k] = true
		s.Keys = append(s.Keys, k)
	}
	s.Body = b[:len(b)-len(rest)]
	sig, err := field("signature")
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, malformed("%d bytes after the signature line", len(rest))
	}
	if len(sig) != sigLen {
		return nil, malformed("the signature is %d characters of base64, want %d", len(sig), sigLen)
	}
	// Decoding skips CR and LF and re-encoding catches any other slack, so
	// one signature has one spelling.
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) != ed25519.SignatureSize || base64.StdEncoding.EncodeToString(raw) != sig {
		return nil, malformed("the signature is not canonical base64 of 64 bytes")
	}
	s.Signature = raw
	return s, nil
}

// Verify checks the signature with the signer's public key.
func (s *Signed) Verify(signer ed25519.PublicKey) error {
	if len(signer) != ed25519.PublicKeySize || !ed25519.Verify(signer, s.Body, s.Signature) {
		return ErrSignature
	}
	return nil
}

// Check makes the refusals a reader makes of a keyring whose signature
// verified: it must name skin, not be past not-after at now, and have a
// serial no lower than minSerial (the highest this reader saw before; the
// same serial again is the same keyring loaded twice).
func (k Keyring) Check(skin string, now time.Time, minSerial uint64) error {
	switch {
	case k.Skin != skin:
		return fmt.Errorf("%w: it names skin %q, not %q", ErrOtherSkin, k.Skin, skin)
	case now.After(k.NotAfter):
		return fmt.Errorf("%w: it was valid until %s", ErrExpired, k.NotAfter.UTC().Format(timeLayout))
	case k.Serial < minSerial:
		return fmt.Errorf("%w: serial %d, and %d was seen before", ErrOldSerial, k.Serial, minSerial)
	}
	return nil
}

// Verify parses b, checks its signature with signer, and makes the checks
// of Keyring.Check: what a widget does before trusting any key.
func Verify(b []byte, signer ed25519.PublicKey, skin string, now time.Time, minSerial uint64) (Keyring, error) {
	s, err := Parse(b)
	if err != nil {
		return Keyring{}, err
	}
	if err := s.Verify(signer); err != nil {
		return Keyring{}, err
	}
	if err := s.Check(skin, now, minSerial); err != nil {
		return Keyring{}, err
	}
	return s.Keyring, nil
}

// OTRFingerprints returns the values of the keyring's OTR keys.
func (k Keyring) OTRFingerprints() []string {
	var out []string
	for _, key := range k.Keys {
		if key.Kind == KindOTR {
			out = append(out, key.Value)
		}
	}
	return out
}

// canonicalUint reports whether s is decimal digits without a leading zero
// (a lone "0" is canonical).
func canonicalUint(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// checkSkin applies the skin-name rule the store enforces (1 to 63 of
// a-z, 0-9 and '-', not starting with '-' or "guest-"); this package
// stays free of the store so the widget's twin can mirror it alone.
func checkSkin(name string) error {
	ok := len(name) >= 1 && len(name) <= 63 && name[0] != '-' && !(len(name) >= 6 && name[:6] == "guest-")
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		return malformed("skin name %q is not 1 to 63 of a-z, 0-9 and '-'", name)
	}
	return nil
}

// checkKey checks one key line's kind and value.
func checkKey(k Key) error {
	okKind := len(k.Kind) >= 1 && len(k.Kind) <= maxKindLen && k.Kind[0] >= 'a' && k.Kind[0] <= 'z'
	for i := 0; okKind && i < len(k.Kind); i++ {
		c := k.Kind[i]
		okKind = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !okKind {
		return malformed("key kind %q is not 1 to %d of a-z, 0-9 and '-' starting with a letter", k.Kind, maxKindLen)
	}
	v := k.Value
	if len(v) < 1 || len(v) > maxValueLen {
		return malformed("key value of kind %s is %d characters: 1 to %d", k.Kind, len(v), maxValueLen)
	}
	switch k.Kind {
	case KindOTR:
		if len(v) != 40 || !hexOnly(v, "0123456789ABCDEF") {
			return malformed("otr key %q is not 40 upper-case hex digits", v)
		}
	case KindOMEMO:
		if len(v)%2 != 0 || !hexOnly(v, "0123456789abcdef") {
			return malformed("omemo key %q is not lower-case hex", v)
		}
	default:
		// A later kind: printable ASCII without spaces, kept as it is.
		for i := 0; i < len(v); i++ {
			if v[i] <= ' ' || v[i] > '~' {
				return malformed("key value of kind %s holds a byte outside printable ASCII", k.Kind)
			}
		}
	}
	return nil
}

func hexOnly(s, digits string) bool {
	for i := 0; i < len(s); i++ {
		if strings.IndexByte(digits, s[i]) < 0 {
			return false
		}
	}
	return true
}
