package optimal

import (
	"cmp"
	"math"
	"slices"
	"math/bits"

	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// lagrange prices capacity by the Lagrangian dual of the market's LP
// relaxation in which a bundle takes all its kinds from one offer, in
// proportion (a fractional bundle), and a divisible request splits freely.
// Relaxing the offers' capacity with prices z ≥ 0 (per offer and kind, on
// top of the ask) leaves one easy problem per request: a bundle takes the
// offer where Σ demand × (max − ask − z) is largest, if positive; a
// divisible request takes each kind from the offer where max − ask − z is
// largest, if positive. L(z) = Σ capacity × z + Σ those values bounds the
// LP (and so every allocation) from above; subgradient steps lower it.
// The prices then say what capacity is worth to the rest of the market,
// scarcity above the asks included, which the flow's potentials cannot
// show.
//
// A request considers a bounded set of candidate offers (slots), chosen
// again every refreshEvery steps from all its eligible offers as the best
// at the current prices: a small set keeps a step cheap, refreshing it lets
// a request reach offers that become attractive as prices move (column
// generation).
//
// Values are float64: they only rank candidates and never reach the
// output, whose amounts and prices are integers. Float arithmetic in Wasm
// is deterministic (IEEE 754, NaNs canonicalized by the VM; none arise
// here); products are converted explicitly so that no compiler fuses them
// into a multiply-add, and native runs give the VM's results.
type lagrange struct {
	s      *policy.Snapshot
	g      *graph
	nk, no int
	// Per offer and kind (kinds a snapshot lacks stay 0): the price z on
	// top of the ask, the capacity the dual prices (a sample's share of
	// it, see newLagrange), the capacity (for whether a bundle fits), and
	// the capacity the requests' choices use at z.
	z, cap, room, use []vec

	reqs   []int32 // requests with an eligible offer
	dem    []vec   // their demand per kind
	bundle []bool

	// Candidates: request i considers offers cOff[i*slots : i*slots+n[i]];
	// for a bundle cVal is the pair's surplus at the asks (Σ demand ×
	// (max − ask)), for a divisible request cMarg[j][k] is max − ask on
	// kind k, or -Inf when the offer has none of k.
	slots int
	n     []int32
	cOff  []int32
	cVal  []float64
	cMarg []vec
	hit   []bool // slot j was a choice since the last refresh
	heap  []cand
	kept  []int32
	pz    []vec // refresh's scratch: ask + z
	pzd   []vec

	work, budget int64
}

const mk = policy.MaxKinds

// vec is a value per kind. Fixed arrays let the compiler drop the bounds
// checks of the inner loops, which dominate the dual's cost in the VM.
type vec [mk]float64

// cand is a candidate offer while candidates are chosen.
type cand struct {
	score float64
	o     int32
}

// worse orders candidates for the heap: lower score, then higher offer.
func (a cand) worse(b cand) bool { return a.score < b.score || a.score == b.score && a.o > b.o }

// refreshEvery is the number of subgradient steps between refreshes of
// the candidates.
var refreshEvery = 10

// newLagrange prepares the dual of s with slots candidates per request and
// a budget of candidate evaluations (one per request, candidate and kind).
//
// With every > 1 the dual is that of a sample: every every-th request with
// an eligible offer, facing 1/every of each offer's capacity. Its prices
// approximate the whole market's at a fraction of the cost, a start from
// which the whole market's dual needs few steps.
func newLagrange(s *policy.Snapshot, g *graph, slots int, budget int64, every int) *lagrange {
	nk, no := len(s.Kinds), len(s.Offers)
	l := &lagrange{s: s, g: g, nk: nk, no: no, slots: slots, budget: budget,
		z: make([]vec, no), cap: make([]vec, no), room: make([]vec, no), use: make([]vec, no)}
	for o := range s.Offers {
		for k := range nk {
			l.room[o][k] = float64(s.Offers[o].Capacity[k])
			l.cap[o][k] = float64(s.Offers[o].Capacity[k]) / float64(every)
		}
	}
	n := 0
	for ri := range s.Requests {
		if _, lo, hi := g.span(ri); lo < hi {
			if n%every == 0 {
				l.reqs = append(l.reqs, int32(ri))
			}
			n++
		}
	}
	nr := len(l.reqs)
	l.dem, l.bundle = make([]vec, nr), make([]bool, nr)
	for i, ri := range l.reqs {
		r := &s.Requests[ri]
		l.bundle[i] = r.Bundle()
		for k := range nk {
			l.dem[i][k] = float64(r.Demand[k])
		}
	}
	l.n = make([]int32, nr)
	l.cOff = make([]int32, nr*slots)
	l.cVal = make([]float64, nr*slots)
	l.cMarg = make([]vec, nr*slots)
	l.hit = make([]bool, nr*slots)
	l.heap = make([]cand, 0, slots)
	l.refresh()
	return l
}

// refresh chooses every request's candidates again: the eligible offers
// with the highest value at the current prices (a bundle: Σ demand ×
// (max − ask − z) on an offer with room for all of it; a divisible
// request: Σ demand × max(0, max − ask − z) over the kinds the offer has).
// Ties go to the lower offer.
func (l *lagrange) refresh() {
	s, nk := l.s, l.nk
	// pz: ask + z per offer and kind (0 for kinds the snapshot lacks); pzd
	// the same but +Inf where the offer has none of the kind, so that a
	// divisible request gains nothing there.
	if l.pz == nil {
		l.pz, l.pzd = make([]vec, l.no), make([]vec, l.no)
	}
	for o := range l.pz {
		of := &s.Offers[o]
		for k := range nk {
			l.pz[o][k] = float64(of.Price[k]) + l.z[o][k]
			l.pzd[o][k] = l.pz[o][k]
			if of.Capacity[k] == 0 {
				l.pzd[o][k] = math.Inf(1)
			}
		}
	}
	for i, ri := range l.reqs {
		r := &s.Requests[ri]
		d := &l.dem[i]
		var mx vec
		var dm float64
		for k := range nk {
			if d[k] > 0 {
				mx[k] = float64(r.MaxPrice[k])
				dm += float64(d[k] * mx[k])
			}
		}
		bundle := l.bundle[i]
		h := l.heap[:0]
		// Slots chosen since the last refresh stay: a request keeps the
		// offers it uses, and does not herd to whatever is cheapest now.
		kept := l.kept[:0]
		if sticky {
			for j := i * l.slots; j < i*l.slots+int(l.n[i]); j++ {
				if l.hit[j] {
					kept = append(kept, l.cOff[j])
				}
			}
		}
		row, lo, hi := l.g.span(int(ri))
		for w := lo; w < hi; w++ {
			for x := row[w]; x != 0; x &= x - 1 {
				o := w<<6 | bits.TrailingZeros64(x)
				pz, c := &l.pz[o], &l.room[o]
				pzd := &l.pzd[o]
				var score float64
				if bundle {
					if c[0] < d[0] || c[1] < d[1] || c[2] < d[2] || c[3] < d[3] {
						continue
					}
					score = dm - float64(d[0]*pz[0]) - float64(d[1]*pz[1]) - float64(d[2]*pz[2]) - float64(d[3]*pz[3])
				} else {
					if (d[0] == 0 || c[0] == 0) && (d[1] == 0 || c[1] == 0) && (d[2] == 0 || c[2] == 0) && (d[3] == 0 || c[3] == 0) {
						continue
					}
					score = float64(d[0]*max(0, mx[0]-pzd[0])) + float64(d[1]*max(0, mx[1]-pzd[1])) +
						float64(d[2]*max(0, mx[2]-pzd[2])) + float64(d[3]*max(0, mx[3]-pzd[3]))
				}
				if len(kept) > 0 && slices.Contains(kept, int32(o)) {
					score = math.Inf(1)
				}
				switch c := (cand{score, int32(o)}); {
				case len(h) < l.slots:
					h = append(h, c)
					heapUp(h, len(h)-1)
				case h[0].worse(c):
					h[0] = c
					heapDown(h, 0)
				}
			}
			l.work += int64(bits.OnesCount64(row[w])) * int64(nk)
		}
		l.kept = kept
		l.n[i] = int32(len(h))
		for j, c := range h {
			js := i*l.slots + j
			l.hit[js] = false
			o := int(c.o)
			of := &s.Offers[o]
			l.cOff[js] = c.o
			var v float64
			for k := range mk {
				marg := math.Inf(-1)
				if k < nk && d[k] > 0 {
					m := float64(float64(r.MaxPrice[k]) - float64(of.Price[k]))
					v += float64(d[k] * m)
					if of.Capacity[k] > 0 {
						marg = m
					}
				}
				l.cMarg[js][k] = marg
			}
			l.cVal[js] = v
		}
	}
}

func heapUp(h []cand, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h[i].worse(h[p]) {
			break
		}
		h[i], h[p] = h[p], h[i]
		i = p
	}
}

