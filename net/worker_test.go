package net

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sos-kernel/sos/ledger"
)

// approve is a worker policy approving a fixed set of node ids.
type approve struct {
	mu  sync.Mutex
	ids map[PeerID]bool
}

func approveOf(ids ...PeerID) *approve {
	a := &approve{ids: map[PeerID]bool{}}
	for _, id := range ids {
		a.ids[id] = true
	}
	return a
}

func (a *approve) policy(id PeerID, key ledger.PublicKey) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if KeyID(key) != id {
		panic("worker policy asked with a key that is not the node's")
	}
	return a.ids[id]
}

// rawUniStream opens a unidirectional stream of kind on s's connection
// without the sender's own checks and writes one message on it.
func rawUniStream(t *testing.T, s *session, kind StreamKind, msg []byte) {
	t.Helper()
	st, err := s.conn.OpenUniStreamSync(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	out := appendFrame([]byte{frameVersion, byte(kind)}, frameMessage, msg)
	if _, err := st.Write(out); err != nil {
		t.Fatal(err)
	}
}

// TestWorkerLink: a worker the member's policy approves links to it and
// then carries exactly blob transfers, both ways, and KindFollow: its
// consensus, replication, gossip and sync streams are refused by the
// member (and the member's by the worker), Send refuses those kinds on the
// link, and the worker never shows up as a member.
func TestWorkerLink(t *testing.T) {
	m, m2 := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil)
	link(t, m, m2)
	w := newNode(t, testKey(t, 10), nil)
	m.SetWorkerPolicy(approveOf(w.ID()).policy)
	if err := w.Follow(m.ID(), m.Addr().String()); err != nil {
		t.Fatal(err)
	}
	inm, inw := newInbox(m), newInbox(w)

	// The worker fetches an input from the member...
	sm, sw := memStore(t), memStore(t)
	input := blobContent(3<<20+7, 11)
	inID := putBlob(t, sm, input)
	serve(m, sm, func(p PeerID) bool { return p == w.ID() })
	st, err := w.FetchBlob(ctxT(t, 20*time.Second), inID, uint64(len(input)), []PeerID{m.ID()}, sw, "job/7")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readStored(t, sw, inID), input) || st.Chunks != 4 {
		t.Fatalf("worker's fetch: %+v", st)
	}
	// ...and the member fetches an output from the worker.
	output := blobContent(1<<20+3, 12)
	outID := putBlob(t, sw, output)
	serve(w, sw, func(p PeerID) bool { return p == m.ID() })
	sm2 := memStore(t)
	if _, err := m.FetchBlob(ctxT(t, 20*time.Second), outID, uint64(len(output)), []PeerID{w.ID()}, sm2, "job/7"); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readStored(t, sm2, outID), output) {
		t.Fatal("output differs")
	}

	// KindFollow both ways.
	if err := w.Send(ctxT(t, 5*time.Second), m.ID(), KindFollow, []byte("follow me")); err != nil {
		t.Fatal(err)
	}
	inm.expect(t, w.ID(), KindFollow, "follow me")
	if err := m.Send(ctxT(t, 5*time.Second), w.ID(), KindFollow, []byte("header")); err != nil {
		t.Fatal(err)
	}
	inw.expect(t, m.ID(), KindFollow, "header")

	// Every other kind is refused, by the sender and by the receiver.
	for _, k := range []StreamKind{KindConsensus, KindReplication, KindGossip, KindSync} {
		if err := w.Send(ctxT(t, 5*time.Second), m.ID(), k, []byte("vote")); !errors.Is(err, ErrKindNotAllowed) {
			t.Fatalf("worker Send %s: %v", k, err)
		}
		if err := m.Send(ctxT(t, 5*time.Second), w.ID(), k, []byte("append")); !errors.Is(err, ErrKindNotAllowed) {
			t.Fatalf("member Send %s to a worker: %v", k, err)
		}
		rawUniStream(t, w.session(m.ID()), k, []byte("raw "+k.String()))
		rawUniStream(t, m.session(w.ID()), k, []byte("raw "+k.String()))
	}
	m.log.waitLog(t, "refused stream", ErrKindNotAllowed.Error(), "kind=consensus", "kind=gossip", "kind=replication", "kind=sync")
	w.log.waitLog(t, "refused stream", ErrKindNotAllowed.Error(), "kind=consensus", "kind=gossip")
	inm.expectNone(t, 100*time.Millisecond)
	inw.expectNone(t, 10*time.Millisecond)

	// Membership is untouched: the worker is listed apart, and the member's
	// raft peer still works.
	for _, p := range m.Peers() {
		if p.ID == w.ID() {
			t.Fatal("the worker is listed as a member")
		}
	}
	if ws := m.Workers(); len(ws) != 1 || ws[0].ID != w.ID() || !ws[0].Connected {
		t.Fatalf("workers: %+v", ws)
	}
	if ps := w.Peers(); len(ps) != 1 || ps[0].ID != m.ID() || !ps[0].Connected {
		t.Fatalf("the worker's peers: %+v", ps)
	}
	in2 := newInbox(m2)
	if err := m.Send(ctxT(t, 5*time.Second), m2.ID(), KindConsensus, []byte("heartbeat")); err != nil {
		t.Fatal(err)
	}
	in2.expect(t, m.ID(), KindConsensus, "heartbeat")

	// Revoking the approval closes the link and refuses the next one.
	m.SetWorkerPolicy(nil)
	waitFor(t, 5*time.Second, func() bool { return !w.connected(m.ID()) }, "the revoked worker's link to close")
	if len(m.Workers()) != 0 {
		t.Fatalf("a revoked worker is still listed: %+v", m.Workers())
	}
	if err := w.Send(ctxT(t, 5*time.Second), m.ID(), KindFollow, []byte("again")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("revoked worker's Send: %v", err)
	}
}

