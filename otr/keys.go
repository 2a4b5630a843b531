package otr

import (
	"crypto/dsa" //nolint:staticcheck // OTR v3 long-term keys are DSA-1024/160; libotr accepts nothing else.
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
	"math/big"
	"unicode"
	"unicode/utf8"
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
		return nil, wrap("otr: generating DSA parameters", err)
	}
	if err := dsa.GenerateKey(&k, rand); err != nil {
		return nil, wrap("otr: generating DSA key", err)
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

// Check reports why k is not a usable DSA private key: wrong sizes, x out
// of range, g not of order q, or y not g^x mod p. It does not test p and q
// for primality.
func (k *PrivateKey) Check() error {
	one := big.NewInt(1)
	switch {
	case !k.PublicKey.wellFormed():
		return errors.New("p, q, g or y has the wrong size")
	case k.X == nil || k.X.Sign() <= 0 || k.X.Cmp(k.Q) >= 0:
		return errors.New("x is not between 0 and q")
	case new(big.Int).Mod(new(big.Int).Sub(k.P, one), k.Q).Sign() != 0:
		return errors.New("q does not divide p-1")
	case new(big.Int).Exp(k.G, k.Q, k.P).Cmp(one) != 0:
		return errors.New("g is not of order q")
	case new(big.Int).Exp(k.G, k.X, k.P).Cmp(k.Y) != 0:
		return errors.New("y is not g^x mod p")
	}
	return nil
}

// PrivateBytes returns the private key in the form otr.js packPrivate(),
// python-potr serializePrivateKey() and x/crypto/otr Serialize() share:
// the type SHORT 0x0000 then the MPIs p, q, g, y and x. Package keyfile
// writes it as otr.js's base64 text; the engine's exported state holds it.
func (k *PrivateKey) PrivateBytes() []byte {
	return appendMPI(k.PublicKey.Bytes(), k.X)
}

// ParsePrivateKey reads a private key in the PrivateBytes form from the
// front of b and checks it (sizes, y = g^x mod p).
func ParsePrivateKey(b []byte) (k *PrivateKey, rest []byte, ok bool) {
	pub, rest, ok := ParsePublicKey(b)
	if !ok {
		return nil, b, false
	}
	x, rest, ok := readMPI(rest)
	if !ok {
		return nil, b, false
	}
	k = &PrivateKey{PublicKey: *pub, X: x}
	if k.Check() != nil {
		return nil, b, false
	}
	return k, rest, true
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
	h := string(f.upperHex())
	return h[0:8] + " " + h[8:16] + " " + h[16:24] + " " + h[24:32] + " " + h[32:40]
}

// Hex gives the 40 lower-case hex digits libotr's fingerprints file uses.
func (f Fingerprint) Hex() string { return hex.EncodeToString(f[:]) }

// MarshalText gives the canonical text form otrdesk sends between programs
// (JSON of the admin API, widget events): 40 upper-case hex digits, no
// grouping. Grouping is for people (String).
func (f Fingerprint) MarshalText() ([]byte, error) {
	return f.upperHex(), nil
}

// upperHex is f as 40 upper-case hex digits. (Not strings.ToUpper of
// hex.EncodeToString: that links the Unicode case tables into the
// WebAssembly engine for 16 letters.)
func (f Fingerprint) upperHex() []byte {
	const digits = "0123456789ABCDEF"
	b := make([]byte, 2*len(f))
	for i, c := range f {
		b[2*i], b[2*i+1] = digits[c>>4], digits[c&15]
	}
	return b
}

// UnmarshalText accepts every form ParseFingerprint does.
func (f *Fingerprint) UnmarshalText(b []byte) error {
	g, err := ParseFingerprint(string(b))
	if err != nil {
		return err
	}
	*f = g
	return nil
}

// IsZero reports whether f is the zero value (no fingerprint).
func (f Fingerprint) IsZero() bool { return f == Fingerprint{} }

// ErrBadFingerprint is returned by ParseFingerprint.
var ErrBadFingerprint = errors.New("otr: a fingerprint is 40 hex digits, optionally in five groups of eight")

// ParseFingerprint accepts the forms people paste: the grouped human form,
// 40 hex digits in either case, with or without spaces or colons.
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	compact := withoutSeparators(s)
	if len(compact) != 40 {
		return f, ErrBadFingerprint
	}
	if !decodeHex(f[:], compact) {
		return f, ErrBadFingerprint
	}
	return f, nil
}

// withoutSeparators is s without colons and white space (Unicode's, as
// strings.Fields splits on), with every other byte kept as it is.
func withoutSeparators(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r != ':' && !unicode.IsSpace(r) {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return string(b)
}

// Sign signs hash and returns r‖s, each as many bytes as q (20 for
// DSA-1024/160). The hash is used whole and reduced modulo q, as the OTR
// v3.4.1.1 clarification and libotr do.
func (k *PrivateKey) Sign(rand io.Reader, hash []byte) ([]byte, error) {
	r, s, err := dsa.Sign(rand, k.dsa(), hash)
	if err != nil {
		return nil, wrap("otr: signing", err)
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
