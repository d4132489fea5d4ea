package rome

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/ledger"
)

// storWorld is a market with providers whose offers hold storage on their
// own nodes (with a bond), a consumer, and a blob store standing for the
// holders' disks. Epochs are 10 blocks: epoch e is heights 10e+1..10e+10.
type storWorld struct {
	*harness
	cons   *ledger.PrivateKey
	provs  []*ledger.PrivateKey
	nodes  []*ledger.PrivateKey
	offers []uint64
	blobs  *blob.Store
}

func storParams(g *storageGenesis) {
	g.BytesPerUnit, g.Segments, g.GraceEpochs, g.SlashBps, g.RepairMisses = 1024, 2, 1, 1000, 1
}

// newStorWorld makes providers with offers of storage=100 at the given
// prices (uTFLP per unit per epoch) in the given regions.
func newStorWorld(t *testing.T, prices []uint64, regions []string, tweak func(*storageGenesis)) *storWorld {
	t.Helper()
	return newStorWorldOpts(t, harnessOpts{epochBlocks: 10, ttl: 50}, prices, regions, tweak)
}

// newStorWorldOpts is newStorWorld with other harness options (users and
// storage are set here).
func newStorWorldOpts(t testing.TB, o harnessOpts, prices []uint64, regions []string, tweak func(*storageGenesis)) *storWorld {
	t.Helper()
	st := storParams
	if tweak != nil {
		st = func(g *storageGenesis) { storParams(g); tweak(g) }
	}
	o.users, o.storage = len(prices)+2, st
	h := newHarness(t, o)
	fs := vfs.NewMem()
	bs, err := blob.Open("blobs", blob.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	w := &storWorld{harness: h, cons: h.users[0], blobs: bs}
	for i, price := range prices {
		prov, node := h.users[i+2], testKey(t, 600+i)
		w.provs, w.nodes = append(w.provs, prov), append(w.nodes, node)
		w.offers = append(w.offers, id(h.must(prov, &ledger.RomeOffer{Capacity: res(4, 100), Price: res(4, price), Region: regions[i],
			Node: node.Address(), Bond: testBond}), "offer_id"))
	}
	return w
}

// put stores n pseudo-random bytes and returns their blob.
func (w *storWorld) put(n int, seed uint64) ledger.BlobRef {
	w.t.Helper()
	data := make([]byte, n)
	var s [32]byte
	s[0] = byte(seed)
	_, _ = rand.NewChaCha8(s).Read(data)
	id, size, err := w.blobs.Put(context.Background(), bytes.NewReader(data))
	if err != nil {
		w.t.Fatal(err)
	}
	return ledger.BlobRef{ID: ledger.BlobID(id), Size: size}
}

// answer builds node's storage_proof for what it still has to prove in
// the current epoch (nil: nothing), proving from the world's store.
func (w *storWorld) answer(node *ledger.PrivateKey) *ledger.StorageProof {
	w.t.Helper()
	due, err := w.m.StorageDue(w.st, node.Address(), 0)
	if err != nil {
		w.t.Fatal(err)
	}
	if len(due.Holdings) == 0 {
		return nil
	}
	p := &ledger.StorageProof{Epoch: due.Epoch}
	for _, d := range due.Holdings {
		e := ledger.StorageEntry{LeaseID: d.Lease, Blob: d.Blob.ID}
		for _, seg := range d.Segments {
			pr, err := w.blobs.Prove(blob.ID(d.Blob.ID), seg)
			if err != nil {
				w.t.Fatal(err)
			}
			e.Proofs = append(e.Proofs, pr)
		}
		p.Entries = append(p.Entries, e)
	}
	return p
}

func (w *storWorld) leasesOf(req uint64) []Lease {
	w.t.Helper()
	ls, err := w.m.Leases(w.st, 0, func(l *Lease) bool { return l.RequestID == req })
	if err != nil {
		w.t.Fatal(err)
	}
	slices.SortFunc(ls, func(a, b Lease) int { return int(a.ID) - int(b.ID) })
	return ls
}

func (w *storWorld) nodeOf(l Lease) *ledger.PrivateKey {
	for i, o := range w.offers {
		if o == l.OfferID {
			return w.nodes[i]
		}
	}
	w.t.Fatalf("lease %d: unknown offer %d", l.ID, l.OfferID)
	return nil
}

func (w *storWorld) storageEvents(typ string) int {
	n := 0
	for _, e := range w.events {
		if e.Type == typ {
			n++
		}
	}
	return n
}

// TestStorageReplicasProvenAndPaid: a request for 2 replicas spread over
// regions is placed on two providers in different regions (not the
// cheapest, which shares a region) with the escrow of both; a pinned blob
// is held by both leases, each node proves it every epoch with real
// storage proofs, settlement pays proven byte-epochs, certificates say
// "proofs", and sos blob where's query shows each holder's last proof.
func TestStorageReplicasProvenAndPaid(t *testing.T) {
	w := newStorWorld(t, []uint64{1, 2, 3}, []string{"eu", "eu", "us"}, nil)
	before := w.balance(w.cons.Address(), "uTFLP")
	req := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 20), MaxPrice: res(4, 5), Epochs: 6, Replicas: 2, Spread: ledger.SpreadRegion}), "request_id")
	if paid := before - w.balance(w.cons.Address(), "uTFLP"); paid != 20*5*6*2 {
		t.Fatalf("escrow %d, want 20×5×6×2 = %d", paid, 20*5*6*2)
	}
	w.untilDrawn(1)
	leases := w.leasesOf(req)
	if len(leases) != 2 || leases[0].OfferID != w.offers[0] || leases[1].OfferID != w.offers[2] {
		t.Fatalf("replicas on offers %v, want the cheapest of each region (%d, %d)", leases, w.offers[0], w.offers[2])
	}
	for _, l := range leases {
		if l.End != 7 || amountOf(l.Amounts, KindStorage) != 20 {
			t.Fatalf("lease %+v: want storage 20 for epochs 1-6", l)
		}
	}
	r, _ := w.m.Request(w.st, req)
	if r.Status != StatusFilled || r.Open != 0 || r.EndEpoch != 7 {
		t.Fatalf("request after placement: %+v", r)
	}

	b := w.put(9000, 1) // 9 segments: 9 storage units of 1 KiB
	other := w.cons
	if _, err := w.deliver(w.provs[0], &ledger.BlobPin{RequestID: req, Blob: b}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("a provider pinned to the consumer's request: %v", err)
	}
	huge := ledger.BlobRef{ID: ledger.BlobID{9}, Size: 20*1024 + 1}
	if _, err := w.deliver(other, &ledger.BlobPin{RequestID: req, Blob: huge}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "quota") {
		t.Fatalf("a blob larger than the lease's quota: %v", err)
	}
	out := w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: b})
	if id(out, "holders") != 2 || id(out, "from_epoch") != 3 {
		t.Fatalf("pin: %v", out)
	}
	if _, err := w.deliver(w.cons, &ledger.BlobPin{RequestID: req, Blob: b}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("the same blob pinned twice: %v", err)
	}
	// The rest of the quota still fits; the empty blob is pinned but has
	// nothing to prove.
	w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: ledger.BlobRef{ID: ledger.BlobID(blob.Sum(nil))}})
	if _, err := w.deliver(w.cons, &ledger.BlobPin{RequestID: req, Blob: ledger.BlobRef{ID: ledger.BlobID{7}, Size: 20*1024 - 9000 + 1}}); err == nil {
		t.Fatal("pins over the quota in total accepted")
	}

	// Grace epoch 2: nothing is due yet.
	w.untilDrawn(2)
	if p := w.answer(w.nodeOf(leases[0])); p != nil {
		t.Fatalf("challenged during the grace epoch: %+v", p)
	}
	for e := uint64(3); e <= 6; e++ {
		w.untilDrawn(e)
		if e == 6 { // lazily settled: nothing paid before the lease's last epoch ends
			for _, l := range leases {
				if got, _ := w.m.Lease(w.st, l.ID); len(got.Paid) != 0 || got.SettledTo != 1 || got.NextSettle != 6 {
					t.Fatalf("lease %d settled before its settlement is due: %+v", l.ID, got)
				}
			}
		}
		for _, l := range leases {
			p := w.answer(w.nodeOf(l))
			if p == nil || len(p.Entries) != 1 || len(p.Entries[0].Proofs) != 2 {
				t.Fatalf("epoch %d: lease %d answer %+v", e, l.ID, p)
			}
			res := w.must(w.nodeOf(l), p)
			if id(res, "proven") != 1 {
				t.Fatalf("epoch %d: %v", e, res)
			}
			if again := w.answer(w.nodeOf(l)); again != nil {
				t.Fatalf("still due after the answer: %+v", again)
			}
		}
		pins, err := w.m.BlobPins(w.st, b.ID, 0)
		if err != nil || len(pins) != 1 || len(pins[0].Holders) != 2 {
			t.Fatalf("blob pins: %+v %v", pins, err)
		}
		for _, hs := range pins[0].Holders {
			if !hs.Holding || hs.LastProofHeight != w.height || hs.LastProofEpoch != e || hs.Misses != 0 {
				t.Fatalf("epoch %d holder %+v (height %d)", e, hs, w.height)
			}
		}
	}
	w.untilDrawn(7) // epochs 1-5 settled at the end of epoch 6, 3-5 proven
	for _, l := range leases {
		got, _ := w.m.Lease(w.st, l.ID)
		price := amountOf(l.Prices, KindStorage)
		if want := 3 * 9 * price; got.Paid.AmountOf("uTFLP") != want || got.SettledTo != 6 {
			t.Fatalf("lease %d paid %s, want 3 epochs × 9 units × %d", l.ID, got.Paid, price)
		}
	}
	w.untilDrawn(8) // epoch 6 settled with the lease's close
	for _, l := range leases {
		got, _ := w.m.Lease(w.st, l.ID)
		price := amountOf(l.Prices, KindStorage)
		if want := 4 * 9 * price; got.Paid.AmountOf("uTFLP") != want || got.SettledTo != 7 {
			t.Fatalf("lease %d paid %s, want 4 epochs × 9 units × %d", l.ID, got.Paid, price)
		}
		if rec, _ := w.m.ProviderRecord(w.st, l.Provider); rec.StorageProven != 4 || rec.StorageMissed != 0 {
			t.Fatalf("provider record %+v", rec)
		}
	}
	certs, _ := w.m.Certificates(w.st, 0, func(c *Certificate) bool { return c.Statement.Kind == KindStorage })
	if len(certs) == 0 {
		t.Fatal("no storage certificate")
	}
	for _, c := range certs {
		if c.Statement.Measured != MeasuredProofs {
			t.Fatalf("storage certificate measured %q", c.Statement.Measured)
		}
	}
	if w.storageEvents("storage_missed") != 0 {
		t.Fatal("misses recorded")
	}
}

