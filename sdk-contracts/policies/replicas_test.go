package policies_test

import (
	"context"
	"math/big"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/sos-kernel/sos/rome"
	"github.com/sos-kernel/sos/rome/marketgen"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
	"github.com/sos-kernel/sos/vm"
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

// TestReplicaFamilyValid: on small markets of the replicas family
// (rome/marketgen; also with scarce regions, so that spread binds, and
// with more replicas than some markets have providers), every shipped
// policy's .wasm, run in the VM, gives what its Go code gives natively, and
// the kernel's Validate (k distinct providers, distinct regions with
// spread, whole replicas, held replicas), the SDK's validator and this
// package's own validate all accept it. optimal is never below greedy.
func TestReplicaFamilyValid(t *testing.T) {
	v, ps := load(t)
	for seed := range uint64(6) {
		cfg, _ := marketgen.FamilyConfig("replicas", 300, 40, seed+1)
		switch seed % 3 {
		case 1:
			cfg.Regions, cfg.MaxReplicas, cfg.SpreadShare, cfg.Load = 3, 5, 0.8, 2
		case 2:
			cfg.OffersPerProvider, cfg.HeldShare, cfg.RunsJobsShare = 10, 0.5, 0.5
		}
		s, snap, err := marketgen.Generate(cfg)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := rome.DecodeSnapshot(snap)
		if err != nil {
			t.Fatal(err)
		}
		nk := len(s.Kinds)
		var greedy *big.Int
		for _, name := range policyNames {
			out, err := call(v, ps[name], snap, nk)
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			want, err := native[name](s)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(out.allocs, want) {
				t.Fatalf("seed %d: %s: the VM's output differs from the native one", seed, name)
			}
			as := make([]rome.Allocation, len(out.allocs))
			for i, a := range out.allocs {
				as[i] = rome.Allocation{Request: a.Request, Offer: a.Offer, Amount: a.Amount[:nk:nk], Price: a.Price[:nk:nk]}
			}
			if err := rome.Validate(hs, as); err != nil {
				t.Fatalf("seed %d: %s: the kernel refuses its allocations: %v", seed, name, err)
			}
			if err := s.CheckAllocations(out.allocs); err != nil {
				t.Fatalf("seed %d: %s: SDK validator: %v", seed, name, err)
			}
			if err := validate(s, out.allocs); err != nil {
				t.Fatalf("seed %d: %s: %v", seed, name, err)
			}
			sur := surplus(s, out.allocs)
			switch name {
			case "greedy":
				greedy = sur
			case "optimal":
				if sur.Cmp(greedy) < 0 {
					t.Errorf("seed %d: optimal's surplus %v below greedy's %v", seed, sur, greedy)
				}
			}
			t.Logf("seed %d %-8s surplus %v, %d replicas placed", seed, name, sur, countReplicas(hs, as))
		}
	}
}

// TestOptimalServesValuableReplicas: optimal weighs a replica against the
// ordinary demand it competes with. One offer of 10 storage at ask 1 (it
// runs jobs), an ordinary request for 10 at most 2 and a replicated
// request (one replica of 10) at most 10: the replica is worth 90, the
// ordinary request 10. Before optimal placed replicas itself, the SDK
// placed them after the ordinary requests, which had taken the offer (10
// of 90). A second replica must go to another provider: offers 2 and 3
// belong to provider 2 and are cheaper than offer 4 of provider 3, so the
// replicas take offer 1 or 2 and offer 4, never both 2 and 3.
func TestOptimalServesValuableReplicas(t *testing.T) {
	v, ps := load(t)
	s := &policy.Snapshot{Kinds: []policy.Kind{policy.Storage}}
	off := func(id uint64, provider uint32, capacity, price uint64) policy.Offer {
		o := policy.Offer{ID: id, Region: 1, Reliability: 9999, Flags: policy.FlagRunsJobs, Provider: provider}
		o.Capacity[0], o.Price[0] = capacity, price
		return o
	}
	req := func(id uint64, replicas uint16, demand, max uint64) policy.Request {
		r := policy.Request{ID: id, Replicas: replicas}
		r.Demand[0], r.MaxPrice[0] = demand, max
		return r
	}
	s.Offers = []policy.Offer{off(1, 1, 10, 1)}
	s.Requests = []policy.Request{req(1, 0, 10, 2), req(2, 1, 10, 10)}
	out, err := call(v, ps["optimal"], s.Encode(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := surplus(s, out.allocs); got.Int64() != 90 {
		t.Fatalf("surplus %v (allocations %+v), want 90: the replica", got, out.allocs)
	}

	s.Offers = []policy.Offer{off(1, 1, 10, 8), off(2, 2, 10, 1), off(3, 2, 10, 1), off(4, 3, 10, 3)}
	s.Requests = []policy.Request{req(1, 2, 10, 10)}
	out, err = call(v, ps["optimal"], s.Encode(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(s, out.allocs); err != nil {
		t.Fatal(err)
	}
	if got := surplus(s, out.allocs); got.Int64() != 90+70 {
		t.Fatalf("surplus %v (allocations %+v), want 160: one replica on provider 2, one on provider 3", got, out.allocs)
	}
}

// replicaBound10k is lagrangeBound (600 steps) of the replicas family at
// 10,000 × 1,000 × 4 kinds, seed 1: an upper bound on its LP relaxation
// with the replica constraint (BenchmarkReplicaPlacement computes it).
const replicaBound10k = 8_091_221.3

// TestOptimalReplicaFigure is issue 13's replica figure as a test: the
// optimal policy's .wasm places the replicas family at 10,000 requests ×
// 1,000 offers within replicaFigureGas, finishing rather than stopping on
// the budget, and reaches at least 97% of the bound. The call is warm, as
// the epoch's is (rome.RunPolicy: the active policy pays no load charge),
// so its gas is what the epoch's policy_gas pays. Gas is deterministic, so
// the test is too. (It used 1,529 Mgas warm, 1,682 Mgas with the load,
// within the 2 Ggas of rome's default policy_gas, before greedyAnswer and
// the cheaper loops, and 971 Mgas before stop 25's; BENCHMARKS.md has its
// gas and time.)
func TestOptimalReplicaFigure(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 × 1,000 market; skipped with -short")
	}
	v, ps := load(t)
	cfg, _ := marketgen.FamilyConfig("replicas", 10000, 1000, 1)
	s, snap, err := marketgen.Generate(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c := ps["optimal"]
	var res vm.Result
	var took time.Duration
	for range 2 { // the first call may instantiate the module: time the second
		start := time.Now()
		res, err = v.Call(context.Background(), c.code, c.prepared, "allocate", snap, vm.Env{ChainID: "test"}, refusingHost{}, replicaFigureGas, vm.Warm(nil))
		took = time.Since(start)
		if err != nil || res.Failed {
			t.Fatalf("optimal within %d gas: %v (%s), gas %d", replicaFigureGas, err, res.Data, res.GasUsed)
		}
	}
	as, err := policy.DecodeAllocations(res.Data, len(s.Kinds))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(s, as); err != nil {
		t.Fatal(err)
	}
	sf, _ := new(big.Float).SetInt(surplus(s, as)).Float64()
	t.Logf("gas %d in %v (%.2f ns/gas), surplus %.0f, %.2f%% of the bound", res.GasUsed, took,
		float64(took.Nanoseconds())/float64(res.GasUsed), sf, 100*sf/replicaBound10k)
	if sf < 0.97*replicaBound10k {
		t.Fatalf("surplus %.0f is %.2f%% of the bound %.1f, want ≥ 97%%", sf, 100*sf/replicaBound10k, replicaBound10k)
	}
}

// replicaFigureGas is TestOptimalReplicaFigure's budget: issue 13 asks
// for ≤ 1 s, and the VM's prices aim at 1 ns per gas (the call measured
// 1.03–1.38 ns/gas). The call uses 748 Mgas (971 Mgas, 1.07–1.15 s on the
// same machine, before the cuts of BENCHMARKS.md's "Stop 25"); the rest is
// a margin for toolchain changes.
const replicaFigureGas = 900_000_000
