package optimal

import (
	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// search improves where bundles go by local moves on a complete
// allocation. An unserved bundle takes a candidate offer where it fits in
// what is spare, or where it fits after making room: bundles on the offer
// move to another of their candidates with room (losing the difference in
// surplus, if any) or leave, and divisible units leave (losing their
// surplus; the flow that runs afterwards may serve them elsewhere). A move
// is made only if the bundle gains more than the room costs, so the
// surplus rises with every move and the search ends; a work budget bounds
// it too. Copies of a replicated request (replicas.go) move only where rp
// allows, given where their siblings are.
type search struct {
	s    *policy.Snapshot
	rp   *replicas
	l    *lagrange
	pos  []int32
	nk   int
	cand []int32 // request -> index in l.reqs, -1 none

	spare []uint64  // offer*nk + k
	on    []int32   // request -> offer of its bundle, -1 none
	at    [][]int32 // offer -> bundles on it
	div   [][]held  // offer -> divisible holdings
	gain  float64

	plan, best []step
	work, lim  int64
}

// held is a divisible request's amounts on one offer.
type held struct {
	r   int32
	amt [policy.MaxKinds]uint64
}

// step is one part of making room on an offer: a bundle that moves (to
// offer to, or leaves when to is -1) or divisible units that leave.
type step struct {
	bundle int32 // the bundle, or -1 for divisible units
	to     int32
	h      int // divisible: index in div[offer]
	amt    [policy.MaxKinds]uint64
}

func newSearch(s *policy.Snapshot, l *lagrange, pos []int32, as []policy.Allocation, rp *replicas) *search {
	nk, no := len(s.Kinds), len(s.Offers)
	x := &search{s: s, rp: rp, l: l, pos: pos, nk: nk, cand: make([]int32, len(s.Requests)), spare: make([]uint64, no*nk),
		on: make([]int32, len(s.Requests)), at: make([][]int32, no), div: make([][]held, no)}
	for i := range x.cand {
		x.cand[i], x.on[i] = -1, -1
	}
	for i, ri := range l.reqs {
		x.cand[ri] = int32(i)
	}
	for o := range s.Offers {
		copy(x.spare[o*nk:], s.Offers[o].Capacity[:nk])
	}
	for _, a := range as {
		o := int(a.Offer)
		for k := range nk {
			x.spare[o*nk+k] -= a.Amount[k]
		}
		if s.Requests[a.Request].Bundle() {
			x.on[a.Request] = int32(o)
			x.at[o] = append(x.at[o], int32(a.Request))
		} else {
			x.div[o] = append(x.div[o], held{int32(a.Request), a.Amount})
		}
	}
	return x
}

// value is the surplus of bundle r on offer o.
func (x *search) value(r, o int) float64 {
	return bundleSurplus(&x.s.Requests[r], &x.s.Offers[o], x.nk)
}

// slots returns the range of request r's candidates in l.cOff.
func (x *search) slots(r int) (lo, hi int) {
	i := int(x.cand[r])
	if i < 0 {
		return 0, 0
	}
	return i * x.l.slots, i*x.l.slots + int(x.l.n[i])
}

// fits reports whether bundle r fits in what offer o has spare.
func (x *search) fits(r, o int) bool {
	for k := range x.nk {
		if x.s.Requests[r].Demand[k] > x.spare[o*x.nk+k] {
			return false
		}
	}
	return true
}

// run makes passes over the unserved bundles, by surplus on their best
// candidate descending, until a pass moves nothing or the budget is spent.
func (x *search) run(budget int64) {
	s := x.s
	x.lim = budget
	for pass := 0; pass < 4 && x.work < budget; pass++ {
		var order []int32
		var keys []uint64
		for ri := range s.Requests {
			if !s.Requests[ri].Bundle() || x.on[ri] >= 0 {
				continue
			}
			lo, hi := x.slots(ri)
			best := 0.0
			for j := lo; j < hi; j++ {
				best = max(best, x.value(ri, int(x.l.cOff[j])))
			}
			if best > 0 {
				order = append(order, int32(ri))
				keys = append(keys, orderKey(best))
			}
		}
		fill.SortDesc(order, keys)
		moved := false
		for _, ri := range order {
			if x.work >= budget {
				break
			}
			if x.on[ri] < 0 && x.insert(int(ri)) {
				moved = true
			}
		}
		if !moved {
			break
		}
	}
}

// insert places unserved bundle r on the candidate offer where the move
// gains most (its surplus minus what making room costs), if any gains.
func (x *search) insert(r int) bool {
	lo, hi := x.slots(r)
	bestO, bestGain := -1, 0.0
	for j := lo; j < hi; j++ {
		o := int(x.l.cOff[j])
		v := x.value(r, o)
		if v <= bestGain || !x.rp.allows(x.s, r, o, x.on) {
			continue
		}
		cost, ok := x.room(r, o, v-bestGain)
		if !ok {
			continue
		}
		if g := v - cost; g > bestGain || g == bestGain && bestO >= 0 && x.pos[o] < x.pos[bestO] {
			bestO, bestGain = o, g
			x.best = append(x.best[:0], x.plan...)
		}
	}
	if bestO < 0 {
		return false
	}
	x.apply(r, bestO, x.best)
	x.gain += bestGain
	return true
}

// room plans how to make room for bundle r on offer o for less than
// limit: the holdings of o that give the most of what is missing per unit
// of cost first, each moved at its cheapest (a bundle to the candidate
// with room where it loses least, or out). The plan is left in x.plan.
func (x *search) room(r, o int, limit float64) (cost float64, ok bool) {
	s, nk := x.s, x.nk
	rq := &s.Requests[r]
	var need [policy.MaxKinds]uint64
	short := false
	for k := range nk {
		if sp := x.spare[o*nk+k]; rq.Demand[k] > sp {
			need[k] = rq.Demand[k] - sp
			short = true
		}
	}
	x.plan = x.plan[:0]
	if !short {
		return 0, true
	}
	nb := len(x.at[o])
	taken := make([]bool, nb+len(x.div[o]))
	for {
		x.work += int64(len(taken))
		if x.work >= x.lim {
			return 0, false
		}
		var pick step
		best, bestCost, bestFree := -1, 0.0, uint64(0)
		for h := range taken {
			if taken[h] {
				continue
			}
			var st step
			var c float64
			if h < nb {
				b := int(x.at[o][h])
				st = step{bundle: int32(b), to: -1}
				copy(st.amt[:], s.Requests[b].Demand[:nk])
				v := x.value(b, o)
				c = v
				// The cheapest move: to a candidate with room now (not
				// counting other moves of this plan: apply checks again).
				blo, bhi := x.slots(b)
				for j := blo; j < bhi; j++ {
					o2 := int(x.l.cOff[j])
					if o2 == o || !x.fits(b, o2) || !x.rp.allows(s, b, o2, x.on) {
						continue
					}
					if mc := v - x.value(b, o2); mc < c {
						c, st.to = mc, int32(o2)
					}
				}
				x.work += int64(bhi - blo)
			} else {
				d := &x.div[o][h-nb]
				st = step{bundle: -1, to: -1, h: h - nb}
				for k := range nk {
					if d.amt[k] > 0 {
						// Divisible units give up only what is missing.
						st.amt[k] = min(d.amt[k], need[k])
						c += float64(st.amt[k]) * (float64(s.Requests[d.r].MaxPrice[k]) - float64(s.Offers[o].Price[k]))
					}
				}
			}
			var free uint64
			for k := range nk {
				free += min(st.amt[k], need[k])
			}
			if free == 0 {
				continue
			}
			// free/c > bestFree/bestCost, cross-multiplied.
			if best < 0 || float64(free)*bestCost > float64(bestFree)*c {
				best, bestCost, bestFree, pick = h, c, free, st
			}
		}
		if best < 0 {
			return 0, false
		}
		taken[best] = true
		cost += bestCost
		if cost >= limit {
			return 0, false
		}
		x.plan = append(x.plan, pick)
		done := true
		for k := range nk {
			need[k] -= min(need[k], pick.amt[k])
			done = done && need[k] == 0
		}
		if done {
			return cost, true
		}
	}
}

// apply carries out plan on offer o and places bundle r there. Moves
// whose target no longer has room (an earlier move of the plan filled it)
// become departures.
func (x *search) apply(r, o int, plan []step) {
	nk := x.nk
	for _, st := range plan {
		for k := range nk {
			x.spare[o*nk+k] += st.amt[k]
		}
		if st.bundle < 0 {
			d := &x.div[o][st.h]
			for k := range nk {
				d.amt[k] -= st.amt[k]
			}
			continue
		}
		b := int(st.bundle)
		x.remove(b, o)
		if st.to >= 0 && x.fits(b, int(st.to)) && x.rp.allows(x.s, b, int(st.to), x.on) {
			x.place(b, int(st.to))
		} else {
			x.lostBundle(b, o, int(st.to))
		}
	}
	x.place(r, o)
}

// lostBundle corrects the gain when a planned move could not be made:
// the plan counted v(b, o) − v(b, to) and the bundle left instead.
func (x *search) lostBundle(b, o, to int) {
	if to >= 0 {
		x.gain -= x.value(b, to)
	}
}

func (x *search) remove(b, o int) {
	list := x.at[o]
	for i, y := range list {
		if int(y) == b {
			x.at[o] = append(list[:i], list[i+1:]...)
			break
		}
	}
	x.on[b] = -1
}

func (x *search) place(b, o int) {
	x.at[o] = append(x.at[o], int32(b))
	x.on[b] = int32(o)
	for k := range x.nk {
		x.spare[o*x.nk+k] -= x.s.Requests[b].Demand[k]
	}
}

// bundles writes the bundles' placement into b (and the copies' into rp).
func (x *search) bundles(b *policy.Book) {
	s := x.s
	x.rp.reset()
	for ri := range s.Requests {
		if o := int(x.on[ri]); o >= 0 {
			x.rp.place(ri, o)
			for k := range x.nk {
				b.Add(ri, o, k, s.Requests[ri].Demand[k], s.Offers[o].Price[k])
			}
		}
	}
}
