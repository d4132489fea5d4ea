package optimal

import (
	"testing"
	"time"

	"github.com/sos-kernel/sos/rome/marketgen"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// TestAllocateNative runs the policy natively on a quality-size market and
// checks its output with the SDK validator.
func TestAllocateNative(t *testing.T) {
	for _, bundles := range []float64{0, 0.3} {
		s, _, err := marketgen.Generate(marketgen.Config{Requests: 2000, Offers: 200, Kinds: 4, Seed: 1, BundleShare: bundles})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		allocs, err := Allocate(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("bundles %.1f: %d allocations in %v", bundles, len(allocs), time.Since(start))
		if err := s.CheckAllocations(allocs); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWorkBudget runs the policy with budgets too small for the market, so
// that kinds fall back to direct fills part-way (in the relaxation, in the
// final solve, or both): the output must stay valid, and a larger budget
// must not do worse than none at all.
func TestWorkBudget(t *testing.T) {
	for _, bundles := range []float64{0, 0.3} {
		s, _, err := marketgen.Generate(marketgen.Config{Requests: 600, Offers: 60, Seed: 2, BundleShare: bundles})
		if err != nil {
			t.Fatal(err)
		}
		exact := total(s, allocate(s, defaultBudgets(), nil))
		none := total(s, allocate(s, budgets{}, nil))
		for _, budget := range []int64{0, 1_000, 20_000, 100_000, workBudget} {
			allocs := allocate(s, budgets{flow: budget, dual: dualBudget, search: searchBudget, steps: dualSteps, slots: dualSlots}, nil)
			if err := s.CheckAllocations(allocs); err != nil {
				t.Fatalf("bundles %.1f, budget %d: %v", bundles, budget, err)
			}
			got := total(s, allocs)
			t.Logf("bundles %.1f, budget %7d: surplus %.0f (exact %.0f)", bundles, budget, got.float(), exact.float())
			if bundles == 0 && (got.cmp(exact) > 0 || got.cmp(none) < 0) {
				t.Fatalf("budget %d: surplus %.0f outside [%.0f, %.0f]", budget, got.float(), none.float(), exact.float())
			}
		}
	}
}

// TestExtremeValues runs the policy on a market whose prices and amounts
// are near the top of uint64, where bundle values saturate and SortDesc
// cannot pack its keys: the output must stay valid.
func TestExtremeValues(t *testing.T) {
	s, _, err := marketgen.Generate(marketgen.Config{Requests: 300, Offers: 40, Seed: 5, BundleShare: 0.4})
	if err != nil {
		t.Fatal(err)
	}
	for i := range s.Offers {
		for k := range s.Kinds {
			s.Offers[i].Price[k] = ^uint64(0) - 1000 + s.Offers[i].Price[k]
			s.Offers[i].Capacity[k] <<= 40
		}
	}
	for i := range s.Requests {
		for k := range s.Kinds {
			if s.Requests[i].Demand[k] > 0 {
				s.Requests[i].MaxPrice[k] = ^uint64(0) - 1000 + s.Requests[i].MaxPrice[k]
				s.Requests[i].Demand[k] <<= 40
			}
		}
	}
	allocs, err := Allocate(s, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckAllocations(allocs); err != nil {
		t.Fatal(err)
	}
	if len(allocs) == 0 {
		t.Fatal("nothing allocated")
	}
}

// TestManyReplicas: when the copies of replicated requests would more
// than triple the market (maxCopiesShare), optimal places the replicas
// after the other requests instead, and its answer is still valid and
// places them; below the limit it places them with the bundles.
func TestManyReplicas(t *testing.T) {
	s := &policy.Snapshot{Kinds: []policy.Kind{policy.Storage}}
	for i := range 12 {
		o := policy.Offer{ID: uint64(i + 1), Provider: uint32(i + 1), Region: uint32(1 + i%4), Reliability: 9999, Flags: policy.FlagRunsJobs}
		o.Capacity[0], o.Price[0] = 100, uint64(1+i)
		s.Offers = append(s.Offers, o)
	}
	for _, replicas := range []uint16{2, 10} {
		s.Requests = nil
		for i := range 3 {
			r := policy.Request{ID: uint64(i + 1), Replicas: replicas}
			r.Demand[0], r.MaxPrice[0] = 10, 20
			s.Requests = append(s.Requests, r)
		}
		if _, rp := expand(s); (rp == nil) != (replicas == 10) {
			t.Fatalf("%d replicas: expanded %v", replicas, rp != nil)
		}
		allocs, err := Allocate(s, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CheckAllocations(allocs); err != nil {
			t.Fatalf("%d replicas: %v", replicas, err)
		}
		if len(allocs) != 3*int(replicas) {
			t.Fatalf("%d replicas each: %d placed, want all", replicas, len(allocs))
		}
	}
}

// TestSampledDual checks the budgets of a large market's dual: a market of
// at least 2 × sampleSize requests gets a sample's dual of at most
// sampledDualSteps steps (and allocate skips the search after it), a
// smaller one the whole market's dual of up to dualSteps.
func TestSampledDual(t *testing.T) {
	for _, c := range []struct {
		requests int
		sampled  bool
	}{{2 * sampleSize, true}, {2*sampleSize - 1, false}} {
		s, _, err := marketgen.Generate(marketgen.Config{Requests: c.requests, Offers: 150, Kinds: 4, Seed: 3, BundleShare: 0.3})
		if err != nil {
			t.Fatal(err)
		}
		rs, _ := byRegion(s)
		l, sampled := dual(rs, newGraph(rs), defaultBudgets(), 0)
		if sampled != c.sampled {
			t.Fatalf("%d requests: sampled %v, want %v", c.requests, sampled, c.sampled)
		}
		limit := dualSteps
		if sampled {
			limit = sampledDualSteps
			if want := len(s.Requests) / sampleSize; len(l.reqs) > (len(s.Requests)+want-1)/want {
				t.Fatalf("%d requests: a sample of %d", c.requests, len(l.reqs))
			}
		}
		if l.steps == 0 || l.steps > limit {
			t.Fatalf("%d requests: %d steps, want 1..%d", c.requests, l.steps, limit)
		}
		t.Logf("%d requests: %d of them in the dual, %d steps", c.requests, len(l.reqs), l.steps)
	}
}
