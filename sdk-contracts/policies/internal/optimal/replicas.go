package optimal

import (
	"math/bits"

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

// restrict clears, in the copies' rows of g (over s's offers), the offers
// that may not take a replica of their request, and those too small for a
// whole one.
func (rp *replicas) restrict(s *policy.Snapshot, g *graph) {
	if rp == nil {
		return
	}
	for gi, cs := range rp.groups {
		if len(cs) == 0 {
			continue
		}
		held, spread := rp.held[gi], rp.spread[gi]
		r := &s.Requests[cs[0]]
		row, lo, hi := g.span(int(cs[0]))
		for i := lo; i < hi; i++ {
			for x := row[i]; x != 0; x &= x - 1 {
				b := bits.TrailingZeros64(x)
				o := &s.Offers[i<<6|b]
				ok := o.RunsJobs() && (!spread || o.Region != 0)
				for k := range s.Kinds {
					ok = ok && r.Demand[k] <= o.Capacity[k] // a whole replica must fit
				}
				for _, hd := range held {
					ok = ok && hd.Provider != o.Provider && (!spread || hd.Region != o.Region)
				}
				if !ok {
					row[i] &^= 1 << b
				}
			}
		}
		// The copies share the row.
		for _, c := range cs[1:] {
			copy(g.row(int(c))[lo:hi], row[lo:hi])
		}
	}
	g.spans()
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
