package smt_test

import (
	"crypto/sha256"
	"fmt"

	"github.com/sos-kernel/sos/ledger/smt"
)

// store is a minimal committed node store.
type store map[string][]byte

func (s store) GetNode(path []byte) ([]byte, error) { return s[string(path)], nil }

func Example() {
	s := store{}
	tree := smt.New(s, smt.Hash{}, 1024)

	alice := smt.Hash(sha256.Sum256([]byte("balance/alice")))
	bob := smt.Hash(sha256.Sum256([]byte("balance/bob")))
	p, err := tree.Update([]smt.Change{
		{Key: alice, Value: []byte("100")},
		{Key: bob, Value: []byte("5")},
	})
	if err != nil {
		panic(err)
	}
	for _, w := range p.Writes() { // commit, atomically in real life
		if w.Node == nil {
			delete(s, string(w.Path))
		} else {
			s[string(w.Path)] = w.Node
		}
	}
	tree.Apply(p)

	proof, err := tree.Prove(alice)
	if err != nil {
		panic(err)
	}
	root := tree.Root()
	fmt.Println("alice has 100:", smt.VerifyProof(root, alice, []byte("100"), proof) == nil)
	fmt.Println("alice has 999:", smt.VerifyProof(root, alice, []byte("999"), proof) == nil)

	carol := smt.Hash(sha256.Sum256([]byte("balance/carol")))
	proof, err = tree.Prove(carol)
	if err != nil {
		panic(err)
	}
	decoded, err := smt.UnmarshalProof(proof.Marshal())
	if err != nil {
		panic(err)
	}
	fmt.Println("carol absent:", smt.VerifyProof(root, carol, nil, decoded) == nil)
	// Output:
	// alice has 100: true
	// alice has 999: false
	// carol absent: true
}
