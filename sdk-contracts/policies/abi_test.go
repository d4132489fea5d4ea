package policies_test

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/sos-kernel/sos/rome"
	"github.com/sos-kernel/sos/rome/marketgen"
	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// TestHostAndGuestCodecsAgree: the kernel's snapshot encoder (package rome)
// and the guest kit's decoder read the same ABI v2 bytes the same way, job
// records included, and the other way round.
func TestHostAndGuestCodecsAgree(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	for i := range 200 {
		hs := &rome.Snapshot{Epoch: rng.Uint64(), Kinds: []uint8{1, 2, 4}}
		nk := len(hs.Kinds)
		for j := range rng.IntN(6) {
			o := rome.SnapOffer{ID: uint64(j + 1), Region: rng.Uint32(), Lat: rng.Int32(), Lon: -rng.Int32(), Attrs: rng.Uint64(),
				Reliability: uint16(rng.IntN(10_001)), RunsJobs: rng.IntN(2) == 0, Provider: 1 + rng.Uint32N(3),
				Jobs:     rome.ProviderRecord{Completed: rng.Uint64(), Failed: rng.Uint64N(9), TimedOut: rng.Uint64N(9), Slashed: rng.Uint64()},
				Capacity: make([]uint64, nk), Price: make([]uint64, nk)}
			for k := range nk {
				o.Capacity[k], o.Price[k] = rng.Uint64(), rng.Uint64()
			}
			hs.Offers = append(hs.Offers, o)
		}
		for j := range rng.IntN(4) {
			r := rome.SnapRequest{ID: uint64(j + 1), Region: rng.Uint32(), WithinKm: rng.Uint32(), Bundle: rng.IntN(2) == 0,
				Demand: make([]uint64, nk), MaxPrice: make([]uint64, nk)}
			if !r.Bundle && rng.IntN(2) == 0 {
				r.Replicas, r.Spread = uint16(1+rng.IntN(3)), rng.IntN(2) == 0
			}
			for k := range nk {
				r.Demand[k], r.MaxPrice[k] = rng.Uint64(), rng.Uint64()
			}
			hs.Requests = append(hs.Requests, r)
		}
		for ri, r := range hs.Requests {
			for p := uint32(1); p <= 3; p++ {
				if r.Replicas > 0 && rng.IntN(3) == 0 {
					hs.Held = append(hs.Held, rome.Held{Request: uint32(ri), Provider: p, Region: rng.Uint32()})
				}
			}
		}
		b := hs.Encode()
		gs, err := policy.Decode(b)
		if err != nil {
			t.Fatalf("snapshot %d: the guest refuses the host's encoding: %v", i, err)
		}
		for j, o := range hs.Offers {
			g := &gs.Offers[j]
			if g.ID != o.ID || g.RunsJobs() != o.RunsJobs || g.Reliability != o.Reliability || g.Provider != o.Provider ||
				g.Jobs != (policy.JobRecord{Completed: o.Jobs.Completed, Failed: o.Jobs.Failed, TimedOut: o.Jobs.TimedOut, Slashed: o.Jobs.Slashed}) ||
				g.Capacity[nk-1] != o.Capacity[nk-1] || g.Price[0] != o.Price[0] {
				t.Fatalf("snapshot %d offer %d: host %+v, guest %+v", i, j, o, *g)
			}
			if g.JobFailureBps() != o.Jobs.FailureBps() {
				t.Fatalf("failure share: guest %d, host %d", g.JobFailureBps(), o.Jobs.FailureBps())
			}
		}
		for j, r := range hs.Requests {
			if g := &gs.Requests[j]; g.Replicas != r.Replicas || g.Spread() != r.Spread {
				t.Fatalf("snapshot %d request %d: host %+v, guest %+v", i, j, r, *g)
			}
		}
		if len(gs.Held) != len(hs.Held) {
			t.Fatalf("snapshot %d: %d held replicas, guest read %d", i, len(hs.Held), len(gs.Held))
		}
		back, err := rome.DecodeSnapshot(gs.Encode())
		if err != nil {
			t.Fatalf("snapshot %d: the host refuses the guest's encoding: %v", i, err)
		}
		if string(back.Encode()) != string(b) {
			t.Fatalf("snapshot %d: the round trip through both codecs changed the bytes", i)
		}
	}
}

