package kernel

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

// maxUsageEpochs bounds the epochs GET /v1/rome/leases/{id}/usage lists
// (the most recent ones).
const maxUsageEpochs = 64

func (n *Node) registerJobAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/jobs", n.handleJobs)
	mux.HandleFunc("GET /v1/jobs/{id}", n.handleJob)
	mux.HandleFunc("GET /v1/providers/{addr}", n.handleProvider)
	mux.HandleFunc("GET /v1/rome/leases/{id}/usage", n.handleLeaseUsage)
}

func apiRef(r ledger.BlobRef) client.BlobRef { return client.BlobRef{ID: r.ID.String(), Size: r.Size} }

func apiFiles(fs []ledger.JobFile) []client.JobFile {
	out := make([]client.JobFile, 0, len(fs))
	for _, f := range fs {
		out = append(out, client.JobFile{Name: f.Name, ID: f.ID.String(), Size: f.Size})
	}
	return out
}

func apiOutcome(o ledger.JobOutcome) client.JobOutcome {
	return client.JobOutcome{ExitCode: o.ExitCode, GasUsed: o.GasUsed, OutputRoot: o.OutputRoot.String(), Stdout: o.Stdout.String()}
}

func strs(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// APIJob renders a job for the API: the ledger's record and what t knows
// of it on this node (running, verified; t may be nil).
func APIJob(j *rome.Job, t JobTracker, height uint64) client.Job {
	out := client.Job{
		JobID: j.ID, LeaseID: j.LeaseID, OfferID: j.OfferID, Provider: j.Provider.String(), Consumer: j.Consumer.String(),
		NodeID: j.Node.String(), Status: rome.JobStatusName(j.Status), Outputs: []client.JobFile{},
		SubmitHeight: j.Height, SubmitTimeMs: j.TimeMs, SubmitEpoch: j.Epoch, Deadline: j.Deadline,
		Module: apiRef(j.Module), Inputs: apiFiles(j.Inputs), Args: strs(j.Args), Env: strs(j.Env),
		GasLimit: j.GasLimit, MemoryLimit: j.MemoryLimit, OutputLimit: j.OutputLimit, Seed: j.Seed.String(), Height: height,
	}
	if !j.Stdin.IsZero() {
		in := apiRef(j.Stdin)
		out.Stdin = &in
	}
	if r := j.Result; r != nil {
		code := r.ExitCode
		so, se := apiRef(r.Stdout), apiRef(r.Stderr)
		out.Class, out.ExitCode, out.GasUsed, out.OutputRoot = ledger.JobClassName(r.Class), &code, r.GasUsed, r.OutputRoot.String()
		out.BytesIn, out.BytesOut, out.Outputs, out.Stdout, out.Stderr = r.BytesIn, r.BytesOut, apiFiles(r.Outputs), &so, &se
		out.ResultHeight, out.ResultEpoch, out.ChallengeEnd = r.Height, r.Epoch, r.ChallengeEnd
		out.EnergyMJ, out.EnergySource = r.Energy, ledger.EnergySourceName(r.EnergySource)
	}
	if d := j.Dispute; d != nil {
		c := &client.JobChallenge{Challenger: d.Challenger.String(), Deposit: apiCoins(d.Deposit), Claim: apiOutcome(d.Claim),
			Height: d.Height, VerdictEnd: d.VerdictEnd, Committee: []string{}, Votes: []client.JobVote{}, Outcome: d.Outcome,
			Slashed: apiCoins(d.Slashed), Refund: apiCoins(d.Refund), Reward: apiCoins(d.Reward)}
		for _, a := range d.Committee {
			c.Committee = append(c.Committee, a.String())
		}
		for _, v := range d.Votes {
			c.Votes = append(c.Votes, client.JobVote{Voter: v.Voter.String(), Outcome: apiOutcome(v.Outcome), Height: v.Height,
				AgreesWithResult: j.Result != nil && v.Outcome == j.Result.Outcome()})
		}
		out.Challenge = c
	}
	if t != nil {
		if j.Status == rome.JobSubmitted && t.Running(j.ID) {
			out.Status = "running"
		}
		out.Verified = t.Verified(j.ID)
	}
	return out
}

// queryAddress parses an address query parameter ("" when absent).
func queryAddress(r *http.Request, name string) (ledger.Address, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return ledger.Address{}, nil
	}
	a, err := ledger.ParseAddress(s)
	if err != nil {
		return a, fmt.Errorf("kernel: %s: %w", name, err)
	}
	return a, nil
}

// queryUint parses a numeric query parameter (0 when absent).
func queryUint(r *http.Request, name string) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("kernel: %s %q: want a number", name, s)
	}
	return v, nil
}

// jobFilter reads GET /v1/jobs's query: lease, status (a ledger status,
// "running", or "all"), provider, consumer, node, before, limit. running
// is true for status=running (submitted, and running on this node).
func jobFilter(r *http.Request) (f rome.JobFilter, running bool, err error) {
	if f.Lease, err = queryUint(r, "lease"); err != nil {
		return
	}
	if f.Before, err = queryUint(r, "before"); err != nil {
		return
	}
	var limit uint64
	if limit, err = queryUint(r, "limit"); err != nil {
		return
	}
	f.Limit = int(min(limit, 1000))
	switch s := strings.TrimSpace(r.URL.Query().Get("status")); s {
	case "", "all":
	case "running":
		f.Status, running = rome.JobSubmitted, true
	default:
		if f.Status, err = rome.ParseJobStatus(s); err != nil {
			err = fmt.Errorf("kernel: status: %w (or running, all)", err)
			return
		}
	}
	if f.Provider, err = queryAddress(r, "provider"); err != nil {
		return
	}
	if f.Consumer, err = queryAddress(r, "consumer"); err != nil {
		return
	}
	f.Node, err = queryAddress(r, "node")
	return
}

