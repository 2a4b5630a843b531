package otr

import (
	"math/big"
	"sync"
)

// Fixed-base exponentiation for g = 2 in the DH group: a table of
// g^(d·16^i) for every 4-bit digit d of a 320-bit exponent makes g^x a
// product of 80 table entries instead of 320 squarings and 80
// multiplications. It serves the key generation of the AKE and of key
// rotation, the most frequent exponentiations; the table (80×16 entries
// of 192 bytes, 245 KB) is built on first use.
//
// Entries are read in constant time (every entry of a row is read and
// masked), so the exponent's digits do not show in the memory access
// pattern, and every digit costs one multiplication, zero or not. The
// multiplication and reduction are math/big's, which are not
// constant-time; see the note on timing in conversation.go.

const (
	fixedDigits = dhExponentBytes * 2 // 4-bit digits of a 320-bit exponent
	fixedWords  = 1536 / bitsPerWord
	bitsPerWord = 32 << (^uint(0) >> 63)
)

var (
	fixedOnce  sync.Once
	fixedTable [fixedDigits][16][fixedWords]big.Word // [i][d] = g^(d·16^i) mod p, little-endian words
)

func buildFixedTable() {
	base := new(big.Int).Set(dhG)
	for i := 0; i < fixedDigits; i++ {
		v := big.NewInt(1)
		for d := 0; d < 16; d++ {
			copy(fixedTable[i][d][:], v.Bits())
			v.Mul(v, base)
			v.Mod(v, dhP)
		}
		base = v // base^16
	}
}

// expG returns g^x mod p for 0 <= x < 2^320.
func expG(x *big.Int) *big.Int {
	if x.Sign() < 0 || x.BitLen() > fixedDigits*4 {
		return new(big.Int).Exp(dhG, x, dhP)
	}
	fixedOnce.Do(buildFixedTable)
	var xb [dhExponentBytes]byte
	x.FillBytes(xb[:])
	r := big.NewInt(1)
	t := new(big.Int)
	entry := make([]big.Word, fixedWords)
	e := new(big.Int)
	for i := 0; i < fixedDigits; i++ {
		b := xb[dhExponentBytes-1-i/2]
		d := uint(b>>(4*(i%2))) & 15
		for k := range entry {
			entry[k] = 0
		}
		for j := uint(0); j < 16; j++ {
			// mask is all ones when j == d, else zero.
			mask := big.Word(0) - big.Word((((j^d)-1)>>(bitsPerWord-1))&1)
			row := &fixedTable[i][j]
			for k := range entry {
				entry[k] |= row[k] & mask
			}
		}
		e.SetBits(entry)
		t.Mul(r, e)
		r.Mod(t, dhP)
	}
	return r
}
