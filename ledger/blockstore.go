package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Blocks are stored in pieces: the header and signature under tBlockHead
// (the block's own encoding with a null transaction list) and every
// transaction under tBlockTx. A block of 5,000 ML-DSA transfers is 17 MB;
// stored as one value, Pebble writes it as one 17 MB sstable block on every
// flush and compaction, through several freshly allocated buffers of that
// size. Transactions of a few KB pack into ordinary blocks, and a single
// transaction can be read without the rest. The pieces reassemble into the
// exact canonical bytes (EncodeBlock is deterministic). Stores written
// before this layout keep whole blocks under tBlock, which is still read.

func blockTxKey(h uint64, i uint32) []byte {
	return binary.BigEndian.AppendUint32(heightKey(tBlockTx, h), i)
}

// putBlock writes b in pieces through set.
func (c *Codec) putBlock(set func(k, v []byte) error, b *Block) error {
	// The head piece keeps an empty transaction list as it was encoded (an
	// empty array, not null), so the block reassembles byte for byte.
	var txs [][]byte
	if b.Txs != nil && len(b.Txs) == 0 {
		txs = b.Txs
	}
	head, err := c.EncodeBlock(&Block{Header: b.Header, Signature: b.Signature, Txs: txs})
	if err != nil {
		return err
	}
	if err := set(heightKey(tBlockHead, b.Header.Height), head); err != nil {
		return err
	}
	for i, tx := range b.Txs {
		if err := set(blockTxKey(b.Header.Height, uint32(i)), tx); err != nil {
			return err
		}
	}
	return nil
}

// readBlock reassembles the block at height h from r (the store or one of
// its snapshots); nil, nil if there is none.
func (c *Codec) readBlock(r pebble.Reader, h uint64) (*Block, error) {
	head, err := readValue(r, heightKey(tBlockHead, h))
	if err != nil {
		return nil, err
	}
	if head == nil {
		whole, err := readValue(r, heightKey(tBlock, h)) // earlier layout
		if err != nil || whole == nil {
			return nil, err
		}
		return c.DecodeBlock(whole)
	}
	b, err := c.parseBlock(head)
	if err != nil {
		return nil, err
	}
	if len(b.Txs) > 0 {
		return nil, fmt.Errorf("ledger: block %d: stored header carries transactions: %w", h, ErrCorrupt)
	}
	lo := heightKey(tBlockTx, h)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: heightKey(tBlockTx, h+1)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	// The transactions are copied into one buffer, not one allocation each.
	var arena []byte
	var ends []int
	for valid := it.First(); valid; valid = it.Next() {
		if want := blockTxKey(h, uint32(len(ends))); string(it.Key()) != string(want) {
			return nil, fmt.Errorf("ledger: block %d: transaction %d missing: %w", h, len(ends), ErrCorrupt)
		}
		arena = append(arena, it.Value()...)
		ends = append(ends, len(arena))
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if len(ends) != int(b.Header.NumTxs) {
		return nil, fmt.Errorf("ledger: block %d: %d of %d transactions stored: %w", h, len(ends), b.Header.NumTxs, ErrCorrupt)
	}
	if len(ends) > 0 {
		b.Txs = make([][]byte, 0, len(ends))
	}
	start := 0
	for _, end := range ends {
		b.Txs = append(b.Txs, arena[start:end:end])
		start = end
	}
	return b, nil
}

// readValue copies the value of key out of r; nil if absent.
func readValue(r pebble.Reader, key []byte) ([]byte, error) {
	v, closer, err := r.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// TxBytes returns the transaction at (height, index) without reading the
// rest of its block.
func (s *Store) TxBytes(height uint64, index uint32) ([]byte, error) {
	v, err := s.get(blockTxKey(height, index))
	if err != nil {
		return nil, fmt.Errorf("ledger: tx %d/%d: %w", height, index, err)
	}
	if v != nil {
		return v, nil
	}
	b, err := s.Block(height) // a block of the earlier, whole layout
	if err != nil {
		return nil, err
	}
	if int(index) >= len(b.Txs) {
		return nil, fmt.Errorf("ledger: tx %d/%d: %w", height, index, ErrNotFound)
	}
	return b.Txs[index], nil
}
