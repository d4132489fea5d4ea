package vm

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
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
// 1 ns, 1 Mgas ≈ 1 ms, within ±30 % for every workload) and, in the
// "spread" sub-benchmark, the extremes over the suite, their ratio and the
// worst deviation from 1 ns/gas (as a factor: 1.3 is 30 %). Run it alone
// on a quiet machine, a few times:
//
//	go test ./vm -run '^$' -bench GasCalibration -count 3
func BenchmarkGasCalibration(b *testing.B) {
	p := loadPrepared(b)
	v := newVM(b, Config{})
	ctx := context.Background()
	load := callGas(b, p, 0) // charged by every call, not part of running it
	call := func(b *testing.B, msg string) (time.Duration, uint64) {
		t0 := time.Now()
		res, err := v.Call(ctx, testCode, p, "execute", []byte(msg), testEnv(), newFakeHost(), MaxTxGas)
		d := time.Since(t0)
		if err != nil || res.Failed {
			b.Fatalf("%s: %v %q", msg, err, res.Data)
		}
		return d, res.GasUsed - load
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
			b.ReportMetric(float64(gb-gs), "marginal-gas/op")
			b.ReportMetric(float64(tb-ts)/n, "marginal-ns/op")
			b.ReportMetric(marginal, "marginal-ns/gas")
			b.ReportMetric(float64(tb.Nanoseconds())/n/float64(gb), "ns/gas")
		})
	}
	b.Run("spread", func(b *testing.B) {
		for b.Loop() {
		}
		lo, hi, worst := 0.0, 0.0, 1.0
		for _, r := range ratios {
			if lo == 0 || r < lo {
				lo = r
			}
			hi = max(hi, r)
			worst = max(worst, r, 1/r)
		}
		if lo > 0 {
			b.ReportMetric(lo, "min-ns/gas")
			b.ReportMetric(hi, "max-ns/gas")
			b.ReportMetric(hi/lo, "max/min")
			b.ReportMetric(worst, "worst-factor")
		}
	})
}

// TestGasCalibrationTable checks the invariants of the protocol cost table
// (not its timing, which BenchmarkGasCalibration measures).
func TestGasCalibrationTable(t *testing.T) {
	c := meter.DefaultCosts()
	if c.Version < 3 {
		t.Errorf("cost table version %d: the table with a Loop cost is version 3 or later", c.Version)
	}
	if c.Scale == 0 || c.Scale&(c.Scale-1) != 0 || c.Scale > meter.MaxScale {
		t.Errorf("scale %d is not a power of two in [1, %d]", c.Scale, meter.MaxScale)
	}
	if c.Loop == 0 || c.Call == 0 || c.CallIndirect == 0 {
		t.Errorf("loop iterations and calls must cost something: %+v", c)
	}
	// The relations the calibration relies on (see meter.DefaultCosts):
	// work that takes longer on every machine costs more.
	for _, o := range []struct {
		what        string
		cheap, dear uint32
	}{
		{"i32.add < i32.mul", c.Base, c.IntMul},
		{"i32.mul < i32.div", c.IntMul, c.IntDiv},
		{"i32.add < i32.load", c.Base, c.Load},
		{"f64.add < f64.div", c.Float, c.FloatDiv},
		{"call < call_indirect", c.Call, c.CallIndirect},
		{"local.get < i32.add", c.Local, c.Base},
	} {
		if o.cheap >= o.dear {
			t.Errorf("%s does not hold: %d, %d", o.what, o.cheap, o.dear)
		}
	}
	if _, err := meter.Instrument(loadContract(t), meterOptions(c)); err != nil {
		t.Errorf("the default table does not instrument the test contract: %v", err)
	}
	if o := meterOptions(c); o.MaxCallDepth != meter.DefaultMaxCallDepth {
		t.Errorf("VM instruments with MaxCallDepth %d, want %d", o.MaxCallDepth, meter.DefaultMaxCallDepth)
	}
}

// costFields lists the instruction classes of a cost table: every field but
// Version and Scale.
func costFields() []string {
	t := reflect.TypeFor[meter.CostTable]()
	var names []string
	for i := range t.NumField() {
		if n := t.Field(i).Name; n != "Version" && n != "Scale" {
			names = append(names, n)
		}
	}
	return names
}

