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
//  3. Run the Ready loop with Run(ctx); feed messages from peers to Step,
//     naming the sender the transport authenticated.
//  4. Propose entries and ProposeConfChange membership changes on the
//     leader (proposals are not forwarded: elsewhere they fail at once).
//
// # Messages from the network
//
// etcd raft trusts what it is given, and a message it cannot take reaches
// one of its Panicf calls (a heartbeat committing past the end of the log,
// an append out of place, a snapshot whose configuration cannot be
// restored). Step therefore checks every message before raft sees it
// (check.go): it must come from the authenticated sender (From) and be
// addressed to this node (To); only the types raft nodes send each other
// are accepted (never MsgHup, MsgBeat, MsgProp, MsgTransferLeader,
// MsgReadIndex, MsgStorage*, ...); appends, heartbeats, snapshots and
// timeout-now must come from the leader of the current term or announce a
// later one; indexes and terms must be within what raft can accept, checked
// against raft's exact state on the goroutine that steps the message (Run
// persists each Ready before it steps the next message from the network, so
// raft's log ends where the store's does); vote answers count only from
// voters. A message that fails is dropped and reported (Config.OnDrop,
// DropError with a reason). FuzzStep throws untrusted frames through the
// same path into a real follower and leader. Should raft still panic on a
// remote message, the node halts with an error rather than ending the
// process. A committed configuration change raft could not apply is skipped
// (by every member alike) for the same reason.
//
// This keeps a member from crashing another; it does not make raft
// Byzantine fault tolerant.
//
// # Snapshots and retries
//
// The raft log is compacted behind the applied index (keeping CompactKeep
// entries), so a follower that falls further behind receives a raft
// snapshot; the snapshot's data is opaque here and produced by the state
// machine. Raft's side of a received snapshot is persisted at once (the
// hard state that commits it needs it), but the snapshot counts as applied
// only when StateMachine.Restore has installed it: until then entries after
// it wait, the stored entries it covers stay, and a node restarted in the
// middle installs it again. Restore and Apply may return an error wrapping
// ErrRetry (the state machine cannot finish now, say because no peer serves
// the blocks it needs): the node retries with backoff instead of halting.
// Status.Restoring shows a snapshot not installed yet.
package raftnode
