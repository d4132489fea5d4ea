package raftnode

import (
	"bytes"
	"context"
	"fmt"
	"google.golang.org/protobuf/proto"
	"maps"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/sos-kernel/sos/ledger"
)

// memAux is an in-memory AuxStore.
type memAux struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (a *memAux) AuxGet(k []byte) ([]byte, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.m[string(k)], nil
}

func (a *memAux) AuxWrite(cs []ledger.Change) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range cs {
		if c.Value == nil {
			delete(a.m, string(c.Key))
		} else {
			a.m[string(c.Key)] = append([]byte(nil), c.Value...)
		}
	}
	return nil
}

func (a *memAux) AuxIterate(prefix []byte, fn func(k, v []byte) bool) error {
	a.mu.Lock()
	var keys []string
	for k := range a.m {
		if bytes.HasPrefix([]byte(k), prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		vals[i] = a.m[k]
	}
	a.mu.Unlock()
	for i, k := range keys {
		if !fn([]byte(k), vals[i]) {
			break
		}
	}
	return nil
}

// logSM records applied entries; its applied index lives in the aux store,
// as the kernel's does.
type logSM struct {
	aux     *memAux
	mu      sync.Mutex
	entries []string
	// fail, if set, is asked before each Apply and Restore: a non-nil
	// error is returned instead of applying.
	fail func(restore bool) error
}

func (s *logSM) Apply(index uint64, data []byte) error {
	if s.fail != nil {
		if err := s.fail(false); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.entries = append(s.entries, string(data))
	s.mu.Unlock()
	return s.SaveApplied(index)
}

func (s *logSM) AppliedIndex() uint64 {
	v, _ := s.aux.AuxGet([]byte("applied"))
	var i uint64
	fmt.Sscan(string(v), &i)
	return i
}

func (s *logSM) SaveApplied(index uint64) error {
	return s.aux.AuxWrite([]ledger.Change{{Key: []byte("applied"), Value: []byte(fmt.Sprint(index))}})
}

// Snapshot is the list of applied entries, so a member that fell behind
// the compacted log and installs a snapshot ends up with the same list.
func (s *logSM) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []byte(strings.Join(s.entries, "\x00")), nil
}

func (s *logSM) Restore(index uint64, data []byte) error {
	if s.fail != nil {
		if err := s.fail(true); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.entries = nil
	if len(data) > 0 {
		s.entries = strings.Split(string(data), "\x00")
	}
	s.mu.Unlock()
	return s.SaveApplied(index)
}

func (s *logSM) ConfChanged(*pb.ConfState, pb.ConfChangeI) {}

func (s *logSM) applied() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.entries...)
}

// hub delivers raft messages between nodes in memory.
type hub struct {
	mu    sync.Mutex
	nodes map[uint64]*Node
	sent  map[pb.MessageType][2]int // messages sent per type: [not bulk, bulk]
}

type hubTransport struct {
	h    *hub
	from uint64
}

func (t hubTransport) Send(m Message) {
	var pm pb.Message
	if err := proto.Unmarshal(m.Data, &pm); err != nil {
		panic(err)
	}
	t.h.mu.Lock()
	if t.h.sent == nil {
		t.h.sent = map[pb.MessageType][2]int{}
	}
	c := t.h.sent[pm.GetType()]
	if m.Bulk {
		c[1]++
	} else {
		c[0]++
	}
	t.h.sent[pm.GetType()] = c
	n := t.h.nodes[m.To]
	t.h.mu.Unlock()
	if n == nil {
		m.Release()
		return
	}
	go func() {
		defer m.Release()
		_ = n.Step(context.Background(), t.from, m.Data)
	}()
}

type member struct {
	node   *Node
	sm     *logSM
	aux    *memAux
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, h *hub, id uint64, peers []uint64, aux *memAux, mutate ...func(*Config)) *member {
	t.Helper()
	sm := &logSM{aux: aux}
	cfg := Config{ID: id, Peers: peers, Store: aux, SM: sm, Transport: hubTransport{h, id}, Tick: 10 * time.Millisecond}
	for _, m := range mutate {
		m(&cfg)
	}
	sm = cfg.SM.(*logSM)
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.nodes[id] = n
	h.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{node: n, sm: sm, aux: aux, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- n.Run(ctx) }()
	return m
}

