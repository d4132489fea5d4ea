package rome

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"lukechampine.com/blake3"

	"github.com/sos-kernel/sos/ledger"
)

// GasJob is charged for each job transaction beyond its state access.
const GasJob = 20_000

// MaxJobGas is the largest job gas limit a job_submit may ask for: the
// most any executor meters (vm/meter.MaxGas; a kernel test keeps the two
// equal). A larger limit would be refused by every provider's executor,
// so the job could only time out: the market refuses it up front.
const MaxJobGas = 1<<53 - 1

// Job statuses. A job is open (it keeps its offer's bond) while it is
// submitted, challengeable (done or failed, within the challenge window)
// or challenged.
const (
	JobSubmitted  uint8 = 1 // waiting for its node's result
	JobDone       uint8 = 2 // exited with code 0
	JobFailed     uint8 = 3 // non-zero exit, trap, out of gas or a limit: the provider did its job
	JobTimeout    uint8 = 4 // no result by the deadline: the consumer pays nothing
	JobChallenged uint8 = 5 // a challenge waits for the committee's verdicts
	JobSlashed    uint8 = 6 // re-execution proved the result wrong
)

var jobStatusNames = [...]string{"", "submitted", "done", "failed", "timeout", "challenged", "slashed"}

// JobStatusName names a job status.
func JobStatusName(s uint8) string {
	if s > 0 && int(s) < len(jobStatusNames) {
		return jobStatusNames[s]
	}
	return fmt.Sprintf("status(%d)", s)
}

// ParseJobStatus maps a status name to its value.
func ParseJobStatus(name string) (uint8, error) {
	for i, n := range jobStatusNames {
		if i > 0 && n == name {
			return uint8(i), nil
		}
	}
	return 0, fmt.Errorf("rome: job status %q (want one of %s): %w", name, strings.Join(jobStatusNames[1:], ", "), ErrInvalid)
}

// Dispute outcomes.
const (
	DisputeUpheld   = "upheld"   // the committee's majority differs from the result: the provider is slashed
	DisputeRejected = "rejected" // the majority reproduced the result: the deposit goes to the provider
	DisputeLapsed   = "lapsed"   // no majority in time: the deposit returns
)

// JobRun is a job's result as its node reported it.
type JobRun struct {
	_            struct{}         `cbor:",toarray"`
	Class        ledger.JobClass  `json:"class"`
	ExitCode     int32            `json:"exit_code"`
	GasUsed      uint64           `json:"gas_used"`
	Outputs      []ledger.JobFile `json:"outputs"`
	Stdout       ledger.BlobRef   `json:"stdout"`
	Stderr       ledger.BlobRef   `json:"stderr"`
	OutputRoot   ledger.Hash      `json:"output_root"`
	BytesIn      uint64           `json:"bytes_in"`
	BytesOut     uint64           `json:"bytes_out"`
	Height       uint64           `json:"height"`        // block the result landed in
	Epoch        uint64           `json:"epoch"`         // epoch its usage is metered in
	ChallengeEnd uint64           `json:"challenge_end"` // last height a challenge is accepted at
	// Energy of the run in millijoules as the node gave it, and how it
	// knows: ledger.EnergyMeasured (a hardware counter) or
	// ledger.EnergyModeled (CPU time × declared watts). A node's figure is
	// recorded, not paid: energy is paid by meters.
	Energy       uint64 `json:"energy_mj"`
	EnergySource uint8  `json:"energy_source"`
}

// Outcome is what re-execution must reproduce.
func (r *JobRun) Outcome() ledger.JobOutcome {
	return ledger.JobOutcome{ExitCode: r.ExitCode, GasUsed: r.GasUsed, OutputRoot: r.OutputRoot, Stdout: r.Stdout.ID}
}

// status is what the result says of the run.
func (r *JobRun) status() uint8 {
	if r.Class == ledger.JobExited && r.ExitCode == 0 {
		return JobDone
	}
	return JobFailed
}

// JobVote is one committee member's verdict.
type JobVote struct {
	_       struct{}          `cbor:",toarray"`
	Voter   ledger.Address    `json:"voter"`
	Outcome ledger.JobOutcome `json:"outcome"`
	Height  uint64            `json:"height"`
}

// JobDispute is a challenge of a job's result and how it was decided.
type JobDispute struct {
	_          struct{}          `cbor:",toarray"`
	Challenger ledger.Address    `json:"challenger"`
	Deposit    ledger.Coins      `json:"deposit"`
	Claim      ledger.JobOutcome `json:"claim"`
	Height     uint64            `json:"height"`
	VerdictEnd uint64            `json:"verdict_end"` // last height a verdict is accepted at
	Committee  []ledger.Address  `json:"committee"`   // voters that re-execute, by address
	Votes      []JobVote         `json:"votes"`
	Outcome    string            `json:"outcome"` // "" while open, then upheld, rejected or lapsed
	Slashed    ledger.Coins      `json:"slashed"` // taken from the bond
	Refund     ledger.Coins      `json:"refund"`  // of the slashed amount, to the consumer for an already settled epoch
	Reward     ledger.Coins      `json:"reward"`  // of the slashed amount, to the challenger
}

// Job is a program run on a lease's provider node.
type Job struct {
	_           struct{}         `cbor:",toarray"`
	ID          uint64           `json:"job_id"`
	LeaseID     uint64           `json:"lease_id"`
	OfferID     uint64           `json:"offer_id"`
	Consumer    ledger.Address   `json:"consumer"`
	Provider    ledger.Address   `json:"provider"`
	Node        ledger.Address   `json:"node"` // account of the node key that must answer
	Module      ledger.BlobRef   `json:"module"`
	Inputs      []ledger.JobFile `json:"inputs"`
	Stdin       ledger.BlobRef   `json:"stdin"`
	Args        []string         `json:"args"`
	Env         []string         `json:"env"`
	GasLimit    uint64           `json:"gas_limit"`
	MemoryLimit uint64           `json:"memory_limit"`
	OutputLimit uint64           `json:"output_limit"`
	Seed        ledger.Hash      `json:"seed"` // random_get's seed
	Height      uint64           `json:"submit_height"`
	TimeMs      int64            `json:"submit_time_ms"` // the job's clock
	Epoch       uint64           `json:"submit_epoch"`   // its gas limit is reserved in this epoch's budget
	Deadline    uint64           `json:"deadline"`       // last height a result is accepted at
	Status      uint8            `json:"status"`
	Result      *JobRun          `json:"result"`
	Dispute     *JobDispute      `json:"dispute"`
	// PrevJob is the job submitted before it on the same lease in the same
	// epoch (0: the epoch's first). With Metered.LastJob it lists a
	// lease's jobs (Market.Jobs) without an index entry per job.
	PrevJob uint64 `json:"prev_job_id"`
}

