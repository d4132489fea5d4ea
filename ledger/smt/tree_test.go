package smt

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
)

func TestKnownRoots(t *testing.T) {
	raw, err := os.ReadFile("testdata/known_roots.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Name   string
		Leaves []struct {
			Key   Hash
			Value string
		}
		Root Hash
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no cases")
	}
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			ref := map[Hash]Hash{}
			var changes []Change
			for _, l := range tc.Leaves {
				changes = append(changes, Change{Key: l.Key, Value: []byte(l.Value)})
				ref[l.Key] = ValueHash([]byte(l.Value))
			}
			if got := refRoot(ref); got != tc.Root {
				t.Fatalf("reference root %v, want %v", got, tc.Root)
			}
			s := newMemStore()
			tr := New(s, Hash{}, 100)
			p := mustUpdate(t, tr, changes)
			if p.Root() != tc.Root {
				t.Fatalf("root %v, want %v", p.Root(), tc.Root)
			}
			commitAndApply(t, s, tr, p)
			checkNoStale(t, s, tr.Root())
			// One at a time, in reverse, must agree.
			s2 := newMemStore()
			tr2 := New(s2, Hash{}, 0)
			for i := len(changes) - 1; i >= 0; i-- {
				commitAndApply(t, s2, tr2, mustUpdate(t, tr2, changes[i:i+1]))
			}
			if tr2.Root() != tc.Root {
				t.Fatalf("one-by-one root %v, want %v", tr2.Root(), tc.Root)
			}
		})
	}
}

func TestHashVectors(t *testing.T) {
	// Independent of the tree: pins the leaf and internal hash layouts.
	var k Hash
	k[31] = 7
	tests := []struct {
		name string
		got  Hash
		want string
	}{
		{"value hash", ValueHash([]byte("a")), "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"},
		{"leaf", LeafHash(Hash{}, ValueHash([]byte("a"))), "632865a79ca8922e149d78cf7a30187bbed87e2363ee88b7b39984dad1aadb46"},
		{"internal of empties", InternalHash(Hash{}, Hash{}), "ae0798d0ecaed2b778eddebf18f071a561c53658c05e76cedecc27cafbdbc577"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if hex.EncodeToString(tc.got[:]) != tc.want {
				t.Fatalf("got %v, want %s", tc.got, tc.want)
			}
		})
	}
}

// TestRandomAgainstReference drives many random batches through the tree and
// checks every root against the naive definition, every store against the
// no-stale-nodes rule, and lookups against the model.
func TestRandomAgainstReference(t *testing.T) {
	r := newRand(t)
	tests := []struct {
		name      string
		batches   int
		maxBatch  int
		cacheSize int
	}{
		{"single changes no cache", 300, 1, 0},
		{"small batches tiny cache", 200, 8, 3},
		{"large batches", 40, 300, 1 << 16},
		{"huge batches, both root halves in parallel", 4, 3000, 1 << 16},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := &keyGen{r: r}
			model := map[Hash]Hash{}
			s := newMemStore()
			tr := New(s, Hash{}, tc.cacheSize)
			for b := range tc.batches {
				n := 1 + r.IntN(tc.maxBatch)
				changes := make([]Change, 0, n)
				next := map[Hash]Hash{}
				for k, v := range model {
					next[k] = v
				}
				for range n {
					var c Change
					switch op := r.IntN(10); {
					case op < 4 || len(model) == 0:
						c = Change{Key: g.next(), Value: randValue(r)}
					case op < 6: // update an existing key
						c = Change{Key: g.seen[r.IntN(len(g.seen))], Value: randValue(r)}
					case op < 9: // delete, usually a present key
						c = Change{Key: g.seen[r.IntN(len(g.seen))]}
					default: // delete a key never inserted
						c = Change{Key: g.next()}
					}
					changes = append(changes, c)
					if c.Value == nil {
						delete(next, c.Key)
					} else {
						next[c.Key] = ValueHash(c.Value)
					}
				}
				before := tr.Root()
				p := mustUpdate(t, tr, changes)
				if tr.Root() != before {
					t.Fatal("Update changed the tree")
				}
				if want := refRoot(next); p.Root() != want {
					t.Fatalf("batch %d: root %v, reference %v", b, p.Root(), want)
				}
				if r.IntN(5) == 0 {
					// A failed commit: drop p, the tree must still work.
					if _, err := tr.Update(changes[:1]); err != nil {
						t.Fatal(err)
					}
				}
				commitAndApply(t, s, tr, p)
				model = next
				checkNoStale(t, s, tr.Root())
				for range 5 {
					k := g.seen[r.IntN(len(g.seen))]
					vh, ok, err := tr.Get(k)
					want, wantOK := model[k]
					if err != nil || ok != wantOK || vh != want {
						t.Fatalf("Get(%v) = %v, %v, %v; want %v, %v", k, vh, ok, err, want, wantOK)
					}
				}
				if tc.cacheSize > 0 && tr.CachedNodes() > tc.cacheSize {
					t.Fatalf("cache holds %d nodes, budget %d", tr.CachedNodes(), tc.cacheSize)
				}
			}
			// A fresh tree over the same store sees the same state.
			fresh := New(s, tr.Root(), 0)
			for k, v := range model {
				vh, ok, err := fresh.Get(k)
				if err != nil || !ok || vh != v {
					t.Fatalf("fresh Get(%v) = %v, %v, %v", k, vh, ok, err)
				}
			}
		})
	}
}

