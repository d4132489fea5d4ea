package kernel

import (
	"context"
	"fmt"
	"time"
)

// Block retention (Config.BlockRetention): the node deletes the bodies of
// blocks older than its last N (ledger.Store.PruneBlocks), in the
// background, in atomic batches. It is node-local: nothing consensus
// computes ever reads an old block.
//
// What a member catching up needs from the others bounds N from below:
//   - raft log entries still in the leader's log need no stored block;
//   - past the log, raft sends a snapshot whose head is at most one
//     compaction interval (RaftCompactEvery entries, one block each at
//     most) older than the log's start; a node within stateSyncMinGap
//     blocks of that head fetches the blocks in between, one further
//     installs the member's state and needs no old block at all.
//
// So every block a member may ask for is within 2×RaftCompactEvery +
// stateSyncMinGap of the head: MinBlockRetention keeps twice the gap.

// MinBlockRetention is the smallest block_retention a node accepts (with
// the default raft compaction interval).
const MinBlockRetention = 2*defaultRaftCompactEvery + 2*stateSyncMinGap

// defaultRaftCompactEvery is net/raftnode's default compaction interval.
const defaultRaftCompactEvery = 1000

func minRetentionFor(compactEvery uint64) uint64 {
	return 2*compactEvery + 2*stateSyncMinGap
}

// pruneEvery spaces the pruner's rounds; pruneStep is the heights deleted
// per atomic batch (a few MB of blocks: short enough not to delay a
// commit much).
const (
	pruneEvery = time.Second
	pruneStep  = 256
)

// checkRetention refuses a block_retention below what catching-up members
// may need.
func checkRetention(opts NodeOptions) error {
	r := opts.Config.BlockRetention
	every := opts.RaftCompactEvery
	if every == 0 {
		every = defaultRaftCompactEvery
	}
	if r != 0 && r < minRetentionFor(every) {
		return fmt.Errorf("kernel: config: block_retention %d must be 0 (keep every block) or at least %d, so members catching up can fetch the blocks they need", r, minRetentionFor(every))
	}
	return nil
}

// prune deletes the blocks older than the retention, every pruneEvery,
// until ctx ends.
func (n *Node) prune(ctx context.Context) error {
	keep := n.opts.Config.BlockRetention
	if keep == 0 {
		return nil
	}
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	announced := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		head := n.store.Head().Height
		if head < keep {
			continue
		}
		below := head - keep + 1 // keep heights head-keep+1 .. head
		before := n.store.Earliest()
		if before >= below {
			continue
		}
		e, err := n.store.PruneBlocks(ctx, below, pruneStep)
		if err != nil && ctx.Err() == nil {
			n.log.Warn("pruning old blocks failed; retrying", "earliest", e, "target", below, "err", err)
			continue
		}
		if !announced {
			announced = true
			n.log.Info("pruning blocks older than the retention", "block_retention", keep, "pruned_from", before, "earliest_kept", e)
		} else {
			n.log.Debug("pruned old blocks", "from", before, "earliest_kept", e)
		}
	}
}
