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
// The clearing price ignores eligibility (the curves are aggregate), so
// eligibility can leave in-the-money volume unmatched; that is the price of
// one uniform price per kind.
package auction

import (
	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// clearing computes the uniform price of kind index k, or ok == false when
// no bid covers any ask.
func clearing(s *policy.Snapshot, x *fill.Index, k int) (price uint64, ok bool) {
	bids := fill.ByBid(s, func(r *policy.Request) bool { return r.Demand[k] > 0 }, func(r *policy.Request) uint64 { return r.MaxPrice[k] })
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
	for k := range nk {
		var ok bool
		p.Clearing[k], ok = clearing(s, x, k)
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
