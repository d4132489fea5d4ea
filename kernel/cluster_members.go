package kernel

import (
	"context"
	"fmt"
	"sort"
	"time"

	pb "go.etcd.io/raft/v3/raftpb"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/net/raftnode"
)

// Membership: the ledger says who is in the cluster (member records written
// by signed MemberAdd/Promote/Remove transactions). Every node follows it
// for whom it talks to; the leader also makes raft's configuration follow
// it, one ConfChange at a time, and promotes the learners that were
// admitted as voters (MemberAdd.AsVoter) once they caught up. Any other
// learner stays one until an operator signs a MemberPromote.

// How long a proposed ConfChange may stay unapplied before the leader
// proposes again (raft drops a proposal made while another is pending).
const confRetry = 2 * time.Second

// reconcileEvery spaces the leader's membership comparisons.
const reconcileEvery = 100 * time.Millisecond

// A learner is promoted when its log is at most this many entries behind
// the commit index; promotions are re-submitted after promoteRetry.
const (
	promoteSlack = 16
	promoteRetry = 10 * time.Second
)

// reconciler is the leader's memory of changes in flight (under memMu).
type reconciler struct {
	checked  time.Time            // last comparison of ledger and raft membership
	inflight time.Time            // when the last ConfChange was proposed
	promoted map[uint64]time.Time // learner raft id → when its promotion was submitted
}

func (c *cluster) member(raftID uint64) (Member, bool) {
	c.memMu.RLock()
	defer c.memMu.RUnlock()
	m, ok := c.members[raftID]
	return m, ok
}

func (c *cluster) memberByAddr(a ledger.Address) (Member, bool) {
	c.memMu.RLock()
	defer c.memMu.RUnlock()
	m, ok := c.byAddr[a]
	return m, ok
}

// memberList is the members sorted by raft id.
func (c *cluster) memberList() []Member {
	c.memMu.RLock()
	out := make([]Member, 0, len(c.members))
	for _, m := range c.members {
		out = append(out, m)
	}
	c.memMu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].RaftID < out[j].RaftID })
	return out
}

// setMembers installs the ledger's member list. Until the ledger lists this
// node (a joining node still catching up) the seed members it was given
// when it joined are kept too, so it can talk to the cluster.
func (c *cluster) setMembers(list []Member) error {
	members := map[uint64]Member{}
	byAddr := map[ledger.Address]Member{}
	selfListed := false
	for _, m := range list {
		members[m.RaftID] = m
		byAddr[m.PubKey.Address()] = m
		if m.NodeID == c.node.nodeID {
			selfListed = true
		}
	}
	if !selfListed {
		for _, m := range c.seed {
			if _, ok := members[m.RaftID]; !ok {
				members[m.RaftID] = m
				byAddr[m.PubKey.Address()] = m
			}
		}
	}
	all := make([]Member, 0, len(members))
	for _, m := range members {
		all = append(all, m)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].RaftID < all[j].RaftID })
	c.memMu.Lock()
	removed := c.selfListed && !selfListed
	c.members, c.byAddr, c.selfListed = members, byAddr, selfListed
	c.memMu.Unlock()
	if removed {
		c.log.Warn("this node was removed from the cluster: it no longer takes part in ordering", "node_id", c.node.nodeID)
	}
	return c.net.SetMembers(all)
}

// refreshMembers re-reads the membership from the committed state.
func (c *cluster) refreshMembers() {
	list, err := MembersFromLedger(c.node.store)
	if err != nil {
		c.log.Error("cluster: read membership from the ledger", "err", err)
		return
	}
	if err := c.setMembers(list); err != nil {
		c.log.Error("cluster: apply membership", "err", err)
		return
	}
	c.log.Info("cluster membership from the ledger", "members", len(list))
}

