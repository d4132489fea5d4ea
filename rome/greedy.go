package rome

import (
	"math/bits"
	"slices"
)

// satAdd and satMul saturate at 2^64-1: they rank candidates, where an
// overflow only needs to compare as "very large".
func satAdd(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	if c != 0 {
		return ^uint64(0)
	}
	return s
}

func satMul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return ^uint64(0)
	}
	return lo
}

// FirstCome is one of the two built-in policies ("builtin:fcfs"): requests
// in snapshot order (id order, first come first served). A replicated
// request gets up to its Replicas whole replicas from the cheapest eligible
// offers that fit one (ties: the more reliable job runner, then the lowest
// index), each from a provider — and with Spread a region — it does not
// hold a replica with yet. A bundle goes whole to the eligible offer that
// fits it with the least capacity left over (best fit; ties: the cheapest,
// then the more reliable job runner, then the lowest index). A divisible
// request takes from the cheapest eligible offers first (ties: the more
// reliable job runner — the smaller share of timed-out and slashed jobs —
// then the lowest index). Prices are the offers' asks. It is deterministic
// and its output always passes Validate.
func FirstCome(s *Snapshot) []Allocation {
	nk := len(s.Kinds)
	rem := make([]uint64, len(s.Offers)*nk)
	for i, o := range s.Offers {
		copy(rem[i*nk:], o.Capacity)
	}
	// A request with a region can only use the offers of that region:
	// byRegion lists them, in index order.
	byRegion := map[uint32][]int{}
	for oi := range s.Offers {
		byRegion[s.Offers[oi].Region] = append(byRegion[s.Offers[oi].Region], oi)
	}
	all := make([]int, len(s.Offers))
	fail := make([]uint32, len(s.Offers)) // job failure share, basis points
	for i := range all {
		all[i] = i
		fail[i] = s.Offers[i].Jobs.FailureBps()
	}
	held := map[int][]Held{}
	for _, h := range s.Held {
		held[int(h.Request)] = append(held[int(h.Request)], h)
	}
	var out []Allocation
	cand := make([]int, 0, len(s.Offers))
	costs := make([]uint64, 0, len(s.Offers))
	for ri := range s.Requests {
		r := &s.Requests[ri]
		if !slices.ContainsFunc(r.Demand, func(d uint64) bool { return d > 0 }) {
			continue
		}
		scan := all
		if r.Region != 0 {
			scan = byRegion[r.Region]
		}
		// Candidates: eligible offers with room left on a kind r demands
		// (the others could give it nothing).
		cand = cand[:0]
		for _, oi := range scan {
			room := false
			for k := 0; k < nk && !room; k++ {
				room = r.Demand[k] > 0 && rem[oi*nk+k] > 0
			}
			if room && Eligible(r, &s.Offers[oi]) {
				cand = append(cand, oi)
			}
		}
		if len(cand) == 0 {
			continue
		}
		cost := func(oi int) uint64 {
			var c uint64
			for k := 0; k < nk; k++ {
				c = satAdd(c, satMul(s.Offers[oi].Price[k], r.Demand[k]))
			}
			return c
		}
		if r.Replicas > 0 {
			out = greedyReplicas(s, ri, cand, cost, fail, rem, held[ri], out)
			continue
		}
		if r.Bundle {
			best, bestWaste, bestCost := -1, ^uint64(0), ^uint64(0)
			for _, oi := range cand {
				fits, waste := true, uint64(0)
				for k := 0; k < nk; k++ {
					if r.Demand[k] == 0 {
						continue
					}
					if rem[oi*nk+k] < r.Demand[k] {
						fits = false
						break
					}
					waste = satAdd(waste, rem[oi*nk+k]-r.Demand[k])
				}
				if !fits {
					continue
				}
				c := cost(oi)
				if waste < bestWaste || waste == bestWaste && (c < bestCost || c == bestCost && best >= 0 && fail[oi] < fail[best]) {
					best, bestWaste, bestCost = oi, waste, c
				}
			}
			if best < 0 {
				continue
			}
			a := Allocation{Request: uint32(ri), Offer: uint32(best), Amount: make([]uint64, nk), Price: make([]uint64, nk)}
			for k := 0; k < nk; k++ {
				if r.Demand[k] > 0 {
					a.Amount[k], a.Price[k] = r.Demand[k], s.Offers[best].Price[k]
					rem[best*nk+k] -= r.Demand[k]
				}
			}
			out = append(out, a)
			continue
		}
		// Take from the candidates by (cost, index) ascending until the
		// demand is met: a selection, as a request rarely needs more than
		// a few offers.
		costs = costs[:0]
		for _, oi := range cand {
			costs = append(costs, cost(oi))
		}
		need := append([]uint64(nil), r.Demand...)
		for left := true; left; {
			j := -1
			for i, oi := range cand {
				// cand is in index order: full ties keep the lower index.
				if oi >= 0 && (j < 0 || costs[i] < costs[j] || costs[i] == costs[j] && fail[oi] < fail[cand[j]]) {
					j = i
				}
			}
			if j < 0 {
				break
			}
			oi := cand[j]
			cand[j] = -1
			a := Allocation{Request: uint32(ri), Offer: uint32(oi), Amount: make([]uint64, nk), Price: make([]uint64, nk)}
			any := false
			left = false
			for k := 0; k < nk; k++ {
				take := min(need[k], rem[oi*nk+k])
				if take > 0 {
					a.Amount[k], a.Price[k] = take, s.Offers[oi].Price[k]
					need[k] -= take
					rem[oi*nk+k] -= take
					any = true
				}
				if need[k] > 0 {
					left = true
				}
			}
			if any {
				out = append(out, a)
			}
		}
	}
	return out
}

