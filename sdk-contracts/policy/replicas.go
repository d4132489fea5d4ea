package policy

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

// WithAllReplicas runs f on all of s, replicated requests included, for
// an allocator that places replicas itself; the replicas it leaves out are
// then placed by PlaceReplicas on the capacity left, in every list f hands
// in (when handIn is not nil) and in its result. An allocation index out
// of range is an error (a list with one is not handed in).
func WithAllReplicas(s *Snapshot, f AnytimeFunc, handIn func([]Allocation)) ([]Allocation, error) {
	complete := func(as []Allocation) ([]Allocation, error) {
		for i := range as {
			if int(as[i].Request) >= len(s.Requests) || int(as[i].Offer) >= len(s.Offers) {
				return nil, corrupt("policy: allocation %d: index out of range", i)
			}
		}
		if !s.HasReplicas() {
			return as, nil
		}
		// In a copy: f may keep its own list.
		return PlaceReplicas(s, append(make([]Allocation, 0, len(as)+len(s.Requests)), as...)), nil
	}
	allocs, err := f(s, func(as []Allocation) {
		if handIn == nil {
			return
		}
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
	rem := make([]uint64, len(s.Offers)*nk)
	for i := range s.Offers {
		copy(rem[i*nk:(i+1)*nk], s.Offers[i].Capacity[:nk])
	}
	var placed map[uint32][]uint32 // replicated request -> offers allocs gives it
	for _, a := range allocs {
		for k := range nk {
			rem[int(a.Offer)*nk+k] -= min(a.Amount[k], rem[int(a.Offer)*nk+k])
		}
		if s.Requests[a.Request].Replicas > 0 {
			if placed == nil {
				placed = map[uint32][]uint32{}
			}
			placed[a.Request] = append(placed[a.Request], a.Offer)
		}
	}
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
		if !demand {
			continue
		}
		for n := len(have); n < int(r.Replicas); n++ {
			best, bestCost, bestFail := -1, uint64(0), uint32(0)
			for oi := range s.Offers {
				o := &s.Offers[oi]
				if !o.RunsJobs() || r.Spread() && o.Region == 0 || !Eligible(o, r, nk) ||
					contains(provs, o.Provider) || r.Spread() && contains(regions, o.Region) {
					continue
				}
				fits := true
				var cost uint64
				for k := range nk {
					fits = fits && rem[oi*nk+k] >= r.Demand[k]
					cost = addSat(cost, mulSat(o.Price[k], r.Demand[k]))
				}
				if !fits {
					continue
				}
				fail := o.JobFailureBps()
				if best < 0 || cost < bestCost || cost == bestCost && fail < bestFail {
					best, bestCost, bestFail = oi, cost, fail
				}
			}
			if best < 0 {
				break
			}
			o := &s.Offers[best]
			provs, regions = append(provs, o.Provider), append(regions, o.Region)
			a := Allocation{Request: uint32(ri), Offer: uint32(best)}
			for k := range nk {
				if r.Demand[k] > 0 {
					a.Amount[k], a.Price[k] = r.Demand[k], o.Price[k]
					rem[best*nk+k] -= r.Demand[k]
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

func mulSat(a, b uint64) uint64 {
	if a != 0 && b > ^uint64(0)/a {
		return ^uint64(0)
	}
	return a * b
}
