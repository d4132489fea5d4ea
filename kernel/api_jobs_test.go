package kernel

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/jobrun"
	"github.com/sos-kernel/sos/kernel/jobrun/jobruntest"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

// jobNet is a running node of a market chain with short epochs and short
// job deadlines: prov offers compute with a bond, naming the key exec as
// the node that runs its jobs; cons gets a lease.
type jobNet struct {
	tn               *testNet
	n                *Node
	c                *client.Client
	b                *txbuild.Builder
	ctx              context.Context
	prov, cons, exec *ledger.PrivateKey
}

func newJobNet(t *testing.T, cfg Config) *jobNet {
	t.Helper()
	return newJobNetWith(t, cfg, nil)
}

// newJobNetWith is newJobNet with the node options adjusted by tune. The
// node re-executes challenged jobs (it is the committee) with a native
// executor unless tune sets another.
func newJobNetWith(t *testing.T, cfg Config, tune func(*NodeOptions)) *jobNet {
	t.Helper()
	node := seededKey(t, 0)
	users := []*ledger.PrivateKey{seededKey(t, 1000), seededKey(t, 1001), seededKey(t, 1002)}
	funds := ledger.Coins{{Denom: "uTBS", Amount: 1_000_000_000}, {Denom: "uTFLP", Amount: 1_000_000_000_000}}
	g := &ledger.Genesis{ChainID: "test-chain", GenesisTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Denoms: ledger.DefaultDenoms(), Params: ledger.DefaultParams(),
		Nodes: []ledger.GenesisNode{{PubKey: hex.EncodeToString(node.Public().Bytes())}}}
	for _, u := range append([]*ledger.PrivateKey{node}, users...) {
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: u.Address(), Balances: funds})
	}
	rj, gj, err := rome.GenesisSections(node.Public())
	if err != nil {
		t.Fatal(err)
	}
	var r map[string]any
	_ = json.Unmarshal(rj, &r)
	r["epoch_blocks"], r["cert_period_epochs"] = 3, 1000
	r["jobs"] = map[string]any{"timeout_blocks": 60, "challenge_blocks": 60, "verdict_blocks": 60, "challenge_deposit": "1000uTFLP"}
	// Rewards in another denom: a provider's uTFLP then moves only by fees,
	// bonds and what leases pay it.
	r["reward"] = map[string]any{"denom": "uKWTT", "per_epoch": "1000000", "halving_epochs": 100000}
	rj, _ = json.Marshal(r)
	g.Extra = map[string]json.RawMessage{"rome": rj, "gov": gj}
	doc, err := g.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tn := openTestChain(t, t.TempDir(), doc, users)
	cfg.BlockInterval = Duration{20 * time.Millisecond}
	n, c := startTestNodeWith(t, tn, cfg, func(o *NodeOptions) {
		o.JobExecutor = jobruntest.Sha256Sum{}
		if tune != nil {
			tune(o)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	b, err := txbuild.New(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	return &jobNet{tn: tn, n: n, c: c, b: b, ctx: ctx, prov: users[0], cons: users[1], exec: users[2]}
}

func (jn *jobNet) send(t *testing.T, k *ledger.PrivateKey, p ledger.Payload) (*client.SubmitResult, error) {
	t.Helper()
	return jn.b.Send(jn.ctx, k, p, txbuild.Options{Wait: true})
}

func (jn *jobNet) mustSend(t *testing.T, k *ledger.PrivateKey, p ledger.Payload) *client.SubmitResult {
	t.Helper()
	res, err := jn.send(t, k, p)
	if err != nil {
		t.Fatalf("%s: %v", p.Kind(), err)
	}
	return res
}

// lease offers compute with a bond and requests it for epochs; it returns
// the lease once the market is in its first epoch.
func (jn *jobNet) lease(t *testing.T, epochs uint32) client.RomeLease {
	t.Helper()
	return jn.leaseOn(t, epochs, jn.exec.Address())
}

// leaseOn is lease with the offer naming node as the node that runs its
// jobs.
func (jn *jobNet) leaseOn(t *testing.T, epochs uint32, node ledger.Address) client.RomeLease {
	t.Helper()
	var before uint64
	if old, err := jn.c.RomeLeases(jn.ctx, client.RomeFilter{Status: "all"}); err == nil && len(old) > 0 {
		before = old[0].ID
	}
	jn.mustSend(t, jn.prov, &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 1, Amount: 10}}, Price: []ledger.ResourceAmount{{Kind: 1, Amount: 5}},
		Node: node, Bond: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000}}})
	jn.mustSend(t, jn.cons, &ledger.RomeRequest{Demand: []ledger.ResourceAmount{{Kind: 1, Amount: 10}}, MaxPrice: []ledger.ResourceAmount{{Kind: 1, Amount: 5}}, Epochs: epochs})
	for {
		leases, err := jn.c.RomeLeases(jn.ctx, client.RomeFilter{Status: "active"})
		if err == nil && len(leases) > 0 && leases[0].ID > before {
			mk, err := jn.c.RomeMarket(jn.ctx)
			if err == nil && mk.Epoch >= leases[0].StartEpoch {
				return leases[0]
			}
		}
		if jn.ctx.Err() != nil {
			t.Fatal("no active lease in time")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// upload puts content on the node through the API.
func (jn *jobNet) upload(t *testing.T, p []byte) ledger.BlobRef {
	t.Helper()
	res, err := jn.c.PutBlob(jn.ctx, strings.NewReader(string(p)), int64(len(p)), "")
	if err != nil {
		t.Fatal(err)
	}
	id, err := ledger.ParseBlobID(res.ID)
	if err != nil || res.Size != uint64(len(p)) {
		t.Fatalf("upload answered %+v, %v", res, err)
	}
	return ledger.BlobRef{ID: id, Size: res.Size}
}

// submit uploads a module and inputs and submits a job on lease.
func (jn *jobNet) submit(t *testing.T, lease uint64, inputs map[string]string, gas uint64) uint64 {
	t.Helper()
	p := &ledger.JobSubmit{LeaseID: lease, Module: jn.upload(t, []byte("\x00asm\x01\x00\x00\x00 test module")), GasLimit: gas, MemoryLimit: 1 << 24, OutputLimit: 1 << 20}
	for _, name := range sortedKeys(inputs) {
		r := jn.upload(t, []byte(inputs[name]))
		p.Inputs = append(p.Inputs, ledger.JobFile{Name: name, ID: r.ID, Size: r.Size})
	}
	res := jn.mustSend(t, jn.cons, p)
	var out struct {
		JobID uint64 `json:"job_id"`
	}
	if err := json.Unmarshal([]byte(res.Receipt.Data), &out); err != nil || out.JobID == 0 {
		t.Fatalf("job_submit result %q: %v", res.Receipt.Data, err)
	}
	return out.JobID
}

// answer does what the executing node will: it runs job id with x from
// the node's blob store, stores the outputs there and sends the result
// signed by the exec key.
func (jn *jobNet) answer(t *testing.T, id uint64, x jobrun.Executor) *jobrun.Result {
	t.Helper()
	j, err := jn.c.Job(jn.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	job, err := jobrun.FromAPI(j)
	if err != nil {
		t.Fatal(err)
	}
	res, err := jobrun.Execute(jn.ctx, &job, jobrun.StoreBlobs{Store: jn.n.Blobs()}, x, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range res.Blobs {
		if _, _, err := jn.n.Blobs().Put(jn.ctx, strings.NewReader(string(p))); err != nil {
			t.Fatal(err)
		}
	}
	jn.mustSend(t, jn.exec, res.Payload(id, job.DataBytes(), 0))
	return res
}

// waitJob polls job id until cond holds.
func (jn *jobNet) waitJob(t *testing.T, id uint64, what string, cond func(*client.Job) bool) *client.Job {
	t.Helper()
	for {
		j, err := jn.c.Job(jn.ctx, id)
		if err == nil && cond(j) {
			return j
		}
		if jn.ctx.Err() != nil {
			t.Fatalf("job %d: %s not reached (last %+v, %v)", id, what, j, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// streamEvents collects the node's stream events of the given types.
func streamEvents(ctx context.Context, c *client.Client, types ...string) <-chan client.StreamEvent {
	ch := make(chan client.StreamEvent, 1024)
	go func() {
		_ = c.Events(ctx, func(ev client.StreamEvent) {
			for _, t := range types {
				if ev.Type == t {
					select {
					case ch <- ev:
					default:
					}
				}
			}
		})
	}()
	return ch
}

// TestJobLifecycleThroughAPI runs a job through the API as the CLI does:
// blobs uploaded, job_submit, the node's executor (a native stand-in)
// answering with outputs in the node's blob store; the job's fields, its
// node-local running and verified state, the job stream events, the
// provider record, the lease's measured usage and the metrics follow. A
// second job nobody answers times out at the end of a block, and that is
// on the stream too (block_end and job events).
func TestJobLifecycleThroughAPI(t *testing.T) {
	jn := newJobNet(t, DefaultConfig())
	l := jn.lease(t, 200)
	events := streamEvents(jn.ctx, jn.c, "job", "block_end")
	time.Sleep(50 * time.Millisecond) // the stream is subscribed
	id := jn.submit(t, l.ID, map[string]string{"b.txt": "world\n", "a.txt": "hello\n"}, 100_000)

	j, err := jn.c.Job(jn.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != "submitted" || j.LeaseID != l.ID || j.NodeID != jn.exec.Address().String() || j.Provider != jn.prov.Address().String() ||
		j.Consumer != jn.cons.Address().String() || j.ExitCode != nil || j.Verified != nil || len(j.Inputs) != 2 || j.Inputs[0].Name != "a.txt" ||
		j.GasLimit != 100_000 || j.Deadline != j.SubmitHeight+60 || j.Seed == "" {
		t.Fatalf("submitted job: %+v", j)
	}
	// Running is this node's fact: the executor says so through the registry.
	jn.n.Jobs().Start(id)
	if j, _ = jn.c.Job(jn.ctx, id); j.Status != "running" {
		t.Fatalf("status %q while the executor runs it", j.Status)
	}
	running, err := jn.c.Jobs(jn.ctx, client.JobFilter{Status: "running"})
	if err != nil || len(running.Jobs) != 1 || running.Jobs[0].JobID != id {
		t.Fatalf("running jobs: %+v %v", running, err)
	}
	res := jn.answer(t, id, jobruntest.Sha256Sum{})
	jn.n.Jobs().Finish(id, res.GasUsed)
	jn.n.Jobs().Moved(l.ID, 10, 20)
	j = jn.waitJob(t, id, "done", func(j *client.Job) bool { return j.Status == "done" })
	if *j.ExitCode != 0 || j.Class != "exited" || j.GasUsed != res.GasUsed || j.OutputRoot != res.OutputRoot.String() ||
		len(j.Outputs) != 1 || j.Outputs[0].Name != "SHA256SUMS" || j.Stdout == nil || j.ResultHeight == 0 || j.ChallengeEnd != j.ResultHeight+60 {
		t.Fatalf("done job: %+v", j)
	}
	jn.n.Jobs().Verify(id, true)
	if j, _ = jn.c.Job(jn.ctx, id); j.Verified == nil || !*j.Verified {
		t.Fatalf("verified %v after the verifier agreed", j.Verified)
	}
	// The stdout the API lists is served, checked against its id.
	var out strings.Builder
	if _, err := jn.c.GetBlob(jn.ctx, j.Stdout.ID, int64(j.Stdout.Size), &out); err != nil || !strings.Contains(out.String(), "  a.txt\n") {
		t.Fatalf("stdout %q: %v", out.String(), err)
	}

	// Filters and pagination.
	list, err := jn.c.Jobs(jn.ctx, client.JobFilter{Lease: l.ID, Status: "done", Consumer: jn.cons.Address().String()})
	if err != nil || len(list.Jobs) != 1 {
		t.Fatalf("done jobs of the lease: %+v %v", list, err)
	}
	if list, _ = jn.c.Jobs(jn.ctx, client.JobFilter{Provider: jn.cons.Address().String()}); len(list.Jobs) != 0 {
		t.Fatalf("jobs the consumer provides: %+v", list)
	}
	if _, err := jn.c.Jobs(jn.ctx, client.JobFilter{Status: "bogus"}); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("unknown status: %v", err)
	}
	if _, err := jn.c.Job(jn.ctx, 999); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("missing job: %v", err)
	}

	// A job nobody answers times out at the end of its deadline's block:
	// on a short lease, the last block of the lease. (16 epochs of 3
	// blocks of 20 ms: long enough that a loaded machine still submits
	// before the lease ends — 2 epochs, 120 ms, were not.)
	short := jn.lease(t, 16)
	id2 := jn.submit(t, short.ID, map[string]string{"x": "y"}, 50_000)
	page, err := jn.c.Jobs(jn.ctx, client.JobFilter{Limit: 1})
	if err != nil || len(page.Jobs) != 1 || page.Jobs[0].JobID != id2 || page.NextBefore != id2 {
		t.Fatalf("first page: %+v %v", page, err)
	}
	if page, _ = jn.c.Jobs(jn.ctx, client.JobFilter{Limit: 1, Before: page.NextBefore}); len(page.Jobs) != 1 || page.Jobs[0].JobID != id {
		t.Fatalf("second page: %+v", page)
	}
	jn.waitJob(t, id2, "timeout", func(j *client.Job) bool { return j.Status == "timeout" })

	seen := map[string]bool{}
	deadline := time.After(10 * time.Second)
	for !(seen["job_submitted/1"] && seen["job_result/1"] && seen["job_timeout/2"] && seen["block_end"]) {
		select {
		case ev := <-events:
			if ev.Type == "block_end" {
				var be client.BlockEndEvent
				if json.Unmarshal(ev.Data, &be) == nil && len(be.Events) > 0 && be.Events[0].Type == "job_timeout" {
					seen["block_end"] = true
				}
				continue
			}
			var je client.JobEvent
			if err := json.Unmarshal(ev.Data, &je); err != nil {
				t.Fatal(err)
			}
			seen[je.Type+"/"+u64s(je.JobID)] = true
			if je.Type == "job_timeout" && (je.Status != "timeout" || je.TxHash != "" || je.LeaseID != short.ID) {
				t.Fatalf("timeout event %+v", je)
			}
			if je.Type == "job_result" && (je.Status != "done" || je.TxHash == "") {
				t.Fatalf("result event %+v", je)
			}
		case <-deadline:
			t.Fatalf("stream events seen: %v", seen)
		}
	}

	pr, err := jn.c.Provider(jn.ctx, jn.prov.Address().String())
	if err != nil || pr.Completed != 1 || pr.TimedOut != 1 || pr.FailureBps != 5000 || len(pr.Offers) != 2 || pr.Offers[1].Node != jn.exec.Address().String() ||
		len(pr.Offers[1].Bond) != 1 || pr.Offers[1].Bond[0].Amount != "1000000" {
		t.Fatalf("provider: %+v %v", pr, err)
	}
	u, err := jn.c.LeaseUsage(jn.ctx, l.ID)
	if err != nil || len(u.Epochs) == 0 || u.GasPerComputeUnit != 1_000_000_000 {
		t.Fatalf("usage: %+v %v", u, err)
	}
	var gas uint64
	for _, e := range u.Epochs {
		gas += e.Gas
		if e.BudgetGas != 10*u.GasPerComputeUnit || e.RemainingGas != e.BudgetGas-e.Gas-e.Reserved {
			t.Fatalf("epoch %+v", e)
		}
	}
	if gas != res.GasUsed {
		t.Fatalf("metered gas %d, the result used %d", gas, res.GasUsed)
	}

	metrics := scrape(t, jn.n)
	for _, want := range []string{`sos_jobs_total{status="submitted"} 2`, `sos_jobs_total{status="done"} 1`, `sos_jobs_total{status="timeout"} 1`,
		"sos_job_result_gas_total " + u64s(res.GasUsed), "sos_job_executed_gas_total " + u64s(res.GasUsed), `sos_job_bytes_total{direction="out"} 20`,
		"sos_job_verifications_total 1", "sos_job_verification_mismatches_total 0", "sos_jobs_running 0"} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

func u64s(v uint64) string { return strconv.FormatUint(v, 10) }

// scrape reads the node's /metrics.
func scrape(t *testing.T, n *Node) string {
	t.Helper()
	resp, err := http.Get("http://" + n.APIAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if !strings.HasPrefix(sc.Text(), "#") {
			b.WriteString(sc.Text() + "\n")
		}
	}
	return b.String()
}

// TestJobSubmitRefusals: job submissions the market refuses fail in
// simulation with the market's reason, and nothing is admitted.
func TestJobSubmitRefusals(t *testing.T) {
	jn := newJobNet(t, DefaultConfig())
	mod := jn.upload(t, []byte("module"))
	// A lease of one epoch, once that epoch is over.
	short := jn.lease(t, 1)
	for {
		mk, err := jn.c.RomeMarket(jn.ctx)
		if err != nil || jn.ctx.Err() != nil {
			t.Fatalf("market: %v %v", err, jn.ctx.Err())
		}
		if mk.Epoch >= short.EndEpoch {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err := jn.send(t, jn.cons, &ledger.JobSubmit{LeaseID: short.ID, Module: mod, GasLimit: 1000, MemoryLimit: 1 << 20})
	if err == nil || !strings.Contains(err.Error(), "runs epochs") {
		t.Fatalf("a job on an ended lease: %v", err)
	}
	l := jn.lease(t, 200)
	base := ledger.JobSubmit{LeaseID: l.ID, Module: mod, GasLimit: 1000, MemoryLimit: 1 << 20, OutputLimit: 1 << 10}
	for _, c := range []struct {
		name string
		from *ledger.PrivateKey
		edit func(*ledger.JobSubmit)
		want string
	}{
		{"someone else's lease", jn.prov, func(*ledger.JobSubmit) {}, "only its consumer submits jobs"},
		{"no such lease", jn.cons, func(p *ledger.JobSubmit) { p.LeaseID = 99 }, "not found"},
		{"over the budget", jn.cons, func(p *ledger.JobSubmit) { p.GasLimit = 10*1_000_000_000 + 1 }, "remaining compute budget"},
		{"memory above the maximum", jn.cons, func(p *ledger.JobSubmit) { p.MemoryLimit = 2 << 30 }, "max_job_memory_bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := base
			c.edit(&p)
			_, err := jn.send(t, c.from, &p)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
	if list, _ := jn.c.Jobs(jn.ctx, client.JobFilter{}); len(list.Jobs) != 0 {
		t.Fatalf("refused submissions left jobs: %+v", list.Jobs)
	}
}

// TestJobChallengeShowsInAPI: a forged result (gas skewed) challenged by
// the consumer with its own re-execution's outcome; the challenge, its
// committee and the verdict show in the job, and the provider is slashed.
func TestJobChallengeShowsInAPI(t *testing.T) {
	jn := newJobNet(t, DefaultConfig())
	l := jn.lease(t, 200)
	id := jn.submit(t, l.ID, map[string]string{"in": "data"}, 100_000)
	jn.answer(t, id, jobruntest.Sha256Sum{Skew: 7}) // a result re-execution does not reproduce
	j := jn.waitJob(t, id, "a result", (*client.Job).HasResult)
	job, err := jobrun.FromAPI(j)
	if err != nil {
		t.Fatal(err)
	}
	claimed, _ := j.Outcome()
	cl := ledger.JobOutcome{ExitCode: claimed.ExitCode, GasUsed: claimed.GasUsed, Stdout: mustBlobID(t, claimed.Stdout)}
	cl.OutputRoot, _ = ledger.ParseHash(claimed.OutputRoot)
	rep, err := jobrun.Verify(jn.ctx, &job, cl, jobrun.ClientBlobs{Client: jn.c}, jobruntest.Sha256Sum{}, 0)
	if err != nil || rep.Match || len(rep.Diffs) != 1 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
	jn.mustSend(t, jn.cons, &ledger.JobChallenge{JobID: id, Outcome: rep.Result.Outcome()})
	j = jn.waitJob(t, id, "challenged", func(j *client.Job) bool { return j.Challenge != nil })
	if j.Status != "challenged" || j.Challenge.Challenger != jn.cons.Address().String() || len(j.Challenge.Committee) != 1 ||
		j.Challenge.Claim.GasUsed != rep.Result.GasUsed || j.Challenge.Deposit[0].Amount != "1000" {
		t.Fatalf("challenged job: %+v %+v", j, j.Challenge)
	}
	// The genesis node is the committee: its job loop re-executes the job
	// and sends a verdict that reproduces the claim.
	j = jn.waitJob(t, id, "slashed", func(j *client.Job) bool { return j.Status == "slashed" })
	if j.Challenge.Outcome != rome.DisputeUpheld || len(j.Challenge.Votes) != 1 || j.Challenge.Votes[0].AgreesWithResult || len(j.Challenge.Slashed) == 0 {
		t.Fatalf("slashed job: %+v", j.Challenge)
	}
	if pr, _ := jn.c.Provider(jn.ctx, jn.prov.Address().String()); pr.Slashed != 1 || pr.Completed != 0 {
		t.Fatalf("provider record %+v", pr)
	}
}

func mustBlobID(t *testing.T, s string) ledger.BlobID {
	t.Helper()
	id, err := ledger.ParseBlobID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
