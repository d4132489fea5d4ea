package kernel

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/ledger"
	sosnet "github.com/sos-kernel/sos/net"
	"github.com/sos-kernel/sos/rome"
)

// The node side of storage leases. A node whose key an offer names holds
// the blobs pinned to that offer's leases (rome.NodeHoldings): its storage
// worker fetches each one it lacks over the data plane (from the other
// holders, then from any member — the consumer's node has it) and, every
// epoch, answers its challenged holdings (a sample of them, and those it
// missed before) with storage_proof transactions signed by its node key,
// at a block of the epoch fixed by its address (proofAnswerHeight) so
// that the holders' proofs spread over the epoch's blocks
// (rome.StorageDue gives them in the order the chain wants them and the
// segments challenged; answerChallenges builds the batches). A
// holding it cannot prove — the blob is not there (yet), or a chunk of it
// is gone or damaged — is declared missing rather than left unanswered.
// Nothing here decides consensus state: the chain checks every proof.

// Tags of storage transfers on the data plane: "pin/<request id>".
const pinTagPrefix = "pin/"

// storageWorker runs a node's fetches and proofs.
type storageWorker struct {
	n    *Node
	kick chan struct{}
	m    storageMetrics

	mu       sync.Mutex
	fetching map[blob.ID]bool
	failed   map[blob.ID]time.Time // last failed fetch: retried after fetchRetry
	// lastRound is the last (epoch, holdings answered) a proof batch was
	// sent for: not sent again while the node's transactions wait.
	lastEpoch uint64
	lastFirst string
}

// fetchRetry is how long a failed fetch waits before it is tried again.
const fetchRetry = 5 * time.Second

// maxFetches bounds the fetches a node runs at once.
const maxFetches = 2

// proofBatchBytes keeps a storage_proof transaction well under
// ledger.MaxTxBytes.
const proofBatchBytes = 3 << 20

type storageMetrics struct {
	proofs     *prometheus.CounterVec // result: proven, declared_missing
	proofTxs   prometheus.Counter
	holdings   prometheus.Gauge
	fetchBytes prometheus.Counter
	served     prometheus.Counter
	fetchFail  *prometheus.CounterVec // reason: full, sources, other
}

func newStorageWorker(n *Node) *storageWorker {
	w := &storageWorker{n: n, kick: make(chan struct{}, 1), fetching: map[blob.ID]bool{}, failed: map[blob.ID]time.Time{}}
	w.m = storageMetrics{
		proofs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sos_storage_proofs_total",
			Help: "Holdings this node answered in storage_proof transactions, by result (proven, declared_missing)."}, []string{"result"}),
		proofTxs: prometheus.NewCounter(prometheus.CounterOpts{Name: "sos_storage_proof_txs_total", Help: "storage_proof transactions this node submitted."}),
		holdings: prometheus.NewGauge(prometheus.GaugeOpts{Name: "sos_storage_holdings", Help: "Pinned blobs this node holds for leases (holdings on chain)."}),
		fetchBytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "sos_storage_fetched_bytes_total",
			Help: "Bytes of pinned blobs this node fetched over the data plane."}),
		served: prometheus.NewCounter(prometheus.CounterOpts{Name: "sos_storage_served_bytes_total",
			Help: "Bytes of pinned blobs this node served to other nodes over the data plane."}),
		fetchFail: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sos_storage_fetch_failures_total",
			Help: "Fetches of pinned blobs that failed, by reason (full: the blob store or disk is full; sources: no source gave it; other)."}, []string{"reason"}),
	}
	for _, r := range []string{"proven", "declared_missing"} {
		w.m.proofs.WithLabelValues(r)
	}
	for _, r := range []string{"full", "sources", "other"} {
		w.m.fetchFail.WithLabelValues(r)
	}
	for _, c := range []prometheus.Collector{w.m.proofs, w.m.proofTxs, w.m.holdings, w.m.fetchBytes, w.m.served, w.m.fetchFail} {
		if err := n.metrics.Registry.Register(c); err != nil {
			n.log.Warn("storage: metrics", "err", err)
		}
	}
	return w
}

