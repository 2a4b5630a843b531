package otr

// Benchmarks, to be read as ratios within one run:
//
//	go test -run '^$' -bench 'Classify|GenerateKey' -benchmem ./otr/
//
// Classify is compared with bytes.HasPrefix (the cheapest possible look at
// a body) and bytes.Contains of "?OTR" (the least a correct classifier of
// plaintext must do: look at every byte); key generation with libotr's,
// measured inside the keytool process.

import (
	"bytes"
	"crypto/rand"
	"testing"

	"otrdesk.im/otrdesk/internal/libotrtest"
)

var sink Info

func BenchmarkClassify(b *testing.B) {
	plain := []byte("Hello, I ordered a blue kettle last Tuesday and it has not arrived yet; could you check order 4711?")
	frag, err := SplitMessage(v3Data+string(bytes.Repeat([]byte("A"), 200)), 100, 3, 0x1a2b3c4d, 0x100)
	if err != nil {
		b.Fatal(err)
	}
	data := []byte(EncodeMessage(bytes.Repeat([]byte{0, 3, 3, 0x1a, 0x2b, 0x3c, 0x4d, 0, 0, 1, 0}, 40)))
	var ok bool
	b.Run("baseline HasPrefix", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ok = bytes.HasPrefix(plain, markOTR)
		}
	})
	b.Run("baseline Contains", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ok = bytes.Contains(plain, markOTR)
		}
	})
	_ = ok
	for _, bc := range []struct {
		name string
		body []byte
	}{
		{"plaintext", plain},
		{"query", []byte("?OTRv23?\n<b>op1@example.org</b> has requested an Off-the-Record private conversation.")},
		{"data header", data},
		{"fragment", []byte(frag[1])},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				sink = Classify(bc.body)
			}
		})
	}
}

func BenchmarkGenerateKey(b *testing.B) {
	b.Run("go full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := GenerateKey(rand.Reader); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("go ephemeral", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := GenerateEphemeralKey(rand.Reader); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("libotr", func(b *testing.B) {
		libotrtest.Build(b, "keytool") // compile outside the measurement
		spent := libotrtest.GenerateKeys(b, b.N)
		b.ReportMetric(float64(spent)/float64(b.N), "ns/op")
	})
}
