package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/net/raftnode"
)

// State sync: a node that receives a raft snapshot while far behind (a new
// member, or one that was offline while the log was compacted) installs the
// leader's current state instead of re-executing every block. The exchange
// runs on the sync stream:
//
//	request   [syncStateReq]
//	answer    [syncStateChunk, records...]* [syncStateEnd, CBOR stateEnd]
//	          or [syncStateErr, message]
//
// The state is accepted only if it hashes to the state root of the head
// block sent with it (ledger.StateImport), and that block must carry a
// valid signature of a member.
const (
	syncStateReq   byte = 2
	syncStateChunk byte = 3
	syncStateEnd   byte = 4
	syncStateErr   byte = 5
)

// stateChunkBytes is the payload of one state message: large enough that
// per-message costs vanish, small enough to stream.
const stateChunkBytes = 1 << 20

// stateSyncMinGap is how far behind a snapshot must find a node for it to
// sync state rather than blocks.
const stateSyncMinGap = 64

// stateSyncIdle bounds the wait for the next state message before the
// next member is asked (NodeOptions.SyncTimeout overrides it).
const stateSyncIdle = 30 * time.Second

// stateSyncer serves and fetches state snapshots over a PeerNet.
type stateSyncer struct {
	ctx   context.Context
	store *ledger.Store
	codec *ledger.Codec
	net   PeerNet
	log   *slog.Logger
	idle  time.Duration // bounds the wait for the next state message
	// checkBlock decodes and authenticates the head block of a snapshot.
	checkBlock func(raw []byte) (*ledger.Block, error)
	// progress is called for every chunk received.
	progress func()

	mu      sync.Mutex
	in      chan stateMsg // messages of the fetch in progress
	serving sync.Mutex    // one export at a time
}

// stateMsg is a state sync message on its way to fetch.
type stateMsg struct {
	from string
	msg  []byte
}

// handle takes a state message from the sync stream.
func (s *stateSyncer) handle(from string, msg []byte) {
	if msg[0] == syncStateReq {
		go func() {
			s.serving.Lock()
			defer s.serving.Unlock()
			s.serve(from)
		}()
		return
	}
	s.mu.Lock()
	ch := s.in
	s.mu.Unlock()
	if ch != nil {
		// Blocking here holds the sender back (stream flow control) while
		// the importer catches up.
		select {
		case ch <- stateMsg{from: from, msg: msg}:
		case <-time.After(s.idle):
		case <-s.ctx.Done():
		}
	}
}

// stateEnd closes a state stream.
type stateEnd struct {
	_      struct{} `cbor:",toarray"`
	Block  []byte   // the head block the state belongs to
	Chunks uint64
	Bytes  uint64
}

// serve streams this node's committed state to peer.
func (s *stateSyncer) serve(peer string) {
	send := func(msg []byte) error {
		ctx, cancel := context.WithTimeout(s.ctx, s.idle)
		defer cancel()
		return s.net.Send(ctx, peer, StreamSync, msg)
	}
	start := time.Now()
	var chunks, bytes uint64
	head, block, err := s.store.ExportState(stateChunkBytes, func(chunk []byte) error {
		chunks++
		bytes += uint64(len(chunk))
		return send(append([]byte{syncStateChunk}, chunk...))
	})
	if err == nil {
		var end []byte
		if end, err = s.codec.Marshal(&stateEnd{Block: block, Chunks: chunks, Bytes: bytes}); err == nil {
			err = send(append([]byte{syncStateEnd}, end...))
		}
	}
	if err != nil {
		s.log.Warn("state sync: serving failed", "peer", peer, "err", err)
		_ = send(append([]byte{syncStateErr}, err.Error()...))
		return
	}
	s.log.Info("state sync: served", "peer", peer, "height", head.Height, "bytes", bytes, "took", time.Since(start))
}

