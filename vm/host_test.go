package vm

import (
	"context"
	"errors"
	"testing"

	"github.com/sos-kernel/sos/vm/wasmasm"
)

// skipHost's iterators skip `skips` entries (as deleted ones would be)
// before each entry they return, reporting them through OnSkip.
type skipHost struct {
	*fakeHost
	skips   int
	charged int // entries the VM was told about
}

type skipIter struct {
	Iterator
	h      *skipHost
	charge func(int)
}

func (h *skipHost) StorageIterate(start, end []byte, reverse bool) (Iterator, error) {
	it, err := h.fakeHost.StorageIterate(start, end, reverse)
	return &skipIter{Iterator: it, h: h}, err
}

func (it *skipIter) OnSkip(f func(int)) { it.charge = f }

func (it *skipIter) Next() ([]byte, []byte, bool, error) {
	for left := it.h.skips; left > 0; left -= 64 {
		n := min(left, 64)
		it.h.charged += n
		it.charge(n) // panics once gas runs out
	}
	return it.Iterator.Next()
}

// TestIteratorSkipsArePaid: entries a SkippingIterator skips cost
// GasIterSkip each, and an iterator that would skip without end stops
// when gas runs out instead of skipping unpaid.
func TestIteratorSkipsArePaid(t *testing.T) {
	p := loadPrepared(t)
	v := newVM(t, Config{})
	ctx := context.Background()
	store := map[string][]byte{"a": []byte("1"), "b": []byte("2"), "c": []byte("3")}
	run := func(skips int, gas uint64) (*skipHost, Result, error) {
		h := &skipHost{fakeHost: newFakeHost(), skips: skips}
		h.store = store
		res, err := v.Call(ctx, testCode, p, "execute", []byte("iter a - 0"), testEnv(), h, gas)
		return h, res, err
	}
	load := callGas(t, p, 0)
	_, base, err := run(0, load+testGas)
	if err != nil || string(base.Data) != "a=1,b=2,c=3," {
		t.Fatalf("no skips: %v %q", err, base.Data)
	}
	h, res, err := run(100, load+testGas)
	if err != nil || string(res.Data) != "a=1,b=2,c=3," {
		t.Fatalf("with skips: %v %q", err, res.Data)
	}
	// Four Next calls (three entries and the end), 100 skips before each.
	if want := base.GasUsed + 4*100*GasIterSkip; res.GasUsed != want || h.charged != 400 {
		t.Fatalf("gas %d (charged %d skips), want %d", res.GasUsed, h.charged, want)
	}
	h, res, err = run(1_000_000_000, load+10_000_000)
	if !errors.Is(err, ErrOutOfGas) {
		t.Fatalf("endless skipping: %v", err)
	}
	if h.charged > 10_000_000/GasIterSkip+64 {
		t.Fatalf("skipped %d entries on 10 Mgas", h.charged)
	}
	if res.GasUsed != load+10_000_000 {
		t.Fatalf("gas used %d", res.GasUsed)
	}
}

// wasiCaller is a module whose execute calls a WASI function of four i32
// arguments (fd_write or poll_oneoff) with n = the message's length as
// the element count: fd_write(1, 0, n, 1024), poll_oneoff(0, 4096, n, 8192).
func wasiCaller(fn string) []byte {
	imp := func(mod, n string, typ uint32) []byte { return cat(name(mod), name(n), []byte{0}, u32(typ)) }
	var args []byte
	if fn == "fd_write" {
		args = cat([]byte{0x41, 1, 0x41, 0}, []byte{0x10, 0}, []byte{0x41}, wasmasm.S32(1024))
	} else {
		args = cat([]byte{0x41, 0, 0x41}, wasmasm.S32(4096), []byte{0x10, 0, 0x41}, wasmasm.S32(8192))
	}
	b := cat(args, []byte{0x10, 1, 0x1a, 0x41, 0, 0x0b}) // call fn; drop; i32.const 0
	fb := cat(u32(0), b)
	return asmModule{
		types:   [][]byte{functype(nil, []byte{tI32}), functype([]byte{tI32, tI32, tI32, tI32}, []byte{tI32})},
		imports: [][]byte{imp("sos", "input_len", 0), imp("wasi_snapshot_preview1", fn, 1)},
		bodies:  [][]byte{cat(u32(uint32(len(fb))), fb)},
		exports: [][]byte{exportFunc("execute", 2)},
	}.bytes()
}

// TestWASIElementsArePaid: every iovec of fd_write and every subscription
// of poll_oneoff costs its own gas, not only the bytes they carry.
func TestWASIElementsArePaid(t *testing.T) {
	ctx := context.Background()
	v := newVM(t, Config{})
	for _, c := range []struct {
		fn      string
		lo, hi  int
		perElem uint64
	}{
		{"fd_write", 0, 1024, GasIOVec},
		{"poll_oneoff", 1, 64, GasPollSubscription},
	} {
		p, _, err := v.Prepare(ctx, [32]byte{'w', c.fn[0]}, wasiCaller(c.fn), MaxUploadGas)
		if err != nil {
			t.Fatal(err)
		}
		code := [32]byte{'w', c.fn[0]}
		gas := func(n int) uint64 {
			res, err := v.Call(ctx, code, p, "execute", make([]byte, n), testEnv(), newFakeHost(), testGas)
			if err != nil {
				t.Fatalf("%s(%d): %v", c.fn, n, err)
			}
			return res.GasUsed
		}
		if d, want := gas(c.hi)-gas(c.lo), uint64(c.hi-c.lo)*c.perElem; d != want {
			t.Errorf("%s: %d elements cost %d more than %d, want %d", c.fn, c.hi, d, c.lo, want)
		}
	}
}
