package meter_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/sos-kernel/sos/vm/meter"
)

// recursiveSite is f(n) = n, where a call with n > 0 takes its br_table
// (index n/2) twice, calling f(n-1) between the two: the second jump
// repeats the first (no miss charge) only if the br_table's remembered
// indices are this call's own, not those the recursive call left behind,
// and the callee's first jump, often the caller's index, is charged only
// if the callee starts with indices of its own (0, 0).
var recursiveSite = fnModule{
	params: []byte{tI32}, results: []byte{tI32}, locals: [][2]byte{{1, tI32}},
	body: []byte{
		0x20, 0, 0x45, 0x04, 0x40, 0x41, 0, 0x0f, 0x0b, // if n == 0 { return 0 }
		0x03, 0x40, // loop
		0x02, 0x40, 0x20, 0, 0x41, 1, 0x76, 0x0e, 1, 0, 0, 0x0b, // block; br_table 0 0 on n/2; end
		0x20, 1, 0x45, 0x04, 0x40, // if i == 0
		0x20, 0, 0x41, 1, 0x6b, 0x10, 0, 0x1a, // drop f(n-1)
		0x0b,                            // end
		0x20, 1, 0x41, 1, 0x6a, 0x22, 1, // i++ (tee)
		0x41, 2, 0x49, 0x0d, 0, // br_if loop while i < 2
		0x0b,    // end loop
		0x20, 0, // n
		0x0b,
	},
}

// TestMissInGlobalsRecursion: with Options.MissInGlobals a br_table's
// state lives in a global shared by every call of its function; the gas
// of a recursion that jumps on both sides of its call, and the point where
// it runs out of gas at every budget up to what it needs, are those of the
// state in a local. It fails if calls do not keep the caller's state (the
// recursive call then leaves a different last index behind) or if the
// function's entry does not reset it.
func TestMissInGlobalsRecursion(t *testing.T) {
	// f has 3 integer params and locals, too few for the default to put
	// its state in a global: force the packed form, which does.
	opts := meter.PackedBrTableMiss(meter.DefaultOptions())
	withGlobals := opts
	withGlobals.MissInGlobals = true
	m := recursiveSite.bytes()
	a, _ := meter.Instrument(m, opts)
	b, err := meter.Instrument(m, withGlobals)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Fatal("MissInGlobals changed nothing")
	}
	for n := uint64(0); n <= 6; n++ {
		res, want, err := run(t, m, opts, 1<<40, n)
		if err != nil || res[0] != n {
			t.Fatalf("f(%d) = %v, %v", n, res, err)
		}
		res, got, err := run(t, m, withGlobals, 1<<40, n)
		if err != nil || res[0] != n {
			t.Fatalf("MissInGlobals: f(%d) = %v, %v", n, res, err)
		}
		if got != want {
			t.Errorf("f(%d): %d gas with the state in globals, %d in a local", n, got, want)
		}
		if n != 4 {
			continue
		}
		// Out of gas at every budget below what it needs: same trap,
		// same gas left.
		for limit := int64(0); limit < want; limit++ {
			_, wl, we := run(t, m, opts, limit, n)
			_, gl, ge := run(t, m, withGlobals, limit, n)
			if wl != gl || (we == nil) != (ge == nil) {
				t.Fatalf("f(%d) with %d gas: used %d (err %v) with globals, %d (err %v) in a local", n, limit, gl, ge, wl, we)
			}
		}
	}
	// Without the miss charge the option emits nothing.
	opts.Costs.BrTableMiss, withGlobals.Costs.BrTableMiss = 0, 0
	a, _ = meter.Instrument(m, opts)
	b, _ = meter.Instrument(m, withGlobals)
	if !bytes.Equal(a, b) {
		t.Error("MissInGlobals changed a module metered without the br_table charge")
	}
}

