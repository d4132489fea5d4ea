package raftnode

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.etcd.io/raft/v3"
	pb "go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/sos-kernel/sos/ledger"
)

// StateMachine receives committed entries in log order.
type StateMachine interface {
	// Apply applies a committed normal entry. It must be deterministic and
	// persist index together with its effects (AppliedIndex reads it back).
	// An error halts the node: replicas must never diverge silently.
	Apply(index uint64, data []byte) error
	// AppliedIndex is the last index whose effects are persisted.
	AppliedIndex() uint64
	// SaveApplied persists index for entries with no effects (empty
	// entries, configuration changes).
	SaveApplied(index uint64) error
	// Snapshot returns opaque data describing the state at AppliedIndex,
	// sent to followers that need a snapshot.
	Snapshot() ([]byte, error)
	// Restore installs a snapshot received from the leader.
	Restore(index uint64, data []byte) error
	// ConfChanged reports the new membership after a committed change.
	ConfChanged(cs *pb.ConfState, cc pb.ConfChangeI)
}

// Transport sends raft messages to peers by raft id. Send must not block
// for long: drop what cannot be sent (raft retransmits).
type Transport interface {
	Send(m Message)
}

// Message is an encoded raft message on its way to a peer.
type Message struct {
	To   uint64
	Data []byte
	// Bulk marks log appends and snapshots. The transport should carry them
	// apart from the rest, so heartbeats and votes never wait behind
	// megabytes of log (raft copes with the two kinds arriving reordered).
	Bulk bool
	// Release is called exactly once, when Data is no longer needed (sent
	// or dropped); the node then reuses the buffer for a later message.
	Release func()
}

// AuxStore is where the raft log lives (ledger.Store implements it).
type AuxStore interface {
	AuxGet(key []byte) ([]byte, error)
	AuxWrite(changes []ledger.Change) error
	// AuxIterate calls fn on the keys under prefix in order until it
	// returns false; k and v are valid only during the call (the raft log
	// holds megabyte entries: copying each one to look at its key would
	// be waste).
	AuxIterate(prefix []byte, fn func(k, v []byte) bool) error
}

// Config configures a node.
type Config struct {
	ID        uint64   // this node's raft id (non-zero)
	Peers     []uint64 // initial voters when bootstrapping a new cluster (including ID)
	Join      bool     // a new node joining an existing cluster: start with no peers
	Store     AuxStore
	SM        StateMachine
	Transport Transport
	Logger    *slog.Logger
	// Tick is the raft tick interval (default 50 ms); elections take
	// ElectionTicks ticks (default 15: 0.75–1.5 s), heartbeats HeartbeatTicks (1).
	Tick           time.Duration
	ElectionTicks  int
	HeartbeatTicks int
	// CompactEvery compacts the log every so many applied entries, keeping
	// CompactKeep entries (defaults 1000 and 500).
	CompactEvery, CompactKeep uint64
	// CompactBytes also compacts once the entries applied since the last
	// compaction hold this many bytes (default 16 MiB), keeping only
	// CompactKeepBig entries (default 4) in memory: large entries (blocks)
	// then leave the stored log while still in the store's memtable, so
	// they are written to disk once, as blocks, and not a second time as
	// log entries.
	CompactBytes   uint64
	CompactKeepBig uint64
}

// Status is what the node knows about the cluster.
type Status struct {
	ID       uint64
	Leader   uint64
	Term     uint64
	Role     string // leader, follower, candidate, pre-candidate, learner
	Applied  uint64
	Commit   uint64
	Progress map[uint64]uint64 // leader only: match index per peer
	Learners []uint64
	Voters   []uint64
}

// Node is a running raft member.
type Node struct {
	cfg     Config
	log     *slog.Logger
	storage *raft.MemoryStorage
	rn      raft.Node

	mu        sync.Mutex
	confState *pb.ConfState
	applied   uint64
	halted    error
	lastSnap  uint64
	// appliedBytes is the size of the entries applied since the last
	// compaction (applyLoop only).
	appliedBytes uint64
	// persistedFrom is the first log index the store may still hold past
	// the last compaction (applyLoop only).
	persistedFrom uint64
	// saveBuf holds the encoded entries of one save (Ready loop only).
	saveBuf  []byte
	sendBufs bufferPool
}

