package meter_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/sos-kernel/sos/vm/meter"
)

// BenchmarkInstrumentGoModule measures the upload-time rewrite of a real Go
// wasip1 contract (≈3.5 MB with encoding/json).
func BenchmarkInstrumentGoModule(b *testing.B) {
	wasm := loadGoWasm(b)
	opts := meter.DefaultOptions()
	b.SetBytes(int64(len(wasm)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := meter.Instrument(wasm, opts); err != nil {
			b.Fatal(err)
		}
	}
}

// tightLoop is f(n): acc = acc*31 + n while n-- != 0, the worst case for
// per-iteration metering (one check per 9 instructions).
var tightLoop = fnModule{
	params: []byte{tI32}, results: []byte{tI32}, locals: [][2]byte{{1, tI32}},
	body: []byte{
		0x03, 0x40, // loop
		0x20, 1, 0x41, 31, 0x6c, 0x20, 0, 0x6a, 0x21, 1, // acc = acc*31 + n
		0x20, 0, 0x41, 1, 0x6b, 0x22, 0, // local.tee n (n-1)
		0x0d, 0, // br_if 0
		0x0b,
		0x20, 1, 0x0b,
	},
}

type overheadCase struct {
	name string
	fn   string
	arg  uint64
}

// BenchmarkMeteringOverhead runs the same function plain and metered
// (alternating, same process, same compiler) and reports both times and
// their ratio. Target: geometric mean ≤ 1.15, no case above 2.
func BenchmarkMeteringOverhead(b *testing.B) {
	ctx := context.Background()
	r := newRuntime(b, ctx, nil)
	defer r.Close(ctx)

	instantiate := func(wasm []byte, goModule bool) api.Module {
		cm, err := r.CompileModule(ctx, wasm)
		if err != nil {
			b.Fatal(err)
		}
		if goModule {
			return goInstance(b, ctx, r, cm)
		}
		m, err := r.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName(""))
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	pair := func(wasm []byte, goModule bool) (plain, met api.Module) {
		opts := meter.DefaultOptions()
		// METER_NO_NAN=1 separates the cost of metering from the cost of
		// NaN canonicalization.
		if os.Getenv("METER_NO_NAN") != "" {
			opts.CanonicalizeNaN = false
		}
		// METER_NO_DEPTH=1 leaves calls uncounted, to measure the cost of
		// the call depth counter.
		if os.Getenv("METER_NO_DEPTH") != "" {
			opts.MaxCallDepth = 0
		}
		out, err := meter.Instrument(wasm, opts)
		if err != nil {
			b.Fatal(err)
		}
		return instantiate(wasm, goModule), instantiate(out, goModule)
	}

	loopPlain, loopMet := pair(tightLoop.bytes(), false)
	var goPlain, goMet api.Module
	if wasm, err := goWasm(); err == nil {
		goPlain, goMet = pair(wasm, true)
	} else {
		b.Logf("Go module unavailable, only the tight loop runs: %v", err)
	}

	for _, tc := range []overheadCase{
		{"tight-loop", "f", 1_000_000},
		{"sha256", "sha", 8},
		{"json", "jsonparse", 40},
		{"float", "floats", 20_000},
	} {
		plain, met := loopPlain, loopMet
		if tc.fn != "f" {
			if goPlain == nil {
				continue
			}
			plain, met = goPlain, goMet
		}
		b.Run(tc.name, func(b *testing.B) {
			pf, mf := plain.ExportedFunction(tc.fn), met.ExportedFunction(tc.fn)
			var tp, tm time.Duration
			var gas int64
			for b.Loop() {
				t0 := time.Now()
				if _, err := pf.Call(ctx, tc.arg); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				setGas(met, meter.MaxGas)
				if _, err := mf.Call(ctx, tc.arg); err != nil {
					b.Fatal(err)
				}
				tm += time.Since(t1)
				tp += t1.Sub(t0)
				gas = meter.MaxGas - gasLeft(met)
			}
			n := float64(b.N)
			b.ReportMetric(float64(tp.Nanoseconds())/n, "plain-ns/op")
			b.ReportMetric(float64(tm.Nanoseconds())/n, "metered-ns/op")
			b.ReportMetric(float64(tm)/float64(tp), "overhead-ratio")
			b.ReportMetric(float64(gas), "gas/op")
			b.ReportMetric(float64(gas)/(float64(tm.Nanoseconds())/n), "gas/ns")
		})
	}
}
