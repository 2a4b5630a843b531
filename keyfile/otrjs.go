package keyfile

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"otrdesk.im/otrdesk/otr"
)

// ErrBadPublicKey is returned by ParsePublic.
var ErrBadPublicKey = errors.New("keyfile: not an OTR DSA public key")

// MarshalOTRJS returns k as otr.js stores it: standard base64 of
// otr.PrivateKey.PrivateBytes, with a final newline.
func MarshalOTRJS(k *otr.PrivateKey) []byte {
	return []byte(base64.StdEncoding.EncodeToString(k.PrivateBytes()) + "\n")
}

// ParseOTRJS reads an otr.js or python-potr private key: base64 (white
// space ignored) of SHORT 0x0000 then MPIs p, q, g, y, x.
func ParseOTRJS(s string) (*otr.PrivateKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, fmt.Errorf("%w: the text is not base64", ErrBadPrivateKey)
	}
	k, rest, ok := otr.ParsePrivateKey(b)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrBadPrivateKey, whyNotPrivateKey(b))
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes follow the key", ErrBadPrivateKey, len(rest))
	}
	return k, nil
}

// MarshalPublic returns the bare public form of k: standard base64 of
// otr.PublicKey.Bytes (SHORT 0x0000 then MPIs p, q, g, y), with a final
// newline. It is otr.js's packPublic() in base64, and it holds nothing
// secret.
func MarshalPublic(k *otr.PublicKey) []byte {
	return []byte(base64.StdEncoding.EncodeToString(k.Bytes()) + "\n")
}

// ParsePublic reads the bare public form.
func ParsePublic(s string) (*otr.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		return nil, fmt.Errorf("%w: the text is not base64", ErrBadPublicKey)
	}
	k, rest, ok := otr.ParsePublicKey(b)
	if !ok {
		return nil, fmt.Errorf("%w: the type, a length or a size is wrong", ErrBadPublicKey)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes follow the key", ErrBadPublicKey, len(rest))
	}
	return k, nil
}

// whyNotPrivateKey explains why otr.ParsePrivateKey refused b, without
// quoting any of it.
func whyNotPrivateKey(b []byte) string {
	if len(b) < 2 {
		return "it is shorter than a key type"
	}
	if typ := uint16(b[0])<<8 | uint16(b[1]); typ != otr.PublicKeyTypeDSA {
		return fmt.Sprintf("the key type is %#04x, not DSA (0x0000)", typ)
	}
	pub, rest, ok := otr.ParsePublicKey(b)
	if !ok {
		return "p, q, g or y is cut short or has the wrong size"
	}
	if len(rest) == 0 {
		return "it ends before the MPI x: it is a public key, not a private one"
	}
	x, ok := readMPI(rest)
	if !ok {
		return "it ends before the MPI x is complete: it is cut short"
	}
	if err := (&otr.PrivateKey{PublicKey: *pub, X: x}).Check(); err != nil {
		return err.Error()
	}
	return "it is malformed"
}

// readMPI reads one MPI (a 4-byte big-endian length, then the magnitude).
func readMPI(b []byte) (*big.Int, bool) {
	if len(b) < 4 {
		return nil, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, false
	}
	return new(big.Int).SetBytes(b[4 : 4+n]), true
}
