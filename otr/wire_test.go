package otr

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// v3Data is a version 3 Data message header from sender 0x1a2b3c4d to
// receiver 0x00000100 followed by some bytes.
var v3Data = EncodeMessage([]byte{0, 3, 0x03, 0x1a, 0x2b, 0x3c, 0x4d, 0, 0, 1, 0, 0, 9, 9, 9})

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want Info
	}{
		{"empty", "", Info{Kind: KindPlaintext}},
		{"plaintext", "hello, is anyone there?", Info{Kind: KindPlaintext}},
		{"plaintext with OTR word", "I use OTR daily", Info{Kind: KindPlaintext}},
		{"whitespace tag v2 v3", "hi" + WhitespaceTag(OfferV2|OfferV3), Info{Kind: KindTaggedPlaintext, Versions: OfferV2 | OfferV3}},
		{"whitespace tag v3 mid-text", "a" + WhitespaceTag(OfferV3) + "b", Info{Kind: KindTaggedPlaintext, Versions: OfferV3}},
		{"tab first then whitespace tag", "\tx" + WhitespaceTag(OfferV3), Info{Kind: KindTaggedPlaintext, Versions: OfferV3}},
		{"tab and space without tag", "a \t b\t\t  \t", Info{Kind: KindPlaintext}},
		{"fragment marker after encoded", v3Data + " ?OTR,1,1,x,", Info{Kind: KindFragment, Version: 2, K: 1, N: 1}},
		{"v3 marker after v2 and encoded", "?OTR,1,2,x, ?OTR:AAMD ?OTR|100|0,1,1,y,", Info{Kind: KindFragment, Version: 3, SenderTag: 0x100, K: 1, N: 1}},
		{"whitespace tag base only", "x" + string(whitespaceTag), Info{Kind: KindTaggedPlaintext}},
		{"query v23", "?OTRv23?", Info{Kind: KindQuery, Versions: OfferV2 | OfferV3}},
		{"query v2", "?OTRv2?", Info{Kind: KindQuery, Versions: OfferV2}},
		{"query v1 v2", "?OTR?v2?", Info{Kind: KindQuery, Versions: OfferV1 | OfferV2}},
		{"query v1", "?OTR?", Info{Kind: KindQuery, Versions: OfferV1}},
		{"query none", "?OTRv?", Info{Kind: KindQuery}},
		{"query v1 only as ?OTR?", "?OTRv12?", Info{Kind: KindQuery, Versions: OfferV2}},
		{"query with libotr text", "?OTRv23?\n<b>op1@example.org</b> has requested an Off-the-Record private conversation.", Info{Kind: KindQuery, Versions: OfferV2 | OfferV3}},
		{"query after text", "hi ?OTRv3?", Info{Kind: KindQuery, Versions: OfferV3}},
		{"query beats whitespace tag", "?OTRv3?" + WhitespaceTag(OfferV2), Info{Kind: KindQuery, Versions: OfferV3}},
		{"error libotr", "?OTR Error: You sent encrypted data to op1, who wasn't expecting it.", Info{Kind: KindError}},
		{"error otr.js", "?OTR Error:no space", Info{Kind: KindError}},
		{"v3 data", v3Data, Info{Kind: KindEncoded, Version: 3, Type: Data, SenderTag: 0x1a2b3c4d, ReceiverTag: 0x100}},
		{"v3 dh-commit receiver 0", EncodeMessage([]byte{0, 3, 0x02, 0, 0, 1, 0, 0, 0, 0, 0, 1}), Info{Kind: KindEncoded, Version: 3, Type: DHCommit, SenderTag: 0x100}},
		{"v3 dh-key", EncodeMessage([]byte{0, 3, 0x0a, 1, 2, 3, 4, 5, 6, 7, 8, 0}), Info{Kind: KindEncoded, Version: 3, Type: DHKey, SenderTag: 0x01020304, ReceiverTag: 0x05060708}},
		{"v3 reveal-sig", EncodeMessage([]byte{0, 3, 0x11, 1, 2, 3, 4, 5, 6, 7, 8, 0}), Info{Kind: KindEncoded, Version: 3, Type: RevealSig, SenderTag: 0x01020304, ReceiverTag: 0x05060708}},
		{"v3 sig", EncodeMessage([]byte{0, 3, 0x12, 1, 2, 3, 4, 5, 6, 7, 8, 0}), Info{Kind: KindEncoded, Version: 3, Type: Sig, SenderTag: 0x01020304, ReceiverTag: 0x05060708}},
		{"v2 data", EncodeMessage([]byte{0, 2, 0x03, 0, 1}), Info{Kind: KindEncoded, Version: 2, Type: Data}},
		{"v2 dh-commit", "?OTR:AAIC.", Info{Kind: KindEncoded, Version: 2, Type: DHCommit}},
		{"v3 header cut short", "?OTR:AAMDAAAB.", Info{Kind: KindUnknown}},
		{"v3 bad base64 in header", "?OTR:AAMD****AAAAAAAA.", Info{Kind: KindUnknown}},
		{"unknown type", EncodeMessage([]byte{0, 3, 0x07, 1, 2, 3, 4, 5, 6, 7, 8, 0}), Info{Kind: KindUnknown}},
		{"v1 key exchange", "?OTR:AAEKAAAA.", Info{Kind: KindUnknown}},
		{"v4 header", EncodeMessage([]byte{0, 4, 0x03, 1, 2, 3, 4, 5, 6, 7, 8, 0}), Info{Kind: KindUnknown}},
		{"OTR then junk", "?OTRx", Info{Kind: KindUnknown}},
		{"bare marker", "?OTR", Info{Kind: KindUnknown}},
		{"v3 fragment libotr", "?OTR|1a2b3c4d|00000100,00001,00003,?OTR:AAMD,", Info{Kind: KindFragment, Version: 3, SenderTag: 0x1a2b3c4d, ReceiverTag: 0x100, K: 1, N: 3}},
		{"v3 fragment otr.js", "?OTR|1a2b3c4d|0,2,3,piece,", Info{Kind: KindFragment, Version: 3, SenderTag: 0x1a2b3c4d, K: 2, N: 3}},
		{"v3 fragment upper hex", "?OTR|ABCDEF01|100,3,3,x,", Info{Kind: KindFragment, Version: 3, SenderTag: 0xabcdef01, ReceiverTag: 0x100, K: 3, N: 3}},
		{"v3 fragment leading zeros", "?OTR|100|100,0000000002,65535,x,", Info{Kind: KindFragment, Version: 3, SenderTag: 0x100, ReceiverTag: 0x100, K: 2, N: 65535}},
		{"v2 fragment", "?OTR,00001,00002,?OTR:AAID,", Info{Kind: KindFragment, Version: 2, K: 1, N: 2}},
		{"fragment wins over query", "?OTRv3? ?OTR,1,2,x,", Info{Kind: KindFragment, Version: 2, K: 1, N: 2}},
		{"v3 marker wins over v2", "?OTR,1,2,x, ?OTR|100|0,1,1,y,", Info{Kind: KindFragment, Version: 3, SenderTag: 0x100, K: 1, N: 1}},
		{"fragment k zero", "?OTR,0,2,x,", Info{Kind: KindUnknown}},
		{"fragment k over n", "?OTR,3,2,x,", Info{Kind: KindUnknown}},
		{"fragment n too big", "?OTR,1,65536,x,", Info{Kind: KindUnknown}},
		{"fragment empty piece", "?OTR,1,2,,", Info{Kind: KindUnknown}},
		{"fragment no closing comma", "?OTR,1,2,abc", Info{Kind: KindUnknown}},
		{"fragment tag too long", "?OTR|123456789|100,1,1,x,", Info{Kind: KindUnknown}},
		{"fragment tag empty", "?OTR||100,1,1,x,", Info{Kind: KindUnknown}},
		{"fragment tag 0x", "?OTR|0x100|100,1,1,x,", Info{Kind: KindUnknown}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify([]byte(tc.body)); got != tc.want {
				t.Errorf("Classify(%q)\n got %+v\nwant %+v", tc.body, got, tc.want)
			}
		})
	}
}

