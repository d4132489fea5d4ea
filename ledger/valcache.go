package ledger

import (
	"bytes"
	"sync"
)

// valueCache keeps committed state values (and absences) by state key, so
// that a read of a key a recent block wrote or read does not go down
// Pebble's stack of memtables and levels. Commit writes through it (every
// key a block changes is updated, or added, with its new value), so an
// entry is never older than the committed state.
//
// Like the SMT node cache it keeps two generations bounded by bytes: new
// entries and hits go to cur; when cur reaches its budget it becomes prev
// and the old prev is dropped. What it holds never changes what a read
// returns, only how fast: eviction cannot affect consensus.
//
// A read that misses fills the cache only if no commit happened since it
// started (gen): otherwise the value it read from Pebble may be older than
// what that commit wrote through.
//
// While a block's batch is being committed (begin to apply), the keys it
// changes are out of the cache and no read fills any key: Pebble shows the
// new values as soon as the batch is in, and a cached old value of one of
// them would otherwise be served after a read of another key had already
// seen the new block (an API client saw a request "done" and, in its next
// read, the provider's balance from before the payment that block made).
type valueCache struct {
	mu         sync.Mutex
	gen        uint64 // commits and resets so far
	committing bool   // between begin and apply (or abort)
	half       int    // byte budget of one generation
	curBytes   int
	cur, prev  map[string]cachedValue
}

// cachedValue is a committed value; nil means the key is absent.
type cachedValue struct{ v []byte }

// entryOverhead approximates what an entry costs beyond its key and value
// (map slot, string and slice headers).
const entryOverhead = 64

// maxCachedValue is the largest value kept: large values (contract code)
// are read rarely and would push many small records out.
const maxCachedValue = 16 << 10

func newValueCache(bytes int) *valueCache {
	if bytes <= 0 {
		return nil
	}
	return &valueCache{half: max(bytes/2, 1), cur: make(map[string]cachedValue)}
}

// get returns a copy of key's committed value and whether the cache knew
// it, and the generation to pass to fill on a miss.
func (c *valueCache) get(key []byte) (v []byte, ok bool, gen uint64) {
	if c == nil {
		return nil, false, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.cur[string(key)]
	if !ok {
		if e, ok = c.prev[string(key)]; ok {
			c.putLocked(string(key), e)
		}
	}
	if !ok {
		return nil, false, c.gen
	}
	return bytes.Clone(e.v), true, c.gen
}

// fill records what a read that missed found in Pebble, unless a commit
// happened since the read's get (gen).
func (c *valueCache) fill(key, v []byte, gen uint64) {
	if c == nil || len(v) > maxCachedValue {
		return
	}
	c.mu.Lock()
	if c.gen == gen && !c.committing {
		c.putLocked(string(key), cachedValue{bytes.Clone(v)})
	}
	c.mu.Unlock()
}

// begin is called before a block's batch is committed: the keys it changes
// leave the cache, so that from the moment Pebble shows the block every
// read of them goes to Pebble, and no read fills the cache until apply.
func (c *valueCache) begin(changes []Change) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.committing = true
	for _, ch := range changes {
		c.dropLocked(string(ch.Key))
	}
}

// abort ends a commit that failed: nothing was written.
func (c *valueCache) abort() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.gen++
	c.committing = false
	c.mu.Unlock()
}

func (c *valueCache) dropLocked(k string) {
	if old, ok := c.cur[k]; ok {
		c.curBytes -= len(k) + len(old.v) + entryOverhead
		delete(c.cur, k)
	}
	delete(c.prev, k)
}

func (c *valueCache) putLocked(k string, e cachedValue) {
	size := len(k) + len(e.v) + entryOverhead
	if old, ok := c.cur[k]; ok {
		c.curBytes -= len(k) + len(old.v) + entryOverhead
	} else if c.curBytes+size > c.half {
		c.prev, c.cur, c.curBytes = c.cur, make(map[string]cachedValue, len(c.cur)), 0
	}
	c.cur[k] = e
	c.curBytes += size
}

// apply writes a committed block's changes through (called after the
// batch is committed, before the new head is visible).
func (c *valueCache) apply(changes []Change) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.committing = false
	for _, ch := range changes {
		k := string(ch.Key)
		if len(ch.Value) > maxCachedValue {
			c.dropLocked(k) // a stale copy must not survive
			continue
		}
		delete(c.prev, k) // the new value shadows it in cur anyway; free it
		c.putLocked(k, cachedValue{bytes.Clone(ch.Value)})
	}
}

// reset forgets everything (the state was replaced wholesale).
func (c *valueCache) reset() {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.gen++
	c.cur, c.prev, c.curBytes = make(map[string]cachedValue), nil, 0
	c.mu.Unlock()
}

// len is the number of cached entries (tests).
func (c *valueCache) len() int {
	if c == nil {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.cur) + len(c.prev)
}
