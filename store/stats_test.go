package store

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestStats(t *testing.T) {
	s, _ := newStore(t)
	if err := s.CreateSkin(demoSkin()); err != nil {
		t.Fatal(err)
	}
	day1 := time.Date(2026, 11, 18, 23, 59, 59, 0, time.UTC)
	day2 := time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)
	day3 := time.Date(2026, 11, 20, 10, 0, 0, 0, time.FixedZone("CET", 3600)) // 09:00 UTC
	recs := []ChatRecord{
		// day 1: three chats, odd count
		{Skin: "demo", Start: day1, Wait: 30 * time.Second, Duration: 5 * time.Minute, Encrypted: true},
		{Skin: "demo", Start: day1.Add(-time.Hour), Wait: 10 * time.Second, Duration: 1 * time.Minute},
		{Skin: "demo", Start: day1.Add(-2 * time.Hour), Wait: 2 * time.Minute, Duration: 20 * time.Minute, Encrypted: true},
		// day 2: four chats, even count: medians are means of the middle two
		{Skin: "demo", Start: day2, Wait: 1 * time.Second, Duration: 10 * time.Second, Encrypted: true},
		{Skin: "demo", Start: day2.Add(time.Hour), Wait: 4 * time.Second, Duration: 40 * time.Second, Encrypted: true},
		{Skin: "demo", Start: day2.Add(2 * time.Hour), Wait: 2 * time.Second, Duration: 20 * time.Second, Encrypted: true},
		{Skin: "demo", Start: day2.Add(3 * time.Hour), Wait: 3*time.Second + 1500*time.Microsecond, Duration: 30 * time.Second}, // kept as 3.001 s
		// day 3: one chat, given in another zone
		{Skin: "demo", Start: day3, Wait: 0, Duration: 0},
		// another skin, same days: must not mix in
		{Skin: "sales", Start: day2, Wait: time.Hour, Duration: time.Hour, Encrypted: true},
	}
	for _, r := range recs {
		if err := s.RecordChat(r); err != nil {
			t.Fatalf("RecordChat(%+v): %v", r, err)
		}
	}
	tests := []struct {
		name  string
		skin  string
		since time.Time
		want  []DayStats
	}{
		{"all days", "demo", day1.Add(-24 * time.Hour), []DayStats{
			{Day: "2026-11-18", Chats: 3, MedianWait: 30 * time.Second, MedianDuration: 5 * time.Minute, EncryptedShare: 2.0 / 3},
			{Day: "2026-11-19", Chats: 4, MedianWait: 2500500 * time.Microsecond, MedianDuration: 25 * time.Second, EncryptedShare: 0.75},
			{Day: "2026-11-20", Chats: 1, EncryptedShare: 0},
		}},
		{"since counts whole days", "demo", day2.Add(23 * time.Hour), []DayStats{
			{Day: "2026-11-19", Chats: 4, MedianWait: 2500500 * time.Microsecond, MedianDuration: 25 * time.Second, EncryptedShare: 0.75},
			{Day: "2026-11-20", Chats: 1, EncryptedShare: 0},
		}},
		{"after the last day", "demo", day3.Add(48 * time.Hour), nil},
		{"other skin", "sales", time.Time{}, []DayStats{
			{Day: "2026-11-19", Chats: 1, MedianWait: time.Hour, MedianDuration: time.Hour, EncryptedShare: 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Stats(tt.skin, tt.since)
			if err != nil {
				t.Fatalf("Stats: %v", err)
			}
			if got.Skin != tt.skin || !reflect.DeepEqual(got.Days, tt.want) {
				t.Fatalf("Stats(%s) =\n%+v\nwant\n%+v", tt.skin, got.Days, tt.want)
			}
		})
	}

	// A skin without chats has no days; an unknown name is not found.
	if err := s.CreateSkin(Skin{Name: "quiet", Title: "Quiet", Policy: PolicyPlaintext}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Stats("quiet", time.Time{}); err != nil || len(got.Days) != 0 {
		t.Fatalf("Stats(quiet) = %+v, %v; want no days", got, err)
	}
	if _, err := s.Stats("nosuch", time.Time{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Stats(nosuch): %v, want ErrNotFound", err)
	}

	n, err := s.PurgeStats(day2.Add(time.Hour))
	if err != nil || n != 3 {
		t.Fatalf("PurgeStats = %d, %v; want the 3 records of day 1", n, err)
	}
	got, err := s.Stats("demo", time.Time{})
	if err != nil || len(got.Days) != 2 || got.Days[0].Day != "2026-11-19" {
		t.Fatalf("Stats after purge = %+v, %v", got, err)
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		want time.Duration
	}{
		{"empty", nil, 0},
		{"one", []time.Duration{7}, 7},
		{"two", []time.Duration{1, 4}, 2}, // (1+4)/2 rounded down
		{"odd unsorted", []time.Duration{9, 1, 5}, 5},
		{"even unsorted", []time.Duration{8, 2, 6, 4}, 5},
		{"huge values do not overflow", []time.Duration{1<<63 - 1, 1<<63 - 3}, 1<<63 - 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := median(tt.in); got != tt.want {
				t.Fatalf("median(%v) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestRecordChatValidation(t *testing.T) {
	tests := []struct {
		name string
		r    ChatRecord
		err  string
	}{
		{"bad skin", ChatRecord{Skin: "guest-x", Start: t0}, "reserved"},
		{"no start", ChatRecord{Skin: "demo"}, "set Start"},
		{"negative wait", ChatRecord{Skin: "demo", Start: t0, Wait: -1}, "negative"},
		{"negative duration", ChatRecord{Skin: "demo", Start: t0, Duration: -time.Second}, "negative"},
		{"year 10000", ChatRecord{Skin: "demo", Start: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}, "year 10000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newStore(t)
			wantErr(t, s.RecordChat(tt.r), ErrInvalid, tt.err)
		})
	}
}
