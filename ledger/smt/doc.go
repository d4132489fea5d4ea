// Package smt implements a compact sparse Merkle tree over 256-bit keys
// whose nodes are persisted in a key-value store, for committing to ledger
// state (the state root in each block header) and for inclusion and
// non-inclusion proofs that a light client checks against that root.
//
// # Tree and hashing
//
// Keys are 32 bytes; callers hash their state keys to get them. Values are
// non-empty byte strings; the tree stores only valueHash = SHA-256(value).
// Bit i of a key is bit 7-(i%8) of byte i/8, so bit 0 is the most
// significant bit of key[0]. With || denoting concatenation:
//
//	empty subtree   32 zero bytes
//	leaf            SHA-256(0x00 || key || valueHash)
//	internal node   SHA-256(0x01 || left || right)
//
// The tree is compact: a subtree holding exactly one leaf is that leaf's
// hash, wherever the subtree sits. The root of a set S of leaves at depth d
// (the root is depth 0) is therefore
//
//	root(S, d) = zero                                   if |S| = 0
//	           = leaf hash of the only member           if |S| = 1
//	           = internal(root(S0, d+1), root(S1, d+1)) otherwise
//
// where S0 and S1 hold the members whose key has bit d clear and set. The
// root depends only on the set of (key, valueHash) pairs, never on the
// order in which they were inserted or deleted.
//
// # Stored nodes
//
// Every node of the compact tree is stored at its path: the depth as a
// big-endian uint16 (0..256) followed by the first ceil(depth/8) bytes of
// the key prefix, with the bits past depth cleared (see Path). Callers may
// put a namespace in front of the path. Node records are
//
//	leaf      0x01 0x01 key(32) valueHash(32)
//	internal  0x01 0x02 kinds left(32)? right(32)?
//
// where the leading 0x01 is the format version, kinds is left<<4 | right
// with 0 = empty, 1 = leaf, 2 = internal, and a child hash is present only
// for a non-empty child. Records are decoded strictly: an unknown version
// or kind, a wrong length, a zero child hash, or an internal node that
// should have been compacted away (no internal child and fewer than two
// leaf children) is rejected. Reads check that every node hashes to what
// its parent (or the root) says, and that a leaf lies under its path; any
// failure is reported as ErrCorrupt.
//
// Update's writes keep the store exact: when a leaf floats up after a
// delete or sinks down under a new internal node, the path it left is
// deleted, so the store holds precisely the nodes reachable from the root
// and the stored bytes are, like the root, a function of the leaf set.
//
// # Proofs
//
// A Proof walks from the root towards the key. Siblings[i] is the hash of
// the sibling, at depth i+1, of the node on the key's path at depth i (zero
// when that sibling is empty). The walk stops at depth len(Siblings) in a
// leaf (Leaf) or in an empty subtree (Leaf nil). It proves inclusion if
// Leaf.Key is the key, and non-inclusion otherwise. VerifyProof recomputes
// the root from the bottom, putting the running hash on the side given by
// the key's bit, and also requires that Leaf.Key shares the key's first
// len(Siblings) bits and that the last sibling is non-empty (a leaf or empty
// subtree beside an empty sibling cannot occur in a compact tree).
//
// The binary form (Marshal, UnmarshalProof) is
//
//	version(1) = 0x01
//	flags(1)   bit 0: Leaf present; other bits zero
//	depth(2)   big-endian number of siblings, at most 256
//	bitmap     ceil(depth/8) bytes; bit i (MSB first) set iff Siblings[i] is non-zero;
//	           bits past depth zero
//	siblings   32 bytes per set bitmap bit, in depth order; never all zero
//	leaf       key(32) valueHash(32), only if flagged
//
// with no trailing bytes. The decoder accepts only this canonical form. The
// JSON form has "siblings" (hex strings) and an optional "leaf" with "key"
// and "valueHash".
//
// # Usage
//
//  1. Open the tree: New(reader, rootFromLastBlock, cacheNodes). The reader
//     returns committed node records by path.
//  2. For a block, call Update with the block's state changes. It returns a
//     Pending without touching the tree or the store; Pending.Root is the
//     state root to put in the header.
//  3. Commit Pending.Writes to the store together with the block, in one
//     atomic batch.
//  4. Only after the commit succeeded, call Apply. If it failed, drop the
//     Pending; the tree still describes the committed state.
//
// Get and Prove answer from the committed state. Get, Prove and Update may
// run concurrently; the commit and Apply must not overlap any other call,
// since between the two the store no longer matches the tree's root.
package smt
