package smt

import (
	"errors"
	"fmt"
)

// Child kinds, as recorded in an internal node and in the tree's own bookkeeping.
const (
	kindEmpty    = 0
	kindLeaf     = 1
	kindInternal = 2
	kindUnknown  = 0xff // only for the root, whose kind is not recorded anywhere
)

// Node record layout (see doc.go).
const (
	nodeVersion    = 0x01
	leafRecordLen  = 2 + 32 + 32
	pathHeaderLen  = 2
	maxPathLen     = pathHeaderLen + 32
	maxNodeLen     = 3 + 64
	internalHdrLen = 3
)

var errNodeFormat = errors.New("bad node record")

// node is a decoded node record. For a leaf, h[0] is the key and h[1] the
// value hash; for an internal node, ck and h are the kinds and hashes of the
// left (0) and right (1) children, h[i] being zero for an empty child.
type node struct {
	kind uint8
	ck   [2]uint8
	h    [2]Hash
}

func leafNode(key, valueHash Hash) node {
	return node{kind: kindLeaf, h: [2]Hash{key, valueHash}}
}

func (n *node) hash() Hash {
	if n.kind == kindLeaf {
		return LeafHash(n.h[0], n.h[1])
	}
	return InternalHash(n.h[0], n.h[1])
}

// appendEncoding appends the node record of n to dst.
func (n *node) appendEncoding(dst []byte) []byte {
	dst = append(dst, nodeVersion, n.kind)
	if n.kind == kindLeaf {
		dst = append(dst, n.h[0][:]...)
		return append(dst, n.h[1][:]...)
	}
	dst = append(dst, n.ck[0]<<4|n.ck[1])
	for i := range 2 {
		if n.ck[i] != kindEmpty {
			dst = append(dst, n.h[i][:]...)
		}
	}
	return dst
}

// decodeNode strictly decodes a node record: every accepted input is the
// unique encoding of the returned node, and the node obeys the compaction
// invariant (an internal node holds at least two leaves).
func decodeNode(b []byte) (node, error) {
	var n node
	if len(b) < 2 {
		return n, fmt.Errorf("%w: %d bytes", errNodeFormat, len(b))
	}
	if b[0] != nodeVersion {
		return n, fmt.Errorf("%w: unknown version %#x", errNodeFormat, b[0])
	}
	switch b[1] {
	case kindLeaf:
		if len(b) != leafRecordLen {
			return n, fmt.Errorf("%w: leaf record of %d bytes", errNodeFormat, len(b))
		}
		n.kind = kindLeaf
		copy(n.h[0][:], b[2:34])
		copy(n.h[1][:], b[34:66])
		return n, nil
	case kindInternal:
		if len(b) < internalHdrLen {
			return n, fmt.Errorf("%w: short internal record", errNodeFormat)
		}
		n.kind = kindInternal
		n.ck = [2]uint8{b[2] >> 4, b[2] & 0x0f}
		rest := b[internalHdrLen:]
		for i := range 2 {
			switch n.ck[i] {
			case kindEmpty:
			case kindLeaf, kindInternal:
				if len(rest) < 32 {
					return n, fmt.Errorf("%w: truncated child hash", errNodeFormat)
				}
				copy(n.h[i][:], rest[:32])
				rest = rest[32:]
				if n.h[i].IsZero() {
					return n, fmt.Errorf("%w: non-empty child with zero hash", errNodeFormat)
				}
			default:
				return n, fmt.Errorf("%w: child kind %d", errNodeFormat, n.ck[i])
			}
		}
		if len(rest) != 0 {
			return n, fmt.Errorf("%w: %d trailing bytes", errNodeFormat, len(rest))
		}
		// Compaction: a lone leaf floats up, and an empty internal node does not exist.
		if n.ck[0] == kindEmpty && n.ck[1] != kindInternal || n.ck[1] == kindEmpty && n.ck[0] != kindInternal {
			return n, fmt.Errorf("%w: internal node with children %d,%d is not compact", errNodeFormat, n.ck[0], n.ck[1])
		}
		return n, nil
	default:
		return n, fmt.Errorf("%w: unknown node kind %#x", errNodeFormat, b[1])
	}
}

// appendPath appends the store path of the node at depth whose key prefix is
// the first depth bits of key: depth as a big-endian uint16, then the
// ceil(depth/8) prefix bytes with the bits past depth cleared.
func appendPath(dst []byte, depth int, key *Hash) []byte {
	dst = append(dst, byte(depth>>8), byte(depth))
	nb := (depth + 7) >> 3
	dst = append(dst, key[:nb]...)
	if rem := depth & 7; rem != 0 {
		dst[len(dst)-1] &= byte(0xff) << uint(8-rem)
	}
	return dst
}

// Path returns the store path of the node at depth (0..256) on the way to
// key. Callers only need it to inspect a store; the tree computes paths itself.
func Path(depth int, key Hash) []byte {
	if depth < 0 || depth > MaxDepth {
		panic(fmt.Sprintf("smt: Path depth %d out of range", depth))
	}
	return appendPath(make([]byte, 0, maxPathLen), depth, &key)
}