// mixTable is a table with Scale 1 where every class costs 1, except the
// named ones, which cost 2.
func mixTable(version uint32, names ...string) meter.CostTable {
	c := meter.CostTable{Version: version, Scale: 1}
	v := reflect.ValueOf(&c).Elem()
	for _, f := range costFields() {
		w := uint64(1)
		if slices.Contains(names, f) {
			w = 2
		}
		v.FieldByName(f).SetUint(w)
	}
	return c
}

// instructionMix runs every message under one table per class and returns
// how many instructions (or dynamic units) of each class each executed and
// the gas its host calls charged. With Scale 1 nothing is rounded, so the
// counts are exact: the gas under the table that doubles class X is the
// gas under the all-ones table plus the count of X.
func instructionMix(tb testing.TB, wasm []byte, msgs []string) (counts []map[string]int64, host []int64) {
	ctx := context.Background()
	version := uint32(1000)
	run := func(classes ...string) []int64 {
		version++
		v, err := New(ctx, Config{Costs: mixTable(version, classes...)})
		if err != nil {
			tb.Fatal(err)
		}
		defer v.Close(ctx)
		p, _, err := v.Prepare(ctx, testCode, wasm, MaxUploadGas)
		if err != nil {
			tb.Fatal(err)
		}
		var gas []int64
		load := callGas(tb, p, 0)
		for _, msg := range msgs {
			res, err := v.Call(ctx, testCode, p, "execute", []byte(msg), testEnv(), newFakeHost(), MaxTxGas)
			if err != nil || res.Failed {
				tb.Fatalf("%s: %v %q", msg, err, res.Data)
			}
			gas = append(gas, int64(res.GasUsed-load))
		}
		return gas
	}
	base := run()
	host = slices.Clone(base)
	counts = make([]map[string]int64, len(msgs))
	for i := range counts {
		counts[i] = map[string]int64{}
	}
	for _, f := range costFields() {
		g := run(f)
		for i := range msgs {
			counts[i][f] = g[i] - base[i]
			host[i] -= counts[i][f]
		}
	}
	return counts, host
}

// TestGasCalibrationMix measures how many instructions of each class the
// calibration workloads execute (logged with -v: the input for fitting the
// cost table to BenchmarkGasCalibration's times) and checks that the
// default table charges exactly that: the table's price of the executed
// instructions plus the host's charges, rounded up to whole gas at most once
// per call and per function entry (the counter runs in 1/Scale gas inside
// a function and is rounded when written back).
func TestGasCalibrationMix(t *testing.T) {
	if testing.Short() {
		t.Skip("prepares the test contract under two dozen cost tables")
	}
	wasm := loadContract(t)
	var msgs []string
	for _, w := range calibrationSuite {
		msgs = append(msgs, fmt.Sprintf("%s %d", w.cmd, w.small), fmt.Sprintf("%s %d", w.cmd, w.big))
	}
	counts, host := instructionMix(t, wasm, msgs)

	ctx := context.Background()
	c := meter.DefaultCosts()
	v := newVM(t, Config{Costs: c})
	p, _, err := v.Prepare(ctx, testCode, wasm, MaxUploadGas)
	if err != nil {
		t.Fatal(err)
	}
	table := reflect.ValueOf(c)
	load := int64(callGas(t, p, 0))
	for i, msg := range msgs {
		res, err := v.Call(ctx, testCode, p, "execute", []byte(msg), testEnv(), newFakeHost(), MaxTxGas)
		if err != nil {
			t.Fatal(err)
		}
		var units int64
		for f, n := range counts[i] {
			units += n * int64(table.FieldByName(f).Uint())
		}
		exact := host[i] + (units+int64(c.Scale)-1)/int64(c.Scale)
		calls := counts[i]["Call"] + counts[i]["CallIndirect"]
		if got := int64(res.GasUsed) - load; got < exact || got > exact+2*calls+1 {
			t.Errorf("%s: %d gas, the table prices its instructions at %d (+ at most %d of rounding)", msg, got, exact, 2*calls+1)
		}
	}
	for i, w := range calibrationSuite {
		s, b := counts[2*i], counts[2*i+1]
		var line []string
		for _, f := range costFields() {
			if d := b[f] - s[f]; d != 0 {
				line = append(line, fmt.Sprintf("%s=%d", f, d))
			}
		}
		t.Logf("%s %d→%d, marginal: host gas %d, %s", w.cmd, w.small, w.big, host[2*i+1]-host[2*i], strings.Join(line, " "))
	}
}