// TestMissInGlobalsChoice: by default only a function with at least 13
// integer params and locals (with the gas counter and the state, more
// than wazero's 14 integer registers on amd64) keeps its br_table state
// in a global, packed also above 16 (where a local state takes two i32
// locals): the same gas, and above 16 the same out-of-gas points as the
// two locals' form.
func TestMissInGlobalsChoice(t *testing.T) {
	opts := meter.DefaultOptions()
	withGlobals := opts
	withGlobals.MissInGlobals = true
	for _, tc := range []struct {
		i64s   byte // f's i64 locals besides its i32 param and local
		global bool
	}{{0, false}, {10, false}, {11, true}, {14, true}, {15, true}, {20, true}} {
		m := recursiveSite
		m.locals = [][2]byte{{1, tI32}, {tc.i64s, tI64}}
		a, err := meter.Instrument(m.bytes(), opts)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := meter.Instrument(m.bytes(), withGlobals)
		if changed := !bytes.Equal(a, b); changed != tc.global {
			t.Errorf("%d integer params and locals: state in a global %v, want %v", 2+int(tc.i64s), changed, tc.global)
		}
		for n := uint64(0); n <= 5 && tc.global; n++ {
			_, want, _ := run(t, m.bytes(), opts, 1<<40, n)
			if _, got, _ := run(t, m.bytes(), withGlobals, 1<<40, n); got != want {
				t.Errorf("%d integer locals, f(%d): %d gas with the state in globals, %d in a local", 2+int(tc.i64s), n, got, want)
			}
		}
		if tc.i64s != 15 {
			continue
		}
		// Two i32 locals against one packed global: out of gas at the
		// same gas for every budget below what f(4) needs.
		_, need, _ := run(t, m.bytes(), opts, 1<<40, 4)
		for limit := int64(0); limit < need; limit++ {
			_, wl, we := run(t, m.bytes(), opts, limit, 4)
			_, gl, ge := run(t, m.bytes(), withGlobals, limit, 4)
			if wl != gl || (we == nil) != (ge == nil) {
				t.Fatalf("f(4) with %d gas: used %d (err %v) with globals, %d (err %v) in locals", limit, gl, ge, wl, we)
			}
		}
	}
}

// TestMissInGlobalsGoModule: the Go module's functions metered as jobs are
// (BlindLocals) with and without Options.MissInGlobals use the same gas,
// return the same results, run out of gas at the same gas and hit the
// call depth limit alike: JSON decoding (br_tables that change index),
// sha256 and float loops (that repeat them), the garbage collector, and
// recursion.
func TestMissInGlobalsGoModule(t *testing.T) {
	wasm := loadGoWasm(t)
	ctx := context.Background()
	opts := meter.DefaultOptions()
	opts.BlindLocals = true
	withGlobals := opts
	withGlobals.MissInGlobals = true
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithMemoryLimitPages(meter.DefaultLimits().MaxMemoryPages))
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	defer r.Close(ctx)
	codes, mods := instrumentEach(t, ctx, r, wasm, opts, withGlobals)
	if bytes.Equal(codes[0], codes[1]) {
		t.Fatal("no function of the Go module keeps its state in a global")
	}
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
		{"floats", []uint64{1000}, false},
		{"gc", []uint64{130}, false},
		{"deep", []uint64{1000}, true},
		{"deep", []uint64{1 << 20}, false}, // past MaxCallDepth
	} {
		want := call(mods[0], tc.fn, meter.MaxGas, tc.args)
		if got := call(mods[1], tc.fn, meter.MaxGas, tc.args); got != want {
			t.Errorf("%s%v: %+v with the state in globals, %+v in locals", tc.fn, tc.args, got, want)
		}
		for _, frac := range []int64{2, 7} {
			if !tc.short {
				break
			}
			limit := want.gas / frac
			w := call(mods[0], tc.fn, limit, tc.args)
			if g := call(mods[1], tc.fn, limit, tc.args); g != w || !g.trap {
				t.Errorf("%s%v with %d gas: %+v with the state in globals, %+v in locals", tc.fn, tc.args, limit, g, w)
			}
		}
	}
}

// TestMissInGlobalsExampleJobs: the example jobs of sdk-contracts/jobs
// (when make contracts built them), metered as the executor meters jobs
// with and without Options.MissInGlobals, run under WASI with the same
// stdout, exit, gas used, and gas used when they run out half way.
func TestMissInGlobalsExampleJobs(t *testing.T) {
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
	opts.BlindLocals = true
	opts.Limits = meter.Limits{}
	withGlobals := opts
	withGlobals.MissInGlobals = true
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
		codes, mods := instrumentEach(t, ctx, r, wasm, opts, withGlobals)
		if bytes.Equal(codes[0], codes[1]) {
			t.Errorf("%s: no function keeps its state in a global", job.name)
		}
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
			t.Errorf("%s: %+v with the state in globals, %+v in locals", job.name, got, want)
		}
		if want.stdout == "" {
			t.Errorf("%s printed nothing: %+v", job.name, want)
		}
		w := run(mods[0], want.gas/2)
		if g := run(mods[1], want.gas/2); g != w || w.err == "" {
			t.Errorf("%s with %d gas: %+v with the state in globals, %+v in locals", job.name, want.gas/2, g, w)
		}
	}
}
