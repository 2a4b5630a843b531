package store

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
)

// bbolt maps the file into memory and trusts every page number and offset
// it finds. A truncated file (a half-copied store, a full disk) makes it
// read past the end of the mapping, a fatal SIGBUS; a page that points at
// itself makes a cursor loop forever. Neither is an error bbolt can return,
// so before handing a file to bbolt, Open runs checkFile: it reads the file
// with ordinary reads (never the mapping), picks the meta page bbolt would
// pick, and walks every page reachable from it, checking that each page
// number is below the high-water mark, each page is reached once, each
// element lies inside its page, and the freelist names real pages.
//
// The bbolt file format (version 2), native byte order:
//
//	page header     16 bytes: id uint64 (its own number), flags uint16, count uint16,
//	                overflow uint32 (pages that follow and belong to it)
//	                flags: 0x01 branch, 0x02 leaf, 0x04 meta, 0x10 freelist
//	meta (pages 0, 1, after the header):
//	  magic 0xED0CDAED uint32, version 2 uint32, page size uint32, flags uint32,
//	  root bucket (root page uint64, sequence uint64), freelist page uint64
//	  (all ones: not stored), high-water page count uint64, txid uint64,
//	  checksum uint64 = FNV-64a of the 56 bytes from magic on
//	branch element  16 bytes: pos uint32, ksize uint32, child page uint64
//	leaf element    16 bytes: flags uint32 (0x01 bucket), pos, ksize, vsize uint32
//	                pos counts from the element's own first byte
//	bucket value    root page uint64, sequence uint64; root 0 means an inline
//	                bucket whose leaf page follows in the value
//	freelist        count page ids uint64; count 0xFFFF means the first uint64
//	                holds the real count
const (
	boltPageHeader = 16
	boltElement    = 16
	boltMetaSize   = 64
	boltMagic      = 0xED0CDAED
	boltVersion    = 2
	boltNoFreelist = ^uint64(0)

	flagBranch   = 0x01
	flagLeaf     = 0x02
	flagFreelist = 0x10
	flagBucket   = 0x01

	maxTreeDepth = 64
	wholeFileMax = 32 << 20
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

// errDamaged is the reason checkFile gives; the caller wraps it.
type errDamaged struct{ why string }

func (e errDamaged) Error() string { return e.why }

func damaged(format string, args ...any) error {
	return errDamaged{fmt.Sprintf(format, args...)}
}

// checkFile checks the bbolt file f (see above). Files it cannot judge
// (empty, or without any valid meta page) are left to bbolt, which refuses
// those safely with ErrInvalid.
func checkFile(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		return nil
	}
	size := uint64(fi.Size())
	read := func(off uint64, n int) []byte {
		buf := make([]byte, n)
		if k, _ := f.ReadAt(buf, int64(off)); k != n {
			return nil
		}
		return buf
	}
	// Meta page 0 is at 0; meta page 1 one page further. When page 0 is
	// unreadable bbolt looks for page 1 at every power of two from 1 KiB,
	// and so does this.
	const metaLen = boltPageHeader + boltMetaSize
	m, ok := parseBoltMeta(read(0, metaLen))
	var offsets []uint64
	if ok && m.pageSize >= 512 && m.pageSize <= 1<<24 {
		offsets = []uint64{m.pageSize}
	} else if !ok {
		for i := 0; i <= 14 && 1024<<i < size; i++ {
			offsets = append(offsets, 1024<<i)
		}
	}
	for _, off := range offsets {
		if m1, ok1 := parseBoltMeta(read(off, metaLen)); ok1 && (!ok || m1.txid > m.txid) {
			m, ok = m1, true
			break
		}
	}
	if !ok {
		return nil
	}
	if m.pageSize < 512 || m.pageSize > 1<<24 || m.pageSize&(m.pageSize-1) != 0 {
		return damaged("page size %d", m.pageSize)
	}
	if m.highPgid < 2 || m.highPgid > size/m.pageSize {
		return damaged("truncated: the file is %d bytes, its header says %d pages of %d", size, m.highPgid, m.pageSize)
	}
	c := &checker{f: f, m: m, seen: make([]bool, m.highPgid), free: make([]bool, m.highPgid)}
	if used := m.highPgid * m.pageSize; used <= wholeFileMax {
		// One read instead of one per page (10,000 guests use about
		// 4.5 MB, a thousand pages); bbolt's growth beyond is not read.
		c.data = make([]byte, used)
		if _, err := f.ReadAt(c.data, 0); err != nil {
			return fmt.Errorf("reading the file: %w", err)
		}
	}
	c.seen[0], c.seen[1] = true, true
	if m.freelist != boltNoFreelist {
		if err := c.freelist(); err != nil {
			return err
		}
	}
	return c.tree(m.root, 0)
}

type checker struct {
	f    *os.File
	data []byte // the pages in use, when they are at most wholeFileMax bytes
	m    boltMeta
	seen []bool // pages reached from the meta page
	free []bool // pages on the freelist
}

