package kernel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/internal/failpoint"
	"github.com/sos-kernel/sos/kernel/jobrun"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
	"github.com/sos-kernel/sos/rome"
	"github.com/sos-kernel/sos/vm"
)

// The node side of jobs: what one node does about the jobs the ledger
// records, never deciding anything consensus decides. After every
// committed block (and once at start, so work pending across a restart
// resumes) the node looks at the committed state and
//
//   - runs the jobs waiting for its node key's result (Market.PendingJobs:
//     offers naming this key), fetching their blobs from its own store or
//     over the data plane, storing outputs, stdout and stderr in its blob
//     store and sending job_result signed with the node key (the executor);
//   - re-executes the results of jobs whose consumer is a key of its home's
//     keyring (job_verify: all, sampled or none) and challenges, with that
//     key, a result it does not reproduce (the verifier);
//   - re-executes the challenged jobs on whose committee its key sits and
//     sends job_verdict with the outcome it got (the committee duty).
//
// All three share job_concurrency slots; a run is never started twice at
// once. Everything here is node-local and in memory: a restarted node
// finds its work again in the ledger.

// Tasks the job loop runs, in priority order: verdicts have the shortest
// deadlines and decide disputes; results come next; verification last.
type taskKind uint8

const (
	taskVerdict taskKind = iota
	taskRun
	taskVerify
)

var taskNames = [...]string{"verdict", "run", "verify"}

type taskKey struct {
	kind taskKind
	id   uint64
}

type taskState uint8

const (
	taskQueued  taskState = iota // waiting for a slot (or its retry time)
	taskRunning                  // its goroutine runs
	taskSent                     // its transaction is in the mempool, waiting for a block
	taskDone                     // nothing more to do while the ledger still lists it
)

// jobTask is one piece of work of the job loop.
type jobTask struct {
	key      taskKey
	state    taskState
	cancel   context.CancelFunc
	attempts int
	retryAt  time.Time
	lastErr  error
	sent     *sentTx
}

// sentTx is a transaction a task sent: resent if it disappears from the
// mempool without its effect reaching the ledger.
type sentTx struct {
	key     *ledger.PrivateKey
	payload ledger.Payload
	hash    ledger.Hash
	height  uint64 // the head when it was sent
	tries   int
}

// Retry pacing of a task that failed (blobs missing, a full disk): from
// taskRetryMin doubling to taskRetryMax, until the job's deadline.
const (
	taskRetryMin = 500 * time.Millisecond
	taskRetryMax = 30 * time.Second
	// maxTxTries is how many times a task's transaction is sent before the
	// task gives up on it.
	maxTxTries = 3
	// scanLimit bounds the jobs of each queue one pass looks at.
	scanLimit = 256
	// keyringRefresh spaces the re-reads of the home's keyring.
	keyringRefresh = 5 * time.Second
)

// errPermanent marks a failure that trying again cannot fix (the job is
// beyond this node's caps, its outputs cannot be a result).
var errPermanent = errors.New("cannot be run on this node")

// verifyMode is the job_verify setting: the fraction of results verified.
type verifyMode struct{ fraction float64 }

func parseVerifyMode(s string) (verifyMode, error) {
	switch s {
	case "", "all":
		return verifyMode{1}, nil
	case "none":
		return verifyMode{0}, nil
	}
	if f, ok := strings.CutPrefix(s, "sample:"); ok {
		if v, err := strconv.ParseFloat(f, 64); err == nil && v > 0 && v <= 1 {
			return verifyMode{v}, nil
		}
	}
	return verifyMode{}, fmt.Errorf("job_verify %q: want all, none or sample:F with F in (0,1]", s)
}

// picks reports whether job id is re-executed. The draw hashes a secret of
// this node with the job id: the same answer at every look (a restart does
// not re-draw), and a provider cannot tell which results are checked.
func (m verifyMode) picks(salt [32]byte, id uint64) bool {
	switch {
	case m.fraction >= 1:
		return true
	case m.fraction <= 0:
		return false
	}
	h := sha256.Sum256(binary.BigEndian.AppendUint64(append([]byte("sos/job/verify-sample\x00"), salt[:]...), id))
	return float64(binary.BigEndian.Uint64(h[:8])) < m.fraction*math.Exp2(64)
}

