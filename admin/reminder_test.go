package admin

import (
	"strings"
	"testing"
	"time"

	"otrdesk.im/otrdesk/otr"
	"otrdesk.im/otrdesk/store"
)

func TestReminderOncePerDayUntilRotated(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
	old := store.Skin{Name: "bank", Keys: []store.SkinKey{{Fingerprint: mustFingerprint("1921c1b48ac86d702a3ada33a2d7a86a1771fc70"), Created: t0}}}
	fresh := store.Skin{Name: "shop", Keys: []store.SkinKey{{Fingerprint: mustFingerprint("00112233445566778899aabbccddeeff00112233"), Created: t0.Add(6 * 24 * time.Hour)}}}
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
			if !strings.Contains(r.Text(s.at), "otrdesk keys generate --skin "+r.Skin) || !strings.Contains(r.Text(s.at), r.Fingerprint.String()) {
				t.Errorf("%s: reminder text %q", s.name, r.Text(s.at))
			}
		}
		if strings.Join(got, ",") != s.want {
			t.Errorf("%s: reminded %v, want %q", s.name, got, s.want)
		}
	}
	// Rotating stops the reminders.
	rotated := old
	rotated.Keys = []store.SkinKey{{Fingerprint: mustFingerprint("aa112233445566778899aabbccddeeff00112233"), Created: t0.Add(15 * 24 * time.Hour)}, {Fingerprint: old.Keys[0].Fingerprint, Created: t0, Retired: t0.Add(15 * 24 * time.Hour)}}
	at := t0.Add(16 * 24 * time.Hour)
	for _, r := range m.Due([]store.Skin{rotated, fresh}, at) {
		if r.Skin == "bank" {
			t.Errorf("reminded of a rotated key: %+v", r)
		}
	}
}

func TestReminderBeforeKeyringExpiry(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	skins := []store.Skin{{Name: "bank"}, {Name: "shop"}}
	keyrings := []store.Keyring{
		{Skin: "bank", Serial: 7, NotAfter: t0.Add(10 * 24 * time.Hour)},
		{Skin: "shop", Serial: 3, NotAfter: t0.Add(20 * 24 * time.Hour)},
		{Skin: "gone", Serial: 1, NotAfter: t0}, // its skin was removed
	}
	m := &Reminder{Age: 7 * 24 * time.Hour}
	steps := []struct {
		name string
		at   time.Time
		want string
	}{
		{"long before", t0, ""},
		{"four days before", t0.Add(6 * 24 * time.Hour), ""},
		{"within three days", t0.Add(7*24*time.Hour + time.Minute), "bank"},
		{"same day, later", t0.Add(7*24*time.Hour + 5*time.Hour), ""},
		{"next day", t0.Add(8*24*time.Hour + time.Hour), "bank"},
		{"expired: still reminded, daily", t0.Add(11 * 24 * time.Hour), "bank"},
	}
	for _, s := range steps {
		var got []string
		for _, e := range m.DueKeyrings(skins, keyrings, s.at) {
			got = append(got, e.Skin)
			text := e.Text(s.at)
			if !strings.Contains(text, "otrdesk keyring sign --skin "+e.Skin) {
				t.Errorf("%s: the reminder does not say what to do: %q", s.name, text)
			}
			if s.at.After(e.NotAfter) != strings.Contains(text, "expired") {
				t.Errorf("%s: the reminder misstates whether it expired: %q", s.name, text)
			}
		}
		if strings.Join(got, ",") != s.want {
			t.Errorf("%s: reminded %v, want %q", s.name, got, s.want)
		}
	}
	// Signing a new keyring stops the reminders.
	renewed := []store.Keyring{{Skin: "bank", Serial: 8, NotAfter: t0.Add(25 * 24 * time.Hour)}, keyrings[1]}
	if due := m.DueKeyrings(skins, renewed, t0.Add(12*24*time.Hour)); len(due) != 0 {
		t.Errorf("reminded after renewal: %+v", due)
	}
	// The key-age reminders are untouched by keyring ones.
	if due := m.Due(skins, t0.Add(12*24*time.Hour)); len(due) != 0 {
		t.Errorf("key reminders for skins without keys: %+v", due)
	}
}

// mustFingerprint reads a fingerprint written in a test.
func mustFingerprint(s string) otr.Fingerprint {
	f, err := otr.ParseFingerprint(s)
	if err != nil {
		panic(err)
	}
	return f
}
