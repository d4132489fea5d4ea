package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/internal/failpoint"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
	"github.com/sos-kernel/sos/rome"
)

// testWorker is a worker node (not a member) of a jobCluster, restartable
// on its home.
type testWorker struct {
	jc      *jobCluster
	key     *ledger.PrivateKey
	home    string
	follow  int
	w       *Worker
	gate    chan struct{}
	entered chan uint64
	stopFn  func()
}

func newTestWorker(jc *jobCluster, seed, follow int) *testWorker {
	return &testWorker{jc: jc, key: seededKey(jc.t, seed), home: jc.t.TempDir(), follow: follow, entered: make(chan uint64, 64)}
}

// start runs the worker on its home, following member tw.follow, with a
// closed gate unless hold.
func (tw *testWorker) start(hold bool) {
	t := tw.jc.t
	t.Helper()
	cfg := DefaultConfig()
	cfg.P2PAddr = "127.0.0.1:0"
	tw.gate = make(chan struct{})
	if !hold {
		close(tw.gate)
	}
	opts := WorkerOptions{Home: tw.home, Config: cfg, GenesisDoc: tw.jc.doc, NodeKey: tw.key,
		Follow:      tw.jc.nodes[tw.follow].NodeID() + "@" + tw.jc.addrs[tw.follow],
		JobExecutor: testExec{gate: tw.gate, entered: tw.entered}, Resubscribe: 200 * time.Millisecond}
	opts.Logger = testWorkerLog()
	w, err := OpenWorker(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	tw.w = w
	tw.stopFn = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("worker: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("worker did not stop")
		}
		w.Close()
	}
	t.Cleanup(tw.stop)
}

// testWorkerLog is a worker's logger: nil (discard) unless SOS_TEST_LOG
// is set.
func testWorkerLog() *slog.Logger {
	if os.Getenv("SOS_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", "worker")
}

func (tw *testWorker) stop() {
	if tw.stopFn != nil {
		tw.stopFn()
		tw.stopFn = nil
	}
}

// runs waits until the worker begins to run job id.
func (tw *testWorker) runs(id uint64) {
	tw.jc.t.Helper()
	for {
		select {
		case got := <-tw.entered:
			if got == id {
				return
			}
		case <-tw.jc.ctx.Done():
			tw.jc.t.Fatalf("the worker never ran job %d", id)
		}
	}
}

// leaseOnWorker funds the worker's node account (it pays its results'
// fees), has prov offer compute naming the worker's key with a bond, cons
// request it, and waits for the lease.
func (jc *jobCluster) leaseOnWorker(worker *ledger.PrivateKey) {
	jc.t.Helper()
	jc.wait("a leader", func() bool { s, err := jc.clients[0].Status(jc.ctx); return err == nil && s.Height > 2 })
	jc.send(0, jc.prov, transfer(worker, 100_000_000))
	jc.send(0, jc.prov, &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 1, Amount: 10}}, Price: []ledger.ResourceAmount{{Kind: 1, Amount: 5}},
		Node: worker.Address(), Bond: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000}}})
	jc.send(0, jc.cons, &ledger.RomeRequest{Demand: []ledger.ResourceAmount{{Kind: 1, Amount: 10}}, MaxPrice: []ledger.ResourceAmount{{Kind: 1, Amount: 5}}, Epochs: 100000})
	c := jc.clients[0]
	jc.wait("an active lease", func() bool {
		leases, err := c.RomeLeases(jc.ctx, client.RomeFilter{Status: "active"})
		if err != nil || len(leases) == 0 {
			return false
		}
		mk, err := c.RomeMarket(jc.ctx)
		jc.lease = leases[0].ID
		return err == nil && mk.Epoch >= leases[0].StartEpoch
	})
}

