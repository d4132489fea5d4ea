// Package auction is the double-auction ROME policy. Per kind it sorts bids
// (requests' max prices, all requests with demand) descending and asks
// (offers' prices) ascending, walks both curves while the bid covers the
// ask, and sets the clearing price to the floor of the midpoint of the
// marginal bid and ask. Only offers asking at most the clearing price and
// requests bidding at least it trade, every trade of the kind at that one
// price, so the price lies in [offer price, request max] for every matched
// pair. Matching then follows price priority under eligibility: bundles
// first (all kinds on one offer), then divisible requests kind by kind.
//
// A bundle enters the curves only if some eligible offer has room for all
// of it: one that fits nowhere can never trade, and its bid would only
// raise the clearing price above the bids that can (issue 17: a small
// market cleared nothing of a possible surplus of 70). Otherwise the
// clearing price ignores eligibility (the curves are aggregate), so
// eligibility can leave in-the-money volume unmatched; that is the price of
// one uniform price per kind.
package auction

import (
	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// clearing computes the uniform price of kind index k, or ok == false when
// no bid covers any ask. Bundles bid only where placeable says so.
func clearing(s *policy.Snapshot, x *fill.Index, k int, placeable []bool) (price uint64, ok bool) {
	var bids []int32
	var keys []uint64
	for i := range s.Requests {
		if r := &s.Requests[i]; r.Demand[k] > 0 && (!r.Bundle() || placeable[i]) {
			bids = append(bids, int32(i))
			keys = append(keys, r.MaxPrice[k])
		}
	}
	fill.SortDesc(bids, keys)
	asks := x.Global[k]
	i, j := 0, 0
	for j < len(asks) && s.Offers[asks[j]].Capacity[k] == 0 {
		j++
	}
	if i >= len(bids) || j >= len(asks) {
		return 0, false
	}
	remB, remA := s.Requests[bids[0]].Demand[k], s.Offers[asks[j]].Capacity[k]
	lastB, lastA := -1, -1
	for i < len(bids) && j < len(asks) {
		bid, ask := s.Requests[bids[i]].MaxPrice[k], s.Offers[asks[j]].Price[k]
		if bid < ask {
			break
		}
		lastB, lastA = i, j
		m := min(remB, remA)
		remB -= m
		remA -= m
		if remB == 0 {
			if i++; i < len(bids) {
				remB = s.Requests[bids[i]].Demand[k]
			}
		}
		if remA == 0 {
			for j++; j < len(asks) && s.Offers[asks[j]].Capacity[k] == 0; j++ {
			}
			if j < len(asks) {
				remA = s.Offers[asks[j]].Capacity[k]
			}
		}
	}
	if lastB < 0 {
		return 0, false
	}
	bid, ask := s.Requests[bids[lastB]].MaxPrice[k], s.Offers[asks[lastA]].Price[k]
	return ask + (bid-ask)/2, true
}

// Allocate returns the double-auction allocation of s.
func Allocate(s *policy.Snapshot) ([]policy.Allocation, error) {
	nk := len(s.Kinds)
	x := fill.NewIndex(s)
	b := policy.NewBook(s)
	p := fill.Pricing{Uniform: true}
	placeable := make([]bool, len(s.Requests))
	for i := range s.Requests {
		placeable[i] = s.Requests[i].Bundle() && x.Placeable(&s.Requests[i])
	}
	for k := range nk {
		var ok bool
		p.Clearing[k], ok = clearing(s, x, k, placeable)
		p.Closed[k] = !ok
	}
	bundles := fill.ByBid(s, (*policy.Request).Bundle, func(r *policy.Request) uint64 { return fill.BundleValue(r, nk) })
	x.Bundles(b, bundles, &p)
	for k := range nk {
		order := fill.ByBid(s,
			func(r *policy.Request) bool { return !r.Bundle() && r.Demand[k] > 0 },
			func(r *policy.Request) uint64 { return r.MaxPrice[k] })
		x.Divisible(b, k, order, &p)
	}
	return b.Allocations(), nil
}
