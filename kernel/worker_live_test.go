package kernel

import (
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
	"github.com/sos-kernel/sos/rome"
)

// TestLiveWorkersFollowChangedOffers: the set of node accounts a member
// accepts as workers is kept from the offers each committed block wrote:
// a block reads the offers it changed (none for a block without offers,
// one for a new or cancelled offer), not every offer; all of them only at
// start and after the store jumped (a state sync). Counted in offer
// records read, not timed.
func TestLiveWorkersFollowChangedOffers(t *testing.T) {
	tn := newRomeTestChain(t, 1000)
	m := tn.chain.market
	prov, other := tn.users[0], tn.users[2]
	js := &jobNode{log: slog.New(slog.NewTextHandler(io.Discard, nil)), wake: make(chan struct{}, 1), verifyQ: map[uint64]struct{}{},
		live: map[ledger.Address]int{}, liveOffers: map[uint64]ledger.Address{}, workers: map[ledger.Address]sosnet.PeerID{},
		workerIDs: map[sosnet.PeerID]ledger.Address{}, liveIDs: map[uint64]struct{}{}, liveFull: true}
	const n = 20
	nodes := make([]ledger.Address, n+1)
	for i := range nodes {
		nodes[i] = seededKey(t, 7000+i).Address()
	}
	offer := func(node ledger.Address) *PendingTx {
		return tn.tx(t, prov, &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 1, Amount: 10}}, Price: []ledger.ResourceAmount{{Kind: 1, Amount: 5}},
			Node: node, Bond: ledger.Coins{{Denom: "uTFLP", Amount: 1000}}}, 1_000_000)
	}
	step := func(what string, txs []*PendingTx, wantReads int) bool {
		t.Helper()
		bb := tn.block(t, txs...)
		for i, r := range bb.Receipts {
			if r.Code != ledger.CodeOK {
				t.Fatalf("%s: tx %d: code %d", what, i, r.Code)
			}
		}
		js.afterCommit(bb)
		before := js.liveReads
		again := js.updateLive(m, ledger.NewState(tn.store))
		if got := js.liveReads - before; got != wantReads {
			t.Fatalf("%s: read %d offers, want %d", what, got, wantReads)
		}
		return again
	}
	live := func(want ...ledger.Address) {
		t.Helper()
		if len(js.live) != len(want) {
			t.Fatalf("%d live node accounts, want %d", len(js.live), len(want))
		}
		for _, a := range want {
			if js.live[a] != 1 {
				t.Fatalf("node %s: %d live offers name it, want 1", a, js.live[a])
			}
		}
	}
	var txs []*PendingTx
	for _, a := range nodes[:n] {
		txs = append(txs, offer(a))
	}
	if !step("start: a full count", txs, n) {
		t.Fatal("a full count must hand the policy to the transport")
	}
	live(nodes[:n]...)
	if step("a block without offers", []*PendingTx{tn.tx(t, other, transfer(prov, 1), 1_000_000)}, 0) {
		t.Fatal("nothing changed, yet the policy is handed again")
	}
	if step("one new offer", []*PendingTx{offer(nodes[n])}, 1) {
		t.Fatal("a node newly named needs no new policy")
	}
	live(nodes...)
	offers, err := m.Offers(ledger.NewState(tn.store), 0, func(o *rome.Offer) bool { return o.Node == nodes[3] })
	if err != nil || len(offers) != 1 {
		t.Fatalf("offer naming node 3: %v %v", offers, err)
	}
	if !step("one offer cancelled", []*PendingTx{tn.tx(t, prov, &ledger.RomeCancel{ID: offers[0].ID}, 1_000_000)}, 1) {
		t.Fatal("a node no longer named must make the transport drop its worker")
	}
	rest := append(append([]ledger.Address{}, nodes[:3]...), nodes[4:]...)
	live(rest...)
	// A block that does not follow the last one seen (a state sync moved
	// the store): everything is counted again.
	js.mu.Lock()
	js.liveSeen -= 2
	js.mu.Unlock()
	step("after a jump", nil, n+1)
	live(rest...)
}

// TestFollowHubMarksOnlyConcernedWorkers: with many subscribed workers, a
// block with a job of one of them queues that one for an update and
// nothing else; taking the due updates visits the queue, not every
// subscription; a membership change queues them all.
func TestFollowHubMarksOnlyConcernedWorkers(t *testing.T) {
	h := &followHub{wake: make(chan struct{}, 1), subs: map[sosnet.PeerID]*follower{}, byNode: map[string]map[sosnet.PeerID]*follower{}}
	const n = 50
	fs := make([]*follower, n)
	for i := range fs {
		fs[i] = &follower{id: sosnet.PeerID(fmt.Sprintf("peer-%d", i)), addr: seededKey(t, 7100+i).Address()}
		h.add(fs[i])
	}
	block := func(height uint64, kind ledger.Payload, evs ...ledger.Event) *BuiltBlock {
		return &BuiltBlock{Block: &ledger.Block{Header: ledger.Header{Height: height}},
			Receipts: []ledger.Receipt{{Code: ledger.CodeOK, Events: evs}}, Included: []*PendingTx{{Tx: &ledger.Tx{Payload: kind}}}}
	}
	node := func(f *follower) ledger.Event {
		return ledger.Event{Type: "job_submitted", Attrs: []ledger.Attr{{Key: "node", Value: f.addr.String()}}}
	}
	h.afterCommit(block(1, &ledger.JobSubmit{}, node(fs[7])))
	if len(h.due) != 1 || h.due[0] != fs[7] || !fs[7].dirty {
		t.Fatalf("a block with a job of worker 7 queued %d updates", len(h.due))
	}
	if f := h.nextDirty(); f != fs[7] || !f.sending || f.dirty {
		t.Fatalf("next update: %+v", f)
	}
	if f := h.nextDirty(); f != nil {
		t.Fatalf("a second update was due: %s", f.id)
	}
	// Concerned again while its update is being sent: it stays queued
	// until the send ends.
	h.afterCommit(block(2, &ledger.JobResult{}, node(fs[7])))
	if f := h.nextDirty(); f != nil || len(h.due) != 1 {
		t.Fatalf("an update taken while the last one is being sent: %v", f)
	}
	fs[7].sending = false
	if f := h.nextDirty(); f != fs[7] {
		t.Fatalf("after the send: %v", f)
	}
	fs[7].sending = false
	// Unsubscribed workers are dropped from the queue.
	h.afterCommit(block(3, &ledger.JobSubmit{}, node(fs[3])))
	h.remove(fs[3])
	if f := h.nextDirty(); f != nil || len(h.due) != 0 {
		t.Fatalf("update for an unsubscribed worker: %v", f)
	}
	h.afterCommit(block(4, &ledger.MemberAdd{}))
	if len(h.due) != n-1 {
		t.Fatalf("a membership change queued %d updates, want %d", len(h.due), n-1)
	}
}