func heapDown(h []cand, i int) {
	for {
		c := 2*i + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && h[c+1].worse(h[c]) {
			c++
		}
		if !h[c].worse(h[i]) {
			return
		}
		h[i], h[c] = h[c], h[i]
		i = c
	}
}

// reduced is bundle request i's value on its candidate slot j at z.
func (l *lagrange) reduced(i, j int) float64 {
	return reducedAt(&l.dem[i], &l.z[l.cOff[j]], l.cVal[j])
}

// reducedAt is v − Σ d × z.
func reducedAt(d, z *vec, v float64) float64 {
	return v - float64(d[0]*z[0]) - float64(d[1]*z[1]) - float64(d[2]*z[2]) - float64(d[3]*z[3])
}

// evaluate computes L(z) and the capacity the requests' best choices use.
func (l *lagrange) evaluate() float64 {
	clear(l.use)
	var L float64
	for o := range l.cap {
		c, z := &l.cap[o], &l.z[o]
		L += float64(c[0]*z[0]) + float64(c[1]*z[1]) + float64(c[2]*z[2]) + float64(c[3]*z[3])
	}
	for i := range l.reqs {
		lo, hi := i*l.slots, i*l.slots+int(l.n[i])
		offs, d := l.cOff[lo:hi], &l.dem[i]
		l.work += int64(hi-lo) * int64(l.nk)
		if l.bundle[i] {
			vals := l.cVal[lo:hi]
			vals = vals[:len(offs)]
			best, bj, bw := int32(-1), 0, 0.0
			for j, o := range offs {
				if w := reducedAt(d, &l.z[o], vals[j]); w > bw {
					best, bj, bw = o, j, w
				}
			}
			if best >= 0 {
				l.hit[lo+bj] = true
				L += bw
				u := &l.use[best]
				u[0] += d[0]
				u[1] += d[1]
				u[2] += d[2]
				u[3] += d[3]
			}
			continue
		}
		margs := l.cMarg[lo:hi]
		margs = margs[:len(offs)]
		for k := range mk {
			if d[k] == 0 {
				continue
			}
			best, bj, bw := int32(-1), 0, 0.0
			for j, o := range offs {
				if w := margs[j][k] - l.z[o][k]; w > bw {
					best, bj, bw = o, j, w
				}
			}
			if best >= 0 {
				l.hit[lo+bj] = true
				L += float64(d[k] * bw)
				l.use[best][k] += d[k]
			}
		}
	}
	return L
}

