package meter_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/sos-kernel/sos/vm/meter"
)

// Options that change only the instrumented bytes (BlindLocals,
// MissInGlobals, Reloop) must not change what a Go program does or pays:
// these helpers run real Go programs metered both ways and compare all
// that the host can see.

// sameOnGoModule: the Go module's functions metered with base and with
// variant (which must change some function's code, deterministically; what
// names it) use the same gas, return the same results, run out of gas at
// the same gas at a half, a third and a seventh of what they need, and hit
// the call depth limit alike: JSON decoding (loops whose br_table changes
// index), sha256 and float loops, the garbage collector, and recursion.
func sameOnGoModule(t *testing.T, base, variant meter.Options, what string) {
	t.Helper()
	wasm := loadGoWasm(t)
	ctx := context.Background()
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithMemoryLimitPages(meter.DefaultLimits().MaxMemoryPages))
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	defer r.Close(ctx)
	codes, mods := instrumentEach(t, ctx, r, wasm, base, variant)
	if bytes.Equal(codes[0], codes[1]) {
		t.Errorf("%s changed no function of the Go module", what)
	}
	if again, _ := meter.Instrument(wasm, variant); !bytes.Equal(codes[1], again) {
		t.Errorf("%s is not deterministic", what)
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
		{"floats", []uint64{1000}, true},
		{"gc", []uint64{130}, false},
		{"deep", []uint64{1000}, true},
		{"deep", []uint64{1 << 20}, false}, // past MaxCallDepth
	} {
		want := call(mods[0], tc.fn, meter.MaxGas, tc.args)
		if got := call(mods[1], tc.fn, meter.MaxGas, tc.args); got != want {
			t.Errorf("%s%v: %+v with %s, %+v without", tc.fn, tc.args, got, what, want)
		}
		if tc.fn == "deep" && tc.args[0] == 1<<20 && (!want.trap || want.depth <= uint64(base.MaxCallDepth)) {
			t.Errorf("deep(1<<20) did not hit the call depth limit: %+v", want)
		}
		for _, frac := range []int64{2, 3, 7} {
			if !tc.short {
				break
			}
			limit := want.gas / frac
			w := call(mods[0], tc.fn, limit, tc.args)
			if g := call(mods[1], tc.fn, limit, tc.args); g != w || !g.trap {
				t.Errorf("%s%v with %d gas: %+v with %s, %+v without", tc.fn, tc.args, limit, g, what, w)
			}
		}
	}
}

// sameOnExampleJobs: the example jobs of sdk-contracts/jobs (when make
// contracts built them), metered with base and with variant, run under
// WASI with the same stdout, exit and gas used, and run out of gas at the
// same point with a half, a third and a seventh of what they need.
func sameOnExampleJobs(t *testing.T, base, variant meter.Options, what string) {
	t.Helper()
	if testing.Short() {
		t.Skip("three Go programs, eight times each, in the interpreter")
	}
	ctx := context.Background()
	in := t.TempDir()
	text := bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog, the end\n"), 200)
	if err := os.WriteFile(filepath.Join(in, "a.txt"), text, 0o644); err != nil {
		t.Fatal(err)
	}
	base.Limits, variant.Limits = meter.Limits{}, meter.Limits{}
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	defer r.Close(ctx)
	// err is the whole error, Wasm stack trace included; String shows
	// its first line.
	type outcome struct {
		stdout string
		gas    int64
		err    string
	}
	show := func(o outcome) string {
		e, _, _ := strings.Cut(o.err, "\n")
		return fmt.Sprintf("{gas:%d err:%q stdout:%q}", o.gas, e, o.stdout)
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
		codes, mods := instrumentEach(t, ctx, r, wasm, base, variant)
		if bytes.Equal(codes[0], codes[1]) {
			t.Errorf("%s: %s changed no function", job.name, what)
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
			t.Errorf("%s: %s with %s, %s without", job.name, show(got), what, show(want))
		}
		if want.stdout == "" {
			t.Errorf("%s printed nothing: %s", job.name, show(want))
		}
		for _, frac := range []int64{2, 3, 7} {
			limit := want.gas / frac
			w := run(mods[0], limit)
			if g := run(mods[1], limit); g != w || w.err == "" {
				t.Errorf("%s with %d gas: %s with %s, %s without", job.name, limit, show(g), what, show(w))
			}
		}
	}
}
