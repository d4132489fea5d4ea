package kernel

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

// storBench is a chain with a leader that builds blocks and a follower
// that re-executes them (ExecuteBlock: every signature checked again,
// every transaction applied, state root compared) as every other node
// does, providers whose offers name their own holder nodes, consumers with
// one replicated storage request each, and one blob store on disk standing
// for the holders' disks.
type storBench struct {
	b        *testing.B
	leader   *testNet
	follower *testNet
	provs    []*ledger.PrivateKey
	nodes    []*ledger.PrivateKey
	cons     []*ledger.PrivateKey
	bs       *blob.Store
	log      *slog.Logger
	// reexec > 0: the follower executes each non-empty block reexec
	// times more before the measured run, without committing, for a
	// steadier figure of the execution alone (blockStats.reexec).
	reexec int
	// reexecEnd > 0: the follower executes each epoch-end block reexecEnd
	// times more, uncommitted, labelled end=reexec in a profile (enough
	// samples of the end block's execution for go tool pprof
	// -tagfocus=end=reexec; it has no commit).
	reexecEnd int
	// endLabel is the pprof label value "end" of the follower's epoch-end
	// block (set by untilNextEpoch: "settling" when leases are due for
	// settlement in the epoch, else "quiet"); other blocks are "no".
	endLabel string
}

// storBenchGenesis: the default market parameters (10-block epochs, one
// segment per challenge) with 1 MiB storage units so that small blobs
// fill a lease.
func storBenchGenesis(b *testing.B, validator *ledger.PrivateKey, accounts []*ledger.PrivateKey, samples uint64) []byte {
	g := &ledger.Genesis{ChainID: "storage-bench", GenesisTime: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
		Denoms: ledger.DefaultDenoms(), Params: ledger.DefaultParams()}
	g.Nodes = []ledger.GenesisNode{{PubKey: hex.EncodeToString(validator.Public().Bytes())}}
	funds := ledger.Coins{{Denom: "uKWTT", Amount: 1_000_000_000}, {Denom: "uTFLP", Amount: 1_000_000_000_000}}
	for _, k := range accounts {
		g.Accounts = append(g.Accounts, ledger.GenesisAccount{Address: k.Address(), Balances: funds})
	}
	rj, gj, err := rome.GenesisSections(validator.Public())
	if err != nil {
		b.Fatal(err)
	}
	var r map[string]any
	if err := json.Unmarshal(rj, &r); err != nil {
		b.Fatal(err)
	}
	st := r["storage"].(map[string]any)
	st["bytes_per_unit"] = 1 << 20
	if samples > 0 {
		st["samples"] = samples
	}
	r["request_ttl_epochs"] = 1000
	rj, _ = json.Marshal(r)
	g.Extra = map[string]json.RawMessage{"rome": rj, "gov": gj}
	doc, err := g.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	return doc
}

func newStorBench(b *testing.B, providers, consumers int, samples uint64) *storBench {
	sb := &storBench{b: b, log: slog.New(slog.DiscardHandler)}
	validator := seededKey(b, 0)
	var accounts []*ledger.PrivateKey
	for i := range providers {
		sb.provs = append(sb.provs, seededKey(b, 2000+i))
		sb.nodes = append(sb.nodes, seededKey(b, 3000+i))
	}
	for i := range consumers {
		sb.cons = append(sb.cons, seededKey(b, 4000+i))
	}
	accounts = append(append(append(accounts, sb.provs...), sb.nodes...), sb.cons...)
	doc := storBenchGenesis(b, validator, accounts, samples)
	sb.leader = openTestChain(b, b.TempDir(), doc, accounts)
	sb.follower = openTestChain(b, b.TempDir(), doc, accounts)
	bs, err := blob.Open(b.TempDir(), blob.Options{FS: noSyncFS{vfs.Default}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bs.Close() })
	sb.bs = bs
	return sb
}

// noSyncFS is the OS filesystem without fsyncs: putting 10,000 blobs
// takes seconds instead of minutes; proofs still read the files.
type noSyncFS struct{ vfs.FS }

type noSyncFile struct{ vfs.File }

func (noSyncFile) Sync() error { return nil }

