package policy

import (
	"cmp"
	"slices"
)

// Replicated requests (ABI v3) ask for Replicas whole copies of their
// demand, each on a different provider (and, with FlagSpread, in a
// different region) from the others and from the replicas they already
// hold (Snapshot.Held). Apply serves them for every policy built on it:
// the policy's own function sees only the ordinary requests, and the
// replicas are then placed on the capacity it left, each on the cheapest
// eligible offer that fits a whole replica — the rule the kernel's
// built-in policy follows, so a shipped policy never does worse on them.

// HasReplicas reports whether any request of s is replicated.
func (s *Snapshot) HasReplicas() bool {
	for i := range s.Requests {
		if s.Requests[i].Replicas > 0 {
			return true
		}
	}
	return false
}

// WithReplicas runs f on the ordinary requests of s and places the
// replicas of its replicated requests on the capacity left. Allocation
// request indices are those of s.
func WithReplicas(s *Snapshot, f Func) ([]Allocation, error) {
	return WithReplicasAnytime(s, Anytime(f), nil)
}

// WithReplicasAnytime is WithReplicas for an AnytimeFunc: every list f
// hands in gets the same treatment as its result (request indices mapped
// back to s, the replicas placed on the capacity it left) before it goes
// to handIn (when not nil), so that each list handed in is complete.
func WithReplicasAnytime(s *Snapshot, f AnytimeFunc, handIn func([]Allocation)) ([]Allocation, error) {
	if !s.HasReplicas() {
		return f(s, func(as []Allocation) {
			if handIn != nil {
				handIn(as)
			}
		})
	}
	sub := *s
	sub.Held = nil
	sub.Requests = make([]Request, 0, len(s.Requests))
	var orig []uint32 // sub request index -> s request index
	for i := range s.Requests {
		if s.Requests[i].Replicas == 0 {
			sub.Requests = append(sub.Requests, s.Requests[i])
			orig = append(orig, uint32(i))
		}
	}
	// complete maps a list of sub's into s's (in a copy: f may keep its
	// own) and places the replicas.
	complete := func(as []Allocation) ([]Allocation, error) {
		out := make([]Allocation, len(as))
		for i := range as {
			if int(as[i].Request) >= len(orig) {
				return nil, corrupt("policy: allocation %d: request index %d out of range", i, as[i].Request)
			}
			out[i] = as[i]
			out[i].Request = orig[as[i].Request]
		}
		return PlaceReplicas(s, out), nil
	}
	allocs, err := f(&sub, func(as []Allocation) {
		if handIn == nil {
			return
		}
		// A list the kernel would refuse is not handed in: the last good
		// one stays.
		if full, err := complete(as); err == nil {
			handIn(full)
		}
	})
	if err != nil {
		return nil, err
	}
	return complete(allocs)
}

