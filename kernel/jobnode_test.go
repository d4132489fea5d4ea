package kernel

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/internal/failpoint"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/jobrun"
	"github.com/sos-kernel/sos/kernel/jobrun/jobruntest"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
	"github.com/sos-kernel/sos/rome"
)

// testExec is the job executor of these tests: jobruntest's native
// sha256sum (deterministic, no Wasm toolchain), except that a job whose
// args include "hold" waits until gate is closed (or its run is cancelled:
// its node stops) — a run in progress at a moment the test chooses.
type testExec struct {
	gate    <-chan struct{}
	entered chan<- uint64 // told the id of each job whose run begins (its blobs are loaded)
}

func (x testExec) Run(ctx context.Context, s *jobrun.Spec) (*jobrun.Run, error) {
	select {
	case x.entered <- s.JobID:
	default:
	}
	if slices.Contains(s.Args, "hold") {
		select {
		case <-x.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return jobruntest.Sha256Sum{}.Run(ctx, s)
}

// jobCluster is three nodes on loopback QUIC with a market: node 1's key
// runs the jobs of prov's offer, cons (whose key is in node 0's keyring)
// leases it. Nodes can be stopped and restarted on their homes.
type jobCluster struct {
	t       *testing.T
	ctx     context.Context
	doc     []byte
	keys    []*ledger.PrivateKey
	addrs   []string
	homes   []string
	nodes   []*Node
	clients []*client.Client
	gates   []chan struct{}
	entered []chan uint64
	stops   []func()
	prov    *ledger.PrivateKey
	cons    *ledger.PrivateKey
	lease   uint64
}

const (
	jobClusterProvider = 1 // the node whose key the offer names
	jobClusterConsumer = 0 // the node whose keyring holds cons
)

func newJobCluster(t *testing.T, timeoutBlocks uint64) *jobCluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	jc := &jobCluster{t: t, ctx: ctx, prov: seededKey(t, 1100), cons: seededKey(t, 1101)}
	g := &ledger.Genesis{ChainID: "job-cluster", GenesisTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Denoms: ledger.DefaultDenoms(), Params: ledger.DefaultParams()}
	for i := 0; i < 3; i++ {
		k := seededKey(t, 80+i)
		jc.keys, jc.addrs, jc.homes = append(jc.keys, k), append(jc.addrs, freeUDP(t)), append(jc.homes, t.TempDir())
		g.Nodes = append(g.Nodes, ledger.GenesisNode{PubKey: hex.EncodeToString(k.Public().Bytes()), Addr: jc.addrs[i]})
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: k.Address(), Balances: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000_000}}})
	}
	for _, u := range []*ledger.PrivateKey{jc.prov, jc.cons} {
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: u.Address(), Balances: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000_000_000}}})
	}
	rj, gj, err := rome.GenesisSections(jc.keys[0].Public())
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	_ = json.Unmarshal(rj, &r)
	r["epoch_blocks"], r["cert_period_epochs"] = 5, 100000
	r["jobs"] = map[string]any{"timeout_blocks": timeoutBlocks, "challenge_blocks": 200, "verdict_blocks": 200, "challenge_deposit": "1000uTFLP"}
	rj, _ = json.Marshal(r)
	g.Extra = map[string]json.RawMessage{"rome": rj, "gov": gj}
	if jc.doc, err = g.Marshal(); err != nil {
		t.Fatal(err)
	}
	if _, err := keyring.Open(jc.homes[jobClusterConsumer]).Import("cons", jc.cons); err != nil {
		t.Fatal(err)
	}
	jc.nodes, jc.clients, jc.gates, jc.stops = make([]*Node, 3), make([]*client.Client, 3), make([]chan struct{}, 3), make([]func(), 3)
	for range jc.nodes {
		jc.entered = append(jc.entered, make(chan uint64, 64))
	}
	for i := range jc.nodes {
		jc.start(i)
	}
	t.Cleanup(func() {
		for i := range jc.nodes {
			jc.stop(i)
		}
	})
	return jc
}