// TestStorageProofFaults: a proof of another segment, with a damaged path,
// of another blob, for holdings out of order, late (after its epoch),
// replayed from a previous epoch, or from a node that holds nothing is
// refused and changes nothing; the node's honest answer then passes.
func TestStorageProofFaults(t *testing.T) {
	w := newStorWorld(t, []uint64{1}, []string{"eu"}, func(g *storageGenesis) { g.RepairMisses = 5 })
	req := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 100), MaxPrice: res(4, 5), Epochs: 8, Replicas: 1}), "request_id")
	w.untilDrawn(1)
	b1, b2 := w.put(48<<10, 1), w.put(40<<10, 2) // 48 and 40 segments
	w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: b1})
	w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: b2})
	node := w.nodes[0]
	w.untilDrawn(3)
	good := w.answer(node)
	if good == nil || len(good.Entries) != 2 {
		t.Fatalf("answer %+v", good)
	}
	due, _ := w.m.StorageDue(w.st, node.Address(), 0)
	clone := func() *ledger.StorageProof {
		p := &ledger.StorageProof{Epoch: good.Epoch}
		for _, e := range good.Entries {
			c := ledger.StorageEntry{LeaseID: e.LeaseID, Blob: e.Blob}
			for _, pr := range e.Proofs {
				c.Proofs = append(c.Proofs, bytes.Clone(pr))
			}
			p.Entries = append(p.Entries, c)
		}
		return p
	}
	seg := due.Holdings[0].Segments[0]
	wrongSeg, err := w.blobs.Prove(blob.ID(b1.ID), (seg+1)%48)
	if err != nil {
		t.Fatal(err)
	}
	otherBlob, err := w.blobs.Prove(blob.ID(b2.ID), seg%40)
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]*ledger.StorageProof{
		"wrong segment": func() *ledger.StorageProof { p := clone(); p.Entries[0].Proofs[0] = wrongSeg; return p }(),
		"wrong path":    func() *ledger.StorageProof { p := clone(); p.Entries[0].Proofs[0][8+70] ^= 1; return p }(),
		"wrong data":    func() *ledger.StorageProof { p := clone(); pr := p.Entries[0].Proofs[0]; pr[len(pr)-1] ^= 1; return p }(),
		"another blob":  func() *ledger.StorageProof { p := clone(); p.Entries[0].Proofs[0] = otherBlob; return p }(),
		"out of order": func() *ledger.StorageProof {
			p := clone()
			p.Entries[0], p.Entries[1] = p.Entries[1], p.Entries[0]
			return p
		}(),
		"missing a proof":  func() *ledger.StorageProof { p := clone(); p.Entries[0].Proofs = p.Entries[0].Proofs[:1]; return p }(),
		"too many entries": func() *ledger.StorageProof { p := clone(); p.Entries = append(p.Entries, p.Entries[0]); return p }(),
		"another epoch":    func() *ledger.StorageProof { p := clone(); p.Epoch = 2; return p }(),
	}
	for name, p := range bad {
		if _, err := w.deliver(node, p); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := w.deliver(w.nodes[0], &ledger.StorageProof{Epoch: 3, Entries: []ledger.StorageEntry{{LeaseID: 99, Blob: b1.ID, Proofs: good.Entries[0].Proofs}}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("an entry for a lease the node does not hold: %v", err)
	}
	if _, err := w.deliver(w.cons, good); !errors.Is(err, ErrInvalid) {
		t.Errorf("another account sent the node's proofs: %v", err)
	}
	if rd, _ := w.m.reader(w.st).round(node.Address(), 3); rd.Proven != 0 || rd.Declared != 0 {
		t.Fatalf("refused proofs changed the round: %+v", rd)
	}
	// Late: the epoch-3 answer, held back until epoch 4, is refused; the
	// holdings it would have proven count as missed.
	w.untilDrawn(4)
	if _, err := w.deliver(node, good); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a late proof: %v", err)
	}
	if w.storageEvents("storage_missed") != 2 {
		t.Fatalf("%d misses after the unanswered epoch, want 2", w.storageEvents("storage_missed"))
	}
	// Replayed: the epoch-3 proofs relabelled for epoch 4 answer other
	// challenges (a new seed) and are refused.
	now, _ := w.m.StorageDue(w.st, node.Address(), 0)
	if slices.Equal(now.Holdings[0].Segments, due.Holdings[0].Segments) && slices.Equal(now.Holdings[1].Segments, due.Holdings[1].Segments) {
		t.Fatal("epochs 3 and 4 challenge the same segments")
	}
	replay := clone()
	replay.Epoch = 4
	if _, err := w.deliver(node, replay); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a replayed proof: %v", err)
	}
	honest := w.answer(node)
	w.must(node, honest)
	// The same transaction again: the holdings are answered.
	if _, err := w.deliver(node, honest); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an answer sent twice: %v", err)
	}
}

