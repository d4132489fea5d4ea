package meter_test

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/sos-kernel/sos/vm/meter"
)

// run instruments m with opts, calls "f" with gas and args, and returns the
// results, the gas used and the call error.
func run(t *testing.T, m []byte, opts meter.Options, gas int64, args ...uint64) ([]uint64, int64, error) {
	t.Helper()
	ctx := context.Background()
	out, err := meter.Instrument(m, opts)
	if err != nil {
		t.Fatalf("Instrument: %v", err)
	}
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
	t.Cleanup(func() { r.Close(ctx) })
	mod, err := r.Instantiate(ctx, out)
	if err != nil {
		t.Fatalf("instantiate metered module: %v", err)
	}
	g := mod.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal)
	g.Set(uint64(gas))
	res, err := mod.ExportedFunction("f").Call(ctx, args...)
	return res, gas - int64(g.Get()), err
}

// sumLoop is f(n) = n + (n-1) + ... + 1 as block/loop/br_if.
var sumLoop = fnModule{
	params: []byte{tI32}, results: []byte{tI32}, locals: [][2]byte{{1, tI32}},
	body: []byte{
		0x02, 0x40, // block
		0x03, 0x40, // loop
		0x20, 0, 0x45, 0x0d, 1, // local.get 0; i32.eqz; br_if 1
		0x20, 1, 0x20, 0, 0x6a, 0x21, 1, // s += n
		0x20, 0, 0x41, 1, 0x6b, 0x21, 0, // n--
		0x0c, 0, // br 0
		0x0b, 0x0b, // end end
		0x20, 1, // local.get 1
		0x0b,
	},
}

// ceilDiv is a charge in gas for a cost in units.
func ceilDiv(units, scale int64) int64 { return (units + scale - 1) / scale }

func TestExactGas(t *testing.T) {
	for _, scale := range []uint32{1, 8} {
		// Distinct costs so that a mis-classified opcode changes the total.
		costs := meter.DefaultCosts()
		costs.Scale = scale
		costs.Base, costs.Local, costs.Branch, costs.Control, costs.Loop = 3, 5, 7, 11, 13
		opts := meter.Options{Costs: costs}
		for _, n := range []int64{0, 1, 10, 1000} {
			res, used, err := run(t, sumLoop.bytes(), opts, 1<<40, uint64(n))
			if err != nil {
				t.Fatal(err)
			}
			if int64(int32(res[0])) != n*(n+1)/2 {
				t.Fatalf("sum(%d) = %d", n, res[0])
			}
			B, L, Br, C, Lp, S := int64(costs.Base), int64(costs.Local), int64(costs.Branch), int64(costs.Control), int64(costs.Loop), int64(scale)
			// Segments: [block loop] (entering a block does not end a
			// segment), then (n+1)×[get eqz br_if 8×ALU br] (7 local and
			// constant instructions, 3 ALU, 2 branches, and the Loop charge
			// of an iteration) (br_if does not end a segment, so the exit
			// iteration pays for the whole body),
			// then [local.get end]. The block's own end never executes:
			// br_if 1 jumps past it. The function calls nothing, so the
			// units add up exactly and only the total is rounded up to
			// whole gas.
			want := ceilDiv(2*C+(n+1)*(7*L+3*B+2*Br+Lp)+L+C, S)
			if used != want {
				t.Errorf("scale %d, sum(%d): used %d gas, cost table predicts %d", scale, n, used, want)
			}
		}
	}
}

func TestInfiniteLoopRunsOutOfGas(t *testing.T) {
	loop := fnModule{body: []byte{0x03, 0x40, 0x0c, 0x00, 0x0b, 0x0b}} // (loop br 0)
	_, used, err := run(t, loop.bytes(), meter.DefaultOptions(), 1_000_000)
	if err == nil {
		t.Fatal("infinite loop returned")
	}
	if !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("want unreachable trap, got %v", err)
	}
	if used <= 1_000_000 {
		t.Fatalf("gas left is not negative: used %d of 1000000", used)
	}
}

