// Command pack rewrites a WebAssembly module built by Go so that it
// compresses better, without changing what it does:
//
//	go run ./wasm/pack [-gap N] MODULE.wasm [OUT.wasm]
//
// (from web/; OUT defaults to rewriting MODULE in place.)
//
// Go's linker leaves every run of zero bytes out of the module's data
// and starts a new data segment after it, which saves the zeros but
// costs a segment header each time: a Go module has tens of thousands of
// segments, and their headers (a growing memory address and a length)
// are bytes that brotli can hardly compress. pack joins neighbouring
// segments, writing the zeros between them: zeros compress to almost
// nothing, and memory starts zeroed, so the memory the module starts
// with is byte for byte the same (pack_test.go checks this on the real
// engine, and runs the packed engine under node). For otr.wasm this saves
// 41 KB of brotli (6%), 55 KB (9%) when built without inlining, which
// makes more, smaller segments.
//
// Segments further apart than -gap bytes stay separate, so long stretches
// of zeros do not grow the module. pack only joins active segments of
// memory 0 at constant offsets that do not overlap (all Go writes); it
// refuses any other module rather than guess.
package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
)

func main() {
	gap := flag.Int("gap", DefaultGap, "join data segments at most this many zero bytes apart")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: pack [-gap N] MODULE.wasm [OUT.wasm]")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 || flag.NArg() > 2 {
		flag.Usage()
		os.Exit(2)
	}
	in := flag.Arg(0)
	out := in
	if flag.NArg() == 2 {
		out = flag.Arg(1)
	}
	b, err := os.ReadFile(in)
	if err != nil {
		fail(err)
	}
	packed, st, err := Pack(b, *gap)
	if err != nil {
		fail(fmt.Errorf("%s: %w", in, err))
	}
	if err := os.WriteFile(out, packed, 0o644); err != nil {
		fail(err)
	}
	fmt.Fprintf(os.Stderr, "pack: %s: %d data segments joined into %d\n", out, st.Before, st.After)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pack:", err)
	os.Exit(1)
}

// DefaultGap is how many zero bytes pack writes at most to join two
// segments. A segment header costs 6 to 9 bytes that do not compress; a
// run of zeros costs a byte or two of brotli. On otr.wasm, gaps from 64
// bytes up give the same compressed size within 0.2%; much larger ones
// only grow the raw module.
const DefaultGap = 1024

// Stats says how many data segments the module had and has.
type Stats struct{ Before, After int }

// The ids of the module sections pack reads or writes.
const (
	sectionData      = 11
	sectionDataCount = 12
)

// segment is an active data segment of memory 0: bytes copied to addr
// when the module is instantiated.
type segment struct {
	addr uint32
	data []byte
}

var errNotWasm = errors.New("not a WebAssembly 1.0 module")

// Pack returns the module b with its data segments joined wherever they
// are at most maxGap bytes apart. Every other section is copied as is.
func Pack(b []byte, maxGap int) ([]byte, Stats, error) {
	var st Stats
	if maxGap < 0 {
		return nil, st, errors.New("the gap must not be negative")
	}
	secs, err := sections(b)
	if err != nil {
		return nil, st, err
	}
	out := append([]byte(nil), b[:8]...)
	for _, s := range secs {
		body := s.body
		switch s.id {
		case sectionData:
			segs, err := parseData(body)
			if err != nil {
				return nil, st, err
			}
			joined := join(segs, maxGap)
			st = Stats{Before: len(segs), After: len(joined)}
			body = encodeData(joined)
		}
		out = append(out, s.id)
		out = appendULEB(out, uint64(len(body)))
		out = append(out, body...)
	}
	if st.Before != st.After {
		out, err = fixDataCount(out, st.After)
	}
	return out, st, err
}

// section is one section of a module: its id and its contents.
type section struct {
	id   byte
	body []byte
}

// sections splits a module into its sections.
func sections(b []byte) ([]section, error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" || string(b[4:8]) != "\x01\x00\x00\x00" {
		return nil, errNotWasm
	}
	var secs []section
	for i := 8; i < len(b); {
		id := b[i]
		n, j, err := readULEB(b, i+1, 32)
		if err != nil {
			return nil, fmt.Errorf("section at byte %d: %w", i, err)
		}
		if n > uint64(len(b)-j) {
			return nil, fmt.Errorf("section at byte %d is longer than the module", i)
		}
		secs = append(secs, section{id, b[j : j+int(n)]})
		i = j + int(n)
	}
	return secs, nil
}

