package otr

// Tests against real libotr 4.1.1 through internal/libotrtest's keytool.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"otrdesk.im/otrdesk/internal/libotrtest"
)

// libotrKeyFile has libotr generate an otr.private_key with keys for
// alice@example.org and bob@example.org and returns its path.
func libotrKeyFile(t testing.TB, dir string) string {
	t.Helper()
	file := filepath.Join(dir, "otr.private_key")
	libotrtest.GenerateKey(t, file, "alice@example.org", "prpl-jabber")
	libotrtest.GenerateKey(t, file, "bob@example.org", "prpl-jabber")
	return file
}

var (
	recordMu    sync.Mutex
	recordCache = map[[2]int][]libotrtest.Event{}
)

// libotrRecord returns a recorded libotr conversation in OTR version 3
// (libotrtest.Record) for a maximum message size, once per test process.
func libotrRecord(t testing.TB, maxSize int) []libotrtest.Event {
	t.Helper()
	return libotrRecordVersion(t, maxSize, 3)
}

func libotrRecordVersion(t testing.TB, maxSize, version int) []libotrtest.Event {
	t.Helper()
	recordMu.Lock()
	defer recordMu.Unlock()
	if evs, ok := recordCache[[2]int{maxSize, version}]; ok {
		return evs
	}
	dir, err := os.MkdirTemp("", "otr-record")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	evs := libotrtest.RecordVersion(t, libotrKeyFile(t, dir), maxSize, version)
	recordCache[[2]int{maxSize, version}] = evs
	return evs
}

// addLibotrSeeds adds every body libotr put on the wire, with and without
// fragmentation, to a fuzz corpus.
func addLibotrSeeds(f *testing.F) {
	for _, mms := range []int{0, 300} {
		for _, ev := range libotrRecord(f, mms) {
			if ev.What == "WIRE" || ev.What == "QUERY" || ev.What == "JOINED" {
				f.Add(ev.Body)
			}
		}
	}
}

// addLibotrFragmentSeeds adds libotr's fragments to a fuzz corpus, one
// seed per fragment and one per complete message (its fragments joined
// by newlines, the input form of FuzzReassembler).
func addLibotrFragmentSeeds(f *testing.F) {
	var set [][]byte
	for _, ev := range libotrRecord(f, 300) {
		if ev.What != "WIRE" || ev.Class.Type != "FRAGMENT" {
			continue
		}
		f.Add(ev.Body)
		set = append(set, ev.Body)
		if ev.Class.K == ev.Class.N {
			f.Add(bytes.Join(set, []byte("\n")))
			set = nil
		}
	}
}

// kindOfLibotr maps libotr's message type to ours.
func kindOfLibotr(c libotrtest.Class) Kind {
	switch c.Type {
	case "NOTOTR":
		return KindPlaintext
	case "TAGGEDPLAINTEXT":
		return KindTaggedPlaintext
	case "QUERY":
		return KindQuery
	case "ERROR":
		return KindError
	case "FRAGMENT":
		return KindFragment
	case "DH_COMMIT", "DH_KEY", "REVEALSIG", "SIGNATURE", "DATA":
		if c.Version == 3 && c.Sender == 0xffffffff {
			return KindUnknown // libotr cannot read its instance tags and drops it
		}
		return KindEncoded
	}
	return KindUnknown
}

var typeOfLibotr = map[string]MessageType{"DH_COMMIT": DHCommit, "DH_KEY": DHKey, "REVEALSIG": RevealSig, "SIGNATURE": Sig, "DATA": Data}

// agreesWithLibotr explains how our classification differs from libotr's,
// or returns "".
func agreesWithLibotr(got Info, c libotrtest.Class) string {
	want := kindOfLibotr(c)
	if got.Kind != want {
		return fmt.Sprintf("kind %v, libotr %s", got.Kind, c.Type)
	}
	switch want {
	case KindQuery, KindTaggedPlaintext:
		if got.Versions&(OfferV1|OfferV2|OfferV3) != c.Versions {
			return fmt.Sprintf("versions %04b, libotr %04b", got.Versions>>1, c.Versions>>1)
		}
	case KindEncoded:
		if got.Version != c.Version || got.Type != typeOfLibotr[c.Type] {
			return fmt.Sprintf("v%d %v, libotr v%d %s", got.Version, got.Type, c.Version, c.Type)
		}
		if c.Version == 3 && (got.SenderTag != c.Sender || got.ReceiverTag != c.Receiver) {
			return fmt.Sprintf("tags %08x→%08x, libotr %08x→%08x", got.SenderTag, got.ReceiverTag, c.Sender, c.Receiver)
		}
	case KindFragment:
		if got.Version != c.Version || got.K != c.K || got.N != c.N || got.SenderTag != c.Sender || got.ReceiverTag != c.Receiver {
			return fmt.Sprintf("fragment v%d %d/%d %08x→%08x, libotr v%d %d/%d %08x→%08x",
				got.Version, got.K, got.N, got.SenderTag, got.ReceiverTag, c.Version, c.K, c.N, c.Sender, c.Receiver)
		}
	}
	return ""
}

