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
	// An error wrapping ErrRetry makes the node retry the entry later (with
	// backoff): the state machine could not finish it now, for example
	// because blocks it needs could not be fetched. Any other error halts
	// the node: replicas must never diverge silently.
	Apply(index uint64, data []byte) error
	// AppliedIndex is the last index whose effects are persisted.
	AppliedIndex() uint64
	// SaveApplied persists index for entries with no effects (empty
	// entries, configuration changes).
	SaveApplied(index uint64) error
	// Snapshot returns opaque data describing the state at AppliedIndex,
	// sent to followers that need a snapshot.
	Snapshot() ([]byte, error)
	// Restore installs a snapshot received from the leader and persists
	// index as applied once the state is installed (and not before: until
	// then the node keeps retrying, across restarts). Errors are handled
	// as Apply's: ErrRetry retries, anything else halts.
	Restore(index uint64, data []byte) error
	// ConfChanged reports the new membership after a committed change.
	ConfChanged(cs *pb.ConfState, cc pb.ConfChangeI)
}

// ErrRetry is wrapped by state machine errors that are worth retrying: the
// node waits (with backoff) and applies the same entry or snapshot again.
var ErrRetry = errors.New("raftnode: not now, retry")

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
	// CheckSnapshot, if set, vets the state machine payload of a snapshot
	// received from the network before raft accepts the snapshot (a
	// payload Restore could never install would otherwise be persisted).
	CheckSnapshot func(data []byte) error
	// OnDrop, if set, is told about every message from the network that
	// was not given to raft (see DropError). It must not call the Node.
	OnDrop func(*DropError)
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
	// Restoring is the index of a snapshot raft has taken but the state
	// machine has not installed yet (0: none): entries after it wait.
	Restoring uint64
}