func TestClassifyDoesNotAllocate(t *testing.T) {
	bodies := map[string][]byte{
		"plaintext":      []byte(strings.Repeat("a fairly ordinary chat message ", 20)),
		"tagged":         []byte("hi" + WhitespaceTag(OfferV2|OfferV3)),
		"query":          []byte("?OTRv23?"),
		"data":           []byte(v3Data),
		"fragment":       []byte("?OTR|1a2b3c4d|00000100,00001,00003,?OTR:AAMD,"),
		"unknown header": []byte("?OTR:AAMD****AAAAAAAA."),
	}
	for name, b := range bodies {
		if n := testing.AllocsPerRun(100, func() { Classify(b) }); n != 0 {
			t.Errorf("%s: %v allocations per Classify, want 0", name, n)
		}
	}
}

// TestClassifyHeaderOnly checks that Classify looks at no more than the
// header: a message whose body after the header is garbage and has no
// terminating '.' still classifies by its header.
func TestClassifyHeaderOnly(t *testing.T) {
	body := v3Data[:5+16] + "!!!! not base64 !!!!"
	got := Classify([]byte(body))
	want := Info{Kind: KindEncoded, Version: 3, Type: Data, SenderTag: 0x1a2b3c4d, ReceiverTag: 0x100}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if _, err := DecodeMessage([]byte(body)); !errors.Is(err, ErrNotEncoded) {
		t.Fatalf("DecodeMessage of an unterminated message: err=%v, want ErrNotEncoded", err)
	}
}