// TestStorageMissNotPaidSlashedRepaired: a holder that leaves its
// challenges unanswered (its disk lost the data) is not paid for the
// blob's bytes in that epoch, loses storage_slash_bps of its bond to the
// consumer, and its miss counts in its record; with storage_repair_misses
// 1 its replica moves at once to a provider the request does not use yet,
// whose holding starts after the grace epoch, restoring 2 replicas.
func TestStorageMissNotPaidSlashedRepaired(t *testing.T) {
	w := newStorWorld(t, []uint64{1, 2, 3}, []string{"eu", "us", "ap"}, nil)
	req := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 20), MaxPrice: res(4, 5), Epochs: 8, Replicas: 2}), "request_id")
	w.untilDrawn(1)
	leases := w.leasesOf(req)
	good, lost := leases[0], leases[1]
	b := w.put(5000, 3)
	w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: b})
	w.untilDrawn(3)
	w.must(w.nodeOf(good), w.answer(w.nodeOf(good)))
	consBefore := w.balance(w.cons.Address(), "uTFLP")
	bondBefore := w.balance(BondAccount, "uTFLP")
	w.untilDrawn(4) // the end of epoch 3 finds lost's holding unanswered
	if n := w.storageEvents("storage_missed"); n != 1 {
		t.Fatalf("%d misses, want 1", n)
	}
	slash := testBond.AmountOf("uTFLP") / 10
	if got := w.balance(w.cons.Address(), "uTFLP") - consBefore; got != slash {
		t.Fatalf("consumer got %d of the slashed bond, want %d", got, slash)
	}
	if got := bondBefore - w.balance(BondAccount, "uTFLP"); got != slash {
		t.Fatalf("bond account lost %d, want %d", got, slash)
	}
	if rec, _ := w.m.ProviderRecord(w.st, lost.Provider); rec.StorageMissed != 1 {
		t.Fatalf("provider record %+v", rec)
	}
	pins, _ := w.m.BlobPins(w.st, b.ID, 0)
	for _, hs := range pins[0].Holders {
		if hs.LeaseID == lost.ID && (hs.Misses != 1 || hs.LastMissEpoch != 3 || hs.Holding) {
			t.Fatalf("lost holder %+v", hs)
		}
	}
	l, _ := w.m.Lease(w.st, lost.ID)
	if !l.EndedEarly || l.End != 4 || l.Status != StatusEnded {
		t.Fatalf("the missing lease goes on: %+v", l)
	}
	now := w.leasesOf(req)
	if len(now) != 3 || now[2].OfferID != w.offers[2] || now[2].Start != 4 || now[2].End != 9 {
		t.Fatalf("replica not re-placed on the unused provider: %+v", now)
	}
	r, _ := w.m.Request(w.st, req)
	if r.Repairs != 1 || r.Open != 0 || r.Status != StatusFilled {
		t.Fatalf("request %+v", r)
	}
	repl := now[2]
	if p := w.answer(w.nodeOf(repl)); p != nil {
		t.Fatal("the new holder is challenged before it could fetch the blob")
	}
	w.must(w.nodeOf(good), w.answer(w.nodeOf(good)))
	w.untilDrawn(5) // settles epoch 3 for the lost lease (its miss): nothing for the missed blob
	if got, _ := w.m.Lease(w.st, lost.ID); len(got.Paid) != 0 || got.SettledTo != 4 || got.Status != StatusEnded {
		t.Fatalf("lost lease %+v: want nothing paid for epochs 1-3, closed", got)
	}
	if got, _ := w.m.Lease(w.st, good.ID); len(got.Paid) != 0 || got.SettledTo != 1 {
		t.Fatalf("good lease %+v: its proven epochs are paid in arrears", got)
	}
	for _, x := range []Lease{good, repl} {
		p := w.answer(w.nodeOf(x))
		if p == nil {
			hs, _ := w.m.NodeHoldings(w.st, w.nodeOf(x).Address(), 0)
			c, _ := w.m.Clock(w.st)
			t.Fatalf("lease %d: nothing due at epoch %d; holdings %+v", x.ID, c.Epoch, hs)
		}
		w.must(w.nodeOf(x), p)
	}
	w.untilDrawn(6)
	if w.storageEvents("storage_missed") != 1 {
		t.Fatal("a miss after the repair")
	}
	pins, _ = w.m.BlobPins(w.st, b.ID, 0)
	holding := 0
	for _, hs := range pins[0].Holders {
		if hs.Holding {
			holding++
		}
	}
	if holding != 2 {
		t.Fatalf("%d holders after the repair, want 2: %+v", holding, pins[0].Holders)
	}
	for e := uint64(6); e <= 8; e++ {
		w.untilDrawn(e)
		for _, x := range []Lease{good, repl} {
			w.must(w.nodeOf(x), w.answer(w.nodeOf(x)))
		}
	}
	w.untilDrawn(10)
	if w.storageEvents("storage_missed") != 1 {
		t.Fatal("a miss after the repair")
	}
	// Paid in arrears what they proved: ⌈5000 / 1024⌉ = 5 units in epochs
	// 3-8 for the good lease, 5-8 for the replica (from epoch 4, its grace
	// epoch paying nothing).
	for _, x := range []struct {
		l      Lease
		epochs uint64
	}{{good, 6}, {repl, 4}} {
		got, _ := w.m.Lease(w.st, x.l.ID)
		if want := x.epochs * 5 * amountOf(x.l.Prices, KindStorage); got.Paid.AmountOf("uTFLP") != want || got.Status != StatusEnded {
			t.Fatalf("lease %d paid %s, want %d epochs × 5 units: %+v", x.l.ID, got.Paid, x.epochs, got)
		}
	}
}

