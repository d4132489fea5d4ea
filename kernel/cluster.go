package kernel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/sos-kernel/sos/internal/failpoint"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/net/raftnode"
)

// Stream kinds the cluster uses on the peer network.
const (
	StreamRaft byte = 1 // raft messages but appends and snapshots
	// StreamRaftBulk carries raft log appends and snapshots, so heartbeats
	// and votes on StreamRaft never wait behind a block.
	StreamRaftBulk byte = 4
	StreamTxs      byte = 2 // forwarded transactions (length-prefixed batch)
	StreamSync     byte = 3 // block sync requests and answers
)

// PeerNet is what the cluster needs from the transport: ordered, reliable
// (best-effort across reconnects) messages to a peer by node id, per kind.
// Package net implements it over QUIC; tests use an in-memory network.
type PeerNet interface {
	Send(ctx context.Context, peer string, kind byte, msg []byte) error
	Handle(kind byte, fn func(from string, msg []byte))
	// HandleBorrowed is Handle for a fn that keeps nothing of msg after it
	// returns, so the transport may reuse the buffer.
	HandleBorrowed(kind byte, fn func(from string, msg []byte))
	Peers() []client.Peer
	// SetMembers replaces the set of nodes allowed to connect; the others
	// are disconnected and refused.
	SetMembers(members []Member) error
	// VerifyAddr dials addr once and checks that the node answering holds
	// key: a joining node's claimed address is checked this way before it
	// is recorded (see admission.go).
	VerifyAddr(ctx context.Context, addr string, key ledger.PublicKey) error
}

// Member is a cluster member: its ML-DSA key, node id, raft id, peer
// address and role (ledger.RoleVoter or ledger.RoleLearner). AsVoter marks
// a learner admitted to be promoted once it has caught up.
type Member struct {
	NodeID  string
	RaftID  uint64
	PubKey  ledger.PublicKey
	Addr    string
	Role    ledger.MemberRole
	AsVoter bool
}

// RaftID derives a member's raft id from its node id (never zero).
func RaftID(nodeID string) uint64 {
	h := sha256.Sum256([]byte(nodeID))
	id := binary.BigEndian.Uint64(h[:8])
	if id == 0 {
		id = 1
	}
	return id
}

// MembersFromGenesis lists the genesis cluster members.
func MembersFromGenesis(g *ledger.Genesis) ([]Member, error) {
	keys, err := g.NodePubKeys()
	if err != nil {
		return nil, err
	}
	out := make([]Member, len(keys))
	for i, k := range keys {
		id := k.Fingerprint()
		out[i] = Member{NodeID: id, RaftID: RaftID(id), PubKey: k, Addr: g.Nodes[i].Addr, Role: ledger.RoleVoter}
	}
	return out, nil
}

// MembersFromLedger lists the members the committed state records.
func MembersFromLedger(store *ledger.Store) ([]Member, error) {
	list, err := ledger.Members{St: ledger.NewState(store), Codec: store.Codec()}.List()
	if err != nil {
		return nil, err
	}
	out := make([]Member, len(list))
	for i, m := range list {
		out[i] = Member{NodeID: m.NodeID, RaftID: RaftID(m.NodeID), PubKey: m.Key, Addr: m.Addr, Role: m.Role, AsVoter: m.AsVoter}
	}
	return out, nil
}

// cluster orders blocks with raft: the leader builds and signs a block on
// the committed head and proposes it; every member (the leader included)
// applies committed blocks in log order, re-executing them unless it built
// them itself, and refuses to go on if its result differs from the signed
// header. A committed block that does not extend the head (a proposal of a
// deposed leader) is skipped by everyone alike.
type cluster struct {
	node *Node
	net  PeerNet
	raft *raftnode.Node
	self Member // this node as the ledger listed it at start (its NodeID and RaftID never change)
	id   uint64 // this node's raft id, RaftID(node.nodeID): fixed, read anywhere
	log  *slog.Logger

	// Membership follows the ledger (refreshMembers); seed holds the members
	// a joining node was told about, used until its ledger lists it.
	memMu      sync.RWMutex
	members    map[uint64]Member
	byAddr     map[ledger.Address]Member
	leaving    map[uint64]Member // dropped by the ledger, not yet by raft (setMembers)
	seed       []Member
	selfListed bool // the ledger lists this node
	recon      reconciler

	mu         sync.Mutex
	inflight   *BuiltBlock
	inflightAt time.Time
	lastLeader uint64
	// ctx lives as long as the cluster runs (run cancels it on return).
	ctx    context.Context
	stop   context.CancelFunc
	syncCh chan syncAnswer // block sync answers while catching up
	states *stateSyncer
	// syncIdle bounds the wait for a peer's next block-sync answer before
	// the next member is asked.
	syncIdle time.Duration
	catchUp  catchUp   // is this node behind, and getting closer?
	drops    dropLog   // rate limit of the dropped-raft-message warning
	handoff  time.Time // last leadership transfer away from a restoring leader
	gone     removal   // was this node removed from the cluster? (cluster_removed.go)

	outMu sync.Mutex
	out   map[uint64]*peerQueues // raft messages waiting per peer (Send)
}

