package smt

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Proof shows that a key is present with a given value, or absent, in the
// tree with a given root. It is the path from the root towards the key:
// Siblings[i] is the hash of the sibling subtree at depth i+1 (zero when
// empty), and the path ends at depth len(Siblings) in Leaf, or in an empty
// subtree when Leaf is nil. The proof is of inclusion when Leaf.Key is the
// key, of non-inclusion otherwise (Leaf is then the only leaf under the
// key's path at that depth, with a different key).
type Proof struct {
	Siblings []Hash     `json:"siblings"`
	Leaf     *ProofLeaf `json:"leaf,omitempty"`
}

// ProofLeaf is the leaf a proof's path ends in.
type ProofLeaf struct {
	Key       Hash `json:"key"`
	ValueHash Hash `json:"valueHash"`
}

// Proof encoding (see doc.go).
const (
	proofVersion  = 0x01
	proofFlagLeaf = 0x01
	proofHdrLen   = 4
)

// Prove returns a proof of inclusion for key if it is present, and of
// non-inclusion otherwise.
func (t *Tree) Prove(key Hash) (*Proof, error) {
	p := &Proof{}
	cur := ref{kind: kindUnknown, hash: t.Root()}
	if cur.hash.IsZero() {
		return p, nil
	}
	var sib [MaxDepth]Hash
	buf := make([]byte, 0, maxPathLen)
	depth := 0
	for {
		var n node
		var err error
		n, buf, err = t.load(buf, depth, &key, cur)
		if err != nil {
			return nil, err
		}
		if n.kind == kindLeaf {
			p.Leaf = &ProofLeaf{Key: n.h[0], ValueHash: n.h[1]}
			break
		}
		side := bit(&key, depth)
		sib[depth] = n.h[1-side]
		cur = ref{kind: n.ck[side], hash: n.h[side]}
		depth++
		if cur.kind == kindEmpty {
			break
		}
	}
	if depth > 0 {
		p.Siblings = slices.Clone(sib[:depth])
	}
	return p, nil
}

// VerifyProof checks p against root: with a non-nil value, that key is
// present with that value; with a nil value, that key is absent. It returns
// nil on success and an error wrapping ErrInvalidProof (or ErrEmptyValue for
// a zero-length, non-nil value) otherwise.
func VerifyProof(root Hash, key Hash, value []byte, p *Proof) error {
	if value != nil && len(value) == 0 {
		return fmt.Errorf("%w: VerifyProof value", ErrEmptyValue)
	}
	if p == nil {
		return fmt.Errorf("%w: nil proof", ErrInvalidProof)
	}
	d := len(p.Siblings)
	if d > MaxDepth {
		return fmt.Errorf("%w: %d siblings, more than %d", ErrInvalidProof, d, MaxDepth)
	}
	var cur Hash
	switch {
	case value != nil && (p.Leaf == nil || p.Leaf.Key != key):
		return fmt.Errorf("%w: proves %v absent", ErrInvalidProof, key)
	case value != nil && p.Leaf.ValueHash != ValueHash(value):
		return fmt.Errorf("%w: value hash %v does not match the value", ErrInvalidProof, p.Leaf.ValueHash)
	case value == nil && p.Leaf != nil && p.Leaf.Key == key:
		return fmt.Errorf("%w: proves %v present", ErrInvalidProof, key)
	}
	if p.Leaf != nil {
		if !samePrefix(&p.Leaf.Key, &key, d) {
			return fmt.Errorf("%w: leaf %v is not on the path of %v at depth %d", ErrInvalidProof, p.Leaf.Key, key, d)
		}
		cur = LeafHash(p.Leaf.Key, p.Leaf.ValueHash)
	}
	// In a compact tree the parent of a leaf or empty subtree always has a
	// non-empty other child; refusing the rest keeps proofs unique.
	if d > 0 && p.Siblings[d-1].IsZero() {
		return fmt.Errorf("%w: path ends beside an empty subtree", ErrInvalidProof)
	}
	for i := d - 1; i >= 0; i-- {
		if bit(&key, i) == 0 {
			cur = InternalHash(cur, p.Siblings[i])
		} else {
			cur = InternalHash(p.Siblings[i], cur)
		}
	}
	if cur != root {
		return fmt.Errorf("%w: computed root %v, expected %v", ErrInvalidProof, cur, root)
	}
	return nil
}

