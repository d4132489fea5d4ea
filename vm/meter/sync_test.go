package meter_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/sos-kernel/sos/vm/meter"
)

// syncCosts is a table with distinct costs and Scale 1, so that every
// charge is exact and a misplaced one changes the total.
func syncCosts() meter.CostTable {
	c := meter.DefaultCosts()
	c.Scale = 1
	c.Base, c.Local, c.Branch, c.Control, c.Loop, c.Call, c.BrTable, c.BrTableMiss = 3, 5, 7, 11, 13, 17, 19, 23
	return c
}

// TestHostSeesGas: a function keeps its counter in a local, so it must
// write the counter back before every call (the host reads and lowers the
// global) and read it again after. f(n) calls the host n times in a loop;
// the host sees exactly the gas the table predicts at each call and
// charges 1000 gas, which f must not lose.
func TestHostSeesGas(t *testing.T) {
	for _, scale := range []uint32{1, 16} {
		costs := syncCosts()
		costs.Scale = scale
		C, L, B, Br, Lp, Call, S := int64(costs.Control), int64(costs.Local), int64(costs.Base),
			int64(costs.Branch), int64(costs.Loop), int64(costs.Call), int64(scale)
		ctx := context.Background()
		r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler())
		var seen []int64
		_, err := r.NewHostModuleBuilder("env").NewFunctionBuilder().
			WithFunc(func(ctx context.Context, m api.Module) {
				g := m.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal)
				seen = append(seen, int64(g.Get()))
				g.Set(g.Get() - 1000)
			}).Export("probe").Instantiate(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wasm := cat([]byte{0, 'a', 's', 'm', 1, 0, 0, 0},
			section(1, vec(functype(nil, nil), functype([]byte{tI32}, nil))),
			section(2, vec(cat(name("env"), name("probe"), []byte{0x00}, u32(0)))),
			section(3, vec(u32(1))),
			section(7, vec(cat(name("f"), []byte{0}, u32(1)))),
			section(10, vec(code(nil,
				0x03, 0x40, // loop
				0x10, 0, // call probe
				0x20, 0, 0x41, 1, 0x6b, 0x22, 0, // n = n-1 (local.tee)
				0x0d, 0, // br_if 0
				0x0b, 0x0b))))
		out, err := meter.Instrument(wasm, meter.Options{Costs: costs, MaxCallDepth: 100})
		if err != nil {
			t.Fatal(err)
		}
		mod, err := r.Instantiate(ctx, out)
		if err != nil {
			t.Fatal(err)
		}
		g := mod.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal)
		const limit, n = 1 << 30, 5
		g.Set(limit)
		if _, err := mod.ExportedFunction("f").Call(ctx, n); err != nil {
			t.Fatal(err)
		}
		// Segments: [loop], then per iteration [Loop call get const sub
		// tee br_if end], then the function's [end].
		iter := Lp + Call + 3*L + B + Br + C
		units := C // charged so far, not yet rounded
		host := int64(0)
		for k, got := range seen {
			units += iter
			// Every write back rounds the units spent since the last
			// read up to whole gas; the read after the call starts from
			// whole gas again.
			want := limit - host - ceilDiv(units, S)
			if got != want {
				t.Errorf("scale %d: call %d: host sees %d gas, want %d", scale, k, got, want)
			}
			host += 1000 + ceilDiv(units, S)
			units = 0
		}
		if len(seen) != n {
			t.Fatalf("scale %d: host called %d times", scale, len(seen))
		}
		if used, want := limit-int64(g.Get()), host+ceilDiv(units+C, S); used != want {
			t.Errorf("scale %d: used %d gas, want %d", scale, used, want)
		}
		r.Close(ctx)
	}
}