func (m *member) stop(h *hub, id uint64) {
	h.mu.Lock()
	delete(h.nodes, id)
	h.mu.Unlock()
	m.cancel()
	<-m.done
}

func waitLeader(t *testing.T, ms map[uint64]*member) uint64 {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for id, m := range ms {
			if m.node.Status().Role == "leader" {
				return id
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader within 5 s")
	return 0
}

// waitApplied waits until every member has applied at least n entries.
func waitApplied(t *testing.T, ms map[uint64]*member, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		done := true
		for _, m := range ms {
			if len(m.sm.applied()) < n {
				done = false
			}
		}
		if done {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("not every member applied %d entries", n)
}

// TestReplicatesInOrderAndRestarts: every member applies the same entries in
// the same order; after all members restart from their stores, the
// membership comes back from the log, a leader is elected and nothing is
// applied twice.
func TestReplicatesInOrderAndRestarts(t *testing.T) {
	h := &hub{nodes: map[uint64]*Node{}}
	peers := []uint64{1, 2, 3}
	auxes := map[uint64]*memAux{}
	ms := map[uint64]*member{}
	for _, id := range peers {
		auxes[id] = &memAux{m: map[string][]byte{}}
		ms[id] = start(t, h, id, peers, auxes[id])
	}
	propose := func(from, to int) {
		l := waitLeader(t, ms)
		for i := from; i < to; i++ {
			if err := ms[l].node.Propose(context.Background(), []byte(fmt.Sprintf("entry-%d", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitAll := func(n int) { waitApplied(t, ms, n) }
	propose(0, 20)
	waitAll(20)
	want := ms[1].sm.applied()
	for id, m := range ms {
		if got := m.sm.applied(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("member %d applied %v, member 1 %v", id, got, want)
		}
	}
	// Appends travel as bulk, heartbeats and votes apart from them. (The
	// leader's first heartbeat goes out a tick after its election, which
	// may be after the entries above were applied.)
	var sent map[pb.MessageType][2]int
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		h.mu.Lock()
		sent = maps.Clone(h.sent)
		h.mu.Unlock()
		if sent[pb.MessageType_MsgHeartbeat][0] > 0 || time.Now().After(deadline) {
			break
		}
	}
	for typ, c := range sent {
		if bulk := typ == pb.MessageType_MsgApp || typ == pb.MessageType_MsgSnap; (bulk && c[0] > 0) || (!bulk && c[1] > 0) {
			t.Errorf("%s: %d sent as control, %d as bulk", typ, c[0], c[1])
		}
	}
	if sent[pb.MessageType_MsgApp][1] == 0 || sent[pb.MessageType_MsgHeartbeat][0] == 0 {
		t.Errorf("want appends and heartbeats among the messages sent, got %v", sent)
	}
	for id, m := range ms {
		m.stop(h, id)
	}
	for _, id := range peers {
		ms[id] = start(t, h, id, nil, auxes[id])
	}
	propose(20, 25)
	waitAll(5) // fresh state machines see only the new entries: none re-applied
	for id, m := range ms {
		if got := m.sm.applied(); len(got) != 5 || got[0] != "entry-20" {
			t.Fatalf("member %d after restart applied %v", id, got)
		}
	}
	for id, m := range ms {
		m.stop(h, id)
	}
}

func TestBufferPool(t *testing.T) {
	var p bufferPool
	a := p.get(100 << 10)
	if cap(a) < 100<<10 || len(a) != 0 {
		t.Fatalf("get: len %d cap %d", len(a), cap(a))
	}
	a = append(a, 1, 2, 3)
	p.put(a)
	if b := p.get(50 << 10); &b[:1][0] != &a[0] || len(b) != 0 {
		t.Fatal("a returned buffer large enough is not reused")
	}
	if b := p.get(100 << 10); &b[:1][0] == &a[0] {
		t.Fatal("a buffer handed out is still in the pool")
	}
	p.put(make([]byte, 0, pooledMaxSize+1))
	for i := range pooledBuffers + 3 {
		p.put(make([]byte, 0, (i+1)<<10))
	}
	if len(p.free) != pooledBuffers {
		t.Fatalf("pool keeps %d buffers, want %d", len(p.free), pooledBuffers)
	}
	for _, b := range p.free {
		if cap(b) > pooledMaxSize || cap(b) < 4<<10 {
			t.Fatalf("pool kept a buffer of %d bytes; want the largest ones under the cap", cap(b))
		}
	}
}

// TestCompactedStoreRestarts: after compactions the store holds no log
// entry the persisted snapshot covers (so block-sized entries are deleted
// soon after being written), and members restarted from it carry on.
func TestCompactedStoreRestarts(t *testing.T) {
	h := &hub{nodes: map[uint64]*Node{}}
	peers := []uint64{1, 2, 3}
	small := func(c *Config) { c.CompactEvery, c.CompactKeep = 4, 2 }
	auxes := map[uint64]*memAux{}
	ms := map[uint64]*member{}
	for _, id := range peers {
		auxes[id] = &memAux{m: map[string][]byte{}}
		ms[id] = start(t, h, id, peers, auxes[id], small)
	}
	l := waitLeader(t, ms)
	for i := range 30 {
		if err := ms[l].node.Propose(context.Background(), fmt.Appendf(nil, "e%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitApplied(t, ms, 30)
	for id, m := range ms {
		m.stop(h, id)
		aux := auxes[id]
		raw, _ := aux.AuxGet(keySnapshot)
		var snap pb.Snapshot
		if err := proto.Unmarshal(raw, &snap); err != nil || snap.GetMetadata().GetIndex() == 0 {
			t.Fatalf("member %d: no persisted snapshot (%v)", id, err)
		}
		_ = aux.AuxIterate(prefixEntry, func(k, v []byte) bool {
			var e pb.Entry
			if err := proto.Unmarshal(v, &e); err != nil {
				t.Fatal(err)
			}
			if e.GetIndex() <= snap.GetMetadata().GetIndex() {
				t.Errorf("member %d: entry %d is still stored below the snapshot at %d", id, e.GetIndex(), snap.GetMetadata().GetIndex())
			}
			return true
		})
	}
	for _, id := range peers {
		ms[id] = start(t, h, id, nil, auxes[id], small)
	}
	l = waitLeader(t, ms)
	for i := range 5 {
		if err := ms[l].node.Propose(context.Background(), fmt.Appendf(nil, "after%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitApplied(t, ms, 5)
	for id, m := range ms {
		if got := m.sm.applied(); got[0] != "after0" || len(got) != 5 {
			t.Fatalf("member %d after restart applied %v", id, got)
		}
		m.stop(h, id)
	}
}

// TestUnmarshalCopiesEntryData pins what Step relies on: decoding a message
// copies entry data out of the frame, so the cluster may hand Step frames
// from a buffer it reuses (net.HandleBorrowed).
func TestUnmarshalCopiesEntryData(t *testing.T) {
	m := &pb.Message{Type: pb.MessageType_MsgApp.Enum(), Entries: []*pb.Entry{{Data: []byte("a block's bytes")}}}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var got pb.Message
	if err := proto.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	clear(b)
	if d := got.GetEntries()[0].GetData(); string(d) != "a block's bytes" {
		t.Fatalf("entry data aliases the frame: %q", d)
	}
}

// TestRestoreIsRetriedAcrossRestarts: a member far behind gets a snapshot
// but its state machine cannot install it now (ErrRetry, as the kernel
// answers when no member serves the blocks). Nothing counts as applied,
// the node does not halt, and after a restart in the middle of it the
// snapshot is installed again: the member ends with the same entries as
// the others. (Before, the failed restore halted the node and the restart
// took the snapshot as applied: the member silently lacked its state.)
func TestRestoreIsRetriedAcrossRestarts(t *testing.T) {
	h := &hub{nodes: map[uint64]*Node{}}
	peers := []uint64{1, 2, 3}
	small := func(c *Config) { c.CompactEvery, c.CompactKeep = 4, 2 }
	auxes := map[uint64]*memAux{}
	ms := map[uint64]*member{}
	for _, id := range peers {
		auxes[id] = &memAux{m: map[string][]byte{}}
		ms[id] = start(t, h, id, peers, auxes[id], small)
	}
	l := waitLeader(t, ms)
	if err := ms[l].node.Propose(context.Background(), []byte("first")); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, ms, 1)
	lag := uint64(1)
	if l == lag {
		lag = 2
	}
	ms[lag].stop(h, lag)
	delete(ms, lag)
	for i := range 30 {
		if err := ms[l].node.Propose(context.Background(), fmt.Appendf(nil, "e%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitApplied(t, ms, 31)

	var attempts atomic.Int32
	failing := func(c *Config) {
		c.SM = &logSM{aux: auxes[lag], fail: func(restore bool) error {
			if restore {
				attempts.Add(1)
				return fmt.Errorf("no member serves the blocks: %w", ErrRetry)
			}
			return nil
		}}
	}
	ms[lag] = start(t, h, lag, nil, auxes[lag], small, failing)
	deadline := time.Now().Add(5 * time.Second)
	for attempts.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := ms[lag].node.Status()
	if attempts.Load() < 2 || st.Restoring == 0 {
		t.Fatalf("restore attempts %d, status restoring %d: want a snapshot being retried", attempts.Load(), st.Restoring)
	}
	if err := ms[lag].node.Err(); err != nil {
		t.Fatalf("a restore that asked to be retried halted the node: %v", err)
	}
	if st.Applied >= st.Restoring || ms[lag].sm.AppliedIndex() >= st.Restoring {
		t.Fatalf("applied %d (state machine %d) with the snapshot at %d not installed", st.Applied, ms[lag].sm.AppliedIndex(), st.Restoring)
	}
	ms[lag].stop(h, lag) // in the middle of the restore

	ms[lag] = start(t, h, lag, nil, auxes[lag], small)
	l = waitLeader(t, ms)
	if err := ms[l].node.Propose(context.Background(), []byte("last")); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		got := ms[lag].sm.applied()
		if len(got) > 0 && got[len(got)-1] == "last" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := ms[l].sm.applied()
	if got := ms[lag].sm.applied(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("the lagging member ended with %v, the leader with %v", got, want)
	}
	if st := ms[lag].node.Status(); st.Restoring != 0 {
		t.Fatalf("still restoring %d", st.Restoring)
	}
	for id, m := range ms {
		m.stop(h, id)
	}
}

// TestApplyRetried: an entry the state machine cannot apply now (ErrRetry)
// is applied again later, once, and the node does not halt.
func TestApplyRetried(t *testing.T) {
	h := &hub{nodes: map[uint64]*Node{}}
	aux := &memAux{m: map[string][]byte{}}
	var failures atomic.Int32
	sm := &logSM{aux: aux, fail: func(bool) error {
		if failures.Add(1) <= 2 {
			return fmt.Errorf("missing blocks: %w", ErrRetry)
		}
		return nil
	}}
	ms := map[uint64]*member{1: start(t, h, 1, []uint64{1}, aux, func(c *Config) { c.SM = sm })}
	l := waitLeader(t, ms)
	if err := ms[l].node.Propose(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(sm.applied()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := sm.applied(); len(got) != 1 || failures.Load() != 3 {
		t.Fatalf("applied %v after %d attempts", got, failures.Load())
	}
	if err := ms[l].node.Err(); err != nil {
		t.Fatal(err)
	}
	ms[l].stop(h, l)
}

// TestRunChecksAgainstPersistedLog: messages queued together are stepped
// together only up to one that may change the log; the next is checked
// once that change is persisted. A truncating append and a heartbeat
// committing the truncated tail arrive back to back: the heartbeat is
// dropped, not stepped into a raft panic.
func TestRunChecksAgainstPersistedLog(t *testing.T) {
	hn := follower(t)
	drops := make(chan *DropError, 4)
	hn.cfg.OnDrop = func(e *DropError) { drops <- e }
	for _, m := range []*pb.Message{
		with(msg(pb.MessageType_MsgApp, 3, 2, 3), func(m *pb.Message) {
			m.Index, m.LogTerm, m.Entries, m.Commit = u64(8), u64(2), ents(3, 9, 9), u64(8)
		}),
		with(msg(pb.MessageType_MsgHeartbeat, 3, 2, 3), func(m *pb.Message) { m.Commit = u64(10) }),
	} {
		if err := hn.Step(context.Background(), 3, mustMarshal(t, m)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- hn.Run(ctx) }()
	select {
	case d := <-drops:
		if d.Reason != DropOutOfRange {
			t.Fatalf("dropped for %s, want %s", d.Reason, DropOutOfRange)
		}
	case err := <-done:
		t.Fatalf("the node stopped: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the heartbeat was neither dropped nor did the node stop")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
