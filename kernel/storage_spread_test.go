package kernel

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
)

// TestProofAnswerHeight: a holder node's answer height is a pure function
// of its address and the epoch, within the first ⌊spread × epoch_blocks⌋
// blocks from the draw (the epoch's first block) and before the epoch's
// last block; spread 0 answers at the draw; different nodes and epochs
// get different offsets.
func TestProofAnswerHeight(t *testing.T) {
	const epochBlocks = 10
	var nodes []ledger.Address
	for i := range 20 {
		nodes = append(nodes, seededKey(t, 5000+i).Address())
	}
	for _, spread := range []float64{0, 0.05, 0.3, 0.5, 0.9} {
		win := max(1, uint64(spread*epochBlocks))
		for e := uint64(1); e <= 30; e++ {
			end := (e + 1) * epochBlocks
			draw := end - epochBlocks + 1
			offsets := map[uint64]int{}
			for _, a := range nodes {
				at := proofAnswerHeight(a, e, draw, end, epochBlocks, spread)
				if at != proofAnswerHeight(a, e, draw, end, epochBlocks, spread) {
					t.Fatal("not deterministic")
				}
				if at < draw || at >= draw+win || at >= end {
					t.Fatalf("spread %v epoch %d: answer at %d, want in [%d, %d) and before %d", spread, e, at, draw, draw+win, end)
				}
				offsets[at-draw]++
			}
			if spread == 0.5 && len(offsets) < 3 {
				t.Fatalf("epoch %d: 20 nodes on %d offsets of 5: %v", e, len(offsets), offsets)
			}
		}
	}
	// One node's offset changes with the epoch.
	seen := map[uint64]bool{}
	for e := uint64(1); e <= 30; e++ {
		seen[proofAnswerHeight(nodes[0], e, e*epochBlocks+1, (e+1)*epochBlocks, epochBlocks, 0.5)-e*epochBlocks] = true
	}
	if len(seen) < 3 {
		t.Fatalf("node 0's offsets over 30 epochs: %v", seen)
	}
	// Degenerate clocks stay in range: a one-block epoch (drawn at the
	// end of the block before) answers at its draw, an end below the
	// epoch's length does not wrap around, and no node answers before
	// the draw.
	if at := proofAnswerHeight(nodes[0], 3, 3, 4, 1, 0.9); at != 3 {
		t.Fatalf("one-block epoch: answer at %d", at)
	}
	if at := proofAnswerHeight(nodes[0], 0, 1, 5, 10, 0.5); at >= 5 || at < 1 {
		t.Fatalf("short first epoch: answer at %d", at)
	}
	for _, a := range nodes {
		if at := proofAnswerHeight(a, 7, 20, 21, 10, 0.9); at != 20 {
			t.Fatalf("draw at the epoch's last block but one: answer at %d, want 20", at)
		}
	}
}

