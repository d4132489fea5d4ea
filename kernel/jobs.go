package kernel

import (
	"strconv"
	"sync"

	"github.com/sos-kernel/sos/ledger"
)

// JobTracker is what a node knows of jobs beyond the ledger: whether its
// executor is running one now, and what its verifier concluded when it
// re-executed one's result. The ledger says submitted, done, failed, ...;
// "running" and "verified" are facts of one node, shown by the API (GET
// /v1/jobs/{id}: status "running", verified true/false/null) and the TUI.
type JobTracker interface {
	// Running reports whether this node's executor is running job id.
	Running(id uint64) bool
	// Verified is this node's verdict on job id's result: nil when it did
	// not re-execute it, else whether its outcome matched the result.
	Verified(id uint64) *bool
}

// maxVerdictsKept bounds the verifier outcomes a JobRegistry remembers
// (the oldest are forgotten first: their jobs show verified null again).
const maxVerdictsKept = 1 << 16

// JobRegistry is the node's JobTracker, in memory (a restarted node has
// no job running and has verified nothing yet). The executor calls Start
// and Finish around each run, the verifier Verify after each
// re-execution, and the data plane Moved for each transfer; each also
// counts in the node's metrics. Safe for concurrent use.
type JobRegistry struct {
	m *Metrics

	mu       sync.Mutex
	running  map[uint64]struct{}
	verdicts map[uint64]bool
	order    []uint64 // verdicts' ids, oldest first (a ring of maxVerdictsKept)
	next     int

	leases     map[uint64]*LeaseBytes
	leaseOrder []uint64 // leases' ids, oldest first
}

func newJobRegistry(m *Metrics) *JobRegistry {
	return &JobRegistry{m: m, running: map[uint64]struct{}{}, verdicts: map[uint64]bool{}, leases: map[uint64]*LeaseBytes{}}
}

// Running implements JobTracker.
func (r *JobRegistry) Running(id uint64) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.running[id]
	return ok
}

// Verified implements JobTracker.
func (r *JobRegistry) Verified(id uint64) *bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.verdicts[id]
	if !ok {
		return nil
	}
	return &v
}

// Start records that the executor began running job id.
func (r *JobRegistry) Start(id uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.running[id]; !ok {
		r.running[id] = struct{}{}
		r.m.JobsRunning.Inc()
	}
}

// Finish records that the executor's run of job id ended, having executed
// gasUsed gas (0 when it did not execute: its blobs could not be fetched).
func (r *JobRegistry) Finish(id, gasUsed uint64) {
	r.mu.Lock()
	if _, ok := r.running[id]; ok {
		delete(r.running, id)
		r.m.JobsRunning.Dec()
	}
	r.mu.Unlock()
	r.m.JobGas.Add(float64(gasUsed))
}

// maxLeasesTracked bounds the leases whose data plane bytes a JobRegistry
// counts (the oldest lease seen is forgotten first).
const maxLeasesTracked = 1 << 14

// LeaseBytes is what this node's data plane moved for one lease's jobs
// since the node started: In fetched from other nodes (modules, inputs,
// stdin, outputs), Out served to them.
type LeaseBytes struct{ In, Out uint64 }

// Moved records bytes the data plane moved for a job of lease: in fetched
// by this node, out served by it (sos_job_bytes_total{direction}).
func (r *JobRegistry) Moved(lease, in, out uint64) {
	if in > 0 {
		r.m.JobBytes.WithLabelValues("in").Add(float64(in))
	}
	if out > 0 {
		r.m.JobBytes.WithLabelValues("out").Add(float64(out))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.leases[lease]
	if !ok {
		if len(r.leaseOrder) >= maxLeasesTracked {
			delete(r.leases, r.leaseOrder[0])
			r.leaseOrder = r.leaseOrder[1:]
		}
		b = &LeaseBytes{}
		r.leases[lease] = b
		r.leaseOrder = append(r.leaseOrder, lease)
	}
	b.In += in
	b.Out += out
}

// Lease is what the data plane moved for lease's jobs (zero if nothing,
// or if it was forgotten).
func (r *JobRegistry) Lease(lease uint64) LeaseBytes {
	r.mu.Lock()
	defer r.mu.Unlock()
	if b := r.leases[lease]; b != nil {
		return *b
	}
	return LeaseBytes{}
}

// Verify records the verifier's re-execution of job id: match is whether
// its outcome (exit code, gas, output root, stdout) equals the result's.
func (r *JobRegistry) Verify(id uint64, match bool) {
	r.m.JobVerifications.Inc()
	if !match {
		r.m.JobMismatches.Inc()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.verdicts[id]; !ok {
		if len(r.order) < maxVerdictsKept {
			r.order = append(r.order, id)
		} else {
			delete(r.verdicts, r.order[r.next])
			r.order[r.next] = id
			r.next = (r.next + 1) % maxVerdictsKept
		}
	}
	r.verdicts[id] = match
}

// isJobKind reports whether a payload kind is one of the job transactions.
func isJobKind(k ledger.PayloadKind) bool {
	return k >= ledger.KindJobSubmit && k <= ledger.KindJobVerdict
}

// jobEventStatus is the status a committed job event moves its job to, for
// the sos_jobs_total counter ("" for events that change no status, and for
// a resolved challenge that leaves the result standing: the job was
// counted done or failed when its result landed).
func jobEventStatus(e *ledger.Event) string {
	switch e.Type {
	case "job_submitted":
		return "submitted"
	case "job_result":
		return attr(e, "status")
	case "job_challenged":
		return "challenged"
	case "job_slashed":
		return "slashed"
	case "job_timeout":
		return "timeout"
	}
	return ""
}

// countJobEvents adds a block's job events to the metrics.
func (m *Metrics) countJobEvents(evs []ledger.Event) {
	for i := range evs {
		e := &evs[i]
		if s := jobEventStatus(e); s != "" {
			m.JobsByStatus.WithLabelValues(s).Inc()
		}
		if e.Type == "job_result" {
			if g, err := strconv.ParseUint(attr(e, "gas_used"), 10, 64); err == nil {
				m.JobResultGas.Add(float64(g))
			}
		}
	}
}

// attr is the value of an event's attribute key ("" if absent).
func attr(e *ledger.Event, key string) string {
	for _, a := range e.Attrs {
		if a.Key == key {
			return a.Value
		}
	}
	return ""
}