// jobNode is the node's job loop (see above).
type jobNode struct {
	n       *Node
	log     *slog.Logger
	addr    ledger.Address // the node key's account
	slots   int
	maxData uint64
	verify  verifyMode
	salt    [32]byte
	vmCfg   JobVMConfig

	execMu sync.Mutex
	exec   jobrun.Executor // injected, or the JobVM made on first use
	ownVM  *JobVM

	wake chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	tasks    map[taskKey]*jobTask
	running  int
	verifyQ  map[uint64]struct{} // jobs whose result the verifier should look at
	fetching map[blob.ID]chan struct{}
	// live counts, by node account, the live offers that name it: the
	// workers a member accepts (worker policy); workers maps those that
	// linked to their node ids (workerIDs is the reverse). liveOffers is
	// the node each live offer names. They are kept up to date from the
	// offers each committed block changed (liveIDs, read by refreshLive);
	// liveFull asks for a full recount (at start, after a state sync).
	// liveSeen is the height of the last block afterCommit saw.
	live       map[ledger.Address]int
	liveOffers map[uint64]ledger.Address
	workers    map[ledger.Address]sosnet.PeerID
	workerIDs  map[sosnet.PeerID]ledger.Address
	liveIDs    map[uint64]struct{}
	liveFull   bool
	liveSeen   uint64
	// liveReads counts the offer records refreshLive read (a test sees
	// that a block costs what it changed, not the number of offers).
	liveReads int

	keys consumerKeys
}

func newJobNode(n *Node) (*jobNode, error) {
	cfg := n.opts.Config
	mode, err := parseVerifyMode(cfg.JobVerify)
	if err != nil {
		return nil, fmt.Errorf("kernel: config: %w", err)
	}
	s := &jobNode{n: n, log: n.log.With("part", "jobs"), addr: n.opts.NodeKey.Address(), slots: cfg.JobConcurrency,
		maxData: uint64(cfg.JobMaxData), verify: mode, exec: n.opts.JobExecutor,
		wake: make(chan struct{}, 1), tasks: map[taskKey]*jobTask{}, verifyQ: map[uint64]struct{}{},
		fetching: map[blob.ID]chan struct{}{}, live: map[ledger.Address]int{}, liveOffers: map[uint64]ledger.Address{},
		workers: map[ledger.Address]sosnet.PeerID{}, workerIDs: map[sosnet.PeerID]ledger.Address{}, liveIDs: map[uint64]struct{}{}, liveFull: true}
	if s.maxData == 0 {
		s.maxData = 4 << 30
	}
	// The sampling secret: derived from the node key, so it survives
	// restarts and is known to no one else.
	s.salt = sha256.Sum256(append([]byte("sos/job/verify-salt\x00"), n.opts.NodeKey.Seed()...))
	s.vmCfg = JobVMConfig{MaxModuleBytes: uint64(cfg.JobMaxModule), MaxMemoryBytes: uint64(cfg.JobMaxMemory), Logger: n.log}
	switch {
	case n.opts.JobCacheDir != "":
		s.vmCfg.CacheDir = n.opts.JobCacheDir
	case n.opts.FS == nil && n.opts.Home != "":
		s.vmCfg.CacheDir = filepath.Join(n.opts.Home, "data", "job-cache")
	}
	if n.opts.FS == nil && n.opts.Home != "" {
		s.keys.kr = keyring.Open(n.opts.Home)
	}
	return s, nil
}

// executor returns the job executor, creating the Jobs VM on first use.
func (s *jobNode) executor(ctx context.Context) (jobrun.Executor, error) {
	s.execMu.Lock()
	defer s.execMu.Unlock()
	if s.exec != nil {
		return s.exec, nil
	}
	x, err := NewJobVM(context.WithoutCancel(ctx), s.vmCfg)
	if err != nil {
		return nil, fmt.Errorf("kernel: job VM: %w", err)
	}
	s.exec, s.ownVM = x, x
	return x, nil
}

// close releases the Jobs VM (after run returned).
func (s *jobNode) close() error {
	s.execMu.Lock()
	defer s.execMu.Unlock()
	if s.ownVM == nil {
		return nil
	}
	err := s.ownVM.Close(context.Background())
	s.ownVM, s.exec = nil, nil
	return err
}

// poke wakes the job loop (never blocks).
func (s *jobNode) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// afterCommit notes what a committed block means for the job loop and
// wakes it. It runs on the commit path: it only reads the block.
func (s *jobNode) afterCommit(bb *BuiltBlock) {
	s.mu.Lock()
	s.noteOffers(bb)
	for i, r := range bb.Receipts {
		if r.Code != ledger.CodeOK || i >= len(bb.Included) {
			continue
		}
		if bb.Included[i].Tx.Payload.Kind() != ledger.KindJobResult {
			continue
		}
		for j := range r.Events {
			if e := &r.Events[j]; e.Type == "job_result" {
				if id, err := strconv.ParseUint(attr(e, "job_id"), 10, 64); err == nil {
					s.verifyQ[id] = struct{}{}
				}
			}
		}
	}
	s.mu.Unlock()
	s.poke()
}

// noteOffers notes the offers whose records bb wrote, for refreshLive to
// read again; a block that does not follow the last one seen (the store
// jumped: a state sync) or that carries no state changes asks for a full
// recount. Called with s.mu held.
func (s *jobNode) noteOffers(bb *BuiltBlock) {
	h := bb.Block.Header.Height
	if s.liveSeen != 0 && h != s.liveSeen+1 || bb.Prepared == nil {
		s.liveFull = true
	}
	s.liveSeen = h
	if bb.Prepared == nil || s.liveFull {
		return
	}
	for _, c := range bb.Prepared.Changes() {
		if id, ok := rome.OfferIDOfKey(c.Key); ok {
			s.liveIDs[id] = struct{}{}
		}
	}
}

