package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sos-kernel/sos/ledger"
)

// State sync: a node that receives a raft snapshot while far behind (a new
// member, or one that was offline while the log was compacted) installs the
// leader's current state instead of re-executing every block. The exchange
// runs on the sync stream:
//
//	request   [syncStateReq]
//	answer    [syncStateChunk, records...]* [syncStateEnd, CBOR stateEnd]
//	          or [syncStateErr, message]
//
// The state is accepted only if it hashes to the state root of the head
// block sent with it (ledger.StateImport), and that block must carry a
// valid signature of a member.
const (
	syncStateReq   byte = 2
	syncStateChunk byte = 3
	syncStateEnd   byte = 4
	syncStateErr   byte = 5
)

// stateChunkBytes is the payload of one state message: large enough that
// per-message costs vanish, small enough to stream.
const stateChunkBytes = 1 << 20

// stateSyncMinGap is how far behind a snapshot must find a node for it to
// sync state rather than blocks.
const stateSyncMinGap = 64

// stateSyncIdle bounds the wait for the next state message.
const stateSyncIdle = 30 * time.Second

// stateSyncer serves and fetches state snapshots over a PeerNet.
type stateSyncer struct {
	ctx   context.Context
	store *ledger.Store
	codec *ledger.Codec
	net   PeerNet
	log   *slog.Logger
	// checkBlock decodes and authenticates the head block of a snapshot.
	checkBlock func(raw []byte) (*ledger.Block, error)

	mu      sync.Mutex
	in      chan []byte // messages of the fetch in progress
	serving sync.Mutex  // one export at a time
}

// handle takes a state message from the sync stream.
func (s *stateSyncer) handle(from string, msg []byte) {
	if msg[0] == syncStateReq {
		go func() {
			s.serving.Lock()
			defer s.serving.Unlock()
			s.serve(from)
		}()
		return
	}
	s.mu.Lock()
	ch := s.in
	s.mu.Unlock()
	if ch != nil {
		// Blocking here holds the sender back (stream flow control) while
		// the importer catches up.
		select {
		case ch <- msg:
		case <-time.After(stateSyncIdle):
		}
	}
}

// stateEnd closes a state stream.
type stateEnd struct {
	_      struct{} `cbor:",toarray"`
	Block  []byte   // the head block the state belongs to
	Chunks uint64
	Bytes  uint64
}

// serve streams this node's committed state to peer.
func (s *stateSyncer) serve(peer string) {
	send := func(msg []byte) error {
		ctx, cancel := context.WithTimeout(s.ctx, stateSyncIdle)
		defer cancel()
		return s.net.Send(ctx, peer, StreamSync, msg)
	}
	start := time.Now()
	var chunks, bytes uint64
	head, block, err := s.store.ExportState(stateChunkBytes, func(chunk []byte) error {
		chunks++
		bytes += uint64(len(chunk))
		return send(append([]byte{syncStateChunk}, chunk...))
	})
	if err == nil {
		var end []byte
		if end, err = s.codec.Marshal(&stateEnd{Block: block, Chunks: chunks, Bytes: bytes}); err == nil {
			err = send(append([]byte{syncStateEnd}, end...))
		}
	}
	if err != nil {
		s.log.Warn("state sync: serving failed", "peer", peer, "err", err)
		_ = send(append([]byte{syncStateErr}, err.Error()...))
		return
	}
	s.log.Info("state sync: served", "peer", peer, "height", head.Height, "bytes", bytes, "took", time.Since(start))
}

// fetch fetches and installs peer's current state; it returns the head
// block the state belongs to.
func (s *stateSyncer) fetch(peer string) (*ledger.Block, error) {
	ch := make(chan []byte, 16)
	s.mu.Lock()
	s.in = ch
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.in = nil
		s.mu.Unlock()
	}()
	start := time.Now()
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	err := s.net.Send(ctx, peer, StreamSync, []byte{syncStateReq})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("kernel: state sync from %s: %w", peer, err)
	}
	im, err := s.store.BeginImport()
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*ledger.Block, error) {
		im.Abort()
		return nil, fmt.Errorf("kernel: state sync from %s: %w", peer, err)
	}
	var chunks uint64
	for {
		var msg []byte
		select {
		case msg = <-ch:
		case <-time.After(stateSyncIdle):
			return fail(fmt.Errorf("nothing for %s after %d chunks", stateSyncIdle, chunks))
		case <-s.ctx.Done():
			return fail(s.ctx.Err())
		}
		switch msg[0] {
		case syncStateChunk:
			chunks++
			if err := im.Add(msg[1:]); err != nil {
				return fail(fmt.Errorf("chunk %d: %w", chunks, err))
			}
			continue
		case syncStateErr:
			return fail(fmt.Errorf("the peer failed to serve: %s", msg[1:]))
		}
		// syncStateEnd
		var end stateEnd
		if err := s.codec.Unmarshal(msg[1:], &end); err != nil {
			return fail(err)
		}
		if end.Chunks != chunks || end.Bytes != uint64(im.Bytes()) {
			return fail(fmt.Errorf("got %d chunks (%d bytes), sender sent %d (%d): %w", chunks, im.Bytes(), end.Chunks, end.Bytes, ledger.ErrBadSnapshot))
		}
		b, err := s.checkBlock(end.Block)
		if err != nil {
			return fail(err)
		}
		received := time.Since(start)
		if err := im.Finish(b); err != nil {
			return nil, fmt.Errorf("kernel: state sync from %s: %w", peer, err)
		}
		took := time.Since(start)
		s.log.Info("state sync: installed", "peer", peer, "height", b.Header.Height, "records", im.Records(),
			"bytes", im.Bytes(), "received_in", received, "took", took, "MB/s", float64(im.Bytes())/1e6/took.Seconds())
		return b, nil
	}
}

// syncState installs peer's current state (see stateSyncer).
func (c *cluster) syncState(peer string) error {
	b, err := c.states.fetch(peer)
	if err != nil {
		return err
	}
	c.node.afterStateSync(b)
	c.refreshMembers()
	return nil
}

// checkSyncedBlock decodes the head block of a state snapshot and checks
// it belongs to this chain and is signed by its proposer, a member.
func (c *cluster) checkSyncedBlock(raw []byte) (*ledger.Block, error) {
	codec := c.node.chain.codec
	b, err := codec.DecodeBlock(raw)
	if err != nil {
		return nil, err
	}
	if b.Header.ChainID != c.node.chain.genesis.ChainID {
		return nil, fmt.Errorf("head block of chain %q: %w", b.Header.ChainID, ledger.ErrBadSnapshot)
	}
	prop, ok := c.memberByAddr(b.Header.Proposer)
	if !ok {
		return nil, fmt.Errorf("head block %d proposed by %s, not a member known here: %w", b.Header.Height, b.Header.Proposer, ledger.ErrBadSnapshot)
	}
	if err := codec.VerifyBlockSignature(b, prop.PubKey); err != nil {
		return nil, fmt.Errorf("head block %d: %w", b.Header.Height, err)
	}
	return b, nil
}

// afterStateSync resets what depended on the replaced state.
func (n *Node) afterStateSync(b *ledger.Block) {
	n.mempool.Reset(errors.New("kernel: the node installed a state snapshot; resubmit"))
	n.metrics.Height.Set(float64(b.Header.Height))
}