// Metered is what a lease's jobs used in one epoch, as the runtime
// measured it, and the gas its running jobs have reserved.
type Metered struct {
	_             struct{} `cbor:",toarray"`
	Gas           uint64   `json:"gas"`      // used by the results that landed in the epoch (slashed jobs removed)
	Bytes         uint64   `json:"bytes"`    // moved for them, in and out
	Reserved      uint64   `json:"reserved"` // gas limits of jobs submitted in the epoch and still running
	Submitted     uint32   `json:"submitted"`
	Results       uint32   `json:"results"`
	Settled       bool     `json:"settled"`
	PaidCompute   uint64   `json:"paid_compute"` // units paid at settlement
	PaidBandwidth uint64   `json:"paid_bandwidth"`
	// Energy of the results that landed in the epoch, in millijoules, kept
	// apart by how their nodes knew it.
	EnergyMeasured uint64 `json:"energy_measured_mj"`
	EnergyModeled  uint64 `json:"energy_modeled_mj"`
	// Weighed is what the epoch's reward counts of these units for the
	// lease's provider (jobWeight, in tagJobWeight): the epoch's reward
	// is shared when the epoch ends, the epoch itself is paid when the
	// lease's settlement falls due.
	Weighed uint64 `json:"weighed"`
	// LastJob is the last job submitted on the lease in the epoch (0:
	// none); each job links to the one before it (Job.PrevJob).
	LastJob uint64 `json:"last_job_id"`
	// DueBy bounds the next deadlines of the jobs submitted in the epoch
	// (result, challenge window, verdicts): none of them is open after
	// it. It is raised where those deadlines are set, in this record's
	// writes (submit, result) or at a challenge, so that the end of the
	// lease (leaseOpenJobs) looks only at epochs whose jobs may be open.
	DueBy uint64 `json:"due_by"`
}

// RanJobs reports whether the lease ran jobs in the epoch: then settlement
// pays compute and bandwidth as measured, not as reported.
func (mt *Metered) RanJobs() bool { return mt.Submitted > 0 || mt.Results > 0 }

// ceilDiv is ⌈a/b⌉ for b > 0.
func ceilDiv(a, b uint64) uint64 {
	q := a / b
	if a%b != 0 {
		q++
	}
	return q
}

// MeasuredUnits converts metered usage into compute and bandwidth units,
// each capped at the lease's amount.
func MeasuredUnits(mt *Metered, p Params, l *Lease) (compute, bandwidth uint64) {
	compute = min(ceilDiv(mt.Gas, p.GasPerComputeUnit), amountOf(l.Amounts, KindCompute))
	bandwidth = min(ceilDiv(mt.Bytes, p.BytesPerBandwidthUnit), amountOf(l.Amounts, KindBandwidth))
	return compute, bandwidth
}

// jobWeight is what settlement would count for rewards of the units the
// runtime measured for lease l in an epoch: compute and bandwidth as
// MeasuredUnits, except a kind the lease's request pays by meter only
// (Lease.MeterKinds: no result reads the request). A meter reading of a
// kind replaces them too, but a reading marks the epoch to settle as soon
// as it ends, and that settlement corrects the weight: settleLease.
func jobWeight(mt *Metered, p Params, l *Lease) uint64 {
	if !mt.RanJobs() {
		return 0
	}
	c, b := MeasuredUnits(mt, p, l)
	if l.Metered(KindCompute) {
		c = 0
	}
	if l.Metered(KindBandwidth) {
		b = 0
	}
	return satAdd(c, b)
}

// reweigh sets the weight of lease l's jobs in epoch e for that epoch's
// reward (jobWeight): the per-provider sum the epoch's end reads
// (epochWork.jobWeights) changes by the difference. It is only called
// before e's reward is shared (at the end of e+1).
func (s *store) reweigh(p Params, l *Lease, e uint64, mt *Metered) error {
	wt := jobWeight(mt, p, l)
	if wt == mt.Weighed {
		return nil
	}
	k := rkey(tagJobWeight, u64(e), l.Provider[:])
	cur, err := s.getU64(k)
	if err != nil {
		return err
	}
	if cur < mt.Weighed {
		return fmt.Errorf("rome: lease %d: epoch %d: %d job units weighed for provider %s, the lease alone has %d: %w",
			l.ID, e, cur, l.Provider, mt.Weighed, ledger.ErrCorrupt)
	}
	cur = cur - mt.Weighed + wt
	mt.Weighed = wt
	if cur == 0 {
		return s.del(k)
	}
	return s.setU64(k, cur)
}

// jobEpochs lists the epochs in [from, to) in which lease id ran jobs
// (a Metered record that RanJobs), ascending.
func (s *store) jobEpochs(id, from, to uint64) ([]uint64, error) {
	if from >= to {
		return nil, nil
	}
	var out []uint64
	err := s.eachMetered(id, rkey(tagMetered, u64(id), u64(from)), rkey(tagMetered, u64(id), u64(to)), false, func(e uint64, mt *Metered) {
		if mt.RanJobs() {
			out = append(out, e)
		}
	})
	return out, err
}

// eachMetered calls fn with every Metered record of lease id whose key is
// in [start, end), by epoch (reverse: newest first): one range read of
// the lease's records, which are keyed by lease then epoch.
func (s *store) eachMetered(id uint64, start, end []byte, reverse bool, fn func(e uint64, mt *Metered)) error {
	prefix := rkey(tagMetered, u64(id))
	var derr error
	err := s.st.Iterate(start, end, reverse, func(k, v []byte) bool {
		if len(k) != len(prefix)+8 {
			return true
		}
		var mt Metered
		if derr = s.decode(v, &mt); derr != nil {
			return false
		}
		fn(binary.BigEndian.Uint64(k[len(prefix):]), &mt)
		return true
	})
	if err == nil {
		err = derr
	}
	return err
}