// reconcile runs on the leader: it proposes the first ConfChange that
// brings raft's configuration closer to the ledger's member records, or,
// when they agree, promotes a learner that has caught up.
func (c *cluster) reconcile(ctx context.Context, st raftnode.Status) {
	c.memMu.Lock()
	// The leader loop wakes every few milliseconds; membership changes
	// are rare, so compare at most every reconcileEvery.
	if time.Since(c.recon.checked) < reconcileEvery || !c.recon.inflight.IsZero() && time.Since(c.recon.inflight) < confRetry {
		c.memMu.Unlock()
		return
	}
	c.recon.checked = time.Now()
	c.memMu.Unlock()
	cc := c.nextConfChange(st)
	if cc == nil {
		c.maybePromote(ctx, st)
		return
	}
	c.memMu.Lock()
	c.recon.inflight = time.Now()
	c.memMu.Unlock()
	c.log.Info("proposing raft membership change", "type", cc.GetType().String(), "raft_id", cc.GetNodeId())
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if err := c.raft.ProposeConfChange(pctx, cc); err != nil {
		c.log.Warn("raft membership change not proposed", "err", err)
	}
}

// nextConfChange is the first difference between the ledger's members and
// raft's configuration, as a ConfChange, or nil.
func (c *cluster) nextConfChange(st raftnode.Status) *pb.ConfChange {
	inRaft := map[uint64]ledger.MemberRole{}
	for _, v := range st.Voters {
		inRaft[v] = ledger.RoleVoter
	}
	for _, l := range st.Learners {
		inRaft[l] = ledger.RoleLearner
	}
	ledgerIDs := map[uint64]bool{}
	for _, m := range c.memberList() {
		ledgerIDs[m.RaftID] = true
		switch have := inRaft[m.RaftID]; {
		case m.Role == ledger.RoleLearner && have == 0:
			return confChange(pb.ConfChangeType_ConfChangeAddLearnerNode, m.RaftID, m.NodeID)
		case m.Role == ledger.RoleVoter && have != ledger.RoleVoter:
			return confChange(pb.ConfChangeType_ConfChangeAddNode, m.RaftID, m.NodeID)
		}
	}
	ids := make([]uint64, 0, len(inRaft))
	for id := range inRaft {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		if !ledgerIDs[id] {
			return confChange(pb.ConfChangeType_ConfChangeRemoveNode, id, "")
		}
	}
	return nil
}

func confChange(t pb.ConfChangeType, raftID uint64, nodeID string) *pb.ConfChange {
	return &pb.ConfChange{Type: t.Enum(), NodeId: &raftID, Context: []byte(nodeID)}
}

// maybePromote submits a MemberPromote for a learner admitted as a voter
// (MemberAdd.AsVoter) whose log has caught up with the leader's commit
// index. Learners admitted as learners are left alone: becoming a voter
// changes the quorum, which is the operators' decision.
func (c *cluster) maybePromote(ctx context.Context, st raftnode.Status) {
	learner := map[uint64]bool{}
	for _, l := range st.Learners {
		learner[l] = true
	}
	for _, m := range c.memberList() {
		if m.Role != ledger.RoleLearner || !m.AsVoter || !learner[m.RaftID] {
			continue
		}
		match, ok := st.Progress[m.RaftID]
		if !ok || match+promoteSlack < st.Commit {
			continue
		}
		c.memMu.Lock()
		last := c.recon.promoted[m.RaftID]
		due := last.IsZero() || time.Since(last) > promoteRetry
		if due {
			c.recon.promoted[m.RaftID] = time.Now()
		}
		c.memMu.Unlock()
		if !due {
			continue
		}
		c.log.Info("learner caught up: promoting it to voter", "node_id", m.NodeID, "match", match, "commit", st.Commit)
		if _, err := c.node.submitNodeTx(ctx, &ledger.MemberPromote{NodeID: m.NodeID}, false); err != nil {
			c.log.Warn("promotion not submitted", "node_id", m.NodeID, "err", err)
		}
		return
	}
}

// errNotVoter: a join request reached a node that cannot admit anyone.
var errNotVoter = fmt.Errorf("kernel: this node is not a voting member and cannot admit new members")
