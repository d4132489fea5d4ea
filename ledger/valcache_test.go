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

// TestPrepareReadsNoPebbleForNewKeys: Prepare needs the committed value of
// every key a block changes (for the undo record). A new key (absent from
// the state tree) and a key a recent block wrote cost no Pebble read; a key
// neither read nor cached costs one. The undo records stay right: StateAt
// the height before sees the old values and the absences.
func TestPrepareReadsNoPebbleForNewKeys(t *testing.T) {
	s, err := Open("db", StoreOptions{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	key := func(i int) []byte { return fmt.Appendf(nil, "k/%04d", i) }
	commitState(t, s, 0, func(st *State) {
		for i := range 1000 {
			st.Set(key(i), []byte("genesis"))
		}
	})
	prepare := func(fill func(st *State)) (*Prepared, uint64) {
		st := NewState(s)
		fill(st)
		before := s.reads.Load()
		p, err := s.Prepare(st)
		if err != nil {
			t.Fatal(err)
		}
		return p, s.reads.Load() - before
	}
	// 50 new keys and 5 keys genesis wrote (write-through: cached).
	newAndChanged := func(st *State) {
		for i := range 50 {
			st.Set(key(5000+i), []byte("new"))
		}
		for i := range 5 {
			st.Set(key(i), []byte("changed"))
		}
	}
	_, n := prepare(newAndChanged)
	if n != 0 {
		t.Fatalf("Prepare of 50 new keys and 5 cached ones read Pebble %d times, want 0", n)
	}
	// Without the value cache, the 5 existing keys are read, the new ones not.
	s.vals = nil
	_, n = prepare(newAndChanged)
	if n != 5 {
		t.Fatalf("uncached: Prepare read Pebble %d times, want 5 (the existing keys only)", n)
	}
	s.vals = newValueCache(1 << 20)
	b := commitState(t, s, 1, func(st *State) {
		st.Set(key(5000), []byte("new"))
		st.Set(key(1), []byte("changed"))
		st.Delete(key(2))
	})
	commitState(t, s, 2, func(st *State) { st.Set(key(5000), []byte("newer")) })
	hs, err := s.StateAt(b.Header.Height - 1)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[int]string{5000: "", 1: "genesis", 2: "genesis"} {
		v, err := hs.GetState(key(k))
		if err != nil || string(v) != want {
			t.Fatalf("%s at height 0: %q %v, want %q", key(k), v, err, want)
		}
	}
}
