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

// Greedy is the built-in fallback policy: requests in snapshot order (id
// order, first come first served). A replicated request gets up to its
// Replicas whole replicas from the cheapest eligible offers that fit one
// (ties: the more reliable job runner, then the lowest index), each from a
// provider — and with Spread a region — it does not hold a replica with
// yet. A bundle goes whole to the eligible
// offer that fits it with the least capacity left over (best fit; ties: the
// cheapest, then the more reliable job runner, then the lowest index). A
// divisible request takes from the cheapest eligible offers first (ties:
// the more reliable job runner — the smaller share of timed-out and slashed
// jobs — then the lowest index). Prices are the offers' asks. It is
// deterministic and its output always passes Validate.
func Greedy(s *Snapshot) []Allocation {
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
