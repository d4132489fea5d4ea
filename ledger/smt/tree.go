package smt

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
)

var (
	// ErrCorrupt reports a node record that is malformed, missing, or does
	// not hash to what its parent (or the root) says: the store is damaged or
	// does not hold the tree the caller claimed.
	ErrCorrupt = errors.New("smt: corrupt node")
	// ErrInvalidProof reports a proof that is malformed or does not prove
	// the claim against the given root.
	ErrInvalidProof = errors.New("smt: invalid proof")
	// ErrEmptyValue reports a zero-length, non-nil value: values must be
	// non-empty, and nil is reserved for "delete" / "absent".
	ErrEmptyValue = errors.New("smt: empty value")
)

// NodeReader reads committed node records by path. GetNode returns (nil, nil)
// when no node is stored at path. It must be safe for concurrent use (a
// large Update reads from two goroutines) and must not retain path, which
// the tree reuses; the tree does not retain the returned slice.
type NodeReader interface {
	GetNode(path []byte) ([]byte, error)
}

// Change sets Key to Value, or deletes Key when Value is nil.
type Change struct {
	Key   Hash
	Value []byte
	// ValueHash, if not zero, is ValueHash(Value) computed by the caller
	// (for instance while the values arrive), so Update need not hash.
	ValueHash Hash
}

// Write is one store mutation produced by Update: put Node at Path, or delete
// Path when Node is nil.
type Write struct {
	Path []byte
	Node []byte
}

// Tree is a compact sparse Merkle tree whose nodes live in a store read
// through a NodeReader. A Tree holds only the root and a bounded cache of
// committed nodes, and it never writes: Update returns the writes, the
// caller commits them, then calls Apply.
//
// Get, Prove and Update may be called concurrently. Apply, and the store
// commit before it, must not overlap any other call.
type Tree struct {
	r     NodeReader
	cache *cache

	mu   sync.RWMutex
	root Hash
}

// New returns a tree with the given root whose nodes are read from r, caching
// up to cacheNodes decoded nodes (0 disables the cache). The root of an empty
// tree is the zero Hash. New does no IO; a root that r does not hold surfaces
// as ErrCorrupt from the first read.
func New(r NodeReader, root Hash, cacheNodes int) *Tree {
	return &Tree{r: r, cache: newCache(cacheNodes), root: root}
}

// Root returns the current root hash.
func (t *Tree) Root() Hash {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.root
}

// CachedNodes returns the number of nodes in the cache.
func (t *Tree) CachedNodes() int { return t.cache.len() }

// ref names a subtree by kind and hash.
type ref struct {
	kind uint8
	hash Hash
}

// load reads and verifies the node at depth on the way to key, which must
// match want (kind may be kindUnknown for the root). buf is scratch space for
// the path and is returned for reuse.
func (t *Tree) load(buf []byte, depth int, key *Hash, want ref) (node, []byte, error) {
	path := appendPath(buf[:0], depth, key)
	if e, ok := t.cache.get(path); ok {
		if e.h != want.hash || (want.kind != kindUnknown && want.kind != e.n.kind) {
			return node{}, path, fmt.Errorf("%w at depth %d (path %x): cached node does not match parent", ErrCorrupt, depth, path)
		}
		return e.n, path, nil
	}
	raw, err := t.r.GetNode(path)
	if err != nil {
		return node{}, path, fmt.Errorf("smt: read node at depth %d (path %x): %w", depth, path, err)
	}
	if raw == nil {
		return node{}, path, fmt.Errorf("%w at depth %d (path %x): missing", ErrCorrupt, depth, path)
	}
	n, err := decodeNode(raw)
	if err != nil {
		return node{}, path, fmt.Errorf("%w at depth %d (path %x): %v", ErrCorrupt, depth, path, err)
	}
	if want.kind != kindUnknown && n.kind != want.kind {
		return node{}, path, fmt.Errorf("%w at depth %d (path %x): kind %d, parent says %d", ErrCorrupt, depth, path, n.kind, want.kind)
	}
	switch {
	case n.kind == kindInternal && depth >= MaxDepth:
		return node{}, path, fmt.Errorf("%w at depth %d (path %x): internal node below the last key bit", ErrCorrupt, depth, path)
	case n.kind == kindLeaf && !samePrefix(&n.h[0], key, depth):
		return node{}, path, fmt.Errorf("%w at depth %d (path %x): leaf key %v is not under this path", ErrCorrupt, depth, path, n.h[0])
	}
	h := n.hash()
	if h != want.hash {
		return node{}, path, fmt.Errorf("%w at depth %d (path %x): hash %v, expected %v", ErrCorrupt, depth, path, h, want.hash)
	}
	t.cache.put(path, entry{n: n, h: h})
	return n, path, nil
}

