package kernel

import (
	"context"
	"errors"
	"fmt"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
)

// quicNet adapts the QUIC transport of package net to PeerNet.
type quicNet struct{ t *sosnet.Transport }

var _ PeerNet = quicNet{}

func (q quicNet) Send(ctx context.Context, peer string, kind byte, msg []byte) error {
	err := q.t.Send(ctx, sosnet.PeerID(peer), sosnet.StreamKind(kind), msg)
	if errors.Is(err, sosnet.ErrUnknownPeer) || errors.Is(err, sosnet.ErrRemoved) {
		// The cluster sends only to the members it knows, so an unknown or
		// removed peer here is the peer's refusal of this node.
		return fmt.Errorf("%w: %w", ErrRefusedNotMember, err)
	}
	return err
}

func (q quicNet) Handle(kind byte, fn func(from string, msg []byte)) {
	q.t.Handle(sosnet.StreamKind(kind), func(from sosnet.PeerID, msg []byte) { fn(string(from), msg) })
}

func (q quicNet) HandleBorrowed(kind byte, fn func(from string, msg []byte)) {
	q.t.HandleBorrowed(sosnet.StreamKind(kind), func(from sosnet.PeerID, msg []byte) { fn(string(from), msg) })
}

func (q quicNet) Peers() []client.Peer {
	var out []client.Peer
	for _, p := range q.t.Peers() {
		out = append(out, client.Peer{NodeID: string(p.ID), Address: p.Addr, Connected: p.Connected, RTTMs: float64(p.RTT.Microseconds()) / 1000})
	}
	return out
}

func (q quicNet) SetMembers(members []Member) error {
	ms := make([]sosnet.Member, 0, len(members))
	for _, m := range members {
		ms = append(ms, sosnet.Member{Key: m.PubKey, Addr: m.Addr})
	}
	return q.t.SetMembers(ms)
}

func (q quicNet) VerifyAddr(ctx context.Context, addr string, key ledger.PublicKey) error {
	return q.t.VerifyAddr(ctx, addr, key)
}

// listenPeers starts the QUIC transport for a cluster member; the cluster
// sets who may connect.
func listenPeers(ctx context.Context, opts NodeOptions, chainID string, genesis ledger.Hash) (*sosnet.Transport, error) {
	t, err := sosnet.Listen(ctx, sosnet.Config{
		ListenAddr: opts.Config.P2PAddr, Key: opts.NodeKey, ChainID: chainID, GenesisHash: genesis, Logger: opts.Logger,
		// A raft message carries whole blocks (max_block_bytes ≤ 32 MiB plus headers).
		Limits: map[sosnet.StreamKind]int{sosnet.KindConsensus: 1 << 20, sosnet.KindReplication: 40 << 20, sosnet.KindGossip: 16 << 20},
	})
	if err != nil {
		return nil, fmt.Errorf("kernel: peer network on %s: %w", opts.Config.P2PAddr, err)
	}
	return t, nil
}