// ProviderRecord counts how a provider's jobs ended.
type ProviderRecord struct {
	_         struct{} `cbor:",toarray"`
	Completed uint64   `json:"completed"` // exit code 0
	Failed    uint64   `json:"failed"`    // the program failed; the provider did its job
	TimedOut  uint64   `json:"timed_out"`
	Slashed   uint64   `json:"slashed"`
	// Storage: holding-epochs proven and missed.
	StorageProven uint64 `json:"storage_proven"`
	StorageMissed uint64 `json:"storage_missed"`
}

// FailureBps is the share of a provider's jobs that timed out or were
// slashed, in basis points (0 without jobs).
func (r *ProviderRecord) FailureBps() uint32 {
	total := satAdd(satAdd(r.Completed, r.Failed), satAdd(r.TimedOut, r.Slashed))
	return bps(satAdd(r.TimedOut, r.Slashed), total)
}

// OutputRoot is the root a job result commits to: BLAKE3 over the outputs
// sorted by path, each as (path length u16 | path | blob id | size u64),
// then stdout and stderr as (blob id | size), integers big-endian, after a
// domain prefix and the output count. The executor, the verifier, the CLI
// and the chain all compute it here.
func OutputRoot(outputs []ledger.JobFile, stdout, stderr ledger.BlobRef) ledger.Hash {
	sorted := slices.Clone(outputs)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	h := blake3.New(32, nil)
	var buf [8]byte
	h.Write([]byte("sos/job/output-root/v1"))
	h.Write(binary.BigEndian.AppendUint32(buf[:0], uint32(len(sorted))))
	for _, f := range sorted {
		h.Write(binary.BigEndian.AppendUint16(buf[:0], uint16(len(f.Name))))
		h.Write([]byte(f.Name))
		h.Write(f.ID[:])
		h.Write(binary.BigEndian.AppendUint64(buf[:0], f.Size))
	}
	for _, r := range []ledger.BlobRef{stdout, stderr} {
		h.Write(r.ID[:])
		h.Write(binary.BigEndian.AppendUint64(buf[:0], r.Size))
	}
	var root ledger.Hash
	h.Sum(root[:0])
	return root
}

// JobSeed is the seed of a job's random_get: SHA-256 over the chain id,
// the job id and the hash of the transaction that submitted it.
func JobSeed(chainID string, id uint64, txHash ledger.Hash) ledger.Hash {
	b := []byte("sos/job/seed\x00" + chainID + "\x00")
	b = binary.BigEndian.AppendUint64(b, id)
	return sha256.Sum256(append(b, txHash[:]...))
}

// store helpers.

func (s *store) job(id uint64) (*Job, error) {
	var j Job
	ok, err := s.get(rkey(tagJob, u64(id)), &j)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("rome: job %d: %w", id, ErrNotFound)
	}
	return &j, nil
}

// JobKey is the state key of job id's record (a Job in the ledger's
// canonical encoding): what a state proof of a job proves, for a worker
// that holds no state of its own (kernel/worker.go).
func JobKey(id uint64) []byte { return rkey(tagJob, u64(id)) }

func (s *store) putJob(j *Job) error { return s.put(rkey(tagJob, u64(j.ID)), j) }

func (s *store) metered(lease, epoch uint64) (*Metered, error) {
	var mt Metered
	_, err := s.get(rkey(tagMetered, u64(lease), u64(epoch)), &mt)
	return &mt, err
}

func (s *store) putMetered(lease, epoch uint64, mt *Metered) error {
	return s.put(rkey(tagMetered, u64(lease), u64(epoch)), mt)
}

func (s *store) provider(a ledger.Address) (*ProviderRecord, error) {
	var r ProviderRecord
	_, err := s.get(rkey(tagProvider, a[:]), &r)
	return &r, err
}

// updateProvider changes a provider's record.
func (s *store) updateProvider(a ledger.Address, f func(*ProviderRecord)) error {
	r, err := s.provider(a)
	if err != nil {
		return err
	}
	f(r)
	return s.put(rkey(tagProvider, a[:]), r)
}

var dueCountKey = rkey(tagSeq, []byte("jobs_due"))

// OfferIDOfKey reports whether state key k is an offer's record, and
// whose: a node that follows the offers naming nodes re-reads only those
// a block wrote.
func OfferIDOfKey(k []byte) (uint64, bool) {
	if len(k) != 10 || k[0] != ledger.PrefixRome || k[1] != tagOffer {
		return 0, false
	}
	return binary.BigEndian.Uint64(k[2:]), true
}

// addDue schedules job id for the end of block h.
func (s *store) addDue(h, id uint64) error {
	n, err := s.getU64(dueCountKey)
	if err != nil {
		return err
	}
	if err := s.setU64(dueCountKey, n+1); err != nil {
		return err
	}
	return s.setRaw(rkey(tagJobDue, u64(h), u64(id)), one)
}

func (s *store) delDue(h, id uint64) error {
	n, err := s.getU64(dueCountKey)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("rome: job %d: deadline count is zero: %w", id, ledger.ErrCorrupt)
	}
	if err := s.setU64(dueCountKey, n-1); err != nil {
		return err
	}
	return s.del(rkey(tagJobDue, u64(h), u64(id)))
}

// moveDue moves job id's next deadline from height from to height to: the
// count of scheduled deadlines stays, so it is neither read nor written.
func (s *store) moveDue(from, to, id uint64) error {
	if from == to {
		return nil
	}
	if err := s.del(rkey(tagJobDue, u64(from), u64(id))); err != nil {
		return err
	}
	return s.setRaw(rkey(tagJobDue, u64(to), u64(id)), one)
}

// jobEnv is what the job rules need besides the job: the store, accounts,
// parameters and a place for events. Transactions and the end of a block
// both build one.
type jobEnv struct {
	m      *Market
	s      *store
	acc    *ledger.Accounts
	p      Params
	height uint64
	events *[]ledger.Event
}

func (e *jobEnv) emit(typ string, kv ...string) {
	*e.events = append(*e.events, ledger.NewEvent(typ, kv...))
}

func (t *Tx) jobEnv(m *Market) (*jobEnv, error) {
	s := t.store(m)
	p, err := s.params(m.gen)
	if err != nil {
		return nil, err
	}
	return &jobEnv{m: m, s: s, acc: t.accounts(m), p: p, height: t.Height, events: &t.Events}, nil
}