// bufferPool keeps the buffers of large outgoing messages (appends carry
// whole blocks, megabytes each) for reuse. Memory the process has not
// touched before costs a page fault per 4 KiB, which on the machines we
// measured is more than copying the bytes; a pool that keeps its buffers
// alive avoids both the faults and the garbage.
type bufferPool struct {
	mu   sync.Mutex
	free [][]byte
}

const (
	pooledMinSize = 64 << 10 // smaller messages are allocated as usual
	pooledMaxSize = 64 << 20 // larger buffers are not kept
	pooledBuffers = 8        // two peers' send queues and some slack
)

// get returns an empty buffer with capacity for at least n bytes.
func (p *bufferPool) get(n int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, b := range p.free {
		if cap(b) >= n {
			last := len(p.free) - 1
			p.free[i] = p.free[last]
			p.free = p.free[:last]
			return b[:0]
		}
	}
	return make([]byte, 0, n+n/8) // some headroom: the next block may be larger
}

func (p *bufferPool) put(b []byte) {
	if cap(b) > pooledMaxSize {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < pooledBuffers {
		p.free = append(p.free, b[:0])
		return
	}
	// Keep the largest buffers: replace the smallest if b is larger.
	small := 0
	for i := range p.free {
		if cap(p.free[i]) < cap(p.free[small]) {
			small = i
		}
	}
	if cap(b) > cap(p.free[small]) {
		p.free[small] = b[:0]
	}
}

// Keys in the aux table.
var (
	keyHardState = []byte("raft/hs")
	keySnapshot  = []byte("raft/snap")
	prefixEntry  = []byte("raft/e/")
)

func entryKey(i uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), prefixEntry...), i)
}

