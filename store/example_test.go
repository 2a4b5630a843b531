package store_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"otrdesk.im/otrdesk/store"
)

func Example() {
	dir, err := os.MkdirTemp("", "otrdesk-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := store.Open(filepath.Join(dir, "otrdesk.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// A skin: the chat box a website embeds.
	err = s.CreateSkin(store.Skin{
		Name:      "support",
		Title:     "Support",
		Policy:    store.PolicyRequire,
		Operators: []string{"Alice@Example.org"},
		Origins:   []string{"https://www.example.com:443"},
	})
	if err != nil {
		log.Fatal(err)
	}
	sk, err := s.Skin("support")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(sk.Name, sk.Policy, sk.Operators, sk.Origins)

	// Validation says what to put there.
	err = s.CreateSkin(store.Skin{Name: "sales", Title: "Sales", Policy: "always"})
	fmt.Println(errors.Is(err, store.ErrInvalid), err)

	// A visitor writes to support@D: the component gives them an alias.
	visitor := "k3j2x@guest.example.org/web"
	g, err := s.GuestByRealJID("support", visitor)
	if errors.Is(err, store.ErrNotFound) {
		g = store.Guest{ID: store.NewGuestID(), RealJID: visitor, Skin: "support", State: "queued"}
		err = s.PutGuest(g)
	}
	if err != nil {
		log.Fatal(err)
	}
	again, _ := s.GuestByRealJID("support", visitor)
	fmt.Println(len(g.ID), again.ID == g.ID, again.State)

	// When the chat ends, its metadata goes into the statistics.
	day := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	for _, r := range []store.ChatRecord{
		{Skin: "support", Start: day, Wait: 20 * time.Second, Duration: 4 * time.Minute, Encrypted: true},
		{Skin: "support", Start: day.Add(time.Hour), Wait: 40 * time.Second, Duration: 6 * time.Minute},
	} {
		if err := s.RecordChat(r); err != nil {
			log.Fatal(err)
		}
	}
	st, err := s.Stats("support", day)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range st.Days {
		fmt.Println(d.Day, d.Chats, d.MedianWait, d.MedianDuration, d.EncryptedShare)
	}

	// Output:
	// support require [alice@example.org] [https://www.example.com]
	// true store: skin sales: policy "always" is not one of "require", "opportunistic", "plaintext"
	// 16 true queued
	// 2026-11-20 2 30s 5m0s 0.5
}

func ExampleOpen_inUse() {
	dir, err := os.MkdirTemp("", "otrdesk-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "otrdesk.db")

	s, err := store.Open(path)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	// While serve holds the store, the CLI gets a clear error within a second.
	_, err = store.Open(path)
	fmt.Println(errors.Is(err, store.ErrInUse))
	fmt.Println(err)

	// Output:
	// true
	// store: the store is in use by another process (is otrdesk serve running?)
}
