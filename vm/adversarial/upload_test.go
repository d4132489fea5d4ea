package adversarial

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
	"github.com/sos-kernel/sos/vm/wasmasm"
)

// uploadEngine is a contracts.Engine over a fresh VM (Config as given) and
// a State on a fresh Pebble store.
type uploadEngine struct {
	e  *contracts.Engine
	st *ledger.State
	v  *vm.VM
}

func newUploadEngine(tb testing.TB, cfg vm.Config) *uploadEngine {
	tb.Helper()
	ctx := context.Background()
	v, err := vm.New(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	store, err := ledger.Open(tb.TempDir(), ledger.StoreOptions{NoSync: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close(); v.Close(ctx) })
	denoms, err := ledger.NewDenoms(ledger.DefaultDenoms())
	if err != nil {
		tb.Fatal(err)
	}
	return &uploadEngine{e: contracts.New(v, store.Codec(), denoms), st: ledger.NewState(store), v: v}
}

func uploadTx(st *ledger.State, gas uint64) *contracts.Tx {
	return &contracts.Tx{St: st, Gas: ledger.NewGasMeter(gas), ChainID: "adversarial", Height: 1, TimeMs: 1000, Sender: ledger.Address{9}}
}

// uploadTimed runs op on a locked thread and returns its wall and CPU time.
func uploadTimed(op func()) (wall, cpu time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, t0 := uploadThreadCPU(), time.Now()
	op()
	return time.Since(t0), time.Duration(uploadThreadCPU() - c0)
}

// uploadReport reports ns per gas charged (wall and CPU of the working
// thread) and the gas of one operation.
func uploadReport(b *testing.B, wall, cpu time.Duration, gas uint64) {
	b.ReportMetric(float64(wall.Nanoseconds())/float64(gas), "ns/gas")
	if cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(gas), "cpu-ns/gas")
	}
	b.ReportMetric(float64(gas)/float64(b.N), "gas/op")
}

// uploadShapes are modules at the largest size the structural limits
// admit (or, for initialization, whatever the uploader's gas allows), built
// to make an upload as slow per gas as possible.
func uploadShapes() []struct {
	name string
	wasm func() []byte
	gas  uint64 // the upload's gas limit; 0: vm.MaxUploadGas
	fail error  // the expected outcome, nil: success
} {
	return []struct {
		name string
		wasm func() []byte
		gas  uint64
		fail error
	}{
		{"init/loop-forever", wasmasm.InitLoop, 300_000_000, ledger.ErrOutOfGas},
		{"init/heavy-20M-iterations", func() []byte { return wasmasm.InitWork(20_000_000) }, 0, nil},
		{"init/grow-memory-128-pages", func() []byte { return wasmasm.InitGrow(vm.MaxMemoryPages) }, 0, nil},
		{"shape/nesting-8191", func() []byte { return wasmasm.Nested(vm.MaxNesting - 1) }, 0, nil},
		{"shape/br_table-16384-labels-2-targets", func() []byte { return wasmasm.BrTable(vm.MaxBrTableLabels, 2) }, 0, nil},
		{"shape/br_table-16384-labels-8000-blocks", func() []byte { return wasmasm.BrTable(vm.MaxBrTableLabels, 8000) }, 0, nil},
		{"shape/giant-function-128KiB", func() []byte { return wasmasm.Straight((vm.MaxFunctionBytes - 3) / 7) }, 0, nil},
		{"shape/loads-128KiB", func() []byte { return wasmasm.LoadChain((vm.MaxFunctionBytes - 3) / 3) }, 0, nil},
		{"shape/deep-stack-43k", func() []byte { return wasmasm.DeepStack((vm.MaxFunctionBytes - 1) / 3) }, 0, nil},
		{"shape/locals-64-blocks-16k", func() []byte { return wasmasm.LocalsBlocks(vm.MaxFunctionLocals, (vm.MaxFunctionBlocks-8)/2) }, 0, nil},
		{"shape/block-chain-16k", func() []byte { return wasmasm.BlockChain((vm.MaxFunctionBlocks - 8) / 2) }, 0, nil},
		{"shape/nested-ifs-16k-blocks", func() []byte { return wasmasm.NestedIfs((vm.MaxFunctionBlocks - 8) / 3) }, 0, nil},
		{"shape/if-chain-16k-blocks", func() []byte { return wasmasm.IfChain((vm.MaxFunctionBlocks - 8) / 3) }, 0, nil},
		{"shape/call-sites-16k-blocks-metered", func() []byte { return wasmasm.Calls((vm.MaxFunctionBlocks - 8) / 3) }, 0, nil},
		{"shape/functions-20000", func() []byte { return wasmasm.Functions(vm.MaxFunctions) }, 0, nil},
	}
}

// goModule reads a module `make contracts` built, or skips.
func goModule(b *testing.B, rel string) []byte {
	b.Helper()
	wasm, err := os.ReadFile(filepath.Join("..", "..", "sdk-contracts", rel))
	if err != nil {
		b.Skipf("%s not built (make contracts): %v", rel, err)
	}
	return wasm
}

