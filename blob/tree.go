package blob

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"lukechampine.com/blake3/guts"
)

// Sizes of the three units the package works in. A blob's BLAKE3 tree has
// one leaf per SegmentSize bytes (BLAKE3's own 1 KiB chunk); the store keeps
// the tree's parent nodes down to GroupSize subtrees; transfers move
// ChunkSize subtrees. Each is a power-of-two multiple of the one before, so
// every segment, group and transfer chunk is a subtree of the blob's tree
// (the last one of each possibly short).
const (
	// SegmentSize is the unit of a storage proof: one BLAKE3 chunk.
	SegmentSize = guts.ChunkSize
	// GroupSize is the granularity of the stored outboard: parent nodes of
	// subtrees smaller than a group are recomputed from the data when needed.
	GroupSize = 16 * SegmentSize
	// ChunkSize is the transfer unit: ReadSlice and WriteSlice move one
	// aligned ChunkSize piece of a blob (the last one may be shorter).
	ChunkSize = 1 << 20

	// MaxSize bounds a blob's size (1 PiB) so that every offset and count
	// below fits an int64 with room to spare.
	MaxSize = 1 << 50

	groupSegs  = GroupSize / SegmentSize // segments per group: 16 = guts.MaxSIMD
	chunkSegs  = ChunkSize / SegmentSize // segments per transfer chunk
	pairSize   = 64                      // a parent node: left CV ‖ right CV
	lenPrefix  = 8                       // a Bao encoding starts with the content length
	maxDepth   = 64                      // ancestors of any subtree of a blob ≤ MaxSize
	cvSize     = 32
	rootFlag   = guts.FlagRoot
	noFlags    = 0
	outHdrSize = 32 // see fs.go
)

type cv = [8]uint32

// span is a subtree of a blob's tree: leaves [lo, hi), in the unit of the
// caller (segments, or groups for outboard indexes).
type span struct{ lo, hi uint64 }

// leaves is the number of SegmentSize leaves of a blob of size bytes
// (BLAKE3 hashes the empty input as one empty chunk).
func leaves(size uint64) uint64 {
	if size == 0 {
		return 1
	}
	return (size + SegmentSize - 1) / SegmentSize
}

func ceilDiv(a, b uint64) uint64 { return (a + b - 1) / b }

// SegmentCount is the number of proof segments of a blob of size bytes:
// ceil(size / SegmentSize), and 0 for the empty blob, which has nothing to
// prove.
func SegmentCount(size uint64) uint64 {
	if size == 0 {
		return 0
	}
	return leaves(size)
}

// ChunkCount is the number of transfer chunks of a blob of size bytes:
// ceil(size / ChunkSize), and 1 for the empty blob (its one slice is the
// 8-byte length prefix, which still proves the blob is empty).
func ChunkCount(size uint64) uint64 {
	if size == 0 {
		return 1
	}
	return ceilDiv(size, ChunkSize)
}

// split is where the subtree [lo, hi) divides: BLAKE3 puts the largest
// power of two of leaves strictly below hi-lo on the left (hi-lo ≥ 2).
func split(lo, hi uint64) uint64 {
	return lo + 1<<(bits.Len64(hi-lo-1)-1)
}

// ancestors appends to out the parents above the subtree target in a tree of
// n leaves, root first. ok is false when target is not a subtree.
func ancestors(n uint64, target span, out []span) (path []span, ok bool) {
	cur := span{0, n}
	for cur != target {
		if cur.hi-cur.lo < 2 {
			return out, false
		}
		out = append(out, cur)
		m := split(cur.lo, cur.hi)
		switch {
		case target.hi <= m:
			cur.hi = m
		case target.lo >= m:
			cur.lo = m
		default:
			return out, false
		}
	}
	return out, true
}

// groupSpan converts a span in segments whose edges are group boundaries
// (or the end of the blob) to groups.
func groupSpan(s span) span { return span{s.lo / groupSegs, ceilDiv(s.hi, groupSegs)} }

