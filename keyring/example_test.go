package keyring_test

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"otrdesk.im/otrdesk/keyring"
)

// The admin signs a skin's keys on their own machine; a reader that pins the
// admin's public key checks signature, skin, expiry and serial before it
// trusts any key.
func Example() {
	seed := make([]byte, ed25519.SeedSize) // a real signer comes from `otrdesk signer generate`
	priv := ed25519.NewKeyFromSeed(seed)
	signed, err := keyring.Sign(keyring.Keyring{
		Skin:     "library",
		Serial:   7,
		NotAfter: time.Date(2026, 12, 21, 6, 0, 0, 0, time.UTC),
		Keys:     []keyring.Key{{Kind: keyring.KindOTR, Value: "1921C1B48AC86D702A3ADA33A2D7A86A1771FC70"}},
	}, priv)
	if err != nil {
		panic(err)
	}
	fmt.Print(string(signed))

	pub, _ := keyring.ParseSigner(keyring.FormatSigner(priv.Public().(ed25519.PublicKey)))
	now := time.Date(2026, 12, 10, 0, 0, 0, 0, time.UTC)
	k, err := keyring.Verify(signed, pub, "library", now, 6)
	fmt.Println(k.OTRFingerprints(), err)
	_, err = keyring.Verify(signed, pub, "bank", now, 0)
	fmt.Println(err)
	_, err = keyring.Verify(signed, pub, "library", now, 8)
	fmt.Println(err)
	// Output:
	// otrdesk-keyring 1
	// skin library
	// serial 7
	// not-after 2026-12-21T06:00:00Z
	// key otr 1921C1B48AC86D702A3ADA33A2D7A86A1771FC70
	// signature 6KTD6WZzsve7CuuTsXYXUpFF9ZIoJiGHLDGOS/iMzKhLYF4v9plODFeFQYSec8G3S+MlRfZ7elmbIcWXGeXsCA==
	// [1921C1B48AC86D702A3ADA33A2D7A86A1771FC70] <nil>
	// keyring: signed for another skin: it names skin "library", not "bank"
	// keyring: serial lower than one seen before: serial 7, and 8 was seen before
}