// fetch fetches and installs peer's current state; it returns the head
// block the state belongs to.
func (s *stateSyncer) fetch(peer string) (*ledger.Block, error) {
	ch := make(chan stateMsg, 16)
	s.mu.Lock()
	s.in = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.in = nil
		s.mu.Unlock()
	}()
	start := time.Now()
	ctx, cancel := context.WithTimeout(s.ctx, min(5*time.Second, s.idle))
	err := s.net.Send(ctx, peer, StreamSync, []byte{syncStateReq})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("kernel: state sync from %s: %w", peer, err)
	}
	im, err := s.store.BeginImport()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*ledger.Block, error) {
		im.Abort()
		return nil, fmt.Errorf("kernel: state sync from %s: %w", peer, err)
	}
	idle := time.NewTimer(s.idle)
	defer idle.Stop()
	var chunks uint64
	for {
		var sm stateMsg
		select {
		case sm = <-ch:
		case <-idle.C:
			return fail(fmt.Errorf("nothing for %s after %d chunks", s.idle, chunks))
		case <-s.ctx.Done():
			return fail(s.ctx.Err())
		}
		if sm.from != peer {
			continue // the rest of an earlier, abandoned fetch
		}
		idle.Reset(s.idle)
		msg := sm.msg
		switch msg[0] {
		case syncStateChunk:
			chunks++
			if err := im.Add(msg[1:]); err != nil {
				return fail(fmt.Errorf("chunk %d: %w", chunks, err))
			}
			if s.progress != nil {
				s.progress()
			}
			continue
		case syncStateErr:
			return fail(fmt.Errorf("the peer failed to serve: %s", msg[1:]))
		}
		// syncStateEnd
		var end stateEnd
		if err := s.codec.Unmarshal(msg[1:], &end); err != nil {
			return fail(err)
		}
		if end.Chunks != chunks || end.Bytes != uint64(im.Bytes()) {
			return fail(fmt.Errorf("got %d chunks (%d bytes), sender sent %d (%d): %w", chunks, im.Bytes(), end.Chunks, end.Bytes, ledger.ErrBadSnapshot))
		}
		b, err := s.checkBlock(end.Block)
		if err != nil {
			return fail(err)
		}
		received := time.Since(start)
		if err := im.Finish(b); err != nil {
			return nil, fmt.Errorf("kernel: state sync from %s: %w", peer, err)
		}
		took := time.Since(start)
		s.log.Info("state sync: installed", "peer", peer, "height", b.Header.Height, "records", im.Records(),
			"bytes", im.Bytes(), "received_in", received, "took", took, "MB/s", float64(im.Bytes())/1e6/took.Seconds())
		return b, nil
	}
}

// syncState installs the current state of a member: prefer first, then
// every other member in turn. When none can serve it now, the error wraps
// errSyncUnavailable (retried later).
func (c *cluster) syncState(prefer string) error {
	var errs []error
	for _, peer := range c.syncPeers(prefer) {
		b, err := c.states.fetch(peer)
		if err != nil {
			if c.ctx.Err() != nil {
				return err
			}
			errs = append(errs, err)
			c.log.Info("state sync: a member could not serve; trying the next", "peer", peer, "err", err)
			continue
		}
		c.node.afterStateSync(b)
		c.refreshMembers()
		c.catchUp.progressed()
		return nil
	}
	return fmt.Errorf("kernel: state sync from %d member(s): %w: %w", len(errs), errors.Join(errs...), errSyncUnavailable)
}

// checkSyncedBlock decodes the head block of a state snapshot and checks
// it belongs to this chain and is signed by its proposer, a member.
func (c *cluster) checkSyncedBlock(raw []byte) (*ledger.Block, error) {
	codec := c.node.chain.codec
	b, err := codec.DecodeBlock(raw)
	if err != nil {
		return nil, err
	}
	if b.Header.ChainID != c.node.chain.genesis.ChainID {
		return nil, fmt.Errorf("head block of chain %q: %w", b.Header.ChainID, ledger.ErrBadSnapshot)
	}
	prop, ok := c.memberByAddr(b.Header.Proposer)
	if !ok {
		return nil, fmt.Errorf("head block %d proposed by %s, not a member known here: %w", b.Header.Height, b.Header.Proposer, ledger.ErrBadSnapshot)
	}
	if err := codec.VerifyBlockSignature(b, prop.PubKey); err != nil {
		return nil, fmt.Errorf("head block %d: %w", b.Header.Height, err)
	}
	return b, nil
}

