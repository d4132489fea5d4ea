package vm

import "github.com/tetratelabs/wazero/experimental"

// linearMemory is a Wasm memory that can be reset to the snapshot image.
type linearMemory interface {
	experimental.LinearMemory
	// reset restores the image; the memory must not have grown.
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
