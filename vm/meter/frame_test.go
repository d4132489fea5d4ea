package meter

import (
	"testing"

	"github.com/sos-kernel/sos/vm/internal/wasmbin"
)

func TestAnalyzeFrame(t *testing.T) {
	types := []wasmbin.FuncType{
		{}, // 0: () -> ()
		{Params: []wasmbin.ValType{wasmbin.I32, wasmbin.I32}, Results: []wasmbin.ValType{wasmbin.I32}}, // 1
		{Results: []wasmbin.ValType{wasmbin.I32, wasmbin.I32, wasmbin.I32}},                            // 2: () -> 3 values
	}
	opts := DefaultOptions()
	r := newRewriter(&opts, types, []uint32{0, 1, 2}, 0, 1)
	for _, tc := range []struct {
		name  string
		body  []byte
		calls bool
		slots int64 // with 2 locals
	}{
		{"empty", []byte{0x0b}, false, 2},
		{"three consts", []byte{0x41, 1, 0x41, 2, 0x41, 3, 0x1a, 0x1a, 0x1a, 0x0b}, false, 5},
		{"binary ops pop", []byte{0x41, 1, 0x41, 2, 0x6a, 0x41, 3, 0x6a, 0x1a, 0x0b}, false, 4},
		// call 1 pops two and pushes one; call 2 pushes three.
		{"call arity", []byte{0x41, 1, 0x41, 2, 0x10, 1, 0x10, 2, 0x1a, 0x1a, 0x1a, 0x1a, 0x0b}, true, 6},
		// Values inside a block are counted on top of the outside ones;
		// after br the rest of the block is unreachable.
		{"block", []byte{0x41, 1, 0x02, 0x7f, 0x41, 2, 0x41, 3, 0x0c, 0, 0x41, 4, 0x0b, 0x1a, 0x1a, 0x0b}, false, 5},
		// if pops its condition; else restarts from the block's base.
		{"if else", []byte{0x41, 1, 0x04, 0x40, 0x41, 1, 0x1a, 0x05, 0x41, 1, 0x41, 1, 0x1a, 0x1a, 0x0b, 0x0b}, false, 4},
		{"call_indirect", []byte{0x41, 0, 0x41, 0, 0x41, 0, 0x11, 1, 0, 0x1a, 0x0b}, true, 5},
		{"memory.fill pops three", []byte{0x41, 0, 0x41, 0, 0x41, 0, 0xfc, 11, 0, 0x41, 0, 0x1a, 0x0b}, false, 5},
	} {
		info, err := r.analyze(tc.body, 2, 0)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if info.calls != tc.calls || info.slots != tc.slots || info.weight != 1 {
			t.Errorf("%s: %+v, want calls %v slots %d weight 1", tc.name, info, tc.calls, tc.slots)
		}
	}
	// 600 values live at once: weight 1 + (2+600)/FrameSlots.
	var big []byte
	for range 600 {
		big = append(big, 0x41, 0)
	}
	for range 600 {
		big = append(big, 0x1a)
	}
	info, err := r.analyze(append(big, 0x0b), 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(1 + 602/FrameSlots); info.slots != 602 || info.weight != want {
		t.Errorf("600 values: %+v, want slots 602 weight %d", info, want)
	}
	// Invalid code (underflow, unknown types) gives a number, not a panic.
	if _, err := r.analyze([]byte{0x1a, 0x1a, 0x10, 99, 0x11, 99, 0, 0x02, 0x05, 0x0b, 0x0b}, 0, 0); err != nil {
		t.Fatal(err)
	}
}
