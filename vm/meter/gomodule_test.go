package meter_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/sos-kernel/sos/vm/meter"
)

// goProgram is a small contract-like Go program: sha256, JSON and float
// loops, plus a NaN producer.
const goProgram = `package main

import (
	"crypto/sha256"
	"encoding/json"
	"math"
	"runtime"
)

func main() {}

var buf = make([]byte, 1<<16)

//go:wasmexport sha
func sha(n int32) int64 {
	var h [32]byte
	for i := int32(0); i < n; i++ {
		h = sha256.Sum256(buf[:4096])
		buf[0] = h[0]
	}
	return int64(h[0]) | int64(h[1])<<8
}

//go:wasmexport jsonparse
func jsonparse(n int32) int64 {
	doc := []byte(` + "`" + `{"a":[1,2,3,{"b":"hello","c":[true,false,null]}],"d":{"e":1.5e3,"f":"x\u00e9y"},"g":12345678901}` + "`" + `)
	var s int64
	for i := int32(0); i < n; i++ {
		var v map[string]any
		if err := json.Unmarshal(doc, &v); err != nil {
			return -1
		}
		s += int64(len(v))
	}
	return s
}

//go:wasmexport floats
func floats(n int32) int64 {
	x := 0.5
	for i := int32(0); i < n; i++ {
		x = math.Sqrt(x*x+1.0) / (x + 0.25)
		x += math.Sin(x) * 0.5
	}
	return int64(math.Float64bits(x))
}

//go:wasmexport gc
func gc(n int32) int64 {
	var keep [][]byte
	for i := int32(0); i < n; i++ {
		keep = append(keep, make([]byte, 1<<10))
		if i%64 == 0 {
			keep = nil
			runtime.GC()
		}
	}
	return int64(len(keep))
}

//go:wasmexport deep
func deep(n int32) int64 { return depthSum(int(n)) }

// depthSum recurses n deep in Go.
func depthSum(n int) int64 {
	if n == 0 {
		return 0
	}
	return depthSum(n-1) + int64(n&1)
}

//go:wasmexport nan
func nan() int64 {
	z := 0.0
	return int64(math.Float64bits(z / z))
}
`

// goWasm builds goProgram once per test binary with the contract toolchain
// flags (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared); it skips when the Go
// toolchain cannot.
var goWasm = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "meter-gowasm")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module gowasm\n\ngo 1.24\n"), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(goProgram), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", "c.wasm", ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, &buildError{out: string(out), err: err}
	}
	return os.ReadFile(filepath.Join(dir, "c.wasm"))
})

type buildError struct {
	out string
	err error
}

func (e *buildError) Error() string { return e.err.Error() + ": " + e.out }

func loadGoWasm(tb testing.TB) []byte {
	tb.Helper()
	b, err := goWasm()
	if err != nil {
		tb.Skipf("cannot build a Go wasip1 module: %v", err)
	}
	return b
}

// goInstance instantiates a Go c-shared module with WASI and runs its
// _initialize, with the gas counter (if any) set to a large budget.
func goInstance(tb testing.TB, ctx context.Context, r wazero.Runtime, cm wazero.CompiledModule) api.Module {
	tb.Helper()
	mod, err := r.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(""))
	if err != nil {
		tb.Fatal(err)
	}
	setGas(mod, meter.MaxGas)
	if _, err := mod.ExportedFunction("_initialize").Call(ctx); err != nil {
		tb.Fatalf("_initialize: %v", err)
	}
	return mod
}

func setGas(mod api.Module, gas int64) {
	if g := mod.ExportedGlobal(meter.GasGlobalExport); g != nil {
		g.(api.MutableGlobal).Set(uint64(gas))
	}
}

func gasLeft(mod api.Module) int64 {
	return int64(mod.ExportedGlobal(meter.GasGlobalExport).Get())
}

func newRuntime(tb testing.TB, ctx context.Context, cache wazero.CompilationCache) wazero.Runtime {
	cfg := wazero.NewRuntimeConfigCompiler().WithMemoryLimitPages(meter.DefaultLimits().MaxMemoryPages)
	if cache != nil {
		cfg = cfg.WithCompilationCache(cache)
	}
	r := wazero.NewRuntimeWithConfig(ctx, cfg)
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	return r
}

