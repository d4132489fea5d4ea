//go:build linux

package vm

import (
	"encoding/binary"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// image is the snapshot memory in a memfd. Instances map it privately
// (copy-on-write), so an instance starts as the snapshot without copying
// and only the pages a call writes become private copies. reset finds those
// pages in /proc/self/pagemap (a private copy is an anonymous page, an
// untouched one is a page-cache page or not mapped) and copies the snapshot
// back into them; they stay mapped and writable, so the next call takes no
// page faults for them. Restoring a fresh state thus costs in proportion to
// the pages calls wrote, not to the memory size.
type image struct {
	fd   int
	size int // bytes of snapshot (the memory size after initialization)
	max  int
	view []byte // read-only shared mapping of the snapshot
}

func newImage(data []byte, maxBytes int) (*image, error) {
	fd, err := unix.MemfdCreate("sos-vm-image", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	img := &image{fd: fd, size: len(data), max: maxBytes}
	if err := unix.Ftruncate(fd, int64(maxBytes)); err != nil {
		img.close()
		return nil, err
	}
	for off := 0; off < len(data); {
		n, err := unix.Pwrite(fd, data[off:], int64(off))
		if err != nil {
			img.close()
			return nil, err
		}
		off += n
	}
	if len(data) > 0 {
		view, err := unix.Mmap(fd, 0, len(data), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			img.close()
			return nil, err
		}
		img.view = view
	}
	return img, nil
}

func (img *image) close() {
	if img.view != nil {
		unix.Munmap(img.view)
	}
	unix.Close(img.fd)
}

type mmapMemory struct {
	img *image
	buf []byte // the whole mapping: max bytes
	// dirty lists the pages known to be private copies; reset copies the
	// snapshot into them on every reset.
	dirty   []uint32
	isDirty []bool
	pagemap []byte
}

// maxDirtyPages bounds the pages reset copies back; beyond it, reset drops
// them all with madvise and starts over.
const maxDirtyPages = 512

func (img *image) newMemory(max uint64) linearMemory {
	size := img.max
	if int(max) < size {
		size = int(max)
	}
	buf, err := unix.Mmap(img.fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	if err != nil { // out of address space or mappings: copy instead
		m := &copyMemory{img: img, buf: make([]byte, size)}
		if m.reset() != nil {
			return &copyMemory{}
		}
		return m
	}
	return &mmapMemory{img: img, buf: buf}
}

func (m *mmapMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	return m.buf[:size]
}

func (m *mmapMemory) Free() {
	if m.buf != nil {
		unix.Munmap(m.buf)
		m.buf = nil
	}
}

func (m *mmapMemory) reset() error {
	if m.img.size == 0 {
		return nil
	}
	if err := m.scan(); err != nil || len(m.dirty) > maxDirtyPages {
		// Drop every private page: the mapping reverts to the memfd.
		clear(m.isDirty)
		m.dirty = m.dirty[:0]
		return unix.Madvise(m.buf[:m.img.size], unix.MADV_DONTNEED)
	}
	for _, p := range m.dirty {
		off := int(p) * pageSize
		copy(m.buf[off:off+pageSize], m.img.view[off:off+pageSize])
	}
	return nil
}

const pageSize = 4096

// pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
const (
	pmPresent = 1 << 63
	pmSwapped = 1 << 62
	pmFile    = 1 << 61 // file page or shared anonymous
)

// scan adds to m.dirty the pages of the snapshot range that are private
// copies (written since the mapping was created or last dropped).
func (m *mmapMemory) scan() error {
	n := m.img.size / pageSize
	if m.isDirty == nil {
		m.isDirty = make([]bool, n)
		m.pagemap = make([]byte, 8*n)
	}
	f, err := pagemapFile()
	if err != nil {
		return err
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(m.buf)))
	if _, err := unix.Pread(f, m.pagemap, int64(base/pageSize*8)); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		e := binary.LittleEndian.Uint64(m.pagemap[8*i:])
		private := (e&pmPresent != 0 && e&pmFile == 0) || e&pmSwapped != 0
		if private && !m.isDirty[i] {
			m.isDirty[i] = true
			m.dirty = append(m.dirty, uint32(i))
		}
	}
	return nil
}

// pagemapFile opens /proc/self/pagemap once per process.
var pagemapFile = sync.OnceValues(func() (int, error) {
	return unix.Open("/proc/self/pagemap", unix.O_RDONLY|unix.O_CLOEXEC, 0)
})

// copyMemory is the fallback when mmap fails: reset reads the image back.
type copyMemory struct {
	img *image
	buf []byte
}

func (m *copyMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	return m.buf[:size]
}

func (m *copyMemory) Free() { m.buf = nil }

func (m *copyMemory) reset() error {
	if m.img == nil {
		return unix.ENOMEM
	}
	_, err := unix.Pread(m.img.fd, m.buf[:m.img.size], 0)
	return err
}
