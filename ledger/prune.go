package ledger

import (
	"context"
	"encoding/binary"
	"fmt"
)

// Block retention: a node may keep only its most recent blocks. Pruning
// deletes the bodies of old blocks — header, transactions and receipts —
// and nothing else: the state, its Merkle tree and the head are untouched,
// so state roots and everything consensus computes stay the same (no block
// ever reads an older block). The small indexes from a block hash or a
// transaction hash to its height are kept, so a lookup of a pruned block or
// transaction says it was pruned rather than that it never existed. Block 0
// (genesis) is never pruned.
//
// Each step deletes a range of heights and raises the pruning mark in one
// synced batch: after a crash the store holds every block at or above the
// mark, never a block half deleted.

// ErrPruned: the block, or its transaction or receipt, was deleted by this
// node's block retention. It wraps ErrNotFound.
var ErrPruned = fmt.Errorf("pruned by this node's block retention: %w", ErrNotFound)

// keyPruned holds the lowest height above 0 whose block is kept (8 bytes
// big endian); absent: nothing was pruned. It lives in the meta table,
// outside the state.
var keyPruned = []byte{tMeta, 'p', 'r', 'u', 'n', 'e', 'd'}

// loadPruned reads the pruning mark at Open.
func (s *Store) loadPruned() error {
	v, err := s.get(keyPruned)
	if err != nil {
		return err
	}
	switch len(v) {
	case 0:
		s.earliest.Store(1)
	case 8:
		s.earliest.Store(binary.BigEndian.Uint64(v))
	default:
		return fmt.Errorf("pruning mark of %d bytes: %w", len(v), ErrCorrupt)
	}
	return nil
}

// Earliest is the lowest height above 0 whose block this store may hold:
// the blocks from 1 to Earliest-1 were pruned. (A node that installed a
// state snapshot also lacks the blocks between its old head and the
// snapshot's.)
func (s *Store) Earliest() uint64 { return s.earliest.Load() }

// pruned reports whether the block at height was pruned.
func (s *Store) pruned(height uint64) bool { return height > 0 && height < s.earliest.Load() }

// PruneBlocks deletes the blocks below height (never the head, never
// block 0), at most step heights per synced batch, until ctx ends. It
// returns the new Earliest. Pruning is node-local and never changes the
// state.
func (s *Store) PruneBlocks(ctx context.Context, below, step uint64) (uint64, error) {
	if step == 0 {
		step = 1000
	}
	below = min(below, s.Head().Height)
	for {
		lo := s.earliest.Load()
		if lo >= below {
			return lo, nil
		}
		if err := ctx.Err(); err != nil {
			return lo, err
		}
		hi := min(lo+step, below)
		if err := s.pruneRange(lo, hi); err != nil {
			return s.earliest.Load(), err
		}
	}
}

// pruneRange deletes the blocks lo..hi-1 and sets the mark to hi, in one
// synced batch.
func (s *Store) pruneRange(lo, hi uint64) (err error) {
	b := s.db.NewBatch()
	defer b.Close()
	for _, t := range []byte{tBlockHead, tBlock, tBlockTx, tReceipt} {
		if err := b.DeleteRange(heightKey(t, lo), heightKey(t, hi), nil); err != nil {
			return fmt.Errorf("ledger: prune blocks %d-%d: %w", lo, hi-1, err)
		}
	}
	if err := b.Set(keyPruned, binary.BigEndian.AppendUint64(nil, hi), nil); err != nil {
		return fmt.Errorf("ledger: prune blocks %d-%d: %w", lo, hi-1, err)
	}
	if f := s.failed.Load(); f != nil {
		return fmt.Errorf("ledger: prune blocks %d-%d: %w", lo, hi-1, *f)
	}
	// Readers see the blocks as pruned from now on: between here and the
	// commit they may still find them, which is harmless.
	s.earliest.Store(hi)
	if err := s.commitBatch(b); err != nil {
		s.earliest.Store(lo)
		return fmt.Errorf("ledger: prune blocks %d-%d: %w", lo, hi-1, err)
	}
	return nil
}
