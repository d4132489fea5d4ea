package ledger

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// pruneLog collects what one block adds to the history and the index.
// Encoded: uvarint(n) and n bytes of state keys (each uvarint length,
// key) of the block's undo records, then its index postings (term,
// transaction index: 20 bytes each; the height is the log's own).
type pruneLog struct {
	hists, postings []byte
}

func (l *pruneLog) hist(key []byte) {
	l.hists = binary.AppendUvarint(l.hists, uint64(len(key)))
	l.hists = append(l.hists, key...)
}

// index takes an index key (tIndex || term || height || index).
func (l *pruneLog) index(k []byte) {
	l.postings = append(append(l.postings, k[1:17]...), k[25:29]...)
}

func (l *pruneLog) empty() bool { return len(l.hists) == 0 && len(l.postings) == 0 }

func (l *pruneLog) encode() []byte {
	out := binary.AppendUvarint(make([]byte, 0, 10+len(l.hists)+len(l.postings)), uint64(len(l.hists)))
	return append(append(out, l.hists...), l.postings...)
}

// deleteLogged deletes, through del, the undo records and index keys the
// prune log v of block h lists.
func deleteLogged(h uint64, v []byte, del func(k []byte) error) error {
	n, w := binary.Uvarint(v)
	if w <= 0 || n > uint64(len(v)-w) || (uint64(len(v)-w)-n)%20 != 0 {
		return fmt.Errorf("ledger: prune log of block %d: %w", h, ErrCorrupt)
	}
	hists, postings := v[w:w+int(n)], v[w+int(n):]
	for len(hists) > 0 {
		l, w := binary.Uvarint(hists)
		if w <= 0 || l > uint64(len(hists)-w) {
			return fmt.Errorf("ledger: prune log of block %d: %w", h, ErrCorrupt)
		}
		if err := del(histKey(hists[w:w+int(l)], h)); err != nil {
			return err
		}
		hists = hists[w+int(l):]
	}
	for ; len(postings) > 0; postings = postings[20:] {
		if err := del(indexKey([16]byte(postings[:16]), h, binary.BigEndian.Uint32(postings[16:20]))); err != nil {
			return err
		}
	}
	return nil
}

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
//
// The state history and the transaction index of a pruned height go with
// its block, in the same batch: every block's commit also lists the keys
// it added to both (the prune log, table tPruneLog: the undo records are
// ordered by state key and the index keys by term, so neither can be
// deleted by a range of heights), and pruning reads that list, deletes
// those keys and the list, and raises HistoryBase and IndexBase with the
// pruning mark. A transaction of a pruned block is then neither traced
// nor found by a search: both say it was pruned (ErrPruned), as a lookup
// of its block does.

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

// pruneRange deletes the blocks lo..hi-1, their undo records and index
// keys, and sets the mark to hi (HistoryBase to hi-1 and IndexBase to hi
// at least), in one synced batch.
func (s *Store) pruneRange(lo, hi uint64) (err error) {
	b := s.db.NewBatch()
	defer b.Close()
	if err := s.prunePrefix(b, lo, hi); err != nil {
		return fmt.Errorf("ledger: prune blocks %d-%d: %w", lo, hi-1, err)
	}
	for _, t := range []byte{tBlockHead, tBlock, tBlockTx, tReceipt, tPruneLog} {
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

// prunePrefix adds to b the deletion of the history and index of blocks
// lo..hi-1 (their prune logs) and the raised HistoryBase and IndexBase.
func (s *Store) prunePrefix(b *pebble.Batch, lo, hi uint64) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: heightKey(tPruneLog, lo), UpperBound: heightKey(tPruneLog, hi)})
	if err != nil {
		return err
	}
	for ok := it.First(); ok; ok = it.Next() {
		h := binary.BigEndian.Uint64(it.Key()[1:])
		if err := deleteLogged(h, it.Value(), func(k []byte) error { return b.Delete(k, nil) }); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return err
	}
	for _, m := range []struct {
		key []byte
		to  uint64
	}{{markHistoryBase, hi - 1}, {markIndexBase, hi}} {
		cur, ok, err := s.mark(m.key)
		if err != nil {
			return err
		}
		if !ok || cur < m.to {
			if err := b.Set(m.key, binary.BigEndian.AppendUint64(nil, m.to), nil); err != nil {
				return err
			}
		}
	}
	return nil
}
