package net

import "fmt"

// StreamKind names the purpose of a stream. Each (peer, kind) pair has its
// own long-lived QUIC stream, so a large snapshot chunk never delays a raft
// heartbeat queued behind it on another kind.
type StreamKind byte

// Stream kinds. The byte value is sent at stream open and is part of the
// wire protocol.
const (
	KindConsensus StreamKind = 1 // raft messages
	KindGossip    StreamKind = 2 // transaction gossip / forwarding
	KindSync      StreamKind = 3 // block and snapshot sync
	// KindReplication carries raft's bulk traffic (log appends holding whole
	// blocks, snapshots) apart from KindConsensus, so heartbeats and votes
	// never queue behind megabytes of log: under load a follower would
	// otherwise miss heartbeats and start an election.
	KindReplication StreamKind = 4

	numKinds = 5 // one past the largest kind
)

// Valid reports whether k is a known kind.
func (k StreamKind) Valid() bool { return k >= KindConsensus && k < numKinds }

func (k StreamKind) String() string {
	switch k {
	case KindConsensus:
		return "consensus"
	case KindGossip:
		return "gossip"
	case KindSync:
		return "sync"
	case KindReplication:
		return "replication"
	}
	return fmt.Sprintf("kind(%d)", byte(k))
}

// DefaultMaxFrame is the default largest frame (a snapshot chunk on KindSync).
const DefaultMaxFrame = 64 << 20

// defaultLimit is the default largest message per kind. Consensus and gossip
// carry small messages, so a bad peer cannot make us buffer 64 MiB on them.
func (k StreamKind) defaultLimit() int {
	switch k {
	case KindConsensus:
		return 16 << 20
	case KindGossip:
		return 4 << 20
	}
	return DefaultMaxFrame
}

// urgency is the QUIC stream priority (RFC 9218, lower goes first):
// consensus traffic overtakes bulk sync on a busy connection.
func (k StreamKind) urgency() int8 {
	switch k {
	case KindConsensus:
		return 0
	case KindReplication:
		return 1
	case KindGossip:
		return 2
	}
	return 5
}
