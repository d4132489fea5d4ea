package ledger

import (
	"bytes"
	"sort"

	"github.com/RaduBerinde/btreemap"
)

// StateReader reads committed state.
type StateReader interface {
	GetState(key []byte) ([]byte, error) // nil, nil when absent
	// IterateState calls fn for committed keys in [start, end) in order
	// (descending when reverse) until fn returns false.
	IterateState(start, end []byte, reverse bool, fn func(k, v []byte) bool) error
}

type stateEntry struct {
	val     []byte
	deleted bool
}

type journalEntry struct {
	key  string
	prev stateEntry
	had  bool
}

// State is a write buffer over committed state: reads see the buffer first,
// writes stay in memory until the block commits, and Snapshot/RevertTo undo
// writes back to a point (a failed transaction or contract call reverts its
// own writes and nothing else). Not safe for concurrent use.
type State struct {
	base    StateReader
	writes  map[string]stateEntry
	journal []journalEntry
	// reads caches committed values already read: a block reads the same
	// accounts many times and committed state cannot change under it.
	reads map[string][]byte
	// index orders the write buffer for NewIterator; nil until the first
	// NewIterator, then kept in step with writes (most blocks never
	// iterate, and a map write is cheaper than a B-tree insert).
	index *btreemap.BTreeMap[string, stateEntry]
}

// NewState buffers writes over base.
func NewState(base StateReader) *State {
	return &State{base: base, writes: make(map[string]stateEntry), reads: make(map[string][]byte)}
}

// Get returns the value of key, or nil if absent. The returned slice must
// not be modified.
func (s *State) Get(key []byte) ([]byte, error) {
	if e, ok := s.writes[string(key)]; ok {
		if e.deleted {
			return nil, nil
		}
		return e.val, nil
	}
	if v, ok := s.reads[string(key)]; ok {
		return v, nil
	}
	v, err := s.base.GetState(key)
	if err != nil {
		return nil, err
	}
	s.reads[string(key)] = v
	return v, nil
}

func (s *State) put(key []byte, e stateEntry) {
	k := string(key)
	prev, had := s.writes[k]
	s.journal = append(s.journal, journalEntry{key: k, prev: prev, had: had})
	s.writes[k] = e
	if s.index != nil {
		s.index.ReplaceOrInsert(k, e)
	}
}

// Set writes key = value (value must not be empty; use Delete).
func (s *State) Set(key, value []byte) {
	s.put(key, stateEntry{val: append([]byte(nil), value...)})
}

// Delete removes key.
func (s *State) Delete(key []byte) { s.put(key, stateEntry{deleted: true}) }

// Snapshot marks a point to revert to.
func (s *State) Snapshot() int { return len(s.journal) }

// RevertTo undoes every write made after the snapshot.
func (s *State) RevertTo(snap int) {
	for i := len(s.journal) - 1; i >= snap; i-- {
		j := s.journal[i]
		if j.had {
			s.writes[j.key] = j.prev
			if s.index != nil {
				s.index.ReplaceOrInsert(j.key, j.prev)
			}
		} else {
			delete(s.writes, j.key)
			if s.index != nil {
				s.index.Delete(j.key)
			}
		}
	}
	s.journal = s.journal[:snap]
}

// Change is one buffered write (Value nil = delete).
type Change struct {
	Key   []byte
	Value []byte
}

// Changes returns the buffered writes sorted by key.
func (s *State) Changes() []Change {
	out := make([]Change, 0, len(s.writes))
	for k, e := range s.writes {
		c := Change{Key: []byte(k)}
		if !e.deleted {
			c.Value = e.val
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].Key, out[j].Key) < 0 })
	return out
}

// Len is the number of buffered keys.
func (s *State) Len() int { return len(s.writes) }

// Iterate visits keys in [start, end) in order (reverse if asked), merging
// buffered writes over committed state, until fn returns false. end nil means
// no upper bound.
func (s *State) Iterate(start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	var buf []Change
	// Compared as strings (the same order as bytes.Compare): only the keys
	// in the range are copied, not every buffered key (a block of pins
	// iterates a small range once per pin over a buffer of tens of
	// thousands of keys).
	lo, hi := string(start), string(end)
	for k, e := range s.writes {
		if k < lo || end != nil && k >= hi {
			continue
		}
		c := Change{Key: []byte(k)}
		if !e.deleted {
			c.Value = e.val
		}
		buf = append(buf, c)
	}
	less := func(a, b []byte) bool { return bytes.Compare(a, b) < 0 }
	if reverse {
		less = func(a, b []byte) bool { return bytes.Compare(a, b) > 0 }
	}
	sort.Slice(buf, func(i, j int) bool { return less(buf[i].Key, buf[j].Key) })
	i := 0
	stopped := false
	emit := func(k, v []byte) bool {
		if v == nil {
			return true
		}
		if !fn(k, v) {
			stopped = true
			return false
		}
		return true
	}
	err := s.base.IterateState(start, end, reverse, func(k, v []byte) bool {
		for i < len(buf) && less(buf[i].Key, k) {
			if !emit(buf[i].Key, buf[i].Value) {
				return false
			}
			i++
		}
		if i < len(buf) && bytes.Equal(buf[i].Key, k) {
			c := buf[i]
			i++
			return emit(c.Key, c.Value)
		}
		return emit(k, v)
	})
	if err != nil || stopped {
		return err
	}
	for ; i < len(buf); i++ {
		if !emit(buf[i].Key, buf[i].Value) {
			break
		}
	}
	return nil
}
