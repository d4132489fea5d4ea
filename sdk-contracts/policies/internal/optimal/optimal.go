// Package optimal is the surplus-maximizing ROME policy. Its objective is
// total surplus Σ amount × (request max price − offer price); trades pay
// the offer's price.
//
//  1. Eligibility is computed once, as one bit set of offers per request
//     (graph.go).
//  2. When there are bundles (all kinds on one offer, in full), the LP
//     relaxation is solved first: every request divisible, each kind
//     exactly as in step 3. Its dual prices (the level at which each
//     offer's capacity clears) value each bundle on each offer at
//     Σ demand × (max price − dual price); bundles with a non-negative best
//     value are placed by that value, descending, each on the fitting offer
//     that values it most (bundles.go).
//  3. Divisible demand is then, per kind, a transportation problem on the
//     eligibility graph with the capacity left, solved exactly by
//     successive shortest paths (flow.go): requests are inserted by max
//     price descending and each is augmented along the path to the cheapest
//     offer with capacity it can reach (rerouting earlier requests), a
//     Dijkstra on reduced costs with offer price levels as potentials (the
//     Hungarian method). Inner arcs cost nothing, so a path costs its end
//     offer's price and a search runs over offers only, on bit sets;
//     inserting the highest bids first keeps the residual graph free of
//     negative cycles, which makes the result optimal for the kind.
//  4. Bundles still unserved are placed where capacity is left, by best
//     surplus descending; and the result is compared with the greedy
//     policy's (package fill), the better one returned.
//
// Step 3 is exact: with divisible demand the result is the LP optimum
// (checked against an independent LP solver in the tests). Bundles make the
// problem an integer program; steps 2 and 4 are a heuristic whose loss
// against the LP bound is measured in the tests (docs: BENCHMARKS.md), and
// which never does worse than greedy. A work budget keeps a call inside the
// policy gas budget: past it, a kind's remaining requests are served from
// their cheapest eligible offers, without rerouting.
package optimal

import (
	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// workBudget bounds the word operations and visits of all the flow
// searches of a call (both the relaxation and the final solve), so that a
// call stays well inside the default policy gas budget; one unit costs
// ≈30 gas in the VM. The speed market (10,000 requests × 1,000 offers ×
// 4 kinds, seed 1) needs ≈15M units and is solved exactly.
const workBudget = 60_000_000

// Allocate returns the allocation of s that maximizes total surplus on
// divisible demand (exactly) after placing bundles.
func Allocate(s *policy.Snapshot) ([]policy.Allocation, error) {
	return allocate(s, workBudget), nil
}

// allocate is Allocate with a work budget.
func allocate(s *policy.Snapshot, budget int64) []policy.Allocation {
	if bitsetWords(s) > maxGraphWords {
		return fill.Greedy(s) // the bit sets would not fit in memory
	}
	rs, pos := byRegion(s)
	g := newGraph(rs)
	b := policy.NewBook(rs)
	f := newFlow(rs, g, pos, budget)
	bundles := hasBundles(s)
	if bundles {
		placeBundles(rs, g, pos, b, f.duals())
	}
	for k := range s.Kinds {
		f.run(b, k, false)
	}
	if bundles {
		placeLeftover(rs, g, pos, b)
	}
	as := b.Allocations()
	for i := range as {
		as[i].Offer = uint32(pos[as[i].Offer])
	}
	if !bundles {
		return as
	}
	// Bundles make steps 2 and 4 a heuristic: never return less than the
	// greedy policy would.
	if gs := fill.Greedy(s); surplus(s, gs) > surplus(s, as) {
		return gs
	}
	return as
}

// byRegion returns s with its offers ordered by region (ties: position),
// and each reordered offer's position in s. Offers of one region then
// share the words of the bit sets, so that a request with a region has
// eligibility rows and searches spanning a few words. Wherever the order
// of offers shows in the result (ties, the order of the list), the
// positions in s decide, so the output does not depend on the reordering.
func byRegion(s *policy.Snapshot) (*policy.Snapshot, []int32) {
	pos := make([]int32, len(s.Offers))
	regions := make([]uint64, len(s.Offers))
	for i := range pos {
		pos[i] = int32(i)
		regions[i] = uint64(s.Offers[i].Region)
	}
	fill.SortDesc(pos, regions) // by region descending: the order does not matter, the grouping does
	rs := *s
	rs.Offers = make([]policy.Offer, len(s.Offers))
	for i, p := range pos {
		rs.Offers[i] = s.Offers[p]
	}
	return &rs, pos
}

// surplus is Σ amount × (max price − price paid) of as (saturating).
func surplus(s *policy.Snapshot, as []policy.Allocation) int64 {
	var v int64
	for i := range as {
		a := &as[i]
		r := &s.Requests[a.Request]
		for k := range s.Kinds {
			if a.Amount[k] > 0 {
				v = addSat(v, mulSat(a.Amount[k], r.MaxPrice[k], a.Price[k]))
			}
		}
	}
	return v
}

func hasBundles(s *policy.Snapshot) bool {
	for i := range s.Requests {
		if s.Requests[i].Bundle() {
			return true
		}
	}
	return false
}
