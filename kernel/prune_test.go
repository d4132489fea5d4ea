package kernel

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
)

// TestClusterBlockRetention: members keeping only their last blocks prune
// the older ones (the API answers those heights with 410 and a JSON error
// saying so, and a transaction in one, its trace and a search of those
// heights likewise), while a member that was
// down far longer than the retention and a node joining late still catch
// up (raft snapshot, then state sync) and agree on the state root.
func TestClusterBlockRetention(t *testing.T) {
	const compact = 20
	keep := minRetentionFor(compact)
	tc := newTunedCluster(t, 3, func(o *NodeOptions) {
		o.Config.BlockInterval = Duration{10 * time.Millisecond}
		o.Config.BlockRetention = keep
		o.RaftCompactEvery = compact
		o.SyncTimeout = time.Second
	})
	l := tc.leader(5 * time.Second)
	alice := tc.users[0]
	var first ledger.Hash
	for n := uint64(0); n < 5; n++ {
		raw := tc.transfer(alice, n, 1)
		if n == 0 {
			first = ledger.HashBytes(raw)
		}
		if err := tc.submit(l, raw); err != nil {
			t.Fatal(err)
		}
	}
	tc.converge(3, 10*time.Second)
	down := (l + 1) % 3
	tc.stop(down)
	tc.waitFor(30*time.Second, "members pruned past the first transaction", func() bool {
		for i, m := range tc.members {
			if i == down {
				continue
			}
			if h, _, err := m.node.store.TxLocation(first); err != nil || m.node.store.Earliest() <= h+stateSyncMinGap {
				return false
			}
		}
		return true
	})
	m := tc.members[l]
	head := m.node.store.Head().Height
	if e := m.node.store.Earliest(); head-e+1 > keep+pruneStep+head/10 || e < 2 {
		t.Fatalf("head %d, earliest %d: want about the last %d blocks kept", head, e, keep)
	}
	// The API: a pruned block and a transaction in one answer 410 with a
	// JSON error; the block list ends at the oldest block kept.
	resp, err := http.Get("http://" + m.node.APIAddr() + "/v1/blocks/1")
	if err != nil {
		t.Fatal(err)
	}
	var e client.Error
	_ = json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusGone || !strings.Contains(e.Error, "pruned") || !strings.Contains(e.Error, "keeps blocks from") {
		t.Fatalf("GET a pruned block: %d %q; want 410 saying it was pruned", resp.StatusCode, e.Error)
	}
	ctx := context.Background()
	if _, err := m.client.Tx(ctx, first.String()); !errors.Is(err, client.ErrPruned) || !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("tx in a pruned block: %v; want ErrPruned", err)
	}
	st, err := m.client.Status(ctx)
	if err != nil || st.EarliestHeight < 2 {
		t.Fatalf("status earliest_height %d, %v", st.EarliestHeight, err)
	}
	// Its trace and a search of pruned heights say so too (410); a search
	// without a range finds only kept heights: history and index went with
	// the blocks.
	if _, err := m.client.TraceTx(ctx, first.String()); !errors.Is(err, client.ErrPruned) {
		t.Fatalf("trace of a tx in a pruned block: %v; want ErrPruned", err)
	}
	if _, err := m.client.SearchTxs(ctx, client.TxQuery{Sender: alice.Address().String(), From: 1}); !errors.Is(err, client.ErrPruned) {
		t.Fatalf("search from height 1: %v; want ErrPruned", err)
	}
	found, err := m.client.SearchTxs(ctx, client.TxQuery{Sender: alice.Address().String()})
	if err != nil || found.IndexBase < st.EarliestHeight || len(found.Txs) > 0 && found.Txs[0].Height < found.IndexBase {
		t.Fatalf("search after pruning: %+v, %v (earliest %d)", found, err, st.EarliestHeight)
	}
	if hb, err := m.node.store.HistoryBase(); err != nil || hb+1 < st.EarliestHeight {
		t.Fatalf("history base %d (%v) below the earliest block %d", hb, err, st.EarliestHeight)
	}
	bl, err := m.client.Blocks(ctx, st.EarliestHeight+2, 10)
	if err != nil || len(bl) != 3 {
		t.Fatalf("block list across the earliest height: %d blocks, %v; want 3", len(bl), err)
	}
	// A member down all along and a node joining now both catch up.
	j := tc.join(l, 79, false)
	tc.start(down)
	for n := uint64(5); n < 10; n++ {
		if err := tc.submit(l, tc.transfer(alice, n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	tc.converge(head+5, 30*time.Second)
	for _, i := range []int{j, down} {
		a, _, _ := (&ledger.Accounts{St: ledger.NewState(tc.members[i].node.store), Codec: tc.codec}).Get(alice.Address())
		if a.Nonce != 10 {
			t.Fatalf("node %d: alice nonce %d after catching up", i, a.Nonce)
		}
	}
}

// TestBlockRetentionFloor: a retention below what catching-up members may
// need is refused with the minimum.
func TestBlockRetentionFloor(t *testing.T) {
	opts := NodeOptions{Config: DefaultConfig()}
	for _, r := range []uint64{0, MinBlockRetention, MinBlockRetention + 1} {
		opts.Config.BlockRetention = r
		if err := checkRetention(opts); err != nil {
			t.Errorf("block_retention %d: %v", r, err)
		}
	}
	opts.Config.BlockRetention = MinBlockRetention - 1
	if err := checkRetention(opts); err == nil || !strings.Contains(err.Error(), "at least 2128") {
		t.Errorf("block_retention below the floor: %v", err)
	}
	opts.RaftCompactEvery = 20
	opts.Config.BlockRetention = 168
	if err := checkRetention(opts); err != nil {
		t.Errorf("floor follows the compaction interval: %v", err)
	}
}