func TestDynamicCosts(t *testing.T) {
	odd := meter.DefaultCosts()
	odd.BulkPerByte, odd.MemoryGrowPerPage = 3, 16001 // not multiples of Scale
	for _, c := range []meter.CostTable{meter.DefaultCosts(), odd} {
		L, Ctl, S := int64(c.Local), int64(c.Control), int64(c.Scale)
		grow := fnModule{
			params: []byte{tI32}, results: []byte{tI32}, memory: vec([]byte{0x00, 1}),
			body: []byte{0x20, 0, 0x40, 0x00, 0x0b}, // memory.grow (local.get 0)
		}
		for _, pages := range []int64{0, 1, 3} {
			_, used, err := run(t, grow.bytes(), meter.Options{Costs: c}, 1<<40, uint64(pages))
			if err != nil {
				t.Fatal(err)
			}
			if want := ceilDiv(L+int64(c.MemoryGrow)+Ctl+pages*int64(c.MemoryGrowPerPage), S); used != want {
				t.Errorf("memory.grow %d: used %d, want %d", pages, used, want)
			}
		}
		// memory.fill(0, 0, n)
		fill := fnModule{
			params: []byte{tI32}, memory: vec([]byte{0x00, 1}),
			body: []byte{0x41, 0, 0x41, 0, 0x20, 0, 0xfc, 11, 0x00, 0x0b},
		}
		for _, n := range []int64{0, 1, 100, 65536} {
			_, used, err := run(t, fill.bytes(), meter.Options{Costs: c}, 1<<40, uint64(n))
			if err != nil {
				t.Fatal(err)
			}
			if want := ceilDiv(3*L+int64(c.Bulk)+Ctl+n*int64(c.BulkPerByte), S); used != want {
				t.Errorf("memory.fill %d: used %d, want %d", n, used, want)
			}
		}
		// Not enough gas for the bytes: trap before filling.
		if _, _, err := run(t, fill.bytes(), meter.Options{Costs: c}, 1000, 65536); err == nil {
			t.Error("memory.fill of 64 KiB with 1000 gas did not trap")
		}
	}
}

