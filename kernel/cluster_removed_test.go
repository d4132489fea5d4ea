package kernel

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sos-kernel/sos/ledger"
)

// removedOutcome waits (bounded) for member i's Run to return and puts the
// error back for tc.stop.
func (tc *testCluster) removedOutcome(i int, within time.Duration) error {
	m := tc.members[i]
	select {
	case err := <-m.done:
		m.done <- err
		return err
	case <-time.After(within):
		tc.t.Fatalf("node %d still runs %s after its removal (role %s)", i, within, m.node.cluster.raft.Status().Role)
		return nil
	}
}

// TestClusterRemovedNodeStops: a running member removed by a member_remove
// applies the block that removes it and stops with ErrRemoved "at height
// H" (before: it kept running as a pre-candidate forever, the others
// refusing it); the rest of the cluster goes on, and a restart of the
// removed home refuses with the same reason.
func TestClusterRemovedNodeStops(t *testing.T) {
	tc := newTestCluster(t, 4)
	l := tc.leader(5 * time.Second)
	v := (l + 1) % 4
	tc.converge(2, 10*time.Second)
	id := tc.members[v].key.Public().Fingerprint()
	if _, err := tc.members[l].node.submitNodeTx(context.Background(), &ledger.MemberRemove{NodeID: id}, true); err != nil {
		t.Fatal(err)
	}
	err := tc.removedOutcome(v, 10*time.Second)
	if !errors.Is(err, ErrRemoved) || !strings.Contains(err.Error(), "removed from the cluster at height") {
		t.Fatalf("removed node stopped with %v; want ErrRemoved at a height", err)
	}
	h, ok := removedAt(tc.members[v].node.store)
	if !ok || h < 2 {
		t.Fatalf("removal height recorded: %d, %v", h, ok)
	}
	tc.stop(v)
	// The others go on without it.
	alice := tc.users[0]
	l = tc.leader(5 * time.Second)
	for n := uint64(0); n < 3; n++ {
		if err := tc.submit(l, tc.transfer(alice, n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	tc.converge(h+1, 10*time.Second)
	tc.waitFor(10*time.Second, "removed node gone from raft", func() bool {
		st := tc.members[tc.leader(5*time.Second)].node.cluster.raft.Status()
		return !slices.Contains(st.Voters, RaftID(id))
	})
	// Its home says why it cannot run again.
	m := tc.members[v]
	cfg := DefaultConfig()
	_, err = OpenNode(NodeOptions{Home: m.home, Config: cfg, GenesisDoc: tc.doc, NodeKey: m.key, PeerNet: tc.net.join(id)})
	if !errors.Is(err, ErrRemoved) || !strings.Contains(err.Error(), "sos init --join") {
		t.Fatalf("restart of a removed home: %v; want ErrRemoved saying how to join again", err)
	}
	tc.net.leave(id)
}

// TestClusterRemovedWhileCutOff: a member cut off while it was removed
// never sees the block that removed it; once it can reach the others again
// they refuse it as a non-member, and it stops with ErrRemoved instead of
// campaigning forever.
func TestClusterRemovedWhileCutOff(t *testing.T) {
	tc := newTestCluster(t, 4)
	l := tc.leader(5 * time.Second)
	v := (l + 1) % 4
	tc.converge(2, 10*time.Second)
	id := tc.members[v].key.Public().Fingerprint()
	tc.net.isolate(id, true)
	if _, err := tc.members[l].node.submitNodeTx(context.Background(), &ledger.MemberRemove{NodeID: id}, true); err != nil {
		t.Fatal(err)
	}
	tc.waitFor(10*time.Second, "cut-off node gone from raft", func() bool {
		st := tc.members[l].node.cluster.raft.Status()
		return !slices.Contains(st.Voters, RaftID(id))
	})
	g := &tc.members[v].node.cluster.gone
	g.mu.Lock()
	g.grace = 300 * time.Millisecond
	g.mu.Unlock()
	tc.net.isolate(id, false)
	err := tc.removedOutcome(v, 10*time.Second)
	if !errors.Is(err, ErrRemoved) || !strings.Contains(err.Error(), "refuse its connections") {
		t.Fatalf("cut-off removed node stopped with %v; want ErrRemoved (refused)", err)
	}
}

// TestRemovalRefusals: refusals count only once they last the grace period,
// and a successful send to a peer ends its streak; other errors do not.
func TestRemovalRefusals(t *testing.T) {
	var r removal
	r.init()
	t0 := time.Unix(1000, 0)
	refused := errors.Join(errors.New("x"), ErrRefusedNotMember)
	r.sent(1, refused, t0)
	r.sent(2, refused, t0)
	r.sent(3, errors.New("timeout"), t0)
	if n := r.refusing([]uint64{1, 2, 3}, t0.Add(time.Second)); n != 0 {
		t.Fatalf("refusing within grace: %d", n)
	}
	r.sent(1, refused, t0.Add(time.Second)) // the streak keeps its start
	if n := r.refusing([]uint64{1, 2, 3}, t0.Add(removedGrace)); n != 2 {
		t.Fatalf("refusing after grace: %d, want 2", n)
	}
	r.sent(2, nil, t0.Add(removedGrace))
	r.sent(1, errors.New("unreachable"), t0.Add(removedGrace))
	if n := r.refusing([]uint64{1, 2, 3}, t0.Add(2*removedGrace)); n != 1 {
		t.Fatalf("after a success: %d, want 1", n)
	}
	if !r.set(ErrRemoved) || r.set(errors.New("second")) || r.reason() != ErrRemoved {
		t.Fatal("the first reason must win")
	}
	select {
	case <-r.done:
	default:
		t.Fatal("done not closed")
	}
}

// TestRemovedOverQUIC: on the real transport, a member removed while it
// was down is refused by the others when it comes back (the QUIC refusal
// maps to ErrRefusedNotMember) and stops with ErrRemoved, and a member
// removed while running applies its removal and stops "at height H".
func TestRemovedOverQUIC(t *testing.T) {
	keys := []*ledger.PrivateKey{seededKey(t, 70), seededKey(t, 71), seededKey(t, 72), seededKey(t, 73)}
	addrs := make([]string, len(keys))
	g := &ledger.Genesis{ChainID: "removed-test", GenesisTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Denoms: ledger.DefaultDenoms(), Params: ledger.DefaultParams()}
	for i, k := range keys {
		addrs[i] = freeUDP(t)
		g.Nodes = append(g.Nodes, ledger.GenesisNode{PubKey: hex.EncodeToString(k.Public().Bytes()), Addr: addrs[i]})
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: k.Address(), Balances: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000_000}}})
	}
	doc, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	homes := make([]string, len(keys))
	type running struct {
		n      *Node
		cancel context.CancelFunc
		done   chan error
	}
	start := func(i int, grace time.Duration) *running {
		if homes[i] == "" {
			homes[i] = t.TempDir()
		}
		cfg := DefaultConfig()
		cfg.P2PAddr, cfg.BlockInterval = addrs[i], Duration{100 * time.Millisecond}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		n, err := OpenNode(NodeOptions{Home: homes[i], Config: cfg, GenesisDoc: doc, NodeKey: keys[i], Listener: ln})
		if err != nil {
			t.Fatal(err)
		}
		n.cluster.gone.grace = grace // before Run: no one reads it yet
		ctx, cancel := context.WithCancel(context.Background())
		r := &running{n: n, cancel: cancel, done: make(chan error, 1)}
		go func() { r.done <- n.Run(ctx) }()
		<-n.Ready()
		return r
	}
	stop := func(r *running) error {
		r.cancel()
		err := <-r.done
		r.n.Close()
		return err
	}
	nodes := make([]*running, len(keys))
	for i := range keys {
		nodes[i] = start(i, 300*time.Millisecond)
	}
	defer func() {
		for _, r := range nodes {
			if r != nil {
				stop(r)
			}
		}
	}()
	leader := func() int {
		deadline := time.Now().Add(15 * time.Second)
		for time.Now().Before(deadline) {
			for i, r := range nodes {
				if r != nil && r.n.cluster.raft.Status().Role == "leader" {
					return i
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatal("no leader")
		return -1
	}
	l := leader()
	down := (l + 1) % 4
	stop(nodes[down])
	nodes[down] = nil
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := nodes[l].n.submitNodeTx(ctx, &ledger.MemberRemove{NodeID: keys[down].Public().Fingerprint()}, true); err != nil {
		t.Fatal(err)
	}
	back := start(down, 300*time.Millisecond)
	select {
	case err := <-back.done:
		back.n.Close()
		if !errors.Is(err, ErrRemoved) || !strings.Contains(err.Error(), "refuse its connections") {
			t.Fatalf("removed-while-down node stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		stop(back)
		t.Fatal("the node removed while down still runs 20 s after coming back")
	}

	l = leader()
	v := (l + 1) % 4
	if nodes[v] == nil {
		v = (v + 1) % 4
	}
	if _, err := nodes[l].n.submitNodeTx(ctx, &ledger.MemberRemove{NodeID: keys[v].Public().Fingerprint()}, true); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-nodes[v].done:
		nodes[v].n.Close()
		nodes[v] = nil
		if !errors.Is(err, ErrRemoved) || !strings.Contains(err.Error(), "at height") {
			t.Fatalf("removed running node stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the removed running node still runs after 20 s")
	}
}

// TestRemovedWhileReplaying: a node that applies its own removal while far
// behind the cluster (replaying old blocks: a later block might add it
// again) keeps going, and stops once the voters refuse it for the grace
// period, with the height it was removed at.
func TestRemovedWhileReplaying(t *testing.T) {
	tc := newTestCluster(t, 3)
	l := tc.leader(5 * time.Second)
	v := (l + 1) % 3
	tc.converge(2, 10*time.Second)
	c := tc.members[v].node.cluster
	head := tc.members[v].node.store.Head().Height
	c.catchUp.see(head + 100) // the cluster is far ahead
	c.removedSelf(head)
	select {
	case <-c.gone.done:
		t.Fatal("a node replaying old blocks stopped at a removal a later block may undo")
	default:
	}
	if _, ok := removedAt(tc.members[v].node.store); ok {
		t.Fatal("removal recorded while behind")
	}
	c.memMu.Lock()
	c.selfListed = false // its ledger no longer lists it
	c.memMu.Unlock()
	// Cut off, so no real send succeeds (which would end a refusal streak)
	// while the refusals below are fed in.
	tc.net.isolate(tc.members[v].key.Public().Fingerprint(), true)
	now := time.Now()
	for _, m := range c.memberList() {
		if m.NodeID != c.node.nodeID {
			c.gone.sent(m.RaftID, ErrRefusedNotMember, now.Add(-removedGrace))
		}
	}
	c.checkRefused(now)
	err := tc.removedOutcome(v, 5*time.Second)
	if !errors.Is(err, ErrRemoved) || !strings.Contains(err.Error(), fmt.Sprintf("at height %d", head)) {
		t.Fatalf("stopped with %v", err)
	}
}