func TestBuilders(t *testing.T) {
	for _, tc := range []struct {
		name, got, want string
	}{
		{"query v2 v3", QueryMessage(OfferV2 | OfferV3), "?OTRv23?"},
		{"query v3", QueryMessage(OfferV3), "?OTRv3?"},
		{"query v1 v2", QueryMessage(OfferV1 | OfferV2), "?OTR?v2?"},
		{"query v1", QueryMessage(OfferV1), "?OTR?"},
		{"query none", QueryMessage(0), "?OTRv?"},
		{"tag v2 v3", WhitespaceTag(OfferV2 | OfferV3), " \t  \t\t\t\t \t \t \t    \t\t  \t   \t\t  \t\t"},
		{"error", ErrorMessage("unreadable"), "?OTR Error: unreadable"},
		{"encoded", EncodeMessage([]byte{0, 3, 3}), "?OTR:AAMD."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
	// Every builder's output classifies as what it builds.
	for v := uint8(0); v < 16; v += 2 {
		if got := Classify([]byte(QueryMessage(v))); got.Kind != KindQuery || got.Versions != v {
			t.Errorf("QueryMessage(%#x) classifies as %+v", v, got)
		}
		if v == 0 {
			continue
		}
		if got := Classify([]byte("x" + WhitespaceTag(v&^1))); got.Kind != KindTaggedPlaintext || got.Versions != v&(OfferV1|OfferV2|OfferV3) {
			t.Errorf("WhitespaceTag(%#x) classifies as %+v", v, got)
		}
	}
	if text, ok := ErrorText([]byte(ErrorMessage("bad MAC"))); !ok || text != "bad MAC" {
		t.Errorf("ErrorText = %q, %v", text, ok)
	}
	if text, ok := ErrorText([]byte("?OTR Error:no space")); !ok || text != "no space" {
		t.Errorf("ErrorText otr.js form = %q, %v", text, ok)
	}
	if _, ok := ErrorText([]byte("?OTRv3?")); ok {
		t.Error("ErrorText accepted a query")
	}
}

func TestDecodeMessage(t *testing.T) {
	msg := []byte{0, 3, 3, 1, 2, 3, 4, 5, 6, 7, 8, 0xff, 0xfe}
	got, err := DecodeMessage([]byte("prefix " + EncodeMessage(msg) + " suffix"))
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("DecodeMessage = %x, %v", got, err)
	}
	for name, body := range map[string]string{
		"plaintext":  "hello",
		"bad base64": "?OTR:AA*D.",
		"no dot":     "?OTR:AAMD",
	} {
		if _, err := DecodeMessage([]byte(body)); err == nil || !strings.HasPrefix(err.Error(), "otr: ") {
			t.Errorf("%s: err=%v, want an otr: error", name, err)
		}
	}
}

func ExampleClassify() {
	for _, body := range []string{
		"Hello!",
		"?OTRv23?",
		"?OTR:AAMDGis8TQAAAQAA.",
		"?OTR|1a2b3c4d|00000100,00002,00003,piece,",
	} {
		info := Classify([]byte(body))
		switch info.Kind {
		case KindEncoded:
			fmt.Printf("%v v%d %v from %08x to %08x\n", info.Kind, info.Version, info.Type, info.SenderTag, info.ReceiverTag)
		case KindFragment:
			fmt.Printf("%v %d/%d from %08x to %08x\n", info.Kind, info.K, info.N, info.SenderTag, info.ReceiverTag)
		default:
			fmt.Printf("%v versions %04b\n", info.Kind, info.Versions>>1)
		}
	}
	// Output:
	// plaintext versions 0000
	// query versions 0110
	// encoded v3 Data from 1a2b3c4d to 00000100
	// fragment 2/3 from 1a2b3c4d to 00000100
}

func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		"", "hello", "?OTRv23?", "?OTR?v2?", "?OTR Error: x", v3Data, "?OTR:AAIC.",
		"hi" + WhitespaceTag(OfferV2|OfferV3),
		"?OTR|1a2b3c4d|00000100,00001,00003,?OTR:AAMD,", "?OTR,00001,00002,x,", "?OTR|100|0,1,1,y,",
	} {
		f.Add([]byte(s))
	}
	addLibotrSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		info := Classify(b)
		hasMarker := bytes.Contains(b, markOTR)
		switch info.Kind {
		case KindPlaintext, KindTaggedPlaintext:
			if hasMarker {
				t.Fatalf("%v with a ?OTR marker", info.Kind)
			}
		case KindEncoded:
			if info.Version != 2 && info.Version != 3 {
				t.Fatalf("encoded version %d", info.Version)
			}
		case KindFragment:
			fr, ok := ParseFragment(b)
			if !ok || fr.K != info.K || fr.N != info.N || fr.SenderTag != info.SenderTag || fr.ReceiverTag != info.ReceiverTag || len(fr.Piece) == 0 {
				t.Fatalf("Classify says fragment %+v, ParseFragment says %+v %v", info, fr, ok)
			}
			if info.K < 1 || info.K > info.N || info.N > 65535 {
				t.Fatalf("fragment %d of %d", info.K, info.N)
			}
		default:
			if !hasMarker {
				t.Fatalf("%v without a ?OTR marker", info.Kind)
			}
		}
	})
}

