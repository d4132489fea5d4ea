package policy_test

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

// TestCosTable checks the table against round(cos(d°)·1e6).
func TestCosTable(t *testing.T) {
	for d := 0; d <= 90; d++ {
		want := int64(math.Round(math.Cos(float64(d)*math.Pi/180) * 1e6))
		if got := policy.Cos(d); got != want {
			t.Errorf("Cos(%d) = %d, want %d", d, got, want)
		}
	}
	if policy.Cos(-5) != 1e6 || policy.Cos(200) != 0 {
		t.Error("Cos does not clamp")
	}
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		latO, lonO, latR, lonR int32
		want                   int64
	}{
		// One degree of latitude: 111320 m.
		{"lat degree", 1_000_000, 0, 0, 0, 111320 * 111320},
		// One degree of longitude at 60°: COS[60] = 500000 -> 55660 m.
		{"lon at 60", 60_000_000, 1_000_000, 60_000_000, 0, 55660 * 55660},
		// Truncation toward zero on negative differences.
		{"negative", -1, -1, 0, 0, 0},
		// Mean latitude uses |lat_o + lat_r| / 2: 89.5° -> COS[89].
		{"near pole", 90_000_000, 1_000_000, 89_000_000, 0, 1942*1942 + 111320*111320},
		// Extreme i32 values must not overflow.
		{"extreme", math.MaxInt32, math.MaxInt32, math.MinInt32, math.MinInt32, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := policy.Distance2(tc.latO, tc.lonO, tc.latR, tc.lonR)
			if tc.name == "extreme" {
				if got <= 0 {
					t.Fatalf("Distance2 = %d, overflowed", got)
				}
				return
			}
			if got != tc.want {
				t.Errorf("Distance2 = %d, want %d", got, tc.want)
			}
		})
	}
	o := &policy.Offer{Lat: 1_000_000}
	for _, tc := range []struct {
		km   uint32
		want bool
	}{{0, true}, {111, false}, {112, true}, {math.MaxUint32, true}} {
		r := &policy.Request{WithinKm: tc.km}
		if got := policy.Near(o, r); got != tc.want {
			t.Errorf("Near within %d km = %v, want %v", tc.km, got, tc.want)
		}
	}
}