// Get returns the value hash stored under key, with ok false if key is absent.
func (t *Tree) Get(key Hash) (valueHash Hash, ok bool, err error) {
	cur := ref{kind: kindUnknown, hash: t.Root()}
	if cur.hash.IsZero() {
		return Hash{}, false, nil
	}
	buf := make([]byte, 0, maxPathLen)
	for depth := 0; ; depth++ {
		var n node
		n, buf, err = t.load(buf, depth, &key, cur)
		if err != nil {
			return Hash{}, false, err
		}
		if n.kind == kindLeaf {
			if n.h[0] != key {
				return Hash{}, false, nil
			}
			return n.h[1], true, nil
		}
		side := bit(&key, depth)
		cur = ref{kind: n.ck[side], hash: n.h[side]}
		if cur.kind == kindEmpty {
			return Hash{}, false, nil
		}
	}
}

// Pending is the outcome of Update: the new root and the store writes that
// produce it. It stays valid only while the tree's root is the one it was
// computed from.
type Pending struct {
	base   Hash
	root   Hash
	writes []Write
	hashes []Hash // hashes[i] is the hash of writes[i].Node, for the cache
}

// Root returns the root the tree will have once the writes are applied.
func (p *Pending) Root() Hash { return p.root }

// Writes returns the store mutations in ascending path order (bytewise), at
// most one per path. Applying them to a store holding the tree's current
// nodes yields exactly the nodes of the new tree. The slice and its bytes
// belong to p and must not be modified.
func (p *Pending) Writes() []Write { return p.writes }

// Update computes the root and store writes for applying changes to the
// tree, without changing the tree. Within one batch the last change to a key
// wins; deleting an absent key is a no-op. The store must not change during
// the call.
func (t *Tree) Update(changes []Change) (*Pending, error) {
	base := t.Root()
	items, err := prepare(changes)
	if err != nil {
		return nil, err
	}
	p := &Pending{base: base, root: base}
	if len(items) == 0 {
		return p, nil
	}
	u := updater{t: t, buf: make([]byte, 0, maxPathLen)}
	cur := ref{kind: kindUnknown, hash: base}
	if base.IsZero() {
		cur.kind = kindEmpty
	}
	res, err := u.update(0, cur, items)
	if err != nil {
		return nil, err
	}
	if cur.kind == kindUnknown {
		cur.kind = u.rootKind
	}
	// The root path is the one place no parent looks after.
	u.place(0, &items[0].key, cur, res)
	p.root = res.hash
	p.writes, p.hashes = u.ws.sorted()
	return p, nil
}

// Apply adopts the root of p after the caller has committed p.Writes() to
// the store, and updates the cache to match. It panics if the tree's root is
// no longer the one p was computed from: that is a caller bug (a lost or
// doubly applied batch) that would otherwise corrupt the cache.
func (t *Tree) Apply(p *Pending) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.root != p.base {
		panic(fmt.Sprintf("smt: Apply of a batch computed from root %v onto root %v", p.base, t.root))
	}
	t.cache.apply(p.writes, p.hashes)
	t.root = p.root
}

// item is one normalized change; seq is its position in the batch.
type item struct {
	key Hash
	vh  Hash
	del bool
	seq int32
}

