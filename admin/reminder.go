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
	Fingerprint string // human form
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
				fp := k.Fingerprint
				if f, err := otr.ParseFingerprint(fp); err == nil {
					fp = f.String()
				}
				out = append(out, Rotation{Skin: s.Name, Fingerprint: fp, Created: k.Created})
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

// Reminder decides when admins are told about old keys: at most once per
// skin per UTC day, until the key is rotated. It is not safe for concurrent
// use; one goroutine owns it.
type Reminder struct {
	Age  time.Duration
	sent map[string]string // skin -> UTC day of the last reminder
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
