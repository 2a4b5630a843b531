// The age dependency is left out of the WebAssembly widget, which has no
// use for key bundles and would grow by about a megabyte.

//go:build !js

package keyfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"
	"filippo.io/age/armor"

	"otrdesk.im/otrdesk/otr"
)

// Bundle is what an operator receives to install a key: the
// otr.private_key text and which skins the key serves, sealed with a
// passphrase (age, scrypt). The plaintext inside is one header line
//
//	otrdesk key bundle: skins support,sales; fingerprint 1921C1B4 8AC86D70 2A3ADA33 A2D7A86A 1771FC70
//
// followed by the otr.private_key text.
type Bundle struct {
	Skins       []string
	Fingerprint otr.Fingerprint
	PrivateKeys *PrivateKeys // every account's key has Fingerprint
}

const bundleHeader = "otrdesk key bundle: skins "

// MaxBundleWorkFactor bounds scrypt's log2 N in a bundle: 2^20 takes about
// a second and 1 GiB to open, and a bundle asking for more is refused
// rather than allowed to exhaust the machine.
const MaxBundleWorkFactor = 20

// Errors of bundles.
var (
	ErrNotBundle        = errors.New("keyfile: not an otrdesk key bundle")
	ErrBundleMismatch   = errors.New("keyfile: the key bundle's keys do not match its fingerprint")
	ErrWrongPassphrase  = errors.New("keyfile: wrong passphrase for the key bundle")
	ErrBundlePassphrase = errors.New("keyfile: a key bundle passphrase must not be empty")
)

func (b *Bundle) check() error {
	accts := b.PrivateKeys.Accounts()
	if len(accts) == 0 {
		return fmt.Errorf("%w: it holds no key", ErrBundleMismatch)
	}
	for _, a := range accts {
		if a.Key.Fingerprint() != b.Fingerprint {
			return fmt.Errorf("%w: account %q has %v", ErrBundleMismatch, a.Name, a.Key.Fingerprint())
		}
	}
	for _, s := range b.Skins {
		if s == "" || strings.ContainsAny(s, ",; \t\r\n") {
			return fmt.Errorf("keyfile: skin name %q in a key bundle is empty or holds , ; or white space", s)
		}
	}
	return nil
}

// WriteBundle seals b with passphrase and writes it to w, ASCII-armored.
// workFactor is scrypt's log2 N, at most MaxBundleWorkFactor; 0 takes
// age's default (18).
func WriteBundle(w io.Writer, passphrase string, b Bundle, workFactor int) error {
	if passphrase == "" {
		return ErrBundlePassphrase
	}
	if b.PrivateKeys == nil {
		return fmt.Errorf("keyfile: writing a key bundle: %w: it holds no key", ErrBundleMismatch)
	}
	if err := b.check(); err != nil {
		return fmt.Errorf("keyfile: writing a key bundle: %w", err)
	}
	r, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return fmt.Errorf("keyfile: writing a key bundle: %w", err)
	}
	if workFactor > MaxBundleWorkFactor {
		return fmt.Errorf("keyfile: writing a key bundle: scrypt work factor %d is over %d", workFactor, MaxBundleWorkFactor)
	}
	if workFactor > 0 {
		r.SetWorkFactor(workFactor)
	}
	aw := armor.NewWriter(w)
	ew, err := age.Encrypt(aw, r)
	if err != nil {
		return fmt.Errorf("keyfile: writing a key bundle: encrypting: %w", err)
	}
	plain := fmt.Appendf(nil, "%s%s; fingerprint %v\n", bundleHeader, strings.Join(b.Skins, ","), b.Fingerprint)
	plain = append(plain, b.PrivateKeys.Bytes()...)
	if _, err := ew.Write(plain); err != nil {
		return fmt.Errorf("keyfile: writing a key bundle: %w", err)
	}
	if err := ew.Close(); err != nil {
		return fmt.Errorf("keyfile: writing a key bundle: %w", err)
	}
	if err := aw.Close(); err != nil {
		return fmt.Errorf("keyfile: writing a key bundle: %w", err)
	}
	return nil
}

// ReadBundle opens a bundle sealed by WriteBundle (armored or binary) and
// checks that every key in it has the fingerprint it names.
func ReadBundle(r io.Reader, passphrase string) (Bundle, error) {
	raw, err := readAllLimited(r)
	if err != nil {
		return Bundle{}, fmt.Errorf("keyfile: reading a key bundle: %w", err)
	}
	var src io.Reader = bytes.NewReader(raw)
	if bytes.HasPrefix(bytes.TrimSpace(raw), []byte(armor.Header)) {
		src = armor.NewReader(bytes.NewReader(raw))
	} else if !bytes.HasPrefix(raw, []byte("age-encryption.org/")) {
		return Bundle{}, fmt.Errorf("%w: it is not an age file", ErrNotBundle)
	}
	id, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return Bundle{}, fmt.Errorf("keyfile: reading a key bundle: %w", err)
	}
	id.SetMaxWorkFactor(MaxBundleWorkFactor)
	dr, err := age.Decrypt(src, id)
	if err != nil {
		var noMatch *age.NoIdentityMatchError
		if errors.As(err, &noMatch) {
			return Bundle{}, fmt.Errorf("keyfile: reading a key bundle: %w", ErrWrongPassphrase)
		}
		return Bundle{}, fmt.Errorf("%w: decrypting: %v", ErrNotBundle, err)
	}
	plain, err := readAllLimited(dr)
	if err != nil {
		return Bundle{}, fmt.Errorf("%w: decrypting: %v", ErrNotBundle, err)
	}
	br := bufio.NewReader(bytes.NewReader(plain))
	line, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, bundleHeader) {
		return Bundle{}, fmt.Errorf("%w: the first line is not %q", ErrNotBundle, strings.TrimSpace(bundleHeader)+" ...")
	}
	skins, fp, ok := strings.Cut(strings.TrimSuffix(line[len(bundleHeader):], "\n"), "; fingerprint ")
	if !ok {
		return Bundle{}, fmt.Errorf("%w: the first line names no fingerprint", ErrNotBundle)
	}
	var b Bundle
	if skins != "" {
		b.Skins = strings.Split(skins, ",")
	}
	if b.Fingerprint, err = otr.ParseFingerprint(fp); err != nil {
		return Bundle{}, fmt.Errorf("%w: the first line: %v", ErrNotBundle, err)
	}
	if b.PrivateKeys, err = ReadPrivateKeys(br); err != nil {
		return Bundle{}, fmt.Errorf("keyfile: reading a key bundle: %w", err)
	}
	if err := b.check(); err != nil {
		return Bundle{}, fmt.Errorf("keyfile: reading a key bundle: %w", err)
	}
	return b, nil
}