func TestGoModule(t *testing.T) {
	wasm := loadGoWasm(t)
	ctx := context.Background()
	metered, err := meter.Instrument(wasm, meter.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Go module: %d bytes, metered %d bytes (+%.1f%%)", len(wasm), len(metered), 100*float64(len(metered)-len(wasm))/float64(len(wasm)))

	r := newRuntime(t, ctx, nil)
	defer r.Close(ctx)
	pcm, err := r.CompileModule(ctx, wasm)
	if err != nil {
		t.Fatal(err)
	}
	mcm, err := r.CompileModule(ctx, metered)
	if err != nil {
		t.Fatalf("wazero rejects the metered module: %v", err)
	}
	plain, met := goInstance(t, ctx, r, pcm), goInstance(t, ctx, r, mcm)
	if used := meter.MaxGas - gasLeft(met); used <= 0 {
		t.Fatalf("_initialize used %d gas", used)
	} else {
		t.Logf("_initialize: %d gas", used)
	}
	for _, tc := range []struct {
		fn  string
		arg uint64
	}{{"sha", 3}, {"jsonparse", 5}, {"floats", 1000}, {"nan", 0}} {
		var args []uint64
		if tc.fn != "nan" {
			args = []uint64{tc.arg}
		}
		setGas(met, meter.MaxGas)
		want, err := plain.ExportedFunction(tc.fn).Call(ctx, args...)
		if err != nil {
			t.Fatalf("%s plain: %v", tc.fn, err)
		}
		got, err := met.ExportedFunction(tc.fn).Call(ctx, args...)
		if err != nil {
			t.Fatalf("%s metered: %v", tc.fn, err)
		}
		if tc.fn == "nan" {
			if got[0] != 0x7ff8000000000000 {
				t.Errorf("nan: metered %#x, want canonical 0x7ff8000000000000 (plain %#x)", got[0], want[0])
			}
		} else if got[0] != want[0] {
			t.Errorf("%s: metered %#x, plain %#x", tc.fn, got[0], want[0])
		}
		t.Logf("%s(%d): %d gas", tc.fn, tc.arg, meter.MaxGas-gasLeft(met))
	}

	// Out of gas inside Go code: trap, and the counter is negative.
	setGas(met, 10_000)
	if _, err := met.ExportedFunction("sha").Call(ctx, 100); err == nil {
		t.Fatal("sha(100) with 10k gas did not trap")
	}
	if g := gasLeft(met); g >= 0 {
		t.Fatalf("gas after out-of-gas trap = %d, want < 0", g)
	}
}

// goOutcome is what a call of a Go module's export shows: its result, the
// gas it used, the call depth counter after it, and whether it trapped.
type goOutcome struct {
	res   uint64
	gas   int64
	depth uint64
	trap  bool
}

// callGo runs fn in a new instance of cm with gas: a trap leaves a Go
// runtime unusable.
func callGo(tb testing.TB, ctx context.Context, r wazero.Runtime, cm wazero.CompiledModule, fn string, gas int64, args []uint64) goOutcome {
	tb.Helper()
	m := goInstance(tb, ctx, r, cm)
	defer m.Close(ctx)
	setGas(m, gas)
	m.ExportedGlobal(meter.DepthGlobalExport).(api.MutableGlobal).Set(0)
	out, err := m.ExportedFunction(fn).Call(ctx, args...)
	o := goOutcome{gas: gas - gasLeft(m), depth: m.ExportedGlobal(meter.DepthGlobalExport).Get()}
	if err != nil {
		o.trap = true
	} else {
		o.res = out[0]
	}
	return o
}

// instrumentEach meters wasm with each of opts and compiles the results in r.
func instrumentEach(tb testing.TB, ctx context.Context, r wazero.Runtime, wasm []byte, opts ...meter.Options) ([][]byte, []wazero.CompiledModule) {
	tb.Helper()
	codes := make([][]byte, len(opts))
	mods := make([]wazero.CompiledModule, len(opts))
	for i, o := range opts {
		code, err := meter.Instrument(wasm, o)
		if err != nil {
			tb.Fatal(err)
		}
		codes[i] = code
		if mods[i], err = r.CompileModule(ctx, code); err != nil {
			tb.Fatal(err)
		}
	}
	return codes, mods
}
