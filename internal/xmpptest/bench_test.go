package xmpptest

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// BenchmarkMessageRoundTrip measures a client → client message through
// Prosody and back, the baseline for otrdesk's relay benchmarks.
func BenchmarkMessageRoundTrip(b *testing.B) {
	s := Prosody(b, Options{})
	s.MustRegister(b, "alice", "a")
	s.MustRegister(b, "bob", "b")
	alice := s.MustDial(b, "alice", "a", "bench")
	bob := s.MustDial(b, "bob", "b", "bench")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		body := strconv.Itoa(i)
		if err := alice.Message(ctx, bob.JID().String(), body); err != nil {
			b.Fatal(err)
		}
		if _, err := bob.Next(ctx, func(st Stanza) bool { return st.Name == "message" && st.Body == body }); err != nil {
			b.Fatal(err)
		}
		if err := bob.Message(ctx, alice.JID().String(), body); err != nil {
			b.Fatal(err)
		}
		if _, err := alice.Next(ctx, func(st Stanza) bool { return st.Name == "message" && st.Body == body }); err != nil {
			b.Fatal(err)
		}
	}
}
