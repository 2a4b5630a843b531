package omemo_test

import (
	"fmt"
	"math/rand/v2"

	"otrdesk.im/otrdesk/omemo"
)

// A visitor's device writes to an operator's device it knows only from the
// published bundle; the operator reads it and answers.
func Example() {
	// Fixed randomness makes the operator's identity key, and so its
	// fingerprint, the same on every run. Real devices leave Rand nil.
	operator, err := omemo.NewDevice(omemo.Options{Rand: rand.NewChaCha8([32]byte{1}), PreKeys: 10})
	if err != nil {
		panic(err)
	}
	visitor, err := omemo.NewDevice(omemo.Options{PreKeys: 10})
	if err != nil {
		panic(err)
	}
	fmt.Println("operator fingerprint:", operator.Fingerprint())

	// What the operator's client publishes, as the visitor receives it.
	bundle, err := omemo.ParseBundle(operator.Bundle().Marshal())
	if err != nil {
		panic(err)
	}
	opAddr := omemo.Address{JID: "alice@example.org", Device: operator.ID()}
	e, err := visitor.Encrypt([]byte("Hello, is anyone there?"), []omemo.Recipient{{Address: opAddr, Bundle: bundle}})
	if err != nil {
		panic(err)
	}

	// The element travels as text.
	in, err := omemo.ParseEncrypted(e.Marshal())
	if err != nil {
		panic(err)
	}
	m, err := operator.Decrypt("guest-7@desk.example.org", in)
	if err != nil {
		panic(err)
	}
	fmt.Printf("operator read %q (prekey message: %v, republish bundle: %v)\n", m.Plaintext, m.PreKey, m.Republish)
	fmt.Println("sender's fingerprint matches:", m.Fingerprint == visitor.Fingerprint())

	reply, err := operator.Encrypt([]byte("Yes, how can I help?"), []omemo.Recipient{{Address: m.From}})
	if err != nil {
		panic(err)
	}
	r, err := visitor.Decrypt("alice@example.org", reply)
	if err != nil {
		panic(err)
	}
	fmt.Printf("visitor read %q (prekey message: %v)\n", r.Plaintext, r.PreKey)
	// Output:
	// operator fingerprint: dfafb270 ac4ab6f2 37891932 6557f691 412a063a 8b3e2601 30b7863a a32f3b73
	// operator read "Hello, is anyone there?" (prekey message: true, republish bundle: true)
	// sender's fingerprint matches: true
	// visitor read "Yes, how can I help?" (prekey message: false)
}
