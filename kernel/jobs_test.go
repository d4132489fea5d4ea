package kernel

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"testing"
	"time"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

// TestJobsThroughChain delivers job transactions through BuildBlock,
// re-executes every block on a follower (same state roots: the job rules
// and the committee draw from the previous block hash are deterministic)
// and checks that a job timing out at the end of a block is reported in
// the block's end events on both nodes.
func TestJobsThroughChain(t *testing.T) {
	node := seededKey(t, 0)
	users := []*ledger.PrivateKey{seededKey(t, 1000), seededKey(t, 1001), seededKey(t, 1002)}
	prov, cons, exec := users[0], users[1], users[2] // exec holds the key of the provider's node
	funds := ledger.Coins{{Denom: "uTBS", Amount: 1_000_000_000}, {Denom: "uTFLP", Amount: 1_000_000_000_000}}
	g := &ledger.Genesis{ChainID: "test-chain", GenesisTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Denoms: ledger.DefaultDenoms(), Params: ledger.DefaultParams(),
		Nodes: []ledger.GenesisNode{{PubKey: hex.EncodeToString(node.Public().Bytes())}}}
	for _, u := range append([]*ledger.PrivateKey{node}, users...) {
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: u.Address(), Balances: funds})
	}
	rj, gj, err := rome.GenesisSections(node.Public())
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	_ = json.Unmarshal(rj, &r)
	r["epoch_blocks"] = 3
	r["jobs"] = map[string]any{"gas_per_compute_unit": 1000, "timeout_blocks": 2, "challenge_blocks": 2, "verdict_blocks": 2,
		"challenge_deposit": "1000uTFLP", "verify_all_gas": 10} // every job is "large": the committee is drawn
	rj, _ = json.Marshal(r)
	g.Extra = map[string]json.RawMessage{"rome": rj, "gov": gj}
	doc, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	leader := openTestChain(t, t.TempDir(), doc, users)
	follower := openTestChain(t, t.TempDir(), doc, users)
	block := func(txs ...*PendingTx) *BuiltBlock {
		t.Helper()
		bb := leader.block(t, txs...)
		fb, err := follower.chain.ExecuteBlock(context.Background(), bb.Block, leader.nodeKey.Public())
		if err != nil {
			t.Fatalf("follower, block %d: %v", bb.Block.Header.Height, err)
		}
		if err := follower.chain.Commit(fb); err != nil {
			t.Fatal(err)
		}
		if len(fb.EndEvents) != len(bb.EndEvents) {
			t.Fatalf("block %d: end events differ: leader %v, follower %v", bb.Block.Header.Height, bb.EndEvents, fb.EndEvents)
		}
		for i, r := range bb.Receipts {
			if r.Code != ledger.CodeOK {
				t.Fatalf("block %d tx %d: %s", bb.Block.Header.Height, i, r.Error)
			}
		}
		return bb
	}
	block(leader.tx(t, prov, &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 1, Amount: 10}}, Price: []ledger.ResourceAmount{{Kind: 1, Amount: 5}},
		Node: exec.Address(), Bond: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000}}}, 1_000_000),
		leader.tx(t, cons, &ledger.RomeRequest{Demand: []ledger.ResourceAmount{{Kind: 1, Amount: 10}}, MaxPrice: []ledger.ResourceAmount{{Kind: 1, Amount: 5}}, Epochs: 3}, 1_000_000))
	block()
	block() // the end of epoch 0 makes lease 1
	m := leader.chain.Market()
	submit := &ledger.JobSubmit{LeaseID: 1, Module: ledger.BlobRef{ID: ledger.BlobID{1}, Size: 100}, GasLimit: 4000, MemoryLimit: 1 << 20, OutputLimit: 1 << 10}
	block(leader.tx(t, cons, submit, 1_000_000), leader.tx(t, cons, submit, 1_000_000))
	res := &ledger.JobResult{JobID: 1, Class: ledger.JobExited, GasUsed: 1234, Stdout: ledger.BlobRef{ID: ledger.BlobID{2}}, Stderr: ledger.BlobRef{ID: ledger.BlobID{3}}}
	res.OutputRoot = rome.OutputRoot(nil, res.Stdout, res.Stderr)
	block(leader.tx(t, exec, res, 1_000_000))
	bb := block() // job 2's deadline: it times out at the end of this block
	timedOut := false
	for _, e := range bb.EndEvents {
		timedOut = timedOut || e.Type == "job_timeout"
	}
	if !timedOut {
		t.Fatalf("no job_timeout in the end events %+v", bb.EndEvents)
	}
	st := ledger.NewState(leader.store)
	j2, err := m.Job(st, 2)
	if err != nil || j2.Status != rome.JobTimeout {
		t.Fatalf("job 2: %+v %v", j2, err)
	}
	// A challenge draws the committee from the previous block's hash: the
	// follower reaches the same state.
	claim := ledger.JobOutcome{ExitCode: 1, GasUsed: 1234, OutputRoot: res.OutputRoot, Stdout: res.Stdout.ID}
	block(leader.tx(t, cons, &ledger.JobChallenge{JobID: 1, Outcome: claim}, 1_000_000))
	j1, err := m.Job(ledger.NewState(leader.store), 1)
	if err != nil || j1.Status != rome.JobChallenged || len(j1.Dispute.Committee) != 1 || j1.Dispute.Committee[0] != node.Address() {
		t.Fatalf("job 1: %+v %v", j1, err)
	}
	block(leader.tx(t, node, &ledger.JobVerdict{JobID: 1, Outcome: claim}, 1_000_000))
	j1, _ = m.Job(ledger.NewState(leader.store), 1)
	if j1.Status != rome.JobSlashed {
		t.Fatalf("job 1 after the verdict: %s", rome.JobStatusName(j1.Status))
	}
	if leader.store.Head().StateRoot != follower.store.Head().StateRoot {
		t.Fatal("leader and follower disagree")
	}
}