// TestClassifyMatchesLibotrRecording classifies everything two libotr
// instances put on the wire — an AKE started by a whitespace tag, data
// messages both ways, a re-keying AKE, a disconnect, with and without a
// small maximum message size — and compares with libotr's own reading.
func TestClassifyMatchesLibotrRecording(t *testing.T) {
	for _, tc := range []struct{ mms, version int }{{0, 3}, {300, 3}, {0, 2}, {300, 2}} {
		mms := tc.mms
		t.Run(fmt.Sprintf("v%d max size %d", tc.version, mms), func(t *testing.T) {
			evs := libotrRecordVersion(t, mms, tc.version)
			seen := map[string]int{}
			for i, ev := range evs {
				if ev.What != "WIRE" && ev.What != "QUERY" && ev.What != "JOINED" {
					continue
				}
				seen[ev.Class.Type]++
				if ev.What == "WIRE" && ev.Class.Version != 0 && ev.Class.Version != tc.version {
					t.Errorf("event %d: libotr spoke version %d", i, ev.Class.Version)
				}
				if why := agreesWithLibotr(Classify(ev.Body), ev.Class); why != "" {
					t.Errorf("event %d %s %q: %s", i, ev.What, trim(ev.Body), why)
				}
			}
			// The recording must hold what this test claims to cover.
			want := []string{"QUERY", "TAGGEDPLAINTEXT", "DH_COMMIT", "DH_KEY", "REVEALSIG", "SIGNATURE", "DATA"}
			if mms != 0 {
				want = append(want, "FRAGMENT")
			}
			for _, typ := range want {
				if seen[typ] == 0 {
					t.Errorf("the recording has no %s message", typ)
				}
			}
		})
	}
}

func trim(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "..."
	}
	return string(b)
}

// TestFragmentsMatchLibotr checks, on libotr's recording with a small
// maximum message size, that our Reassembler joins libotr's fragments into
// exactly what libotr's otrl_proto_fragment_accumulate joins, and that
// SplitMessage splits each message libotr sent into exactly libotr's
// fragments.
func TestFragmentsMatchLibotr(t *testing.T) {
	for _, version := range []int{3, 2} {
		t.Run(fmt.Sprintf("v%d", version), func(t *testing.T) { testFragmentsMatchLibotr(t, version) })
	}
}

func testFragmentsMatchLibotr(t *testing.T, version int) {
	const mms = 300
	evs := libotrRecordVersion(t, mms, version)
	rs := map[string]*Reassembler{}
	var joined, ourJoined [][]byte
	for _, ev := range evs {
		switch {
		case ev.What == "JOINED":
			joined = append(joined, ev.Body)
		case ev.What == "WIRE" && ev.Class.Type == "FRAGMENT":
			r := rs[ev.To]
			if r == nil {
				r = NewReassembler(0)
				rs[ev.To] = r
			}
			msg, err := r.Add(ev.Body, time.Unix(0, 0))
			if err != nil {
				t.Fatalf("Add(%q): %v", trim(ev.Body), err)
			}
			if msg != nil {
				ourJoined = append(ourJoined, msg)
			}
		}
	}
	if len(joined) == 0 {
		t.Fatal("libotr fragmented nothing")
	}
	if len(ourJoined) != len(joined) {
		t.Fatalf("we reassembled %d messages, libotr %d", len(ourJoined), len(joined))
	}
	for i := range joined {
		if !bytes.Equal(ourJoined[i], joined[i]) {
			t.Errorf("message %d: we reassembled %q, libotr %q", i, trim(ourJoined[i]), trim(joined[i]))
		}
	}

	// Each SENT message is followed by its WIRE fragments.
	checked := 0
	for i, ev := range evs {
		if ev.What != "SENT" || len(ev.Body) <= mms {
			continue
		}
		var libotrFrags []string
		for _, w := range evs[i+1:] {
			if w.What != "WIRE" || w.Class.Type != "FRAGMENT" {
				break
			}
			libotrFrags = append(libotrFrags, string(w.Body))
		}
		if len(libotrFrags) == 0 {
			// libotr injects before it returns: the fragments precede SENT.
			for j := i - 1; j >= 0 && evs[j].What == "WIRE" && evs[j].Class.Type == "FRAGMENT"; j-- {
				libotrFrags = append([]string{string(evs[j].Body)}, libotrFrags...)
			}
		}
		first := Classify([]byte(libotrFrags[0]))
		if first.Version != version {
			t.Fatalf("libotr's fragment is version %d", first.Version)
		}
		ours, err := SplitMessage(string(ev.Body), mms, version, first.SenderTag, first.ReceiverTag)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(ours, "\n") != strings.Join(libotrFrags, "\n") {
			t.Errorf("SplitMessage differs from libotr for a %d-byte message:\n ours   %q\n libotr %q", len(ev.Body), ours, libotrFrags)
		}
		checked++
	}
	if checked == 0 {
		t.Fatal("no message was long enough to be fragmented")
	}
}