// Marshal encodes p in the compact binary form described in doc.go. It
// panics if p has more than MaxDepth siblings, which no proof from Prove or
// UnmarshalProof has.
func (p *Proof) Marshal() []byte {
	d := len(p.Siblings)
	if d > MaxDepth {
		panic(fmt.Sprintf("smt: Marshal of a proof with %d siblings", d))
	}
	nb := (d + 7) >> 3
	out := make([]byte, proofHdrLen+nb, proofHdrLen+nb+32*d+64)
	out[0] = proofVersion
	if p.Leaf != nil {
		out[1] = proofFlagLeaf
	}
	binary.BigEndian.PutUint16(out[2:4], uint16(d))
	bitmap := out[proofHdrLen:]
	for i := range p.Siblings {
		if !p.Siblings[i].IsZero() {
			bitmap[i>>3] |= 0x80 >> uint(i&7)
			out = append(out, p.Siblings[i][:]...)
		}
	}
	if p.Leaf != nil {
		out = append(out, p.Leaf.Key[:]...)
		out = append(out, p.Leaf.ValueHash[:]...)
	}
	return out
}

// UnmarshalProof decodes the output of Marshal. It accepts only canonical
// encodings, so UnmarshalProof(b) succeeds only if Marshal of the result is b.
// Errors wrap ErrInvalidProof.
func UnmarshalProof(b []byte) (*Proof, error) {
	if len(b) < proofHdrLen {
		return nil, fmt.Errorf("%w: %d bytes, too short", ErrInvalidProof, len(b))
	}
	if b[0] != proofVersion {
		return nil, fmt.Errorf("%w: unknown version %#x", ErrInvalidProof, b[0])
	}
	if b[1]&^proofFlagLeaf != 0 {
		return nil, fmt.Errorf("%w: unknown flags %#x", ErrInvalidProof, b[1])
	}
	d := int(binary.BigEndian.Uint16(b[2:4]))
	if d > MaxDepth {
		return nil, fmt.Errorf("%w: depth %d, more than %d", ErrInvalidProof, d, MaxDepth)
	}
	nb := (d + 7) >> 3
	rest := b[proofHdrLen:]
	if len(rest) < nb {
		return nil, fmt.Errorf("%w: truncated bitmap", ErrInvalidProof)
	}
	bitmap, rest := rest[:nb], rest[nb:]
	if rem := d & 7; rem != 0 && bitmap[nb-1]&(0xff>>uint(rem)) != 0 {
		return nil, fmt.Errorf("%w: bitmap bits set past depth %d", ErrInvalidProof, d)
	}
	p := &Proof{}
	if d > 0 {
		p.Siblings = make([]Hash, d)
	}
	for i := range d {
		if bitmap[i>>3]&(0x80>>uint(i&7)) == 0 {
			continue
		}
		if len(rest) < 32 {
			return nil, fmt.Errorf("%w: truncated sibling %d", ErrInvalidProof, i)
		}
		copy(p.Siblings[i][:], rest[:32])
		rest = rest[32:]
		if p.Siblings[i].IsZero() {
			return nil, fmt.Errorf("%w: sibling %d marked non-empty is zero", ErrInvalidProof, i)
		}
	}
	if b[1]&proofFlagLeaf != 0 {
		if len(rest) < 64 {
			return nil, fmt.Errorf("%w: truncated leaf", ErrInvalidProof)
		}
		p.Leaf = &ProofLeaf{}
		copy(p.Leaf.Key[:], rest[:32])
		copy(p.Leaf.ValueHash[:], rest[32:64])
		rest = rest[64:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrInvalidProof, len(rest))
	}
	return p, nil
}
