package otr

import (
	"math/big"
	"sync"
)

// Fixed-base exponentiation for g = 2 in the DH group: a table of
// g^(d·16^i) for every 4-bit digit d of a 320-bit exponent makes g^x a
// product of 80 table entries instead of 320 squarings and 80
// multiplications. It serves the key generation of the AKE and of key
// rotation, the most frequent exponentiations; the table (80×15 entries
// of 192 bytes, 230 KB) is built on first use. Like math/big itself it is
// not constant-time: entries are picked by the exponent's digits.

const (
	fixedDigits = dhExponentBytes * 2 // 4-bit digits of a 320-bit exponent
)

var (
	fixedOnce  sync.Once
	fixedTable [fixedDigits][15]*big.Int // fixedTable[i][d-1] = g^(d·16^i) mod p
)

func buildFixedTable() {
	base := new(big.Int).Set(dhG)
	for i := 0; i < fixedDigits; i++ {
		acc := new(big.Int).Set(base)
		fixedTable[i][0] = acc
		for d := 1; d < 15; d++ {
			next := new(big.Int).Mul(fixedTable[i][d-1], base)
			fixedTable[i][d] = next.Mod(next, dhP)
		}
		// base^16 for the next digit.
		b16 := new(big.Int).Mul(fixedTable[i][14], base)
		base = b16.Mod(b16, dhP)
	}
}

// expG returns g^x mod p for 0 <= x < 2^320.
func expG(x *big.Int) *big.Int {
	if x.BitLen() > fixedDigits*4 {
		return new(big.Int).Exp(dhG, x, dhP)
	}
	fixedOnce.Do(buildFixedTable)
	r := big.NewInt(1)
	t := new(big.Int)
	words := x.Bits()
	for i := 0; i < fixedDigits; i++ {
		bit := i * 4
		w := bit / bitsPerWord
		if w >= len(words) {
			break
		}
		d := (uint(words[w]) >> (bit % bitsPerWord)) & 15
		if d == 0 {
			continue
		}
		t.Mul(r, fixedTable[i][d-1])
		r.Mod(t, dhP)
	}
	return r
}

const bitsPerWord = 32 << (^uint(0) >> 63)