// Kick asks the worker to look at the chain again (after a commit).
func (w *storageWorker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// run works until ctx ends: after each commit, and every few seconds to
// retry fetches.
func (w *storageWorker) run(ctx context.Context) error {
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.kick:
		case <-t.C:
		}
		w.step(ctx)
	}
}

// step fetches what the node lacks and answers the current epoch.
func (w *storageWorker) step(ctx context.Context) {
	n := w.n
	m := n.chain.market
	if m == nil {
		return
	}
	self := n.opts.NodeKey.Address()
	st := ledger.NewState(n.store)
	hs, err := m.NodeHoldings(st, self, 0)
	if err != nil {
		n.log.Warn("storage: holdings", "err", err)
		return
	}
	w.m.holdings.Set(float64(len(hs)))
	for _, h := range hs {
		id := blob.ID(h.Holding.Blob.ID)
		if h.Holding.Blob.Size == 0 || n.blobs.Has(id) {
			continue
		}
		w.startFetch(ctx, id, h.Holding.Blob.Size, h.Holding.Request)
	}
	if err := w.prove(ctx, st); err != nil && ctx.Err() == nil {
		n.log.Warn("storage: proofs", "err", err)
	}
}

// startFetch fetches blob (id, size) pinned to request req in the
// background, unless it is being fetched or failed moments ago.
func (w *storageWorker) startFetch(ctx context.Context, id blob.ID, size, req uint64) {
	w.mu.Lock()
	if w.fetching[id] || len(w.fetching) >= maxFetches || time.Since(w.failed[id]) < fetchRetry {
		w.mu.Unlock()
		return
	}
	w.fetching[id] = true
	w.mu.Unlock()
	go func() {
		defer func() {
			w.mu.Lock()
			delete(w.fetching, id)
			w.mu.Unlock()
		}()
		if err := w.n.fetchPinned(ctx, id, size, req); err != nil {
			w.mu.Lock()
			w.failed[id] = time.Now()
			w.mu.Unlock()
			if ctx.Err() == nil {
				w.n.log.Warn("storage: fetch of a pinned blob failed; it is declared missing while absent and retried", "blob", id, "request", req, "err", err)
			}
			return
		}
		w.mu.Lock()
		delete(w.failed, id)
		w.mu.Unlock()
		w.Kick()
	}()
}

// errNoDataPlane: the node has no peers to fetch from (a single node).
var errNoDataPlane = errors.New("kernel: this node has no data plane (no cluster peers) to fetch from")

// fetchPinned fetches pinned blob (id, size) of request req into the
// node's store from the request's other holders first, then from every
// other member.
func (n *Node) fetchPinned(ctx context.Context, id blob.ID, size, req uint64) error {
	if n.transport == nil || n.cluster == nil {
		return errNoDataPlane
	}
	w := n.storage
	st := ledger.NewState(n.store)
	var sources []sosnet.PeerID
	seen := map[string]bool{n.nodeID: true}
	add := func(nodeID string) {
		if !seen[nodeID] {
			seen[nodeID] = true
			sources = append(sources, sosnet.PeerID(nodeID))
		}
	}
	if pins, err := n.chain.market.BlobPins(st, ledger.BlobID(id), 0); err == nil {
		for _, p := range pins {
			for _, h := range p.Holders {
				if mb, ok := n.cluster.memberByAddr(h.Node); ok && h.Holding {
					add(mb.NodeID)
				}
			}
		}
	}
	for _, mb := range n.cluster.memberList() {
		add(mb.NodeID)
	}
	stats, err := n.transport.FetchBlob(ctx, id, size, sources, n.blobs, pinTagPrefix+strconv.FormatUint(req, 10))
	w.m.fetchBytes.Add(float64(stats.Bytes))
	if err != nil {
		reason := "other"
		switch {
		case errors.Is(err, blob.ErrFull):
			reason = "full"
		case stats.Chunks == 0:
			reason = "sources"
		}
		w.m.fetchFail.WithLabelValues(reason).Inc()
		return err
	}
	n.log.Info("storage: fetched a pinned blob", "blob", id, "size", size, "request", req, "bytes", stats.Bytes, "sources", len(sources))
	return nil
}

