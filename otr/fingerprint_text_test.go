package otr

import (
	"encoding/hex"
	"strings"
	"testing"
)

// The fingerprint text forms are built without package strings (see
// upperHex); they must stay what the strings-based forms were.

// referenceCompact is how ParseFingerprint removed separators before.
func referenceCompact(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, ":", " ")), "")
}

func TestFingerprintTextLikeStrings(t *testing.T) {
	for _, f := range []Fingerprint{{}, {0xff, 0x0a, 0xb3}, {19: 0x9c}} {
		want := strings.ToUpper(hex.EncodeToString(f[:]))
		if b, _ := f.MarshalText(); string(b) != want {
			t.Errorf("MarshalText %s, want %s", b, want)
		}
		if g := strings.ReplaceAll(f.String(), " ", ""); g != want {
			t.Errorf("String %s, want %s grouped", f.String(), want)
		}
	}
}

func FuzzWithoutSeparators(f *testing.F) {
	for _, s := range []string{
		"", "0123 4567", "01:23:45", "\u00a00123\u2003ab\u3000", "\t\n\v\f\r\u0085x", "a\xffb\xc3", "\ufffd:\u200b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := withoutSeparators(s), referenceCompact(s); got != want {
			t.Fatalf("withoutSeparators(%q) = %q, strings gave %q", s, got, want)
		}
	})
}