// TestWorkerRunsJobsEndToEnd: a worker that is not a member follows node
// 1; the offer names the worker's key; the consumer submits through node
// 0 (module and a 1 MiB input uploaded there). Node 1 stages the blobs
// from node 0 and tells the worker of the job with a header signed by a
// voter and a state proof; the worker fetches them from node 1, runs the
// job, and hands its signed result to node 1, which copies the outputs
// from the worker and admits it. The result commits, node 0 (whose
// keyring holds cons) re-executes and verifies it. The worker stays
// outside the cluster: not a member, not in raft, and its link refuses
// every kind but blobs and follow.
func TestWorkerRunsJobsEndToEnd(t *testing.T) {
	jc := newJobCluster(t, 400)
	tw := newTestWorker(jc, 1200, 1)
	jc.leaseOnWorker(tw.key)
	tw.start(false)
	input := randomBytes(t, 1<<20)
	id := jc.submit(0, input, false)
	j := jc.job(0, id, "done", statusIs("done"))
	if j.NodeID != tw.key.Address().String() || j.BytesIn != uint64(len(input)+len(testModule)) {
		t.Fatalf("result: node %s (want the worker's %s), bytes in %d", j.NodeID, tw.key.Address(), j.BytesIn)
	}
	j = jc.job(0, id, "verified", func(j *client.Job) bool { return j.Verified != nil })
	if !*j.Verified {
		t.Fatal("the consumer's node did not reproduce the worker's result")
	}
	var out strings.Builder
	if _, err := jc.clients[1].GetBlob(jc.ctx, j.Outputs[0].ID, int64(j.Outputs[0].Size), &out); err != nil || out.String() != sha256Line(input, "data.bin") {
		t.Fatalf("output from the member the worker follows: %q, %v", out.String(), err)
	}
	st := tw.w.Status()
	if st.Results != 1 || st.Height < j.ResultHeight || st.Voters != 3 || st.Refused != 0 {
		t.Fatalf("worker status %+v (result at height %d)", st, j.ResultHeight)
	}
	if _, err := os.Stat(filepath.Join(tw.home, WorkerStateFile)); err != nil {
		t.Fatalf("trusted state not saved: %v", err)
	}

	// Outside the cluster: not a member on the ledger nor in raft, not a
	// peer of the members' transport, only a worker of node 1's.
	wid := tw.w.NodeID()
	for i, n := range jc.nodes {
		ms, err := MembersFromLedger(n.store)
		if err != nil || len(ms) != 3 {
			t.Fatalf("node %d lists %d members: %v", i, len(ms), err)
		}
		for _, m := range n.cluster.memberList() {
			if m.NodeID == wid {
				t.Fatalf("node %d has the worker in its raft membership", i)
			}
		}
		for _, p := range n.transport.Peers() {
			if string(p.ID) == wid {
				t.Fatalf("node %d lists the worker among its member peers", i)
			}
		}
	}
	if ws := jc.nodes[1].transport.Workers(); len(ws) != 1 || string(ws[0].ID) != wid || !ws[0].Connected {
		t.Fatalf("node 1's workers: %+v", ws)
	}
	// The worker's link carries no raft, replication, gossip or sync.
	for _, k := range []sosnet.StreamKind{sosnet.KindConsensus, sosnet.KindReplication, sosnet.KindGossip, sosnet.KindSync} {
		err := tw.w.Transport().Send(jc.ctx, sosnet.PeerID(jc.nodes[1].NodeID()), k, []byte{1})
		if !errors.Is(err, sosnet.ErrKindNotAllowed) {
			t.Fatalf("worker sending %s to its member: %v, want ErrKindNotAllowed", k, err)
		}
	}
	// Nor can it reach a member it does not follow.
	if err := tw.w.Transport().Send(jc.ctx, sosnet.PeerID(jc.nodes[0].NodeID()), sosnet.KindFollow, []byte{followSubscribe}); err == nil {
		t.Fatal("a worker sent to a member it does not follow")
	}

	// What a worker refuses (checked on a second worker that is not
	// running, so that its trusted state moves only by these updates): a
	// forged signature, a header of an unknown proposer, proofs that do not
	// match the root, a header below the trusted one.
	probe, err := OpenWorker(WorkerOptions{Home: t.TempDir(), Config: DefaultConfig(), GenesisDoc: jc.doc, NodeKey: seededKey(t, 1202),
		Follow: jc.nodes[1].NodeID() + "@" + jc.addrs[1]})
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	hub := jc.nodes[1].follow
	tw.w.mu.Lock()
	tw.w.slots = 0 // the next job stays pending, so updates prove it
	tw.w.mu.Unlock()
	jc.submit(0, input, false)
	var good *followUpd
	jc.wait("an update listing a pending job", func() bool {
		good, err = hub.update(jc.ctx, tw.key.Address(), true)
		return err == nil && len(good.Jobs) > 0
	})
	stranger := seededKey(t, 1201)
	for name, mutate := range map[string]func(u *followUpd){
		"signature": func(u *followUpd) { u.Signature = append([]byte{}, u.Signature...); u.Signature[10] ^= 1 },
		"unknown proposer": func(u *followUpd) {
			b := &ledger.Block{Header: u.Header}
			_ = jc.nodes[0].chain.codec.SignBlock(b, stranger)
			u.Header, u.Signature = b.Header, b.Signature
		},
		"job value":    func(u *followUpd) { u.Jobs[0].Value = append(append([]byte{}, u.Jobs[0].Value...), 0) },
		"state root":   func(u *followUpd) { u.Header.StateRoot[0] ^= 1 },
		"member proof": func(u *followUpd) { u.Members = []stateProof{u.Jobs[0]} },
	} {
		u := *good
		u.Jobs = append([]stateProof{}, good.Jobs...)
		mutate(&u)
		if err := probe.apply(&u); !errors.Is(err, errUntrusted) {
			t.Errorf("update with a forged %s: %v, want refused", name, err)
		}
	}
	if st := probe.Status(); st.Height != 0 || st.Pending != 0 {
		t.Fatalf("forged updates moved the worker: %+v", st)
	}
	if err := probe.apply(good); err != nil {
		t.Fatalf("the genuine update refused: %v", err)
	}
	if st := probe.Status(); st.Height != good.Header.Height || st.Voters != 3 {
		t.Fatalf("after the genuine update: %+v", st)
	}
	old := *good
	old.Header.Height--
	if err := probe.apply(&old); !errors.Is(err, errUntrusted) {
		t.Errorf("an update below the trusted height: %v, want refused", err)
	}
}

