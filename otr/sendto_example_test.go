package otr_test

import (
	"crypto/rand"
	"errors"
	"fmt"

	"otrdesk.im/otrdesk/otr"
)

// A user interface that tells its user "encrypted to the key you trust"
// remembers the session that claim is about (instance and fingerprint of
// the secure event it showed) and sends with SendTo: the text goes to that
// session or nowhere.
func ExampleConversation_SendTo() {
	newSide := func(p otr.Policy) (*otr.Conversation, otr.Fingerprint) {
		key, err := otr.GenerateEphemeralKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		c, err := otr.NewConversation(otr.Config{PrivateKey: key, Policy: p})
		if err != nil {
			panic(err)
		}
		return c, key.PublicKey.Fingerprint()
	}
	visitor, _ := newSide(otr.PolicyAlways)
	operator, trusted := newSide(otr.PolicyOpportunistic)

	var shown otr.Event // the secure event the interface showed
	var deliver func(to, from *otr.Conversation, msgs [][]byte)
	deliver = func(to, from *otr.Conversation, msgs [][]byte) {
		for _, m := range msgs {
			show, send, events, err := to.Receive(m)
			if err != nil {
				panic(err)
			}
			for _, e := range events {
				if to == visitor && e.Kind == otr.EventGoneSecure && e.Fingerprint == trusted {
					shown = e
				}
			}
			if show != nil {
				fmt.Printf("shown: %s (encrypted: %v)\n", show, to.LastShown().Encrypted)
			}
			deliver(from, to, send)
		}
	}
	q, _ := visitor.Start()
	deliver(operator, visitor, q)

	out, err := visitor.SendTo(shown.Instance, shown.Fingerprint, []byte("My order number is 1234."))
	fmt.Println(err)
	deliver(operator, visitor, out)

	// Any other key (say, after a re-key nobody verified) is refused, and
	// nothing is kept to be sent later.
	other, _ := newSide(otr.PolicyManual)
	out, err = visitor.SendTo(shown.Instance, other.OurFingerprint(), []byte("x"))
	fmt.Println(len(out), errors.Is(err, otr.ErrNotBound))
	// Output:
	// <nil>
	// shown: My order number is 1234. (encrypted: true)
	// 0 true
}
