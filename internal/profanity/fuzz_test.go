package profanity

import (
	"strings"
	"testing"
)

// FuzzParseFingerprint: what Start reads off the screen never panics the
// parser, and a fingerprint it accepts is 64 lower-case hex digits that
// FormatFingerprint writes back in the form it was read from.
func FuzzParseFingerprint(f *testing.F) {
	f.Add("196b6911-20cffccb-6399d00f-2f1cde40-4317667f-f81b530c-4726e6d8-6f5b060b")
	f.Add("196B6911-20CFFCCB-6399D00F-2F1CDE40-4317667F-F81B530C-4726E6D8-6F5B060B")
	f.Add("196b691120cffccb6399d00f2f1cde404317667ff81b530c4726e6d86f5b060b")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseFingerprint(s)
		if err != nil {
			return
		}
		if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
			t.Fatalf("parseFingerprint(%q) = %q", s, h)
		}
		if got := FormatFingerprint(h); got != strings.ToLower(s) {
			t.Fatalf("FormatFingerprint(%q) = %q, read from %q", h, got, s)
		}
	})
}
