package otr

import "errors"

// TLV types carried inside Data messages (Protocol-v3 "Type/Length/Value").
const (
	tlvPadding      = 0
	tlvDisconnected = 1
	tlvSMP1         = 2
	tlvSMP2         = 3
	tlvSMP3         = 4
	tlvSMP4         = 5
	tlvSMPAbort     = 6
	tlvSMP1Q        = 7
	tlvExtraKey     = 8
)

type tlv struct {
	typ   uint16
	value []byte
}

var errBadTLV = errors.New("otr: malformed TLV")

// appendTLV writes one TLV; value must be shorter than 65536 bytes.
func appendTLV(b []byte, t tlv) []byte {
	b = appendShort(b, t.typ)
	b = appendShort(b, uint16(len(t.value)))
	return append(b, t.value...)
}

// splitPlaintext separates the human-readable part of a decrypted Data
// message from its TLVs: the message ends at the first NUL, and TLVs follow
// it. A trailing fragment too short to be a TLV is an error; the readable
// part is returned anyway.
func splitPlaintext(p []byte) (msg []byte, tlvs []tlv, err error) {
	i := 0
	for i < len(p) && p[i] != 0 {
		i++
	}
	msg = p[:i]
	if i == len(p) {
		return msg, nil, nil
	}
	rest := p[i+1:]
	for len(rest) > 0 {
		typ, r, ok := readShort(rest)
		if !ok {
			return msg, tlvs, errBadTLV
		}
		n, r, ok := readShort(r)
		if !ok || int(n) > len(r) {
			return msg, tlvs, errBadTLV
		}
		tlvs = append(tlvs, tlv{typ: typ, value: r[:n]})
		rest = r[n:]
	}
	return msg, tlvs, nil
}
