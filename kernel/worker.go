package kernel

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/kernel/jobrun"
	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
	"github.com/sos-kernel/sos/rome"
)

// Worker mode: a provider's node that is not a cluster member. A raft
// cluster stays small (3–7 voters) while the machines renting out compute
// can be thousands, so such a machine runs `sos run --worker --follow
// NODE_ID@ADDR`: it links, over QUIC in the worker role (package net), to
// one member, which accepts it only while a live offer names its node key.
// It keeps no ledger: it holds one trusted header (the genesis block at
// first) and the cluster's voters, and from the member it follows it takes
//
//   - updates: a committed header, which counts only when signed by a voter
//     it trusts (at a height not below its trusted one, and linked to it when
//     it is the next), and state proofs against that header's state root of
//     the jobs waiting for its node key's result, and of the member records
//     (the voters it trusts from then on);
//   - the blobs of those jobs (the data plane, under the job's tag);
//
// runs each job in its Jobs VM, keeps the outputs in its blob store, signs
// job_result with its node key and hands it to the member, which copies the
// outputs first and then admits the transaction. It never votes, never
// receives the raft log and cannot become a member by connecting: its link
// carries blob transfers and KindFollow only, on both sides.
//
// Trust: the worker acts on nothing the member says without a voter's
// signature and a proof. A member may withhold (then the job times out and
// the consumer pays nothing) but cannot make the worker run a job that is
// not committed for it. A header is checked by its signature, not by
// replaying the chain: the worker trusts the voters it last proved, so if
// the whole voter set was replaced while it was offline it refuses the new
// heads and says so (re-create its trusted state from a member it trusts).

// WorkerOptions wires a worker. Only main touches the real filesystem
// beyond Home.
type WorkerOptions struct {
	Home       string // blob store, job cache and the trusted state (worker.json)
	Config     Config // P2PAddr, job_concurrency, job caps, blob_limit
	GenesisDoc []byte
	NodeKey    *ledger.PrivateKey
	// Follow is the member to follow: "<node-id>@host:port".
	Follow string
	Logger *slog.Logger // nil: discard
	// JobExecutor runs the jobs (nil: the VM's Jobs purpose, made on first
	// use). Tests inject a native one.
	JobExecutor jobrun.Executor
	// JobCacheDir holds the Jobs VM's compilation cache ("": Home/data/job-cache).
	JobCacheDir string
	// Resubscribe is how often the worker tells its member its trusted
	// height (and so notices a lost update or a restarted member); default 3 s.
	Resubscribe time.Duration
}

// WorkerStateFile is the worker's trusted state in its home.
const WorkerStateFile = "worker.json"

// Worker is a running worker node (see above).
type Worker struct {
	opts     WorkerOptions
	log      *slog.Logger
	codec    *ledger.Codec
	chainID  string
	gen      ledger.Hash    // the genesis block's hash
	addr     ledger.Address // the node key's account
	member   sosnet.PeerID
	memAddr  string
	t        *sosnet.Transport
	blobs    *blob.Store
	slots    int
	maxData  uint64
	vmCfg    JobVMConfig
	perByte  uint64 // the gas schedule's per-byte tx cost
	wake     chan struct{}
	wg       sync.WaitGroup
	execMu   sync.Mutex
	exec     jobrun.Executor
	ownVM    *JobVM
	resub    time.Duration
	stateDir string

	mu      sync.Mutex
	trust   workerTrust
	jobs    map[uint64]*workerJob
	running int
	nonce   uint64
	served  map[uint64][]ledger.BlobID // a result's blobs, by job: what the member may fetch
	acks    map[uint64]chan *followAckMsg
	reqID   uint64
	listed  bool // an update was applied since start
	stats   WorkerStatus
}

// workerTrust is what the worker believes of the chain: the last header
// it verified and the voters whose signatures it accepts.
type workerTrust struct {
	Header ledger.Header
	Hash   ledger.Hash
	Voters map[ledger.Address]ledger.PublicKey
}

// workerJob is one job waiting for this worker's result.
type workerJob struct {
	job      rome.Job
	state    taskState
	cancel   context.CancelFunc
	attempts int
	retryAt  time.Time
	sentAt   uint64 // the member's height when it admitted the result
	tries    int
	// dropped: an update no longer listed it while it ran (answered
	// another way, timed out, or its offer closed); its run is cancelled
	// and it is forgotten when the run ends, however it ends.
	dropped bool
}

