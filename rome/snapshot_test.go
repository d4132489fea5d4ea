package rome

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/sos-kernel/sos/ledger"
)

// randomSnapshot makes a market with nk kinds; small ranges make
// collisions (shared regions, tight capacity, bundles) frequent.
func randomSnapshot(rng *rand.Rand, nOffers, nReqs int) *Snapshot {
	s := &Snapshot{Epoch: rng.Uint64N(100)}
	for k := uint8(1); k <= ledger.MaxResourceKind; k++ {
		if rng.IntN(3) > 0 || k == 1 {
			s.Kinds = append(s.Kinds, k)
		}
	}
	nk := len(s.Kinds)
	coord := func() (int32, int32) {
		return int32(rng.IntN(2_000_000)) + 47_000_000, int32(rng.IntN(4_000_000)) + 9_000_000
	}
	for i := 0; i < nOffers; i++ {
		o := SnapOffer{ID: uint64(i*3 + 1), Region: uint32(rng.IntN(3)), Attrs: rng.Uint64N(8), Reliability: uint16(rng.IntN(10_001)),
			Provider: uint32(1 + rng.IntN(max(1, nOffers*2/3))), Capacity: make([]uint64, nk), Price: make([]uint64, nk)}
		o.Lat, o.Lon = coord()
		if rng.IntN(2) == 0 {
			o.RunsJobs = true
			o.Jobs = ProviderRecord{Completed: rng.Uint64N(4), Failed: rng.Uint64N(2), TimedOut: rng.Uint64N(2), Slashed: rng.Uint64N(2)}
		}
		for k := range nk {
			o.Capacity[k], o.Price[k] = rng.Uint64N(60), rng.Uint64N(10)
		}
		s.Offers = append(s.Offers, o)
	}
	for i := 0; i < nReqs; i++ {
		r := SnapRequest{ID: uint64(i*5 + 2), Region: uint32(rng.IntN(3)), Attrs: rng.Uint64N(4), MinReliability: uint16(rng.IntN(8_000)),
			Bundle: rng.IntN(3) == 0, Demand: make([]uint64, nk), MaxPrice: make([]uint64, nk)}
		r.Lat, r.Lon = coord()
		if rng.IntN(2) == 0 {
			r.WithinKm = uint32(rng.IntN(200))
		}
		for k := range nk {
			if rng.IntN(3) > 0 {
				r.Demand[k] = rng.Uint64N(40)
			}
			r.MaxPrice[k] = rng.Uint64N(12)
		}
		if !r.Bundle && rng.IntN(3) == 0 { // replicated: whole replicas on distinct providers
			r.Replicas, r.Spread = uint16(1+rng.IntN(3)), rng.IntN(2) == 0
			for k := range nk {
				r.Demand[k] /= 4
			}
			prov := uint32(0)
			for range rng.IntN(3) {
				prov += uint32(1 + rng.IntN(3))
				s.Held = append(s.Held, Held{Request: uint32(i), Provider: prov, Region: uint32(rng.IntN(3))})
			}
		}
		s.Requests = append(s.Requests, r)
	}
	return s
}

