package smt

import (
	"math/rand/v2"
	"testing"
)

// benchTree returns a store and tree pre-filled with n random leaves, and the keys.
func benchTree(b *testing.B, n int) (*memStore, *Tree, []Hash) {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([]Hash, n)
	cs := make([]Change, n)
	for i := range keys {
		for j := range keys[i] {
			keys[i][j] = byte(r.Uint32())
		}
		cs[i] = Change{Key: keys[i], Value: []byte{byte(i), byte(i >> 8), byte(i >> 16)}}
	}
	s := newMemStore()
	tr := New(s, Hash{}, 0)
	p, err := tr.Update(cs)
	if err != nil {
		b.Fatal(err)
	}
	commitAndApply(b, s, tr, p)
	return s, tr, keys
}

// BenchmarkUpdate10kInto100k updates 10,000 keys (half present, half new) in
// a tree of 100,000 leaves held in a map. "nocache" reads, decodes and
// verifies every touched node from the map; "cold" does that and also fills
// an empty cache; "warm" finds the nodes in the cache, the steady state of a
// node whose cache is large enough for the upper levels of the tree.
func BenchmarkUpdate10kInto100k(b *testing.B) {
	s, base, keys := benchTree(b, 100_000)
	r := rand.New(rand.NewPCG(3, 4))
	cs := make([]Change, 10_000)
	for i := range cs {
		var k Hash
		if i%2 == 0 {
			k = keys[r.IntN(len(keys))]
		} else {
			for j := range k {
				k[j] = byte(r.Uint32())
			}
		}
		cs[i] = Change{Key: k, Value: []byte{byte(i), 0xee}}
	}
	run := func(b *testing.B, tr func() *Tree) {
		var writes int
		b.ReportAllocs()
		for b.Loop() {
			p, err := tr().Update(cs)
			if err != nil {
				b.Fatal(err)
			}
			writes = len(p.Writes())
		}
		b.ReportMetric(float64(writes), "writes/op")
	}
	b.Run("nocache", func(b *testing.B) {
		tr := New(s, base.Root(), 0)
		run(b, func() *Tree { return tr })
	})
	b.Run("cold", func(b *testing.B) {
		run(b, func() *Tree { return New(s, base.Root(), 1<<20) })
	})
	b.Run("warm", func(b *testing.B) {
		tr := New(s, base.Root(), 1<<20)
		run(b, func() *Tree { return tr })
	})
}

// warmTree returns a tree over base's store whose cache holds every node.
func warmTree(b *testing.B, base *Tree, keys []Hash) *Tree {
	tr := New(base.r, base.Root(), 1<<20)
	for _, k := range keys {
		if _, _, err := tr.Get(k); err != nil {
			b.Fatal(err)
		}
	}
	return tr
}

func BenchmarkProve(b *testing.B) {
	_, base, keys := benchTree(b, 100_000)
	tr := warmTree(b, base, keys)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := tr.Prove(keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func BenchmarkVerifyProof(b *testing.B) {
	_, tr, keys := benchTree(b, 100_000)
	p, err := tr.Prove(keys[0])
	if err != nil {
		b.Fatal(err)
	}
	v := []byte{0, 0, 0}
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyProof(tr.Root(), keys[0], v, p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGet(b *testing.B) {
	_, base, keys := benchTree(b, 100_000)
	tr := warmTree(b, base, keys)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := tr.Get(keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

func TestHotPathAllocs(t *testing.T) {
	s := newMemStore()
	tr := New(s, Hash{}, 1<<12)
	var cs []Change
	for i := range 500 {
		cs = append(cs, Change{Key: ValueHash([]byte{byte(i), byte(i >> 8)}), Value: []byte("v")})
	}
	commitAndApply(t, s, tr, mustUpdate(t, tr, cs))
	k := cs[7].Key
	p, err := tr.Prove(k)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		max  float64
		f    func()
	}{
		{"VerifyProof", 0, func() { _ = VerifyProof(tr.Root(), k, []byte("v"), p) }},
		{"Get with warm cache", 1, func() { _, _, _ = tr.Get(k) }},
		{"Prove with warm cache", 4, func() { _, _ = tr.Prove(k) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tc.f); n > tc.max {
				t.Fatalf("%v allocs per run, want at most %v", n, tc.max)
			}
		})
	}
}