// WorkerStatus is what a worker reports of itself.
type WorkerStatus struct {
	NodeID  string `json:"node_id"`
	Member  string `json:"member"`
	Height  uint64 `json:"height"`  // trusted head
	Voters  int    `json:"voters"`  // voters it trusts
	Pending int    `json:"pending"` // jobs waiting for its result
	Running int    `json:"running"`
	Results uint64 `json:"results"` // results the member admitted
	Refused uint64 `json:"refused"` // updates refused (bad signature, proof, ...)
}

// OpenWorker prepares a worker: its trusted state (from worker.json, else
// the genesis block and its voters), blob store and QUIC transport in the
// worker role. Run starts it.
func OpenWorker(opts WorkerOptions) (*Worker, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.NodeKey == nil {
		return nil, errors.New("kernel: worker: node key missing")
	}
	if opts.Home == "" {
		return nil, errors.New("kernel: worker: a home directory is needed (blob store, worker.json)")
	}
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	memberID, memberAddr, err := ParsePeer(opts.Follow)
	if err != nil {
		return nil, fmt.Errorf("kernel: worker: --follow: %w", err)
	}
	if memberID == opts.NodeKey.Public().Fingerprint() {
		return nil, errors.New("kernel: worker: a node cannot follow itself")
	}
	g, err := ledger.ParseGenesis(opts.GenesisDoc)
	if err != nil {
		return nil, err
	}
	gen, genesisBlock, voters, err := genesisTrust(g, opts.GenesisDoc)
	if err != nil {
		return nil, err
	}
	w := &Worker{
		opts: opts, log: opts.Logger.With("part", "worker"), codec: ledger.NewCodec(), chainID: g.ChainID, gen: gen,
		addr: opts.NodeKey.Address(), member: sosnet.PeerID(memberID), memAddr: memberAddr,
		slots: opts.Config.JobConcurrency, maxData: uint64(opts.Config.JobMaxData), perByte: ledger.DefaultGasSchedule().TxPerByte,
		wake: make(chan struct{}, 1), resub: opts.Resubscribe, stateDir: opts.Home,
		jobs: map[uint64]*workerJob{}, served: map[uint64][]ledger.BlobID{}, acks: map[uint64]chan *followAckMsg{},
		exec: opts.JobExecutor,
	}
	if w.maxData == 0 {
		w.maxData = 4 << 30
	}
	if w.resub <= 0 {
		w.resub = 3 * time.Second
	}
	w.trust = workerTrust{Header: genesisBlock, Hash: gen, Voters: voters}
	if err := w.loadTrust(gen); err != nil {
		return nil, err
	}
	w.stats.NodeID, w.stats.Member = opts.NodeKey.Public().Fingerprint(), memberID
	w.vmCfg = JobVMConfig{MaxModuleBytes: uint64(opts.Config.JobMaxModule), MaxMemoryBytes: uint64(opts.Config.JobMaxMemory), Logger: opts.Logger}
	switch {
	case opts.JobCacheDir != "":
		w.vmCfg.CacheDir = opts.JobCacheDir
	case opts.Home != "":
		w.vmCfg.CacheDir = filepath.Join(opts.Home, "data", "job-cache")
	}
	if w.blobs, err = openBlobs(NodeOptions{Home: opts.Home, Config: opts.Config, Logger: opts.Logger}); err != nil {
		return nil, err
	}
	t, err := sosnet.Listen(context.Background(), sosnet.Config{ListenAddr: opts.Config.P2PAddr, Key: opts.NodeKey, ChainID: g.ChainID,
		GenesisHash: gen, Logger: opts.Logger})
	if err != nil {
		w.blobs.Close()
		return nil, fmt.Errorf("kernel: worker: peer network on %s: %w", opts.Config.P2PAddr, err)
	}
	if err := t.Follow(w.member, memberAddr); err != nil {
		t.Close()
		w.blobs.Close()
		return nil, fmt.Errorf("kernel: worker: %w", err)
	}
	w.t = t
	t.Handle(sosnet.KindFollow, w.handle)
	t.ServeBlobs(sosnet.BlobServer{Store: w.blobs, Authorize: w.authorizeBlob})
	return w, nil
}