// TestWorkerRefused: without the policy's approval a worker is refused at
// the handshake, and so is every other misuse of the worker role: a member
// claiming it, a member dialing a worker that does not follow it, a worker
// dialing a worker. A worker has no members, and a member follows nobody.
func TestWorkerRefused(t *testing.T) {
	m, m2 := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil)
	link(t, m, m2)
	w := newNode(t, testKey(t, 10), nil)
	if err := w.Follow(m.ID(), m.Addr().String()); err != nil {
		t.Fatal(err)
	}
	inm := newInbox(m)

	// No policy, then a policy that does not approve it.
	if err := w.Send(ctxT(t, 5*time.Second), m.ID(), KindFollow, []byte("hi")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("worker without a policy: %v", err)
	}
	m.log.waitLog(t, "admits no workers")
	m.SetWorkerPolicy(approveOf(m2.ID()).policy)
	time.Sleep(50 * time.Millisecond) // past the redial backoff after a refusal
	if err := w.Send(ctxT(t, 5*time.Second), m.ID(), KindFollow, []byte("hi")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("unapproved worker: %v", err)
	}
	m.log.waitLog(t, "is not an approved worker")
	inm.expectNone(t, 50*time.Millisecond)
	if len(m.Workers()) != 0 || w.connected(m.ID()) {
		t.Fatal("an unapproved worker got a link")
	}

	// A member presenting the worker role (approved by the policy, even)
	// is refused: members connect as members.
	c := dialRaw(t, m)
	h, err := newHello(testKey(t, 2), testChain, testGenesis, [bootIDSize]byte{1}, roleWorker, c.exp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.handshake(t, appendFrame(nil, frameHello, h.marshal())); !errors.Is(err, ErrBadHandshake) {
		t.Fatalf("member in the worker role: %v", err)
	}

	// A member dialing a worker that follows another member is refused by
	// the worker, even when its own policy approves the worker.
	w2 := newNode(t, testKey(t, 11), nil)
	if err := w2.Follow(m.ID(), m.Addr().String()); err != nil {
		t.Fatal(err)
	}
	m2.SetWorkerPolicy(approveOf(w2.ID()).policy)
	if err := m2.ConnectWorker(ctxT(t, 3*time.Second), w2.ID(), w2.Addr().String()); err == nil {
		t.Fatal("a worker accepted a member it does not follow")
	}
	w2.log.waitLog(t, "is not the member this worker follows")
	if len(m2.Workers()) != 0 {
		t.Fatalf("a refused worker's address is kept: %+v", m2.Workers())
	}

	// A worker following a worker is refused.
	w3 := newNode(t, testKey(t, 12), nil)
	if err := w3.Follow(w.ID(), w.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := w3.Send(ctxT(t, 3*time.Second), w.ID(), KindFollow, []byte("x")); !errors.Is(err, ErrBadHandshake) {
		t.Fatalf("worker following a worker: %v", err)
	}

	// A worker that names the wrong node id for the address refuses the
	// node answering there, as a joiner does.
	w4 := newNode(t, testKey(t, 13), nil)
	m.SetWorkerPolicy(approveOf(w4.ID()).policy)
	if err := w4.Follow(m2.ID(), m.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if err := w4.Send(ctxT(t, 3*time.Second), m2.ID(), KindFollow, []byte("x")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("worker reaching another node than the one it named: %v", err)
	}
	w4.log.waitLog(t, string(m.ID())+" is not the member this worker follows")

	if err := w.SetMembers([]Member{m.member()}); err == nil {
		t.Fatal("a worker accepted members")
	}
	if err := m.Follow(m2.ID(), m2.Addr().String()); err == nil {
		t.Fatal("a member followed another")
	}
	if err := m.ConnectWorker(ctxT(t, time.Second), m2.ID(), m2.Addr().String()); !errors.Is(err, ErrBadHandshake) {
		t.Fatalf("ConnectWorker to a member: %v", err)
	}
}

// TestMemberDialsWorker: a member dials an approved worker (which answers
// its own member only) and fetches from it; a worker that becomes a member
// loses its worker link.
func TestMemberDialsWorker(t *testing.T) {
	m := newNode(t, testKey(t, 1), nil)
	w := newNode(t, testKey(t, 10), nil)
	if err := w.Follow(m.ID(), m.Addr().String()); err != nil {
		t.Fatal(err)
	}
	m.SetWorkerPolicy(approveOf(w.ID()).policy)
	if err := m.ConnectWorker(ctxT(t, 5*time.Second), w.ID(), w.Addr().String()); err != nil {
		t.Fatal(err)
	}
	if s := w.session(m.ID()); s == nil || s.link != linkFollowed || s.outbound {
		t.Fatalf("worker's side of the member's dial: %+v", s)
	}
	sw := memStore(t)
	data := blobContent(2<<20, 13)
	id := putBlob(t, sw, data)
	serve(w, sw, nil)
	if _, err := m.FetchBlob(ctxT(t, 20*time.Second), id, uint64(len(data)), []PeerID{w.ID()}, memStore(t), "out"); err != nil {
		t.Fatal(err)
	}
	ws := m.Workers()
	if len(ws) != 1 || !ws[0].Outbound || ws[0].Addr != w.Addr().String() {
		t.Fatalf("workers: %+v", ws)
	}

	// The worker is admitted as a member (by the ledger, not by
	// connecting): its worker link closes.
	if err := m.SetMembers([]Member{m.member(), w.member()}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, func() bool { return !w.connected(m.ID()) }, "the worker link to close")
	if len(m.Workers()) != 0 {
		t.Fatalf("a member is listed as a worker: %+v", m.Workers())
	}
}
