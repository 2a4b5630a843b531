package store

import (
	"encoding/binary"
	"time"
)

// Helpers for the compact binary records (guests, operators, chat records).
// Appenders extend b; readers return (value, rest, ok) and never panic.

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func readString(b []byte) (string, []byte, bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return "", nil, false
	}
	b = b[k:]
	return string(b[:n]), b[n:], true // string() copies out of bbolt's memory
}

func readUvarint(b []byte) (uint64, []byte, bool) {
	v, k := binary.Uvarint(b)
	if k <= 0 {
		return 0, nil, false
	}
	return v, b[k:], true
}

func readVarint(b []byte) (int64, []byte, bool) {
	v, k := binary.Varint(b)
	if k <= 0 {
		return 0, nil, false
	}
	return v, b[k:], true
}

func readByte(b []byte) (byte, []byte, bool) {
	if len(b) == 0 {
		return 0, nil, false
	}
	return b[0], b[1:], true
}

// appendTime writes a non-zero time as varint seconds and uvarint
// nanoseconds (zero times are left out by the caller's presence mask).
func appendTime(b []byte, t time.Time) []byte {
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func readTime(b []byte) (time.Time, []byte, bool) {
	sec, b, ok := readVarint(b)
	if !ok {
		return time.Time{}, nil, false
	}
	ns, b, ok := readUvarint(b)
	if !ok || ns >= 1e9 {
		return time.Time{}, nil, false
	}
	t := time.Unix(sec, int64(ns)).UTC()
	if t.IsZero() {
		// The zero time is encoded by absence; its explicit form is damage.
		return time.Time{}, nil, false
	}
	return t, b, true
}
