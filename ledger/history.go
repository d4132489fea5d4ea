package ledger

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/cockroachdb/pebble/v2"
)

// State history: every committed block h ≥ 1 also writes, in the same
// batch, the value each key it changed had before it (the undo record,
// table tHist). The state after block x is then the current state with the
// undo records of blocks x+1 … head laid over it: for a key, the record of
// the first block after x that changed it holds its value at x, and a key
// no later block changed has its current value. That is what `sos tx
// trace` re-executes a transaction on. Undo records cost the size of the
// values a block overwrites (an account record per transfer side, a
// contract's storage entries), typically a tenth of the block's own bytes.
//
// Keys are tHist || esc(state key) || height (8 bytes, big-endian), where
// esc keeps byte order and no escaped key is a prefix of another (0x00 is
// written 0x00 0xff, and 0x00 0x01 ends the key), so the records of one key
// are contiguous, ordered by height, and a range of state keys maps to a
// range of records. The value is 0x00 (the key was absent) or 0x01 || value.

// ErrHistoryUnavailable is returned for a height whose state this store
// cannot reconstruct: before the first block it kept history for (a
// ledger written by an older version, or restored from a state snapshot),
// or above the head.
var ErrHistoryUnavailable = errors.New("state history not available")

// Marker keys (table tMarks) of what the store keeps for which heights.
var (
	markHistoryBase = []byte{tMarks, 'h'} // lowest height whose state can be reconstructed
	markIndexBase   = []byte{tMarks, 'i'} // lowest height whose transactions are in the index
)

func escKey(dst, k []byte) []byte {
	for _, c := range k {
		if c == 0 {
			dst = append(dst, 0, 0xff)
		} else {
			dst = append(dst, c)
		}
	}
	return append(dst, 0, 1)
}

// histKey is tHist || esc(k) || height.
func histKey(k []byte, h uint64) []byte {
	return binary.BigEndian.AppendUint64(escKey([]byte{tHist}, k), h)
}

// histPrefixEnd is the first key after every record of state key k.
func histPrefixEnd(k []byte) []byte {
	p := escKey([]byte{tHist}, k)
	p[len(p)-1] = 2
	return p
}

// unescKey decodes a record key (without its table byte): the state key
// and the height.
func unescKey(b []byte) (key []byte, h uint64, err error) {
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			key = append(key, b[i])
			continue
		}
		if i+1 >= len(b) {
			break
		}
		switch b[i+1] {
		case 0xff:
			key = append(key, 0)
			i++
		case 1:
			if rest := b[i+2:]; len(rest) == 8 {
				return key, binary.BigEndian.Uint64(rest), nil
			}
			return nil, 0, fmt.Errorf("ledger: history record key: %w", ErrCorrupt)
		default:
			return nil, 0, fmt.Errorf("ledger: history record key: %w", ErrCorrupt)
		}
	}
	return nil, 0, fmt.Errorf("ledger: history record key: %w", ErrCorrupt)
}

func histValue(prior []byte) []byte {
	if prior == nil {
		return []byte{0}
	}
	return append([]byte{1}, prior...)
}

func parseHistValue(v []byte) ([]byte, error) {
	switch {
	case len(v) == 1 && v[0] == 0:
		return nil, nil
	case len(v) > 1 && v[0] == 1:
		return bytes.Clone(v[1:]), nil
	}
	return nil, fmt.Errorf("ledger: history record value: %w", ErrCorrupt)
}

func (s *Store) mark(key []byte) (uint64, bool, error) {
	v, err := s.get(key)
	if err != nil || v == nil {
		return 0, false, err
	}
	if len(v) != 8 {
		return 0, false, fmt.Errorf("ledger: marker %q: %w", key, ErrCorrupt)
	}
	return binary.BigEndian.Uint64(v), true, nil
}

// initMarks records, for a store written before history and the index
// existed, that both start above its current head; a new store starts both
// at 0 with its genesis commit.
func (s *Store) initMarks() error {
	if s.head.ChainID == "" {
		return nil
	}
	b := s.db.NewBatch()
	defer b.Close()
	n := 0
	if _, ok, err := s.mark(markHistoryBase); err != nil {
		return err
	} else if !ok {
		n++
		_ = b.Set(markHistoryBase, binary.BigEndian.AppendUint64(nil, s.head.Height), nil)
	}
	if _, ok, err := s.mark(markIndexBase); err != nil {
		return err
	} else if !ok {
		n++
		_ = b.Set(markIndexBase, binary.BigEndian.AppendUint64(nil, s.head.Height+1), nil)
	}
	if n == 0 {
		return nil
	}
	s.log.Info("ledger written by an older version: state history starts at the head, the transaction index is built backwards from it",
		"height", s.head.Height)
	return s.commitBatch(b)
}