// TestWorkerStrangerRefused: a node no live offer names cannot link to a
// member as a worker (the member's policy refuses its handshake), so it
// learns nothing and runs nothing; once an offer names it, it is admitted.
func TestWorkerStrangerRefused(t *testing.T) {
	jc := newJobCluster(t, 400)
	jc.wait("a leader", func() bool { s, err := jc.clients[0].Status(jc.ctx); return err == nil && s.Height > 2 })
	tw := newTestWorker(jc, 1210, 0)
	tw.start(false)
	msg, err := encodeFollow(tw.w.codec, followSubscribe, &followSub{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(jc.ctx, 2*time.Second)
	err = tw.w.Transport().Send(ctx, sosnet.PeerID(jc.nodes[0].NodeID()), sosnet.KindFollow, msg)
	cancel()
	if !errors.Is(err, sosnet.ErrUnknownPeer) {
		t.Fatalf("a stranger's link to a member: %v, want ErrUnknownPeer", err)
	}
	if st := tw.w.Status(); st.Height != 0 {
		t.Fatalf("a stranger got updates: %+v", st)
	}
	if ws := jc.nodes[0].transport.Workers(); len(ws) != 0 {
		t.Fatalf("the member lists workers: %+v", ws)
	}
	jc.leaseOnWorker(tw.key)
	jc.wait("the worker admitted once an offer names it", func() bool { return tw.w.Status().Height > 0 })
}

// TestWorkerRestartResumes: the worker is stopped while it runs a job and
// started again on its home: it resumes from its saved trusted head, the
// member proves the job still waiting, and the worker runs it to a
// committed result. A job submitted while it is down is run too.
func TestWorkerRestartResumes(t *testing.T) {
	jc := newJobCluster(t, 400)
	tw := newTestWorker(jc, 1220, 0)
	jc.leaseOnWorker(tw.key)
	tw.start(true)
	input := randomBytes(t, 64<<10)
	id := jc.submit(0, input, false, "hold")
	tw.runs(id)
	before := tw.w.Status().Height
	tw.stop()
	id2 := jc.submit(0, randomBytes(t, 1000), false)
	tw.start(false)
	if h := tw.w.Status().Height; h < before || h == 0 {
		t.Fatalf("restarted at trusted height %d, had %d", h, before)
	}
	for _, x := range []uint64{id, id2} {
		j := jc.job(0, x, "done", statusIs("done"))
		if j.NodeID != tw.key.Address().String() {
			t.Fatalf("job %d answered by %s", x, j.NodeID)
		}
	}
	// The outputs were copied to the member before the result committed.
	j, _ := jc.clients[0].Job(jc.ctx, id)
	oid, err := ledger.ParseBlobID(j.Outputs[0].ID)
	if err != nil || !jc.nodes[0].blobs.Has(blob.ID(oid)) {
		t.Fatalf("output %s not on the member: %v", j.Outputs[0].ID, err)
	}
	// The worker learns that both are answered from the member's update
	// after the block of the last result, which arrives a little after the
	// API shows the job done: wait for it. A job it keeps pending (a
	// cancelled run requeued, a result resent for a job no longer its)
	// fails here after the cluster's deadline.
	jc.wait("the worker to forget both answered jobs", func() bool { st := tw.w.Status(); return st.Pending == 0 && st.Running == 0 })
	if st := tw.w.Status(); st.Results < 2 {
		t.Fatalf("worker status %+v: want both results counted", st)
	}
}

// handWorker opens a worker following node 0 that the test drives by
// hand: no Run loop, so it subscribes to nothing and its trusted head
// moves only by the updates the test applies. Its job runs take ctx.
func handWorker(jc *jobCluster, key *ledger.PrivateKey, gate chan struct{}, entered chan uint64) (*Worker, context.Context) {
	t := jc.t
	cfg := DefaultConfig()
	cfg.P2PAddr = "127.0.0.1:0"
	w, err := OpenWorker(WorkerOptions{Home: t.TempDir(), Config: cfg, GenesisDoc: jc.doc, NodeKey: key,
		Follow: jc.nodes[0].NodeID() + "@" + jc.addrs[0], JobExecutor: testExec{gate: gate, entered: entered}, Logger: testWorkerLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(jc.ctx)
	t.Cleanup(func() {
		cancel()
		w.wg.Wait()
		w.Close()
	})
	return w, ctx
}

// drive schedules w's jobs, as its Run loop would, until cond holds
// (a run that fails, such as a blob fetch before the member admits the
// worker's link, is retried).
func (jc *jobCluster) drive(ctx context.Context, w *Worker, what string, cond func() bool) {
	jc.t.Helper()
	jc.wait(what, func() bool {
		w.schedule(ctx)
		return cond()
	})
}

// listing waits for a genuine update from node 0 listing n jobs of key's.
func (jc *jobCluster) listing(key *ledger.PrivateKey, n int) *followUpd {
	jc.t.Helper()
	var u *followUpd
	jc.wait(fmt.Sprintf("an update listing %d jobs", n), func() bool {
		var err error
		u, err = jc.nodes[0].follow.update(jc.ctx, key.Address(), true)
		return err == nil && len(u.Jobs) == n
	})
	return u
}

// TestWorkerSentAtMemberHeight: a worker's trusted head moves only with
// updates, which come when a block touches its jobs, so it may be many
// blocks behind the chain when the member admits a result. The blocks a
// result may take to land before the worker sends it again count from
// the member's height in its ack: counted from the stale trusted head, a
// result admitted in time was run and sent twice as soon as another of
// the worker's jobs changed (TestWorkerRestartResumes then saw three
// results for two jobs).
func TestWorkerSentAtMemberHeight(t *testing.T) {
	jc := newJobCluster(t, 400)
	key := seededKey(t, 1230)
	jc.leaseOnWorker(key)
	gate := make(chan struct{})
	close(gate)
	w, ctx := handWorker(jc, key, gate, make(chan uint64, 8))
	id := jc.submit(0, randomBytes(t, 1000), false)
	u := jc.listing(key, 1)
	if err := w.apply(u); err != nil {
		t.Fatal(err)
	}
	// The chain moves on; nothing of the worker's changes.
	for range 3 {
		jc.send(0, jc.prov, transfer(jc.cons, 1))
	}
	before := jc.nodes[0].store.Head().Height
	if before < u.Header.Height+3 {
		t.Fatalf("head %d, trusted %d: want 3 blocks between", before, u.Header.Height)
	}
	jc.drive(ctx, w, "the result admitted", func() bool { return w.Status().Results == 1 })
	w.mu.Lock()
	wj := w.jobs[id]
	var state taskState
	var sentAt uint64
	if wj != nil {
		state, sentAt = wj.state, wj.sentAt
	}
	w.mu.Unlock()
	if wj == nil || state != taskSent || sentAt < before {
		t.Fatalf("job %d after its result was admitted: listed %v, state %d, sent at %d (the member was at %d or above, the worker trusted %d)",
			id, wj != nil, state, sentAt, before, u.Header.Height)
	}
}

// TestWorkerDroppedJobForgotten: an update that no longer lists a job
// the worker is running (its deadline passed, or the member says nothing
// more of it) cancels the run, and the job is forgotten when the run
// ends; it was requeued, counted pending and run again.
func TestWorkerDroppedJobForgotten(t *testing.T) {
	jc := newJobCluster(t, 400)
	key := seededKey(t, 1231)
	jc.leaseOnWorker(key)
	entered := make(chan uint64, 8)
	w, ctx := handWorker(jc, key, make(chan struct{}), entered) // the gate stays shut: "hold" runs until cancelled
	id := jc.submit(0, randomBytes(t, 1000), false, "hold")
	u := jc.listing(key, 1)
	if err := w.apply(u); err != nil {
		t.Fatal(err)
	}
	jc.drive(ctx, w, "the worker to run the job", func() bool {
		select {
		case got := <-entered:
			return got == id
		default:
			return false
		}
	})
	if st := w.Status(); st.Running != 1 || st.Pending != 1 {
		t.Fatalf("while running: %+v", st)
	}
	// The member may withhold a job (a worker cannot tell that from a job
	// gone): the same head, listing nothing, complete.
	gone := *u
	gone.Jobs = nil
	if err := w.apply(&gone); err != nil {
		t.Fatal(err)
	}
	jc.wait("the cancelled run to end", func() bool { return w.Status().Running == 0 })
	w.schedule(ctx)
	if st := w.Status(); st.Pending != 0 || st.Running != 0 {
		t.Fatalf("a job no update lists is still the worker's: %+v", st)
	}
}

// TestWorkerLostUpdateResent: an update the member could not send (a
// broken link: failpoint.FollowUpdateDrop) leaves the worker's trusted
// height where the member last reached it, so its next subscribe looks
// up to date; the member sends the update again then. Before, the worker
// never learned of the job, which timed out.
func TestWorkerLostUpdateResent(t *testing.T) {
	jc := newJobCluster(t, 400)
	tw := newTestWorker(jc, 1232, 0)
	jc.leaseOnWorker(tw.key)
	tw.start(false)
	jc.wait("the worker's first update", func() bool { return tw.w.Status().Height > 0 })
	disable, err := failpoint.Enable(failpoint.FollowUpdateDrop, "1*return")
	if err != nil {
		t.Fatal(err)
	}
	defer disable()
	id := jc.submit(0, randomBytes(t, 1000), false)
	j := jc.job(0, id, "done", statusIs("done"))
	if j.NodeID != tw.key.Address().String() {
		t.Fatalf("job %d answered by %s", id, j.NodeID)
	}
	if n := failpoint.Count(failpoint.FollowUpdateDrop); n != 1 {
		t.Fatalf("the failpoint dropped %d updates, want 1", n)
	}
}

// FuzzDecodeFollow: KindFollow messages come from the other side of a
// worker link; decoding never panics and what decodes re-encodes to the
// same bytes.
func FuzzDecodeFollow(f *testing.F) {
	c := ledger.NewCodec()
	k := seededKey(f, 1)
	for _, m := range []struct {
		typ  byte
		body any
	}{
		{followSubscribe, &followSub{Height: 7}},
		{followUpdate, &followUpd{Header: ledger.Header{ChainID: "c", Height: 3, Proposer: k.Address()}, Signature: []byte{1, 2},
			Jobs: []stateProof{{Key: rome.JobKey(1), Value: []byte{0x80}, Proof: []byte{0}}}, Complete: true, Nonce: 4}},
		{followSubmit, &followTx{ID: 1, Tx: []byte{0x80}}},
		{followAck, &followAckMsg{ID: 1, Err: "nonce", Nonce: 2, Height: 9}},
	} {
		b, err := encodeFollow(c, m.typ, m.body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{9, 0})
	f.Fuzz(func(t *testing.T, msg []byte) {
		typ, body, err := decodeFollow(c, msg)
		if err != nil {
			return
		}
		again, err := encodeFollow(c, typ, body)
		if err != nil {
			t.Fatal(err)
		}
		if string(again) != string(msg) {
			t.Fatalf("decode/encode changed the message: %x -> %x", msg, again)
		}
	})
}