// jobAttrs are the attributes every job event carries: what a node's
// executor and verifier need to find the job and react.
func jobAttrs(j *Job, kv ...string) []string {
	return append([]string{"job_id", strconv.FormatUint(j.ID, 10), "lease_id", strconv.FormatUint(j.LeaseID, 10),
		"offer_id", strconv.FormatUint(j.OfferID, 10), "node", j.Node.String(), "consumer", j.Consumer.String(),
		"provider", j.Provider.String()}, kv...)
}

func (m *Market) submitJob(tx *Tx, p *ledger.JobSubmit) (any, error) {
	if err := tx.Gas.Consume(GasJob, "job submit"); err != nil {
		return nil, err
	}
	e, err := tx.jobEnv(m)
	if err != nil {
		return nil, err
	}
	s, params := e.s, e.p
	l, err := s.lease(p.LeaseID)
	if err != nil {
		return nil, err
	}
	if l.Consumer != tx.Sender {
		return nil, fmt.Errorf("rome: lease %d belongs to %s: only its consumer submits jobs: %w", l.ID, l.Consumer, ErrUnauthorized)
	}
	clock, err := s.clock(params)
	if err != nil {
		return nil, err
	}
	if l.Status != StatusActive || clock.Epoch < l.Start || clock.Epoch >= l.End {
		return nil, fmt.Errorf("rome: lease %d runs epochs %d-%d (%s), now %d: %w", l.ID, l.Start, l.End-1, StatusName(l.Status), clock.Epoch, ErrInvalid)
	}
	o, err := s.offer(l.OfferID)
	if err != nil {
		return nil, err
	}
	if !o.RunsJobs() {
		return nil, fmt.Errorf("rome: lease %d: offer %d names no node or holds no bond: it runs no jobs: %w", l.ID, o.ID, ErrInvalid)
	}
	compute := amountOf(l.Amounts, KindCompute)
	if compute == 0 {
		return nil, fmt.Errorf("rome: lease %d has no compute to run jobs with: %w", l.ID, ErrInvalid)
	}
	switch {
	case p.GasLimit > MaxJobGas:
		return nil, fmt.Errorf("rome: job gas limit %d above %d, the most an executor meters: %w", p.GasLimit, uint64(MaxJobGas), ErrInvalid)
	case p.Module.Size > params.MaxJobModuleBytes:
		return nil, fmt.Errorf("rome: job module of %d bytes above max_job_module_bytes %d: %w", p.Module.Size, params.MaxJobModuleBytes, ErrInvalid)
	case p.MemoryLimit > params.MaxJobMemoryBytes:
		return nil, fmt.Errorf("rome: job memory limit %d above max_job_memory_bytes %d: %w", p.MemoryLimit, params.MaxJobMemoryBytes, ErrInvalid)
	case p.OutputLimit > params.MaxJobOutputBytes:
		return nil, fmt.Errorf("rome: job output limit %d above max_job_output_bytes %d: %w", p.OutputLimit, params.MaxJobOutputBytes, ErrInvalid)
	}
	if _, err := inputBytes(p.Module, p.Inputs, p.Stdin); err != nil {
		return nil, err
	}
	// The result must land while the lease runs: by the last block of its
	// last epoch at the latest.
	last := satAdd(clock.EndHeight, satMul(l.End-1-clock.Epoch, params.EpochBlocks))
	if last <= tx.Height {
		return nil, fmt.Errorf("rome: lease %d ends with this block: no block is left for a result: %w", l.ID, ErrInvalid)
	}
	// The gas limit is reserved in this epoch's budget until the job ends.
	budget := satMul(compute, params.GasPerComputeUnit)
	mt, err := s.metered(l.ID, clock.Epoch)
	if err != nil {
		return nil, err
	}
	used := satAdd(mt.Gas, mt.Reserved)
	if used >= budget || p.GasLimit > budget-used {
		return nil, fmt.Errorf("rome: lease %d: gas limit %d above the epoch's remaining compute budget %d (of %d): %w",
			l.ID, p.GasLimit, budget-min(used, budget), budget, ErrInvalid)
	}
	id, err := s.next("job")
	if err != nil {
		return nil, err
	}
	j := &Job{ID: id, LeaseID: l.ID, OfferID: o.ID, Consumer: l.Consumer, Provider: l.Provider, Node: o.Node,
		Module: p.Module, Inputs: p.Inputs, Stdin: p.Stdin, Args: p.Args, Env: p.Env,
		GasLimit: p.GasLimit, MemoryLimit: p.MemoryLimit, OutputLimit: p.OutputLimit,
		Seed: JobSeed(m.chainID, id, tx.TxHash), Height: tx.Height, TimeMs: tx.TimeMs, Epoch: clock.Epoch,
		Deadline: min(satAdd(tx.Height, params.JobTimeoutBlocks), last), Status: JobSubmitted, PrevJob: mt.LastJob}
	// The lease's jobs are listed through its Metered records (LastJob,
	// then each job's PrevJob): the record is written here anyway.
	mt.Reserved += p.GasLimit
	mt.Submitted++
	mt.LastJob = id
	mt.DueBy = max(mt.DueBy, j.Deadline)
	if err := s.putMetered(l.ID, clock.Epoch, mt); err != nil {
		return nil, err
	}
	if err := s.putJob(j); err != nil {
		return nil, err
	}
	if err := s.addDue(j.Deadline, id); err != nil {
		return nil, err
	}
	if err := s.setRaw(rkey(tagJobQueue, j.Node[:], u64(id)), one); err != nil {
		return nil, err
	}
	// The offer is not written: while the lease is active it keeps the
	// bond, and its jobs still open when it ends are counted then
	// (leaseOpenJobs).
	e.emit("job_submitted", jobAttrs(j, "gas_limit", strconv.FormatUint(j.GasLimit, 10), "deadline", strconv.FormatUint(j.Deadline, 10),
		"module", j.Module.ID.String())...)
	return map[string]any{"job_id": id, "deadline": j.Deadline, "node": j.Node, "seed": j.Seed}, nil
}

// inputBytes is the size of everything a job reads: module, inputs, stdin.
func inputBytes(module ledger.BlobRef, inputs []ledger.JobFile, stdin ledger.BlobRef) (uint64, error) {
	n, err := ledger.AddUint64(module.Size, stdin.Size)
	for _, f := range inputs {
		if err != nil {
			break
		}
		n, err = ledger.AddUint64(n, f.Size)
	}
	if err != nil {
		return 0, fmt.Errorf("rome: job input sizes: %w", err)
	}
	return n, nil
}