// prove answers what the node still has to prove in the current epoch,
// in batches that fit a transaction, unless its previous answer still
// waits in the mempool.
func (w *storageWorker) prove(ctx context.Context, st *ledger.State) error {
	n := w.n
	self := n.opts.NodeKey.Address()
	due, err := n.chain.market.StorageDue(st, self, 0)
	if err != nil || !due.Seeded || len(due.Holdings) == 0 {
		return err
	}
	at, err := w.answerHeight(st, self, due)
	if err != nil {
		return err
	}
	if head := n.store.Head().Height; head < at {
		return nil // not this node's turn yet: it answers from height at
	}
	first := fmt.Sprintf("%d/%d", due.Holdings[0].Lease, due.Holdings[0].Pin)
	w.mu.Lock()
	same := w.lastEpoch == due.Epoch && w.lastFirst == first
	w.mu.Unlock()
	if same && n.nodeTxPending() {
		return nil // the answer sent for these holdings is still on its way
	}
	ans := answerChallenges(due, n.blobs, n.log)
	n.txMu.Lock()
	defer n.txMu.Unlock()
	for _, b := range ans.Batches {
		if _, err := n.submitNodeTxLocked(b, proofGas(b)); err != nil {
			return err
		}
		w.m.proofTxs.Inc()
	}
	w.m.proofs.WithLabelValues("proven").Add(float64(ans.Proven))
	w.m.proofs.WithLabelValues("declared_missing").Add(float64(ans.Declared))
	w.mu.Lock()
	w.lastEpoch, w.lastFirst = due.Epoch, first
	w.mu.Unlock()
	n.log.Info("storage: answered challenges", "epoch", due.Epoch, "proven", ans.Proven, "declared_missing", ans.Declared, "txs", len(ans.Batches))
	return nil
}

// answerHeight is the head height from which this node answers the
// challenges of due (proofAnswerHeight with their draw height, the
// chain's clock and epoch length, and the node's storage_proof_spread).
func (w *storageWorker) answerHeight(st *ledger.State, self ledger.Address, due *rome.StorageDue) (uint64, error) {
	m := w.n.chain.market
	clock, err := m.Clock(st)
	if err != nil {
		return 0, err
	}
	p, err := m.Params(st)
	if err != nil {
		return 0, err
	}
	return proofAnswerHeight(self, due.Epoch, due.DrawHeight, clock.EndHeight, p.EpochBlocks, w.n.opts.Config.StorageProofSpread), nil
}

// proofAnswerHeight is the head height from which node answers the
// challenges of epoch, drawn at the end of block draw (the epoch's first
// block; the last of the epoch before for an epoch of one block) in an
// epoch that ends at block end and has epochBlocks blocks: the node waits
// offset = SHA-256("sos/storage/answer" | node | epoch) mod W blocks
// after the draw, W = max(1, ⌊spread × epochBlocks⌋), so that its
// storage_proof transaction lands in block draw+offset+1 or later instead
// of every holder's landing in the block after the draw. The offset
// changes with the epoch (no node is always last) and the height is at
// most end-1, so a node always has the last block to answer in. This is
// the node's own scheduling, not a rule of the chain: any answer after
// the draw and by the epoch's end counts, and a node past its height (it
// restarted, or fell behind) answers at once. spread 0 answers as soon as
// the challenges are drawn.
func proofAnswerHeight(node ledger.Address, epoch, draw, end, epochBlocks uint64, spread float64) uint64 {
	win := uint64(1)
	if spread > 0 {
		win = max(1, uint64(spread*float64(epochBlocks)))
	}
	h := sha256.New()
	h.Write([]byte("sos/storage/answer\x00"))
	h.Write(node[:])
	h.Write(binary.BigEndian.AppendUint64(nil, epoch))
	offset := binary.BigEndian.Uint64(h.Sum(nil)[:8]) % win
	return max(draw, min(draw+offset, max(end, 1)-1))
}

// proofAnswer is a node's answer to its due holdings: storage_proof
// payloads that each fit a transaction, and how many holdings it proved
// and declared missing.
type proofAnswer struct {
	Batches  []*ledger.StorageProof
	Proven   int
	Declared int
}