// parseData reads the data section and returns its segments in order of
// address. Only active segments of memory 0 at an i32.const offset that do
// not overlap are accepted: then every byte of memory is written by at
// most one segment, so their order does not matter (Go writes its
// sections' segments in an order of its own, not by address) and the bytes
// between two neighbours are zeros no segment writes.
func parseData(b []byte) ([]segment, error) {
	count, i, err := readULEB(b, 0, 32)
	if err != nil {
		return nil, fmt.Errorf("data section: %w", err)
	}
	if count > uint64(len(b)) {
		return nil, errors.New("data section: more segments than bytes")
	}
	segs := make([]segment, 0, count)
	for k := range count {
		if i+2 > len(b) || b[i] != 0 || b[i+1] != 0x41 { // flags 0 (active, memory 0), i32.const
			return nil, fmt.Errorf("data segment %d is not an active segment of memory 0 at a constant offset; pack knows only the segments Go writes", k)
		}
		addr, j, err := readSLEB32(b, i+2)
		if err != nil {
			return nil, fmt.Errorf("data segment %d: %w", k, err)
		}
		if j >= len(b) || b[j] != 0x0b { // end of the offset expression
			return nil, fmt.Errorf("data segment %d: the offset is not a single i32.const", k)
		}
		n, j, err := readULEB(b, j+1, 32)
		if err != nil {
			return nil, fmt.Errorf("data segment %d: %w", k, err)
		}
		if n > uint64(len(b)-j) {
			return nil, fmt.Errorf("data segment %d is longer than the data section", k)
		}
		segs = append(segs, segment{addr: uint32(addr), data: b[j : j+int(n)]})
		i = j + int(n)
	}
	if i != len(b) {
		return nil, errors.New("data section: bytes after the last segment")
	}
	slices.SortStableFunc(segs, func(x, y segment) int { return cmp.Compare(x.addr, y.addr) })
	for k := 1; k < len(segs); k++ {
		prev, s := segs[k-1], segs[k]
		if end := uint64(prev.addr) + uint64(len(prev.data)); uint64(s.addr) < end {
			return nil, fmt.Errorf("data segments at %#x and %#x overlap; pack joins only segments that do not", prev.addr, s.addr)
		}
	}
	return segs, nil
}

// join merges each segment with the one before it (segs are in order of
// address and do not overlap) when the zeros between them are at most
// maxGap bytes.
func join(segs []segment, maxGap int) []segment {
	var out []segment
	for _, s := range segs {
		if len(out) > 0 {
			last := &out[len(out)-1]
			end := uint64(last.addr) + uint64(len(last.data))
			if gap := uint64(s.addr) - end; gap <= uint64(maxGap) {
				// A fresh slice: last.data may alias the input module.
				d := make([]byte, 0, len(last.data)+int(gap)+len(s.data))
				d = append(d, last.data...)
				d = append(d, make([]byte, gap)...)
				last.data = append(d, s.data...)
				continue
			}
		}
		out = append(out, s)
	}
	return out
}

func encodeData(segs []segment) []byte {
	out := appendULEB(nil, uint64(len(segs)))
	for _, s := range segs {
		out = append(out, 0, 0x41)
		out = appendSLEB(out, int64(int32(s.addr)))
		out = append(out, 0x0b)
		out = appendULEB(out, uint64(len(s.data)))
		out = append(out, s.data...)
	}
	return out
}

// fixDataCount rewrites the data count section, if the module has one
// (Go's modules do not), to the new number of segments. It comes before
// the data section, so Pack writes it unchanged and fixes it afterwards.
func fixDataCount(b []byte, n int) ([]byte, error) {
	secs, err := sections(b)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), b[:8]...)
	for _, s := range secs {
		body := s.body
		if s.id == sectionDataCount {
			body = appendULEB(nil, uint64(n))
		}
		out = append(out, s.id)
		out = appendULEB(out, uint64(len(body)))
		out = append(out, body...)
	}
	return out, nil
}

var errLEB = errors.New("malformed LEB128 number")

// readULEB reads an unsigned LEB128 number of at most bits bits at b[i:].
func readULEB(b []byte, i int, bits uint) (uint64, int, error) {
	var v uint64
	for shift := uint(0); ; shift += 7 {
		if i >= len(b) || shift >= bits+7 {
			return 0, i, errLEB
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			if v>>bits != 0 {
				return 0, i, errLEB
			}
			return v, i, nil
		}
	}
}

// readSLEB32 reads a signed LEB128 number of at most 32 bits at b[i:].
func readSLEB32(b []byte, i int) (int32, int, error) {
	var v int64
	for shift := uint(0); ; shift += 7 {
		if i >= len(b) || shift >= 35 {
			return 0, i, errLEB
		}
		c := b[i]
		i++
		v |= int64(c&0x7f) << shift
		if c < 0x80 {
			if c&0x40 != 0 {
				v -= 1 << (shift + 7) // sign-extend
			}
			if v != int64(int32(v)) {
				return 0, i, errLEB
			}
			return int32(v), i, nil
		}
	}
}

func appendULEB(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendSLEB(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
