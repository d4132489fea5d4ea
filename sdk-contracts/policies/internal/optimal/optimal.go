// Package optimal is the surplus-maximizing ROME policy. Its objective is
// total surplus Σ amount × (request max price − offer price); trades pay
// the offer's price. It is an anytime policy (docs/rome-policy-abi.md):
// it hands in a fast answer first and better ones as it finds them, so
// that running out of gas costs quality, never the epoch's allocation.
//
//  1. The greedy policy's allocation (package fill) is handed in first: a
//     few percent of the gas, and the floor of everything that follows.
//     With replicated requests it comes after step 2, whose rows find the
//     replicas' offers (greedyAnswer: the list policy.WithReplicas gives).
//  2. Eligibility is computed once, as one bit set of offers per request
//     (graph.go).
//  3. Without bundles, divisible demand is, per kind, a transportation
//     problem on the eligibility graph, solved exactly by successive
//     shortest paths (flow.go): requests are inserted by max price
//     descending and each is augmented along the path to the cheapest
//     offer with capacity it can reach (rerouting earlier requests), a
//     Dijkstra on reduced costs with offer price levels as potentials (the
//     Hungarian method). Inner arcs cost nothing, so a path costs its end
//     offer's price and a search runs over offers only, on bit sets;
//     inserting the highest bids first keeps the residual graph free of
//     negative cycles, which makes the result optimal for the kind.
//  4. With bundles (all kinds on one offer, in full), the problem is an
//     integer program. Capacity is priced first by the Lagrangian dual of
//     its LP relaxation (lagrange.go): a price per offer and kind on top of
//     the ask, lowered by subgradient steps, that says what the capacity is
//     worth to the rest of the market — scarcity above the asks included.
//     Bundles whose value at those prices is positive are placed by that
//     value, descending, each on the fitting offer where it is worth most;
//     the divisible demand then gets the capacity left by the exact flow of
//     step 3, and bundles still unserved fill what is left, by surplus.
//     The result is handed in if it beats greedy's.
//  5. A local search (search.go) then moves bundles: an unserved bundle
//     takes a candidate offer where making room (moving bundles to other
//     candidates, displacing divisible units) costs less than it gains;
//     when it gained at least minSearchGain of the surplus, the divisible
//     demand is solved again around the new placement, and the result
//     handed in if it beats the best so far. A market large enough for
//     step 4 to price a sample of its requests (at least 2 × sampleSize)
//     skips the search: it could move only the sample's bundles and gains
//     too little there to be used (see sampledDualSteps).
//
// Replicated requests (ABI v3; the policy is exported with
// policy.HandleAll and sees them) go through steps 4 and 5 as bundles: a
// request wanting k replicas becomes k copies, each a bundle eligible only
// where a replica may go (replicas.go), and every placement and move keeps
// the copies of one request on distinct providers (distinct regions with
// spread). A replica thus competes for capacity by its value at the dual
// prices, as in the LP relaxation with the replica constraint; placed
// after the other requests (what policy.Handle does for other policies),
// replicas got only what ordinary demand left. Greedy's answer, the first
// one handed in, places them that way (greedyAnswer, the same list as
// policy.PlaceReplicas's but from the copies' rows instead of a scan of
// every offer per request), so optimal is never worse.
//
// Step 3 is exact: with divisible demand the result is the LP optimum
// (checked against an independent LP solver in the tests). With bundles,
// steps 4 and 5 are a heuristic whose loss against the LP relaxation's
// optimum (solved by an external solver) is measured per market family in
// the tests (sdk-contracts/policies TestQuality, BENCHMARKS.md): at least
// 99% on every family. Every answer is compared exactly with the best
// so far, greedy's first, so the result is never worse than greedy's.
// Work budgets bound each step so that a call on a 10,000 × 1,000 market
// stays inside the default policy gas budget (≤ 1 Ggas of 2 on the market
// families of BENCHMARKS.md, replicas included): past its budget the flow
// serves a kind's remaining requests from their cheapest eligible offers
// without rerouting, the dual stops improving its prices and the search
// stops moving bundles. Should
// a larger market still run out of gas, the kernel uses the last answer
// handed in.
package optimal