// genesisTrust computes the genesis block (as every member commits it:
// InitGenesis on an empty store) and its voters: a worker's first trusted
// state.
func genesisTrust(g *ledger.Genesis, doc []byte) (ledger.Hash, ledger.Header, map[ledger.Address]ledger.PublicKey, error) {
	store, err := ledger.Open("data", ledger.StoreOptions{FS: vfs.NewMem()})
	if err != nil {
		return ledger.Hash{}, ledger.Header{}, nil, err
	}
	defer store.Close()
	if err := NewChain(store, g, nil).InitGenesis(doc); err != nil {
		return ledger.Hash{}, ledger.Header{}, nil, err
	}
	b, err := store.Block(0)
	if err != nil {
		return ledger.Hash{}, ledger.Header{}, nil, err
	}
	members, err := MembersFromLedger(store)
	if err != nil {
		return ledger.Hash{}, ledger.Header{}, nil, err
	}
	voters := map[ledger.Address]ledger.PublicKey{}
	for _, m := range members {
		if m.Role == ledger.RoleVoter {
			voters[m.PubKey.Address()] = m.PubKey
		}
	}
	return store.Head().Genesis, b.Header, voters, nil
}

// workerStateJSON is worker.json.
type workerStateJSON struct {
	Genesis string   `json:"genesis_hash"`
	Header  string   `json:"header"` // canonical CBOR, hex
	Voters  []string `json:"voters"` // public keys, hex
}

// loadTrust reads worker.json when there is one (a restart resumes from
// the head it had verified, never from older).
func (w *Worker) loadTrust(gen ledger.Hash) error {
	if w.stateDir == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(w.stateDir, WorkerStateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kernel: worker state: %w", err)
	}
	bad := func(err error) error {
		return fmt.Errorf("kernel: worker state %s: %w: %w", filepath.Join(w.stateDir, WorkerStateFile), ledger.ErrCorrupt, err)
	}
	var s workerStateJSON
	if err := json.Unmarshal(b, &s); err != nil {
		return bad(err)
	}
	if s.Genesis != gen.String() {
		return fmt.Errorf("kernel: worker state %s is of another chain (genesis %s, this genesis.json gives %s)", WorkerStateFile, s.Genesis, gen)
	}
	hb, err := hex.DecodeString(s.Header)
	if err != nil {
		return bad(err)
	}
	var h ledger.Header
	if err := w.codec.Unmarshal(hb, &h); err != nil {
		return bad(err)
	}
	hash, err := w.codec.HeaderHash(&h)
	if err != nil {
		return bad(err)
	}
	voters := map[ledger.Address]ledger.PublicKey{}
	for _, v := range s.Voters {
		kb, err := hex.DecodeString(v)
		if err != nil {
			return bad(err)
		}
		k, err := ledger.ParsePublicKey(kb)
		if err != nil {
			return bad(err)
		}
		voters[k.Address()] = k
	}
	if len(voters) == 0 {
		return bad(errors.New("no voters"))
	}
	w.trust = workerTrust{Header: h, Hash: hash, Voters: voters}
	return nil
}

// saveTrustLocked writes worker.json; w.mu is held.
func (w *Worker) saveTrustLocked(gen ledger.Hash) error {
	if w.stateDir == "" {
		return nil
	}
	hb, err := w.codec.Marshal(&w.trust.Header)
	if err != nil {
		return err
	}
	s := workerStateJSON{Genesis: gen.String(), Header: hex.EncodeToString(hb)}
	for _, k := range w.trust.Voters {
		s.Voters = append(s.Voters, hex.EncodeToString(k.Bytes()))
	}
	slices.Sort(s.Voters)
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(w.stateDir, WorkerStateFile), b, 0o644)
}

// NodeID is the worker's node id.
func (w *Worker) NodeID() string { return string(w.t.ID()) }

// P2PAddr is the address the worker's transport listens on.
func (w *Worker) P2PAddr() string { return w.t.Addr().String() }

// Blobs is the worker's blob store.
func (w *Worker) Blobs() *blob.Store { return w.blobs }

// Status reports the worker's trusted head and work.
func (w *Worker) Status() WorkerStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := w.stats
	s.Height, s.Voters, s.Running = w.trust.Header.Height, len(w.trust.Voters), w.running
	for _, j := range w.jobs {
		if j.state != taskDone {
			s.Pending++
		}
	}
	return s
}

