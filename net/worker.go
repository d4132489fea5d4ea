package net

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sos-kernel/sos/ledger"
)

// Workers: a raft cluster stays small, while the machines that rent out
// resources can be thousands. Such a machine runs as a worker: a node that
// is not a member, follows one member (Follow) and links to it only. A
// member accepts a worker's connection only when its worker policy
// (SetWorkerPolicy, set by the kernel: "a live offer names this node")
// approves the node, and can dial a worker too (ConnectWorker, or when it
// fetches a blob from it). A worker link carries only the kinds
// AllowedForWorkers — blob transfers and KindFollow — and each side
// refuses any other stream on it, so a worker never takes part in
// consensus, replication or the members' gossip. Membership is still
// exactly SetMembers: a worker never becomes a member by connecting, and a
// member never connects as a worker.

// WorkerPolicy decides whether the node with this id and (authenticated)
// key may link to this member as a worker; the key gives the kernel the
// node's account address, which offers name.
type WorkerPolicy func(id PeerID, key ledger.PublicKey) bool

// Follow makes this node a worker that follows the member with node id
// member at addr (host:port), as a joiner knows its member: it dials the
// member in the worker role (on first use: Send, FetchBlob) and refuses a
// node answering there with another key, accepts connections from that
// member only, and has no members (SetMembers fails). Calling it again
// switches to another member and closes the link to the previous one. It
// fails on a node that has members.
func (t *Transport) Follow(member PeerID, addr string) error {
	if member == "" || addr == "" {
		return errors.New("net: Follow: a member needs a node id and an address")
	}
	if member == t.id {
		return errors.New("net: Follow: a node cannot follow itself")
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	if len(t.members) > 0 {
		t.mu.Unlock()
		return errors.New("net: Follow: this node is a cluster member")
	}
	var old *session
	if t.follow != nil && t.follow.id != member {
		if ps := t.peers[t.follow.id]; ps != nil {
			old = ps.sess
			ps.sess = nil
			ps.notify()
			delete(t.peers, t.follow.id)
		}
	}
	t.follow = &target{member, addr}
	t.mu.Unlock()
	if old != nil {
		t.log.Info("net: following another member, closing the old link", "old", old.peer, "new", member)
		old.conn.CloseWithError(codeRemoved, "the worker follows another member")
	}
	return nil
}

// following reports whether this node is a worker.
func (t *Transport) following() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.follow != nil
}

// workerGen is the current worker policy generation.
func (t *Transport) workerGen() uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.policyGen
}

// SetWorkerPolicy sets which nodes may link to this member as workers
// (nil, the default: none). The policy is asked, outside the transport's
// lock, at every worker handshake (after the cheap checks, before the
// signature is verified) and must be quick; a member is never admitted as
// a worker whatever it answers. Call it again whenever what it answers may
// have changed (an offer closed): the workers it no longer approves are
// disconnected and forgotten, as SetMembers does for removed members.
func (t *Transport) SetWorkerPolicy(policy WorkerPolicy) {
	type known struct {
		id  PeerID
		key ledger.PublicKey
	}
	t.mu.Lock()
	t.policy = policy
	t.policyGen++
	var ws []known
	for id, ps := range t.peers {
		if ps.link == linkWorker {
			ws = append(ws, known{id, ps.key})
		}
	}
	t.mu.Unlock()
	for _, w := range ws {
		if policy != nil && !w.key.IsZero() && policy(w.id, w.key) {
			continue
		}
		t.forgetWorker(w.id, "no longer an approved worker")
	}
}

// forgetWorker closes a worker's link and forgets it.
func (t *Transport) forgetWorker(id PeerID, why string) {
	t.mu.Lock()
	ps := t.peers[id]
	if ps == nil || ps.link != linkWorker {
		t.mu.Unlock()
		return
	}
	s := ps.sess
	ps.sess = nil
	ps.notify()
	delete(t.peers, id)
	t.mu.Unlock()
	if s != nil {
		t.log.Info("net: closing a worker link", "peer", id, "reason", why)
		s.conn.CloseWithError(codeRemoved, why)
	}
}

// ConnectWorker dials the worker with node id worker at addr from this
// member and returns once the link is up (the worker must follow this
// member, and the worker policy must approve the key that answers), or
// with the dial's error when that fails or ctx is done. The address is
// remembered for later dials (a worker's own connection also tells where
// to reach it) as long as the worker stays approved.
func (t *Transport) ConnectWorker(ctx context.Context, worker PeerID, addr string) error {
	if worker == "" || addr == "" {
		return errors.New("net: ConnectWorker: a worker needs a node id and an address")
	}
	t.mu.Lock()
	switch {
	case t.closed:
		t.mu.Unlock()
		return ErrClosed
	case t.follow != nil:
		t.mu.Unlock()
		return fmt.Errorf("net: connect worker %s: %w: a worker links to no workers", worker, ErrBadHandshake)
	}
	if _, member := t.members[worker]; member {
		t.mu.Unlock()
		return fmt.Errorf("net: connect worker %s: %w: it is a member", worker, ErrBadHandshake)
	}
	_, known := t.peers[worker]
	ps := t.peerState(worker, linkWorker)
	ps.remote = target{worker, addr}
	t.mu.Unlock()
	_, err := t.connect(ctx, worker)
	if err != nil && !known {
		t.forgetWorker(worker, "dial failed") // a stranger's address is not kept
	}
	return err
}

// Workers lists the workers this member knows (connected, or approved and
// reachable at a known address), sorted by id.
func (t *Transport) Workers() []PeerInfo {
	t.mu.Lock()
	var out []PeerInfo
	for id, ps := range t.peers {
		if ps.link == linkWorker {
			out = append(out, t.peerInfo(id, ps.remote.addr))
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b PeerInfo) int { return cmpID(a.ID, b.ID) })
	return out
}
