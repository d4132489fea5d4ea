//go:build linux

package vm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// image is the snapshot memory in a memfd. Instances map it privately
// (copy-on-write), so an instance starts as the snapshot without copying
// and a page the guest only reads is shared by every instance. See
// memory.go for how writes are counted and undone.
type image struct {
	fd   int
	size int // bytes of snapshot (the memory size after initialization)
	max  int
	view []byte // read-only shared mapping of the snapshot
	// noProtect makes mappings find written pages as private copies even
	// where the kernel can write-protect them (tests of both ways).
	noProtect bool

	mu   sync.Mutex
	free []*mmapMemory // reset mappings for the next instances
	dead bool
}

// maxFreeMappings bounds the reset mappings an image keeps.
const maxFreeMappings = maxPooled

// checkPageSize reports whether this host can count memory writes in 4 KiB
// blocks (see memory.go): the charge is consensus.
func checkPageSize() error {
	if n := unix.Getpagesize(); n != blockSize {
		return fmt.Errorf("vm: host page size is %d bytes: the memory write charge counts 4 KiB pages, so the VM needs a host with 4 KiB pages", n)
	}
	return nil
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
	img.mu.Lock()
	free := img.free
	img.free, img.dead = nil, true
	img.mu.Unlock()
	for _, m := range free {
		m.unmap()
	}
	if img.view != nil {
		unix.Munmap(img.view)
	}
	unix.Close(img.fd)
}

// mmapMemory is one instance's memory: a private mapping of the image.
type mmapMemory struct {
	img  *image
	buf  []byte // the whole mapping: max bytes
	size int    // the largest size wazero asked for since the last reset
	// uffd is the userfaultfd that write-protects buf (-1: pages written
	// are found as private copies instead).
	uffd int
	// pages lists the pages written since the last reset, when scanned is
	// set: written scans, and a reset right after it (nothing can write in
	// between: the call is over) reuses the list.
	pages   []uint32
	scanned bool
	pagemap []byte
	regions []pageRegion
}

func (img *image) newMemory(max uint64) linearMemory {
	img.mu.Lock()
	if n := len(img.free); n > 0 {
		m := img.free[n-1]
		img.free = img.free[:n-1]
		img.mu.Unlock()
		return m
	}
	img.mu.Unlock()
	size := min(img.max, int(max))
	buf, err := unix.Mmap(img.fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE)
	if err != nil { // out of address space or mappings: copy instead
		m := &copyMemory{img: img, buf: make([]byte, size)}
		if m.reset() != nil {
			return &copyMemory{}
		}
		return m
	}
	m := &mmapMemory{img: img, buf: buf, size: img.size, uffd: -1}
	m.populate(0, img.size)
	if !img.noProtect {
		if fd, err := writeProtect(buf); err == nil {
			m.uffd = fd
		}
	}
	return m
}

// populate maps the image's pages in [off, off+n) read-only, so that
// reading them costs no page faults (best effort: MADV_POPULATE_READ needs
// Linux 5.14).
func (m *mmapMemory) populate(off, n int) {
	if n > 0 {
		_ = unix.Madvise(m.buf[off:off+n], unix.MADV_POPULATE_READ)
	}
}

func (m *mmapMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	m.size = max(m.size, int(size))
	return m.buf[:size]
}

// Free is called by wazero when the instance closes: the mapping is reset
// and kept for the next instance of the module.
func (m *mmapMemory) Free() {
	if m.buf == nil {
		return
	}
	if m.reset() == nil {
		m.img.mu.Lock()
		if !m.img.dead && len(m.img.free) < maxFreeMappings {
			m.img.free = append(m.img.free, m)
			m.img.mu.Unlock()
			return
		}
		m.img.mu.Unlock()
	}
	m.unmap()
}

func (m *mmapMemory) unmap() {
	if m.buf != nil {
		unix.Munmap(m.buf)
		m.buf = nil
	}
	if m.uffd >= 0 {
		unix.Close(m.uffd)
		m.uffd = -1
	}
}

func (m *mmapMemory) written() (int, error) {
	m.scanned = false
	if err := m.scan(); err != nil {
		return 0, err
	}
	return len(m.pages), nil
}