func ExampleSplitMessage() {
	msg := EncodeMessage([]byte("a binary OTR message, longer than the network carries"))
	frags, err := SplitMessage(msg, 60, 3, 0x1a2b3c4d, 0x5e6f7a8b)
	if err != nil {
		fmt.Println(err)
		return
	}
	r := NewReassembler(0x5e6f7a8b)
	for _, f := range frags {
		fmt.Println(f)
		if whole, err := r.Add([]byte(f), time.Now()); whole != nil || err != nil {
			fmt.Println(string(whole) == msg, err)
		}
	}
	// Output:
	// ?OTR|1a2b3c4d|5e6f7a8b,00001,00004,?OTR:YSBiaW5hcnkgT1RSIG,
	// ?OTR|1a2b3c4d|5e6f7a8b,00002,00004,1lc3NhZ2UsIGxvbmdlciB0a,
	// ?OTR|1a2b3c4d|5e6f7a8b,00003,00004,GFuIHRoZSBuZXR3b3JrIGNh,
	// ?OTR|1a2b3c4d|5e6f7a8b,00004,00004,cnJpZXM=.,
	// true <nil>
}

func ExampleQueryMessage() {
	fmt.Println(QueryMessage(OfferV2 | OfferV3))
	fmt.Printf("%q\n", "Hello"+WhitespaceTag(OfferV3))
	fmt.Println(Classify([]byte("Hello" + WhitespaceTag(OfferV3))).Kind)
	// Output:
	// ?OTRv23?
	// "Hello \t  \t\t\t\t \t \t \t    \t\t  \t\t"
	// tagged plaintext
}

func FuzzDecodeMessage(f *testing.F) {
	f.Add([]byte(v3Data))
	f.Add([]byte("?OTR:AAIC."))
	f.Add([]byte("text ?OTR:AA=D. more"))
	addLibotrSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		msg, err := DecodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrNotEncoded) && !errors.Is(err, ErrBadEncoding) {
				t.Fatalf("error %v is no sentinel", err)
			}
			return
		}
		again, err := DecodeMessage([]byte(EncodeMessage(msg)))
		if err != nil || !bytes.Equal(again, msg) {
			t.Fatalf("round trip: %v", err)
		}
	})
}
