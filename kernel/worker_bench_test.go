package kernel

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/jobrun"
	"github.com/sos-kernel/sos/kernel/jobrun/jobruntest"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

// BenchmarkWorkerDispatch attaches workers (non-members, each the provider
// and node of its own offer, leased by its own consumer) to one 3-member
// cluster on loopback QUIC, all in this process, and runs trivial jobs on
// them (a native sha256sum stand-in, so the figure is the dispatch path,
// not the VM). Two modes per fleet size, one job per b.N:
//
//   - steady: two submitters, one job at a time each, the jobs assigned to
//     the workers in turn (with -benchtime 200x every worker of 200 runs
//     one; a single worker gets at most its two job slots' worth);
//   - burst: rounds in which every worker gets one job at once, each
//     ending when every result is admitted, until b.N jobs ran.
//
// Per job it reports
//
//   - dispatch-p50/p99-ms: the job_submit committed (the member the
//     consumer sent it to, which is also the member its worker follows,
//     answers ?wait=commit) → the worker's executor starts it: the update
//     with its header and proof, the worker's checks, its scheduling (it
//     can be negative: both leave the member at its commit);
//   - commit-p50-ms: submit sent → committed (the chain's part);
//   - submit-to-start-p50-ms: the two together;
//   - cpu-µs/job for the whole process, and member-cpu-µs/job and
//     worker-cpu-µs/job: goroutines are labelled by role and a CPU profile
//     taken over the run is summed by label (the driver's signing and HTTP
//     client are unlabelled).
//
// Compare workers=1 with workers=N: the brief asks dispatch p50 within 2×
// and the members' CPU per job flat. N is 200 unless SOS_BENCH_WORKERS
// lists other counts (the curve: SOS_BENCH_WORKERS=2,10,50,200; 1 always
// runs first, once) (SOS_BENCH_SETTLE_INTERVAL sets how often idle
// leases are paid, SOS_BENCH_STATE_ACCOUNTS adds unused accounts to the
// genesis so that the state is not near-empty, SOS_BENCH_FLUSH=1 flushes
// the members' memtables before each measured run, so that what the fleet's
// setup left in them does not price the run's inserts). A fleet of 200 takes minutes to set up (offers,
// requests, an epoch, 200 nodes), once per count:
//
//	go test ./kernel -run '^$' -bench BenchmarkWorkerDispatch -benchtime 200x -count 2
func BenchmarkWorkerDispatch(b *testing.B) {
	counts := []int{1, 200}
	if s := os.Getenv("SOS_BENCH_WORKERS"); s != "" {
		// The single worker is the reference: first, once, listed or not.
		counts = counts[:1]
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.Atoi(f)
			if err != nil || n < 1 {
				b.Fatalf("SOS_BENCH_WORKERS=%q: want a comma-separated list of counts", s)
			}
			if !slices.Contains(counts, n) {
				counts = append(counts, n)
			}
		}
	}
	for _, n := range counts {
		b.Run(fmt.Sprintf("workers=%d", n), func(b *testing.B) {
			fl := newWorkerFleet(b, n)
			defer fl.close()
			b.Run("steady", func(b *testing.B) { fl.bench(b, fl.steady) })
			if n > 1 {
				// The same steady load on one worker while the others stay
				// attached: what attached workers cost the members per job,
				// apart from the jobs touching n workers' records.
				b.Run("steady-one", func(b *testing.B) { fl.bench(b, func(b *testing.B) { fl.steadyOver(b, 1) }) })
			}
			b.Run("burst", func(b *testing.B) {
				// b.N jobs: rounds of one job per worker.
				fl.bench(b, func(b *testing.B) {
					for range (b.N + n - 1) / n {
						fl.roundTrip(b)
					}
				})
			})
		})
	}
}