// afterStateSync resets what depended on the replaced state.
func (n *Node) afterStateSync(b *ledger.Block) {
	n.mempool.Reset(errors.New("kernel: the node installed a state snapshot; resubmit"))
	n.metrics.Height.Set(float64(b.Header.Height))
}

// catchUp tracks whether this node keeps up with the cluster: the highest
// block height it knows the cluster committed (from committed entries and
// snapshots), whether a snapshot is being installed, and when the node last
// got closer (a block committed, a chunk of state received).
type catchUp struct {
	mu         sync.Mutex
	target     uint64
	restore    bool
	progressAt time.Time
	lastErr    string
	stallAfter time.Duration
	leaderAt   time.Time // last time raft knew a leader
	state      string    // last state reported by transition
	warnedAt   time.Time // last stalled warning
}

// syncView is catchUp's answer for one moment.
type syncView struct {
	state      string // client.SyncInSync, SyncCatchingUp or SyncStalled
	target     uint64 // the cluster height this node knows of (≥ its head)
	progressAt time.Time
	lastErr    string
}

// applySlack is how many committed raft entries may wait to be applied
// before a node counts as behind (a block or two in flight is normal).
const applySlack = 8

// stalledWarnEvery spaces the warnings of a node that stays stalled.
const stalledWarnEvery = 30 * time.Second

func (u *catchUp) init(now time.Time, stallAfter time.Duration) {
	u.progressAt, u.leaderAt, u.stallAfter, u.state = now, now, stallAfter, client.SyncInSync
}

// see records that the cluster committed a block at height.
func (u *catchUp) see(height uint64) {
	u.mu.Lock()
	u.target = max(u.target, height)
	u.mu.Unlock()
}

// progressed records that the node got closer to the cluster.
func (u *catchUp) progressed() {
	u.mu.Lock()
	u.progressAt = time.Now()
	u.mu.Unlock()
}

// restoring records that a snapshot is (or is no longer) being installed.
func (u *catchUp) restoring(on bool) {
	u.mu.Lock()
	u.restore = on
	if !on {
		u.lastErr = ""
	}
	u.mu.Unlock()
}

// failed records why catching up failed last.
func (u *catchUp) failed(err error) {
	u.mu.Lock()
	u.lastErr = err.Error()
	u.mu.Unlock()
}

// view says where the node stands: in sync, or behind and either getting
// closer or not (stalled: no progress for stallAfter). A node that has
// known no leader for stallAfter (cut off from the majority) cannot tell
// how far behind it is, and counts as stalled too.
func (u *catchUp) view(now time.Time, head uint64, st raftnode.Status) syncView {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.target = max(u.target, head)
	if st.Leader != 0 {
		u.leaderAt = now
	}
	behind := u.restore || st.Restoring != 0 || head < u.target || st.Commit > st.Applied+applySlack
	v := syncView{state: client.SyncInSync, target: u.target, progressAt: u.progressAt, lastErr: u.lastErr}
	if leaderless := now.Sub(u.leaderAt); leaderless > u.stallAfter {
		v.state, v.progressAt = client.SyncStalled, u.leaderAt
		v.lastErr = fmt.Sprintf("no raft leader for %s (cut off from the majority of the voters?)", leaderless.Round(time.Second))
		return v
	}
	switch {
	case !behind:
		u.progressAt = now // in sync is progress: a later stall counts from here
		v.progressAt, v.lastErr = now, ""
	case now.Sub(u.progressAt) > u.stallAfter:
		v.state = client.SyncStalled
	default:
		v.state = client.SyncCatchingUp
	}
	return v
}

// transition records the state just computed; it returns the previous one
// and whether a stalled node is due a warning.
func (u *catchUp) transition(now time.Time, state string) (string, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	prev := u.state
	u.state = state
	warn := state == client.SyncStalled && (prev != client.SyncStalled || now.Sub(u.warnedAt) >= stalledWarnEvery)
	if warn {
		u.warnedAt = now
	}
	return prev, warn
}

// stallAfter is how long a node behind the cluster may go without progress
// before it counts as stalled: long enough for a round of block sync over
// the members to time out.
func (c *cluster) stallAfter() time.Duration {
	return max(4*c.syncIdle, 2*time.Second)
}