func (fs noSyncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (fs noSyncFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

func (fs noSyncFS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.FS.OpenDir(name)
	if err != nil {
		return nil, err
	}
	return noSyncFile{f}, nil
}

// blockStats is what the follower spent on blocks and what they carried.
type blockStats struct {
	cpu    time.Duration // follower CPU: ExecuteBlock (signatures, execution, state root) and Commit
	blocks int
	txs    int
	bytes  int
	reexec time.Duration // follower CPU of sb.reexec extra ExecuteBlock runs (no commit)
	max    time.Duration // the largest cpu of one block
	maxTxs int           // the transactions of the block with the largest cpu
	// maxThread is the largest thread CPU of one block.
	maxThread time.Duration
	// thread is the CPU of the follower's executing goroutine alone (its
	// locked OS thread): cpu without what other goroutines did meanwhile
	// (background GC, Pebble flushes and compactions, the parallel
	// signature checks of transactions).
	thread time.Duration
	bg     background // during the last block
	keys   int        // state keys the last block changed
	// commit is the thread CPU of the last block's Commit (the rest of
	// thread is its ExecuteBlock).
	commit time.Duration
}

// blocks puts txs on chain in as many blocks as the block limits need:
// the leader builds and commits each, the follower re-executes and
// commits it. It fails on a rejected transaction.
func (sb *storBench) blocks(txs []*PendingTx) blockStats {
	b := sb.b
	var s blockStats
	for first := true; first || len(txs) > 0; first = false {
		bb, err := sb.leader.chain.BuildBlock(context.Background(), txs, sb.leader.store.Head().Time+500, sb.leader.nodeKey)
		if err != nil {
			b.Fatal(err)
		}
		if len(bb.Rejected) > 0 {
			b.Fatalf("block %d: %d rejected: %v", bb.Block.Header.Height, len(bb.Rejected), bb.Rejected[0].Err)
		}
		if err := sb.leader.chain.Commit(bb); err != nil {
			b.Fatal(err)
		}
		txs = txs[len(bb.Included):]
		for _, t := range bb.Block.Txs {
			s.bytes += len(t)
		}
		s.txs += len(bb.Block.Txs)
		s.blocks++
		if sb.reexec > 0 && len(bb.Block.Txs) > 0 {
			s.reexec += sb.reexecute(bb)
		}
		end := "no"
		if fc, err := sb.follower.chain.market.Clock(ledger.NewState(sb.follower.store)); err != nil {
			b.Fatal(err)
		} else if bb.Block.Header.Height >= fc.EndHeight && sb.endLabel != "" {
			end = sb.endLabel
			if sb.reexecEnd > 0 {
				pprof.Do(context.Background(), pprof.Labels("node", "follower", "end", "reexec"), func(context.Context) {
					s.reexec += sb.reexecuteN(bb, sb.reexecEnd)
				})
			}
		}
		bg0 := sb.background()
		// The thread's CPU is the executing goroutine's own only while it
		// stays on that thread.
		runtime.LockOSThread()
		c0, t0 := processCPU(), threadCPU()
		// -tagfocus=node=follower keeps the follower's work in a profile,
		// -tagfocus=end=settling (or quiet) its epoch-end blocks.
		pprof.Do(context.Background(), pprof.Labels("node", "follower", "end", end), func(ctx context.Context) {
			fb, err := sb.follower.chain.ExecuteBlock(ctx, bb.Block, sb.leader.nodeKey.Public())
			if err != nil {
				b.Fatal(err)
			}
			t1 := threadCPU()
			if err := sb.follower.chain.Commit(fb); err != nil {
				b.Fatal(err)
			}
			s.commit = threadCPU() - t1
			if fb.Prepared != nil {
				s.keys = len(fb.Prepared.Changes())
			}
		})
		t, c := threadCPU()-t0, processCPU()-c0
		runtime.UnlockOSThread()
		s.bg = sb.background().since(bg0)
		s.cpu += c
		s.thread += t
		if c > s.max {
			s.max, s.maxTxs = c, len(bb.Block.Txs)
		}
		s.maxThread = max(s.maxThread, t)
	}
	return s
}

// background is the process's background work so far: GC cycles and the
// CPU the runtime attributes to GC, and both stores' Pebble flushes and
// compactions (finished and running). The leader's count too: its flush,
// started by its own commit of the block, runs while the follower
// executes it, in the same process.
type background struct {
	gcCycles               uint64
	gcCPU                  float64 // seconds (runtime/metrics: updated as GC cycles end)
	allocBytes             uint64  // heap bytes allocated, by any goroutine
	flushes, compactions   int64   // finished, both stores
	running                int64   // flushes and compactions running, both stores
	followerMem, leaderMem uint64  // memtable bytes
}

var backgroundMetrics = []string{"/gc/cycles/total:gc-cycles", "/cpu/classes/gc/total:cpu-seconds", "/gc/heap/allocs:bytes"}

func (sb *storBench) background() background {
	ms := make([]metrics.Sample, len(backgroundMetrics))
	for i, n := range backgroundMetrics {
		ms[i].Name = n
	}
	metrics.Read(ms)
	f, l := sb.follower.store.DBStats(), sb.leader.store.DBStats()
	return background{gcCycles: ms[0].Value.Uint64(), gcCPU: ms[1].Value.Float64(), allocBytes: ms[2].Value.Uint64(),
		flushes: f.Flushes + l.Flushes, compactions: f.Compactions + l.Compactions,
		running:     f.FlushesRunning + l.FlushesRunning + f.CompactionsRunning + l.CompactionsRunning,
		followerMem: f.MemTableBytes, leaderMem: l.MemTableBytes}
}

// since is what happened between bg0 and bg: the counts' differences;
// running is the most running at either end (a flush or compaction that
// started before the block or is still running after it overlapped it).
func (bg background) since(bg0 background) background {
	return background{gcCycles: bg.gcCycles - bg0.gcCycles, gcCPU: bg.gcCPU - bg0.gcCPU, allocBytes: bg.allocBytes - bg0.allocBytes,
		flushes: bg.flushes - bg0.flushes, compactions: bg.compactions - bg0.compactions,
		running: max(bg.running, bg0.running), followerMem: bg.followerMem, leaderMem: bg.leaderMem}
}

// quiet: no GC cycle ended and no flush or compaction ran during it.
func (bg background) quiet() bool {
	return bg.gcCycles == 0 && bg.flushes == 0 && bg.compactions == 0 && bg.running == 0
}

// reexecute runs the follower's ExecuteBlock of bb sb.reexec times
// without committing (execution leaves the store unchanged) and returns
// the process CPU it took.
func (sb *storBench) reexecute(bb *BuiltBlock) time.Duration { return sb.reexecuteN(bb, sb.reexec) }

// reexecuteN runs the follower's ExecuteBlock of bb n times without
// committing and returns the process CPU it took.
func (sb *storBench) reexecuteN(bb *BuiltBlock, n int) time.Duration {
	c0 := processCPU()
	for range n {
		if _, err := sb.follower.chain.ExecuteBlock(context.Background(), bb.Block, sb.leader.nodeKey.Public()); err != nil {
			sb.b.Fatal(err)
		}
	}
	return processCPU() - c0
}

func (sb *storBench) clock() rome.Clock {
	c, err := sb.leader.chain.market.Clock(ledger.NewState(sb.leader.store))
	if err != nil {
		sb.b.Fatal(err)
	}
	return c
}

// untilNextEpoch adds empty blocks until the epoch changes and returns the
// follower's cost of the block that ended the epoch and of the others.
func (sb *storBench) untilNextEpoch() (end, others blockStats) {
	e := sb.clock().Epoch
	sb.endLabel = "quiet"
	if sb.settlingIn(e) > 0 {
		sb.endLabel = "settling"
	}
	defer func() { sb.endLabel = "" }()
	for range 1000 {
		s := sb.blocks(nil)
		if sb.clock().Epoch != e {
			return s, others
		}
		others.cpu += s.cpu
		others.thread += s.thread
		others.blocks += s.blocks
	}
	sb.b.Fatal("the epoch never ended")
	return
}

// settlingIn counts the leases whose settlement is due at the end of
// epoch e (Lease.NextSettle), from the leader's state.
func (sb *storBench) settlingIn(e uint64) int {
	ls, err := sb.leader.chain.market.Leases(ledger.NewState(sb.leader.store), 0, nil)
	if err != nil {
		sb.b.Fatal(err)
	}
	n := 0
	for _, l := range ls {
		if l.NextSettle == e {
			n++
		}
	}
	return n
}

// BenchmarkStorageEpoch is one epoch of storage proofs for 10,000 pinned
// blobs × 3 replicas on 100 providers' nodes (100 requests of 100 blobs,
// 3 replicas each; every provider holds 3 leases), through the real code
// paths: the challenges drawn at the end of the epoch's first block
// (measured apart: draw-block-*), each holder node's
// answer (rome.StorageDue, proofs from a blob store on disk, storage_proof
// batches signed by the node key), the follower's ExecuteBlock + Commit of
// the blocks carrying them (signature checks, proof verification, state
// root), and the epoch's last block (the end-of-epoch miss pass with the
// rest of the epoch's processing: settling 300 leases, certificates,
// matching). Blobs are 4 KiB, so proofs are 1,160 bytes; a 1 GiB blob's
// proof is 2,312 bytes and verifies in 7.5 µs instead of ≈2 µs
// (BenchmarkVerifyProof1GiB in package blob).
//
// Run it with -benchtime 1x (each op is 3 epochs) and -timeout 30m. It
// reports, per epoch: holder-cpu-ms (all 100 nodes' proving and
// signing, summed), verify-cpu-ms (one node applying the proof blocks),
// end-cpu-ms (one node's epoch-end block), base-end-cpu-ms (the same
// block the epoch before the blobs were pinned: the market without
// storage), empty-block-cpu-ms (one node applying an empty block: what
// every block costs, storage or not), proof-txs, proof-bytes and proven
// (holdings proven).
//
// Each holder node answers at its own block of the epoch, as a node with
// the default storage_proof_spread does (proofAnswerHeight: its
// transaction goes into the block after its answer height), so the proofs
// spread over the blocks after the draw; the -at-once variants answer as
// soon as the challenges are drawn (storage_proof_spread = 0), all in the
// epoch's second block. Per epoch it also reports proof-blocks (blocks
// carrying proofs), max-proof-block-cpu-ms (the follower's CPU for the
// dearest of them, the mean over epochs of each epoch's largest),
// max-proof-block-txs (the proof transactions in it) and, as
// shares of a block's time budget B (blockBudget), max-proof-block-%B
// (that block less what an empty block costs) and end-%B (end-cpu-ms less
// base-end-cpu-ms): the most storage work one block of the epoch does.
// max-end-cpu-ms and max-end-%B are the dearest epoch-end block of the
// run (not a mean), settling-epochs the share of epochs in which some
// lease's periodic settlement fell due; each epoch's end block and the
// leases due in it are logged. In a profile the follower's epoch-end
// blocks carry the label end=settling (leases due) or end=quiet, other
// blocks end=no: go tool pprof -tagfocus=end=quiet.
//
// The CPU figures are process CPU (getrusage), which also counts what
// the rest of the process did meanwhile: the GC's background marking of
// the whole heap (two nodes' caches), Pebble flushes and compactions. So
// each block also runs on a locked OS thread whose own CPU is measured
// (CLOCK_THREAD_CPUTIME_ID: the block's execution and commit, GC assists
// included, without the parallel signature checks of its transactions):
// end-thread-cpu-ms (mean), max-end-thread-cpu-ms and max-end-thread-%B;
// the GC cycles, flushes and compactions during each end block are
// logged, gc-end-blocks and db-end-blocks are the share of end blocks
// with any, and clean-end-cpu-ms and max-clean-end-cpu-ms the process CPU
// of the end blocks with none. The epoch's first block, which draws the
// challenges (no proof can be in it), is reported apart:
// draw-block-cpu-ms and draw-block-thread-cpu-ms (means),
// max-draw-block-thread-cpu-ms and max-draw-block-thread-%B (less an empty
// block's thread CPU, empty-block-thread-cpu-ms); it is not among the
// empty blocks. Each logged block's thread CPU is split into its
// ExecuteBlock and its Commit (the memtable inserts).
func BenchmarkStorageEpoch(b *testing.B) {
	spread := DefaultConfig().StorageProofSpread
	// holders=100 is the figure; holders=10 (1,000 blobs) has the same
	// work per holder node and sets up in seconds, for profiles.
	b.Run("holders=100", func(b *testing.B) { benchStorageEpoch(b, 100, 0, 0, spread) })
	b.Run("holders=10", func(b *testing.B) { benchStorageEpoch(b, 10, 0, 0, spread) })
	// Every holder node answers as soon as the challenges are drawn.
	b.Run("holders=100-at-once", func(b *testing.B) { benchStorageEpoch(b, 100, 0, 0, 0) })
	b.Run("holders=10-at-once", func(b *testing.B) { benchStorageEpoch(b, 10, 0, 0, 0) })
	// The follower executes each proof block 10 times more, uncommitted:
	// exec-us/proof-tx is a steadier per-transaction figure than
	// verify-cpu-ms on a shared machine (warm caches: a lower bound of
	// the execution part, without the commit).
	b.Run("holders=10-exec", func(b *testing.B) { benchStorageEpoch(b, 10, 0, 10, spread) })
	// The follower executes each epoch-end block 20 times more,
	// uncommitted, for profiles of the end block (-tagfocus=end=reexec).
	b.Run("holders=100-endexec", func(b *testing.B) { benchStorageEpoch(b, 100, 0, -20, spread) })
	// Every holding challenged every epoch: storage_samples at its maximum
	// (512) is above any node's ≈250-300 holdings.
	b.Run("holders=100-all", func(b *testing.B) { benchStorageEpoch(b, 100, rome.MaxStorageSamples, 0, spread) })
	b.Run("holders=10-all", func(b *testing.B) { benchStorageEpoch(b, 10, rome.MaxStorageSamples, 0, spread) })
}

// blockBudget is a block's time budget B in BENCHMARKS.md ("Storage proofs
// at scale"): a full block of 5,000 transactions at the sustained 15,100
// committed tx/s of BenchmarkEndToEnd20kTransfers.
const blockBudget = 331 * time.Millisecond

// benchStorageEpoch runs the figure for requests requests with
// storage_samples samples (0: the default); reexec > 0 re-executes each
// proof block that many times (storBench.reexec), reexec < 0 each
// epoch-end block -reexec times (storBench.reexecEnd: its measured run is
// then warm); the holder nodes answer
// at the heights proofAnswerHeight gives for spread.
func benchStorageEpoch(b *testing.B, requests int, samples uint64, reexec int, spread float64) {
	// A few more providers than requests: every request finds 3 with room.
	const pinsPerReq, blobSize = 100, 4096
	providers := requests + 5
	sb := newStorBench(b, providers, requests, samples)
	ctx := context.Background()
	var txs []*PendingTx
	for i, p := range sb.provs {
		txs = append(txs, sb.leader.tx(b, p, &ledger.RomeOffer{Capacity: []ledger.ResourceAmount{{Kind: rome.KindStorage, Amount: 3}},
			Price: []ledger.ResourceAmount{{Kind: rome.KindStorage, Amount: 1}}, Region: "r" + string(rune('a'+i%5)), Node: sb.nodes[i].Address(),
			Bond: ledger.Coins{{Denom: "uTFLP", Amount: 50_000_000}}}, 2_000_000))
	}
	for _, c := range sb.cons {
		txs = append(txs, sb.leader.tx(b, c, &ledger.RomeRequest{Demand: []ledger.ResourceAmount{{Kind: rome.KindStorage, Amount: 1}},
			MaxPrice: []ledger.ResourceAmount{{Kind: rome.KindStorage, Amount: 2}}, Epochs: 500, Replicas: 3}, 2_000_000))
	}
	sb.blocks(txs)
	// The match places the replicas (a request whose last replica found
	// no free provider is placed in a later epoch).
	var leases []rome.Lease
	for range 4 {
		sb.untilNextEpoch()
		ls, err := sb.leader.chain.market.Leases(ledger.NewState(sb.leader.store), 0, nil)
		if err != nil {
			b.Fatal(err)
		}
		if leases = ls; len(leases) == requests*3 {
			break
		}
	}
	reqOf := map[ledger.Address]uint64{}
	holders := map[ledger.Address]int{}
	for _, l := range leases {
		reqOf[l.Consumer] = l.RequestID
		holders[l.Provider]++
	}
	if len(leases) != requests*3 {
		b.Fatalf("%d leases on %d providers, want %d", len(leases), len(holders), requests*3)
	}
	b.Logf("%d leases on %d providers", len(leases), len(holders))
	nHolders := len(holders)
	base, _ := sb.untilNextEpoch() // the market's epoch end without storage

	// 10,000 distinct blobs, 100 pinned to each request.
	data := make([]byte, blobSize)
	txs = txs[:0]
	for j, c := range sb.cons {
		for k := range pinsPerReq {
			copy(data, seededBytes(blobSize, uint64(j*pinsPerReq+k)))
			data[0], data[1], data[2] = byte(j), byte(k), 0x5a
			id, size, err := sb.bs.Put(ctx, bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			txs = append(txs, sb.leader.tx(b, c, &ledger.BlobPin{RequestID: reqOf[c.Address()], Blob: ledger.BlobRef{ID: ledger.BlobID(id), Size: size}}, 2_000_000))
		}
	}
	sb.blocks(txs)
	// Challenges start storage_grace_epochs after the pins' epoch (drawn
	// in the first block of that epoch).
	hs, err := sb.leader.chain.market.NodeHoldings(ledger.NewState(sb.leader.store), sb.nodes[0].Address(), 1)
	if err != nil || len(hs) == 0 {
		b.Fatalf("node 0 holds nothing: %v", err)
	}
	for range 4 {
		if sb.clock().Epoch >= hs[0].Holding.From {
			break
		}
		sb.untilNextEpoch()
	}

	// Each op is epochsPerOp epochs: the setup above takes minutes on a
	// loaded machine, so -benchtime 1x still averages several epochs.
	const epochsPerOp = 3
	var holderCPU, verifyCPU, reexecCPU, endCPU, emptyCPU time.Duration
	emptyBlocks := 0
	var proofTxs, proofBytes, proofBlocks, proven int
	var maxProofCPU, maxEndCPU time.Duration
	// The end blocks' CPU on the executing thread alone, and the process
	// CPU of those during which no GC cycle ended and no flush or
	// compaction ran (clean).
	var endThread, maxEndThread, cleanEndCPU, maxCleanEndCPU, endReexec time.Duration
	// The epochs' first blocks, which draw the challenges (no proof can
	// be in them): process and thread CPU; the empty blocks' thread CPU;
	// the proof blocks' dearest thread CPU.
	var drawCPU, drawThread, maxDrawThread, emptyThread, maxProofThread time.Duration
	drawBlocks := 0
	cleanEnds, gcEnds, dbEnds := 0, 0, 0
	maxProofTxs, settlingEpochs := 0, 0
	if reexec < 0 {
		sb.reexecEnd = -reexec
	} else {
		sb.reexec = reexec
	}
	b.ResetTimer()
	// The label lets a profile (-cpuprofile) keep only the measured epochs:
	// go tool pprof -tagfocus=phase=epochs.
	pprof.Do(ctx, pprof.Labels("phase", "epochs"), func(context.Context) {
		for range b.N * epochsPerOp {
			clock := sb.clock()
			params, err := sb.leader.chain.market.Params(ledger.NewState(sb.leader.store))
			if err != nil {
				b.Fatal(err)
			}
			// The challenges are drawn at the end of the epoch's first
			// block. Each holder node answers once the head reaches its
			// answer height: its transaction goes into the next block.
			draw := clock.StartHeight
			if draw == clock.EndHeight { // one-block epoch: drawn at the end of the one before
				draw--
			}
			at := make([]uint64, len(sb.nodes))
			for i, n := range sb.nodes {
				at[i] = proofAnswerHeight(n.Address(), clock.Epoch, draw, clock.EndHeight, params.EpochBlocks, spread)
			}
			answered := make([]bool, len(sb.nodes))
			var epochMax time.Duration
			epochMaxTxs := 0
			for sb.leader.store.Head().Height+1 < clock.EndHeight {
				head := sb.leader.store.Head().Height
				c0 := processCPU()
				st := ledger.NewState(sb.leader.store)
				txs = txs[:0]
				for i, n := range sb.nodes {
					if answered[i] || head < at[i] {
						continue
					}
					answered[i] = true
					due, err := sb.leader.chain.market.StorageDue(st, n.Address(), 0)
					if err != nil {
						b.Fatal(err)
					}
					ans := answerChallenges(due, sb.bs, sb.log)
					if ans.Declared > 0 {
						b.Fatalf("node %s declared %d holdings missing", n.Address(), ans.Declared)
					}
					proven += ans.Proven
					for _, p := range ans.Batches {
						txs = append(txs, sb.leader.tx(b, n, p, proofGas(p)))
					}
				}
				holderCPU += processCPU() - c0
				s := sb.blocks(txs)
				if head+1 == draw {
					if s.txs > 0 {
						b.Fatalf("epoch %d: %d proofs in the block that draws the challenges", clock.Epoch, s.txs)
					}
					b.Logf("epoch %d: first block (the draw) %.1f ms (its thread %.1f ms: execute %.1f, commit %.1f), %d keys written; during it: %d GC cycles, %d flushes, %d compactions, %d running",
						clock.Epoch, ms(s.cpu), ms(s.thread), ms(s.thread-s.commit), ms(s.commit), s.keys, s.bg.gcCycles, s.bg.flushes, s.bg.compactions, s.bg.running)
					drawCPU += s.cpu
					drawThread += s.thread
					maxDrawThread = max(maxDrawThread, s.thread)
					drawBlocks++
					continue
				}
				if s.txs == 0 {
					emptyCPU += s.cpu
					emptyThread += s.thread
					emptyBlocks += s.blocks
					continue
				}
				maxProofThread = max(maxProofThread, s.maxThread)
				verifyCPU += s.cpu
				reexecCPU += s.reexec
				proofTxs += s.txs
				proofBytes += s.bytes
				proofBlocks += s.blocks
				if s.max > epochMax {
					epochMax, epochMaxTxs = s.max, s.maxTxs
				}
			}
			for i, ok := range answered {
				if !ok {
					b.Fatalf("node %d did not answer by the epoch's last block (answer height %d, end %d)", i, at[i], clock.EndHeight)
				}
			}
			maxProofCPU += epochMax
			maxProofTxs += epochMaxTxs
			settling := sb.settlingIn(clock.Epoch)
			if settling > 0 {
				settlingEpochs++
			}
			end, others := sb.untilNextEpoch()
			bg := end.bg
			b.Logf("epoch %d: end block %.1f ms (its thread %.1f ms: execute %.1f, commit %.1f), %d keys written, %.2f MB allocated, %d leases due; during it: %d GC cycles (GC CPU %.1f ms), %d flushes, %d compactions, %d running; memtables follower %.1f MiB, leader %.1f MiB",
				clock.Epoch, ms(end.cpu), ms(end.thread), ms(end.thread-end.commit), ms(end.commit), end.keys, float64(bg.allocBytes)/1e6, settling, bg.gcCycles, 1000*bg.gcCPU, bg.flushes, bg.compactions, bg.running,
				float64(bg.followerMem)/(1<<20), float64(bg.leaderMem)/(1<<20))
			endCPU += end.cpu
			endReexec += end.reexec
			endThread += end.thread
			maxEndCPU = max(maxEndCPU, end.cpu)
			maxEndThread = max(maxEndThread, end.thread)
			if bg.quiet() {
				cleanEnds++
				cleanEndCPU += end.cpu
				maxCleanEndCPU = max(maxCleanEndCPU, end.cpu)
			}
			if bg.gcCycles > 0 {
				gcEnds++
			}
			if bg.flushes+bg.compactions+bg.running > 0 {
				dbEnds++
			}
			emptyCPU += others.cpu
			emptyThread += others.thread
			emptyBlocks += others.blocks
		}
	})
	b.StopTimer()
	if missed := sb.storageMisses(); missed > 0 {
		b.Fatalf("%d holdings missed", missed)
	}
	n := float64(b.N * epochsPerOp)
	emptyMs := float64(emptyCPU.Microseconds()) / 1000 / float64(emptyBlocks)
	budgetMs := float64(blockBudget.Microseconds()) / 1000
	b.ReportMetric(float64(holderCPU.Microseconds())/1000/n, "holder-cpu-ms")
	b.ReportMetric(float64(verifyCPU.Microseconds())/1000/n, "verify-cpu-ms")
	if reexec > 0 {
		b.ReportMetric(float64(reexecCPU.Microseconds())/float64(reexec*proofTxs), "exec-us/proof-tx")
	}
	b.ReportMetric(float64(endCPU.Microseconds())/1000/n, "end-cpu-ms")
	b.ReportMetric(float64(base.cpu.Microseconds())/1000, "base-end-cpu-ms")
	b.ReportMetric(emptyMs, "empty-block-cpu-ms")
	b.ReportMetric(float64(proofBlocks)/n, "proof-blocks")
	b.ReportMetric(float64(maxProofCPU.Microseconds())/1000/n, "max-proof-block-cpu-ms")
	b.ReportMetric(float64(maxProofTxs)/n, "max-proof-block-txs")
	b.ReportMetric(100*(float64(maxProofCPU.Microseconds())/1000/n-emptyMs)/budgetMs, "max-proof-block-%B")
	b.ReportMetric(100*(float64(endCPU.Microseconds())/1000/n-float64(base.cpu.Microseconds())/1000)/budgetMs, "end-%B")
	b.ReportMetric(float64(maxEndCPU.Microseconds())/1000, "max-end-cpu-ms")
	b.ReportMetric(100*(float64(maxEndCPU.Microseconds())/1000-float64(base.cpu.Microseconds())/1000)/budgetMs, "max-end-%B")
	if sb.reexecEnd > 0 {
		// The end block's execution alone (no commit), warm, averaged
		// over its reexecEnd runs: steadier than end-cpu-ms.
		b.ReportMetric(ms(endReexec)/n/float64(sb.reexecEnd), "reexec-end-cpu-ms")
	}
	b.ReportMetric(ms(endThread)/n, "end-thread-cpu-ms")
	b.ReportMetric(ms(base.thread), "base-end-thread-cpu-ms")
	b.ReportMetric(ms(maxEndThread), "max-end-thread-cpu-ms")
	b.ReportMetric(100*(ms(maxEndThread)-ms(base.thread))/budgetMs, "max-end-thread-%B")
	if cleanEnds > 0 {
		b.ReportMetric(ms(cleanEndCPU)/float64(cleanEnds), "clean-end-cpu-ms")
		b.ReportMetric(ms(maxCleanEndCPU), "max-clean-end-cpu-ms")
	}
	if drawBlocks > 0 {
		emptyThreadMs := ms(emptyThread) / float64(emptyBlocks)
		b.ReportMetric(ms(drawCPU)/float64(drawBlocks), "draw-block-cpu-ms")
		b.ReportMetric(ms(drawThread)/float64(drawBlocks), "draw-block-thread-cpu-ms")
		b.ReportMetric(ms(maxDrawThread), "max-draw-block-thread-cpu-ms")
		b.ReportMetric(100*(ms(maxDrawThread)-emptyThreadMs)/budgetMs, "max-draw-block-thread-%B")
		b.ReportMetric(emptyThreadMs, "empty-block-thread-cpu-ms")
	}
	b.ReportMetric(ms(maxProofThread), "max-proof-block-thread-cpu-ms")
	b.ReportMetric(float64(gcEnds)/n, "gc-end-blocks")
	b.ReportMetric(float64(dbEnds)/n, "db-end-blocks")
	b.ReportMetric(float64(settlingEpochs)/n, "settling-epochs")
	b.ReportMetric(float64(proofTxs)/n, "proof-txs")
	b.ReportMetric(float64(proofBytes)/n, "proof-bytes")
	b.ReportMetric(float64(proven)/n, "proven")
	b.ReportMetric(float64(nHolders), "holder-nodes")
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// storageMisses counts the misses in the providers' records.
func (sb *storBench) storageMisses() uint64 {
	var n uint64
	st := ledger.NewState(sb.leader.store)
	for _, p := range sb.provs {
		r, err := sb.leader.chain.market.ProviderRecord(st, p.Address())
		if err != nil {
			sb.b.Fatal(err)
		}
		n += r.StorageMissed
	}
	return n
}
