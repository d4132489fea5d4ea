package optimal

import (
	"math/bits"
	"slices"

	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"

	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// Replicated requests (ABI v3) are placed with the bundles: a request that
// wants k replicas becomes k copies, each a bundle (its whole demand on one
// offer), eligible only on offers that may take one of its replicas (that
// run jobs, of a provider — and with spread, in a region, not 0 — it holds
// no replica with). The dual prices the copies like any bundle (the
// distinct-provider rule relaxed), and every placement — by reduced value,
// leftover, the local search's moves — also keeps the copies of one
// request on distinct providers (and with spread, distinct regions). So a
// replica competes for capacity by its value, as the LP relaxation with the
// replica constraint does, instead of taking what the ordinary requests
// left.

// replicas maps an expanded snapshot back to the original.
type replicas struct {
	orig   []int32   // expanded request -> original request
	group  []int32   // expanded request -> its request's copies in groups, -1 for an ordinary one
	groups [][]int32 // per replicated request: its copies (expanded indices)
	spread []bool    // per group
	held   [][]policy.Held
	// on is where each copy is placed (an offer position of the
	// snapshot the placement works on), -1 nowhere.
	on []int32
}

// maxCopiesShare bounds the copies of an expansion: at most this many per
// request of the market (and at most one per provider that runs jobs, one
// per region with spread); beyond it the replicas are placed after the
// other requests instead (policy.WithReplicasAnytime).
const maxCopiesShare = 2

// expand returns s with every replicated request replaced by its copies,
// and the map back; nil when s has no replicated request or too many
// copies.
func expand(s *policy.Snapshot) (*policy.Snapshot, *replicas) {
	provs := map[uint32]bool{}
	regions := map[uint32]bool{}
	for i := range s.Offers {
		if o := &s.Offers[i]; o.RunsJobs() {
			provs[o.Provider] = true
			if o.Region != 0 {
				regions[o.Region] = true
			}
		}
	}
	copies := func(r *policy.Request) int {
		var d uint64
		for k := range s.Kinds {
			d |= r.Demand[k]
		}
		if d == 0 {
			return 0
		}
		n := min(int(r.Replicas), len(provs))
		if r.Spread() {
			n = min(n, len(regions))
		}
		return n
	}
	total, any := 0, false
	for i := range s.Requests {
		if s.Requests[i].Replicas > 0 {
			any = true
			total += copies(&s.Requests[i])
		}
	}
	if !any || total > maxCopiesShare*len(s.Requests) {
		return nil, nil
	}
	xs := *s
	xs.Held = nil
	xs.Requests = make([]policy.Request, 0, len(s.Requests)+total)
	rp := &replicas{}
	h := 0
	for i := range s.Requests {
		r := s.Requests[i]
		if r.Replicas == 0 {
			rp.orig = append(rp.orig, int32(i))
			rp.group = append(rp.group, -1)
			xs.Requests = append(xs.Requests, r)
			continue
		}
		g := int32(len(rp.groups))
		var held []policy.Held
		for ; h < len(s.Held) && s.Held[h].Request < uint32(i); h++ {
		}
		for ; h < len(s.Held) && s.Held[h].Request == uint32(i); h++ {
			held = append(held, s.Held[h])
		}
		var cs []int32
		c := r
		c.Flags, c.Replicas = policy.FlagBundle, 0
		for range copies(&r) {
			cs = append(cs, int32(len(xs.Requests)))
			rp.orig = append(rp.orig, int32(i))
			rp.group = append(rp.group, g)
			xs.Requests = append(xs.Requests, c)
		}
		rp.groups = append(rp.groups, cs)
		rp.spread = append(rp.spread, r.Spread())
		rp.held = append(rp.held, held)
	}
	rp.on = make([]int32, len(xs.Requests))
	rp.reset()
	return &xs, rp
}

// restrict clears, in the copies' rows of g (over s's offers; the first
// copy's row is the one used, the others get it), the offers
// that may not take a replica of their request, and those too small for a
// whole one. It works on whole words: the rows are ANDed with the offers
// that run jobs (and have a region, with spread) and, per kind the request
// demands, with the offers whose capacity holds one replica's demand (a
// threshold set, as newGraph's price filters); a held replica's provider
// (and, with spread, region) clears its offers' bits.
func (rp *replicas) restrict(s *policy.Snapshot, g *graph) {
	if rp == nil {
		return
	}
	no, w := len(s.Offers), g.w
	jobs, spreadable := make([]uint64, w), make([]uint64, w)
	for o := range s.Offers {
		if of := &s.Offers[o]; of.RunsJobs() {
			jobs[o>>6] |= 1 << (uint(o) & 63)
			if of.Region != 0 {
				spreadable[o>>6] |= 1 << (uint(o) & 63)
			}
		}
	}
	// Per kind, the offers whose capacity is at least d: the complement of
	// the capacity orders one threshold set (^capacity ≤ ^d). fitCut keeps
	// each group's breakpoint (for setAt).
	var fit [policy.MaxKinds]*thresholds
	var fitCut [policy.MaxKinds][]int32
	for k := range s.Kinds {
		fit[k] = newThresholds(no, w, func(o int) uint64 { return ^s.Offers[o].Capacity[k] })
		fitCut[k] = make([]int32, len(rp.groups))
		for gi, cs := range rp.groups {
			if len(cs) > 0 && s.Requests[cs[0]].Demand[k] > 0 {
				fitCut[k][gi] = fit[k].want(^s.Requests[cs[0]].Demand[k])
			}
		}
		fit[k].build()
	}
	var byProv, byRegion *offerIndex
	for gi, cs := range rp.groups {
		if len(cs) == 0 {
			continue
		}
		held, spread := rp.held[gi], rp.spread[gi]
		r := &s.Requests[cs[0]]
		row, lo, hi := g.span(int(cs[0]))
		if lo == hi {
			continue
		}
		if spread {
			and(row[lo:hi], spreadable[lo:hi])
		} else {
			and(row[lo:hi], jobs[lo:hi])
		}
		for k := range s.Kinds {
			if d := r.Demand[k]; d > 0 {
				and(row[lo:hi], fit[k].setAt(fitCut[k][gi])[lo:hi])
			}
		}
		for _, hd := range held {
			if byProv == nil {
				byProv = newOfferIndex(s, func(o *policy.Offer) uint32 { return o.Provider })
			}
			byProv.clear(row, hd.Provider)
			if spread {
				if byRegion == nil {
					byRegion = newOfferIndex(s, func(o *policy.Offer) uint32 { return o.Region })
				}
				byRegion.clear(row, hd.Region)
			}
		}
		// The copies share the row.
		for _, c := range cs[1:] {
			copy(g.row(int(c))[lo:hi], row[lo:hi])
		}
	}
	g.spans()
}

// offerIndex lists offers by a key (a provider, a region), to clear the
// bits of a key's offers from a row.
type offerIndex struct {
	keys []uint64 // key<<32 | offer, ascending
}

func newOfferIndex(s *policy.Snapshot, key func(*policy.Offer) uint32) *offerIndex {
	x := &offerIndex{keys: make([]uint64, len(s.Offers))}
	for o := range s.Offers {
		x.keys[o] = uint64(key(&s.Offers[o]))<<32 | uint64(o)
	}
	slices.Sort(x.keys)
	return x
}

// clear clears the bits of the offers with key k in row.
func (x *offerIndex) clear(row []uint64, k uint32) {
	i, _ := slices.BinarySearch(x.keys, uint64(k)<<32)
	for ; i < len(x.keys) && uint32(x.keys[i]>>32) == k; i++ {
		o := uint32(x.keys[i])
		row[o>>6] &^= 1 << (o & 63)
	}
}

// siblings flags the copies after the first of each replicated request:
// they share its eligibility row (newGraphSkip, restrict).
func (rp *replicas) siblings() []bool {
	sib := make([]bool, len(rp.orig))
	for _, cs := range rp.groups {
		for _, c := range cs[min(1, len(cs)):] {
			sib[c] = true
		}
	}
	return sib
}

// reset marks every copy unplaced.
func (rp *replicas) reset() {
	if rp == nil {
		return
	}
	for i := range rp.on {
		rp.on[i] = -1
	}
}

// allows reports whether copy ri may go to offer o of s given where its
// siblings are (on; rp.on when nil): not on a provider — with spread, not
// in a region — a sibling has. Ordinary requests are always allowed.
func (rp *replicas) allows(s *policy.Snapshot, ri, o int, on []int32) bool {
	// Small enough to inline: most requests are ordinary.
	return rp == nil || rp.group[ri] < 0 || rp.allowsCopy(s, ri, o, on)
}

func (rp *replicas) allowsCopy(s *policy.Snapshot, ri, o int, on []int32) bool {
	if on == nil {
		on = rp.on
	}
	g := rp.group[ri]
	p, reg := s.Offers[o].Provider, s.Offers[o].Region
	for _, c := range rp.groups[g] {
		if oc := on[c]; int(c) != ri && oc >= 0 {
			if s.Offers[oc].Provider == p || rp.spread[g] && s.Offers[oc].Region == reg {
				return false
			}
		}
	}
	return true
}

// place records that copy ri went to offer o (nothing for an ordinary
// request).
func (rp *replicas) place(ri, o int) {
	if rp != nil && rp.group[ri] >= 0 {
		rp.on[ri] = int32(o)
	}
}

// back maps the requests of as (an allocation of the expanded snapshot)
// to the original's, in place.
func (rp *replicas) back(as []policy.Allocation) {
	if rp == nil {
		return
	}
	for i := range as {
		as[i].Request = uint32(rp.orig[as[i].Request])
	}
}

// groupOf returns the group of copy ri, -1 for an ordinary request.
func (rp *replicas) groupOf(ri int) int {
	if rp == nil {
		return -1
	}
	return int(rp.group[ri])
}

// lead reports whether ri is an ordinary request or the first copy of its
// group: placeBundles orders a group by its first copy and places all its
// copies together.
func (rp *replicas) lead(ri int) bool {
	gi := rp.groupOf(ri)
	return gi < 0 || rp.groups[gi][0] == int32(ri)
}

// firstUnplaced reports whether ri is an ordinary request or the first
// unplaced copy of its group.
func (rp *replicas) firstUnplaced(ri int) bool {
	gi := rp.groupOf(ri)
	if gi < 0 {
		return true
	}
	for _, c := range rp.groups[gi] {
		if rp.on[c] < 0 {
			return c == int32(ri)
		}
	}
	return false
}

// greedyAnswer is greedy's allocation of s with the replicas placed after
// the other requests: what policy.WithReplicas(s, fill.Greedy) returns,
// the same list. policy.PlaceReplicas scans every offer of a replicated
// request's region for its replicas; here the copies' rows of g (over rs,
// s's offers reordered by pos; after restrict) already hold the offers
// that are eligible, run jobs, fit a whole replica and avoid the held
// replicas, so only the room greedy left, the cost and the providers (and
// regions) of the replicas placed in the same request are left to check,
// and the rule is PlaceReplicas's: the cheapest offer (Σ demand × price,
// saturated; ties: the smaller job failure share, then the lower position
// in s), one replica after the other.
func greedyAnswer(s, rs *policy.Snapshot, g *graph, pos []int32, rp *replicas) []policy.Allocation {
	nk := len(s.Kinds)
	sub := *s
	sub.Held = nil
	sub.Requests = make([]policy.Request, 0, len(s.Requests))
	var orig []uint32 // sub request index -> s request index
	for i := range s.Requests {
		if s.Requests[i].Replicas == 0 {
			sub.Requests = append(sub.Requests, s.Requests[i])
			orig = append(orig, uint32(i))
		}
	}
	as := fill.Greedy(&sub)
	inv := make([]int32, len(pos)) // s's position -> rs's
	for i, p := range pos {
		inv[p] = int32(i)
	}
	// rem is what greedy left, per offer of rs and kind (4 of them, so
	// that the loops below unroll: a loop costs in the VM).
	rem := make([][policy.MaxKinds]uint64, len(rs.Offers))
	for o := range rs.Offers {
		rem[o] = rs.Offers[o].Capacity
	}
	for i := range as {
		a := &as[i]
		a.Request = orig[a.Request]
		o := int(inv[a.Offer])
		for k := range nk {
			rem[o][k] -= min(a.Amount[k], rem[o][k])
		}
	}
	fail := make([]uint32, len(rs.Offers)) // job failure share, for ties
	for o := range rs.Offers {
		fail[o] = rs.Offers[o].JobFailureBps()
	}
	var cands []replicaCand
	var provs, regions []uint32
	for gi, cs := range rp.groups {
		if len(cs) == 0 {
			continue
		}
		lead := int(cs[0])
		r := &rs.Requests[lead]
		d := &r.Demand // zero beyond the snapshot's kinds
		cands = cands[:0]
		// The candidates, and the best of them (as PlaceReplicas orders
		// them: cost, failure share, position): the first replica's offer,
		// no sibling being placed yet.
		row, lo, hi := g.span(lead)
		var best, bo int
		var bc uint64
		cands, best, bc, bo = replicaCands(cands, row[lo:hi], lo, rem, rs.Offers, d, fail, pos)
		spread := rp.spread[gi]
		provs, regions = provs[:0], regions[:0]
		for n := range cs {
			if n > 0 {
				// The best candidate left on a provider (with spread, in a
				// region) no sibling has.
				best = -1
				for ci := range cands {
					c := &cands[ci]
					o := int(c.o)
					if o < 0 || best >= 0 && (c.cost > bc || c.cost == bc && (fail[o] > fail[bo] || fail[o] == fail[bo] && pos[o] > pos[bo])) {
						continue
					}
					if of := &rs.Offers[o]; slices.Contains(provs, of.Provider) || spread && slices.Contains(regions, of.Region) {
						continue
					}
					best, bc, bo = ci, c.cost, o
				}
			}
			if best < 0 {
				break
			}
			o := int(cands[best].o)
			cands[best].o = -1
			of := &rs.Offers[o]
			provs, regions = append(provs, of.Provider), append(regions, of.Region)
			a := policy.Allocation{Request: uint32(rp.orig[lead]), Offer: uint32(pos[o])}
			for k := range nk {
				if d[k] > 0 {
					a.Amount[k], a.Price[k] = d[k], of.Price[k]
					rem[o][k] -= d[k]
				}
			}
			as = append(as, a)
		}
	}
	return as
}

// replicaCand is an offer that may take a replica, and its cost.
type replicaCand struct {
	o    int32
	cost uint64
}

// replicaCands appends to cands the offers of row (words lo onwards) with
// room in rem for a whole replica of demand d, with their costs (Σ demand
// × price, saturated: PlaceReplicas's), and returns the index of the best
// of them (cost, then failure share, then position in s; -1 if none),
// its cost and its offer. A function of its own: a small frame costs less
// per instruction in the VM than greedyAnswer's.
func replicaCands(cands []replicaCand, row []uint64, lo int, rem [][policy.MaxKinds]uint64, offers []policy.Offer, d *[policy.MaxKinds]uint64, fail []uint32, pos []int32) ([]replicaCand, int, uint64, int) {
	best, bc, bo := -1, uint64(0), 0
	for wi, x := range row {
		for ; x != 0; x &= x - 1 {
			o := (lo+wi)<<6 | bits.TrailingZeros64(x)
			if !policy.AtMost(d, &rem[o]) {
				continue
			}
			cost := policy.SatDot(&offers[o].Price, d)
			if best < 0 || cost < bc || cost == bc && (fail[o] < fail[bo] || fail[o] == fail[bo] && pos[o] < pos[bo]) {
				best, bc, bo = len(cands), cost, o
			}
			cands = append(cands, replicaCand{int32(o), cost})
		}
	}
	return cands, best, bc, bo
}
