package optimal

import (
	"math/bits"
	"slices"

	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// entry is a positive flow: request r holds f units of the offer.
type entry struct {
	r int32
	f uint64
}

// offerState is an offer's part of one kind's flow.
type offerState struct {
	// ask is the level of the offer's price (index into flow.asks), level
	// its potential: a level at most the price at which it clears. A spare
	// offer's level is at most its ask; an offer holding flow has a level at
	// least its ask.
	ask, level int32
	spare      uint64 // capacity left on the kind
}

// flow solves one kind's transportation problem (maximum Σ amount × (max
// price − ask)) by successive shortest paths in request order, as the
// package documentation explains. Inner arcs of the residual graph cost
// nothing, so a search needs only the offers: offer a leads to offer b when
// a request holding flow on a may use b, and an offer's successors are one
// bit set, the union of the eligibility rows of the requests holding flow on
// it. Potentials are price levels; a search visits offers by ascending
// level, a Dijkstra whose distances are levels.
//
// All slices are sized once and reused across kinds.
type flow struct {
	s     *policy.Snapshot
	g     *graph
	no    int
	w     int     // words of an offer bit set
	byPos []int32 // offers in the order of their positions in the caller's snapshot

	asks  []uint64 // the kind's distinct asks of offers with spare capacity, ascending
	st    []offerState
	flows [][]entry // offer -> positive flows
	succ  []uint64  // offer o's successors: succ[o*w : (o+1)*w],
	slo   []int32   // zero outside words [slo[o], shi[o])
	shi   []int32
	stale []bool   // succ of the offer lost a contributor: rebuild before use
	alive []uint64 // offers that may still lead a request still to come to capacity
	lvset []uint64 // offers by level: level l's are lvset[l*w : (l+1)*w]
	tight []uint64 // spare offers whose level is their ask
	order []int32  // the kind's requests by max price descending
	keys  []uint64 // their max prices

	// search and augment state. Between searches disc is ^alive and pend
	// is empty; a search restores the words it touched.
	disc     []uint64 // discovered offers, and dead ones
	pend     []uint64 // discovered offers not yet explored
	tl       []uint64 // tight offers on the level being explored
	seq      []int32  // offer -> position in explored
	explored []int32
	hops     []int32 // the request moved on each hop of the path
	path     []int32 // the offers of the path, from the answer back

	// work counts word operations and visits; past limit, the kind's
	// remaining requests are served from their cheapest offers directly.
	// Each run's limit is an equal share of what is left of budget among
	// the runs left.
	work, limit, budget int64
	runs                int
}

func newFlow(s *policy.Snapshot, g *graph, pos []int32, budget int64) *flow {
	no := len(s.Offers)
	w := words(no)
	byPos := make([]int32, no)
	for o, p := range pos {
		byPos[p] = int32(o)
	}
	return &flow{
		s: s, g: g, no: no, w: w, byPos: byPos, budget: budget, runs: len(s.Kinds),
		st: make([]offerState, no), flows: make([][]entry, no), stale: make([]bool, no),
		succ: make([]uint64, no*w), slo: make([]int32, no), shi: make([]int32, no),
		alive: make([]uint64, w), lvset: make([]uint64, no*w), tight: make([]uint64, w),
		order: make([]int32, 0, len(s.Requests)),
		disc:  make([]uint64, w), pend: make([]uint64, w), tl: make([]uint64, w), seq: make([]int32, no),
	}
}

// run solves kind index k for the divisible requests on the capacity b
// has left and records the flow in b. The kind gets an equal share of the
// work budget that earlier runs left.
func (f *flow) run(b *policy.Book, k int) {
	f.limit = f.work + max(0, f.budget-f.work)/int64(max(1, f.runs))
	f.runs--
	s, w := f.s, f.w
	f.asks = f.asks[:0]
	clear(f.alive)
	clear(f.succ)
	clear(f.lvset)
	clear(f.tight)
	for o := range f.no {
		f.flows[o] = f.flows[o][:0]
		f.stale[o] = false
		f.slo[o], f.shi[o] = 0, 0
		f.st[o] = offerState{ask: -1, spare: b.Spare(o, k)}
		if f.st[o].spare > 0 {
			f.asks = append(f.asks, s.Offers[o].Price[k])
		}
	}
	slices.Sort(f.asks)
	f.asks = slices.Compact(f.asks)
	for o := range f.no {
		if f.st[o].spare > 0 {
			l, _ := slices.BinarySearch(f.asks, s.Offers[o].Price[k])
			f.st[o].ask, f.st[o].level = int32(l), int32(l)
			bit := uint64(1) << (uint(o) & 63)
			f.alive[o>>6] |= bit
			f.tight[o>>6] |= bit
			f.lvset[l*w+o>>6] |= bit
		}
	}
	for i, x := range f.alive {
		f.disc[i], f.pend[i] = ^x, 0
	}
	f.order, f.keys = f.order[:0], f.keys[:0]
	for ri := range s.Requests {
		if !s.Requests[ri].Bundle() && b.Need(ri, k) > 0 {
			f.order = append(f.order, int32(ri))
			f.keys = append(f.keys, s.Requests[ri].MaxPrice[k])
		}
	}
	fill.SortDesc(f.order, f.keys)
	for _, r := range f.order {
		// lim: the highest level the request can pay.
		lim, found := slices.BinarySearch(f.asks, s.Requests[r].MaxPrice[k])
		if !found {
			lim--
		}
		if lim < 0 {
			continue
		}
		need := b.Need(int(r), k)
		for need > 0 {
			if f.work > f.limit {
				f.direct(r, int32(lim), need)
				break
			}
			best := f.search(r, int32(lim))
			if best < 0 {
				break
			}
			need -= f.augment(r, best, need)
		}
	}
	for _, o := range f.byPos {
		for _, e := range f.flows[o] {
			b.Add(int(e.r), int(o), k, e.f, s.Offers[o].Price[k])
		}
	}
}

// search finds the cheapest offer with spare capacity that request r can
// reach through the residual graph, asking at most level lim, and returns
// it (or -1). Offers are visited by ascending level; the search stops once
// no unvisited offer can lead to a cheaper one (a spare offer asks at least
// its level, and levels do not decrease along arcs). On success the visited
// offers' levels rise to the answer's ask; on failure they are dead for the
// kind: the requests still to come pay at most lim, and what those offers
// reach at such prices is full.
func (f *flow) search(r int32, lim int32) int {
	w := f.w
	row, lo, hi := f.g.span(int(r))
	alive, disc, pend, tight, tl := f.alive[:w], f.disc[:w], f.pend[:w], f.tight[:w], f.tl[:w]
	st := f.st
	// best and bound: the best answer so far and its ask (lim+1: none). The
	// request's own offers give the first one, and low, the lowest level
	// among them, bounds every level the search can meet. [tlo, thi): the
	// words of disc and pend the search touched. Within a level, offers are
	// explored from the word of the last one explored on (cyclically): the
	// search stays local, depth first, and meets a spare offer sooner than
	// scanning from the lowest word.
	best, bound, low, n := own(row[lo:hi], alive[lo:hi], disc[lo:hi], pend[lo:hi], st, lo, lim+1)
	f.work += n + int64(hi-lo)
	tlo, thi := lo, hi
	near := lo
	f.explored = f.explored[:0]
	for cur, arrived := low, true; cur < bound; {
		lv := f.lvset[int(cur)*w : int(cur+1)*w]
		lv = lv[:w]
		if arrived {
			// A spare offer at its ask, on the lowest level pending, is
			// the answer. tl: the spare offers at their ask on this level.
			arrived = false
			for i, x := range tight {
				tl[i] = x & lv[i]
			}
			f.work += int64(w)
			if t := first(pend[tlo:thi], tl[tlo:thi]); t >= 0 {
				best, bound = tlo<<6+t, cur
				f.seq[best] = int32(len(f.explored))
				break
			}
		}
		o := pending(pend, lv, tlo, near, thi)
		if o >= 0 {
			near = o >> 6
		}
		f.work += int64(thi - tlo)
		if o < 0 {
			cur++
			arrived = true
			continue
		}
		pend[o>>6] &^= 1 << (uint(o) & 63)
		f.seq[o] = int32(len(f.explored))
		f.explored = append(f.explored, int32(o))
		if so := &st[o]; so.spare > 0 && so.ask < bound {
			best, bound = o, so.ask
			if bound <= cur {
				break
			}
		}
		if f.stale[o] {
			f.rebuild(o)
		}
		slo, shi := int(f.slo[o]), int(f.shi[o])
		succ := f.succ[o*w+slo : o*w+shi]
		d, p, t := disc[slo:shi], pend[slo:shi], tl[slo:shi]
		d, p, t = d[:len(succ)], p[:len(succ)], t[:len(succ)]
		found := discover(succ, d, p, t)
		f.work += int64(shi - slo)
		tlo, thi = min(tlo, slo), max(thi, shi)
		if found != 0 {
			best, bound = tlo<<6+first(pend[tlo:thi], tl[tlo:thi]), cur
			f.seq[best] = int32(len(f.explored))
			break
		}
	}
	f.work += int64(len(f.explored))
	if best < 0 {
		for _, o := range f.explored {
			alive[o>>6] &^= 1 << (uint(o) & 63)
		}
	} else {
		for _, o := range f.explored {
			so := &st[o]
			if l := so.level; l != bound {
				bit := uint64(1) << (uint(o) & 63)
				f.lvset[int(l)*w+int(o>>6)] &^= bit
				f.lvset[int(bound)*w+int(o>>6)] |= bit
				so.level = bound
				if bound == so.ask && so.spare > 0 {
					tight[o>>6] |= bit
				}
			}
		}
	}
	for i := tlo; i < thi; i++ {
		disc[i], pend[i] = ^alive[i], 0
	}
	return best
}

// pending returns the first offer of pend & lv in words [near, thi), else
// in [tlo, near), or -1. discover marks the successors succ not yet
// discovered (d) discovered and pending (p), and returns those of them in
// t. Functions of their own: small frames cost less per instruction in
// the VM than search's.
func pending(pend, lv []uint64, tlo, near, thi int) int {
	for i := near; i < thi; i++ {
		if x := pend[i] & lv[i]; x != 0 {
			return i<<6 | bits.TrailingZeros64(x)
		}
	}
	for i := tlo; i < near; i++ {
		if x := pend[i] & lv[i]; x != 0 {
			return i<<6 | bits.TrailingZeros64(x)
		}
	}
	return -1
}

func discover(succ, d, p, t []uint64) uint64 {
	d, p, t = d[:len(succ)], p[:len(succ)], t[:len(succ)]
	var found uint64
	for i, x := range succ {
		x &^= d[i]
		d[i] |= x
		p[i] |= x
		found |= x & t[i]
	}
	return found
}

// own is the start of search over the request's own offers, words
// [lo, lo+len(row)): it marks the live ones discovered and pending, and
// returns the spare one of lowest ask below bound (-1 if none; ties: the
// lower offer) with that ask (bound if none), the lowest level among them
// and their number. A function of its own: a small frame costs less per
// instruction in the VM than search's.
func own(row, alive, disc, pend []uint64, st []offerState, lo int, bound int32) (best int, ask, low int32, n int64) {
	best, ask, low = -1, bound, int32(1<<31-1)
	alive, disc, pend = alive[:len(row)], disc[:len(row)], pend[:len(row)]
	for i, x := range row {
		x &= alive[i]
		disc[i] |= x
		pend[i] = x
		n += int64(bits.OnesCount64(x))
		for x != 0 {
			o := (lo+i)<<6 | bits.TrailingZeros64(x)
			x &= x - 1
			so := &st[o]
			low = min(low, so.level)
			if so.spare > 0 && so.ask < ask {
				best, ask = o, so.ask
			}
		}
	}
	return best, ask, low, n
}

// first returns the lowest item of a & b, or -1.
func first(a, b []uint64) int {
	b = b[:len(a)]
	for i, x := range a {
		if x &= b[i]; x != 0 {
			return i<<6 | bits.TrailingZeros64(x)
		}
	}
	return -1
}

// from returns the offer from which the last search reached offer u, or -1
// when u is one of request r's own offers. u must have been explored or be
// the answer.
func (f *flow) from(u int, r int32) int {
	bit := uint64(1) << (uint(u) & 63)
	if f.g.row(int(r))[u>>6]&bit != 0 {
		return -1
	}
	w := f.w
	for _, v := range f.explored[:f.seq[u]] {
		if f.succ[int(v)*w+u>>6]&bit != 0 {
			return int(v)
		}
	}
	panic("optimal: search path lost") // unreachable: u was discovered by an earlier offer
}

// rebuild recomputes offer o's successors from the requests holding flow
// on it.
func (f *flow) rebuild(o int) {
	w := f.w
	succ := f.succ[o*w : (o+1)*w]
	clear(succ[f.slo[o]:f.shi[o]])
	slo, shi := w, 0
	for _, e := range f.flows[o] {
		row, lo, hi := f.g.span(int(e.r))
		or(succ[lo:hi], row[lo:hi])
		slo, shi = min(slo, lo), max(shi, hi)
		f.work += int64(hi - lo)
	}
	if slo >= shi {
		slo, shi = 0, 0
	}
	f.slo[o], f.shi[o] = int32(slo), int32(shi)
	f.stale[o] = false
}

// or sets dst |= src.
func or(dst, src []uint64) {
	src = src[:len(dst)]
	for i := range dst {
		dst[i] |= src[i]
	}
}

// augment pushes as much as the path to best found by search allows, at
// most need, and returns the amount.
func (f *flow) augment(r int32, best int, need uint64) uint64 {
	delta := min(need, f.st[best].spare)
	f.path = f.path[:0]
	f.hops = f.hops[:0]
	for o := best; ; {
		f.path = append(f.path, int32(o))
		prev := f.from(o, r)
		if prev < 0 {
			break
		}
		// The request that leads prev to o: the one holding most of prev.
		via, most := int32(-1), uint64(0)
		bit := uint64(1) << (uint(o) & 63)
		for _, e := range f.flows[prev] {
			if e.f > most && f.g.row(int(e.r))[o>>6]&bit != 0 {
				via, most = e.r, e.f
			}
		}
		if via < 0 {
			panic("optimal: no request leads along the search path") // unreachable: succ[prev] had o
		}
		f.hops = append(f.hops, via)
		delta = min(delta, most)
		o = prev
	}
	if f.st[best].spare -= delta; f.st[best].spare == 0 {
		f.tight[best>>6] &^= 1 << (uint(best) & 63)
	}
	for i, via := range f.hops {
		f.move(int(f.path[i+1]), via, -int64(delta))
		f.move(int(f.path[i]), via, int64(delta))
	}
	f.move(int(f.path[len(f.path)-1]), r, int64(delta))
	f.work += int64(len(f.hops)+1) * 8
	return delta
}

// move adds d (possibly negative) to request r's flow on offer o.
func (f *flow) move(o int, r int32, d int64) {
	fl := f.flows[o]
	for i := range fl {
		if fl[i].r != r {
			continue
		}
		fl[i].f += uint64(d)
		if fl[i].f == 0 {
			fl[i] = fl[len(fl)-1]
			f.flows[o] = fl[:len(fl)-1]
			f.stale[o] = true
		}
		return
	}
	// A new holder (d > 0): its offers become successors of o.
	f.flows[o] = append(fl, entry{r, uint64(d)})
	if f.stale[o] {
		return
	}
	row, lo, hi := f.g.span(int(r))
	if lo >= hi {
		return
	}
	or(f.succ[o*f.w+lo:o*f.w+hi], row[lo:hi])
	if f.slo[o] >= f.shi[o] {
		f.slo[o], f.shi[o] = int32(lo), int32(hi)
	} else {
		f.slo[o], f.shi[o] = min(f.slo[o], int32(lo)), max(f.shi[o], int32(hi))
	}
}

// direct serves request r from its cheapest eligible offers with capacity
// left, without rerouting: the fallback once the kind's work budget is
// spent. The flow stays feasible; only optimality is lost.
func (f *flow) direct(r int32, lim int32, need uint64) {
	row, lo, hi := f.g.span(int(r))
	for need > 0 {
		f.work += int64(hi - lo)
		best, bestAsk := -1, lim+1
		for i := lo; i < hi; i++ {
			for x := row[i]; x != 0; {
				o := i<<6 | bits.TrailingZeros64(x)
				x &= x - 1
				if so := &f.st[o]; so.spare > 0 && so.ask >= 0 && so.ask < bestAsk {
					best, bestAsk = o, so.ask
				}
			}
		}
		if best < 0 {
			return
		}
		d := min(need, f.st[best].spare)
		if f.st[best].spare -= d; f.st[best].spare == 0 {
			f.tight[best>>6] &^= 1 << (uint(best) & 63)
		}
		need -= d
		f.move(best, r, int64(d))
	}
}
