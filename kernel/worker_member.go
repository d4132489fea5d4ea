package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/internal/failpoint"
	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
	"github.com/sos-kernel/sos/rome"
)

// The member side of workers (worker.go is the other side). A member
// links to the workers its worker policy approves (a live offer names
// their node key: jobnode.go). A worker that subscribes gets an update
// — the committed head's header, its signature and state proofs of the
// worker's pending jobs — when it subscribes and after each block that
// touched one of its jobs or the membership; never per block for every
// worker, so what a member spends on its workers grows with their jobs,
// not with their number. A worker's transactions (its job results) come
// back on the same link: the member first copies the result's outputs
// from the worker into its own blob store (so the cluster can serve and
// verify them once the result commits), then admits the transaction to
// its mempool as if it came through its API.

// followHub is a member's set of subscribed workers.
type followHub struct {
	n    *Node
	t    *sosnet.Transport
	log  *slog.Logger
	wake chan struct{}
	subm chan struct{} // bounds the worker transactions handled at once

	mu   sync.Mutex
	ctx  context.Context // the node's run context, once run starts
	subs map[sosnet.PeerID]*follower
	// byNode is subs by the node account (as its job events spell it), so
	// that a block costs the workers it concerns, not all of them.
	byNode map[string]map[sosnet.PeerID]*follower
	// due holds the followers marked dirty since nextDirty last took them
	// (each once: queued), so that finding them costs what is due.
	due  []*follower
	head *ledger.Block // header and signature of the last committed block (no txs)
}

// add registers f as the subscription of f.id (replacing any), with h.mu
// held.
func (h *followHub) add(f *follower) {
	if old := h.subs[f.id]; old != nil {
		h.remove(old)
	}
	h.subs[f.id] = f
	k := f.addr.String()
	if h.byNode[k] == nil {
		h.byNode[k] = map[sosnet.PeerID]*follower{}
	}
	h.byNode[k][f.id] = f
}

// remove forgets subscription f, with h.mu held.
func (h *followHub) remove(f *follower) {
	delete(h.subs, f.id)
	k := f.addr.String()
	delete(h.byNode[k], f.id)
	if len(h.byNode[k]) == 0 {
		delete(h.byNode, k)
	}
	f.gone = true
}

// markDirty asks for an update to f, with h.mu held.
func (h *followHub) markDirty(f *follower) {
	f.dirty = true
	if !f.queued {
		f.queued = true
		h.due = append(h.due, f)
	}
}

// context is the node's run context (Background before Run).
func (h *followHub) context() context.Context {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx == nil {
		return context.Background()
	}
	return h.ctx
}

// follower is one subscribed worker.
type follower struct {
	id      sosnet.PeerID
	addr    ledger.Address // its node key's account, which offers name
	dirty   bool           // an update is due
	members bool           // the next update proves the member set
	sending bool
	queued  bool   // in followHub.due
	gone    bool   // unsubscribed (replaced or pruned)
	sent    uint64 // height of the last update sent
	// lost: the last update could not be sent. The worker's trusted
	// height then still equals sent, so its next subscribe would not show
	// that it lacks an update: this makes that subscribe get one.
	lost bool
}

// Pacing of the member's sends to workers.
const (
	followSendTimeout = 3 * time.Second
	followSenders     = 4  // updates sent at once
	followSubmits     = 16 // worker transactions handled at once
	followFetchWait   = 2 * time.Minute
	followStageWait   = 30 * time.Second
)

func newFollowHub(n *Node, t *sosnet.Transport) *followHub {
	return &followHub{n: n, t: t, log: n.log.With("part", "workers"), wake: make(chan struct{}, 1),
		subm: make(chan struct{}, followSubmits), subs: map[sosnet.PeerID]*follower{}, byNode: map[string]map[sosnet.PeerID]*follower{}}
}

// isWorker reports whether the approved worker of node account a is
// linked as id.
func (s *jobNode) isWorker(id sosnet.PeerID, a ledger.Address) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live[a] > 0 && s.workers[a] == id
}

// workerAddr is the node account of an approved worker linked as id.
func (s *jobNode) workerAddr(id sosnet.PeerID) (ledger.Address, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.workerIDs[id]
	if !ok || s.live[a] == 0 {
		return ledger.Address{}, false
	}
	return a, true
}