// checkInvariants is an independent, naive check of what a validated list
// guarantees: no capacity or demand exceeded, prices and constraints met.
func checkInvariants(t *testing.T, s *Snapshot, as []Allocation) {
	t.Helper()
	nk := len(s.Kinds)
	used := make([][]uint64, len(s.Offers))
	got := make([][]uint64, len(s.Requests))
	for i := range used {
		used[i] = make([]uint64, nk)
	}
	for i := range got {
		got[i] = make([]uint64, nk)
	}
	for _, a := range as {
		r, o := s.Requests[a.Request], s.Offers[a.Offer]
		if !Eligible(&r, &o) {
			t.Fatalf("ineligible pair %d/%d", a.Request, a.Offer)
		}
		for k := range nk {
			used[a.Offer][k] += a.Amount[k]
			got[a.Request][k] += a.Amount[k]
			if a.Amount[k] > 0 && (a.Price[k] < o.Price[k] || a.Price[k] > r.MaxPrice[k]) {
				t.Fatalf("price %d outside [%d,%d]", a.Price[k], o.Price[k], r.MaxPrice[k])
			}
		}
	}
	for i, o := range s.Offers {
		for k := range nk {
			if used[i][k] > o.Capacity[k] {
				t.Fatalf("offer %d kind %d: %d > capacity %d", o.ID, s.Kinds[k], used[i][k], o.Capacity[k])
			}
		}
	}
	for i, r := range s.Requests {
		if r.Replicas > 0 {
			continue // checked below
		}
		for k := range nk {
			if got[i][k] > r.Demand[k] {
				t.Fatalf("request %d kind %d: %d > demand %d", r.ID, s.Kinds[k], got[i][k], r.Demand[k])
			}
		}
	}
	// Replicas: whole, on providers (and with spread regions) distinct from
	// each other and from those held, at most Replicas of them.
	type pr struct{ req, v uint32 }
	provs, regions, count := map[pr]int{}, map[pr]int{}, map[uint32]int{}
	for _, h := range s.Held {
		provs[pr{h.Request, h.Provider}]++
		regions[pr{h.Request, h.Region}]++
	}
	for _, a := range as {
		r, o := s.Requests[a.Request], s.Offers[a.Offer]
		if r.Replicas == 0 {
			continue
		}
		count[a.Request]++
		for k := range nk {
			if a.Amount[k] != r.Demand[k] {
				t.Fatalf("request %d: a replica of %v, demand %v", r.ID, a.Amount, r.Demand)
			}
		}
		if !o.RunsJobs {
			t.Fatalf("request %d: a replica on offer %d that runs no jobs", r.ID, o.ID)
		}
		if provs[pr{a.Request, o.Provider}]++; provs[pr{a.Request, o.Provider}] > 1 {
			t.Fatalf("request %d: two replicas with provider %d", r.ID, o.Provider)
		}
		if r.Spread {
			if regions[pr{a.Request, o.Region}]++; regions[pr{a.Request, o.Region}] > 1 || o.Region == 0 {
				t.Fatalf("request %d: replicas share region %d", r.ID, o.Region)
			}
		}
	}
	for ri, n := range count {
		if n > int(s.Requests[ri].Replicas) {
			t.Fatalf("request %d: %d replicas, wants %d", s.Requests[ri].ID, n, s.Requests[ri].Replicas)
		}
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 50; i++ {
		s := randomSnapshot(rng, rng.IntN(20), rng.IntN(20))
		b := s.Encode()
		d, err := DecodeSnapshot(b)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(d.Encode(), b) {
			t.Fatal("decode(encode(s)) re-encodes differently")
		}
		if len(s.Offers) > 0 && !reflect.DeepEqual(d.Offers, s.Offers) {
			t.Fatal("offers differ")
		}
		if !reflect.DeepEqual(d.Held, s.Held) {
			t.Fatalf("held replicas differ: %v, want %v", d.Held, s.Held)
		}
		if _, err := DecodeSnapshot(append(b, 0)); !errors.Is(err, ErrMalformed) {
			t.Fatal("trailing byte accepted")
		}
		if len(b) > 30 {
			if _, err := DecodeSnapshot(b[:len(b)-1]); !errors.Is(err, ErrMalformed) {
				t.Fatal("truncated snapshot accepted")
			}
		}
	}
}

// TestFirstComeNeverOverAllocates is the property test: on random markets the
// built-in policy's output validates, and any list that validates respects
// capacity, demand, prices and constraints (checked naively).
func TestFirstComeNeverOverAllocates(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := 0; i < 300; i++ {
		s := randomSnapshot(rng, 1+rng.IntN(15), 1+rng.IntN(30))
		as := FirstCome(s)
		if err := Validate(s, as); err != nil {
			t.Fatalf("seed %d: greedy output invalid: %v", seed, err)
		}
		checkInvariants(t, s, as)
		// Perturb the list: every perturbation that still validates must
		// still respect the invariants.
		for j := 0; j < 20 && len(as) > 0; j++ {
			p := make([]Allocation, len(as))
			for x := range as {
				p[x] = Allocation{Request: as[x].Request, Offer: as[x].Offer, Amount: append([]uint64(nil), as[x].Amount...), Price: append([]uint64(nil), as[x].Price...)}
			}
			a := &p[rng.IntN(len(p))]
			k := rng.IntN(len(s.Kinds))
			switch rng.IntN(4) {
			case 0:
				a.Amount[k] += 1 + rng.Uint64N(5)
			case 1:
				a.Price[k] = rng.Uint64N(15)
			case 2:
				a.Offer = uint32(rng.IntN(len(s.Offers)))
			case 3:
				p = append(p, p[0])
			}
			if Validate(s, p) == nil {
				checkInvariants(t, s, p)
			}
		}
	}
}

func TestValidateRejects(t *testing.T) {
	s := &Snapshot{Kinds: []uint8{1, 3},
		Offers:   []SnapOffer{{ID: 1, Region: 1, Capacity: []uint64{10, 10}, Price: []uint64{2, 2}}},
		Requests: []SnapRequest{{ID: 2, Demand: []uint64{5, 5}, MaxPrice: []uint64{3, 3}}, {ID: 3, Region: 2, Demand: []uint64{1, 0}, MaxPrice: []uint64{9, 9}}, {ID: 4, Bundle: true, Demand: []uint64{4, 4}, MaxPrice: []uint64{3, 3}}},
	}
	ok := Allocation{Request: 0, Offer: 0, Amount: []uint64{5, 5}, Price: []uint64{2, 3}}
	if err := Validate(s, []Allocation{ok}); err != nil {
		t.Fatal(err)
	}
	bad := map[string][]Allocation{
		"index out of range": {{Request: 9, Offer: 0, Amount: []uint64{1, 0}, Price: []uint64{2, 0}}},
		"over demand":        {{Request: 0, Offer: 0, Amount: []uint64{6, 0}, Price: []uint64{2, 0}}},
		"duplicate pair":     {ok, ok},
		"price below ask":    {{Request: 0, Offer: 0, Amount: []uint64{1, 0}, Price: []uint64{1, 0}}},
		"price above max":    {{Request: 0, Offer: 0, Amount: []uint64{1, 0}, Price: []uint64{4, 0}}},
		"wrong region":       {{Request: 1, Offer: 0, Amount: []uint64{1, 0}, Price: []uint64{2, 0}}},
		"zero allocation":    {{Request: 0, Offer: 0, Amount: []uint64{0, 0}, Price: []uint64{2, 2}}},
		"partial bundle":     {{Request: 2, Offer: 0, Amount: []uint64{4, 3}, Price: []uint64{2, 2}}},
		"over capacity":      {ok, {Request: 2, Offer: 0, Amount: []uint64{4, 4}, Price: []uint64{2, 2}}},
	}
	s.Offers[0].Capacity = []uint64{8, 10}
	for name, as := range bad {
		if err := Validate(s, as); !errors.Is(err, ErrInfeasible) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDistance(t *testing.T) {
	munich := [2]int32{48_137_000, 11_575_000}
	augsburg := [2]int32{48_370_000, 10_898_000} // ≈ 55 km
	berlin := [2]int32{52_520_000, 13_405_000}   // ≈ 505 km
	cases := []struct {
		a, b [2]int32
		km   uint32
		want bool
	}{
		{munich, augsburg, 60, true}, {munich, augsburg, 50, false}, {munich, berlin, 510, true}, {munich, berlin, 490, false},
		{munich, munich, 1, true}, {[2]int32{-89_000_000, 0}, [2]int32{-89_000_000, 1_000_000}, 2, true},
	}
	for _, c := range cases {
		if got := WithinDistance(c.a[0], c.a[1], c.b[0], c.b[1], c.km); got != c.want {
			t.Errorf("%v-%v within %d km: %v", c.a, c.b, c.km, got)
		}
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 5; i++ {
		f.Add(randomSnapshot(rng, i, i+1).Encode())
	}
	f.Add([]byte("ROME"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeSnapshot(b)
		if err != nil {
			return
		}
		if !bytes.Equal(s.Encode(), b) {
			t.Fatal("accepted bytes do not round-trip")
		}
	})
}

// FuzzValidateAllocations feeds arbitrary policy output to the decoder and
// validator: whatever passes must respect every invariant.
func FuzzValidateAllocations(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	s := randomSnapshot(rng, 6, 10)
	nk := len(s.Kinds)
	f.Add(EncodeAllocations(nk, FirstCome(s)))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		as, err := DecodeAllocations(b, nk)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("decode error not ErrMalformed: %v", err)
			}
			return
		}
		if !bytes.Equal(EncodeAllocations(nk, as), b) {
			t.Fatal("allocations do not round-trip")
		}
		if Validate(s, as) == nil {
			checkInvariants(t, s, as)
		}
	})
}

