package vm

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/sos-kernel/sos/vm/meter"
	"github.com/sos-kernel/sos/vm/wasmasm"
)

// BenchmarkPrepare measures upload processing of the ≈3.5 MB test contract:
// validation, instrumentation, compilation, _initialize, snapshot. Each
// iteration uses a new VM, so nothing is compiled already.
func BenchmarkPrepare(b *testing.B) {
	wasm := loadContract(b)
	ctx := context.Background()
	b.SetBytes(int64(len(wasm)))
	var gas uint64
	for b.Loop() {
		v := newVM(b, Config{})
		_, info, err := v.Prepare(ctx, testCode, wasm, MaxUploadGas)
		if err != nil {
			b.Fatal(err)
		}
		gas = info.GasUsed
		v.Close(ctx)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(gas), "ns/gas")
}

// BenchmarkFreshInstance measures taking an instance in the snapshot state
// from the pool and putting it back reset (memory and globals restored).
func BenchmarkFreshInstance(b *testing.B) {
	p := loadPrepared(b)
	v := newVM(b, Config{})
	ctx := context.Background()
	mod, err := v.module(ctx, testCode, p)
	if err != nil {
		b.Fatal(err)
	}
	defer mod.unref(ctx)
	// Dirty the instance like a call would.
	h := newFakeHost()
	if _, err := v.Call(ctx, testCode, p, "execute", []byte("incr"), testEnv(), h, callGas(b, p, testGas)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		in, err := mod.acquire(ctx, v.rt)
		if err != nil {
			b.Fatal(err)
		}
		mod.release(ctx, in, true)
	}
}

// BenchmarkInstantiate measures a new wazero instance of a cached module
// (what a call costs when the pool is empty).
func BenchmarkInstantiate(b *testing.B) {
	p := loadPrepared(b)
	v := newVM(b, Config{})
	ctx := context.Background()
	mod, err := v.module(ctx, testCode, p)
	if err != nil {
		b.Fatal(err)
	}
	defer mod.unref(ctx)
	for b.Loop() {
		in, err := mod.acquire(ctx, v.rt)
		if err != nil {
			b.Fatal(err)
		}
		mod.release(ctx, in, false)
	}
}