// workerFleet is the benchmark's cluster and workers.
type workerFleet struct {
	tb      testing.TB
	ctx     context.Context
	cancel  context.CancelFunc
	doc     []byte
	addrs   []string
	nodes   []*Node
	clients []*client.Client
	stops   []func()
	workers []*Worker
	wkeys   []*ledger.PrivateKey
	cons    []*ledger.PrivateKey
	lease   []uint64 // by worker
	nonce   []uint64 // the consumer's next nonce, by worker
	builder []*txbuild.Builder
	module  ledger.BlobRef
	input   ledger.BlobRef

	mu    sync.Mutex
	byJob map[uint64]time.Time // when a job's run began
	count []uint64             // by worker: jobs sent to it
	sent  []time.Time          // by worker: when this round's submit was sent
	// by worker: when the member it was sent to answered that it committed
	committed []time.Time
	clat      []time.Duration
	dlat      []time.Duration // commit → start
	started   []time.Time     // by worker: when its executor began this round's job
	lat       []time.Duration
	round     uint64
}

// fleetExec is a worker's executor: it notes when a job starts.
type fleetExec struct {
	fl  *workerFleet
	idx int
}

func (x fleetExec) Run(ctx context.Context, s *jobrun.Spec) (*jobrun.Run, error) {
	now := time.Now()
	x.fl.mu.Lock()
	if _, ok := x.fl.byJob[s.JobID]; !ok {
		x.fl.byJob[s.JobID] = now
	}
	if x.fl.started[x.idx].IsZero() {
		x.fl.started[x.idx] = now
	}
	x.fl.mu.Unlock()
	return jobruntest.Sha256Sum{}.Run(ctx, s)
}

// roleLabel labels the goroutines of members and workers, so that a CPU
// profile tells their shares apart.
const roleLabel = "sos_role"