// prepare hashes the values, sorts by key and keeps the last change per key.
func prepare(changes []Change) ([]item, error) {
	items := make([]item, len(changes))
	for i, c := range changes {
		switch {
		case c.Value == nil:
			items[i] = item{key: c.Key, del: true, seq: int32(i)}
		case len(c.Value) == 0:
			return nil, fmt.Errorf("%w: change %d (key %v)", ErrEmptyValue, i, c.Key)
		case !c.ValueHash.IsZero():
			items[i] = item{key: c.Key, vh: c.ValueHash, seq: int32(i)}
		default:
			items[i] = item{key: c.Key, vh: ValueHash(c.Value), seq: int32(i)}
		}
	}
	slices.SortFunc(items, func(a, b item) int {
		// The first 8 bytes decide almost every comparison of hashed keys.
		if x, y := binary.BigEndian.Uint64(a.key[:8]), binary.BigEndian.Uint64(b.key[:8]); x != y {
			return cmp.Compare(x, y)
		}
		if c := bytes.Compare(a.key[8:], b.key[8:]); c != 0 {
			return c
		}
		return int(a.seq - b.seq)
	})
	out := items[:0]
	for i := range items {
		if len(out) > 0 && out[len(out)-1].key == items[i].key {
			out[len(out)-1] = items[i]
			continue
		}
		out = append(out, items[i])
	}
	return out, nil
}

// result is the new content of a subtree. The node of an internal result and
// the key and value hash of a leaf result are carried up because the parent
// decides what is stored at the subtree's path.
type result struct {
	ref
	n node // kindLeaf or kindInternal: the node to store
}

func leafResult(key, vh Hash) result {
	return result{ref: ref{kind: kindLeaf, hash: LeafHash(key, vh)}, n: leafNode(key, vh)}
}

func internalResult(n node) result {
	return result{ref: ref{kind: kindInternal, hash: n.hash()}, n: n}
}

// updater carries the state of one Update call.
//
// Invariant: update and build never write at their own path; the caller,
// which knows whether a lone leaf floats further up, records what ends up
// there (place) or deletes it. So every write at depth d+1 is emitted by
// the parent at depth d after both its subtrees are done, left child first,
// which makes the writes of each depth come out in ascending path order.
type updater struct {
	t        *Tree
	buf      []byte // path scratch for reads
	scratch  []item // live leaves for build; reused, since build never calls live
	arena    []byte
	ws       writeLog
	rootKind uint8
}

// alloc returns n bytes of arena space with capacity capped at n.
func (u *updater) alloc(n int) []byte {
	if cap(u.arena)-len(u.arena) < n {
		u.arena = make([]byte, 0, max(64<<10, n))
	}
	start := len(u.arena)
	u.arena = u.arena[:start+n]
	return u.arena[start : start+n : start+n]
}

func (u *updater) put(depth int, key *Hash, res *result) {
	path := appendPath(u.alloc(pathHeaderLen + (depth+7)>>3)[:0], depth, key)
	enc := res.n.appendEncoding(u.alloc(maxNodeLen)[:0])
	u.ws.add(pendingWrite{path: path, node: enc, h: res.hash})
}

func (u *updater) del(depth int, key *Hash) {
	path := appendPath(u.alloc(pathHeaderLen + (depth+7)>>3)[:0], depth, key)
	u.ws.add(pendingWrite{path: path})
}

// place records the writes that turn old into res at path (depth, key),
// given that res stays at this path: its parent is internal, or it is the root.
func (u *updater) place(depth int, key *Hash, old ref, res result) {
	switch {
	case res.kind == kindEmpty:
		if old.kind != kindEmpty {
			u.del(depth, key)
		}
	case res.ref != old:
		u.put(depth, key, &res)
	}
}

