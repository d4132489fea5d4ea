package smt

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
)

var seedFlag = flag.Uint64("smt.seed", 1, "seed for randomized tests")

// newRand returns a seeded source and logs the seed so a failure can be
// replayed with -smt.seed.
func newRand(t testing.TB) *rand.Rand {
	t.Helper()
	t.Logf("seed %d (replay with -smt.seed=%d)", *seedFlag, *seedFlag)
	return rand.New(rand.NewPCG(*seedFlag, 0x736d74))
}

// memStore is a map-backed node store that checks the write discipline:
// writes in strictly ascending path order, deletes only of stored paths.
type memStore struct {
	m     map[string][]byte
	reads atomic.Int64 // GetNode runs concurrently within one Update
}

func newMemStore() *memStore { return &memStore{m: map[string][]byte{}} }

func (s *memStore) GetNode(path []byte) ([]byte, error) {
	s.reads.Add(1)
	return s.m[string(path)], nil
}

func (s *memStore) commit(writes []Write) error {
	for i, w := range writes {
		if i > 0 && bytes.Compare(writes[i-1].Path, w.Path) >= 0 {
			return fmt.Errorf("writes not in strictly ascending path order at %d: %x then %x", i, writes[i-1].Path, w.Path)
		}
		if w.Node == nil {
			if _, ok := s.m[string(w.Path)]; !ok {
				return fmt.Errorf("delete of absent path %x", w.Path)
			}
			delete(s.m, string(w.Path))
			continue
		}
		if old, ok := s.m[string(w.Path)]; ok && bytes.Equal(old, w.Node) {
			return fmt.Errorf("redundant write of unchanged node at %x", w.Path)
		}
		s.m[string(w.Path)] = bytes.Clone(w.Node)
	}
	return nil
}

func (s *memStore) clone() *memStore { return &memStore{m: maps.Clone(s.m)} }

// reachable walks the stored tree from root and returns the paths of all
// nodes reachable from it, failing on any inconsistency.
func (s *memStore) reachable(root Hash) (map[string]bool, error) {
	seen := map[string]bool{}
	if root.IsZero() {
		return seen, nil
	}
	var walk func(depth int, key Hash, want ref) error
	walk = func(depth int, key Hash, want ref) error {
		path := string(appendPath(nil, depth, &key))
		raw, ok := s.m[path]
		if !ok {
			return fmt.Errorf("missing node at %x", path)
		}
		n, err := decodeNode(raw)
		if err != nil {
			return fmt.Errorf("node at %x: %v", path, err)
		}
		if n.hash() != want.hash || (want.kind != kindUnknown && n.kind != want.kind) {
			return fmt.Errorf("node at %x does not match its parent", path)
		}
		seen[path] = true
		if n.kind == kindLeaf {
			if !samePrefix(&n.h[0], &key, depth) {
				return fmt.Errorf("leaf at %x has key %v", path, n.h[0])
			}
			return nil
		}
		for side := range 2 {
			if n.ck[side] == kindEmpty {
				continue
			}
			if err := walk(depth+1, withBit(key, depth, side), ref{n.ck[side], n.h[side]}); err != nil {
				return err
			}
		}
		return nil
	}
	return seen, walk(0, Hash{}, ref{kindUnknown, root})
}

// checkNoStale fails unless the stored paths are exactly the nodes reachable from root.
func checkNoStale(t testing.TB, s *memStore, root Hash) {
	t.Helper()
	seen, err := s.reachable(root)
	if err != nil {
		t.Fatalf("walk from root %v: %v", root, err)
	}
	for p := range s.m {
		if !seen[p] {
			t.Fatalf("stale node stored at path %x (%d stored, %d reachable)", p, len(s.m), len(seen))
		}
	}
	if len(seen) != len(s.m) {
		t.Fatalf("%d nodes reachable, %d stored", len(seen), len(s.m))
	}
}

// refRoot computes the root straight from the definition in doc.go.
func refRoot(leaves map[Hash]Hash) Hash {
	keys := slices.SortedFunc(maps.Keys(leaves), func(a, b Hash) int { return bytes.Compare(a[:], b[:]) })
	var rec func(depth int, ks []Hash) Hash
	rec = func(depth int, ks []Hash) Hash {
		switch len(ks) {
		case 0:
			return Hash{}
		case 1:
			return LeafHash(ks[0], leaves[ks[0]])
		}
		var l, r []Hash
		for _, k := range ks {
			if k[depth/8]&(0x80>>(depth%8)) == 0 {
				l = append(l, k)
			} else {
				r = append(r, k)
			}
		}
		return InternalHash(rec(depth+1, l), rec(depth+1, r))
	}
	return rec(0, keys)
}

// keyGen draws keys that often share long prefixes with earlier keys, so
// trees get deep paths, leaves at depth 256 and frequent float-ups.
type keyGen struct {
	r    *rand.Rand
	seen []Hash
}

func (g *keyGen) next() Hash {
	var k Hash
	if len(g.seen) == 0 || g.r.IntN(3) == 0 {
		for i := range k {
			k[i] = byte(g.r.Uint32())
		}
	} else {
		k = g.seen[g.r.IntN(len(g.seen))]
		b := 255 - g.r.IntN(40)
		if g.r.IntN(4) == 0 {
			b = g.r.IntN(256)
		}
		k = withBit(k, b, 1-bit(&k, b))
	}
	g.seen = append(g.seen, k)
	return k
}

func randValue(r *rand.Rand) []byte {
	v := make([]byte, 1+r.IntN(8))
	for i := range v {
		v[i] = byte(r.Uint32())
	}
	return v
}

// commitAndApply commits p to s and applies it to tr.
func commitAndApply(t testing.TB, s *memStore, tr *Tree, p *Pending) {
	t.Helper()
	if err := s.commit(p.Writes()); err != nil {
		t.Fatal(err)
	}
	tr.Apply(p)
}

func mustUpdate(t testing.TB, tr *Tree, changes []Change) *Pending {
	t.Helper()
	p, err := tr.Update(changes)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
