package meter_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/sos-kernel/sos/vm/meter"
)

// withVec returns opts with Options.VectorCounter set.
func withVec(opts meter.Options) meter.Options {
	opts.VectorCounter = true
	return opts
}

// outcomeOf is a call's gas used and error text, as TestVectorCounter*
// compare them.
func outcomeOf(t *testing.T, m []byte, opts meter.Options, gas int64, args ...uint64) string {
	t.Helper()
	res, used, err := run(t, m, opts, gas, args...)
	return fmt.Sprintf("%v gas %d err %v", res, used, err)
}

// TestVectorCounterRecursion: the counter in a v128 local gives the gas of
// the i64 form for a recursion that jumps on both sides of its call
// (br_table charges, the write-back before and the load after each call),
// and runs out of gas at the same gas, with the same gas global, at every
// budget up to what it needs; with the br_table state in locals and in
// globals alike.
func TestVectorCounterRecursion(t *testing.T) {
	m := recursiveSite.bytes()
	for _, opts := range []meter.Options{meter.DefaultOptions(), func() meter.Options {
		o := meter.PackedBrTableMiss(meter.DefaultOptions())
		o.MissInGlobals = true
		return o
	}()} {
		a, _ := meter.Instrument(m, opts)
		b, err := meter.Instrument(m, withVec(opts))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a, b) {
			t.Fatal("VectorCounter changed nothing")
		}
		for n := uint64(0); n <= 6; n++ {
			want := outcomeOf(t, m, opts, 1<<40, n)
			if got := outcomeOf(t, m, withVec(opts), 1<<40, n); got != want {
				t.Errorf("f(%d): %s with the v128 counter, %s with the i64", n, got, want)
			}
		}
		_, need, _ := run(t, m, opts, 1<<40, 4)
		for limit := int64(0); limit <= need; limit++ {
			want := outcomeOf(t, m, opts, limit, 4)
			if got := outcomeOf(t, m, withVec(opts), limit, 4); got != want {
				t.Fatalf("f(4) with %d gas: %s with the v128 counter, %s with the i64", limit, got, want)
			}
		}
	}
}

// dynamicFill is f(n, pages) = memory.fill(0, 0, n), then memory.grow(pages),
// in a one-page memory: two dynamic charges, the fill's up to 2^32 bytes.
var dynamicFill = fnModule{
	params: []byte{tI32, tI32}, results: []byte{tI32},
	memory: []byte{1, 0, 1}, // one memory, min 1, no max
	body: []byte{
		0x41, 0, 0x41, 0, 0x20, 0, 0xfc, 11, 0, // memory.fill(0, 0, n)
		0x20, 1, 0x40, 0, // memory.grow(pages)
		0x0b,
	},
}

// TestVectorCounterDynamic: dynamic charges (the counter extracted, the
// charge computed in i64, the counter put back) give the gas and the
// out-of-gas points of the i64 form, a charge of 2^56 units (a fill of
// 2^32 bytes at 2^24 units a byte) included, and near the budget: a fill
// that leaves just 0 gas passes, one unit more runs out.
func TestVectorCounterDynamic(t *testing.T) {
	m := dynamicFill.bytes()
	opts := meter.DefaultOptions()
	opts.Costs.BulkPerByte = meter.MaxCost
	vec := withVec(opts)
	check := func(gas int64, n, pages uint64) {
		t.Helper()
		want := outcomeOf(t, m, opts, gas, n, pages)
		if got := outcomeOf(t, m, vec, gas, n, pages); got != want {
			t.Errorf("f(%d, %d) with %d gas: %s with the v128 counter, %s with the i64", n, pages, gas, got, want)
		}
	}
	for _, n := range []uint64{0, 1, 1 << 16, 1<<32 - 1} {
		check(meter.MaxGas, n, 1)
		check(1000, n, 0)
	}
	// The fill of n bytes (n × 2^24 units) in a budget of about that:
	// out of gas, or an out-of-bounds trap after the charge.
	n := uint64(1<<29 - 2)
	_, need, err := run(t, m, opts, meter.MaxGas, n, 0)
	if err == nil {
		t.Fatalf("f(%d, 0): used %d, no trap", n, need)
	}
	for gas := need - 3; gas <= need+3; gas++ {
		check(gas, n, 0)
	}
	for _, pages := range []uint64{1, 1<<32 - 1} {
		check(meter.MaxGas, 0, pages)
		check(400, 0, pages)
	}
}

