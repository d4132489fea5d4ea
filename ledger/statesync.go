package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/sos-kernel/sos/ledger/smt"
)

// State sync: a node far behind installs another node's current state
// instead of replaying every block. The exporter streams the state records
// of one consistent Pebble snapshot together with the head block; the
// importer rebuilds the sparse Merkle tree from them and accepts the state
// only if its root is the head block's state root, then installs state,
// tree, head block and head in one synced batch: a crash during an import
// leaves the store as it was. Blocks below the imported head are not
// transferred (their transactions and receipts are not queryable here).

// StateChunk encoding: records "uvarint len(key) | key | uvarint len(value) | value".

// ErrBadSnapshot is returned for a state snapshot that does not decode or
// does not produce the head's state root.
var ErrBadSnapshot = errors.New("bad state snapshot")

// ExportState streams the committed state in chunks of about chunkBytes to
// emit and returns the head and head block they belong to. emit may keep
// the chunk.
func (s *Store) ExportState(chunkBytes int, emit func(chunk []byte) error) (Head, []byte, error) {
	s.mu.RLock()
	snap := s.db.NewSnapshot()
	head := s.head
	s.mu.RUnlock()
	defer snap.Close()
	block, err := s.codec.readBlock(snap, head.Height)
	if err == nil && block == nil {
		err = ErrNotFound
	}
	if err != nil {
		return head, nil, fmt.Errorf("ledger: export state: head block %d: %w", head.Height, err)
	}
	blockBytes, err := s.codec.EncodeBlock(block)
	if err != nil {
		return head, nil, fmt.Errorf("ledger: export state: head block %d: %w", head.Height, err)
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: []byte{tState}, UpperBound: []byte{tState + 1}})
	if err != nil {
		return head, nil, fmt.Errorf("ledger: export state: %w", err)
	}
	defer it.Close()
	chunk := make([]byte, 0, chunkBytes+1024)
	for valid := it.First(); valid; valid = it.Next() {
		k, v := it.Key()[1:], it.Value()
		chunk = binary.AppendUvarint(chunk, uint64(len(k)))
		chunk = append(chunk, k...)
		chunk = binary.AppendUvarint(chunk, uint64(len(v)))
		chunk = append(chunk, v...)
		if len(chunk) >= chunkBytes {
			if err := emit(chunk); err != nil {
				return head, nil, err
			}
			chunk = make([]byte, 0, chunkBytes+1024)
		}
	}
	if err := it.Error(); err != nil {
		return head, nil, fmt.Errorf("ledger: export state: %w", err)
	}
	if len(chunk) > 0 {
		if err := emit(chunk); err != nil {
			return head, nil, err
		}
	}
	return head, blockBytes, nil
}

// StateImport collects a streamed state; Finish verifies and installs it.
type StateImport struct {
	s       *Store
	batch   *pebble.Batch
	changes []smt.Change
	lastKey []byte
	key     []byte // scratch for table keys
	bytes   int64
}

// BeginImport starts an import that will replace the whole state.
func (s *Store) BeginImport() (*StateImport, error) {
	b := s.db.NewBatch()
	// The new state replaces the old completely: clear both tables first
	// (later writes in the same batch win over the range deletions).
	if err := b.DeleteRange([]byte{tState}, []byte{tState + 1}, nil); err != nil {
		b.Close()
		return nil, err
	}
	if err := b.DeleteRange([]byte{tSMT}, []byte{tSMT + 1}, nil); err != nil {
		b.Close()
		return nil, err
	}
	return &StateImport{s: s, batch: b}, nil
}

// Bytes is the size of the state records received so far.
func (im *StateImport) Bytes() int64 { return im.bytes }

// Records is the number of state records received so far.
func (im *StateImport) Records() int { return len(im.changes) }

