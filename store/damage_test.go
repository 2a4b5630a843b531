package store

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
)

// damage returns a copy of a small store's bytes changed by fn, which gets
// the current meta page (the one bbolt will use) and a page accessor.
func damage(t *testing.T, fn func(m boltMeta, page func(id uint64) []byte)) []byte {
	t.Helper()
	b := storeBytes(t)
	m, ok := parseBoltMeta(b)
	if !ok {
		t.Fatal("seed store has no valid meta page 0")
	}
	if m1, ok := parseBoltMeta(b[m.pageSize:]); ok && m1.txid > m.txid {
		m = m1
	}
	fn(m, func(id uint64) []byte { return b[id*m.pageSize : (id+1)*m.pageSize] })
	return b
}

var ne = binary.NativeEndian

// TestOpenDamaged: each kind of damage that made bbolt crash or hang
// (found by fuzzing Open) is refused at Open with a clear reason.
func TestOpenDamaged(t *testing.T) {
	tests := []struct {
		name   string
		fn     func(m boltMeta, page func(uint64) []byte)
		substr string
	}{
		{"root page points at itself", func(m boltMeta, page func(uint64) []byte) {
			p := page(m.root)
			ne.PutUint16(p[8:], flagBranch)
			ne.PutUint16(p[10:], 1)
			ne.PutUint32(p[16:], 16) // key right after the element
			ne.PutUint32(p[20:], 1)
			ne.PutUint64(p[24:], m.root)
		}, "is used twice"},
		{"page names another id", func(m boltMeta, page func(uint64) []byte) {
			ne.PutUint64(page(m.root), m.root|1<<17)
		}, "calls itself page"},
		{"page overflows the file", func(m boltMeta, page func(uint64) []byte) {
			ne.PutUint32(page(m.root)[12:], 1<<25)
		}, "runs past the end of the file"},
		{"first meta page unreadable, tree overflows", func(m boltMeta, page func(uint64) []byte) {
			ne.PutUint32(page(0)[16:], 0) // magic
			ne.PutUint32(page(m.root)[12:], 1<<25)
		}, "runs past the end of the file"},
		{"freelist names a page in use", func(m boltMeta, page func(uint64) []byte) {
			p := page(m.freelist)
			ne.PutUint64(p[16:], m.root)
		}, "is both free and in use"},
		{"freelist names a page outside the file", func(m boltMeta, page func(uint64) []byte) {
			p := page(m.freelist)
			if ne.Uint16(p[10:]) == 0 {
				ne.PutUint16(p[10:], 1)
			}
			ne.PutUint64(p[16:], m.highPgid+5)
		}, "outside the file"},
		{"freelist with a huge count", func(m boltMeta, page func(uint64) []byte) {
			ne.PutUint16(page(m.freelist)[10:], 0xFFF0)
		}, "claims"},
		{"leaf entry outside its page", func(m boltMeta, page func(uint64) []byte) {
			ne.PutUint32(page(m.root)[16+12:], 1<<20) // vsize of entry 0
		}, "lies outside the page"},
		{"page of another type", func(m boltMeta, page func(uint64) []byte) {
			ne.PutUint16(page(m.root)[8:], flagLeaf|flagBranch)
		}, "not a branch or leaf"},
		{"skins bucket renamed", func(m boltMeta, page func(uint64) []byte) {
			p := page(m.root)
			i := bytes.Index(p, []byte("skins"))
			p[i+4] = 'z'
		}, "the skins bucket is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, damage(t, tt.fn))
			before, _ := os.ReadFile(path)
			s, err := Open(path)
			if err == nil {
				s.Close()
				t.Fatal("Open accepted a damaged file")
			}
			wantErr(t, err, ErrNotStore, tt.substr)
			if !bytesEqualFile(t, path, before) {
				t.Fatal("Open changed a file it refused")
			}
		})
	}
}

func bytesEqualFile(t *testing.T, path string, want []byte) bool {
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(got, want)
}
