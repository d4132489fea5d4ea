package optimal

import (
	"math"
	"math/bits"

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
	// pool: request i's candidates are chosen among pool[i*poolSize :
	// i*poolSize+poolN[i]], its eligible offers of highest value at the
	// asks, so that a refresh does not scan every eligible offer.
	pool     []int32
	poolN    []int32
	poolSize int

	mark  []uint32 // refresh's scratch: offers to keep
	stamp uint32
	pz    []vec // refresh's scratch: ask + z
	pzd   []vec

	work, budget int64
	steps        int // subgradient steps taken by solve
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
const refreshEvery = 20

// newLagrange prepares the dual of s with slots candidates per request and
// a budget of candidate evaluations (one per request, candidate and kind).
//
// With every > 1 the dual is that of a sample: every every-th request with
// an eligible offer, facing 1/every of each offer's capacity. Its prices
// approximate the whole market's at a fraction of the cost, a start from
// which the whole market's dual needs few steps.
func newLagrange(s *policy.Snapshot, g *graph, slots int, budget int64, every int) *lagrange {
	nk, no := len(s.Kinds), len(s.Offers)
	slots = max(1, slots)
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
	l.mark = make([]uint32, no)
	l.heap = make([]cand, 0, max(slots, poolSize))
	// The pools: the candidates of a refresh at z = 0 with poolSize slots
	// over all eligible offers.
	l.poolSize = max(slots, poolSize)
	pool, poolN := make([]int32, nr*l.poolSize), make([]int32, nr)
	l.choose(l.poolSize, pool, poolN)
	l.pool, l.poolN = pool, poolN
	l.n = make([]int32, nr)
	l.cOff = make([]int32, nr*slots)
	l.cVal = make([]float64, nr*slots)
	l.cMarg = make([]vec, nr*slots)
	l.hit = make([]bool, nr*slots)
	l.refresh()
	return l
}

// pairCost is the work of scoring one (request, offer) pair when
// candidates are chosen, in units of one candidate and kind of a step
// (measured in the VM: ≈100 gas against ≈17).
const pairCost = 6

// poolSize is the number of eligible offers a request's candidates are
// chosen from.
const poolSize = 64

// refresh chooses every request's candidates again: the eligible offers
// with the highest value at the current prices (a bundle: Σ demand ×
// (max − ask − z) on an offer with room for all of it; a divisible
// request: Σ demand × max(0, max − ask − z) over the kinds the offer has).
// Ties go to the lower offer.
func (l *lagrange) refresh() {
	l.choose(l.slots, l.cOff, l.n)
	s, nk := l.s, l.nk
	for i, ri := range l.reqs {
		r := &s.Requests[ri]
		d := &l.dem[i]
		for j := i * l.slots; j < i*l.slots+int(l.n[i]); j++ {
			l.hit[j] = false
			of := &s.Offers[l.cOff[j]]
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
				l.cMarg[j][k] = marg
			}
			l.cVal[j] = v
		}
	}
}

// choose writes the n best offers of every request at the current prices
// into out[i*n : i*n+outN[i]], in no particular order: from the request's
// pool once there are pools, else from all its eligible offers. Offers the
// request chose since the last refresh (hit) come first.
func (l *lagrange) choose(n int, out, outN []int32) {
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
		// mark[o] == stamp flags them.
		l.stamp++
		if l.hit != nil {
			for j := i * l.slots; j < i*l.slots+int(l.n[i]); j++ {
				if l.hit[j] {
					l.mark[l.cOff[j]] = l.stamp
				}
			}
		}
		if l.pool != nil {
			// The pool holds only offers that fit (bundle) or have some of
			// a kind demanded (divisible).
			pool := l.pool[i*l.poolSize : i*l.poolSize+int(l.poolN[i])]
			l.work += int64(len(pool)) * pairCost
			if bundle {
				h = poolBundle(h, n, pool, l.pz, d, dm, l.mark, l.stamp)
			} else {
				h = poolDivisible(h, n, pool, l.pzd, d, &mx, l.mark, l.stamp)
			}
		} else {
			// Every eligible offer, from the graph's row.
			row, lo, hi := l.g.span(int(ri))
			var pairs int64
			if bundle {
				h, pairs = rowBundle(h, n, row[lo:hi], lo, l.room, l.pz, d, dm, l.mark, l.stamp)
			} else {
				h, pairs = rowDivisible(h, n, row[lo:hi], lo, l.room, l.pzd, d, &mx, l.mark, l.stamp)
			}
			l.work += pairs * pairCost
		}
		outN[i] = int32(len(h))
		for j, c := range h {
			out[i*n+j] = c.o
		}
	}
}

