package smt

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// proofFixture is a tree with keys that share long prefixes, plus absent
// keys whose paths end both in empty subtrees and in other keys' leaves.
type proofFixture struct {
	tr      *Tree
	values  map[Hash][]byte
	present []Hash
	absent  []Hash
}

func newProofFixture(t testing.TB, n int) *proofFixture {
	t.Helper()
	r := newRand(t)
	g := &keyGen{r: r}
	f := &proofFixture{values: map[Hash][]byte{}}
	var cs []Change
	for range n {
		k := g.next()
		if _, ok := f.values[k]; ok {
			continue
		}
		v := randValue(r)
		f.values[k] = v
		f.present = append(f.present, k)
		cs = append(cs, Change{Key: k, Value: v})
	}
	for len(f.absent) < n {
		if k := g.next(); f.values[k] == nil {
			f.absent = append(f.absent, k)
		}
	}
	s := newMemStore()
	f.tr = New(s, Hash{}, 1<<12)
	commitAndApply(t, s, f.tr, mustUpdate(t, f.tr, cs))
	return f
}

func TestProofs(t *testing.T) {
	f := newProofFixture(t, 300)
	root := f.tr.Root()
	var endsInLeaf, endsEmpty int
	check := func(t *testing.T, k Hash, value []byte) {
		p, err := f.tr.Prove(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyProof(root, k, value, p); err != nil {
			t.Fatalf("key %v: %v", k, err)
		}
		// The other claim about the same key must fail.
		other := []byte("not the value")
		if value != nil {
			other = nil
		}
		if err := VerifyProof(root, k, other, p); !errors.Is(err, ErrInvalidProof) {
			t.Fatalf("key %v: opposite claim verified: %v", k, err)
		}
		// Binary and JSON round trips.
		q, err := UnmarshalProof(p.Marshal())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("binary round trip: %+v != %+v", p, q)
		}
		js, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var pj Proof
		if err := json.Unmarshal(js, &pj); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(p, &pj) {
			t.Fatalf("JSON round trip: %s", js)
		}
	}
	t.Run("inclusion", func(t *testing.T) {
		for _, k := range f.present {
			check(t, k, f.values[k])
		}
	})
	t.Run("non-inclusion", func(t *testing.T) {
		for _, k := range f.absent {
			check(t, k, nil)
			p, _ := f.tr.Prove(k)
			if p.Leaf != nil {
				endsInLeaf++
			} else {
				endsEmpty++
			}
		}
		if endsInLeaf == 0 || endsEmpty == 0 {
			t.Fatalf("fixture too narrow: %d proofs end in a leaf, %d in an empty subtree", endsInLeaf, endsEmpty)
		}
	})
	t.Run("empty tree", func(t *testing.T) {
		tr := New(newMemStore(), Hash{}, 0)
		p, err := tr.Prove(Hash{1})
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyProof(Hash{}, Hash{1}, nil, p); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("single leaf", func(t *testing.T) {
		s := newMemStore()
		tr := New(s, Hash{}, 0)
		commitAndApply(t, s, tr, mustUpdate(t, tr, []Change{{Key: Hash{1}, Value: []byte("v")}}))
		for _, k := range []Hash{{1}, {2}} {
			var v []byte
			if k == (Hash{1}) {
				v = []byte("v")
			}
			p, err := tr.Prove(k)
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyProof(tr.Root(), k, v, p); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// TestProofTampering: changing any bit of the encoded proof, the value, the
// key or the root must make verification fail.
func TestProofTampering(t *testing.T) {
	f := newProofFixture(t, 60)
	root := f.tr.Root()
	keys := append(append([]Hash(nil), f.present[:12]...), f.absent[:12]...)
	for _, k := range keys {
		value := f.values[k]
		p, err := f.tr.Prove(k)
		if err != nil {
			t.Fatal(err)
		}
		enc := p.Marshal()
		for i := range enc {
			for b := range 8 {
				bad := append([]byte(nil), enc...)
				bad[i] ^= 1 << b
				q, err := UnmarshalProof(bad)
				if err == nil {
					err = VerifyProof(root, k, value, q)
				}
				if !errors.Is(err, ErrInvalidProof) {
					t.Fatalf("key %v: proof with byte %d bit %d flipped accepted (%v)", k, i, b, err)
				}
			}
		}
		for i := range 32 {
			for b := range 8 {
				badRoot := root
				badRoot[i] ^= 1 << b
				if err := VerifyProof(badRoot, k, value, p); !errors.Is(err, ErrInvalidProof) {
					t.Fatalf("key %v: wrong root accepted", k)
				}
				badKey := k
				badKey[i] ^= 1 << b
				err := VerifyProof(root, badKey, value, p)
				// A non-inclusion proof also proves every other absent key
				// on the same path; it must never vouch for a present key.
				_, present := f.values[badKey]
				legit := value == nil && !present && i*8+(7-b) >= len(p.Siblings)
				if legit != (err == nil) {
					t.Fatalf("key %v with byte %d bit %d flipped: err %v, legit %v", k, i, b, err, legit)
				}
			}
		}
		if value != nil {
			for i := range value {
				bad := append([]byte(nil), value...)
				bad[i] ^= 0x40
				if err := VerifyProof(root, k, bad, p); !errors.Is(err, ErrInvalidProof) {
					t.Fatalf("key %v: wrong value accepted", k)
				}
			}
			if err := VerifyProof(root, k, append(value, 0), p); !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("key %v: extended value accepted", k)
			}
		}
	}
}

func TestVerifyProofRejects(t *testing.T) {
	f := newProofFixture(t, 20)
	root := f.tr.Root()
	k := f.present[0]
	good, err := f.tr.Prove(k)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		value   []byte
		p       *Proof
		wantErr error
	}{
		{"nil proof", f.values[k], nil, ErrInvalidProof},
		{"empty value", []byte{}, good, ErrEmptyValue},
		{"too deep", f.values[k], &Proof{Siblings: make([]Hash, MaxDepth+1), Leaf: good.Leaf}, ErrInvalidProof},
		{"dropped sibling", f.values[k], &Proof{Siblings: good.Siblings[1:], Leaf: good.Leaf}, ErrInvalidProof},
		{"extra empty sibling", f.values[k], &Proof{Siblings: append(append([]Hash(nil), good.Siblings...), Hash{}), Leaf: good.Leaf}, ErrInvalidProof},
		{"no leaf", nil, &Proof{Siblings: good.Siblings}, ErrInvalidProof},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := VerifyProof(root, k, tc.value, tc.p); !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
		})
	}
	// Proofs that hash to the root they are checked against but describe
	// no compact tree: the root is forged to match, so only the structural
	// checks can reject them.
	forged := []struct {
		name  string
		key   Hash
		value []byte
		p     *Proof
	}{
		{"leaf beside an empty sibling", Hash{}, []byte("v"), &Proof{Siblings: []Hash{{}}, Leaf: &ProofLeaf{Key: Hash{}, ValueHash: ValueHash([]byte("v"))}}},
		{"empty beside an empty sibling", Hash{}, nil, &Proof{Siblings: []Hash{{5}, {}}}},
		{"leaf off the key's path", Hash{0x80}, nil, &Proof{Siblings: []Hash{{5}}, Leaf: &ProofLeaf{Key: Hash{0x00}, ValueHash: Hash{6}}}},
	}
	for _, tc := range forged {
		t.Run("forged/"+tc.name, func(t *testing.T) {
			var cur Hash
			if tc.p.Leaf != nil {
				cur = LeafHash(tc.p.Leaf.Key, tc.p.Leaf.ValueHash)
			}
			for i := len(tc.p.Siblings) - 1; i >= 0; i-- {
				if bit(&tc.key, i) == 0 {
					cur = InternalHash(cur, tc.p.Siblings[i])
				} else {
					cur = InternalHash(tc.p.Siblings[i], cur)
				}
			}
			if err := VerifyProof(cur, tc.key, tc.value, tc.p); !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("err %v, want ErrInvalidProof", err)
			}
		})
	}
	t.Run("real leaf shown for another key", func(t *testing.T) {
		// A real leaf, shown at the end of another key's path, must not
		// count as that key's non-inclusion witness.
		other := withBit(k, 0, 1-bit(&k, 0))
		if err := VerifyProof(root, other, nil, good); !errors.Is(err, ErrInvalidProof) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestUnmarshalProofRejects(t *testing.T) {
	h := Hash{7}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"empty tree proof", []byte{1, 0, 0, 0}, true},
		{"one sibling", cat([]byte{1, 0, 0, 1, 0x80}, h[:]), true},
		{"leaf only", cat([]byte{1, 1, 0, 0}, h[:], h[:]), true},
		{"nothing", nil, false},
		{"short header", []byte{1, 0, 0}, false},
		{"bad version", []byte{2, 0, 0, 0}, false},
		{"bad flags", []byte{1, 2, 0, 0}, false},
		{"too deep", []byte{1, 0, 1, 1}, false},
		{"missing bitmap", []byte{1, 0, 0, 1}, false},
		{"bitmap bit past depth", cat([]byte{1, 0, 0, 1, 0xc0}, h[:], h[:]), false},
		{"missing sibling", []byte{1, 0, 0, 1, 0x80}, false},
		{"zero sibling marked present", cat([]byte{1, 0, 0, 1, 0x80}, make([]byte, 32)), false},
		{"truncated leaf", cat([]byte{1, 1, 0, 0}, h[:]), false},
		{"trailing byte", []byte{1, 0, 0, 0, 0}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := UnmarshalProof(tc.b)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidProof) {
				t.Fatalf("err %v does not wrap ErrInvalidProof", err)
			}
			if err == nil && string(p.Marshal()) != string(tc.b) {
				t.Fatal("re-encoding differs")
			}
		})
	}
}

func TestHashText(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"00000000000000000000000000000000000000000000000000000000000000ff", true},
		{"00000000000000000000000000000000000000000000000000000000000000f", false},
		{"00000000000000000000000000000000000000000000000000000000000000zz", false},
		{"", false},
	}
	for _, tc := range tests {
		var h Hash
		err := h.UnmarshalText([]byte(tc.in))
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v", tc.in, err)
		}
		if err == nil && h.String() != tc.in {
			t.Errorf("%q: round trip %s", tc.in, h)
		}
	}
}