// HistoryBase is the lowest height whose state StateAt can reconstruct.
func (s *Store) HistoryBase() (uint64, error) {
	h, ok, err := s.mark(markHistoryBase)
	if err != nil || ok {
		return h, err
	}
	return s.Head().Height, nil
}

// HistoricalState is the committed state after one block, read from a
// consistent snapshot of the store (later commits do not show through).
// It is a StateReader; Close it when done.
type HistoricalState struct {
	snap   *pebble.Snapshot
	height uint64
}

// StateAt returns the state as it was right after block height was
// committed (height = head: the current state). It fails with
// ErrHistoryUnavailable below HistoryBase or above the head, and with
// ErrPruned below HistoryBase when block retention pruned that history.
func (s *Store) StateAt(height uint64) (*HistoricalState, error) {
	s.mu.RLock()
	snap := s.db.NewSnapshot()
	head := s.head
	s.mu.RUnlock()
	base, err := s.HistoryBase()
	if err != nil {
		snap.Close()
		return nil, err
	}
	if height < base && height+1 < s.Earliest() {
		snap.Close()
		return nil, fmt.Errorf("ledger: state at height %d: %w (this node keeps blocks from %d and the state after block %d on)",
			height, ErrPruned, s.Earliest(), base)
	}
	if height < base || height > head.Height {
		snap.Close()
		return nil, fmt.Errorf("ledger: state at height %d: %w (this store keeps state history for heights %d to %d)",
			height, ErrHistoryUnavailable, base, head.Height)
	}
	return &HistoricalState{snap: snap, height: height}, nil
}

// Height is the block after which this is the state.
func (hs *HistoricalState) Height() uint64 { return hs.height }

// Close releases the snapshot.
func (hs *HistoricalState) Close() error { return hs.snap.Close() }

func (hs *HistoricalState) get(key []byte) ([]byte, error) {
	v, closer, err := hs.snap.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	return bytes.Clone(v), nil
}

// GetState implements StateReader.
func (hs *HistoricalState) GetState(key []byte) ([]byte, error) {
	it, err := hs.snap.NewIter(&pebble.IterOptions{LowerBound: histKey(key, hs.height+1), UpperBound: histPrefixEnd(key)})
	if err != nil {
		return nil, fmt.Errorf("ledger: state history: %w", err)
	}
	defer it.Close()
	if it.First() {
		return parseHistValue(it.Value())
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("ledger: state history: %w", err)
	}
	return hs.get(append([]byte{tState}, key...))
}

// IterateState implements StateReader. It gathers the range first (the
// current entries and every undo record of keys in it), so it suits the
// bounded ranges contracts iterate, not a scan of the whole state.
func (hs *HistoricalState) IterateState(start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	vals := map[string][]byte{}
	lower := append([]byte{tState}, start...)
	upper := []byte{tState + 1}
	if end != nil {
		upper = append([]byte{tState}, end...)
	}
	it, err := hs.snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return fmt.Errorf("ledger: state history: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		vals[string(it.Key()[1:])] = bytes.Clone(it.Value())
	}
	if err := errors.Join(it.Error(), it.Close()); err != nil {
		return fmt.Errorf("ledger: state history: %w", err)
	}
	hupper := []byte{tHist + 1}
	if end != nil {
		hupper = escKey([]byte{tHist}, end)
	}
	hit, err := hs.snap.NewIter(&pebble.IterOptions{LowerBound: escKey([]byte{tHist}, start), UpperBound: hupper})
	if err != nil {
		return fmt.Errorf("ledger: state history: %w", err)
	}
	for ok := hit.First(); ok; {
		k, h, kerr := unescKey(hit.Key()[1:])
		if kerr != nil {
			hit.Close()
			return kerr
		}
		if h <= hs.height {
			ok = hit.SeekGE(histKey(k, hs.height+1))
			continue
		}
		prior, verr := parseHistValue(hit.Value())
		if verr != nil {
			hit.Close()
			return verr
		}
		if prior == nil {
			delete(vals, string(k))
		} else {
			vals[string(k)] = prior
		}
		ok = hit.SeekGE(histPrefixEnd(k))
	}
	if err := errors.Join(hit.Error(), hit.Close()); err != nil {
		return fmt.Errorf("ledger: state history: %w", err)
	}
	keys := make([]string, 0, len(vals))
	for k := range vals {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if reverse {
		for i, j := 0, len(keys)-1; i < j; i, j = i+1, j-1 {
			keys[i], keys[j] = keys[j], keys[i]
		}
	}
	for _, k := range keys {
		if !fn([]byte(k), vals[k]) {
			break
		}
	}
	return nil
}