// The scans of choose, one function per kind of request and source of
// offers: a small frame costs less per instruction in the VM than
// choose's. Each offers every candidate o to the heap h of the best n
// with its score at pz (a bundle: Σ d × (max − ask − z), dm = Σ d × max; a
// divisible request: Σ d × max(0, max − ask − z), the price +Inf where
// the offer has none of a kind), +Inf when marked (mark[o] == stamp).

func poolBundle(h []cand, n int, pool []int32, pz []vec, d *vec, dm float64, mark []uint32, stamp uint32) []cand {
	for _, o := range pool {
		p := &pz[o]
		score := dm - float64(d[0]*p[0]) - float64(d[1]*p[1]) - float64(d[2]*p[2]) - float64(d[3]*p[3])
		if mark[o] == stamp {
			score = math.Inf(1)
		}
		if len(h) < n || h[0].score <= score {
			h = push(h, n, cand{score, o})
		}
	}
	return h
}

func poolDivisible(h []cand, n int, pool []int32, pzd []vec, d, mx *vec, mark []uint32, stamp uint32) []cand {
	for _, o := range pool {
		p := &pzd[o]
		score := float64(d[0]*max(0, mx[0]-p[0])) + float64(d[1]*max(0, mx[1]-p[1])) +
			float64(d[2]*max(0, mx[2]-p[2])) + float64(d[3]*max(0, mx[3]-p[3]))
		if mark[o] == stamp {
			score = math.Inf(1)
		}
		if len(h) < n || h[0].score <= score {
			h = push(h, n, cand{score, o})
		}
	}
	return h
}

// rowBundle and rowDivisible are poolBundle and poolDivisible over the
// offers of a row (words lo onwards) that fit the bundle (room: the
// capacity) or have some of a kind the request demands; they also return
// the number of offers in the row.
func rowBundle(h []cand, n int, row []uint64, lo int, room, pz []vec, d *vec, dm float64, mark []uint32, stamp uint32) ([]cand, int64) {
	var pairs int64
	for wi, x := range row {
		pairs += int64(bits.OnesCount64(x))
		for ; x != 0; x &= x - 1 {
			o := int32((lo+wi)<<6 | bits.TrailingZeros64(x))
			if c := &room[o]; c[0] < d[0] || c[1] < d[1] || c[2] < d[2] || c[3] < d[3] {
				continue
			}
			p := &pz[o]
			score := dm - float64(d[0]*p[0]) - float64(d[1]*p[1]) - float64(d[2]*p[2]) - float64(d[3]*p[3])
			if mark[o] == stamp {
				score = math.Inf(1)
			}
			if len(h) < n || h[0].score <= score {
				h = push(h, n, cand{score, o})
			}
		}
	}
	return h, pairs
}

func rowDivisible(h []cand, n int, row []uint64, lo int, room, pzd []vec, d, mx *vec, mark []uint32, stamp uint32) ([]cand, int64) {
	var pairs int64
	for wi, x := range row {
		pairs += int64(bits.OnesCount64(x))
		for ; x != 0; x &= x - 1 {
			o := int32((lo+wi)<<6 | bits.TrailingZeros64(x))
			if c := &room[o]; (d[0] == 0 || c[0] == 0) && (d[1] == 0 || c[1] == 0) && (d[2] == 0 || c[2] == 0) && (d[3] == 0 || c[3] == 0) {
				continue
			}
			p := &pzd[o]
			score := float64(d[0]*max(0, mx[0]-p[0])) + float64(d[1]*max(0, mx[1]-p[1])) +
				float64(d[2]*max(0, mx[2]-p[2])) + float64(d[3]*max(0, mx[3]-p[3]))
			if mark[o] == stamp {
				score = math.Inf(1)
			}
			if len(h) < n || h[0].score <= score {
				h = push(h, n, cand{score, o})
			}
		}
	}
	return h, pairs
}

// push adds c to the heap h of the best n candidates.
func push(h []cand, n int, c cand) []cand {
	switch {
	case len(h) < n:
		h = append(h, c)
		heapUp(h, len(h)-1)
	case h[0].worse(c):
		h[0] = c
		heapDown(h, 0)
	}
	return h
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
// lower bound. It leaves in z the prices of the lowest bound met, and,
// with cands, the candidates chosen at them (for the local search; a
// refresh of every request's candidates costs as much as 20 steps), and
// returns that bound.
func (l *lagrange) solve(steps int, lb float64, cands bool) float64 {
	lambda := 2.0
	best := math.Inf(1)
	bestZ := make([]vec, len(l.z))
	stall := 0
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
		l.steps++
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
	if best < math.Inf(1) {
		copy(l.z, bestZ)
	}
	if cands {
		l.refresh()
	}
	return best
}
