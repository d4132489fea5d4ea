package rome

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome/marketgen"
	"github.com/sos-kernel/sos/vm"
)

// BenchmarkEpochMarket is the epoch processing of the speed market
// (10,000 requests × 1,000 offers × 4 kinds from marketgen, seed 1,
// 30% bundles, leases of 2 epochs) through the real epoch path, with the
// built-in policy and with the shipped Wasm policies in the policy VM
// (sdk-contracts/policies/<name>/<name>.wasm, built by make contracts).
//
//   - match: the epoch end at which the market is open: snapshot, policy,
//     validation, leases;
//   - settle: two epochs later, when every lease's first epoch is settled
//     (escrow to providers per kind) and what is left of the market is
//     matched again.
//
// Each iteration sets the market up anew (not timed); the state of earlier
// blocks is committed to the base, as a node commits each block.
func BenchmarkEpochMarket(b *testing.B) {
	ctx := context.Background()
	v, err := vm.New(ctx, vm.Config{Purpose: vm.Policies})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close(ctx)
	for _, policy := range []string{"builtin", "greedy", "optimal"} {
		var wasm []byte
		if policy != "builtin" {
			if wasm, err = os.ReadFile("../sdk-contracts/policies/" + policy + "/" + policy + ".wasm"); err != nil {
				b.Skip("policies not built (make contracts):", err)
			}
		}
		for _, phase := range []string{"match", "settle"} {
			b.Run(policy+"/"+phase, func(b *testing.B) {
				var rec *EpochRecord
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					h, epoch := marketHarness(b, v, wasm)
					if phase == "settle" {
						h.endBlock() // match
						h.commit()
						h.endBlock() // the leases' first epoch runs
						h.commit()
						epoch += 2
					}
					b.StartTimer()
					h.endBlock()
					b.StopTimer()
					if rec, err = h.m.Epoch(h.st, epoch); err != nil {
						b.Fatal(err)
					}
					if rec.Rejected != "" {
						b.Fatalf("policy rejected: %s", rec.Rejected)
					}
				}
				b.ReportMetric(float64(rec.NewLeases), "leases")
				b.ReportMetric(float64(rec.PolicyGas), "policy-gas")
				b.ReportMetric(float64(rec.MatchedBps)/100, "matched-%")
			})
		}
	}
}