func (m *Market) jobResult(tx *Tx, p *ledger.JobResult) (any, error) {
	if err := tx.Gas.Consume(GasJob, "job result"); err != nil {
		return nil, err
	}
	e, err := tx.jobEnv(m)
	if err != nil {
		return nil, err
	}
	s, params := e.s, e.p
	j, err := s.job(p.JobID)
	if err != nil {
		return nil, err
	}
	if tx.Sender != j.Node {
		return nil, fmt.Errorf("rome: job %d runs on node %s: %w", j.ID, j.Node, ErrUnauthorized)
	}
	if j.Status != JobSubmitted {
		if j.Result != nil {
			return nil, fmt.Errorf("rome: job %d already has a result: %w", j.ID, ErrInvalid)
		}
		return nil, fmt.Errorf("rome: job %d is %s: %w", j.ID, JobStatusName(j.Status), ErrInvalid)
	}
	l, err := s.lease(j.LeaseID)
	if err != nil {
		return nil, err
	}
	clock, err := s.clock(params)
	if err != nil {
		return nil, err
	}
	if tx.Height > j.Deadline || clock.Epoch >= l.End {
		return nil, fmt.Errorf("rome: job %d: result after its deadline (height %d, lease %d ended with epoch %d): %w", j.ID, j.Deadline, l.ID, l.End-1, ErrInvalid)
	}
	if p.GasUsed > j.GasLimit {
		return nil, fmt.Errorf("rome: job %d: gas used %d above its limit %d: %w", j.ID, p.GasUsed, j.GasLimit, ErrInvalid)
	}
	var outBytes uint64
	for _, f := range p.Outputs {
		if outBytes, err = ledger.AddUint64(outBytes, f.Size); err != nil || outBytes > j.OutputLimit {
			return nil, fmt.Errorf("rome: job %d: outputs above the output limit %d: %w", j.ID, j.OutputLimit, ErrInvalid)
		}
	}
	if OutputRoot(p.Outputs, p.Stdout, p.Stderr) != p.OutputRoot {
		return nil, fmt.Errorf("rome: job %d: output root %s is not the root of the outputs listed: %w", j.ID, p.OutputRoot, ErrInvalid)
	}
	// The data plane cannot move more for a job than the job's data (a
	// cached module or input moves nothing).
	in, err := inputBytes(j.Module, j.Inputs, j.Stdin)
	if err != nil {
		return nil, err
	}
	out := satAdd(outBytes, p.Stdout.Size+p.Stderr.Size) // each log ≤ MaxJobLogBytes
	if p.BytesIn > in || p.BytesOut > out {
		return nil, fmt.Errorf("rome: job %d: %d bytes in and %d out, more than its data (%d in, %d out): %w", j.ID, p.BytesIn, p.BytesOut, in, out, ErrInvalid)
	}
	// Release the reservation; meter the usage in the result's epoch.
	challengeEnd := satAdd(tx.Height, params.JobChallengeBlocks)
	if err := e.release(j, challengeEnd); err != nil {
		return nil, err
	}
	mt, err := s.metered(l.ID, clock.Epoch)
	if err != nil {
		return nil, err
	}
	mt.Gas = satAdd(mt.Gas, p.GasUsed)
	mt.Bytes = satAdd(mt.Bytes, satAdd(p.BytesIn, p.BytesOut))
	mt.Results++
	switch p.EnergySource {
	case ledger.EnergyMeasured:
		mt.EnergyMeasured = satAdd(mt.EnergyMeasured, p.Energy)
	case ledger.EnergyModeled:
		mt.EnergyModeled = satAdd(mt.EnergyModeled, p.Energy)
	}
	// The epoch is paid when the lease's settlement falls due; its
	// reward weighs the measured units when the epoch ends.
	if err := s.reweigh(params, l, clock.Epoch, mt); err != nil {
		return nil, err
	}
	if err := s.putMetered(l.ID, clock.Epoch, mt); err != nil {
		return nil, err
	}
	run := &JobRun{Class: p.Class, ExitCode: p.ExitCode, GasUsed: p.GasUsed, Outputs: p.Outputs, Stdout: p.Stdout, Stderr: p.Stderr,
		OutputRoot: p.OutputRoot, BytesIn: p.BytesIn, BytesOut: p.BytesOut, Height: tx.Height, Epoch: clock.Epoch,
		ChallengeEnd: challengeEnd, Energy: p.Energy, EnergySource: p.EnergySource}
	j.Result, j.Status = run, run.status()
	if err := s.updateProvider(j.Provider, func(r *ProviderRecord) {
		if j.Status == JobDone {
			r.Completed++
		} else {
			r.Failed++
		}
	}); err != nil {
		return nil, err
	}
	if err := s.moveDue(j.Deadline, run.ChallengeEnd, j.ID); err != nil {
		return nil, err
	}
	if err := s.del(rkey(tagJobQueue, j.Node[:], u64(j.ID))); err != nil {
		return nil, err
	}
	if err := s.putJob(j); err != nil {
		return nil, err
	}
	e.emit("job_result", jobAttrs(j, "status", JobStatusName(j.Status), "class", ledger.JobClassName(run.Class),
		"exit_code", strconv.FormatInt(int64(run.ExitCode), 10), "gas_used", strconv.FormatUint(run.GasUsed, 10),
		"output_root", run.OutputRoot.String(), "challenge_end", strconv.FormatUint(run.ChallengeEnd, 10),
		"energy_mj", strconv.FormatUint(run.Energy, 10), "energy_source", ledger.EnergySourceName(run.EnergySource))...)
	return map[string]any{"job_id": j.ID, "status": JobStatusName(j.Status), "challenge_end": run.ChallengeEnd}, nil
}

// release frees a job's gas reservation in its submit epoch, whose
// record's DueBy is raised to the job's next deadline due (0: none).
func (e *jobEnv) release(j *Job, due uint64) error {
	mt, err := e.s.metered(j.LeaseID, j.Epoch)
	if err != nil {
		return err
	}
	mt.Reserved -= min(mt.Reserved, j.GasLimit)
	mt.DueBy = max(mt.DueBy, due)
	return e.s.putMetered(j.LeaseID, j.Epoch, mt)
}

