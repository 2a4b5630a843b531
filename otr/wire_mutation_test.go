package otr

import (
	"bytes"
	"testing"

	"otrdesk.im/otrdesk/internal/libotrtest"
)

// TestClassifyMatchesLibotrMutations classifies systematic variations of
// hand-made bodies — every truncation, and every single-byte substitution
// with a byte that matters to the grammar — with Classify and with libotr,
// and requires the same reading except where libotr's sscanf is looser
// than our parser on a fragment header (see libotrLooser).
func TestClassifyMatchesLibotrMutations(t *testing.T) {
	seeds := []string{
		"?OTRv23?", "?OTR?v2?", "?OTR Error: x", "hi" + WhitespaceTag(OfferV2|OfferV3),
		"?OTR:AAMDGis8TQAAAQAAAAA.", "?OTR:AAICAAAA.",
		"?OTR|1a2b3c4d|00000100,00001,00003,?OTR:AAMD,", "?OTR,00001,00002,abc,",
	}
	subst := []byte("?O|,:0fA v.\t-")
	var bodies [][]byte
	seen := map[string]bool{}
	add := func(b []byte) {
		if !seen[string(b)] && bytes.IndexByte(b, 0) < 0 {
			seen[string(b)] = true
			bodies = append(bodies, bytes.Clone(b))
		}
	}
	for _, s := range seeds {
		for i := 0; i <= len(s); i++ {
			add([]byte(s[:i]))
		}
		for i := range s {
			for _, c := range subst {
				b := []byte(s)
				b[i] = c
				add(b)
			}
		}
	}
	classes := libotrtest.Classify(t, bodies)
	differ := 0
	for i, b := range bodies {
		c := classes[i]
		if c.Type == "FRAGMENT" {
			if _, ok := ParseFragment(b); !ok && libotrDrops(c, b) {
				c.Type = "UNKNOWN"
			}
		}
		if why := agreesWithLibotr(Classify(b), c); why != "" {
			if libotrLooser(b) {
				t.Logf("looser: %q: %s", b, why)
				differ++
				continue
			}
			t.Errorf("%q: %s", b, why)
		}
	}
	t.Logf("%d bodies, %d read differently where libotr's sscanf is looser", len(bodies), differ)
}

// libotrDrops reports whether libotr, having scanned a fragment header,
// drops the fragment: its accumulator ignores k = 0, n = 0, k > n and an
// empty piece, and a v3 sender tag below 0x100 is malformed.
func libotrDrops(c libotrtest.Class, b []byte) bool {
	if c.K == 0 || c.N == 0 || c.K > c.N || (c.Version == 3 && c.Sender < MinInstanceTag) {
		return true
	}
	f := bytes.Index(b, markFragV3)
	if f < 0 {
		f = bytes.Index(b, markFragV2)
	}
	// The piece follows the third comma from the marker ("?OTR," k "," n
	// "," or "?OTR|" s "|" r "," k "," n ","); libotr's %*[^,], needs at
	// least one byte and a closing comma.
	rest := b[f:]
	for commas := 3; commas > 0; commas-- {
		i := bytes.IndexByte(rest, ',')
		if i < 0 {
			return true
		}
		rest = rest[i+1:]
	}
	end := bytes.IndexByte(rest, ',')
	return end < 1
}

// libotrLooser reports whether b's fragment header is one libotr's sscanf
// reads and our parser refuses on purpose: "%x" and "%hu" skip leading
// white space and accept signs and a 0x prefix, and the tags libotr reads
// come from the first "?OTR" even when that is not the fragment's marker.
func libotrLooser(b []byte) bool {
	f := bytes.Index(b, markFragV3)
	if f < 0 {
		f = bytes.Index(b, markFragV2)
	}
	if f < 0 {
		return false
	}
	if bytes.Index(b, markOTR) != f {
		return true
	}
	hdr := b[f+5:]
	if end := bytes.IndexByte(hdr, ','); end >= 0 {
		// up to k: the v3 tags, or k itself for v2
		return bytes.ContainsAny(hdr[:min(len(hdr), end+12)], " \t+-xX")
	}
	return false
}
