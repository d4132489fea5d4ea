package kernel

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/sos-kernel/sos/ledger"
)

// TestCrossNodeDeterminism runs a seeded random workload (transfers between
// random accounts, in random denoms, some failing) on a 3-node cluster, then
// checks that every node has the same state root at every height and that a
// fresh single node replaying the cluster's blocks reproduces each root.
func TestCrossNodeDeterminism(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d (rerun with the same seed by editing this line)", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	tc := newTestCluster(t, 3)
	tc.leader(5 * time.Second)
	nonces := map[int]uint64{}
	denoms := []string{"uTFLP", "uKWTT", "uTBS"}
	for round := 0; round < 6; round++ {
		for i := 0; i < 15; i++ {
			from := rng.IntN(len(tc.users))
			amount := uint64(rng.IntN(2_000_000_000_000)) // sometimes more than the balance: fails, pays the fee
			denom := denoms[rng.IntN(len(denoms))]
			tx := &ledger.Tx{Version: ledger.TxVersion, ChainID: "cluster-test", Nonce: nonces[from], GasLimit: 200_000,
				GasPrice: ledger.GasPrice{Denom: "uTFLP", Micro: uint64(10_000 + rng.IntN(5)*1000)},
				Payload:  &ledger.Transfer{To: tc.users[(from+1)%len(tc.users)].Address(), Amount: ledger.Coins{{Denom: denom, Amount: amount%1_000_000 + 1}}}}
			if rng.IntN(10) == 0 {
				tx.Payload = &ledger.Transfer{To: tc.users[(from+1)%len(tc.users)].Address(), Amount: ledger.Coins{{Denom: "uTFLP", Amount: amount}}}
			}
			if nonces[from] == 0 {
				tx.PubKey = tc.users[from].Public().Bytes()
			}
			if err := tc.codec.SignTx(tx, tc.users[from]); err != nil {
				t.Fatal(err)
			}
			raw, _ := tc.codec.EncodeTx(tx)
			if err := tc.submit(rng.IntN(3), raw); err == nil {
				nonces[from]++
			}
		}
		time.Sleep(time.Duration(50+rng.IntN(150)) * time.Millisecond)
	}
	want := nonces[0] + nonces[1]
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		st := ledger.NewState(tc.members[0].node.store)
		a0, _, _ := (&ledger.Accounts{St: st, Codec: tc.codec}).Get(tc.users[0].Address())
		a1, _, _ := (&ledger.Accounts{St: st, Codec: tc.codec}).Get(tc.users[1].Address())
		if a0.Nonce+a1.Nonce == want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	height := tc.converge(1, 15*time.Second)

	replay := openTestChain(t, t.TempDir(), tc.doc, tc.users)
	members, _ := MembersFromGenesis(replay.chain.genesis)
	keys := map[ledger.Address]ledger.PublicKey{}
	for _, m := range members {
		keys[m.PubKey.Address()] = m.PubKey
	}
	for h := uint64(1); h <= height; h++ {
		var root ledger.Hash
		for i, m := range tc.members {
			b, err := m.node.store.Block(h)
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				root = b.Header.StateRoot
				bb, err := replay.chain.ExecuteBlock(context.Background(), b, keys[b.Header.Proposer])
				if err != nil {
					t.Fatalf("replaying block %d on a single node: %v", h, err)
				}
				if err := replay.chain.Commit(bb); err != nil {
					t.Fatal(err)
				}
			} else if b.Header.StateRoot != root {
				t.Fatalf("height %d: node %d root %s, node 0 root %s", h, i, b.Header.StateRoot, root)
			}
		}
		if replay.store.Head().StateRoot != root {
			t.Fatalf("height %d: single-node replay root differs", h)
		}
	}
	t.Logf("%d heights, %d txs: identical state roots on 3 nodes and a single-node replay", height, want)
}
