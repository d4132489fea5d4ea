package vm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/vm/wasmasm"
)

// pageWriter is a module whose execute copies its message to address 0,
// then stores one byte n times (n = the message length), 4 KiB apart when
// the message starts with 'a' and at address 0 otherwise; it traps at the
// end when the message's second byte is 't'. Both ways run the same
// instructions.
func pageWriter() []byte { return pageWriterPages(4) }

// pageWriterPages is pageWriter with a memory of pages pages.
func pageWriterPages(pages byte) []byte {
	const (
		inputLen  = 0
		inputRead = 1
	)
	b := cat(
		[]byte{0x10}, u32(inputLen), []byte{0x21, 0}, // n = input_len()
		[]byte{0x41, 0}, []byte{0x10}, u32(inputRead), // input_read(0)
		[]byte{0x41, 0, 0x2d, 0, 0, 0x41}, wasmasm.S32('a'), []byte{0x46, 0x41, 12, 0x74, 0x21, 1}, // stride = (mem[0] == 'a') << 12
		[]byte{0x02, 0x40, 0x03, 0x40},                                                            // block loop
		[]byte{0x20, 0, 0x45, 0x0d, 1},                                                            // if n == 0 break
		[]byte{0x20, 0, 0x41, 1, 0x6b, 0x21, 0},                                                   // n--
		[]byte{0x20, 0, 0x20, 1, 0x6c, 0x41, 1, 0x3a, 0, 0},                                       // mem[n*stride] = 1
		[]byte{0x0c, 0, 0x0b, 0x0b},                                                               // continue; end end
		[]byte{0x41, 0, 0x2d, 0, 1, 0x41}, wasmasm.S32('t'), []byte{0x46, 0x04, 0x40, 0x00, 0x0b}, // trap when mem[1] == 't'
		[]byte{0x41, 0}, // return 0
	)
	fb := cat(u32(1), u32(2), []byte{tI32}, b, []byte{0x0b})
	imp := func(n string, typ uint32) []byte { return cat(name("sos"), name(n), []byte{0}, u32(typ)) }
	return asmModule{
		types:   [][]byte{functype(nil, []byte{tI32}), functype([]byte{tI32}, nil)},
		imports: [][]byte{imp("input_len", 0), imp("input_read", 1)},
		bodies:  [][]byte{cat(u32(uint32(len(fb))), fb)},
		exports: [][]byte{exportFunc("execute", 2)},
		memory:  vec([]byte{0, pages}), // 4 pages: 64 blocks of 4 KiB
	}.bytes()
}

// TestMemoryWritesCharged: every distinct 4 KiB block a call writes costs
// GasPageWrite, whatever calls ran before on the pooled instance, trapped
// calls included; a trap costs GasTrap.
func TestMemoryWritesCharged(t *testing.T) {
	ctx := context.Background()
	v := newVM(t, Config{})
	code := [32]byte{'p', 'w'}
	p, _, err := v.Prepare(ctx, code, pageWriter(), MaxUploadGas)
	if err != nil {
		t.Fatal(err)
	}
	gas := func(msg string) uint64 {
		t.Helper()
		res, err := v.Call(ctx, code, p, "execute", []byte(msg), testEnv(), newFakeHost(), testGas)
		if err != nil && !(msg[1] == 't' && errors.Is(err, ErrTrap)) {
			t.Fatalf("%q: %v", msg, err)
		}
		return res.GasUsed
	}
	same := gas("b" + strings.Repeat("x", 39)) // 40 stores to block 0
	spread := gas("a" + strings.Repeat("x", 39))
	if spread-same != 39*GasPageWrite {
		t.Fatalf("40 blocks cost %d more than 1 block, want %d", spread-same, 39*GasPageWrite)
	}
	// History: after a call that writes every block, and after a trapped
	// one, the same call costs the same.
	gas("a" + strings.Repeat("x", 63))
	if g := gas("b" + strings.Repeat("x", 39)); g != same {
		t.Fatalf("after writing every block: %d, before %d", g, same)
	}
	trapped := gas("bt" + strings.Repeat("x", 38))
	if g := gas("b" + strings.Repeat("x", 39)); g != same {
		t.Fatalf("after a trap: %d, before %d", g, same)
	}
	// The trap costs GasTrap (and its unreachable, a gas at most).
	if trapped < same+GasTrap || trapped > same+GasTrap+2 {
		t.Fatalf("the trapped call cost %d, the same call returning %d; GasTrap is %d", trapped, same, GasTrap)
	}
	// Not enough gas for the writes: out of gas, everything charged.
	res, err := v.Call(ctx, code, p, "execute", []byte("a"+strings.Repeat("x", 63)), testEnv(), newFakeHost(), spread)
	if !errors.Is(err, ErrOutOfGas) || res.GasUsed != spread {
		t.Fatalf("64 blocks on %d gas: %v, used %d", spread, err, res.GasUsed)
	}
}

// TestCallPaysForMemory: a call pays GasCallPerPage per page of the memory
// it starts with, before it runs (on top of the load, which a cold call
// pays first); a limit that cannot pay it is out of gas with nothing run.
func TestCallPaysForMemory(t *testing.T) {
	ctx := context.Background()
	v := newVM(t, Config{})
	load := func(p []byte) uint64 { // a cold call pays the load first (its pages too)
		t.Helper()
		g, err := LoadGas(p)
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	gas := func(pages byte, limit uint64) (uint64, error) {
		t.Helper()
		code := [32]byte{'p', 'm', pages}
		p, _, err := v.Prepare(ctx, code, pageWriterPages(pages), MaxUploadGas)
		if err != nil {
			t.Fatal(err)
		}
		res, err := v.Call(ctx, code, p, "execute", []byte("bx"), testEnv(), newFakeHost(), limit+load(p))
		return res.GasUsed - res.LoadGas, err
	}
	small, err := gas(4, testGas)
	if err != nil {
		t.Fatal(err)
	}
	big, err := gas(100, testGas)
	if err != nil {
		t.Fatal(err)
	}
	if big-small != 96*GasCallPerPage {
		t.Fatalf("100 pages cost %d more than 4, want %d", big-small, 96*GasCallPerPage)
	}
	if small <= 4*GasCallPerPage {
		t.Fatalf("the call cost %d, no more than its memory (%d)", small, 4*GasCallPerPage)
	}
	used, err := gas(100, 100*GasCallPerPage-1)
	if !errors.Is(err, ErrOutOfGas) || used != 100*GasCallPerPage-1 {
		t.Fatalf("100 pages on %d gas: %v, used %d", 100*GasCallPerPage-1, err, used)
	}
}
