package otr

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
)

// InstanceTagEntry is one line of libotr's instance-tag file
// (~/.purple/otr.instance_tags): the instance tag of an account.
type InstanceTagEntry struct {
	Account, Protocol string
	Tag               uint32
}

// instagWarning is the first line libotr writes.
const instagWarning = "# WARNING! You shouldn't copy this file to another computer. It is unnecessary and can cause problems.\n"

// textLines splits a text file into lines without their "\n" or "\r\n".
func textLines(b []byte) []string {
	s := strings.TrimSuffix(string(b), "\n")
	if s == "" {
		return nil
	}
	ls := strings.Split(s, "\n")
	for i, l := range ls {
		ls[i] = strings.TrimSuffix(l, "\r")
	}
	return ls
}

// ReadInstanceTags reads libotr's instance-tag file: comment lines
// starting with "#", then "account\tprotocol\ttag" lines with the tag as 8
// hex digits, at least 0x100. Blank lines are skipped. Any other line is an
// error naming it, where libotr would silently skip it.
func ReadInstanceTags(r io.Reader) ([]InstanceTagEntry, error) {
	b, err := readAllLimited(r)
	if err != nil {
		return nil, fmt.Errorf("otr: reading instance tags: %w", err)
	}
	var tags []InstanceTagEntry
	for i, l := range textLines(b) {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != 3 {
			return nil, fmt.Errorf("%w: line %d has %d tab-separated fields, not 3 (account, protocol, tag)", ErrNotInstanceTagFile, i+1, len(f))
		}
		tag, err := strconv.ParseUint(f[2], 16, 32)
		if err != nil || len(f[2]) != 8 {
			return nil, fmt.Errorf("%w: line %d: the instance tag is not 8 hex digits", ErrNotInstanceTagFile, i+1)
		}
		if tag < MinInstanceTag {
			return nil, fmt.Errorf("%w: line %d: instance tag %08x is below the smallest valid tag 00000100", ErrNotInstanceTagFile, i+1, tag)
		}
		tags = append(tags, InstanceTagEntry{Account: f[0], Protocol: f[1], Tag: uint32(tag)})
	}
	return tags, nil
}

// WriteInstanceTags writes tags as libotr does.
func WriteInstanceTags(w io.Writer, tags []InstanceTagEntry) error {
	b := []byte(instagWarning)
	for _, t := range tags {
		if err := checkField(t.Account, t.Protocol); err != nil {
			return fmt.Errorf("otr: writing instance tags: %w", err)
		}
		if t.Tag < MinInstanceTag {
			return fmt.Errorf("otr: writing instance tags: tag %08x of %q is below 00000100", t.Tag, t.Account)
		}
		b = fmt.Appendf(b, "%s\t%s\t%08x\n", t.Account, t.Protocol, t.Tag)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("otr: writing instance tags: %w", err)
	}
	return nil
}

// checkField refuses values that would break a tab-separated line.
func checkField(vs ...string) error {
	for _, v := range vs {
		if v == "" || strings.ContainsAny(v, "\t\r\n") {
			return fmt.Errorf("%q is empty or holds a tab or line break", v)
		}
	}
	return nil
}

// KnownFingerprint is one line of libotr's fingerprints file
// (~/.purple/otr.fingerprints): a fingerprint seen for a peer.
type KnownFingerprint struct {
	Username    string // the peer
	Account     string // our account
	Protocol    string
	Fingerprint Fingerprint
	Trust       string // "" (unverified), "verified", "smp" or a client's own word
}