// dueUntil raises the DueBy of job j's submit epoch to height h: a
// challenge keeps the job open until its verdicts are due.
func (s *store) dueUntil(j *Job, h uint64) error {
	mt, err := s.metered(j.LeaseID, j.Epoch)
	if err != nil || mt.DueBy >= h {
		return err
	}
	mt.DueBy = h
	return s.putMetered(j.LeaseID, j.Epoch, mt)
}

// dueAt is the height of job j's next deadline, false when the job is no
// longer open (timed out, slashed, final, or its challenge decided).
func (j *Job) dueAt() (uint64, bool) {
	switch {
	case j.Status == JobSubmitted:
		return j.Deadline, true
	case j.Status == JobChallenged:
		return j.Dispute.VerdictEnd, true
	case (j.Status == JobDone || j.Status == JobFailed) && j.Dispute == nil:
		return j.Result.ChallengeEnd, true
	}
	return 0, false
}

// leaseOpenJobs counts the jobs of lease id that are still open (pending,
// challengeable or challenged) at height h: what its offer's bond must
// back once the lease has ended (Offer.OpenJobs). It reads the lease's
// Metered records (one range read) and follows the job chains only of
// the epochs whose DueBy is not past; a job is open while its deadline
// entry is scheduled.
func (s *store) leaseOpenJobs(id, h uint64) (uint32, error) {
	var heads []uint64
	if err := s.eachMetered(id, rkey(tagMetered, u64(id)), prefixEnd(rkey(tagMetered, u64(id))), false, func(_ uint64, mt *Metered) {
		if mt.LastJob != 0 && mt.DueBy >= h {
			heads = append(heads, mt.LastJob)
		}
	}); err != nil {
		return 0, err
	}
	var n uint32
	for _, jid := range heads {
		for jid != 0 {
			j, err := s.job(jid)
			if err != nil {
				return 0, err
			}
			if at, ok := j.dueAt(); ok && at >= h {
				sched, err := s.st.Get(rkey(tagJobDue, u64(at), u64(j.ID)))
				if err != nil {
					return 0, err
				}
				if sched != nil {
					n++
				}
			}
			jid = j.PrevJob
		}
	}
	return n, nil
}

// endLeaseJobs is what the end of lease l (its last epoch over, or moved
// away early) does for its jobs: those still open are counted on offer o,
// whose bond they keep until each ends (closeJob). Jobs of an active
// lease are not counted: the lease keeps the bond anyway, so job_submit
// and the end of a job leave the offer's record alone.
func (s *store) endLeaseJobs(l *Lease, o *Offer, h uint64) error {
	if o.Node.IsZero() {
		return nil // the offer runs no jobs
	}
	n, err := s.leaseOpenJobs(l.ID, h)
	if err != nil {
		return err
	}
	o.OpenJobs += n
	return nil
}

func (m *Market) challengeJob(tx *Tx, p *ledger.JobChallenge) (any, error) {
	if err := tx.Gas.Consume(GasJob, "job challenge"); err != nil {
		return nil, err
	}
	e, err := tx.jobEnv(m)
	if err != nil {
		return nil, err
	}
	s, params := e.s, e.p
	j, err := s.job(p.JobID)
	if err != nil {
		return nil, err
	}
	switch {
	case j.Dispute != nil:
		return nil, fmt.Errorf("rome: job %d was already challenged (by %s): %w", j.ID, j.Dispute.Challenger, ErrInvalid)
	case j.Status != JobDone && j.Status != JobFailed:
		return nil, fmt.Errorf("rome: job %d is %s: only a result can be challenged: %w", j.ID, JobStatusName(j.Status), ErrInvalid)
	case tx.Height > j.Result.ChallengeEnd:
		return nil, fmt.Errorf("rome: job %d: its challenge window closed at height %d: %w", j.ID, j.Result.ChallengeEnd, ErrInvalid)
	case tx.Sender == j.Provider || tx.Sender == j.Node:
		return nil, fmt.Errorf("rome: job %d: its provider cannot challenge it: %w", j.ID, ErrUnauthorized)
	case p.Outcome == j.Result.Outcome():
		return nil, fmt.Errorf("rome: job %d: the outcome claimed is the result's: nothing to dispute: %w", j.ID, ErrInvalid)
	}
	deposit, err := m.denoms.ParseCoins(params.JobChallengeDeposit)
	if err != nil {
		return nil, fmt.Errorf("rome: job_challenge_deposit: %w: %w", err, ErrInvalid)
	}
	if len(deposit) > 0 {
		if err := e.acc.Transfer(tx.Sender, DepositAccount, deposit); err != nil {
			return nil, fmt.Errorf("rome: job %d: challenge deposit %s: %w", j.ID, deposit, err)
		}
	}
	committee, err := m.committee(s, params, tx.PrevHash, j)
	if err != nil {
		return nil, err
	}
	d := &JobDispute{Challenger: tx.Sender, Deposit: deposit, Claim: p.Outcome, Height: tx.Height,
		VerdictEnd: satAdd(tx.Height, params.JobVerdictBlocks), Committee: committee, Votes: []JobVote{},
		Slashed: ledger.Coins{}, Refund: ledger.Coins{}, Reward: ledger.Coins{}}
	j.Dispute, j.Status = d, JobChallenged
	if err := s.moveDue(j.Result.ChallengeEnd, d.VerdictEnd, j.ID); err != nil {
		return nil, err
	}
	if err := s.dueUntil(j, d.VerdictEnd); err != nil {
		return nil, err
	}
	if err := s.setRaw(rkey(tagJobDisp, u64(j.ID)), one); err != nil {
		return nil, err
	}
	if err := s.putJob(j); err != nil {
		return nil, err
	}
	names := make([]string, len(committee))
	for i, a := range committee {
		names[i] = a.String()
	}
	e.emit("job_challenged", jobAttrs(j, "challenger", tx.Sender.String(), "committee", strings.Join(names, ","),
		"verdict_end", strconv.FormatUint(d.VerdictEnd, 10), "deposit", deposit.String())...)
	return map[string]any{"job_id": j.ID, "committee": committee, "verdict_end": d.VerdictEnd}, nil
}