// start runs node i on its home (again, after stop) with a closed gate
// unless hold.
func (jc *jobCluster) start(i int) {
	t := jc.t
	t.Helper()
	cfg := DefaultConfig()
	cfg.P2PAddr, cfg.BlockInterval = jc.addrs[i], Duration{50 * time.Millisecond}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	jc.gates[i] = make(chan struct{})
	opts := NodeOptions{Home: jc.homes[i], Config: cfg, GenesisDoc: jc.doc, NodeKey: jc.keys[i], Listener: ln,
		JobExecutor: testExec{gate: jc.gates[i], entered: jc.entered[i]}}
	if os.Getenv("SOS_TEST_LOG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", i)
	}
	n, err := OpenNode(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	<-n.Ready()
	jc.nodes[i] = n
	jc.clients[i], _ = client.New("http://" + n.APIAddr())
	jc.stops[i] = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Errorf("node %d did not stop", i)
		}
		n.Close()
	}
}

func (jc *jobCluster) stop(i int) {
	if jc.stops[i] != nil {
		jc.stops[i]()
		jc.stops[i], jc.nodes[i] = nil, nil
	}
}

// runs waits until node i begins to run job id (its blobs are loaded).
func (jc *jobCluster) runs(i int, id uint64) {
	jc.t.Helper()
	for {
		select {
		case got := <-jc.entered[i]:
			if got == id {
				return
			}
		case <-jc.ctx.Done():
			jc.t.Fatalf("node %d never ran job %d", i, id)
		}
	}
}

// release lets node i's held jobs run.
func (jc *jobCluster) release(i int) { close(jc.gates[i]) }

// send sends p signed by k through node i and waits for its block.
func (jc *jobCluster) send(i int, k *ledger.PrivateKey, p ledger.Payload) *client.SubmitResult {
	jc.t.Helper()
	b, err := txbuild.New(jc.ctx, jc.clients[i])
	if err != nil {
		jc.t.Fatal(err)
	}
	res, err := b.Send(jc.ctx, k, p, txbuild.Options{Wait: true})
	if err != nil {
		jc.t.Fatalf("%s through node %d: %v", p.Kind(), i, err)
	}
	return res
}

// wait polls cond until it holds.
func (jc *jobCluster) wait(what string, cond func() bool) {
	jc.t.Helper()
	for !cond() {
		if jc.ctx.Err() != nil {
			jc.t.Fatalf("%s: not reached in time", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// openLease has prov offer compute with a bond naming the provider node's
// key, cons request it, and waits until the lease runs.
func (jc *jobCluster) openLease() {
	jc.t.Helper()
	jc.wait("a leader", func() bool { s, err := jc.clients[0].Status(jc.ctx); return err == nil && s.Height > 2 })
	jc.send(0, jc.prov, &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 1, Amount: 10}}, Price: []ledger.ResourceAmount{{Kind: 1, Amount: 5}},
		Node: jc.keys[jobClusterProvider].Address(), Bond: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000}}})
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

// upload puts p on node i through its API.
func (jc *jobCluster) upload(i int, p []byte) ledger.BlobRef {
	jc.t.Helper()
	res, err := jc.clients[i].PutBlob(jc.ctx, strings.NewReader(string(p)), int64(len(p)), "")
	if err != nil {
		jc.t.Fatal(err)
	}
	id, err := ledger.ParseBlobID(res.ID)
	if err != nil {
		jc.t.Fatal(err)
	}
	return ledger.BlobRef{ID: id, Size: res.Size}
}

var testModule = []byte("\x00asm\x01\x00\x00\x00 stand-in module")