// entryIndex is the position of the parent node of the subtree s (in
// groups, at least two) in the post-order outboard of a tree of n groups.
//
// Every aligned block of 2^L groups that ends at or before n is a subtree
// (BLAKE3's tree is left-balanced); post-order puts such a block after all
// blocks ending before it and after its own smaller blocks ending at the
// same place, so with e = its end, index = (e - popcount(e)) - (tz(e) - L)
// - 1. The other parents form the right spine [s_j, n) and come last,
// deepest first.
func entryIndex(n uint64, s span) uint64 {
	size := s.hi - s.lo
	if size&(size-1) == 0 && s.lo%size == 0 {
		e := s.hi
		L := uint64(bits.TrailingZeros64(size))
		return e - uint64(bits.OnesCount64(e)) - (uint64(bits.TrailingZeros64(e)) - L) - 1
	}
	// The spine has popcount(n)-1 nodes after the n-popcount(n) aligned
	// ones; the node starting at s.lo has popcount(s.lo) spine nodes above it.
	return n - 2 - uint64(bits.OnesCount64(s.lo))
}

// outboardLen is the size of the outboard file of a blob of size bytes.
func outboardLen(size uint64) uint64 {
	return outHdrSize + pairSize*(ceilDiv(leaves(size), groupSegs)-1)
}

func cvBytes(c *cv, dst []byte) {
	_ = dst[31]
	for i, w := range c {
		binary.LittleEndian.PutUint32(dst[4*i:], w)
	}
}