// TestOrderIndependence builds the same final set through different
// histories: the roots, and the stored nodes byte for byte, must agree.
func TestOrderIndependence(t *testing.T) {
	r := newRand(t)
	g := &keyGen{r: r}
	final := map[Hash][]byte{}
	for range 400 {
		final[g.next()] = randValue(r)
	}
	var extra []Hash
	for range 200 {
		k := g.next()
		if _, ok := final[k]; !ok {
			extra = append(extra, k)
		}
	}
	all := func() []Change {
		var cs []Change
		for k, v := range final {
			cs = append(cs, Change{Key: k, Value: v})
		}
		return cs
	}
	histories := []struct {
		name string
		run  func(t *testing.T, s *memStore, tr *Tree)
	}{
		{"one batch", func(t *testing.T, s *memStore, tr *Tree) {
			commitAndApply(t, s, tr, mustUpdate(t, tr, all()))
		}},
		{"one key per batch, shuffled", func(t *testing.T, s *memStore, tr *Tree) {
			cs := all()
			r.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
			for i := range cs {
				commitAndApply(t, s, tr, mustUpdate(t, tr, cs[i:i+1]))
			}
		}},
		{"extra keys then deleted, stale values overwritten", func(t *testing.T, s *memStore, tr *Tree) {
			var cs []Change
			for _, k := range extra {
				cs = append(cs, Change{Key: k, Value: []byte("x")})
			}
			for k := range final {
				cs = append(cs, Change{Key: k, Value: []byte("old")})
			}
			commitAndApply(t, s, tr, mustUpdate(t, tr, cs))
			cs = all()
			for _, k := range extra {
				cs = append(cs, Change{Key: k})
			}
			r.Shuffle(len(cs), func(i, j int) { cs[i], cs[j] = cs[j], cs[i] })
			for len(cs) > 0 {
				n := min(len(cs), 1+r.IntN(50))
				commitAndApply(t, s, tr, mustUpdate(t, tr, cs[:n]))
				cs = cs[n:]
			}
		}},
		{"duplicates in a batch, last wins", func(t *testing.T, s *memStore, tr *Tree) {
			var cs []Change
			for k, v := range final {
				cs = append(cs, Change{Key: k, Value: []byte("first")}, Change{Key: k}, Change{Key: k, Value: v})
			}
			for _, k := range extra {
				cs = append(cs, Change{Key: k, Value: []byte("gone")}, Change{Key: k})
			}
			commitAndApply(t, s, tr, mustUpdate(t, tr, cs))
		}},
	}
	var wantRoot Hash
	var wantStore *memStore
	for i, h := range histories {
		t.Run(h.name, func(t *testing.T) {
			s := newMemStore()
			tr := New(s, Hash{}, 1000)
			h.run(t, s, tr)
			checkNoStale(t, s, tr.Root())
			if i == 0 {
				wantRoot, wantStore = tr.Root(), s
				return
			}
			if tr.Root() != wantRoot {
				t.Fatalf("root %v, want %v", tr.Root(), wantRoot)
			}
			if len(s.m) != len(wantStore.m) {
				t.Fatalf("%d nodes stored, want %d", len(s.m), len(wantStore.m))
			}
			for p, v := range wantStore.m {
				if string(s.m[p]) != string(v) {
					t.Fatalf("node at %x differs", p)
				}
			}
		})
	}
}

