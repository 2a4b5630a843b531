package keyfile

import (
	"encoding/hex"
	"fmt"
	"io"
	"strconv"
	"strings"

	"otrdesk.im/otrdesk/otr"
)

// InstanceTag is one line of libotr's instance-tag file
// (~/.purple/otr.instance_tags): the instance tag of an account.
type InstanceTag struct {
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
func ReadInstanceTags(r io.Reader) ([]InstanceTag, error) {
	b, err := readAllLimited(r)
	if err != nil {
		return nil, fmt.Errorf("keyfile: reading instance tags: %w", err)
	}
	var tags []InstanceTag
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
		if tag < otr.MinInstanceTag {
			return nil, fmt.Errorf("%w: line %d: instance tag %08x is below the smallest valid tag 00000100", ErrNotInstanceTagFile, i+1, tag)
		}
		tags = append(tags, InstanceTag{Account: f[0], Protocol: f[1], Tag: uint32(tag)})
	}
	return tags, nil
}

// WriteInstanceTags writes tags as libotr does.
func WriteInstanceTags(w io.Writer, tags []InstanceTag) error {
	b := []byte(instagWarning)
	for _, t := range tags {
		if err := checkField(t.Account, t.Protocol); err != nil {
			return fmt.Errorf("keyfile: writing instance tags: %w", err)
		}
		if t.Tag < otr.MinInstanceTag {
			return fmt.Errorf("keyfile: writing instance tags: tag %08x of %q is below 00000100", t.Tag, t.Account)
		}
		b = fmt.Appendf(b, "%s\t%s\t%08x\n", t.Account, t.Protocol, t.Tag)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("keyfile: writing instance tags: %w", err)
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
	Fingerprint otr.Fingerprint
	Trust       string // "" (unverified), "verified", "smp" or a client's own word
}

// ReadFingerprints reads libotr's fingerprints file:
// "username\taccount\tprotocol\t<40 hex>\ttrust" lines (the trust field and
// its tab may be missing). Blank lines are skipped; any other line is an
// error naming it.
func ReadFingerprints(r io.Reader) ([]KnownFingerprint, error) {
	b, err := readAllLimited(r)
	if err != nil {
		return nil, fmt.Errorf("keyfile: reading fingerprints: %w", err)
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

// WriteFingerprints writes fingerprints as libotr does.
func WriteFingerprints(w io.Writer, fs []KnownFingerprint) error {
	var b []byte
	for _, f := range fs {
		if err := checkField(f.Username, f.Account, f.Protocol); err != nil {
			return fmt.Errorf("keyfile: writing fingerprints: %w", err)
		}
		if strings.ContainsAny(f.Trust, "\t\r\n") {
			return fmt.Errorf("keyfile: writing fingerprints: trust %q holds a tab or line break", f.Trust)
		}
		b = fmt.Appendf(b, "%s\t%s\t%s\t%s\t%s\n", f.Username, f.Account, f.Protocol, f.Fingerprint.Hex(), f.Trust)
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("keyfile: writing fingerprints: %w", err)
	}
	return nil
}