// greedyReplicas places the replicas of request ri on candidates cand.
func greedyReplicas(s *Snapshot, ri int, cand []int, cost func(int) uint64, fail []uint32, rem []uint64, held []Held, out []Allocation) []Allocation {
	nk := len(s.Kinds)
	r := &s.Requests[ri]
	provs := map[uint32]bool{}
	regions := map[uint32]bool{}
	for _, h := range held {
		provs[h.Provider], regions[h.Region] = true, true
	}
	costs := make([]uint64, len(cand))
	for i, oi := range cand {
		costs[i] = cost(oi)
	}
	for placed := 0; placed < int(r.Replicas); placed++ {
		j := -1
		for i, oi := range cand {
			if oi < 0 {
				continue
			}
			o := &s.Offers[oi]
			fits := !provs[o.Provider] && !(r.Spread && regions[o.Region])
			for k := 0; k < nk && fits; k++ {
				fits = rem[oi*nk+k] >= r.Demand[k]
			}
			if !fits {
				cand[i] = -1
				continue
			}
			if j < 0 || costs[i] < costs[j] || costs[i] == costs[j] && fail[oi] < fail[cand[j]] {
				j = i
			}
		}
		if j < 0 {
			break
		}
		oi := cand[j]
		cand[j] = -1
		o := &s.Offers[oi]
		provs[o.Provider], regions[o.Region] = true, true
		a := Allocation{Request: uint32(ri), Offer: uint32(oi), Amount: make([]uint64, nk), Price: make([]uint64, nk)}
		for k := 0; k < nk; k++ {
			if r.Demand[k] > 0 {
				a.Amount[k], a.Price[k] = r.Demand[k], o.Price[k]
				rem[oi*nk+k] -= r.Demand[k]
			}
		}
		out = append(out, a)
	}
	return out
}

// Greedy is the other built-in policy ("builtin:greedy"): the algorithm of
// the shipped greedy.wasm policy (sdk-contracts/policies/internal/fill),
// ported to the kernel's types so that the fallback needs no policy in
// state and no VM; TestGreedyMatchesShippedPolicy holds the two to the
// same output, allocation for allocation. Bundles go first, by total bid
// (Σ demand × max price, saturating) descending (ties: lower index), each
// whole on the eligible offer with room for all of it that costs least
// (Σ demand × ask; ties: the tighter fit, then the order below); then,
// kind by kind, divisible requests by max price on the kind descending
// (ties: lower index), each from the cheapest eligible offers with
// capacity left, split across offers when one is not enough. Offers are
// taken by (ask on the kind, job failure share, index). Prices are the
// asks; one allocation per (request, offer) pair, in order of first use.
func Greedy(s *Snapshot) []Allocation {
	g := newGreedyIndex(s)
	for _, ri := range byBid(s, func(r *SnapRequest) bool { return r.Bundle && r.Replicas == 0 }, func(r *SnapRequest) uint64 {
		var v uint64
		for k := range r.Demand {
			v = satAdd(v, satMul(r.Demand[k], r.MaxPrice[k]))
		}
		return v
	}) {
		g.bundle(ri)
	}
	for k := range s.Kinds {
		for _, ri := range byBid(s, func(r *SnapRequest) bool { return !r.Bundle && r.Replicas == 0 && r.Demand[k] > 0 }, func(r *SnapRequest) uint64 { return r.MaxPrice[k] }) {
			g.divisible(ri, k)
		}
	}
	return g.replicas()
}

