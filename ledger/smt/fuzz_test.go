package smt

import (
	"bytes"
	"reflect"
	"testing"
)

func FuzzUnmarshalProof(f *testing.F) {
	fx := newProofFixture(f, 40)
	for _, k := range append(fx.present[:5], fx.absent[:5]...) {
		p, err := fx.tr.Prove(k)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p.Marshal())
	}
	f.Add([]byte{1, 0, 0, 0})
	f.Add([]byte{1, 1, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := UnmarshalProof(b)
		if err != nil {
			return
		}
		enc := p.Marshal()
		if !bytes.Equal(enc, b) {
			t.Fatalf("decode then encode changed the bytes:\n%x\n%x", b, enc)
		}
		q, err := UnmarshalProof(enc)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatal("round trip changed the proof")
		}
		// Verification of arbitrary proofs must not panic either.
		_ = VerifyProof(Hash{}, Hash{}, nil, p)
		if p.Leaf != nil {
			_ = VerifyProof(Hash{}, p.Leaf.Key, []byte("v"), p)
		}
	})
}

func FuzzNodeDecode(f *testing.F) {
	h := Hash{9}
	for _, n := range []node{
		leafNode(Hash{1}, h),
		{kind: kindInternal, ck: [2]uint8{kindLeaf, kindLeaf}, h: [2]Hash{h, h}},
		{kind: kindInternal, ck: [2]uint8{kindEmpty, kindInternal}, h: [2]Hash{{}, h}},
		{kind: kindInternal, ck: [2]uint8{kindInternal, kindLeaf}, h: [2]Hash{h, h}},
	} {
		f.Add(n.appendEncoding(nil))
	}
	f.Add([]byte{1, 2, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := decodeNode(b)
		if err != nil {
			return
		}
		enc := n.appendEncoding(nil)
		if !bytes.Equal(enc, b) {
			t.Fatalf("decode then encode changed the bytes:\n%x\n%x", b, enc)
		}
		m, err := decodeNode(enc)
		if err != nil || m != n {
			t.Fatalf("round trip: %+v, %v", m, err)
		}
	})
}
