package meter_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/sos-kernel/sos/vm/meter"
)

// TestBrTableMissEmissions: the br_table tracking charges exactly the same
// gas whether it keeps a site's last two indices in two i32 locals (cost
// table v6's first emission), packed in one i64 local, or chooses per
// function by its integer locals (the default), on a Go module
// whose JSON decoding switches on the data (br_tables that change index),
// whose sha256 and float loops repeat or alternate theirs, whose gc runs
// the runtime, and whose recursion hits the call depth limit: same
// results, same gas, same out-of-gas and depth traps at the same gas, and
// the depth counter unchanged. A module metered with BrTableMiss = 0 shows
// the charge is exercised.
func TestBrTableMissEmissions(t *testing.T) {
	wasm := loadGoWasm(t)
	ctx := context.Background()
	opts := meter.DefaultOptions()
	zero := opts
	zero.Costs.BrTableMiss = 0
	var codes [4][]byte
	for i, o := range []meter.Options{opts, meter.TwoLocalBrTableMiss(opts), zero, meter.PackedBrTableMiss(opts)} {
		code, err := meter.Instrument(wasm, o)
		if err != nil {
			t.Fatal(err)
		}
		codes[i] = code
	}
	if bytes.Equal(codes[0], codes[1]) || bytes.Equal(codes[0], codes[3]) {
		t.Fatal("the default chose one form in every function")
	}
	t.Logf("metered %d bytes, with two locals per br_table %d, packed %d", len(codes[0]), len(codes[1]), len(codes[3]))
	// The interpreter: these functions are short, and compiling four 4.9 MB
	// modules with the optimizing compiler takes tens of seconds.
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithMemoryLimitPages(meter.DefaultLimits().MaxMemoryPages))
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	defer r.Close(ctx)
	var mods [4]wazero.CompiledModule
	for i, code := range codes {
		cm, err := r.CompileModule(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		mods[i] = cm
	}
	// call runs fn in a new instance: a trap leaves a Go runtime unusable.
	call := func(cm wazero.CompiledModule, fn string, gas int64, args []uint64) goOutcome {
		return callGo(t, ctx, r, cm, fn, gas, args)
	}
	for _, tc := range []struct {
		fn     string
		args   []uint64
		misses bool // BrTableMiss charges something
		short  bool // also run out of gas part of the way
	}{
		{"jsonparse", []uint64{10}, true, true},
		{"sha", []uint64{1}, false, false},
		{"floats", []uint64{1000}, false, false},
		{"gc", []uint64{130}, false, false},
		{"deep", []uint64{1000}, false, true},
		{"deep", []uint64{1 << 20}, false, false}, // past MaxCallDepth
	} {
		want := call(mods[1], tc.fn, meter.MaxGas, tc.args)
		got := call(mods[0], tc.fn, meter.MaxGas, tc.args)
		if got != want {
			t.Errorf("%s%v: %+v, with two locals %+v", tc.fn, tc.args, got, want)
		}
		if p := call(mods[3], tc.fn, meter.MaxGas, tc.args); p != want {
			t.Errorf("%s%v: packed %+v, with two locals %+v", tc.fn, tc.args, p, want)
		}
		if tc.fn == "deep" && tc.args[0] > uint64(meter.DefaultMaxCallDepth) && !got.trap {
			t.Errorf("%s%v: no depth trap", tc.fn, tc.args)
		}
		if z := call(mods[2], tc.fn, meter.MaxGas, tc.args); tc.misses && z.gas >= got.gas {
			t.Errorf("%s%v: %d gas, %d without the miss charge: nothing charged", tc.fn, tc.args, got.gas, z.gas)
		}
		// Running out of gas part of the way, at two points.
		for _, frac := range []int64{2, 7} {
			if !tc.short {
				break
			}
			limit := got.gas / frac
			w := call(mods[1], tc.fn, limit, tc.args)
			g := call(mods[0], tc.fn, limit, tc.args)
			if p := call(mods[3], tc.fn, limit, tc.args); g != w || p != w || !g.trap {
				t.Errorf("%s%v with %d gas: %+v, with two locals %+v", tc.fn, tc.args, limit, g, w)
			}
		}
	}
}