func (h *followHub) poke() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// handle is the KindFollow handler: it runs on the worker's stream reader,
// so it only decodes, records and hands work off.
func (h *followHub) handle(from sosnet.PeerID, msg []byte) {
	h.mu.Lock()
	f := h.subs[from]
	h.mu.Unlock()
	var addr ledger.Address
	ok := false
	if f != nil && h.n.jobsvc.isWorker(from, f.addr) {
		addr, ok = f.addr, true
	} else {
		addr, ok = h.n.jobsvc.workerAddr(from)
	}
	if !ok {
		h.log.Debug("follow message from a node that is not an approved worker; dropped", "peer", from)
		return
	}
	typ, body, err := decodeFollow(h.n.chain.codec, msg)
	if err != nil {
		h.log.Warn("follow message refused", "peer", from, "err", err)
		return
	}
	switch typ {
	case followSubscribe:
		sub := body.(*followSub)
		h.mu.Lock()
		f := h.subs[from]
		if f == nil || f.addr != addr {
			f = &follower{id: from, addr: addr, members: true}
			h.add(f)
			h.markDirty(f)
			h.log.Info("worker subscribed", "peer", from, "node", addr, "height", sub.Height)
		} else if (sub.Want || sub.Height != f.sent || f.lost) && !f.sending {
			// It missed (or refused) what was sent last, or restarted.
			h.markDirty(f)
			if sub.Height < f.sent {
				f.members = true
			}
		}
		h.mu.Unlock()
		h.poke()
	case followSubmit:
		tx := body.(*followTx)
		select {
		case h.subm <- struct{}{}:
		default:
			h.ack(from, &followAckMsg{ID: tx.ID, Err: "member busy: too many worker transactions at once; try again"})
			return
		}
		go func() {
			defer func() { <-h.subm }()
			h.submit(from, addr, tx)
		}()
	default:
		h.log.Warn("follow message of a type a worker does not send", "peer", from, "type", typ)
	}
}

// submit admits a worker's transaction: only its node key's own job
// results, whose outputs are first copied into this member's store.
func (h *followHub) submit(from sosnet.PeerID, addr ledger.Address, m *followTx) {
	a := &followAckMsg{ID: m.ID}
	err := h.admitFromWorker(from, addr, m.Tx)
	if err != nil {
		a.Err = err.Error()
	} else {
		a.Hash = ledger.HashBytes(m.Tx)
	}
	a.Nonce, _ = h.n.mempool.NextNonce(addr)
	a.Height = h.n.store.Head().Height
	h.ack(from, a)
}

func (h *followHub) admitFromWorker(from sosnet.PeerID, addr ledger.Address, raw []byte) error {
	tx, err := h.n.chain.codec.DecodeTx(raw)
	if err != nil {
		return err
	}
	if tx.Sender != addr {
		return fmt.Errorf("kernel: a worker sends its own node key's transactions only (sender %s, worker %s)", tx.Sender, addr)
	}
	res, ok := tx.Payload.(*ledger.JobResult)
	if !ok {
		return fmt.Errorf("kernel: a worker sends job results only, not %s", tx.Payload.Kind())
	}
	refs := []ledger.BlobRef{res.Stdout, res.Stderr}
	for _, f := range res.Outputs {
		refs = append(refs, f.Ref())
	}
	ctx, cancel := context.WithTimeout(h.context(), followFetchWait)
	defer cancel()
	var lease uint64
	if m := h.n.chain.market; m != nil {
		if j, err := m.Job(ledger.NewState(h.n.store), res.JobID); err == nil {
			lease = j.LeaseID
		}
	}
	for _, r := range refs {
		if r.IsZero() || h.n.blobs.Has(blob.ID(r.ID)) {
			continue
		}
		st, err := h.t.FetchBlob(ctx, blob.ID(r.ID), r.Size, []sosnet.PeerID{from}, h.n.blobs, jobTag(res.JobID))
		if lease != 0 {
			h.n.jobs.Moved(lease, st.Bytes, 0)
		}
		if err != nil {
			return fmt.Errorf("kernel: job %d: the result's outputs could not be copied from the worker: %w", res.JobID, err)
		}
	}
	r, _ := h.n.admit(raw)
	if r.Error != "" {
		return errors.New(r.Error)
	}
	return nil
}

