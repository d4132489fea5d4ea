package kernel

import (
	"context"
	"errors"
	"sync"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
)

// memNet is an in-memory PeerNet hub for cluster tests: ordered delivery
// per (sender, receiver, kind), with partitions.
type memNet struct {
	mu       sync.Mutex
	nodes    map[string]*memPeer
	isolated map[string]bool
	addrs    map[string]string // address → node id serving it (serve)
}

type memPeer struct {
	hub      *memNet
	id       string
	mu       sync.Mutex
	handlers map[byte]func(string, []byte)
	allowed  map[string]bool // nil: everyone
	queue    chan memMsg
	done     chan struct{}
	stopped  chan struct{} // closed when loop has returned
}

type memMsg struct {
	from string
	kind byte
	data []byte
}

func newMemNet() *memNet {
	return &memNet{nodes: map[string]*memPeer{}, isolated: map[string]bool{}, addrs: map[string]string{}}
}

// serve makes node id answer dial-backs at addr ("" id: nobody does).
func (h *memNet) serve(addr, id string) {
	h.mu.Lock()
	h.addrs[addr] = id
	h.mu.Unlock()
}

var errWrongKey = errors.New("memnet: another key answers at that address")

// VerifyAddr checks that the node serving addr holds key.
func (p *memPeer) VerifyAddr(ctx context.Context, addr string, key ledger.PublicKey) error {
	h := p.hub
	h.mu.Lock()
	id, ok := h.addrs[addr]
	h.mu.Unlock()
	switch {
	case !ok || id == "":
		return errUnreachable
	case id != key.Fingerprint():
		return errWrongKey
	}
	return nil
}

func (h *memNet) join(id string) *memPeer {
	p := &memPeer{hub: h, id: id, handlers: map[byte]func(string, []byte){}, queue: make(chan memMsg, 1<<14), done: make(chan struct{}), stopped: make(chan struct{})}
	h.mu.Lock()
	h.nodes[id] = p
	h.mu.Unlock()
	go p.loop()
	return p
}

// leave takes id off the network; the channel is closed once its handler
// in progress, if any, has returned: wait for it before closing the node's
// store (the QUIC transport's Close waits likewise).
func (h *memNet) leave(id string) <-chan struct{} {
	h.mu.Lock()
	p := h.nodes[id]
	delete(h.nodes, id)
	h.mu.Unlock()
	if p == nil {
		done := make(chan struct{})
		close(done)
		return done
	}
	close(p.done)
	return p.stopped
}

// isolate drops every message to and from id until heal.
func (h *memNet) isolate(id string, on bool) {
	h.mu.Lock()
	h.isolated[id] = on
	h.mu.Unlock()
}

func (p *memPeer) loop() {
	defer close(p.stopped)
	for {
		select {
		case <-p.done:
			return
		case m := <-p.queue:
			p.mu.Lock()
			fn := p.handlers[m.kind]
			p.mu.Unlock()
			if fn != nil {
				fn(m.from, m.data)
			}
		}
	}
}

var errUnreachable = errors.New("memnet: unreachable")

func (p *memPeer) Send(ctx context.Context, peer string, kind byte, msg []byte) error {
	h := p.hub
	h.mu.Lock()
	dst := h.nodes[peer]
	cut := h.isolated[peer] || h.isolated[p.id]
	h.mu.Unlock()
	if dst == nil || cut || !p.allows(peer) || !dst.allows(p.id) {
		return errUnreachable
	}
	select {
	case dst.queue <- memMsg{from: p.id, kind: kind, data: append([]byte(nil), msg...)}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *memPeer) Handle(kind byte, fn func(string, []byte)) {
	p.mu.Lock()
	p.handlers[kind] = fn
	p.mu.Unlock()
}

// HandleBorrowed is Handle: every in-memory message is its own copy.
func (p *memPeer) HandleBorrowed(kind byte, fn func(string, []byte)) { p.Handle(kind, fn) }

// SetMembers limits whom p talks to, as the QUIC transport does.
func (p *memPeer) SetMembers(members []Member) error {
	allowed := map[string]bool{}
	for _, m := range members {
		allowed[m.NodeID] = true
	}
	p.mu.Lock()
	p.allowed = allowed
	p.mu.Unlock()
	return nil
}

func (p *memPeer) allows(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.allowed == nil || p.allowed[id]
}

func (p *memPeer) Peers() []client.Peer {
	h := p.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []client.Peer
	for id := range h.nodes {
		if id != p.id {
			out = append(out, client.Peer{NodeID: id, Connected: !h.isolated[id] && !h.isolated[p.id]})
		}
	}
	return out
}