// update applies items (sorted, unique, all under the path (depth, items[0].key))
// to the subtree cur at that path.
func (u *updater) update(depth int, cur ref, items []item) (result, error) {
	key := &items[0].key
	if cur.kind == kindEmpty {
		return u.build(depth, u.live(items, nil)), nil
	}
	n, buf, err := u.t.load(u.buf, depth, key, cur)
	u.buf = buf
	if err != nil {
		return result{}, err
	}
	if depth == 0 {
		u.rootKind = n.kind
	}
	if n.kind == kindLeaf {
		return u.build(depth, u.live(items, &n)), nil
	}

	split := splitAt(items, depth)
	parts := [2][]item{items[:split], items[split:]}
	var out [2]result
	if depth == 0 && len(parts[0]) >= parallelItems && len(parts[1]) >= parallelItems && runtime.GOMAXPROCS(0) > 1 {
		out, err = u.updateBoth([2]ref{{n.ck[0], n.h[0]}, {n.ck[1], n.h[1]}}, parts)
		if err != nil {
			return result{}, err
		}
	} else {
		for side := range 2 {
			old := ref{kind: n.ck[side], hash: n.h[side]}
			if len(parts[side]) == 0 {
				out[side] = result{ref: old}
				continue
			}
			if out[side], err = u.update(depth+1, old, parts[side]); err != nil {
				return result{}, err
			}
		}
	}
	if out[0].ref == (ref{n.ck[0], n.h[0]}) && out[1].ref == (ref{n.ck[1], n.h[1]}) {
		return result{ref: ref{kind: kindInternal, hash: cur.hash}, n: n}, nil
	}

	// Child paths: a key under each side.
	var childKey [2]Hash
	for side := range 2 {
		childKey[side] = withBit(*key, depth, side)
	}
	k0, k1 := out[0].kind, out[1].kind
	if k0 != kindInternal && k1 != kindInternal && (k0 == kindEmpty || k1 == kindEmpty) {
		// At most one leaf is left: it floats up to (or past) this path,
		// and neither child path keeps a node.
		var res result
		for side := range 2 {
			if n.ck[side] != kindEmpty {
				u.del(depth+1, &childKey[side])
			}
			if out[side].kind != kindLeaf {
				continue
			}
			res = out[side]
			if len(parts[side]) == 0 {
				// An untouched leaf: its record holds what we need.
				leaf, buf, err := u.t.load(u.buf, depth+1, &childKey[side], out[side].ref)
				u.buf = buf
				if err != nil {
					return result{}, err
				}
				res.n = leaf
			}
		}
		return res, nil
	}
	for side := range 2 {
		if len(parts[side]) > 0 {
			u.place(depth+1, &childKey[side], ref{kind: n.ck[side], hash: n.h[side]}, out[side])
		}
	}
	return internalResult(node{kind: kindInternal, ck: [2]uint8{k0, k1}, h: [2]Hash{out[0].hash, out[1].hash}}), nil
}

// parallelItems is the number of changes on each side of the root above
// which Update processes the two halves of the tree concurrently.
const parallelItems = 512

// updateBoth updates both children of the root concurrently, the right one with a
// second updater whose writes are appended after the left one's. Every write
// of the right subtree sorts after every write of the left one at the same
// depth, so the log keeps its per-depth order.
func (u *updater) updateBoth(old [2]ref, parts [2][]item) ([2]result, error) {
	var out [2]result
	var errs [2]error
	right := updater{t: u.t, buf: make([]byte, 0, maxPathLen)}
	var wg sync.WaitGroup
	wg.Go(func() {
		out[1], errs[1] = right.update(1, old[1], parts[1])
	})
	out[0], errs[0] = u.update(1, old[0], parts[0])
	wg.Wait()
	if err := errors.Join(errs[0], errs[1]); err != nil {
		return out, err
	}
	u.ws.chunks = append(u.ws.chunks, right.ws.chunks...)
	u.ws.n += right.ws.n
	return out, nil
}