// Transport is the worker's QUIC transport (tests use it to check what a
// worker link refuses).
func (w *Worker) Transport() *sosnet.Transport { return w.t }

// Close releases the transport, the Jobs VM and the blob store. Call
// after Run returned.
func (w *Worker) Close() error {
	terr := w.t.Close()
	w.execMu.Lock()
	var verr error
	if w.ownVM != nil {
		verr = w.ownVM.Close(context.Background())
		w.ownVM, w.exec = nil, nil
	}
	w.execMu.Unlock()
	return errors.Join(terr, verr, w.blobs.Close())
}

func (w *Worker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run follows the member and runs the jobs it proves until ctx ends.
func (w *Worker) Run(ctx context.Context) error {
	if w.slots == 0 {
		w.log.Warn("job_concurrency is 0: this worker runs no jobs")
	}
	w.log.Info("worker started", "node_id", w.t.ID(), "node_account", w.addr, "member", w.member, "member_addr", w.memAddr,
		"p2p", w.t.Addr().String(), "trusted_height", w.Status().Height)
	resub := time.NewTicker(w.resub)
	defer resub.Stop()
	w.subscribe(ctx)
	for {
		w.schedule(ctx)
		select {
		case <-ctx.Done():
			done := make(chan struct{})
			go func() { w.wg.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				w.log.Warn("job runs still going at shutdown")
			}
			return nil
		case <-w.wake:
		case <-resub.C:
			w.subscribe(ctx)
		}
	}
}

// subscribe tells the member the worker's trusted height (it dials the
// member on first use and after a broken link).
func (w *Worker) subscribe(ctx context.Context) {
	w.mu.Lock()
	h, want := w.trust.Header.Height, w.listed
	w.mu.Unlock()
	msg, err := encodeFollow(w.codec, followSubscribe, &followSub{Height: h, Want: !want})
	if err != nil {
		w.log.Error("encode subscribe", "err", err)
		return
	}
	sctx, cancel := context.WithTimeout(ctx, followSendTimeout)
	defer cancel()
	if err := w.t.Send(sctx, w.member, sosnet.KindFollow, msg); err != nil && ctx.Err() == nil {
		w.log.Warn("cannot reach the member (is an offer naming this node's key live?)", "member", w.member, "err", err)
	}
}

// handle is the KindFollow handler (from the member only: the transport
// admits no one else).
func (w *Worker) handle(from sosnet.PeerID, msg []byte) {
	typ, body, err := decodeFollow(w.codec, msg)
	if err != nil {
		w.log.Warn("follow message refused", "err", err)
		return
	}
	switch typ {
	case followUpdate:
		if err := w.apply(body.(*followUpd)); err != nil {
			w.mu.Lock()
			w.stats.Refused++
			w.mu.Unlock()
			w.log.Warn("update refused", "err", err)
			return
		}
		w.poke()
	case followAck:
		a := body.(*followAckMsg)
		w.mu.Lock()
		ch := w.acks[a.ID]
		delete(w.acks, a.ID)
		w.mu.Unlock()
		if ch != nil {
			ch <- a
		}
	default:
		w.log.Warn("follow message of a type a member does not send", "type", typ)
	}
}

// errUntrusted classifies an update the worker does not believe.
var errUntrusted = errors.New("kernel: worker: update not trusted")

// apply checks an update — header signature, height and link, every proof
// — and only then takes its members and jobs.
func (w *Worker) apply(u *followUpd) error {
	h := &u.Header
	hash, err := w.codec.HeaderHash(h)
	if err != nil {
		return err
	}
	w.mu.Lock()
	trust := w.trust
	w.mu.Unlock()
	switch {
	case h.ChainID != w.chainID:
		return fmt.Errorf("%w: header of chain %q", errUntrusted, h.ChainID)
	case h.Height < trust.Header.Height:
		return fmt.Errorf("%w: header %d is below the trusted height %d", errUntrusted, h.Height, trust.Header.Height)
	case h.Height == trust.Header.Height && hash != trust.Hash:
		return fmt.Errorf("%w: header %d differs from the trusted one", errUntrusted, h.Height)
	case h.Height == trust.Header.Height+1 && h.PrevHash != trust.Hash:
		return fmt.Errorf("%w: header %d does not link to the trusted header %d", errUntrusted, h.Height, trust.Header.Height)
	}
	if hash != trust.Hash {
		pub, ok := trust.Voters[h.Proposer]
		if !ok {
			return fmt.Errorf("%w: header %d is signed by %s, not a voter this worker knows (if the voters changed while it was offline, remove %s to start again from genesis)",
				errUntrusted, h.Height, h.Proposer, WorkerStateFile)
		}
		if err := w.codec.VerifyBlockSignature(&ledger.Block{Header: *h, Signature: u.Signature}, pub); err != nil {
			return fmt.Errorf("%w: %w", errUntrusted, err)
		}
	}
	var voters map[ledger.Address]ledger.PublicKey
	if len(u.Members) > 0 {
		voters = map[ledger.Address]ledger.PublicKey{}
		for i := range u.Members {
			p := &u.Members[i]
			v, err := p.verify(h.StateRoot)
			if err != nil {
				return fmt.Errorf("%w: %w", errUntrusted, err)
			}
			if !bytes.HasPrefix(p.Key, ledger.MemberKey("")) || v == nil {
				return fmt.Errorf("%w: a member proof of key %x", errUntrusted, p.Key)
			}
			var rec ledger.Member
			if err := w.codec.Unmarshal(v, &rec); err != nil {
				return fmt.Errorf("%w: member record: %w", errUntrusted, err)
			}
			k, err := ledger.ParsePublicKey(rec.PubKey)
			if err != nil || !bytes.Equal(p.Key, ledger.MemberKey(k.Fingerprint())) {
				return fmt.Errorf("%w: member record of key %x", errUntrusted, p.Key)
			}
			if rec.Role == ledger.RoleVoter {
				voters[k.Address()] = k
			}
		}
		if len(voters) == 0 {
			return fmt.Errorf("%w: the member set proved has no voter", errUntrusted)
		}
	}
	jobs := make([]rome.Job, 0, len(u.Jobs))
	for i := range u.Jobs {
		p := &u.Jobs[i]
		v, err := p.verify(h.StateRoot)
		if err != nil {
			return fmt.Errorf("%w: %w", errUntrusted, err)
		}
		if v == nil {
			continue // gone since: nothing to do
		}
		var j rome.Job
		if err := w.codec.Unmarshal(v, &j); err != nil {
			return fmt.Errorf("%w: job record: %w", errUntrusted, err)
		}
		if !bytes.Equal(p.Key, rome.JobKey(j.ID)) {
			return fmt.Errorf("%w: job %d proved under key %x", errUntrusted, j.ID, p.Key)
		}
		if j.Node != w.addr || j.Status != rome.JobSubmitted || j.Deadline <= h.Height {
			continue // not (or no longer) this worker's to answer
		}
		jobs = append(jobs, j)
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	if h.Height < w.trust.Header.Height {
		return nil // a newer update won meanwhile
	}
	moved := hash != w.trust.Hash || voters != nil
	w.trust.Header, w.trust.Hash = *h, hash
	if voters != nil {
		w.trust.Voters = voters
	}
	if moved {
		if err := w.saveTrustLocked(w.gen); err != nil {
			w.log.Warn("worker state not saved", "err", err)
		}
	}
	w.nonce = max(w.nonce, u.Nonce)
	w.listed = true
	listed := make(map[uint64]bool, len(jobs))
	for _, j := range jobs {
		listed[j.ID] = true
		if wj := w.jobs[j.ID]; wj == nil {
			w.jobs[j.ID] = &workerJob{job: j}
			w.log.Info("job for this worker", "job_id", j.ID, "lease_id", j.LeaseID, "height", h.Height)
		} else {
			wj.dropped = false
		}
	}
	if u.Complete {
		for id, wj := range w.jobs {
			if listed[id] {
				continue
			}
			if wj.state == taskRunning {
				wj.dropped = true
				wj.cancel() // answered another way, timed out, or its offer closed
				continue
			}
			delete(w.jobs, id)
		}
	}
	return nil
}

// schedule starts queued jobs while slots are free and resends results
// that did not make it into a block.
func (w *Worker) schedule(ctx context.Context) {
	w.mu.Lock()
	defer w.mu.Unlock()
	head := w.trust.Header.Height
	now := time.Now()
	ids := make([]uint64, 0, len(w.jobs))
	for id := range w.jobs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		wj := w.jobs[id]
		switch wj.state {
		case taskSent:
			// Still listed as waiting a few blocks after its result was
			// admitted: the transaction was lost (or failed); again.
			if head > wj.sentAt+2 {
				if wj.tries >= maxTxTries {
					w.log.Warn("job result not taken after retries; giving up", "job_id", id)
					wj.state = taskDone
					continue
				}
				wj.state = taskQueued
			}
			continue
		case taskQueued:
		default:
			continue
		}
		if w.running >= w.slots || now.Before(wj.retryAt) || ctx.Err() != nil {
			continue
		}
		tctx, cancel := context.WithCancel(ctx)
		wj.state, wj.cancel = taskRunning, cancel
		w.running++
		w.wg.Add(1)
		go w.do(tctx, wj, wj.job)
	}
}

// do runs one job and records how it ended.
func (w *Worker) do(ctx context.Context, wj *workerJob, j rome.Job) {
	defer w.wg.Done()
	at, err := w.runJob(ctx, &j)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.running--
	wj.cancel()
	if err == nil {
		w.stats.Results++
	}
	if wj.dropped {
		// No longer the worker's to answer: whatever the run did (a result
		// admitted, a failure, the cancel), nothing more is due.
		if w.jobs[j.ID] == wj {
			delete(w.jobs, j.ID)
		}
		w.poke()
		return
	}
	switch {
	case err == nil:
		// Counted from the member's head, not from the trusted one: that
		// moves only with updates, so it may be many blocks old, and a
		// result counted from there would be resent as soon as another of
		// the worker's jobs changed, though it was landing in time.
		wj.state, wj.sentAt = taskSent, max(at, w.trust.Header.Height)
		wj.tries++
	case errors.Is(err, errPermanent):
		wj.state = taskDone
		w.log.Warn("job failed for good", "job_id", j.ID, "err", err)
	case ctx.Err() != nil:
		wj.state = taskQueued
	default:
		wj.attempts++
		wj.state = taskQueued
		wj.retryAt = time.Now().Add(min(taskRetryMax, taskRetryMin<<min(wj.attempts-1, 10)))
		w.log.Warn("job failed; will try again", "job_id", j.ID, "attempt", wj.attempts, "err", err)
	}
	w.poke()
}

// executor returns the job executor, creating the Jobs VM on first use.
func (w *Worker) executor(ctx context.Context) (jobrun.Executor, error) {
	w.execMu.Lock()
	defer w.execMu.Unlock()
	if w.exec != nil {
		return w.exec, nil
	}
	x, err := NewJobVM(context.WithoutCancel(ctx), w.vmCfg)
	if err != nil {
		return nil, fmt.Errorf("kernel: job VM: %w", err)
	}
	w.exec, w.ownVM = x, x
	return x, nil
}

// runJob runs job j, stores its outputs and has the member admit its
// result signed with the node key; it returns the member's committed
// height when it admitted the result.
func (w *Worker) runJob(ctx context.Context, j *rome.Job) (uint64, error) {
	x, err := w.executor(ctx)
	if err != nil {
		return 0, err
	}
	src := &workerBlobs{w: w, job: j.ID}
	job := jobrun.FromRome(j)
	spec, err := jobrun.Load(ctx, &job, src, w.maxData)
	if err != nil {
		return 0, classify(err)
	}
	run, err := x.Run(ctx, spec)
	if err != nil {
		return 0, classify(fmt.Errorf("kernel: job %d: %w", j.ID, err))
	}
	res, err := jobrun.Summarize(run, j.OutputLimit)
	if err != nil {
		return 0, classify(err)
	}
	ids := make([]ledger.BlobID, 0, len(res.Blobs))
	for id, p := range res.Blobs {
		ids = append(ids, id)
		if w.blobs.Has(blob.ID(id)) {
			continue
		}
		if _, _, err := w.blobs.Put(ctx, bytes.NewReader(p)); err != nil {
			return 0, fmt.Errorf("kernel: store output %s: %w", id, err)
		}
	}
	w.mu.Lock()
	w.served[j.ID] = ids
	w.mu.Unlock()
	var out uint64
	for _, f := range res.Outputs {
		out += f.Size
	}
	out += res.Stdout.Size + res.Stderr.Size
	p := res.Payload(j.ID, min(src.content, jobDataBytes(j)), out)
	a, err := w.submit(ctx, p)
	if err != nil {
		return 0, err
	}
	w.log.Info("job run; result admitted by the member", "job_id", j.ID, "class", ledger.JobClassName(res.Class), "exit_code", res.ExitCode,
		"gas_used", res.GasUsed, "output_root", res.OutputRoot, "tx", a.Hash, "member_height", a.Height)
	return a.Height, nil
}

// submit signs p with the node key at the next nonce and has the member
// admit it (the member's answer); a refused nonce is corrected from the
// member's answer once.
func (w *Worker) submit(ctx context.Context, p ledger.Payload) (*followAckMsg, error) {
	body, err := w.codec.Marshal(p)
	if err != nil {
		return nil, err
	}
	gas := 1_000_000 + 2*w.perByte*uint64(len(body))
	for attempt := 0; ; attempt++ {
		w.mu.Lock()
		nonce := w.nonce
		w.nonce++
		w.reqID++
		id := w.reqID
		ch := make(chan *followAckMsg, 1)
		w.acks[id] = ch
		w.mu.Unlock()
		a, err := w.send(ctx, id, ch, p, nonce, gas)
		if err != nil {
			w.mu.Lock()
			delete(w.acks, id)
			w.nonce = min(w.nonce, nonce) // not taken: the next tx may use it
			w.mu.Unlock()
			return nil, err
		}
		if a.Err == "" {
			return a, nil
		}
		w.mu.Lock()
		w.nonce = a.Nonce
		w.mu.Unlock()
		if attempt > 0 || a.Nonce == nonce {
			return nil, fmt.Errorf("kernel: the member refused the %s: %s", p.Kind(), a.Err)
		}
	}
}

func (w *Worker) send(ctx context.Context, id uint64, ch chan *followAckMsg, p ledger.Payload, nonce, gas uint64) (*followAckMsg, error) {
	tx := &ledger.Tx{Version: ledger.TxVersion, ChainID: w.chainID, Nonce: nonce, GasLimit: gas, GasPrice: nodeGasPrice, Payload: p}
	if nonce == 0 {
		tx.PubKey = w.opts.NodeKey.Public().Bytes()
	}
	if err := w.codec.SignTx(tx, w.opts.NodeKey); err != nil {
		return nil, err
	}
	raw, err := w.codec.EncodeTx(tx)
	if err != nil {
		return nil, err
	}
	msg, err := encodeFollow(w.codec, followSubmit, &followTx{ID: id, Tx: raw})
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, followSendTimeout)
	err = w.t.Send(sctx, w.member, sosnet.KindFollow, msg)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("kernel: send the result to the member: %w", err)
	}
	// The member copies the outputs before it answers.
	wait := time.NewTimer(followFetchWait + followSendTimeout)
	defer wait.Stop()
	select {
	case a := <-ch:
		return a, nil
	case <-wait.C:
		return nil, errors.New("kernel: the member did not answer the result in time")
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// authorizeBlob lets the member fetch, under a job's tag, the blobs of the
// result this worker computed for that job (and nothing else, to no one
// else: the transport links the worker to its member only).
func (w *Worker) authorizeBlob(peer sosnet.PeerID, id blob.ID, tag string) bool {
	jid, ok := parseJobTag(tag)
	if !ok || peer != w.member {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Contains(w.served[jid], ledger.BlobID(id))
}

// workerBlobs reads a job's blobs from the worker's store, fetching the
// missing ones from the member under the job's tag.
type workerBlobs struct {
	w       *Worker
	job     uint64
	content uint64
}

func (b *workerBlobs) Blob(ctx context.Context, ref ledger.BlobRef) ([]byte, error) {
	id := blob.ID(ref.ID)
	if !b.w.blobs.Has(id) {
		st, err := b.w.t.FetchBlob(ctx, id, ref.Size, []sosnet.PeerID{b.w.member}, b.w.blobs, jobTag(b.job))
		b.content += min(ref.Size, uint64(st.Chunks)*blob.ChunkSize)
		if err != nil {
			return nil, fmt.Errorf("kernel: job %d: %w", b.job, err)
		}
	}
	return jobrun.StoreBlobs{Store: b.w.blobs}.Blob(ctx, ref)
}
