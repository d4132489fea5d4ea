package policies_test

import (
	"math/rand/v2"
	"testing"

	"github.com/sos-kernel/sos/rome"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// TestShippedPoliciesPlaceReplicas: every shipped policy, run in the VM on
// markets with replicated requests (some spread across regions, some
// already holding replicas), gives allocations the kernel's Validate
// accepts — whole replicas on distinct providers (and regions) — and
// places replicas (not only the ordinary requests). The shipped policies
// serve ordinary requests first, so one may place fewer replicas than the
// built-in greedy (first come, first served) on a crowded market.
// Before ABI v3 was read by the SDK, every policy refused these snapshots.
func TestShippedPoliciesPlaceReplicas(t *testing.T) {
	v, ps := load(t)
	rng := rand.New(rand.NewPCG(13, 0))
	placed := map[string]int{}
	for m := range 12 {
		hs := &rome.Snapshot{Epoch: uint64(m), Kinds: []uint8{1, 4}}
		for j := range 6 + rng.IntN(10) {
			hs.Offers = append(hs.Offers, rome.SnapOffer{ID: uint64(j + 1), Region: 1 + rng.Uint32N(3), Reliability: 9500,
				RunsJobs: rng.IntN(5) > 0, Provider: 1 + rng.Uint32N(6),
				Capacity: []uint64{rng.Uint64N(100), rng.Uint64N(400)}, Price: []uint64{1 + rng.Uint64N(9), 1 + rng.Uint64N(4)}})
		}
		for j := range 5 + rng.IntN(20) {
			r := rome.SnapRequest{ID: uint64(j + 1), Demand: []uint64{rng.Uint64N(20), 1 + rng.Uint64N(60)}, MaxPrice: []uint64{10, 5}}
			switch rng.IntN(3) {
			case 0:
				r.Replicas, r.Spread = uint16(1+rng.IntN(3)), rng.IntN(2) == 0
			case 1:
				r.Bundle = true
			}
			hs.Requests = append(hs.Requests, r)
		}
		for ri, r := range hs.Requests {
			if r.Replicas > 0 && rng.IntN(2) == 0 {
				hs.Held = append(hs.Held, rome.Held{Request: uint32(ri), Provider: 1 + rng.Uint32N(6), Region: 1 + rng.Uint32N(3)})
			}
		}
		snap := hs.Encode()
		for _, name := range policyNames {
			out, err := call(v, ps[name], snap, len(hs.Kinds))
			if err != nil {
				t.Fatalf("market %d: %v", m, err)
			}
			as := make([]rome.Allocation, len(out.allocs))
			for i, a := range out.allocs {
				as[i] = rome.Allocation{Request: a.Request, Offer: a.Offer, Amount: a.Amount[:2:2], Price: a.Price[:2:2]}
			}
			if err := rome.Validate(hs, as); err != nil {
				t.Fatalf("market %d: %s: the kernel refuses its allocations: %v", m, name, err)
			}
			gs, _ := policy.Decode(snap)
			if err := gs.CheckAllocations(out.allocs); err != nil {
				t.Fatalf("market %d: %s: SDK validator: %v", m, name, err)
			}
			placed[name] += countReplicas(hs, as)
		}
	}
	for _, name := range policyNames {
		if placed[name] == 0 {
			t.Errorf("%s placed no replica on any market", name)
		}
	}
	t.Logf("replicas placed: %v", placed)
}

func countReplicas(s *rome.Snapshot, as []rome.Allocation) int {
	n := 0
	for _, a := range as {
		if s.Requests[a.Request].Replicas > 0 {
			n++
		}
	}
	return n
}
