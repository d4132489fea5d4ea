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

// placeLeftover places the bundles still unserved where capacity is left
// after everything else, by best surplus descending (ties: lower
// position), each on the fitting eligible offer that gives the most
// surplus: the prices can leave out bundles that still fit somewhere.
func placeLeftover(s *policy.Snapshot, g *graph, pos []int32, b *policy.Book) {
	nk := len(s.Kinds)
	var order []int32
	var values []uint64
	for ri := range s.Requests {
		r := &s.Requests[ri]
		if !r.Bundle() || !unserved(b, r, ri, nk) {
			continue
		}
		if o, v := bestSurplus(s, g, pos, b, r, ri, nk); o >= 0 {
			order = append(order, int32(ri))
			values = append(values, orderKey(v))
		}
	}
	fill.SortDesc(order, values)
	for _, ri := range order {
		r := &s.Requests[ri]
		if o, _ := bestSurplus(s, g, pos, b, r, int(ri), nk); o >= 0 {
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

// bestSurplus returns the eligible offer with room for all of bundle r that
// gives the most surplus (ties: lower position), and the surplus; -1 if
// none has room.
func bestSurplus(s *policy.Snapshot, g *graph, pos []int32, b *policy.Book, r *policy.Request, ri, nk int) (int, float64) {
	best, bestV := -1, math.Inf(-1)
	row, lo, hi := g.span(ri)
	for i := lo; i < hi; i++ {
		for x := row[i]; x != 0; x &= x - 1 {
			o := i<<6 | bits.TrailingZeros64(x)
			v := bundleSurplus(r, &s.Offers[o], nk)
			if (best < 0 || v > bestV || v == bestV && pos[o] < pos[best]) && b.Fits(ri, o) {
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
