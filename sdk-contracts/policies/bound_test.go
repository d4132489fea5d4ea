package policies_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/sos-kernel/sos/rome/marketgen"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// lagrangeBound returns an upper bound on the optimum of the LP
// relaxation that writeMIP writes (replica caps included), for markets
// where CBC takes too long (10,000 × 1,000): by weak duality, for any
// prices z ≥ 0 per offer and kind,
//
//	L(z) = Σ capacity·z + Σ_requests (the request's best value at z)
//
// bounds the LP from above, where a divisible request takes, per kind, the
// eligible offer of highest max − ask − z; a bundle the fitting offer of
// highest Σ demand·(max − ask − z); a replicated request up to k offers of
// distinct providers (the best offer of each provider, the k best
// positive); with spread, the smaller of that and the same with distinct
// regions instead (each of the two relaxes one rule, so both are at least
// the request's best). z is improved by subgradient steps (Polyak's step towards lb,
// a known allocation's surplus, scaled down when L stops improving); the
// least L seen is returned. It shares no
// code with the policies.
func lagrangeBound(s *policy.Snapshot, lb float64, steps int) float64 {
	nk, no := len(s.Kinds), len(s.Offers)
	type req struct {
		r      *policy.Request
		offers []int32
		kind   int // 0 divisible, 1 bundle, 2 replicated
	}
	held := map[[2]uint32]bool{}
	for _, h := range s.Held {
		held[[2]uint32{h.Request, h.Provider}] = true
	}
	var reqs []req
	for ri := range s.Requests {
		r := &s.Requests[ri]
		q := req{r: r}
		switch {
		case r.Replicas > 0:
			q.kind = 2
		case r.Bundle():
			q.kind = 1
		}
		for oi := range s.Offers {
			o := &s.Offers[oi]
			if !eligible(s, *o, *r) {
				continue
			}
			if q.kind > 0 {
				fits := true
				for k := range nk {
					fits = fits && r.Demand[k] <= o.Capacity[k]
				}
				if !fits {
					continue
				}
			}
			if q.kind == 2 && (o.Flags&policy.FlagRunsJobs == 0 || held[[2]uint32{uint32(ri), o.Provider}] || r.Spread() && o.Region == 0) {
				continue
			}
			q.offers = append(q.offers, int32(oi))
		}
		if len(q.offers) > 0 {
			reqs = append(reqs, q)
		}
	}
	z := make([]float64, no*nk)
	use := make([]float64, no*nk)
	best := math.Inf(1)
	lambda, stall := 1.0, 0
	type pv struct {
		p uint32
		v float64
		o int32
	}
	var byProv, byRegion []pv
	for step := 0; step < steps; step++ {
		clear(use)
		var l float64
		for oi := range s.Offers {
			for k := range nk {
				l += float64(s.Offers[oi].Capacity[k]) * z[oi*nk+k]
			}
		}
		value := func(r *policy.Request, o int32) float64 {
			var v float64
			for k := range nk {
				if d := r.Demand[k]; d > 0 {
					v += float64(d) * (float64(r.MaxPrice[k]) - float64(s.Offers[o].Price[k]) - z[int(o)*nk+k])
				}
			}
			return v
		}
		take := func(r *policy.Request, o int32) {
			for k := range nk {
				use[int(o)*nk+k] += float64(r.Demand[k])
			}
		}
		for _, q := range reqs {
			r := q.r
			switch q.kind {
			case 0:
				for k := range nk {
					if r.Demand[k] == 0 {
						continue
					}
					bo, bv := int32(-1), 0.0
					for _, o := range q.offers {
						if s.Offers[o].Capacity[k] == 0 {
							continue
						}
						if v := float64(r.MaxPrice[k]) - float64(s.Offers[o].Price[k]) - z[int(o)*nk+k]; v > bv {
							bo, bv = o, v
						}
					}
					if bo >= 0 {
						l += float64(r.Demand[k]) * bv
						use[int(bo)*nk+k] += float64(r.Demand[k])
					}
				}
			case 1:
				bo, bv := int32(-1), 0.0
				for _, o := range q.offers {
					if v := value(r, o); v > bv {
						bo, bv = o, v
					}
				}
				if bo >= 0 {
					l += bv
					take(r, bo)
				}
			case 2:
				byProv = byProv[:0]
				for _, o := range q.offers {
					if v := value(r, o); v > 0 {
						byProv = append(byProv, pv{s.Offers[o].Provider, v, o})
					}
				}
				// The best offer per provider, then the k best providers.
				slices.SortFunc(byProv, func(a, b pv) int {
					if a.p != b.p {
						return int(a.p) - int(b.p)
					}
					return -cmpFloat(a.v, b.v)
				})
				tops := byProv[:0]
				for i, x := range byProv {
					if i == 0 || x.p != byProv[i-1].p {
						tops = append(tops, x)
					}
				}
				slices.SortFunc(tops, func(a, b pv) int { return -cmpFloat(a.v, b.v) })
				n := min(len(tops), int(r.Replicas))
				var sum float64
				for _, x := range tops[:n] {
					sum += x.v
				}
				if r.Spread() {
					// Also with distinct regions and the providers relaxed:
					// the subproblem's value is at most the smaller sum.
					byRegion = byRegion[:0]
					for _, o := range q.offers {
						if v := value(r, o); v > 0 {
							byRegion = append(byRegion, pv{s.Offers[o].Region, v, o})
						}
					}
					slices.SortFunc(byRegion, func(a, b pv) int {
						if a.p != b.p {
							return int(a.p) - int(b.p)
						}
						return -cmpFloat(a.v, b.v)
					})
					rtops := byRegion[:0]
					for i, x := range byRegion {
						if i == 0 || x.p != byRegion[i-1].p {
							rtops = append(rtops, x)
						}
					}
					slices.SortFunc(rtops, func(a, b pv) int { return -cmpFloat(a.v, b.v) })
					rn := min(len(rtops), int(r.Replicas))
					var rsum float64
					for _, x := range rtops[:rn] {
						rsum += x.v
					}
					if rsum < sum {
						tops, n, sum = rtops, rn, rsum
					}
				}
				l += sum
				for _, x := range tops[:n] {
					take(r, x.o)
				}
			}
		}
		if l < best {
			best, stall = l, 0
		} else if stall++; stall == 10 {
			lambda, stall = lambda/2, 0
		}
		// Polyak step towards lb on the subgradient capacity − use, scaled
		// by lambda (halved after 10 steps without a better bound).
		var norm float64
		for oi := range s.Offers {
			for k := range nk {
				g := float64(s.Offers[oi].Capacity[k]) - use[oi*nk+k]
				if z[oi*nk+k] > 0 || g < 0 {
					norm += g * g
				}
			}
		}
		if norm == 0 || l <= lb {
			break
		}
		t := lambda * (l - lb) / norm
		for oi := range s.Offers {
			for k := range nk {
				g := float64(s.Offers[oi].Capacity[k]) - use[oi*nk+k]
				z[oi*nk+k] = max(0, z[oi*nk+k]-t*g)
			}
		}
	}
	return best
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// TestLagrangeBound: lagrangeBound is an upper bound on the LP relaxation
// (with the replica caps) that CBC solves, on small markets of the
// replicas family, and so above every policy's surplus; it comes within a
// few percent of the LP with enough steps.
func TestLagrangeBound(t *testing.T) {
	for seed := range uint64(3) {
		cfg, _ := marketgen.FamilyConfig("replicas", 200, 20, seed+1)
		s, _, err := marketgen.Generate(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var lb float64
		for _, name := range policyNames {
			as, err := native[name](s)
			if err != nil {
				t.Fatal(err)
			}
			lb = max(lb, float64(measure(s, as).surplus))
		}
		b := lagrangeBound(s, lb, 300)
		if b < lb {
			t.Fatalf("seed %d: bound %.1f below a policy's surplus %.0f", seed, b, lb)
		}
		lp, err := solveCBC(context.Background(), s, true, time.Minute)
		switch {
		case errors.Is(err, errNoSolver):
			t.Logf("seed %d: bound %.1f, best surplus %.0f (cbc not installed)", seed, b, lb)
			continue
		case err != nil:
			t.Fatal(err)
		}
		if b < lp.Objective-1e-6*lp.Objective || b > 1.05*lp.Objective {
			t.Errorf("seed %d: bound %.1f, CBC's LP optimum %.1f: want at least it, within 5%%", seed, b, lp.Objective)
		}
		t.Logf("seed %d: bound %.1f, LP %.1f, best surplus %.0f", seed, b, lp.Objective, lb)
	}
}
