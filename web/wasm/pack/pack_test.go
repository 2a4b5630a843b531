package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"otrdesk.im/otrdesk/web/wasm/internal/nodewasm"
)

// run is a stretch of non-zero bytes of the memory a module starts with.
type run struct {
	addr uint64
	data []byte
}

// image is the memory a module's data segments write, as its non-zero
// runs: joining segments must keep it exactly.
func image(t testing.TB, module []byte) []run {
	t.Helper()
	secs, err := sections(module)
	if err != nil {
		t.Fatal(err)
	}
	var runs []run
	for _, s := range secs {
		if s.id != sectionData {
			continue
		}
		segs, err := parseData(s.body)
		if err != nil {
			t.Fatal(err)
		}
		for _, sg := range segs {
			for i, c := range sg.data {
				if c == 0 {
					continue
				}
				a := uint64(sg.addr) + uint64(i)
				if n := len(runs); n > 0 && runs[n-1].addr+uint64(len(runs[n-1].data)) == a {
					runs[n-1].data = append(runs[n-1].data, c)
				} else {
					runs = append(runs, run{a, []byte{c}})
				}
			}
		}
	}
	return runs
}

func sameImage(t testing.TB, a, b []byte) {
	t.Helper()
	ia, ib := image(t, a), image(t, b)
	if len(ia) != len(ib) {
		t.Fatalf("memory has %d non-zero runs before packing and %d after", len(ia), len(ib))
	}
	for i := range ia {
		if ia[i].addr != ib[i].addr || !bytes.Equal(ia[i].data, ib[i].data) {
			t.Fatalf("memory differs in the run at %#x", ia[i].addr)
		}
	}
}

