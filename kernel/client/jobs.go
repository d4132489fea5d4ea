package client

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
)

// Workloads (jobs on a lease's provider node). Sizes and gas are plain
// numbers (bytes, gas units); blob ids and hashes are 64 hex characters;
// addresses are bech32.

// BlobRef names a blob and its size.
type BlobRef struct {
	ID   string `json:"blob_id"`
	Size uint64 `json:"size"`
}

// JobFile is a named blob: an input at /in/<name> or an output written at
// /out/<name>.
type JobFile struct {
	Name string `json:"name"`
	ID   string `json:"blob_id"`
	Size uint64 `json:"size"`
}

// Ref is the file's blob.
func (f JobFile) Ref() BlobRef { return BlobRef{ID: f.ID, Size: f.Size} }

// JobOutcome is what re-execution must reproduce: exit code, gas, output
// root and stdout. A challenge claims one; committee verdicts vote for one.
type JobOutcome struct {
	ExitCode   int32  `json:"exit_code"`
	GasUsed    uint64 `json:"gas_used"`
	OutputRoot string `json:"output_root"`
	Stdout     string `json:"stdout"` // blob id
}

// JobVote is one committee member's verdict on a challenged job.
type JobVote struct {
	Voter   string     `json:"voter"`
	Outcome JobOutcome `json:"outcome"`
	Height  uint64     `json:"height"`
	// AgreesWithResult is whether the voter reproduced the provider's result.
	AgreesWithResult bool `json:"agrees_with_result"`
}

// JobChallenge is a dispute of a job's result and how it was decided.
type JobChallenge struct {
	Challenger string     `json:"challenger"`
	Deposit    []Coin     `json:"deposit"`
	Claim      JobOutcome `json:"claim"`
	Height     uint64     `json:"height"`
	VerdictEnd uint64     `json:"verdict_end"` // last height a verdict is accepted at
	Committee  []string   `json:"committee"`
	Votes      []JobVote  `json:"votes"`
	// Outcome is "" while open, then upheld (the provider was slashed),
	// rejected (the result stood; the deposit went to the provider) or
	// lapsed (no majority in time; the deposit returned).
	Outcome string `json:"outcome,omitempty"`
	Slashed []Coin `json:"slashed"`
	Refund  []Coin `json:"refund"`
	Reward  []Coin `json:"reward"`
}

// Job is a job as GET /v1/jobs/{id} shows it: what was submitted, the
// result its node reported once there is one, a challenge if any, and
// what this node knows beyond the ledger (running, verified).
type Job struct {
	JobID    uint64 `json:"job_id"`
	LeaseID  uint64 `json:"lease_id"`
	OfferID  uint64 `json:"offer_id"`
	Provider string `json:"provider"`
	Consumer string `json:"consumer"`
	// NodeID is the account address of the key of the node that runs the
	// job (the lease's offer names it); only it may send the result.
	NodeID string `json:"node_id"`
	// Status is submitted, running (submitted, and this node's executor
	// runs it now), done (exit code 0), failed (non-zero exit, trap, out of
	// gas or a limit: the provider did its job), timeout (no result by the
	// deadline: the consumer pays nothing), challenged or slashed.
	Status string `json:"status"`
	// Result fields: zero (exit_code null) until the result lands.
	Class      string `json:"class,omitempty"` // exited, trapped, out_of_gas, limit_exceeded
	ExitCode   *int32 `json:"exit_code"`
	GasUsed    uint64 `json:"gas_used"`
	OutputRoot string `json:"output_root,omitempty"`
	BytesIn    uint64 `json:"bytes_in"`
	BytesOut   uint64 `json:"bytes_out"`
	// Energy of the run in millijoules and how the node knows it:
	// "measured" (a hardware energy counter), "modeled" (CPU time × the
	// node's declared watts) or "none".
	EnergyMJ     uint64    `json:"energy_mj"`
	EnergySource string    `json:"energy_source,omitempty"`
	Outputs      []JobFile `json:"outputs"`
	Stdout       *BlobRef  `json:"stdout"`
	Stderr       *BlobRef  `json:"stderr"`
	ResultHeight uint64    `json:"result_height"` // 0: no result yet
	ResultEpoch  uint64    `json:"result_epoch,omitempty"`
	ChallengeEnd uint64    `json:"challenge_end,omitempty"` // last height a challenge is accepted at
	// Verified is this node's verifier's verdict on the result: true when
	// its re-execution reproduced it, false when not, null when this node
	// did not re-execute it.
	Verified *bool `json:"verified"`
	// What was submitted.
	SubmitHeight uint64        `json:"submit_height"`
	SubmitTimeMs int64         `json:"submit_time_ms"` // the job's clock
	SubmitEpoch  uint64        `json:"submit_epoch"`
	Deadline     uint64        `json:"deadline"` // last height a result is accepted at
	Module       BlobRef       `json:"module"`
	Inputs       []JobFile     `json:"inputs"`
	Stdin        *BlobRef      `json:"stdin"`
	Args         []string      `json:"args"`
	Env          []string      `json:"env"`
	GasLimit     uint64        `json:"gas_limit"`
	MemoryLimit  uint64        `json:"memory_limit"`
	OutputLimit  uint64        `json:"output_limit"`
	Seed         string        `json:"seed"` // random_get's seed
	Challenge    *JobChallenge `json:"challenge"`
	// Height is the committed height the answer was read at.
	Height uint64 `json:"height"`
}