// submit submits, through node i, a job reading input (uploaded to node i
// unless missing) with args.
func (jc *jobCluster) submit(i int, input []byte, missing bool, args ...string) uint64 {
	jc.t.Helper()
	in := ledger.BlobRef{ID: ledger.BlobID(blob.Sum(input)), Size: uint64(len(input))}
	if !missing {
		in = jc.upload(i, input)
	}
	p := &ledger.JobSubmit{LeaseID: jc.lease, Module: jc.upload(i, testModule), Inputs: []ledger.JobFile{{Name: "data.bin", ID: in.ID, Size: in.Size}},
		Args: args, GasLimit: 100_000_000, MemoryLimit: 1 << 24, OutputLimit: 1 << 20}
	res := jc.send(i, jc.cons, p)
	var out struct {
		JobID uint64 `json:"job_id"`
	}
	if err := json.Unmarshal([]byte(res.Receipt.Data), &out); err != nil || out.JobID == 0 {
		jc.t.Fatalf("job_submit answered %q: %v", res.Receipt.Data, err)
	}
	return out.JobID
}

// job reads job id from node i's API once cond holds.
func (jc *jobCluster) job(i int, id uint64, what string, cond func(*client.Job) bool) *client.Job {
	jc.t.Helper()
	var j *client.Job
	jc.wait(fmt.Sprintf("job %d %s on node %d", id, what, i), func() bool {
		var err error
		j, err = jc.clients[i].Job(jc.ctx, id)
		return err == nil && cond(j)
	})
	return j
}

func statusIs(s string) func(*client.Job) bool {
	return func(j *client.Job) bool { return j.Status == s }
}

func randomBytes(t *testing.T, n int) []byte {
	t.Helper()
	p := make([]byte, n)
	if _, err := rand.Read(p); err != nil {
		t.Fatal(err)
	}
	return p
}

func sha256Line(p []byte, name string) string {
	s := sha256.Sum256(p)
	return hex.EncodeToString(s[:]) + "  " + name + "\n"
}

// TestJobsRunOnAnotherNode: the consumer submits through node 0; the
// offer's node is node 1, which fetches the module and a 3 MB input from
// node 0 over the QUIC data plane (authorized by its member identity,
// accounted to the lease on both sides), runs the job and commits the
// result; node 0's verifier (cons is in its keyring) re-executes it,
// marks it verified and keeps the outputs, so the consumer can fetch them
// from its own node. A chunk corrupted by the serving node is detected by
// the fetcher and fetched again.
func TestJobsRunOnAnotherNode(t *testing.T) {
	jc := newJobCluster(t, 400)
	jc.openLease()
	input := randomBytes(t, 3<<20)
	id := jc.submit(0, input, false)
	j := jc.job(0, id, "done", statusIs("done"))
	if j.NodeID != jc.keys[jobClusterProvider].Address().String() || j.BytesIn != uint64(len(input)+len(testModule)) {
		t.Fatalf("result: node %s, bytes in %d (want the module and input fetched over the data plane)", j.NodeID, j.BytesIn)
	}
	if in, out := jc.nodes[1].Jobs().Lease(jc.lease), jc.nodes[0].Jobs().Lease(jc.lease); in.In < uint64(len(input)) || out.Out < uint64(len(input)) {
		t.Fatalf("data plane accounting: provider fetched %+v, consumer's node served %+v", in, out)
	}
	j = jc.job(0, id, "verified", func(j *client.Job) bool { return j.Verified != nil })
	if !*j.Verified {
		t.Fatal("the consumer's node did not reproduce an honest result")
	}
	if j2, _ := jc.clients[2].Job(jc.ctx, id); j2.Verified != nil {
		t.Fatalf("node 2 verified a job none of its keys is party to: %v", *j2.Verified)
	}
	var out strings.Builder
	if _, err := jc.clients[0].GetBlob(jc.ctx, j.Outputs[0].ID, int64(j.Outputs[0].Size), &out); err != nil || out.String() != sha256Line(input, "data.bin") {
		t.Fatalf("output from the consumer's node: %q, %v", out.String(), err)
	}
	if !strings.Contains(scrape(t, jc.nodes[0]), "sos_job_verifications_total 1") {
		t.Fatal("verification not counted")
	}

	// Who the data plane serves a job's blobs to: members, under the
	// job's tag, for blobs of that job; the worker a live offer names.
	srv := jc.nodes[0].jobsvc
	member, stranger := sosnet.PeerID(jc.nodes[2].NodeID()), sosnet.PeerID(seededKey(t, 9999).Public().Fingerprint())
	mod, out0 := blob.ID(blob.Sum(testModule)), mustBlobID(t, j.Outputs[0].ID)
	for _, c := range []struct {
		peer sosnet.PeerID
		id   blob.ID
		tag  string
		want bool
	}{
		{member, mod, jobTag(id), true}, {member, blob.ID(out0), jobTag(id), true}, {stranger, mod, jobTag(id), false},
		{member, blob.Sum([]byte("not the job's")), jobTag(id), false}, {member, mod, "job/99", false}, {member, mod, "storage/1", false},
	} {
		if got := srv.authorizeBlob(c.peer, c.id, c.tag); got != c.want {
			t.Errorf("authorize %s for %s under %q: %v, want %v", c.peer, c.id, c.tag, got, c.want)
		}
	}
	worker := seededKey(t, 9998)
	if srv.workerPolicy("w", worker.Public()) {
		t.Fatal("a worker no offer names was approved")
	}
	jc.send(0, jc.prov, &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 1, Amount: 1}}, Price: []ledger.ResourceAmount{{Kind: 1, Amount: 5}},
		Node: worker.Address(), Bond: ledger.Coins{{Denom: "uTFLP", Amount: 1000}}})
	jc.wait("the worker approved once an offer names it", func() bool { return srv.workerPolicy("w", worker.Public()) })
	if srv.authorizeBlob("w", mod, jobTag(id)) {
		t.Fatal("a worker got the blobs of another node's job")
	}

	disable, err := failpoint.Enable(failpoint.NetBlobCorruptChunk, "1*return")
	if err != nil {
		t.Fatal(err)
	}
	input2 := randomBytes(t, 3<<20)
	id2 := jc.submit(0, input2, false)
	j = jc.job(0, id2, "verified", func(j *client.Job) bool { return j.Verified != nil })
	n := failpoint.Count(failpoint.NetBlobCorruptChunk)
	disable()
	if j.Status != "done" || !*j.Verified || n != 1 {
		t.Fatalf("job with a corrupted chunk: status %s, verified %v, chunks corrupted %d", j.Status, *j.Verified, n)
	}
}

