package store

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// bbolt maps the file into memory and trusts the page numbers it finds: a
// truncated file (a half-copied store, a full disk) makes it read past the
// end of the mapping, which is a fatal SIGBUS, not a panic. Before handing a
// file to bbolt, checkHeader reads bbolt's two meta pages and checks that
// the file is as long as the newest valid one says.
//
// Meta page layout (bbolt file format version 2, native byte order):
//
//	page header  16 bytes: id, flags, count, overflow
//	magic        uint32 0xED0CDAED
//	version      uint32 2
//	page size    uint32
//	flags        uint32
//	root bucket  uint64 page, uint64 sequence
//	freelist     uint64 page (all ones: not stored)
//	high water   uint64 page count of the file
//	txid         uint64
//	checksum     uint64 FNV-64a of the 56 bytes from magic on
const (
	boltPageHeader = 16
	boltMetaSize   = 64
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltNoFreelist = ^uint64(0)
)

type boltMeta struct {
	pageSize                 uint64
	root, freelist, highPgid uint64
	txid                     uint64
}

// parseBoltMeta parses a meta page; ok is false unless magic, version and
// checksum are right.
func parseBoltMeta(page []byte) (m boltMeta, ok bool) {
	if len(page) < boltPageHeader+boltMetaSize {
		return m, false
	}
	b := page[boltPageHeader : boltPageHeader+boltMetaSize]
	ne := binary.NativeEndian
	if ne.Uint32(b[0:]) != boltMagic || ne.Uint32(b[4:]) != boltVersion {
		return m, false
	}
	h := fnv.New64a()
	h.Write(b[:56])
	if h.Sum64() != ne.Uint64(b[56:]) {
		return m, false
	}
	m = boltMeta{
		pageSize: uint64(ne.Uint32(b[8:])),
		root:     ne.Uint64(b[16:]),
		freelist: ne.Uint64(b[32:]),
		highPgid: ne.Uint64(b[40:]),
		txid:     ne.Uint64(b[48:]),
	}
	return m, true
}

// checkHeader returns a notStoreError when path is a bbolt file whose
// newest valid meta page points past the end of the file. Files it cannot
// judge (empty, missing, no valid meta page) are left to bbolt.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil // missing: bbolt creates it; unreadable: bbolt says why
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return nil
	}
	size := uint64(fi.Size())
	read := func(off uint64) []byte {
		buf := make([]byte, boltPageHeader+boltMetaSize)
		if _, err := f.ReadAt(buf, int64(off)); err != nil && err != io.EOF {
			return nil
		}
		return buf
	}
	m0, ok0 := parseBoltMeta(read(0))
	var m1 boltMeta
	ok1 := false
	if ok0 && m0.pageSize >= 512 && m0.pageSize <= 1<<24 {
		m1, ok1 = parseBoltMeta(read(m0.pageSize))
	}
	m := m0
	switch {
	case ok0 && ok1 && m1.txid > m0.txid:
		m = m1
	case !ok0:
		return nil
	}
	switch {
	case m.pageSize < 512 || m.pageSize > 1<<24:
		return &notStoreError{path: path, why: fmt.Sprintf("damaged: page size %d", m.pageSize), err: ErrCorrupt}
	case m.highPgid > size/m.pageSize:
		return &notStoreError{path: path, why: fmt.Sprintf("truncated: the file is %d bytes, its header says %d", size, m.highPgid*m.pageSize), err: ErrCorrupt}
	case m.root >= m.highPgid || (m.freelist != boltNoFreelist && m.freelist >= m.highPgid):
		return &notStoreError{path: path, why: "damaged: its header points past its end", err: ErrCorrupt}
	}
	return nil
}