// answerChallenges proves each due holding's challenged segments from bs,
// in the chain's order; a holding it cannot prove — absent, damaged or
// unreadable — is declared missing rather than left unanswered.
func answerChallenges(due *rome.StorageDue, bs *blob.Store, log *slog.Logger) proofAnswer {
	var ans proofAnswer
	cur := &ledger.StorageProof{Epoch: due.Epoch}
	size := 0
	for _, h := range due.Holdings {
		e := ledger.StorageEntry{LeaseID: h.Lease, Blob: h.Blob.ID}
		esize := 64
		for _, seg := range h.Segments {
			pr, err := bs.Prove(blob.ID(h.Blob.ID), seg)
			if err != nil {
				log.Warn("storage: cannot prove a held blob; declaring it missing", "blob", h.Blob.ID, "lease", h.Lease, "segment", seg, "err", err)
				e.Proofs, esize = nil, 64
				break
			}
			e.Proofs = append(e.Proofs, pr)
			esize += len(pr) + 4
		}
		if len(e.Proofs) == 0 {
			ans.Declared++
		} else {
			ans.Proven++
		}
		if len(cur.Entries) == ledger.MaxStorageEntries || size+esize > proofBatchBytes {
			ans.Batches = append(ans.Batches, cur)
			cur, size = &ledger.StorageProof{Epoch: due.Epoch}, 0
		}
		cur.Entries = append(cur.Entries, e)
		size += esize
	}
	if len(cur.Entries) > 0 {
		ans.Batches = append(ans.Batches, cur)
	}
	return ans
}

// proofGas is the gas limit a node sets on a storage_proof transaction,
// with room above what the chain charges for it (rome.GasStorage* and
// state access).
func proofGas(b *ledger.StorageProof) uint64 {
	gas := uint64(300_000) + uint64(len(b.Entries))*30_000
	for _, e := range b.Entries {
		gas += uint64(len(e.Proofs))*(rome.GasStorageVerify+2_000) + 200_000*boolU64(len(e.Proofs) == 0)
		for _, p := range e.Proofs {
			gas += 2 * uint64(len(p))
		}
	}
	return gas
}

func boolU64(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// authorizePin decides whether peer may fetch blob id with tag
// "pin/<request id>": the blob must be pinned to that request and the peer
// must be a cluster member — a holder fetching its replica from another,
// the consumer's own node, any validator (holders are members: the data
// plane links members only). Members see pinned data like they see jobs'
// data: storage leases give no confidentiality (docs/storage.md).
func (n *Node) authorizePin(peer sosnet.PeerID, id blob.ID, tag string) bool {
	req, err := strconv.ParseUint(strings.TrimPrefix(tag, pinTagPrefix), 10, 64)
	if err != nil || n.chain.market == nil {
		return false
	}
	st := ledger.NewState(n.store)
	pins, err := n.chain.market.BlobPins(st, ledger.BlobID(id), 0)
	if err != nil || !slices.ContainsFunc(pins, func(p rome.PinStatus) bool { return p.RequestID == req }) {
		return false
	}
	if n.cluster == nil {
		return false
	}
	if _, ok := n.cluster.member(RaftID(string(peer))); ok {
		return true
	}
	return false
}

// authorizeBlob is the data plane's authorization, by the tag's prefix:
// storage pins (storage.go) and jobs (jobnode.go).
func (n *Node) authorizeBlob(peer sosnet.PeerID, id blob.ID, tag string) bool {
	switch {
	case strings.HasPrefix(tag, pinTagPrefix):
		return n.authorizePin(peer, id, tag)
	case strings.HasPrefix(tag, jobTagPrefix):
		return n.jobsvc.authorizeBlob(peer, id, tag)
	}
	return false
}

// accountBlob counts what the data plane served, by purpose.
func (n *Node) accountBlob(peer sosnet.PeerID, id blob.ID, tag string, bytes uint64) {
	switch {
	case strings.HasPrefix(tag, pinTagPrefix):
		n.storage.m.served.Add(float64(bytes))
	case strings.HasPrefix(tag, jobTagPrefix):
		n.jobsvc.accountBlob(peer, id, tag, bytes)
	}
}

// serveBlobs makes the data plane serve this node's blobs to the peers
// authorizeBlob admits.
func (n *Node) serveBlobs() {
	if n.transport == nil {
		return
	}
	n.transport.ServeBlobs(sosnet.BlobServer{Store: n.blobs, Authorize: n.authorizeBlob, Account: n.accountBlob})
}