// TestClassifyMatchesLibotrTable runs TestClassify's hand-made bodies
// through libotr too. Where we are stricter than libotr on purpose the
// difference is listed; an unlisted difference, or a listed one that
// disappears, fails.
func TestClassifyMatchesLibotrTable(t *testing.T) {
	// Bodies where libotr's reading differs from ours on purpose; libotr
	// misreads or drops each of them.
	differs := map[string]string{
		"?OTR|123456789|100,1,1,x,":     "libotr's %x reads 9 hex digits and truncates the tag",
		"?OTR|0x100|100,1,1,x,":         "libotr's %x accepts a 0x prefix",
		"?OTR,1,2,x, ?OTR|100|0,1,1,y,": "libotr reads the tags at the first ?OTR, a v2 marker here, and drops the message",
	}
	bodies := []string{
		"", "hello", "I use OTR daily", "hi" + WhitespaceTag(OfferV2|OfferV3), "a" + WhitespaceTag(OfferV3) + "b",
		"x" + string(whitespaceTag), "?OTRv23?", "?OTRv2?", "?OTR?v2?", "?OTR?", "?OTRv?", "hi ?OTRv3?",
		"?OTRv3?" + WhitespaceTag(OfferV2), "?OTRv4321?", "?OTR?v?", "?OTRv3", "x" + WhitespaceTag(OfferV1|OfferV2|OfferV3),
		"x" + string(whitespaceTag) + "\t\t\t\t\t\t\t\t" + string(tagV3), "x" + string(whitespaceTag) + "nope" + string(tagV3), "?OTR Error: x", "?OTR Error:no space", v3Data,
		EncodeMessage([]byte{0, 3, 0x02, 0, 0, 1, 0, 0, 0, 0, 0, 1}), EncodeMessage([]byte{0, 3, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 0}),
		EncodeMessage([]byte{0, 3, 0x11, 1, 2, 3, 4, 5, 6, 7, 8, 0}), EncodeMessage([]byte{0, 3, 0x12, 1, 2, 3, 4, 5, 6, 7, 8, 0}),
		"?OTR:AAIC.", "?OTR:AAMDAAAB.", "?OTR:AAMD****AAAAAAAA.", EncodeMessage([]byte{0, 3, 0x07, 1, 2, 3, 4, 5, 6, 7, 8, 0}),
		"?OTR:AAEKAAAA.", "?OTRx", "?OTR",
		"?OTR|1a2b3c4d|00000100,00001,00003,?OTR:AAMD,", "?OTR|1a2b3c4d|0,2,3,piece,", "?OTR|ABCDEF01|100,3,3,x,",
		"?OTR|100|100,0000000002,65535,x,", "?OTR,00001,00002,?OTR:AAID,", "?OTRv3? ?OTR,1,2,x,",
		"?OTR,0,2,x,", "?OTR,3,2,x,", "?OTR,1,2,,",
	}
	for b := range differs {
		bodies = append(bodies, b)
	}
	bs := make([][]byte, len(bodies))
	for i, b := range bodies {
		bs[i] = []byte(b)
	}
	classes := libotrtest.Classify(t, bs)
	for i, b := range bodies {
		c := classes[i]
		// libotr's fragment scanner accepts what its accumulator then
		// drops (k = 0, k > n, an empty piece): that is our KindUnknown.
		if c.Type == "FRAGMENT" {
			if _, ok := ParseFragment(bs[i]); !ok && (c.K == 0 || c.K > c.N || strings.Contains(b, ",,")) {
				c.Type = "UNKNOWN"
			}
		}
		why := agreesWithLibotr(Classify(bs[i]), c)
		reason, listed := differs[b]
		switch {
		case why != "" && !listed:
			t.Errorf("%q: %s", b, why)
		case why == "" && listed:
			t.Errorf("%q: listed as read differently by libotr (%s) but agrees", b, reason)
		}
	}
}
