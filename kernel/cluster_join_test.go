package kernel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
)

// memberRole is node i's view of node id's role on its ledger (0: absent).
func (tc *testCluster) memberRole(i int, id string) ledger.MemberRole {
	ms, err := MembersFromLedger(tc.members[i].node.store)
	if err != nil {
		tc.t.Fatal(err)
	}
	for _, m := range ms {
		if m.NodeID == id {
			return m.Role
		}
	}
	return 0
}

// waitFor polls cond (bounded) and fails with what when it stays false.
func (tc *testCluster) waitFor(within time.Duration, what string, cond func() bool) {
	tc.t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	tc.t.Fatalf("not within %s: %s", within, what)
}

// ask sends the join request of key, claiming addr (and carrying token),
// to member via's join handler (what the QUIC join request reaches).
func (tc *testCluster) ask(via int, key *ledger.PrivateKey, addr, token string) (*JoinAnswer, error) {
	req, _ := tc.codec.Marshal(&joinRequest{P2PAddr: addr, Token: token})
	raw, err := tc.members[via].node.handleJoin(context.Background(), key.Public(), req)
	if err != nil {
		return nil, err
	}
	var ans JoinAnswer
	if err := tc.codec.Unmarshal(raw, &ans); err != nil {
		tc.t.Fatal(err)
	}
	return &ans, nil
}

// admit is what 'sos cluster admit' does: read the pending request of id
// from member via's API and submit the MemberAdd signed by member by's
// node key.
func (tc *testCluster) admit(via, by int, id string, asVoter bool) {
	t := tc.t
	t.Helper()
	reqs, err := tc.members[via].client.JoinRequests(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		if r.NodeID != id {
			continue
		}
		add, err := AdmitPayload(r, id, asVoter)
		if err != nil {
			t.Fatal(err)
		}
		res, err := tc.members[by].node.submitNodeTx(context.Background(), add, true)
		if err != nil || res.Code != 0 {
			t.Fatalf("admitting %s: %v %+v", id, err, res)
		}
		// by waited for the commit; via answers the joiner only once it has
		// applied that block too.
		tc.waitFor(10*time.Second, "the member asked applied the admission", func() bool {
			return tc.members[via].node.store.Head().Height >= res.Height
		})
		return
	}
	t.Fatalf("no pending join request of %s on node %d: %+v", id, via, reqs)
}

// join has a new node ask member via to join, claiming address mem:<seed>
// (which it serves), an operator of via admit it (asVoter: to be promoted
// once caught up), and starts it; it returns the new member's index.
func (tc *testCluster) join(via, seed int, asVoter bool) int {
	t := tc.t
	key := seededKey(t, seed)
	addr := fmt.Sprintf("mem:%d", seed)
	tc.net.serve(addr, key.Public().Fingerprint())
	if _, err := tc.ask(via, key, addr, ""); !errors.Is(err, sosnet.ErrJoinPending) {
		t.Fatalf("join request via node %d: %v, want pending", via, err)
	}
	tc.admit(via, via, key.Public().Fingerprint(), asVoter)
	ans, err := tc.ask(via, key, addr, "")
	if err != nil {
		t.Fatalf("join via node %d after admission: %v", via, err)
	}
	return tc.startJoined(key, ans)
}

// startJoined writes the join answer into a new home and starts the node.
func (tc *testCluster) startJoined(key *ledger.PrivateKey, ans *JoinAnswer) int {
	t := tc.t
	m := &testMember{key: key, home: t.TempDir()}
	if err := WriteJoin(m.home, ans); err != nil {
		t.Fatal(err)
	}
	tc.members = append(tc.members, m)
	i := len(tc.members) - 1
	tc.startWith(i, true)
	return i
}