// Node is a running raft member.
//
// It drives an etcd raft RawNode on its own loop (Run) rather than raft's
// Node, so that a message from the network is checked against raft's exact
// state, on the goroutine that then steps it: raft's Node steps messages
// on a goroutine of its own, against a log whose end the caller cannot see.
type Node struct {
	cfg     Config
	log     *slog.Logger
	storage *raft.MemoryStorage

	// rnMu guards rn. It is held only for short work that never blocks
	// (never while persisting, sending or applying), so Status, Propose and
	// the apply loop's ApplyConfChange are served while the loop waits.
	rnMu sync.Mutex
	rn   *raft.RawNode

	recvc chan *pb.Message // checked messages from the network, stepped by Run
	wake  chan struct{}    // local input (a proposal, a conf change) made work ready
	done  chan struct{}    // closed when Run returns

	mu        sync.Mutex
	confState *pb.ConfState
	applied   uint64
	halted    error
	lastSnap  uint64
	// restoring is the index of a snapshot the state machine has not
	// installed yet (0: none).
	restoring uint64
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

// slogAdapter is raft's logger. Raft's Info chatter goes to debug; its
// panics (broken internal invariants: no message from the network reaches
// one, see check.go) are logged at error level before they unwind, so a
// crash always says why.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Debug(v ...any)              { a.l.Debug(fmt.Sprint(v...)) }
func (a slogAdapter) Debugf(f string, v ...any)   { a.l.Debug(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Info(v ...any)               { a.l.Debug(fmt.Sprint(v...)) }
func (a slogAdapter) Infof(f string, v ...any)    { a.l.Debug(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Warning(v ...any)            { a.l.Warn(fmt.Sprint(v...)) }
func (a slogAdapter) Warningf(f string, v ...any) { a.l.Warn(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Error(v ...any)              { a.l.Error(fmt.Sprint(v...)) }
func (a slogAdapter) Errorf(f string, v ...any)   { a.l.Error(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Fatal(v ...any)              { a.fail(fmt.Sprint(v...)) }
func (a slogAdapter) Fatalf(f string, v ...any)   { a.fail(fmt.Sprintf(f, v...)) }
func (a slogAdapter) Panic(v ...any)              { a.fail(fmt.Sprint(v...)) }
func (a slogAdapter) Panicf(f string, v ...any)   { a.fail(fmt.Sprintf(f, v...)) }

func (a slogAdapter) fail(msg string) {
	a.l.Error("raft: internal invariant broken", "err", msg)
	panic("raft: " + msg)
}

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
	n := &Node{
		cfg: cfg, log: cfg.Logger, storage: raft.NewMemoryStorage(), confState: &pb.ConfState{},
		recvc: make(chan *pb.Message, 256), wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	restarting, covered, err := n.load()
	if err != nil {
		return nil, err
	}
	// The state machine says what it applied. A snapshot raft took but the
	// state machine never installed (a restore that failed, a crash in the
	// middle of one) is installed again before anything after it.
	n.applied = cfg.SM.AppliedIndex()
	if n.applied < n.lastSnap {
		n.restoring = n.lastSnap
		n.log.Warn("raftnode: a snapshot was not installed before the node stopped; installing it again", "index", n.lastSnap, "applied", n.applied)
	} else if len(covered) > 0 {
		// Entries a restored snapshot covers, left by a stop right after
		// the restore.
		if err := n.deleteEntries(covered); err != nil {
			return nil, err
		}
	}
	// raft is told it applied only up to the last snapshot: entries after it
	// are handed out again on restart so configuration changes in the log
	// (the bootstrap membership, joins) are re-applied to raft; apply skips
	// the state machine for entries whose effects are already persisted.
	rc := &raft.Config{
		ID: cfg.ID, ElectionTick: cfg.ElectionTicks, HeartbeatTick: cfg.HeartbeatTicks,
		Storage: n.storage, Applied: n.lastSnap,
		MaxSizePerMsg: 8 << 20, MaxInflightMsgs: 64, MaxUncommittedEntriesSize: 1 << 30,
		CheckQuorum: true, PreVote: true, Logger: slogAdapter{cfg.Logger},
		// Only the leader proposes (the kernel checks before it builds a
		// block): proposals never travel, so none is accepted from the
		// network (see check.go).
		DisableProposalForwarding: true,
	}
	if n.rn, err = raft.NewRawNode(rc); err != nil {
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	if !restarting && !cfg.Join {
		peers := make([]raft.Peer, len(cfg.Peers))
		for i, id := range cfg.Peers {
			peers[i] = raft.Peer{ID: id}
		}
		if err := n.rn.Bootstrap(peers); err != nil {
			return nil, fmt.Errorf("raftnode: bootstrap: %w", err)
		}
	}
	return n, nil
}

// load fills the memory storage from the aux table; it reports whether
// there was any persisted state, and the keys of stored entries the
// persisted snapshot covers.
func (n *Node) load() (bool, [][]byte, error) {
	st := n.cfg.Store
	found := false
	if raw, err := st.AuxGet(keySnapshot); err != nil {
		return false, nil, fmt.Errorf("raftnode: load snapshot: %w", err)
	} else if raw != nil {
		var snap pb.Snapshot
		if err := proto.Unmarshal(raw, &snap); err != nil {
			return false, nil, fmt.Errorf("raftnode: snapshot: %w: %w", ledger.ErrCorrupt, err)
		}
		if err := n.storage.ApplySnapshot(&snap); err != nil {
			return false, nil, fmt.Errorf("raftnode: apply snapshot: %w", err)
		}
		n.confState = snap.GetMetadata().GetConfState()
		n.lastSnap = snap.GetMetadata().GetIndex()
		found = true
	}
	var ents []*pb.Entry
	var covered [][]byte
	var derr error
	err := st.AuxIterate(prefixEntry, func(k, v []byte) bool {
		var e pb.Entry
		if derr = proto.Unmarshal(v, &e); derr != nil {
			return false
		}
		if e.GetIndex() > n.lastSnap {
			ents = append(ents, &e)
		} else {
			covered = append(covered, append([]byte(nil), k...))
		}
		return true
	})
	if err != nil || derr != nil {
		return false, nil, fmt.Errorf("raftnode: load entries: %w", errors.Join(err, derr))
	}
	if len(ents) > 0 {
		if err := n.storage.Append(ents); err != nil {
			return false, nil, fmt.Errorf("raftnode: load entries: %w", err)
		}
		found = true
	}
	if raw, err := st.AuxGet(keyHardState); err != nil {
		return false, nil, fmt.Errorf("raftnode: load hard state: %w", err)
	} else if raw != nil {
		var hs pb.HardState
		if err := proto.Unmarshal(raw, &hs); err != nil {
			return false, nil, fmt.Errorf("raftnode: hard state: %w: %w", ledger.ErrCorrupt, err)
		}
		if err := n.storage.SetHardState(&hs); err != nil {
			return false, nil, err
		}
		found = true
	}
	return found, covered, nil
}

func (n *Node) deleteEntries(keys [][]byte) error {
	ch := make([]ledger.Change, len(keys))
	for i, k := range keys {
		ch[i] = ledger.Change{Key: k}
	}
	return n.cfg.Store.AuxWrite(ch)
}

// save persists hard state, entries and snapshot in one synced write,
// discarding persisted entries past the new ones (a new leader overwrote
// them).
//
// A snapshot from the leader replaces the log: it is persisted here with
// the hard state that commits it, as raft requires, but it does not count
// as applied until the state machine has installed it (applyLoop), and the
// stored entries it covers are deleted only then.
func (n *Node) save(hs *pb.HardState, ents []*pb.Entry, snap *pb.Snapshot) error {
	var ch []ledger.Change
	last, _ := n.storage.LastIndex()
	if !raft.IsEmptySnap(snap) {
		b, err := proto.Marshal(snap)
		if err != nil {
			return err
		}
		ch = append(ch, ledger.Change{Key: keySnapshot, Value: b})
		// Raft dropped the whole log for the snapshot: stored entries past
		// it (an old term's, never committed) must not come back on restart.
		idx := snap.GetMetadata().GetIndex()
		end := last
		if len(ents) > 0 {
			end = min(end, ents[0].GetIndex()-1)
		}
		for i := idx + 1; i <= end; i++ {
			ch = append(ch, ledger.Change{Key: entryKey(i)})
		}
	}
	if len(ents) > 0 {
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

// Step hands raft a message received from the peer whose raft id is from:
// the sender the transport authenticated. The message is checked first
// (check.go); one that fails is not given to raft, is reported to
// Config.OnDrop and comes back as a *DropError. Step waits while the node
// is busy (flow control for the sender) until ctx ends or the node stops.
func (n *Node) Step(ctx context.Context, from uint64, data []byte) error {
	m, derr := decodeChecked(data, n.cfg.ID, from, n.cfg.CheckSnapshot)
	if derr != nil {
		n.dropped(derr)
		return derr
	}
	select {
	case n.recvc <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-n.done:
		return ErrStopped
	}
}

// ErrStopped: the node is no longer running.
var ErrStopped = errors.New("raftnode: stopped")

func (n *Node) dropped(e *DropError) {
	if n.cfg.OnDrop != nil {
		n.cfg.OnDrop(e)
	}
}

// kick wakes the Run loop after local input gave raft work to do.
func (n *Node) kick() {
	select {
	case n.wake <- struct{}{}:
	default:
	}
}

// ErrProposalDropped is returned for a proposal raft did not take: this
// node does not lead (proposals are not forwarded), is handing leadership
// over, or holds too much uncommitted log.
var ErrProposalDropped = raft.ErrProposalDropped

// Propose submits an entry; it commits only if this node's term's leader
// gets it replicated. It fails at once (ErrProposalDropped) on a node that
// does not lead. The caller watches Apply to learn the outcome.
func (n *Node) Propose(ctx context.Context, data []byte) error {
	n.rnMu.Lock()
	err := n.rn.Propose(data)
	n.rnMu.Unlock()
	n.kick()
	return err
}

// ProposeConfChange proposes a membership change (on the leader).
func (n *Node) ProposeConfChange(ctx context.Context, cc pb.ConfChangeI) error {
	n.rnMu.Lock()
	err := n.rn.ProposeConfChange(cc)
	n.rnMu.Unlock()
	n.kick()
	return err
}

// Campaign makes this node start an election now.
func (n *Node) Campaign(ctx context.Context) error {
	n.rnMu.Lock()
	err := n.rn.Campaign()
	n.rnMu.Unlock()
	n.kick()
	return err
}

// TransferLeadership asks this node, the leader, to hand over to
// transferee. On any other node it does nothing: the request is not
// forwarded (nodes accept no such request from the network).
func (n *Node) TransferLeadership(ctx context.Context, transferee uint64) {
	n.rnMu.Lock()
	if n.rn.BasicStatus().RaftState == raft.StateLeader {
		n.rn.TransferLeader(transferee)
	}
	n.rnMu.Unlock()
	n.kick()
}

// ReportUnreachable tells raft a peer could not be reached.
func (n *Node) ReportUnreachable(id uint64) {
	n.rnMu.Lock()
	n.rn.ReportUnreachable(id)
	n.rnMu.Unlock()
}

// Status reports the node's view of the cluster.
func (n *Node) Status() Status {
	n.rnMu.Lock()
	s := n.rn.Status()
	n.rnMu.Unlock()
	n.mu.Lock()
	applied, cs, restoring := n.applied, n.confState, n.restoring
	n.mu.Unlock()
	out := Status{ID: s.ID, Leader: s.Lead, Term: s.GetTerm(), Role: roleName(s.RaftState), Applied: applied, Commit: s.GetCommit(),
		Voters: append([]uint64(nil), cs.GetVoters()...), Learners: append([]uint64(nil), cs.GetLearners()...), Restoring: restoring}
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
	defer close(n.done)
	t := time.NewTicker(n.cfg.Tick)
	defer t.Stop()
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
		// 1. What raft has ready is persisted, sent and handed to the
		// apply loop before anything else is stepped: so whenever a message
		// from the network is checked, raft's log ends where the store's
		// does.
		n.rnMu.Lock()
		ready := n.rn.HasReady()
		var rd raft.Ready
		if ready {
			rd = n.rn.Ready()
		}
		n.rnMu.Unlock()
		if ready {
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
			n.rnMu.Lock()
			n.rn.Advance(rd)
			n.rnMu.Unlock()
			continue
		}
		// 2. Nothing to do: wait for input.
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			if err != nil {
				return halt(err)
			}
			return nil
		case <-t.C:
			n.rnMu.Lock()
			n.rn.Tick()
			n.rnMu.Unlock()
		case <-n.wake:
		case m := <-n.recvc:
			// Messages that arrived together are stepped together (one
			// Ready, one write for all), up to the first that may change
			// the log: the next is checked against the log once persisted.
			for i := 0; ; i++ {
				if err := n.stepRemote(m); err != nil {
					return halt(err)
				}
				if changesLog(m) || i == 63 {
					break
				}
				var ok bool
				select {
				case m, ok = <-n.recvc:
				default:
				}
				if !ok {
					break
				}
			}
		}
	}
}

// changesLog reports whether stepping m may change raft's log other than
// by appending to it (an append can truncate a conflicting tail, a
// snapshot replaces the log).
func changesLog(m *pb.Message) bool {
	return m.GetType() == pb.MessageType_MsgApp || m.GetType() == pb.MessageType_MsgSnap
}

// stepRemote checks a message from the network against raft's state and
// steps it. Raft's state is what the store holds: Run persists every Ready
// before it steps another message from the network (the log can only have
// grown since, by local proposals). A raft panic on a remote message — none
// is reachable past the checks; this is a last line of defence — halts the
// node with an error instead of ending the process.
func (n *Node) stepRemote(m *pb.Message) error {
	derr, err := n.stepChecked(m)
	if derr != nil {
		n.dropped(derr)
	}
	return err
}

func (n *Node) stepChecked(m *pb.Message) (derr *DropError, err error) {
	n.rnMu.Lock()
	defer n.rnMu.Unlock()
	if derr = n.checkRemote(m); derr != nil {
		return derr, nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("raftnode: a %s from %x made raft panic: %v", m.GetType(), m.GetFrom(), r)
		}
	}()
	// Errors are raft ignoring the message (a response from a node it does
	// not track): nothing to do.
	_ = n.rn.Step(m)
	return nil, nil
}

// checkRemote checks m against raft's state (rnMu held).
func (n *Node) checkRemote(m *pb.Message) *DropError {
	bs := n.rn.BasicStatus()
	last, _ := n.storage.LastIndex()
	st := stateView{term: bs.GetTerm(), lead: bs.Lead, leader: bs.RaftState == raft.StateLeader, lastIndex: last}
	if t := m.GetType(); t == pb.MessageType_MsgVoteResp || t == pb.MessageType_MsgPreVoteResp {
		cfg := n.rn.Status().Config
		st.voters = map[uint64]bool{}
		for _, maj := range cfg.Voters {
			for id := range maj {
				st.voters[id] = true
			}
		}
	}
	return checkState(m, st)
}

type applyBatch struct {
	snap *pb.Snapshot
	ents []*pb.Entry
}

// Retry backoff for a state machine that asked to be retried (ErrRetry).
const (
	retryMin = 200 * time.Millisecond
	retryMax = 10 * time.Second
)

func (n *Node) applyLoop(ctx context.Context, applyc <-chan applyBatch) error {
	n.mu.Lock()
	pending := n.restoring
	n.mu.Unlock()
	if pending != 0 {
		snap, err := n.storage.Snapshot()
		if err != nil {
			return fmt.Errorf("raftnode: snapshot to install: %w", err)
		}
		if err := n.restore(ctx, snap); err != nil {
			return stopped(ctx, err)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-applyc:
			if !raft.IsEmptySnap(b.snap) {
				if err := n.restore(ctx, b.snap); err != nil {
					return stopped(ctx, err)
				}
			}
			for _, e := range b.ents {
				if err := n.apply(ctx, e); err != nil {
					return stopped(ctx, err)
				}
				n.appliedBytes += uint64(len(e.GetData()))
			}
			if err := n.maybeCompact(); err != nil {
				return err
			}
		}
	}
}

// stopped is err, or nil if the node is stopping (ctx ended).
func stopped(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// retry runs fn until it succeeds, fails for good (an error not wrapping
// ErrRetry) or ctx ends, waiting longer after each failure.
func (n *Node) retry(ctx context.Context, what string, index uint64, fn func() error) error {
	wait := retryMin
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !errors.Is(err, ErrRetry) {
			return err
		}
		n.log.Warn("raftnode: "+what+" cannot finish now; retrying", "index", index, "attempt", attempt, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// restore has the state machine install a snapshot raft took. Only once
// it has does the snapshot count as applied and do the entries it covers
// leave the store; until then (across restarts too) the node retries.
func (n *Node) restore(ctx context.Context, snap *pb.Snapshot) error {
	md := snap.GetMetadata()
	idx := md.GetIndex()
	n.mu.Lock()
	n.restoring = idx
	n.mu.Unlock()
	err := n.retry(ctx, "install snapshot", idx, func() error { return n.cfg.SM.Restore(idx, snap.GetData()) })
	if err != nil {
		return fmt.Errorf("raftnode: restore snapshot at %d: %w", idx, err)
	}
	n.mu.Lock()
	n.applied, n.confState, n.restoring = idx, md.GetConfState(), 0
	n.mu.Unlock()
	var covered [][]byte
	err = n.cfg.Store.AuxIterate(prefixEntry, func(k, _ []byte) bool {
		if len(k) != len(prefixEntry)+8 || binary.BigEndian.Uint64(k[len(prefixEntry):]) > idx {
			return false
		}
		covered = append(covered, append([]byte(nil), k...))
		return true
	})
	if err == nil && len(covered) > 0 {
		err = n.deleteEntries(covered)
	}
	if err != nil {
		return fmt.Errorf("raftnode: after restoring snapshot at %d: %w", idx, err)
	}
	n.persistedFrom = max(n.persistedFrom, idx+1)
	return nil
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
			n.rnMu.Lock()
			n.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFinish)
			n.rnMu.Unlock()
		}
	}
	// 3. Apply: handed to applyLoop by Run.
	return nil
}

func (n *Node) apply(ctx context.Context, e *pb.Entry) error {
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
		err := n.retry(ctx, "apply entry", idx, func() error { return n.cfg.SM.Apply(idx, e.GetData()) })
		if err != nil {
			return fmt.Errorf("raftnode: apply entry %d: %w", idx, err)
		}
	case pb.EntryType_EntryConfChange, pb.EntryType_EntryConfChangeV2:
		cc, err := decodeConfChange(e)
		n.mu.Lock()
		cs := n.confState
		n.mu.Unlock()
		if err == nil {
			err = applicable(cs, cc.AsV2())
		}
		if err != nil {
			// Raft would panic on it. Every member skips it alike: whether a
			// change applies depends only on the log before it.
			n.log.Warn("raftnode: committed configuration change cannot apply; skipped", "index", idx, "err", err)
		} else {
			n.rnMu.Lock()
			cs = n.rn.ApplyConfChange(cc)
			n.rnMu.Unlock()
			n.kick()
			n.mu.Lock()
			n.confState = cs
			n.mu.Unlock()
		}
		if replayed {
			return nil
		}
		if err == nil {
			n.cfg.SM.ConfChanged(cs, cc)
		}
		if err := n.cfg.SM.SaveApplied(idx); err != nil {
			return err
		}
	}
	n.mu.Lock()
	n.applied = idx
	n.mu.Unlock()
	return nil
}

func decodeConfChange(e *pb.Entry) (pb.ConfChangeI, error) {
	if e.GetType() == pb.EntryType_EntryConfChange {
		var c pb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &c); err != nil {
			return nil, fmt.Errorf("conf change %d: %w", e.GetIndex(), err)
		}
		return &c, nil
	}
	var c pb.ConfChangeV2
	if err := proto.Unmarshal(e.GetData(), &c); err != nil {
		return nil, fmt.Errorf("conf change %d: %w", e.GetIndex(), err)
	}
	return &c, nil
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