// TestStorageRepairAllButOne: a request for 3 replicas loses two holders
// at once (one declares its copy gone, one stays silent); both replicas
// move to the two providers the request does not use, restoring 3.
func TestStorageRepairAllButOne(t *testing.T) {
	w := newStorWorld(t, []uint64{1, 1, 1, 2, 2}, []string{"a", "b", "c", "d", "e"}, func(g *storageGenesis) { g.RepairMisses = 1 })
	req := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 10), MaxPrice: res(4, 5), Epochs: 10, Replicas: 3}), "request_id")
	w.untilDrawn(1)
	leases := w.leasesOf(req)
	if len(leases) != 3 {
		t.Fatalf("%d replicas", len(leases))
	}
	b := w.put(3000, 4)
	w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: b})
	w.untilDrawn(3)
	w.must(w.nodeOf(leases[0]), w.answer(w.nodeOf(leases[0])))
	// Declared: the node says it cannot prove the blob.
	res := w.must(w.nodeOf(leases[1]), &ledger.StorageProof{Epoch: 3, Entries: []ledger.StorageEntry{{LeaseID: leases[1].ID, Blob: b.ID}}})
	if id(res, "declared_missing") != 1 {
		t.Fatalf("declared miss: %v", res)
	}
	w.untilDrawn(4)
	now := w.leasesOf(req)
	var live []uint64
	for _, l := range now {
		if !l.EndedEarly {
			live = append(live, l.OfferID)
		}
	}
	slices.Sort(live)
	if !slices.Equal(live, []uint64{w.offers[0], w.offers[3], w.offers[4]}) {
		t.Fatalf("replicas on offers %v, want %v", live, []uint64{w.offers[0], w.offers[3], w.offers[4]})
	}
	w.must(w.nodeOf(leases[0]), w.answer(w.nodeOf(leases[0])))
	w.untilDrawn(5)
	for _, l := range w.leasesOf(req) {
		if !l.EndedEarly {
			w.must(w.nodeOf(l), w.answer(w.nodeOf(l)))
		}
	}
	w.untilDrawn(6)
	pins, _ := w.m.BlobPins(w.st, b.ID, 0)
	proven := 0
	for _, hs := range pins[0].Holders {
		if hs.Holding && hs.LastProofEpoch == 5 {
			proven++
		}
	}
	if proven != 3 {
		t.Fatalf("%d replicas proven after the repair, want 3: %+v", proven, pins[0].Holders)
	}
}

// TestPinNeedsHolders: a pin needs leases whose offers name a node and
// hold a bond, and a divisible request fully placed.
func TestPinNeedsHolders(t *testing.T) {
	w := newStorWorld(t, []uint64{1}, []string{"eu"}, nil)
	plain := id(w.must(w.provs[0], &ledger.RomeOffer{Capacity: res(4, 50), Price: res(4, 1), Region: "us"}), "offer_id")
	_ = plain
	req := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 10), MaxPrice: res(4, 5), Epochs: 4, Region: "us"}), "request_id")
	big := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 500), MaxPrice: res(4, 5), Epochs: 4, Region: "eu"}), "request_id")
	if _, err := w.deliver(w.cons, &ledger.BlobPin{RequestID: req, Blob: ledger.BlobRef{ID: ledger.BlobID{1}, Size: 10}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("pin before any lease: %v", err)
	}
	w.untilDrawn(1)
	if _, err := w.deliver(w.cons, &ledger.BlobPin{RequestID: req, Blob: ledger.BlobRef{ID: ledger.BlobID{1}, Size: 10}}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "names no node") {
		t.Fatalf("pin on a lease of an offer without node and bond: %v", err)
	}
	if _, err := w.deliver(w.cons, &ledger.BlobPin{RequestID: big, Blob: ledger.BlobRef{ID: ledger.BlobID{1}, Size: 10}}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "without a lease") {
		t.Fatalf("pin on a request with unplaced storage: %v", err)
	}
}