func newWorkerFleet(tb testing.TB, n int) *workerFleet {
	tb.Helper()
	start := time.Now()
	// Generous: on a 2-core machine shared with other builds, setting up
	// 200 workers on a 100,000-account genesis has taken over 15 minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	fl := &workerFleet{tb: tb, ctx: ctx, cancel: cancel, sent: make([]time.Time, n), committed: make([]time.Time, n), started: make([]time.Time, n),
		lease: make([]uint64, n), nonce: make([]uint64, n),
		byJob: map[uint64]time.Time{}, count: make([]uint64, n)}
	g := &ledger.Genesis{ChainID: "worker-fleet", GenesisTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Denoms: ledger.DefaultDenoms(), Params: ledger.DefaultParams()}
	var keys []*ledger.PrivateKey
	for i := 0; i < 3; i++ {
		k := seededKey(tb, 80+i)
		keys, fl.addrs = append(keys, k), append(fl.addrs, freeUDPTB(tb))
		g.Nodes = append(g.Nodes, ledger.GenesisNode{PubKey: hex.EncodeToString(k.Public().Bytes()), Addr: fl.addrs[i]})
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: k.Address(), Balances: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000_000}}})
	}
	for i := 0; i < n; i++ {
		w, c := seededKey(tb, 20_000+i), seededKey(tb, 40_000+i)
		fl.wkeys, fl.cons = append(fl.wkeys, w), append(fl.cons, c)
		for _, k := range []*ledger.PrivateKey{w, c} {
			g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: k.Address(), Balances: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000_000_000}}})
		}
	}
	// SOS_BENCH_STATE_ACCOUNTS adds that many funded accounts nobody uses
	// to the genesis: a chain whose state is not tiny, so that what the
	// fleet's own records (offers, requests, leases, accounts) add to the
	// state tree's depth and the store is what it would be on a chain in
	// use, not a tenfold growth of a near-empty one.
	if v := os.Getenv("SOS_BENCH_STATE_ACCOUNTS"); v != "" {
		extra, err := strconv.Atoi(v)
		if err != nil || extra < 0 {
			tb.Fatalf("SOS_BENCH_STATE_ACCOUNTS=%q: want a number of accounts", v)
		}
		for i := range extra {
			var a ledger.Address
			h := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("sos-bench-account"), uint64(i)))
			copy(a[:], h[:])
			g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: a, Balances: ledger.Coins{{Denom: "uTFLP", Amount: 1_000}}})
		}
	}
	rj, gj, err := rome.GenesisSections(keys[0].Public())
	if err != nil {
		tb.Fatal(err)
	}
	var r map[string]any
	_ = json.Unmarshal(rj, &r)
	r["epoch_blocks"], r["cert_period_epochs"] = 5, 100000
	// SOS_BENCH_SETTLE_INTERVAL sets settle_interval_epochs (default 10):
	// how often an idle lease is paid, so how many of the fleet's leases
	// an epoch's end sweeps (leases/interval). A large one takes that
	// per-epoch cost, which is not the jobs', out of the figures.
	if v := os.Getenv("SOS_BENCH_SETTLE_INTERVAL"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n == 0 {
			tb.Fatalf("SOS_BENCH_SETTLE_INTERVAL=%q: want a number of epochs", v)
		}
		r["settle_interval_epochs"] = n
	}
	r["jobs"] = map[string]any{"timeout_blocks": 2000, "challenge_blocks": 200, "verdict_blocks": 200, "challenge_deposit": "1000uTFLP"}
	rj, _ = json.Marshal(r)
	g.Extra = map[string]json.RawMessage{"rome": rj, "gov": gj}
	if fl.doc, err = g.Marshal(); err != nil {
		tb.Fatal(err)
	}
	for i := range keys {
		fl.startMember(i, keys[i])
	}
	c := fl.clients[0]
	send := func(i int, key *ledger.PrivateKey, p ledger.Payload) error {
		bld, err := txbuild.New(ctx, fl.clients[i%3])
		if err != nil {
			return err
		}
		_, err = bld.Send(ctx, key, p, txbuild.Options{Wait: true, GasLimit: 2_000_000})
		return err
	}
	// Blocks come only with transactions (no empty blocks): a transfer
	// committed says there is a leader.
	fl.wait("a leader", func() bool {
		tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		bld, err := txbuild.New(tctx, c)
		if err != nil {
			return false
		}
		_, err = bld.Send(tctx, keys[0], &ledger.Transfer{To: keys[1].Address(), Amount: ledger.Coins{{Denom: "uTFLP", Amount: 1}}}, txbuild.Options{Wait: true, GasLimit: 2_000_000})
		return err == nil
	})

	// Each worker key offers compute naming itself; each consumer asks for
	// that much. Sent in parallel, a few dozen at a time.
	var eg errgroup.Group
	eg.SetLimit(32)
	for i := 0; i < n; i++ {
		eg.Go(func() error {
			return send(i, fl.wkeys[i], &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: 1, Amount: 10}},
				Price: []ledger.ResourceAmount{{Kind: 1, Amount: 5}}, Node: fl.wkeys[i].Address(), Bond: ledger.Coins{{Denom: "uTFLP", Amount: 1_000_000}}})
		})
	}
	if err := eg.Wait(); err != nil {
		tb.Fatalf("offers: %v", err)
	}
	for i := 0; i < n; i++ {
		eg.Go(func() error {
			return send(i, fl.cons[i], &ledger.RomeRequest{Demand: []ledger.ResourceAmount{{Kind: 1, Amount: 10}},
				MaxPrice: []ledger.ResourceAmount{{Kind: 1, Amount: 5}}, Epochs: 100000})
		})
	}
	if err := eg.Wait(); err != nil {
		tb.Fatalf("requests: %v", err)
	}
	byProvider := map[string]int{}
	for i, k := range fl.wkeys {
		byProvider[k.Address().String()] = i
	}
	byConsumer := map[string]int{}
	for i, k := range fl.cons {
		byConsumer[k.Address().String()] = i
	}
	consOf := make([]int, n)
	// Blocks come only with transactions (no empty blocks): transfers keep
	// the chain, and so the epochs that start the leases, moving.
	tick := 0
	fl.wait(fmt.Sprintf("%d active leases", n), func() bool {
		tick++
		if tick%4 == 0 {
			_ = send(0, keys[0], &ledger.Transfer{To: keys[1].Address(), Amount: ledger.Coins{{Denom: "uTFLP", Amount: 1}}})
		}
		leases, err := c.RomeLeases(ctx, client.RomeFilter{Status: "active", Limit: 1000})
		mk, merr := c.RomeMarket(ctx)
		if err != nil || merr != nil {
			return false
		}
		got := 0
		for _, l := range leases {
			w, ok1 := byProvider[l.Provider]
			ci, ok2 := byConsumer[l.Consumer]
			if ok1 && ok2 && mk.Epoch >= l.StartEpoch && fl.lease[w] == 0 {
				fl.lease[w], consOf[w] = l.ID, ci
				got++
			}
		}
		for _, l := range fl.lease {
			if l == 0 {
				return false
			}
		}
		return true
	})
	// A worker's jobs are submitted by the consumer of its lease, whose
	// nonce 0 was its request.
	cons := make([]*ledger.PrivateKey, n)
	for w := range cons {
		cons[w] = fl.cons[consOf[w]]
		fl.nonce[w] = 1
	}
	fl.cons = cons
	// Module and input on every member (no staging in the measured path).
	for i := range fl.clients {
		fl.module = fl.upload(i, testModule)
		fl.input = fl.upload(i, []byte("a trivial job's input\n"))
	}
	for i := range fl.clients {
		bld, err := txbuild.New(ctx, fl.clients[i])
		if err != nil {
			tb.Fatal(err)
		}
		fl.builder = append(fl.builder, bld)
	}
	for i := 0; i < n; i++ {
		fl.startWorker(i)
	}
	fl.wait("every worker following", func() bool {
		for _, w := range fl.workers {
			if w.Status().Height == 0 {
				return false
			}
		}
		return true
	})
	// One round unmeasured: each worker fetches the module and input once.
	fl.roundTrip(tb)
	tb.Logf("fleet of %d workers ready in %v", n, time.Since(start).Round(time.Millisecond))
	return fl
}

