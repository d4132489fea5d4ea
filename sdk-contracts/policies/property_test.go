package policies_test

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/sos-kernel/sos/rome/marketgen"
)

// TestValidOnRandomMarkets runs every policy natively on many small random
// markets (odd shapes included: one kind, all bundles, no offers, tight and
// loose supply, few regions) and checks each output with the test's own
// validator and the SDK's; optimal is also checked against the LP optimum
// on divisible markets and must never do worse than greedy. Every tenth
// market also runs in the VM and must give the same bytes (differential
// test of the Wasm build).
func TestValidOnRandomMarkets(t *testing.T) {
	const seed = 20260101
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	v, ps := load(t)
	for i := range 200 {
		cfg := marketgen.Config{
			Requests:    rng.IntN(120),
			Offers:      rng.IntN(25),
			Kinds:       1 + rng.IntN(4),
			Seed:        rng.Uint64(),
			BundleShare: []float64{0, 0.3, 1}[rng.IntN(3)],
			Regions:     1 + rng.IntN(4),
			Load:        []float64{0.3, 1, 3}[rng.IntN(3)],
		}
		s, snap, err := marketgen.Generate(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var bound, greedy int64
		if cfg.BundleShare == 0 {
			bound, _ = lpBound(s)
		}
		for _, name := range policyNames {
			allocs, err := native[name](s)
			if err != nil {
				t.Fatalf("market %d %+v: %s: %v", i, cfg, name, err)
			}
			if err := validate(s, allocs); err != nil {
				t.Fatalf("market %d %+v: %s: %v", i, cfg, name, err)
			}
			if err := s.CheckAllocations(allocs); err != nil {
				t.Fatalf("market %d %+v: %s: SDK validator: %v", i, cfg, name, err)
			}
			got := measure(s, allocs).surplus
			if cfg.BundleShare == 0 && (got > bound || name == "optimal" && got != bound) {
				t.Fatalf("market %d %+v: %s: surplus %d, LP optimum %d", i, cfg, name, got, bound)
			}
			if name == "greedy" {
				greedy = got
			}
			if name == "optimal" && got < greedy {
				t.Fatalf("market %d %+v: optimal's surplus %d below greedy's %d", i, cfg, got, greedy)
			}
			if i%10 == 0 {
				out, err := call(v, ps[name], snap, len(s.Kinds))
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(out.allocs, allocs) && !(len(out.allocs) == 0 && len(allocs) == 0) {
					t.Fatalf("market %d: %s: VM output differs from native", i, name)
				}
			}
		}
	}
}

// TestOptimalAgainstExact: on many tiny random markets (bundles of every
// share, tight and loose supply, ties, zero margins), every policy's surplus
// is at most the exact optimum (exactOptimum: enumeration of the bundles'
// placements, exact transportation for the rest), optimal's is never below
// greedy's, and optimal comes close to the optimum everywhere: at least 95%
// on every market and 99.9% on average (before issue 17's dual prices it
// fell to 80% where a cheap bundle crowded out divisible demand).
func TestOptimalAgainstExact(t *testing.T) {
	const seed = 20260317
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	markets, exact, greedyExact, sumRatio := 0, 0, 0, 0.0
	worst := 1.0
	for markets < 150 {
		cfg := marketgen.Config{
			Requests:    2 + rng.IntN(12),
			Offers:      1 + rng.IntN(3),
			Kinds:       1 + rng.IntN(4),
			Seed:        rng.Uint64(),
			BundleShare: []float64{0.3, 0.6, 1}[rng.IntN(3)],
			Regions:     1 + rng.IntN(2),
			Load:        []float64{0.5, 1.5, 4}[rng.IntN(3)],
			TiedPrices:  rng.IntN(4) == 0,
		}
		s, _, err := marketgen.Generate(cfg)
		if err != nil {
			t.Fatal(err)
		}
		bundles := 0
		for _, r := range s.Requests {
			bundles += int(r.Flags & 1)
		}
		if bundles > 6 {
			continue
		}
		markets++
		best := exactOptimum(s)
		var greedy int64
		for _, name := range policyNames {
			allocs, err := native[name](s)
			if err != nil {
				t.Fatalf("market %+v: %s: %v", cfg, name, err)
			}
			if err := validate(s, allocs); err != nil {
				t.Fatalf("market %+v: %s: %v", cfg, name, err)
			}
			got := measure(s, allocs).surplus
			if got > best {
				t.Fatalf("market %+v: %s: surplus %d above the exact optimum %d", cfg, name, got, best)
			}
			switch name {
			case "greedy":
				greedy = got
				if got == best {
					greedyExact++
				}
			case "optimal":
				if got < greedy {
					t.Fatalf("market %+v: optimal's surplus %d below greedy's %d", cfg, got, greedy)
				}
				ratio := 1.0
				if best > 0 {
					ratio = float64(got) / float64(best)
				}
				sumRatio += ratio
				worst = min(worst, ratio)
				if got == best {
					exact++
				}
			}
		}
	}
	mean := sumRatio / float64(markets)
	t.Logf("%d markets: optimal exact on %d (greedy on %d), mean %.4f, worst %.4f of the optimum", markets, exact, greedyExact, mean, worst)
	if worst < 0.95 || mean < 0.999 {
		t.Errorf("optimal: worst %.4f (want >= 0.95), mean %.4f (want >= 0.999) of the optimum", worst, mean)
	}
}