func TestCanonicalizeNaN(t *testing.T) {
	div32 := fnModule{params: []byte{tF32, tF32}, results: []byte{tF32}, body: []byte{0x20, 0, 0x20, 1, 0x95, 0x0b}}
	neg32 := fnModule{params: []byte{tF32}, results: []byte{tF32}, body: []byte{0x20, 0, 0x8c, 0x0b}}
	add64 := fnModule{params: []byte{tF64, tF64}, results: []byte{tF64}, body: []byte{0x20, 0, 0x20, 1, 0xa0, 0x0b}}
	opts := meter.DefaultOptions()
	nan32 := uint64(0xffc00123) // negative, with payload
	nan64 := uint64(0xfff8000000000abc)
	for _, tc := range []struct {
		name string
		m    fnModule
		args []uint64
		want uint64
	}{
		{"f32.div 0/0", div32, []uint64{0, 0}, 0x7fc00000},
		{"f32.div payload", div32, []uint64{nan32, uint64(math.Float32bits(1))}, 0x7fc00000},
		{"f32.div number", div32, []uint64{uint64(math.Float32bits(1)), uint64(math.Float32bits(4))}, uint64(math.Float32bits(0.25))},
		{"f32.neg keeps payload", neg32, []uint64{nan32}, 0x7fc00123},
		{"f64.add payload", add64, []uint64{nan64, 0}, 0x7ff8000000000000},
		{"f64.add inf-inf", add64, []uint64{math.Float64bits(math.Inf(1)), math.Float64bits(math.Inf(-1))}, 0x7ff8000000000000},
		{"f64.add number", add64, []uint64{math.Float64bits(1.5), math.Float64bits(2)}, math.Float64bits(3.5)},
	} {
		res, _, err := run(t, tc.m.bytes(), opts, 1<<40, tc.args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := res[0]
		if len(tc.m.results) == 1 && tc.m.results[0] == tF32 {
			got = uint64(uint32(got))
		}
		if got != tc.want {
			t.Errorf("%s: got %#x want %#x", tc.name, got, tc.want)
		}
	}
}

func TestRejects(t *testing.T) {
	lim := meter.DefaultLimits()
	opts := meter.DefaultOptions()
	simd := fnModule{body: append(append([]byte{0xfd, 0x0c}, make([]byte, 16)...), 0x1a, 0x0b)} // v128.const; drop
	atomic := fnModule{memory: vec([]byte{0x01, 1, 1}), body: []byte{0x41, 0, 0xfe, 0x10, 2, 0, 0x1a, 0x0b}}
	tail := fnModule{body: []byte{0x12, 0, 0x0b}}
	for _, tc := range []struct {
		name string
		wasm []byte
		want error
	}{
		{"garbage", []byte("not wasm at all"), meter.ErrMalformed},
		{"truncated", fnModule{body: []byte{0x41}}.bytes(), meter.ErrMalformed},
		{"simd", simd.bytes(), meter.ErrUnsupportedFeature},
		{"atomics", atomic.bytes(), meter.ErrUnsupportedFeature},
		{"shared memory", fnModule{memory: vec([]byte{0x03, 1, 1}), body: []byte{0x0b}}.bytes(), meter.ErrUnsupportedFeature},
		{"memory64", fnModule{memory: vec([]byte{0x04, 1}), body: []byte{0x0b}}.bytes(), meter.ErrUnsupportedFeature},
		{"tail call", tail.bytes(), meter.ErrUnsupportedFeature},
		{"reserved export", fnModule{body: []byte{0x0b}, extraExports: [][]byte{cat(name("sos_gas"), []byte{0}, u32(0))}}.bytes(), meter.ErrUnsupportedFeature},
		{"memory min", fnModule{memory: vec(cat([]byte{0x00}, u32(lim.MaxMemoryPages+1))), body: []byte{0x0b}}.bytes(), meter.ErrLimit},
		{"memory max", fnModule{memory: vec(cat([]byte{0x01, 1}, u32(65536))), body: []byte{0x0b}}.bytes(), meter.ErrLimit},
		{"unknown local", fnModule{body: []byte{0x20, 0, 0x1a, 0x0b}}.bytes(), meter.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := meter.Instrument(tc.wasm, opts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}
	big := make([]byte, lim.MaxCodeBytes+1)
	copy(big, fnModule{body: []byte{0x0b}}.bytes())
	if _, err := meter.Instrument(big, opts); !errors.Is(err, meter.ErrLimit) {
		t.Errorf("oversized module: %v", err)
	}
}

func TestDeterministic(t *testing.T) {
	for _, wasm := range [][]byte{sumLoop.bytes(), loadGoWasmOrNil(t)} {
		if wasm == nil {
			continue
		}
		a, err := meter.Instrument(wasm, meter.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		b, err := meter.Instrument(bytes.Clone(wasm), meter.DefaultOptions())
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatal("two instrumentations of the same bytes differ")
		}
	}
}

func loadGoWasmOrNil(t *testing.T) []byte {
	b, err := goWasm()
	if err != nil {
		t.Logf("no Go module: %v", err)
		return nil
	}
	return b
}

// TestSpillSurcharge: every instruction of a function too large for the
// registers pays Spill in proportion to the excess slots; smaller
// functions pay nothing extra.
func TestSpillSurcharge(t *testing.T) {
	costs := meter.DefaultCosts()
	costs.Scale, costs.Spill = 1, 1000
	body := []byte{0x20, 0, 0x41, 1, 0x6a, 0x41, 2, 0x6a, 0x0b} // 5 instructions, end
	gas := func(locals byte) int64 {
		m := fnModule{params: []byte{tI32}, results: []byte{tI32}, locals: [][2]byte{{locals, tI64}}, body: body}
		_, used, err := run(t, m.bytes(), meter.Options{Costs: costs}, 1<<30, 5)
		if err != nil {
			t.Fatal(err)
		}
		return used
	}
	small, large := gas(10), gas(100)
	// 1 parameter + 100 locals + an operand stack of 2: 103 slots.
	// 10 locals: 13 slots, below SpillFreeSlots.
	if want := int64(5 * (1000 * (103 - meter.SpillFreeSlots) / 103)); large-small != want {
		t.Fatalf("surcharge %d, want %d", large-small, want)
	}
	costs.Spill = 0
	if s, l := gas(10), gas(100); s != l {
		t.Fatalf("without Spill: %d and %d", s, l)
	}
}
