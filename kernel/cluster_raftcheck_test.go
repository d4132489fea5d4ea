package kernel

import (
	"context"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
	"github.com/sos-kernel/sos/net/raftnode"
)

// TestRaftMessagesFromAMemberAreChecked: a member connected over QUIC with
// its own key sends a follower and the leader every kind of spoofed,
// local-only and malformed raft message, the reported attack first (a
// heartbeat in the leader's name committing 2^40, which ended the process).
// Each is dropped and counted under its reason, no node halts, and the
// cluster goes on committing.
func TestRaftMessagesFromAMemberAreChecked(t *testing.T) {
	keys := []*ledger.PrivateKey{seededKey(t, 63), seededKey(t, 64), seededKey(t, 65)}
	addrs := []string{freeUDP(t), freeUDP(t), freeUDP(t)}
	g := &ledger.Genesis{ChainID: "raftcheck-test", GenesisTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Denoms: ledger.DefaultDenoms(), Params: ledger.DefaultParams()}
	for i, k := range keys {
		g.Nodes = append(g.Nodes, ledger.GenesisNode{PubKey: hex.EncodeToString(k.Public().Bytes()), Addr: addrs[i]})
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: k.Address(), Balances: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000_000}}})
	}
	doc, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	// Nodes 0 and 1 run (a quorum of the three voters); key 2 is the member
	// that misbehaves, with a bare transport.
	var nodes []*Node
	for i := range 2 {
		cfg := DefaultConfig()
		cfg.P2PAddr, cfg.BlockInterval = addrs[i], Duration{100 * time.Millisecond}
		nodes = append(nodes, quicNode(t, NodeOptions{Home: t.TempDir(), Config: cfg, GenesisDoc: doc, NodeKey: keys[i]}))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	evil, err := sosnet.Listen(ctx, sosnet.Config{ListenAddr: addrs[2], Key: keys[2], ChainID: g.ChainID, GenesisHash: nodes[0].store.Head().Genesis})
	if err != nil {
		t.Fatal(err)
	}
	defer evil.Close()
	if err := evil.SetMembers([]sosnet.Member{{Key: keys[0].Public(), Addr: addrs[0]}, {Key: keys[1].Public(), Addr: addrs[1]}}); err != nil {
		t.Fatal(err)
	}
	var l, f *Node
	deadline := time.Now().Add(15 * time.Second)
	for l == nil && time.Now().Before(deadline) {
		for i, n := range nodes {
			if n.cluster.raft.Status().Role == "leader" && n.store.Head().Height >= 2 {
				l, f = n, nodes[1-i]
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if l == nil {
		t.Fatal("no leader committing blocks")
	}
	term := f.cluster.raft.Status().Term
	L, F, A := RaftID(l.NodeID()), RaftID(f.NodeID()), RaftID(keys[2].Public().Fingerprint())
	m := func(typ pb.MessageType, from, to, term uint64, set ...func(*pb.Message)) []byte {
		msg := &pb.Message{Type: typ.Enum(), From: &from, To: &to, Term: &term}
		for _, s := range set {
			s(msg)
		}
		b, err := proto.Marshal(msg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	u := func(v uint64) *uint64 { return &v }
	removeLeader, _ := proto.Marshal(&pb.ConfChange{Type: pb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: u(L)})
	snap := func(cs *pb.ConfState, data []byte) func(*pb.Message) {
		return func(m *pb.Message) {
			m.Snapshot = &pb.Snapshot{Data: data, Metadata: &pb.SnapshotMetadata{Index: u(1 << 20), Term: u(term + 1), ConfState: cs}}
		}
	}
	sends := []struct {
		to     *Node
		frame  []byte
		reason string
	}{
		{f, m(pb.MessageType_MsgHeartbeat, L, F, term, func(m *pb.Message) { m.Commit = u(1 << 40) }), raftnode.DropSpoofed},
		{f, m(pb.MessageType_MsgHeartbeat, A, F, term+1, func(m *pb.Message) { m.Commit = u(1 << 40) }), raftnode.DropOutOfRange},
		{f, m(pb.MessageType_MsgHeartbeat, A, F, term), raftnode.DropNotLeader},
		{f, m(pb.MessageType_MsgTimeoutNow, A, F, term), raftnode.DropNotLeader},
		{f, m(pb.MessageType_MsgApp, A, F, term+1, func(m *pb.Message) {
			m.Index, m.LogTerm = u(5), u(1)
			m.Entries = []*pb.Entry{{Index: u(1), Term: u(term + 1), Data: []byte("not a block")}}
		}), raftnode.DropMalformed},
		{f, m(pb.MessageType_MsgApp, A, F, 0), raftnode.DropMalformed},
		{f, []byte("\xff\xff\xff not a raft message"), raftnode.DropMalformed},
		{f, m(pb.MessageType_MsgSnap, A, F, term+1, snap(&pb.ConfState{Voters: []uint64{F, F}}, nil)), raftnode.DropBadConf},
		{f, m(pb.MessageType_MsgSnap, A, F, term+1, snap(&pb.ConfState{Voters: []uint64{L, F, A}}, []byte("not a head"))), raftnode.DropBadSnapshot},
		{f, m(pb.MessageType_MsgHeartbeat, A, L, term), raftnode.DropMisaddressed},
		{f, m(pb.MessageType_MsgHup, A, F, term), raftnode.DropLocalType},
		{f, m(pb.MessageType_MsgBeat, A, F, term), raftnode.DropLocalType},
		{f, m(pb.MessageType_MsgTransferLeader, A, F, term), raftnode.DropLocalType},
		{f, m(pb.MessageType_MsgReadIndex, A, F, term), raftnode.DropLocalType},
		{f, m(pb.MessageType_MsgForgetLeader, A, F, term), raftnode.DropLocalType},
		{f, m(pb.MessageType_MsgStorageAppend, A, F, term), raftnode.DropLocalType},
		{f, m(pb.MessageType_MsgStorageApplyResp, A, F, term), raftnode.DropLocalType},
		{l, m(pb.MessageType_MsgAppResp, A, L, term, func(m *pb.Message) { m.Index = u(1 << 40) }), raftnode.DropOutOfRange},
		{l, m(pb.MessageType_MsgProp, A, L, 0, func(m *pb.Message) {
			m.Entries = []*pb.Entry{{Type: pb.EntryType_EntryConfChange.Enum(), Data: removeLeader}}
		}), raftnode.DropLocalType},
		{l, m(pb.MessageType_MsgHeartbeat, F, L, term), raftnode.DropSpoofed},
	}
	want := map[*Node]map[string]float64{l: {}, f: {}}
	for i, s := range sends {
		kind := sosnet.KindConsensus
		if i%2 == 1 {
			kind = sosnet.KindReplication // both raft streams take the same path
		}
		if err := evil.Send(ctx, sosnet.PeerID(s.to.NodeID()), kind, s.frame); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		want[s.to][s.reason]++
	}
	counted := func() error {
		for n, reasons := range want {
			for reason, w := range reasons {
				if got := metricValue(t, n, "sos_raft_messages_dropped_total", "reason", reason); got != w {
					return fmt.Errorf("%s: %v dropped for %s, want %v", n.NodeID()[:8], got, reason, w)
				}
			}
		}
		return nil
	}
	deadline = time.Now().Add(10 * time.Second)
	for counted() != nil && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if err := counted(); err != nil {
		t.Fatal(err)
	}
	// The cluster goes on: more blocks commit, on both nodes alike.
	h := l.store.Head().Height
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && (l.store.Head().Height < h+5 || f.store.Head().Height < h+5) {
		time.Sleep(20 * time.Millisecond)
	}
	for _, n := range nodes {
		if err := n.cluster.raft.Err(); err != nil {
			t.Fatalf("node %s halted: %v", n.NodeID()[:8], err)
		}
		if got := n.store.Head().Height; got < h+5 {
			t.Fatalf("node %s stopped committing at %d (was %d)", n.NodeID()[:8], got, h)
		}
		if st := n.cluster.raft.Status(); len(st.Voters) != 3 {
			t.Fatalf("node %s: raft voters %v", n.NodeID()[:8], st.Voters)
		}
	}
	if l.cluster.raft.Status().Role != "leader" {
		t.Fatal("the leader lost its leadership to the misbehaving member")
	}
}

// metricValue reads the value of the metric name with label = value from
// n's registry (0 when absent).
func metricValue(t *testing.T, n *Node, name, label, value string) float64 {
	t.Helper()
	mfs, err := n.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					if c := m.GetCounter(); c != nil {
						return c.GetValue()
					}
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