// balance is a's uTFLP on node i's committed state.
func (jc *jobCluster) balance(i int, a ledger.Address) uint64 {
	jc.t.Helper()
	n := jc.nodes[i]
	acc, _, err := (&ledger.Accounts{St: ledger.NewState(n.store), Codec: n.chain.codec}).Get(a)
	if err != nil {
		jc.t.Fatal(err)
	}
	return acc.Balances.AmountOf("uTFLP")
}

// TestJobForgedResultIsSlashed: the provider's executor forges its output
// (failpoint sos/job/forge-output at its output boundary: a well-formed
// result whose stdout and output root re-execution does not reproduce).
// The consumer's node re-executes it, disagrees and challenges it with
// cons's key; every member re-executes the challenged job (the provider's
// node honestly: the failpoint is its executor's, not its committee
// duty's) and sends its verdict; the majority upholds the challenge: the
// job is slashed, half the bond is taken, the challenger is rewarded and
// gets its deposit back, and the provider's record counts it.
func TestJobForgedResultIsSlashed(t *testing.T) {
	jc := newJobCluster(t, 400)
	jc.openLease()
	disable, err := failpoint.Enable(failpoint.JobForgeOutput, "1*return")
	if err != nil {
		t.Fatal(err)
	}
	defer disable()
	input := randomBytes(t, 10_000)
	id := jc.submit(0, input, false)
	before := jc.balance(0, jc.cons.Address())
	j := jc.job(0, id, "slashed", statusIs("slashed"))
	if n := failpoint.Count(failpoint.JobForgeOutput); n != 1 {
		t.Fatalf("forge failpoint fired %d times", n)
	}
	ch := j.Challenge
	if ch == nil || ch.Challenger != jc.cons.Address().String() || ch.Outcome != rome.DisputeUpheld || len(ch.Committee) != 3 || len(ch.Votes) < 2 {
		t.Fatalf("challenge: %+v", ch)
	}
	for _, v := range ch.Votes {
		if v.AgreesWithResult {
			t.Fatalf("a verdict agreed with the forged result: %+v", v)
		}
	}
	if j.Verified == nil || *j.Verified {
		t.Fatalf("the consumer's node verified a forged result: %v", j.Verified)
	}
	if len(ch.Slashed) != 1 || ch.Slashed[0].Amount != "500000" {
		t.Fatalf("slashed %+v, want half the 1000000 uTFLP bond", ch.Slashed)
	}
	o, err := jc.clients[0].RomeOffer(jc.ctx, 1)
	if err != nil || len(o.Bond) != 1 || o.Bond[0].Amount != "500000" {
		t.Fatalf("offer bond after the slash: %+v %v", o, err)
	}
	var gain uint64
	for _, c := range append(ch.Reward, ch.Refund...) {
		var v uint64
		fmt.Sscan(c.Amount, &v)
		gain += v
	}
	// The consumer challenged (a fee of a few hundred uTFLP) and got the
	// reward, any refund and its deposit back.
	if after := jc.balance(0, jc.cons.Address()); gain == 0 || after > before+gain || after+20_000 < before+gain {
		t.Fatalf("consumer balance %d → %d, slash paid it %d", before, after, gain)
	}
	if pr, err := jc.clients[0].Provider(jc.ctx, jc.prov.Address().String()); err != nil || pr.Slashed != 1 {
		t.Fatalf("provider record %+v %v", pr, err)
	}
	if m := scrape(t, jc.nodes[0]); !strings.Contains(m, "sos_job_verification_mismatches_total 1") {
		t.Fatal("the mismatch is not counted")
	}
}

