package kernel

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/sos-kernel/sos/internal/failpoint"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
)

// enableFailpoint turns a failpoint on for the rest of the test (or until
// the returned function turns it off).
func enableFailpoint(t *testing.T, name, terms string) func() {
	t.Helper()
	off, err := failpoint.Enable(name, terms)
	if err != nil {
		t.Fatal(err)
	}
	done := false
	stop := func() {
		if !done {
			done = true
			off()
		}
	}
	t.Cleanup(stop)
	return stop
}

// TestClusterCatchesUpWhenSyncSourcesFail: a follower that was down gets a
// raft snapshot and must fetch the blocks it covers from other members.
//
//  1. No member answers (failpoint SyncAnswerDrop on every peer): the
//     follower does not halt; it reports that it is stalled (status, metric)
//     and keeps retrying. It is stopped in the middle of that restore and
//     started again with the members answering: it installs the snapshot
//     (it does not take it as installed) and reaches the cluster's height.
//  2. The member it syncs from, the leader, is killed mid-restore: the
//     follower fetches from the remaining member, the two elect a leader
//     and go on together.
//
// Before, the first restore failure halted the node ("block sync from …:
// no block N within 10 s"), and after a restart it stayed at its old height
// for good while reporting itself a follower.
func TestClusterCatchesUpWhenSyncSourcesFail(t *testing.T) {
	tc := newTunedCluster(t, 3, func(o *NodeOptions) {
		o.Config.BlockInterval = Duration{50 * time.Millisecond}
		o.RaftCompactEvery = 8
		o.SyncTimeout = 300 * time.Millisecond
	})
	l := tc.leader(5 * time.Second)
	tc.converge(2, 10*time.Second)
	f := (l + 1) % 3
	fid := tc.members[f].key.Public().Fingerprint()

	// 1. Nobody answers.
	behind := func() {
		tc.stop(f)
		from := tc.members[l].node.store.Head().Height
		tc.waitFor(10*time.Second, "the cluster moves past the stopped node's log", func() bool {
			return tc.members[l].node.store.Head().Height > from+24
		})
	}
	behind()
	silence := enableFailpoint(t, failpoint.SyncAnswerDrop, `return("*")`)
	tc.start(f)
	fn := tc.members[f].node
	// (failpoint.Count would tell too, but gofail's count is not safe to
	// read while the failpoint fires.)
	tc.waitFor(10*time.Second, "the follower takes a snapshot it cannot install", func() bool {
		return fn.cluster.raft.Status().Restoring != 0 && fn.Status().SyncError != ""
	})
	tc.waitFor(10*time.Second, "the follower says it is stalled", func() bool {
		s := fn.Status()
		return s.SyncState == client.SyncStalled && s.ClusterHeight > s.Height && s.SyncError != "" &&
			metricValue(t, fn, "sos_sync_state", "state", client.SyncStalled) == 1
	})
	if err := fn.cluster.raft.Err(); err != nil {
		t.Fatalf("a sync source that does not answer halted the follower: %v", err)
	}
	tc.stop(f) // in the middle of the restore
	silence()
	tc.start(f)
	h := tc.converge(tc.members[l].node.store.Head().Height, 20*time.Second)
	tc.waitFor(5*time.Second, "the follower says it is in sync", func() bool {
		return tc.members[f].node.Status().SyncState == client.SyncInSync
	})

	// 2. The sync source dies mid-restore.
	l = tc.leader(5 * time.Second)
	if l == f {
		tc.members[l].node.cluster.raft.TransferLeadership(t.Context(), tc.members[(f+1)%3].node.cluster.self.RaftID)
		tc.waitFor(5*time.Second, "leadership moved off the follower", func() bool {
			l = tc.leader(5 * time.Second)
			return l != f
		})
	}
	other := 3 - l - f
	behind()
	silence = enableFailpoint(t, failpoint.SyncAnswerDrop, `return("*")`)
	tc.start(f)
	fn = tc.members[f].node
	tc.waitFor(10*time.Second, "the follower is in the middle of a restore", func() bool {
		return fn.cluster.raft.Status().Restoring != 0 && fn.Status().SyncError != ""
	})
	last := tc.members[l].node.store.Head().Height
	tc.stop(l)
	silence()
	tc.waitFor(20*time.Second, "the follower and the remaining member go on past the dead leader's height", func() bool {
		return tc.members[f].node.store.Head().Height > last+5 && tc.members[other].node.store.Head().Height > last+5
	})
	tc.converge(max(h, last+5), 10*time.Second)
	if err := tc.members[f].node.cluster.raft.Err(); err != nil {
		t.Fatalf("follower %s halted: %v", fid[:8], err)
	}
}

