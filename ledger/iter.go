package ledger

import (
	"bytes"
	"strings"

	"github.com/RaduBerinde/btreemap"
)

// StateIterator walks a range of a State lazily: committed entries come
// from the StateReader in chunks that grow as the caller consumes them, and
// buffered writes from an ordered index of the write buffer, merged as
// Next is called. Its work is therefore proportional to what the caller
// consumes, not to the size of the range or of the write buffer.
//
// It sees the state as it was when the iterator was opened: writes made
// afterwards are not visible (the write buffer's index is cloned,
// copy-on-write, at open, and committed state does not change while a
// block executes). A StateIterator must not be used concurrently with
// writes to its State from another goroutine (State is not safe for
// concurrent use anyway).
type StateIterator struct {
	base       StateReader
	start, end []byte
	reverse    bool

	buf  *btreemap.BTreeMap[string, stateEntry] // snapshot of the write buffer
	bufQ []kvEntry                              // next buffered entries, in order
	bufK string                                 // last buffered key queued, if bufA
	bufA bool                                   // some buffered entry was queued
	bufN int                                    // next chunk size
	bufE bool                                   // buffered side exhausted

	com  []kvEntry // next committed entries, in order
	comK []byte    // last committed key fetched (nil: none yet)
	comN int       // next chunk size
	comE bool      // committed side exhausted

	skipped uint64
	onSkip  func(n int)
	err     error
}

type kvEntry struct {
	key, val []byte
	deleted  bool
}

// Chunk sizes: the first fetch from either side is small (an iterator that
// is opened and closed, or read once, costs little) and every later one
// doubles, up to a bound in entries and in bytes.
const (
	iterFirstChunk = 8
	iterMaxChunk   = 512
	iterChunkBytes = 256 << 10
)

// MaxSkipBatch is the most entries a StateIterator skips (buffered
// deletions, and committed entries a buffered write replaces) between two
// calls of its OnSkip function.
const MaxSkipBatch = 64

// NewIterator returns an iterator over keys in [start, end) (end nil: no
// bound), ascending or descending when reverse is set. The first call
// builds the ordered index of the write buffer, which later writes keep up
// to date.
func (s *State) NewIterator(start, end []byte, reverse bool) *StateIterator {
	if s.index == nil {
		s.index = btreemap.New[string, stateEntry](32, strings.Compare)
		for k, e := range s.writes {
			s.index.ReplaceOrInsert(k, e)
		}
	}
	return &StateIterator{
		base: s.base, start: bytes.Clone(start), end: bytes.Clone(end), reverse: reverse,
		buf: s.index.Clone(), bufN: iterFirstChunk, comN: iterFirstChunk,
	}
}

// OnSkip registers f, called with the number of entries Next skipped (at
// most MaxSkipBatch at a time) as it skips them, before it looks further.
// A caller that pays for work by the entry charges there; f may panic to
// abandon the iteration.
func (it *StateIterator) OnSkip(f func(n int)) { it.onSkip = f }

// Skipped is the number of entries skipped so far.
func (it *StateIterator) Skipped() uint64 { return it.skipped }

// Next returns the next entry, or ok == false at the end. The slices stay
// valid after later calls.
func (it *StateIterator) Next() (key, val []byte, ok bool, err error) {
	pending := 0
	flush := func() {
		if pending > 0 && it.onSkip != nil {
			n := pending
			pending = 0
			it.onSkip(n)
		}
	}
	for it.err == nil {
		if len(it.bufQ) == 0 && !it.bufE {
			it.fillBuffered()
		}
		if len(it.com) == 0 && !it.comE {
			it.fillCommitted()
			if it.err != nil {
				break
			}
		}
		var b, c *kvEntry
		if len(it.bufQ) > 0 {
			b = &it.bufQ[0]
		}
		if len(it.com) > 0 {
			c = &it.com[0]
		}
		var e kvEntry
		switch {
		case b == nil && c == nil:
			flush()
			return nil, nil, false, nil
		case c == nil || b != nil && it.before(b.key, c.key):
			e = *b
			it.bufQ = it.bufQ[1:]
		case b == nil || it.before(c.key, b.key):
			e = *c
			it.com = it.com[1:]
		default: // the same key: the buffered write replaces the committed value
			e = *b
			it.bufQ, it.com = it.bufQ[1:], it.com[1:]
			it.skipped++
			pending++
		}
		if e.deleted {
			it.skipped++
			pending++
		}
		if pending >= MaxSkipBatch {
			flush()
		}
		if !e.deleted {
			flush()
			return e.key, e.val, true, nil
		}
	}
	flush()
	return nil, nil, false, it.err
}

// before reports whether a comes before b in the iteration order.
func (it *StateIterator) before(a, b []byte) bool {
	if it.reverse {
		return bytes.Compare(a, b) > 0
	}
	return bytes.Compare(a, b) < 0
}

func (it *StateIterator) fillBuffered() {
	n, size := 0, 0
	it.bufQ = it.bufQ[:0]
	add := func(k string, e stateEntry) bool {
		it.bufQ = append(it.bufQ, kvEntry{key: []byte(k), val: e.val, deleted: e.deleted})
		it.bufK, it.bufA = k, true
		n++
		size += len(k) + len(e.val)
		return n < it.bufN && size < iterChunkBytes
	}
	started := it.bufA
	if it.reverse {
		hi := btreemap.Max[string]()
		if started {
			hi = btreemap.LT(it.bufK)
		} else if it.end != nil {
			hi = btreemap.LT(string(it.end))
		}
		it.buf.DescendFunc(hi, btreemap.GE(string(it.start)), add)
	} else {
		lo := btreemap.GE(string(it.start))
		if started {
			lo = btreemap.GT(it.bufK)
		}
		hi := btreemap.Max[string]()
		if it.end != nil {
			hi = btreemap.LT(string(it.end))
		}
		it.buf.AscendFunc(lo, hi, add)
	}
	if n < it.bufN && size < iterChunkBytes {
		it.bufE = true
	}
	it.bufN = min(2*it.bufN, iterMaxChunk)
}

func (it *StateIterator) fillCommitted() {
	n, size := 0, 0
	it.com = it.com[:0]
	start, end := it.start, it.end
	resume := it.comK
	if resume != nil {
		if it.reverse {
			end = resume // exclusive upper bound: exactly what reverse needs
		} else {
			start = append(bytes.Clone(resume), 0) // the smallest key after resume
		}
	}
	err := it.base.IterateState(start, end, it.reverse, func(k, v []byte) bool {
		e := kvEntry{key: bytes.Clone(k), val: bytes.Clone(v)}
		it.com = append(it.com, e)
		it.comK = e.key
		n++
		size += len(k) + len(v)
		return n < it.comN && size < iterChunkBytes
	})
	if err != nil {
		it.err = err
		return
	}
	if n < it.comN && size < iterChunkBytes {
		it.comE = true
	}
	it.comN = min(2*it.comN, iterMaxChunk)
}