// TestJobProviderKilledAndRestarted: the provider's node is stopped while
// it runs a job, and a second job is submitted while it is down; once it
// is back it finds both in the ledger (PendingJobs) and answers them. A
// job whose provider stays down past its deadline times out, and its
// epoch's measured compute does not include it.
func TestJobProviderKilledAndRestarted(t *testing.T) {
	jc := newJobCluster(t, 100)
	jc.openLease()
	p := jobClusterProvider
	id1 := jc.submit(0, randomBytes(t, 5000), false, "hold")
	jc.wait("job 1 running on the provider", func() bool { return jc.nodes[p].Jobs().Running(id1) })
	jc.stop(p)
	id2 := jc.submit(0, randomBytes(t, 5000), false)
	if j, _ := jc.clients[0].Job(jc.ctx, id1); j.Status != "submitted" {
		t.Fatalf("job 1 %s while its provider is down", j.Status)
	}
	jc.start(p)
	jc.release(p)
	jc.job(0, id1, "done after the restart", statusIs("done"))
	jc.job(0, id2, "done after the restart", statusIs("done"))

	jc.stop(p)
	id3 := jc.submit(0, randomBytes(t, 5000), false)
	j := jc.job(0, id3, "timed out", statusIs("timeout"))
	if j.ExitCode != nil {
		t.Fatalf("timed-out job has a result: %+v", j)
	}
	jc.start(p)
	// No result for it after the restart: it left the node's queue.
	jc.wait("a few blocks", func() bool { s, err := jc.clients[p].Status(jc.ctx); return err == nil && s.Height > j.Deadline+5 })
	u, err := jc.clients[0].LeaseUsage(jc.ctx, jc.lease)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range u.Epochs {
		if e.Epoch == j.SubmitEpoch && e.Reserved != 0 {
			t.Fatalf("epoch %d still reserves gas for the timed-out job: %+v", e.Epoch, e)
		}
	}
	if got, _ := jc.clients[0].Job(jc.ctx, id3); got.Status != "timeout" {
		t.Fatalf("job 3 %s after its provider came back", got.Status)
	}
}

