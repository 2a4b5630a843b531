package store

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestConcurrentUse runs writers and readers at once: UpdateSkin is an
// atomic read-modify-write (no origin added by one goroutine is lost to
// another), every recorded chat is counted, and the guest index matches
// the guests at the end.
func TestConcurrentUse(t *testing.T) {
	s, _ := newStore(t)
	sk := demoSkin()
	sk.Origins = nil
	if err := s.CreateSkin(sk); err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 10
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				origin := fmt.Sprintf("https://w%d-%d.example.com", w, i)
				if _, err := s.UpdateSkin("demo", func(sk *Skin) error {
					sk.Origins = append(sk.Origins, origin)
					return nil
				}); err != nil {
					t.Error(err)
					return
				}
				g := demoGuest(NewGuestID())
				g.RealJID = fmt.Sprintf("w%d-%d@guest.example.org/r", w, i)
				if err := s.PutGuest(g); err != nil {
					t.Error(err)
					return
				}
				if got, err := s.GuestByRealJID("demo", g.RealJID); err != nil || got.ID != g.ID {
					t.Errorf("GuestByRealJID right after PutGuest: %+v, %v", got, err)
					return
				}
				if err := s.RecordChat(ChatRecord{Skin: "demo", Start: t0, Wait: time.Second, Encrypted: i%2 == 0}); err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Skins(); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	got, err := s.Skin("demo")
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Origins) != workers*each {
		t.Errorf("skin has %d origins, want %d: updates were lost", len(got.Origins), workers*each)
	}
	st, err := s.Stats("demo", t0)
	if err != nil || len(st.Days) != 1 || st.Days[0].Chats != workers*each || st.Days[0].EncryptedShare != 0.5 {
		t.Errorf("Stats = %+v, %v; want one day of %d chats, half encrypted", st, err, workers*each)
	}
	checkIndex(t, s)
}
