package meter_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/sos-kernel/sos/vm/internal/wasmbin"
	"github.com/sos-kernel/sos/vm/meter"
)

// recursive returns f(n) = n ? f(n-1)+1 : 0, recursing through call or, with
// indirect, through call_indirect on a one-entry table: f(n) nests n calls
// below the entry.
func recursive(indirect bool) fnModule {
	call := []byte{0x10, 0} // call 0
	m := fnModule{params: []byte{tI32}, results: []byte{tI32}}
	if indirect {
		call = []byte{0x41, 0, 0x11, 0, 0} // i32.const 0; call_indirect type 0 table 0
		m.table = vec([]byte{0x70, 0x00, 1})
		m.elem = vec([]byte{0x00, 0x41, 0, 0x0b, 1, 0})
	}
	m.body = cat(
		[]byte{0x20, 0, 0x45, 0x04, tI32, 0x41, 0, 0x05}, // if n == 0 { 0 } else {
		[]byte{0x20, 0, 0x41, 1, 0x6b}, call,             // f(n-1)
		[]byte{0x41, 1, 0x6a, 0x0b, 0x0b}, // + 1 }
	)
	return m
}

func TestCallDepth(t *testing.T) {
	ctx := context.Background()
	const limit = 100
	opts := meter.DefaultOptions()
	opts.MaxCallDepth = limit
	for _, indirect := range []bool{false, true} {
		out, err := meter.Instrument(recursive(indirect).bytes(), opts)
		if err != nil {
			t.Fatal(err)
		}
		r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
		defer r.Close(ctx)
		mod, err := r.Instantiate(ctx, out)
		if err != nil {
			t.Fatal(err)
		}
		gas := mod.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal)
		depth := mod.ExportedGlobal(meter.DepthGlobalExport).(api.MutableGlobal)
		f := mod.ExportedFunction("f")
		for _, tc := range []struct {
			n    uint64
			trap bool
		}{{0, false}, {1, false}, {limit, false}, {limit + 1, true}, {1 << 20, true}, {limit, false}} {
			gas.Set(1 << 40)
			depth.Set(0) // what the host does before every call
			res, err := f.Call(ctx, tc.n)
			if tc.trap {
				if err == nil || !strings.Contains(err.Error(), "unreachable") {
					t.Fatalf("indirect=%v f(%d): want an unreachable trap, got %v", indirect, tc.n, err)
				}
				// Distinguishable from out of gas: depth above the
				// limit, gas not negative.
				if d := uint32(depth.Get()); d != limit+1 {
					t.Errorf("indirect=%v f(%d): depth after trap = %d, want %d", indirect, tc.n, d, limit+1)
				}
				if g := int64(gas.Get()); g < 0 {
					t.Errorf("indirect=%v f(%d): gas %d after a depth trap", indirect, tc.n, g)
				}
				continue
			}
			if err != nil {
				t.Fatalf("indirect=%v f(%d): %v", indirect, tc.n, err)
			}
			if res[0] != tc.n {
				t.Errorf("indirect=%v f(%d) = %d", indirect, tc.n, res[0])
			}
			if d := depth.Get(); d != 0 {
				t.Errorf("indirect=%v f(%d): depth %d after return, want 0", indirect, tc.n, d)
			}
		}
	}
}

// TestCallDepthOff: MaxCallDepth 0 adds the global but counts nothing.
func TestCallDepthOff(t *testing.T) {
	opts := meter.DefaultOptions()
	opts.MaxCallDepth = 0
	res, _, err := run(t, recursive(false).bytes(), opts, 1<<40, 5000)
	if err != nil || res[0] != 5000 {
		t.Fatalf("f(5000) = %v, %v", res, err)
	}
}

func TestCallDepthReservedAndBounds(t *testing.T) {
	m := fnModule{body: []byte{0x0b}, extraExports: [][]byte{cat(name(meter.DepthGlobalExport), []byte{0}, u32(0))}}
	if _, err := meter.Instrument(m.bytes(), meter.DefaultOptions()); !errors.Is(err, meter.ErrUnsupportedFeature) {
		t.Errorf("export named %s: %v", meter.DepthGlobalExport, err)
	}
	opts := meter.DefaultOptions()
	opts.MaxCallDepth = meter.MaxCallDepthLimit + 1
	if _, err := meter.Instrument(fnModule{body: []byte{0x0b}}.bytes(), opts); err == nil {
		t.Error("MaxCallDepth above MaxCallDepthLimit accepted")
	}
}