func (n *Node) handleJobs(w http.ResponseWriter, r *http.Request) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	f, running, err := jobFilter(r)
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	h := n.store.Head().Height
	jobs, next, err := m.Jobs(st, f)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	out := client.JobList{Jobs: make([]client.Job, 0, len(jobs)), NextBefore: next}
	for i := range jobs {
		if running && !n.jobs.Running(jobs[i].ID) {
			continue
		}
		out.Jobs = append(out.Jobs, APIJob(&jobs[i], n.jobs, h))
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleJob(w http.ResponseWriter, r *http.Request) {
	h := n.store.Head().Height
	romeOne(n, w, r, "id", (*rome.Market).Job, func(j *rome.Job) client.Job { return APIJob(j, n.jobs, h) })
}

func (n *Node) handleProvider(w http.ResponseWriter, r *http.Request) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	addr, err := ledger.ParseAddress(r.PathValue("addr"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("kernel: provider: %w", err))
		return
	}
	h := n.store.Head().Height
	rec, err := m.ProviderRecord(st, addr)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	offers, err := m.Offers(st, 1000, func(o *rome.Offer) bool { return o.Owner == addr && !o.Node.IsZero() })
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	out := client.Provider{Address: addr.String(), Completed: rec.Completed, Failed: rec.Failed, TimedOut: rec.TimedOut,
		Slashed: rec.Slashed, StorageProven: rec.StorageProven, StorageMissed: rec.StorageMissed, FailureBps: rec.FailureBps(),
		Offers: []client.RomeOffer{}, Height: h}
	for i := range offers {
		out.Offers = append(out.Offers, n.apiOffer(&offers[i]))
	}
	writeJSON(w, http.StatusOK, out)
}

// handleLeaseUsage answers a lease's measured usage per epoch, from its
// first epoch to the current one (the last maxUsageEpochs), with the gas
// its jobs may still reserve.
func (n *Node) handleLeaseUsage(w http.ResponseWriter, r *http.Request) {
	m, st, ok := n.romeState(w)
	if !ok {
		return
	}
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	l, err := m.Lease(st, id)
	if err != nil {
		writeErr(w, romeStatus(err), fmt.Errorf("kernel: lease %d: %w", id, err))
		return
	}
	p, err := m.Params(st)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	clock, err := m.Clock(st)
	if err != nil {
		writeErr(w, romeStatus(err), err)
		return
	}
	var compute uint64
	for _, a := range l.Amounts {
		if a.Kind == rome.KindCompute {
			compute = a.Amount
		}
	}
	budget := compute * p.GasPerComputeUnit
	if p.GasPerComputeUnit != 0 && budget/p.GasPerComputeUnit != compute {
		budget = ^uint64(0)
	}
	out := client.LeaseUsage{LeaseID: l.ID, Epoch: clock.Epoch, GasPerComputeUnit: p.GasPerComputeUnit,
		BytesPerBandwidthUnit: p.BytesPerBandwidthUnit, Epochs: []client.MeteredEpoch{}}
	moved := n.jobs.Lease(l.ID)
	out.NodeBytesIn, out.NodeBytesOut = moved.In, moved.Out
	last := min(clock.Epoch, l.End-1)
	first := l.Start
	if last >= first && last-first >= maxUsageEpochs {
		first = last - maxUsageEpochs + 1
	}
	for e := first; e <= last && l.End > l.Start; e++ {
		mt, err := m.MeasuredUsage(st, l.ID, e)
		if err != nil {
			writeErr(w, romeStatus(err), err)
			return
		}
		used := mt.Gas + mt.Reserved
		if used < mt.Gas {
			used = ^uint64(0)
		}
		me := client.MeteredEpoch{Epoch: e, Gas: mt.Gas, Bytes: mt.Bytes, Reserved: mt.Reserved,
			Submitted: mt.Submitted, Results: mt.Results, BudgetGas: budget, RemainingGas: budget - min(used, budget),
			Settled: mt.Settled, PaidCompute: mt.PaidCompute, PaidBandwidth: mt.PaidBandwidth,
			EnergyMeasuredMJ: mt.EnergyMeasured, EnergyModeledMJ: mt.EnergyModeled, Meters: []client.MeterEpoch{}}
		if err := n.storageUsage(m, st, l, e, &me); err != nil {
			writeErr(w, romeStatus(err), err)
			return
		}
		out.Epochs = append(out.Epochs, me)
	}
	writeJSON(w, http.StatusOK, out)
}

// publishJobEvents sends a "job" stream event for each job event of a
// transaction (txHash) or of a block's end (txHash "").
func (n *Node) publishJobEvents(height uint64, txHash string, evs []ledger.Event) {
	for i := range evs {
		e := &evs[i]
		if !strings.HasPrefix(e.Type, "job_") {
			continue
		}
		id, _ := strconv.ParseUint(attr(e, "job_id"), 10, 64)
		lease, _ := strconv.ParseUint(attr(e, "lease_id"), 10, 64)
		out := client.JobEvent{Type: e.Type, Height: height, TxHash: txHash, JobID: id, LeaseID: lease, Node: attr(e, "node"),
			Status: attr(e, "status"), Attrs: apiEvents(evs[i : i+1])[0].Attrs}
		switch e.Type {
		case "job_submitted":
			out.Status = "submitted"
		case "job_challenged":
			out.Status = "challenged"
		case "job_slashed":
			out.Status = "slashed"
		case "job_timeout":
			out.Status = "timeout"
		}
		n.events.Publish("job", out)
	}
}