// sameOtherSections checks that every section but the data section is
// copied unchanged and in order.
func sameOtherSections(t testing.TB, a, b []byte) {
	t.Helper()
	sa, err := sections(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := sections(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(sa) != len(sb) {
		t.Fatalf("%d sections before packing, %d after", len(sa), len(sb))
	}
	for i := range sa {
		if sa[i].id != sb[i].id {
			t.Fatalf("section %d: id %d became %d", i, sa[i].id, sb[i].id)
		}
		if sa[i].id != sectionData && sa[i].id != sectionDataCount && !bytes.Equal(sa[i].body, sb[i].body) {
			t.Fatalf("section %d (id %d) changed", i, sa[i].id)
		}
	}
}

// module builds a module from sections; data segments are (addr, bytes).
func module(dataCount bool, segs ...segment) []byte {
	b := []byte("\x00asm\x01\x00\x00\x00")
	b = append(b, 1, 4, 1, 0x60, 0, 0) // type section: one func type () -> ()
	if dataCount {
		b = append(b, sectionDataCount, 1, byte(len(segs)))
	}
	body := encodeData(segs)
	b = append(b, sectionData)
	b = appendULEB(b, uint64(len(body)))
	return append(b, body...)
}

func TestJoin(t *testing.T) {
	in := module(true,
		segment{100, []byte{1, 2}},
		segment{10, []byte{9}},  // out of order, as Go writes its sections
		segment{102, []byte{3}}, // touching: joined
		segment{107, []byte{4}}, // 4 zeros apart: joined with gap 4
		segment{112, []byte{5}}, // 4 zeros apart again
		segment{118, []byte{6}}, // 5 zeros apart: a new segment
		segment{1 << 31, nil},   // an address that is negative as i32
		segment{1<<31 + 3, []byte{7}},
	)
	out, st, err := Pack(in, 4)
	if err != nil {
		t.Fatal(err)
	}
	if st.Before != 8 || st.After != 4 {
		t.Errorf("joined %d segments into %d, want 8 into 4", st.Before, st.After)
	}
	sameImage(t, in, out)
	sameOtherSections(t, in, out)
	secs, _ := sections(out)
	for _, s := range secs {
		if s.id == sectionDataCount && !bytes.Equal(s.body, []byte{4}) {
			t.Errorf("data count section %x, want 04", s.body)
		}
		if s.id == sectionData {
			segs, _ := parseData(s.body)
			want := []segment{
				{10, []byte{9}},
				{100, []byte{1, 2, 3, 0, 0, 0, 0, 4, 0, 0, 0, 0, 5}},
				{118, []byte{6}},
				{1 << 31, []byte{0, 0, 0, 7}},
			}
			if len(segs) != len(want) {
				t.Fatalf("segments %v, want %v", segs, want)
			}
			for i := range want {
				if segs[i].addr != want[i].addr || !bytes.Equal(segs[i].data, want[i].data) {
					t.Errorf("segment %d: %#x %v, want %#x %v", i, segs[i].addr, segs[i].data, want[i].addr, want[i].data)
				}
			}
		}
	}
	if again, _, err := Pack(out, 4); err != nil || !bytes.Equal(again, out) {
		t.Errorf("packing a packed module changed it (err %v)", err)
	}
}

func TestRefuses(t *testing.T) {
	overlap := module(false, segment{100, []byte{1, 2, 3}}, segment{102, []byte{4}})
	passive := append(module(false), sectionData, 4, 1, 1, 1, 0xaa) // flags 1: passive
	for name, in := range map[string][]byte{
		"overlapping segments": overlap,
		"a passive segment":    passive,
		"not wasm":             []byte("\x00asm\x02\x00\x00\x00"),
		"a short section":      []byte("\x00asm\x01\x00\x00\x00\x01\x05\x00"),
		"empty":                nil,
	} {
		if _, _, err := Pack(in, DefaultGap); err == nil {
			t.Errorf("%s: packed", name)
		}
	}
	if _, _, err := Pack(module(false), -1); err == nil {
		t.Error("a negative gap was accepted")
	}
}

func FuzzPack(f *testing.F) {
	f.Add(module(true, segment{100, []byte{1, 2}}, segment{10, []byte{9}}, segment{104, []byte{3}}), 4)
	f.Add(module(false, segment{1 << 31, []byte{1}}, segment{0, nil}), 0)
	f.Fuzz(func(t *testing.T, in []byte, gap int) {
		out, _, err := Pack(in, gap)
		if err != nil {
			return
		}
		sameImage(t, in, out)
		sameOtherSections(t, in, out)
		again, _, err := Pack(out, gap)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("packing a packed module changed it (err %v)", err)
		}
	})
}

// The real engine, as web/build.mjs builds it before packing, keeps its
// memory through pack, loses most of its segments, and still runs under
// node.

func TestMain(m *testing.M) { nodewasm.Main(m) }

func TestPackEngine(t *testing.T) {
	unpacked := nodewasm.OTR
	unpacked.Pack = false
	in, err := os.ReadFile(nodewasm.Build(t, unpacked))
	if err != nil {
		t.Fatal(err)
	}
	out, st, err := Pack(in, DefaultGap)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes, %d data segments -> %d bytes, %d segments", len(in), st.Before, len(out), st.After)
	if st.Before < 1000 || st.After > st.Before/100 {
		t.Errorf("%d data segments joined into %d; Go's modules have thousands that join into a few", st.Before, st.After)
	}
	sameImage(t, in, out)
	sameOtherSections(t, in, out)

	packed := filepath.Join(t.TempDir(), "otr.wasm")
	if err := os.WriteFile(packed, out, 0o644); err != nil {
		t.Fatal(err)
	}
	runEngine(t, packed)
}

// runEngine starts an AKE with the engine under node (the driver of
// ../node_test.go): a new conversation and its OTR query.
func runEngine(t *testing.T, wasm string) {
	t.Helper()
	d := nodewasm.Start(t, filepath.Join("..", "testdata", "driver.cjs"), nodewasm.WasmExec(t), wasm)
	var info struct{ OurFingerprint string }
	d.Call(map[string]any{"op": "new", "policy": "require"}, &info)
	if len(info.OurFingerprint) != 40 {
		t.Errorf("new conversation: fingerprint %q, want 40 hex digits", info.OurFingerprint)
	}
	var query struct{ Send []string }
	d.Call(map[string]any{"op": "query"}, &query)
	if len(query.Send) != 1 || !strings.HasPrefix(query.Send[0], "?OTRv") {
		t.Errorf("query sent %v, want one OTR query", query.Send)
	}
}
