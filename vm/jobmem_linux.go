//go:build linux

package vm

import (
	"errors"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmapJobMemory reserves the job's whole memory limit as one private
// mapping, so the memory never moves and untouched pages cost nothing: the
// first part maps the module's initial memory image copy-on-write, the
// rest is anonymous and reads as zeros.
type mmapJobMemory struct {
	base  unsafe.Pointer
	buf   []byte
	limit uint64
	s     *jobState
}

func mapJobMemory(img *image, limit uint64, s *jobState) (*mmapJobMemory, error) {
	if limit == 0 {
		return nil, errors.New("empty memory")
	}
	base, err := unix.MmapPtr(-1, 0, nil, uintptr(limit), unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return nil, err
	}
	if img != nil && img.size > 0 {
		if _, err := unix.MmapPtr(img.fd, 0, base, uintptr(img.size), unix.PROT_READ|unix.PROT_WRITE,
			unix.MAP_PRIVATE|unix.MAP_FIXED); err != nil {
			unix.MunmapPtr(base, uintptr(limit))
			return nil, err
		}
	}
	return &mmapJobMemory{base: base, buf: unsafe.Slice((*byte)(base), limit), limit: limit, s: s}, nil
}

func (m *mmapJobMemory) Reallocate(size uint64) []byte {
	if !m.s.grow(size, m.limit) {
		return nil
	}
	return m.buf[:size]
}

func (m *mmapJobMemory) Free() {
	if m.base != nil {
		unix.MunmapPtr(m.base, uintptr(m.limit))
		m.base, m.buf = nil, nil
	}
}

// imageBytes is the initial memory an image holds.
func imageBytes(img *image) []byte { return img.view }
