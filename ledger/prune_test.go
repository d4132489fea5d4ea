package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// pruneFixture commits blocks 0..n, block h carrying h%4 transactions
// (indexed by sender and event) and changing two state keys (undo records).
func pruneFixture(t *testing.T, fs vfs.FS, n int) (*Store, []*Block) {
	t.Helper()
	s, err := Open("db", StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	var blocks []*Block
	for h := 0; h <= n; h++ {
		st := NewState(s)
		st.Set([]byte("k"), fmt.Appendf(nil, "%d", h))
		st.Set(fmt.Appendf(nil, "acct/%d", h%3), fmt.Appendf(nil, "%d", h))
		p, err := s.Prepare(st)
		if err != nil {
			t.Fatal(err)
		}
		head := s.Head()
		var txs [][]byte
		var rs []Receipt
		for i := 0; i < h%4; i++ {
			tx := fmt.Appendf(nil, "tx %d/%d", h, i)
			txs = append(txs, tx)
			rs = append(rs, Receipt{TxHash: HashBytes(tx), Height: uint64(h), Index: uint32(i), Events: []Event{
				NewEvent("wasm-set", "contract", fmt.Sprintf("c%d", i), "v", fmt.Sprint(h)), NewEvent("fee", "payer", "alice", "amount", "1uTFLP")}})
		}
		b := &Block{Header: Header{Version: BlockVersion, ChainID: "blocks", Height: uint64(h), PrevHash: head.BlockHash,
			TxRoot: MerkleRoot(txs), StateRoot: p.Root(), NumTxs: uint32(len(txs)), Time: int64(h)}, Signature: []byte("sig"), Txs: txs}
		if err := s.Commit(b, rs, p); err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
	}
	return s, blocks
}

// derivedKeys counts, per height, the undo records, index keys and prune
// logs s holds.
func derivedKeys(t *testing.T, s *Store) map[uint64]int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tHist}, UpperBound: []byte{tPruneLog + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	out := map[uint64]int{}
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		var h uint64
		switch k[0] {
		case tHist:
			if _, h, err = unescKey(k[1:]); err != nil {
				t.Fatal(err)
			}
		case tIndex:
			h = binary.BigEndian.Uint64(k[17:25])
		case tPruneLog:
			h = binary.BigEndian.Uint64(k[1:9])
		default:
			continue
		}
		out[h]++
	}
	return out
}

// checkDerived holds the history and index of a pruned store to its
// blocks: every key of a height below Earliest is gone, every key of a
// kept height is there (want: the counts before pruning), HistoryBase and
// IndexBase moved with the mark, and a pruned height's state or search
// reports ErrPruned.
// (Heights up to fixed hold pruneFixture's blocks, the search's subjects.)
func checkDerived(t *testing.T, s *Store, want map[uint64]int, fixed uint64) {
	t.Helper()
	e := s.Earliest()
	got := derivedKeys(t, s)
	for h, n := range want {
		if h > 0 && h < e {
			n = 0
		}
		if got[h] != n {
			t.Fatalf("height %d (earliest %d): %d history and index keys, want %d", h, e, got[h], n)
		}
	}
	if e == 1 {
		return
	}
	if hb, err := s.HistoryBase(); err != nil || hb != e-1 {
		t.Fatalf("history base %d (%v), earliest %d", hb, err, e)
	}
	if ib, err := s.IndexBase(); err != nil || ib != e {
		t.Fatalf("index base %d (%v), earliest %d", ib, err, e)
	}
	hs, err := s.StateAt(e - 1)
	if err != nil {
		t.Fatalf("state after the last pruned block %d: %v", e-1, err)
	}
	v, err := hs.GetState([]byte("k"))
	hs.Close()
	if err != nil || string(v) != fmt.Sprint(e-1) {
		t.Fatalf("state after block %d: k=%q %v", e-1, v, err)
	}
	if e >= 2 {
		if _, err := s.StateAt(e - 2); !errors.Is(err, ErrPruned) {
			t.Fatalf("state after pruned block %d: %v, want ErrPruned", e-2, err)
		}
		if _, err := s.SearchTxs(TxFilter{Sender: "alice", From: e - 1}); !errors.Is(err, ErrPruned) {
			t.Fatalf("search from pruned height %d: %v, want ErrPruned", e-1, err)
		}
	}
	res, err := s.SearchTxs(TxFilter{Event: "wasm-set", Limit: MaxTxQuery})
	if err != nil {
		t.Fatal(err)
	}
	kept := 0
	for h := e; h <= fixed; h++ {
		kept += int(h % 4)
	}
	if len(res.Receipts) != kept || res.IndexBase != e || (kept > 0 && res.Receipts[0].Height < e) {
		t.Fatalf("search after pruning to %d: %d receipts from %s (index base %d), want %d", e, len(res.Receipts), positions(res.Receipts), res.IndexBase, kept)
	}
}