// TestStorageProofsSpreadOverEpoch: three holder nodes each hold a replica
// of a blob and answer its challenges epoch after epoch; each one's
// storage_proof transaction lands after its own answer height (not all in
// the epoch's first block) and before the epoch ends, so the holders'
// proofs of one epoch land in different blocks; no holding is missed.
func TestStorageProofsSpreadOverEpoch(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node QUIC cluster")
	}
	const epochBlocks = 10
	keys := []*ledger.PrivateKey{seededKey(t, 90), seededKey(t, 91), seededKey(t, 92)}
	provs := []*ledger.PrivateKey{seededKey(t, 1090), seededKey(t, 1091), seededKey(t, 1092)}
	cons := seededKey(t, 1093)
	nodes := storageCluster(t, keys, append(provs, cons), epochBlocks, 100, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cs := nodeClients(t, nodes)
	send := committer(ctx, t, cs[0])
	for i, p := range provs {
		send(p, &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 4, Amount: 1000}}, Price: []ledger.ResourceAmount{{Kind: 4, Amount: 1}},
			Region: "r" + itoa(uint64(i)), Node: keys[i].Address(), Bond: ledger.Coins{{Denom: "uTFLP", Amount: 10_000_000}}})
	}
	// Every node has the blob already: no fetch to wait for.
	data := seededBytes(50_000, 9)
	var put *client.BlobPut
	var err error
	for _, c := range cs {
		if put, err = c.PutBlob(ctx, bytes.NewReader(data), int64(len(data)), ""); err != nil {
			t.Fatal(err)
		}
	}
	send(cons, &ledger.RomeRequest{Demand: []ledger.ResourceAmount{{Kind: 4, Amount: 100}}, MaxPrice: []ledger.ResourceAmount{{Kind: 4, Amount: 2}},
		Epochs: 200, Replicas: 3})
	var leases []client.RomeLease
	waitFor(t, ctx, "three replica leases", func() bool {
		leases, err = cs[0].RomeLeases(ctx, client.RomeFilter{Status: "active"})
		return err == nil && len(leases) == 3
	})
	id, _ := ledger.ParseBlobID(put.ID)
	send(cons, &ledger.BlobPin{RequestID: leases[0].RequestID, Blob: ledger.BlobRef{ID: id, Size: put.Size}})

	// The proofs on node 0's chain: epoch → holder node → block height.
	n0 := nodes[0]
	codec := n0.store.Codec()
	proofs := map[uint64]map[ledger.Address]uint64{}
	scanned := uint64(0)
	scan := func() {
		head := n0.store.Head().Height
		for h := scanned + 1; h <= head; h++ {
			blk, err := n0.store.Block(h)
			if err != nil {
				t.Fatalf("block %d: %v", h, err)
			}
			for _, raw := range blk.Txs {
				tx, err := codec.DecodeTx(raw)
				if err != nil {
					t.Fatalf("block %d: %v", h, err)
				}
				if sp, ok := tx.Payload.(*ledger.StorageProof); ok {
					if proofs[sp.Epoch] == nil {
						proofs[sp.Epoch] = map[ledger.Address]uint64{}
					}
					if _, dup := proofs[sp.Epoch][tx.Sender]; !dup {
						proofs[sp.Epoch][tx.Sender] = h
					}
				}
			}
		}
		scanned = head
	}
	full := func() (n int) {
		for _, by := range proofs {
			if len(by) == len(keys) {
				n++
			}
		}
		return n
	}
	waitFor(t, ctx, "three epochs proven by all three holders", func() bool {
		scan()
		return full() >= 3
	})
	clock, err := n0.chain.market.Clock(ledger.NewState(n0.store))
	if err != nil {
		t.Fatal(err)
	}
	spread := DefaultConfig().StorageProofSpread
	spreadEpochs := 0
	for e, by := range proofs {
		// Every epoch has epochBlocks blocks: epoch e ends at block
		// clock.EndHeight - (clock.Epoch-e)·epochBlocks.
		end := clock.EndHeight - (clock.Epoch-e)*epochBlocks
		draw := end - epochBlocks + 1 // the epoch's first block
		heights := map[uint64]bool{}
		for node, h := range by {
			at := proofAnswerHeight(node, e, draw, end, epochBlocks, spread)
			if h <= at || h <= draw || h > end {
				t.Errorf("epoch %d (blocks %d-%d): node %s's proof in block %d, want after its answer height %d and by %d",
					e, end-epochBlocks+1, end, node, h, at, end)
			}
			heights[h] = true
		}
		if len(by) == len(keys) && len(heights) > 1 {
			spreadEpochs++
		}
	}
	if spreadEpochs == 0 {
		t.Fatalf("no epoch with the holders' proofs in different blocks: %v", proofs)
	}
	for _, l := range leases {
		p, err := cs[0].Provider(ctx, l.Provider)
		if err != nil || p.StorageMissed != 0 {
			t.Fatalf("provider %s: %+v, %v", l.Provider, p, err)
		}
	}
}
