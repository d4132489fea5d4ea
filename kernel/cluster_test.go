package kernel

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
)

type testMember struct {
	key    *ledger.PrivateKey
	home   string
	node   *Node
	cancel context.CancelFunc
	done   chan error
	client *client.Client
}

type testCluster struct {
	t       *testing.T
	tune    func(*NodeOptions) // optional, applied to every node's options
	net     *memNet
	doc     []byte
	users   []*ledger.PrivateKey
	members []*testMember
	codec   *ledger.Codec
}

// newTestCluster starts n nodes with a shared genesis on an in-memory network.
func newTestCluster(t *testing.T, n int) *testCluster { return newTunedCluster(t, n, nil) }

// newTunedCluster is newTestCluster with node options adjusted by tune.
func newTunedCluster(t *testing.T, n int, tune func(*NodeOptions)) *testCluster {
	t.Helper()
	tc := &testCluster{t: t, net: newMemNet(), codec: ledger.NewCodec(), tune: tune}
	users := []*ledger.PrivateKey{seededKey(t, 1000), seededKey(t, 1001)}
	g := &ledger.Genesis{ChainID: "cluster-test", GenesisTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Denoms: ledger.DefaultDenoms(), Params: ledger.DefaultParams()}
	for _, u := range users {
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: u.Address(), Balances: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000_000_000}}})
	}
	for i := 0; i < n; i++ {
		k := seededKey(t, 50+i)
		tc.members = append(tc.members, &testMember{key: k, home: t.TempDir()})
		g.Nodes = append(g.Nodes, ledger.GenesisNode{PubKey: hex.EncodeToString(k.Public().Bytes()), Addr: fmt.Sprintf("mem:%d", i)})
		// Node accounts pay for the node's own transactions (membership changes).
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: k.Address(), Balances: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000_000}}})
	}
	doc, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tc.doc, tc.users = doc, users
	for i := range tc.members {
		tc.start(i)
	}
	t.Cleanup(func() {
		for i := range tc.members {
			tc.stop(i)
		}
	})
	return tc
}

func (tc *testCluster) start(i int) { tc.startWith(i, false) }

