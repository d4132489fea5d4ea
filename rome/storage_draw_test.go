package rome

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/ledger"
)

// endBlockWrites ends the current block on a committed state and counts
// the keys its EndBlock wrote (set or deleted), by the first of kinds
// that matches each.
func (w *storWorld) endBlockWrites(kinds ...func(k []byte) bool) []int {
	w.t.Helper()
	w.commit()
	w.endBlock()
	n := make([]int, len(kinds))
	for _, c := range w.st.Changes() {
		if i := slices.IndexFunc(kinds, func(f func([]byte) bool) bool { return f(c.Key) }); i >= 0 {
			n[i]++
		}
	}
	w.commit()
	return n
}

// drawWrites ends the current block and counts the challenge lists and
// seeds its EndBlock wrote.
func (w *storWorld) drawWrites() (lists, seeds int) {
	w.t.Helper()
	n := w.endBlockWrites(func(k []byte) bool { return bytes.HasPrefix(k, rkey(tagChal)) },
		func(k []byte) bool { return bytes.Equal(k, rkey(tagSeed)) })
	return n[0], n[1]
}

// chalEpoch is the epoch of node's challenge list (ok false: none).
func (w *storWorld) chalEpoch(node ledger.Address) (uint64, bool) {
	w.t.Helper()
	c, ok, err := w.m.reader(w.st).challenged(node)
	if err != nil {
		w.t.Fatal(err)
	}
	return c.Epoch, ok
}

// TestChallengesDrawnInEpochsFirstBlock: an epoch's storage challenges are
// drawn at the end of its first block, seeded from that block's PrevHash
// (the hash of the epoch before's last block), not at the end of the
// epoch before: that last block writes no challenge list and no seed, and
// the lists of the epoch before stay until the draw replaces them. A
// storage_proof in the first block itself, before the draw, is refused
// with a clear error and changes nothing; the same holder's proof in the
// next block passes. A blob pinned in the first block, before the draw,
// is challenged after its grace epoch as any pin of the epoch and is not
// due (paid as proven) in this one. (On the tree before, the draw was at the end of the
// epoch before: its last block wrote the lists and the seed.)
func TestChallengesDrawnInEpochsFirstBlock(t *testing.T) {
	w := newStorWorld(t, []uint64{1, 1}, []string{"eu", "us"}, nil)
	req := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 10), MaxPrice: res(4, 5), Epochs: 8, Replicas: 2}), "request_id")
	w.untilDrawn(1)
	b, b2 := w.put(5000, 3), w.put(2000, 5)
	if out := w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: b}); id(out, "from_epoch") != 3 {
		t.Fatalf("pin: %v", out)
	}
	leases := w.leasesOf(req)
	node := w.nodeOf(leases[0])
	// Epoch 2 (grace): its draw finds nothing due, so no list.
	w.untilDrawn(2)
	if _, ok := w.chalEpoch(node.Address()); ok {
		t.Fatal("a challenge list in the grace epoch")
	}
	for e := uint64(3); e <= 6; e++ {
		// The last block of e-1: no list written, no seed drawn.
		c, _ := w.m.Clock(w.st)
		for w.height < c.EndHeight {
			w.endBlock()
		}
		if lists, seeds := w.drawWrites(); lists != 0 || seeds != 0 {
			t.Fatalf("the last block of epoch %d wrote %d challenge lists and %d seeds", e-1, lists, seeds)
		}
		c, _ = w.m.Clock(w.st)
		if c.Epoch != e || c.StartHeight != w.height || c.EndHeight != w.height+9 {
			t.Fatalf("clock %+v at height %d, want epoch %d from this block", c, w.height, e)
		}
		due, err := w.m.StorageDue(w.st, node.Address(), 0)
		if err != nil || due.Seeded || len(due.Holdings) != 0 {
			t.Fatalf("epoch %d before its first block ended: due %+v, %v", e, due, err)
		}
		if ep, ok := w.chalEpoch(node.Address()); e > 3 && (!ok || ep != e-1) {
			t.Fatalf("epoch %d's first block: list of epoch %d (%v), want epoch %d's until the draw", e, ep, ok, e-1)
		}
		// A proof of e in its first block: the challenges are not drawn
		// yet. Built as a node would guess them (the blob's first
		// segments).
		guess := &ledger.StorageProof{Epoch: e, Entries: []ledger.StorageEntry{{LeaseID: leases[0].ID, Blob: b.ID}}}
		for seg := range uint64(2) {
			pr, err := w.blobs.Prove(blob.ID(b.ID), seg)
			if err != nil {
				t.Fatal(err)
			}
			guess.Entries[0].Proofs = append(guess.Entries[0].Proofs, pr)
		}
		before := len(w.st.Changes())
		if _, err := w.deliver(node, guess); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "drawn at the end of its first block") {
			t.Fatalf("epoch %d: a proof in the first block: %v", e, err)
		}
		if len(w.st.Changes()) != before {
			t.Fatal("a refused proof changed the state")
		}
		if e == 4 {
			// A pin in the first block, before the draw: challenged after
			// its grace epoch, not in this one, and not due in it.
			if out := w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: b2}); id(out, "from_epoch") != 6 { // storage_grace_epochs 1
				t.Fatalf("pin in the first block: %v", out)
			}
		}
		first := w.height
		if lists, seeds := w.drawWrites(); lists != 2 || seeds != 1 {
			t.Fatalf("the first block of epoch %d wrote %d challenge lists and %d seeds, want 2 and 1", e, lists, seeds)
		}
		sd, ok, err := w.m.reader(w.st).seed()
		if err != nil || !ok || sd.Epoch != e || sd.Height != first || sd.Seed != ChallengeSeed("rome-test", e, ledger.HashBytes(binary.BigEndian.AppendUint64([]byte("block"), first-1))) {
			t.Fatalf("seed %+v (%v, %v), want epoch %d drawn at %d from the hash of block %d", sd, ok, err, e, first, first-1)
		}
		due, err = w.m.StorageDue(w.st, node.Address(), 0)
		wantDue := 1
		if e == 6 {
			wantDue = 2
		}
		if err != nil || !due.Seeded || due.DrawHeight != first || len(due.Holdings) != wantDue {
			t.Fatalf("epoch %d after the draw: due %+v, %v", e, due, err)
		}
		ls, _, err := w.m.reader(w.st).leaseStorage(leases[0].ID)
		if wantBytes := b.Size + b2.Size*uint64(wantDue-1); err != nil || ls.DueBytes(e) != wantBytes {
			t.Fatalf("epoch %d: lease storage %+v (%v): due %d bytes, want %d", e, ls, err, ls.DueBytes(e), wantBytes)
		}
		for _, l := range leases {
			if res := w.must(w.nodeOf(l), w.answer(w.nodeOf(l))); id(res, "proven") != uint64(wantDue) {
				t.Fatalf("epoch %d: %v", e, res)
			}
		}
	}
	w.untilEpoch(7)
	if n := w.storageEvents("storage_missed"); n != 0 {
		t.Fatalf("%d misses", n)
	}
}

