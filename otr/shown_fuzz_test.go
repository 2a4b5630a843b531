package otr

import "testing"

// FuzzLastShown: whatever body arrives during an encrypted chat,
// LastShown claims encryption only for text Receive returned from an
// encoded message or a fragment, decrypted by the session of the instance
// it names, whose key has the fingerprint it names; it makes no claim for
// a body that showed nothing, and none for bare or tagged plaintext.
func FuzzLastShown(f *testing.F) {
	v, op := securePair(f, PolicyAlways, PolicyOpportunistic)
	op.send("a Data message")
	data := op.out
	op.out = nil
	op.c.maxSize = 80
	op.send("a Data message in fragments")
	frags := op.out
	op.out = nil
	plainFrags, err := SplitMessage("plaintext in fragments that look like those of an encoded message", 60, 3, op.c.InstanceTag(), v.c.InstanceTag())
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range append(data, frags...) {
		f.Add(m)
	}
	for _, m := range append(plainFrags, "plain", "tagged"+WhitespaceTag(OfferV2|OfferV3), "?OTR Error: x", QueryMessage(OfferV3)) {
		f.Add([]byte(m))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		c := cloneConv(v.c)
		show, _, _, _ := c.Receive(body)
		s := c.LastShown()
		if !s.Encrypted {
			if s != (Shown{}) {
				t.Fatalf("not encrypted but names %+v", s)
			}
			return
		}
		if show == nil {
			t.Fatalf("claims %+v for a body that showed nothing", s)
		}
		if k := Classify(body).Kind; k != KindEncoded && k != KindFragment {
			t.Fatalf("claims encryption for a body of kind %v", k)
		}
		sess := c.sessions[s.Instance]
		if sess == nil || sess.theirKey == nil || sess.theirKey.Fingerprint() != s.Fingerprint {
			t.Fatalf("claims a session %#x with %s that does not exist", s.Instance, s.Fingerprint)
		}
	})
}