type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Debug(v ...any)              { a.l.Debug(fmt.Sprint(v...)) }
func (a slogAdapter) Debugf(f string, v ...any)   { a.l.Debug(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Info(v ...any)               { a.l.Debug(fmt.Sprint(v...)) }
func (a slogAdapter) Infof(f string, v ...any)    { a.l.Debug(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Warning(v ...any)            { a.l.Warn(fmt.Sprint(v...)) }
func (a slogAdapter) Warningf(f string, v ...any) { a.l.Warn(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Error(v ...any)              { a.l.Error(fmt.Sprint(v...)) }
func (a slogAdapter) Errorf(f string, v ...any)   { a.l.Error(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Fatal(v ...any)              { a.l.Error(fmt.Sprint(v...)); panic(fmt.Sprint(v...)) }
func (a slogAdapter) Fatalf(f string, v ...any)   { panic(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Panic(v ...any)              { panic(fmt.Sprint(v...)) }
func (a slogAdapter) Panicf(f string, v ...any)   { panic(fmt.Sprintf(f, v...)) }

// New loads the persisted raft state and starts (but does not run) a node.
func New(cfg Config) (*Node, error) {
	if cfg.ID == 0 {
		return nil, errors.New("raftnode: ID must be non-zero")
	}
	if cfg.Tick == 0 {
		cfg.Tick = 50 * time.Millisecond
	}
	if cfg.ElectionTicks == 0 {
		cfg.ElectionTicks = 15
	}
	if cfg.HeartbeatTicks == 0 {
		cfg.HeartbeatTicks = 1
	}
	if cfg.CompactEvery == 0 {
		cfg.CompactEvery = 1000
	}
	if cfg.CompactKeep == 0 {
		cfg.CompactKeep = 500
	}
	if cfg.CompactBytes == 0 {
		cfg.CompactBytes = 16 << 20
	}
	if cfg.CompactKeepBig == 0 {
		cfg.CompactKeepBig = 4
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, storage: raft.NewMemoryStorage(), confState: &pb.ConfState{}}
	restarting, err := n.load()
	if err != nil {
		return nil, err
	}
	applied := cfg.SM.AppliedIndex()
	if snapIdx := n.lastSnap; applied < snapIdx {
		applied = snapIdx
	}
	n.applied = applied
	// raft is told it applied only up to the last snapshot: entries after it
	// are handed out again on restart so configuration changes in the log
	// (the bootstrap membership, joins) are re-applied to raft; apply skips
	// the state machine for entries whose effects are already persisted.
	rc := &raft.Config{
		ID: cfg.ID, ElectionTick: cfg.ElectionTicks, HeartbeatTick: cfg.HeartbeatTicks,
		Storage: n.storage, Applied: n.lastSnap,
		MaxSizePerMsg: 8 << 20, MaxInflightMsgs: 64, MaxUncommittedEntriesSize: 1 << 30,
		CheckQuorum: true, PreVote: true, Logger: slogAdapter{cfg.Logger},
	}
	switch {
	case restarting:
		n.rn = raft.RestartNode(rc)
	case cfg.Join:
		n.rn = raft.RestartNode(rc) // no peers: it learns the membership from the leader
	default:
		peers := make([]raft.Peer, len(cfg.Peers))
		for i, id := range cfg.Peers {
			peers[i] = raft.Peer{ID: id}
		}
		n.rn = raft.StartNode(rc, peers)
	}
	return n, nil
}

// load fills the memory storage from the aux table; it reports whether
// there was any persisted state.
func (n *Node) load() (bool, error) {
	st := n.cfg.Store
	found := false
	if raw, err := st.AuxGet(keySnapshot); err != nil {
		return false, fmt.Errorf("raftnode: load snapshot: %w", err)
	} else if raw != nil {
		var snap pb.Snapshot
		if err := proto.Unmarshal(raw, &snap); err != nil {
			return false, fmt.Errorf("raftnode: snapshot: %w: %w", ledger.ErrCorrupt, err)
		}
		if err := n.storage.ApplySnapshot(&snap); err != nil {
			return false, fmt.Errorf("raftnode: apply snapshot: %w", err)
		}
		n.confState = snap.GetMetadata().GetConfState()
		n.lastSnap = snap.GetMetadata().GetIndex()
		found = true
	}
	var ents []*pb.Entry
	var derr error
	err := st.AuxIterate(prefixEntry, func(k, v []byte) bool {
		var e pb.Entry
		if derr = proto.Unmarshal(v, &e); derr != nil {
			return false
		}
		if e.GetIndex() > n.lastSnap {
			ents = append(ents, &e)
		}
		return true
	})
	if err != nil || derr != nil {
		return false, fmt.Errorf("raftnode: load entries: %w", errors.Join(err, derr))
	}
	if len(ents) > 0 {
		if err := n.storage.Append(ents); err != nil {
			return false, fmt.Errorf("raftnode: load entries: %w", err)
		}
		found = true
	}
	if raw, err := st.AuxGet(keyHardState); err != nil {
		return false, fmt.Errorf("raftnode: load hard state: %w", err)
	} else if raw != nil {
		var hs pb.HardState
		if err := proto.Unmarshal(raw, &hs); err != nil {
			return false, fmt.Errorf("raftnode: hard state: %w: %w", ledger.ErrCorrupt, err)
		}
		if err := n.storage.SetHardState(&hs); err != nil {
			return false, err
		}
		found = true
	}
	return found, nil
}

// save persists hard state, entries and snapshot in one synced write,
// discarding persisted entries past the new ones (a new leader overwrote them).
func (n *Node) save(hs *pb.HardState, ents []*pb.Entry, snap *pb.Snapshot) error {
	var ch []ledger.Change
	if !raft.IsEmptySnap(snap) {
		b, err := proto.Marshal(snap)
		if err != nil {
			return err
		}
		ch = append(ch, ledger.Change{Key: keySnapshot, Value: b})
		// The snapshot replaces the log up to its index: stored entries it
		// covers would otherwise stay forever (compaction starts above it).
		upTo := snap.GetMetadata().GetIndex()
		err = n.cfg.Store.AuxIterate(prefixEntry, func(k, _ []byte) bool {
			if len(k) != len(prefixEntry)+8 || binary.BigEndian.Uint64(k[len(prefixEntry):]) > upTo {
				return false
			}
			ch = append(ch, ledger.Change{Key: append([]byte(nil), k...)})
			return true
		})
		if err != nil {
			return err
		}
	}
	if len(ents) > 0 {
		last, _ := n.storage.LastIndex()
		// Entries are encoded into one reused buffer: the batch copies them.
		size := 0
		for _, e := range ents {
			size += proto.Size(e)
		}
		buf := n.saveBuf[:0]
		if cap(buf) < size {
			buf = make([]byte, 0, size+size/8)
		}
		for _, e := range ents {
			start := len(buf)
			var err error
			if buf, err = (proto.MarshalOptions{UseCachedSize: true}).MarshalAppend(buf, e); err != nil {
				return err
			}
			ch = append(ch, ledger.Change{Key: entryKey(e.GetIndex()), Value: buf[start:len(buf):len(buf)]})
		}
		if cap(buf) <= pooledMaxSize {
			n.saveBuf = buf[:0]
		} else {
			n.saveBuf = nil
		}
		for i := ents[len(ents)-1].GetIndex() + 1; i <= last; i++ {
			ch = append(ch, ledger.Change{Key: entryKey(i)})
		}
	}
	if !raft.IsEmptyHardState(hs) {
		b, err := proto.Marshal(hs)
		if err != nil {
			return err
		}
		ch = append(ch, ledger.Change{Key: keyHardState, Value: b})
	}
	if len(ch) == 0 {
		return nil
	}
	return n.cfg.Store.AuxWrite(ch)
}

// Step feeds a raft message received from a peer.
func (n *Node) Step(ctx context.Context, data []byte) error {
	var m pb.Message
	if err := proto.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("raftnode: bad message: %w", err)
	}
	return n.rn.Step(ctx, &m)
}

// Propose submits an entry; it commits only if this node's term's leader
// gets it replicated. The caller watches Apply to learn the outcome.
func (n *Node) Propose(ctx context.Context, data []byte) error { return n.rn.Propose(ctx, data) }

// ProposeConfChange proposes a membership change.
func (n *Node) ProposeConfChange(ctx context.Context, cc pb.ConfChangeI) error {
	return n.rn.ProposeConfChange(ctx, cc)
}

// Campaign makes this node start an election now.
func (n *Node) Campaign(ctx context.Context) error { return n.rn.Campaign(ctx) }

// TransferLeadership asks the leader to hand over to transferee.
func (n *Node) TransferLeadership(ctx context.Context, transferee uint64) {
	n.rn.TransferLeadership(ctx, n.Status().Leader, transferee)
}

// ReportUnreachable tells raft a peer could not be reached.
func (n *Node) ReportUnreachable(id uint64) { n.rn.ReportUnreachable(id) }

// Status reports the node's view of the cluster.
func (n *Node) Status() Status {
	s := n.rn.Status()
	n.mu.Lock()
	applied, cs := n.applied, n.confState
	n.mu.Unlock()
	out := Status{ID: s.ID, Leader: s.Lead, Term: s.GetTerm(), Role: roleName(s.RaftState), Applied: applied, Commit: s.GetCommit(),
		Voters: append([]uint64(nil), cs.GetVoters()...), Learners: append([]uint64(nil), cs.GetLearners()...)}
	for _, l := range out.Learners {
		if l == s.ID {
			out.Role = "learner"
		}
	}
	if len(s.Progress) > 0 {
		out.Progress = map[uint64]uint64{}
		for id, p := range s.Progress {
			out.Progress[id] = p.Match
		}
	}
	return out
}

func roleName(s raft.StateType) string {
	switch s {
	case raft.StateLeader:
		return "leader"
	case raft.StateCandidate:
		return "candidate"
	case raft.StatePreCandidate:
		return "pre-candidate"
	}
	return "follower"
}

// Err is the error that halted the node, if any.
func (n *Node) Err() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.halted
}

// Run drives the node until ctx ends or the state machine fails.
//
// Committed entries are applied on a goroutine of their own, in order, so
// that executing a large block never stops this node from ticking and
// answering heartbeats (a leader whose followers go quiet for an election
// timeout would step down under load).
func (n *Node) Run(ctx context.Context) error {
	t := time.NewTicker(n.cfg.Tick)
	defer t.Stop()
	defer n.rn.Stop()
	applyc := make(chan applyBatch, 64)
	var lead uint64 // last leader seen in a Ready
	errc := make(chan error, 1)
	applied := make(chan struct{})
	actx, cancel := context.WithCancel(ctx)
	// Run returns only after the apply goroutine has stopped: the caller
	// closes the store next, and a block half-applied into a closed store
	// would crash the process.
	defer func() {
		cancel()
		<-applied
	}()
	go func() {
		defer close(applied)
		errc <- n.applyLoop(actx, applyc)
	}()
	halt := func(err error) error {
		n.mu.Lock()
		n.halted = err
		n.mu.Unlock()
		n.log.Error("raft node halted", "err", err)
		return err
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if err != nil {
				return halt(err)
			}
			return nil
		case <-t.C:
			n.rn.Tick()
		case rd := <-n.rn.Ready():
			if ss := rd.SoftState; ss != nil && ss.Lead != lead {
				// Operators want to see elections (a leader lost under load,
				// a partition) without raft's debug chatter.
				n.log.Info("raft leader changed", "leader", ss.Lead, "previous", lead, "term", rd.HardState.GetTerm(), "state", ss.RaftState.String())
				lead = ss.Lead
			}
			if err := n.handle(rd); err != nil {
				return halt(err)
			}
			if !raft.IsEmptySnap(rd.Snapshot) || len(rd.CommittedEntries) > 0 {
				select {
				case applyc <- applyBatch{snap: rd.Snapshot, ents: rd.CommittedEntries}:
				case err := <-errc:
					if err != nil {
						return halt(err)
					}
					return nil
				case <-ctx.Done():
					return nil
				}
			}
			n.rn.Advance()
		}
	}
}

type applyBatch struct {
	snap *pb.Snapshot
	ents []*pb.Entry
}

func (n *Node) applyLoop(ctx context.Context, applyc <-chan applyBatch) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-applyc:
			if !raft.IsEmptySnap(b.snap) {
				md := b.snap.GetMetadata()
				if err := n.cfg.SM.Restore(md.GetIndex(), b.snap.GetData()); err != nil {
					return fmt.Errorf("raftnode: restore snapshot at %d: %w", md.GetIndex(), err)
				}
				n.mu.Lock()
				n.applied, n.confState = md.GetIndex(), md.GetConfState()
				n.mu.Unlock()
			}
			for _, e := range b.ents {
				if err := n.apply(e); err != nil {
					return err
				}
				n.appliedBytes += uint64(len(e.GetData()))
			}
			if err := n.maybeCompact(); err != nil {
				return err
			}
		}
	}
}

func (n *Node) handle(rd raft.Ready) error {
	// 1. Persist before anything leaves this node.
	if err := n.save(rd.HardState, rd.Entries, rd.Snapshot); err != nil {
		return fmt.Errorf("raftnode: persist: %w", err)
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		if err := n.storage.ApplySnapshot(rd.Snapshot); err != nil {
			return fmt.Errorf("raftnode: snapshot: %w", err)
		}
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := n.storage.SetHardState(rd.HardState); err != nil {
			return err
		}
	}
	if err := n.storage.Append(rd.Entries); err != nil {
		return fmt.Errorf("raftnode: append: %w", err)
	}
	// 2. Send.
	for _, m := range rd.Messages {
		var buf []byte
		release := func() {}
		if size := proto.Size(m); size >= pooledMinSize {
			buf = n.sendBufs.get(size)
		}
		b, err := (proto.MarshalOptions{UseCachedSize: true}).MarshalAppend(buf, m)
		if err != nil {
			return fmt.Errorf("raftnode: marshal message: %w", err)
		}
		if buf != nil {
			release = func() { n.sendBufs.put(b) }
		}
		bulk := m.GetType() == pb.MessageType_MsgApp || m.GetType() == pb.MessageType_MsgSnap || len(b) >= pooledMinSize
		n.cfg.Transport.Send(Message{To: m.GetTo(), Data: b, Bulk: bulk, Release: release})
		if m.GetType() == pb.MessageType_MsgSnap {
			n.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFinish)
		}
	}
	// 3. Apply: handed to applyLoop by Run.
	return nil
}

func (n *Node) apply(e *pb.Entry) error {
	idx := e.GetIndex()
	n.mu.Lock()
	applied := n.applied
	n.mu.Unlock()
	replayed := idx <= applied // after a restart: its effects are persisted
	switch e.GetType() {
	case pb.EntryType_EntryNormal:
		if replayed {
			return nil
		}
		if len(e.GetData()) == 0 {
			if err := n.cfg.SM.SaveApplied(idx); err != nil {
				return err
			}
			break
		}
		if err := n.cfg.SM.Apply(idx, e.GetData()); err != nil {
			return fmt.Errorf("raftnode: apply entry %d: %w", idx, err)
		}
	case pb.EntryType_EntryConfChange, pb.EntryType_EntryConfChangeV2:
		var cc pb.ConfChangeI
		if e.GetType() == pb.EntryType_EntryConfChange {
			var c pb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &c); err != nil {
				return fmt.Errorf("raftnode: conf change %d: %w", idx, err)
			}
			cc = &c
		} else {
			var c pb.ConfChangeV2
			if err := proto.Unmarshal(e.GetData(), &c); err != nil {
				return fmt.Errorf("raftnode: conf change %d: %w", idx, err)
			}
			cc = &c
		}
		cs := n.rn.ApplyConfChange(cc)
		n.mu.Lock()
		n.confState = cs
		n.mu.Unlock()
		if replayed {
			return nil
		}
		n.cfg.SM.ConfChanged(cs, cc)
		if err := n.cfg.SM.SaveApplied(idx); err != nil {
			return err
		}
	}
	n.mu.Lock()
	n.applied = idx
	n.mu.Unlock()
	return nil
}

// maybeCompact snapshots and trims the log behind the applied index.
func (n *Node) maybeCompact() error {
	n.mu.Lock()
	applied, cs := n.applied, n.confState
	n.mu.Unlock()
	first, _ := n.storage.FirstIndex()
	keep := n.cfg.CompactKeep
	switch {
	case n.appliedBytes >= n.cfg.CompactBytes && applied >= first+n.cfg.CompactKeepBig:
		keep = n.cfg.CompactKeepBig
	case applied < first+n.cfg.CompactEvery+n.cfg.CompactKeep:
		return nil
	}
	data, err := n.cfg.SM.Snapshot()
	if err != nil {
		return fmt.Errorf("raftnode: snapshot: %w", err)
	}
	snap, err := n.storage.CreateSnapshot(applied, cs, data)
	if err != nil {
		if errors.Is(err, raft.ErrSnapOutOfDate) {
			return nil
		}
		return fmt.Errorf("raftnode: create snapshot: %w", err)
	}
	compactTo := applied - keep
	n.appliedBytes = 0
	if err := n.storage.Compact(compactTo); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return fmt.Errorf("raftnode: compact: %w", err)
	}
	b, err := proto.Marshal(snap)
	if err != nil {
		return err
	}
	// The store keeps no entry the snapshot covers: a restart starts from
	// the snapshot and reads only later entries (load), while followers
	// are served from memory, which keeps the last entries. So a block's
	// log entry is usually deleted while still in the store's memtable and
	// never written out a second time.
	ch := []ledger.Change{{Key: keySnapshot, Value: b}}
	for i := max(first, n.persistedFrom); i <= applied; i++ {
		ch = append(ch, ledger.Change{Key: entryKey(i)})
	}
	if err := n.cfg.Store.AuxWrite(ch); err != nil {
		return err
	}
	n.persistedFrom = applied + 1
	return nil
}
