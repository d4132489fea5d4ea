package adversarial

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// attack runs one hostile call and reports how long the node took and the
// gas the attacker was charged for it.
type attack func() (sample, error)

// shape is one hostile workload.
type shape struct {
	name string
	// setup deploys what the shape needs and returns the call.
	setup func(tb testing.TB, e *env) attack
	// allow lists errors the call may end with (out of gas for loops that
	// never end, traps for trapping shapes); any other error fails.
	allow []error
}

// Band is the acceptance band of the pricing goal (1 Mgas ≈ 1 ms, so
// 1 ns/gas) for every shape.
const (
	bandLow  = 0.5
	bandHigh = 2.0
)

// BenchmarkAdversarial times every hostile shape against the gas it is
// charged and reports ns/gas (CPU time of the thread running the call per
// gas charged for the call's own work, i.e. less the module-load charge:
// the goal is 1, within 0.5–2), ns/gas-with-load (per all the gas
// charged), wall-ns/gas (with wall time, which on a shared machine also
// counts waiting for a core), gas/op and load-gas/op. Every call pays for
// loading its module (vm.GasLoadBase) whether or not the node has it in
// memory, and the benchmark's calls always have it: that charge prices
// work these calls do not do, timed by BenchmarkAdversarialUpload
// (load/evicted-go-contracts).
//
//	go test ./vm/adversarial -run '^$' -bench 'Adversarial$' -count 3
//
// Each shape gets a chain of its own, so that no shape pays for the heap
// or the store an earlier one left behind (garbage collection runs on the
// allocating thread).
func BenchmarkAdversarial(b *testing.B) {
	for _, s := range shapes() {
		b.Run(s.name, func(b *testing.B) {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			run := s.setup(b, newEnv(b))
			if _, err := run(); !s.allowed(err) { // warm: compile, pool
				b.Fatalf("%s: %v", s.name, err)
			}
			runtime.GC()
			var sum sample
			for b.Loop() {
				x, err := run()
				if !s.allowed(err) {
					b.Fatalf("%s: %v", s.name, err)
				}
				sum.add(x)
			}
			b.ReportMetric(sum.nsPerRunGas(), "ns/gas")
			b.ReportMetric(sum.nsPerGas(), "ns/gas-with-load")
			b.ReportMetric(float64(sum.wall.Nanoseconds())/float64(sum.gas), "wall-ns/gas")
			b.ReportMetric(float64(sum.gas)/float64(b.N), "gas/op")
			b.ReportMetric(float64(sum.load)/float64(b.N), "load-gas/op")
		})
	}
}

func (s *sample) add(x sample) {
	s.wall += x.wall
	s.cpu += x.cpu
	s.gas += x.gas
	s.load += x.load
}

// nsPerGas is CPU time per gas charged, module loads included.
func (s sample) nsPerGas() float64 { return float64(s.cpu.Nanoseconds()) / float64(s.gas) }

// nsPerRunGas is CPU time per gas charged for the call's own work: the
// module-load charge left out (sample.load).
func (s sample) nsPerRunGas() float64 {
	return float64(s.cpu.Nanoseconds()) / float64(max(s.gas-s.load, 1))
}

func (s shape) allowed(err error) bool {
	if err == nil {
		return true
	}
	for _, a := range s.allow {
		if errors.Is(err, a) {
			return true
		}
	}
	return false
}

// TestAdversarialBand fails when a shape leaves the 0.5–2 ns/gas band.
// Timing depends on the machine and its load, so it runs only when
// SOS_ADVERSARIAL_BAND is set (to a comma-separated list of shape name
// prefixes, or "all"), on a quiet machine:
//
//	SOS_ADVERSARIAL_BAND=all go test ./vm/adversarial -run Band -v
//
// Each shape runs for at least 200 ms three times; the median ratio counts.
func TestAdversarialBand(t *testing.T) {
	sel := os.Getenv("SOS_ADVERSARIAL_BAND")
	if sel == "" {
		t.Skip("timing test: set SOS_ADVERSARIAL_BAND=all (or shape prefixes) on a quiet machine")
	}
	var out []string
	for _, s := range shapes() {
		if sel != "all" && !slices.ContainsFunc(strings.Split(sel, ","), func(p string) bool { return strings.HasPrefix(s.name, p) }) {
			continue
		}
		runtime.LockOSThread()
		run := s.setup(t, newEnv(t))
		if _, err := run(); !s.allowed(err) {
			t.Fatalf("%s: %v", s.name, err)
		}
		runtime.GC()
		var ratios []float64
		for range 3 {
			var sum sample
			for calls := 0; calls < 3 || sum.cpu < 200*time.Millisecond; calls++ {
				x, err := run()
				if !s.allowed(err) {
					t.Fatalf("%s: %v", s.name, err)
				}
				sum.add(x)
			}
			ratios = append(ratios, sum.nsPerRunGas())
		}
		runtime.UnlockOSThread()
		sort.Float64s(ratios)
		r := ratios[1]
		line := fmt.Sprintf("%-36s %7.3f ns/gas (runs %.3f–%.3f)", s.name, r, ratios[0], ratios[2])
		out = append(out, line)
		if r < bandLow || r > bandHigh {
			t.Errorf("%s: outside %.1f–%.1f ns/gas", line, bandLow, bandHigh)
		}
	}
	t.Logf("\n%s", strings.Join(out, "\n"))
}

// TestAdversarialShapesRun runs every shape once, untimed: each must
// deploy and end as its shape says (success, or one of its allowed
// errors), so the benchmark cannot rot.
func TestAdversarialShapesRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds Go modules and runs every hostile shape once")
	}
	e := newEnv(t)
	for _, s := range shapes() {
		if strings.HasPrefix(s.name, "policy/") && strings.HasSuffix(s.name, "x1000") {
			continue // the shipped policies' own tests run them
		}
		t.Run(s.name, func(t *testing.T) {
			run := s.setup(t, e)
			x, err := run()
			if !s.allowed(err) {
				t.Errorf("%v", err)
			}
			if x.gas <= x.load {
				t.Errorf("charged no gas beyond the module load (%d)", x.load)
			}
		})
	}
}