// checkPruned holds a store to the pruning invariant: every block from
// Earliest to the head (and block 0) is whole, with its receipts; every
// block below Earliest reports ErrPruned; the head and state are those of
// the last block.
func checkPruned(t *testing.T, s *Store, blocks []*Block) {
	t.Helper()
	last := blocks[len(blocks)-1]
	if h := s.Head(); h.Height != last.Header.Height || h.StateRoot != last.Header.StateRoot {
		t.Fatalf("head %d %s after pruning, want %d %s", h.Height, h.StateRoot, last.Header.Height, last.Header.StateRoot)
	}
	e := s.Earliest()
	for _, want := range blocks {
		h := want.Header.Height
		got, err := s.Block(h)
		if h > 0 && h < e {
			if !errors.Is(err, ErrPruned) || !errors.Is(err, ErrNotFound) {
				t.Fatalf("block %d below earliest %d: %v, want ErrPruned", h, e, err)
			}
			if _, err := s.Receipt(h, 0); !errors.Is(err, ErrPruned) {
				t.Fatalf("receipt of pruned block %d: %v", h, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("kept block %d (earliest %d): %v", h, e, err)
		}
		gb, _ := s.codec.Marshal(got)
		wb, _ := s.codec.Marshal(want)
		if !bytes.Equal(gb, wb) {
			t.Fatalf("kept block %d differs", h)
		}
		if _, err := s.Receipts(h, len(want.Txs)); err != nil {
			t.Fatalf("receipts of kept block %d: %v", h, err)
		}
	}
	// The tx index still finds pruned transactions (by height).
	for _, b := range blocks[1:] {
		for i, tx := range b.Txs {
			if h, idx, err := s.TxLocation(HashBytes(tx)); err != nil || h != b.Header.Height || idx != uint32(i) {
				t.Fatalf("tx %d/%d location: %d %d %v", b.Header.Height, i, h, idx, err)
			}
		}
	}
}

// TestPruneBlocks: pruning keeps the head, the state, block 0 and the
// blocks from the mark on; the mark survives a reopen; pruning again below
// the mark does nothing.
func TestPruneBlocks(t *testing.T) {
	fs := vfs.NewMem()
	s, blocks := pruneFixture(t, fs, 40)
	derived := derivedKeys(t, s)
	for h := uint64(1); h <= 40; h++ {
		if derived[h] == 0 || (h%4 > 0 && derived[h] <= 3) {
			t.Fatalf("block %d left %d history and index keys (undo records, postings, prune log)", h, derived[h])
		}
	}
	e, err := s.PruneBlocks(context.Background(), 25, 7)
	if err != nil || e != 25 {
		t.Fatalf("prune below 25: earliest %d, %v", e, err)
	}
	checkPruned(t, s, blocks)
	checkDerived(t, s, derived, 40)
	if e, err := s.PruneBlocks(context.Background(), 10, 7); err != nil || e != 25 {
		t.Fatalf("prune below the mark: %d %v", e, err)
	}
	// Never the head.
	if e, err := s.PruneBlocks(context.Background(), 1000, 100); err != nil || e != 40 {
		t.Fatalf("prune past the head: %d %v", e, err)
	}
	checkPruned(t, s, blocks)
	// Commits go on after pruning.
	blocks = append(blocks, commitTxBlock(t, s, [][]byte{[]byte("after")}))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open("db", StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Earliest() != 40 {
		t.Fatalf("earliest after reopen %d", s.Earliest())
	}
	checkPruned(t, s, blocks)
	derived[41] = derivedKeys(t, s)[41]
	checkDerived(t, s, derived, 40)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.PruneBlocks(ctx, 41, 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled prune: %v", err)
	}
}

// TestPruneCrashSafe: a crash at any moment of pruning (the filesystem
// cloned with only what was synced, or some unsynced writes too) leaves a
// store that holds every block from its mark on, whole, and reports the
// others pruned: each batch deletes a range and moves the mark together.
func TestPruneCrashSafe(t *testing.T) {
	seed := uint64(rand.Int64())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	mem := vfs.NewCrashableMem()
	s, blocks := pruneFixture(t, mem, 60)
	derived := derivedKeys(t, s)
	done := make(chan error, 1)
	go func() {
		_, err := s.PruneBlocks(context.Background(), 55, 3)
		done <- err
	}()
	var clones []*vfs.MemFS
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
		}
		cfg := vfs.CrashCloneCfg{}
		if rng.IntN(2) == 0 {
			cfg = vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(100), RNG: rand.New(rand.NewPCG(rng.Uint64(), 2))}
		}
		clones = append(clones, mem.CrashClone(cfg))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	marks := map[uint64]bool{}
	for i, fs := range clones {
		c, err := Open("db", StoreOptions{FS: fs})
		if err != nil {
			t.Fatalf("clone %d: %v", i, err)
		}
		marks[c.Earliest()] = true
		checkPruned(t, c, blocks)
		checkDerived(t, c, derived, 60)
		c.Close()
	}
	t.Logf("%d crash points, %d distinct marks", len(clones), len(marks))
}

// FuzzPruneLog: a prune log lists back exactly the undo records and index
// keys it was built from; any other bytes are ErrCorrupt or a list, never
// a panic.
func FuzzPruneLog(f *testing.F) {
	f.Add([]byte("k"), []byte{0, 1, 0xff}, uint64(7), []byte{})
	f.Add([]byte{}, []byte("acct/1"), uint64(1), []byte{3, 'a', 'b'})
	f.Fuzz(func(t *testing.T, k1, k2 []byte, h uint64, junk []byte) {
		var l pruneLog
		term := termKey("sender", string(k1))
		want := []string{string(histKey(k1, h)), string(histKey(k2, h)), string(indexKey(term, h, 3))}
		l.hist(k1)
		l.hist(k2)
		l.index(indexKey(term, h, 3))
		var got []string
		if err := deleteLogged(h, l.encode(), func(k []byte) error { got = append(got, string(k)); return nil }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("listed %q, want %q", got, want)
		}
		if err := deleteLogged(h, junk, func([]byte) error { return nil }); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("junk: %v", err)
		}
	})
}