// TestGoCallDepthHeadroom measures how deep ordinary Go code nests Wasm
// calls, deterministically: the host may start the depth counter at any
// value s, and the call traps iff s + (the call's deepest nesting) exceeds
// MaxCallDepth, so a binary search over s finds the nesting exactly. Go keeps
// goroutine stacks in linear memory and unwinds the Wasm stack when it grows
// a goroutine stack or switches goroutines, so the depth stays far below the
// limit.
func TestGoCallDepthHeadroom(t *testing.T) {
	if testing.Short() {
		t.Skip("instantiates the Go module dozens of times")
	}
	wasm := loadGoWasm(t)
	ctx := context.Background()
	out, err := meter.Instrument(wasm, meter.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	r := newRuntime(t, ctx, nil)
	defer r.Close(ctx)
	cm, err := r.CompileModule(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	const limit = meter.DefaultMaxCallDepth
	// fits reports whether fn(arg) (or _initialize when fn is "") runs on a
	// fresh instance with the depth counter started at start.
	fits := func(fn string, arg uint64, start uint32) bool {
		mod, err := r.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			t.Fatal(err)
		}
		defer mod.Close(ctx)
		setGas(mod, meter.MaxGas)
		depth := mod.ExportedGlobal(meter.DepthGlobalExport).(api.MutableGlobal)
		if fn != "" {
			if _, err := mod.ExportedFunction("_initialize").Call(ctx); err != nil {
				t.Fatalf("_initialize: %v", err)
			}
		} else {
			fn = "_initialize"
		}
		depth.Set(uint64(start))
		var args []uint64
		if fn != "_initialize" {
			args = []uint64{arg}
		}
		_, err = mod.ExportedFunction(fn).Call(ctx, args...)
		if err != nil && uint32(depth.Get()) <= limit {
			t.Fatalf("%s(%d): trap that is not a depth trap: %v", fn, arg, err)
		}
		return err == nil
	}
	for _, tc := range []struct {
		fn  string
		arg uint64
		max uint32 // the depth this workload must stay within
	}{
		{"", 0, limit / 4},
		{"sha", 3, limit / 4},
		{"jsonparse", 20, limit / 4},
		{"floats", 1000, limit / 4},
		{"gc", 1000, limit / 4},
		{"deep", 100, limit / 2},
		// Deliberate Go recursion nests about half as deep in Wasm as
		// in Go (the stack grows, and unwinds, by doubling); a few
		// thousand Go frames fit, ≈10,000 do not.
		{"deep", 1000, limit / 2},
		{"deep", 3000, limit},
	} {
		lo, hi := uint32(0), uint32(limit) // fits(lo), !fits(hi+1)
		if !fits(tc.fn, tc.arg, 0) {
			t.Errorf("%s(%d) exceeds the call depth limit %d", tc.fn, tc.arg, limit)
			continue
		}
		for lo < hi {
			mid := lo + (hi-lo+1)/2
			if fits(tc.fn, tc.arg, mid) {
				lo = mid
			} else {
				hi = mid - 1
			}
		}
		used := limit - lo
		name := tc.fn
		if name == "" {
			name = "_initialize"
		}
		t.Logf("%s(%d): deepest Wasm call nesting %d of %d", name, tc.arg, used, limit)
		if used > tc.max {
			t.Errorf("%s(%d) nests %d Wasm calls, want at most %d", name, tc.arg, used, tc.max)
		}
	}
}

// TestCallDepthBigFrames: a function keeping 20,000 values live across its
// recursive call (≈160 KB frames) overflows wazero's native stack after
// ≈540 calls when calls are merely counted; weighted by frame size, the
// depth limit stops it first, deterministically.
func TestCallDepthBigFrames(t *testing.T) {
	const n = 20_000
	var b []byte
	for i := range n { // n distinct values: (i64)param × constant
		b = append(b, 0x20, 0, 0xad)
		b = wasmbin.AppendS64(append(b, 0x42), int64(i)*7919+1)
		b = append(b, 0x7e)
	}
	b = append(b, 0x20, 0, 0x10, 0, 0x1a) // f(n); drop
	for range n - 1 {
		b = append(b, 0x7c) // i64.add
	}
	b = append(b, 0xa7, 0x0b) // i32.wrap_i64
	m := fnModule{params: []byte{tI32}, results: []byte{tI32}, body: b}
	ctx := context.Background()
	out, err := meter.Instrument(m.bytes(), meter.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer r.Close(ctx)
	mod, err := r.Instantiate(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	mod.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal).Set(1 << 40)
	_, err = mod.ExportedFunction("f").Call(ctx, 1)
	depth := uint32(mod.ExportedGlobal(meter.DepthGlobalExport).Get())
	if err == nil || !strings.Contains(err.Error(), "unreachable") || depth <= meter.DefaultMaxCallDepth {
		t.Fatalf("want a call depth trap, got %v with depth %d", firstLine(err), depth)
	}
}

func firstLine(err error) string {
	if err == nil {
		return "<nil>"
	}
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}

// TestCallDepthBrTableLocals: the two locals the metering adds per
// br_table (CostTable.BrTableMiss) are frame too and weigh in the depth
// counter, which bounds the native stack. A recursive function of 300
// br_tables gets 600 of them: weight 1 + 600/FrameSlots = 3, so with
// MaxCallDepth 10 the fourth call traps with the counter at 12 (at 11,
// after eleven calls, if they did not count).
func TestCallDepthBrTableLocals(t *testing.T) {
	const n = 300
	var b []byte
	for range n {
		b = append(b, 0x02, 0x40, 0x41, 0, 0x0e, 1, 0, 0, 0x0b) // block; i32.const 0; br_table 0 0; end
	}
	b = append(b, 0x20, 0, 0x10, 0, 0x0b) // f(n)
	m := fnModule{params: []byte{tI32}, results: []byte{tI32}, body: b}
	ctx := context.Background()
	opts := meter.DefaultOptions()
	opts.MaxCallDepth = 10
	if opts.Costs.BrTableMiss == 0 {
		t.Fatal("the default table has no br_table charge")
	}
	out, err := meter.Instrument(m.bytes(), opts)
	if err != nil {
		t.Fatal(err)
	}
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	defer r.Close(ctx)
	mod, err := r.Instantiate(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	mod.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal).Set(1 << 40)
	_, err = mod.ExportedFunction("f").Call(ctx, 1)
	depth := uint32(mod.ExportedGlobal(meter.DepthGlobalExport).Get())
	if err == nil || !strings.Contains(err.Error(), "unreachable") || depth != 12 {
		t.Fatalf("want a call depth trap at depth 12, got %v with depth %d", firstLine(err), depth)
	}
}