// startWith starts member i; join makes it start as a node joining the
// running cluster (its home must hold the join answer).
func (tc *testCluster) startWith(i int, join bool) {
	t := tc.t
	m := tc.members[i]
	cfg := DefaultConfig()
	cfg.BlockInterval = Duration{100 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pn := tc.net.join(m.key.Public().Fingerprint())
	opts := NodeOptions{Home: m.home, Config: cfg, GenesisDoc: tc.doc, NodeKey: m.key, Listener: ln, PeerNet: pn, Join: join}
	if tc.tune != nil {
		tc.tune(&opts)
	}
	node, err := OpenNode(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m.node, m.cancel, m.done = node, cancel, make(chan error, 1)
	go func() { m.done <- node.Run(ctx) }()
	<-node.Ready()
	m.client, _ = client.New("http://" + node.APIAddr())
}

func (tc *testCluster) stop(i int) {
	m := tc.members[i]
	if m.node == nil {
		return
	}
	left := tc.net.leave(m.key.Public().Fingerprint())
	m.cancel()
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		tc.t.Errorf("node %d did not stop", i)
	}
	select {
	case <-left:
	case <-time.After(10 * time.Second):
		tc.t.Errorf("node %d: a message handler did not return", i)
	}
	m.node.Close()
	m.node = nil
}

// leader waits (bounded) until some running node leads and returns its index.
func (tc *testCluster) leader(within time.Duration) int {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for i, m := range tc.members {
			if m.node != nil && m.node.cluster.raft.Status().Role == "leader" {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tc.t.Fatalf("no leader within %s", within)
	return -1
}

// converge waits until all running nodes are at the same height ≥ min with
// the same state root.
func (tc *testCluster) converge(min uint64, within time.Duration) uint64 {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		var h uint64
		var root ledger.Hash
		same := true
		for _, m := range tc.members {
			if m.node == nil {
				continue
			}
			head := m.node.store.Head()
			if h == 0 {
				h, root = head.Height, head.StateRoot
			} else if head.Height != h || head.StateRoot != root {
				same = false
			}
		}
		if same && h >= min {
			return h
		}
		time.Sleep(20 * time.Millisecond)
	}
	var hs []string
	for _, m := range tc.members {
		if m.node != nil {
			hs = append(hs, fmt.Sprint(m.node.store.Head().Height))
		}
	}
	tc.t.Fatalf("nodes did not converge to a common head ≥ %d within %s: heights %v", min, within, hs)
	return 0
}

func (tc *testCluster) submit(i int, raw []byte) error {
	res, code := tc.members[i].node.Submit(context.Background(), raw, false)
	if res.Error != "" {
		return fmt.Errorf("%d: %s", code, res.Error)
	}
	return nil
}

func (tc *testCluster) transfer(from *ledger.PrivateKey, nonce uint64, amount uint64) []byte {
	tx := &ledger.Tx{Version: ledger.TxVersion, ChainID: "cluster-test", Nonce: nonce, GasLimit: 200_000,
		GasPrice: ledger.GasPrice{Denom: "uTFLP", Micro: 10_000}, Payload: &ledger.Transfer{To: tc.users[1].Address(), Amount: ledger.Coins{{Denom: "uTFLP", Amount: amount}}}}
	if nonce == 0 {
		tx.PubKey = from.Public().Bytes()
	}
	if err := tc.codec.SignTx(tx, from); err != nil {
		tc.t.Fatal(err)
	}
	raw, _ := tc.codec.EncodeTx(tx)
	return raw
}

func TestClusterReplicatesAndAgrees(t *testing.T) {
	tc := newTestCluster(t, 3)
	tc.leader(5 * time.Second)
	alice := tc.users[0]
	// Submit to a follower: it forwards to the leader.
	l := tc.leader(time.Second)
	f := (l + 1) % 3
	for n := uint64(0); n < 20; n++ {
		if err := tc.submit(f, tc.transfer(alice, n, 1+n)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		a, _, _ := (&ledger.Accounts{St: ledger.NewState(tc.members[f].node.store), Codec: tc.codec}).Get(alice.Address())
		if a.Nonce == 20 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	h := tc.converge(1, 10*time.Second)
	for i, m := range tc.members {
		a, _, _ := (&ledger.Accounts{St: ledger.NewState(m.node.store), Codec: tc.codec}).Get(alice.Address())
		if a.Nonce != 20 {
			t.Fatalf("node %d: alice nonce %d at height %d", i, a.Nonce, h)
		}
	}
}

func TestClusterSurvivesLeaderLoss(t *testing.T) {
	tc := newTestCluster(t, 3)
	old := tc.leader(5 * time.Second)
	alice := tc.users[0]
	other := (old + 1) % 3
	for n := uint64(0); n < 5; n++ {
		if err := tc.submit(other, tc.transfer(alice, n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	before := tc.converge(2, 10*time.Second)
	start := time.Now()
	tc.stop(old)
	nl := tc.leader(5 * time.Second)
	if nl == old {
		t.Fatal("stopped node still leads")
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("new leader after %s (want ≤ 2 s)", took)
	}
	for n := uint64(5); n < 10; n++ {
		if err := tc.submit(nl, tc.transfer(alice, n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	after := tc.converge(before+2, 10*time.Second)
	// The stopped node comes back and catches up.
	tc.start(old)
	tc.converge(after+1, 15*time.Second)
}

func TestClusterPartitionedMinorityStalls(t *testing.T) {
	tc := newTestCluster(t, 3)
	l := tc.leader(5 * time.Second)
	minority := (l + 1) % 3
	tc.converge(2, 10*time.Second)
	tc.net.isolate(tc.members[minority].key.Public().Fingerprint(), true)
	stuck := tc.members[minority].node.store.Head().Height
	time.Sleep(1500 * time.Millisecond)
	maj := tc.members[l].node.store.Head().Height
	if got := tc.members[minority].node.store.Head().Height; got > stuck+1 {
		t.Fatalf("isolated node advanced from %d to %d", stuck, got)
	}
	if maj <= stuck+2 {
		t.Fatalf("majority did not keep committing: %d vs %d", maj, stuck)
	}
	tc.net.isolate(tc.members[minority].key.Public().Fingerprint(), false)
	tc.converge(maj+1, 15*time.Second)
}

// TestClusterFullRestart stops every node and starts them again from their
// stores: the membership must come back from the raft log and the cluster
// must elect a leader and go on.
func TestClusterFullRestart(t *testing.T) {
	tc := newTestCluster(t, 3)
	tc.leader(5 * time.Second)
	h := tc.converge(3, 10*time.Second)
	for i := range tc.members {
		tc.stop(i)
	}
	for i := range tc.members {
		tc.start(i)
	}
	tc.leader(5 * time.Second)
	tc.converge(h+2, 10*time.Second)
}
