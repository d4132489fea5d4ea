package ledger

import (
	"math/rand/v2"
	"runtime"
	"testing"
)

func randomPublicKey(t testing.TB, rng *rand.Rand) PublicKey {
	t.Helper()
	b := make([]byte, PublicKeySize)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	pk, err := ParsePublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestPublicKeyMemBytes holds the constant KeyCache budgets with to what a
// parsed key really takes: a cache whose idea of a key's size is too small
// would hold more memory than it is allowed.
func TestPublicKeyMemBytes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	const n = 1000
	keys := make([]PublicKey, 0, n)
	before := heapInUse()
	for range n {
		keys = append(keys, randomPublicKey(t, rng))
	}
	per := (int64(heapInUse()) - int64(before)) / n
	runtime.KeepAlive(keys)
	t.Logf("a parsed public key holds %d bytes (PublicKeyMemBytes = %d)", per, PublicKeyMemBytes)
	if per > PublicKeyMemBytes*11/10 || per < PublicKeyMemBytes*8/10 {
		t.Fatalf("a parsed public key holds %d bytes; PublicKeyMemBytes is %d", per, PublicKeyMemBytes)
	}
}

func TestKeyCacheEvictsLeastRecentlyUsed(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	c := NewKeyCache(3 * PublicKeyMemBytes)
	a, b, d, e := randomPublicKey(t, rng), randomPublicKey(t, rng), randomPublicKey(t, rng), randomPublicKey(t, rng)
	c.Put(a)
	c.Put(b)
	c.Put(d)
	if _, ok := c.Get(a.Address()); !ok { // a is now the most recent; b the least
		t.Fatal("a missing")
	}
	c.Put(e)
	if _, ok := c.Get(b.Address()); ok {
		t.Fatal("b, the least recently used, was kept beyond the budget")
	}
	for _, k := range []PublicKey{a, d, e} {
		got, ok := c.Get(k.Address())
		if !ok || string(got.Bytes()) != string(k.Bytes()) {
			t.Fatalf("key %s missing or wrong", k.Address())
		}
	}
	c.Put(a) // again: no duplicate entry
	if c.Len() != 3 || c.Bytes() != 3*PublicKeyMemBytes {
		t.Fatalf("len %d bytes %d", c.Len(), c.Bytes())
	}
}

// TestKeyCacheStaysWithinBudget: however many distinct keys pass through,
// the cache holds at most its budget (and the memory really is released).
func TestKeyCacheStaysWithinBudget(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	const budget = 4 << 20
	c := NewKeyCache(budget)
	before := heapInUse()
	for range 1000 {
		c.Put(randomPublicKey(t, rng))
	}
	grew := int64(heapInUse()) - int64(before)
	runtime.KeepAlive(c)
	if c.Bytes() > budget || c.Len() != budget/PublicKeyMemBytes {
		t.Fatalf("cache holds %d keys (%d bytes), budget %d", c.Len(), c.Bytes(), budget)
	}
	if grew > budget*5/4 {
		t.Fatalf("heap grew %d bytes for a %d-byte cache", grew, budget)
	}
}