// TestExitsWriteGas: every way out of a function writes the counter back.
// The functions call nothing, so nothing else writes it: a missing write
// would report 0 gas.
func TestExitsWriteGas(t *testing.T) {
	costs := syncCosts()
	C, L, B, Br, BT, M := int64(costs.Control), int64(costs.Local), int64(costs.Base), int64(costs.Branch), int64(costs.BrTable), int64(costs.BrTableMiss)
	for _, tc := range []struct {
		name string
		body []byte
		arg  uint64
		want int64
	}{
		{"end", []byte{0x20, 0, 0x0b}, 0, L + C},
		{"return", []byte{0x20, 0, 0x0f, 0x0b}, 0, L + Br},
		{"br to the function", []byte{0x20, 0, 0x0c, 0, 0x0b}, 0, L + Br},
		// local.get; local.get; br_if 0 (taken when arg ≠ 0); i32.const 1; i32.add; end:
		// br_if does not end the segment, so both ways pay for all of it.
		{"br_if to the function, taken", []byte{0x20, 0, 0x20, 0, 0x0d, 0, 0x41, 1, 0x6a, 0x0b}, 1, 3*L + Br + B + C},
		{"br_if to the function, not taken", []byte{0x20, 0, 0x20, 0, 0x0d, 0, 0x41, 1, 0x6a, 0x0b}, 0, 3*L + Br + B + C},
		// block (result i32); local.get 0; local.get 0; br_table [0] 1
		// (default: the function); end; end. Index 5 is not the site's
		// initial 0: a misprediction.
		{"br_table to the function", []byte{0x02, tI32, 0x20, 0, 0x20, 0, 0x0e, 1, 0, 1, 0x0b, 0x0b}, 5, C + 2*L + BT + M},
		{"br_table to the block", []byte{0x02, tI32, 0x20, 0, 0x20, 0, 0x0e, 1, 0, 1, 0x0b, 0x0b}, 0, C + 2*L + BT + C},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := fnModule{params: []byte{tI32}, results: []byte{tI32}, body: tc.body}
			_, used, err := run(t, m.bytes(), meter.Options{Costs: costs}, 1<<30, tc.arg)
			if err != nil {
				t.Fatal(err)
			}
			if used != tc.want {
				t.Errorf("used %d gas, want %d", used, tc.want)
			}
		})
	}
}

// TestTrapChargesLoops: after a trap other than out of gas or unreachable
// (here a division by zero) the global holds the counter as last written:
// every loop iteration writes it, so a loop is never free, and only the
// segments since (here the code after the loop) go uncharged.
func TestTrapChargesLoops(t *testing.T) {
	costs := syncCosts()
	C, L, B, Br, Lp := int64(costs.Control), int64(costs.Local), int64(costs.Base), int64(costs.Branch), int64(costs.Loop)
	m := fnModule{params: []byte{tI32}, results: []byte{tI32}, body: []byte{
		0x03, 0x40, // loop
		0x20, 0, 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0, // n = n-1; br_if 0
		0x0b,
		0x41, 1, 0x41, 0, 0x6e, // i32.div_u 1/0
		0x0b,
	}}
	for _, n := range []int64{1, 1000} {
		_, used, err := run(t, m.bytes(), meter.Options{Costs: costs}, 1<<30, uint64(n))
		if err == nil || !strings.Contains(err.Error(), "divide by zero") {
			t.Fatalf("want a division trap, got %v", err)
		}
		if want := C + n*(Lp+3*L+B+Br+C); used != want {
			t.Errorf("n=%d: used %d gas, want %d", n, used, want)
		}
	}
}