// BenchmarkCounterIncrement is the VM part of an executed transaction:
// module from cache, fresh instance state, execute "incr" (one storage read,
// one write through a fake Host).
func BenchmarkCounterIncrement(b *testing.B) {
	p := loadPrepared(b)
	v := newVM(b, Config{})
	ctx := context.Background()
	h := newFakeHost()
	env := testEnv()
	msg := []byte("incr")
	if _, err := v.Call(ctx, testCode, p, "execute", msg, env, h, callGas(b, p, testGas)); err != nil {
		b.Fatal(err)
	}
	var lat []time.Duration
	for b.Loop() {
		t0 := time.Now()
		res, err := v.Call(ctx, testCode, p, "execute", msg, env, h, callGas(b, p, testGas))
		lat = append(lat, time.Since(t0))
		if err != nil || res.Failed {
			b.Fatal(err, res.Failed)
		}
		h.writes = h.writes[:0]
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "median-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

// BenchmarkSnapshotVsInit compares the three ways to get a fresh instance
// of the contract: instantiate the instrumented module and run Go's
// _initialize (no snapshot), instantiate the snapshot (empty pool), and take
// a reset instance from the pool.
func BenchmarkSnapshotVsInit(b *testing.B) {
	wasm := loadContract(b)
	p := loadPrepared(b)
	v := newVM(b, Config{})
	ctx := context.Background()
	b.Run("init", func(b *testing.B) {
		instrumented, err := meter.Instrument(wasm, meterOptions(v.cfg.Costs))
		if err != nil {
			b.Fatal(err)
		}
		cm, err := v.rt.CompileModule(ctx, instrumented)
		if err != nil {
			b.Fatal(err)
		}
		defer cm.Close(ctx)
		cfg := wazero.NewModuleConfig().WithName("").WithStartFunctions()
		for b.Loop() {
			s := &callState{prepare: true, env: &Env{}, logCap: -1, monoBase: snapshotMonoNs, rng: newRNG(prepareSeed)}
			sctx := context.WithValue(ctx, stateKey{}, s)
			mod, err := v.rt.InstantiateModule(sctx, cm, cfg)
			if err != nil {
				b.Fatal(err)
			}
			s.gas = mod.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal)
			s.gas.Set(MaxTxGas)
			if _, err := mod.ExportedFunction("_initialize").Call(sctx); err != nil {
				b.Fatal(err)
			}
			mod.Close(ctx)
		}
	})
	mod, err := v.module(ctx, testCode, p)
	if err != nil {
		b.Fatal(err)
	}
	defer mod.unref(ctx)
	b.Run("snapshot-instantiate", func(b *testing.B) {
		for b.Loop() {
			in, err := mod.acquire(ctx, v.rt)
			if err != nil {
				b.Fatal(err)
			}
			mod.release(ctx, in, false)
		}
	})
	b.Run("snapshot-pool", func(b *testing.B) {
		for b.Loop() {
			in, err := mod.acquire(ctx, v.rt)
			if err != nil {
				b.Fatal(err)
			}
			mod.release(ctx, in, true)
		}
	})
}

// BenchmarkInitInterpreter runs initialization-like code of the same
// instrumented module in wazero's interpreter and compiled, and reports
// ns per gas: the figures behind running initialization compiled at
// upload (doc.go, "Upload gas"). "loop" is a start function looping until
// 2 Mgas are gone, "counted" one counting down 200,000 iterations, and
// "go-init" the test contract's _initialize.
func BenchmarkInitInterpreter(b *testing.B) {
	ctx := context.Background()
	cases := []struct {
		name string
		wasm []byte
	}{
		{"loop", wasmasm.InitLoop()},
		{"counted", wasmasm.InitWork(200_000)},
		{"go-init", loadContract(b)},
	}
	for _, c := range cases {
		for _, interp := range []bool{true, false} {
			name := c.name + "/compiled"
			rc := wazero.NewRuntimeConfig()
			if interp {
				name, rc = c.name+"/interpreter", wazero.NewRuntimeConfigInterpreter()
			}
			b.Run(name, func(b *testing.B) {
				v := newVM(b, Config{})
				code, err := v.buildCode(c.wasm)
				if err != nil {
					b.Fatal(err)
				}
				rt := wazero.NewRuntimeWithConfig(ctx, rc.WithCoreFeatures(api.CoreFeaturesV2).WithMemoryLimitPages(MaxMemoryPages))
				defer rt.Close(ctx)
				if err := instantiateHostModules(ctx, rt); err != nil {
					b.Fatal(err)
				}
				cm, err := rt.CompileModule(ctx, code.code)
				if err != nil {
					b.Fatal(err)
				}
				var gas uint64
				var elapsed time.Duration
				for b.Loop() {
					b.StopTimer()
					s := &callState{resultCap: MaxResultBytes, prepare: true, env: &Env{}, logCap: -1, monoBase: snapshotMonoNs, rng: newRNG(prepareSeed)}
					sctx := context.WithValue(ctx, stateKey{}, s)
					mod, err := rt.InstantiateModule(sctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
					if err != nil {
						b.Fatal(err)
					}
					for _, d := range code.data {
						mod.Memory().Write(d.off, d.data)
					}
					const budget = 2_000_000
					s.gas = mod.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal)
					s.gas.Set(budget)
					fn := mod.ExportedFunction(startExport)
					if fn == nil {
						fn = mod.ExportedFunction("_initialize")
					}
					b.StartTimer()
					t0 := time.Now()
					fn.Call(sctx)
					elapsed += time.Since(t0)
					if left := int64(s.gas.Get()); left > 0 {
						gas += budget - uint64(left)
					} else {
						gas += budget
					}
					b.StopTimer()
					mod.Close(ctx)
					b.StartTimer()
				}
				b.ReportMetric(float64(elapsed.Nanoseconds())/float64(gas), "ns/gas")
			})
		}
	}
}