// TestJobConsumerOfflineAndMissingInput: the consumer's node goes down
// after the provider fetched the inputs; the result lands meanwhile (the
// other two nodes commit it). Back up, the consumer's node finds the
// result in the ledger, verifies it and keeps its outputs, which the
// provider's node keeps too. A job whose input no node has cannot run:
// the provider tries again and again, sends no result, and the job times
// out.
func TestJobConsumerOfflineAndMissingInput(t *testing.T) {
	jc := newJobCluster(t, 100)
	jc.openLease()
	p, c := jobClusterProvider, jobClusterConsumer
	input := randomBytes(t, 200_000)
	id := jc.submit(c, input, false, "hold")
	jc.runs(p, id)
	jc.stop(c)
	jc.release(p)
	j := jc.job(2, id, "done while the consumer's node is down", statusIs("done"))
	jc.start(c)
	jc.release(c) // its re-execution of the job must not hold
	j0 := jc.job(c, id, "verified once the consumer's node is back", func(j *client.Job) bool { return j.Verified != nil })
	if !*j0.Verified {
		t.Fatal("the honest result was not reproduced")
	}
	for _, i := range []int{c, p} {
		var out strings.Builder
		if _, err := jc.clients[i].GetBlob(jc.ctx, j.Outputs[0].ID, int64(j.Outputs[0].Size), &out); err != nil || out.String() != sha256Line(input, "data.bin") {
			t.Fatalf("output on node %d: %q, %v", i, out.String(), err)
		}
	}

	id2 := jc.submit(c, []byte("an input nobody uploaded"), true)
	j = jc.job(c, id2, "timed out", statusIs("timeout"))
	if j.ExitCode != nil {
		t.Fatalf("a job without its input has a result: %+v", j)
	}
}

// TestJobOutputsOnAFullDisk: the node runs a job whose outputs it cannot
// store (failpoint sos/blob/write-error: every blob write fails as on a
// full disk). It sends no result — one it could not serve would be
// unverifiable — keeps producing blocks, leaves no output behind, and
// tries again: once the disk has room the job completes.
func TestJobOutputsOnAFullDisk(t *testing.T) {
	jn := newJobNet(t, DefaultConfig())
	l := jn.leaseOn(t, 200, jn.tn.nodeKey.Address())
	input := []byte("some input\n")
	p := &ledger.JobSubmit{LeaseID: l.ID, Module: jn.upload(t, testModule), GasLimit: 100_000, MemoryLimit: 1 << 24, OutputLimit: 1 << 20}
	in := jn.upload(t, input)
	p.Inputs = []ledger.JobFile{{Name: "in", ID: in.ID, Size: in.Size}}
	disable, err := failpoint.Enable(failpoint.BlobWriteError, "return")
	if err != nil {
		t.Fatal(err)
	}
	defer disable()
	res := jn.mustSend(t, jn.cons, p)
	var sub struct {
		JobID uint64 `json:"job_id"`
	}
	_ = json.Unmarshal([]byte(res.Receipt.Data), &sub)
	jn.waitJob(t, sub.JobID, "outputs refused by the disk", func(*client.Job) bool { return failpoint.Count(failpoint.BlobWriteError) >= 2 })
	j, err := jn.c.Job(jn.ctx, sub.JobID)
	if err != nil || j.ExitCode != nil || (j.Status != "submitted" && j.Status != "running") {
		t.Fatalf("job with unstorable outputs: %+v %v", j, err)
	}
	if jn.n.Blobs().Has(blob.Sum([]byte(sha256Line(input, "in")))) {
		t.Fatal("a refused output was left in the store")
	}
	h := jn.n.store.Head().Height
	if err := jn.c.WaitHeight(jn.ctx, h+3); err != nil {
		t.Fatalf("blocks stopped with the blob store full: %v", err)
	}
	disable()
	j = jn.waitJob(t, sub.JobID, "done once the disk has room", func(j *client.Job) bool { return j.Status == "done" })
	var out strings.Builder
	if _, err := jn.c.GetBlob(jn.ctx, j.Stdout.ID, int64(j.Stdout.Size), &out); err != nil || out.String() != sha256Line(input, "in") {
		t.Fatalf("stdout %q, %v", out.String(), err)
	}
}