func TestCertificateTampering(t *testing.T) {
	codec := ledger.NewCodec()
	issuer, other := testKey(t, 10), testKey(t, 11)
	st := Statement{Version: 1, ChainID: "c", ID: 7, NodeID: "sos1x", Kind: 1, Amount: 100, FromEpoch: 3, ToEpoch: 5, Issuer: issuer.Public().Fingerprint(), IssuedHeight: 40}
	sig, err := SignStatement(codec, issuer, &st)
	if err != nil {
		t.Fatal(err)
	}
	c := Certificate{Statement: st, IssuerKey: issuer.Public().Bytes(), Signature: sig}
	f := c.File()
	if err := VerifyFile(&f, nil); err != nil {
		t.Fatalf("round trip: %v", err)
	}
	if err := VerifyFile(&f, []string{f.IssuerKey}); err != nil {
		t.Fatalf("trusted issuer: %v", err)
	}
	tamper := map[string]func(f *CertFile){
		"amount":         func(f *CertFile) { f.Statement.Amount++ },
		"node":           func(f *CertFile) { f.Statement.NodeID = "sos1y" },
		"chain":          func(f *CertFile) { f.Statement.ChainID = "d" },
		"signature":      func(f *CertFile) { f.Signature = "00" + f.Signature[2:] },
		"unsigned":       func(f *CertFile) { f.Signature = "" },
		"other key":      func(f *CertFile) { f.IssuerKey = (&Certificate{IssuerKey: other.Public().Bytes()}).File().IssuerKey },
		"untrusted only": func(f *CertFile) {},
	}
	for name, mut := range tamper {
		g := c.File()
		mut(&g)
		var trusted []string
		if name == "untrusted only" {
			trusted = []string{"ab"}
		}
		if err := VerifyFile(&g, trusted); !errors.Is(err, ledger.ErrInvalidSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// BenchmarkEpoch is one epoch's processing (snapshot, built-in policy,
// validation, leases) on a market of 2,000 requests × 200 offers.
func BenchmarkEpoch(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		h := newHarness(b, harnessOpts{epochBlocks: 1})
		rng := rand.New(rand.NewPCG(9, 9))
		for j := 0; j < 200; j++ {
			if _, err := h.m.Deliver(context.Background(), &Tx{St: h.st, Gas: ledger.NewGasMeter(1 << 40), Sched: &h.sched, Sender: h.users[j%3].Address()},
				&ledger.RomeOffer{Capacity: res(1, 1+rng.Uint64N(100), 3, 1+rng.Uint64N(100)), Price: res(1, rng.Uint64N(5), 3, rng.Uint64N(5))}); err != nil {
				b.Fatal(err)
			}
		}
		for j := 0; j < 2000; j++ {
			if _, err := h.m.Deliver(context.Background(), &Tx{St: h.st, Gas: ledger.NewGasMeter(1 << 40), Sched: &h.sched, Sender: h.users[j%3].Address()},
				&ledger.RomeRequest{Demand: res(1, 1+rng.Uint64N(5), 3, rng.Uint64N(5)), MaxPrice: res(1, 5, 3, 5), Epochs: 2, Bundle: j%4 == 0}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		h.endBlock()
	}
}