func TestUpdateEdgeCases(t *testing.T) {
	a, b := Hash{0x00}, Hash{0x80}
	tests := []struct {
		name       string
		setup      []Change
		batch      []Change
		wantWrites int
		wantErr    error
	}{
		{"empty batch", []Change{{Key: a, Value: []byte("a")}}, nil, 0, nil},
		{"delete absent from empty tree", nil, []Change{{Key: a}}, 0, nil},
		{"delete absent next to a leaf", []Change{{Key: a, Value: []byte("a")}}, []Change{{Key: b}}, 0, nil},
		{"rewrite the same value", []Change{{Key: a, Value: []byte("a")}, {Key: b, Value: []byte("b")}}, []Change{{Key: a, Value: []byte("a")}}, 0, nil},
		{"delete the only leaf", []Change{{Key: a, Value: []byte("a")}}, []Change{{Key: a}}, 1, nil},
		{"delete sibling: leaf floats to root", []Change{{Key: a, Value: []byte("a")}, {Key: b, Value: []byte("b")}}, []Change{{Key: b}}, 3, nil},
		{"empty value", nil, []Change{{Key: a, Value: []byte{}}}, 0, ErrEmptyValue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newMemStore()
			tr := New(s, Hash{}, 10)
			if tc.setup != nil {
				commitAndApply(t, s, tr, mustUpdate(t, tr, tc.setup))
			}
			p, err := tr.Update(tc.batch)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if len(p.Writes()) != tc.wantWrites {
				t.Fatalf("%d writes, want %d: %v", len(p.Writes()), tc.wantWrites, p.Writes())
			}
			commitAndApply(t, s, tr, p)
			checkNoStale(t, s, tr.Root())
		})
	}
}

func TestApplyStalePanics(t *testing.T) {
	s := newMemStore()
	tr := New(s, Hash{}, 10)
	p1 := mustUpdate(t, tr, []Change{{Key: Hash{1}, Value: []byte("a")}})
	p2 := mustUpdate(t, tr, []Change{{Key: Hash{2}, Value: []byte("b")}})
	commitAndApply(t, s, tr, p1)
	defer func() {
		if recover() == nil {
			t.Fatal("Apply of a stale batch did not panic")
		}
	}()
	tr.Apply(p2)
}

type errReader struct{ err error }

func (e errReader) GetNode([]byte) ([]byte, error) { return nil, e.err }

