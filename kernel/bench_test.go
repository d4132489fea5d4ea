package kernel

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/sos-kernel/sos/ledger"
)

// BenchmarkBlock5000Transfers builds (executes, state root) and commits
// (synced Pebble batch) a block of 5,000 pre-signed transfers from 50
// senders; signatures were verified at mempool admission, as in the node.
func BenchmarkBlock5000Transfers(b *testing.B) {
	const senders, perSender = 50, 100
	tn := newTestChain(b, senders)
	// Warm-up block registers the public keys.
	var first []*PendingTx
	for _, u := range tn.users {
		first = append(first, tn.tx(b, u, transfer(tn.users[0], 1), 200_000))
	}
	tn.block(b, first...)
	blocks := make([][]*PendingTx, 0, 4)
	makeBlock := func() []*PendingTx {
		var txs []*PendingTx
		for n := 0; n < perSender; n++ {
			for s, u := range tn.users {
				txs = append(txs, tn.tx(b, u, transfer(tn.users[(s+1)%senders], 1), 200_000))
			}
		}
		return txs
	}
	for i := 0; i < 3; i++ {
		blocks = append(blocks, makeBlock())
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i >= len(blocks) {
			b.StopTimer()
			blocks = append(blocks, makeBlock())
			b.StartTimer()
		}
		bb, err := tn.chain.BuildBlock(context.Background(), blocks[i], tn.store.Head().Time+1000, tn.nodeKey)
		if err != nil {
			b.Fatal(err)
		}
		if len(bb.Included) != senders*perSender {
			b.Fatalf("included %d, rejected %d: %v", len(bb.Included), len(bb.Rejected), bb.Rejected[0].Err)
		}
		if err := tn.chain.Commit(bb); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/block")
}

// BenchmarkCommit5000Transfers times what follows execution for a block of
// 5,000 transfers: the state-root update (sparse Merkle tree over the
// block's changes) and the synced Pebble write of block, receipts, state and
// tree nodes. Execution itself is in BenchmarkBlock5000Transfers.
func BenchmarkCommit5000Transfers(b *testing.B) {
	tn := newTestChain(b, 50)
	var first []*PendingTx
	for _, u := range tn.users {
		first = append(first, tn.tx(b, u, transfer(tn.users[0], 1), 200_000))
	}
	tn.block(b, first...)
	makeTxs := func() []*PendingTx {
		var txs []*PendingTx
		for n := 0; n < 100; n++ {
			for s, u := range tn.users {
				txs = append(txs, tn.tx(b, u, transfer(tn.users[(s+1)%50], 1), 200_000))
			}
		}
		return txs
	}
	var rootAndCommit time.Duration
	for i := 0; i < b.N; i++ {
		txs := makeTxs()
		st := ledger.NewState(tn.store)
		ex := tn.chain.NewExecutor(context.Background(), st, BlockEnv{ChainID: "test-chain", Height: tn.store.Head().Height + 1, TimeMs: tn.store.Head().Time + 1000})
		var rs []ledger.Receipt
		for j, p := range txs {
			r, err := ex.Apply(p, uint32(j))
			if err != nil {
				b.Fatal(err)
			}
			rs = append(rs, r)
		}
		raws := make([][]byte, len(txs))
		for j, p := range txs {
			raws[j] = p.Raw
		}
		start := time.Now()
		prep, err := tn.store.Prepare(st)
		if err != nil {
			b.Fatal(err)
		}
		head := tn.store.Head()
		blk := &ledger.Block{Header: ledger.Header{Version: ledger.BlockVersion, ChainID: "test-chain", Height: head.Height + 1,
			Time: head.Time + 1000, PrevHash: head.BlockHash, TxRoot: ledger.MerkleRoot(raws), StateRoot: prep.Root(), NumTxs: uint32(len(raws))}, Txs: raws}
		if err := tn.store.Commit(blk, rs, prep); err != nil {
			b.Fatal(err)
		}
		rootAndCommit += time.Since(start)
	}
	b.ReportMetric(float64(rootAndCommit.Microseconds())/1000/float64(b.N), "ms-root+commit")
}

// BenchmarkMempoolRefusesForgedTxs times admission of transactions that
// are refused at the signature check, each from a fresh sender with a
// fresh public key (a flood costs the attacker nothing to make): decode,
// key expansion and one ML-DSA-65 verification per tx, on all cores, in
// batches of 250 as POST /v1/txs/batch would bring them. It reports the
// live heap left afterwards, which must not grow with b.N.
func BenchmarkMempoolRefusesForgedTxs(b *testing.B) {
	tn := newTestChain(b, 1)
	pool := NewMempool(tn.chain, MempoolConfig{})
	const batch = 250
	raws := forgedTxs(b, tn.codec, 16, b.N)
	before := liveHeap()
	b.ResetTimer()
	for lo := 0; lo < b.N; lo += batch {
		_, errs := pool.Add(raws[lo:min(lo+batch, b.N)])
		if !errors.Is(errs[0], ledger.ErrInvalidSignature) {
			b.Fatal(errs[0])
		}
	}
	b.StopTimer()
	after := liveHeap()
	runtime.KeepAlive(raws)
	runtime.KeepAlive(pool)
	b.ReportMetric(float64(int64(after)-int64(before))/(1<<20), "MB-retained")
}

// BenchmarkAPISubmitBatch times POST /v1/txs/batch through the API handler
// (no network, no block production): reading a 500-transfer body (2.7 MB)
// as it arrives in 32 KiB reads, decoding, verifying on all cores with
// cached sender keys, and admitting. One op is one batch.
func BenchmarkAPISubmitBatch(b *testing.B) {
	const senders, batch = 50, 500
	tn := newTestChain(b, senders)
	tn.store.Close()
	cfg := DefaultConfig()
	cfg.MempoolSize = 1 << 20
	node, err := OpenNode(NodeOptions{Home: b.TempDir(), Config: cfg, GenesisDoc: tn.doc, NodeKey: tn.nodeKey})
	if err != nil {
		b.Fatal(err)
	}
	defer node.Close()
	h := node.apiHandler()
	body := func(txs []*PendingTx) []byte {
		var buf bytes.Buffer
		for _, p := range txs {
			_ = binary.Write(&buf, binary.BigEndian, uint32(len(p.Raw)))
			buf.Write(p.Raw)
		}
		return buf.Bytes()
	}
	submit := func(body []byte) {
		r := httptest.NewRequest("POST", "/v1/txs/batch", &chunkyReader{r: bytes.NewReader(body)})
		r.ContentLength = int64(len(body))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK || bytes.Contains(w.Body.Bytes(), []byte(`"error"`)) {
			b.Fatalf("HTTP %d: %.300s", w.Code, w.Body.String())
		}
	}
	var first []*PendingTx // carries the keys, as loadgen's first round
	for _, u := range tn.users {
		first = append(first, tn.tx(b, u, transfer(tn.users[0], 1), 200_000))
	}
	submit(body(first))
	bodies := make([][]byte, b.N)
	for i := range bodies {
		txs := make([]*PendingTx, 0, batch)
		for len(txs) < batch {
			for _, u := range tn.users {
				txs = append(txs, tn.tx(b, u, transfer(tn.users[0], 1), 200_000))
			}
		}
		bodies[i] = body(txs)
	}
	b.SetBytes(int64(len(bodies[0])))
	cpu0 := processCPU()
	b.ResetTimer()
	for _, body := range bodies {
		submit(body)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "tx/s")
	// CPU time per transaction moves less than wall time when other jobs
	// share the cores.
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N*batch), "cpu-µs/tx")
}

// chunkyReader hands out at most 32 KiB per Read, as a socket does.
type chunkyReader struct{ r *bytes.Reader }

func (c *chunkyReader) Read(p []byte) (int, error) {
	if len(p) > 32<<10 {
		p = p[:32<<10]
	}
	return c.r.Read(p)
}