// TestClusterFetchesMissingBlocks: a node whose store says it applied raft
// entries whose blocks it never stored — what a snapshot taken as
// installed left behind under the previous version — sees committed blocks
// beyond its head. That is a gap, not a stale proposal: it fetches the
// blocks in between and follows the cluster again. (Before, it logged
// "stale block proposal skipped" at debug level for every block, forever.)
func TestClusterFetchesMissingBlocks(t *testing.T) {
	tc := newTunedCluster(t, 3, func(o *NodeOptions) {
		o.Config.BlockInterval = Duration{20 * time.Millisecond}
		o.SyncTimeout = 300 * time.Millisecond
	})
	l := tc.leader(5 * time.Second)
	tc.converge(3, 10*time.Second)
	f := (l + 1) % 3
	tc.stop(f)
	// The follower's store claims 10 more applied raft entries than it has.
	st, err := ledger.OpenDir(tc.members[f].home, ledger.StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.AuxGet(keyApplied)
	if err != nil || len(v) != 8 {
		t.Fatalf("applied index: %x, %v", v, err)
	}
	head := st.Head().Height
	if err := st.AuxWrite([]ledger.Change{{Key: keyApplied, Value: binary.BigEndian.AppendUint64(nil, binary.BigEndian.Uint64(v)+10)}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	from := tc.members[l].node.store.Head().Height
	tc.waitFor(10*time.Second, "the cluster moves on", func() bool { return tc.members[l].node.store.Head().Height > from+15 })
	tc.start(f)
	h := tc.converge(from+20, 15*time.Second)
	fn := tc.members[f].node
	for height := head + 1; height <= h; height++ {
		if _, err := fn.store.Block(height); err != nil {
			t.Fatalf("block %d missing on the follower: %v", height, err)
		}
	}
}

// TestClusterRestoringLeaderHandsOver: a node still installing a snapshot
// is made leader (a leadership transfer here; an election could do the
// same, its raft log being complete). It must not build blocks on the
// head it has, and hands leadership to a member that can: the cluster
// keeps committing while the node is still restoring.
func TestClusterRestoringLeaderHandsOver(t *testing.T) {
	tc := newTunedCluster(t, 3, func(o *NodeOptions) {
		o.Config.BlockInterval = Duration{50 * time.Millisecond}
		o.RaftCompactEvery = 8
		o.SyncTimeout = 300 * time.Millisecond
	})
	l := tc.leader(5 * time.Second)
	tc.converge(2, 10*time.Second)
	f := (l + 1) % 3
	tc.stop(f)
	from := tc.members[l].node.store.Head().Height
	tc.waitFor(10*time.Second, "the cluster moves past the stopped node's log", func() bool {
		return tc.members[l].node.store.Head().Height > from+24
	})
	enableFailpoint(t, failpoint.SyncAnswerDrop, `return("*")`)
	tc.start(f)
	fn := tc.members[f].node
	tc.waitFor(10*time.Second, "the follower takes a snapshot it cannot install", func() bool {
		return fn.cluster.raft.Status().Restoring != 0
	})
	term := fn.cluster.raft.Status().Term
	tc.members[l].node.cluster.raft.TransferLeadership(t.Context(), fn.cluster.id)
	// Two elections: the transfer to the node, then its hand-over.
	tc.waitFor(5*time.Second, "the restoring node led, then handed over", func() bool {
		st := fn.cluster.raft.Status()
		return st.Leader != 0 && st.Leader != fn.cluster.id && st.Term >= term+2
	})
	h := tc.members[l].node.store.Head().Height
	tc.waitFor(10*time.Second, "the others commit while the node restores", func() bool {
		return tc.members[l].node.store.Head().Height > h+5 && fn.cluster.raft.Status().Restoring != 0
	})
}

// TestClusterCutOffNodeSaysStalled: a node cut off from the others knows
// no leader and cannot tell how far behind it falls: its status says it
// is stalled, and why, until the partition heals.
func TestClusterCutOffNodeSaysStalled(t *testing.T) {
	tc := newTunedCluster(t, 3, func(o *NodeOptions) { o.SyncTimeout = 300 * time.Millisecond })
	l := tc.leader(5 * time.Second)
	tc.converge(2, 10*time.Second)
	f := (l + 1) % 3
	fn := tc.members[f].node
	if s := fn.Status(); s.SyncState != client.SyncInSync {
		t.Fatalf("before the partition: %s (%s)", s.SyncState, s.SyncError)
	}
	id := tc.members[f].key.Public().Fingerprint()
	tc.net.isolate(id, true)
	tc.waitFor(10*time.Second, "the cut-off node says it is stalled", func() bool {
		s := fn.Status()
		return s.SyncState == client.SyncStalled && strings.Contains(s.SyncError, "no raft leader")
	})
	tc.net.isolate(id, false)
	tc.waitFor(10*time.Second, "the node is back in sync", func() bool { return fn.Status().SyncState == client.SyncInSync })
}
