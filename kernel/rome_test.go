package kernel

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

// newRomeTestChain is newTestChain with the node key as the genesis node
// (certificate issuer, governance member, funded) and short epochs.
func newRomeTestChain(t testing.TB, epochBlocks uint64) *testNet {
	t.Helper()
	node := seededKey(t, 0)
	users := []*ledger.PrivateKey{seededKey(t, 1000), seededKey(t, 1001), seededKey(t, 1002)}
	funds := ledger.Coins{{Denom: "uKWTT", Amount: 1_000_000_000}, {Denom: "uTFLP", Amount: 1_000_000_000_000}}
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
	r["epoch_blocks"], r["cert_period_epochs"] = epochBlocks, 1
	rj, _ = json.Marshal(r)
	g.Extra = map[string]json.RawMessage{"rome": rj, "gov": gj}
	doc, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return openTestChain(t, t.TempDir(), doc, users)
}

// TestRomeEpochThroughChain drives the market with signed transactions
// through BuildBlock, re-executes every block on a follower (same receipts
// and state root: epoch processing is deterministic) and checks receipt
// codes of market errors.
func TestRomeEpochThroughChain(t *testing.T) {
	leader := newRomeTestChain(t, 3)
	follower := openTestChain(t, t.TempDir(), leader.doc, leader.users)
	prov, cons, other := leader.users[0], leader.users[1], leader.users[2]
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
		return bb
	}
	offer := &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 1, Amount: 100}, {Kind: 3, Amount: 50}},
		Price: []ledger.ResourceAmount{{Kind: 1, Amount: 5}, {Kind: 3, Amount: 1}}, Region: "eu-west"}
	req := &ledger.RomeRequest{Demand: []ledger.ResourceAmount{{Kind: 1, Amount: 10}, {Kind: 3, Amount: 5}},
		MaxPrice: []ledger.ResourceAmount{{Kind: 1, Amount: 8}, {Kind: 3, Amount: 2}}, Epochs: 2, Region: "eu-west"}
	bb := block(leader.tx(t, prov, offer, 1_000_000), leader.tx(t, cons, req, 1_000_000),
		leader.tx(t, other, &ledger.RomeCancel{ID: 1}, 1_000_000))
	want := []ledger.Code{ledger.CodeOK, ledger.CodeOK, ledger.CodeUnauthorized}
	for i, r := range bb.Receipts {
		if r.Code != want[i] {
			t.Fatalf("receipt %d: code %s (%s), want %s", i, r.Code, r.Error, want[i])
		}
	}
	m := leader.chain.Market()
	var leases []rome.Lease
	for i := 0; i < 5 && len(leases) == 0; i++ {
		block()
		leases, _ = m.Leases(ledger.NewState(leader.store), 0, nil)
	}
	if len(leases) != 1 {
		t.Fatalf("no lease after an epoch")
	}
	l := leases[0]
	// Wait for the lease's first epoch, then both parties attest.
	for {
		c, _ := m.Clock(ledger.NewState(leader.store))
		if c.Epoch >= l.Start {
			break
		}
		block()
	}
	rep := &ledger.RomeUsage{LeaseID: l.ID, Epoch: l.Start, Delivered: []ledger.ResourceAmount{{Kind: 1, Amount: 10}, {Kind: 3, Amount: 5}}}
	bb = block(leader.tx(t, prov, rep, 1_000_000), leader.tx(t, cons, rep, 1_000_000))
	for _, r := range bb.Receipts {
		if r.Code != ledger.CodeOK {
			t.Fatalf("usage: %s", r.Error)
		}
	}
	for i := 0; i < 12; i++ { // settled one epoch later, closed after its last epoch is paid
		block()
	}
	st := ledger.NewState(leader.store)
	pend, err := rome.PendingSignatures(st, leader.codec, leader.nodeKey.Public(), 10)
	if err != nil || len(pend) != 2 {
		t.Fatalf("pending certificates %d, %v", len(pend), err)
	}
	// The node's hook: sign each statement and submit it as a transaction.
	var txs []*PendingTx
	for i := range pend {
		p, err := rome.SignPayload(leader.codec, leader.nodeKey, &pend[i])
		if err != nil {
			t.Fatal(err)
		}
		txs = append(txs, leader.tx(t, leader.nodeKey, p, 1_000_000))
	}
	bb = block(txs...)
	for _, r := range bb.Receipts {
		if r.Code != ledger.CodeOK {
			t.Fatalf("cert sign: %s", r.Error)
		}
	}
	certs, _ := m.Certificates(ledger.NewState(leader.store), 0, nil)
	for _, c := range certs {
		f := c.File()
		if err := rome.VerifyFile(&f, nil); err != nil {
			t.Fatalf("certificate %d: %v", c.Statement.ID, err)
		}
	}
	r, _ := m.Request(ledger.NewState(leader.store), 2)
	if r.Status != rome.StatusDone {
		t.Fatalf("request %s after its lease ended", rome.StatusName(r.Status))
	}
	if got := leader.balance(t, rome.EscrowAccount, "uTFLP"); got != 0 {
		t.Fatalf("escrow keeps %d uTFLP", got)
	}
}

