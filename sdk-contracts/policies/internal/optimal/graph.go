package optimal

import (
	"cmp"
	"math/bits"
	"slices"

	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// graph is the eligibility relation as one bit set of offers per request:
// request r may use offer o iff bit o of row(r) is set. Bit sets make the
// searches of the flow cheap (one word covers 64 offers) and the graph's
// size independent of how dense eligibility is.
type graph struct {
	w      int      // words per row
	bits   []uint64 // request r's row is bits[r*w : (r+1)*w]
	lo, hi []int32  // request r's row is zero outside words [lo[r], hi[r])
}

func (g *graph) row(r int) []uint64 { return g.bits[r*g.w : (r+1)*g.w : (r+1)*g.w] }

// span returns request r's row and the words [lo, hi) outside which it is
// zero.
func (g *graph) span(r int) (row []uint64, lo, hi int) {
	return g.row(r), int(g.lo[r]), int(g.hi[r])
}

// words returns the number of uint64 words of a bit set over n items.
func words(n int) int { return (n + 63) / 64 }

// maxGraphWords bounds the words (8 bytes each) of the bit sets a call
// builds: beyond it (a market with both very many requests and very many
// offers), the market is allocated greedily instead, so that the policy
// stays inside the VM's memory limit. The speed market (10,000 × 1,000)
// needs 0.3M words.
const maxGraphWords = 3 << 20

// bitsetWords is the size of the bit sets a call builds at most, in words:
// the rows, the filters (per distinct region, per attribute bit, per
// reliability and price breakpoint) and the flow's successor and level sets.
func bitsetWords(s *policy.Snapshot) int {
	no := len(s.Offers)
	return words(no) * (len(s.Requests) + (no+1)*(4+len(s.Kinds)) + 64)
}

// newGraph computes the eligibility rows. A row is the intersection of
// filters shared between requests, each a bit set of the offers that pass
// one rule of policy.Eligible for one value: the request's region, each of
// its attribute bits, its minimum reliability and, per kind with demand,
// its maximum price. The distance rule is then checked pair by pair, after
// a latitude band has ruled out most offers.
func newGraph(s *policy.Snapshot) *graph { return newGraphSkip(s, nil) }

// newGraphSkip is newGraph leaving the rows of the requests with skip set
// empty: the copies of a replicated request after its first share its row
// (replicas.restrict copies it), so computing theirs would be wasted.
func newGraphSkip(s *policy.Snapshot, skip []bool) *graph {
	nk := len(s.Kinds)
	no := len(s.Offers)
	w := words(no)
	g := &graph{w: w, bits: make([]uint64, len(s.Requests)*w), lo: make([]int32, len(s.Requests)), hi: make([]int32, len(s.Requests))}
	defer g.spans()

	all := make([]uint64, w)
	for o := range no {
		all[o>>6] |= 1 << (uint(o) & 63)
	}

	// Region filters: offers of each region.
	regions := make([]uint32, 0, 16)
	for i := range s.Offers {
		regions = append(regions, s.Offers[i].Region)
	}
	slices.Sort(regions)
	regions = slices.Compact(regions)
	regionSets := make([]uint64, len(regions)*w)
	for o := range s.Offers {
		i, _ := slices.BinarySearch(regions, s.Offers[o].Region)
		regionSets[i*w+o>>6] |= 1 << (uint(o) & 63)
	}
	// A region's words: its set is zero outside them. When the offers are
	// ordered by region (byRegion), a region spans a few words, and the
	// row of a request with a region is built on those only (the rest of
	// a fresh row is zero already).
	regionLo, regionHi := make([]int32, len(regions)), make([]int32, len(regions))
	for i := range regions {
		lo, hi := wordSpan(regionSets[i*w : (i+1)*w])
		regionLo[i], regionHi[i] = int32(lo), int32(hi)
	}

	// Attribute filters: offers with bit b, for the bits requests ask for.
	var asked uint64
	for i := range s.Requests {
		asked |= s.Requests[i].Attrs
	}
	var attrIndex [64]int32
	attrSets := make([]uint64, bits.OnesCount64(asked)*w)
	for b, n := 0, int32(0); b < 64; b++ {
		if asked&(1<<b) == 0 {
			continue
		}
		attrIndex[b] = n
		for o := range s.Offers {
			if s.Offers[o].Attrs&(1<<b) != 0 {
				attrSets[int(n)*w+o>>6] |= 1 << (uint(o) & 63)
			}
		}
		n++
	}

	// Threshold filters: offers with reliability >= t, and per kind offers
	// with price <= p, for the thresholds requests use.
	// Each request's cut in each filter is kept (relCut, priceCut: -1 for a
	// kind it does not demand), so that its row finds the sets without a
	// second search.
	nr := len(s.Requests)
	rel := newThresholds(no, w, func(o int) uint64 { return uint64(^s.Offers[o].Reliability) })
	relCut := make([]int32, nr)
	for i := range s.Requests {
		if skip == nil || !skip[i] {
			relCut[i] = rel.want(uint64(^s.Requests[i].MinReliability))
		}
	}
	rel.build()
	var price [policy.MaxKinds]*thresholds
	var priceCut [policy.MaxKinds][]int32
	for k := range nk {
		price[k] = newThresholds(no, w, func(o int) uint64 { return s.Offers[o].Price[k] })
		priceCut[k] = make([]int32, nr)
		for i := range s.Requests {
			priceCut[k][i] = -1
			if s.Requests[i].Demand[k] > 0 && (skip == nil || !skip[i]) {
				priceCut[k][i] = price[k].want(s.Requests[i].MaxPrice[k])
			}
		}
		price[k].build()
	}

	for ri := range s.Requests {
		if skip != nil && skip[ri] {
			continue
		}
		r := &s.Requests[ri]
		base, lo, hi := all, 0, w
		if r.Region != 0 {
			i, ok := slices.BinarySearch(regions, r.Region)
			if !ok {
				continue
			}
			base, lo, hi = regionSets[i*w:(i+1)*w], int(regionLo[i]), int(regionHi[i])
		}
		row := g.row(ri)[lo:hi]
		copy(row, base[lo:hi])
		for a := r.Attrs; a != 0; a &= a - 1 {
			and(row, attrSets[int(attrIndex[bits.TrailingZeros64(a)])*w+lo:])
		}
		and(row, rel.setAt(relCut[ri])[lo:])
		for k := range nk {
			if c := priceCut[k][ri]; c >= 0 {
				and(row, price[k].setAt(c)[lo:])
			}
		}
		if r.WithinKm != 0 {
			keepNear(row, lo, s.Offers, r)
		}
	}
	return g
}

// keepNear clears from row (words lo onwards) the offers beyond r's
// distance limit, after a latitude band has ruled out most. A function of
// its own: a small frame costs less per instruction in the VM than
// newGraphSkip's.
func keepNear(row []uint64, lo int, offers []policy.Offer, r *policy.Request) {
	band, banded := latBand(r)
	for j, x := range row {
		i := j + lo
		for x != 0 {
			o := i<<6 | bits.TrailingZeros64(x)
			x &= x - 1
			d := int64(offers[o].Lat) - int64(r.Lat)
			if banded && (d > band || d < -band) || !policy.Near(&offers[o], r) {
				row[j] &^= 1 << (uint(o) & 63)
			}
		}
	}
}

// spans computes every row's span of non-zero words.
func (g *graph) spans() {
	for r := range g.lo {
		lo, hi := wordSpan(g.row(r))
		g.lo[r], g.hi[r] = int32(lo), int32(hi)
	}
}

// wordSpan returns the words [lo, hi) outside which set is zero (0, 0 when
// it is empty).
func wordSpan(set []uint64) (lo, hi int) {
	for hi = len(set); hi > 0 && set[hi-1] == 0; hi-- {
	}
	for lo = 0; lo < hi && set[lo] == 0; lo++ {
	}
	return lo, hi
}

func and(dst, src []uint64) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] &= src[i]
	}
}

