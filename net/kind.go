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
	// KindBlob carries blob transfers (see FetchBlob and ServeBlobs). It is
	// not a message kind: each transfer is a request and its answer on a
	// bidirectional stream of its own, so Handle and Send refuse it.
	KindBlob StreamKind = 5
	// KindFollow carries what a worker follows of the chain from its
	// member (block headers, the job events of its offers) and what it
	// asks for; the kernel defines its messages. It is one of the two
	// kinds a worker link carries (see AllowedForWorkers).
	KindFollow StreamKind = 6

	numKinds = 7 // one past the largest kind
)

// Valid reports whether k is a known kind.
func (k StreamKind) Valid() bool { return k >= KindConsensus && k < numKinds }

// message reports whether k is carried as messages on a long-lived
// unidirectional stream (Handle, Send): every kind but KindBlob.
func (k StreamKind) message() bool { return k.Valid() && k != KindBlob }

// AllowedForWorkers reports whether a link between a member and a worker
// (a node that is not a member: see Follow and SetWorkerPolicy) may carry
// kind k. The set is exactly {KindBlob, KindFollow}: a worker never sends
// or receives consensus, replication, gossip or member sync traffic, in
// either direction, and each side refuses a stream of any other kind.
func (k StreamKind) AllowedForWorkers() bool { return k == KindBlob || k == KindFollow }

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
	case KindBlob:
		return "blob"
	case KindFollow:
		return "follow"
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
	case KindGossip, KindFollow:
		return 4 << 20
	}
	return DefaultMaxFrame
}

// urgency is the QUIC stream priority (RFC 9218, lower goes first):
// consensus traffic overtakes bulk sync on a busy connection, and blob
// transfers come last, so a transfer never delays a raft heartbeat or
// the chain's own sync.
func (k StreamKind) urgency() int8 {
	switch k {
	case KindConsensus:
		return 0
	case KindReplication:
		return 1
	case KindGossip:
		return 2
	case KindFollow:
		return 4
	case KindBlob:
		return 6
	}
	return 5
}