// TestGreedyPrefersReliableProviders: at equal prices the shipped greedy
// policy serves a request from the provider whose jobs did not time out or
// get slashed, whatever the offers' order.
func TestGreedyPrefersReliableProviders(t *testing.T) {
	unreliable := policy.Offer{ID: 1, Provider: 1, Flags: policy.FlagRunsJobs, Jobs: policy.JobRecord{Completed: 8, TimedOut: 2},
		Capacity: [policy.MaxKinds]uint64{10}, Price: [policy.MaxKinds]uint64{3}}
	reliable := policy.Offer{ID: 2, Provider: 2, Flags: policy.FlagRunsJobs, Jobs: policy.JobRecord{Completed: 10, Failed: 4},
		Capacity: [policy.MaxKinds]uint64{10}, Price: [policy.MaxKinds]uint64{3}}
	s := &policy.Snapshot{Kinds: []policy.Kind{policy.Compute}, Offers: []policy.Offer{unreliable, reliable},
		Requests: []policy.Request{{ID: 1, Demand: [policy.MaxKinds]uint64{6}, MaxPrice: [policy.MaxKinds]uint64{5}}}}
	as := fill.Greedy(s)
	if len(as) != 1 || s.Offers[as[0].Offer].ID != 2 {
		t.Fatalf("allocations %+v: want the whole demand on offer 2", as)
	}
	// A cheaper offer still wins: reliability only breaks price ties.
	s.Offers[0].Price[0] = 2
	if as := fill.Greedy(s); len(as) != 1 || s.Offers[as[0].Offer].ID != 1 {
		t.Fatalf("allocations %+v: want the cheaper offer 1", as)
	}
}

// TestGreedyMatchesShippedPolicy: the kernel's built-in Greedy
// (rome.Greedy, one half of the built-in fallback) is greedy.wasm's
// algorithm ported to the kernel's types; on random markets (bundles,
// regions, ties, job records, replicated requests) both give the same
// allocation list, byte for byte.
func TestGreedyMatchesShippedPolicy(t *testing.T) {
	rng := rand.New(rand.NewPCG(31, 32))
	for i := range 300 {
		cfg := marketgen.Config{
			Requests:    rng.IntN(150),
			Offers:      rng.IntN(30),
			Kinds:       1 + rng.IntN(4),
			Seed:        rng.Uint64(),
			BundleShare: []float64{0, 0.3, 0.8}[rng.IntN(3)],
			Regions:     1 + rng.IntN(4),
			Load:        []float64{0.5, 1.25, 4}[rng.IntN(3)],
			TiedPrices:  rng.IntN(3) == 0,
		}
		gs, _, err := marketgen.Generate(cfg)
		if err != nil {
			t.Fatal(err)
		}
		nk := len(gs.Kinds)
		hs := &rome.Snapshot{Epoch: gs.Epoch}
		for _, k := range gs.Kinds {
			hs.Kinds = append(hs.Kinds, uint8(k))
		}
		for _, o := range gs.Offers {
			jobs := rome.ProviderRecord{Completed: rng.Uint64N(4), TimedOut: rng.Uint64N(2), Slashed: rng.Uint64N(2)}
			hs.Offers = append(hs.Offers, rome.SnapOffer{ID: o.ID, Region: o.Region, Lat: o.Lat, Lon: o.Lon, Attrs: o.Attrs,
				Reliability: o.Reliability, RunsJobs: true, Jobs: jobs, Provider: 1 + uint32(rng.IntN(8)),
				Capacity: append([]uint64(nil), o.Capacity[:nk]...), Price: append([]uint64(nil), o.Price[:nk]...)})
		}
		for _, r := range gs.Requests {
			hr := rome.SnapRequest{ID: r.ID, Region: r.Region, Lat: r.Lat, Lon: r.Lon, WithinKm: r.WithinKm,
				Attrs: r.Attrs, MinReliability: r.MinReliability, Bundle: r.Bundle(),
				Demand: append([]uint64(nil), r.Demand[:nk]...), MaxPrice: append([]uint64(nil), r.MaxPrice[:nk]...)}
			if !hr.Bundle && rng.IntN(6) == 0 { // a replicated request (storage): whole replicas on distinct providers
				hr.Replicas, hr.Spread = uint16(1+rng.IntN(3)), rng.IntN(2) == 0
			}
			hs.Requests = append(hs.Requests, hr)
		}
		// The guest reads the kernel's bytes and runs as greedy.wasm does
		// (Apply places the replicas).
		want, err := policy.Apply(hs.Encode(), native["greedy"])
		if err != nil {
			t.Fatal(err)
		}
		if got := rome.EncodeAllocations(nk, rome.Greedy(hs)); !bytes.Equal(got, want) {
			t.Fatalf("market %d %+v: rome.Greedy differs from the shipped greedy policy", i, cfg)
		}
	}
}