// TestValidateReplicas: the validator refuses any policy output that
// breaks a replica rule.
func TestValidateReplicas(t *testing.T) {
	s := &Snapshot{Kinds: []uint8{1, 4},
		Offers: []SnapOffer{
			{ID: 1, Region: 1, Provider: 1, RunsJobs: true, Capacity: []uint64{10, 100}, Price: []uint64{1, 1}},
			{ID: 2, Region: 1, Provider: 1, RunsJobs: true, Capacity: []uint64{10, 100}, Price: []uint64{1, 1}},
			{ID: 3, Region: 1, Provider: 2, RunsJobs: true, Capacity: []uint64{10, 100}, Price: []uint64{1, 1}},
			{ID: 4, Region: 2, Provider: 3, RunsJobs: true, Capacity: []uint64{10, 100}, Price: []uint64{1, 1}},
			{ID: 5, Region: 3, Provider: 4, Capacity: []uint64{10, 100}, Price: []uint64{1, 1}},
			{ID: 6, Region: 4, Provider: 5, RunsJobs: true, Capacity: []uint64{10, 100}, Price: []uint64{1, 1}},
		},
		Requests: []SnapRequest{
			{ID: 7, Replicas: 2, Demand: []uint64{1, 20}, MaxPrice: []uint64{2, 2}},
			{ID: 8, Replicas: 2, Spread: true, Demand: []uint64{0, 20}, MaxPrice: []uint64{2, 2}},
		},
		Held: []Held{{Request: 1, Provider: 5, Region: 4}},
	}
	rep := func(req, offer uint32) Allocation {
		r := s.Requests[req]
		return Allocation{Request: req, Offer: offer, Amount: slices.Clone(r.Demand), Price: []uint64{1, 1}}
	}
	if err := Validate(s, []Allocation{rep(0, 0), rep(0, 2), rep(1, 0), rep(1, 3)}); err != nil {
		t.Fatal(err)
	}
	partial := rep(0, 0)
	partial.Amount[1] = 10
	bad := map[string][]Allocation{
		"partial replica":          {partial},
		"same provider twice":      {rep(0, 0), rep(0, 1)},
		"same region with spread":  {rep(1, 0), rep(1, 2)},
		"more than wanted":         {rep(0, 0), rep(0, 2), rep(0, 3)},
		"offer without node, bond": {rep(0, 4)},
		"held provider":            {rep(1, 5)},
	}
	for name, as := range bad {
		if err := Validate(s, as); !errors.Is(err, ErrInfeasible) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Greedy honours all of it.
	as := Greedy(s)
	if err := Validate(s, as); err != nil {
		t.Fatal(err)
	}
	got := map[uint32]int{}
	for _, a := range as {
		got[a.Request]++
	}
	if got[0] != 2 || got[1] != 2 {
		t.Fatalf("greedy placed %v replicas, want 2 each: %+v", got, as)
	}
}

// TestMeterReadings: a provider registers an energy meter; a request that
// requires it is paid what the device's signed readings measured (capped
// at the lease) — nothing in an epoch without readings — and the
// certificate names the meter. Bad signatures, counters going backwards,
// reused sequence numbers, unregistered devices, readings for another
// provider's lease, for another kind or outside the window are refused.
func TestMeterReadings(t *testing.T) {
	h := newHarness(t, harnessOpts{epochBlocks: 10, users: 4, ttl: 50})
	prov, cons, other := h.users[0], h.users[1], h.users[2]
	dev, dev2 := testKey(t, 700), testKey(t, 701)
	h.must(prov, &ledger.RomeOffer{Capacity: res(3, 50), Price: res(3, 2), Region: "p"})
	h.must(other, &ledger.RomeOffer{Capacity: res(3, 50), Price: res(3, 3), Region: "o"})
	mid := id(h.must(prov, &ledger.MeterRegister{Resource: KindEnergy, PubKey: dev.Public().Bytes()}), "meter_id")
	if _, err := h.deliver(other, &ledger.MeterRegister{Resource: KindEnergy, PubKey: dev.Public().Bytes()}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a device registered twice: %v", err)
	}
	oid := id(h.must(other, &ledger.MeterRegister{Resource: KindEnergy, PubKey: dev2.Public().Bytes()}), "meter_id")
	req := id(h.must(cons, &ledger.RomeRequest{Demand: res(3, 10), MaxPrice: res(3, 2), Epochs: 4, MeterKinds: 1 << (KindEnergy - 1), Region: "p"}), "request_id")
	oreq := id(h.must(cons, &ledger.RomeRequest{Demand: res(3, 10), MaxPrice: res(3, 3), Epochs: 4, Region: "o"}), "request_id")
	h.untilEpoch(1)
	ls, _ := h.m.Leases(h.st, 0, func(l *Lease) bool { return l.RequestID == req })
	ols, _ := h.m.Leases(h.st, 0, func(l *Lease) bool { return l.RequestID == oreq && l.Provider == other.Address() })
	if len(ls) != 1 || len(ols) != 1 {
		t.Fatalf("leases %v %v", ls, ols)
	}
	lease, olease := ls[0], ols[0]
	codec := ledger.NewCodec()
	reading := func(key *ledger.PrivateKey, meter uint64, st ledger.MeterStatement) *ledger.MeterReading {
		sig, err := ledger.SignMeterStatement(codec, key, "rome-test", &st)
		if err != nil {
			t.Fatal(err)
		}
		return &ledger.MeterReading{MeterID: meter, Statement: st, Signature: sig}
	}
	at := func(counter, seq uint64) ledger.MeterStatement {
		return ledger.MeterStatement{LeaseID: lease.ID, Epoch: 1, Kind: KindEnergy, Counter: counter, Seq: seq}
	}
	// The first reading sets the baseline.
	if out := h.must(cons, reading(dev, mid, at(7_000_000, 1))); id(out, "credited") != 0 {
		t.Fatalf("baseline credited: %v", out)
	}
	// 3.5 units (kJ) of energy: 3,500,000 mJ.
	if out := h.must(h.users[3], reading(dev, mid, at(10_500_000, 2))); id(out, "credited") != 3_500_000 {
		t.Fatalf("reading: %v", out)
	}
	tampered := reading(dev, mid, at(20_000_000, 3))
	tampered.Statement.Counter = 90_000_000
	bad := map[string]struct {
		p    *ledger.MeterReading
		want error
	}{
		"bad signature":          {tampered, ErrUnauthorized},
		"signed by another key":  {reading(dev2, mid, at(20_000_000, 3)), ErrUnauthorized},
		"counter backwards":      {reading(dev, mid, at(10_000_000, 3)), ErrInvalid},
		"reused sequence number": {reading(dev, mid, at(20_000_000, 2)), ErrInvalid},
		"unregistered device":    {reading(dev, 99, at(20_000_000, 3)), ErrNotFound},
		"another provider's lease": {reading(dev, mid, ledger.MeterStatement{LeaseID: olease.ID, Epoch: 1, Kind: KindEnergy, Counter: 20_000_000, Seq: 3}),
			ErrUnauthorized},
		"another kind":    {reading(dev, mid, ledger.MeterStatement{LeaseID: lease.ID, Epoch: 1, Kind: KindCompute, Counter: 20_000_000, Seq: 3}), ErrInvalid},
		"outside window":  {reading(dev, mid, ledger.MeterStatement{LeaseID: lease.ID, Epoch: 3, Kind: KindEnergy, Counter: 20_000_000, Seq: 3}), ErrInvalid},
		"another's meter": {reading(dev2, oid, at(20_000_000, 1)), ErrUnauthorized},
	}
	for name, c := range bad {
		if _, err := h.deliver(cons, c.p); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	h.untilEpoch(4) // settles epoch 1 (read: 4 units) and 2 (no reading: nothing)
	l, _ := h.m.Lease(h.st, lease.ID)
	if got := l.Paid.AmountOf("uKWTT"); got != 4*2 {
		t.Fatalf("paid %d uKWTT for epochs 1-2, want ⌈3.5⌉ units × price 2", got)
	}
	certs, _ := h.m.Certificates(h.st, 0, func(c *Certificate) bool { return c.Statement.Kind == KindEnergy })
	if len(certs) != 1 || certs[0].Statement.Measured != "meter 1" || certs[0].Statement.Amount != 4 {
		t.Fatalf("energy certificates %+v", certs)
	}
	// The other lease has no meter requirement and nothing to weigh: no
	// report, paid in full — at its next settlement, the end of its last
	// epoch (4), for epochs 1-3 at once.
	ol, _ := h.m.Lease(h.st, olease.ID)
	if got := ol.Paid.AmountOf("uKWTT"); got != 0 || ol.SettledTo != 1 || ol.NextSettle != 4 {
		t.Fatalf("unmetered lease before its settlement: paid %d, settled to %d, next %d", got, ol.SettledTo, ol.NextSettle)
	}
	h.untilEpoch(5)
	ol, _ = h.m.Lease(h.st, olease.ID)
	if got := ol.Paid.AmountOf("uKWTT"); got != 3*10*3 || ol.SettledTo != 4 {
		t.Fatalf("unmetered lease paid %d, settled to %d", got, ol.SettledTo)
	}
}

// TestSamplePlaces: every slot when the node has no more holdings than
// the samples; else that many distinct slots in range, ascending, the same
// for the same seed and node, other for another seed, and each slot drawn
// about equally often over many seeds.
func TestSamplePlaces(t *testing.T) {
	node := testKey(t, 700).Address()
	if got := SamplePlaces(ledger.Hash{1}, node, 5, 8); !slices.Equal(got, []uint64{0, 1, 2, 3, 4}) {
		t.Fatalf("5 holdings, 8 samples: %v", got)
	}
	if got := SamplePlaces(ledger.Hash{1}, node, 0, 8); len(got) != 0 {
		t.Fatalf("no holdings: %v", got)
	}
	const count, n, seeds = 100, 8, 5000
	hits := make([]int, count)
	for i := range seeds {
		seed := ledger.HashBytes([]byte{byte(i), byte(i >> 8)})
		got := SamplePlaces(seed, node, count, n)
		if len(got) != n || !slices.IsSorted(got) || got[n-1] >= count {
			t.Fatalf("seed %d: %v", i, got)
		}
		for j := 1; j < n; j++ {
			if got[j] == got[j-1] {
				t.Fatalf("seed %d: slot %d twice: %v", i, got[j], got)
			}
		}
		if !slices.Equal(got, SamplePlaces(seed, node, count, n)) {
			t.Fatal("not deterministic")
		}
		for _, s := range got {
			hits[s]++
		}
	}
	if slices.Equal(SamplePlaces(ledger.Hash{1}, node, count, n), SamplePlaces(ledger.Hash{2}, node, count, n)) {
		t.Fatal("two seeds sample the same slots")
	}
	// Each slot: seeds × n / count = 400 draws expected, σ ≈ 19.
	for s, h := range hits {
		if h < 300 || h > 500 {
			t.Fatalf("slot %d drawn %d times of %d expected", s, h, seeds*n/count)
		}
	}
}

// checkSlots verifies that node's holdings occupy slots 0..n-1 exactly
// once and that the slot index names each.
func checkSlots(t *testing.T, w *storWorld, node ledger.Address) int {
	t.Helper()
	s := w.m.reader(w.st)
	hs, err := w.m.NodeHoldings(w.st, node, 0)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := s.getU64(rkey(tagStorNode, node[:]))
	if int(n) != len(hs) {
		t.Fatalf("count %d, %d holdings", n, len(hs))
	}
	seen := make([]bool, n)
	for _, h := range hs {
		if h.Holding.Slot >= n || seen[h.Holding.Slot] {
			t.Fatalf("holding %+v: slot out of range or taken", h)
		}
		seen[h.Holding.Slot] = true
		ref, _, err := s.slot(node, h.Holding.Slot)
		if err != nil {
			t.Fatal(err)
		}
		if want := (slotRef{Lease: h.Lease, Pin: h.Pin, Blob: h.Holding.Blob, From: h.Holding.From, End: h.Holding.End}); ref != want {
			t.Fatalf("slot %d names %+v, holds %+v", h.Holding.Slot, ref, want)
		}
	}
	if ref, _ := w.st.Get(rkey(tagHoldSlot, node[:], u64(n))); ref != nil {
		t.Fatalf("slot %d past the end still names %x", n, ref)
	}
	return len(hs)
}

// TestStorageSampledChallenges: a node holding more blobs than
// storage_samples proves only the sampled ones each epoch (the slots
// SamplePlaces draws from the epoch's seed) and is paid for all it holds;
// an answer out of the sample is refused; a holding it declares missing is
// not paid for that epoch and is challenged in every following epoch,
// sampled or not, until it is proven again. When one of the node's leases
// closes, its other holdings keep slots 0..n-1 and are proven on.
func TestStorageSampledChallenges(t *testing.T) {
	w := newStorWorld(t, []uint64{1}, []string{"eu"}, func(g *storageGenesis) { g.Samples, g.RepairMisses, g.Segments = 3, 5, 1 })
	node := w.nodes[0]
	req := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 50), MaxPrice: res(4, 5), Epochs: 12, Replicas: 1}), "request_id")
	short := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 10), MaxPrice: res(4, 5), Epochs: 4, Replicas: 1}), "request_id")
	w.untilDrawn(1)
	lease, shortLease := w.leasesOf(req)[0], w.leasesOf(short)[0]
	var blobs []ledger.BlobRef
	for i := range 10 {
		b := w.put(1000, uint64(40+i))
		blobs = append(blobs, b)
		w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: b})
		if i < 4 {
			w.must(w.cons, &ledger.BlobPin{RequestID: short, Blob: w.put(1000, uint64(80+i))})
		}
	}
	if n := checkSlots(t, w, node.Address()); n != 14 {
		t.Fatalf("%d holdings, want 14", n)
	}
	sampled := func() []ChallengeItem {
		t.Helper()
		sd, _, _ := w.m.reader(w.st).seed()
		var want []ChallengeItem
		a := node.Address()
		count, _ := w.m.reader(w.st).getU64(rkey(tagStorNode, a[:]))
		for _, slot := range SamplePlaces(sd.Seed, a, count, 3) {
			ref, _, err := w.m.reader(w.st).slot(a, slot)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, ChallengeItem{Lease: ref.Lease, Pin: ref.Pin, Blob: ref.Blob})
		}
		return want
	}
	dueItems := func() []ChallengeItem {
		t.Helper()
		due, err := w.m.StorageDue(w.st, node.Address(), 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []ChallengeItem
		for _, d := range due.Holdings {
			out = append(out, ChallengeItem{Lease: d.Lease, Pin: d.Pin, Blob: d.Blob})
		}
		return out
	}
	itemLess := func(a, b ChallengeItem) int {
		return bytes.Compare(holdingKey(node.Address(), a.Lease, a.Pin), holdingKey(node.Address(), b.Lease, b.Pin))
	}

	// Epoch 3: 3 of the 14 holdings are challenged, the sampled ones.
	w.untilDrawn(3)
	want := sampled()
	slices.SortFunc(want, itemLess)
	if got := dueItems(); !slices.Equal(got, want) {
		t.Fatalf("epoch 3 challenges %+v, want the sampled %+v", got, want)
	}
	p := w.answer(node)
	var unsampled ledger.BlobRef
	for _, b := range blobs {
		if !slices.ContainsFunc(want, func(it ChallengeItem) bool { return it.Blob.ID == b.ID }) {
			unsampled = b
			break
		}
	}
	bad := *p
	bad.Entries = slices.Clone(p.Entries)
	bad.Entries[0].LeaseID, bad.Entries[0].Blob = lease.ID, unsampled.ID
	if _, err := w.deliver(node, &bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an answer for an unsampled holding: %v", err)
	}
	if res := w.must(node, p); id(res, "proven") != 3 {
		t.Fatalf("epoch 3: %v", res)
	}
	if w.answer(node) != nil {
		t.Fatal("still challenged after the answer")
	}

	// Epoch 4: the node declares its first challenged holding gone.
	w.untilDrawn(4)
	p = w.answer(node)
	gone := p.Entries[0]
	p.Entries[0].Proofs = nil
	if res := w.must(node, p); id(res, "declared_missing") != 1 {
		t.Fatalf("epoch 4: %v", res)
	}
	// Epoch 5: it is challenged again, with the epoch's sample.
	w.untilDrawn(5)
	got := dueItems()
	if !slices.ContainsFunc(got, func(it ChallengeItem) bool { return it.Lease == gone.LeaseID && it.Blob.ID == gone.Blob }) {
		t.Fatalf("epoch 5: the holding missed in epoch 4 is not challenged: %+v", got)
	}
	want = sampled()
	if slices.ContainsFunc(want, func(it ChallengeItem) bool { return it.Lease == gone.LeaseID && it.Blob.ID == gone.Blob }) {
		t.Fatal("epoch 5 samples the missed holding anyway: the test no longer shows it is challenged for its miss")
	}
	for _, it := range got {
		if !slices.Contains(want, it) && (it.Lease != gone.LeaseID || it.Blob.ID != gone.Blob) {
			t.Fatalf("epoch 5: %+v challenged: neither sampled nor missed before", it)
		}
	}
	if n, _ := w.m.reader(w.st).getU64(suspectsCountKey); n != 1 {
		t.Fatalf("%d suspects, want the missed holding", n)
	}
	w.must(node, w.answer(node))
	if n, _ := w.m.reader(w.st).getU64(suspectsCountKey); n != 0 {
		t.Fatalf("%d suspects after the missed holding was proven", n)
	}
	// Epoch 6: proven again, it is challenged only if sampled.
	w.untilDrawn(6)
	got, want = dueItems(), sampled()
	slices.SortFunc(want, itemLess)
	if !slices.Equal(got, want) {
		t.Fatalf("epoch 6 challenges %+v, want the sampled %+v", got, want)
	}
	// Epochs 3 and 4 are settled: all ten blobs paid for in 3, nine in 4
	// when the missing one was on the long lease.
	l, _ := w.m.Lease(w.st, lease.ID)
	wantPaid := uint64(10) // ⌈10,000 / 1,024⌉ units × price 1
	if gone.LeaseID == lease.ID {
		wantPaid += 9 // ⌈9,000 / 1,024⌉
	} else {
		wantPaid += 10
	}
	if l.Paid.AmountOf("uTFLP") != wantPaid {
		t.Fatalf("lease paid %s for epochs 3-4 (with epochs 1-2 before any pin), want %d", l.Paid, wantPaid)
	}
	if n := w.storageEvents("storage_missed"); n != 1 {
		t.Fatalf("%d misses, want the declared one", n)
	}
	// The short lease closes; the long lease's holdings keep dense slots
	// and the node keeps proving them with no miss.
	for e := uint64(6); e < 10; e++ {
		w.untilDrawn(e)
		if p := w.answer(node); p != nil {
			w.must(node, p)
		}
	}
	if ls, _ := w.m.Lease(w.st, shortLease.ID); ls.Status == StatusActive {
		t.Fatalf("short lease still active: %+v", ls)
	}
	if n := checkSlots(t, w, node.Address()); n != 10 {
		t.Fatalf("%d holdings after the short lease closed, want 10", n)
	}
	w.untilDrawn(10)
	if n := w.storageEvents("storage_missed"); n != 1 {
		t.Fatalf("%d misses, want the declared one only", n)
	}
}

