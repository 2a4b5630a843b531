package xmpptest_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"otrdesk.im/otrdesk/internal/xmpptest"
)

// A private Prosody, two accounts and a message between them.
func ExampleStartProsody() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, err := xmpptest.StartProsody(ctx, xmpptest.Options{
		Components: map[string]string{"chat.example.org": "component secret"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	for _, u := range []string{"alice", "bob"} {
		if _, err := srv.Register(ctx, u, u+"-password"); err != nil {
			log.Fatal(err)
		}
	}
	alice, err := srv.Dial(ctx, "alice", "alice-password", "desk")
	if err != nil {
		log.Fatal(err)
	}
	defer alice.Close()
	bob, err := srv.Dial(ctx, "bob", "bob-password", "phone")
	if err != nil {
		log.Fatal(err)
	}
	defer bob.Close()

	if err := alice.Message(ctx, "bob@example.org/phone", "hello, Bob"); err != nil {
		log.Fatal(err)
	}
	st, err := bob.Next(ctx, func(st xmpptest.Stanza) bool { return st.Name == "message" })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s from %s: %s\n", st.Name, st.From, st.Body)
	// Output: message from alice@example.org/desk: hello, Bob
}