// page reads page id with its overflow pages and marks them seen.
func (c *checker) page(id uint64) ([]byte, error) {
	if id < 2 || id >= c.m.highPgid {
		return nil, damaged("page %d is outside the file's %d pages", id, c.m.highPgid)
	}
	hdr, err := c.read(id, 1)
	if err != nil {
		return nil, err
	}
	if got := binary.NativeEndian.Uint64(hdr); got != id {
		// bbolt frees pages by the id in their header.
		return nil, damaged("page %d calls itself page %d", id, got)
	}
	overflow := uint64(binary.NativeEndian.Uint32(hdr[12:]))
	if overflow >= c.m.highPgid-id {
		return nil, damaged("page %d runs past the end of the file", id)
	}
	for i := id; i <= id+overflow; i++ {
		if c.seen[i] {
			return nil, damaged("page %d is used twice", i)
		}
		if c.free[i] {
			return nil, damaged("page %d is both free and in use", i)
		}
		c.seen[i] = true
	}
	if overflow == 0 {
		return hdr, nil
	}
	return c.read(id, 1+overflow)
}

// read returns n pages from page id on, from data when the pages in use
// were read at once, else with one read.
func (c *checker) read(id, n uint64) ([]byte, error) {
	off, size := id*c.m.pageSize, n*c.m.pageSize
	if c.data != nil {
		return c.data[off : off+size], nil // in range: id+n <= highPgid <= len/pageSize
	}
	p := make([]byte, size)
	if _, err := c.f.ReadAt(p, int64(off)); err != nil {
		return nil, damaged("reading page %d: %v", id, err)
	}
	return p, nil
}

func (c *checker) freelist() error {
	p, err := c.page(c.m.freelist)
	if err != nil {
		return err
	}
	ne := binary.NativeEndian
	if ne.Uint16(p[8:]) != flagFreelist {
		return damaged("freelist page %d has flags %#x", c.m.freelist, ne.Uint16(p[8:]))
	}
	n, off := uint64(ne.Uint16(p[10:])), uint64(boltPageHeader)
	if n == 0xFFFF {
		if len(p) < boltPageHeader+8 {
			return damaged("freelist page %d is short", c.m.freelist)
		}
		n, off = ne.Uint64(p[boltPageHeader:]), off+8
	}
	if n > (uint64(len(p))-off)/8 {
		return damaged("freelist page %d claims %d entries", c.m.freelist, n)
	}
	for i := uint64(0); i < n; i++ {
		id := ne.Uint64(p[off+8*i:])
		if id < 2 || id >= c.m.highPgid {
			return damaged("the freelist names page %d, outside the file's %d pages", id, c.m.highPgid)
		}
		if c.seen[id] {
			return damaged("the freelist names page %d, which is in use", id)
		}
		c.free[id] = true
	}
	return nil
}

// tree checks the B+tree rooted at page id.
func (c *checker) tree(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return damaged("tree deeper than %d at page %d", maxTreeDepth, id)
	}
	p, err := c.page(id)
	if err != nil {
		return err
	}
	return c.node(id, p, depth)
}

// node checks one branch or leaf page (p is its bytes, id names it).
func (c *checker) node(id uint64, p []byte, depth int) error {
	ne := binary.NativeEndian
	if len(p) < boltPageHeader {
		return damaged("page %d is short", id)
	}
	flags, count := ne.Uint16(p[8:]), int(ne.Uint16(p[10:]))
	if boltPageHeader+count*boltElement > len(p) {
		return damaged("page %d claims %d elements", id, count)
	}
	// element returns the bytes at pos..pos+n, counted from element i.
	element := func(i int, pos, n uint64) ([]byte, bool) {
		start := uint64(boltPageHeader+i*boltElement) + pos
		if pos > uint64(len(p)) || n > uint64(len(p)) || start+n > uint64(len(p)) {
			return nil, false
		}
		return p[start : start+n], true
	}
	switch {
	case flags == flagBranch:
		if count == 0 {
			return damaged("branch page %d is empty", id)
		}
		for i := 0; i < count; i++ {
			e := p[boltPageHeader+i*boltElement:]
			if _, ok := element(i, uint64(ne.Uint32(e[0:])), uint64(ne.Uint32(e[4:]))); !ok {
				return damaged("key %d of page %d lies outside the page", i, id)
			}
			if err := c.tree(ne.Uint64(e[8:]), depth+1); err != nil {
				return err
			}
		}
	case flags == flagLeaf:
		for i := 0; i < count; i++ {
			e := p[boltPageHeader+i*boltElement:]
			eflags, pos, ksize, vsize := ne.Uint32(e[0:]), uint64(ne.Uint32(e[4:])), uint64(ne.Uint32(e[8:])), uint64(ne.Uint32(e[12:]))
			kv, ok := element(i, pos, ksize+vsize)
			if !ok {
				return damaged("entry %d of page %d lies outside the page", i, id)
			}
			if eflags&flagBucket == 0 {
				continue
			}
			v := kv[ksize:]
			if len(v) < 16 {
				return damaged("bucket %d of page %d is short", i, id)
			}
			if root := ne.Uint64(v); root != 0 {
				if err := c.tree(root, depth+1); err != nil {
					return err
				}
				continue
			}
			// An inline bucket: a leaf page inside the value.
			if depth+1 > maxTreeDepth {
				return damaged("buckets nested deeper than %d", maxTreeDepth)
			}
			inline := v[16:]
			if len(inline) < boltPageHeader || ne.Uint16(inline[8:]) != flagLeaf {
				return damaged("inline bucket %d of page %d", i, id)
			}
			if err := c.node(id, inline, depth+1); err != nil {
				return err
			}
		}
	default:
		return damaged("page %d has flags %#x, not a branch or leaf", id, flags)
	}
	return nil
}
