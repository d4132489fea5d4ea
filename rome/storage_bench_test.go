package rome

import (
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/sos-kernel/sos/ledger"
)

// BenchmarkStorageChallengeDraw is what an epoch's end spends on storage
// challenges for holder nodes × holdings per node (the kernel benchmark's
// 100 × 300 ≈ 102 × 294): draw is setChallenges (storage_samples = 8 of
// each node's holdings, by slot), check is the miss pass (storageCheck)
// with every challenge answered. The holdings are written directly
// (addHolding), committed to the base as a node commits its blocks; each
// iteration works on a fresh write buffer over it.
func BenchmarkStorageChallengeDraw(b *testing.B) {
	for _, shape := range [][2]int{{100, 300}, {100, 30}, {10, 300}} {
		nodes, per := shape[0], shape[1]
		h := newHarness(b, harnessOpts{epochBlocks: 1, users: 1, ttl: 50})
		s := &store{st: h.st, codec: h.m.codec}
		p, err := s.params(h.m.gen)
		if err != nil {
			b.Fatal(err)
		}
		var addrs []ledger.Address
		for n := 0; n < nodes; n++ {
			var node ledger.Address
			binary.BigEndian.PutUint64(node[:], uint64(n+1))
			addrs = append(addrs, node)
			for i := 0; i < per; i++ {
				l := &Lease{ID: uint64(n*per + i + 1), RequestID: uint64(i + 1), Start: 1, End: 100}
				pin := &Pin{Index: uint32(i), Blob: ledger.BlobRef{ID: ledger.BlobID(ledger.HashBytes(binary.BigEndian.AppendUint64(nil, l.ID))), Size: 4096}}
				if err := s.addHolding(p, node, l, &Request{ID: l.RequestID}, pin, 1, 1); err != nil {
					b.Fatal(err)
				}
			}
		}
		h.commit()
		sd := &Seed{Epoch: 5, Seed: ledger.HashBytes([]byte("seed"))}
		b.Run(fmt.Sprintf("nodes=%d/holdings=%d/draw", nodes, per), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				s := &store{st: ledger.NewState(h.base), codec: h.m.codec}
				if err := s.setChallenges(p, sd); err != nil {
					b.Fatal(err)
				}
			}
		})
		// Challenges of epoch 5, all answered: the miss pass finds none.
		s = &store{st: ledger.NewState(h.base), codec: h.m.codec}
		if err := s.setChallenges(p, sd); err != nil {
			b.Fatal(err)
		}
		for _, a := range addrs {
			c, ok, err := s.challenged(a)
			if err != nil || !ok {
				b.Fatal("no challenges", err)
			}
			if err := s.put(rkey(tagRound, a[:]), &Round{Epoch: 5, Proven: uint32(len(c.Items))}); err != nil {
				b.Fatal(err)
			}
		}
		h.st = s.st
		h.commit()
		b.Run(fmt.Sprintf("nodes=%d/holdings=%d/check", nodes, per), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				st := ledger.NewState(h.base)
				w := &epochWork{m: h.m, s: &store{st: st, codec: h.m.codec}, acc: &ledger.Accounts{St: st, Codec: h.m.codec}, p: p, e: 5,
					events: &[]ledger.Event{}, rec: &EpochRecord{}, offers: map[uint64]*Offer{}, reqs: map[uint64]*Request{}}
				if err := w.storageCheck(); err != nil {
					b.Fatal(err)
				}
				if len(*w.events) != 0 {
					b.Fatalf("events %v", *w.events)
				}
			}
		})
	}
}

// BenchmarkStorageSettleEpoch is an epoch's end (EndBlock at the epoch's
// last block, state committed to the base before, as a node does) with
// 300 storage leases — 100 requests × 3 replicas on 100 bonded providers,
// one 4 KiB blob pinned to each request, every challenge answered with real
// proofs — over one settle interval of 10 epochs: with
// settle_interval_epochs 10 the leases are paid in arrears, each at the
// epochs its phase makes due (about 30 of the 300 at each epoch's end:
// due-leases/epoch, max-due-leases the most at one); with 1 every lease is
// settled at every epoch, as every lease holding blobs was before storage
// settled lazily. One op is the 10 epoch ends; end-mean-ms is their mean,
// end-max-ms the dearest over the run. Wall time of the market's EndBlock over an in-memory base,
// not a node's CPU (kernel's BenchmarkStorageEpoch is).
func BenchmarkStorageSettleEpoch(b *testing.B) {
	for _, interval := range []uint64{10, 1} {
		b.Run(fmt.Sprintf("leases=300/interval=%d", interval), func(b *testing.B) {
			const providers, requests = 100, 100
			prices := make([]uint64, providers)
			regions := make([]string, providers)
			for i := range prices {
				prices[i], regions[i] = 1+uint64(i%3), fmt.Sprintf("r%d", i)
			}
			w := newStorWorldOpts(b, harnessOpts{epochBlocks: 1, ttl: 50, settleInterval: interval, balance: 1 << 50}, prices, regions,
				func(g *storageGenesis) { g.RepairMisses = 100 })
			var reqs []uint64
			for range requests {
				reqs = append(reqs, id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 10), MaxPrice: res(4, 5), Epochs: 1000, Replicas: 3}), "request_id"))
			}
			w.untilDrawn(1)
			for i, r := range reqs {
				if n := len(w.leasesOf(r)); n != 3 {
					b.Fatalf("request %d: %d replicas", r, n)
				}
				w.must(w.cons, &ledger.BlobPin{RequestID: r, Blob: w.put(4096, uint64(i+1))})
			}
			epochEnd := func() time.Duration {
				for _, n := range w.nodes {
					if p := w.answer(n); p != nil {
						w.must(n, p)
					}
				}
				w.commit()
				t0 := time.Now()
				w.endBlock()
				return time.Since(t0)
			}
			w.untilDrawn(3) // challenged from epoch 3
			epochEnd()
			b.ResetTimer()
			var all, most time.Duration
			var settled, mostDue int
			for range b.N {
				for range 10 {
					c, _ := w.m.Clock(w.st)
					ls, _ := w.m.Leases(w.st, 0, func(l *Lease) bool { return l.NextSettle == c.Epoch })
					d := epochEnd()
					all += d
					settled += len(ls)
					if d > most {
						most = d
					}
					mostDue = max(mostDue, len(ls))
				}
			}
			b.StopTimer()
			if n := w.storageEvents("storage_missed"); n != 0 {
				b.Fatalf("%d misses", n)
			}
			ms := func(d time.Duration, n int) float64 { return float64(d.Microseconds()) / 1000 / float64(max(n, 1)) }
			b.ReportMetric(ms(most, 1), "end-max-ms")
			b.ReportMetric(float64(settled)/float64(10*b.N), "due-leases/epoch")
			b.ReportMetric(float64(mostDue), "max-due-leases")
			b.ReportMetric(ms(all, 10*b.N), "end-mean-ms")
		})
	}
}
