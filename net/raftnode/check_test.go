package raftnode

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"

	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// Driving a Node by hand: messages are stepped as Run steps them and each
// Ready is handled inline, committed entries applied at once. Used to put a
// node in a known state and throw messages at it.

// capture is a Transport that checks what is sent decodes, and drops it.
type capture struct {
	mu   sync.Mutex
	sent int
}

func (c *capture) Send(m Message) {
	var pm pb.Message
	if err := proto.Unmarshal(m.Data, &pm); err != nil {
		panic(err)
	}
	c.mu.Lock()
	c.sent++
	c.mu.Unlock()
	m.Release()
}

type handNode struct {
	*Node
	sm    *logSM
	out   *capture
	drops []*DropError
}

func newHandNode(t testing.TB, id uint64, peers []uint64) *handNode {
	t.Helper()
	aux := &memAux{m: map[string][]byte{}}
	h := &handNode{sm: &logSM{aux: aux}, out: &capture{}}
	n, err := New(Config{ID: id, Peers: peers, Store: aux, SM: h.sm, Transport: h.out,
		OnDrop: func(e *DropError) { h.drops = append(h.drops, e) }})
	if err != nil {
		t.Fatal(err)
	}
	h.Node = n
	h.pump(t)
	return h
}

// pump handles Readys until raft has nothing more to do, as Run does.
func (h *handNode) pump(t testing.TB) {
	t.Helper()
	for i := 0; i < 100; i++ {
		h.rnMu.Lock()
		if !h.rn.HasReady() {
			h.rnMu.Unlock()
			return
		}
		rd := h.rn.Ready()
		h.rnMu.Unlock()
		if err := h.handle(rd); err != nil {
			t.Fatal(err)
		}
		if snap := rd.Snapshot; snap != nil && snap.GetMetadata().GetIndex() > 0 {
			if err := h.restore(context.Background(), snap); err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range rd.CommittedEntries {
			if err := h.apply(context.Background(), e); err != nil {
				t.Fatal(err)
			}
		}
		h.rnMu.Lock()
		h.rn.Advance(rd)
		h.rnMu.Unlock()
	}
	t.Fatal("raft never ran out of work")
}

// deliver steps the bytes data as a message from the network from peer,
// as Node.Step and Run would; it reports the drop, if any.
func (h *handNode) deliver(t testing.TB, from uint64, data []byte) *DropError {
	t.Helper()
	h.drops = nil
	m, derr := decodeChecked(data, h.cfg.ID, from, h.cfg.CheckSnapshot)
	if derr != nil {
		return derr
	}
	if err := h.stepRemote(m); err != nil {
		t.Fatalf("stepping %s: %v", m.GetType(), err)
	}
	h.pump(t)
	if len(h.drops) > 0 {
		return h.drops[0]
	}
	return nil
}

func (h *handNode) send(t testing.TB, m *pb.Message) *DropError {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return h.deliver(t, m.GetFrom(), b)
}

func u64(v uint64) *uint64 { return &v }

func ents(term, from, to uint64) []*pb.Entry {
	var out []*pb.Entry
	for i := from; i <= to; i++ {
		out = append(out, &pb.Entry{Term: u64(term), Index: u64(i), Data: fmt.Appendf(nil, "e%d", i)})
	}
	return out
}

// follower is node 2 of {1, 2, 3} following leader 1 in term 2: entries
// 1–3 are the bootstrap configuration (term 1), 4–10 appended in term 2,
// committed up to 8.
func follower(t testing.TB) *handNode {
	h := newHandNode(t, 2, []uint64{1, 2, 3})
	app := &pb.Message{Type: pb.MessageType_MsgApp.Enum(), From: u64(1), To: u64(2), Term: u64(2),
		Index: u64(3), LogTerm: u64(1), Entries: ents(2, 4, 10), Commit: u64(8)}
	if d := h.send(t, app); d != nil {
		t.Fatalf("the leader's append was dropped: %v", d)
	}
	if st := h.Status(); st.Leader != 1 || st.Term != 2 || st.Commit != 8 {
		t.Fatalf("follower: leader %x term %d commit %d", st.Leader, st.Term, st.Commit)
	}
	return h
}

// leader is node 1 of {1, 2, 3}, elected in term 2 with node 2's votes,
// with entries up to 6 (5 and 6 proposed).
func leader(t testing.TB) *handNode {
	h := newHandNode(t, 1, []uint64{1, 2, 3})
	if err := h.Campaign(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.pump(t)
	for _, typ := range []pb.MessageType{pb.MessageType_MsgPreVoteResp, pb.MessageType_MsgVoteResp} {
		if d := h.send(t, &pb.Message{Type: typ.Enum(), From: u64(2), To: u64(1), Term: u64(2)}); d != nil {
			t.Fatalf("%s dropped: %v", typ, d)
		}
	}
	for i := 0; i < 2; i++ {
		if err := h.Propose(context.Background(), []byte("p")); err != nil {
			t.Fatal(err)
		}
		h.pump(t)
	}
	if st := h.Status(); st.Role != "leader" || st.Term != 2 {
		t.Fatalf("node 1 is %s in term %d", st.Role, st.Term)
	}
	return h
}

func msg(typ pb.MessageType, from, to, term uint64) *pb.Message {
	return &pb.Message{Type: typ.Enum(), From: u64(from), To: u64(to), Term: u64(term)}
}

func with(m *pb.Message, f func(*pb.Message)) *pb.Message { f(m); return m }

func confChangeEntry(t testing.TB, index, term uint64, cc *pb.ConfChange) *pb.Entry {
	b, err := proto.Marshal(cc)
	if err != nil {
		t.Fatal(err)
	}
	return &pb.Entry{Type: pb.EntryType_EntryConfChange.Enum(), Term: u64(term), Index: u64(index), Data: b}
}

// TestCheckDropsWhatRaftMustNotSee throws every kind of spoofed, local-only
// and malformed message at a follower and a leader: each is dropped for the
// reason named, raft never panics, and the node still takes its leader's
// messages afterwards. Without the checks several of these end the process
// (TestUncheckedHeartbeatPanics shows one).
func TestCheckDropsWhatRaftMustNotSee(t *testing.T) {
	snap := func(idx, term uint64, cs *pb.ConfState) *pb.Snapshot {
		return &pb.Snapshot{Metadata: &pb.SnapshotMetadata{Index: u64(idx), Term: u64(term), ConfState: cs}}
	}
	cases := []struct {
		name   string
		leader bool // sent to the leader (node 1) rather than the follower (node 2)
		m      *pb.Message
		raw    []byte // sent instead of m, from node 1
		want   string
	}{
		{name: "the reported attack: heartbeat as the leader with commit 2^40", m: with(msg(pb.MessageType_MsgHeartbeat, 1, 2, 2), func(m *pb.Message) { m.Commit = u64(1 << 40) }), want: DropOutOfRange},
		{name: "heartbeat with commit past the log, new term", m: with(msg(pb.MessageType_MsgHeartbeat, 3, 2, 3), func(m *pb.Message) { m.Commit = u64(11) }), want: DropOutOfRange},
		{name: "heartbeat from a non-leader in the leader's term", m: msg(pb.MessageType_MsgHeartbeat, 3, 2, 2), want: DropNotLeader},
		{name: "append from a non-leader in the leader's term", m: with(msg(pb.MessageType_MsgApp, 3, 2, 2), func(m *pb.Message) { m.Index, m.LogTerm = u64(10), u64(2) }), want: DropNotLeader},
		{name: "snapshot from a non-leader in the leader's term", m: with(msg(pb.MessageType_MsgSnap, 3, 2, 2), func(m *pb.Message) { m.Snapshot = snap(20, 2, &pb.ConfState{Voters: []uint64{1, 2, 3}}) }), want: DropNotLeader},
		{name: "append conflicting with committed entries", m: with(msg(pb.MessageType_MsgApp, 1, 2, 3), func(m *pb.Message) {
			m.Index, m.LogTerm, m.Entries = u64(10), u64(2), ents(3, 2, 4)
		}), want: DropMalformed},
		{name: "append with a gap", m: with(msg(pb.MessageType_MsgApp, 1, 2, 2), func(m *pb.Message) {
			m.Index, m.LogTerm, m.Entries = u64(10), u64(2), ents(2, 12, 12)
		}), want: DropMalformed},
		{name: "append of a later term than the message", m: with(msg(pb.MessageType_MsgApp, 1, 2, 2), func(m *pb.Message) {
			m.Index, m.LogTerm, m.Entries = u64(10), u64(2), ents(5, 11, 11)
		}), want: DropMalformed},
		{name: "append of an entry with an unknown type", m: with(msg(pb.MessageType_MsgApp, 1, 2, 2), func(m *pb.Message) {
			m.Index, m.LogTerm, m.Entries = u64(10), u64(2), ents(2, 11, 11)
			m.Entries[0].Type = pb.EntryType(7).Enum()
		}), want: DropMalformed},
		{name: "append of a conf change that does not decode", m: with(msg(pb.MessageType_MsgApp, 1, 2, 2), func(m *pb.Message) {
			m.Index, m.LogTerm, m.Entries = u64(10), u64(2), ents(2, 11, 11)
			m.Entries[0].Type, m.Entries[0].Data = pb.EntryType_EntryConfChange.Enum(), []byte{0xff, 0xff}
		}), want: DropMalformed},
		{name: "append at an overflowing index", m: with(msg(pb.MessageType_MsgApp, 1, 2, 2), func(m *pb.Message) { m.Index = u64(1<<64 - 1) }), want: DropOutOfRange},
		{name: "term near overflow", m: msg(pb.MessageType_MsgHeartbeat, 1, 2, 1<<63), want: DropOutOfRange},
		{name: "snapshot whose configuration lists a voter twice as learner", m: with(msg(pb.MessageType_MsgSnap, 1, 2, 3), func(m *pb.Message) {
			m.Snapshot = snap(20, 3, &pb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{3}})
		}), want: DropBadConf},
		{name: "snapshot whose configuration has no voter", m: with(msg(pb.MessageType_MsgSnap, 1, 2, 3), func(m *pb.Message) {
			m.Snapshot = snap(20, 3, &pb.ConfState{Learners: []uint64{2}})
		}), want: DropBadConf},
		{name: "snapshot with a duplicate voter", m: with(msg(pb.MessageType_MsgSnap, 1, 2, 3), func(m *pb.Message) {
			m.Snapshot = snap(20, 3, &pb.ConfState{Voters: []uint64{1, 2, 2}})
		}), want: DropBadConf},
		{name: "snapshot at index 0", m: with(msg(pb.MessageType_MsgSnap, 1, 2, 3), func(m *pb.Message) {
			m.Snapshot = snap(0, 3, &pb.ConfState{Voters: []uint64{1, 2, 3}})
		}), want: DropOutOfRange},
		{name: "snapshot without a snapshot", m: msg(pb.MessageType_MsgSnap, 1, 2, 3), want: DropMalformed},
		{name: "timeout-now from a follower", m: msg(pb.MessageType_MsgTimeoutNow, 3, 2, 2), want: DropNotLeader},
		{name: "timeout-now in a later term", m: msg(pb.MessageType_MsgTimeoutNow, 1, 2, 3), want: DropNotLeader},
		{name: "spoofed sender", raw: mustMarshal(t, msg(pb.MessageType_MsgHeartbeat, 3, 2, 2)), want: DropSpoofed},
		{name: "addressed to another node", m: msg(pb.MessageType_MsgHeartbeat, 1, 3, 2), want: DropMisaddressed},
		{name: "no term (a local message to raft)", m: msg(pb.MessageType_MsgApp, 1, 2, 0), want: DropMalformed},
		{name: "vote with a made-up context", m: with(msg(pb.MessageType_MsgVote, 3, 2, 3), func(m *pb.Message) { m.Context = []byte("x") }), want: DropMalformed},
		{name: "entries in a heartbeat", m: with(msg(pb.MessageType_MsgHeartbeat, 1, 2, 2), func(m *pb.Message) { m.Entries = ents(2, 11, 11) }), want: DropMalformed},
		{name: "bytes that are no message", raw: []byte{0xff, 0xff, 0xff}, want: DropMalformed},
		{name: "acknowledgement of entries the leader never had", leader: true, m: with(msg(pb.MessageType_MsgAppResp, 2, 1, 2), func(m *pb.Message) { m.Index = u64(1 << 40) }), want: DropOutOfRange},
		{name: "vote answer from a node with no vote", leader: true, m: msg(pb.MessageType_MsgVoteResp, 9, 1, 2), want: DropNotVoter},
		{name: "proposal of a conf change", leader: true, m: with(msg(pb.MessageType_MsgProp, 2, 1, 0), func(m *pb.Message) {
			m.Entries = []*pb.Entry{confChangeEntry(t, 0, 0, &pb.ConfChange{Type: pb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: u64(1)})}
		}), want: DropLocalType},
		{name: "empty proposal", leader: true, m: msg(pb.MessageType_MsgProp, 2, 1, 2), want: DropLocalType},
		{name: "leadership transfer request", leader: true, m: msg(pb.MessageType_MsgTransferLeader, 2, 1, 2), want: DropLocalType},
		{name: "read index", leader: true, m: msg(pb.MessageType_MsgReadIndex, 2, 1, 2), want: DropLocalType},
	}
	for _, typ := range []pb.MessageType{pb.MessageType_MsgHup, pb.MessageType_MsgBeat, pb.MessageType_MsgUnreachable, pb.MessageType_MsgSnapStatus,
		pb.MessageType_MsgCheckQuorum, pb.MessageType_MsgReadIndexResp, pb.MessageType_MsgStorageAppend, pb.MessageType_MsgStorageAppendResp,
		pb.MessageType_MsgStorageApply, pb.MessageType_MsgStorageApplyResp, pb.MessageType_MsgForgetLeader, pb.MessageType(99)} {
		cases = append(cases, struct {
			name   string
			leader bool
			m      *pb.Message
			raw    []byte
			want   string
		}{name: "local type " + typ.String(), m: msg(typ, 1, 2, 2), want: DropLocalType})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := follower(t)
			if tc.leader {
				h = leader(t)
			}
			var d *DropError
			if tc.raw != nil {
				d = h.deliver(t, 1, tc.raw)
			} else {
				d = h.send(t, tc.m)
			}
			if d == nil || d.Reason != tc.want {
				t.Fatalf("got drop %v, want reason %s", d, tc.want)
			}
			if !errors.Is(d, ErrDropped) {
				t.Fatal("a drop does not match ErrDropped")
			}
			if tc.leader {
				if st := h.Status(); st.Role != "leader" || st.Term != 2 {
					t.Fatalf("after the message the leader is %s in term %d", st.Role, st.Term)
				}
				return
			}
			// The follower still follows its leader: the next append commits.
			app := &pb.Message{Type: pb.MessageType_MsgApp.Enum(), From: u64(1), To: u64(2), Term: u64(2),
				Index: u64(10), LogTerm: u64(2), Entries: ents(2, 11, 11), Commit: u64(11)}
			if d := h.send(t, app); d != nil {
				t.Fatalf("the leader's next append was dropped: %v", d)
			}
			if st := h.Status(); st.Commit != 11 || st.Leader != 1 {
				t.Fatalf("after the leader's append: commit %d leader %x", st.Commit, st.Leader)
			}
		})
	}
}

