// Package net links nodes of one chain into a cluster over QUIC, with peers
// authenticated by their post-quantum (ML-DSA-65) node keys, and moves blobs
// between them (the data plane).
//
// # Usage
//
//  1. Listen with a Config (listen address, node key, chain id, genesis hash).
//  2. Register a Handler per StreamKind with Handle.
//  3. SetMembers with the nodes allowed in the cluster (key and address);
//     call it again whenever membership changes.
//  4. Send messages to members by node id; read Peers for their state.
//  5. Close (or cancel the Listen context) to stop.
//
// For the data plane and workers:
//
//  6. ServeBlobs with a blob.Store, an authorization callback and an
//     accounting callback; FetchBlob pulls a blob (id, size) from a list of
//     sources into a store, verified chunk by chunk and resumable.
//  7. On a member, SetWorkerPolicy says which non-members may link as
//     workers (call it again when that changes); Workers lists them and
//     ConnectWorker dials one. On a worker, Follow names the one member it
//     links to, by node id and address as a joiner does (instead of
//     SetMembers); Send and FetchBlob reach that member.
//
// # Dependencies
//
// net imports ledger (keys, signatures) and blob (the content-addressed
// store whose slices it moves), both leaves; never kernel, vm, contracts or
// rome. Who may fetch what, and for which lease bytes count, is decided by
// the callbacks the kernel passes in.
//
// # Wire protocol
//
// One QUIC connection links each pair of nodes. If both dial at once, both
// keep the connection dialed by the node with the smaller id. The client opens
// a bidirectional handshake stream; each side sends one hello frame (protocol
// version, role, chain id, genesis hash, a random boot id, its ML-DSA-65 public
// key and its signature). Then each message kind travels on its own
// long-lived unidirectional stream per direction, opened with two bytes
// (frame version, kind) and carrying frames:
//
//	version u8 | type u8 | payload length u32 (big endian) | payload
//
// Besides approved workers (below), non-members may open exactly two kinds
// of connection, each carrying one exchange on the handshake stream and
// then closed. A joiner (SetJoinHandler on the member; Join or a Joiner on
// the other side) sends one request and reads one answer: admitted, pending (ErrJoinPending: ask again later) or
// refused. A probe is the member's dial-back of the address a joiner
// claims (Transport.VerifyAddr): the joiner's listener (ListenJoiner)
// answers it with a hello signed by the joiner's key, and only for the
// member it asked; members never answer probes. Transport.admits is the
// one place that decides which node id may connect in which role.
//
// Blob transfers (KindBlob, see blob.go) do not use message streams: the
// fetcher opens a bidirectional stream per source attempt, sends its
// requests (blob id, size, tag, chunk ranges) and reads one frame per
// chunk, each carrying the chunk's Bao slice, which it verifies against the
// blob id before writing it. They have the lowest stream priority.
//
// Workers: a node that is not a member can link to one member in the
// worker role (roleWorker in its hello, on either side of the connection)
// when the member's worker policy approves its node (id and key). A worker link
// carries only the kinds AllowedForWorkers (KindBlob, KindFollow); both
// sides refuse any other stream on it (STOP_SENDING) and Send refuses to
// send one (ErrKindNotAllowed).
//
// A frame of an unknown version or type, or longer than the kind's limit
// (Config.MaxFrame, Config.Limits), is refused before its payload is read or
// allocated; the receiver logs the reason and closes that stream (QUIC
// STOP_SENDING), and the sender's next Send opens a new one.
//
// # Delivery guarantees
//
// Messages of one kind to one peer are delivered in the order of the Send
// calls that returned (Sends of one kind to one peer are serialized), without
// gaps or duplicates, for as long as the connection lives. A nil error from
// Send means the message was handed to QUIC, not that it arrived: if the
// connection breaks, messages still in flight are lost, and the next Send
// reconnects (redialing with exponential backoff between Config.MinBackoff and
// Config.MaxBackoff, bounded by the Send context). A message whose Send
// failed may or may not have arrived. A peer that crashed and came back on
// the same address answers the first message sent on the dead connection
// with a QUIC stateless reset (its reset key derives from its node key, and
// connection ids are long enough that every packet carrying a message
// draws one), so that message is lost and the next Send reconnects, rather
// than messages vanishing until Config.IdleTimeout ends the connection.
// So delivery is at most once and FIFO per (peer, kind) — what raft
// expects of its transport, since it retransmits itself. Kinds are
// independent: a large snapshot chunk on KindSync, or a block-sized log
// append on KindReplication, does not delay a heartbeat on KindConsensus,
// which QUIC also schedules first. Handlers run on one goroutine per
// (peer, kind) stream; a handler registered with HandleBorrowed must not
// keep the message, and its stream reuses one buffer for every frame.
//
// # Threat model
//
// What is protected:
//
//   - Confidentiality and integrity of traffic against a recording adversary,
//     including one with a future quantum computer: TLS 1.3 offers only the
//     hybrid key exchange X25519MLKEM768 (no classical group to downgrade to),
//     and a connection that negotiated anything else is refused.
//   - Peer authentication by post-quantum identity. The TLS certificate is an
//     ephemeral self-signed carrier and is not trusted. Each side signs, with
//     its ML-DSA-65 key (purpose "handshake", bound to the chain id), the TLS
//     exporter value of this session with label "sos/v1/handshake", its role,
//     the protocol version, the genesis hash and its boot id. Only members
//     (SetMembers) and approved workers are accepted; claiming a member's
//     public key without its private key fails the signature check
//     (ErrBadSignature).
//   - Man in the middle: an attacker that terminates TLS with each side runs
//     two TLS sessions with different exporter values, so neither side's
//     signature verifies on the other session.
//   - Replay: a recorded hello (of this or another node) carries a signature
//     over an old session's exporter and fails on a new session. The role
//     byte stops reflecting a server's hello back as a client's. Session
//     tickets and 0-RTT are disabled, so every session has a fresh exporter.
//   - Cross-chain and cross-version confusion: nodes with another chain id,
//     genesis hash or protocol version are refused (ErrChainMismatch,
//     ErrGenesisMismatch, ErrVersion), and the chain id is part of the
//     signature context.
//   - Removed members: SetMembers closes their connections and refuses their
//     new ones.
//   - Joiners: a joiner's connection reaches only the JoinHandler, never a
//     stream handler, and a joiner never becomes a peer. Whether it is
//     admitted is the handler's decision (package kernel: an operator's).
//     VerifyAddr lets the handler check that a claimed address is served by
//     the joiner's key before it records it, so a stranger cannot make the
//     cluster adopt a third party's address.
//   - Workers: a worker is admitted only while the worker policy approves
//     its key (checked again at registration, and connected workers
//     are dropped when a new policy no longer approves them), never as a
//     member, and its link carries no consensus, replication, gossip or
//     member sync traffic in either direction. A worker accepts
//     connections from the member it follows only.
//   - Blobs: a node serves a blob only to a peer its authorization
//     callback approves for that blob and tag, asked before anything about
//     the blob is revealed; a fetcher writes only chunks that verify
//     against the blob id, so a lying or damaged source costs it a refetch,
//     never bad data (blob.ErrCorrupt, counted in FetchStats).
//   - Memory exhaustion by a peer: frame sizes are limited per kind and
//     checked before allocation, large frames are read in 1 MiB steps as
//     their bytes arrive, and QUIC flow control bounds buffered data.
//
// What is not protected:
//
//   - A member that turns malicious: it is authenticated, and may send any
//     well-formed message. Message content is checked by the layers above
//     (raft is crash-fault tolerant only; blocks are leader-signed and
//     re-executed).
//   - A stolen node key: it impersonates the node until it is removed from
//     the members.
//   - A joiner's dial-back costs the member one outgoing QUIC handshake to an
//     address the joiner chose (bounded by HandshakeTimeout; the caller
//     bounds how many run at once).
//   - Denial of service by non-members: anyone can start QUIC and TLS
//     handshakes (they are refused only after the TLS handshake and one hello,
//     which costs an ML-KEM decapsulation and, for a claimed member key, one
//     ML-DSA verification), and an on-path attacker can drop packets.
//   - Traffic analysis: who talks to whom, when, and how much is visible.
//   - Message loss across reconnects (see Delivery guarantees).
//
// Refusals are logged (log/slog, with the reason) and returned as errors
// wrapping the sentinels below; the refused side receives the reason as the
// QUIC close code, so a node dialing a peer of another genesis gets
// ErrGenesisMismatch as well.
//
// Partition (and Config.Drop) is a fault-injection hook for cluster tests.
// The failpoints sos/net/blob-corrupt-chunk and sos/net/blob-drop-conn
// (internal/failpoint) make a node serving a blob corrupt a chunk or drop
// the connection mid-transfer.
package net
