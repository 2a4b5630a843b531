package admin

import (
	"strings"
	"testing"
	"time"

	"otrdesk.im/otrdesk/store"
)

func TestReminderOncePerDayUntilRotated(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	old := store.Skin{Name: "bank", Keys: []store.SkinKey{{Fingerprint: "1921c1b48ac86d702a3ada33a2d7a86a1771fc70", Created: t0}}}
	fresh := store.Skin{Name: "shop", Keys: []store.SkinKey{{Fingerprint: "00112233445566778899aabbccddeeff00112233", Created: t0.Add(6 * 24 * time.Hour)}}}
	nokey := store.Skin{Name: "empty"}
	m := &Reminder{Age: 7 * 24 * time.Hour}
	skins := []store.Skin{old, fresh, nokey}

	steps := []struct {
		name string
		at   time.Time
		want string
	}{
		{"before the age", t0.Add(6 * 24 * time.Hour), ""},
		{"first day past the age", t0.Add(8 * 24 * time.Hour), "bank"},
		{"same day, later", t0.Add(8*24*time.Hour + 5*time.Hour), ""},
		{"next day", t0.Add(9*24*time.Hour + time.Hour), "bank"},
		{"both old now", t0.Add(14 * 24 * time.Hour), "bank,shop"},
	}
	for _, s := range steps {
		var got []string
		for _, r := range m.Due(skins, s.at) {
			got = append(got, r.Skin)
			if !strings.Contains(r.Text(s.at), "otrdesk keys generate --skin "+r.Skin) || !strings.Contains(r.Text(s.at), r.Fingerprint) {
				t.Errorf("%s: reminder text %q", s.name, r.Text(s.at))
			}
		}
		if strings.Join(got, ",") != s.want {
			t.Errorf("%s: reminded %v, want %q", s.name, got, s.want)
		}
	}
	// Rotating stops the reminders.
	rotated := old
	rotated.Keys = []store.SkinKey{{Fingerprint: "aa112233445566778899aabbccddeeff00112233", Created: t0.Add(15 * 24 * time.Hour)}, {Fingerprint: old.Keys[0].Fingerprint, Created: t0, Retired: t0.Add(15 * 24 * time.Hour)}}
	at := t0.Add(16 * 24 * time.Hour)
	for _, r := range m.Due([]store.Skin{rotated, fresh}, at) {
		if r.Skin == "bank" {
			t.Errorf("reminded of a rotated key: %+v", r)
		}
	}
}