var keyApplied = []byte("raft/applied")

func newCluster(n *Node, pn PeerNet, members, seed []Member, join bool) (*cluster, error) {
	c := &cluster{node: n, net: pn, log: n.log, seed: seed, out: map[uint64]*peerQueues{}, syncIdle: blockSyncIdle, id: RaftID(n.nodeID)}
	c.ctx, c.stop = context.WithCancel(context.Background())
	if d := n.opts.SyncTimeout; d > 0 {
		c.syncIdle = d
	}
	c.catchUp.init(time.Now(), c.stallAfter())
	c.recon.promoted = map[uint64]time.Time{}
	c.gone.init()
	var peers []uint64
	for _, m := range members {
		if m.NodeID == n.nodeID {
			c.self = m
		}
		if m.Role == ledger.RoleVoter {
			peers = append(peers, m.RaftID)
		}
	}
	if c.self.NodeID == "" {
		if h, ok := removedAt(n.store); ok && !join {
			return nil, fmt.Errorf("%w at height %d: this home cannot take part again; an operator admits the node anew (sos cluster admit) and it joins with a fresh home (sos init --join)", ErrRemoved, h)
		}
		if !join {
			return nil, fmt.Errorf("kernel: this node (%s) is not a member of the cluster its ledger describes; to join a running cluster use sos init --join", n.nodeID)
		}
		pub := n.opts.NodeKey.Public()
		c.self = Member{NodeID: n.nodeID, RaftID: RaftID(n.nodeID), PubKey: pub, Role: ledger.RoleLearner}
	}
	if err := c.setMembers(members); err != nil {
		return nil, err
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i] < peers[j] })
	rn, err := raftnode.New(raftnode.Config{
		ID: c.self.RaftID, Peers: peers, Join: join, Store: n.store, SM: c, Transport: c, Logger: n.log,
		CompactEvery: n.opts.RaftCompactEvery, CompactKeep: n.opts.RaftCompactEvery / 2,
		CheckSnapshot: c.checkSnapshotPayload, OnDrop: c.raftDropped,
	})
	if err != nil {
		return nil, err
	}
	c.raft = rn
	stateIdle := stateSyncIdle
	if d := n.opts.SyncTimeout; d > 0 {
		stateIdle = d
	}
	c.states = &stateSyncer{ctx: c.ctx, store: n.store, codec: n.chain.codec, net: pn, log: n.log, idle: stateIdle,
		checkBlock: c.checkSyncedBlock, progress: c.catchUp.progressed}
	// A raft message is handed to raft only as coming from the member the
	// transport authenticated (raftnode checks the rest: check.go). Step
	// decodes the message into fresh memory, so the frame is borrowed.
	step := func(from string, msg []byte) {
		id := RaftID(from)
		if _, ok := c.raftPeer(id); !ok {
			c.raftDropped(&raftnode.DropError{From: id, Reason: dropUnknownPeer, Err: fmt.Errorf("%s is not a member", from)})
			return
		}
		if err := rn.Step(c.ctx, id, msg); err != nil && !errors.Is(err, raftnode.ErrDropped) {
			c.log.Debug("raft step", "from", from, "err", err)
		}
	}
	pn.HandleBorrowed(StreamRaft, step)
	pn.HandleBorrowed(StreamRaftBulk, step)
	pn.Handle(StreamTxs, c.receiveTxs)
	pn.Handle(StreamSync, c.handleSync)
	return c, nil
}

// Send implements raftnode.Transport. It never blocks the raft loop: each
// peer has two queues (bulk appends and snapshots, and the rest), each
// drained by a goroutine of its own onto its own stream, so a slow link (a
// follower applying a large block, a peer that is down) delays only that
// peer's messages, and a heartbeat never waits behind a block. A full
// queue drops the message, and raft resends.
func (c *cluster) Send(m raftnode.Message) {
	member, ok := c.raftPeer(m.To)
	if !ok {
		m.Release()
		return
	}
	c.outMu.Lock()
	qs := c.out[m.To]
	if qs == nil {
		qs = &peerQueues{ctl: make(chan raftnode.Message, raftQueue), bulk: make(chan raftnode.Message, raftQueue)}
		c.out[m.To] = qs
		go c.sendLoop(m.To, member.NodeID, StreamRaft, qs.ctl)
		go c.sendLoop(m.To, member.NodeID, StreamRaftBulk, qs.bulk)
	}
	c.outMu.Unlock()
	q := qs.ctl
	if m.Bulk {
		q = qs.bulk
	}
	select {
	case q <- m:
	default:
		m.Release()
		c.raft.ReportUnreachable(m.To)
	}
}