// TestJobSettlementPaysMeasuredUsage: a short lease runs a job on the
// node; once the lease is over and settled, the provider was paid, epoch
// by epoch, what the runtime measured — ⌈gas / gas_per_compute_unit⌉
// compute units in each epoch its jobs were submitted or answered in (0
// for an epoch whose job had not answered yet), the full amount in the
// others (nobody reported) — and its balance says so.
func TestJobSettlementPaysMeasuredUsage(t *testing.T) {
	jn := newJobNet(t, DefaultConfig())
	st := func(a ledger.Address) uint64 {
		acc, _, err := (&ledger.Accounts{St: ledger.NewState(jn.n.store), Codec: jn.n.chain.codec}).Get(a)
		if err != nil {
			t.Fatal(err)
		}
		return acc.Balances.AmountOf("uTFLP")
	}
	provBefore := st(jn.prov.Address())
	offer := jn.mustSend(t, jn.prov, &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 1, Amount: 10}}, Price: []ledger.ResourceAmount{{Kind: 1, Amount: 5}},
		Node: jn.tn.nodeKey.Address(), Bond: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000}}})
	jn.mustSend(t, jn.cons, &ledger.RomeRequest{Demand: []ledger.ResourceAmount{{Kind: 1, Amount: 10}}, MaxPrice: []ledger.ResourceAmount{{Kind: 1, Amount: 5}}, Epochs: 12})
	var l client.RomeLease
	for {
		leases, err := jn.c.RomeLeases(jn.ctx, client.RomeFilter{Status: "active"})
		if mk, merr := jn.c.RomeMarket(jn.ctx); err == nil && merr == nil && len(leases) == 1 && mk.Epoch >= leases[0].StartEpoch {
			l = leases[0]
			break
		}
		if jn.ctx.Err() != nil {
			t.Fatal("no active lease")
		}
		time.Sleep(10 * time.Millisecond)
	}
	id := jn.submit(t, l.ID, map[string]string{"in": "settle me"}, 1_000_000)
	j := jn.waitJob(t, id, "done", func(j *client.Job) bool { return j.Status == "done" })
	jn.waitJob(t, id, "the lease over and paid", func(*client.Job) bool {
		reqs, err := jn.c.RomeRequests(jn.ctx, client.RomeFilter{Status: "all"})
		return err == nil && len(reqs) == 1 && reqs[0].Status == "done"
	})
	u, err := jn.c.LeaseUsage(jn.ctx, l.ID)
	if err != nil {
		t.Fatal(err)
	}
	var want uint64
	measured := 0
	for _, e := range u.Epochs {
		if e.Submitted == 0 && e.Results == 0 {
			want += 10 * 5 // no job, no report: the whole amount
			continue
		}
		measured++
		units := (e.Gas + u.GasPerComputeUnit - 1) / u.GasPerComputeUnit
		if !e.Settled || e.PaidCompute != units {
			t.Fatalf("epoch %d: gas %d settled %v paying %d compute units, want %d", e.Epoch, e.Gas, e.Settled, e.PaidCompute, units)
		}
		want += units * 5
	}
	if measured == 0 || len(u.Epochs) != int(l.EndEpoch-l.StartEpoch) || j.GasUsed == 0 {
		t.Fatalf("usage %+v of lease %+v", u, l)
	}
	o, err := jn.c.RomeOffer(jn.ctx, l.OfferID)
	if err != nil {
		t.Fatal(err)
	}
	var held, fee uint64
	for _, c := range o.Bond {
		fmt.Sscan(c.Amount, &held)
	}
	fmt.Sscan(offer.Receipt.Fee.Amount, &fee)
	if got := st(jn.prov.Address()) + fee + held - provBefore; got != want {
		t.Fatalf("provider paid %d uTFLP over the lease, the measured usage is worth %d (usage %+v)", got, want, u.Epochs)
	}
}
