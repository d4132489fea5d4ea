package kernel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"golang.org/x/sync/errgroup"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/jobrun"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
	"github.com/sos-kernel/sos/vm"
)

// Version is the node software version shown in status.
const Version = "0.1.0"

// NodeOptions wires a node. Only main touches the real clock and filesystem;
// tests inject their own.
type NodeOptions struct {
	Home       string
	Config     Config
	GenesisDoc []byte
	NodeKey    *ledger.PrivateKey
	Clock      func() time.Time // nil: time.Now
	Logger     *slog.Logger     // nil: discard
	FS         vfs.FS           // nil: OS filesystem (store under Home/data)
	// Listener, if set, serves the API instead of listening on Config.APIAddr.
	Listener net.Listener
	// PeerNet links the node to the other cluster members. Required when
	// genesis lists more than one node or the node joins a cluster.
	PeerNet PeerNet
	// Join makes a node that is not in genesis start as a new member
	// waiting to be added to the cluster.
	Join bool
	// API bounds the API's clients (zero: defaults).
	API APILimits
	// RaftCompactEvery is how many applied raft entries go between log
	// compactions (default 1000; half as many are kept). Tests lower it to
	// make snapshots happen.
	RaftCompactEvery uint64
	// SyncTimeout is how long a node catching up waits for a member's next
	// block or state answer before it asks another member (default 5 s for
	// blocks, 30 s for state). Tests lower it.
	SyncTimeout time.Duration
	// JobExecutor runs the jobs this node executes, verifies and
	// re-executes for a challenge (nil: the VM's Jobs purpose, created on
	// first use). Tests inject a native one.
	JobExecutor jobrun.Executor
	// JobCacheDir holds the Jobs VM's compilation cache ("": Home/data/job-cache).
	JobCacheDir string
}

// Node is one running sos node: store, execution, mempool, block production
// and the API.
type Node struct {
	opts      NodeOptions
	vm        VMs
	log       *slog.Logger
	store     *ledger.Store
	chain     *Chain
	mempool   *Mempool
	events    *Events
	metrics   *Metrics
	blobs     *blob.Store       // <home>/blobs: job modules, inputs and outputs
	jobs      *JobRegistry      // what this node's executor and verifier know of jobs
	jobsvc    *jobNode          // executor, verifier, committee duty (jobnode.go)
	txMu      sync.Mutex        // serializes picking nonces and submitting this node's own transactions
	cluster   *cluster          // nil: a single node that makes its own blocks
	transport *sosnet.Transport // the QUIC peer network, when this node made it
	clock     func() time.Time
	nodeID    string
	storage   *storageWorker // fetches and proves the blobs pinned to this node's leases (storage.go)
	follow    *followHub     // the workers that follow this member (worker_member.go); nil without a transport

	apiAddr   atomic.Value // string, once listening
	ready     chan struct{}
	trigger   chan struct{}
	announced chan *BuiltBlock
	running   atomic.Bool // the announcer goroutine is running

	// runMu guards runStop and runDone: Close stops a running Run and waits
	// for it before closing the stores its goroutines (raft apply, block
	// production, jobs) still use.
	runMu   sync.Mutex
	runStop context.CancelFunc
	runDone chan struct{}
	halted  atomic.Value // error that stopped block production

	chainMinGas string   // the market's min_gas_prices the mempool enforces
	logs        *logRing // recent log records (GET /v1/logs)

	// Admission (admission.go): pending join requests, join tokens, and the
	// dial-backs in flight.
	joins     *joinRequests
	tokens    joinTokens
	dialBacks chan struct{}
	joinWarn  logLimit
}

