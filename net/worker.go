package net

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Workers: a raft cluster stays small, while the machines that rent out
// resources can be thousands. Such a machine runs as a worker: a node that
// is not a member, follows one member (Follow) and links to it only. A
// member accepts a worker's connection only when its worker policy
// (SetWorkerPolicy, set by the kernel: "a live offer names this node")
// approves the node id, and can dial a worker too (ConnectWorker, or when
// it fetches a blob from it). A worker link carries only the kinds
// AllowedForWorkers — blob transfers and KindFollow — and each side
// refuses any other stream on it, so a worker never takes part in
// consensus, replication or the members' gossip. Membership is still
// exactly SetMembers: a worker never becomes a member by connecting, and a
// member never connects as a worker.

// Follow makes this node a worker that follows the member m (key and
// address): it dials m in the worker role (on first use: Send, FetchBlob),
// accepts connections from m only, and has no members (SetMembers fails).
// Calling it again switches to another member and closes the link to the
// previous one. It fails on a node that has members.
func (t *Transport) Follow(m Member) error {
	if m.Key.IsZero() {
		return errors.New("net: Follow: member without a key")
	}
	if m.ID() == t.id {
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
	if t.follow != nil && t.follow.ID() != m.ID() {
		if ps := t.peers[t.follow.ID()]; ps != nil {
			old = ps.sess
			ps.sess = nil
			ps.notify()
			delete(t.peers, t.follow.ID())
		}
	}
	t.follow = &m
	t.mu.Unlock()
	if old != nil {
		t.log.Info("net: following another member, closing the old link", "old", old.peer, "new", m.ID())
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
// lock, for every worker handshake and must be quick; it never admits a
// member. Call it again whenever what it answers may have changed (an offer
// closed): the workers it no longer approves are disconnected and
// forgotten, as SetMembers does for removed members.
func (t *Transport) SetWorkerPolicy(policy func(PeerID) bool) {
	t.mu.Lock()
	t.policy = policy
	t.policyGen++
	var ids []PeerID
	for id, ps := range t.peers {
		if ps.link == linkWorker {
			ids = append(ids, id)
		}
	}
	t.mu.Unlock()
	for _, id := range ids {
		if policy != nil && policy(id) {
			continue
		}
		t.mu.Lock()
		ps := t.peers[id]
		if ps == nil || ps.link != linkWorker {
			t.mu.Unlock()
			continue
		}
		s := ps.sess
		ps.sess = nil
		ps.notify()
		delete(t.peers, id)
		t.mu.Unlock()
		if s != nil {
			t.log.Info("net: worker no longer approved, closing its link", "peer", id)
			s.conn.CloseWithError(codeRemoved, "no longer an approved worker")
		}
	}
}

// ConnectWorker dials the worker m (key and address) from this member, if
// the worker policy approves it, and remembers its address for later
// dials (a worker's own connection also tells where to reach it). It
// returns once the link is up, or with the dial's error when ctx is done.
func (t *Transport) ConnectWorker(ctx context.Context, m Member) error {
	if m.Key.IsZero() || m.Addr == "" {
		return errors.New("net: ConnectWorker: a worker needs a key and an address")
	}
	id := m.ID()
	if err := t.admits(id, roleWorker); err != nil {
		return fmt.Errorf("net: connect worker %s: %w", id, err)
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	ps := t.peerState(id, linkWorker)
	if ps.link != linkWorker {
		t.mu.Unlock()
		return fmt.Errorf("net: connect worker %s: %w: it is linked as a member", id, ErrBadHandshake)
	}
	ps.remote = m
	t.mu.Unlock()
	_, err := t.connect(ctx, id)
	return err
}

// Workers lists the workers this member knows (connected, or approved and
// reachable at a known address), sorted by id.
func (t *Transport) Workers() []PeerInfo {
	t.mu.Lock()
	var out []PeerInfo
	for id, ps := range t.peers {
		if ps.link == linkWorker {
			out = append(out, t.peerInfo(id, ps.remote.Addr))
		}
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b PeerInfo) int { return cmpID(a.ID, b.ID) })
	return out
}
