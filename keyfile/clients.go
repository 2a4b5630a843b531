package keyfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"mellium.im/xmpp/jid"
)

// The clients otrdesk installs keys for, and the formats it writes a key
// in: one per client (an otr.private_key under that client's protocol id),
// otr.js's base64, and a passphrase-sealed age bundle.
const (
	Pidgin    = "pidgin"
	Profanity = "profanity"
	Mcabber   = "mcabber"
	OTRJS     = "otrjs"
	Age       = "age"
)

// Errors of the client helpers.
var (
	ErrUnknownClient = errors.New("keyfile: the client must be pidgin, profanity or mcabber")
	ErrUnknownFormat = errors.New("keyfile: the format must be pidgin, profanity, mcabber, otrjs or age")
	ErrBadAccount    = errors.New("keyfile: not a bare JID as the client names the account")
)

// Protocol returns the libotr protocol id a client files its keys under:
// Pidgin prpl-jabber, Profanity xmpp, mcabber jabber.
func Protocol(client string) (string, bool) {
	p, ok := map[string]string{
		Pidgin:    "prpl-jabber",
		Profanity: "xmpp",
		Mcabber:   "jabber",
	}[client]
	return p, ok
}

// Path returns the otr.private_key file a client reads the key of account
// from. dir is the client's own directory; empty means the client's
// default (~/.purple, $XDG_DATA_HOME/profanity, ~/.mcabber).
func Path(client, account, dir string) (string, error) {
	home, _ := os.UserHomeDir()
	switch client {
	case Pidgin:
		if dir == "" {
			dir = filepath.Join(home, ".purple")
		}
		return filepath.Join(dir, "otr.private_key"), nil
	case Profanity:
		if dir == "" {
			data := os.Getenv("XDG_DATA_HOME")
			if data == "" {
				data = filepath.Join(home, ".local", "share")
			}
			dir = filepath.Join(data, "profanity")
		}
		return filepath.Join(dir, "otr", strings.ReplaceAll(account, "@", "_at_"), "keys.txt"), nil
	case Mcabber:
		if dir == "" {
			dir = filepath.Join(home, ".mcabber")
		}
		return filepath.Join(dir, "otr", account+".key"), nil
	}
	return "", ErrUnknownClient
}

// CheckAccount says whether a is a bare JID, the only account name the
// clients find a key under: Pidgin, given an account with a resource,
// silently generates a new key instead.
func CheckAccount(a string) error {
	j, err := jid.Parse(a)
	if err != nil || j.Localpart() == "" || j.Resourcepart() != "" || j.String() != a {
		return fmt.Errorf("%w: account %q, write it like ann@example.org", ErrBadAccount, a)
	}
	return nil
}
