package vm

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/sos-kernel/sos/vm/meter"
)

// calibrationSuite is the gas calibration workload of the test contract:
// each command runs at two sizes so that the time per gas is measured at
// the margin, free of the fixed cost of a call (instance reset, page
// faults of the copy-on-write memory, parsing the message), which gas does
// not meter.
var calibrationSuite = []struct {
	cmd        string
	small, big int
}{
	{"shaloop", 5, 25},       // Go sha256 over 4 KiB: straight-line ALU code
	{"json", 10, 60},         // encoding/json into map[string]any: branches, allocation, GC
	{"storage", 50, 300},     // storage_set + storage_get of 8-byte keys (fake Host)
	{"arith", 20000, 120000}, // integer loop with strconv
}

// BenchmarkGasCalibration fits time against gas for each workload of the
// suite and reports the marginal ns/gas (the cost table aims at 1 gas ≈
// 1 ns, 1 Mgas ≈ 1 ms) and, in the "spread" sub-benchmark, max/min of the
// ratios over the suite. Run it alone on a quiet machine:
//
//	go test ./vm -run '^$' -bench GasCalibration -benchtime 2s
func BenchmarkGasCalibration(b *testing.B) {
	p := loadPrepared(b)
	v := newVM(b, Config{})
	ctx := context.Background()
	call := func(b *testing.B, msg string) (time.Duration, uint64) {
		t0 := time.Now()
		res, err := v.Call(ctx, testCode, p, "execute", []byte(msg), testEnv(), newFakeHost(), MaxTxGas)
		d := time.Since(t0)
		if err != nil || res.Failed {
			b.Fatalf("%s: %v %q", msg, err, res.Data)
		}
		return d, res.GasUsed
	}
	// The first call compiles the module: keep it out of the figures.
	call(b, "incr")

	ratios := map[string]float64{}
	for _, w := range calibrationSuite {
		small, big := fmt.Sprintf("%s %d", w.cmd, w.small), fmt.Sprintf("%s %d", w.cmd, w.big)
		b.Run(w.cmd, func(b *testing.B) {
			var ts, tb time.Duration
			var gs, gb uint64
			for b.Loop() {
				d, g := call(b, small)
				ts, gs = ts+d, g
				d, g = call(b, big)
				tb, gb = tb+d, g
			}
			n := float64(b.N)
			marginal := (float64(tb-ts) / n) / float64(gb-gs)
			ratios[w.cmd] = marginal
			b.ReportMetric(float64(gb), "gas/op")
			b.ReportMetric(float64(tb.Nanoseconds())/n/float64(gb), "ns/gas")
			b.ReportMetric(marginal, "marginal-ns/gas")
		})
	}
	b.Run("spread", func(b *testing.B) {
		for b.Loop() {
		}
		lo, hi := 0.0, 0.0
		for _, r := range ratios {
			if lo == 0 || r < lo {
				lo = r
			}
			hi = max(hi, r)
		}
		if lo > 0 {
			b.ReportMetric(lo, "min-ns/gas")
			b.ReportMetric(hi, "max-ns/gas")
			b.ReportMetric(hi/lo, "max/min")
		}
	})
}

// TestGasCalibrationTable checks the invariants of the protocol cost table
// (not its timing, which BenchmarkGasCalibration measures).
func TestGasCalibrationTable(t *testing.T) {
	c := meter.DefaultCosts()
	if c.Version < 2 {
		t.Errorf("cost table version %d: the fixed-point table is version 2 or later", c.Version)
	}
	if c.Scale == 0 || c.Scale&(c.Scale-1) != 0 || c.Scale > meter.MaxScale {
		t.Errorf("scale %d is not a power of two in [1, %d]", c.Scale, meter.MaxScale)
	}
	if c.Branch == 0 || c.Call == 0 || c.CallIndirect == 0 {
		t.Errorf("branches and calls must cost something: %+v", c)
	}
	if _, err := meter.Instrument(loadContract(t), meterOptions(c)); err != nil {
		t.Errorf("the default table does not instrument the test contract: %v", err)
	}
	if o := meterOptions(c); o.MaxCallDepth != meter.DefaultMaxCallDepth {
		t.Errorf("VM instruments with MaxCallDepth %d, want %d", o.MaxCallDepth, meter.DefaultMaxCallDepth)
	}
}
