package vm

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/sos-kernel/sos/vm/meter"
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
