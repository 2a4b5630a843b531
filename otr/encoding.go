package otr

import (
	"encoding/binary"
	"math/big"
)

// The OTR data types (Protocol-v3 "Data types"): BYTE, SHORT and INT are
// big-endian unsigned integers of 1, 2 and 4 bytes; DATA is an INT length
// followed by that many bytes; MPI is DATA holding a big-endian magnitude
// with no leading zero bytes. The append functions write one value; the read
// functions return the value, the rest of the input and whether the input
// held a complete, well-formed value. They never panic on any input.

func appendShort(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }

func appendInt(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }

func appendData(b, v []byte) []byte {
	b = appendInt(b, uint32(len(v)))
	return append(b, v...)
}

func appendMPI(b []byte, v *big.Int) []byte {
	n := (v.BitLen() + 7) / 8
	b = appendInt(b, uint32(n))
	start := len(b)
	b = append(b, make([]byte, n)...)
	v.FillBytes(b[start:])
	return b
}

func readByte(b []byte) (byte, []byte, bool) {
	if len(b) < 1 {
		return 0, b, false
	}
	return b[0], b[1:], true
}

func readShort(b []byte) (uint16, []byte, bool) {
	if len(b) < 2 {
		return 0, b, false
	}
	return binary.BigEndian.Uint16(b), b[2:], true
}

func readInt(b []byte) (uint32, []byte, bool) {
	if len(b) < 4 {
		return 0, b, false
	}
	return binary.BigEndian.Uint32(b), b[4:], true
}

func readData(b []byte) ([]byte, []byte, bool) {
	n, rest, ok := readInt(b)
	if !ok || uint64(n) > uint64(len(rest)) {
		return nil, b, false
	}
	return rest[:n], rest[n:], true
}

// readMPI accepts leading zero bytes, as libotr does when reading, but
// appendMPI never writes them.
func readMPI(b []byte) (*big.Int, []byte, bool) {
	v, rest, ok := readData(b)
	if !ok {
		return nil, b, false
	}
	return new(big.Int).SetBytes(v), rest, true
}