// TestOutOfGasWithoutCheck: a function without loops or calls has no
// check; when it overdraws, the host sees a negative counter after the
// return, and treats it as out of gas.
func TestOutOfGasWithoutCheck(t *testing.T) {
	costs := syncCosts()
	m := fnModule{params: []byte{tI32}, results: []byte{tI32}, body: []byte{0x20, 0, 0x41, 1, 0x6a, 0x0b}}
	_, used, err := run(t, m.bytes(), meter.Options{Costs: costs}, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if want := 2*int64(costs.Local) + int64(costs.Base) + int64(costs.Control); used != want {
		t.Errorf("used %d gas of 1, want %d (counter below zero)", used, want)
	}
}

// TestMaxGas: the counter is kept in 1/Scale gas inside functions, so the
// largest budget must count exactly like a small one, and a larger initial
// budget is refused.
func TestMaxGas(t *testing.T) {
	opts := meter.DefaultOptions()
	opts.Costs.Scale = meter.MaxScale
	_, small, err := run(t, sumLoop.bytes(), opts, 1<<20, 100)
	if err != nil {
		t.Fatal(err)
	}
	_, big, err := run(t, sumLoop.bytes(), opts, meter.MaxGas, 100)
	if err != nil || big != small {
		t.Fatalf("with MaxGas: used %d (%v), with 2^20: %d", big, err, small)
	}
	opts.InitialGas = meter.MaxGas + 1
	if _, err := meter.Instrument(sumLoop.bytes(), opts); err == nil {
		t.Error("InitialGas above MaxGas accepted")
	}
}

// TestBrTableMiss: a br_table pays CostTable.BrTableMiss each time it takes
// an index other than the last two the same site took in the same call
// (both 0 at the function's entry), and nothing more when the index
// repeats or alternates between two. f(n, mask, bias) loops n times over a
// br_table on (n & mask) | bias whose labels all lead to the same place,
// so only the misses differ. Both forms of the tracking (one packed i64
// local per site, two i32 locals) count the same, also for indices with
// the high bit set (which the packed one keeps in 32-bit halves).
func TestBrTableMiss(t *testing.T) {
	m := fnModule{params: []byte{tI32, tI32, tI32}, body: []byte{
		0x03, 0x40, // loop
		0x02, 0x40, // block
		0x20, 0, 0x20, 1, 0x71, 0x20, 2, 0x72, // (n & mask) | bias
		0x0e, 2, 0, 0, 0, // br_table 0 0 (default 0): every index lands at the same end
		0x0b,                                     // end
		0x20, 0, 0x41, 1, 0x6b, 0x22, 0, 0x0d, 0, // n = n-1; br_if loop
		0x0b, 0x0b}}
	const n = 10
	for _, emit := range []func(meter.Options) meter.Options{
		func(o meter.Options) meter.Options { return o }, meter.TwoLocalBrTableMiss, meter.PackedBrTableMiss,
	} {
		for _, miss := range []uint32{0, 23, 32} {
			costs := syncCosts()
			costs.BrTableMiss = miss
			used := func(mask, bias uint64) int64 {
				_, g, err := run(t, m.bytes(), emit(meter.Options{Costs: costs}), 1<<30, n, mask, bias)
				if err != nil {
					t.Fatal(err)
				}
				return g
			}
			same := used(0, 0)
			for _, tc := range []struct {
				name       string
				mask, bias uint64
				misses     int64
			}{
				{"always 1: the first time only", 0, 1, 1},
				// n & 1 for n = 10, 9, ..., 1 is 0, 1, 0, 1, ...: the index
				// two steps back, every time but the first 1.
				{"alternating 0 and 1", 1, 0, 1},
				// n & 3 is 2, 1, 0, 3, 2, 1, ...: never one of the last two.
				{"cycling through 4", 3, 0, n},
				// 0xfffffffe, 0xffffffff, 0xfffffffe, ...: two misses.
				{"alternating, high bit set", 1, 0xfffffffe, 2},
				{"cycling through 4, high bit set", 3, 0x80000000, n},
				// 0x80000000 is not 0 (the packed halves do not mix).
				{"always 0x80000000", 0, 0x80000000, 1},
			} {
				if d := used(tc.mask, tc.bias) - same; d != tc.misses*int64(miss) {
					t.Errorf("BrTableMiss %d: %s: costs %d more than always 0, want %d (%d misses)", miss, tc.name, d, tc.misses*int64(miss), tc.misses)
				}
			}
		}
	}
}
