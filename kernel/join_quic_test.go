package kernel

import (
	"context"
	"encoding/hex"
	"net"
	"testing"
	"time"

	"github.com/sos-kernel/sos/ledger"
)

// freeUDP returns a loopback address with a free UDP port.
func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// quicNode runs a node on the real QUIC transport from opts.
func quicNode(t *testing.T, opts NodeOptions) *Node {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.Listener = ln
	n, err := OpenNode(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		n.Close()
	})
	<-n.Ready()
	return n
}

// TestJoinOverQUIC is "sos init --join" end to end on loopback: a new node
// asks a member of a running 2-node cluster, over the authenticated QUIC
// join request, to admit it; it gets the genesis, starts, catches up as a
// learner and is promoted to voter.
func TestJoinOverQUIC(t *testing.T) {
	keys := []*ledger.PrivateKey{seededKey(t, 60), seededKey(t, 61)}
	addrs := []string{freeUDP(t), freeUDP(t)}
	g := &ledger.Genesis{ChainID: "join-test", GenesisTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Denoms: ledger.DefaultDenoms(), Params: ledger.DefaultParams()}
	for i, k := range keys {
		g.Nodes = append(g.Nodes, ledger.GenesisNode{PubKey: hex.EncodeToString(k.Public().Bytes()), Addr: addrs[i]})
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: k.Address(), Balances: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000_000}}})
	}
	doc, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var nodes []*Node
	for i, k := range keys {
		cfg := DefaultConfig()
		cfg.P2PAddr, cfg.BlockInterval = addrs[i], Duration{100 * time.Millisecond}
		nodes = append(nodes, quicNode(t, NodeOptions{Home: t.TempDir(), Config: cfg, GenesisDoc: doc, NodeKey: k}))
	}

	newKey := seededKey(t, 62)
	cfg := DefaultConfig()
	cfg.P2PAddr, cfg.BlockInterval = freeUDP(t), Duration{100 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A wrong node id for the address is refused before anything is sent.
	if _, err := JoinCluster(ctx, newKey, nodes[1].NodeID()+"@"+addrs[0], cfg.P2PAddr); err == nil {
		t.Fatal("join through the wrong node id succeeded")
	}
	var ans *JoinAnswer
	deadline := time.Now().Add(15 * time.Second)
	for {
		// The cluster may still be electing its first leader.
		if ans, err = JoinCluster(ctx, newKey, nodes[0].NodeID()+"@"+addrs[0], cfg.P2PAddr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("admitted after %s", time.Since(deadline.Add(-15*time.Second)))
	if string(ans.Genesis) != string(doc) {
		t.Fatal("the join answer carries another genesis")
	}
	home := t.TempDir()
	if err := WriteJoin(home, ans); err != nil {
		t.Fatal(err)
	}
	cfg.Join = nodes[0].NodeID() + "@" + addrs[0]
	joined := quicNode(t, NodeOptions{Home: home, Config: cfg, GenesisDoc: ans.Genesis, NodeKey: newKey})
	id := newKey.Public().Fingerprint()
	deadline = time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ms, _ := MembersFromLedger(joined.store)
		voter := false
		for _, m := range ms {
			voter = voter || (m.NodeID == id && m.Role == ledger.RoleVoter)
		}
		if voter && joined.store.Head().Height >= nodes[0].store.Head().Height-1 && joined.cluster.raft.Status().Role != "learner" {
			t.Logf("promoted after %s", time.Since(deadline.Add(-20*time.Second)))
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("joined node at height %d (cluster %d), role %s", joined.store.Head().Height, nodes[0].store.Head().Height, joined.cluster.raft.Status().Role)
}
