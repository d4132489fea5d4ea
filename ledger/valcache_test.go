package ledger

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestValueCacheServesCommittedValues: what a block writes (set, changed,
// deleted) is read back from the value cache, not from Pebble, and every
// read, cached or not, equals what Pebble holds, also with a cache small
// enough to evict all the time and after a state import replaced the state.
func TestValueCacheServesCommittedValues(t *testing.T) {
	for _, budget := range []int{-1, 2 << 10, 64 << 20} {
		t.Run(fmt.Sprint(budget), func(t *testing.T) {
			s, err := Open("db", StoreOptions{FS: vfs.NewMem(), CacheValueBytes: budget})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			key := func(i int) []byte { return fmt.Appendf(nil, "k/%03d", i) }
			commitState(t, s, 0, func(st *State) {
				for i := range 100 {
					st.Set(key(i), fmt.Appendf(nil, "v%d at 0", i))
				}
			})
			check := func(h uint64) {
				t.Helper()
				for i := range 110 {
					got, err := s.GetState(key(i))
					if err != nil {
						t.Fatal(err)
					}
					want, err := s.get(append([]byte{tState}, key(i)...))
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("height %d key %s: read %q, Pebble holds %q", h, key(i), got, want)
					}
				}
			}
			check(0)
			for h := uint64(1); h <= 6; h++ {
				commitState(t, s, h, func(st *State) {
					for i := int(h); i < 110; i += 7 {
						if i%3 == 0 {
							st.Delete(key(i))
						} else {
							st.Set(key(i), fmt.Appendf(nil, "v%d at %d", i, h))
						}
					}
				})
				check(h)
			}
			if budget < 0 {
				if n := s.vals.len(); n != 0 {
					t.Fatalf("cache disabled but holds %d entries", n)
				}
				return
			}
			if budget > 1<<20 {
				// A key the last block wrote is served from the cache: change it
				// in Pebble behind the store's back and the read does not see it.
				k := key(6 + 7)
				if err := s.db.Set(append([]byte{tState}, k...), []byte("behind"), pebble.Sync); err != nil {
					t.Fatal(err)
				}
				if v, _ := s.GetState(k); string(v) != "v13 at 6" {
					t.Fatalf("last block's value read as %q, want it from the cache", v)
				}
				if err := s.db.Set(append([]byte{tState}, k...), []byte("v13 at 6"), pebble.Sync); err != nil {
					t.Fatal(err)
				}
			}
			// A state import replaces everything: nothing cached survives.
			src, b := storeWithState(t, 20, 7)
			chunks, _, _ := exportAll(t, src, 1<<10)
			im, err := s.BeginImport()
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range chunks {
				if err := im.Add(c); err != nil {
					t.Fatal(err)
				}
			}
			if err := im.Finish(b); err != nil {
				t.Fatal(err)
			}
			if v, err := s.GetState(key(1)); err != nil || v != nil {
				t.Fatalf("after the import %s reads %q, %v: want absent", key(1), v, err)
			}
			if v, err := s.GetState([]byte("acct/00000003")); err != nil || string(v) != "balance 21 at 7" {
				t.Fatalf("after the import: %q, %v", v, err)
			}
		})
	}
}

// TestValueCacheRefusesStaleFill: a read that missed and read Pebble
// before a commit must not put what it read into the cache after the
// commit wrote the key through; an eviction keeps the budget.
func TestValueCacheRefusesStaleFill(t *testing.T) {
	c := newValueCache(1 << 20)
	_, ok, gen := c.get([]byte("a"))
	if ok {
		t.Fatal("empty cache hit")
	}
	c.apply([]Change{{Key: []byte("a"), Value: []byte("new")}})
	c.fill([]byte("a"), []byte("old"), gen) // the reader saw Pebble before the commit
	if v, ok, _ := c.get([]byte("a")); !ok || string(v) != "new" {
		t.Fatalf("got %q %v, want the committed value", v, ok)
	}
	_, _, gen = c.get([]byte("b"))
	c.fill([]byte("b"), nil, gen) // absent, no commit in between: cached as absent
	if v, ok, _ := c.get([]byte("b")); !ok || v != nil {
		t.Fatalf("got %q %v, want a cached absence", v, ok)
	}
	small := newValueCache(4 * (entryOverhead + 10))
	for i := range 100 {
		small.apply([]Change{{Key: fmt.Appendf(nil, "key%03d", i), Value: []byte("val")}})
	}
	if n := small.len(); n > 4 || n == 0 {
		t.Fatalf("a cache of 4 entries' bytes holds %d", n)
	}
}