func mustMarshal(t testing.TB, m *pb.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCheckAcceptsHonestTraffic: what honest members send passes, including
// a new leader's first append in a later term and a valid snapshot.
func TestCheckAcceptsHonestTraffic(t *testing.T) {
	h := follower(t)
	for _, m := range []*pb.Message{
		with(msg(pb.MessageType_MsgHeartbeat, 1, 2, 2), func(m *pb.Message) { m.Commit = u64(10) }),
		with(msg(pb.MessageType_MsgPreVote, 3, 2, 3), func(m *pb.Message) { m.Index, m.LogTerm = u64(10), u64(2) }),
		with(msg(pb.MessageType_MsgApp, 3, 2, 3), func(m *pb.Message) {
			m.Index, m.LogTerm, m.Entries, m.Commit = u64(10), u64(2), ents(3, 11, 12), u64(12)
		}),
		with(msg(pb.MessageType_MsgSnap, 3, 2, 3), func(m *pb.Message) {
			m.Snapshot = &pb.Snapshot{Data: []byte("e1\x00e2"), Metadata: &pb.SnapshotMetadata{Index: u64(30), Term: u64(3), ConfState: &pb.ConfState{Voters: []uint64{1, 2, 3}}}}
		}),
	} {
		if d := h.send(t, m); d != nil {
			t.Fatalf("%s dropped: %v", m.GetType(), d)
		}
	}
	if st := h.Status(); st.Commit != 30 || st.Leader != 3 || st.Applied != 30 {
		t.Fatalf("after the new leader's snapshot: commit %d applied %d leader %x", st.Commit, st.Applied, st.Leader)
	}
}

// TestUncheckedHeartbeatPanics pins why the checks exist: the heartbeat of
// the reported attack, stepped into raft unchecked, panics.
func TestUncheckedHeartbeatPanics(t *testing.T) {
	h := follower(t)
	defer func() {
		if recover() == nil {
			t.Fatal("raft took a heartbeat committing past its log without panicking: the check may be moot")
		}
	}()
	h.rnMu.Lock()
	defer h.rnMu.Unlock()
	_ = h.rn.Step(with(msg(pb.MessageType_MsgHeartbeat, 1, 2, 2), func(m *pb.Message) { m.Commit = u64(1 << 40) }))
}

// TestTruncatingAppendThenHeartbeat: an append that truncates the log's
// uncommitted tail, then a heartbeat committing what the tail held. The
// heartbeat is checked against the log after the truncation (Run persists
// before it steps the next message), so it is dropped, not a panic.
func TestTruncatingAppendThenHeartbeat(t *testing.T) {
	h := follower(t)
	trunc := with(msg(pb.MessageType_MsgApp, 3, 2, 3), func(m *pb.Message) {
		m.Index, m.LogTerm, m.Entries, m.Commit = u64(8), u64(2), ents(3, 9, 9), u64(8)
	})
	if d := h.send(t, trunc); d != nil {
		t.Fatalf("append dropped: %v", d)
	}
	hb := with(msg(pb.MessageType_MsgHeartbeat, 3, 2, 3), func(m *pb.Message) { m.Commit = u64(10) })
	if d := h.send(t, hb); d == nil || d.Reason != DropOutOfRange {
		t.Fatalf("heartbeat past the truncated log: drop %v", d)
	}
}

// TestInvalidConfChangeIsSkipped: a committed configuration change raft
// cannot apply (here: removing the only voter) is skipped by every member
// alike instead of panicking, and the log goes on.
func TestInvalidConfChangeIsSkipped(t *testing.T) {
	h := newHandNode(t, 1, []uint64{1})
	if err := h.Campaign(context.Background()); err != nil {
		t.Fatal(err)
	}
	h.pump(t)
	cc := &pb.ConfChange{Type: pb.ConfChangeType_ConfChangeRemoveNode.Enum(), NodeId: u64(1)}
	if err := h.ProposeConfChange(context.Background(), cc); err != nil {
		t.Fatal(err)
	}
	h.pump(t)
	if err := h.Propose(context.Background(), []byte("after")); err != nil {
		t.Fatal(err)
	}
	h.pump(t)
	if got := h.sm.applied(); len(got) != 1 || got[0] != "after" {
		t.Fatalf("applied %v", got)
	}
	if st := h.Status(); len(st.Voters) != 1 || st.Role != "leader" {
		t.Fatalf("voters %v, role %s", st.Voters, st.Role)
	}
}

// fuzzFrames splits fuzz input into messages: [target+sender byte][len u16][bytes].
func fuzzFrames(data []byte) (out []struct {
	toLeader bool
	from     uint64
	raw      []byte
}) {
	for len(data) >= 3 && len(out) < 8 {
		ctl, n := data[0], int(binary.BigEndian.Uint16(data[1:]))
		data = data[3:]
		n = min(n, len(data))
		out = append(out, struct {
			toLeader bool
			from     uint64
			raw      []byte
		}{toLeader: ctl&0x80 != 0, from: uint64(ctl&0x3) + 1, raw: data[:n]})
		data = data[n:]
	}
	return out
}

func fuzzFrame(toLeader bool, m *pb.Message) []byte {
	b, _ := proto.Marshal(m)
	ctl := byte(m.GetFrom()-1) & 0x3
	if toLeader {
		ctl |= 0x80
	}
	return append(binary.BigEndian.AppendUint16([]byte{ctl}, uint16(len(b))), b...)
}

// FuzzStep decodes untrusted raft frames, checks them as the network path
// does and steps those that pass into a real follower and leader: raft must
// never panic (stepRemote turns a panic into an error, which fails here,
// and a panic while handling the resulting Ready fails the fuzz directly).
func FuzzStep(f *testing.F) {
	join := func(fs ...[]byte) []byte {
		var out []byte
		for _, b := range fs {
			out = append(out, b...)
		}
		return out
	}
	snapCS := &pb.ConfState{Voters: []uint64{1, 2, 3}}
	f.Add(fuzzFrame(false, with(msg(pb.MessageType_MsgHeartbeat, 1, 2, 2), func(m *pb.Message) { m.Commit = u64(1 << 40) })))
	f.Add(fuzzFrame(false, with(msg(pb.MessageType_MsgHeartbeat, 1, 2, 2), func(m *pb.Message) { m.Commit = u64(10) })))
	f.Add(fuzzFrame(false, with(msg(pb.MessageType_MsgApp, 1, 2, 2), func(m *pb.Message) {
		m.Index, m.LogTerm, m.Entries, m.Commit = u64(10), u64(2), ents(2, 11, 13), u64(12)
	})))
	f.Add(join(
		fuzzFrame(false, with(msg(pb.MessageType_MsgApp, 3, 2, 3), func(m *pb.Message) {
			m.Index, m.LogTerm, m.Entries, m.Commit = u64(8), u64(2), ents(3, 9, 9), u64(8)
		})),
		fuzzFrame(false, with(msg(pb.MessageType_MsgHeartbeat, 3, 2, 3), func(m *pb.Message) { m.Commit = u64(10) }))))
	f.Add(fuzzFrame(false, with(msg(pb.MessageType_MsgSnap, 1, 2, 3), func(m *pb.Message) {
		m.Snapshot = &pb.Snapshot{Data: []byte("x"), Metadata: &pb.SnapshotMetadata{Index: u64(40), Term: u64(3), ConfState: snapCS}}
	})))
	f.Add(fuzzFrame(false, with(msg(pb.MessageType_MsgVote, 3, 2, 3), func(m *pb.Message) {
		m.Index, m.LogTerm, m.Context = u64(12), u64(2), []byte(campaignTransfer)
	})))
	f.Add(fuzzFrame(false, msg(pb.MessageType_MsgTimeoutNow, 1, 2, 2)))
	f.Add(fuzzFrame(true, with(msg(pb.MessageType_MsgAppResp, 2, 1, 2), func(m *pb.Message) { m.Index = u64(6) })))
	f.Add(fuzzFrame(true, with(msg(pb.MessageType_MsgAppResp, 3, 1, 2), func(m *pb.Message) {
		m.Index, m.Reject, m.RejectHint, m.LogTerm = u64(6), new(true), u64(1<<40), u64(2)
	})))
	f.Add(fuzzFrame(true, msg(pb.MessageType_MsgHeartbeatResp, 3, 1, 2)))
	f.Add(fuzzFrame(true, msg(pb.MessageType_MsgPreVoteResp, 3, 1, 3)))
	f.Add(fuzzFrame(true, with(msg(pb.MessageType_MsgProp, 2, 1, 0), func(m *pb.Message) { m.Entries = []*pb.Entry{{}} })))
	f.Add([]byte{0x01, 0x00, 0x03, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var fol, lead *handNode
		for _, fr := range fuzzFrames(data) {
			h := fol
			if fr.toLeader {
				h = lead
			}
			if h == nil {
				if fr.toLeader {
					lead = leader(t)
					h = lead
				} else {
					fol = follower(t)
					h = fol
				}
			}
			if d := h.deliver(t, fr.from, fr.raw); d != nil && !errors.Is(d, ErrDropped) {
				t.Fatal("a drop that is not ErrDropped")
			}
		}
	})
}

// BenchmarkDecodeChecked is the cost the network checks add to decoding a
// raft message (compare the Unmarshal sub-benchmarks): every message from
// a peer pays it.
func BenchmarkDecodeChecked(b *testing.B) {
	hb := mustMarshal(b, with(msg(pb.MessageType_MsgHeartbeat, 1, 2, 2), func(m *pb.Message) { m.Commit = u64(10) }))
	app := mustMarshal(b, with(msg(pb.MessageType_MsgApp, 1, 2, 2), func(m *pb.Message) {
		m.Index, m.LogTerm, m.Commit = u64(10), u64(2), u64(10)
		m.Entries = []*pb.Entry{{Term: u64(2), Index: u64(11), Data: make([]byte, 1<<20)}}
	}))
	for _, c := range []struct {
		name string
		data []byte
	}{{"heartbeat", hb}, {"append-1MiB", app}} {
		b.Run(c.name+"/Unmarshal", func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				var m pb.Message
				if err := proto.Unmarshal(c.data, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/decodeChecked", func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				if _, d := decodeChecked(c.data, 2, 1, nil); d != nil {
					b.Fatal(d)
				}
			}
		})
	}
}