// TestVectorCounterGoModule: the Go module's functions metered as jobs are
// (BlindLocals, MissInGlobals) with the counter in an i64 and in an f64
// local give the same results and gas, run out of gas at the same gas and
// hit the call depth limit alike: JSON decoding, sha256, float loops, the
// garbage collector, recursion.
func TestVectorCounterGoModule(t *testing.T) {
	wasm := loadGoWasm(t)
	ctx := context.Background()
	opts := meter.DefaultOptions()
	opts.BlindLocals, opts.MissInGlobals = true, true
	fl := withVec(opts)
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithMemoryLimitPages(meter.DefaultLimits().MaxMemoryPages))
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	defer r.Close(ctx)
	_, mods := instrumentEach(t, ctx, r, wasm, opts, fl)
	call := func(cm wazero.CompiledModule, fn string, gas int64, args []uint64) goOutcome {
		return callGo(t, ctx, r, cm, fn, gas, args)
	}
	for _, tc := range []struct {
		fn    string
		args  []uint64
		short bool // also run out of gas part of the way
	}{
		{"jsonparse", []uint64{10}, true},
		{"sha", []uint64{1}, true},
		{"floats", []uint64{1000}, true},
		{"gc", []uint64{130}, true},
		{"deep", []uint64{1000}, true},
		{"deep", []uint64{1 << 20}, false}, // past MaxCallDepth
	} {
		want := call(mods[0], tc.fn, meter.MaxGas, tc.args)
		if got := call(mods[1], tc.fn, meter.MaxGas, tc.args); got != want {
			t.Errorf("%s%v: %+v with the v128 counter, %+v with the i64", tc.fn, tc.args, got, want)
		}
		for _, frac := range []int64{2, 7} {
			if !tc.short {
				break
			}
			limit := want.gas / frac
			w := call(mods[0], tc.fn, limit, tc.args)
			if g := call(mods[1], tc.fn, limit, tc.args); g != w || !g.trap {
				t.Errorf("%s%v with %d gas: %+v with the v128 counter, %+v with the i64", tc.fn, tc.args, limit, g, w)
			}
		}
	}
}

// TestVectorCounterExampleJobs: the example jobs of sdk-contracts/jobs
// (when make contracts built them), metered as the executor meters jobs
// with the counter in an i64 and in a v128 local, run under WASI with the
// same stdout, exit, gas used, and gas used when they run out half way.
func TestVectorCounterExampleJobs(t *testing.T) {
	if testing.Short() {
		t.Skip("three Go programs, twice, in the interpreter")
	}
	ctx := context.Background()
	in := t.TempDir()
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog, the end\n"), 200)
	if err := os.WriteFile(filepath.Join(in, "a.txt"), text, 0o644); err != nil {
		t.Fatal(err)
	}
	opts := meter.DefaultOptions()
	opts.BlindLocals, opts.MissInGlobals = true, true
	opts.Limits = meter.Limits{}
	fl := withVec(opts)
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	defer r.Close(ctx)
	type outcome struct {
		stdout string
		gas    int64
		err    string
	}
	for _, job := range []struct {
		name string
		args []string
	}{
		{"mandelbrot", []string{"-width", "24", "-height", "16", "-iter", "100"}},
		{"sha256sum", nil},
		{"wordcount", []string{"-top", "5"}},
	} {
		wasm, err := os.ReadFile(filepath.Join("..", "..", "sdk-contracts", "jobs", job.name, job.name+".wasm"))
		if err != nil {
			t.Logf("%s not built (make contracts): %v", job.name, err)
			continue
		}
		_, mods := instrumentEach(t, ctx, r, wasm, opts, fl)
		run := func(cm wazero.CompiledModule, gas int64) outcome {
			var stdout bytes.Buffer
			cfg := wazero.NewModuleConfig().WithName("").WithArgs(append([]string{"job"}, job.args...)...).
				WithStdout(&stdout).WithStartFunctions().
				WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(in, "/in").WithDirMount(t.TempDir(), "/out"))
			m, err := r.InstantiateModule(ctx, cm, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close(ctx)
			setGas(m, gas)
			var o outcome
			if _, err := m.ExportedFunction("_start").Call(ctx); err != nil {
				o.err = err.Error()
			}
			o.stdout, o.gas = stdout.String(), gas-gasLeft(m)
			return o
		}
		want := run(mods[0], meter.MaxGas)
		if got := run(mods[1], meter.MaxGas); got != want {
			t.Errorf("%s: %+v with the v128 counter, %+v with the i64", job.name, got, want)
		}
		if want.stdout == "" {
			t.Errorf("%s printed nothing: %+v", job.name, want)
		}
		for _, frac := range []int64{2, 3} {
			w := run(mods[0], want.gas/frac)
			if g := run(mods[1], want.gas/frac); g != w || w.err == "" {
				t.Errorf("%s with %d gas: %+v with the v128 counter, %+v with the i64", job.name, want.gas/frac, g, w)
			}
		}
	}
}