// marketHarness returns a chain whose next block ends epoch `epoch` with
// the speed market open and, when wasm is set, that policy active (its
// module already compiled by a warm-up run).
func marketHarness(b *testing.B, v *vm.VM, wasm []byte) (*harness, uint64) {
	const users = 20
	h := newHarness(b, harnessOpts{epochBlocks: 1, vm: v, users: users, balance: 1 << 50})
	if wasm != nil {
		id := ledger.HashBytes(wasm)
		h.activate(wasm)
		prepared, err := h.st.Get(rkey(tagPolicyBin, id[:]))
		if err != nil {
			b.Fatal(err)
		}
		warm := &Snapshot{Kinds: []uint8{1}, Offers: []SnapOffer{{ID: 1, Provider: 1, Capacity: []uint64{1}, Price: []uint64{1}}},
			Requests: []SnapRequest{{ID: 2, Demand: []uint64{1}, MaxPrice: []uint64{1}}}}
		if run := RunPolicy(context.Background(), v, id, prepared, warm, vm.Env{}, DefaultParams().PolicyGas); run.Err != nil {
			b.Fatal(run.Err)
		}
	}
	s, _, err := marketgen.Generate(marketgen.Config{Requests: 10_000, Offers: 1_000, Seed: 1, BundleShare: 0.3})
	if err != nil {
		b.Fatal(err)
	}
	deliver := func(from *ledger.PrivateKey, p ledger.Payload) {
		if err := p.ValidateBasic(); err != nil {
			b.Fatal(err)
		}
		tx := &Tx{St: h.st, Gas: ledger.NewGasMeter(1 << 40), Sched: &h.sched, Height: h.height, Sender: from.Address()}
		if _, err := h.m.Deliver(context.Background(), tx, p); err != nil {
			b.Fatal(err)
		}
	}
	region := func(id uint32) string {
		if id == 0 {
			return ""
		}
		return fmt.Sprintf("r%d", id)
	}
	for i, o := range s.Offers {
		p := &ledger.RomeOffer{Region: region(o.Region), HasLocation: true, Lat: o.Lat, Lon: o.Lon, Attrs: o.Attrs, Reliability: o.Reliability}
		for k, kind := range s.Kinds {
			if o.Capacity[k] > 0 {
				p.Capacity = append(p.Capacity, ledger.ResourceAmount{Kind: uint8(kind), Amount: o.Capacity[k]})
				p.Price = append(p.Price, ledger.ResourceAmount{Kind: uint8(kind), Amount: o.Price[k]})
			}
		}
		deliver(h.users[i%users], p)
	}
	for i, r := range s.Requests {
		p := &ledger.RomeRequest{Epochs: 2, Region: region(r.Region), HasLocation: true, Lat: r.Lat, Lon: r.Lon, WithinKm: r.WithinKm,
			Attrs: r.Attrs, MinReliability: r.MinReliability, Bundle: r.Bundle()}
		for k, kind := range s.Kinds {
			if r.Demand[k] > 0 {
				p.Demand = append(p.Demand, ledger.ResourceAmount{Kind: uint8(kind), Amount: r.Demand[k]})
				p.MaxPrice = append(p.MaxPrice, ledger.ResourceAmount{Kind: uint8(kind), Amount: r.MaxPrice[k]})
			}
		}
		deliver(h.users[i%users], p)
	}
	h.commit()
	c, err := h.m.Clock(h.st)
	if err != nil {
		b.Fatal(err)
	}
	return h, c.Epoch
}

// BenchmarkEpochIdleLeases is the end of an epoch in a market of n leases
// with nothing to weigh (one provider, one consumer, leases of 100,000
// epochs), averaged over b.N consecutive epochs of one block each, each
// block committed: with settle_interval_epochs 1 every lease is paid at
// every epoch (what settlement cost before it was lazy), with 10 (the
// default) a lease is visited every 10th epoch.
//
//	go test ./rome -run '^$' -bench EpochIdleLeases -benchtime 200x
func BenchmarkEpochIdleLeases(b *testing.B) {
	for _, n := range []int{1, 200, 2000} {
		for _, interval := range []uint64{1, 10} {
			b.Run(fmt.Sprintf("leases=%d/interval=%d", n, interval), func(b *testing.B) {
				h := newHarness(b, harnessOpts{epochBlocks: 1, users: 2, ttl: 50, balance: 1 << 50, settleInterval: interval})
				prov, cons := h.users[0], h.users[1]
				h.must(prov, &ledger.RomeOffer{Capacity: res(1, uint64(n)), Price: res(1, 2)})
				for range n {
					h.must(cons, &ledger.RomeRequest{Demand: res(1, 1), MaxPrice: res(1, 2), Epochs: 100_000})
				}
				h.untilEpoch(2)
				h.commit()
				if c := h.balance(prov.Address(), "uTFLP"); c == 0 {
					b.Fatal("no provider balance")
				}
				b.ResetTimer()
				for range b.N {
					h.endBlock()
					h.commit()
				}
				b.StopTimer()
				c, err := h.m.Clock(h.st)
				if err != nil {
					b.Fatal(err)
				}
				ls, err := h.m.Leases(h.st, 1, nil)
				if err != nil || len(ls) != 1 || interval == 1 && ls[0].SettledTo != c.Epoch-1 {
					b.Fatalf("epoch %d: leases %+v %v", c.Epoch, ls, err)
				}
			})
		}
	}
}
