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
