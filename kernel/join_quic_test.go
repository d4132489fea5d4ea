package kernel

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
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

// TestJoinOverQUIC is "sos init --join" and "sos cluster admit" end to
// end on loopback: a new node asks a member of a running 2-node cluster,
// over the authenticated QUIC join request, to admit it, listening on its
// p2p address meanwhile; the member dials that address back, records the
// request as pending and the node keeps asking. An operator lists the
// request through the API and admits it with a MemberAdd signed by the
// member's node key, as a voter-to-be; the node gets the genesis, starts,
// catches up as a learner and is promoted to voter. A node claiming an
// address it does not serve is refused, and a join token admits a node at
// once.
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
	peer := nodes[0].NodeID() + "@" + addrs[0]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	newKey := seededKey(t, 62)
	cfg := DefaultConfig()
	cfg.P2PAddr, cfg.BlockInterval = freeUDP(t), Duration{100 * time.Millisecond}
	// A wrong node id for the address is refused before anything is sent.
	if _, err := JoinCluster(ctx, JoinOptions{Key: newKey, Peer: nodes[1].NodeID() + "@" + addrs[0], P2PAddr: cfg.P2PAddr, Wait: 5 * time.Second}); err == nil {
		t.Fatal("join through the wrong node id succeeded")
	}
	// Claiming an address served by another node's key (a member's; the
	// net tests cover a closed port): refused.
	impostor := seededKey(t, 63)
	req, _ := ledger.NewCodec().Marshal(&joinRequest{P2PAddr: addrs[1]})
	_, err = sosnet.Join(ctx, impostor, addrs[0], sosnet.PeerID(nodes[0].NodeID()), req)
	if !errors.Is(err, sosnet.ErrJoinRefused) || !strings.Contains(err.Error(), "join address not verified") {
		t.Fatalf("join claiming a member's address: %v", err)
	}

	type result struct {
		ans *JoinAnswer
		err error
	}
	pending := make(chan error, 8)
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		ans, err := JoinCluster(ctx, JoinOptions{Key: newKey, Peer: peer, P2PAddr: cfg.P2PAddr, Wait: 40 * time.Second, Retry: 100 * time.Millisecond,
			Progress: func(err error) { pending <- err }})
		done <- result{ans, err}
	}()
	id := newKey.Public().Fingerprint()
	admin, err := client.New("http://" + nodes[0].APIAddr())
	if err != nil {
		t.Fatal(err)
	}
	var jr client.JoinRequest
	for jr.NodeID == "" {
		select {
		case err := <-pending:
			// The cluster may still be electing its first leader.
			if errors.Is(err, sosnet.ErrJoinPending) && strings.Contains(err.Error(), "sos cluster admit "+id) {
				reqs, err := admin.JoinRequests(ctx)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range reqs {
					if r.NodeID == id {
						jr = r
					}
				}
			}
		case r := <-done:
			t.Fatalf("join ended before admission: %+v", r)
		case <-ctx.Done():
			t.Fatal("no pending join request")
		}
	}
	t.Logf("pending after %s", time.Since(start))
	if jr.Address != cfg.P2PAddr || !jr.AddressVerified {
		t.Fatalf("pending request %+v", jr)
	}
	select {
	case r := <-done:
		t.Fatalf("joined without admission: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}
	if ms, _ := MembersFromLedger(nodes[0].store); len(ms) != 2 {
		t.Fatalf("members before admission: %+v", ms)
	}
	// 'sos cluster admit <id> --as voter --from node', through the API.
	add, err := AdmitPayload(jr, id, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := txbuild.New(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Send(ctx, keys[0], add, txbuild.Options{Wait: true}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	ans := r.ans
	t.Logf("admitted after %s", time.Since(start))
	if string(ans.Genesis) != string(doc) {
		t.Fatal("the join answer carries another genesis")
	}
	home := t.TempDir()
	if err := WriteJoin(home, ans); err != nil {
		t.Fatal(err)
	}
	cfg.Join = peer
	joined := quicNode(t, NodeOptions{Home: home, Config: cfg, GenesisDoc: ans.Genesis, NodeKey: newKey})
	deadline := time.Now().Add(20 * time.Second)
	promoted := false
	for !promoted && time.Now().Before(deadline) {
		ms, _ := MembersFromLedger(joined.store)
		for _, m := range ms {
			promoted = promoted || (m.NodeID == id && m.Role == ledger.RoleVoter)
		}
		promoted = promoted && joined.store.Head().Height >= nodes[0].store.Head().Height-1 && joined.cluster.raft.Status().Role != "learner"
		time.Sleep(50 * time.Millisecond)
	}
	if !promoted {
		t.Fatalf("joined node at height %d (cluster %d), role %s", joined.store.Head().Height, nodes[0].store.Head().Height, joined.cluster.raft.Status().Role)
	}
	t.Logf("promoted after %s", time.Since(start))

	// A join token minted in node 1's home admits a node at once.
	tok, _, err := MintJoinToken(nodes[1].opts.Home, time.Minute, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tokKey := seededKey(t, 64)
	tans, err := JoinCluster(ctx, JoinOptions{Key: tokKey, Peer: nodes[1].NodeID() + "@" + addrs[1], P2PAddr: freeUDP(t), Token: tok, Wait: 20 * time.Second, Retry: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if len(tans.Members) != 4 {
		t.Fatalf("token join answer lists %d members", len(tans.Members))
	}
}