// committee fixes who re-executes a challenged job: every voting member of
// the cluster when the job's gas limit is at most job_verify_all_gas,
// otherwise job_committee_size voters drawn by SHA-256(prev block hash |
// job id | address) ascending. It is sorted by address.
func (m *Market) committee(s *store, p Params, prev ledger.Hash, j *Job) ([]ledger.Address, error) {
	members, err := (ledger.Members{St: s.st, Codec: s.codec}).List()
	if err != nil {
		return nil, err
	}
	var voters []ledger.Address
	for _, mb := range members {
		if mb.Role == ledger.RoleVoter {
			voters = append(voters, mb.Key.Address())
		}
	}
	if len(voters) == 0 {
		return nil, fmt.Errorf("rome: job %d: the cluster has no voting member to re-execute it: %w", j.ID, ErrInvalid)
	}
	if j.GasLimit > p.JobVerifyAllGas && uint64(len(voters)) > p.JobCommitteeSize {
		score := func(a ledger.Address) []byte {
			b := append([]byte("sos/job/committee\x00"), prev[:]...)
			b = binary.BigEndian.AppendUint64(b, j.ID)
			h := sha256.Sum256(append(b, a[:]...))
			return h[:]
		}
		scores := make(map[ledger.Address][]byte, len(voters))
		for _, a := range voters {
			scores[a] = score(a)
		}
		sort.Slice(voters, func(x, y int) bool { return bytes.Compare(scores[voters[x]], scores[voters[y]]) < 0 })
		voters = voters[:p.JobCommitteeSize]
	}
	sort.Slice(voters, func(x, y int) bool { return bytes.Compare(voters[x][:], voters[y][:]) < 0 })
	return voters, nil
}

func (m *Market) jobVerdict(tx *Tx, p *ledger.JobVerdict) (any, error) {
	if err := tx.Gas.Consume(GasJob, "job verdict"); err != nil {
		return nil, err
	}
	e, err := tx.jobEnv(m)
	if err != nil {
		return nil, err
	}
	s := e.s
	j, err := s.job(p.JobID)
	if err != nil {
		return nil, err
	}
	if j.Status != JobChallenged {
		return nil, fmt.Errorf("rome: job %d is %s: no challenge waits for verdicts: %w", j.ID, JobStatusName(j.Status), ErrInvalid)
	}
	d := j.Dispute
	if !slices.Contains(d.Committee, tx.Sender) {
		return nil, fmt.Errorf("rome: job %d: %s is not on the challenge committee: %w", j.ID, tx.Sender, ErrUnauthorized)
	}
	if tx.Height > d.VerdictEnd {
		return nil, fmt.Errorf("rome: job %d: verdicts closed at height %d: %w", j.ID, d.VerdictEnd, ErrInvalid)
	}
	agree := 0
	for _, v := range d.Votes {
		if v.Voter == tx.Sender {
			return nil, fmt.Errorf("rome: job %d: %s already gave its verdict: %w", j.ID, tx.Sender, ErrInvalid)
		}
		if v.Outcome == p.Outcome {
			agree++
		}
	}
	d.Votes = append(d.Votes, JobVote{Voter: tx.Sender, Outcome: p.Outcome, Height: tx.Height})
	agree++
	e.emit("job_verdict", jobAttrs(j, "voter", tx.Sender.String(), "agrees_with_result", strconv.FormatBool(p.Outcome == j.Result.Outcome()),
		"votes", strconv.Itoa(len(d.Votes)), "committee_size", strconv.Itoa(len(d.Committee)))...)
	if 2*agree > len(d.Committee) {
		if err := e.resolve(j, &p.Outcome); err != nil {
			return nil, err
		}
	} else if err := s.putJob(j); err != nil {
		return nil, err
	}
	res := map[string]any{"job_id": j.ID, "votes": len(d.Votes), "status": JobStatusName(j.Status)}
	if d.Outcome != "" {
		res["outcome"] = d.Outcome
	}
	return res, nil
}

// resolve decides a challenge: majority is the outcome more than half of
// the committee reproduced, nil when verdicts ran out of time.
func (e *jobEnv) resolve(j *Job, majority *ledger.JobOutcome) error {
	s, d := e.s, j.Dispute
	switch {
	case majority == nil:
		d.Outcome = DisputeLapsed
		if err := e.pay(DepositAccount, d.Challenger, d.Deposit); err != nil {
			return err
		}
		j.Status = j.Result.status()
	case *majority == j.Result.Outcome():
		d.Outcome = DisputeRejected
		if err := e.pay(DepositAccount, j.Provider, d.Deposit); err != nil {
			return err
		}
		j.Status = j.Result.status()
	default:
		d.Outcome = DisputeUpheld
		if err := e.slash(j); err != nil {
			return err
		}
	}
	if err := s.delDue(d.VerdictEnd, j.ID); err != nil {
		return err
	}
	if err := s.del(rkey(tagJobDisp, u64(j.ID))); err != nil {
		return err
	}
	if err := s.putJob(j); err != nil {
		return err
	}
	e.emit("job_resolved", jobAttrs(j, "outcome", d.Outcome, "challenger", d.Challenger.String(), "status", JobStatusName(j.Status))...)
	return e.closeJob(j)
}

func (e *jobEnv) pay(from, to ledger.Address, c ledger.Coins) error {
	if len(c) == 0 {
		return nil
	}
	return e.acc.Transfer(from, to, c)
}

