package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// pruneFixture commits blocks 0..n, block h carrying h%4 transactions.
func pruneFixture(t *testing.T, fs vfs.FS, n int) (*Store, []*Block) {
	t.Helper()
	s, err := Open("db", StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	var blocks []*Block
	for h := 0; h <= n; h++ {
		var txs [][]byte
		for i := 0; i < h%4; i++ {
			txs = append(txs, fmt.Appendf(nil, "tx %d/%d", h, i))
		}
		blocks = append(blocks, commitTxBlock(t, s, txs))
	}
	return s, blocks
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
	e, err := s.PruneBlocks(context.Background(), 25, 7)
	if err != nil || e != 25 {
		t.Fatalf("prune below 25: earliest %d, %v", e, err)
	}
	checkPruned(t, s, blocks)
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
		c.Close()
	}
	t.Logf("%d crash points, %d distinct marks", len(clones), len(marks))
}
