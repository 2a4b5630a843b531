//go:build !js

package keyfile

import (
	"bytes"
	"errors"
	"fmt"

	"otrdesk.im/otrdesk/otr"
)

// EncodeOptions says how Encode writes a key.
type EncodeOptions struct {
	Format     string   // Pidgin, Profanity, Mcabber, OTRJS or Age
	Accounts   []string // bare JIDs to file the key under; required but for OTRJS
	Skins      []string // named in an age bundle's header
	Passphrase string   // seals an age bundle
	WorkFactor int      // scrypt log2 N of an age bundle; 0 is age's default
}

// ErrNeedPassphrase is returned for an age bundle without a passphrase.
var ErrNeedPassphrase = errors.New("keyfile: an age key bundle needs a passphrase")

// Check reports what is missing or wrong in o before any key is made.
func (o EncodeOptions) Check() error {
	switch o.Format {
	case Pidgin, Profanity, Mcabber, Age:
		if len(o.Accounts) == 0 {
			return fmt.Errorf("keyfile: the %s format needs the operator accounts that will hold the key", o.Format)
		}
	case OTRJS:
	default:
		return ErrUnknownFormat
	}
	for _, a := range o.Accounts {
		if err := CheckAccount(a); err != nil {
			return err
		}
	}
	if o.Format == Age && o.Passphrase == "" {
		return ErrNeedPassphrase
	}
	return nil
}

// Encode writes k in the format o names: an otr.private_key with one
// account per o.Accounts under the client's protocol id, otr.js's base64,
// or an age bundle (whose otr.private_key carries Pidgin's protocol id;
// installing it relabels it for the client it goes into).
func Encode(k *otr.PrivateKey, o EncodeOptions) ([]byte, error) {
	if err := o.Check(); err != nil {
		return nil, err
	}
	if o.Format == OTRJS {
		return MarshalOTRJS(k), nil
	}
	proto, ok := Protocol(o.Format)
	if !ok {
		proto, _ = Protocol(Pidgin)
	}
	var f PrivateKeys
	for _, a := range o.Accounts {
		if err := f.Set(a, proto, k); err != nil {
			return nil, err
		}
	}
	if o.Format != Age {
		return f.Bytes(), nil
	}
	var buf bytes.Buffer
	if err := WriteBundle(&buf, o.Passphrase, Bundle{Skins: o.Skins, Fingerprint: k.Fingerprint(), PrivateKeys: &f}, o.WorkFactor); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