// Add decodes one chunk. Keys must arrive in strictly increasing order (as
// ExportState sends them), which also rules out duplicates.
func (im *StateImport) Add(chunk []byte) error {
	im.bytes += int64(len(chunk))
	for len(chunk) > 0 {
		k, rest, err := uvarintBytes(chunk)
		if err != nil {
			return err
		}
		v, rest, err := uvarintBytes(rest)
		if err != nil {
			return err
		}
		chunk = rest
		if len(v) == 0 {
			return fmt.Errorf("%w: empty value for key %x", ErrBadSnapshot, k)
		}
		if im.lastKey != nil && string(k) <= string(im.lastKey) {
			return fmt.Errorf("%w: key %x out of order", ErrBadSnapshot, k)
		}
		im.lastKey = k
		im.key = append(append(im.key[:0], tState), k...)
		if err := im.batch.Set(im.key, v, nil); err != nil {
			return err
		}
		// Hashing here, while the next chunk is on its way, keeps the tree
		// build in Finish short.
		im.changes = append(im.changes, smt.Change{Key: StateKeyHash(k), Value: v, ValueHash: smt.ValueHash(v)})
	}
	return nil
}

func uvarintBytes(b []byte) (field, rest []byte, err error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, fmt.Errorf("%w: truncated record", ErrBadSnapshot)
	}
	return b[w : w+int(n)], b[w+int(n):], nil
}

// Abort drops an import.
func (im *StateImport) Abort() { im.batch.Close() }

// Finish checks that the received state has the state root of block (the
// head it was exported at) and installs state, tree, block and head in one
// synced batch. The caller checks the block itself (its signature, that it
// is on this chain).
func (im *StateImport) Finish(block *Block) error {
	s := im.s
	defer im.batch.Close()
	h := block.Header.Height
	empty := smt.New(emptyReader{}, smt.Hash{}, 0)
	pending, err := empty.Update(im.changes)
	if err != nil {
		return fmt.Errorf("ledger: import state: %w", err)
	}
	if Hash(pending.Root()) != block.Header.StateRoot {
		return fmt.Errorf("ledger: import state at %d: %w: %d records give root %s, the block says %s",
			h, ErrBadSnapshot, len(im.changes), Hash(pending.Root()), block.Header.StateRoot)
	}
	for _, w := range pending.Writes() {
		if w.Node == nil {
			continue
		}
		im.key = append(append(im.key[:0], tSMT), w.Path...)
		if err := im.batch.Set(im.key, w.Node, nil); err != nil {
			return err
		}
	}
	bh, err := s.codec.HeaderHash(&block.Header)
	if err != nil {
		return err
	}
	if err := s.codec.putBlock(func(k, v []byte) error { return im.batch.Set(k, v, nil) }, block); err != nil {
		return err
	}
	if err := im.batch.Set(append([]byte{tBlockHash}, bh[:]...), binary.BigEndian.AppendUint64(nil, h), nil); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.head
	if old.ChainID != "" && old.ChainID != block.Header.ChainID {
		return fmt.Errorf("ledger: import state: chain %q, this store holds %q", block.Header.ChainID, old.ChainID)
	}
	if h <= old.Height {
		return fmt.Errorf("ledger: import state at %d: the store is already at %d", h, old.Height)
	}
	newHead := Head{ChainID: block.Header.ChainID, Height: h, BlockHash: bh, StateRoot: block.Header.StateRoot, Time: block.Header.Time, Genesis: old.Genesis}
	hb, err := s.codec.Marshal(&newHead)
	if err != nil {
		return err
	}
	if err := im.batch.Set([]byte{tMeta}, hb, nil); err != nil {
		return err
	}
	// History and index start with the imported state: the blocks before
	// it were never executed here.
	hv := binary.BigEndian.AppendUint64(nil, h)
	if err := errors.Join(im.batch.Set(markHistoryBase, hv, nil), im.batch.Set(markIndexBase, binary.BigEndian.AppendUint64(nil, h+1), nil)); err != nil {
		return err
	}
	if f := s.failed.Load(); f != nil {
		return fmt.Errorf("ledger: import state: %w", *f)
	}
	if err := s.commitBatch(im.batch); err != nil {
		return fmt.Errorf("ledger: import state at %d: %w", h, err)
	}
	s.tree = smt.New(nodeReader{s}, smt.Hash(newHead.StateRoot), s.cacheNodes)
	s.vals.reset()
	s.head = newHead
	return nil
}

type emptyReader struct{}

func (emptyReader) GetNode([]byte) ([]byte, error) { return nil, nil }