func bytesCV(b []byte) (c cv) {
	_ = b[31]
	for i := range c {
		c[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return c
}

func parentCV(l, r cv, flags uint32) cv {
	return guts.ChainingValue(guts.ParentNode(l, r, &guts.IV, flags))
}

// groupNode compresses the group (≤ GroupSize bytes) whose first segment is
// seg, returning its final node so the caller can still mark it as root.
func groupNode(p []byte, seg uint64, scratch *[GroupSize]byte) guts.Node {
	if len(p) == GroupSize {
		return guts.CompressBuffer((*[GroupSize]byte)(p), GroupSize, &guts.IV, seg, noFlags)
	}
	copy(scratch[:], p)
	return guts.CompressBuffer(scratch, len(p), &guts.IV, seg, noFlags)
}

// builder computes a (sub)tree from its groups' nodes fed left to right,
// emitting every parent node as the 64-byte pair left CV ‖ right CV in
// post-order, which is the order they complete in. It holds back the last
// group until it knows whether more follow, since the root is hashed with
// the ROOT flag. Memory is O(depth).
type builder struct {
	stack   [maxDepth]stackEntry
	depth   int
	pending guts.Node // the last group fed, not yet pushed
	pendAt  uint64    // its group index
	has     bool
	pairs   []byte // emitted pairs, post-order
	spans   []span // their subtrees in groups, when track is set
	track   bool
}

type stackEntry struct {
	cv cv
	s  span // in groups
}

func (b *builder) reset(track bool) {
	b.depth, b.has, b.track = 0, false, track
	b.pairs, b.spans = b.pairs[:0], b.spans[:0]
}

// add feeds the next group: its node and its group index.
func (b *builder) add(n guts.Node, g uint64) {
	if b.has {
		b.push(guts.ChainingValue(b.pending), span{b.pendAt, b.pendAt + 1})
	}
	b.pending, b.pendAt, b.has = n, g, true
}

// push adds a complete subtree that is known not to be the root and merges
// equal-sized neighbours (aligned blocks are subtrees whatever follows).
func (b *builder) push(c cv, s span) {
	for b.depth > 0 {
		top := &b.stack[b.depth-1]
		if top.s.hi-top.s.lo != s.hi-s.lo {
			break
		}
		s = span{top.s.lo, s.hi}
		b.emit(&top.cv, &c, s)
		c = parentCV(top.cv, c, noFlags)
		b.depth--
	}
	b.stack[b.depth] = stackEntry{c, s}
	b.depth++
}

func (b *builder) emit(l, r *cv, s span) {
	n := len(b.pairs)
	b.pairs = append(b.pairs, make([]byte, pairSize)...)
	cvBytes(l, b.pairs[n:])
	cvBytes(r, b.pairs[n+cvSize:])
	if b.track {
		b.spans = append(b.spans, s)
	}
}

// finish folds the right edge and returns the chaining value of the whole
// (sub)tree, or the BLAKE3 hash when flags is rootFlag. At least one group
// must have been fed.
func (b *builder) finish(flags uint32) cv {
	if b.depth == 0 {
		n := b.pending
		n.Flags |= flags
		return guts.ChainingValue(n)
	}
	right := guts.ChainingValue(b.pending)
	hi := b.pendAt + 1
	for i := b.depth - 1; i >= 0; i-- {
		l := &b.stack[i]
		b.emit(&l.cv, &right, span{l.s.lo, hi})
		f := uint32(noFlags)
		if i == 0 {
			f = flags
		}
		right = parentCV(l.cv, right, f)
	}
	b.depth = 0
	return right
}

// verifyPath checks the pairs of path (the ancestors of target, root first,
// each pair at enc[i*64:]) against the child chaining value c of target and
// the blob id. Path spans and target are in segments.
func verifyPath(id *ID, path []span, target span, c cv, pairs []byte) bool {
	child := target
	for i := len(path) - 1; i >= 0; i-- {
		p := pairs[i*pairSize : (i+1)*pairSize]
		l, r := bytesCV(p[:cvSize]), bytesCV(p[cvSize:])
		if child.lo < split(path[i].lo, path[i].hi) {
			if l != c {
				return false
			}
		} else if r != c {
			return false
		}
		f := uint32(noFlags)
		if i == 0 {
			f = rootFlag
		}
		c = parentCV(l, r, f)
		child = path[i]
	}
	var got ID
	cvBytes(&c, got[:])
	return got == *id
}

// chunkSpan is transfer chunk k of a tree of n segments.
func chunkSpan(n, k uint64) span {
	return span{k * chunkSegs, min((k+1)*chunkSegs, n)}
}

// sliceLayout returns the ancestors of transfer chunk k and the chunk's
// content bounds; it checks size and k.
func sliceLayout(size, k uint64, buf []span) (path []span, off, length uint64, err error) {
	if size > MaxSize {
		return nil, 0, 0, fmt.Errorf("blob: size %d: %w", size, ErrRange)
	}
	if k >= ChunkCount(size) {
		return nil, 0, 0, fmt.Errorf("blob: chunk %d of a %d-byte blob (%d chunks): %w", k, size, ChunkCount(size), ErrRange)
	}
	n := leaves(size)
	path, ok := ancestors(n, chunkSpan(n, k), buf)
	if !ok {
		panic("blob: a transfer chunk is not a subtree") // impossible: chunks are aligned power-of-two blocks
	}
	off = k * ChunkSize
	return path, off, min(off+ChunkSize, size) - off, nil
}

// SliceLen is the exact length of the slice encoding of transfer chunk k of
// a blob of size bytes: 8 + 64 × (ancestors of the chunk) + the chunk's
// bytes. A receiver can reject a longer frame before reading it.
func SliceLen(size, k uint64) (int, error) {
	var buf [maxDepth]span
	path, _, length, err := sliceLayout(size, k, buf[:0])
	if err != nil {
		return 0, err
	}
	return lenPrefix + pairSize*len(path) + int(length), nil
}

// VerifySlice checks enc, the slice encoding of transfer chunk k of the
// blob (id, size) (as ReadSlice returns it), and returns the chunk's bytes,
// which alias enc. A slice that does not verify is ErrCorrupt; a chunk
// index past the end is ErrRange.
func VerifySlice(id ID, size, k uint64, enc []byte) ([]byte, error) {
	var b builder
	var scratch [GroupSize]byte
	var buf [maxDepth]span
	data, _, err := verifySlice(&id, size, k, enc, &b, &scratch, buf[:0])
	return data, err
}

// verifySlice is VerifySlice leaving in b the parent pairs inside the chunk
// (with their group spans) and returning the chunk's ancestors, so that a
// partial blob can write the outboard without hashing the chunk twice.
func verifySlice(id *ID, size, k uint64, enc []byte, b *builder, scratch *[GroupSize]byte, buf []span) (data []byte, path []span, err error) {
	path, off, length, err := sliceLayout(size, k, buf)
	if err != nil {
		return nil, nil, err
	}
	want := lenPrefix + pairSize*len(path) + int(length)
	if len(enc) != want {
		return nil, nil, fmt.Errorf("blob: slice %d of %s: %d bytes, want %d: %w", k, id, len(enc), want, ErrCorrupt)
	}
	if got := binary.LittleEndian.Uint64(enc); got != size {
		return nil, nil, fmt.Errorf("blob: slice %d of %s: length prefix %d, want %d: %w", k, id, got, size, ErrCorrupt)
	}
	pairs := enc[lenPrefix : lenPrefix+pairSize*len(path)]
	data = enc[lenPrefix+len(pairs):]
	b.reset(true)
	seg := off / SegmentSize
	for i := 0; ; i += GroupSize {
		end := min(i+GroupSize, len(data))
		b.add(groupNode(data[i:end], seg+uint64(i/SegmentSize), scratch), (seg+uint64(i/SegmentSize))/groupSegs)
		if end == len(data) {
			break
		}
	}
	flags := uint32(noFlags)
	if len(path) == 0 {
		flags = rootFlag
	}
	c := b.finish(flags)
	n := leaves(size)
	if !verifyPath(id, path, chunkSpan(n, k), c, pairs) {
		return nil, nil, fmt.Errorf("blob: slice %d of %s does not verify: %w", k, id, ErrCorrupt)
	}
	return data, path, nil
}

// ProofLen is the exact length of a storage proof of segment seg of a blob
// of size bytes: 8 + 64 × (ancestors of the segment) + the segment's bytes
// (2,312 bytes for a full segment of a 1 GiB blob).
func ProofLen(size, seg uint64) (int, error) {
	var buf [maxDepth]span
	path, length, err := proofLayout(size, seg, buf[:0])
	if err != nil {
		return 0, err
	}
	return lenPrefix + pairSize*len(path) + int(length), nil
}

func proofLayout(size, seg uint64, buf []span) (path []span, length uint64, err error) {
	if size > MaxSize {
		return nil, 0, fmt.Errorf("blob: size %d: %w", size, ErrRange)
	}
	if seg >= SegmentCount(size) {
		return nil, 0, fmt.Errorf("blob: segment %d of a %d-byte blob (%d segments): %w", seg, size, SegmentCount(size), ErrRange)
	}
	path, _ = ancestors(leaves(size), span{seg, seg + 1}, buf)
	off := seg * SegmentSize
	return path, min(off+SegmentSize, size) - off, nil
}

// Proof is a storage proof of one segment of a blob: the Bao slice
// encoding (group 0) of that segment, i.e. the content length (8 bytes,
// little endian), the pair of child chaining values of every ancestor of
// the segment from the root down (64 bytes each), then the segment's bytes.
// For a given blob and segment exactly one byte string verifies.
type Proof []byte

// VerifyProof checks that p proves segment seg of the blob (id, size): the
// segment's bytes hash up through the path to id. It needs no store and is
// a pure function of its arguments. A segment past the end is ErrRange
// (SegmentCount(0) is 0: the empty blob has no proofs); a proof that does
// not verify, whatever its defect, is ErrCorrupt.
func VerifyProof(id ID, size, seg uint64, p Proof) error {
	var buf [maxDepth]span
	path, length, err := proofLayout(size, seg, buf[:0])
	if err != nil {
		return err
	}
	want := lenPrefix + pairSize*len(path) + int(length)
	if len(p) != want {
		return fmt.Errorf("blob: proof of segment %d of %s: %d bytes, want %d: %w", seg, id, len(p), want, ErrCorrupt)
	}
	if got := binary.LittleEndian.Uint64(p); got != size {
		return fmt.Errorf("blob: proof of segment %d of %s: length prefix %d, want %d: %w", seg, id, got, size, ErrCorrupt)
	}
	pairs := p[lenPrefix : lenPrefix+pairSize*len(path)]
	n := guts.CompressChunk(p[lenPrefix+len(pairs):], &guts.IV, seg, noFlags)
	if len(path) == 0 {
		n.Flags |= rootFlag
	}
	if !verifyPath(&id, path, span{seg, seg + 1}, guts.ChainingValue(n), pairs) {
		return fmt.Errorf("blob: proof of segment %d of %s does not verify: %w", seg, id, ErrCorrupt)
	}
	return nil
}

// segmentCVs computes the chaining values of the segments of a group
// (data: the group's bytes, first segment seg).
func segmentCVs(data []byte, seg uint64, out *[groupSegs]cv) int {
	n := 0
	for i := 0; ; i += SegmentSize {
		end := min(i+SegmentSize, len(data))
		out[n] = guts.ChainingValue(guts.CompressChunk(data[i:end], &guts.IV, seg+uint64(n), noFlags))
		n++
		if end == len(data) {
			return n
		}
	}
}

// subtreeCV is the chaining value of segments [s.lo, s.hi) from their
// chaining values (cvs[0] is segment base); never the root.
func subtreeCV(cvs []cv, base uint64, s span) cv {
	if s.hi-s.lo == 1 {
		return cvs[s.lo-base]
	}
	m := split(s.lo, s.hi)
	return parentCV(subtreeCV(cvs, base, span{s.lo, m}), subtreeCV(cvs, base, span{m, s.hi}), noFlags)
}
