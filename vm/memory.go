package vm

import "github.com/tetratelabs/wazero/experimental"

// Memory write charges
//
// A call's memory starts as the snapshot, mapped copy-on-write, and is
// reset to it afterwards. What that costs the node grows with the number
// of 4 KiB blocks the call writes (a copy-on-write or write-protection
// fault when the block is first written, and copying the snapshot back),
// not with the instructions that write them: a loop storing one byte per
// 4 KiB costs microseconds per store. So after every call the VM counts
// the distinct 4 KiB blocks of linear memory (aligned to the start of
// memory) that the call wrote — by stores, bulk memory operations or host
// functions writing into guest memory, in the snapshot or in memory it
// grew — and charges GasPageWrite for each. The count is a property of the
// execution, identical on every node whatever its instance pool holds:
// every call starts from an instance whose memory has no block marked
// written.
//
// How it is counted (memory_linux.go): on Linux the 4 KiB pages of the
// mapping are the blocks (the VM refuses hosts with other page sizes). When
// the kernel offers asynchronous userfaultfd write protection (Linux 6.7:
// UFFD_FEATURE_WP_ASYNC) with PAGEMAP_SCAN, the mapping is write-protected
// and the scan reports exactly the pages written since; reset copies the
// snapshot back into them and protects them again, so a page stays
// resident and a later write costs a protection fault (≈0.8 µs), not a
// copy-on-write fault (≈2.5 µs). Otherwise written pages are the private
// copies /proc/self/pagemap reports, and reset drops them (they revert to
// the snapshot and are faulted again next time). Both give the same count.
// Elsewhere (memory_other.go) memory is a plain copy and the count is the
// blocks that differ from the snapshot after the call: equal to the
// Linux count except for blocks a call wrote back to their snapshot
// contents, so a node that must agree with Linux validators must run Linux.
//
// Reads cost no faults: the snapshot is mapped (populated) when a mapping
// is created, and mappings outlive instances (a reset mapping serves the
// next instance), so pages stay mapped. They do cost a TLB and cache miss
// the first time a call touches a 4 KiB block (≈20 ns), and the scan
// after the call walks the whole memory: every call pays GasCallPerPage
// per 64 KiB page it starts with for both. Memory beyond the snapshot
// (memory.grow) is paid for when grown (meter CostTable.MemoryGrowPerPage).

// linearMemory is a Wasm memory that can be reset to the snapshot image.
type linearMemory interface {
	experimental.LinearMemory
	// written returns the number of 4 KiB blocks written since the memory
	// was created or last reset.
	written() (int, error)
	// reset restores the image (also in memory grown beyond it) and makes
	// every block unwritten. It relies on a written call made after the
	// last write, if any.
	reset() error
}

// allocator hands wazero one memory backed by img and remembers it.
type allocator struct {
	img *image
	mem linearMemory
}

func (a *allocator) Allocate(_, max uint64) experimental.LinearMemory {
	a.mem = a.img.newMemory(max)
	return a.mem
}

// blockSize is the unit of the memory write charge.
const blockSize = 4096

// differingBlocks counts the blocks of mem that differ from the first size
// bytes of img (beyond them, from zero).
func differingBlocks(mem, img []byte, size int) int {
	n := 0
	for off := 0; off < len(mem); off += blockSize {
		end := min(off+blockSize, len(mem))
		b := mem[off:end]
		switch {
		case end <= size:
			if string(b) != string(img[off:end]) {
				n++
			}
		case off >= size:
			if !allZero(b) {
				n++
			}
		default:
			if string(b[:size-off]) != string(img[off:size]) || !allZero(b[size-off:]) {
				n++
			}
		}
	}
	return n
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