func freeUDPTB(tb testing.TB) string {
	tb.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

func (fl *workerFleet) wait(what string, cond func() bool) {
	fl.tb.Helper()
	for !cond() {
		if fl.ctx.Err() != nil {
			fl.tb.Fatalf("%s: not reached in time", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (fl *workerFleet) upload(i int, p []byte) ledger.BlobRef {
	fl.tb.Helper()
	res, err := fl.clients[i].PutBlob(fl.ctx, bytes.NewReader(p), int64(len(p)), "")
	if err != nil {
		fl.tb.Fatal(err)
	}
	id, err := ledger.ParseBlobID(res.ID)
	if err != nil {
		fl.tb.Fatal(err)
	}
	return ledger.BlobRef{ID: id, Size: res.Size}
}

func (fl *workerFleet) startMember(i int, key *ledger.PrivateKey) {
	tb := fl.tb
	cfg := DefaultConfig()
	cfg.P2PAddr, cfg.BlockInterval, cfg.JobVerify = fl.addrs[i], Duration{50 * time.Millisecond}, "none"
	// Blocks only when there are transactions: what members spend per job,
	// not per idle block.
	cfg.EmptyBlocks = false
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	home, err := os.MkdirTemp("", "sos-fleet-member")
	if err != nil {
		tb.Fatal(err)
	}
	var n *Node
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	pprof.Do(ctx, pprof.Labels(roleLabel, "member"), func(ctx context.Context) {
		n, err = OpenNode(NodeOptions{Home: home, Config: cfg, GenesisDoc: fl.doc, NodeKey: key, Listener: ln})
		if err == nil {
			go func() { done <- n.Run(ctx) }()
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	<-n.Ready()
	c, _ := client.New("http://" + n.APIAddr())
	fl.nodes, fl.clients = append(fl.nodes, n), append(fl.clients, c)
	fl.stops = append(fl.stops, func() {
		cancel()
		<-done
		n.Close()
		os.RemoveAll(home)
	})
}

func (fl *workerFleet) startWorker(i int) {
	tb := fl.tb
	home, err := os.MkdirTemp("", "sos-fleet-worker")
	if err != nil {
		tb.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.P2PAddr = "127.0.0.1:0"
	m := i % 3
	var w *Worker
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	pprof.Do(ctx, pprof.Labels(roleLabel, "worker"), func(ctx context.Context) {
		w, err = OpenWorker(WorkerOptions{Home: home, Config: cfg, GenesisDoc: fl.doc, NodeKey: fl.wkeys[i],
			Follow: fl.nodes[m].NodeID() + "@" + fl.addrs[m], JobExecutor: fleetExec{fl, i}})
		if err == nil {
			go func() { done <- w.Run(ctx) }()
		}
	})
	if err != nil {
		tb.Fatal(err)
	}
	fl.workers = append(fl.workers, w)
	fl.stops = append(fl.stops, func() {
		cancel()
		<-done
		w.Close()
		os.RemoveAll(home)
	})
}

func (fl *workerFleet) close() {
	// Workers first (they were started last), then the members.
	var wg sync.WaitGroup
	for i := len(fl.stops) - 1; i >= 3; i-- {
		wg.Go(fl.stops[i])
	}
	wg.Wait()
	for i := 2; i >= 0; i-- {
		fl.stops[i]()
	}
	fl.cancel()
}

// jobsSent is how many jobs were submitted so far.
func (fl *workerFleet) jobsSent() uint64 {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	var n uint64
	for _, c := range fl.count {
		n += c
	}
	return n
}

// steady is b.N jobs, one after the other from two submitters (a worker's
// two job slots: the single worker never queues), assigned to the workers
// in turn; each submitter waits for its job's result to be admitted.
func (fl *workerFleet) steady(b *testing.B) { fl.steadyOver(b, len(fl.workers)) }

// steadyOver is steady with the jobs spread over the first n workers only
// (the others stay attached and idle).
func (fl *workerFleet) steadyOver(b *testing.B, n int) {
	no := false
	var next sync.Mutex
	k := 0
	var eg errgroup.Group
	for range 2 {
		eg.Go(func() error {
			for {
				next.Lock()
				if k >= b.N {
					next.Unlock()
					return nil
				}
				i := k % n
				k++
				next.Unlock()
				p := &ledger.JobSubmit{LeaseID: fl.lease[i], Module: fl.module, Inputs: []ledger.JobFile{{Name: "data.bin", ID: fl.input.ID, Size: fl.input.Size}},
					GasLimit: 100_000_000, MemoryLimit: 1 << 24, OutputLimit: 1 << 20}
				fl.mu.Lock()
				nonce := fl.nonce[i]
				fl.nonce[i]++
				fl.count[i]++
				seq := fl.count[i]
				fl.mu.Unlock()
				raw, err := fl.builder[i%3].Prepare(fl.ctx, fl.cons[i], p, txbuild.Options{GasLimit: 2_000_000, Nonce: &nonce, WithPubKey: &no})
				if err != nil {
					return err
				}
				sent := time.Now()
				res, err := fl.clients[i%3].SubmitTx(fl.ctx, raw, true)
				if err != nil {
					return err
				}
				committed := time.Now()
				if res.Error != "" || res.Receipt == nil {
					return fmt.Errorf("job_submit for worker %d: %s", i, res.Error)
				}
				var out struct {
					JobID uint64 `json:"job_id"`
				}
				if err := json.Unmarshal([]byte(res.Receipt.Data), &out); err != nil {
					return err
				}
				var started time.Time
				fl.wait(fmt.Sprintf("job %d's result from worker %d", out.JobID, i), func() bool {
					fl.mu.Lock()
					started = fl.byJob[out.JobID]
					fl.mu.Unlock()
					return !started.IsZero() && fl.workers[i].Status().Results >= seq
				})
				fl.mu.Lock()
				fl.lat = append(fl.lat, started.Sub(sent))
				fl.clat = append(fl.clat, committed.Sub(sent))
				fl.dlat = append(fl.dlat, started.Sub(committed))
				fl.mu.Unlock()
			}
		})
	}
	if err := eg.Wait(); err != nil {
		b.Fatal(err)
	}
}

// roundTrip submits one job to every worker at once and waits until every
// worker has seen its result committed.
func (fl *workerFleet) roundTrip(b testing.TB) {
	n := len(fl.workers)
	fl.mu.Lock()
	fl.round++
	round := fl.round
	for i := range fl.started {
		fl.started[i] = time.Time{}
	}
	fl.mu.Unlock()
	no := false
	var eg errgroup.Group
	eg.SetLimit(64)
	for i := 0; i < n; i++ {
		eg.Go(func() error {
			p := &ledger.JobSubmit{LeaseID: fl.lease[i], Module: fl.module, Inputs: []ledger.JobFile{{Name: "data.bin", ID: fl.input.ID, Size: fl.input.Size}},
				GasLimit: 100_000_000, MemoryLimit: 1 << 24, OutputLimit: 1 << 20}
			nonce := fl.nonce[i]
			raw, err := fl.builder[i%3].Prepare(fl.ctx, fl.cons[i], p, txbuild.Options{GasLimit: 2_000_000, Nonce: &nonce, WithPubKey: &no})
			if err != nil {
				return err
			}
			fl.mu.Lock()
			fl.sent[i] = time.Now()
			fl.mu.Unlock()
			res, err := fl.clients[i%3].SubmitTx(fl.ctx, raw, true)
			if err != nil {
				return err
			}
			fl.mu.Lock()
			fl.committed[i] = time.Now()
			fl.mu.Unlock()
			if res.Error != "" {
				return fmt.Errorf("job_submit for worker %d: %s", i, res.Error)
			}
			fl.mu.Lock()
			fl.nonce[i]++
			fl.count[i]++
			fl.mu.Unlock()
			return nil
		})
	}
	if err := eg.Wait(); err != nil {
		b.Fatal(err)
	}
	fl.wait(fmt.Sprintf("round %d: every worker's result committed", round), func() bool {
		fl.mu.Lock()
		defer fl.mu.Unlock()
		for i, w := range fl.workers {
			if st := w.Status(); st.Results < fl.count[i] || st.Pending != 0 {
				return false
			}
		}
		return true
	})
	fl.mu.Lock()
	for i := range fl.started {
		fl.lat = append(fl.lat, fl.started[i].Sub(fl.sent[i]))
		fl.clat = append(fl.clat, fl.committed[i].Sub(fl.sent[i]))
		fl.dlat = append(fl.dlat, fl.started[i].Sub(fl.committed[i]))
	}
	fl.mu.Unlock()
}

func (fl *workerFleet) bench(b *testing.B, body func(b *testing.B)) {
	fl.tb = b
	fl.mu.Lock()
	fl.lat, fl.clat, fl.dlat = fl.lat[:0], fl.clat[:0], fl.dlat[:0]
	fl.mu.Unlock()
	var prof bytes.Buffer
	if err := pprof.StartCPUProfile(&prof); err != nil {
		b.Fatal(err)
	}
	if os.Getenv("SOS_BENCH_FLUSH") == "1" {
		for _, n := range fl.nodes {
			if err := n.store.Flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	cpu0 := processCPU()
	jobs0 := fl.jobsSent()
	b.ResetTimer()
	body(b)
	b.StopTimer()
	cpu := processCPU() - cpu0
	pprof.StopCPUProfile()
	if f := os.Getenv("SOS_BENCH_PROFILE"); f != "" {
		if err := os.WriteFile(f+"."+strings.ReplaceAll(b.Name(), "/", "_"), prof.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	byRole, err := cpuByLabel(prof.Bytes(), roleLabel)
	if err != nil {
		b.Fatal(err)
	}
	jobs := float64(fl.jobsSent() - jobs0)
	q := func(d []time.Duration, p float64) float64 {
		d = slices.Clone(d)
		slices.Sort(d)
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(fl.dlat, 0.5), "dispatch-p50-ms")
	b.ReportMetric(q(fl.dlat, 0.99), "dispatch-p99-ms")
	b.ReportMetric(q(fl.clat, 0.5), "commit-p50-ms")
	b.ReportMetric(q(fl.lat, 0.5), "submit-to-start-p50-ms")
	b.ReportMetric(jobs/b.Elapsed().Seconds(), "jobs/s")
	b.ReportMetric(float64(cpu.Microseconds())/jobs, "cpu-µs/job")
	b.ReportMetric(float64(byRole["member"].Microseconds())/jobs, "member-cpu-µs/job")
	b.ReportMetric(float64(byRole["worker"].Microseconds())/jobs, "worker-cpu-µs/job")
	b.ReportMetric(0, "ns/op")
}

// cpuByLabel sums a CPU profile's (pprof protobuf, gzipped) cpu time by
// the value of one goroutine label; samples without it count under "".
func cpuByLabel(prof []byte, key string) (map[string]time.Duration, error) {
	zr, err := gzip.NewReader(bytes.NewReader(prof))
	if err != nil {
		return nil, err
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		return nil, err
	}
	type sample struct {
		cpu   int64
		label map[int64]int64 // key string index → value string index
	}
	var strs []string
	var samples []sample
	bad := fmt.Errorf("cpu profile: malformed")
	for len(data) > 0 {
		num, typ, n := protowire.ConsumeTag(data)
		if n < 0 {
			return nil, bad
		}
		data = data[n:]
		switch {
		case num == 2 && typ == protowire.BytesType: // Sample
			sb, n := protowire.ConsumeBytes(data)
			if n < 0 {
				return nil, bad
			}
			data = data[n:]
			s := sample{label: map[int64]int64{}}
			var vals []int64
			for len(sb) > 0 {
				f, t, m := protowire.ConsumeTag(sb)
				if m < 0 {
					return nil, bad
				}
				sb = sb[m:]
				switch {
				case f == 2 && t == protowire.VarintType: // a value (Go writes two unpacked)
					v, m := protowire.ConsumeVarint(sb)
					if m < 0 {
						return nil, bad
					}
					vals, sb = append(vals, int64(v)), sb[m:]
				case f == 2 && t == protowire.BytesType: // packed values
					pb, m := protowire.ConsumeBytes(sb)
					if m < 0 {
						return nil, bad
					}
					sb = sb[m:]
					for len(pb) > 0 {
						v, k := protowire.ConsumeVarint(pb)
						if k < 0 {
							return nil, bad
						}
						vals, pb = append(vals, int64(v)), pb[k:]
					}
				case f == 3 && t == protowire.BytesType: // Label
					lb, m := protowire.ConsumeBytes(sb)
					if m < 0 {
						return nil, bad
					}
					sb = sb[m:]
					var lk, lv int64
					for len(lb) > 0 {
						g, u, k := protowire.ConsumeTag(lb)
						if k < 0 {
							return nil, bad
						}
						lb = lb[k:]
						if u != protowire.VarintType {
							k = protowire.ConsumeFieldValue(g, u, lb)
							if k < 0 {
								return nil, bad
							}
							lb = lb[k:]
							continue
						}
						v, k := protowire.ConsumeVarint(lb)
						if k < 0 {
							return nil, bad
						}
						lb = lb[k:]
						switch g {
						case 1:
							lk = int64(v)
						case 2:
							lv = int64(v)
						}
					}
					s.label[lk] = lv
				default:
					m := protowire.ConsumeFieldValue(f, t, sb)
					if m < 0 {
						return nil, bad
					}
					sb = sb[m:]
				}
			}
			if len(vals) >= 2 {
				s.cpu = vals[1] // samples/count, cpu/nanoseconds
			}
			samples = append(samples, s)
		case num == 6 && typ == protowire.BytesType: // string_table
			sb, n := protowire.ConsumeBytes(data)
			if n < 0 {
				return nil, bad
			}
			strs, data = append(strs, string(sb)), data[n:]
		default:
			n := protowire.ConsumeFieldValue(num, typ, data)
			if n < 0 {
				return nil, bad
			}
			data = data[n:]
		}
	}
	out := map[string]time.Duration{}
	for _, s := range samples {
		role := ""
		for k, v := range s.label {
			if int(k) < len(strs) && strs[k] == key && int(v) < len(strs) {
				role = strs[v]
			}
		}
		out[role] += time.Duration(s.cpu)
	}
	return out, nil
}