// peerQueues are one peer's raft messages waiting to be sent.
type peerQueues struct{ ctl, bulk chan raftnode.Message }

// raftQueue is the number of raft messages waiting per peer and stream.
const raftQueue = 1024

// sendLoop sends one peer's raft messages of one stream in order until the
// node stops.
func (c *cluster) sendLoop(to uint64, nodeID string, kind byte, q <-chan raftnode.Message) {
	for {
		var m raftnode.Message
		select {
		case m = <-q:
		case <-c.ctx.Done():
			return
		}
		// A block of 20 MB takes a while on a busy link: the timeout grows
		// with the message so large appends are not cut off and resent.
		timeout := time.Second + time.Duration(len(m.Data))*time.Second/(20<<20)
		ctx, cancel := context.WithTimeout(c.ctx, timeout)
		err := c.net.Send(ctx, nodeID, kind, m.Data)
		cancel()
		m.Release()
		c.gone.sent(to, err, time.Now())
		if err != nil {
			c.raft.ReportUnreachable(to)
		}
	}
}

// AppliedIndex implements raftnode.StateMachine.
func (c *cluster) AppliedIndex() uint64 {
	v, err := c.node.store.AuxGet(keyApplied)
	if err != nil || len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// SaveApplied implements raftnode.StateMachine.
func (c *cluster) SaveApplied(index uint64) error {
	return c.node.store.AuxWrite([]ledger.Change{{Key: keyApplied, Value: binary.BigEndian.AppendUint64(nil, index)}})
}

// Apply implements raftnode.StateMachine: a committed block.
func (c *cluster) Apply(index uint64, data []byte) error {
	chain := c.node.chain
	c.mu.Lock()
	bb := c.inflight
	c.mu.Unlock()
	var b *ledger.Block
	if bb != nil && bytes.Equal(bb.Raw, data) {
		b = bb.Block // our own proposal: built, executed and encoded here
	} else {
		bb = nil
		var err error
		if b, err = chain.codec.DecodeBlock(data); err != nil {
			c.log.Warn("committed entry is not a block; skipped", "index", index, "err", err)
			return c.SaveApplied(index)
		}
	}
	c.catchUp.see(b.Header.Height)
	head := c.node.store.Head()
	if b.Header.Height > head.Height+1 {
		// A gap, not a stale proposal: the cluster committed blocks this
		// node does not have (a snapshot it never finished installing under
		// an older version, a store restored from a backup). Replaying the
		// log cannot bring them back: fetch them, then go on (the missing
		// blocks may be what makes the proposer a member here).
		c.log.Warn("committed block is ahead of this node's head: fetching the blocks in between", "height", b.Header.Height, "head", head.Height)
		prefer, _ := c.memberByAddr(b.Header.Proposer)
		if err := c.syncTo(b.Header.Height-1, prefer.NodeID); err != nil {
			c.catchUp.failed(err)
			return err
		}
		head = c.node.store.Head()
	}
	if b.Header.Height != head.Height+1 || b.Header.PrevHash != head.BlockHash {
		// A proposal built on a head that another block already extended.
		c.log.Debug("stale block proposal skipped", "height", b.Header.Height, "head", head.Height)
		return c.SaveApplied(index)
	}
	proposer, ok := c.memberByAddr(b.Header.Proposer)
	if !ok {
		c.log.Warn("block from a non-member skipped", "height", b.Header.Height)
		return c.SaveApplied(index)
	}
	if bb == nil {
		var err error
		if bb, err = chain.ExecuteBlock(c.ctx, b, proposer.PubKey); err != nil {
			if errors.Is(err, ErrStateMismatch) {
				return fmt.Errorf("kernel: halting: block %d from %s: %w", b.Header.Height, proposer.NodeID, err)
			}
			c.log.Warn("invalid committed block skipped", "height", b.Header.Height, "err", err)
			return c.SaveApplied(index)
		}
	}
	aux := ledger.Change{Key: keyApplied, Value: binary.BigEndian.AppendUint64(nil, index)}
	if err := chain.Commit(bb, aux); err != nil {
		return err
	}
	c.mu.Lock()
	if c.inflight != nil && c.inflight.Block.Header.Height <= b.Header.Height {
		c.inflight = nil
	}
	c.mu.Unlock()
	c.afterBlock(bb)
	return nil
}

// afterBlock finishes a block committed by the cluster: membership follows
// the ledger, then the node's usual bookkeeping.
func (c *cluster) afterBlock(bb *BuiltBlock) {
	c.catchUp.progressed()
	for _, p := range bb.Included {
		if isClusterPayload(p.Tx.Payload) {
			c.refreshMembers()
			break
		}
	}
	c.node.afterCommit(bb, 0, 0)
}

// headInfo is the raft snapshot payload: the head the snapshot stands for.
type headInfo struct {
	_      struct{} `cbor:",toarray"`
	Height uint64
	Hash   ledger.Hash
	Leader string
}

// Snapshot implements raftnode.StateMachine.
func (c *cluster) Snapshot() ([]byte, error) {
	h := c.node.store.Head()
	return c.node.chain.codec.Marshal(&headInfo{Height: h.Height, Hash: h.BlockHash, Leader: c.node.nodeID})
}

// Restore implements raftnode.StateMachine: the leader compacted the log
// past what this node has. Far behind, the node installs a member's state
// (statesync.go); a short gap is closed by re-executing blocks. Either is
// fetched from any member that can serve it; when none can, Restore asks
// to be retried (raftnode.ErrRetry) and the snapshot stays uninstalled,
// across restarts too, until it is. Only a state that contradicts the
// snapshot halts the node.
func (c *cluster) Restore(index uint64, data []byte) error {
	hi, err := c.decodeHeadInfo(data)
	if err != nil {
		// checkSnapshotPayload refused such payloads on receipt.
		return fmt.Errorf("kernel: snapshot at %d: %w: %w", index, err, ErrStateMismatch)
	}
	c.catchUp.see(hi.Height)
	c.catchUp.restoring(true)
	if head := c.node.store.Head().Height; head+stateSyncMinGap < hi.Height {
		if err := c.syncState(hi.Leader); err != nil {
			c.catchUp.failed(err)
			return err
		}
	}
	if err := c.syncTo(hi.Height, hi.Leader); err != nil {
		c.catchUp.failed(err)
		return err
	}
	got := c.node.store.Head()
	if got.Height < hi.Height {
		return fmt.Errorf("kernel: after sync head %d, snapshot says %d: %w", got.Height, hi.Height, ErrStateMismatch)
	}
	if got.Height == hi.Height && got.BlockHash != hi.Hash {
		return fmt.Errorf("kernel: after sync head %d %s, snapshot says %s: %w", got.Height, got.BlockHash, hi.Hash, ErrStateMismatch)
	}
	if err := c.SaveApplied(index); err != nil {
		return err
	}
	c.catchUp.restoring(false)
	return nil
}

func (c *cluster) decodeHeadInfo(data []byte) (headInfo, error) {
	var hi headInfo
	if err := c.node.chain.codec.Unmarshal(data, &hi); err != nil {
		return hi, err
	}
	if hi.Leader == "" {
		return hi, fmt.Errorf("kernel: snapshot of height %d names no member to sync from", hi.Height)
	}
	return hi, nil
}

// checkSnapshotPayload vets a raft snapshot from the network before raft
// takes it (raftnode.Config.CheckSnapshot): a payload Restore cannot use
// would otherwise be persisted and retried forever.
func (c *cluster) checkSnapshotPayload(data []byte) error {
	_, err := c.decodeHeadInfo(data)
	return err
}

// ConfChanged implements raftnode.StateMachine.
func (c *cluster) ConfChanged(cs *pb.ConfState, cc pb.ConfChangeI) {
	c.log.Info("raft membership changed", "voters", len(cs.GetVoters()), "learners", len(cs.GetLearners()))
	c.confLeft(cs.GetVoters(), cs.GetLearners())
	c.memMu.Lock()
	c.recon.inflight = time.Time{} // the change in flight took effect: the next may go
	c.memMu.Unlock()
}

// run drives raft and, while this node leads, proposes blocks.
func (c *cluster) run(ctx context.Context) error {
	defer c.stop()
	go func() {
		select {
		case <-ctx.Done():
			c.stop()
		case <-c.ctx.Done():
		}
	}()
	// raft runs on a context of its own so that every way out of this
	// loop (a removal too, not only ctx) stops it and waits for it: the
	// caller closes the store next, and raft's apply goroutine must not
	// touch a closed store.
	rctx, stopRaft := context.WithCancel(ctx)
	var raftErr error
	raftDone := make(chan struct{})
	go func() { raftErr = c.raft.Run(rctx); close(raftDone) }()
	defer func() { stopRaft(); <-raftDone }()
	interval := c.node.opts.Config.BlockInterval.Duration
	minSpacing := min(interval, 20*time.Millisecond)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	var lastBlock, lastCheck time.Time
	for {
		select {
		case <-ctx.Done():
			<-raftDone
			return raftErr
		case <-raftDone:
			return raftErr
		case <-c.gone.done:
			return c.gone.reason()
		case <-c.node.trigger:
		case <-t.C:
		}
		st := c.raft.Status()
		if time.Since(lastCheck) >= time.Second {
			lastCheck = time.Now()
			c.checkSync(st)
			c.checkRefused(lastCheck)
		}
		if st.Leader != c.lastLeader {
			c.lastLeader = st.Leader
			if st.Leader != 0 && st.Leader != c.id {
				c.forwardPending()
			}
		}
		if st.Leader != c.id {
			continue
		}
		if st.Restoring != 0 {
			// This node leads but is still installing a snapshot: a block
			// built on its head would be stale. Hand leadership over.
			c.handOff(ctx, st)
			continue
		}
		c.reconcile(ctx, st)
		c.mu.Lock()
		busy := c.inflight != nil && time.Since(c.inflightAt) < 3*time.Second
		c.mu.Unlock()
		// One block in flight at a time. A block goes out as soon as
		// transactions wait (at most one per minSpacing, so they batch under
		// load), and an empty one every block interval.
		pending := c.node.mempool.Size() > 0
		since := time.Since(lastBlock)
		if busy || !(pending && since >= minSpacing || since >= interval) {
			continue
		}
		lastBlock = time.Now()
		if err := c.propose(ctx); err != nil {
			if errors.Is(err, raftnode.ErrProposalDropped) && c.raft.Status().Leader != c.id {
				c.log.Debug("block not proposed: leadership moved", "err", err)
			} else {
				c.log.Warn("block proposal failed", "err", err)
			}
		}
	}
}

func (c *cluster) propose(ctx context.Context) error {
	n := c.node
	max := int(n.chain.params.MaxBlockTxs)
	cands := n.mempool.Reap(max + max/4)
	if len(cands) == 0 && !n.opts.Config.EmptyBlocks {
		return nil
	}
	bb, err := n.chain.BuildBlock(ctx, cands, n.clock().UnixMilli(), n.opts.NodeKey)
	if err != nil {
		return err
	}
	data, err := n.chain.codec.EncodeBlock(bb.Block)
	if err != nil {
		return err
	}
	bb.Raw = data
	c.mu.Lock()
	c.inflight, c.inflightAt = bb, time.Now()
	c.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	err = c.raft.Propose(pctx, data)
	if err != nil {
		c.mu.Lock()
		if c.inflight == bb {
			c.inflight = nil // it never entered the log
		}
		c.mu.Unlock()
	}
	return err
}

// Forward sends admitted transactions to the leader (when it is not us).
func (c *cluster) Forward(raws [][]byte) {
	leader := c.raft.Status().Leader
	if leader == 0 || leader == c.id || len(raws) == 0 {
		return
	}
	m, ok := c.member(leader)
	if !ok {
		return
	}
	// Chunks stay well under the gossip stream's frame limit (16 MiB):
	// a leader change can hand tens of thousands of pending txs over at once.
	const chunkBytes = 4 << 20
	for len(raws) > 0 {
		n, size := 0, 0
		for n < len(raws) && (n == 0 || size+len(raws[n]) <= chunkBytes) {
			size += len(raws[n]) + 4
			n++
		}
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		err := c.net.Send(ctx, m.NodeID, StreamTxs, encodeBatch(raws[:n]))
		cancel()
		if err != nil {
			c.log.Warn("forwarding transactions to the leader failed", "leader", m.NodeID, "txs", len(raws), "err", err)
			return
		}
		raws = raws[n:]
	}
}

// forwardPending re-sends the mempool to a new leader, so transactions
// admitted here are not stranded by a leader change.
func (c *cluster) forwardPending() {
	pending := c.node.mempool.Reap(1 << 20)
	raws := make([][]byte, len(pending))
	for i, p := range pending {
		raws[i] = p.Raw
	}
	c.Forward(raws)
}

func (c *cluster) receiveTxs(from string, msg []byte) {
	raws, err := decodeBatch(msg)
	if err != nil {
		c.log.Warn("bad tx batch from peer", "peer", from, "err", err)
		return
	}
	c.node.mempool.Add(raws)
}

func encodeBatch(raws [][]byte) []byte {
	var out []byte
	for _, r := range raws {
		out = binary.BigEndian.AppendUint32(out, uint32(len(r)))
		out = append(out, r...)
	}
	return out
}

func decodeBatch(b []byte) ([][]byte, error) {
	var raws [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("kernel: batch: truncated length")
		}
		l := binary.BigEndian.Uint32(b)
		if uint64(l) > uint64(len(b)-4) || l > ledger.MaxTxBytes {
			return nil, fmt.Errorf("kernel: batch: bad length %d", l)
		}
		raws = append(raws, b[4:4+l])
		b = b[4+l:]
	}
	return raws, nil
}

