//go:build !linux

package vm

// image is the snapshot memory; without Linux's memfd, madvise and
// pagemap, an instance's memory is a copy and reset copies it back.
type image struct {
	data []byte
	max  int
}

// checkPageSize: blocks are compared, not faulted, here; see memory.go.
func checkPageSize() error { return nil }

func newImage(data []byte, maxBytes int) (*image, error) {
	return &image{data: data, max: maxBytes}, nil
}

func (img *image) close() {}

type copyMemory struct {
	img *image
	buf []byte
}

func (img *image) newMemory(max uint64) linearMemory {
	size := min(img.max, int(max))
	m := &copyMemory{img: img, buf: make([]byte, size)}
	copy(m.buf, img.data)
	return m
}

func (m *copyMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	return m.buf[:size]
}

func (m *copyMemory) Free() { m.buf = nil }

// written counts the blocks that differ from the snapshot: the Linux count
// except for blocks written back to their snapshot contents (memory.go).
func (m *copyMemory) written() (int, error) {
	return differingBlocks(m.buf, m.img.data, len(m.img.data)), nil
}

func (m *copyMemory) reset() error {
	copy(m.buf, m.img.data)
	clear(m.buf[len(m.img.data):])
	return nil
}
