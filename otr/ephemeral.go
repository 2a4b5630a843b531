package otr

import (
	"crypto/rand"
	"io"
	"math/big"
)

// The fixed DSA-1024/160 domain parameters of ephemeral keys, generated
// once with crypto/dsa.GenerateParameters (FIPS 186-3 style: q prime of 160
// bits, p prime of 1024 bits with q | p-1, g of order q) and published
// here. TestEphemeralParameters checks all of that. Sharing parameters
// costs nothing in OTR: a fingerprint covers p, q, g and y, and DSA's
// security rests on x.
const (
	ephemeralPHex = "" +
		"9D75D59414CA1F5D52851D2CA60EC4199C1F812C24D79A65021D50D99AD35863" +
		"C90E2A9AFFB52E1D502C2CF3E14D19492796702F8E05DDE9078552F8E1ECA31E" +
		"850CB98F3D6CE008B05957E75829C0C9B60A1437355280E50902F91FD2A73205" +
		"0480C9BA3303DE0C7ABC95448DD01C6568141A21875AE1714FAD97A9C79A0F7D"
	ephemeralQHex = "8F8BF31DA5DF123570A887855B4B117862D78D15"
	ephemeralGHex = "" +
		"8E17A0A8A34E3C8F273A0436EDCA440C4D3A9B6501811191BEE66F8981D78969" +
		"C2AF1E0A8DC42482592D878BD09B56DBD836CC1386B1C3C005C540C00C55997E" +
		"10A7115532661F8EAB455D753C9D271DD27913A758A9F40DBBA327D08FD604DC" +
		"34168E5F8D884C15A1C462325587A96813CDC746EB087AB10860DCC3C6432A9E"
)

var ephemeralP, ephemeralQ, ephemeralG = constHex(ephemeralPHex), constHex(ephemeralQHex), constHex(ephemeralGHex)

func constHex(s string) *big.Int {
	return mustBig(s) // constants of this file; TestEphemeralParameters checks them
}

// GenerateEphemeralKey makes a DSA key on the fixed, published domain
// parameters above: one random x and one exponentiation, with no
// parameter search, so that a visitor's browser has a long-term OTR key at
// once. libotr and Pidgin accept such keys like any other; the key is
// meant to live as long as a visitor's chat.
func GenerateEphemeralKey(rand io.Reader) (*PrivateKey, error) {
	x, err := randScalar(rand, ephemeralQ)
	if err != nil {
		return nil, wrap("otr: generating an ephemeral key", err)
	}
	y := new(big.Int).Exp(ephemeralG, x, ephemeralP)
	return &PrivateKey{
		PublicKey: PublicKey{P: new(big.Int).Set(ephemeralP), Q: new(big.Int).Set(ephemeralQ), G: new(big.Int).Set(ephemeralG), Y: y},
		X:         x,
	}, nil
}

// randScalar returns a uniform integer in [1, q-1].
func randScalar(r io.Reader, q *big.Int) (*big.Int, error) {
	max := new(big.Int).Sub(q, big.NewInt(1))
	x, err := rand.Int(r, max)
	if err != nil {
		return nil, err
	}
	return x.Add(x, big.NewInt(1)), nil
}