// Block sync on StreamSync: a request [syncBlocksReq, from u64, to u64] is
// answered with [syncBlock, block bytes] for each block the peer has in
// that range, then [syncBlocksEnd, last height sent u64]. (The state sync
// messages of statesync.go share the stream.)
const (
	syncBlocksReq byte = 0
	syncBlock     byte = 1
	syncBlocksEnd byte = 6
)

// blockSyncIdle is how long block sync waits for a peer's next answer
// before it asks the next member (NodeOptions.SyncTimeout overrides it).
const blockSyncIdle = 5 * time.Second

// syncServeMax bounds the blocks one request is answered with.
const syncServeMax = 100_000

// syncAnswer is a block-sync answer on its way to syncFrom.
type syncAnswer struct {
	from string
	kind byte
	data []byte
}

func (c *cluster) handleSync(from string, msg []byte) {
	if len(msg) == 0 {
		return
	}
	switch msg[0] {
	case syncBlocksReq:
		if len(msg) != 17 {
			return
		}
		c.serveBlocks(from, binary.BigEndian.Uint64(msg[1:]), binary.BigEndian.Uint64(msg[9:]))
	case syncBlock, syncBlocksEnd:
		if dropSyncAnswer(from) {
			return
		}
		c.mu.Lock()
		ch := c.syncCh
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- syncAnswer{from: from, kind: msg[0], data: append([]byte(nil), msg[1:]...)}:
			case <-time.After(c.syncIdle):
			case <-c.ctx.Done():
			}
		}
	case syncStateReq:
		c.states.handle(from, msg)
	case syncStateChunk, syncStateEnd, syncStateErr:
		if dropSyncAnswer(from) {
			return
		}
		c.states.handle(from, msg)
	}
}