// run is the job loop: a pass after every block, every second (retries,
// tasks that ended) and at start; it returns when ctx ends, once the
// tasks it started have (bounded: a run that makes no host call only
// notices at the end of its gas).
func (s *jobNode) run(ctx context.Context) error {
	if s.slots == 0 {
		s.log.Info("job_concurrency is 0: this node runs, verifies and re-executes no jobs")
	}
	s.resumeVerification()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		s.refreshLive()
		s.scan(ctx)
		select {
		case <-ctx.Done():
			done := make(chan struct{})
			go func() { s.wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				s.log.Warn("job runs still going at shutdown")
			}
			return nil
		case <-s.wake:
		case <-tick.C:
		}
	}
}

// candidate is a job a pass found work for. Its job is nil when the pass
// did not read the record (a task it could not start now anyway).
type candidate struct {
	key taskKey
	job *rome.Job
}

// scan is one pass: it lists the work the ledger asks of this node, drops
// the tasks whose work is gone (cancelling their runs), resends lost
// transactions and starts queued tasks while slots are free.
//
// A pass runs after every block and every task's end, so under load it
// must not cost per queued job: it lists the executor's queue by id
// (PendingJobIDs) only as far as the tasks it has and the ones it may
// start, and reads job records only for the tasks it may start now (as
// many as slots are free) and for the verifier's sent challenges (whose
// job may have left the verifiable state).
func (s *jobNode) scan(ctx context.Context) {
	m := s.n.chain.market
	if m == nil || s.slots == 0 {
		return
	}
	head := s.n.store.Head().Height
	st := ledger.NewState(s.n.store)
	var want []candidate
	if chal, err := m.ChallengedJobs(st, s.addr, scanLimit); err != nil {
		s.log.Warn("challenged jobs", "err", err)
	} else {
		for i := range chal {
			if j := &chal[i]; j.Dispute.VerdictEnd > head {
				want = append(want, candidate{taskKey{taskVerdict, j.ID}, j})
			}
		}
	}
	// The executor's queue, oldest first: as far as the run tasks this
	// node already has plus the ones it may start now (their jobs are the
	// oldest pending ones), so a long queue costs a pass nothing more.
	s.mu.Lock()
	limit := s.slots - s.running + 1
	for k := range s.tasks {
		if k.kind == taskRun {
			limit++
		}
	}
	s.mu.Unlock()
	limit = min(max(limit, 1), scanLimit)
	pend, err := m.PendingJobIDs(st, s.addr, limit)
	if err != nil {
		s.log.Warn("pending jobs", "err", err)
	}
	// Run tasks of jobs beyond a truncated listing are still pending.
	var listedTo uint64 = math.MaxUint64
	if len(pend) == limit {
		listedTo = pend[len(pend)-1]
	}
	now := time.Now()
	s.mu.Lock()
	ids := make([]uint64, 0, len(s.verifyQ))
	for id := range s.verifyQ {
		ids = append(ids, id)
	}
	// budget is how many records of startable tasks this pass reads.
	budget := s.slots - s.running - len(want)
	startable := func(k taskKey) bool {
		t := s.tasks[k]
		return t == nil || (t.state == taskQueued && !now.Before(t.retryAt))
	}
	var readRun, readVerify []uint64
	for _, id := range pend {
		if k := (taskKey{taskRun, id}); budget > 0 && startable(k) {
			budget--
			readRun = append(readRun, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		k := taskKey{taskVerify, id}
		if t := s.tasks[k]; t != nil && t.state == taskSent {
			readVerify = append(readVerify, id)
		} else if budget > 0 && startable(k) {
			budget--
			readVerify = append(readVerify, id)
		}
	}
	s.mu.Unlock()

	loaded := map[taskKey]*rome.Job{}
	for _, id := range readRun {
		j, err := m.Job(st, id)
		if err != nil {
			s.log.Warn("pending job", "job_id", id, "err", err)
			continue
		}
		loaded[taskKey{taskRun, id}] = j
	}
	for _, id := range pend {
		k := taskKey{taskRun, id}
		j, read := loaded[k]
		if read && j.Deadline <= head { // a result is accepted up to the deadline's block
			continue
		}
		want = append(want, candidate{k, j})
	}
	gone := map[uint64]bool{}
	for _, id := range readVerify {
		j, err := m.Job(st, id)
		if err != nil || !s.verifiable(j, head) {
			gone[id] = true
			continue
		}
		loaded[taskKey{taskVerify, id}] = j
	}
	for _, id := range ids {
		if !gone[id] {
			want = append(want, candidate{taskKey{taskVerify, id}, loaded[taskKey{taskVerify, id}]})
		}
	}
	if len(gone) > 0 {
		s.mu.Lock()
		for id := range gone {
			delete(s.verifyQ, id)
		}
		s.mu.Unlock()
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	wanted := make(map[taskKey]bool, len(want))
	for _, c := range want {
		wanted[c.key] = true
	}
	for k, t := range s.tasks {
		if wanted[k] || (k.kind == taskRun && k.id > listedTo) {
			continue
		}
		if t.state == taskRunning {
			t.cancel() // the job timed out, or its work landed another way
			continue
		}
		delete(s.tasks, k)
	}
	slices.SortStableFunc(want, func(a, b candidate) int {
		if a.key.kind != b.key.kind {
			return int(a.key.kind) - int(b.key.kind)
		}
		return 0
	})
	for _, c := range want {
		t := s.tasks[c.key]
		if t == nil && c.job == nil {
			continue // not read this pass: a task when it can start
		}
		if t == nil {
			t = &jobTask{key: c.key}
			s.tasks[c.key] = t
		}
		switch t.state {
		case taskSent:
			s.checkSentLocked(t, head)
			continue
		case taskQueued:
		default:
			continue
		}
		if c.job == nil || s.running >= s.slots || now.Before(t.retryAt) || ctx.Err() != nil {
			continue // a job whose record this pass did not read waits for the next
		}
		tctx, cancel := context.WithCancel(ctx)
		t.state, t.cancel = taskRunning, cancel
		s.running++
		s.wg.Add(1)
		go s.do(tctx, t, *c.job, head)
	}
}

// checkSentLocked resends a task's transaction that left the mempool while
// the ledger still asks for its work (dropped, or failed in a block), up to
// maxTxTries sends in all.
func (s *jobNode) checkSentLocked(t *jobTask, head uint64) {
	tx := t.sent
	if s.n.mempool.Lookup(tx.hash) != nil || head <= tx.height+1 {
		return
	}
	if tx.tries >= maxTxTries {
		s.log.Warn("job transaction not taken after retries; giving up", "task", taskNames[t.key.kind], "job_id", t.key.id, "kind", tx.payload.Kind())
		t.state = taskDone
		return
	}
	h, err := s.n.submitTxAs(context.Background(), tx.key, tx.payload)
	tx.tries++
	if err != nil {
		s.log.Warn("job transaction resend", "task", taskNames[t.key.kind], "job_id", t.key.id, "err", err)
		return
	}
	tx.hash, tx.height = h, head
}

// do runs one task on its own goroutine and records how it ended.
func (s *jobNode) do(ctx context.Context, t *jobTask, j rome.Job, head uint64) {
	defer s.wg.Done()
	var sent *sentTx
	var err error
	switch t.key.kind {
	case taskRun:
		sent, err = s.runJob(ctx, &j)
	case taskVerdict:
		sent, err = s.giveVerdict(ctx, &j)
	case taskVerify:
		sent, err = s.verifyJob(ctx, &j)
	}
	if sent != nil {
		sent.height, sent.tries = head, 1
	}
	s.mu.Lock()
	s.running--
	t.cancel()
	switch {
	case err == nil && sent != nil:
		t.state, t.sent = taskSent, sent
	case err == nil:
		t.state = taskDone
		if t.key.kind == taskVerify {
			delete(s.verifyQ, t.key.id)
		}
	case errors.Is(err, errPermanent):
		t.state, t.lastErr = taskDone, err
		if t.key.kind == taskVerify {
			delete(s.verifyQ, t.key.id)
		}
		s.log.Warn("job task failed for good", "task", taskNames[t.key.kind], "job_id", j.ID, "err", err)
	case ctx.Err() != nil:
		t.state = taskQueued // the job left the queue, or the node stops
	default:
		t.attempts++
		t.state, t.lastErr = taskQueued, err
		t.retryAt = time.Now().Add(min(taskRetryMax, taskRetryMin<<min(t.attempts-1, 10)))
		s.log.Warn("job task failed; will try again", "task", taskNames[t.key.kind], "job_id", j.ID, "attempt", t.attempts, "err", err)
	}
	s.mu.Unlock()
	s.poke()
}

// classify marks the failures of a job that trying again cannot fix.
func classify(err error) error {
	if errors.Is(err, vm.ErrLimit) || errors.Is(err, jobrun.ErrTooLarge) || errors.Is(err, jobrun.ErrOutput) {
		return fmt.Errorf("%w: %w", errPermanent, err)
	}
	return err
}

// execute loads job j's blobs (fetching the missing ones over the data
// plane) and runs it; forge applies the executor's output failpoint.
func (s *jobNode) execute(ctx context.Context, j *rome.Job, forge bool) (*jobrun.Result, *jobBlobs, error) {
	x, err := s.executor(ctx)
	if err != nil {
		return nil, nil, err
	}
	job := jobrun.FromRome(j)
	src := s.blobSource(j)
	spec, err := jobrun.Load(ctx, &job, src, s.maxData)
	if err != nil {
		return nil, src, classify(err)
	}
	run, err := x.Run(ctx, spec)
	if err != nil {
		return nil, src, classify(fmt.Errorf("kernel: job %d: %w", j.ID, err))
	}
	if forge {
		if _, on := failpoint.Eval(failpoint.JobForgeOutput); on {
			// The executor's output boundary: a run that claims other
			// stdout, under a root consistent with it.
			run.Stdout = append(slices.Clone(run.Stdout), "forged by failpoint sos/job/forge-output\n"...)
			s.log.Warn("failpoint: forging the result", "job_id", j.ID)
		}
	}
	res, err := jobrun.Summarize(run, j.OutputLimit)
	if err != nil {
		return nil, src, classify(err)
	}
	return res, src, nil
}

// store puts a result's outputs, stdout and stderr in the blob store.
func (s *jobNode) store(ctx context.Context, res *jobrun.Result) error {
	for id, p := range res.Blobs {
		if s.n.blobs.Has(blob.ID(id)) {
			continue
		}
		if _, _, err := s.n.blobs.Put(ctx, bytes.NewReader(p)); err != nil {
			return fmt.Errorf("kernel: store output %s: %w", id, err)
		}
	}
	return nil
}

// runJob is the executor: run job j, store its outputs and send its result
// signed with the node key. Outputs that cannot be stored (a full disk)
// mean no result: one the node cannot serve would be unverifiable, so it
// tries again until the deadline, after which the job times out and the
// consumer pays nothing.
func (s *jobNode) runJob(ctx context.Context, j *rome.Job) (*sentTx, error) {
	reg := s.n.jobs
	reg.Start(j.ID)
	var gas uint64
	defer func() { reg.Finish(j.ID, gas) }()
	res, src, err := s.execute(ctx, j, true)
	if err != nil {
		return nil, err
	}
	gas = res.GasUsed
	if err := s.store(ctx, res); err != nil {
		return nil, err
	}
	var out uint64
	for _, f := range res.Outputs {
		out += f.Size
	}
	out += res.Stdout.Size + res.Stderr.Size
	p := res.Payload(j.ID, min(src.content, jobDataBytes(j)), out)
	h, err := s.n.submitTxAs(ctx, s.n.opts.NodeKey, p)
	if err != nil {
		return nil, err
	}
	s.log.Info("job run; result sent", "job_id", j.ID, "lease_id", j.LeaseID, "class", ledger.JobClassName(res.Class), "exit_code", res.ExitCode,
		"gas_used", res.GasUsed, "output_root", res.OutputRoot, "tx", h)
	return &sentTx{key: s.n.opts.NodeKey, payload: p, hash: h}, nil
}

// giveVerdict is the committee duty: re-execute a challenged job and send
// the outcome as job_verdict signed with the node key.
func (s *jobNode) giveVerdict(ctx context.Context, j *rome.Job) (*sentTx, error) {
	res, _, err := s.execute(ctx, j, false)
	if err != nil {
		return nil, err
	}
	p := &ledger.JobVerdict{JobID: j.ID, Outcome: res.Outcome()}
	h, err := s.n.submitTxAs(ctx, s.n.opts.NodeKey, p)
	if err != nil {
		return nil, err
	}
	agrees := j.Result != nil && res.Outcome() == j.Result.Outcome()
	s.log.Info("job re-executed for its challenge; verdict sent", "job_id", j.ID, "agrees_with_result", agrees, "tx", h)
	return &sentTx{key: s.n.opts.NodeKey, payload: p, hash: h}, nil
}

// verifiable reports whether the verifier should look at job j's result
// now: it has one, undisputed and still challengeable, its consumer is a
// key of this home, and this node did not compute it itself.
func (s *jobNode) verifiable(j *rome.Job, head uint64) bool {
	return j.Result != nil && j.Dispute == nil && (j.Status == rome.JobDone || j.Status == rome.JobFailed) &&
		j.Result.ChallengeEnd > head && j.Node != s.addr && s.keys.get(j.Consumer, s.log) != nil
}

// verifyJob is the verifier: for a job of one of its keys, the consumer's
// node re-executes the result (when job_verify picks it) and challenges a
// result it does not reproduce with the consumer's key; either way it
// keeps the outputs, so the consumer can fetch them from its own node.
func (s *jobNode) verifyJob(ctx context.Context, j *rome.Job) (*sentTx, error) {
	key := s.keys.get(j.Consumer, s.log)
	if key == nil {
		return nil, fmt.Errorf("%w: the consumer's key left the keyring", errPermanent)
	}
	if !s.verify.picks(s.salt, j.ID) {
		return nil, s.keepOutputs(ctx, j)
	}
	job := jobrun.FromRome(j)
	x, err := s.executor(ctx)
	if err != nil {
		return nil, err
	}
	rep, err := jobrun.Verify(ctx, &job, j.Result.Outcome(), s.blobSource(j), x, s.maxData)
	if err != nil {
		return nil, classify(err)
	}
	if rep.Match {
		// The re-execution made the very outputs the result names.
		if err := s.store(ctx, rep.Result); err != nil {
			return nil, err
		}
		s.n.jobs.Verify(j.ID, true)
		s.log.Info("job result verified by re-execution", "job_id", j.ID, "gas_used", j.Result.GasUsed)
		return nil, nil
	}
	s.n.jobs.Verify(j.ID, false)
	p := &ledger.JobChallenge{JobID: j.ID, Outcome: rep.Result.Outcome()}
	h, err := s.n.submitTxAs(ctx, key, p)
	if err != nil {
		return nil, fmt.Errorf("kernel: challenge job %d: %w", j.ID, err)
	}
	s.log.Warn("job result NOT reproduced by re-execution; challenged", "job_id", j.ID, "consumer", j.Consumer, "diffs", strings.Join(rep.Diffs, "; "), "tx", h)
	return &sentTx{key: key, payload: p, hash: h}, nil
}

// keepOutputs fetches a result's outputs, stdout and stderr into the
// consumer's node.
func (s *jobNode) keepOutputs(ctx context.Context, j *rome.Job) error {
	src := s.blobSource(j)
	refs := []ledger.BlobRef{j.Result.Stdout, j.Result.Stderr}
	for _, f := range j.Result.Outputs {
		refs = append(refs, f.Ref())
	}
	for _, r := range refs {
		if err := src.fetch(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// resumeVerification queues, at start, the results of this home's keys'
// jobs still open to a challenge: a consumer node that was offline when
// they landed checks them now.
func (s *jobNode) resumeVerification() {
	m := s.n.chain.market
	if m == nil || s.slots == 0 {
		return
	}
	st := ledger.NewState(s.n.store)
	head := s.n.store.Head().Height
	for _, a := range s.keys.addresses(s.log) {
		jobs, _, err := m.Jobs(st, rome.JobFilter{Consumer: a, Limit: scanLimit})
		if err != nil {
			s.log.Warn("jobs of a keyring key", "address", a, "err", err)
			continue
		}
		for i := range jobs {
			if s.verifiable(&jobs[i], head) {
				s.mu.Lock()
				s.verifyQ[jobs[i].ID] = struct{}{}
				s.mu.Unlock()
			}
		}
	}
}

func jobDataBytes(j *rome.Job) uint64 {
	n := j.Module.Size + j.Stdin.Size
	for _, f := range j.Inputs {
		n += f.Size
	}
	return n
}

// jobTag names a job's transfers on the data plane ("job/42").
// jobTagPrefix starts the data-plane tag of a job's blobs.
const jobTagPrefix = "job/"

func jobTag(id uint64) string { return jobTagPrefix + strconv.FormatUint(id, 10) }

// parseJobTag reads a job id from a transfer's tag.
func parseJobTag(tag string) (uint64, bool) {
	s, ok := strings.CutPrefix(tag, jobTagPrefix)
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseUint(s, 10, 64)
	return id, err == nil && id > 0
}

// jobHasBlob reports whether blob id is part of job j: its module,
// inputs, stdin, or its result's outputs and logs.
func jobHasBlob(j *rome.Job, id ledger.BlobID) bool {
	if j.Module.ID == id || (!j.Stdin.IsZero() && j.Stdin.ID == id) {
		return true
	}
	for _, f := range j.Inputs {
		if f.ID == id {
			return true
		}
	}
	if r := j.Result; r != nil {
		if r.Stdout.ID == id || r.Stderr.ID == id {
			return true
		}
		for _, f := range r.Outputs {
			if f.ID == id {
				return true
			}
		}
	}
	return false
}

// jobBlobs is where a job's blobs come from: this node's store, else the
// data plane, from the node that runs the job first, then every other
// member (any of them may have been given the blobs by the consumer).
type jobBlobs struct {
	s       *jobNode
	j       *rome.Job
	content uint64 // bytes of blob content fetched over the data plane
}

func (s *jobNode) blobSource(j *rome.Job) *jobBlobs { return &jobBlobs{s: s, j: j} }

// Blob implements jobrun.Blobs.
func (b *jobBlobs) Blob(ctx context.Context, ref ledger.BlobRef) ([]byte, error) {
	if err := b.fetch(ctx, ref); err != nil {
		return nil, err
	}
	return jobrun.StoreBlobs{Store: b.s.n.blobs}.Blob(ctx, ref)
}

// fetch brings blob ref into the store unless it is there; one fetch of a
// blob at a time (another caller waits for it).
func (b *jobBlobs) fetch(ctx context.Context, ref ledger.BlobRef) error {
	s, id := b.s, blob.ID(ref.ID)
	for {
		if s.n.blobs.Has(id) {
			return nil
		}
		s.mu.Lock()
		ch, busy := s.fetching[id]
		if !busy {
			ch = make(chan struct{})
			s.fetching[id] = ch
		}
		s.mu.Unlock()
		if !busy {
			break
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	defer func() {
		s.mu.Lock()
		close(s.fetching[id])
		delete(s.fetching, id)
		s.mu.Unlock()
	}()
	t := s.n.transport
	if t == nil {
		return fmt.Errorf("kernel: blob %s is not in this node's store, and the node has no data plane to fetch it: %w", ref.ID, blob.ErrNotFound)
	}
	srcs := s.sources(b.j)
	if len(srcs) == 0 {
		return fmt.Errorf("kernel: blob %s is not in this node's store, and no other node may have it: %w", ref.ID, blob.ErrNotFound)
	}
	st, err := t.FetchBlob(ctx, id, ref.Size, srcs, s.n.blobs, jobTag(b.j.ID))
	s.n.jobs.Moved(b.j.LeaseID, st.Bytes, 0)
	b.content += min(ref.Size, uint64(st.Chunks)*blob.ChunkSize)
	if err != nil {
		return fmt.Errorf("kernel: job %d: %w", b.j.ID, err)
	}
	return nil
}

// sources lists the node ids to fetch job j's blobs from: the node that
// runs it (a member, or a worker linked to this member) first, then the
// other members.
func (s *jobNode) sources(j *rome.Job) []sosnet.PeerID {
	c := s.n.cluster
	if c == nil {
		return nil
	}
	var out []sosnet.PeerID
	s.mu.Lock()
	if w, ok := s.workers[j.Node]; ok {
		out = append(out, w)
	}
	s.mu.Unlock()
	members := c.memberList()
	for _, m := range members {
		if m.PubKey.Address() == j.Node && m.NodeID != s.n.nodeID {
			out = append(out, sosnet.PeerID(m.NodeID))
		}
	}
	for _, m := range members {
		if m.PubKey.Address() != j.Node && m.NodeID != s.n.nodeID {
			out = append(out, sosnet.PeerID(m.NodeID))
		}
	}
	return out
}

// authorizeBlob is the data plane's authorization (net.BlobServer): a
// job's blobs go, under the job's tag, to the cluster's members (its
// verifiers and committee, and the provider's node when it is one) and to
// the worker whose node key the job's offer names.
func (s *jobNode) authorizeBlob(peer sosnet.PeerID, id blob.ID, tag string) bool {
	jid, ok := parseJobTag(tag)
	m := s.n.chain.market
	if !ok || m == nil {
		return false
	}
	j, err := m.Job(ledger.NewState(s.n.store), jid)
	if err != nil || !jobHasBlob(j, ledger.BlobID(id)) {
		return false
	}
	if c := s.n.cluster; c != nil {
		if mb, ok := c.member(RaftID(string(peer))); ok && mb.NodeID == string(peer) {
			return true
		}
	}
	s.mu.Lock()
	w, ok := s.workers[j.Node]
	s.mu.Unlock()
	return ok && w == peer
}

// accountBlob counts the bytes served for a job against its lease.
func (s *jobNode) accountBlob(peer sosnet.PeerID, id blob.ID, tag string, n uint64) {
	jid, ok := parseJobTag(tag)
	m := s.n.chain.market
	if !ok || m == nil {
		return
	}
	j, err := m.Job(ledger.NewState(s.n.store), jid)
	if err != nil {
		return
	}
	s.n.jobs.Moved(j.LeaseID, 0, n)
}

// workerPolicy admits as a worker the node whose key a live offer names
// (net.WorkerPolicy), and remembers its node id to fetch from it.
func (s *jobNode) workerPolicy(id sosnet.PeerID, key ledger.PublicKey) bool {
	a := key.Address()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.live[a] == 0 {
		return false
	}
	if old, ok := s.workers[a]; ok && old != id {
		delete(s.workerIDs, old)
	}
	s.workers[a], s.workerIDs[id] = id, a
	return true
}

// liveOffer reports whether offer o makes its node a live worker: it
// names a node and is open, holds leased capacity or has open jobs.
func liveOffer(o *rome.Offer) bool {
	if o.Node.IsZero() {
		return false
	}
	if o.Status == rome.StatusOpen || o.OpenJobs > 0 {
		return true
	}
	for _, a := range o.Leased {
		if a.Amount > 0 {
			return true
		}
	}
	return false
}

// refreshLive brings the node accounts live offers name up to date: it
// reads again the offers the blocks committed since the last call wrote
// (all offers only at start and after a state sync), so what a block
// costs here is the offers it changed, not the number of offers; and it
// hands the worker policy to the transport again when a node account
// stopped being named, so that its worker is dropped.
func (s *jobNode) refreshLive() {
	t, m := s.n.transport, s.n.chain.market
	if t == nil || m == nil {
		return
	}
	if s.updateLive(m, ledger.NewState(s.n.store)) { // the policy is asked at each handshake: a node newly named needs no call
		t.SetWorkerPolicy(s.workerPolicy)
	}
}

// updateLive is refreshLive's bookkeeping on state st: it reports whether
// the worker policy must be handed to the transport again (a node account
// is no longer named, or the set was recounted).
func (s *jobNode) updateLive(m *rome.Market, st *ledger.State) bool {
	s.mu.Lock()
	full, ids := s.liveFull, s.liveIDs
	if !full && len(ids) == 0 {
		s.mu.Unlock()
		return false
	}
	s.liveFull, s.liveIDs = false, map[uint64]struct{}{}
	s.mu.Unlock()
	var offers map[uint64]ledger.Address // the live offers among those read, by id
	reads := 0
	if full {
		list, err := m.Offers(st, 0, func(o *rome.Offer) bool { reads++; return liveOffer(o) })
		if err != nil {
			s.log.Warn("offers naming nodes", "err", err)
			s.mu.Lock()
			s.liveFull = true // try again at the next pass
			s.mu.Unlock()
			return false
		}
		offers = make(map[uint64]ledger.Address, len(list))
		for _, o := range list {
			offers[o.ID] = o.Node
		}
	} else {
		offers = make(map[uint64]ledger.Address, len(ids))
		for id := range ids {
			reads++
			o, err := m.Offer(st, id)
			if errors.Is(err, rome.ErrNotFound) {
				continue
			}
			if err != nil {
				s.log.Warn("an offer naming a node", "offer_id", id, "err", err)
				s.mu.Lock()
				s.liveIDs[id] = struct{}{} // try again at the next pass
				s.mu.Unlock()
				continue
			}
			if liveOffer(o) {
				offers[id] = o.Node
			}
		}
	}
	s.mu.Lock()
	s.liveReads += reads
	gone := false
	drop := func(id uint64) {
		a, ok := s.liveOffers[id]
		if !ok {
			return
		}
		delete(s.liveOffers, id)
		if s.live[a]--; s.live[a] > 0 {
			return
		}
		delete(s.live, a)
		if w, ok := s.workers[a]; ok {
			delete(s.workers, a)
			delete(s.workerIDs, w)
		}
		gone = true
	}
	if full {
		for id := range s.liveOffers {
			if _, ok := offers[id]; !ok {
				drop(id)
			}
		}
	} else {
		for id := range ids {
			if _, ok := offers[id]; !ok {
				drop(id)
			}
		}
	}
	for id, a := range offers {
		if old, ok := s.liveOffers[id]; ok {
			if old == a {
				continue
			}
			drop(id)
		}
		s.liveOffers[id] = a
		s.live[a]++
	}
	s.mu.Unlock()
	return gone || full
}

// consumerKeys caches the keys of the home's keyring by address, re-read
// at most every keyringRefresh when a lookup misses.
type consumerKeys struct {
	kr     *keyring.Keyring
	mu     sync.Mutex
	keys   map[ledger.Address]*ledger.PrivateKey
	loaded time.Time
	warned bool
}

func (k *consumerKeys) load(log *slog.Logger, force bool) {
	if k.kr == nil || (!force && time.Since(k.loaded) < keyringRefresh) {
		return
	}
	k.loaded = time.Now()
	list, err := k.kr.List()
	if err != nil {
		if !k.warned {
			log.Warn("job verifier: the keyring cannot be read without an operator (encrypted?): results of its keys' jobs are not verified here", "err", err)
			k.warned = true
		}
		return
	}
	keys := make(map[ledger.Address]*ledger.PrivateKey, len(list))
	sealed := 0
	for _, e := range list {
		if e.Encrypted {
			// An encrypted key needs its passphrase, which a node
			// running unattended does not have.
			sealed++
			continue
		}
		full, err := k.kr.Get(e.Name)
		if err != nil {
			log.Warn("job verifier: a key of the keyring cannot be read", "key", e.Name, "err", err)
			continue
		}
		keys[full.Key.Address()] = full.Key
	}
	if sealed > 0 && !k.warned {
		log.Warn("job verifier: encrypted keys of the keyring are not used: results of their jobs are not verified here", "keys", sealed)
		k.warned = true
	}
	k.keys = keys
}

// get returns the key of address a, nil if the keyring has none.
func (k *consumerKeys) get(a ledger.Address, log *slog.Logger) *ledger.PrivateKey {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key := k.keys[a]; key != nil {
		return key
	}
	k.load(log, k.keys == nil)
	return k.keys[a]
}

// addresses lists the keyring's addresses.
func (k *consumerKeys) addresses(log *slog.Logger) []ledger.Address {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.load(log, true)
	out := make([]ledger.Address, 0, len(k.keys))
	for a := range k.keys {
		out = append(out, a)
	}
	slices.SortFunc(out, func(x, y ledger.Address) int { return bytes.Compare(x[:], y[:]) })
	return out
}