// thresholds are bit sets of the offers whose value is at most t, for the
// thresholds t passed to want before build. Thresholds are reduced to
// breakpoints (how many offers have a value at most t), so there are at most
// one set per offer plus one.
type thresholds struct {
	w      int
	value  func(o int) uint64
	order  []int32  // offers by value
	values []uint64 // their values
	cuts   []int32  // wanted breakpoints, ascending
	sets   []uint64 // sets[i*w : (i+1)*w]: the first cuts[i] offers of order
	at     []int32  // breakpoint -> its index in cuts (wanted ones only)
}

func newThresholds(no, w int, value func(o int) uint64) *thresholds {
	t := &thresholds{w: w, value: value, order: make([]int32, no), values: make([]uint64, no)}
	for i := range t.order {
		t.order[i] = int32(i)
	}
	slices.SortFunc(t.order, func(a, b int32) int { return cmp.Compare(value(int(a)), value(int(b))) })
	for i, o := range t.order {
		t.values[i] = value(int(o))
	}
	return t
}

// cut is the number of offers whose value is at most v.
func (t *thresholds) cut(v uint64) int32 {
	lo, hi := 0, len(t.values) // values[:lo] <= v < values[hi:]
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if t.values[m] <= v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return int32(lo)
}

// want records that the set of v will be used, and returns v's breakpoint
// (for setAt).
func (t *thresholds) want(v uint64) int32 {
	c := t.cut(v)
	t.cuts = append(t.cuts, c)
	return c
}

func (t *thresholds) build() {
	slices.Sort(t.cuts)
	t.cuts = slices.Compact(t.cuts)
	t.sets = make([]uint64, len(t.cuts)*t.w)
	t.at = make([]int32, len(t.values)+1)
	for i, c := range t.cuts {
		t.at[c] = int32(i)
	}
	j := int32(0)
	var prev []uint64
	for i, c := range t.cuts {
		set := t.sets[i*t.w : (i+1)*t.w]
		copy(set, prev)
		for ; j < c; j++ {
			o := t.order[j]
			set[o>>6] |= 1 << (uint(o) & 63)
		}
		prev = set
	}
}

// setAt returns the offers whose value is at most a wanted value, given
// its breakpoint c as want returned it.
func (t *thresholds) setAt(c int32) []uint64 {
	i := int(t.at[c])
	return t.sets[i*t.w : (i+1)*t.w]
}

// Latitude band of the ABI's distance rule: |dy| = |Δlat|·111320/1e6
// (truncated) must not exceed the radius.
const (
	metresPerDegree = 111320
	micro           = 1_000_000
)

// latBand returns a bound on |lat_o − lat_r| (micro-degrees) beyond which
// the distance rule fails, or ok == false when it cannot fail on latitude.
func latBand(r *policy.Request) (int64, bool) {
	lim := int64(r.WithinKm) * 1000
	if lim > 3_000_000_000 { // policy.Near accepts every pair
		return 0, false
	}
	return (lim+1)*micro/metresPerDegree + 1, true
}