// dropSyncAnswer is the failpoint at the sync boundary: it drops a sync
// answer (blocks or state) from peer when failpoint.SyncAnswerDrop is on
// and names peer, or "*" (every peer).
func dropSyncAnswer(peer string) bool {
	v, ok := failpoint.Eval(failpoint.SyncAnswerDrop)
	if !ok {
		return false
	}
	s, _ := v.(string)
	return s == "*" || s == peer
}

// serveBlocks sends peer the blocks lo..hi this node has, then the end.
func (c *cluster) serveBlocks(peer string, lo, hi uint64) {
	send := func(msg []byte) error {
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		defer cancel()
		return c.net.Send(ctx, peer, StreamSync, msg)
	}
	lo = max(lo, 1)
	hi = min(hi, c.node.store.Head().Height)
	if hi >= lo && hi-lo >= syncServeMax {
		hi = lo + syncServeMax - 1
	}
	last := lo - 1
	for h := lo; h <= hi; h++ {
		raw, err := c.node.store.BlockBytes(h)
		if err != nil {
			break // below what this node holds (it installed a state snapshot)
		}
		if err := send(append([]byte{syncBlock}, raw...)); err != nil {
			return
		}
		last = h
	}
	_ = send(binary.BigEndian.AppendUint64([]byte{syncBlocksEnd}, last))
}