// reset restores the image in the pages written since the last reset:
// they become unwritten again, so the next call's count starts at zero.
func (m *mmapMemory) reset() error {
	if err := m.scan(); err != nil {
		return err
	}
	m.scanned = false
	imgPages := m.img.size / pageSize
	for i := 0; i < len(m.pages); {
		// A run of consecutive pages, all inside or all outside the image.
		j := i + 1
		for j < len(m.pages) && m.pages[j] == m.pages[j-1]+1 && (m.pages[j] < uint32(imgPages)) == (m.pages[i] < uint32(imgPages)) {
			j++
		}
		off, end := int(m.pages[i])*pageSize, int(m.pages[j-1]+1)*pageSize
		switch {
		case m.uffd >= 0 && m.pages[i] < uint32(imgPages):
			copy(m.buf[off:end], m.img.view[off:end])
		default:
			// Beyond the image the memfd is zero; without write protection
			// dropping the private copies is how pages become unwritten.
			if err := unix.Madvise(m.buf[off:end], unix.MADV_DONTNEED); err != nil {
				return err
			}
			if m.pages[i] < uint32(imgPages) {
				m.populate(off, end-off)
			}
		}
		i = j
	}
	if m.uffd >= 0 {
		// Protecting walks every page of the range it is given, written or
		// not (≈60 ns a page), and each call costs about as much as walking
		// protectGap pages: runs of written pages closer than that share a
		// call, farther ones get their own. One call over the whole span
		// would let a call that writes the first and the last block of an
		// 8 MiB memory make every reset walk 2,048 pages (≈130 µs) for two
		// written blocks; this way the walk is at most protectGap pages per
		// written block, which GasPageWrite covers.
		for i := 0; i < len(m.pages); {
			j := i + 1
			for j < len(m.pages) && m.pages[j]-m.pages[j-1] <= protectGap {
				j++
			}
			off, end := int(m.pages[i])*pageSize, int(m.pages[j-1]+1)*pageSize
			if err := uffdProtect(m.uffd, m.buf[off:end]); err != nil {
				return err
			}
			i = j
		}
	}
	m.pages = m.pages[:0]
	m.size = m.img.size
	return nil
}

const pageSize = blockSize

// protectGap is the widest gap, in pages, between two written pages that
// reset write-protects in one call (see reset).
const protectGap = 16

// scan lists the pages written since the last reset in m.pages, unless
// written has just done so.
func (m *mmapMemory) scan() error {
	if m.scanned {
		return nil
	}
	m.pages = m.pages[:0]
	var err error
	if m.uffd >= 0 {
		err = m.scanProtected()
	} else {
		err = m.scanPrivate()
	}
	if err != nil {
		return fmt.Errorf("vm: memory write tracking: %w", err)
	}
	m.scanned = true
	return nil
}

// scanProtected asks PAGEMAP_SCAN for the pages whose write protection a
// write has lifted.
func (m *mmapMemory) scanProtected() error {
	f, err := pagemapFile()
	if err != nil {
		return err
	}
	if m.regions == nil {
		m.regions = make([]pageRegion, 256)
	}
	base := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(m.buf))))
	start, end := base, base+uint64(m.size)
	for start < end {
		arg := pmScanArg{
			size: uint64(unsafe.Sizeof(pmScanArg{})), flags: pmScanCheckWPAsync,
			start: start, end: end,
			vec: uint64(uintptr(unsafe.Pointer(&m.regions[0]))), vecLen: uint64(len(m.regions)),
			categoryMask: pageIsWritten, returnMask: pageIsWritten,
		}
		n, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(f), pagemapScan, uintptr(unsafe.Pointer(&arg)))
		if errno != 0 {
			return fmt.Errorf("PAGEMAP_SCAN: %w", errno)
		}
		for _, r := range m.regions[:n] {
			for p := r.start; p < r.end; p += pageSize {
				m.pages = append(m.pages, uint32((p-base)/pageSize))
			}
		}
		if arg.walkEnd <= start {
			return errors.New("PAGEMAP_SCAN made no progress")
		}
		start = arg.walkEnd
	}
	return nil
}

// pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
const (
	pmPresent   = 1 << 63
	pmSwapped   = 1 << 62
	pmFile      = 1 << 61 // file page or shared anonymous
	pmExclusive = 1 << 56 // mapped by this mapping only
)