import (
	"math/bits"

	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// workBudget bounds the word operations and visits of all the flow
// searches of a call, so that a call stays well inside the default policy
// gas budget; one unit costs ≈30 gas in the VM. The speed market (10,000
// requests × 1,000 offers × 4 kinds, seed 1) needs ≈15M units and is
// solved exactly.
const workBudget = 60_000_000

// dualBudget bounds the candidate evaluations of the Lagrangian dual
// (one per request, candidate offer and kind per step).
const dualBudget = 60_000_000

// searchBudget bounds the work of the local search (search.go): holdings
// and candidates looked at.
const searchBudget = 20_000_000

// minSearchGain is the least gain of the local search, as a share of the
// best surplus so far, for which the divisible demand is solved again
// around the bundles it moved (which costs about as much as the first
// solution): below it the gain is not worth the gas. On the 10,000 ×
// 1,000 markets the search finds a few parts per million.
const minSearchGain = 1e-4

// dualSteps bounds the subgradient steps of the dual.
const dualSteps = 200

// sampledDualSteps bounds the subgradient steps of a sample's dual (see
// dual), so that optimal places the 10,000 × 1,000 replicas market within
// 1 Ggas: there 40 steps reach 98.3 % of the bound and 200 steps 98.9 %,
// for 4 × the dual's gas (≈ 0.4 Ggas more under cost table v6).
// Bundle-heavy markets lose more (BENCHMARKS.md: up to 3.5 % of the
// surplus at 10,000 × 1,000).
const sampledDualSteps = 40

// dualSlots is the number of candidate offers per request in the dual.
const dualSlots = 8

// Allocate returns the allocation of s that maximizes total surplus on
// divisible demand (exactly) after placing bundles, handing in greedy's
// answer first and a better one when found.
func Allocate(s *policy.Snapshot, handIn func([]policy.Allocation)) ([]policy.Allocation, error) {
	return allocate(s, defaultBudgets(), handIn), nil
}

// defaultBudgets are Allocate's budgets.
func defaultBudgets() budgets {
	return budgets{flow: workBudget, dual: dualBudget, search: searchBudget, steps: dualSteps,
		sampledSteps: sampledDualSteps, slots: dualSlots, sample: sampleSize}
}

// budgets bound the work of a call (see workBudget, dualBudget,
// searchBudget).
type budgets struct {
	flow, dual, search int64
	steps              int
	sampledSteps       int // steps of a sample's dual (see dual)
	slots              int // candidates per request in the dual
	sample             int // requests in the dual's sample (see dual)
}

// allocate is Allocate with explicit budgets.
func allocate(s *policy.Snapshot, bud budgets, handIn func([]policy.Allocation)) []policy.Allocation {
	xs, rp := expand(s)
	if rp == nil && s.HasReplicas() {
		// Too many copies: the replicas go after the other requests.
		as, _ := policy.WithReplicasAnytime(s, func(s *policy.Snapshot, handIn func([]policy.Allocation)) ([]policy.Allocation, error) {
			return allocate(s, bud, handIn), nil
		}, handIn)
		return as
	}
	if rp == nil {
		xs = s
	}
	var rs *policy.Snapshot
	var pos []int32
	var g *graph
	// greedy's answer, with the replicas placed after the other requests
	// as every policy built on the SDK does. With replicas it is found from
	// the copies' eligibility rows (greedyAnswer), which the dual needs
	// anyway: the graph is built first then.
	var best []policy.Allocation
	if rp != nil && bitsetWords(xs) <= maxGraphWords {
		rs, pos = byRegion(xs)
		g = newGraphSkip(rs, rp.siblings())
		rp.restrict(rs, g)
		best = greedyAnswer(s, rs, g, pos, rp)
	} else {
		best, _ = policy.WithReplicas(s, func(s *policy.Snapshot) ([]policy.Allocation, error) { return fill.Greedy(s), nil })
	}
	bestV := total(s, best)
	if handIn != nil {
		handIn(best)
	}
	if bitsetWords(xs) > maxGraphWords {
		return best // the bit sets would not fit in memory
	}
	if g == nil {
		rs, pos = byRegion(xs)
		g = newGraph(rs)
	}
	// offer maps the result's positions back to s's (offers and, for the
	// copies of replicated requests, requests) and keeps it if it beats the
	// best so far, handing it in. (Copies are placed where they fit, last
	// by placeLeftover: policy.PlaceReplicas would find no room for more.)
	offer := func(as []policy.Allocation) {
		for i := range as {
			as[i].Offer = uint32(pos[as[i].Offer])
		}
		rp.back(as)
		if v := total(s, as); v.cmp(bestV) > 0 {
			best, bestV = as, v
			if handIn != nil {
				handIn(best)
			}
		}
	}
	if !hasBundles(rs) {
		b := policy.NewBook(rs)
		f := newFlow(rs, g, pos, bud.flow)
		for k := range s.Kinds {
			f.run(b, k)
		}
		offer(b.Allocations())
		return best
	}
	l, sampled := dual(rs, g, bud, bestV.float())
	b := policy.NewBook(rs)
	placeBundles(rs, g, pos, b, l.z, rp)
	f := newFlow(rs, g, pos, bud.flow)
	for k := range s.Kinds {
		f.run(b, k)
	}
	placeLeftover(rs, g, pos, b, rp)
	as := b.Allocations()
	// The local search (search.go) starts from this allocation, in rs's
	// positions: offer remaps a copy.
	if sampled {
		// The search moves only bundles with candidates, the sample's: on
		// the 10,000 × 1,000 markets it gains 10⁻⁵–10⁻⁴ of the surplus,
		// mostly below minSearchGain (its answer then unused), for
		// ≈ 0.1–0.3 Ggas.
		offer(as)
		return best
	}
	offer(clone(as))
	x := newSearch(rs, l, pos, as, rp)
	x.run(bud.search)
	if x.gain > bestV.float()*minSearchGain {
		b := policy.NewBook(rs)
		x.bundles(b)
		f := newFlow(rs, g, pos, bud.flow)
		for k := range s.Kinds {
			f.run(b, k)
		}
		placeLeftover(rs, g, pos, b, rp)
		offer(b.Allocations())
	}
	return best
}

// clone copies an allocation list (the amounts and prices are arrays).
func clone(as []policy.Allocation) []policy.Allocation {
	return append([]policy.Allocation(nil), as...)
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

// sum is an exact non-negative total of products of two uint64 (192 bits:
// room for 2^64 terms).
type sum [3]uint64

func (x *sum) add(a, b uint64) {
	hi, lo := bits.Mul64(a, b)
	var c uint64
	x[0], c = bits.Add64(x[0], lo, 0)
	x[1], c = bits.Add64(x[1], hi, c)
	x[2] += c
}

func (x sum) cmp(y sum) int {
	for i := 2; i >= 0; i-- {
		switch {
		case x[i] < y[i]:
			return -1
		case x[i] > y[i]:
			return 1
		}
	}
	return 0
}

func (x sum) float() float64 {
	return float64(x[2])*0x1p128 + float64(x[1])*0x1p64 + float64(x[0])
}

// total is the exact surplus Σ amount × (max price − price paid) of as,
// whose prices never exceed the request's maximum.
func total(s *policy.Snapshot, as []policy.Allocation) sum {
	var v sum
	for i := range as {
		a := &as[i]
		r := &s.Requests[a.Request]
		for k := range s.Kinds {
			if a.Amount[k] > 0 {
				v.add(a.Amount[k], r.MaxPrice[k]-a.Price[k])
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

// dual prices capacity (lagrange.go): the solved dual, its prices in z and
// its candidates chosen at them, and whether it is a sample's. On a market
// of at least 2 × bud.sample requests it solves the dual of a sample of
// them (every n-th, facing 1/n of the capacity: see newLagrange) in at
// most bud.sampledSteps steps, whose prices approximate the whole
// market's at a fraction of the cost; the whole market otherwise. lb is a
// known allocation's surplus.
func dual(s *policy.Snapshot, g *graph, bud budgets, lb float64) (*lagrange, bool) {
	every := max(1, len(s.Requests)/max(1, bud.sample))
	steps := bud.steps
	if every > 1 {
		steps = min(steps, bud.sampledSteps)
	}
	l := newLagrange(s, g, bud.slots, bud.dual, every)
	// A sample's candidates are not used afterwards: there is no local
	// search after a sample's dual (allocate), only its prices place the
	// bundles.
	l.solve(steps, lb/float64(every), every == 1)
	return l, every > 1
}

// sampleSize is the size of the sample whose dual prices a large market.
// A sample of 1,500 prices the 10,000 × 1,000 replicas market as well as
// one of 3,000 (98.9 % of the bound after 200 steps, either way) for less
// than half the gas.
const sampleSize = 1500
