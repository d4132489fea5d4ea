package optimal

import (
	"math/bits"

	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// duals solves the LP relaxation (every request divisible) on a scratch
// book and returns, per offer and kind index, the price at which the
// offer's capacity clears: its potential, and at least its ask. A kind the
// offer does not supply gets no price (ok false).
func (f *flow) duals() []dual {
	s := f.s
	nk := len(s.Kinds)
	f.runs += nk
	b := policy.NewBook(s)
	d := make([]dual, len(s.Offers))
	for k := range nk {
		f.run(b, k, true)
		for o := range f.st {
			if st := f.st[o]; st.ask >= 0 {
				d[o].price[k] = f.asks[max(st.level, st.ask)]
				d[o].ok |= 1 << k
			}
		}
	}
	return d
}

// dual is an offer's clearing price per kind index; bit k of ok is set when
// the offer supplies kind index k.
type dual struct {
	price [policy.MaxKinds]uint64
	ok    uint8
}

// value is what serving bundle r from an offer with dual prices d is worth
// beyond the capacity's value in the relaxation: Σ demand × (max price −
// dual price), saturating. ok is false when the offer lacks a kind r needs.
func (d *dual) value(r *policy.Request, nk int) (v int64, ok bool) {
	for k := range nk {
		if r.Demand[k] == 0 {
			continue
		}
		if d.ok&(1<<k) == 0 {
			return 0, false
		}
		v = addSat(v, mulSat(r.Demand[k], r.MaxPrice[k], d.price[k]))
	}
	return v, true
}

// mulSat returns a × (p − q) clamped to ±2^62.
func mulSat(a, p, q uint64) int64 {
	neg := p < q
	diff := p - q
	if neg {
		diff = q - p
	}
	hi, lo := bits.Mul64(a, diff)
	v := int64(1) << 62
	if hi == 0 && lo < 1<<62 {
		v = int64(lo)
	}
	if neg {
		return -v
	}
	return v
}

// addSat returns a + b for a, b in ±2^62, clamped to ±2^62.
func addSat(a, b int64) int64 { return max(-1<<62, min(1<<62, a+b)) }

// placeBundles places the bundles whose best value under the relaxation's
// dual prices is not negative, by that value descending (ties: lower
// position), each on the eligible offer with room for all of it that values
// it most (ties: lower position). Trades pay the offer's price.
func placeBundles(s *policy.Snapshot, g *graph, pos []int32, b *policy.Book, d []dual) {
	nk := len(s.Kinds)
	var order []int32
	var values []uint64
	for ri := range s.Requests {
		r := &s.Requests[ri]
		if !r.Bundle() {
			continue
		}
		if o, v := bestOffer(g, pos, b, d, r, ri, nk); o >= 0 && v >= 0 {
			order = append(order, int32(ri))
			values = append(values, uint64(v))
		}
	}
	fill.SortDesc(order, values)
	for _, ri := range order {
		r := &s.Requests[ri]
		o, v := bestOffer(g, pos, b, d, r, int(ri), nk)
		if o < 0 || v < 0 {
			continue
		}
		for k := range nk {
			b.Add(int(ri), o, k, r.Demand[k], s.Offers[o].Price[k])
		}
	}
}

// bestOffer returns the eligible offer with room for all of bundle r that
// values it most (ties: lower position), and the value; -1 if none has
// room.
func bestOffer(g *graph, pos []int32, b *policy.Book, d []dual, r *policy.Request, ri, nk int) (int, int64) {
	best, bestV := -1, int64(0)
	row, lo, hi := g.span(ri)
	for i := lo; i < hi; i++ {
		for x := row[i]; x != 0; x &= x - 1 {
			o := i<<6 | bits.TrailingZeros64(x)
			v, ok := d[o].value(r, nk)
			if ok && (best < 0 || v > bestV || v == bestV && pos[o] < pos[best]) && b.Fits(ri, o) {
				best, bestV = o, v
			}
		}
	}
	return best, bestV
}

// placeLeftover places the bundles still unserved where capacity is left
// after everything else, by best surplus descending (ties: lower
// position), each on the fitting eligible offer that gives the most
// surplus: the dual prices can leave out bundles that still fit somewhere.
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
			values = append(values, uint64(v))
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
// gives the most surplus (Σ demand × (max price − ask), saturating; ties:
// lower position), and the surplus; -1 if none has room.
func bestSurplus(s *policy.Snapshot, g *graph, pos []int32, b *policy.Book, r *policy.Request, ri, nk int) (int, int64) {
	best, bestV := -1, int64(0)
	row, lo, hi := g.span(ri)
	for i := lo; i < hi; i++ {
		for x := row[i]; x != 0; x &= x - 1 {
			o := i<<6 | bits.TrailingZeros64(x)
			var v int64
			for k := range nk {
				v = addSat(v, mulSat(r.Demand[k], r.MaxPrice[k], s.Offers[o].Price[k]))
			}
			if (best < 0 || v > bestV || v == bestV && pos[o] < pos[best]) && b.Fits(ri, o) {
				best, bestV = o, v
			}
		}
	}
	return best, bestV
}