// slash punishes a provider proven wrong: job_slash_bps of its remaining
// bond is taken; out of it the consumer gets back what it already paid for
// the job (when the result's epoch is settled; otherwise the job's usage is
// simply not metered), the challenger gets the rest and its deposit back.
func (e *jobEnv) slash(j *Job) error {
	s, d, run := e.s, j.Dispute, j.Result
	o, err := s.offer(j.OfferID)
	if err != nil {
		return err
	}
	l, err := s.lease(j.LeaseID)
	if err != nil {
		return err
	}
	slashed := shareBps(o.Bond, e.p.JobSlashBps)
	o.Bond = subCoins(o.Bond, slashed)
	if o.Slashed, err = addCoins(o.Slashed, slashed); err != nil {
		return err
	}
	if err := s.put(rkey(tagOffer, u64(o.ID)), o); err != nil {
		return err
	}
	mt, err := s.metered(l.ID, run.Epoch)
	if err != nil {
		return err
	}
	mt.Gas -= min(mt.Gas, run.GasUsed)
	mt.Bytes -= min(mt.Bytes, satAdd(run.BytesIn, run.BytesOut))
	clock, err := s.clock(e.p)
	if err != nil {
		return err
	}
	if clock.Epoch <= run.Epoch+1 {
		// The result's epoch has not had its reward yet (the end of the
		// epoch after shares it): it no longer weighs the job.
		if err := s.reweigh(e.p, l, run.Epoch, mt); err != nil {
			return err
		}
	}
	cost := ledger.Coins{}
	if mt.Settled {
		c, b := MeasuredUnits(mt, e.p, l)
		dc, db := mt.PaidCompute-min(mt.PaidCompute, c), mt.PaidBandwidth-min(mt.PaidBandwidth, b)
		mt.PaidCompute, mt.PaidBandwidth = mt.PaidCompute-dc, mt.PaidBandwidth-db
		pay := map[string]uint64{}
		pay[e.m.KindDenom(KindCompute)] = dc * amountOf(l.Prices, KindCompute) // ≤ what was paid: no overflow
		pay[e.m.KindDenom(KindBandwidth)] = db * amountOf(l.Prices, KindBandwidth)
		if cost, err = coinsOf(pay); err != nil {
			return err
		}
	}
	if err := s.putMetered(l.ID, run.Epoch, mt); err != nil {
		return err
	}
	d.Slashed = slashed
	d.Refund = minCoins(cost, slashed)
	d.Reward = subCoins(slashed, d.Refund)
	if err := e.pay(BondAccount, j.Consumer, d.Refund); err != nil {
		return err
	}
	if err := e.pay(BondAccount, d.Challenger, d.Reward); err != nil {
		return err
	}
	if err := e.pay(DepositAccount, d.Challenger, d.Deposit); err != nil {
		return err
	}
	was := run.status()
	if err := s.updateProvider(j.Provider, func(r *ProviderRecord) {
		if was == JobDone {
			r.Completed--
		} else {
			r.Failed--
		}
		r.Slashed++
	}); err != nil {
		return err
	}
	j.Status = JobSlashed
	e.emit("job_slashed", jobAttrs(j, "challenger", d.Challenger.String(), "slashed", slashed.String(),
		"refund", d.Refund.String(), "reward", d.Reward.String())...)
	return nil
}

// closeJob records that a job no longer holds its offer's bond, and returns
// the bond if nothing else does. Only a job whose lease has ended was
// counted on the offer (endLeaseJobs); while the lease is active the
// offer is neither read nor written here.
func (e *jobEnv) closeJob(j *Job) error {
	l, err := e.s.lease(j.LeaseID)
	if err != nil {
		return err
	}
	if l.Status == StatusActive {
		return nil
	}
	o, err := e.s.offer(j.OfferID)
	if err != nil {
		return err
	}
	if o.OpenJobs == 0 {
		return fmt.Errorf("rome: offer %d: open job count is zero: %w", o.ID, ledger.ErrCorrupt)
	}
	o.OpenJobs--
	ev, err := releaseBond(e.acc, o)
	if err != nil {
		return err
	}
	if ev != nil {
		*e.events = append(*e.events, *ev)
	}
	return e.s.put(rkey(tagOffer, u64(o.ID)), o)
}

// jobsDue runs the deadlines that end at this block: jobs without a result
// time out, challenge windows close, challenges without a majority lapse.
//
// It reads only the index entries of this height: every deadline is at or
// after the block that schedules it (a job's deadline, challenge window
// and verdict window all end at or after the block of the transaction
// that sets them, and EndBlock runs after that block's transactions), and
// each is removed when it is run, so nothing is ever left below the
// current height. Reading from the start of the index instead would make
// the store step over the deletion of every deadline ever run (pebble
// keeps them as tombstones until a compaction drops them): a cost that
// grows with the jobs of the past, per block.
func (e *jobEnv) jobsDue() error {
	s := e.s
	n, err := s.getU64(dueCountKey)
	if err != nil || n == 0 {
		return err
	}
	prefix := rkey(tagJobDue)
	var due [][2]uint64
	if err := s.st.Iterate(rkey(tagJobDue, u64(e.height)), rkey(tagJobDue, u64(e.height+1)), false, func(k, v []byte) bool {
		if len(k) == len(prefix)+16 {
			due = append(due, [2]uint64{binary.BigEndian.Uint64(k[len(prefix):]), binary.BigEndian.Uint64(k[len(prefix)+8:])})
		}
		return true
	}); err != nil {
		return err
	}
	for _, d := range due {
		h, id := d[0], d[1]
		j, err := s.job(id)
		if err != nil {
			return err
		}
		switch {
		case j.Status == JobSubmitted && j.Deadline == h:
			if err := e.timeout(j); err != nil {
				return err
			}
		case (j.Status == JobDone || j.Status == JobFailed) && j.Dispute == nil && j.Result.ChallengeEnd == h:
			if err := s.delDue(h, id); err != nil {
				return err
			}
			e.emit("job_final", jobAttrs(j, "status", JobStatusName(j.Status))...)
			if err := e.closeJob(j); err != nil {
				return err
			}
		case j.Status == JobChallenged && j.Dispute.VerdictEnd == h:
			if err := e.resolve(j, nil); err != nil {
				return err
			}
		default:
			return fmt.Errorf("rome: job %d (%s) is due at height %d for nothing: %w", id, JobStatusName(j.Status), h, ledger.ErrCorrupt)
		}
	}
	return nil
}

// timeout ends a job whose node did not answer in time: its reservation
// is released and nothing of it is metered, so the consumer pays nothing.
func (e *jobEnv) timeout(j *Job) error {
	s := e.s
	if err := e.release(j, 0); err != nil {
		return err
	}
	if err := s.updateProvider(j.Provider, func(r *ProviderRecord) { r.TimedOut++ }); err != nil {
		return err
	}
	if err := s.delDue(j.Deadline, j.ID); err != nil {
		return err
	}
	if err := s.del(rkey(tagJobQueue, j.Node[:], u64(j.ID))); err != nil {
		return err
	}
	j.Status = JobTimeout
	if err := s.putJob(j); err != nil {
		return err
	}
	e.emit("job_timeout", jobAttrs(j, "deadline", strconv.FormatUint(j.Deadline, 10))...)
	return e.closeJob(j)
}
