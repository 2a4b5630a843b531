package admin

import (
	"bytes"
	"fmt"

	"mellium.im/xmpp/jid"

	"otrdesk.im/otrdesk/otr"
)

// Protocol returns the libotr protocol id a client files its keys under
// (otr-notes.md): Pidgin prpl-jabber, Profanity xmpp, mcabber jabber.
func Protocol(client string) (string, bool) {
	p, ok := map[string]string{
		FormatPidgin:    "prpl-jabber",
		FormatProfanity: "xmpp",
		FormatMcabber:   "jabber",
	}[client]
	return p, ok
}

// CheckAccount says whether a is a bare JID, the only account name Pidgin
// finds a key under (with a resource it silently generates a new key).
func CheckAccount(a string) error {
	j, err := jid.Parse(a)
	if err != nil || j.Localpart() == "" || j.Resourcepart() != "" || j.String() != a {
		return fmt.Errorf("%w: account %q is not a bare JID as the client names it, e.g. ann@example.org", ErrBadRequest, a)
	}
	return nil
}

// encodePrivateKey renders k in the requested client format.
func encodePrivateKey(k *otr.PrivateKey, r KeyRequest, skins []string, workFactor int) ([]byte, error) {
	for _, a := range r.Accounts {
		if err := CheckAccount(a); err != nil {
			return nil, err
		}
	}
	if r.Format == FormatOTRJS {
		return []byte(k.Base64() + "\n"), nil
	}
	// age bundles carry Pidgin's protocol id; keys install relabels them
	// for the client they go into.
	proto, ok := Protocol(r.Format)
	if !ok {
		proto, _ = Protocol(FormatPidgin)
	}
	var f otr.PrivateKeyFile
	for _, a := range r.Accounts {
		if err := f.Set(a, proto, k); err != nil {
			return nil, err
		}
	}
	if r.Format != FormatAge {
		return f.Bytes(), nil
	}
	var buf bytes.Buffer
	if err := otr.WriteBundle(&buf, r.Passphrase, otr.Bundle{Skins: skins, Fingerprint: k.Fingerprint(), PrivateKeys: &f}, workFactor); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