// errSyncUnavailable: no member could serve what this node is missing now.
// The caller retries later (raftnode.ErrRetry).
var errSyncUnavailable = fmt.Errorf("kernel: no member could serve the missing blocks: %w", raftnode.ErrRetry)

// syncTo fetches and executes the blocks after the head up to height. It
// asks prefer first (a hint: the member that made the snapshot, or proposed
// the block that revealed the gap), then every other member in turn, each
// until it stops answering for syncIdle; rounds go on while some member
// makes progress. When a whole round brings nothing it returns an error
// wrapping errSyncUnavailable, to be retried; only a block whose execution
// contradicts its signed header (ErrStateMismatch) is final.
func (c *cluster) syncTo(height uint64, prefer string) error {
	for c.node.store.Head().Height < height {
		start := c.node.store.Head().Height
		var errs []error
		for _, peer := range c.syncPeers(prefer) {
			if c.node.store.Head().Height >= height {
				return nil
			}
			err := c.syncFrom(peer, height)
			if err == nil {
				continue
			}
			if errors.Is(err, ErrStateMismatch) || c.ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
			c.log.Info("block sync: a member could not serve; trying the next", "peer", peer, "head", c.node.store.Head().Height, "want", height, "err", err)
		}
		if c.node.store.Head().Height == start {
			return fmt.Errorf("kernel: block sync to %d: no block %d from %d member(s): %w: %w",
				height, start+1, len(errs), errors.Join(errs...), errSyncUnavailable)
		}
	}
	return nil
}

