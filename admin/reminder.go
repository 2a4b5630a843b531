package admin

import (
	"fmt"
	"time"

	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/store"
)

// Rotation is a skin whose current key is older than the reminder age.
type Rotation struct {
	Skin        string
	Fingerprint otr.Fingerprint
	Created     time.Time
}

// DueRotations lists the skins whose current key was made more than age
// before now. Skins without a current key are not listed: there is nothing
// to rotate, and the skin JSON already shows no fingerprint.
func DueRotations(skins []store.Skin, now time.Time, age time.Duration) []Rotation {
	var out []Rotation
	for _, s := range skins {
		for _, k := range s.Keys {
			if !k.Retired.IsZero() || k.Revoked {
				continue
			}
			if now.Sub(k.Created) > age {
				out = append(out, Rotation{Skin: s.Name, Fingerprint: k.Fingerprint, Created: k.Created})
			}
			break
		}
	}
	return out
}

// Text is the reminder an admin reads.
func (r Rotation) Text(now time.Time) string {
	days := int(now.Sub(r.Created).Hours() / 24)
	return fmt.Sprintf("otrdesk: the OTR key of skin %s (%s) is %d days old. Rotate it: otrdesk keys generate --skin %s --format pidgin --account OPERATOR-JID, install the new key for the operators, then update the embed snippet (otrdesk snippet %s).",
		r.Skin, r.Fingerprint, days, r.Skin, r.Skin)
}

// Reminder decides when admins are told about old keys and expiring
// keyrings: at most once per skin per UTC day, until the key is rotated or
// the keyring renewed. It is not safe for concurrent use; one goroutine
// owns it.
type Reminder struct {
	Age time.Duration
	// KeyringWithin is how long before a keyring expires to remind;
	// zero means KeyringReminder.
	KeyringWithin time.Duration

	sent        map[string]string // skin -> UTC day of the last key reminder
	keyringSent map[string]string // skin -> UTC day of the last keyring reminder
}

// Due returns the rotations to announce now and marks them sent today.
func (m *Reminder) Due(skins []store.Skin, now time.Time) []Rotation {
	if m.sent == nil {
		m.sent = map[string]string{}
	}
	day := now.UTC().Format(time.DateOnly)
	var out []Rotation
	due := map[string]bool{}
	for _, r := range DueRotations(skins, now, m.Age) {
		due[r.Skin] = true
		if m.sent[r.Skin] == day {
			continue
		}
		m.sent[r.Skin] = day
		out = append(out, r)
	}
	for s := range m.sent {
		if !due[s] { // rotated (or removed): forget, so a later key starts afresh
			delete(m.sent, s)
		}
	}
	return out
}

// KeyringReminder is how long before a keyring's not-after admins are told
// to sign a new one: pages that pin the signer stop trusting every key of
// the skin once its keyring expires.
const KeyringReminder = 72 * time.Hour

// KeyringExpiry is a skin whose keyring expires within KeyringReminder, or
// has expired.
type KeyringExpiry struct {
	Skin     string
	Serial   uint64
	NotAfter time.Time
}

// DueKeyrings lists the keyrings of existing skins that expire within
// `within` of now (or already have).
func DueKeyrings(skins []store.Skin, keyrings []store.Keyring, now time.Time, within time.Duration) []KeyringExpiry {
	exists := map[string]bool{}
	for _, s := range skins {
		exists[s.Name] = true
	}
	var out []KeyringExpiry
	for _, k := range keyrings {
		if exists[k.Skin] && k.NotAfter.Sub(now) <= within {
			out = append(out, KeyringExpiry{Skin: k.Skin, Serial: k.Serial, NotAfter: k.NotAfter})
		}
	}
	return out
}

// Text is the reminder an admin reads.
func (e KeyringExpiry) Text(now time.Time) string {
	when := "expires " + e.NotAfter.UTC().Format("2006-01-02 15:04 MST")
	if !now.Before(e.NotAfter) {
		when = "expired " + e.NotAfter.UTC().Format("2006-01-02 15:04 MST") + ": pages that pin the signer verify no key of this skin until it is renewed"
	}
	return fmt.Sprintf("otrdesk: the signed keyring of skin %s (serial %d) %s. Sign a new one on the machine that holds the signer key: otrdesk keyring sign --skin %s --signer FILE.",
		e.Skin, e.Serial, when, e.Skin)
}

// DueKeyrings returns the keyrings to announce now, at most once per skin
// per UTC day until a new keyring moves the expiry away (or the skin goes).
// Within zero means KeyringReminder.
func (m *Reminder) DueKeyrings(skins []store.Skin, keyrings []store.Keyring, now time.Time) []KeyringExpiry {
	if m.keyringSent == nil {
		m.keyringSent = map[string]string{}
	}
	within := m.KeyringWithin
	if within <= 0 {
		within = KeyringReminder
	}
	day := now.UTC().Format(time.DateOnly)
	var out []KeyringExpiry
	due := map[string]bool{}
	for _, e := range DueKeyrings(skins, keyrings, now, within) {
		due[e.Skin] = true
		if m.keyringSent[e.Skin] == day {
			continue
		}
		m.keyringSent[e.Skin] = day
		out = append(out, e)
	}
	for s := range m.keyringSent {
		if !due[s] {
			delete(m.keyringSent, s)
		}
	}
	return out
}
