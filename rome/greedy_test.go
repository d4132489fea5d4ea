package rome

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// TestFirstComeMatchesReference checks FirstCome against a plain implementation
// of its rules (every offer scanned, candidates sorted by cost then index)
// on random markets: the built-in policy's output is consensus, so an
// optimization must not change a single allocation or their order.
func TestFirstComeMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for i := range 300 {
		s := randomSnapshot(rng, rng.IntN(25), rng.IntN(40))
		if got, want := FirstCome(s), firstComeReference(s); !reflect.DeepEqual(got, want) {
			t.Fatalf("market %d: FirstCome differs from the reference:\n got %+v\nwant %+v", i, got, want)
		}
	}
}

func firstComeReference(s *Snapshot) []Allocation {
	nk := len(s.Kinds)
	rem := make([]uint64, len(s.Offers)*nk)
	for i, o := range s.Offers {
		copy(rem[i*nk:], o.Capacity)
	}
	var out []Allocation
	for ri := range s.Requests {
		r := &s.Requests[ri]
		if !slices.ContainsFunc(r.Demand, func(d uint64) bool { return d > 0 }) {
			continue
		}
		var cand []int
		for oi := range s.Offers {
			if Eligible(r, &s.Offers[oi]) {
				cand = append(cand, oi)
			}
		}
		cost := func(oi int) uint64 {
			var c uint64
			for k := range nk {
				c = satAdd(c, satMul(s.Offers[oi].Price[k], r.Demand[k]))
			}
			return c
		}
		if r.Bundle {
			best, bestWaste, bestCost := -1, ^uint64(0), ^uint64(0)
			for _, oi := range cand {
				fits, waste := true, uint64(0)
				for k := range nk {
					if r.Demand[k] == 0 {
						continue
					}
					if rem[oi*nk+k] < r.Demand[k] {
						fits = false
						break
					}
					waste = satAdd(waste, rem[oi*nk+k]-r.Demand[k])
				}
				if c := cost(oi); fits && (waste < bestWaste || waste == bestWaste && (c < bestCost || c == bestCost && best >= 0 && s.Offers[oi].Jobs.FailureBps() < s.Offers[best].Jobs.FailureBps())) {
					best, bestWaste, bestCost = oi, waste, c
				}
			}
			if best < 0 {
				continue
			}
			a := Allocation{Request: uint32(ri), Offer: uint32(best), Amount: make([]uint64, nk), Price: make([]uint64, nk)}
			for k := range nk {
				if r.Demand[k] > 0 {
					a.Amount[k], a.Price[k] = r.Demand[k], s.Offers[best].Price[k]
					rem[best*nk+k] -= r.Demand[k]
				}
			}
			out = append(out, a)
			continue
		}
		slices.SortStableFunc(cand, func(a, b int) int {
			if ca, cb := cost(a), cost(b); ca != cb {
				if ca < cb {
					return -1
				}
				return 1
			}
			if fa, fb := s.Offers[a].Jobs.FailureBps(), s.Offers[b].Jobs.FailureBps(); fa != fb {
				return int(fa) - int(fb)
			}
			return a - b
		})
		if r.Replicas > 0 {
			provs, regions := map[uint32]bool{}, map[uint32]bool{}
			for _, h := range s.Held {
				if int(h.Request) == ri {
					provs[h.Provider], regions[h.Region] = true, true
				}
			}
			placed := 0
			for _, oi := range cand {
				o := &s.Offers[oi]
				fits := placed < int(r.Replicas) && !provs[o.Provider] && !(r.Spread && regions[o.Region])
				room := false
				for k := range nk {
					fits = fits && rem[oi*nk+k] >= r.Demand[k]
					room = room || r.Demand[k] > 0 && rem[oi*nk+k] > 0
				}
				if !fits || !room {
					continue
				}
				provs[o.Provider], regions[o.Region] = true, true
				a := Allocation{Request: uint32(ri), Offer: uint32(oi), Amount: make([]uint64, nk), Price: make([]uint64, nk)}
				for k := range nk {
					if r.Demand[k] > 0 {
						a.Amount[k], a.Price[k] = r.Demand[k], o.Price[k]
						rem[oi*nk+k] -= r.Demand[k]
					}
				}
				out = append(out, a)
				placed++
			}
			continue
		}
		need := slices.Clone(r.Demand)
		for _, oi := range cand {
			a := Allocation{Request: uint32(ri), Offer: uint32(oi), Amount: make([]uint64, nk), Price: make([]uint64, nk)}
			any, left := false, false
			for k := range nk {
				if take := min(need[k], rem[oi*nk+k]); take > 0 {
					a.Amount[k], a.Price[k] = take, s.Offers[oi].Price[k]
					need[k] -= take
					rem[oi*nk+k] -= take
					any = true
				}
				left = left || need[k] > 0
			}
			if any {
				out = append(out, a)
			}
			if !left {
				break
			}
		}
	}
	return out
}