// TestClusterJoinPromoteRemove: a node joins a running cluster through a
// MemberAdd an operator signs with the intent that it vote, catches up as a
// raft learner, is promoted to voter by the leader's MemberPromote once
// caught up, and is removed again by a MemberRemove; the
// ledger and raft agree on the membership at every step and the cluster
// keeps committing.
func TestClusterJoinPromoteRemove(t *testing.T) {
	tc := newTestCluster(t, 3)
	l := tc.leader(5 * time.Second)
	alice := tc.users[0]
	for n := uint64(0); n < 5; n++ {
		if err := tc.submit(l, tc.transfer(alice, n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	tc.converge(2, 10*time.Second)

	// A funded account that is not a member cannot change membership.
	bob := tc.users[1]
	tx := &ledger.Tx{Version: ledger.TxVersion, ChainID: "cluster-test", Nonce: 0, GasLimit: 200_000, PubKey: bob.Public().Bytes(),
		GasPrice: ledger.GasPrice{Denom: "uTFLP", Micro: 10_000}, Payload: &ledger.MemberRemove{NodeID: tc.members[0].key.Public().Fingerprint()}}
	if err := tc.codec.SignTx(tx, bob); err != nil {
		t.Fatal(err)
	}
	raw, _ := tc.codec.EncodeTx(tx)
	if res, _ := tc.members[l].node.Submit(context.Background(), raw, true); res.Code != uint32(ledger.CodeUnauthorized) {
		t.Fatalf("a non-member's MemberRemove: code %d, error %q; want unauthorized", res.Code, res.Error)
	}

	j := tc.join((l+1)%3, 77, true)
	id := tc.members[j].key.Public().Fingerprint()
	if r := tc.memberRole(l, id); r != ledger.RoleLearner && r != ledger.RoleVoter {
		t.Fatalf("after the join answer the ledger says role %v", r)
	}
	rid := RaftID(id)
	tc.waitFor(15*time.Second, "joined node promoted to voter in ledger and raft", func() bool {
		li := tc.leader(5 * time.Second)
		st := tc.members[li].node.cluster.raft.Status()
		return tc.memberRole(li, id) == ledger.RoleVoter && slices.Contains(st.Voters, rid)
	})
	tc.converge(3, 15*time.Second)
	for n := uint64(5); n < 10; n++ {
		if err := tc.submit(j, tc.transfer(alice, n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	h := tc.converge(3, 15*time.Second)
	if got := tc.memberRole(j, id); got != ledger.RoleVoter {
		t.Fatalf("the new node's own ledger says role %v", got)
	}

	// Remove it again, by a transaction of the leader.
	l = tc.leader(5 * time.Second)
	if l == j {
		tc.members[l].node.cluster.raft.TransferLeadership(context.Background(), tc.members[0].node.cluster.self.RaftID)
		l = 0
		tc.waitFor(5*time.Second, "leadership moved", func() bool { return tc.members[0].node.cluster.raft.Status().Role == "leader" })
	}
	if _, err := tc.members[l].node.submitNodeTx(context.Background(), &ledger.MemberRemove{NodeID: id}, true); err != nil {
		t.Fatal(err)
	}
	tc.waitFor(10*time.Second, "removed node gone from raft", func() bool {
		st := tc.members[l].node.cluster.raft.Status()
		return !slices.Contains(st.Voters, rid) && !slices.Contains(st.Learners, rid)
	})
	tc.stop(j)
	tc.members = tc.members[:j]
	for n := uint64(10); n < 13; n++ {
		if err := tc.submit(l, tc.transfer(alice, n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	tc.converge(h+1, 10*time.Second)
	for i := range tc.members {
		if r := tc.memberRole(i, id); r != 0 {
			t.Fatalf("node %d still lists the removed member as %v", i, r)
		}
	}
}

// TestClusterStateSync: with the raft log compacted, a node joining late
// and a node that was down for a long time both receive a snapshot and
// install the leader's state instead of replaying blocks; they then follow
// the cluster with the same state root.
func TestClusterStateSync(t *testing.T) {
	tc := newTunedCluster(t, 3, func(o *NodeOptions) {
		o.Config.BlockInterval = Duration{10 * time.Millisecond}
		o.RaftCompactEvery = 20
	})
	l := tc.leader(5 * time.Second)
	alice := tc.users[0]
	for n := uint64(0); n < 10; n++ {
		if err := tc.submit(l, tc.transfer(alice, n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	down := (l + 1) % 3
	tc.converge(2, 10*time.Second)
	tc.stop(down)
	tc.waitFor(5*time.Second, "the stopped node's store closed", func() bool { return tc.members[down].node == nil })
	tc.waitFor(20*time.Second, "the cluster moves far past the stopped node", func() bool {
		return tc.members[l].node.store.Head().Height > 3*stateSyncMinGap
	})

	j := tc.join(l, 78, true)
	tc.start(down)
	downHead := tc.members[down].node.store.Head().Height
	h := tc.converge(3*stateSyncMinGap, 20*time.Second)
	for i, from := range map[int]uint64{j: 1, down: downHead + 1} {
		// A restarted node may first apply entries committed in its own log;
		// past those it must have skipped blocks (installed a snapshot).
		m := tc.members[i]
		missing := 0
		for height := from; height <= h; height++ {
			if _, err := m.node.store.Block(height); err != nil {
				missing++
			}
		}
		if missing == 0 {
			t.Errorf("node %d has every block from %d to %d: it should have installed a state snapshot instead of replaying blocks", i, from, h)
		}
		a, _, _ := (&ledger.Accounts{St: ledger.NewState(m.node.store), Codec: tc.codec}).Get(alice.Address())
		if a.Nonce != 10 {
			t.Fatalf("node %d: alice nonce %d after state sync", i, a.Nonce)
		}
	}
	// Both go on with the cluster.
	for n := uint64(10); n < 15; n++ {
		if err := tc.submit(j, tc.transfer(alice, n, 1)); err != nil {
			t.Fatal(err)
		}
	}
	tc.converge(h+2, 15*time.Second)
}

// TestClusterLeaderKilledMidLoad: transactions stream into a follower while
// the leader is stopped halfway; a new leader is elected within 2 s and
// every transaction the follower admitted commits (the follower hands its
// pending ones to the new leader), none twice.
func TestClusterLeaderKilledMidLoad(t *testing.T) {
	tc := newTestCluster(t, 3)
	old := tc.leader(5 * time.Second)
	f := (old + 1) % 3
	alice := tc.users[0]
	const total = 200
	var stopped time.Time
	for n := uint64(0); n < total; n++ {
		if n == total/2 {
			stopped = time.Now()
			tc.stop(old)
		}
		if err := tc.submit(f, tc.transfer(alice, n, 1)); err != nil {
			t.Fatalf("tx %d: %v", n, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	nl := tc.leader(5 * time.Second)
	if took := time.Since(stopped); nl == old || took > 2*time.Second+total/2*5*time.Millisecond {
		t.Fatalf("new leader %d after %s", nl, took)
	}
	tc.waitFor(20*time.Second, "every admitted transaction committed on the survivors", func() bool {
		for i, m := range tc.members {
			if i == old {
				continue
			}
			a, _, _ := (&ledger.Accounts{St: ledger.NewState(m.node.store), Codec: tc.codec}).Get(alice.Address())
			if a.Nonce != total {
				return false
			}
		}
		return true
	})
	// Each nonce committed exactly once: bob received exactly 1+…+1.
	b, _, _ := (&ledger.Accounts{St: ledger.NewState(tc.members[f].node.store), Codec: tc.codec}).Get(tc.users[1].Address())
	if got := b.Balances.AmountOf("uTFLP"); got != 1_000_000_000_000+total {
		t.Fatalf("bob holds %d uTFLP, want %d", got, 1_000_000_000_000+total)
	}
}