// syncPeers lists whom to ask for blocks: prefer, the leader, then every
// other member.
func (c *cluster) syncPeers(prefer string) []string {
	var out []string
	add := func(id string) {
		if id != "" && id != c.node.nodeID && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	if _, ok := c.member(RaftID(prefer)); ok {
		add(prefer)
	}
	if l, ok := c.member(c.raft.Status().Leader); ok {
		add(l.NodeID)
	}
	for _, m := range c.memberList() {
		add(m.NodeID)
	}
	return out
}

// syncFrom fetches blocks after the head up to height from one peer.
func (c *cluster) syncFrom(peer string, height uint64) error {
	ch := make(chan syncAnswer, 256)
	c.mu.Lock()
	c.syncCh = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.syncCh = nil
		c.mu.Unlock()
	}()
	req := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64([]byte{syncBlocksReq}, c.node.store.Head().Height+1), height)
	ctx, cancel := context.WithTimeout(c.ctx, c.syncIdle)
	err := c.net.Send(ctx, peer, StreamSync, req)
	cancel()
	if err != nil {
		return fmt.Errorf("kernel: block sync from %s: %w", peer, err)
	}
	idle := time.NewTimer(c.syncIdle)
	defer idle.Stop()
	for c.node.store.Head().Height < height {
		var a syncAnswer
		select {
		case a = <-ch:
		case <-idle.C:
			return fmt.Errorf("kernel: block sync from %s: no block %d within %s", peer, c.node.store.Head().Height+1, c.syncIdle)
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
		if a.from != peer {
			continue // a late answer to an earlier request
		}
		idle.Reset(c.syncIdle)
		if a.kind == syncBlocksEnd {
			if len(a.data) != 8 {
				return fmt.Errorf("kernel: block sync from %s: bad end of answer", peer)
			}
			if head := c.node.store.Head().Height; head < height {
				return fmt.Errorf("kernel: block sync from %s: it has blocks only up to %d (head %d, want %d)", peer, binary.BigEndian.Uint64(a.data), head, height)
			}
			return nil
		}
		b, err := c.node.chain.codec.DecodeBlock(a.data)
		if err != nil {
			return fmt.Errorf("kernel: block sync from %s: %w", peer, err)
		}
		if b.Header.Height != c.node.store.Head().Height+1 {
			continue
		}
		prop, ok := c.memberByAddr(b.Header.Proposer)
		if !ok {
			return fmt.Errorf("kernel: block sync from %s: block %d has an unknown proposer", peer, b.Header.Height)
		}
		bb, err := c.node.chain.ExecuteBlock(c.ctx, b, prop.PubKey)
		if err != nil {
			return fmt.Errorf("kernel: block sync from %s: block %d: %w", peer, b.Header.Height, err)
		}
		if err := c.node.chain.Commit(bb); err != nil {
			return err
		}
		c.afterBlock(bb)
	}
	return nil
}

// status fills the cluster fields of the node status.
func (c *cluster) status(s *client.Status) {
	st := c.raft.Status()
	s.Role, s.Term = st.Role, st.Term
	s.RaftCommit, s.RaftApplied = st.Commit, st.Applied
	v := c.catchUp.view(time.Now(), s.Height, st)
	s.SyncState, s.ClusterHeight, s.SyncError = v.state, v.target, v.lastErr
	if m, ok := c.member(st.Leader); ok {
		s.Leader = m.NodeID
	} else {
		s.Leader = ""
	}
	peers := map[string]client.Peer{}
	for _, p := range c.net.Peers() {
		peers[p.NodeID] = p
	}
	learners := map[uint64]bool{}
	for _, l := range st.Learners {
		learners[l] = true
	}
	s.Peers = []client.Peer{}
	for _, m := range c.memberList() {
		id := m.RaftID
		p := peers[m.NodeID]
		p.NodeID, p.Address = m.NodeID, m.Addr
		switch {
		case id == st.Leader:
			p.Role = "leader"
		case learners[id]:
			p.Role = "learner"
		default:
			p.Role = "follower"
		}
		if st.Progress != nil {
			p.Match = st.Progress[id]
		}
		p.Self = m.NodeID == c.node.nodeID
		p.Link = linkState(p, st.Role == "leader", id == st.Leader, st.Leader == 0)
		s.Peers = append(s.Peers, p)
	}
}

