package vm

import "github.com/tetratelabs/wazero/experimental"

// A job's linear memory. The memory limit is a property of the run, not of
// the compiled module or the runtime: the allocator of each run backs the
// memory with at most JobSpec.MemoryLimit bytes and refuses to grow it
// beyond (Reallocate returns nil, so memory.grow returns -1, as Wasm
// specifies for a memory that cannot grow), so one compiled module and one
// runtime serve every limit. The alternatives cost more: rewriting the
// memory section's maximum per run means a compilation per limit, and a
// check against a limit global in front of every memory.grow is a change
// of the metering pass every contract would carry. The refusal is
// recorded: a program that fails after it (Go's runtime stops with "out
// of memory", exit code 2) ends as JobLimitExceeded.

// jobAllocator hands wazero the memory of one run.
type jobAllocator struct {
	img   *image // the initial memory, nil when wazero applies the data segments
	limit uint64 // bytes
	s     *jobState
	mem   experimental.LinearMemory
}

func (a *jobAllocator) Allocate(_, max uint64) experimental.LinearMemory {
	size := min(a.limit, max)
	var mem experimental.LinearMemory
	if m, err := mapJobMemory(a.img, size, a.s); err == nil {
		mem = m
	} else {
		// Out of address space or mappings: a growable slice instead.
		mem = newSliceJobMemory(a.img, size, a.s)
	}
	a.mem = mem
	return mem
}

// grow checks a new memory size against the run's limit.
func (s *jobState) grow(size, limit uint64) bool {
	if size > limit {
		s.refused("memory limit: a memory.grow to %d bytes (%d pages) was refused, the limit is %d bytes", size, size/65536, limit)
		return false
	}
	s.memPeak = max(s.memPeak, size)
	return true
}

// sliceJobMemory is a job memory on Go's heap, grown by copying.
type sliceJobMemory struct {
	buf   []byte
	limit uint64
	s     *jobState
}

func newSliceJobMemory(img *image, limit uint64, s *jobState) *sliceJobMemory {
	m := &sliceJobMemory{limit: limit, s: s}
	if img != nil {
		m.buf = append([]byte(nil), imageBytes(img)...)
	}
	return m
}

func (m *sliceJobMemory) Reallocate(size uint64) []byte {
	if !m.s.grow(size, m.limit) {
		return nil
	}
	if size <= uint64(cap(m.buf)) {
		old := len(m.buf)
		m.buf = m.buf[:size]
		if int(size) > old {
			clear(m.buf[old:])
		}
		return m.buf
	}
	nb := make([]byte, size, min(max(size, 2*uint64(cap(m.buf))), m.limit))
	copy(nb, m.buf)
	m.buf = nb
	return m.buf
}

func (m *sliceJobMemory) Free() { m.buf = nil }