// replicas places the replicas of the replicated requests on the capacity
// the others left, in request order, as FirstCome does (greedyReplicas)
// and as the guest SDK does for every shipped policy (policy.PlaceReplicas).
func (g *greedyIndex) replicas() []Allocation {
	s, nk := g.s, g.nk
	fail := make([]uint32, len(s.Offers))
	for i := range s.Offers {
		fail[i] = s.Offers[i].Jobs.FailureBps()
	}
	var held map[int][]Held
	for _, h := range s.Held {
		if held == nil {
			held = map[int][]Held{}
		}
		held[int(h.Request)] = append(held[int(h.Request)], h)
	}
	out := g.out
	for ri := range s.Requests {
		r := &s.Requests[ri]
		if r.Replicas == 0 {
			continue
		}
		var cand []int
		for oi := range s.Offers {
			o := &s.Offers[oi]
			if r.Region != 0 && o.Region != r.Region {
				continue
			}
			room := false
			for k := 0; k < nk && !room; k++ {
				room = r.Demand[k] > 0 && g.spare[oi*nk+k] > 0
			}
			if room && Eligible(r, o) {
				cand = append(cand, oi)
			}
		}
		cost := func(oi int) uint64 {
			var c uint64
			for k := 0; k < nk; k++ {
				c = satAdd(c, satMul(s.Offers[oi].Price[k], r.Demand[k]))
			}
			return c
		}
		out = greedyReplicas(s, ri, cand, cost, fail, g.spare, held[ri], out)
	}
	return out
}

// byBid returns the indexes of the requests keep selects, by bid
// descending, ties by index.
func byBid(s *Snapshot, keep func(*SnapRequest) bool, bid func(*SnapRequest) uint64) []int32 {
	var out []int32
	var keys []uint64
	for i := range s.Requests {
		if r := &s.Requests[i]; keep(r) {
			out = append(out, int32(i))
			keys = append(keys, bid(r))
		}
	}
	idx := make([]int, len(out))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if keys[a] != keys[b] {
			if keys[a] > keys[b] {
				return -1
			}
			return 1
		}
		return int(out[a]) - int(out[b])
	})
	sorted := make([]int32, len(out))
	for i, j := range idx {
		sorted[i] = out[j]
	}
	return sorted
}

// greedyIndex is Greedy's state: per kind the offers by (ask, job failure
// share, index), globally and grouped by region (stable), with union-find
// links that skip offers with nothing left on the kind; what is left of
// every offer and request; and the allocations, merged per pair.
type greedyIndex struct {
	s            *Snapshot
	nk           int
	global, reg  [][]int32 // per kind
	skipG, skipR [][]int32 // per kind: next possibly non-empty position
	posG, posR   [][]int32 // per kind: offer -> position
	regions      []uint32  // distinct offer regions, ascending
	start        []int32   // region i spans reg[k][start[i]:start[i+1]]
	spare, need  []uint64
	pair         map[uint64]int // request<<32|offer -> index in out
	out          []Allocation
}

func newGreedyIndex(s *Snapshot) *greedyIndex {
	nk, no := len(s.Kinds), len(s.Offers)
	g := &greedyIndex{s: s, nk: nk, spare: make([]uint64, no*nk), need: make([]uint64, len(s.Requests)*nk), pair: map[uint64]int{}}
	fail := make([]uint32, no)
	for i := range s.Offers {
		fail[i] = s.Offers[i].Jobs.FailureBps()
		copy(g.spare[i*nk:], s.Offers[i].Capacity)
	}
	for i := range s.Requests {
		copy(g.need[i*nk:], s.Requests[i].Demand)
	}
	for k := range nk {
		gl := make([]int32, no)
		for i := range gl {
			gl[i] = int32(i)
		}
		slices.SortFunc(gl, func(a, b int32) int {
			pa, pb := s.Offers[a].Price[k], s.Offers[b].Price[k]
			switch {
			case pa != pb:
				if pa < pb {
					return -1
				}
				return 1
			case fail[a] != fail[b]:
				if fail[a] < fail[b] {
					return -1
				}
				return 1
			}
			return int(a - b)
		})
		rg := slices.Clone(gl)
		slices.SortStableFunc(rg, func(a, b int32) int {
			ra, rb := s.Offers[a].Region, s.Offers[b].Region
			switch {
			case ra < rb:
				return -1
			case ra > rb:
				return 1
			}
			return 0
		})
		sg, sr, pg, pr := make([]int32, no+1), make([]int32, no+1), make([]int32, no), make([]int32, no)
		for i := range no + 1 {
			sg[i], sr[i] = int32(i), int32(i)
		}
		for i := range no {
			pg[gl[i]], pr[rg[i]] = int32(i), int32(i)
		}
		g.global, g.reg = append(g.global, gl), append(g.reg, rg)
		g.skipG, g.skipR, g.posG, g.posR = append(g.skipG, sg), append(g.skipR, sr), append(g.posG, pg), append(g.posR, pr)
		if k == 0 {
			for i, o := range rg {
				if i == 0 || s.Offers[o].Region != s.Offers[rg[i-1]].Region {
					g.regions = append(g.regions, s.Offers[o].Region)
					g.start = append(g.start, int32(i))
				}
			}
			g.start = append(g.start, int32(no))
		}
		for o := range no {
			if s.Offers[o].Capacity[k] == 0 {
				g.empty(o, k)
			}
		}
	}
	return g
}