// TestStorageSamplesParam: storage_samples defaults to 8, governance may
// set it within 1-512, and 0 or more than a proof holds is refused.
func TestStorageSamplesParam(t *testing.T) {
	d, err := ledger.NewDenoms(ledger.DefaultDenoms())
	if err != nil {
		t.Fatal(err)
	}
	p := DefaultParams()
	if p.StorageSamples != DefaultStorageSamples || p.Validate(d) != nil {
		t.Fatalf("default storage_samples %d: %v", p.StorageSamples, p.Validate(d))
	}
	if q, err := p.With("storage_samples", "32", d); err != nil || q.StorageSamples != 32 {
		t.Fatalf("storage_samples 32: %+v %v", q.StorageSamples, err)
	}
	for _, v := range []string{"0", "513"} {
		if _, err := p.With("storage_samples", v, d); err == nil {
			t.Errorf("storage_samples %s accepted", v)
		}
	}
}

// TestStorageProofOneNodeRecord: a storage_proof answering several
// holdings writes one record of its node's (its Round: the epoch's answers
// and its last proof), not one per holding; a held blob's last proof in
// sos blob where is its node's (a random sample of all it holds), except
// for a blob whose challenges start after that proof; the next epoch's
// answers start from zero in the same record, and a later miss records
// the node's last proof before it.
func TestStorageProofOneNodeRecord(t *testing.T) {
	w := newStorWorld(t, []uint64{1}, []string{"eu"}, func(g *storageGenesis) { g.Samples, g.RepairMisses, g.Segments = 3, 5, 1 })
	node, prov := w.nodes[0], w.provs[0]
	req := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 50), MaxPrice: res(4, 5), Epochs: 12, Replicas: 1}), "request_id")
	w.untilDrawn(1)
	var blobs []ledger.BlobRef
	for i := range 8 {
		b := w.put(1000, uint64(140+i))
		blobs = append(blobs, b)
		w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: b})
	}
	w.untilDrawn(3)
	w.commit() // the writes of the proof alone from here
	p := w.answer(node)
	if len(p.Entries) != 3 {
		t.Fatalf("%d holdings challenged, want the 3 sampled", len(p.Entries))
	}
	if res := w.must(node, p); id(res, "proven") != 3 {
		t.Fatalf("epoch 3: %v", res)
	}
	a, pa := node.Address(), prov.Address()
	var rome [][]byte
	for _, c := range w.st.Changes() {
		if c.Key[0] == ledger.PrefixRome {
			rome = append(rome, c.Key)
		}
	}
	want := [][]byte{rkey(tagProvider, pa[:]), rkey(tagRound, a[:])}
	slices.SortFunc(want, bytes.Compare)
	if !slices.EqualFunc(rome, want, bytes.Equal) {
		t.Fatalf("the proof of 3 holdings wrote market keys %x, want its provider record and its node's round %x", rome, want)
	}
	proofHeight := w.height
	late := w.put(1000, 160) // pinned now: challenged from epoch 5
	w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: late})
	holder := func(b ledger.BlobRef) HolderStatus {
		t.Helper()
		pins, err := w.m.BlobPins(w.st, b.ID, 0)
		if err != nil || len(pins) != 1 || len(pins[0].Holders) != 1 {
			t.Fatalf("blob pins: %+v %v", pins, err)
		}
		return pins[0].Holders[0]
	}
	for _, b := range blobs { // sampled or not: the node's last proof
		if hs := holder(b); hs.LastProofHeight != proofHeight || hs.LastProofEpoch != 3 {
			t.Fatalf("blob %s: %+v, want the node's proof at %d in epoch 3", b.ID, hs, proofHeight)
		}
	}
	if hs := holder(late); !hs.Holding || hs.LastProofHeight != 0 {
		t.Fatalf("blob pinned after the proof: %+v", hs)
	}
	// Epoch 4: a fresh round in the same record; the node declares its
	// first challenge gone, and the fault keeps its last proof.
	w.untilDrawn(4)
	if rd, _ := w.m.reader(w.st).round(a, 4); rd.Proven != 0 || rd.Declared != 0 || rd.LastHeight != proofHeight || rd.LastEpoch != 3 {
		t.Fatalf("epoch 4 round %+v", rd)
	}
	p = w.answer(node)
	if len(p.Entries) != 3 {
		t.Fatalf("epoch 4: %d challenged, want 3", len(p.Entries))
	}
	gone := p.Entries[0]
	p.Entries[0].Proofs = nil
	if res := w.must(node, p); id(res, "declared_missing") != 1 || id(res, "proven") != 2 {
		t.Fatalf("epoch 4: %v", res)
	}
	var pin uint32
	for i, b := range blobs {
		if b.ID == gone.Blob {
			pin = uint32(i)
		}
	}
	var f Fault
	if ok, _ := w.m.reader(w.st).get(rkey(tagFault, u64(gone.LeaseID), u32(pin)), &f); !ok || f.LastProof != proofHeight || f.LastMiss != 4 {
		t.Fatalf("fault %+v (found %v), want its node's last proof before the miss at %d", f, ok, proofHeight)
	}
	if rd, _ := w.m.reader(w.st).round(a, 4); rd.Proven != 2 || rd.Declared != 1 || rd.LastHeight != w.height || rd.LastEpoch != 4 {
		t.Fatalf("epoch 4 round after the answer %+v (height %d)", rd, w.height)
	}
}