// TestChallengesEpochBlocksChange: with epochs of one block there is no
// block after the first to answer in, so an epoch's challenges are drawn
// at the end of the epoch before (its last block, seeded from the block
// before it) and answered in the epoch's one block; a governance change of
// epoch_blocks from 10 to 1 and back moves the draw between the two
// places at the first epoch of the new length, every epoch is drawn once
// and answered, and nothing is missed.
func TestChallengesEpochBlocksChange(t *testing.T) {
	w := newStorWorld(t, []uint64{1}, []string{"eu"}, nil)
	req := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 10), MaxPrice: res(4, 5), Epochs: 40, Replicas: 1}), "request_id")
	w.untilDrawn(1)
	b := w.put(3000, 4)
	w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: b})
	node := w.nodeOf(w.leasesOf(req)[0])
	setEpochBlocks := func(v string) {
		t.Helper()
		pid := id(w.must(w.node, &ledger.GovPropose{Param: "epoch_blocks", Value: v}), "proposal_id")
		w.must(w.node, &ledger.GovVote{ProposalID: pid, Option: ledger.VoteYes})
		// The provider once its proven storage gives it weight.
		if _, err := w.deliver(w.provs[0], &ledger.GovVote{ProposalID: pid, Option: ledger.VoteYes}); err != nil && !errors.Is(err, ErrUnauthorized) {
			t.Fatal(err)
		}
	}
	draws := map[uint64]uint64{} // epoch → draw height
	proven := 0
	// prove answers the current epoch if its challenges are drawn and
	// checks where they were drawn.
	prove := func() {
		t.Helper()
		c, _ := w.m.Clock(w.st)
		due, err := w.m.StorageDue(w.st, node.Address(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if !due.Seeded || len(due.Holdings) == 0 {
			return
		}
		want := c.StartHeight // drawn at the end of the first block ...
		if c.StartHeight == c.EndHeight {
			want = c.StartHeight - 1 // ... or of the epoch before's last, for a one-block epoch
		}
		if due.DrawHeight != want || w.height <= due.DrawHeight {
			t.Fatalf("epoch %d (blocks %d-%d): drawn at %d, want %d, before this block %d", c.Epoch, c.StartHeight, c.EndHeight, due.DrawHeight, want, w.height)
		}
		if h, ok := draws[c.Epoch]; ok && h != due.DrawHeight {
			t.Fatalf("epoch %d drawn at %d and at %d", c.Epoch, h, due.DrawHeight)
		}
		draws[c.Epoch] = due.DrawHeight
		w.must(node, w.answer(node))
		proven++
	}
	run := func(blocks int) {
		t.Helper()
		for range blocks {
			prove()
			w.endBlock()
		}
	}
	run(30)             // 10-block epochs: 1-3
	setEpochBlocks("1") // passes within the voting period
	run(30)             // the rest of the current epoch, then epochs of one block
	if p, _ := w.m.Params(w.st); p.EpochBlocks != 1 {
		t.Fatalf("epoch_blocks %d, want 1", p.EpochBlocks)
	}
	setEpochBlocks("10")
	run(40)
	if p, _ := w.m.Params(w.st); p.EpochBlocks != 10 {
		t.Fatalf("epoch_blocks %d, want 10", p.EpochBlocks)
	}
	c, _ := w.m.Clock(w.st)
	ones, tens := 0, 0
	for e := uint64(3); e < c.Epoch; e++ {
		if _, ok := draws[e]; !ok {
			t.Fatalf("epoch %d was not drawn or not answered (draws %v)", e, draws)
		}
	}
	for e, h := range draws {
		if next, ok := draws[e+1]; ok && next == h+1 {
			ones++
		} else {
			tens++
		}
	}
	if ones < 10 || tens < 3 {
		t.Fatalf("draws %v: want epochs of both lengths", draws)
	}
	if n := w.storageEvents("storage_missed"); n != 0 || proven != len(draws) {
		t.Fatalf("%d misses, %d proofs for %d epochs drawn", n, proven, len(draws))
	}
}

// rateWrites ends the current block and counts the storage rates and
// scheduled rate changes its EndBlock wrote.
func (w *storWorld) rateWrites() (rates, changes int) {
	w.t.Helper()
	n := w.endBlockWrites(func(k []byte) bool {
		return bytes.HasPrefix(k, rkey(tagStorRate)) && len(k) == len(rkey(tagStorRate))+ledger.AddressSize
	}, func(k []byte) bool { return bytes.HasPrefix(k, rkey(tagStorRateAt)) })
	return n[0], n[1]
}

// TestStorageRatesFoldedAtFirstBlock: the storage rate changes scheduled
// for epoch e are applied at the first block of e+1, not at its last
// block (which weighs the rates for e's reward): an epoch in which many
// providers' rates change at once leaves those writes out of the
// epoch-end block. The rates then weigh what each provider's leases are
// paid by proofs. (On the tree before, the last block of e+1 wrote them.)
func TestStorageRatesFoldedAtFirstBlock(t *testing.T) {
	w := newStorWorld(t, []uint64{1, 1}, []string{"eu", "us"}, nil)
	req := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 10), MaxPrice: res(4, 5), Epochs: 8, Replicas: 2}), "request_id")
	w.untilDrawn(1)
	if out := w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: w.put(5000, 3)}); id(out, "from_epoch") != 3 {
		t.Fatalf("pin: %v", out) // 5 units of 1 KiB due from epoch 3 on both replicas
	}
	rate := func(i int) uint64 {
		a := w.provs[i].Address()
		v, err := (&store{st: w.st, codec: w.codec}).getU64(rkey(tagStorRate, a[:]))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	w.untilDrawn(3)
	for _, l := range w.leasesOf(req) { // proven: no repair reschedules a rate
		node := w.nodeOf(l)
		w.must(node, w.answer(node))
	}
	w.untilEpoch(4)
	// At epoch 4's first block: epoch 3's changes are scheduled, not applied.
	if rate(0) != 0 || rate(1) != 0 {
		t.Fatalf("rates %d, %d before epoch 4's first block", rate(0), rate(1))
	}
	if r, c := w.rateWrites(); r != 2 || c != 2 {
		t.Fatalf("epoch 4's first block wrote %d rates and %d changes, want 2 and 2", r, c)
	}
	if rate(0) != 5 || rate(1) != 5 {
		t.Fatalf("rates %d, %d after epoch 4's first block, want 5 each", rate(0), rate(1))
	}
	for _, l := range w.leasesOf(req) { // proven: no repair reschedules a rate
		node := w.nodeOf(l)
		w.must(node, w.answer(node))
	}
	cl, _ := w.m.Clock(w.st)
	for {
		h := w.height
		if r, c := w.rateWrites(); r != 0 || c != 0 {
			t.Fatalf("block %d of epoch 4 (last %d) wrote %d rates and %d changes", h, cl.EndHeight, r, c)
		}
		if h >= cl.EndHeight {
			break
		}
	}
	if c, _ := w.m.Clock(w.st); c.Epoch != 5 {
		t.Fatalf("clock %+v after epoch 4's last block", c)
	}
}
