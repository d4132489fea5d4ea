package kernel

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sos-kernel/sos/ledger"
)

// A removed member must learn that it was removed and stop, instead of
// campaigning forever (raft's pre-candidate state) against members that
// refuse it. It learns it one of two ways:
//
//  1. It applies the block whose member_remove takes it out (the usual
//     case): it records the height (aux key cluster/removed) and stops with
//     ErrRemoved "at height H". A restart of that home says so again.
//  2. It missed that block: the leader applied it first and the members
//     dropped their links to it before it learned the block was committed.
//     Its own ledger still lists it, but every connection it makes is
//     refused by the members as a non-member (PeerNet Send errors wrapping
//     ErrRefusedNotMember). When a majority of the other voters have refused
//     it without a single successful send for removedGrace, it stops with
//     ErrRemoved too.

// ErrRemoved: this node was removed from the cluster (a member_remove
// naming it was committed); it no longer takes part in ordering.
var ErrRemoved = errors.New("kernel: this node was removed from the cluster")

// ErrRefusedNotMember is what a PeerNet's Send wraps when the peer refused
// this node as not (or no longer) a member.
var ErrRefusedNotMember = errors.New("kernel: the peer refuses this node as a non-member")

// removedGrace is how long a majority of the other voters must refuse this
// node before it concludes it was removed: long enough for a lagging member
// to catch up with a membership it has not applied yet.
const removedGrace = 5 * time.Second

// keyRemoved is the aux key holding the height of the block that removed
// this node (8 bytes big endian).
var keyRemoved = []byte("cluster/removed")

// removal tracks whether this node was removed.
type removal struct {
	mu      sync.Mutex
	done    chan struct{} // closed once err is set
	err     error
	refused map[uint64]time.Time // voter raft id → first refusal of the current streak
	grace   time.Duration
	// behind is the height of a block that removed this node while it was
	// replaying old blocks (0: none): refusals then count even though its
	// ledger no longer lists it.
	behind uint64
}

func (r *removal) init() {
	r.done, r.refused, r.grace = make(chan struct{}), map[uint64]time.Time{}, removedGrace
}

// set records why the node stops (the first reason wins) and reports
// whether it was the first.
func (r *removal) set(err error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return false
	}
	r.err = err
	close(r.done)
	return true
}

func (r *removal) reason() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// sent records the outcome of a send to a peer: a refusal as a non-member
// starts (or continues) that peer's streak, anything else ends it (a
// timeout or unreachable peer says nothing about membership).
func (r *removal) sent(to uint64, err error, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if errors.Is(err, ErrRefusedNotMember) {
		if _, ok := r.refused[to]; !ok {
			r.refused[to] = now
		}
		return
	}
	if err == nil {
		delete(r.refused, to)
	}
}

// refusing counts the voters among others that have refused this node for
// at least the grace period.
func (r *removal) refusing(others []uint64, now time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range others {
		if at, ok := r.refused[id]; ok && now.Sub(at) >= r.grace {
			n++
		}
	}
	return n
}

// removedSelf is called when the ledger stops listing this node (the block
// at height took it out): it records that and stops the node, saying so
// once.
func (c *cluster) removedSelf(height uint64) {
	if v := c.catchUp.view(time.Now(), height, c.raft.Status()); v.target > height+applySlack {
		// Replaying old blocks (a restarted node far behind): a later block
		// may add it again, and the members still accept it if so.
		c.log.Info("this node was removed from the cluster at this height; it is behind, so it keeps following in case a later block adds it again", "height", height, "cluster_height", v.target)
		c.gone.mu.Lock()
		c.gone.behind = height
		c.gone.mu.Unlock()
		return
	}
	if err := c.node.store.AuxWrite([]ledger.Change{{Key: keyRemoved, Value: binary.BigEndian.AppendUint64(nil, height)}}); err != nil {
		c.log.Error("cluster: record the removal", "err", err)
	}
	err := fmt.Errorf("%w at height %d (a member_remove naming it was committed): it stops; its data stays in this home", ErrRemoved, height)
	if c.gone.set(err) {
		c.log.Warn("this node was removed from the cluster: stopping", "node_id", c.node.nodeID, "height", height)
	}
}

// checkRefused stops the node when a majority of the other voters have
// refused it as a non-member for the grace period (run calls it every
// second).
func (c *cluster) checkRefused(now time.Time) {
	c.memMu.RLock()
	listed := c.selfListed
	c.memMu.RUnlock()
	c.gone.mu.Lock()
	behind := c.gone.behind
	c.gone.mu.Unlock()
	if !listed && behind == 0 {
		return // a joining node the ledger does not list yet: refusals are expected
	}
	var others []uint64
	for _, m := range c.memberList() {
		if m.Role == ledger.RoleVoter && m.NodeID != c.node.nodeID {
			others = append(others, m.RaftID)
		}
	}
	if len(others) == 0 {
		return
	}
	n := c.gone.refusing(others, now)
	if 2*n <= len(others) {
		return
	}
	head := c.node.store.Head().Height
	err := fmt.Errorf("%w: %d of %d other voting members refuse its connections as a non-member; its ledger ends at height %d, before the block that removed it",
		ErrRemoved, n, len(others), head)
	if !listed {
		err = fmt.Errorf("%w at height %d: %d of %d other voting members refuse its connections as a non-member", ErrRemoved, behind, n, len(others))
	}
	if c.gone.set(err) {
		c.log.Warn("this node was removed from the cluster (the members refuse it): stopping", "node_id", c.node.nodeID, "refusing", n, "voters", len(others), "head", head)
	}
}

// removedAt reads the height at which this node was removed, if it was.
func removedAt(store *ledger.Store) (uint64, bool) {
	v, err := store.AuxGet(keyRemoved)
	if err != nil || len(v) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(v), true
}
