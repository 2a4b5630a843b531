package otr

import (
	"bytes"
	"slices"
	"testing"
	"time"

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

// TestReassemblerMatchesLibotr replays every sequence of up to four bodies
// drawn from a pool — fragments of two messages, an illegal fragment and
// an unfragmented message — through a Reassembler and through libotr's
// otrl_proto_fragment_accumulate, and requires the same message completed
// at the same step. One pool speaks version 2 (plaintext clears), one
// version 3 from one sender instance (that sender's encoded message
// clears).
func TestReassemblerMatchesLibotr(t *testing.T) {
	pools := map[string][]string{
		"v2": {"?OTR,1,2,A1,", "?OTR,2,2,A2,", "?OTR,00001,00003,B1,", "?OTR,2,3,B2,", "?OTR,3,3,B3,",
			"?OTR,0,2,bad,", "plain text"},
		"v3": {"?OTR|1a2b3c4d|0,1,2,A1,", "?OTR|1a2b3c4d|100,2,2,A2,", "?OTR|1a2b3c4d|00000100,1,3,B1,",
			"?OTR|1a2b3c4d|100,2,3,B2,", "?OTR|1a2b3c4d|100,3,3,B3,", "?OTR|1a2b3c4d|100,2,1,bad,", v3Data},
	}
	for name, pool := range pools {
		t.Run(name, func(t *testing.T) {
			var seqs [][][]byte
			var walk func(seq [][]byte)
			walk = func(seq [][]byte) {
				if len(seq) > 0 {
					seqs = append(seqs, slices.Clone(seq))
				}
				if len(seq) == 4 {
					return
				}
				for _, b := range pool {
					walk(append(seq, []byte(b)))
				}
			}
			walk(nil)
			lib := libotrtest.Accumulate(t, seqs)
			completed := 0
			for s, seq := range seqs {
				r := NewReassembler(0x100)
				for j, b := range seq {
					got, _ := r.Add(b, time.Unix(0, 0))
					if !bytes.Equal(got, lib[s][j]) {
						t.Fatalf("sequence %q, step %d: we complete %q, libotr %q", seq, j+1, got, lib[s][j])
					}
					if got != nil {
						completed++
					}
				}
			}
			t.Logf("%d sequences, %d completions", len(seqs), completed)
			if completed == 0 {
				t.Fatal("no sequence completed a message")
			}
		})
	}
}