// startRomeNode runs a node of a market chain (3-block epochs, 20 ms
// blocks) and returns its API client, a tx builder and a 60 s context.
func startRomeNode(t *testing.T) (*testNet, *Node, *client.Client, *txbuild.Builder, context.Context) {
	t.Helper()
	tn := newRomeTestChain(t, 3)
	cfg := DefaultConfig()
	cfg.BlockInterval = Duration{20 * time.Millisecond}
	n, c := startTestNode(t, tn, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	b, err := txbuild.New(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return tn, n, c, b, ctx
}

// TestRomeNodeSignsCertificates runs a node: an offer and a request over
// the API become a lease, attested usage becomes certificates, and the
// node signs them by itself.
func TestRomeNodeSignsCertificates(t *testing.T) {
	tn, _, c, b, ctx := startRomeNode(t)
	send := func(k *ledger.PrivateKey, p ledger.Payload) {
		t.Helper()
		res, err := b.Send(ctx, k, p, txbuild.Options{Wait: true})
		if err != nil {
			t.Fatalf("%s: %v", p.Kind(), err)
		}
		if res.Code != 0 {
			t.Fatalf("%s: code %d", p.Kind(), res.Code)
		}
	}
	prov, cons := tn.users[0], tn.users[1]
	send(prov, &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 1, Amount: 100}}, Price: []ledger.ResourceAmount{{Kind: 1, Amount: 5}}})
	send(cons, &ledger.RomeRequest{Demand: []ledger.ResourceAmount{{Kind: 1, Amount: 10}}, MaxPrice: []ledger.ResourceAmount{{Kind: 1, Amount: 8}}, Epochs: 20})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		certs, err := c.Certificates(ctx, prov.Address().String())
		if err == nil && len(certs) > 0 && certs[0].Status == "signed" {
			mk, _ := c.RomeMarket(ctx)
			t.Logf("certificate %d signed; market: epoch %d, utilization %v", certs[0].Statement.ID, mk.Epoch, mk.Utilization)
			// What the API serves ('sos cert show -o json') verifies
			// offline: every signed field of the statement is in it.
			one, err := c.Certificate(ctx, certs[0].Statement.ID)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(one)
			var f rome.CertFile
			if err := json.Unmarshal(raw, &f); err != nil {
				t.Fatal(err)
			}
			if err := rome.VerifyFile(&f, nil); err != nil {
				t.Fatalf("the certificate file the API serves does not verify: %v\n%s", err, raw)
			}
			return
		}
		leases, err := c.RomeLeases(ctx, client.RomeFilter{Status: "active"})
		if err == nil && len(leases) > 0 {
			mk, err := c.RomeMarket(ctx)
			if err == nil && mk.Epoch >= leases[0].StartEpoch && mk.Epoch < leases[0].EndEpoch {
				rep := &ledger.RomeUsage{LeaseID: leases[0].ID, Epoch: mk.Epoch, Delivered: []ledger.ResourceAmount{{Kind: 1, Amount: 10}}}
				// Either report may land in the next epoch and be refused; retry.
				_, _ = b.Send(ctx, prov, rep, txbuild.Options{Wait: true})
				_, _ = b.Send(ctx, cons, rep, txbuild.Options{Wait: true})
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no signed certificate within 30 s")
}

// TestGovMinGasPricesReachMempool: a passed governance proposal setting the
// market parameter min_gas_prices becomes a floor every node's mempool
// enforces, on top of the node's own minimums.
func TestGovMinGasPricesReachMempool(t *testing.T) {
	tn, n, _, b, ctx := startRomeNode(t)
	cheap := txbuild.Options{Wait: true, GasPrice: ledger.GasPrice{Denom: "uTFLP", Micro: 10_000}} // 0.01uTFLP
	send := func(k *ledger.PrivateKey, p ledger.Payload, o txbuild.Options) (*client.SubmitResult, error) {
		t.Helper()
		return b.Send(ctx, k, p, o)
	}
	bob := tn.users[1]
	if _, err := send(tn.users[0], &ledger.Transfer{To: bob.Address(), Amount: ledger.Coins{{Denom: "uTFLP", Amount: 1}}}, cheap); err != nil {
		t.Fatalf("before the proposal: %v", err)
	}
	res, err := send(tn.nodeKey, &ledger.GovPropose{Title: "raise the fee floor", Param: "min_gas_prices", Value: "1uTFLP"}, cheap)
	if err != nil {
		t.Fatal(err)
	}
	var id uint64
	for _, e := range res.Receipt.Events {
		for _, a := range e.Attrs {
			if a.Key == "proposal_id" {
				_ = json.Unmarshal([]byte(a.Value), &id)
			}
		}
	}
	if id == 0 {
		t.Fatalf("no proposal id in %+v", res.Receipt.Events)
	}
	if _, err := send(tn.nodeKey, &ledger.GovVote{ProposalID: id, Option: ledger.VoteYes}, cheap); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for n.mempool.chainMin.Load() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the passed proposal never reached the mempool")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err = send(tn.users[0], &ledger.Transfer{To: bob.Address(), Amount: ledger.Coins{{Denom: "uTFLP", Amount: 1}}}, cheap)
	if err == nil || !strings.Contains(err.Error(), "chain's minimum") {
		t.Fatalf("a tx below the governance floor: %v", err)
	}
	dear := cheap
	dear.GasPrice.Micro = 1_000_000 // 1uTFLP
	if _, err := send(tn.users[0], &ledger.Transfer{To: bob.Address(), Amount: ledger.Coins{{Denom: "uTFLP", Amount: 1}}}, dear); err != nil {
		t.Fatalf("a tx at the floor: %v", err)
	}
}
