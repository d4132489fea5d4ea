package policies_test

import (
	"fmt"
	"math"

	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// validate checks allocs against the ABI's rules without using the policy
// SDK's eligibility code: the distance rule is recomputed here from the
// ABI text (with big-enough arithmetic), so a bug shared by the SDK and the
// policies would show. The replica rules (whole replicas, at most Replicas
// of them, on offers that run jobs, distinct providers — and with spread
// distinct regions, none 0 — among themselves and with the held ones) are
// checked too.
func validate(s *policy.Snapshot, allocs []policy.Allocation) error {
	nk := len(s.Kinds)
	provs := map[uint32]map[uint32]bool{} // replicated request -> providers used
	regions := map[uint32]map[uint32]bool{}
	use := func(m map[uint32]map[uint32]bool, r, v uint32) bool {
		if m[r] == nil {
			m[r] = map[uint32]bool{}
		}
		if m[r][v] {
			return false
		}
		m[r][v] = true
		return true
	}
	for _, h := range s.Held {
		use(provs, h.Request, h.Provider)
		use(regions, h.Request, h.Region)
	}
	used := make([][policy.MaxKinds]uint64, len(s.Offers))
	got := make([][policy.MaxKinds]uint64, len(s.Requests))
	count := make([]int, len(s.Requests))
	seen := map[[2]uint32]bool{}
	for i, a := range allocs {
		if int(a.Request) >= len(s.Requests) || int(a.Offer) >= len(s.Offers) {
			return fmt.Errorf("allocation %d: index out of range", i)
		}
		pair := [2]uint32{a.Request, a.Offer}
		if seen[pair] {
			return fmt.Errorf("allocation %d: duplicate pair %v", i, pair)
		}
		seen[pair] = true
		r, o := s.Requests[a.Request], s.Offers[a.Offer]
		if r.Region != 0 && r.Region != o.Region {
			return fmt.Errorf("allocation %d: region %d, offer in %d", i, r.Region, o.Region)
		}
		if o.Attrs&r.Attrs != r.Attrs {
			return fmt.Errorf("allocation %d: attrs", i)
		}
		if o.Reliability < r.MinReliability {
			return fmt.Errorf("allocation %d: reliability", i)
		}
		if r.WithinKm > 0 && !withinKm(o, r) {
			return fmt.Errorf("allocation %d: distance", i)
		}
		total := uint64(0)
		for k := 0; k < nk; k++ {
			if r.Demand[k] > 0 && o.Price[k] > r.MaxPrice[k] {
				return fmt.Errorf("allocation %d: offer price %d above max %d on kind %d", i, o.Price[k], r.MaxPrice[k], k)
			}
			x := a.Amount[k]
			total += x
			if x == 0 {
				continue
			}
			if a.Price[k] < o.Price[k] || a.Price[k] > r.MaxPrice[k] {
				return fmt.Errorf("allocation %d: price %d outside [%d, %d]", i, a.Price[k], o.Price[k], r.MaxPrice[k])
			}
			used[a.Offer][k] += x
			got[a.Request][k] += x
			if used[a.Offer][k] > o.Capacity[k] {
				return fmt.Errorf("allocation %d: offer %d over capacity on kind %d", i, a.Offer, k)
			}
			if got[a.Request][k] > r.Demand[k]*max(1, uint64(r.Replicas)) { // a replicated request: per replica
				return fmt.Errorf("allocation %d: request %d over demand on kind %d", i, a.Request, k)
			}
		}
		if total == 0 {
			return fmt.Errorf("allocation %d: zero", i)
		}
		count[a.Request]++
		if r.Replicas > 0 {
			switch {
			case count[a.Request] > int(r.Replicas):
				return fmt.Errorf("allocation %d: request %d gets more than its %d replicas", i, a.Request, r.Replicas)
			case o.Flags&1 == 0:
				return fmt.Errorf("allocation %d: replica on offer %d, which runs no jobs", i, a.Offer)
			case !use(provs, a.Request, o.Provider):
				return fmt.Errorf("allocation %d: request %d has a replica on provider %d already", i, a.Request, o.Provider)
			case r.Flags&2 != 0 && (o.Region == 0 || !use(regions, a.Request, o.Region)):
				return fmt.Errorf("allocation %d: spread request %d: region %d taken or none", i, a.Request, o.Region)
			}
			for k := 0; k < nk; k++ {
				if a.Amount[k] != r.Demand[k] {
					return fmt.Errorf("allocation %d: replica not whole", i)
				}
			}
		}
		if r.Flags&1 != 0 {
			if count[a.Request] > 1 {
				return fmt.Errorf("allocation %d: bundle on two offers", i)
			}
			for k := 0; k < nk; k++ {
				if a.Amount[k] != r.Demand[k] {
					return fmt.Errorf("allocation %d: bundle not in full", i)
				}
			}
		}
	}
	return nil
}

var cosTable = [91]int64{1000000, 999848, 999391, 998630, 997564, 996195, 994522, 992546, 990268, 987688, 984808, 981627, 978148, 974370, 970296, 965926, 961262, 956305, 951057, 945519, 939693, 933580, 927184, 920505, 913545, 906308, 898794, 891007, 882948, 874620, 866025, 857167, 848048, 838671, 829038, 819152, 809017, 798636, 788011, 777146, 766044, 754710, 743145, 731354, 719340, 707107, 694658, 681998, 669131, 656059, 642788, 629320, 615661, 601815, 587785, 573576, 559193, 544639, 529919, 515038, 500000, 484810, 469472, 453990, 438371, 422618, 406737, 390731, 374607, 358368, 342020, 325568, 309017, 292372, 275637, 258819, 241922, 224951, 207912, 190809, 173648, 156434, 139173, 121869, 104528, 87156, 69756, 52336, 34899, 17452, 0}

func withinKm(o policy.Offer, r policy.Request) bool {
	dy := (int64(o.Lat) - int64(r.Lat)) * 111320 / 1000000
	d := int64(math.Abs(float64(int64(o.Lat)+int64(r.Lat)))) / 2 / 1000000
	q := cosTable[min(90, d)]
	dx := (int64(o.Lon) - int64(r.Lon)) * 111320 / 1000000 * q / 1000000
	lim := float64(r.WithinKm) * 1000
	return float64(dx)*float64(dx)+float64(dy)*float64(dy) <= lim*lim
}
