package rome

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/ledger"
)

func bid(b byte) ledger.BlobID {
	var id ledger.BlobID
	id[0], id[31] = b, 0x5a
	return id
}

// jobWorld is a market with one provider whose offer runs jobs on node
// nodeKey, and one consumer holding a lease of it for leaseEpochs epochs
// from epoch 1. Epochs are 10 blocks: epoch e is heights 10e+1..10e+10.
type jobWorld struct {
	*harness
	prov, cons, other *ledger.PrivateKey
	nodeKey           *ledger.PrivateKey
	offer, lease      uint64
}

var testBond = ledger.Coins{{Denom: "uTBS", Amount: 100}, {Denom: "uTFLP", Amount: 1000}}

func jobsParams(j *jobsGenesis) {
	j.GasPerComputeUnit, j.BytesPerBandwidthUnit = 1000, 100
	j.TimeoutBlocks, j.ChallengeBlocks, j.VerdictBlocks = 5, 4, 4
	j.ChallengeDeposit, j.SlashBps = "100uTFLP", 5000
	j.VerifyAllGas, j.CommitteeSize = 1_000_000, 3
	j.MaxModuleBytes, j.MaxMemoryBytes, j.MaxOutputBytes = 1<<20, 1<<26, 1<<20
}

func newJobWorld(t *testing.T, leaseEpochs uint32, nodes int, tweak func(*jobsGenesis)) *jobWorld {
	t.Helper()
	jobs := jobsParams
	if tweak != nil {
		jobs = func(j *jobsGenesis) { jobsParams(j); tweak(j) }
	}
	h := newHarness(t, harnessOpts{epochBlocks: 10, nodes: nodes, jobs: jobs, ttl: 50})
	w := &jobWorld{harness: h, prov: h.users[0], cons: h.users[1], other: h.users[2], nodeKey: testKey(t, 500)}
	w.offer = id(h.must(w.prov, &ledger.RomeOffer{Capacity: res(1, 10, 2, 5), Price: res(1, 5, 2, 2),
		Node: w.nodeKey.Address(), Bond: testBond}), "offer_id")
	h.must(w.cons, &ledger.RomeRequest{Demand: res(1, 10, 2, 5), MaxPrice: res(1, 8, 2, 3), Epochs: leaseEpochs})
	h.untilEpoch(1)
	leases, err := h.m.Leases(h.st, 0, func(l *Lease) bool { return l.OfferID == w.offer })
	if err != nil || len(leases) != 1 {
		t.Fatalf("leases: %v %v", leases, err)
	}
	w.lease = leases[0].ID
	return w
}

func jobP(lease, gas uint64) *ledger.JobSubmit {
	return &ledger.JobSubmit{LeaseID: lease, Module: ledger.BlobRef{ID: bid(1), Size: 1000},
		Inputs: []ledger.JobFile{{Name: "in.txt", ID: bid(2), Size: 500}}, Args: []string{"-n", "3"}, Env: []string{"LANG=C"},
		GasLimit: gas, MemoryLimit: 1 << 20, OutputLimit: 1 << 16}
}

// resultP is a result of job id: gas used, and one output whose content is
// named by out (two results that differ in out differ in their root).
func resultP(id, gas uint64, out byte) *ledger.JobResult {
	r := &ledger.JobResult{JobID: id, Class: ledger.JobExited, GasUsed: gas,
		Outputs: []ledger.JobFile{{Name: "out.txt", ID: bid(out), Size: 100}},
		Stdout:  ledger.BlobRef{ID: bid(9), Size: 10}, Stderr: ledger.BlobRef{ID: bid(10)}, BytesIn: 100, BytesOut: 50}
	r.OutputRoot = OutputRoot(r.Outputs, r.Stdout, r.Stderr)
	return r
}

func outcomeOf(r *ledger.JobResult) ledger.JobOutcome {
	return ledger.JobOutcome{ExitCode: r.ExitCode, GasUsed: r.GasUsed, OutputRoot: r.OutputRoot, Stdout: r.Stdout.ID}
}

func (w *jobWorld) job(id uint64) *Job {
	w.t.Helper()
	j, err := w.m.Job(w.st, id)
	if err != nil {
		w.t.Fatal(err)
	}
	return j
}

func (w *jobWorld) blocks(n int) {
	for range n {
		w.endBlock()
	}
}

// untilHeight ends blocks until the current block is height.
func (w *jobWorld) untilHeight(height uint64) {
	w.t.Helper()
	if w.height > height {
		w.t.Fatalf("already at height %d, past %d", w.height, height)
	}
	for w.height < height {
		w.endBlock()
	}
}

func (w *jobWorld) hasEvent(typ string, kv ...string) bool {
	for _, e := range w.events {
		if e.Type != typ {
			continue
		}
		ok := true
		for i := 0; i+1 < len(kv); i += 2 {
			found := false
			for _, a := range e.Attrs {
				found = found || a.Key == kv[i] && a.Value == kv[i+1]
			}
			ok = ok && found
		}
		if ok {
			return true
		}
	}
	return false
}

// A lease whose compute budget exceeds what an executor meters still
// cannot ask for more than MaxJobGas: every executor would refuse the job,
// which could then only time out.
func TestJobGasLimitAtMostExecutors(t *testing.T) {
	w := newJobWorld(t, 2, 1, func(j *jobsGenesis) { j.GasPerComputeUnit = 1 << 60 })
	_, err := w.deliver(w.cons, jobP(w.lease, MaxJobGas+1))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "most an executor meters") {
		t.Fatalf("gas limit MaxJobGas+1: %v", err)
	}
	w.must(w.cons, jobP(w.lease, MaxJobGas))
}