// TestStorageBackToBackMissesUnpaid: a holding missed in two epochs in a
// row is unpaid in both, although the second miss (declared during epoch
// 4) comes before epoch 3 is settled (at the end of epoch 4).
func TestStorageBackToBackMissesUnpaid(t *testing.T) {
	w := newStorWorld(t, []uint64{1}, []string{"eu"}, func(g *storageGenesis) { g.RepairMisses, g.Segments = 5, 1 })
	node := w.nodes[0]
	req := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 10), MaxPrice: res(4, 5), Epochs: 12, Replicas: 1}), "request_id")
	w.untilDrawn(1)
	for i := range 2 {
		w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: w.put(1000, uint64(170+i))})
	}
	for e := uint64(3); e <= 4; e++ {
		w.untilDrawn(e)
		p := w.answer(node)
		if len(p.Entries) != 2 {
			t.Fatalf("epoch %d: %d challenged, want both", e, len(p.Entries))
		}
		p.Entries[0].Proofs = nil
		if res := w.must(node, p); id(res, "declared_missing") != 1 {
			t.Fatalf("epoch %d: %v", e, res)
		}
	}
	w.untilDrawn(5) // epoch 3 settled
	l := w.leasesOf(req)[0]
	if got := l.Paid.AmountOf("uTFLP"); got != 1 {
		t.Fatalf("paid %d through epoch 3, want 1 (⌈1,000 proven bytes / 1,024⌉ × price 1)", got)
	}
	w.must(node, w.answer(node))
	w.untilDrawn(6) // epoch 4 settled
	if got := w.leasesOf(req)[0].Paid.AmountOf("uTFLP"); got != 2 {
		t.Fatalf("paid %d through epoch 4, want 2", got)
	}
}

