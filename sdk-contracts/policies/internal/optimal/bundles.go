package optimal

import (
	"math"
	"math/bits"

	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// bundleSurplus is Σ demand × (max price − ask) of bundle r on offer o, as
// a float64: it ranks candidates, where 53 bits of precision are plenty and
// values above 2^63 still compare (integers would saturate and tie).
func bundleSurplus(r *policy.Request, o *policy.Offer, nk int) float64 {
	var v float64
	for k := range nk {
		if d := r.Demand[k]; d > 0 {
			v += float64(float64(d) * (float64(r.MaxPrice[k]) - float64(o.Price[k])))
		}
	}
	return v
}

// floatAsks returns every offer's asks as floats (0 beyond the snapshot's
// kinds), for surplusAt.
func floatAsks(s *policy.Snapshot) []vec {
	asks := make([]vec, len(s.Offers))
	for o := range s.Offers {
		p := &s.Offers[o].Price
		asks[o] = vec{float64(p[0]), float64(p[1]), float64(p[2]), float64(p[3])}
	}
	return asks
}

// demandMax returns bundle r's demand and max prices as floats (0 on the
// kinds it does not demand, and beyond the snapshot's), for surplusAt.
func demandMax(r *policy.Request) (d, mx vec) {
	for k := range mk {
		if r.Demand[k] > 0 {
			d[k], mx[k] = float64(r.Demand[k]), float64(r.MaxPrice[k])
		}
	}
	return d, mx
}

// surplusAt is bundleSurplus from demandMax's d and mx and the offer's
// asks as floats, unrolled over the kinds: the same float, as a kind
// without demand adds a zero (d = 0, mx − ask finite) to a sum that starts
// at +0 and so never is −0.
func surplusAt(d, mx, ask *vec) float64 {
	var v float64
	v += float64(d[0] * (mx[0] - ask[0]))
	v += float64(d[1] * (mx[1] - ask[1]))
	v += float64(d[2] * (mx[2] - ask[2]))
	v += float64(d[3] * (mx[3] - ask[3]))
	return v
}

// placeBundles places the bundles worth more than the capacity they take at
// the prices z (their reduced value Σ demand × (max − ask − z) is positive
// on an eligible offer with room for all of them), by that value
// descending (ties: lower position), each on the eligible offer with room
// left where the value is highest (ties: lower position) that rp allows
// (replicas.go: copies of a replicated request on distinct providers).
func placeBundles(s *policy.Snapshot, g *graph, pos []int32, b *policy.Book, z []vec, rp *replicas) {
	// pz: ask + z per offer and kind, the sums every reduced value below
	// takes (the same floats as summed pair by pair).
	pz := make([]vec, len(s.Offers))
	for o := range s.Offers {
		p, zo := &s.Offers[o].Price, &z[o]
		pz[o] = vec{float64(p[0]) + zo[0], float64(p[1]) + zo[1], float64(p[2]) + zo[2], float64(p[3]) + zo[3]}
	}
	var order []int32
	var keys []uint64
	// first is each bundle's best offer now, in an empty book. Offers only
	// lose room and copies only gain siblings from here on, so when a
	// bundle's first offer still has room at its turn it is still its best
	// (same value, same ties), and its offers need no second scan.
	first := make([]int32, len(s.Requests))
	for ri := range s.Requests {
		if !s.Requests[ri].Bundle() || !rp.lead(ri) {
			continue
		}
		if o, w := bestReduced(s, g, pos, b, pz, ri, rp); o >= 0 {
			order = append(order, int32(ri))
			keys = append(keys, orderKey(w))
			first[ri] = int32(o)
		}
	}
	fill.SortDesc(order, keys)
	var cs []cand
	for _, ri := range order {
		r := &s.Requests[ri]
		if gi := rp.groupOf(int(ri)); gi >= 0 {
			// The copies of a replicated request, one after the other, from
			// one scan of its offers (they share the values).
			cs = reducedCands(s, g, pz, int(ri), cs[:0])
			for _, c := range rp.groups[gi] {
				if o := pick(s, pos, b, cs, int(c), rp); o >= 0 {
					rp.place(int(c), o)
					for k := range s.Kinds {
						b.Add(int(c), o, k, r.Demand[k], s.Offers[o].Price[k])
					}
				}
			}
			continue
		}
		o := int(first[ri])
		if !b.Fits(int(ri), o) {
			o, _ = bestReduced(s, g, pos, b, pz, int(ri), rp)
		}
		if o >= 0 {
			for k := range s.Kinds {
				b.Add(int(ri), o, k, r.Demand[k], s.Offers[o].Price[k])
			}
		}
	}
}

// reducedCands appends to cs the eligible offers of bundle ri where its
// reduced value at the prices pz (ask + z, per offer) is positive, with
// the values.
func reducedCands(s *policy.Snapshot, g *graph, pz []vec, ri int, cs []cand) []cand {
	r := &s.Requests[ri]
	var d, mx vec
	var dm float64
	for k := range s.Kinds {
		if r.Demand[k] > 0 {
			d[k], mx[k] = float64(r.Demand[k]), float64(r.MaxPrice[k])
			dm += float64(d[k] * mx[k])
		}
	}
	row, lo, hi := g.span(ri)
	for i := lo; i < hi; i++ {
		for x := row[i]; x != 0; x &= x - 1 {
			o := i<<6 | bits.TrailingZeros64(x)
			p := &pz[o]
			w := dm - float64(d[0]*p[0]) - float64(d[1]*p[1]) - float64(d[2]*p[2]) - float64(d[3]*p[3])
			if w > 0 {
				cs = append(cs, cand{w, int32(o)})
			}
		}
	}
	return cs
}

// pick returns the offer of cs of highest value (ties: lower position)
// that has room for all of bundle ri and that rp allows, -1 if none: what
// bestReduced or bestSurplus finds for ri when cs holds their values.
func pick(s *policy.Snapshot, pos []int32, b *policy.Book, cs []cand, ri int, rp *replicas) int {
	best, bw := -1, 0.0
	for _, c := range cs {
		o := int(c.o)
		if (best < 0 || c.score > bw || c.score == bw && pos[o] < pos[best]) && b.Fits(ri, o) && rp.allows(s, ri, o, nil) {
			best, bw = o, c.score
		}
	}
	return best
}

// bestReduced returns the eligible offer with room left for all of bundle
// ri where its reduced value at the prices pz (ask + z, per offer) is
// highest and positive (ties: lower position) that rp allows, and the
// value; -1 if there is none.
func bestReduced(s *policy.Snapshot, g *graph, pos []int32, b *policy.Book, pz []vec, ri int, rp *replicas) (int, float64) {
	r := &s.Requests[ri]
	var d, mx vec
	var dm float64
	for k := range s.Kinds {
		if r.Demand[k] > 0 {
			d[k], mx[k] = float64(r.Demand[k]), float64(r.MaxPrice[k])
			dm += float64(d[k] * mx[k])
		}
	}
	best, bw := -1, 0.0
	row, lo, hi := g.span(ri)
	for i := lo; i < hi; i++ {
		for x := row[i]; x != 0; x &= x - 1 {
			o := i<<6 | bits.TrailingZeros64(x)
			p := &pz[o]
			w := dm - float64(d[0]*p[0]) - float64(d[1]*p[1]) - float64(d[2]*p[2]) - float64(d[3]*p[3])
			if (w > bw || w == bw && best >= 0 && pos[o] < pos[best]) && b.Fits(ri, o) && rp.allows(s, ri, o, nil) {
				best, bw = o, w
			}
		}
	}
	return best, bw
}

// placeLeftover places the bundles still unserved where capacity is left
// after everything else, by best surplus descending (ties: lower
// position), each on the fitting eligible offer that gives the most
// surplus: the prices can leave out bundles that still fit somewhere.
// Copies of replicated requests go where rp allows.
func placeLeftover(s *policy.Snapshot, g *graph, pos []int32, b *policy.Book, rp *replicas) {
	nk := len(s.Kinds)
	asks := floatAsks(s)
	var order []int32
	var values []uint64
	first := make([]int32, len(s.Requests)) // as in placeBundles
	for ri := range s.Requests {
		r := &s.Requests[ri]
		if !r.Bundle() || !unserved(b, r, ri, nk) || !rp.firstUnplaced(ri) {
			continue
		}
		if o, v := bestSurplus(s, g, pos, b, asks, ri, rp); o >= 0 {
			order = append(order, int32(ri))
			values = append(values, orderKey(v))
			first[ri] = int32(o)
		}
	}
	fill.SortDesc(order, values)
	var cs []cand
	for _, ri := range order {
		r := &s.Requests[ri]
		if gi := rp.groupOf(int(ri)); gi >= 0 {
			// The unplaced copies of a replicated request, from one scan.
			cs = cs[:0]
			d, mx := demandMax(r)
			row, lo, hi := g.span(int(ri))
			for i := lo; i < hi; i++ {
				for x := row[i]; x != 0; x &= x - 1 {
					o := i<<6 | bits.TrailingZeros64(x)
					cs = append(cs, cand{surplusAt(&d, &mx, &asks[o]), int32(o)})
				}
			}
			for _, c := range rp.groups[gi] {
				if rp.on[c] >= 0 {
					continue
				}
				if o := pick(s, pos, b, cs, int(c), rp); o >= 0 {
					rp.place(int(c), o)
					for k := range nk {
						b.Add(int(c), o, k, r.Demand[k], s.Offers[o].Price[k])
					}
				}
			}
			continue
		}
		o := int(first[ri])
		if !b.Fits(int(ri), o) {
			o, _ = bestSurplus(s, g, pos, b, asks, int(ri), rp)
		}
		if o >= 0 {
			for k := range nk {
				b.Add(int(ri), o, k, r.Demand[k], s.Offers[o].Price[k])
			}
		}
	}
}

// unserved reports whether request r (position ri) has all its demand left.
func unserved(b *policy.Book, r *policy.Request, ri, nk int) bool {
	for k := range nk {
		if b.Need(ri, k) != r.Demand[k] {
			return false
		}
	}
	return true
}

// bestSurplus returns the eligible offer with room for all of bundle ri
// that gives the most surplus (bundleSurplus, from the offers' asks as
// floats; ties: lower position), and the surplus; -1 if none has room (or
// none rp allows).
func bestSurplus(s *policy.Snapshot, g *graph, pos []int32, b *policy.Book, asks []vec, ri int, rp *replicas) (int, float64) {
	best, bestV := -1, math.Inf(-1)
	d, mx := demandMax(&s.Requests[ri])
	row, lo, hi := g.span(ri)
	for i := lo; i < hi; i++ {
		for x := row[i]; x != 0; x &= x - 1 {
			o := i<<6 | bits.TrailingZeros64(x)
			v := surplusAt(&d, &mx, &asks[o])
			if (best < 0 || v > bestV || v == bestV && pos[o] < pos[best]) && b.Fits(ri, o) && rp.allows(s, ri, o, nil) {
				best, bestV = o, v
			}
		}
	}
	return best, bestV
}

// orderKey maps a float64 to a uint64 of the same order (for SortDesc).
func orderKey(f float64) uint64 {
	u := math.Float64bits(f)
	if u>>63 != 0 {
		return ^u
	}
	return u | 1<<63
}
