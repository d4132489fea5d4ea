package smt

import (
	"fmt"
	"sync"
)

// entry is a verified node together with its hash, so a cache hit can be
// checked against the hash its parent expects without rehashing.
type entry struct {
	n node
	h Hash
}

// pathKey is a path padded with zeros; the depth at its start fixes the
// length, so padding is unambiguous. Keys and entries hold no pointers, so
// the garbage collector never scans the cache.
type pathKey [maxPathLen]byte

func keyOf(path []byte) (k pathKey) {
	copy(k[:], path)
	return k
}

// cache holds decoded committed nodes by path, split into shards so that
// the goroutines of one Update rarely wait on each other.
type cache struct {
	shards []shard
}

// shard keeps two generations: new entries and hits go to cur; when cur
// reaches its budget it becomes prev and the old prev is dropped. That
// bounds the size, keeps recently used nodes, and evicts deterministically.
type shard struct {
	mu        sync.Mutex
	half      int
	cur, prev map[pathKey]entry
}

const (
	maxShards      = 16
	minShardBudget = 64
)

func newCache(nodes int) *cache {
	if nodes <= 0 {
		return nil
	}
	n := 1
	for n < maxShards && nodes/(2*n) >= minShardBudget {
		n *= 2
	}
	c := &cache{shards: make([]shard, n)}
	for i := range c.shards {
		// Budget per generation; the two generations together stay within nodes.
		c.shards[i].half = max(nodes/(2*n), 1)
		c.shards[i].cur = make(map[pathKey]entry)
	}
	return c
}

func (c *cache) shard(path []byte) *shard {
	h := uint32(2166136261) // FNV-1a
	for _, b := range path {
		h = (h ^ uint32(b)) * 16777619
	}
	return &c.shards[h&uint32(len(c.shards)-1)]
}

func (c *cache) get(path []byte) (entry, bool) {
	if c == nil {
		return entry{}, false
	}
	s := c.shard(path)
	k := keyOf(path)
	s.mu.Lock()
	e, ok := s.cur[k]
	if !ok {
		if e, ok = s.prev[k]; ok {
			s.putLocked(k, e)
		}
	}
	s.mu.Unlock()
	return e, ok
}

func (c *cache) put(path []byte, e entry) {
	if c == nil {
		return
	}
	s := c.shard(path)
	s.mu.Lock()
	s.putLocked(keyOf(path), e)
	s.mu.Unlock()
}

func (s *shard) putLocked(k pathKey, e entry) {
	if _, ok := s.cur[k]; !ok && len(s.cur) >= s.half {
		s.prev, s.cur = s.cur, make(map[pathKey]entry, s.half)
	}
	s.cur[k] = e
}

// apply brings the cache in line with a committed batch.
func (c *cache) apply(ws []Write, hashes []Hash) {
	if c == nil {
		return
	}
	for i, w := range ws {
		s := c.shard(w.Path)
		s.mu.Lock()
		if w.Node == nil {
			delete(s.cur, keyOf(w.Path))
			delete(s.prev, keyOf(w.Path))
			s.mu.Unlock()
			continue
		}
		n, err := decodeNode(w.Node)
		if err != nil {
			s.mu.Unlock()
			panic(fmt.Sprintf("smt: Pending holds a bad node at %x (modified by the caller?): %v", w.Path, err))
		}
		// A stale copy in prev is shadowed by cur and dropped with prev.
		s.putLocked(keyOf(w.Path), entry{n: n, h: hashes[i]})
		s.mu.Unlock()
	}
}

func (c *cache) len() int {
	if c == nil {
		return 0
	}
	total := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		total += len(s.cur) + len(s.prev)
		s.mu.Unlock()
	}
	return total
}