// scanPrivate reads /proc/self/pagemap: a written page is a private copy
// (anonymous and exclusive, or swapped out), an unwritten one a page of
// the memfd or not mapped. Reading a hole may map the shared zero page,
// which is neither file-backed nor exclusive: not a write.
func (m *mmapMemory) scanPrivate() error {
	n := m.size / pageSize
	if len(m.pagemap) < 8*n {
		m.pagemap = make([]byte, 8*n)
	}
	f, err := pagemapFile()
	if err != nil {
		return err
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(m.buf)))
	if _, err := unix.Pread(f, m.pagemap[:8*n], int64(base/pageSize*8)); err != nil {
		return err
	}
	for i := range n {
		e := binary.LittleEndian.Uint64(m.pagemap[8*i:])
		if (e&pmPresent != 0 && e&pmFile == 0 && e&pmExclusive != 0) || e&pmSwapped != 0 {
			m.pages = append(m.pages, uint32(i))
		}
	}
	return nil
}

// pagemapFile opens /proc/self/pagemap once per process.
var pagemapFile = sync.OnceValues(func() (int, error) {
	return unix.Open("/proc/self/pagemap", unix.O_RDONLY|unix.O_CLOEXEC, 0)
})

// userfaultfd write protection (linux/userfaultfd.h) and PAGEMAP_SCAN
// (linux/fs.h, Linux 6.7).
const (
	uffdUserModeOnly      = 1
	uffdAPI               = 0xaa
	uffdFeatureWPShmem    = 1 << 12 // UFFD_FEATURE_WP_HUGETLBFS_SHMEM: the image is a memfd
	uffdFeatureWPUnpop    = 1 << 13 // UFFD_FEATURE_WP_UNPOPULATED: pages never touched are protected too
	uffdFeatureWPAsync    = 1 << 15 // UFFD_FEATURE_WP_ASYNC: the kernel lifts protection itself on a write
	uffdioAPI             = 0xc018aa3f
	uffdioRegister        = 0xc020aa00
	uffdioWriteProtect    = 0xc018aa06
	uffdRegisterModeWP    = 1 << 1
	uffdWriteProtectModeW = 1 << 0
	pagemapScan           = 0xc0606610
	pmScanCheckWPAsync    = 1 << 1
	pageIsWritten         = 1 << 1
)

type pmScanArg struct {
	size, flags, start, end, walkEnd, vec, vecLen, maxPages       uint64
	categoryInverted, categoryMask, categoryAnyofMask, returnMask uint64
}

type pageRegion struct{ start, end, categories uint64 }

func ioctlPtr(fd int, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// writeProtect registers buf with a new userfaultfd for asynchronous write
// protection and protects all of it. It fails where the kernel lacks the
// features (Linux < 6.7) or userfaultfd is not allowed.
func writeProtect(buf []byte) (int, error) {
	fd, _, errno := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK|uffdUserModeOnly, 0, 0)
	if errno != 0 {
		return -1, errno
	}
	api := struct{ api, features, ioctls uint64 }{api: uffdAPI, features: uffdFeatureWPShmem | uffdFeatureWPUnpop | uffdFeatureWPAsync}
	reg := struct{ start, len, mode, ioctls uint64 }{
		start: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(buf)))), len: uint64(len(buf)), mode: uffdRegisterModeWP,
	}
	err := ioctlPtr(int(fd), uffdioAPI, unsafe.Pointer(&api))
	if err == nil {
		err = ioctlPtr(int(fd), uffdioRegister, unsafe.Pointer(&reg))
	}
	if err == nil {
		err = uffdProtect(int(fd), buf)
	}
	if err == nil {
		// PAGEMAP_SCAN must work too (Linux 6.7 brought both).
		err = (&mmapMemory{buf: buf, size: len(buf), uffd: int(fd)}).scanProtected()
	}
	if err != nil {
		unix.Close(int(fd))
		return -1, err
	}
	return int(fd), nil
}

func uffdProtect(fd int, b []byte) error {
	wp := struct{ start, len, mode uint64 }{
		start: uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b)))), len: uint64(len(b)), mode: uffdWriteProtectModeW,
	}
	return ioctlPtr(fd, uffdioWriteProtect, unsafe.Pointer(&wp))
}

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

func (m *copyMemory) written() (int, error) {
	if m.img == nil {
		return 0, unix.ENOMEM
	}
	return differingBlocks(m.buf, m.img.view, m.img.size), nil
}

func (m *copyMemory) reset() error {
	if m.img == nil {
		return unix.ENOMEM
	}
	if _, err := unix.Pread(m.img.fd, m.buf[:m.img.size], 0); err != nil {
		return err
	}
	clear(m.buf[m.img.size:])
	return nil
}