// solve takes subgradient steps from z = 0 until steps are done, the
// budget is spent or the bound meets lb (a known allocation's surplus):
// Polyak steps towards lb, their scale halved after 4 steps without a
// lower bound. It leaves in z the prices of the lowest bound met, and the
// candidates chosen at them, and returns that bound.
func (l *lagrange) solve(steps int, lb, lambda float64) float64 {
	best := math.Inf(1)
	bestZ := make([]vec, len(l.z))
	stall := 0
	if warmStart {
		l.warm()
		l.refresh()
	}
	for it := range steps {
		if l.work > l.budget {
			break
		}
		if it > 0 && it%refreshEvery == 0 {
			// New candidates make a new restricted problem: its bounds do
			// not compare with the last one's.
			l.refresh()
			best = math.Inf(1)
		}
		L := l.evaluate()
		if debugTrace != nil {
			debugTrace(it, L, lb, lambda)
		}
		if L < best {
			best, stall = L, 0
			copy(bestZ, l.z)
		} else if stall++; stall >= 4 {
			lambda, stall = lambda/2, 0
		}
		var norm float64
		for o := range l.use {
			u, c, z := &l.use[o], &l.cap[o], &l.z[o]
			for k := range mk {
				g := u[k] - c[k]
				if z[k] <= 0 && g < 0 {
					g = 0
				}
				u[k] = g
				norm += float64(g * g)
			}
		}
		if norm == 0 {
			break
		}
		// The candidates bound L only over themselves, so it can fall
		// below lb: aim 1% below the best L then.
		target := min(lb, best-0.01*math.Abs(best))
		t := lambda * (L - target) / norm
		for o := range l.use {
			u, z := &l.use[o], &l.z[o]
			for k := range mk {
				z[k] = max(0, z[k]+float64(t*u[k]))
			}
		}
	}
	copy(l.z, bestZ)
	l.refresh()
	return best
}

