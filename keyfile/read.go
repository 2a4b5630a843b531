//go:build !js

package keyfile

import (
	"bytes"
	"errors"
	"fmt"

	"otrdesk.im/otrdesk/otr"
)

// Keys is what a key file holds: the accounts of an otr.private_key or a
// bundle, or one key without an account (otr.js), or only a public key
// (the bare public form).
type Keys struct {
	Accounts []Account       // an otr.private_key file or a bundle
	Bundle   *Bundle         // set when the file was an age bundle
	Key      *otr.PrivateKey // an otr.js key
	Public   *otr.PublicKey  // the bare public form: nothing private
}

// ErrNotKeyFile is returned by Read for a file in none of the forms.
var ErrNotKeyFile = errors.New("keyfile: not an OTR key file: not an otr.private_key file, an otrdesk key bundle, an otr.js key or a bare public key")

// Read reads a key file in any form this package writes, and the bare
// public form. A bundle needs its passphrase (ErrNeedPassphrase without).
func Read(b []byte, passphrase string) (Keys, error) {
	if len(b) > MaxSize {
		return Keys{}, ErrTooLarge
	}
	trimmed := bytes.TrimSpace(b)
	switch {
	case bytes.HasPrefix(trimmed, []byte("-----BEGIN AGE")) || bytes.HasPrefix(trimmed, []byte("age-encryption.org/")):
		if passphrase == "" {
			return Keys{}, fmt.Errorf("%w: this is a passphrase-sealed key bundle", ErrNeedPassphrase)
		}
		bun, err := ReadBundle(bytes.NewReader(b), passphrase)
		if err != nil {
			return Keys{}, err
		}
		return Keys{Accounts: bun.PrivateKeys.Accounts(), Bundle: &bun}, nil
	case bytes.HasPrefix(trimmed, []byte("(")):
		f, err := ParsePrivateKeys(b)
		if err != nil {
			return Keys{}, err
		}
		return Keys{Accounts: f.Accounts()}, nil
	}
	if k, err := ParseOTRJS(string(trimmed)); err == nil {
		return Keys{Key: k}, nil
	}
	if pub, err := ParsePublic(string(trimmed)); err == nil {
		return Keys{Public: pub}, nil
	}
	return Keys{}, ErrNotKeyFile
}

// PublicKeys returns the distinct public keys of k, in file order.
func (k Keys) PublicKeys() []*otr.PublicKey {
	var out []*otr.PublicKey
	seen := map[otr.Fingerprint]bool{}
	add := func(p *otr.PublicKey) {
		if fp := p.Fingerprint(); !seen[fp] {
			seen[fp] = true
			out = append(out, p)
		}
	}
	for _, a := range k.Accounts {
		add(&a.Key.PublicKey)
	}
	if k.Key != nil {
		add(&k.Key.PublicKey)
	}
	if k.Public != nil {
		add(k.Public)
	}
	return out
}