// checkSync looks at whether this node keeps up with the cluster (run
// calls it every second): it updates the sync metrics and says so in the
// log when the node falls behind, stalls or catches up.
func (c *cluster) checkSync(st raftnode.Status) {
	now := time.Now()
	head := c.node.store.Head().Height
	v := c.catchUp.view(now, head, st)
	m := c.node.metrics
	for _, s := range []string{client.SyncInSync, client.SyncCatchingUp, client.SyncStalled} {
		val := 0.0
		if s == v.state {
			val = 1
		}
		m.SyncState.WithLabelValues(s).Set(val)
	}
	m.SyncBehind.Set(float64(v.target - min(v.target, head)))
	ps := client.Status{Height: head}
	c.status(&ps)
	m.Raft.observe(st, c.id, ps.Peers)
	prev, warn := c.catchUp.transition(now, v.state)
	switch {
	case v.state == client.SyncStalled && warn:
		c.log.Warn("this node is behind the cluster and not catching up", "head", head, "cluster_height", v.target,
			"no_progress_for", now.Sub(v.progressAt).Round(time.Second), "restoring", st.Restoring != 0, "last_error", v.lastErr)
	case v.state == client.SyncCatchingUp && prev == client.SyncInSync:
		c.log.Info("this node is behind the cluster: catching up", "head", head, "cluster_height", v.target)
	case v.state == client.SyncInSync && prev != client.SyncInSync:
		c.log.Info("this node caught up with the cluster", "head", head)
	}
}

// handOff moves leadership away from this node while it installs a
// snapshot (at most every few seconds): raft may elect a node whose log is
// complete but whose state is not.
func (c *cluster) handOff(ctx context.Context, st raftnode.Status) {
	if time.Since(c.handoff) < 3*time.Second {
		return
	}
	var to, best uint64
	for _, id := range st.Voters {
		if match, ok := st.Progress[id]; ok && id != c.id && (to == 0 || match > best) {
			to, best = id, match
		}
	}
	if to == 0 {
		return
	}
	c.handoff = time.Now()
	c.log.Info("leading while a snapshot is not installed yet: handing leadership over", "to", to, "restoring", st.Restoring)
	c.raft.TransferLeadership(ctx, to)
}

// dropUnknownPeer: a raft message from a node that is not a member.
const dropUnknownPeer = "unknown_peer"

// raftDropped counts a raft message that was not given to raft (see
// raftnode.DropError) and warns about it, at most once per peer and reason
// every dropLogEvery.
func (c *cluster) raftDropped(e *raftnode.DropError) {
	c.node.metrics.RaftDropped.WithLabelValues(e.Reason).Inc()
	peer := fmt.Sprintf("%x", e.From)
	if m, ok := c.member(e.From); ok {
		peer = m.NodeID
	}
	if n, ok := c.drops.allow(peer+"/"+e.Reason, time.Now()); ok {
		c.log.Warn("raft message from a peer dropped", "peer", peer, "reason", e.Reason, "type", e.Type.String(), "err", e.Err, "dropped_since_last_warning", n)
	}
}

// dropLogEvery spaces the warnings about dropped raft messages.
const dropLogEvery = 10 * time.Second

// dropLog rate-limits a warning per key.
type dropLog struct {
	mu   sync.Mutex
	last map[string]time.Time
	n    map[string]int
}

// allow reports whether to log for key now, with how many were not logged
// since the last time.
func (d *dropLog) allow(key string, now time.Time) (int, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last == nil {
		d.last, d.n = map[string]time.Time{}, map[string]int{}
	}
	if last, ok := d.last[key]; ok && now.Sub(last) < dropLogEvery {
		d.n[key]++
		return 0, false
	}
	if len(d.last) > 1024 {
		clear(d.last) // bounded: keys are peers × reasons
		clear(d.n)
	}
	n := d.n[key]
	d.last[key], d.n[key] = now, 0
	return n, true
}

// linkState names the state of this node's link to a peer: whether a
// missing connection is a fault depends on whether raft needs it (the
// leader talks to everyone, a follower only to the leader; with no leader
// known, voters talk to each other to elect one).
func linkState(p client.Peer, selfLeads, peerLeads, noLeader bool) string {
	switch {
	case p.Self:
		return client.LinkSelf
	case p.Connected:
		return client.LinkConnected
	case selfLeads || peerLeads || noLeader:
		return client.LinkDown
	}
	return client.LinkIdle
}
