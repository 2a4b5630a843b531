package otr

import (
	"crypto/dsa" //nolint:staticcheck // OTR v3 long-term keys are DSA-1024/160; libotr accepts nothing else.
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
)

// PublicKeyTypeDSA is the only public-key type of OTR v3.
const PublicKeyTypeDSA = 0x0000

// PublicKey is an OTR long-term DSA public key.
type PublicKey struct {
	P, Q, G, Y *big.Int
}

// PrivateKey is an OTR long-term DSA private key.
type PrivateKey struct {
	PublicKey
	X *big.Int
}

// GenerateKey makes a DSA-1024/160 key with fresh domain parameters, the
// kind libotr generates for an account.
func GenerateKey(rand io.Reader) (*PrivateKey, error) {
	var k dsa.PrivateKey
	if err := dsa.GenerateParameters(&k.Parameters, rand, dsa.L1024N160); err != nil {
		return nil, fmt.Errorf("otr: generating DSA parameters: %w", err)
	}
	if err := dsa.GenerateKey(&k, rand); err != nil {
		return nil, fmt.Errorf("otr: generating DSA key: %w", err)
	}
	return &PrivateKey{PublicKey: PublicKey{P: k.P, Q: k.Q, G: k.G, Y: k.Y}, X: k.X}, nil
}

// Bytes returns the OTR encoding of the key: the type SHORT 0x0000 then the
// MPIs p, q, g and y.
func (k *PublicKey) Bytes() []byte {
	b := appendShort(make([]byte, 0, 2+4*(4+128)), PublicKeyTypeDSA)
	return k.appendMPIs(b)
}

func (k *PublicKey) appendMPIs(b []byte) []byte {
	for _, v := range []*big.Int{k.P, k.Q, k.G, k.Y} {
		b = appendMPI(b, v)
	}
	return b
}

// ParsePublicKey reads an OTR-encoded DSA public key from the front of b.
// It checks the shape of the key (type, sizes, ranges), not that p and q are
// prime.
func ParsePublicKey(b []byte) (k *PublicKey, rest []byte, ok bool) {
	typ, rest, ok := readShort(b)
	if !ok || typ != PublicKeyTypeDSA {
		return nil, b, false
	}
	var v [4]*big.Int
	for i := range v {
		if v[i], rest, ok = readMPI(rest); !ok {
			return nil, b, false
		}
	}
	k = &PublicKey{P: v[0], Q: v[1], G: v[2], Y: v[3]}
	if !k.wellFormed() {
		return nil, b, false
	}
	return k, rest, true
}

func (k *PublicKey) wellFormed() bool {
	one := big.NewInt(1)
	return k.P.BitLen() >= 1024 && k.P.BitLen() <= 3072 && k.Q.BitLen() >= 160 && k.Q.BitLen() <= 256 &&
		k.G.Cmp(one) > 0 && k.G.Cmp(k.P) < 0 && k.Y.Cmp(one) > 0 && k.Y.Cmp(k.P) < 0
}

// Fingerprint is the SHA-1 hash of a public key's MPIs p, q, g and y,
// without the key type.
type Fingerprint [20]byte

// Fingerprint returns the key's OTR fingerprint.
func (k *PublicKey) Fingerprint() Fingerprint {
	return sha1.Sum(k.appendMPIs(nil))
}

// String gives the form Pidgin shows: five groups of eight upper-case hex
// digits separated by spaces.
func (f Fingerprint) String() string {
	h := strings.ToUpper(hex.EncodeToString(f[:]))
	return h[0:8] + " " + h[8:16] + " " + h[16:24] + " " + h[24:32] + " " + h[32:40]
}

// Hex gives the 40 lower-case hex digits libotr's fingerprints file uses.
func (f Fingerprint) Hex() string { return hex.EncodeToString(f[:]) }

// ErrBadFingerprint is returned by ParseFingerprint.
var ErrBadFingerprint = errors.New("otr: a fingerprint is 40 hex digits, optionally in five groups of eight")

// ParseFingerprint accepts the human form or 40 hex digits, in either case.
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	compact := strings.Join(strings.Fields(s), "")
	if len(compact) != 40 {
		return f, ErrBadFingerprint
	}
	if _, err := hex.Decode(f[:], []byte(compact)); err != nil {
		return f, ErrBadFingerprint
	}
	return f, nil
}

// Sign signs hash and returns r‖s, each as many bytes as q (20 for
// DSA-1024/160). The hash is used whole and reduced modulo q, as the OTR
// v3.4.1.1 clarification and libotr do.
func (k *PrivateKey) Sign(rand io.Reader, hash []byte) ([]byte, error) {
	r, s, err := dsa.Sign(rand, k.dsa(), hash)
	if err != nil {
		return nil, fmt.Errorf("otr: signing: %w", err)
	}
	n := (k.Q.BitLen() + 7) / 8
	sig := make([]byte, 2*n)
	r.FillBytes(sig[:n])
	s.FillBytes(sig[n:])
	return sig, nil
}

// Verify reports whether sig (r‖s) is a valid signature of hash.
func (k *PublicKey) Verify(hash, sig []byte) bool {
	n := (k.Q.BitLen() + 7) / 8
	if len(sig) != 2*n {
		return false
	}
	r := new(big.Int).SetBytes(sig[:n])
	s := new(big.Int).SetBytes(sig[n:])
	pub := dsa.PublicKey{Parameters: dsa.Parameters{P: k.P, Q: k.Q, G: k.G}, Y: k.Y}
	return dsa.Verify(&pub, hash, r, s)
}

func (k *PrivateKey) dsa() *dsa.PrivateKey {
	return &dsa.PrivateKey{
		PublicKey: dsa.PublicKey{Parameters: dsa.Parameters{P: k.P, Q: k.Q, G: k.G}, Y: k.Y},
		X:         k.X,
	}
}
