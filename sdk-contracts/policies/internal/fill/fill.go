// Package fill is the greedy engine the shipped policies share: offers
// indexed by kind, price and region, and price-priority filling of
// divisible requests and bundles through a policy.Book.
//
// Everything is slices of int32 positions and integer arithmetic; nothing
// here allocates per request, so it stays cheap inside the metered VM.
package fill

import (
	"cmp"
	"slices"

	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// Index orders a snapshot's offers for fast scanning: per kind, all offers
// by (price, job failure share, position), and the same order grouped by
// region. Offers that run out on a kind are skipped in O(α) through
// union-find "next" links.
type Index struct {
	S  *policy.Snapshot
	NK int
	// Global[k] holds offer positions sorted by (price on k, job failure
	// share, position); ByRegion[k] the same sorted by region first.
	Global, ByRegion [policy.MaxKinds][]int32
	// Regions lists the distinct offer regions ascending; region i spans
	// ByRegion[k][Start[i]:Start[i+1]] for every k.
	Regions []uint32
	Start   []int32

	skipG, skipR [policy.MaxKinds][]int32 // next possibly non-empty position
	posG, posR   [policy.MaxKinds][]int32 // offer -> position in Global/ByRegion
}

// NewIndex builds the index and marks offers without capacity on a kind as
// empty there.
func NewIndex(s *policy.Snapshot) *Index {
	x := &Index{S: s, NK: len(s.Kinds)}
	no := len(s.Offers)
	// At equal prices the more reliable job runner comes first.
	fail := make([]uint32, no)
	for i := range s.Offers {
		fail[i] = s.Offers[i].JobFailureBps()
	}
	// The sorts compare packed integers when the keys fit (no comparison
	// function: a call per comparison costs in the VM): (price, failure
	// share ≤ 10,000, position) in 24+14+24 bits, and (region, rank in
	// Global) for ByRegion, the stable sort by region.
	packed := make([]uint64, no)
	for k := range x.NK {
		g := make([]int32, no)
		for i := range g {
			g[i] = int32(i)
		}
		small := no <= 1<<24
		for o := range s.Offers {
			small = small && s.Offers[o].Price[k] < 1<<24 && fail[o] < 1<<14
		}
		if small {
			for o := range s.Offers {
				packed[o] = s.Offers[o].Price[k]<<38 | uint64(fail[o])<<24 | uint64(o)
			}
			slices.Sort(packed)
			for i, p := range packed {
				g[i] = int32(p & (1<<24 - 1))
			}
		} else {
			slices.SortFunc(g, func(a, b int32) int {
				return cmp.Or(cmp.Compare(s.Offers[a].Price[k], s.Offers[b].Price[k]), cmp.Compare(fail[a], fail[b]), cmp.Compare(a, b))
			})
		}
		r := slices.Clone(g)
		if no <= 1<<24 {
			for i, o := range g {
				packed[i] = uint64(s.Offers[o].Region)<<24 | uint64(i)
			}
			slices.Sort(packed)
			for i, p := range packed {
				r[i] = g[p&(1<<24-1)]
			}
		} else {
			slices.SortStableFunc(r, func(a, b int32) int { return cmp.Compare(s.Offers[a].Region, s.Offers[b].Region) })
		}
		x.Global[k], x.ByRegion[k] = g, r
		x.skipG[k], x.skipR[k] = make([]int32, no+1), make([]int32, no+1)
		x.posG[k], x.posR[k] = make([]int32, no), make([]int32, no)
		for i := range no + 1 {
			x.skipG[k][i], x.skipR[k][i] = int32(i), int32(i)
		}
		for i := range no {
			x.posG[k][g[i]], x.posR[k][r[i]] = int32(i), int32(i)
		}
		if k == 0 {
			for i, o := range r {
				if i == 0 || s.Offers[o].Region != s.Offers[r[i-1]].Region {
					x.Regions = append(x.Regions, s.Offers[o].Region)
					x.Start = append(x.Start, int32(i))
				}
			}
			x.Start = append(x.Start, int32(no))
		}
		for o := range no {
			if s.Offers[o].Capacity[k] == 0 {
				x.MarkEmpty(o, k)
			}
		}
	}
	return x
}

// emptySkip is the skip list of an empty span (never written: find on it
// returns 0 at once).
var emptySkip = [1]int32{0}

func find(skip []int32, i int32) int32 {
	for skip[i] != i {
		skip[i] = skip[skip[i]]
		i = skip[i]
	}
	return i
}

// MarkEmpty records that offer o has nothing left on kind index k.
func (x *Index) MarkEmpty(o, k int) {
	p := x.posG[k][o]
	x.skipG[k][p] = p + 1
	p = x.posR[k][o]
	x.skipR[k][p] = p + 1
}

// Span returns the list to scan for a request, sorted by price on kind
// index k, with its skip links: the request's region, or every offer when
// the request accepts any region. A region no offer is in gives an empty
// span.
func (x *Index) Span(r *policy.Request, k int) (list, skip []int32, lo, hi int32) {
	if r.Region == 0 {
		return x.Global[k], x.skipG[k], 0, int32(len(x.Global[k]))
	}
	i, ok := slices.BinarySearch(x.Regions, r.Region)
	if !ok {
		return nil, emptySkip[:], 0, 0
	}
	return x.ByRegion[k], x.skipR[k], x.Start[i], x.Start[i+1]
}

// Pricing chooses the price of a trade and which offers and requests may
// trade on a kind.
type Pricing struct {
	// Uniform, when set, is the price of every trade on the kind
	// (Clearing[k]); trades then need offer price <= Clearing[k] <= request
	// max. Otherwise a trade pays the offer's price.
	Uniform  bool
	Clearing [policy.MaxKinds]uint64
	// Closed[k] means no trade on kind k (no crossing bid and ask).
	Closed [policy.MaxKinds]bool
}

func (p *Pricing) price(o *policy.Offer, k int) uint64 {
	if p.Uniform {
		return p.Clearing[k]
	}
	return o.Price[k]
}

// tradable reports whether r may buy kind k from o under p (prices only).
func (p *Pricing) tradable(o *policy.Offer, r *policy.Request, k int) bool {
	if p.Closed[k] {
		return false
	}
	if p.Uniform {
		return o.Price[k] <= p.Clearing[k] && p.Clearing[k] <= r.MaxPrice[k]
	}
	return o.Price[k] <= r.MaxPrice[k]
}

// ByBid returns the positions of the requests selected by keep, sorted by
// bid descending (ties by position).
func ByBid(s *policy.Snapshot, keep func(r *policy.Request) bool, bid func(r *policy.Request) uint64) []int32 {
	out := make([]int32, 0, len(s.Requests))
	keys := make([]uint64, 0, len(s.Requests))
	for i := range s.Requests {
		if r := &s.Requests[i]; keep(r) {
			out = append(out, int32(i))
			keys = append(keys, bid(r))
		}
	}
	SortDesc(out, keys)
	return out
}

// SortDesc sorts positions by their keys descending, ties by position
// ascending; keys[i] is the key of positions[i], and positions must be
// distinct and non-negative. keys is reordered too. When every key fits in
// 40 bits and every position in 24, it sorts packed integers, without a
// comparison function: the policies sort every request once per kind, and
// a function call per comparison is the dominant cost inside the VM.
func SortDesc(positions []int32, keys []uint64) {
	const posBits, keyBits = 24, 40
	packed := make([]uint64, len(keys))
	for i, k := range keys {
		if k >= 1<<keyBits || positions[i] >= 1<<posBits {
			packed = nil
			break
		}
		packed[i] = (1<<keyBits-1-k)<<posBits | uint64(positions[i])
	}
	if packed != nil {
		slices.Sort(packed)
		for i, p := range packed {
			positions[i] = int32(p & (1<<posBits - 1))
			keys[i] = 1<<keyBits - 1 - p>>posBits
		}
		return
	}
	type pair struct {
		key uint64
		pos int32
	}
	pairs := make([]pair, len(keys))
	for i := range keys {
		pairs[i] = pair{keys[i], positions[i]}
	}
	slices.SortFunc(pairs, func(a, b pair) int { return cmp.Or(cmp.Compare(b.key, a.key), cmp.Compare(a.pos, b.pos)) })
	for i, p := range pairs {
		positions[i], keys[i] = p.pos, p.key
	}
}

// BundleValue is what a bundle offers to pay per epoch: Σ demand × max
// price (saturating).
func BundleValue(r *policy.Request, nk int) uint64 {
	var v uint64
	for k := range nk {
		v = policy.SatAdd(v, policy.SatMul(r.Demand[k], r.MaxPrice[k]))
	}
	return v
}

// Divisible serves the requests in order (each with demand on kind index
// k) from the cheapest eligible offers with capacity left, splitting a
// request across offers when one is not enough.
func (x *Index) Divisible(b *policy.Book, k int, order []int32, p *Pricing) {
	s := x.S
	for _, ri := range order {
		r := &s.Requests[ri]
		need := b.Need(int(ri), k)
		if need == 0 || p.Closed[k] || (p.Uniform && r.MaxPrice[k] < p.Clearing[k]) {
			continue
		}
		list, skip, i, hi := x.Span(r, k)
		// policy.Eligible written out (a call per offer costs in the VM),
		// its price rule as one unrolled check.
		mx := policy.MaxPrices(r, x.NK)
		region, attrs, minRel := r.Region, r.Attrs, r.MinReliability
		for i = find(skip, i); i < hi; i = find(skip, i+1) {
			oi := int(list[i])
			o := &s.Offers[oi]
			if o.Price[k] > r.MaxPrice[k] || !p.tradable(o, r, k) {
				break // sorted by offer price: nothing further is cheaper
			}
			if o.Attrs&attrs != attrs || o.Reliability < minRel || region != 0 && o.Region != region ||
				!policy.AtMost(&o.Price, &mx) || r.WithinKm != 0 && !policy.Near(o, r) {
				continue
			}
			amt := min(need, b.Spare(oi, k))
			b.Add(int(ri), oi, k, amt, p.price(o, k))
			if b.Spare(oi, k) == 0 {
				x.MarkEmpty(oi, k)
			}
			if need -= amt; need == 0 {
				break
			}
		}
	}
}

// Bundles places each bundle of order, all or nothing, on the eligible
// offer with room for all of it that costs least (Σ demand × offer price),
// ties to the tighter fit, then to the lower position.
func (x *Index) Bundles(b *policy.Book, order []int32, p *Pricing) {
	s := x.S
	for _, ri := range order {
		r := &s.Requests[ri]
		main := -1 // the kind with the largest demand drives the scan
		for k := range x.NK {
			if r.Demand[k] > 0 && (main < 0 || r.Demand[k] > r.Demand[main]) {
				main = k
			}
		}
		if main < 0 {
			continue
		}
		best, bestCost, bestSlack := -1, ^uint64(0), ^uint64(0)
		list, skip, i, hi := x.Span(r, main)
		dMain, maxMain := r.Demand[main], r.MaxPrice[main]
		region, attrs, minRel := r.Region, r.Attrs, r.MinReliability
		// mx: PriceOK as one unrolled check; d: the demand on the
		// snapshot's kinds, and a mask of them, for the cost and the slack
		// of the plain pricing (every trade at the offer's price: tradable
		// is PriceOK then).
		mx := policy.MaxPrices(r, x.NK)
		var d, mask [policy.MaxKinds]uint64
		for k := range x.NK {
			if r.Demand[k] > 0 {
				d[k], mask[k] = r.Demand[k], ^uint64(0)
			}
		}
		plain := !p.Uniform && p.Closed == [policy.MaxKinds]bool{}
		// rest bounds the cost of the other kinds on any offer from below
		// (their cheapest asks): the offers come by price on main, so
		// once main's cost plus rest is above the best cost, none
		// further can cost as little.
		var rest uint64
		for k := range x.NK {
			if k != main && r.Demand[k] > 0 && len(x.Global[k]) > 0 {
				rest = policy.SatAdd(rest, policy.SatMul(r.Demand[k], s.Offers[x.Global[k][0]].Price[k]))
			}
		}
		for i = find(skip, i); i < hi; i = find(skip, i+1) {
			oi := int(list[i])
			o := &s.Offers[oi]
			if o.Price[main] > maxMain || policy.SatAdd(policy.SatMul(dMain, o.Price[main]), rest) > bestCost {
				break
			}
			// policy.Eligible written out, the cheap rules first: this
			// loop visits every offer up to the bundle's max price, and a
			// function call costs in the VM.
			if !b.Fits(int(ri), oi) || o.Attrs&attrs != attrs || o.Reliability < minRel ||
				region != 0 && o.Region != region || !policy.AtMost(&o.Price, &mx) ||
				r.WithinKm != 0 && !policy.Near(o, r) {
				continue
			}
			if plain {
				// The loop below, unrolled: kinds without demand add 0.
				cost := policy.SatDot(&o.Price, &d)
				sp := b.Spares(oi)
				slack := policy.SatAdd(policy.SatAdd((sp[0]-d[0])&mask[0], (sp[1]-d[1])&mask[1]),
					policy.SatAdd((sp[2]-d[2])&mask[2], (sp[3]-d[3])&mask[3]))
				if cost < bestCost || cost == bestCost && slack < bestSlack {
					best, bestCost, bestSlack = oi, cost, slack
				}
				continue
			}
			var cost, slack uint64
			ok := true
			for k := range x.NK {
				if r.Demand[k] == 0 {
					continue
				}
				if !p.tradable(o, r, k) {
					ok = false
					break
				}
				cost = policy.SatAdd(cost, policy.SatMul(r.Demand[k], o.Price[k]))
				slack = policy.SatAdd(slack, b.Spare(oi, k)-r.Demand[k])
			}
			if ok && (cost < bestCost || cost == bestCost && slack < bestSlack) {
				best, bestCost, bestSlack = oi, cost, slack
			}
		}
		if best < 0 {
			continue
		}
		o := &s.Offers[best]
		for k := range x.NK {
			if r.Demand[k] == 0 {
				continue
			}
			b.Add(int(ri), best, k, r.Demand[k], p.price(o, k))
			if b.Spare(best, k) == 0 {
				x.MarkEmpty(best, k)
			}
		}
	}
}

// Placeable reports whether some eligible offer has room for all of bundle
// r in its capacity (what the index marks empty counts as none left): a
// scan of the request's offers by price on its largest kind, up to its
// max price there.
func (x *Index) Placeable(r *policy.Request) bool {
	s := x.S
	main := -1
	for k := range x.NK {
		if r.Demand[k] > 0 && (main < 0 || r.Demand[k] > r.Demand[main]) {
			main = k
		}
	}
	if main < 0 {
		return false
	}
	list, skip, i, hi := x.Span(r, main)
	for i = find(skip, i); i < hi; i = find(skip, i+1) {
		o := &s.Offers[list[i]]
		if o.Price[main] > r.MaxPrice[main] {
			return false
		}
		fits := true
		for k := range x.NK {
			fits = fits && r.Demand[k] <= o.Capacity[k]
		}
		if fits && policy.Eligible(o, r, x.NK) {
			return true
		}
	}
	return false
}

// Greedy is the greedy best-fit policy: bundles by total bid descending,
// each on the cheapest eligible offer with room for all of it; then, kind
// by kind, divisible requests by max price descending, each from the
// cheapest eligible offers. Every trade pays the offer's price.
func Greedy(s *policy.Snapshot) []policy.Allocation {
	nk := len(s.Kinds)
	x := NewIndex(s)
	b := policy.NewBook(s)
	var p Pricing
	x.Bundles(b, ByBid(s, (*policy.Request).Bundle, func(r *policy.Request) uint64 { return BundleValue(r, nk) }), &p)
	for k := range nk {
		x.Divisible(b, k, ByBid(s,
			func(r *policy.Request) bool { return !r.Bundle() && r.Demand[k] > 0 },
			func(r *policy.Request) uint64 { return r.MaxPrice[k] }), &p)
	}
	return b.Allocations()
}
