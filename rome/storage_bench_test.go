package rome

import (
	"encoding/binary"
	"fmt"
	"testing"

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
