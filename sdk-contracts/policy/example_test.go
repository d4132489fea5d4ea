package policy_test

import (
	"fmt"

	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// market is a two-kind snapshot: one offer in region 1, two requests.
func market() *policy.Snapshot {
	return &policy.Snapshot{
		Epoch: 7,
		Kinds: []policy.Kind{policy.Compute, policy.Energy},
		Offers: []policy.Offer{{
			ID: 1, Region: 1, Lat: 48_130_000, Lon: 11_580_000, Reliability: 9900, Provider: 1,
			Flags: policy.FlagRunsJobs, Jobs: policy.JobRecord{Completed: 15, Failed: 3, TimedOut: 1, Slashed: 1},
			Capacity: [policy.MaxKinds]uint64{100, 50}, Price: [policy.MaxKinds]uint64{5, 1},
		}},
		Requests: []policy.Request{
			{ID: 1, Region: 1, Demand: [policy.MaxKinds]uint64{10, 5}, MaxPrice: [policy.MaxKinds]uint64{8, 2}},
			{ID: 2, Lat: 52_520_000, Lon: 13_400_000, WithinKm: 50, // Berlin, offer in Munich
				Demand: [policy.MaxKinds]uint64{10}, MaxPrice: [policy.MaxKinds]uint64{9}},
		},
	}
}

// A policy is a function from the snapshot to allocations. Apply runs it
// on the encoded snapshot, exactly as Handle does inside the VM.
func ExampleApply() {
	input := market().Encode()
	serveAll := func(s *policy.Snapshot) ([]policy.Allocation, error) {
		b := policy.NewBook(s)
		for ri := range s.Requests {
			for oi := range s.Offers {
				o, r := &s.Offers[oi], &s.Requests[ri]
				if !policy.Eligible(o, r, len(s.Kinds)) {
					continue
				}
				for k := range s.Kinds {
					b.Add(ri, oi, k, min(b.Need(ri, k), b.Spare(oi, k)), o.Price[k])
				}
			}
		}
		return b.Allocations(), nil
	}
	out, err := policy.Apply(input, serveAll)
	if err != nil {
		fmt.Println(err)
		return
	}
	allocs, _ := policy.DecodeAllocations(out, 2)
	for _, a := range allocs {
		fmt.Printf("request %d <- offer %d: amounts %v prices %v\n", a.Request, a.Offer, a.Amount[:2], a.Price[:2])
	}
	// Output:
	// request 0 <- offer 0: amounts [10 5] prices [5 1]
}

// Eligible applies the ABI's integer rules: region, attributes,
// reliability, distance (COS table) and price on every kind with demand.
func ExampleEligible() {
	s := market()
	o := &s.Offers[0]
	for i := range s.Requests {
		r := &s.Requests[i]
		fmt.Printf("request %d: compatible %v, price ok %v, eligible %v\n",
			r.ID, policy.Compatible(o, r), policy.PriceOK(o, r, 2), policy.Eligible(o, r, 2))
	}
	// Output:
	// request 1: compatible true, price ok true, eligible true
	// request 2: compatible false, price ok true, eligible false
}

// CheckAllocations is the kernel's validation, for a policy's tests.
func ExampleSnapshot_CheckAllocations() {
	s := market()
	over := []policy.Allocation{{Request: 0, Offer: 0, Amount: [policy.MaxKinds]uint64{11}, Price: [policy.MaxKinds]uint64{5}}}
	fmt.Println(s.CheckAllocations(over))
	ok := []policy.Allocation{{Request: 0, Offer: 0, Amount: [policy.MaxKinds]uint64{10, 5}, Price: [policy.MaxKinds]uint64{6, 2}}}
	fmt.Println(s.CheckAllocations(ok))
	// Output:
	// policy: invalid allocation 0: request 0 over demand 10 on compute
	// <nil>
}

// A snapshot round-trips through its ABI encoding.
func ExampleDecode() {
	b := market().Encode()
	s, err := policy.Decode(b)
	fmt.Println(len(b), err, s.Epoch, s.Kinds, len(s.Offers), len(s.Requests), s.Requests[1].WithinKm, s.Offers[0].Jobs)
	// Output:
	// 268 <nil> 7 [compute energy] 1 2 50 {15 3 1 1}
}

// An offer's job record tells how reliably its provider ran jobs: a policy
// can prefer the offers whose jobs rarely timed out or were slashed.
func ExampleOffer_JobFailureBps() {
	o := &market().Offers[0]
	fmt.Println(o.RunsJobs(), o.JobFailureBps())
	// Output:
	// true 1000
}
