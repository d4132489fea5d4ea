// Package optimal is the surplus-maximizing ROME policy. Its objective is
// total surplus Σ amount × (request max price − offer price); trades pay
// the offer's price.
//
//  1. Bundles (all kinds on one offer, in full) are placed first, by their
//     best possible surplus descending, each on the eligible offer with
//     room that gives the most surplus.
//  2. Divisible demand is then, per kind, a transportation problem on the
//     eligibility graph with what capacity is left. It is solved exactly by
//     successive shortest paths: requests are inserted by max price
//     descending and each is augmented along the cheapest reachable offer
//     (Dijkstra on reduced costs with node potentials, the Hungarian
//     method). Inner arcs cost nothing, so a path costs its end offer's
//     price; inserting the highest bids first keeps the residual graph free
//     of negative cycles, which makes the result optimal for the kind.
//
// Step 2 is exact; step 1 is a heuristic whose loss is measured against
// the LP bound in the tests (docs: BENCHMARKS.md).
package optimal

import (
	"cmp"
	"slices"

	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// maxPrice bounds prices for the flow: potentials are int64 sums of price
// differences. Markets above it are allocated greedily instead.
const maxPrice = 1 << 40

// workBudget bounds the searches' arc visits and heap pops over all kinds
// so that a call stays inside the VM's 1e9 gas limit (one unit costs ≈ 50
// gas in the VM, measured): past a kind's share, that kind's remaining
// requests are served from their cheapest neighbours without rerouting.
// The quality market (2,000 × 200 × 4 kinds, seed 1) needs 16.7M units and
// is solved exactly; larger markets degrade gracefully instead of running
// out of gas.
const workBudget = 18_000_000

// Allocate returns the allocation of s that maximizes total surplus on
// divisible demand (exactly) after placing bundles.
func Allocate(s *policy.Snapshot) ([]policy.Allocation, error) {
	nk := len(s.Kinds)
	for i := range s.Offers {
		for k := range nk {
			if s.Offers[i].Price[k] > maxPrice {
				return fill.Greedy(s), nil
			}
		}
	}
	for i := range s.Requests {
		for k := range nk {
			if s.Requests[i].MaxPrice[k] > maxPrice {
				return fill.Greedy(s), nil
			}
		}
	}
	if len(s.Offers) <= 1<<16 {
		return solve[uint16](s), nil
	}
	return solve[int32](s), nil
}

// solver holds the eligibility graph in CSR form: the offers eligible for
// request r are adj[start[r]:start[r+1]]. E is the offer index type:
// uint16 halves the graph's memory when there are at most 65,536 offers.
type solver[E uint16 | int32] struct {
	s     *policy.Snapshot
	nk    int
	start []int32
	adj   []E
	b     *policy.Book
}

func solve[E uint16 | int32](s *policy.Snapshot) []policy.Allocation {
	sv := &solver[E]{s: s, nk: len(s.Kinds), b: policy.NewBook(s)}
	sv.graph()
	sv.bundles()
	f := newFlow(sv)
	for k := range sv.nk {
		// Each kind gets an equal share of what earlier kinds left.
		f.budget = f.work + (workBudget-f.work)/int64(sv.nk-k)
		f.run(k)
	}
	return sv.b.Allocations()
}

// graph builds the eligibility lists, scanning only the request's region
// when it has one.
func (sv *solver[E]) graph() {
	s := sv.s
	x := regionIndex(s)
	sv.start = make([]int32, len(s.Requests)+1)
	sv.adj = make([]E, 0, 16*len(s.Requests))
	for ri := range s.Requests {
		r := &s.Requests[ri]
		if r.Region == 0 {
			for oi := range s.Offers {
				if policy.Eligible(&s.Offers[oi], r, sv.nk) {
					sv.adj = append(sv.adj, E(oi))
				}
			}
		} else if i, ok := slices.BinarySearch(x.regions, r.Region); ok {
			for _, oi := range x.order[x.start[i]:x.start[i+1]] {
				if policy.Eligible(&s.Offers[oi], r, sv.nk) {
					sv.adj = append(sv.adj, E(oi))
				}
			}
		}
		sv.start[ri+1] = int32(len(sv.adj))
	}
}

type regions struct {
	order   []int32 // offers by (region, position)
	regions []uint32
	start   []int32
}

func regionIndex(s *policy.Snapshot) regions {
	var x regions
	x.order = make([]int32, len(s.Offers))
	for i := range x.order {
		x.order[i] = int32(i)
	}
	slices.SortStableFunc(x.order, func(a, b int32) int { return cmp.Compare(s.Offers[a].Region, s.Offers[b].Region) })
	for i, o := range x.order {
		if i == 0 || s.Offers[o].Region != s.Offers[x.order[i-1]].Region {
			x.regions = append(x.regions, s.Offers[o].Region)
			x.start = append(x.start, int32(i))
		}
	}
	x.start = append(x.start, int32(len(x.order)))
	return x
}

// surplus of serving all of bundle r from offer o.
func surplus(r *policy.Request, o *policy.Offer, nk int) uint64 {
	var v uint64
	for k := range nk {
		v += r.Demand[k] * (r.MaxPrice[k] - o.Price[k]) // eligible: max >= price
	}
	return v
}

// bundles places bundles by best possible surplus descending, each on the
// eligible offer with room that gives the most surplus (ties: lower
// position).
func (sv *solver[E]) bundles() {
	s := sv.s
	type cand struct {
		r    int32
		best uint64
	}
	var cands []cand
	for ri := range s.Requests {
		r := &s.Requests[ri]
		if !r.Bundle() {
			continue
		}
		var best uint64
		ok := false
		for _, oi := range sv.adj[sv.start[ri]:sv.start[ri+1]] {
			if sv.b.Fits(ri, int(oi)) {
				best, ok = max(best, surplus(r, &s.Offers[oi], sv.nk)), true
			}
		}
		if ok {
			cands = append(cands, cand{int32(ri), best})
		}
	}
	slices.SortFunc(cands, func(a, b cand) int { return cmp.Or(cmp.Compare(b.best, a.best), cmp.Compare(a.r, b.r)) })
	for _, c := range cands {
		r := &s.Requests[c.r]
		best, bestV := -1, uint64(0)
		for _, oi := range sv.adj[sv.start[c.r]:sv.start[c.r+1]] {
			if v := surplus(r, &s.Offers[oi], sv.nk); (best < 0 || v > bestV) && sv.b.Fits(int(c.r), int(oi)) {
				best, bestV = int(oi), v
			}
		}
		if best < 0 {
			continue
		}
		for k := range sv.nk {
			sv.b.Add(int(c.r), best, k, r.Demand[k], s.Offers[best].Price[k])
		}
	}
}