func TestJobRules(t *testing.T) {
	w := newJobWorld(t, 2, 1, nil)
	// A second provider whose offer names no node: its lease takes no jobs.
	plain := w.users[2]
	w.must(plain, &ledger.RomeOffer{Capacity: res(1, 7), Price: res(1, 1)})
	w.must(w.cons, &ledger.RomeRequest{Demand: res(1, 7), MaxPrice: res(1, 1), Epochs: 1})
	w.untilEpoch(2)
	leases, _ := w.m.Leases(w.st, 0, func(l *Lease) bool { return l.Provider == plain.Address() })
	if len(leases) != 1 {
		t.Fatalf("plain leases %+v", leases)
	}
	plainLease := leases[0].ID
	// The lease's budget per epoch is 10 compute × 1000 gas.
	j1 := id(w.must(w.cons, jobP(w.lease, 6000)), "job_id")
	j2 := id(w.must(w.cons, jobP(w.lease, 1000)), "job_id")
	w.must(w.nodeKey, resultP(j2, 800, 3))
	honest := resultP(j2, 800, 3)
	mod := func(f func(p *ledger.JobSubmit)) *ledger.JobSubmit { p := jobP(w.lease, 100); f(p); return p }
	res := func(f func(r *ledger.JobResult)) *ledger.JobResult {
		r := resultP(j1, 100, 4)
		f(r)
		return r
	}
	claim := outcomeOf(honest)
	claim.GasUsed++
	tests := []struct {
		name string
		from *ledger.PrivateKey
		p    ledger.Payload
		want error
	}{
		{"submit to someone else's lease", w.other, jobP(w.lease, 100), ErrUnauthorized},
		{"submit by the provider", w.prov, jobP(w.lease, 100), ErrUnauthorized},
		{"submit to an unknown lease", w.cons, jobP(99, 100), ErrNotFound},
		{"submit to a lease whose offer runs no jobs", w.cons, jobP(plainLease, 100), ErrInvalid},
		{"submit beyond the epoch's budget", w.cons, jobP(w.lease, 3201), ErrInvalid}, // 10000 − 6000 reserved − 800 used
		{"submit module above the maximum", w.cons, mod(func(p *ledger.JobSubmit) { p.Module.Size = 1<<20 + 1 }), ErrInvalid},
		{"submit memory above the maximum", w.cons, mod(func(p *ledger.JobSubmit) { p.MemoryLimit = 1<<26 + 1 }), ErrInvalid},
		{"submit output limit above the maximum", w.cons, mod(func(p *ledger.JobSubmit) { p.OutputLimit = 1<<20 + 1 }), ErrInvalid},
		{"result from another node", w.other, resultP(j1, 100, 4), ErrUnauthorized},
		{"result from the provider's account", w.prov, resultP(j1, 100, 4), ErrUnauthorized},
		{"result for an unknown job", w.nodeKey, resultP(77, 100, 4), ErrNotFound},
		{"second result", w.nodeKey, resultP(j2, 800, 3), ErrInvalid},
		{"result above the gas limit", w.nodeKey, resultP(j1, 6001, 4), ErrInvalid},
		{"result root not over its outputs", w.nodeKey, res(func(r *ledger.JobResult) { r.OutputRoot[0] ^= 1 }), ErrInvalid},
		{"result outputs above the limit", w.nodeKey, res(func(r *ledger.JobResult) {
			r.Outputs[0].Size = 1<<16 + 1
			r.OutputRoot = OutputRoot(r.Outputs, r.Stdout, r.Stderr)
		}), ErrInvalid},
		{"result bytes in beyond the job's data", w.nodeKey, res(func(r *ledger.JobResult) { r.BytesIn = 1501 }), ErrInvalid},
		{"result bytes out beyond its outputs", w.nodeKey, res(func(r *ledger.JobResult) { r.BytesOut = 111 }), ErrInvalid},
		{"challenge by the provider", w.prov, &ledger.JobChallenge{JobID: j2, Outcome: claim}, ErrUnauthorized},
		{"challenge by the node", w.nodeKey, &ledger.JobChallenge{JobID: j2, Outcome: claim}, ErrUnauthorized},
		{"challenge claiming the result", w.cons, &ledger.JobChallenge{JobID: j2, Outcome: outcomeOf(honest)}, ErrInvalid},
		{"challenge of a job without result", w.cons, &ledger.JobChallenge{JobID: j1, Outcome: claim}, ErrInvalid},
		{"challenge of an unknown job", w.cons, &ledger.JobChallenge{JobID: 77, Outcome: claim}, ErrNotFound},
		{"verdict without a challenge", w.node, &ledger.JobVerdict{JobID: j2, Outcome: claim}, ErrInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := w.deliver(tc.from, tc.p); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	// The budget: 10000 gas, 6000 reserved by j1 and 800 used by j2 (its
	// 1000 released): 3200 left.
	mt, _ := w.m.MeasuredUsage(w.st, w.lease, 2)
	if mt.Reserved != 6000 || mt.Gas != 800 || mt.Submitted != 2 || mt.Results != 1 {
		t.Fatalf("metered %+v", mt)
	}
	w.must(w.cons, jobP(w.lease, 3200))
	if _, err := w.deliver(w.cons, jobP(w.lease, 1)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("budget exhausted: %v", err)
	}
	// The challenge and verdict rules.
	if _, err := w.deliver(w.other, &ledger.JobVerdict{JobID: j2, Outcome: claim}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("verdict before a challenge: %v", err)
	}
	w.must(w.cons, &ledger.JobChallenge{JobID: j2, Outcome: claim})
	for _, tc := range []struct {
		name string
		from *ledger.PrivateKey
		p    ledger.Payload
		want error
	}{
		{"second challenge", w.other, &ledger.JobChallenge{JobID: j2, Outcome: claim}, ErrInvalid},
		{"verdict from a non-member", w.other, &ledger.JobVerdict{JobID: j2, Outcome: claim}, ErrUnauthorized},
		{"verdict from the provider", w.prov, &ledger.JobVerdict{JobID: j2, Outcome: claim}, ErrUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := w.deliver(tc.from, tc.p); !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
	w.checkSupply()
}

func TestJobSubmitToEndedLease(t *testing.T) {
	w := newJobWorld(t, 1, 1, nil) // the lease runs epoch 1 only
	w.untilEpoch(2)
	if _, err := w.deliver(w.cons, jobP(w.lease, 100)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("submit after the lease's last epoch: %v", err)
	}
}

func TestJobChallengeInsufficientDeposit(t *testing.T) {
	w := newJobWorld(t, 2, 1, func(j *jobsGenesis) { j.ChallengeDeposit = "2000000uTFLP" })
	jid := id(w.must(w.cons, jobP(w.lease, 1000)), "job_id")
	r := resultP(jid, 500, 3)
	w.must(w.nodeKey, r)
	claim := outcomeOf(r)
	claim.ExitCode = 1
	if _, err := w.deliver(w.cons, &ledger.JobChallenge{JobID: jid, Outcome: claim}); !errors.Is(err, ledger.ErrInsufficientFunds) {
		t.Fatalf("challenge without the deposit: %v", err)
	}
	if j := w.job(jid); j.Status != JobDone || j.Dispute != nil {
		t.Fatalf("a refused challenge changed the job: %+v", j)
	}
}

// TestJobMeasuredSettlement: a job's result is metered and settlement pays
// exactly the measured usage (not the parties' reports), records and
// certificates say so, and the bond returns once nothing backs it.
func TestJobMeasuredSettlement(t *testing.T) {
	w := newJobWorld(t, 2, 1, nil)
	p0tflp, p0tbs := w.balance(w.prov.Address(), "uTFLP"), w.balance(w.prov.Address(), "uTBS")
	jid := id(w.must(w.cons, jobP(w.lease, 5000)), "job_id")
	j := w.job(jid)
	if j.Status != JobSubmitted || j.Deadline != w.height+5 || j.Node != w.nodeKey.Address() || j.Seed.IsZero() || j.Epoch != 1 {
		t.Fatalf("submitted job %+v", j)
	}
	pend, _ := w.m.PendingJobs(w.st, w.nodeKey.Address(), 0)
	if ids, err := w.m.PendingJobIDs(w.st, w.nodeKey.Address(), 0); err != nil || len(ids) != len(pend) || len(pend) == 0 || ids[0] != pend[0].ID {
		t.Fatalf("pending job ids %v (%v), pending jobs %d", ids, err, len(pend))
	}
	if ids, _ := w.m.PendingJobIDs(w.st, w.nodeKey.Address(), 1); len(ids) != 1 {
		t.Fatalf("pending job ids with limit 1: %v", ids)
	}
	if len(pend) != 1 || pend[0].ID != jid {
		t.Fatalf("node's queue: %+v", pend)
	}
	if !w.hasEvent("job_submitted", "job_id", "1", "node", w.nodeKey.Address().String(), "lease_id", "1") {
		t.Fatalf("no job_submitted event: %+v", w.events)
	}
	// Both parties report full usage: ignored for compute and bandwidth,
	// because the lease ran jobs in the epoch.
	w.must(w.prov, &ledger.RomeUsage{LeaseID: w.lease, Epoch: 1, Delivered: res(1, 10, 2, 5)})
	w.must(w.cons, &ledger.RomeUsage{LeaseID: w.lease, Epoch: 1, Delivered: res(1, 10, 2, 5)})
	w.endBlock()
	r := resultP(jid, 2500, 3)
	w.must(w.nodeKey, r)
	j = w.job(jid)
	if j.Status != JobDone || j.Result == nil || j.Result.Epoch != 1 || j.Result.ChallengeEnd != w.height+4 {
		t.Fatalf("job after its result: %+v", j)
	}
	if pend, _ := w.m.PendingJobs(w.st, w.nodeKey.Address(), 0); len(pend) != 0 {
		t.Fatalf("queue after the result: %+v", pend)
	}
	mt, _ := w.m.MeasuredUsage(w.st, w.lease, 1)
	if mt.Gas != 2500 || mt.Bytes != 150 || mt.Reserved != 0 || mt.Results != 1 {
		t.Fatalf("metered %+v", mt)
	}
	rec, _ := w.m.ProviderRecord(w.st, w.prov.Address())
	if rec != (ProviderRecord{Completed: 1}) {
		t.Fatalf("provider record %+v", rec)
	}
	// The offer closes while the job is challengeable and the lease runs:
	// the bond stays (held by the lease: its jobs are counted on the
	// offer only once it ends).
	w.must(w.prov, &ledger.RomeCancel{ID: w.offer})
	if o, _ := w.m.Offer(w.st, w.offer); !reflect.DeepEqual(o.Bond, testBond) || o.OpenJobs != 0 {
		t.Fatalf("bond released early: %+v", o)
	}
	w.blocks(5)
	if !w.hasEvent("job_final", "job_id", "1", "status", "done") {
		t.Fatal("challenge window closed without job_final")
	}
	if o, _ := w.m.Offer(w.st, w.offer); !reflect.DeepEqual(o.Bond, testBond) || o.OpenJobs != 0 {
		t.Fatalf("bond released while the lease runs: %+v", o)
	}
	w.untilEpoch(3) // the end of epoch 2 settles epoch 1 and ends the lease
	// 2500 gas = 3 compute units × 5; 150 bytes = 2 bandwidth units × 2.
	l, _ := w.m.Lease(w.st, w.lease)
	if want := (ledger.Coins{{Denom: "uTBS", Amount: 4}, {Denom: "uTFLP", Amount: 15}}); !reflect.DeepEqual(l.Paid, want) {
		t.Fatalf("epoch 1 paid %s, want %s (3 measured compute units, 2 bandwidth units)", l.Paid, want)
	}
	// The lease ended with epoch 2 and the job is final: the bond returns.
	if got := w.balance(w.prov.Address(), "uTFLP") - p0tflp; got != 15+1000 {
		t.Fatalf("provider got %d uTFLP, want 15 + the 1000 bond", got)
	}
	if got := w.balance(w.prov.Address(), "uTBS") - p0tbs; got != 4+100 {
		t.Fatalf("provider got %d uTBS, want 4 + the 100 bond", got)
	}
	er, _ := w.m.Epoch(w.st, 2)
	if er.Measured != 5 || er.Attested != 0 {
		t.Fatalf("epoch record: measured %d attested %d", er.Measured, er.Attested)
	}
	mt, _ = w.m.MeasuredUsage(w.st, w.lease, 1)
	if !mt.Settled || mt.PaidCompute != 3 || mt.PaidBandwidth != 2 {
		t.Fatalf("metered after settlement %+v", mt)
	}
	certs, _ := w.m.Certificates(w.st, 0, nil)
	found := 0
	for _, c := range certs {
		if c.Statement.NodeID == w.prov.Address().String() {
			if c.Statement.Measured != MeasuredRuntime || c.Statement.Version != StatementVersion {
				t.Fatalf("certificate %+v", c.Statement)
			}
			found++
		}
	}
	if found != 2 {
		t.Fatalf("%d runtime certificates, want 2 (compute, bandwidth)", found)
	}
	if weight, _ := w.m.Contribution(w.st, w.prov.Address()); weight != 5 {
		t.Fatalf("governance weight %d, want the 5 measured units", weight)
	}
	w.untilEpoch(4) // epoch 2: no job, no report: paid in full (delivery presumed)
	if l, _ := w.m.Lease(w.st, w.lease); l.Paid.AmountOf("uTFLP") != 15+50 {
		t.Fatalf("after epoch 2: paid %s, want 15 + 50 uTFLP", l.Paid)
	}
	o, _ := w.m.Offer(w.st, w.offer)
	if len(o.Bond) != 0 || o.OpenJobs != 0 || w.balance(BondAccount, "uTFLP") != 0 {
		t.Fatalf("bond not returned: %+v", o)
	}
	if !w.hasEvent("rome_bond_returned", "offer_id", "1", "amount", testBond.String()) {
		t.Fatal("no rome_bond_returned event")
	}
}

// TestJobTimeout: no result by the deadline: the job times out, its
// reservation is released and the consumer pays nothing for it.
func TestJobTimeout(t *testing.T) {
	w := newJobWorld(t, 1, 1, nil)
	c0 := w.balance(w.cons.Address(), "uTFLP") + 80 // the escrow of 10 compute × 8
	b0 := w.balance(w.cons.Address(), "uTBS") + 15
	jid := id(w.must(w.cons, jobP(w.lease, 5000)), "job_id")
	deadline := w.job(jid).Deadline
	w.untilHeight(deadline + 1)
	j := w.job(jid)
	if j.Status != JobTimeout {
		t.Fatalf("status %s", JobStatusName(j.Status))
	}
	if _, err := w.deliver(w.nodeKey, resultP(jid, 100, 3)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("result after the deadline: %v", err)
	}
	if !w.hasEvent("job_timeout", "job_id", "1", "node", w.nodeKey.Address().String()) {
		t.Fatal("no job_timeout event")
	}
	mt, _ := w.m.MeasuredUsage(w.st, w.lease, 1)
	if mt.Reserved != 0 || mt.Gas != 0 {
		t.Fatalf("metered %+v", mt)
	}
	rec, _ := w.m.ProviderRecord(w.st, w.prov.Address())
	if rec != (ProviderRecord{TimedOut: 1}) {
		t.Fatalf("provider record %+v", rec)
	}
	w.untilEpoch(4) // epoch 1 settled (nothing measured), lease closed, escrow refunded
	if got := w.balance(w.cons.Address(), "uTFLP"); got != c0 {
		t.Fatalf("consumer has %d uTFLP, want all %d back", got, c0)
	}
	if got := w.balance(w.cons.Address(), "uTBS"); got != b0 {
		t.Fatalf("consumer has %d uTBS, want all %d back", got, b0)
	}
	l, _ := w.m.Lease(w.st, w.lease)
	if len(l.Paid) != 0 {
		t.Fatalf("lease paid %s for a timed-out job", l.Paid)
	}
}

// TestJobDeadlineIsTheLeaseEnd: a job submitted near the end of its lease
// must be answered by the lease's last block.
func TestJobDeadlineIsTheLeaseEnd(t *testing.T) {
	w := newJobWorld(t, 1, 1, nil)
	w.untilHeight(18)
	jid := id(w.must(w.cons, jobP(w.lease, 100)), "job_id")
	if d := w.job(jid).Deadline; d != 20 {
		t.Fatalf("deadline %d, want 20 (the last block of epoch 1)", d)
	}
}

// TestJobForgedResultSlashed: a result whose outputs are not what the
// program writes is challenged; the committee's re-execution disagrees
// with it: the provider's bond is slashed, the challenger paid and its
// deposit returned, and the consumer pays nothing for the job.
func TestJobForgedResultSlashed(t *testing.T) {
	w := newJobWorld(t, 2, 3, nil)
	jid := id(w.must(w.cons, jobP(w.lease, 5000)), "job_id")
	forged := resultP(jid, 2500, 66)
	honest := resultP(jid, 2500, 3)
	w.must(w.nodeKey, forged)
	c0 := w.balance(w.cons.Address(), "uTFLP")
	out := w.must(w.cons, &ledger.JobChallenge{JobID: jid, Outcome: outcomeOf(honest)})
	if w.balance(w.cons.Address(), "uTFLP") != c0-100 || w.balance(DepositAccount, "uTFLP") != 100 {
		t.Fatal("deposit not escrowed")
	}
	j := w.job(jid)
	if j.Status != JobChallenged || len(j.Dispute.Committee) != 3 || len(out["committee"].([]any)) != 3 {
		t.Fatalf("challenged job %+v", j.Dispute)
	}
	var names []string
	for _, n := range w.nodes {
		if !contains(j.Dispute.Committee, n.Address()) {
			t.Fatalf("voter %s not on the committee of a small job", n.Address())
		}
		names = append(names, n.Address().String())
	}
	if ch, _ := w.m.ChallengedJobs(w.st, w.nodes[1].Address(), 0); len(ch) != 1 {
		t.Fatalf("verifier's queue: %+v", ch)
	}
	w.must(w.nodes[0], &ledger.JobVerdict{JobID: jid, Outcome: outcomeOf(honest)})
	if _, err := w.deliver(w.nodes[0], &ledger.JobVerdict{JobID: jid, Outcome: outcomeOf(honest)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("second verdict: %v", err)
	}
	if ch, _ := w.m.ChallengedJobs(w.st, w.nodes[0].Address(), 0); len(ch) != 0 {
		t.Fatalf("a member that voted still has the job queued: %+v", ch)
	}
	w.must(w.nodes[2], &ledger.JobVerdict{JobID: jid, Outcome: outcomeOf(honest)})
	j = w.job(jid)
	if j.Status != JobSlashed || j.Dispute.Outcome != DisputeUpheld {
		t.Fatalf("after a majority: %s %+v", JobStatusName(j.Status), j.Dispute)
	}
	// Half of the bond (500 uTFLP, 50 uTBS) goes to the challenger: the
	// epoch is not settled yet, so nothing is refunded out of it.
	wantSlash := ledger.Coins{{Denom: "uTBS", Amount: 50}, {Denom: "uTFLP", Amount: 500}}
	if !reflect.DeepEqual(j.Dispute.Slashed, wantSlash) || !reflect.DeepEqual(j.Dispute.Reward, wantSlash) || len(j.Dispute.Refund) != 0 {
		t.Fatalf("slash %+v", j.Dispute)
	}
	if got := w.balance(w.cons.Address(), "uTFLP"); got != c0+500 {
		t.Fatalf("challenger has %d, want %d (deposit back + 500)", got, c0+500)
	}
	o, _ := w.m.Offer(w.st, w.offer)
	if !reflect.DeepEqual(o.Bond, wantSlash) || !reflect.DeepEqual(o.Slashed, wantSlash) || o.OpenJobs != 0 {
		t.Fatalf("offer after the slash %+v", o)
	}
	rec, _ := w.m.ProviderRecord(w.st, w.prov.Address())
	if rec != (ProviderRecord{Slashed: 1}) {
		t.Fatalf("provider record %+v", rec)
	}
	if !w.hasEvent("job_slashed", "job_id", "1", "slashed", wantSlash.String()) || !w.hasEvent("job_resolved", "outcome", "upheld") ||
		!w.hasEvent("job_challenged", "committee", strings.Join(sortedNames(names), ",")) {
		t.Fatalf("events %+v", w.events)
	}
	// The job's gas is no longer metered: epoch 1 pays no compute.
	p0 := w.balance(w.prov.Address(), "uTFLP")
	w.untilEpoch(3)
	if got := w.balance(w.prov.Address(), "uTFLP") - p0; got != 0 {
		t.Fatalf("a slashed job was paid %d", got)
	}
	if _, err := w.deliver(w.nodes[1], &ledger.JobVerdict{JobID: jid, Outcome: outcomeOf(honest)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("verdict after the decision: %v", err)
	}
	w.checkSupply()
}

func sortedNames(n []string) []string {
	out := append([]string(nil), n...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			a, _ := ledger.ParseAddress(out[i])
			b, _ := ledger.ParseAddress(out[j])
			if string(b[:]) < string(a[:]) {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func contains(as []ledger.Address, a ledger.Address) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

// TestJobSlashAfterSettlement: when the forged result's epoch is already
// paid, the consumer gets its cost back out of the slashed bond.
func TestJobSlashAfterSettlement(t *testing.T) {
	w := newJobWorld(t, 3, 3, func(j *jobsGenesis) { j.ChallengeBlocks, j.VerdictBlocks = 40, 40 })
	jid := id(w.must(w.cons, jobP(w.lease, 5000)), "job_id")
	forged := resultP(jid, 2500, 66)
	honest := resultP(jid, 2500, 3)
	w.must(w.nodeKey, forged)
	// Epoch 1 ran a job and has nothing else to weigh: it is paid at the
	// lease's next due settlement, the end of its last epoch (3): 15
	// uTFLP, 4 uTBS.
	w.untilEpoch(3)
	if mt, _ := w.m.MeasuredUsage(w.st, w.lease, 1); mt.Settled {
		t.Fatalf("epoch 1 paid before the lease's settlement is due: %+v", mt)
	}
	w.untilEpoch(4)
	if mt, _ := w.m.MeasuredUsage(w.st, w.lease, 1); !mt.Settled || mt.PaidCompute != 3 {
		t.Fatalf("metered %+v", mt)
	}
	c0, b0 := w.balance(w.cons.Address(), "uTFLP"), w.balance(w.cons.Address(), "uTBS")
	w.must(w.cons, &ledger.JobChallenge{JobID: jid, Outcome: outcomeOf(honest)})
	w.must(w.nodes[1], &ledger.JobVerdict{JobID: jid, Outcome: outcomeOf(honest)})
	w.must(w.nodes[2], &ledger.JobVerdict{JobID: jid, Outcome: outcomeOf(honest)})
	j := w.job(jid)
	wantRefund := ledger.Coins{{Denom: "uTBS", Amount: 4}, {Denom: "uTFLP", Amount: 15}}
	if j.Status != JobSlashed || !reflect.DeepEqual(j.Dispute.Refund, wantRefund) {
		t.Fatalf("slash after settlement: %+v", j.Dispute)
	}
	// The consumer is also the challenger: refund + reward + deposit back.
	if got := w.balance(w.cons.Address(), "uTFLP") - c0; got != 500 {
		t.Fatalf("consumer got %d uTFLP, want 15 refund + 485 reward", got)
	}
	if got := w.balance(w.cons.Address(), "uTBS") - b0; got != 50 {
		t.Fatalf("consumer got %d uTBS, want 4 refund + 46 reward", got)
	}
	if mt, _ := w.m.MeasuredUsage(w.st, w.lease, 1); mt.PaidCompute != 0 || mt.PaidBandwidth != 0 || mt.Gas != 0 {
		t.Fatalf("metered after the slash %+v", mt)
	}
	w.checkSupply()
}

// TestJobHonestResultChallenged: the committee reproduces the result: the
// challenge is rejected and its deposit goes to the provider.
func TestJobHonestResultChallenged(t *testing.T) {
	w := newJobWorld(t, 2, 3, nil)
	jid := id(w.must(w.cons, jobP(w.lease, 5000)), "job_id")
	honest := resultP(jid, 2500, 3)
	w.must(w.nodeKey, honest)
	wrong := outcomeOf(resultP(jid, 2500, 66))
	c0, p0 := w.balance(w.other.Address(), "uTFLP"), w.balance(w.prov.Address(), "uTFLP")
	w.must(w.other, &ledger.JobChallenge{JobID: jid, Outcome: wrong})
	w.must(w.nodes[0], &ledger.JobVerdict{JobID: jid, Outcome: outcomeOf(honest)})
	w.must(w.nodes[1], &ledger.JobVerdict{JobID: jid, Outcome: wrong}) // a dissenting member does not decide
	if j := w.job(jid); j.Status != JobChallenged {
		t.Fatalf("decided without a majority: %s", JobStatusName(j.Status))
	}
	w.must(w.nodes[2], &ledger.JobVerdict{JobID: jid, Outcome: outcomeOf(honest)})
	j := w.job(jid)
	if j.Status != JobDone || j.Dispute.Outcome != DisputeRejected {
		t.Fatalf("after the verdicts: %s %+v", JobStatusName(j.Status), j.Dispute)
	}
	if got := c0 - w.balance(w.other.Address(), "uTFLP"); got != 100 {
		t.Fatalf("challenger lost %d, want its 100 deposit", got)
	}
	if got := w.balance(w.prov.Address(), "uTFLP") - p0; got != 100 {
		t.Fatalf("provider got %d, want the 100 deposit", got)
	}
	o, _ := w.m.Offer(w.st, w.offer)
	if !reflect.DeepEqual(o.Bond, testBond) || len(o.Slashed) != 0 {
		t.Fatalf("an honest provider's bond changed: %+v", o)
	}
	if rec, _ := w.m.ProviderRecord(w.st, w.prov.Address()); rec != (ProviderRecord{Completed: 1}) {
		t.Fatalf("provider record %+v", rec)
	}
	if !w.hasEvent("job_resolved", "job_id", "1", "outcome", "rejected") {
		t.Fatal("no job_resolved event")
	}
	w.checkSupply()
}

// TestJobChallengeLapses: without a majority by the verdict deadline the
// challenge lapses and the deposit returns.
func TestJobChallengeLapses(t *testing.T) {
	w := newJobWorld(t, 2, 3, nil)
	jid := id(w.must(w.cons, jobP(w.lease, 5000)), "job_id")
	honest := resultP(jid, 2500, 3)
	w.must(w.nodeKey, honest)
	c0 := w.balance(w.other.Address(), "uTFLP")
	w.must(w.other, &ledger.JobChallenge{JobID: jid, Outcome: outcomeOf(resultP(jid, 1, 3))})
	w.must(w.nodes[0], &ledger.JobVerdict{JobID: jid, Outcome: outcomeOf(honest)})
	end := w.job(jid).Dispute.VerdictEnd
	w.untilHeight(end + 1)
	if _, err := w.deliver(w.nodes[1], &ledger.JobVerdict{JobID: jid, Outcome: outcomeOf(honest)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("verdict after the deadline: %v", err)
	}
	j := w.job(jid)
	if j.Status != JobDone || j.Dispute.Outcome != DisputeLapsed || w.balance(w.other.Address(), "uTFLP") != c0 {
		t.Fatalf("lapsed challenge: %s %+v", JobStatusName(j.Status), j.Dispute)
	}
	if o, _ := w.m.Offer(w.st, w.offer); o.OpenJobs != 0 {
		t.Fatalf("open jobs %d", o.OpenJobs)
	}
}

func TestJobChallengeWindow(t *testing.T) {
	w := newJobWorld(t, 2, 1, nil)
	jid := id(w.must(w.cons, jobP(w.lease, 5000)), "job_id")
	r := resultP(jid, 2500, 3)
	w.must(w.nodeKey, r)
	w.untilHeight(w.job(jid).Result.ChallengeEnd + 1)
	claim := outcomeOf(r)
	claim.ExitCode = 3
	if _, err := w.deliver(w.cons, &ledger.JobChallenge{JobID: jid, Outcome: claim}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("challenge after the window: %v", err)
	}
}

// TestCommitteeDraw: small jobs go to every voter; larger ones to a
// committee drawn from the previous block hash, the same on every node.
func TestCommitteeDraw(t *testing.T) {
	w := newJobWorld(t, 2, 5, nil)
	p, _ := w.m.Params(w.st)
	s := &store{st: w.st, codec: w.codec}
	small := &Job{ID: 4, GasLimit: p.JobVerifyAllGas}
	all, err := w.m.committee(s, p, ledger.Hash{1}, small)
	if err != nil || len(all) != 5 {
		t.Fatalf("small job committee %d %v", len(all), err)
	}
	large := &Job{ID: 4, GasLimit: p.JobVerifyAllGas + 1}
	seen := map[string]bool{}
	for i := range 20 {
		c1, err := w.m.committee(s, p, ledger.Hash{byte(i)}, large)
		if err != nil || len(c1) != 3 {
			t.Fatalf("large job committee %d %v", len(c1), err)
		}
		c2, _ := w.m.committee(s, p, ledger.Hash{byte(i)}, large)
		if !reflect.DeepEqual(c1, c2) {
			t.Fatal("the draw is not deterministic")
		}
		for k := 1; k < len(c1); k++ {
			if string(c1[k-1][:]) >= string(c1[k][:]) {
				t.Fatal("committee not sorted by address")
			}
		}
		seen[c1[0].String()+c1[1].String()+c1[2].String()] = true
	}
	if len(seen) < 3 {
		t.Fatalf("20 block hashes drew only %d distinct committees", len(seen))
	}
}

// TestReliableProviderPreferred: at equal prices the built-in policy gives
// the request to the provider whose jobs did not time out.
func TestReliableProviderPreferred(t *testing.T) {
	w := newJobWorld(t, 1, 1, nil)
	jid := id(w.must(w.cons, jobP(w.lease, 100)), "job_id")
	w.untilHeight(w.job(jid).Deadline + 1) // the first provider's job times out
	good := w.users[2]
	// The unreliable provider's offer comes first (lower index): only its
	// record can make the policy prefer the other.
	w.must(w.prov, &ledger.RomeOffer{Capacity: res(1, 5), Price: res(1, 1)})
	w.must(good, &ledger.RomeOffer{Capacity: res(1, 5), Price: res(1, 1)})
	w.must(w.cons, &ledger.RomeRequest{Demand: res(1, 5), MaxPrice: res(1, 1), Epochs: 1})
	c, _ := w.m.Clock(w.st)
	w.untilEpoch(c.Epoch + 1)
	leases, _ := w.m.Leases(w.st, 1, nil)
	if leases[0].Provider != good.Address() {
		t.Fatalf("lease went to %s, want the reliable provider", leases[0].Provider)
	}
}

// TestOutputRoot pins the output root encoding: it is shared with the
// executor, the verifier and the CLI.
func TestOutputRoot(t *testing.T) {
	outs := []ledger.JobFile{{Name: "b", ID: bid(2), Size: 2}, {Name: "a/x", ID: bid(1), Size: 1}}
	so, se := ledger.BlobRef{ID: bid(3), Size: 3}, ledger.BlobRef{ID: bid(4)}
	root := OutputRoot(outs, so, se)
	if got := OutputRoot([]ledger.JobFile{outs[1], outs[0]}, so, se); got != root {
		t.Fatal("the root depends on the order of the list")
	}
	if outs[0].Name != "b" {
		t.Fatal("OutputRoot sorted its argument")
	}
	if want := "6545343ff7e2409603e1b7e43c065ca1deff9a72df3a3de63ff1d0db21d2e6a3"; root.String() != want {
		t.Fatalf("output root %s, want %s (the encoding changed: executor, verifier and old results disagree)", root, want)
	}
	variants := []func() ledger.Hash{
		func() ledger.Hash {
			o := append([]ledger.JobFile(nil), outs...)
			o[0].Size++
			return OutputRoot(o, so, se)
		},
		func() ledger.Hash {
			o := append([]ledger.JobFile(nil), outs...)
			o[0].Name = "c"
			return OutputRoot(o, so, se)
		},
		func() ledger.Hash {
			o := append([]ledger.JobFile(nil), outs...)
			o[1].ID[5] = 1
			return OutputRoot(o, so, se)
		},
		func() ledger.Hash { return OutputRoot(outs[:1], so, se) },
		func() ledger.Hash { return OutputRoot(outs, se, so) },
		func() ledger.Hash { return OutputRoot(outs, ledger.BlobRef{ID: bid(3), Size: 4}, se) },
		func() ledger.Hash { return OutputRoot(nil, so, se) },
	}
	for i, f := range variants {
		if f() == root {
			t.Fatalf("variant %d has the same root", i)
		}
	}
}

// TestJobDeterminism: the same transactions give the same state, byte for
// byte, through a job's whole life (submit, forged result, challenge,
// verdicts, slash, settlement, timeout).
func TestJobDeterminism(t *testing.T) {
	run := func() (map[string][]byte, []ledger.Event) {
		w := newJobWorld(t, 2, 3, nil)
		j1 := id(w.must(w.cons, jobP(w.lease, 5000)), "job_id")
		j2 := id(w.must(w.cons, jobP(w.lease, 1000)), "job_id")
		w.must(w.nodeKey, resultP(j1, 2500, 66))
		w.must(w.cons, &ledger.JobChallenge{JobID: j1, Outcome: outcomeOf(resultP(j1, 2500, 3))})
		w.endBlock()
		for _, n := range w.nodes {
			w.must(n, &ledger.JobVerdict{JobID: j1, Outcome: outcomeOf(resultP(j1, 2500, 3))})
			if w.job(j1).Status == JobSlashed {
				break
			}
		}
		_ = j2 // times out
		w.untilEpoch(4)
		w.commit()
		return w.base.m, w.events
	}
	s1, e1 := run()
	s2, e2 := run()
	if !reflect.DeepEqual(s1, s2) {
		t.Fatal("two runs of the same transactions reached different states")
	}
	if !reflect.DeepEqual(e1, e2) {
		t.Fatal("two runs emitted different events")
	}
}

func TestJobParams(t *testing.T) {
	p := DefaultParams()
	d, err := ledger.NewDenoms(ledger.DefaultDenoms())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, value string }{
		{"gas_per_compute_unit", "0"}, {"bytes_per_bandwidth_unit", "0"}, {"job_timeout_blocks", "0"},
		{"job_slash_bps", "10001"}, {"job_committee_size", "0"}, {"max_job_memory_bytes", "4294967297"},
		{"job_challenge_deposit", "five"}, {"job_challenge_deposit", "1DOGE"}, {"max_job_module_bytes", "-1"},
	} {
		if _, err := p.With(tc.name, tc.value, d); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s = %s accepted: %v", tc.name, tc.value, err)
		}
	}
	np, err := p.With("job_challenge_deposit", "2.5TFLP", d)
	if err != nil || np.JobChallengeDeposit != "2.5TFLP" {
		t.Fatalf("deposit: %v", err)
	}
	if np, err = p.With("job_committee_size", "5", d); err != nil || np.JobCommitteeSize != 5 {
		t.Fatalf("committee size: %v", err)
	}
}

// TestBondReturns: a bond comes back at once when an offer without leases
// or jobs is cancelled, and when an idle offer expires; a bond in a denom
// the provider lacks is refused with nothing taken.
func TestBondReturns(t *testing.T) {
	h := newHarness(t, harnessOpts{epochBlocks: 2})
	prov, node := h.users[0], testKey(t, 500)
	b0 := h.balance(prov.Address(), "uTFLP")
	oid := id(h.must(prov, &ledger.RomeOffer{Capacity: res(1, 5), Price: res(1, 1), Node: node.Address(), Bond: testBond}), "offer_id")
	if h.balance(prov.Address(), "uTFLP") != b0-1000 || h.balance(BondAccount, "uTFLP") != 1000 {
		t.Fatal("bond not taken")
	}
	h.must(prov, &ledger.RomeCancel{ID: oid})
	if h.balance(prov.Address(), "uTFLP") != b0 || h.balance(BondAccount, "uTFLP") != 0 {
		t.Fatal("bond of an idle cancelled offer not returned")
	}
	h.must(prov, &ledger.RomeOffer{Capacity: res(1, 5), Price: res(1, 1), Node: node.Address(), Bond: testBond, UntilEpoch: 2})
	h.untilEpoch(2)
	if h.balance(prov.Address(), "uTFLP") != b0 || h.balance(BondAccount, "uTFLP") != 0 {
		t.Fatal("bond of an expired offer not returned")
	}
	poor := &ledger.RomeOffer{Capacity: res(1, 5), Price: res(1, 1), Node: node.Address(), Bond: ledger.Coins{{Denom: "uTFLP", Amount: 2_000_000}}}
	if _, err := h.deliver(prov, poor); !errors.Is(err, ledger.ErrInsufficientFunds) {
		t.Fatalf("bond above the balance: %v", err)
	}
	if offers, _ := h.m.Offers(h.st, 0, nil); len(offers) != 2 {
		t.Fatalf("a refused offer was recorded: %d offers", len(offers))
	}
}

// TestJobsQuery pages through jobs newest first with every filter.
func TestJobsQuery(t *testing.T) {
	w := newJobWorld(t, 2, 1, nil)
	for range 5 {
		w.must(w.cons, jobP(w.lease, 100))
	}
	w.must(w.nodeKey, resultP(2, 50, 3))
	var got []uint64
	for before := uint64(0); ; {
		page, next, err := w.m.Jobs(w.st, JobFilter{Lease: w.lease, Before: before, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range page {
			got = append(got, j.ID)
		}
		if next == 0 {
			break
		}
		before = next
	}
	if !reflect.DeepEqual(got, []uint64{5, 4, 3, 2, 1}) {
		t.Fatalf("paged jobs %v", got)
	}
	for _, tc := range []struct {
		f    JobFilter
		want int
	}{
		{JobFilter{}, 5},
		{JobFilter{Status: JobDone}, 1},
		{JobFilter{Node: w.nodeKey.Address(), Status: JobSubmitted}, 4},
		{JobFilter{Provider: w.prov.Address()}, 5},
		{JobFilter{Consumer: w.other.Address()}, 0},
		{JobFilter{Lease: 99}, 0},
	} {
		jobs, _, err := w.m.Jobs(w.st, tc.f)
		if err != nil || len(jobs) != tc.want {
			t.Fatalf("filter %+v: %d jobs (%v), want %d", tc.f, len(jobs), err, tc.want)
		}
	}
	c, _ := w.m.Counts(w.st)
	if c.PendingJobs != 4 || c.Challenges != 0 {
		t.Fatalf("counts %+v", c)
	}
}

// TestJobSubmitAtTheLeaseEnd: in the lease's last block no block is left
// for a result: the submission is refused rather than doomed.
func TestJobSubmitAtTheLeaseEnd(t *testing.T) {
	w := newJobWorld(t, 1, 1, nil)
	w.untilHeight(20) // the last block of epoch 1, the lease's only epoch
	if _, err := w.deliver(w.cons, jobP(w.lease, 100)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("submit in the lease's last block: %v", err)
	}
	if mt, _ := w.m.MeasuredUsage(w.st, w.lease, 1); mt.Submitted != 0 || mt.Reserved != 0 {
		t.Fatalf("a refused job was metered: %+v", mt)
	}
}

// TestJobSlashedBeforeItsEpochIsPaid: a job's epoch is paid at the lease's
// due settlement; a slash that comes before it takes the job's usage out,
// so the epoch pays nothing for it and nothing is refunded out of the bond
// (the challenger gets the whole slashed share). A slash in the epoch
// after the result's, before that epoch's reward is shared, also takes the
// job's units out of the reward's weight.
func TestJobSlashedBeforeItsEpochIsPaid(t *testing.T) {
	w := newJobWorld(t, 3, 3, func(j *jobsGenesis) { j.ChallengeBlocks, j.VerdictBlocks = 40, 40 })
	jid := id(w.must(w.cons, jobP(w.lease, 5000)), "job_id")
	forged, honest := resultP(jid, 2500, 66), resultP(jid, 2500, 3)
	w.must(w.nodeKey, forged)
	prov := w.prov.Address()
	weight := func() uint64 {
		v, err := (&store{st: w.st, codec: w.codec}).getU64(rkey(tagJobWeight, u64(1), prov[:]))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if got := weight(); got != 5 {
		t.Fatalf("epoch 1's reward weighs %d job units of the provider, want 3 compute + 2 bandwidth", got)
	}
	w.untilEpoch(2)
	c0, b0 := w.balance(w.cons.Address(), "uTFLP"), w.balance(w.cons.Address(), "uTBS")
	w.must(w.cons, &ledger.JobChallenge{JobID: jid, Outcome: outcomeOf(honest)})
	w.must(w.nodes[1], &ledger.JobVerdict{JobID: jid, Outcome: outcomeOf(honest)})
	w.must(w.nodes[2], &ledger.JobVerdict{JobID: jid, Outcome: outcomeOf(honest)})
	j := w.job(jid)
	if j.Status != JobSlashed || len(j.Dispute.Refund) != 0 {
		t.Fatalf("slash before the epoch is paid: %+v", j.Dispute)
	}
	if got := weight(); got != 0 {
		t.Fatalf("after the slash epoch 1's reward weighs %d job units", got)
	}
	// The consumer is also the challenger: the whole slashed half of the
	// bond (and its deposit back).
	if got := w.balance(w.cons.Address(), "uTFLP") - c0; got != 500 {
		t.Fatalf("consumer got %d uTFLP, want the 500 slashed", got)
	}
	if got := w.balance(w.cons.Address(), "uTBS") - b0; got != 50 {
		t.Fatalf("consumer got %d uTBS, want the 50 slashed", got)
	}
	w.untilEpoch(5) // the lease (epochs 1-3) is paid and closed
	l, _ := w.m.Lease(w.st, w.lease)
	// Epoch 1 ran a job: compute and bandwidth as measured (nothing left
	// after the slash); epochs 2 and 3 the leased 10 × 5 + 5 × 2.
	if want := (ledger.Coins{{Denom: "uTBS", Amount: 20}, {Denom: "uTFLP", Amount: 100}}); l.Status != StatusEnded || !reflect.DeepEqual(l.Paid, want) {
		t.Fatalf("lease %s paid %s, want %s", StatusName(l.Status), l.Paid, want)
	}
	if mt, _ := w.m.MeasuredUsage(w.st, w.lease, 1); !mt.Settled || mt.PaidCompute != 0 || mt.PaidBandwidth != 0 || mt.Gas != 0 || mt.Weighed != 0 {
		t.Fatalf("epoch 1 after its settlement %+v", mt)
	}
	w.checkSupply()
}

// TestLeaseJobsAcrossEpochs: a lease's jobs are listed through its Metered
// records (each epoch's LastJob, then each job's PrevJob), so the listing
// must hold across epochs, skip another lease's jobs submitted in between,
// page with a cursor, and accept a cursor that is no job of the lease.
func TestLeaseJobsAcrossEpochs(t *testing.T) {
	w := newJobWorld(t, 10, 1, nil)
	node2 := testKey(t, 501)
	w.must(w.other, &ledger.RomeOffer{Capacity: res(1, 10, 2, 5), Price: res(1, 5, 2, 2), Node: node2.Address(), Bond: testBond})
	w.must(w.cons, &ledger.RomeRequest{Demand: res(1, 10, 2, 5), MaxPrice: res(1, 8, 2, 3), Epochs: 10})
	w.untilEpoch(2)
	ls, err := w.m.Leases(w.st, 0, func(l *Lease) bool { return l.ID != w.lease && l.Status == StatusActive })
	if err != nil || len(ls) != 1 {
		t.Fatalf("second lease: %v %v", ls, err)
	}
	a, b := w.lease, ls[0].ID
	var want []uint64 // lease a's jobs, newest first
	submit := func(lease uint64) {
		jid := id(w.must(w.cons, jobP(lease, 100)), "job_id")
		if lease == a {
			want = append([]uint64{jid}, want...)
		}
	}
	epoch := uint64(2)
	for _, round := range [][]uint64{{a, b, a}, {b}, {a, b}, {b, a, a}} {
		for _, l := range round {
			submit(l)
		}
		epoch++
		w.untilEpoch(epoch)
	}
	submit(a) // running: its result below
	list := func(before uint64, limit int) ([]uint64, uint64) {
		page, next, err := w.m.Jobs(w.st, JobFilter{Lease: a, Before: before, Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		var ids []uint64
		for _, j := range page {
			if j.LeaseID != a {
				t.Fatalf("job %d of lease %d listed for lease %d", j.ID, j.LeaseID, a)
			}
			ids = append(ids, j.ID)
		}
		return ids, next
	}
	if got, next := list(0, 100); !reflect.DeepEqual(got, want) || next != 0 {
		t.Fatalf("lease %d's jobs %v (next %d), want %v", a, got, next, want)
	}
	for _, limit := range []int{1, 2, 3} {
		var got []uint64
		for before := uint64(0); ; {
			ids, next := list(before, limit)
			got = append(got, ids...)
			if next == 0 {
				break
			}
			before = next
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("paged by %d: %v, want %v", limit, got, want)
		}
	}
	// A cursor that is lease b's job: lease a's jobs below it.
	bJobs, _, _ := w.m.Jobs(w.st, JobFilter{Lease: b})
	cut := bJobs[len(bJobs)/2].ID
	var below []uint64
	for _, id := range want {
		if id < cut {
			below = append(below, id)
		}
	}
	if got, _ := list(cut, 100); !reflect.DeepEqual(got, below) {
		t.Fatalf("before job %d of the other lease: %v, want %v", cut, got, below)
	}
	// The lease's jobs filtered by status go through the same records.
	w.must(w.nodeKey, resultP(want[0], 50, 3))
	if jobs, _, err := w.m.Jobs(w.st, JobFilter{Lease: a, Status: JobDone}); err != nil || len(jobs) != 1 || jobs[0].ID != want[0] {
		t.Fatalf("done jobs of lease %d: %v %v", a, jobs, err)
	}
}

// TestBondHeldByJobsOfEndedLease: the jobs of a lease are counted on its
// offer when the lease ends (not at each submit), and the bond of a
// closed offer stays until the last of them ends. When the one-epoch
// lease ends, a job is still challenged (its verdicts due after the
// lease's last block, past the challenge window its epoch's record first
// bounded: the challenge raises it), or still challengeable; the bond
// returns, less what a slash took, when that job ends.
func TestBondHeldByJobsOfEndedLease(t *testing.T) {
	half := ledger.Coins{{Denom: "uTBS", Amount: 50}, {Denom: "uTFLP", Amount: 1000 - 500}}
	setup := func(t *testing.T) *jobWorld {
		w := newJobWorld(t, 1, 3, nil)
		w.must(w.prov, &ledger.RomeCancel{ID: w.offer})
		return w
	}
	// ended checks the offer at height 21, after the lease's end.
	ended := func(w *jobWorld) {
		w.t.Helper()
		if o, _ := w.m.Offer(w.st, w.offer); o.OpenJobs != 0 || !reflect.DeepEqual(o.Bond, testBond) {
			w.t.Fatalf("offer while its lease runs: %+v", o)
		}
		w.untilHeight(21) // the end of block 20 ended the lease
		if l, _ := w.m.Lease(w.st, w.lease); l.Status != StatusEnded {
			w.t.Fatalf("lease %s", StatusName(l.Status))
		}
		if o, _ := w.m.Offer(w.st, w.offer); o.OpenJobs != 1 || !reflect.DeepEqual(o.Bond, testBond) {
			w.t.Fatalf("offer after its lease ended with an open job: %+v", o)
		}
	}
	// answered submits a job at height at and answers it in the next block
	// with output out.
	answered := func(t *testing.T, at uint64, out byte) (*jobWorld, uint64) {
		w := setup(t)
		w.untilHeight(at)
		jid := id(w.must(w.cons, jobP(w.lease, 5000)), "job_id")
		w.endBlock()
		w.must(w.nodeKey, resultP(jid, 2500, out))
		return w, jid
	}
	t.Run("challenged", func(t *testing.T) {
		w, jid := answered(t, 12, 66) // result at height 13: challengeable until 17
		w.untilHeight(17)
		w.must(w.cons, &ledger.JobChallenge{JobID: jid, Outcome: outcomeOf(resultP(jid, 2500, 3))})
		if end := w.job(jid).Dispute.VerdictEnd; end != 21 {
			t.Fatalf("verdicts due by %d, want 21 (after the lease's last block, 20)", end)
		}
		ended(w)
		honest := outcomeOf(resultP(jid, 2500, 3))
		w.must(w.nodes[0], &ledger.JobVerdict{JobID: jid, Outcome: honest})
		p0 := w.balance(w.prov.Address(), "uTFLP")
		w.must(w.nodes[1], &ledger.JobVerdict{JobID: jid, Outcome: honest})
		o, _ := w.m.Offer(w.st, w.offer)
		if w.job(jid).Status != JobSlashed || !reflect.DeepEqual(o.Slashed, half) {
			t.Fatalf("after the verdicts: job %s, offer %+v", JobStatusName(w.job(jid).Status), o)
		}
		if o.OpenJobs != 0 || len(o.Bond) != 0 || w.balance(w.prov.Address(), "uTFLP") != p0+500 || w.balance(BondAccount, "uTFLP") != 0 {
			t.Fatalf("rest of the bond not returned when the challenge ended: %+v", o)
		}
	})
	t.Run("challengeable", func(t *testing.T) {
		w, _ := answered(t, 18, 3) // result at height 19: challengeable until 23
		ended(w)
		p0 := w.balance(w.prov.Address(), "uTFLP")
		w.untilHeight(23)
		if o, _ := w.m.Offer(w.st, w.offer); o.OpenJobs != 1 || !reflect.DeepEqual(o.Bond, testBond) {
			t.Fatalf("bond released before the job's window closed: %+v", o)
		}
		w.endBlock() // height 23 closes the window
		o, _ := w.m.Offer(w.st, w.offer)
		if o.OpenJobs != 0 || len(o.Bond) != 0 || w.balance(BondAccount, "uTFLP") != 0 || w.balance(w.prov.Address(), "uTFLP") != p0+1000 {
			t.Fatalf("bond not returned after the last job ended: %+v", o)
		}
		if !w.hasEvent("job_final", "job_id", "1") || !w.hasEvent("rome_bond_returned", "offer_id", "1", "amount", testBond.String()) {
			t.Fatalf("events %+v", w.events)
		}
	})
}

// TestBondHeldByJobOfMovedLease: a lease that is moved away after missed
// storage proofs ends early with a job still waiting for its result; the
// job is counted on the (cancelled) offer then, keeps what is left of its
// bond until it times out, and the bond returns when it does.
func TestBondHeldByJobOfMovedLease(t *testing.T) {
	h := newHarness(t, harnessOpts{epochBlocks: 10, ttl: 50, jobs: jobsParams, storage: storParams, users: 4})
	bs, err := blob.Open("blobs", blob.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bs.Close() })
	w := &storWorld{harness: h, cons: h.users[0], blobs: bs}
	job := func(id uint64) *Job {
		j, err := w.m.Job(w.st, id)
		if err != nil {
			t.Fatal(err)
		}
		return j
	}
	until := (&jobWorld{harness: h}).untilHeight
	var provs, nodes []*ledger.PrivateKey
	var offers []uint64
	for i := range 3 {
		prov, node := h.users[i+1], testKey(t, 710+i)
		provs, nodes = append(provs, prov), append(nodes, node)
		offers = append(offers, id(w.must(prov, &ledger.RomeOffer{Capacity: res(1, 10, 4, 100), Price: res(1, 5, 4, uint64(i+1)),
			Region: []string{"eu", "us", "ap"}[i], Node: node.Address(), Bond: testBond}), "offer_id"))
	}
	req := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(1, 10, 4, 20), MaxPrice: res(1, 8, 4, 5), Epochs: 8, Replicas: 2}), "request_id")
	w.untilDrawn(1)
	leases := w.leasesOf(req)
	if len(leases) != 2 {
		t.Fatalf("leases %+v", leases)
	}
	good, lost := leases[0], leases[1]
	idx := slices.Index(offers, lost.OfferID)
	w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: w.put(5000, 3)})
	w.must(provs[idx], &ledger.RomeCancel{ID: lost.OfferID})
	w.untilDrawn(3)
	gi := slices.Index(offers, good.OfferID)
	w.must(nodes[gi], w.answer(nodes[gi]))
	until(38)
	jid := id(w.must(w.cons, jobP(lost.ID, 5000)), "job_id")
	if d := job(jid).Deadline; d != 43 {
		t.Fatalf("deadline %d", d)
	}
	until(41) // the end of epoch 3 (block 40) moved the lease away
	if l, _ := w.m.Lease(w.st, lost.ID); !l.EndedEarly || l.Status != StatusEnded {
		t.Fatalf("lease not moved: %+v", l)
	}
	o, _ := w.m.Offer(w.st, lost.OfferID)
	if o.OpenJobs != 1 || len(o.Bond) == 0 {
		t.Fatalf("offer of the moved lease with a pending job: %+v", o)
	}
	left := o.Bond
	p0 := w.balance(provs[idx].Address(), "uTFLP")
	until(44) // block 43 timed the job out
	if j := job(jid); j.Status != JobTimeout {
		t.Fatalf("job %s", JobStatusName(j.Status))
	}
	o, _ = w.m.Offer(w.st, lost.OfferID)
	if o.OpenJobs != 0 || len(o.Bond) != 0 || w.balance(provs[idx].Address(), "uTFLP") != p0+left.AmountOf("uTFLP") {
		t.Fatalf("bond not returned when the last job ended: %+v", o)
	}
}
