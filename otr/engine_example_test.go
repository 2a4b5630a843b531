package otr_test

import (
	"crypto/rand"
	"fmt"

	"otrdesk.im/otrdesk/otr"
)

// Two conversations wired together in memory: what one returns to send
// is what the other receives.
func ExampleConversation() {
	newSide := func() *otr.Conversation {
		key, err := otr.GenerateEphemeralKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		c, err := otr.NewConversation(otr.Config{PrivateKey: key, Policy: otr.PolicyAlways})
		if err != nil {
			panic(err)
		}
		return c
	}
	visitor, operator := newSide(), newSide()

	// deliver hands each message to the other side, and its answers
	// back, until nothing is left to send.
	var deliver func(to, from *otr.Conversation, msgs [][]byte)
	deliver = func(to, from *otr.Conversation, msgs [][]byte) {
		for _, m := range msgs {
			show, send, events, err := to.Receive(m)
			if err != nil {
				panic(err)
			}
			for _, e := range events {
				if e.Kind == otr.EventGoneSecure {
					fmt.Println("gone secure")
				}
			}
			if show != nil {
				fmt.Printf("shown: %s\n", show)
			}
			deliver(from, to, send)
		}
	}

	// With encryption required, Send holds the message and asks for OTR;
	// the message goes out encrypted once the AKE is done.
	out, _ := visitor.Send([]byte("Hello, is my order on its way?"))
	deliver(operator, visitor, out)

	fp, _ := visitor.PeerFingerprint()
	opKey, _ := operator.PeerKey()
	fmt.Println(visitor.IsEncrypted(), operator.IsEncrypted(), len(fp.String()), opKey != nil)

	out, _ = operator.Send([]byte("Yes, it left today."))
	deliver(visitor, operator, out)
	// Output:
	// gone secure
	// gone secure
	// shown: Hello, is my order on its way?
	// true true 44 true
	// shown: Yes, it left today.
}
