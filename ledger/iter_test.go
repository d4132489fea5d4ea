package ledger

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"
	"time"
)

// sortedReader is committed state with a counter of the entries it hands
// out (to check that iteration is lazy).
type sortedReader struct {
	keys    []string
	vals    map[string][]byte
	visited int
}

func newSortedReader(m map[string][]byte) *sortedReader {
	r := &sortedReader{vals: m}
	for k := range m {
		r.keys = append(r.keys, k)
	}
	sort.Strings(r.keys)
	return r
}

func (r *sortedReader) GetState(k []byte) ([]byte, error) { return r.vals[string(k)], nil }

func (r *sortedReader) IterateState(start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	lo := sort.SearchStrings(r.keys, string(start))
	hi := len(r.keys)
	if end != nil {
		hi = sort.SearchStrings(r.keys, string(end))
	}
	for i := range max(hi-lo, 0) {
		k := r.keys[lo+i]
		if reverse {
			k = r.keys[hi-1-i]
		}
		r.visited++
		// The reader's buffers are only valid during the callback.
		kb, vb := []byte(k), bytes.Clone(r.vals[k])
		ok := fn(kb, vb)
		clear(kb)
		clear(vb)
		if !ok {
			break
		}
	}
	return nil
}

type kv struct{ k, v string }

func collectIterate(t *testing.T, st *State, start, end []byte, reverse bool) []kv {
	t.Helper()
	var out []kv
	if err := st.Iterate(start, end, reverse, func(k, v []byte) bool {
		out = append(out, kv{string(k), string(v)})
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestStateIteratorMatchesIterate holds the lazy iterator to State.Iterate
// (which sorts the whole write buffer: slow and obviously right) over
// random committed state, random buffered writes, deletes and reverts,
// random ranges and both directions; writes made after an iterator opens
// must not show.
func TestStateIteratorMatchesIterate(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	key := func() []byte { return fmt.Appendf(nil, "k%04d", rng.IntN(3000)) }
	for round := range 12 {
		committed := map[string][]byte{}
		for range rng.IntN(2500) {
			committed[string(key())] = fmt.Appendf(nil, "c%d", rng.IntN(1000))
		}
		st := NewState(newSortedReader(committed))
		write := func() {
			switch k := key(); rng.IntN(4) {
			case 0:
				st.Delete(k)
			default:
				st.Set(k, fmt.Appendf(nil, "w%d-%d", round, rng.IntN(1000)))
			}
		}
		if rng.IntN(2) == 0 { // the index is built from a filled buffer
			for range rng.IntN(2000) {
				write()
			}
		}
		for range 12 {
			snap := st.Snapshot()
			for range rng.IntN(300) {
				write()
			}
			if rng.IntN(3) == 0 {
				st.RevertTo(snap)
			}
			var start, end []byte
			if rng.IntN(3) > 0 {
				start = key()
			}
			if rng.IntN(3) > 0 {
				end = key()
			}
			reverse := rng.IntN(2) == 0
			want := collectIterate(t, st, start, end, reverse)
			it := st.NewIterator(start, end, reverse)
			var charged uint64
			it.OnSkip(func(n int) {
				if n <= 0 || n > MaxSkipBatch {
					t.Fatalf("OnSkip(%d)", n)
				}
				charged += uint64(n)
			})
			var got []kv
			for {
				k, v, ok, err := it.Next()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				got = append(got, kv{string(k), string(v)})
				if rng.IntN(10) == 0 {
					write() // invisible to it
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("round %d [%q, %q) reverse=%v:\n got %v\nwant %v", round, start, end, reverse, got, want)
			}
			if charged != it.Skipped() {
				t.Fatalf("OnSkip charged %d, Skipped %d", charged, it.Skipped())
			}
		}
	}
}

// TestStateIteratorIsLazy: opening an iterator and reading one entry of a
// large range reads a few committed entries, not the range; skipping
// deleted entries is counted.
func TestStateIteratorIsLazy(t *testing.T) {
	committed := map[string][]byte{}
	for i := range 100_000 {
		committed[fmt.Sprintf("k%06d", i)] = []byte("v")
	}
	r := newSortedReader(committed)
	st := NewState(r)
	for i := range 50_000 {
		st.Set(fmt.Appendf(nil, "b%06d", i), []byte("w"))
	}
	it := st.NewIterator([]byte("k"), nil, false)
	k, _, ok, err := it.Next()
	if err != nil || !ok || string(k) != "k000000" {
		t.Fatalf("first entry %q %v %v", k, ok, err)
	}
	if r.visited > 2*iterFirstChunk {
		t.Fatalf("one entry read %d committed entries", r.visited)
	}
	// Delete the first 1,000 committed keys: the next iterator skips them.
	for i := range 1000 {
		st.Delete(fmt.Appendf(nil, "k%06d", i))
	}
	it = st.NewIterator([]byte("k"), nil, false)
	var skips []int
	it.OnSkip(func(n int) { skips = append(skips, n) })
	if k, _, _, _ = it.Next(); string(k) != "k001000" {
		t.Fatalf("after deletions: %q", k)
	}
	// Each deleted key is two entries examined and not returned: the
	// buffered deletion and the committed value it hides.
	if it.Skipped() != 2000 {
		t.Fatalf("skipped %d, want 2000", it.Skipped())
	}
	if len(skips) < 1000/MaxSkipBatch {
		t.Fatalf("skips reported in %d batches", len(skips))
	}
}
