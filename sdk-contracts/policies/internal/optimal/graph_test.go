package optimal

import (
	"math/rand/v2"
	"testing"

	"github.com/sos-kernel/sos/rome/marketgen"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// TestGraphMatchesEligible checks every bit of the eligibility graph
// against policy.Eligible, on generated markets and on random ones whose
// small value ranges make ties, zero values and extreme radii common.
func TestGraphMatchesEligible(t *testing.T) {
	var markets []*policy.Snapshot
	for _, b := range []float64{0, 0.5} {
		s, _, err := marketgen.Generate(marketgen.Config{Requests: 300, Offers: 130, Seed: 3, BundleShare: b, NearShare: 0.5})
		if err != nil {
			t.Fatal(err)
		}
		markets = append(markets, s)
	}
	rng := rand.New(rand.NewPCG(7, 7))
	for range 20 {
		markets = append(markets, randomSnapshot(rng, 1+rng.IntN(150), 1+rng.IntN(60)))
	}
	for mi, s := range markets {
		g := newGraph(s)
		for ri := range s.Requests {
			row := g.row(ri)
			for oi := range s.Offers {
				got := row[oi>>6]&(1<<(uint(oi)&63)) != 0
				if want := policy.Eligible(&s.Offers[oi], &s.Requests[ri], len(s.Kinds)); got != want {
					t.Fatalf("market %d: request %d offer %d: graph %v, Eligible %v", mi, ri, oi, got, want)
				}
			}
		}
	}
}

// randomSnapshot is a market with small value ranges: shared regions,
// attributes and prices, zero capacities, any radius.
func randomSnapshot(rng *rand.Rand, nr, no int) *policy.Snapshot {
	s := &policy.Snapshot{Kinds: []policy.Kind{1, 2, 3, 4}[:1+rng.IntN(4)]}
	nk := len(s.Kinds)
	coord := func() (int32, int32) {
		return int32(rng.IntN(180_000_000)) - 90_000_000, int32(rng.IntN(360_000_000)) - 180_000_000
	}
	for i := range no {
		o := policy.Offer{ID: uint64(i + 1), Provider: uint32(i + 1), Region: uint32(rng.IntN(4)), Attrs: rng.Uint64N(8), Reliability: uint16(rng.IntN(10_001))}
		o.Lat, o.Lon = coord()
		if rng.IntN(10) == 0 {
			o.Lat, o.Lon = 0, 0
		}
		for k := range nk {
			o.Capacity[k], o.Price[k] = rng.Uint64N(50), rng.Uint64N(12)
		}
		s.Offers = append(s.Offers, o)
	}
	for i := range nr {
		r := policy.Request{ID: uint64(i + 1), Region: uint32(rng.IntN(4)), Attrs: rng.Uint64N(8), MinReliability: uint16(rng.IntN(10_001))}
		r.Lat, r.Lon = coord()
		switch rng.IntN(4) {
		case 0:
			r.WithinKm = uint32(rng.IntN(3000))
		case 1:
			r.WithinKm = ^uint32(0) >> rng.IntN(12)
		}
		if rng.IntN(3) == 0 {
			r.Flags = policy.FlagBundle
		}
		for k := range nk {
			if rng.IntN(3) > 0 {
				r.Demand[k] = rng.Uint64N(40)
			}
			r.MaxPrice[k] = rng.Uint64N(14)
		}
		s.Requests = append(s.Requests, r)
	}
	return s
}