// empty records that offer o has nothing left on kind index k.
func (g *greedyIndex) empty(o, k int) {
	p := g.posG[k][o]
	g.skipG[k][p] = p + 1
	p = g.posR[k][o]
	g.skipR[k][p] = p + 1
}

func skipTo(skip []int32, i int32) int32 {
	for skip[i] != i {
		skip[i] = skip[skip[i]]
		i = skip[i]
	}
	return i
}

// span returns the offers a request may use, sorted for kind index k, with
// their skip links: its region's, or all when it names none.
func (g *greedyIndex) span(r *SnapRequest, k int) (list, skip []int32, lo, hi int32) {
	if r.Region == 0 {
		return g.global[k], g.skipG[k], 0, int32(len(g.global[k]))
	}
	i, ok := slices.BinarySearch(g.regions, r.Region)
	if !ok {
		return nil, []int32{0}, 0, 0
	}
	return g.reg[k], g.skipR[k], g.start[i], g.start[i+1]
}

// add gives amount of kind index k of offer o to request r at the ask.
func (g *greedyIndex) add(r, o, k int, amount uint64) {
	if amount == 0 {
		return
	}
	g.spare[o*g.nk+k] -= amount
	g.need[r*g.nk+k] -= amount
	key := uint64(r)<<32 | uint64(o)
	i, ok := g.pair[key]
	if !ok {
		i = len(g.out)
		g.pair[key] = i
		g.out = append(g.out, Allocation{Request: uint32(r), Offer: uint32(o), Amount: make([]uint64, g.nk), Price: make([]uint64, g.nk)})
	}
	g.out[i].Amount[k] += amount
	g.out[i].Price[k] = g.s.Offers[o].Price[k]
	if g.spare[o*g.nk+k] == 0 {
		g.empty(o, k)
	}
}

// bundle places bundle ri whole on the eligible offer with room for all of
// it that costs least (ties: the tighter fit, then the first in the scan
// by price on its largest kind).
func (g *greedyIndex) bundle(ri int32) {
	s, nk := g.s, g.nk
	r := &s.Requests[ri]
	main := -1
	for k := range nk {
		if r.Demand[k] > 0 && (main < 0 || r.Demand[k] > r.Demand[main]) {
			main = k
		}
	}
	if main < 0 {
		return
	}
	best, bestCost, bestSlack := -1, ^uint64(0), ^uint64(0)
	list, skip, i, hi := g.span(r, main)
	for i = skipTo(skip, i); i < hi; i = skipTo(skip, i+1) {
		oi := int(list[i])
		o := &s.Offers[oi]
		if o.Price[main] > r.MaxPrice[main] || satMul(r.Demand[main], o.Price[main]) > bestCost {
			break
		}
		fits := true
		for k := range nk {
			fits = fits && r.Demand[k] <= g.spare[oi*nk+k]
		}
		if !fits || !Eligible(r, o) {
			continue
		}
		var cost, slack uint64
		for k := range nk {
			if r.Demand[k] > 0 {
				cost = satAdd(cost, satMul(r.Demand[k], o.Price[k]))
				slack = satAdd(slack, g.spare[oi*nk+k]-r.Demand[k])
			}
		}
		if cost < bestCost || cost == bestCost && slack < bestSlack {
			best, bestCost, bestSlack = oi, cost, slack
		}
	}
	if best < 0 {
		return
	}
	for k := range nk {
		g.add(int(ri), best, k, r.Demand[k])
	}
}

// divisible serves kind index k of request ri from the cheapest eligible
// offers with capacity left.
func (g *greedyIndex) divisible(ri int32, k int) {
	s := g.s
	r := &s.Requests[ri]
	need := g.need[int(ri)*g.nk+k]
	list, skip, i, hi := g.span(r, k)
	for i = skipTo(skip, i); i < hi && need > 0; i = skipTo(skip, i+1) {
		oi := int(list[i])
		o := &s.Offers[oi]
		if o.Price[k] > r.MaxPrice[k] {
			break
		}
		if !Eligible(r, o) {
			continue
		}
		amt := min(need, g.spare[oi*g.nk+k])
		g.add(int(ri), oi, k, amt)
		need -= amt
	}
}