// PlaceReplicas appends to allocs the replicas of s's replicated requests
// that allocs does not place yet, in request order, each on the cheapest
// offer (Σ demand × price; ties: the smaller job failure share, then the
// lower index) that is eligible, runs jobs, fits a whole replica in what
// allocs left, and has a provider — and with FlagSpread a region — the
// request holds no replica with, in s.Held or in allocs. The replicas
// allocs already gives (whole, each on its own provider: as the ABI wants)
// count toward each request's Replicas. allocs's indices must be in range.
func PlaceReplicas(s *Snapshot, allocs []Allocation) []Allocation {
	nk := len(s.Kinds)
	// rem is what allocs left per offer and kind: fixed arrays of
	// MaxKinds, so that the scan below needs no loop over the kinds (a
	// loop costs in the VM). Kinds beyond nk have no demand.
	rem := make([][MaxKinds]uint64, len(s.Offers))
	for i := range s.Offers {
		copy(rem[i][:nk], s.Offers[i].Capacity[:nk])
	}
	var placed map[uint32][]uint32 // replicated request -> offers allocs gives it
	for _, a := range allocs {
		for k := range nk {
			rem[a.Offer][k] -= min(a.Amount[k], rem[a.Offer][k])
		}
		if s.Requests[a.Request].Replicas > 0 {
			if placed == nil {
				placed = map[uint32][]uint32{}
			}
			placed[a.Request] = append(placed[a.Request], a.Offer)
		}
	}
	// Offers by region (then index): a request with a region looks at its
	// region's offers only.
	byRegion := make([]int32, len(s.Offers))
	regionKeys := make([]uint64, len(s.Offers))
	for i := range byRegion {
		byRegion[i] = int32(i)
	}
	slices.SortFunc(byRegion, func(a, b int32) int {
		return cmp.Or(cmp.Compare(s.Offers[a].Region, s.Offers[b].Region), cmp.Compare(a, b))
	})
	for i, o := range byRegion {
		regionKeys[i] = uint64(s.Offers[o].Region)<<32 | uint64(o)
	}
	type cand struct {
		o    int32
		cost uint64
	}
	var cands []cand
	h := 0
	for ri := range s.Requests {
		r := &s.Requests[ri]
		if r.Replicas == 0 {
			continue
		}
		var provs, regions []uint32
		for ; h < len(s.Held) && s.Held[h].Request < uint32(ri); h++ {
		}
		for ; h < len(s.Held) && s.Held[h].Request == uint32(ri); h++ {
			provs, regions = append(provs, s.Held[h].Provider), append(regions, s.Held[h].Region)
		}
		have := placed[uint32(ri)]
		for _, oi := range have {
			provs, regions = append(provs, s.Offers[oi].Provider), append(regions, s.Offers[oi].Region)
		}
		demand := false
		for k := range nk {
			demand = demand || r.Demand[k] > 0
		}
		if !demand || len(have) >= int(r.Replicas) {
			continue
		}
		// The offers that may take a replica and have room for a whole one
		// now; the replicas are chosen from these, one at a time (an offer
		// chosen is not chosen again, and the others' room does not
		// change meanwhile). Eligible is written out (the region through
		// the range above): this loop runs over every offer for a request
		// without a region, and function calls cost in Wasm.
		lo, hi := 0, len(byRegion)
		if r.Region != 0 {
			lo, _ = slices.BinarySearch(regionKeys, uint64(r.Region)<<32)
			hi, _ = slices.BinarySearch(regionKeys, uint64(r.Region+1)<<32)
		}
		cands = cands[:0]
		spread, attrs, minRel := r.Spread(), r.Attrs, r.MinReliability
		// A kind without demand (or beyond the snapshot's) takes no part
		// in the price and room checks: its maximum is taken as the
		// largest price.
		var d [MaxKinds]uint64
		copy(d[:nk], r.Demand[:nk])
		mx := MaxPrices(r, nk)
		for _, oi := range byRegion[lo:hi] {
			o := &s.Offers[oi]
			if o.Flags&FlagRunsJobs == 0 || spread && o.Region == 0 || o.Attrs&attrs != attrs || o.Reliability < minRel {
				continue
			}
			if !AtMost(&o.Price, &mx) || !AtMost(&d, &rem[oi]) {
				continue
			}
			cost := SatDot(&o.Price, &d)
			if r.WithinKm != 0 && !Near(o, r) || len(provs) > 0 && contains(provs, o.Provider) ||
				spread && len(regions) > 0 && contains(regions, o.Region) {
				continue
			}
			cands = append(cands, cand{oi, cost})
		}
		for n := len(have); n < int(r.Replicas); n++ {
			best := -1
			for ci := range cands {
				c := &cands[ci]
				if c.o < 0 {
					continue
				}
				if best >= 0 {
					b := &cands[best]
					if c.cost > b.cost {
						continue
					}
					if c.cost == b.cost {
						cf, bf := s.Offers[c.o].JobFailureBps(), s.Offers[b.o].JobFailureBps()
						if cf > bf || cf == bf && c.o > b.o {
							continue
						}
					}
				}
				if o := &s.Offers[c.o]; n > len(have) && (contains(provs, o.Provider) || spread && contains(regions, o.Region)) {
					continue
				}
				best = ci
			}
			if best < 0 {
				break
			}
			oi := int(cands[best].o)
			cands[best].o = -1
			o := &s.Offers[oi]
			provs, regions = append(provs, o.Provider), append(regions, o.Region)
			a := Allocation{Request: uint32(ri), Offer: uint32(oi)}
			for k := range nk {
				if r.Demand[k] > 0 {
					a.Amount[k], a.Price[k] = r.Demand[k], o.Price[k]
					rem[oi][k] -= r.Demand[k]
				}
			}
			allocs = append(allocs, a)
		}
	}
	return allocs
}

func contains(xs []uint32, x uint32) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