// OpenNode opens the store, commits genesis on first start and prepares
// the node; Run starts it.
func OpenNode(opts NodeOptions) (*Node, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(discard{}, nil))
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	// The recent records are kept for GET /v1/logs (logring.go).
	logs := &logRing{}
	opts.Logger = slog.New(&ringHandler{next: opts.Logger.Handler(), ring: logs})
	if err := opts.Config.Validate(); err != nil {
		return nil, err
	}
	if opts.NodeKey == nil {
		return nil, fmt.Errorf("kernel: node key missing")
	}
	if err := checkRetention(opts); err != nil {
		return nil, err
	}
	g, err := ledger.ParseGenesis(opts.GenesisDoc)
	if err != nil {
		return nil, err
	}
	var store *ledger.Store
	if opts.FS != nil {
		store, err = ledger.Open("data", ledger.StoreOptions{FS: opts.FS, Logger: opts.Logger})
	} else {
		store, err = ledger.OpenDir(opts.Home, ledger.StoreOptions{Logger: opts.Logger})
	}
	if err != nil {
		return nil, err
	}
	vcfg := vm.Config{Logger: opts.Logger, ModuleCacheSize: ModuleCacheSize(g.Params)}
	if opts.FS == nil && opts.Home != "" {
		// wazero's on-disk compilation cache: a restart does not recompile
		// every contract (1.5 s cold for a Go contract, 50 ms cached).
		vcfg.CacheDir = filepath.Join(opts.Home, "data", "wasm-cache")
	}
	machine, err := NewVMs(context.Background(), vcfg)
	if err != nil {
		store.Close()
		return nil, err
	}
	chain := NewChainWithVM(store, g, machine)
	if err := chain.InitGenesis(opts.GenesisDoc); err != nil {
		machine.Close(context.Background())
		store.Close()
		return nil, err
	}
	minPrices, err := chain.denoms.ParseGasPrices(opts.Config.MinGasPrices)
	if err != nil {
		machine.Close(context.Background())
		store.Close()
		return nil, fmt.Errorf("kernel: config: min_gas_prices: %w", err)
	}
	blobs, err := openBlobs(opts)
	if err != nil {
		machine.Close(context.Background())
		store.Close()
		return nil, err
	}
	mp := map[string]ledger.GasPrice{}
	for _, p := range minPrices {
		mp[p.Denom] = p
	}
	n := &Node{
		opts: opts, vm: machine, log: opts.Logger, store: store, chain: chain, blobs: blobs,
		mempool: NewMempool(chain, MempoolConfig{MaxTxs: opts.Config.MempoolSize, MinGasPrices: mp}),
		events:  NewEvents(), metrics: NewMetrics(), clock: opts.Clock, logs: logs,
		nodeID: opts.NodeKey.Public().Fingerprint(),
		ready:  make(chan struct{}), trigger: make(chan struct{}, 1), announced: make(chan *BuiltBlock, 64),
		joins: newJoinRequests(MaxJoinRequests, JoinRequestTTL), dialBacks: make(chan struct{}, maxDialBacks),
		joinWarn: logLimit{every: 10 * time.Second},
	}
	if opts.Home != "" {
		n.tokens = joinTokens{dir: filepath.Join(opts.Home, JoinTokenDir)}
	}
	n.jobs = newJobRegistry(n.metrics)
	if n.jobsvc, err = newJobNode(n); err != nil {
		n.Close()
		return nil, err
	}
	n.storage = newStorageWorker(n)
	n.metrics.Height.Set(float64(store.Head().Height))
	n.metrics.BuildInfo(Version, g.ChainID)
	chain.verified = n.mempool.Lookup // a block's txs this node admitted are not verified again
	n.applyChainMinGasPrices()
	members, err := MembersFromLedger(store)
	if err != nil {
		n.Close()
		return nil, err
	}
	join := opts.Join || opts.Config.Join != ""
	if len(members) > 1 || join {
		seed, err := readJoinSeed(opts.Home)
		if err != nil {
			n.Close()
			return nil, err
		}
		pn := opts.PeerNet
		if pn == nil {
			t, err := listenPeers(context.Background(), opts, g.ChainID, store.Head().Genesis)
			if err != nil {
				n.Close()
				return nil, err
			}
			// Join requests are answered, never obeyed: the handler admits
			// nobody on its own (admission.go).
			t.SetJoinHandler(n.handleJoin)
			n.transport = t
			// The data plane: a job's blobs go to members and to the
			// worker its offer names (jobnode.go), pinned blobs to the
			// holders of their leases (storage.go).
			n.serveBlobs()
			// Workers (non-members an offer names) follow the chain and
			// send their results on KindFollow (worker_member.go).
			n.follow = newFollowHub(n, t)
			t.Handle(sosnet.KindFollow, n.follow.handle)
			pn = quicNet{t}
		}
		if n.cluster, err = newCluster(n, pn, members, seed, join); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// LoadHome reads config, genesis and node key from a home directory.
func LoadHome(home string) (NodeOptions, error) {
	cfg, err := LoadConfig(home)
	if err != nil {
		return NodeOptions{}, err
	}
	doc, err := os.ReadFile(filepath.Join(home, GenesisFile))
	if err != nil {
		return NodeOptions{}, fmt.Errorf("kernel: %w", err)
	}
	key, _, err := keyring.ReadKeyFile(filepath.Join(home, NodeKeyFile))
	if err != nil {
		return NodeOptions{}, err
	}
	return NodeOptions{Home: home, Config: cfg, GenesisDoc: doc, NodeKey: key}, nil
}

// Chain returns the node's chain.
func (n *Node) Chain() *Chain { return n.chain }

// Mempool returns the node's mempool.
func (n *Node) Mempool() *Mempool { return n.mempool }

// Events returns the node's event hub.
func (n *Node) Events() *Events { return n.events }

// NodeID is the fingerprint of the node's ML-DSA key.
func (n *Node) NodeID() string { return n.nodeID }

// Ready is closed once the API is serving.
func (n *Node) Ready() <-chan struct{} { return n.ready }

// APIAddr is the address the API listens on (after Ready).
func (n *Node) APIAddr() string { s, _ := n.apiAddr.Load().(string); return s }

// Blobs is the node's blob store: what job modules, inputs and outputs
// are stored in (the executor reads and writes it; the API serves it).
func (n *Node) Blobs() *blob.Store { return n.blobs }

// Jobs is the node-local registry of jobs its executor runs and its
// verifier checked.
func (n *Node) Jobs() *JobRegistry { return n.jobs }

// Close releases the VM and closes the stores. A Run still going is
// stopped first and waited for, so none of its goroutines (raft apply,
// block production, jobs) touches a closed store.
func (n *Node) Close() error {
	n.runMu.Lock()
	stop, done := n.runStop, n.runDone
	n.runMu.Unlock()
	if stop != nil {
		stop()
		<-done
	}
	var terr error
	if n.transport != nil {
		terr = n.transport.Close()
	}
	var jerr error
	if n.jobsvc != nil {
		jerr = n.jobsvc.close()
	}
	return errors.Join(terr, jerr, n.vm.Close(context.Background()), n.blobs.Close(), n.store.Close())
}

// Run serves the API and produces blocks until ctx ends or block production
// fails (a full disk, say): then it stops and returns why. Committed blocks
// are never affected by a failure.
func (n *Node) Run(ctx context.Context) error {
	ln := n.opts.Listener
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", n.opts.Config.APIAddr)
		if err != nil {
			return fmt.Errorf("kernel: API listen on %s: %w", n.opts.Config.APIAddr, err)
		}
	}
	n.apiAddr.Store(ln.Addr().String())
	srv, ln := n.apiServer(ln)
	ctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	defer close(done)
	defer stop()
	n.runMu.Lock()
	n.runStop, n.runDone = stop, done
	n.runMu.Unlock()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("kernel: API: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	})
	if n.cluster != nil {
		g.Go(func() error { return n.cluster.run(ctx) })
	} else {
		g.Go(func() error { return n.produce(ctx) })
	}
	g.Go(func() error { return n.jobsvc.run(ctx) })
	g.Go(func() error { return n.storage.run(ctx) })
	g.Go(func() error { return n.prune(ctx) })
	if n.follow != nil {
		g.Go(func() error { return n.follow.run(ctx) })
	}
	g.Go(func() error {
		// A ledger from an older version has no transaction index: build it
		// for the stored blocks, newest first, while the node runs (searches
		// report the height the index covers from in the meantime). A
		// failure here is logged: it must not stop the node.
		if err := n.store.BuildIndex(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("building the transaction index for older blocks failed; searches cover only newer blocks", "err", err)
		}
		return nil
	})
	n.running.Store(true)
	g.Go(func() error {
		defer n.running.Store(false)
		for {
			select {
			case <-ctx.Done():
				return nil
			case bb := <-n.announced:
				n.announce(bb)
			}
		}
	})
	close(n.ready)
	head := n.store.Head()
	n.log.Info("node started", "node_id", n.nodeID, "chain_id", head.ChainID, "height", head.Height, "api", "http://"+ln.Addr().String())
	return g.Wait()
}

// produce makes a block every interval (or sooner when a full block is
// waiting).
func (n *Node) produce(ctx context.Context) error {
	interval := n.opts.Config.BlockInterval.Duration
	t := time.NewTimer(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-n.trigger:
		}
		start := time.Now()
		if err := n.ProduceBlock(ctx); err != nil {
			n.halted.Store(err)
			n.log.Error("block production stopped", "err", err)
			return err
		}
		next := interval - time.Since(start)
		if n.mempool.Size() >= int(n.chain.params.MaxBlockTxs) || next < 0 {
			next = 0
		}
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// ProduceBlock builds, commits and announces one block from the mempool.
// With no transactions and empty blocks off it does nothing.
func (n *Node) ProduceBlock(ctx context.Context) error {
	max := int(n.chain.params.MaxBlockTxs)
	cands := n.mempool.Reap(max + max/4) // a few spares for rejects
	if len(cands) == 0 && !n.opts.Config.EmptyBlocks {
		return nil
	}
	t0 := time.Now()
	bb, err := n.chain.BuildBlock(ctx, cands, n.clock().UnixMilli(), n.opts.NodeKey)
	if err != nil {
		return err
	}
	t1 := time.Now()
	if err := n.chain.Commit(bb); err != nil {
		return err
	}
	n.afterCommit(bb, t1.Sub(t0), time.Since(t1))
	return nil
}

// afterCommit updates the mempool, metrics and event stream for a block
// just committed (built here or received from the cluster).
func (n *Node) afterCommit(bb *BuiltBlock, build, commit time.Duration) {
	if len(bb.Rejected) > 0 {
		n.log.Info("transactions left out of a block", "height", bb.Block.Header.Height, "count", len(bb.Rejected), "first", bb.Rejected[0].Err)
	}
	n.mempool.Update(bb)
	n.applyChainMinGasPrices()
	n.observe(bb, build, commit)
	n.signCertificates() // rome: this node's signatures for pending certificates (kernel/rome.go)
	n.jobsvc.afterCommit(bb)
	if n.follow != nil {
		n.follow.afterCommit(bb)
	}
	n.storage.Kick() // storage: fetch and prove what this node holds (kernel/storage.go)
	// Rendering thousands of tx events is done off the block path, in order.
	if n.running.Load() {
		n.announced <- bb // buffered; blocks only if the announcer is far behind
	} else {
		n.announce(bb)
	}
}

func (n *Node) observe(bb *BuiltBlock, build, commit time.Duration) {
	m := n.metrics
	m.BlockBuild.Observe(build.Seconds())
	m.BlockCommit.Observe(commit.Seconds())
	m.Height.Set(float64(bb.Block.Header.Height))
	m.Txs.Add(float64(len(bb.Receipts)))
	m.BlockTxs.Observe(float64(len(bb.Receipts)))
	var gas uint64
	for i, r := range bb.Receipts {
		gas += r.GasUsed
		if r.Code != ledger.CodeOK {
			m.TxsFailed.Inc()
		} else if i < len(bb.Included) && isJobKind(bb.Included[i].Tx.Payload.Kind()) {
			m.countJobEvents(r.Events)
		}
	}
	m.countJobEvents(bb.EndEvents)
	m.GasUsed.Add(float64(gas))
	m.MempoolSize.Set(float64(n.mempool.Size()))
	if len(bb.Receipts) > 0 {
		n.log.Debug("block committed", "height", bb.Block.Header.Height, "txs", len(bb.Receipts), "build", build, "commit", commit)
	}
}

func (n *Node) announce(bb *BuiltBlock) {
	h := bb.Block.Header
	n.events.Publish("block", client.BlockEvent{
		Height: h.Height, Hash: bb.Hash.String(), TimeMs: h.Time, StateRoot: h.StateRoot.String(),
		NumTxs: h.NumTxs, GasUsed: h.GasUsed,
	})
	if !n.events.Listening() {
		return // the block event above is cheap; thousands of tx events are not
	}
	for i, p := range bb.Included {
		r := bb.Receipts[i]
		n.events.Publish("tx", client.TxEvent{
			TxHash: p.Hash.String(), Height: h.Height, Sender: p.Tx.Sender.String(), Kind: p.Tx.Payload.Kind().String(),
			Code: uint32(r.Code), GasUsed: r.GasUsed, Events: apiEvents(r.Events),
		})
		if r.Code == ledger.CodeOK && isJobKind(p.Tx.Payload.Kind()) {
			n.publishJobEvents(h.Height, p.Hash.String(), r.Events)
		}
	}
	if len(bb.EndEvents) > 0 {
		n.events.Publish("block_end", client.BlockEndEvent{Height: h.Height, Events: apiEvents(bb.EndEvents)})
		n.publishJobEvents(h.Height, "", bb.EndEvents)
	}
}

// Trigger asks for a block now (used when the mempool holds a full block).
func (n *Node) Trigger() {
	select {
	case n.trigger <- struct{}{}:
	default:
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// ParseLogLevel maps a config level to slog.
func ParseLogLevel(s string) slog.Level {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