func (h *followHub) ack(to sosnet.PeerID, a *followAckMsg) {
	msg, err := encodeFollow(h.n.chain.codec, followAck, a)
	if err != nil {
		h.log.Warn("encode ack", "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), followSendTimeout)
	defer cancel()
	if err := h.t.Send(ctx, to, sosnet.KindFollow, msg); err != nil {
		h.log.Debug("ack to a worker", "peer", to, "err", err)
	}
}

// afterCommit marks the workers a block concerns: those whose jobs it
// submitted, answered, challenged or timed out (by the node address its
// job events carry), and all of them when membership changed.
func (h *followHub) afterCommit(bb *BuiltBlock) {
	h.mu.Lock()
	h.head = &ledger.Block{Header: bb.Block.Header, Signature: bb.Block.Signature}
	if len(h.subs) == 0 {
		h.mu.Unlock()
		return
	}
	due := false
	mark := func(evs []ledger.Event) {
		for i := range evs {
			if a := attr(&evs[i], "node"); a != "" {
				for _, f := range h.byNode[a] {
					h.markDirty(f)
					due = true
				}
			}
		}
	}
	members := false
	for i, r := range bb.Receipts {
		if r.Code != ledger.CodeOK || i >= len(bb.Included) {
			continue
		}
		switch k := bb.Included[i].Tx.Payload.Kind(); {
		case isJobKind(k):
			mark(r.Events)
		case k >= ledger.KindMemberAdd && k <= ledger.KindMemberRemove:
			members = true
		}
	}
	mark(bb.EndEvents)
	if members {
		for _, f := range h.subs {
			f.members = true
			h.markDirty(f)
			due = true
		}
	}
	h.mu.Unlock()
	if due {
		h.poke()
	}
}

// run sends the updates due until ctx ends.
func (h *followHub) run(ctx context.Context) error {
	h.mu.Lock()
	h.ctx = ctx
	h.mu.Unlock()
	work := make(chan *follower)
	var wg sync.WaitGroup
	for range followSenders {
		wg.Go(func() {
			for f := range work {
				h.sendUpdate(ctx, f)
			}
		})
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.wake:
		case <-tick.C:
			h.prune()
		}
		for {
			f := h.nextDirty()
			if f == nil {
				break
			}
			select {
			case work <- f:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// nextDirty takes a follower whose update is due, marking it sending. It
// looks at the followers marked since (h.due), not at every subscription.
func (h *followHub) nextDirty() *follower {
	h.mu.Lock()
	defer h.mu.Unlock()
	kept := h.due[:0]
	var next *follower
	for _, f := range h.due {
		switch {
		case next != nil:
			kept = append(kept, f)
		case f.gone || !f.dirty:
			f.queued = false
		case f.sending: // still due: taken once its send ends
			kept = append(kept, f)
		default:
			f.queued = false
			f.dirty, f.sending = false, true
			next = f
		}
	}
	clear(h.due[len(kept):])
	h.due = kept
	return next
}

// prune forgets the subscriptions of workers no longer approved.
func (h *followHub) prune() {
	h.mu.Lock()
	subs := make([]follower, 0, len(h.subs))
	for _, f := range h.subs {
		subs = append(subs, follower{id: f.id, addr: f.addr})
	}
	h.mu.Unlock()
	for _, f := range subs {
		id := f.id
		if h.n.jobsvc.isWorker(id, f.addr) {
			continue
		}
		h.mu.Lock()
		if f := h.subs[id]; f != nil && !f.sending {
			h.remove(f)
			h.log.Info("worker unsubscribed: no live offer names it any more", "peer", id)
		}
		h.mu.Unlock()
	}
}

// sendUpdate builds and sends f's update.
func (h *followHub) sendUpdate(ctx context.Context, f *follower) {
	h.mu.Lock()
	members := f.members
	h.mu.Unlock()
	u, err := h.update(ctx, f.addr, members)
	ok := false
	if err != nil {
		h.log.Warn("worker update", "peer", f.id, "err", err)
	} else if msg, err := encodeFollow(h.n.chain.codec, followUpdate, u); err != nil {
		h.log.Warn("worker update", "peer", f.id, "err", err)
	} else {
		sctx, cancel := context.WithTimeout(ctx, followSendTimeout)
		err := h.sendFollow(sctx, f.id, msg)
		cancel()
		if err != nil {
			h.log.Debug("worker update not sent", "peer", f.id, "err", err)
		} else {
			ok = true
		}
	}
	h.mu.Lock()
	f.sending = false
	f.lost = !ok // when not sent, the worker's next subscribe gets it again
	if ok {
		f.sent = u.Header.Height
		if members {
			f.members = false
		}
	}
	again := f.dirty // a block concerned it while this was being sent
	h.mu.Unlock()
	if again {
		h.poke()
	}
}

// sendFollow sends an update to worker id (failpoint.FollowUpdateDrop
// loses it on the way).
func (h *followHub) sendFollow(ctx context.Context, id sosnet.PeerID, msg []byte) error {
	if _, on := failpoint.Eval(failpoint.FollowUpdateDrop); on {
		return fmt.Errorf("kernel: update to worker %s lost (failpoint %s)", id, failpoint.FollowUpdateDrop)
	}
	return h.t.Send(ctx, id, sosnet.KindFollow, msg)
}

// update proves the jobs waiting for node's result (and, with members,
// every member record) at the committed head. Proofs and header must be
// of one height: a block committed in between makes it start over.
func (h *followHub) update(ctx context.Context, node ledger.Address, members bool) (*followUpd, error) {
	m := h.n.chain.market
	if m == nil {
		return nil, errors.New("kernel: this chain has no market")
	}
	for attempt := 0; attempt < 5; attempt++ {
		head := h.n.store.Head()
		jobs, err := m.PendingJobs(ledger.NewState(h.n.store), node, maxFollowJobs+1)
		if err != nil {
			return nil, err
		}
		if attempt == 0 {
			h.stage(ctx, jobs)
		}
		u := &followUpd{Complete: len(jobs) <= maxFollowJobs}
		if len(jobs) > maxFollowJobs {
			jobs = jobs[:maxFollowJobs]
		}
		same := true
		for i := range jobs {
			sp, err := h.n.store.Prove(rome.JobKey(jobs[i].ID))
			if err != nil {
				return nil, err
			}
			if sp.Height != head.Height {
				same = false
				break
			}
			u.Jobs = append(u.Jobs, toStateProof(sp))
		}
		if same && members {
			list, err := MembersFromLedger(h.n.store)
			if err != nil {
				return nil, err
			}
			if len(list) > maxFollowMembers {
				list = list[:maxFollowMembers]
			}
			for _, mb := range list {
				sp, err := h.n.store.Prove(ledger.MemberKey(mb.NodeID))
				if err != nil {
					return nil, err
				}
				if sp.Height != head.Height {
					same = false
					break
				}
				u.Members = append(u.Members, toStateProof(sp))
			}
		}
		if !same {
			continue
		}
		hb, err := h.headerAt(head.Height)
		if err != nil {
			return nil, err
		}
		u.Header, u.Signature = hb.Header, hb.Signature
		u.Nonce, _ = h.n.mempool.NextNonce(node)
		return u, nil
	}
	return nil, errors.New("kernel: the head kept moving while proving a worker's update")
}

// stage brings the module, inputs and stdin of the jobs a worker is about
// to be told of into this member's store, from the other members (the
// consumer gave them to one of them): the worker fetches from its member
// only. A blob that cannot be had now is the worker's to retry.
func (h *followHub) stage(ctx context.Context, jobs []rome.Job) {
	for i := range jobs {
		j := &jobs[i]
		refs := []ledger.BlobRef{j.Module}
		if !j.Stdin.IsZero() {
			refs = append(refs, j.Stdin)
		}
		for _, f := range j.Inputs {
			refs = append(refs, f.Ref())
		}
		src := h.n.jobsvc.blobSource(j)
		for _, r := range refs {
			if h.n.blobs.Has(blob.ID(r.ID)) {
				continue
			}
			sctx, cancel := context.WithTimeout(ctx, followStageWait)
			err := src.fetch(sctx, r)
			cancel()
			if err != nil {
				h.log.Warn("a worker's job blob could not be staged on its member", "job_id", j.ID, "blob", r.ID, "err", err)
			}
		}
	}
}

// headerAt is the signed header of the block at height.
func (h *followHub) headerAt(height uint64) (*ledger.Block, error) {
	h.mu.Lock()
	hb := h.head
	h.mu.Unlock()
	if hb != nil && hb.Header.Height == height {
		return hb, nil
	}
	b, err := h.n.store.Block(height)
	if err != nil {
		return nil, err
	}
	return &ledger.Block{Header: b.Header, Signature: b.Signature}, nil
}
