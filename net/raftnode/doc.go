// Package raftnode drives an etcd raft node (go.etcd.io/raft/v3) for the
// kernel: it persists the raft log and hard state in the node's Pebble store
// (the ledger's aux table), runs the Ready loop, hands committed entries to a
// state machine in order and sends raft messages through a transport the
// caller supplies. It does not know what the entries mean: for the kernel
// they are leader-signed blocks, which every node re-executes.
//
// Using it:
//
//  1. Implement StateMachine (Apply committed entries, report the applied
//     index persisted with them) and Transport (deliver raft message bytes to
//     a peer, best effort, in order per peer).
//  2. New loads the persisted log; a fresh node with Peers set bootstraps a
//     new cluster, a fresh node with Join set waits to be added.
//  3. Run the Ready loop with Run(ctx); feed messages from peers to Step.
//  4. Propose entries (only the leader's proposals commit; others are
//     forwarded by raft), and ProposeConfChange to add or remove members.
//
// The raft log is compacted behind the applied index (keeping CompactKeep
// entries), so a follower that falls further behind receives a raft
// snapshot; the snapshot's data is opaque here and produced by the state
// machine.
package raftnode