func TestEligible(t *testing.T) {
	base := policy.Offer{Region: 2, Attrs: 0b101, Reliability: 9500, Price: [policy.MaxKinds]uint64{10, 99}}
	for _, tc := range []struct {
		name string
		r    policy.Request
		want bool
	}{
		{"any", policy.Request{Demand: [policy.MaxKinds]uint64{1}, MaxPrice: [policy.MaxKinds]uint64{10}}, true},
		{"region", policy.Request{Region: 3}, false},
		{"same region", policy.Request{Region: 2}, true},
		{"attrs", policy.Request{Attrs: 0b010}, false},
		{"attrs subset", policy.Request{Attrs: 0b100}, true},
		{"reliability", policy.Request{MinReliability: 9501}, false},
		{"price", policy.Request{Demand: [policy.MaxKinds]uint64{1}, MaxPrice: [policy.MaxKinds]uint64{9}}, false},
		// Kind 1 costs 99 but has no demand: not checked.
		{"price no demand", policy.Request{Demand: [policy.MaxKinds]uint64{1}, MaxPrice: [policy.MaxKinds]uint64{10, 0}}, true},
		{"price other kind", policy.Request{Demand: [policy.MaxKinds]uint64{1, 1}, MaxPrice: [policy.MaxKinds]uint64{10, 98}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := policy.Eligible(&base, &tc.r, 2); got != tc.want {
				t.Errorf("Eligible = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	good := (&policy.Snapshot{Kinds: []policy.Kind{1, 3}, Offers: []policy.Offer{{Provider: 1}}, Requests: make([]policy.Request, 1)}).Encode()
	if _, err := policy.Decode(good); err != nil {
		t.Fatal(err)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	for name, b := range map[string][]byte{
		"empty":      nil,
		"magic":      mut(func(b []byte) []byte { b[0] = 'X'; return b }),
		"version":    mut(func(b []byte) []byte { b[4] = 1; return b }),
		"kind order": mut(func(b []byte) []byte { b[17], b[18] = 3, 1; return b }),
		"kind id":    mut(func(b []byte) []byte { b[18] = 5; return b }),
		"trailing":   append(bytes.Clone(good), 0),
		"short":      good[:len(good)-1],
		"count":      mut(func(b []byte) []byte { b[19] = 2; return b }),
	} {
		if _, err := policy.Decode(b); !errors.Is(err, policy.ErrCorrupt) {
			t.Errorf("%s: Decode error %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzDecode checks that Decode never panics on untrusted bytes and that
// whatever it accepts re-encodes to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(market().Encode())
	f.Add((&policy.Snapshot{}).Encode())
	f.Add((&policy.Snapshot{Kinds: []policy.Kind{1, 2, 3, 4}, Offers: make([]policy.Offer, 2)}).Encode())
	f.Add([]byte("ROME\x01\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := policy.Decode(b)
		if err != nil {
			if !errors.Is(err, policy.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if got := s.Encode(); !bytes.Equal(got, b) {
			t.Fatalf("round trip changed the bytes:\n%x\n%x", b, got)
		}
	})
}

// FuzzDecodeAllocations checks the output decoder the same way.
func FuzzDecodeAllocations(f *testing.F) {
	f.Add(policy.EncodeAllocations(2, []policy.Allocation{{Request: 1, Offer: 2, Amount: [policy.MaxKinds]uint64{3, 4}}}), 2)
	f.Add([]byte{0, 0, 0, 0}, 0)
	f.Fuzz(func(t *testing.T, b []byte, nk int) {
		nk = ((nk % (policy.MaxKinds + 1)) + policy.MaxKinds + 1) % (policy.MaxKinds + 1)
		a, err := policy.DecodeAllocations(b, nk)
		if err != nil {
			return
		}
		if got := policy.EncodeAllocations(nk, a); !bytes.Equal(got, b) {
			t.Fatalf("round trip changed the bytes")
		}
	})
}

func TestBook(t *testing.T) {
	s := market()
	b := policy.NewBook(s)
	b.Add(0, 0, 0, 4, 5)
	b.Add(0, 0, 1, 5, 1)
	b.Add(0, 0, 0, 6, 5)
	if got := len(b.Allocations()); got != 1 {
		t.Fatalf("%d allocations for one pair", got)
	}
	if a := b.Allocations()[0]; a.Amount[0] != 10 || a.Amount[1] != 5 || b.Spare(0, 0) != 90 || b.Need(0, 0) != 0 {
		t.Fatalf("book state %+v spare %d need %d", a, b.Spare(0, 0), b.Need(0, 0))
	}
	if err := s.CheckAllocations(b.Allocations()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Add above the demand did not panic")
		}
	}()
	b.Add(1, 0, 0, 11, 5)
}

// TestApplyAnytime: every list an AnytimeFunc hands in reaches handIn
// encoded, in order, before the call returns; the returned list is the
// result (not handed in); an error discards the result; Apply hands in
// nothing.
func TestApplyAnytime(t *testing.T) {
	s := &policy.Snapshot{Epoch: 1, Kinds: []policy.Kind{policy.Compute},
		Offers:   []policy.Offer{{ID: 1, Provider: 1, Capacity: [policy.MaxKinds]uint64{10}, Price: [policy.MaxKinds]uint64{1}}},
		Requests: []policy.Request{{ID: 2, Demand: [policy.MaxKinds]uint64{5}, MaxPrice: [policy.MaxKinds]uint64{3}}}}
	in := s.Encode()
	list := func(amount uint64) []policy.Allocation {
		return []policy.Allocation{{Request: 0, Offer: 0, Amount: [policy.MaxKinds]uint64{amount}, Price: [policy.MaxKinds]uint64{1}}}
	}
	f := func(_ *policy.Snapshot, handIn func([]policy.Allocation)) ([]policy.Allocation, error) {
		handIn(nil)
		handIn(list(2))
		return list(5), nil
	}
	var got [][]byte
	out, err := policy.ApplyAnytime(in, f, func(b []byte) { got = append(got, bytes.Clone(b)) })
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{policy.EncodeAllocations(1, nil), policy.EncodeAllocations(1, list(2))}
	if len(got) != 2 || !bytes.Equal(got[0], want[0]) || !bytes.Equal(got[1], want[1]) {
		t.Fatalf("handed in %x, want %x", got, want)
	}
	if !bytes.Equal(out, policy.EncodeAllocations(1, list(5))) {
		t.Fatalf("result %x", out)
	}
	fail := func(s *policy.Snapshot, handIn func([]policy.Allocation)) ([]policy.Allocation, error) {
		handIn(list(2))
		return nil, errors.New("no")
	}
	if out, err := policy.ApplyAnytime(in, fail, func([]byte) {}); err == nil || out != nil {
		t.Fatalf("error lost: %x, %v", out, err)
	}
	if _, err := policy.Apply(in, func(*policy.Snapshot) ([]policy.Allocation, error) { return list(1), nil }); err != nil {
		t.Fatal(err)
	}
}

// TestPlaceReplicasTopsUp: PlaceReplicas counts the replicas a list
// already gives (their providers and, with spread, regions too) and places
// only the missing ones. Before, it assumed a list without replicas: it
// placed all k again, on the provider the list already used.
func TestPlaceReplicasTopsUp(t *testing.T) {
	off := func(id uint64, provider, region uint32, price uint64) policy.Offer {
		return policy.Offer{ID: id, Provider: provider, Region: region, Flags: policy.FlagRunsJobs,
			Capacity: [policy.MaxKinds]uint64{100}, Price: [policy.MaxKinds]uint64{price}}
	}
	s := &policy.Snapshot{Kinds: []policy.Kind{policy.Storage},
		// Offer 0 (provider 1, region 1) is cheapest, then offer 1 (provider
		// 1, region 2), offer 2 (provider 2, region 1), offer 3 (provider 3,
		// region 3).
		Offers: []policy.Offer{off(1, 1, 1, 1), off(2, 1, 2, 2), off(3, 2, 1, 3), off(4, 3, 3, 4)},
		Requests: []policy.Request{{ID: 1, Flags: policy.FlagSpread, Replicas: 2,
			Demand: [policy.MaxKinds]uint64{10}, MaxPrice: [policy.MaxKinds]uint64{9}}}}
	given := policy.Allocation{Request: 0, Offer: 0, Amount: [policy.MaxKinds]uint64{10}, Price: [policy.MaxKinds]uint64{1}}
	got := policy.PlaceReplicas(s, []policy.Allocation{given})
	// Offer 1 shares offer 0's provider, offer 2 its region: offer 3.
	if len(got) != 2 || got[1].Offer != 3 || got[1].Amount[0] != 10 {
		t.Fatalf("allocations %+v: want one more replica, on offer 3", got)
	}
	if err := s.CheckAllocations(got); err != nil {
		t.Fatal(err)
	}
	if got := policy.PlaceReplicas(s, got); len(got) != 2 {
		t.Fatalf("a complete list grew: %+v", got)
	}
	// Without a list: the cheapest offer, then the cheapest of another
	// provider and region.
	if got := policy.PlaceReplicas(s, nil); len(got) != 2 || got[0].Offer != 0 || got[1].Offer != 3 {
		t.Fatalf("allocations %+v: want offers 0 and 3", got)
	}
}

// TestApplyAll: an allocator run by ApplyAll sees the replicated requests
// (ApplyAnytime hides them from it) and its lists go out as they are.
func TestApplyAll(t *testing.T) {
	s := &policy.Snapshot{Kinds: []policy.Kind{policy.Storage},
		Offers: []policy.Offer{{ID: 1, Provider: 1, Flags: policy.FlagRunsJobs, Capacity: [policy.MaxKinds]uint64{10}, Price: [policy.MaxKinds]uint64{1}}},
		Requests: []policy.Request{{ID: 1, Demand: [policy.MaxKinds]uint64{4}, MaxPrice: [policy.MaxKinds]uint64{3}},
			{ID: 2, Replicas: 1, Demand: [policy.MaxKinds]uint64{5}, MaxPrice: [policy.MaxKinds]uint64{3}}}}
	var seen int
	f := func(s *policy.Snapshot, handIn func([]policy.Allocation)) ([]policy.Allocation, error) {
		seen = len(s.Requests)
		handIn(nil)
		return []policy.Allocation{{Request: 1, Offer: 0, Amount: [policy.MaxKinds]uint64{5}, Price: [policy.MaxKinds]uint64{1}}}, nil
	}
	var handed [][]byte
	out, err := policy.ApplyAll(s.Encode(), f, func(b []byte) { handed = append(handed, bytes.Clone(b)) })
	if err != nil {
		t.Fatal(err)
	}
	if seen != 2 {
		t.Fatalf("the allocator saw %d requests, want both", seen)
	}
	as, err := policy.DecodeAllocations(out, 1)
	if err != nil || len(as) != 1 || as[0].Request != 1 || len(handed) != 1 {
		t.Fatalf("result %+v (%v), %d lists handed in: want the allocator's list as it is", as, err, len(handed))
	}
}

// TestSaturating: sums and products that overflow stop at the largest
// uint64 instead of wrapping; the rest are exact.
func TestSaturating(t *testing.T) {
	const top = ^uint64(0)
	for _, c := range []struct{ a, b, sum, prod uint64 }{
		{0, 0, 0, 0},
		{3, 4, 7, 12},
		{1 << 32, 1 << 31, 1<<32 + 1<<31, 1 << 63},
		{top, 1, top, top},
		{top - 1, 1, top, top - 1},
		{1 << 32, 1 << 32, 1 << 33, top},
		{top, 0, top, 0},
	} {
		if got := policy.SatAdd(c.a, c.b); got != c.sum {
			t.Errorf("SatAdd(%d, %d) = %d, want %d", c.a, c.b, got, c.sum)
		}
		if got := policy.SatMul(c.a, c.b); got != c.prod {
			t.Errorf("SatMul(%d, %d) = %d, want %d", c.a, c.b, got, c.prod)
		}
	}
}

// TestSatDot: SatDot equals the saturating sum of the saturating products
// kind by kind (the loops it replaced), on both sides of its 2^31 fast
// path, and saturates instead of wrapping.
func TestSatDot(t *testing.T) {
	const top = ^uint64(0)
	ref := func(a, b *[policy.MaxKinds]uint64) uint64 {
		var v uint64
		for k := range policy.MaxKinds {
			v = policy.SatAdd(v, policy.SatMul(a[k], b[k]))
		}
		return v
	}
	vals := []uint64{0, 1, 7, 1<<31 - 1, 1 << 31, 1<<32 - 1, 1 << 32, 1 << 40, 1 << 62, top}
	n := 0
	for i := range 4000 {
		var a, b [policy.MaxKinds]uint64
		for k := range policy.MaxKinds {
			a[k] = vals[(i*7+k*3)%len(vals)]
			b[k] = vals[(i*13+k*5+i/len(vals))%len(vals)]
		}
		if got, want := policy.SatDot(&a, &b), ref(&a, &b); got != want {
			t.Fatalf("SatDot(%v, %v) = %d, want %d", a, b, got, want)
		}
		n++
	}
	big := [policy.MaxKinds]uint64{1<<31 - 1, 1<<31 - 1, 1<<31 - 1, 1<<31 - 1}
	if got, want := policy.SatDot(&big, &big), 4*(uint64(1<<31-1)*(1<<31-1)); got != want {
		t.Fatalf("largest fast-path dot %d, want %d", got, want)
	}
	over := [policy.MaxKinds]uint64{1 << 32, 1 << 32, 0, 0}
	if got := policy.SatDot(&over, &over); got != top {
		t.Fatalf("overflowing dot %d, want saturated", got)
	}
}

// TestMaxPricesAtMost: AtMost(price, MaxPrices(r, nk)) is PriceOK on the
// first nk kinds, whatever the kinds r does not demand or beyond nk say.
func TestMaxPricesAtMost(t *testing.T) {
	for i := range 2000 {
		var r policy.Request
		var o policy.Offer
		for k := range policy.MaxKinds {
			r.Demand[k] = uint64((i >> k) & 1)
			r.MaxPrice[k] = uint64((i*7 + k*3) % 5)
			o.Price[k] = uint64((i*11 + k) % 5)
		}
		for nk := range policy.MaxKinds + 1 {
			mx := policy.MaxPrices(&r, nk)
			if got, want := policy.AtMost(&o.Price, &mx), policy.PriceOK(&o, &r, nk); got != want {
				t.Fatalf("request %+v offer %+v, %d kinds: AtMost %v, PriceOK %v", r, o, nk, got, want)
			}
		}
	}
}

// TestBookFits: Fits compares every kind of the snapshot's (one, two or
// four), the last included, and none beyond them; Spares is the capacity
// left per kind, zero beyond the snapshot's kinds.
func TestBookFits(t *testing.T) {
	for _, nk := range []int{1, 2, 4} {
		s := &policy.Snapshot{Kinds: []policy.Kind{policy.Compute, policy.Bandwidth, policy.Energy, policy.Storage}[:nk]}
		var o policy.Offer
		var r policy.Request
		for k := range nk {
			o.Capacity[k], r.Demand[k], r.MaxPrice[k] = 10, 10, 1
		}
		s.Offers, s.Requests = []policy.Offer{o, o}, []policy.Request{r, r}
		b := policy.NewBook(s)
		b.Add(0, 0, nk-1, 1, 1) // offer 0 has 9 left of the last kind, request 0 needs 9
		if !b.Fits(0, 0) || b.Fits(1, 0) || !b.Fits(1, 1) {
			t.Fatalf("%d kinds: fits %v %v %v, want true false true", nk, b.Fits(0, 0), b.Fits(1, 0), b.Fits(1, 1))
		}
		if sp := b.Spares(0); sp[nk-1] != 9 || nk < policy.MaxKinds && sp[nk] != 0 {
			t.Fatalf("%d kinds: spares %v", nk, *sp)
		}
	}
}
