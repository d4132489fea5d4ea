package policies_test

import (
	"math/big"
	"reflect"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// oneKind is a compute-only market of the given offers and requests (ids
// in order).
func oneKind(offers []policy.Offer, requests []policy.Request) *policy.Snapshot {
	s := &policy.Snapshot{Epoch: 1, Kinds: []policy.Kind{policy.Compute}, Offers: offers, Requests: requests}
	for i := range s.Offers {
		s.Offers[i].ID, s.Offers[i].Provider = uint64(i+1), uint32(i+1)
	}
	for i := range s.Requests {
		s.Requests[i].ID = uint64(i + 1)
	}
	return s
}

func offer(capacity, ask uint64) policy.Offer {
	return policy.Offer{Capacity: [policy.MaxKinds]uint64{capacity}, Price: [policy.MaxKinds]uint64{ask}}
}

func request(demand, max uint64, bundle bool) policy.Request {
	r := policy.Request{Demand: [policy.MaxKinds]uint64{demand}, MaxPrice: [policy.MaxKinds]uint64{max}}
	if bundle {
		r.Flags = policy.FlagBundle
	}
	return r
}

// surplus is the exact total surplus of an allocation list (at the offers'
// asks, as measure, but without overflow).
func surplus(s *policy.Snapshot, as []policy.Allocation) *big.Int {
	sum, t := new(big.Int), new(big.Int)
	for _, a := range as {
		r, o := &s.Requests[a.Request], &s.Offers[a.Offer]
		for k := range s.Kinds {
			t.SetUint64(r.MaxPrice[k] - o.Price[k])
			sum.Add(sum, t.Mul(t, new(big.Int).SetUint64(a.Amount[k])))
		}
	}
	return sum
}

// runPolicy runs a policy natively and, unless -short, in the VM, which
// must give the same list; the list must validate.
func runPolicy(t *testing.T, name string, s *policy.Snapshot) []policy.Allocation {
	t.Helper()
	as, err := native[name](s)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if err := validate(s, as); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !testing.Short() {
		v, ps := load(t)
		out, err := call(v, ps[name], s.Encode(), len(s.Kinds))
		if err != nil {
			t.Fatalf("%s in the VM: %v", name, err)
		}
		if !reflect.DeepEqual(out.allocs, as) && !(len(out.allocs) == 0 && len(as) == 0) {
			t.Fatalf("%s: VM output %+v differs from native %+v", name, out.allocs, as)
		}
	}
	return as
}

// TestCheapBundleDoesNotCrowdOut is issue 17's case 3: one offer (10 units
// at ask 4), a divisible request worth far more than a bundle that wants
// the same capacity. optimal used to place the bundle (its value was
// positive at dual prices that only took ask levels) and got 10 of 960,
// and 0 of 26 with a zero-margin bundle.
func TestCheapBundleDoesNotCrowdOut(t *testing.T) {
	for _, tc := range []struct {
		name     string
		requests []policy.Request
		want     int64
	}{
		{"cheap bundle", []policy.Request{request(10, 100, false), request(10, 5, true)}, 960},
		{"zero-margin bundle", []policy.Request{request(2, 17, false), request(10, 4, true)}, 26},
		{"bundle first in id order", []policy.Request{request(10, 5, true), request(10, 100, false)}, 960},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := oneKind([]policy.Offer{offer(10, 4)}, tc.requests)
			if got := exactOptimum(s); got != tc.want {
				t.Fatalf("exact optimum %d, want %d", got, tc.want)
			}
			as := runPolicy(t, "optimal", s)
			if got := surplus(s, as).Int64(); got != tc.want {
				t.Fatalf("optimal: surplus %d of %d: %+v", got, tc.want, as)
			}
		})
	}
}

// TestAuctionIgnoresUnplaceableBundles is issue 17's case 4: a bundle that
// fits no single offer used to enter the clearing curve and push the
// price (50) above the only bid that could trade (8), clearing nothing of
// a possible 70.
func TestAuctionIgnoresUnplaceableBundles(t *testing.T) {
	s := oneKind([]policy.Offer{offer(10, 1)}, []policy.Request{request(100, 100, true), request(10, 8, false)})
	as := runPolicy(t, "auction", s)
	if got := surplus(s, as).Int64(); got != 70 {
		t.Fatalf("auction: surplus %d, want 70: %+v", got, as)
	}
	// The price is the midpoint of the marginal bid and ask: 1 + (8−1)/2.
	if len(as) != 1 || as[0].Price[0] != 4 {
		t.Fatalf("auction: %+v, want 10 units at 4", as)
	}
}

// TestHugeBundleValues is issue 17's case 5: bundle values above 2^64
// saturate in integer arithmetic, and the two bundles below tied there, so
// optimal kept the smaller one (80% of the optimum). The bundle of 5 is
// worth more and must be the one served. greedy still ranks by saturated
// value (ties by position), so it serves the smaller: optimal must not
// follow it.
func TestHugeBundleValues(t *testing.T) {
	const max = 1 << 62
	s := oneKind([]policy.Offer{offer(5, 1)}, []policy.Request{request(4, max, true), request(5, max, true)})
	as := runPolicy(t, "optimal", s)
	if len(as) != 1 || as[0].Request != 1 {
		t.Fatalf("optimal: %+v, want the bundle of 5 (request 1)", as)
	}
	gr := runPolicy(t, "greedy", s)
	if surplus(s, as).Cmp(surplus(s, gr)) < 0 {
		t.Fatalf("optimal's surplus %v below greedy's %v", surplus(s, as), surplus(s, gr))
	}
}