// TestCorruptStore damages stored nodes in every way a store can and checks
// that every read path reports it instead of answering.
func TestCorruptStore(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	g := &keyGen{r: r}
	s := newMemStore()
	tr := New(s, Hash{}, 0)
	var keys []Hash
	var cs []Change
	for range 64 {
		k := g.next()
		keys = append(keys, k)
		cs = append(cs, Change{Key: k, Value: []byte("v")})
	}
	commitAndApply(t, s, tr, mustUpdate(t, tr, cs))
	root := tr.Root()

	ops := map[string]func(tr *Tree, k Hash) error{
		"Get":    func(tr *Tree, k Hash) error { _, _, err := tr.Get(k); return err },
		"Prove":  func(tr *Tree, k Hash) error { _, err := tr.Prove(k); return err },
		"Update": func(tr *Tree, k Hash) error { _, err := tr.Update([]Change{{Key: k}}); return err },
	}
	damage := []struct {
		name string
		f    func(b []byte) []byte
	}{
		{"missing", func([]byte) []byte { return nil }},
		{"flipped last byte", func(b []byte) []byte { b = append([]byte(nil), b...); b[len(b)-1] ^= 1; return b }},
		{"bad version", func(b []byte) []byte { b = append([]byte(nil), b...); b[0] = 9; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
	}
	for _, d := range damage {
		for name, op := range ops {
			t.Run(d.name+"/"+name, func(t *testing.T) {
				for _, k := range keys[:8] {
					// Damage the deepest node on k's path.
					var path string
					for depth := 0; depth <= MaxDepth; depth++ {
						p := string(appendPath(nil, depth, &k))
						if _, ok := s.m[p]; !ok {
							break
						}
						path = p
					}
					bad := s.clone()
					if v := d.f(bad.m[path]); v == nil {
						delete(bad.m, path)
					} else {
						bad.m[path] = v
					}
					if err := op(New(bad, root, 100), k); !errors.Is(err, ErrCorrupt) {
						t.Fatalf("key %v: err %v, want ErrCorrupt", k, err)
					}
				}
			})
		}
	}
	t.Run("misplaced leaf", func(t *testing.T) {
		// Hashes all match, but each leaf sits under the other's path.
		left, right := Hash{0x00}, Hash{0x80}
		vh := ValueHash([]byte("v"))
		lr := node{kind: kindInternal, ck: [2]uint8{kindLeaf, kindLeaf}, h: [2]Hash{LeafHash(right, vh), LeafHash(left, vh)}}
		bad := newMemStore()
		bad.m[string(Path(0, left))] = lr.appendEncoding(nil)
		for _, l := range []struct{ at, key Hash }{{left, right}, {right, left}} {
			n := leafNode(l.key, vh)
			bad.m[string(Path(1, l.at))] = n.appendEncoding(nil)
		}
		if _, _, err := New(bad, lr.hash(), 0).Get(left); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err %v, want ErrCorrupt", err)
		}
	})
	t.Run("wrong root", func(t *testing.T) {
		if _, _, err := New(s, Hash{1}, 0).Get(keys[0]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("err %v, want ErrCorrupt", err)
		}
	})
	t.Run("reader error is wrapped", func(t *testing.T) {
		want := errors.New("disk on fire")
		if _, _, err := New(errReader{want}, root, 0).Get(keys[0]); !errors.Is(err, want) {
			t.Fatalf("err %v, want %v", err, want)
		}
	})
}

func TestNodeDecodeRejects(t *testing.T) {
	h := Hash{1}
	leaf := leafNode(Hash{2}, h)
	goodLeaf := leaf.appendEncoding(nil)
	in := node{kind: kindInternal, ck: [2]uint8{kindLeaf, kindInternal}, h: [2]Hash{h, h}}
	goodInternal := in.appendEncoding(nil)
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"good leaf", goodLeaf, true},
		{"good internal", goodInternal, true},
		{"internal with empty left", cat([]byte{1, 2, 0x02}, h[:]), true},
		{"empty", nil, false},
		{"one byte", []byte{1}, false},
		{"bad version", cat([]byte{2}, goodLeaf[1:]), false},
		{"bad kind", cat([]byte{1, 3}, goodLeaf[2:]), false},
		{"short leaf", goodLeaf[:65], false},
		{"long leaf", cat(goodLeaf, []byte{0}), false},
		{"internal trailing", cat(goodInternal, []byte{0}), false},
		{"internal truncated", goodInternal[:66], false},
		{"internal no kinds", []byte{1, 2}, false},
		{"both empty", []byte{1, 2, 0x00}, false},
		{"lone leaf child", cat([]byte{1, 2, 0x10}, h[:]), false},
		{"lone leaf child right", cat([]byte{1, 2, 0x01}, h[:]), false},
		{"child kind 3", cat([]byte{1, 2, 0x32}, h[:], h[:]), false},
		{"zero child hash", cat([]byte{1, 2, 0x12}, make([]byte, 32), h[:]), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := decodeNode(tc.b)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if err == nil && string(n.appendEncoding(nil)) != string(tc.b) {
				t.Fatalf("re-encoding differs")
			}
		})
	}
}

func TestPath(t *testing.T) {
	k := Hash{0xff, 0xff}
	tests := []struct {
		depth int
		want  string
	}{
		{0, "0000"},
		{1, "000180"},
		{8, "0008ff"},
		{9, "0009ff80"},
		{256, "0100ffff" + strings.Repeat("00", 30)},
	}
	for _, tc := range tests {
		if got := hex.EncodeToString(Path(tc.depth, k)); got != tc.want {
			t.Errorf("Path(%d) = %s, want %s", tc.depth, got, tc.want)
		}
	}
}

func TestCacheBounded(t *testing.T) {
	r := newRand(t)
	g := &keyGen{r: r}
	s := newMemStore()
	tr := New(s, Hash{}, 50)
	var keys []Hash
	for range 20 {
		var cs []Change
		for range 50 {
			k := g.next()
			keys = append(keys, k)
			cs = append(cs, Change{Key: k, Value: []byte("v")})
		}
		commitAndApply(t, s, tr, mustUpdate(t, tr, cs))
		if n := tr.CachedNodes(); n > 50 {
			t.Fatalf("cache holds %d nodes, budget 50", n)
		}
	}
	// Repeated reads of one key are served from the cache (a path can be
	// 257 nodes long with these keys).
	tr = New(s, tr.Root(), 1000)
	if _, _, err := tr.Get(keys[0]); err != nil {
		t.Fatal(err)
	}
	before := s.reads.Load()
	for range 10 {
		if _, _, err := tr.Get(keys[0]); err != nil {
			t.Fatal(err)
		}
	}
	if s.reads.Load() != before {
		t.Fatalf("%d store reads for cached lookups", s.reads.Load()-before)
	}
}