// placeBundles places bundles by their reduced value at the prices z
// (Σ demand × (max − ask − z) on their best candidate), descending, each on
// the fitting candidate of highest reduced value (ties: lower position),
// while that value is positive.
func (l *lagrange) placeBundles(b *policy.Book, pos []int32) {
	s, nk := l.s, l.nk
	var order []int32
	var keys []uint64
	for i := range l.reqs {
		if !l.bundle[i] {
			continue
		}
		bw := math.Inf(-1)
		for j := i * l.slots; j < i*l.slots+int(l.n[i]); j++ {
			bw = max(bw, l.reduced(i, j))
		}
		if bw > 0 {
			order = append(order, int32(i))
			keys = append(keys, orderKey(bw))
		}
	}
	fill.SortDesc(order, keys)
	for _, i := range order {
		ri := int(l.reqs[i])
		r := &s.Requests[ri]
		best, bw := -1, 0.0
		for j := int(i) * l.slots; j < int(i)*l.slots+int(l.n[i]); j++ {
			o := int(l.cOff[j])
			if w := l.reduced(int(i), j); (w > bw || w == bw && best >= 0 && pos[o] < pos[best]) && b.Fits(ri, o) {
				best, bw = o, w
			}
		}
		if best < 0 {
			continue
		}
		for k := range nk {
			b.Add(ri, best, k, r.Demand[k], s.Offers[best].Price[k])
		}
	}
}

var (
	warmStart = false
)

// warm sets z to where each offer's own demand clears: every request
// takes its best candidate at the asks, and an offer's price on a kind
// is the unit margin (max − ask; for a bundle, its surplus per unit of
// demand) of the first unit beyond its capacity, by margin descending.
func (l *lagrange) warm() {
	type unit struct {
		marg, amt float64
	}
	per := make([][]unit, l.no*mk)
	for i := range l.reqs {
		d := &l.dem[i]
		lo, hi := i*l.slots, i*l.slots+int(l.n[i])
		if l.bundle[i] {
			best, bw := -1, 0.0
			for j := lo; j < hi; j++ {
				if w := l.cVal[j]; w > bw {
					best, bw = int(l.cOff[j]), w
				}
			}
			if best < 0 {
				continue
			}
			sum := d[0] + d[1] + d[2] + d[3]
			for k := range mk {
				if d[k] > 0 {
					per[best*mk+k] = append(per[best*mk+k], unit{bw / sum, d[k]})
				}
			}
			continue
		}
		for k := range mk {
			if d[k] == 0 {
				continue
			}
			best, bw := -1, 0.0
			for j := lo; j < hi; j++ {
				if w := l.cMarg[j][k]; w > bw {
					best, bw = int(l.cOff[j]), w
				}
			}
			if best >= 0 {
				per[best*mk+k] = append(per[best*mk+k], unit{bw, d[k]})
			}
		}
	}
	for i, us := range per {
		slices.SortFunc(us, func(a, b unit) int { return cmp.Compare(b.marg, a.marg) })
		left := l.cap[i/mk][i%mk]
		l.z[i/mk][i%mk] = 0
		for _, u := range us {
			if left -= u.amt; left < 0 {
				l.z[i/mk][i%mk] = u.marg
				break
			}
		}
	}
}

var debugTrace func(it int, L, lb, lambda float64)

var sticky = true