// BenchmarkAdversarialUpload times what an upload makes a node do
// (validation, instrumentation, compilation, initialization, snapshot)
// against the gas the uploader is charged, through contracts.Engine.Upload
// over a fresh VM per upload (nothing compiled already) and a Pebble-backed
// State; the policy through a Policies VM's Prepare, as ROME's upload does.
// "load/" times a call whose module is not in memory (the module cache
// holds one module and two contracts alternate) against the gas of the
// call, which pays for the load whether or not it missed.
func BenchmarkAdversarialUpload(b *testing.B) {
	ctx := context.Background()
	upload := func(b *testing.B, wasm []byte, gas uint64, fail error) {
		if gas == 0 {
			gas = vm.MaxUploadGas
		}
		var wall, cpu time.Duration
		var total uint64
		for b.Loop() {
			b.StopTimer()
			u := newUploadEngine(b, vm.Config{})
			tx := uploadTx(u.st, gas)
			b.StartTimer()
			var err error
			w, c := uploadTimed(func() { _, err = u.e.Upload(ctx, tx, wasm) })
			if (fail == nil && err != nil) || (fail != nil && !errors.Is(err, fail)) {
				b.Fatalf("upload: %v, want %v", err, fail)
			}
			wall, cpu, total = wall+w, cpu+c, total+tx.Gas.Used()
		}
		uploadReport(b, wall, cpu, total)
	}
	for _, s := range uploadShapes() {
		b.Run(s.name, func(b *testing.B) { upload(b, s.wasm(), s.gas, s.fail) })
	}
	b.Run("go/token-contract", func(b *testing.B) { upload(b, goModule(b, "examples/token/token.wasm"), 0, nil) })
	b.Run("go/optimal-policy", func(b *testing.B) {
		wasm := goModule(b, "policies/optimal/optimal.wasm")
		var wall, cpu time.Duration
		var total uint64
		for b.Loop() {
			b.StopTimer()
			v, err := vm.New(ctx, vm.Config{Purpose: vm.Policies})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			var info vm.ModuleInfo
			w, c := uploadTimed(func() { _, info, err = v.Prepare(ctx, sha256.Sum256(wasm), wasm, vm.MaxUploadGas) })
			if err != nil {
				b.Fatal(err)
			}
			wall, cpu, total = wall+w, cpu+c, total+info.GasUsed
			b.StopTimer()
			v.Close(ctx)
			b.StartTimer()
		}
		uploadReport(b, wall, cpu, total)
	})
	b.Run("load/evicted-go-contracts", func(b *testing.B) {
		wasms := [][]byte{goModule(b, "examples/counter/counter.wasm"), goModule(b, "examples/token/token.wasm")}
		u := newUploadEngine(b, vm.Config{ModuleCacheSize: 1, CacheDir: b.TempDir()})
		var addrs []ledger.Address
		for i, wasm := range wasms {
			id, err := u.e.Upload(ctx, uploadTx(u.st, vm.MaxUploadGas), wasm)
			if err != nil {
				b.Fatal(err)
			}
			addr, _, err := u.e.Instantiate(ctx, uploadTx(u.st, vm.MaxTxGas), id, []byte(`{"count":1}`), fmt.Sprint(i), ledger.Address{}, nil)
			if err != nil && !errors.Is(err, contracts.ErrContract) {
				b.Fatal(err)
			}
			addrs = append(addrs, addr)
		}
		var wall, cpu time.Duration
		var total uint64
		i := 0
		for b.Loop() {
			tx := uploadTx(u.st, vm.MaxTxGas)
			var err error
			w, c := uploadTimed(func() { _, err = u.e.Execute(ctx, tx, addrs[i%2], []byte(`{}`), nil) })
			if err != nil && !errors.Is(err, contracts.ErrContract) {
				b.Fatal(err)
			}
			wall, cpu, total = wall+w, cpu+c, total+tx.Gas.Used()
			i++
		}
		uploadReport(b, wall, cpu, total)
	})
}

// TestAdversarialUploadShapesPass checks that every benchmark shape is
// within the structural limits and uploads as expected, so the benchmark
// keeps measuring the largest modules the limits admit (the Go modules and
// the slow compilations are left to the benchmark).
func TestAdversarialUploadShapesPass(t *testing.T) {
	ctx := context.Background()
	u := newUploadEngine(t, vm.Config{})
	for _, s := range uploadShapes() {
		t.Run(s.name, func(t *testing.T) {
			wasm := s.wasm()
			gas := s.gas
			if gas == 0 {
				gas = vm.MaxUploadGas
			}
			if testing.Short() || len(wasm) > 32<<10 && s.fail == nil {
				// Only the structural checks: compiling these takes
				// seconds. Prepare refuses them before compiling when they
				// are out of bounds, so a tiny budget tells.
				_, err := u.e.Upload(ctx, uploadTx(u.st, contracts.GasUploadPerByte*uint64(len(wasm))+vm.GasPrepareBase+vm.GasPreparePerByte*uint64(len(wasm))+1), wasm)
				if !errors.Is(err, ledger.ErrOutOfGas) || !errors.Is(err, vm.ErrOutOfGas) {
					t.Fatalf("upload with the reading budget only: %v, want out of gas at compilation", err)
				}
				return
			}
			_, err := u.e.Upload(ctx, uploadTx(u.st, gas), wasm)
			if (s.fail == nil && err != nil) || (s.fail != nil && !errors.Is(err, s.fail)) {
				t.Fatalf("upload: %v, want %v", err, s.fail)
			}
		})
	}
}