// HasResult reports whether the job's node reported a result.
func (j *Job) HasResult() bool { return j.ExitCode != nil }

// Outcome is the result's outcome (what a verifier must reproduce); ok is
// false without a result.
func (j *Job) Outcome() (o JobOutcome, ok bool) {
	if j.ExitCode == nil || j.Stdout == nil {
		return JobOutcome{}, false
	}
	return JobOutcome{ExitCode: *j.ExitCode, GasUsed: j.GasUsed, OutputRoot: j.OutputRoot, Stdout: j.Stdout.ID}, true
}

// JobList is a page of jobs, newest first; NextBefore, when not zero, is
// the Before of the next page.
type JobList struct {
	Jobs       []Job  `json:"jobs"`
	NextBefore uint64 `json:"next_before,omitempty"`
}

// JobFilter selects jobs; zero fields match everything.
type JobFilter struct {
	Lease    uint64
	Status   string // submitted, running, done, failed, timeout, challenged, slashed
	Provider string // address
	Consumer string // address
	Node     string // address of the executing node's key
	Before   uint64 // only ids below this (a page's NextBefore)
	Limit    int    // page size (node default 100, at most 1000)
}

func (f JobFilter) query() string {
	v := url.Values{}
	if f.Lease != 0 {
		v.Set("lease", strconv.FormatUint(f.Lease, 10))
	}
	for k, s := range map[string]string{"status": f.Status, "provider": f.Provider, "consumer": f.Consumer, "node": f.Node} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if f.Before != 0 {
		v.Set("before", strconv.FormatUint(f.Before, 10))
	}
	if f.Limit > 0 {
		v.Set("limit", strconv.Itoa(f.Limit))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// Provider is how a provider's jobs ended, from the ledger's record.
type Provider struct {
	Address   string `json:"address"`
	Completed uint64 `json:"completed"` // exit code 0
	Failed    uint64 `json:"failed"`    // the program failed; the provider did its job
	TimedOut  uint64 `json:"timed_out"`
	Slashed   uint64 `json:"slashed"`
	// Storage: holding-epochs proven and missed.
	StorageProven uint64 `json:"storage_proven"`
	StorageMissed uint64 `json:"storage_missed"`
	// FailureBps is the share of its jobs that timed out or were slashed,
	// in basis points.
	FailureBps uint32 `json:"failure_bps"`
	// Offers are the provider's offers that run jobs (name a node).
	Offers []RomeOffer `json:"offers"`
	Height uint64      `json:"height"`
}

// MeteredEpoch is what a lease's jobs used in one epoch as the runtime
// measured it, and what is left of its compute budget.
type MeteredEpoch struct {
	Epoch     uint64 `json:"epoch"`
	Gas       uint64 `json:"gas"`      // used by results that landed in the epoch
	Bytes     uint64 `json:"bytes"`    // moved for them, in and out
	Reserved  uint64 `json:"reserved"` // gas limits of jobs submitted in the epoch and still running
	Submitted uint32 `json:"submitted"`
	Results   uint32 `json:"results"`
	// BudgetGas is the lease's compute amount × gas_per_compute_unit;
	// RemainingGas what a new job may still reserve in the epoch.
	BudgetGas     uint64 `json:"budget_gas"`
	RemainingGas  uint64 `json:"remaining_gas"`
	Settled       bool   `json:"settled"`
	PaidCompute   uint64 `json:"paid_compute"` // units paid at settlement
	PaidBandwidth uint64 `json:"paid_bandwidth"`
	// Energy of the results that landed in the epoch (millijoules), kept
	// apart by how their nodes knew it.
	EnergyMeasuredMJ uint64 `json:"energy_measured_mj"`
	EnergyModeledMJ  uint64 `json:"energy_modeled_mj"`
	// Storage (a lease holding pinned blobs): bytes whose proofs were due
	// in the epoch, missed, and proven (what storage is paid for).
	StorageDue    uint64 `json:"storage_due_bytes"`
	StorageMissed uint64 `json:"storage_missed_bytes"`
	StorageProven uint64 `json:"storage_proven_bytes"`
	// Meters: what each metered kind's meter read in the epoch.
	Meters []MeterEpoch `json:"meters"`
}

// MeterEpoch is what a meter measured for a lease's kind in an epoch.
type MeterEpoch struct {
	Kind     string `json:"kind"`
	MeterID  uint64 `json:"meter_id"`
	Amount   uint64 `json:"amount"`  // in Measure
	Measure  string `json:"measure"` // energy: mJ
	Readings uint32 `json:"readings"`
}

// LeaseUsage is the measured usage of a lease, epoch by epoch up to the
// current one.
type LeaseUsage struct {
	LeaseID               uint64         `json:"lease_id"`
	Epoch                 uint64         `json:"epoch"` // the market's current epoch
	GasPerComputeUnit     uint64         `json:"gas_per_compute_unit"`
	BytesPerBandwidthUnit uint64         `json:"bytes_per_bandwidth_unit"`
	Epochs                []MeteredEpoch `json:"epochs"`
	// NodeBytesIn and NodeBytesOut are what the answering node's data
	// plane moved for the lease's jobs since it started: fetched from
	// other nodes and served to them (node-local, unlike the rest).
	NodeBytesIn  uint64 `json:"node_bytes_in"`
	NodeBytesOut uint64 `json:"node_bytes_out"`
}

// Current is the metered record of the market's current epoch (nil when
// the lease does not run in it).
func (u *LeaseUsage) Current() *MeteredEpoch {
	for i := range u.Epochs {
		if u.Epochs[i].Epoch == u.Epoch {
			return &u.Epochs[i]
		}
	}
	return nil
}

// JobEvent is the data of a "job" stream event: a job changed, in a
// transaction (TxHash set) or at the end of a block (a deadline passed, a
// challenge lapsed).
type JobEvent struct {
	Type    string `json:"type"` // job_submitted, job_result, job_challenged, job_verdict, job_resolved, job_slashed, job_final, job_timeout
	Height  uint64 `json:"height"`
	TxHash  string `json:"tx_hash,omitempty"`
	JobID   uint64 `json:"job_id"`
	LeaseID uint64 `json:"lease_id"`
	Node    string `json:"node"`
	Status  string `json:"status,omitempty"` // when the event says it
	Attrs   []Attr `json:"attrs"`
}

// BlockEndEvent is the data of a "block_end" stream event: what happened
// at the end of a block outside any transaction (jobs timing out,
// challenges lapsing, bonds returned).
type BlockEndEvent struct {
	Height uint64  `json:"height"`
	Events []Event `json:"events"`
}

// Jobs lists jobs, newest first, one page at a time.
func (c *Client) Jobs(ctx context.Context, f JobFilter) (*JobList, error) {
	var out JobList
	return &out, c.GetJSON(ctx, "/v1/jobs"+f.query(), &out)
}

// Job returns one job.
func (c *Client) Job(ctx context.Context, id uint64) (*Job, error) {
	var out Job
	return &out, c.GetJSON(ctx, fmt.Sprintf("/v1/jobs/%d", id), &out)
}

// Provider returns a provider's job record and its job-running offers.
func (c *Client) Provider(ctx context.Context, addr string) (*Provider, error) {
	var out Provider
	return &out, c.GetJSON(ctx, "/v1/providers/"+url.PathEscape(addr), &out)
}

// RomeLease returns one lease.
func (c *Client) RomeLease(ctx context.Context, id uint64) (*RomeLease, error) {
	var out RomeLease
	return &out, c.GetJSON(ctx, fmt.Sprintf("/v1/rome/leases/%d", id), &out)
}

// RomeOffer returns one offer.
func (c *Client) RomeOffer(ctx context.Context, id uint64) (*RomeOffer, error) {
	var out RomeOffer
	return &out, c.GetJSON(ctx, fmt.Sprintf("/v1/rome/offers/%d", id), &out)
}

// LeaseUsage returns a lease's measured usage and remaining job budget.
func (c *Client) LeaseUsage(ctx context.Context, lease uint64) (*LeaseUsage, error) {
	var out LeaseUsage
	return &out, c.GetJSON(ctx, fmt.Sprintf("/v1/rome/leases/%d/usage", lease), &out)
}
