package otr

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseFragment(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want Fragment
		ok   bool
	}{
		{"libotr v3", "?OTR|1a2b3c4d|00000100,00001,00002,?OTR:AAMD,", Fragment{3, 0x1a2b3c4d, 0x100, 1, 2, []byte("?OTR:AAMD")}, true},
		{"otr.js v3", "?OTR|1a2b3c4d|0,1,2,abc,", Fragment{3, 0x1a2b3c4d, 0, 1, 2, []byte("abc")}, true},
		{"libotr v2", "?OTR,00002,00002,abc.,", Fragment{2, 0, 0, 2, 2, []byte("abc.")}, true},
		{"trailing text ignored", "?OTR,1,1,abc,trailing", Fragment{2, 0, 0, 1, 1, []byte("abc")}, true},
		{"text before marker", "x ?OTR,1,1,abc,", Fragment{2, 0, 0, 1, 1, []byte("abc")}, true},
		{"plaintext", "hello", Fragment{}, false},
		{"encoded", "?OTR:AAMD.", Fragment{}, false},
		{"k missing", "?OTR,,1,abc,", Fragment{}, false},
		{"n missing", "?OTR,1,,abc,", Fragment{}, false},
		{"negative", "?OTR,-1,1,abc,", Fragment{}, false},
		{"space in number", "?OTR, 1,1,abc,", Fragment{}, false},
		{"receiver tag missing", "?OTR|100,1,1,abc,", Fragment{}, false},
		{"nine hex digits", "?OTR|100|000000100,1,1,abc,", Fragment{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ParseFragment([]byte(tc.body))
			if ok != tc.ok || got.Version != tc.want.Version || got.SenderTag != tc.want.SenderTag ||
				got.ReceiverTag != tc.want.ReceiverTag || got.K != tc.want.K || got.N != tc.want.N || !bytes.Equal(got.Piece, tc.want.Piece) {
				t.Errorf("ParseFragment(%q) = %+v, %v; want %+v, %v", tc.body, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestSplitMessage(t *testing.T) {
	msg := EncodeMessage(bytes.Repeat([]byte{0, 3, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 20))
	for _, tc := range []struct {
		name    string
		maxSize int
		version int
		count   int
		err     error
	}{
		{"no limit", 0, 3, 1, nil},
		{"fits", len(msg), 3, 1, nil},
		{"v3 small", 60, 3, (len(msg)-1)/(60-37) + 1, nil},
		{"v2 small", 40, 2, (len(msg)-1)/(40-19) + 1, nil},
		{"v3 one byte pieces", 38, 3, len(msg), nil},
		{"v3 too small", 37, 3, 0, ErrMaxSizeTooSmall},
		{"v2 too small", 19, 2, 0, ErrMaxSizeTooSmall},
	} {
		t.Run(tc.name, func(t *testing.T) {
			frags, err := SplitMessage(msg, tc.maxSize, tc.version, 0x1a2b3c4d, 0x100)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err=%v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if len(frags) != tc.count {
				t.Fatalf("%d fragments, want %d", len(frags), tc.count)
			}
			if tc.count == 1 {
				if frags[0] != msg {
					t.Fatal("an unsplit message changed")
				}
				return
			}
			r := NewReassembler(0x100)
			var got []byte
			for i, f := range frags {
				if len(f) > tc.maxSize-1 {
					t.Fatalf("fragment %d is %d bytes, max size %d", i+1, len(f), tc.maxSize)
				}
				info := Classify([]byte(f))
				if info.Kind != KindFragment || info.Version != tc.version || info.K != i+1 || info.N != len(frags) {
					t.Fatalf("fragment %d classifies as %+v", i+1, info)
				}
				if got, err = r.Add([]byte(f), time.Unix(0, 0)); err != nil {
					t.Fatal(err)
				}
				if (got != nil) != (i == len(frags)-1) {
					t.Fatalf("after fragment %d of %d: complete=%v", i+1, len(frags), got != nil)
				}
			}
			if string(got) != msg {
				t.Fatal("reassembly does not give back the message")
			}
		})
	}
	if _, err := SplitMessage(msg, 100, 1, 0, 0); err == nil {
		t.Fatal("split for OTR version 1")
	}
	if _, err := SplitMessage(strings.Repeat("A", 70000), 38, 3, 0x100, 0x100); !errors.Is(err, ErrTooManyFragments) {
		t.Fatalf("70000 one-byte fragments: err=%v", err)
	}
	frags, _ := SplitMessage("?OTR:"+strings.Repeat("A", 44)+".", 40, 3, 0x1a2b3c4d, 0)
	if frags[0] != "?OTR|1a2b3c4d|00000000,00001,00017,?OT," {
		t.Fatalf("libotr format: got %q", frags[0])
	}
}

func TestReassembler(t *testing.T) {
	t0 := time.Unix(1000, 0)
	v3 := func(sender, receiver string, k, n, piece string) string {
		return "?OTR|" + sender + "|" + receiver + "," + k + "," + n + "," + piece + ","
	}
	type step struct {
		body string
		at   time.Duration
		want string // reassembled message, "" for none
		err  error
	}
	for _, tc := range []struct {
		name  string
		r     Reassembler
		steps []step
	}{
		{"in order", Reassembler{OurTag: 0x100}, []step{
			{v3("200", "100", "1", "3", "?OTR:A"), 0, "", nil},
			{v3("200", "100", "2", "3", "AMD"), 0, "", nil},
			{v3("200", "100", "3", "3", "."), 0, "?OTR:AAMD.", nil},
		}},
		{"receiver 0 and unpadded", Reassembler{OurTag: 0x100}, []step{
			{v3("200", "0", "01", "2", "ab"), 0, "", nil},
			{v3("00000200", "00000000", "00002", "00002", "cd"), 0, "abcd", nil},
		}},
		{"other instance discarded", Reassembler{OurTag: 0x100}, []step{
			{v3("200", "101", "1", "1", "ab"), 0, "", ErrOtherInstance},
		}},
		{"invalid sender tag", Reassembler{OurTag: 0x100}, []step{
			{v3("ff", "100", "1", "1", "ab"), 0, "", ErrBadInstanceTag},
		}},
		{"two senders interleaved", Reassembler{OurTag: 0x100}, []step{
			{v3("200", "100", "1", "2", "a"), 0, "", nil},
			{v3("300", "100", "1", "2", "x"), 0, "", nil},
			{v3("300", "100", "2", "2", "y"), 0, "xy", nil},
			{v3("200", "100", "2", "2", "b"), 0, "ab", nil},
		}},
		{"gap drops the set", Reassembler{}, []step{
			{v3("200", "100", "1", "3", "a"), 0, "", nil},
			{v3("200", "100", "3", "3", "c"), 0, "", ErrFragmentOrder},
			{v3("200", "100", "2", "3", "b"), 0, "", ErrFragmentOrder},
		}},
		{"other n drops the set", Reassembler{}, []step{
			{v3("200", "100", "1", "3", "a"), 0, "", nil},
			{v3("200", "100", "2", "4", "b"), 0, "", ErrFragmentOrder},
		}},
		{"restart with fragment 1", Reassembler{}, []step{
			{v3("200", "100", "1", "2", "old"), 0, "", nil},
			{v3("200", "100", "1", "2", "new"), 0, "", nil},
			{v3("200", "100", "2", "2", "!"), 0, "new!", nil},
		}},
		{"too many fragments", Reassembler{MaxFragments: 4}, []step{
			{v3("200", "100", "1", "5", "a"), 0, "", ErrFragmentLimit},
		}},
		{"too many bytes", Reassembler{MaxMessageBytes: 5}, []step{
			{v3("200", "100", "1", "2", "abc"), 0, "", nil},
			{v3("200", "100", "2", "2", "def"), 0, "", ErrFragmentLimit},
		}},
		{"too slow", Reassembler{Timeout: time.Minute}, []step{
			{v3("200", "100", "1", "2", "abc"), 0, "", nil},
			{v3("200", "100", "2", "2", "def"), time.Minute + 1, "", ErrFragmentExpired},
		}},
		{"oldest sender evicted", Reassembler{MaxSenders: 2}, []step{
			{v3("200", "100", "1", "2", "a"), 0, "", nil},
			{v3("300", "100", "1", "2", "b"), 1, "", nil},
			{v3("400", "100", "1", "2", "c"), 2, "", nil},
			{v3("200", "100", "2", "2", "A"), 3, "", ErrFragmentOrder},
			{v3("400", "100", "2", "2", "C"), 3, "cC", nil},
		}},
		{"v2", Reassembler{}, []step{
			{"?OTR,00001,00002,?OTR:AA,", 0, "", nil},
			{"?OTR,00002,00002,ID.,", 0, "?OTR:AAID.", nil},
		}},
		{"fragment of a fragment", Reassembler{}, []step{
			{"?OTR,1,2,?OT,", 0, "", nil},
			{"?OTR,2,2,R|1|1,", 0, "", ErrNestedFragment},
		}},
		{"illegal fragment discarded alone", Reassembler{}, []step{
			{"?OTR,1,2,a,", 0, "", nil},
			{"?OTR,0,2,x,", 0, "", ErrBadFragment},
			{"?OTR,3,2,x,", 0, "", ErrBadFragment},
			{"?OTR,2,2,b,", 0, "ab", nil},
		}},
		{"not a fragment", Reassembler{}, []step{
			{"?OTR:AAMD.", 0, "", ErrNotFragment},
		}},
		{"unfragmented message from the sender forgets its set", Reassembler{}, []step{
			{v3("1a2b3c4d", "100", "1", "2", "a"), 0, "", nil},
			{v3("300", "100", "1", "2", "x"), 0, "", nil},
			{v3Data, 0, "", ErrNotFragment}, // from 1a2b3c4d
			{v3("1a2b3c4d", "100", "2", "2", "b"), 0, "", ErrFragmentOrder},
			{v3("300", "100", "2", "2", "y"), 0, "xy", nil},
		}},
		{"plaintext forgets the v2 set", Reassembler{}, []step{
			{"?OTR,1,2,a,", 0, "", nil},
			{v3("300", "100", "1", "2", "x"), 0, "", nil},
			{"hello", 0, "", ErrNotFragment},
			{"?OTR,2,2,b,", 0, "", ErrFragmentOrder},
			{v3("300", "100", "2", "2", "y"), 0, "xy", nil},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.r
			for i, s := range tc.steps {
				got, err := r.Add([]byte(s.body), t0.Add(s.at))
				if !errors.Is(err, s.err) || string(got) != s.want {
					t.Fatalf("step %d: Add(%q) = %q, %v; want %q, %v", i+1, s.body, got, err, s.want, s.err)
				}
			}
		})
	}
}

func TestReassemblerExpire(t *testing.T) {
	r := Reassembler{Timeout: time.Minute}
	t0 := time.Unix(1000, 0)
	r.Add([]byte("?OTR|200|0,1,2,a,"), t0)
	r.Add([]byte("?OTR|300|0,1,2,a,"), t0.Add(30*time.Second))
	if n := r.Expire(t0.Add(61 * time.Second)); n != 1 || r.Pending() != 1 {
		t.Fatalf("Expire dropped %d, %d pending; want 1, 1", n, r.Pending())
	}
}

// TestReassemblerCopies checks that a caller reusing its buffer does not
// corrupt a message in progress.
func TestReassemblerCopies(t *testing.T) {
	var r Reassembler
	buf := []byte("?OTR,1,2,ab,")
	r.Add(buf, time.Unix(0, 0))
	copy(buf, "?OTR,1,2,zz,")
	got, err := r.Add([]byte("?OTR,2,2,cd,"), time.Unix(0, 0))
	if err != nil || string(got) != "abcd" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func FuzzParseFragment(f *testing.F) {
	for _, s := range []string{
		"?OTR|1a2b3c4d|00000100,00001,00002,?OTR:AAMD,", "?OTR|1a2b3c4d|0,1,2,abc,", "?OTR,00002,00002,abc.,",
		"?OTR,1,65535,x,", "?OTR|ffffffff|ffffffff,65535,65535,x,",
	} {
		f.Add([]byte(s))
	}
	addLibotrFragmentSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, ok := ParseFragment(b)
		if !ok {
			return
		}
		if fr.K < 1 || fr.K > fr.N || fr.N > 65535 || len(fr.Piece) == 0 || bytes.IndexByte(fr.Piece, ',') >= 0 {
			t.Fatalf("bad fragment accepted: %+v", fr)
		}
		// A fragment we parse re-splits into a fragment that parses the same.
		frags, err := SplitMessage(string(fr.Piece), len(fr.Piece)+fragmentOverheadV3, fr.Version, fr.SenderTag, fr.ReceiverTag)
		if err != nil || len(frags) != 1 {
			t.Fatalf("re-split: %v, %d", err, len(frags))
		}
	})
}

func FuzzReassembler(f *testing.F) {
	f.Add([]byte("?OTR|200|100,1,2,ab,\n?OTR|200|100,2,2,cd,"))
	f.Add([]byte("?OTR,1,2,ab,\n?OTR,2,2,cd,\n?OTR|300|0,1,1,x,"))
	addLibotrFragmentSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		r := Reassembler{OurTag: 0x100, MaxFragments: 8, MaxMessageBytes: 64, MaxSenders: 2, Timeout: time.Second}
		for i, line := range bytes.Split(b, []byte("\n")) {
			msg, err := r.Add(line, time.Unix(int64(i), 0))
			if err != nil && msg != nil {
				t.Fatal("message and error together")
			}
			if len(msg) > 64 {
				t.Fatalf("reassembled %d bytes over the 64-byte limit", len(msg))
			}
			if r.Pending() > 2 {
				t.Fatalf("%d senders pending over the limit of 2", r.Pending())
			}
		}
	})
}