// splitAt returns the index of the first item whose key has bit depth set;
// items are sorted and agree on the bits before depth.
func splitAt(items []item, depth int) int {
	lo, hi := 0, len(items)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if bit(&items[m].key, depth) == 0 {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// live returns the non-deleted items, plus the existing leaf (if any) unless
// an item overrides it, in key order. The slice is u.scratch.
func (u *updater) live(items []item, leaf *node) []item {
	out := u.scratch[:0]
	pending := leaf != nil
	for i := range items {
		it := &items[i]
		if pending {
			if c := bytes.Compare(leaf.h[0][:], it.key[:]); c <= 0 {
				pending = false
				if c < 0 {
					out = append(out, item{key: leaf.h[0], vh: leaf.h[1]})
				}
			}
		}
		if !it.del {
			out = append(out, *it)
		}
	}
	if pending {
		out = append(out, item{key: leaf.h[0], vh: leaf.h[1]})
	}
	u.scratch = out
	return out
}

// build returns the subtree holding exactly leaves (sorted, unique, all
// under the path (depth, leaves[0].key)), where nothing was stored below
// this path before.
func (u *updater) build(depth int, leaves []item) result {
	switch len(leaves) {
	case 0:
		return result{}
	case 1:
		return leafResult(leaves[0].key, leaves[0].vh)
	}
	split := splitAt(leaves, depth)
	parts := [2][]item{leaves[:split], leaves[split:]}
	var rs [2]result
	if depth == 0 && len(parts[0]) >= parallelItems && len(parts[1]) >= parallelItems && runtime.GOMAXPROCS(0) > 1 {
		// A large tree built from nothing (a state snapshot being
		// installed): both halves at once, as in updateBoth.
		right := updater{t: u.t, buf: make([]byte, 0, maxPathLen)}
		var wg sync.WaitGroup
		wg.Go(func() { rs[1] = right.build(1, parts[1]) })
		rs[0] = u.build(1, parts[0])
		wg.Wait()
		u.ws.chunks = append(u.ws.chunks, right.ws.chunks...)
		u.ws.n += right.ws.n
	} else {
		for side := range 2 {
			if len(parts[side]) > 0 {
				rs[side] = u.build(depth+1, parts[side])
			}
		}
	}
	nn := node{kind: kindInternal}
	for side := range 2 {
		if len(parts[side]) == 0 {
			continue
		}
		u.place(depth+1, &parts[side][0].key, ref{}, rs[side])
		nn.ck[side], nn.h[side] = rs[side].kind, rs[side].hash
	}
	return internalResult(nn)
}

// pendingWrite is a write plus the hash of its node (zero for a delete).
type pendingWrite struct {
	path []byte
	node []byte
	h    Hash
}

// writeLog collects writes in fixed-size chunks, so that a large batch does
// not copy its log over and over while it grows.
type writeLog struct {
	chunks [][]pendingWrite
	n      int
}

const writeChunk = 4096

func (l *writeLog) add(w pendingWrite) {
	if k := len(l.chunks); k == 0 || len(l.chunks[k-1]) == writeChunk {
		l.chunks = append(l.chunks, make([]pendingWrite, 0, writeChunk))
	}
	k := len(l.chunks) - 1
	l.chunks[k] = append(l.chunks[k], w)
	l.n++
}

// sorted returns the writes in path order. Paths start with the depth, and
// the writes of one depth were emitted in ascending order (see updater), so
// a stable counting sort on the depth is enough.
func (l *writeLog) sorted() ([]Write, []Hash) {
	var start [MaxDepth + 2]int
	for _, c := range l.chunks {
		for i := range c {
			start[pathDepth(c[i].path)+1]++
		}
	}
	for d := 1; d < len(start); d++ {
		start[d] += start[d-1]
	}
	writes := make([]Write, l.n)
	hashes := make([]Hash, l.n)
	for _, c := range l.chunks {
		for i := range c {
			d := pathDepth(c[i].path)
			j := start[d]
			start[d]++
			writes[j] = Write{Path: c[i].path, Node: c[i].node}
			hashes[j] = c[i].h
		}
	}
	return writes, hashes
}

func pathDepth(path []byte) int { return int(path[0])<<8 | int(path[1]) }
