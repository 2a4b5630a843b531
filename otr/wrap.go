package otr

import "strconv"

// This package does not import fmt: the visitor's browser downloads this
// engine as WebAssembly before the first chat, and fmt brings reflect and
// its method tables with it, about 64 KB of the compressed module. Errors
// and the few formatted strings are built with strconv and the helpers
// below instead; their text is exactly what the fmt verbs gave
// (wrap_test.go compares them).

// wrapError is what wrap("context", err) returns: the context
// and err's text, and err itself for errors.Is and errors.As.
type wrapError struct {
	msg string
	err error
}

func (e *wrapError) Error() string { return e.msg }
func (e *wrapError) Unwrap() error { return e.err }

// wrap returns err with context in front, as fmt.Errorf(context+": %w", err).
// err must not be nil.
func wrap(context string, err error) error {
	return &wrapError{msg: context + ": " + err.Error(), err: err}
}

// decimal is fmt's %d.
func decimal(n int) string { return strconv.Itoa(n) }

// hexDigits is fmt's %x: lower-case hex digits, no leading zeros.
func hexDigits(v uint32) string { return strconv.FormatUint(uint64(v), 16) }

// hex0x is fmt's %#x: "0x" and lower-case hex digits.
func hex0x(v uint32) string { return "0x" + hexDigits(v) }

// padded is s with zeros in front up to width characters (fmt's %05d and
// %08x for the non-negative numbers of fragment headers).
func padded(s string, width int) string {
	const zeros = "00000000"
	if n := width - len(s); n > 0 {
		return zeros[:n] + s
	}
	return s
}

// decodeHex fills dst from s, two hex digits of either case per byte, and
// reports whether s was exactly that. It stands in for encoding/hex's
// Decode, whose error type formats itself with fmt.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := hexDigit(s[2*i])
		lo, ok2 := hexDigit(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
