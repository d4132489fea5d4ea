package net

import "sync"

// Partition simulates network partitions for tests: give each node
// Config.Drop = p.Filter(its id), then Isolate some nodes and Heal later.
// Messages to and from an isolated node are lost in both directions, while
// its QUIC connections stay up (keep-alives still flow), so healing needs no
// reconnect. The zero value drops nothing.
type Partition struct {
	mu       sync.Mutex
	isolated map[PeerID]bool
}

// Isolate cuts the given nodes off from everyone else.
func (p *Partition) Isolate(ids ...PeerID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isolated == nil {
		p.isolated = map[PeerID]bool{}
	}
	for _, id := range ids {
		p.isolated[id] = true
	}
}

// Heal reconnects every node.
func (p *Partition) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.isolated)
}

// Filter returns the Config.Drop hook for the node self: a message is dropped
// when exactly one of self and the peer is isolated, or both are isolated
// (isolated nodes are cut from each other too).
func (p *Partition) Filter(self PeerID) DropFunc {
	return func(peer PeerID, _ StreamKind, _ bool) bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.isolated[self] || p.isolated[peer]
	}
}
