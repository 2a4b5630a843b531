package otr

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

// The helpers of wrap.go stand in for fmt verbs; their text must be
// exactly fmt's, since callers and logs see it.
func TestWrapLikeFmt(t *testing.T) {
	for _, err := range []error{ErrMalformed, io.ErrUnexpectedEOF, wrap("inner", ErrBadMAC)} {
		got, want := wrap("otr: reading", err), fmt.Errorf("otr: reading: %w", err)
		if got.Error() != want.Error() {
			t.Errorf("wrap: %q, fmt: %q", got, want)
		}
		if !errors.Is(got, err) || errors.Unwrap(got) != err {
			t.Errorf("wrap(%q) does not unwrap to it", err)
		}
	}
	if !errors.Is(wrap("outer", wrap("inner", ErrBadMAC)), ErrBadMAC) {
		t.Error("a wrapped wrap does not unwrap to the innermost error")
	}
}

func TestNumbersLikeFmt(t *testing.T) {
	for _, v := range []uint32{0, 1, 9, 10, 0xf, 0x10, 0xff, 0x100, 0x1234, 0xabcdef, 0x7fffffff, 0xffffffff} {
		if got, want := hex0x(v), fmt.Sprintf("%#x", v); got != want {
			t.Errorf("hex0x(%d) = %q, fmt %%#x: %q", v, got, want)
		}
		if got, want := padded(hexDigits(v), 8), fmt.Sprintf("%08x", v); got != want {
			t.Errorf("padded(hexDigits(%d), 8) = %q, fmt %%08x: %q", v, got, want)
		}
	}
	for v := 0; v <= 0xff; v++ {
		switch mt := MessageType(v); mt {
		case DHCommit, DHKey, RevealSig, Sig, Data:
		default:
			if got, want := mt.String(), fmt.Sprintf("MessageType(%#02x)", v); got != want {
				t.Errorf("MessageType(%d) = %q, fmt: %q", v, got, want)
			}
		}
	}
	for _, n := range []int{0, 1, 9, 10, 99, 100, 12345, 65535, 99999, 100000, 123456789} {
		if got, want := padded(decimal(n), 5), fmt.Sprintf("%05d", n); got != want {
			t.Errorf("padded(decimal(%d), 5) = %q, fmt %%05d: %q", n, got, want)
		}
	}
	if got, want := EventKind(200).String(), fmt.Sprintf("EventKind(%d)", 200); got != want {
		t.Errorf("EventKind(200) = %q, want %q", got, want)
	}
	if got, want := Kind(200).String(), fmt.Sprintf("Kind(%d)", 200); got != want {
		t.Errorf("Kind(200) = %q, want %q", got, want)
	}
}

func TestDecodeHex(t *testing.T) {
	var b [3]byte
	if !decodeHex(b[:], "0aFf9c") || b != [3]byte{0x0a, 0xff, 0x9c} {
		t.Fatalf("decodeHex(0aFf9c) = %x", b)
	}
	for _, bad := range []string{"", "0aff", "0aff9c00", "0aff9g", " aff9c", "0aff9", "+0aff9"} {
		if decodeHex(b[:], bad) {
			t.Errorf("decodeHex accepted %q", bad)
		}
	}
}