// ReadFingerprintFile reads libotr's fingerprints file:
// "username\taccount\tprotocol\t<40 hex>\ttrust" lines (the trust field and
// its tab may be missing). Blank lines are skipped; any other line is an
// error naming it.
func ReadFingerprintFile(r io.Reader) ([]KnownFingerprint, error) {
	b, err := readAllLimited(r)
	if err != nil {
		return nil, fmt.Errorf("otr: reading fingerprints: %w", err)
	}
	var fs []KnownFingerprint
	for i, l := range textLines(b) {
		if l == "" {
			continue
		}
		f := strings.Split(l, "\t")
		if len(f) != 4 && len(f) != 5 {
			return nil, fmt.Errorf("%w: line %d has %d tab-separated fields, not 5 (username, account, protocol, fingerprint, trust)", ErrNotFingerprintFile, i+1, len(f))
		}
		var kf KnownFingerprint
		if len(f[3]) != 40 {
			return nil, fmt.Errorf("%w: line %d: the fingerprint is not 40 hex digits", ErrNotFingerprintFile, i+1)
		}
		if _, err := hex.Decode(kf.Fingerprint[:], []byte(f[3])); err != nil {
			return nil, fmt.Errorf("%w: line %d: the fingerprint is not 40 hex digits", ErrNotFingerprintFile, i+1)
		}
		kf.Username, kf.Account, kf.Protocol = f[0], f[1], f[2]
		if len(f) == 5 {
			kf.Trust = f[4]
		}
		fs = append(fs, kf)
	}
	return fs, nil
}

// WriteFingerprintFile writes fingerprints as libotr does.
func WriteFingerprintFile(w io.Writer, fs []KnownFingerprint) error {
	var b []byte
	for _, f := range fs {
		if err := checkField(f.Username, f.Account, f.Protocol); err != nil {
			return fmt.Errorf("otr: writing fingerprints: %w", err)
		}
		if strings.ContainsAny(f.Trust, "\t\r\n") {
			return fmt.Errorf("otr: writing fingerprints: trust %q holds a tab or line break", f.Trust)
		}
		b = fmt.Appendf(b, "%s\t%s\t%s\t%s\t%s\n", f.Username, f.Account, f.Protocol, f.Fingerprint.Hex(), f.Trust)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("otr: writing fingerprints: %w", err)
	}
	return nil
}

// PrivateBytes returns the private key in the form otr.js packPrivate(),
// python-potr serializePrivateKey() and x/crypto/otr Serialize() share:
// the type SHORT 0x0000 then the MPIs p, q, g, y and x.
func (k *PrivateKey) PrivateBytes() []byte {
	return appendMPI(k.PublicKey.Bytes(), k.X)
}

// ParsePrivateKey reads a private key in the PrivateBytes form from the
// front of b and checks it (sizes, y = g^x mod p).
func ParsePrivateKey(b []byte) (k *PrivateKey, rest []byte, ok bool) {
	pub, rest, ok := ParsePublicKey(b)
	if !ok {
		return nil, b, false
	}
	x, rest, ok := readMPI(rest)
	if !ok {
		return nil, b, false
	}
	k = &PrivateKey{PublicKey: *pub, X: x}
	if k.check() != nil {
		return nil, b, false
	}
	return k, rest, true
}

// Base64 returns PrivateBytes in standard base64, the text otr.js stores.
func (k *PrivateKey) Base64() string { return base64.StdEncoding.EncodeToString(k.PrivateBytes()) }

// ParsePrivateKeyBase64 reads an otr.js or python-potr private key: base64
// (white space ignored) of the PrivateBytes form.
func ParsePrivateKeyBase64(s string) (*PrivateKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, fmt.Errorf("%w: the text is not base64", ErrBadPrivateKey)
	}
	k, rest, ok := ParsePrivateKey(b)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrBadPrivateKey, whyNotPrivateKey(b))
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes follow the key", ErrBadPrivateKey, len(rest))
	}
	return k, nil
}

// whyNotPrivateKey explains why ParsePrivateKey refused b.
func whyNotPrivateKey(b []byte) string {
	typ, rest, ok := readShort(b)
	if !ok {
		return "it is shorter than a key type"
	}
	if typ != PublicKeyTypeDSA {
		return fmt.Sprintf("the key type is %#04x, not DSA (0x0000)", typ)
	}
	var v [5]*big.Int
	for i, name := range []string{"p", "q", "g", "y", "x"} {
		if v[i], rest, ok = readMPI(rest); !ok {
			return "it ends before the MPI " + name
		}
	}
	k := &PrivateKey{PublicKey: PublicKey{P: v[0], Q: v[1], G: v[2], Y: v[3]}, X: v[4]}
	if err := k.check(); err != nil {
		return err.Error()
	}
	return "it is malformed"
}