// TestStorageProofResultJSON: a storage_proof's receipt result is byte
// for byte the JSON of the map it used to be (receipts are hashed into
// the block), whatever the values.
func TestStorageProofResultJSON(t *testing.T) {
	for _, r := range []proofResult{{}, {Declared: 3, Epoch: 1 << 40, Proven: 8, RoundProven: 1 << 31}} {
		got, err := json.Marshal(&r)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(map[string]any{"epoch": r.Epoch, "proven": r.Proven, "declared_missing": r.Declared, "round_proven": r.RoundProven})
		if !bytes.Equal(got, want) {
			t.Fatalf("result JSON %s, want %s", got, want)
		}
	}
}

// leaseReads is committed state that counts the reads of lease records.
type leaseReads struct {
	*memBase
	n int
}

func (b *leaseReads) GetState(k []byte) ([]byte, error) {
	if bytes.HasPrefix(k, rkey(tagLease)) {
		b.n++
	}
	return b.memBase.GetState(k)
}

// TestStorageProofRemembersProviders: a node's round remembers the
// provider of the leases it proved for, so its next proofs credit the
// provider without reading the lease records; a declared miss still reads
// its lease (it needs the whole record).
func TestStorageProofRemembersProviders(t *testing.T) {
	w := newStorWorld(t, []uint64{1}, []string{"eu"}, func(g *storageGenesis) { g.Samples, g.RepairMisses, g.Segments = 3, 5, 1 })
	node, prov := w.nodes[0], w.provs[0]
	req := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 50), MaxPrice: res(4, 5), Epochs: 12, Replicas: 1}), "request_id")
	w.untilDrawn(1)
	for i := range 8 {
		w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: w.put(1000, uint64(170+i))})
	}
	lease := w.leasesOf(req)[0].ID
	a, pa := node.Address(), prov.Address()
	proven := func() uint64 {
		t.Helper()
		r, err := w.m.ProviderRecord(w.st, pa)
		if err != nil {
			t.Fatal(err)
		}
		return r.StorageProven
	}
	// answer proves the epoch's challenges (declaring the first one
	// missing if declare) and returns the lease records it read.
	answer := func(e uint64, declare bool) int {
		t.Helper()
		w.untilDrawn(e)
		w.commit()
		reads := &leaseReads{memBase: w.base}
		w.st = ledger.NewState(reads)
		p := w.answer(node)
		if declare {
			p.Entries[0].Proofs = nil
		}
		w.must(node, p)
		return reads.n
	}
	if n := answer(3, false); n != 1 || proven() != 3 {
		t.Fatalf("epoch 3: %d lease reads, %d proven; want 1 and 3", n, proven())
	}
	rd, err := w.m.reader(w.st).round(a, 3)
	if err != nil || len(rd.Providers) != 1 || rd.Providers[0] != (LeaseProvider{Lease: lease, Provider: pa}) {
		t.Fatalf("round %+v (%v), want lease %d's provider remembered", rd, err, lease)
	}
	if n := answer(4, false); n != 0 || proven() != 6 {
		t.Fatalf("epoch 4: %d lease reads, %d proven; want 0 and 6", n, proven())
	}
	if n := answer(5, true); n != 1 || proven() != 8 {
		t.Fatalf("epoch 5 with a declared miss: %d lease reads, %d proven; want 1 and 8", n, proven())
	}
}