func TestCacheChecksHashes(t *testing.T) {
	s := newMemStore()
	tr := New(s, Hash{}, 100)
	k := Hash{0x12}
	commitAndApply(t, s, tr, mustUpdate(t, tr, []Change{{Key: k, Value: []byte("a")}, {Key: Hash{0x92}, Value: []byte("b")}}))
	// A cached node that does not hash to what its parent says is
	// reported, exactly like a damaged stored one.
	leafPath := Path(1, k)
	tr.cache.put(leafPath, entry{n: leafNode(k, ValueHash([]byte("x"))), h: LeafHash(k, ValueHash([]byte("x")))})
	if _, _, err := tr.Get(k); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err %v, want ErrCorrupt", err)
	}
}

func TestCacheDropsDeletedNodes(t *testing.T) {
	r := newRand(t)
	g := &keyGen{r: r}
	s := newMemStore()
	tr := New(s, Hash{}, 1<<16)
	var ins, del []Change
	for range 300 {
		k := g.next()
		ins = append(ins, Change{Key: k, Value: []byte("v")})
		del = append(del, Change{Key: k})
	}
	commitAndApply(t, s, tr, mustUpdate(t, tr, ins))
	if tr.CachedNodes() != len(s.m) {
		t.Fatalf("cache holds %d nodes, store %d", tr.CachedNodes(), len(s.m))
	}
	commitAndApply(t, s, tr, mustUpdate(t, tr, del))
	if len(s.m) != 0 || tr.CachedNodes() != 0 || !tr.Root().IsZero() {
		t.Fatalf("after deleting everything: %d stored, %d cached, root %v", len(s.m), tr.CachedNodes(), tr.Root())
	}
}

// TestConcurrentReads runs Get, Prove and Update side by side over a small
// cache (so they also evict concurrently); run with -race.
func TestConcurrentReads(t *testing.T) {
	r := newRand(t)
	g := &keyGen{r: r}
	s := newMemStore()
	tr := New(s, Hash{}, 200)
	var cs []Change
	for range 3000 {
		cs = append(cs, Change{Key: g.next(), Value: []byte("v")})
	}
	commitAndApply(t, s, tr, mustUpdate(t, tr, cs))
	var upd []Change
	for _, c := range cs[:1500] {
		upd = append(upd, Change{Key: c.Key, Value: []byte("w")})
	}
	want := mustUpdate(t, tr, upd).Root()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(cs); i += 4 {
				if _, _, err := tr.Get(cs[i].Key); err != nil {
					errs <- err
					return
				}
				if _, err := tr.Prove(cs[i].Key); err != nil {
					errs <- err
					return
				}
			}
			p, err := tr.Update(upd)
			if err == nil && p.Root() != want {
				err = errors.New("concurrent Update gave a different root")
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestBuildFromEmptyInParallel: a large first batch (a state snapshot being
// installed) builds both halves of the tree concurrently; the root, the
// stored nodes and lookups must be those of the naive definition, and the
// precomputed value hashes must be honoured.
func TestBuildFromEmptyInParallel(t *testing.T) {
	r := newRand(t)
	g := &keyGen{r: r}
	model := map[Hash]Hash{}
	changes := make([]Change, 5000)
	for i := range changes {
		v := randValue(r)
		changes[i] = Change{Key: g.next(), Value: v}
		if i%2 == 0 {
			changes[i].ValueHash = ValueHash(v)
		}
		model[changes[i].Key] = ValueHash(v)
	}
	s := newMemStore()
	tr := New(s, Hash{}, 0)
	p := mustUpdate(t, tr, changes)
	if want := refRoot(model); p.Root() != want {
		t.Fatalf("root %v, reference %v", p.Root(), want)
	}
	commitAndApply(t, s, tr, p)
	checkNoStale(t, s, tr.Root())
	for k, v := range model {
		if vh, ok, err := tr.Get(k); err != nil || !ok || vh != v {
			t.Fatalf("Get(%v) = %v, %v, %v", k, vh, ok, err)
		}
	}
}
