package kernel

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/net/netutil"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
)

// maxBatchBytes caps one POST /v1/txs/batch body.
const maxBatchBytes = 256 << 20

// commitWait bounds how long POST /v1/txs?wait=commit waits.
const commitWait = 30 * time.Second

// eventWriteStall is how long one event (or keepalive) of the event stream
// may take to leave before the stream is dropped: the stream outlives the
// server's WriteTimeout, which is meant for responses that end, so it sets
// its own deadline per write and a client that stops reading is let go.
const eventWriteStall = 20 * time.Second

// APILimits bound what the API's clients can hold: connections, and how
// long a request may take to arrive, its response to leave and a
// keep-alive connection to idle. Zero fields take the defaults.
type APILimits struct {
	// MaxConns is how many connections are served at once; more wait to be
	// accepted (default: a quarter of the open-file limit, 64 to 1,024, so
	// clients can never take the descriptors the store needs).
	MaxConns int
	// ReadHeaderTimeout is the time to send a request's headers (10 s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout is the time to send a whole request, body included (30 s:
	// a client trickling a body is cut off, not served forever).
	ReadTimeout time.Duration
	// WriteTimeout runs from the end of a request's headers to the end of
	// its response (default ReadTimeout + commitWait + 15 s, so that
	// ?wait=commit can wait). The event stream sets its own per event.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request (60 s).
	IdleTimeout time.Duration
	// MinHeightWait is how long a request with ?min_height=H waits for the
	// node to commit H before it answers 504 (20 s).
	MinHeightWait time.Duration
}

func (l APILimits) withDefaults() APILimits {
	if l.MaxConns <= 0 {
		l.MaxConns = min(1024, max(64, openFileLimit()/4))
	}
	if l.ReadHeaderTimeout <= 0 {
		l.ReadHeaderTimeout = 10 * time.Second
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = 30 * time.Second
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = l.ReadTimeout + commitWait + 15*time.Second
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 60 * time.Second
	}
	if l.MinHeightWait <= 0 {
		l.MinHeightWait = 20 * time.Second
	}
	return l
}

// apiServer is the HTTP server of the API and the listener to serve it on
// (ln, holding at most MaxConns connections at once).
func (n *Node) apiServer(ln net.Listener) (*http.Server, net.Listener) {
	l := n.opts.API.withDefaults()
	srv := &http.Server{
		Handler:           n.apiHandler(),
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
	}
	return srv, netutil.LimitListener(ln, l.MaxConns)
}

func (n *Node) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", n.handleStatus)
	mux.HandleFunc("GET /v1/blocks", n.handleBlocks)
	mux.HandleFunc("GET /v1/blocks/{height}", n.handleBlock)
	mux.HandleFunc("GET /v1/txs/{hash}", n.handleTx)
	mux.HandleFunc("POST /v1/txs", n.handleSubmit)
	mux.HandleFunc("POST /v1/txs/batch", n.handleBatch)
	mux.HandleFunc("POST /v1/simulate", n.handleSimulate)
	mux.HandleFunc("GET /v1/accounts/{addr}", n.handleAccount)
	mux.HandleFunc("GET /v1/supply", n.handleSupply)
	mux.HandleFunc("GET /v1/denoms", n.handleDenoms)
	mux.HandleFunc("GET /v1/genesis", n.handleGenesis)
	mux.HandleFunc("GET /v1/cluster/members", n.handleMembers)
	mux.HandleFunc("GET /v1/cluster/requests", n.handleJoinRequests)
	mux.HandleFunc("GET /v1/events", n.handleEvents)
	mux.HandleFunc("GET /v1/logs", n.handleLogs)
	n.registerContractAPI(mux)
	n.registerRomeAPI(mux)
	n.registerBlobAPI(mux)
	n.registerJobAPI(mux)
	n.registerStorageAPI(mux)
	n.registerTraceAPI(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.metrics.Registry, promhttp.HandlerOpts{}))
	// What no route takes gets the JSON error body every handler uses,
	// not the mux's text/plain. "/" is the least specific pattern, so the
	// routes above are found as before and this costs nothing on them.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { noRoute(mux, w, r) })
	return n.atMinHeight(mux)
}

// noRoute answers a request no route took: 405 with an Allow header when
// the path has routes for other methods, else 404.
func noRoute(mux *http.ServeMux, w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeErr(w, http.StatusMethodNotAllowed, fmt.Errorf("kernel: %s %s: method not allowed (allowed: %s)", r.Method, r.URL.Path, strings.Join(allow, ", ")))
		return
	}
	writeErr(w, http.StatusNotFound, fmt.Errorf("kernel: no API route %s %s (the routes are listed in docs/api.md)", r.Method, r.URL.Path))
}

// atMinHeight makes any request carrying ?min_height=H wait until this
// node has committed block H (at most APILimits.MinHeightWait) before it is served,
// so a client that wrote through one node reads its write on another
// (read-your-writes across a cluster): it passes the height its
// transaction committed at. A node that does not get there in time answers
// 504 with its height, and one whose parameter is not a number 400.
func (n *Node) atMinHeight(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.Contains(r.URL.RawQuery, "min_height") { // the hot path: no parsing
			next.ServeHTTP(w, r)
			return
		}
		v := r.URL.Query().Get("min_height")
		if v == "" {
			next.ServeHTTP(w, r)
			return
		}
		want, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("kernel: min_height %q: want a block height", v))
			return
		}
		if err := n.waitHeight(r.Context(), want, n.opts.API.withDefaults().MinHeightWait); err != nil {
			writeErr(w, http.StatusGatewayTimeout, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ErrHeightNotReached is returned when the node did not commit a height in time.
var ErrHeightNotReached = errors.New("height not reached")

// waitHeight returns once the node has committed height, or an error
// (ErrHeightNotReached) after at most d.
func (n *Node) waitHeight(ctx context.Context, height uint64, d time.Duration) error {
	if n.store.Head().Height >= height {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	// Blocks come every few hundred milliseconds: a short poll of the head
	// (a read lock) reacts within a fraction of one and needs no
	// subscription on the commit path.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("kernel: node %.16s is at height %d and did not reach min_height %d within %s: %w",
				n.nodeID, n.store.Head().Height, height, d, ErrHeightNotReached)
		case <-tick.C:
			if n.store.Head().Height >= height {
				return nil
			}
		}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, client.Error{Error: err.Error()})
}

// statusOf maps an error to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, ledger.ErrPruned):
		return http.StatusGone
	case errors.Is(err, ledger.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrMempoolFull):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrDuplicate), errors.Is(err, ErrNonceTooLow):
		return http.StatusConflict
	case errors.Is(err, ledger.ErrCorrupt):
		return http.StatusInternalServerError
	case errors.Is(err, contracts.ErrNoContract), errors.Is(err, contracts.ErrNoCode), errors.Is(err, contracts.ErrNoSchema):
		return http.StatusNotFound
	case errors.Is(err, ledger.ErrHistoryUnavailable):
		return http.StatusGone
	case errors.Is(err, ErrStateMismatch):
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, n.Status())
}

// Status summarizes the node.
func (n *Node) Status() client.Status {
	head := n.store.Head()
	s := client.Status{
		ChainID: head.ChainID, NodeID: n.nodeID, Version: Version, Height: head.Height,
		BlockHash: head.BlockHash.String(), StateRoot: head.StateRoot.String(), TimeMs: head.Time,
		GenesisHash: head.Genesis.String(), MempoolSize: n.mempool.Size(), MaxTxGas: n.chain.params.MaxTxGas, MaxUploadGas: n.chain.params.MaxGas(&ledger.ContractUpload{}), Role: "single", Leader: n.nodeID,
		DiskBytes: dirSize(n.opts.Home), Peers: []client.Peer{}, SyncState: client.SyncInSync,
		EarliestHeight: n.store.Earliest(),
	}
	if n.cluster != nil {
		n.cluster.status(&s)
	}
	return s
}

func (n *Node) parseHeight(s string) (uint64, error) {
	if s == "latest" || s == "" {
		return n.store.Head().Height, nil
	}
	h, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("kernel: height %q: want a number or 'latest'", s)
	}
	return h, nil
}

func (n *Node) handleBlock(w http.ResponseWriter, r *http.Request) {
	h, err := n.parseHeight(r.PathValue("height"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	b, err := n.BlockJSON(h, true)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, b)
}

func (n *Node) handleBlocks(w http.ResponseWriter, r *http.Request) {
	from, err := n.parseHeight(r.URL.Query().Get("from"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 50
	}
	if head := n.store.Head().Height; from > head {
		from = head
	}
	out := []client.Block{}
	for h := int64(from); h >= 0 && len(out) < limit; h-- {
		if h > 0 && uint64(h) < n.store.Earliest() {
			break // pruned (block_retention): the list ends at the oldest block kept
		}
		b, err := n.BlockJSON(uint64(h), false)
		if err != nil {
			writeErr(w, statusOf(err), err)
			return
		}
		out = append(out, *b)
	}
	writeJSON(w, http.StatusOK, out)
}

// BlockJSON renders a stored block (with its transactions and receipts when withTxs).
func (n *Node) BlockJSON(height uint64, withTxs bool) (*client.Block, error) {
	b, err := n.store.Block(height)
	if err != nil {
		return nil, err
	}
	hh, err := n.chain.codec.HeaderHash(&b.Header)
	if err != nil {
		return nil, err
	}
	h := b.Header
	out := &client.Block{
		Height: h.Height, Hash: hh.String(), PrevHash: h.PrevHash.String(), TimeMs: h.Time,
		StateRoot: h.StateRoot.String(), TxRoot: h.TxRoot.String(), ReceiptRoot: h.ReceiptRoot.String(),
		NumTxs: h.NumTxs, GasUsed: h.GasUsed, Txs: []client.Tx{},
	}
	if h.Height > 0 {
		out.Proposer = h.Proposer.String()
	}
	if !withTxs {
		return out, nil
	}
	for i, raw := range b.Txs {
		rc, err := n.store.Receipt(height, uint32(i))
		if err != nil {
			return nil, err
		}
		t, err := n.txJSON(raw, rc)
		if err != nil {
			return nil, err
		}
		out.Txs = append(out.Txs, *t)
	}
	return out, nil
}

func (n *Node) txJSON(raw []byte, rc *ledger.Receipt) (*client.Tx, error) {
	tx, err := n.chain.codec.DecodeTx(raw)
	if err != nil {
		return nil, fmt.Errorf("kernel: stored tx: %w: %w", ledger.ErrCorrupt, err)
	}
	pj, err := json.Marshal(tx.Payload)
	if err != nil {
		return nil, err
	}
	out := &client.Tx{
		TxHash: ledger.HashBytes(raw).String(), Sender: tx.Sender.String(), Nonce: tx.Nonce,
		Kind: tx.Payload.Kind().String(), GasPrice: tx.GasPrice.String(), Payload: pj, Memo: tx.Memo,
	}
	if rc != nil {
		out.Height, out.Index, out.Code, out.GasUsed = rc.Height, rc.Index, uint32(rc.Code), rc.GasUsed
		out.Receipt = apiReceipt(rc, tx.GasLimit)
	}
	return out, nil
}

func apiReceipt(rc *ledger.Receipt, gasLimit uint64) *client.Receipt {
	out := &client.Receipt{
		Code: uint32(rc.Code), CodeName: rc.Code.String(), GasUsed: rc.GasUsed, GasLimit: gasLimit,
		Fee:    client.Coin{Denom: rc.Fee.Denom, Amount: strconv.FormatUint(rc.Fee.Amount, 10)},
		Events: apiEvents(rc.Events), Error: rc.Error,
	}
	if len(rc.Data) > 0 {
		if utf8.Valid(rc.Data) && json.Valid(rc.Data) {
			out.Data = string(rc.Data)
		} else {
			out.Data = base64.StdEncoding.EncodeToString(rc.Data)
		}
	}
	return out
}

func apiEvents(evs []ledger.Event) []client.Event {
	out := make([]client.Event, len(evs))
	for i, e := range evs {
		attrs := make([]client.Attr, len(e.Attrs))
		for j, a := range e.Attrs {
			attrs[j] = client.Attr{Key: a.Key, Value: a.Value}
		}
		out[i] = client.Event{Type: e.Type, Attrs: attrs}
	}
	return out
}

func (n *Node) handleTx(w http.ResponseWriter, r *http.Request) {
	h, err := ledger.ParseHash(r.PathValue("hash"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	t, err := n.TxJSON(h)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// TxJSON renders a committed transaction and its receipt.
func (n *Node) TxJSON(h ledger.Hash) (*client.Tx, error) {
	height, idx, err := n.store.TxLocation(h)
	if err != nil {
		return nil, err
	}
	b, err := n.store.Block(height)
	if err != nil {
		return nil, fmt.Errorf("kernel: tx %s is in block %d: %w", h, height, err)
	}
	if int(idx) >= len(b.Txs) {
		return nil, fmt.Errorf("kernel: tx %s: index %d beyond block %d: %w", h, idx, height, ledger.ErrCorrupt)
	}
	rc, err := n.store.Receipt(height, idx)
	if err != nil {
		return nil, err
	}
	return n.txJSON(b.Txs[idx], rc)
}

// Request bodies are read as they arrive, never allocated on a client's
// word: a declared Content-Length above the limit is refused before
// reading, and below it commits memory only as bytes come in. The first
// chunk is bodyChunkMin; each next one, allocated once the last is full,
// doubles up to bodyChunkMax. A request thus holds at most about twice
// what its client really sent, plus bodyChunkMin (eight idle requests
// declaring 256 MiB used to reserve 2 GB), and a megabytes-long batch is
// never copied to grow (see readBatch).
const (
	bodyChunkMin = 64 << 10
	bodyChunkMax = 1 << 20
)

// readChunks reads a request body of at most limit bytes into chunks (see
// bodyChunkMin) and returns them with their total length.
func readChunks(r *http.Request, limit int64) ([][]byte, int64, error) {
	if r.ContentLength > limit {
		return nil, 0, fmt.Errorf("kernel: body of %d bytes, the limit is %d: %w", r.ContentLength, limit, ledger.ErrTxTooLarge)
	}
	want := limit + 1 // length not declared: one byte more tells a body over the limit
	if r.ContentLength >= 0 {
		want = r.ContentLength // net/http ends the body there
	}
	var chunks [][]byte
	var total int64
	for size := int64(bodyChunkMin); total < want; size = min(2*size, bodyChunkMax) {
		c := make([]byte, min(size, want-total))
		n, err := fill(r.Body, c)
		if n > 0 {
			chunks = append(chunks, c[:n])
			total += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, fmt.Errorf("kernel: read body: %w", err)
		}
	}
	if total > limit {
		return nil, 0, fmt.Errorf("kernel: body larger than %d bytes: %w", limit, ledger.ErrTxTooLarge)
	}
	return chunks, total, nil
}

// fill reads into c until it is full or r fails (io.EOF: r ended; a body
// that ends before its declared length fails with io.ErrUnexpectedEOF).
func fill(r io.Reader, c []byte) (int, error) {
	n := 0
	for n < len(c) {
		k, err := r.Read(c[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// readBody reads a request body of at most limit bytes into one slice.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	chunks, total, err := readChunks(r, limit)
	switch {
	case err != nil:
		return nil, err
	case len(chunks) == 1:
		return chunks[0], nil
	}
	b := make([]byte, 0, total)
	for _, c := range chunks {
		b = append(b, c...)
	}
	return b, nil
}

// readBatch reads the body of POST /v1/txs/batch: transactions, each
// behind its 4-byte big-endian length. A transaction inside one chunk of
// the body is a slice of it; only the few that straddle two chunks are
// copied.
func readBatch(r *http.Request) ([][]byte, error) {
	chunks, total, err := readChunks(r, maxBatchBytes)
	if err != nil {
		return nil, err
	}
	cur := chunkCursor{chunks: chunks, left: total}
	var raws [][]byte
	for cur.left > 0 {
		if cur.left < 4 {
			return nil, fmt.Errorf("kernel: batch: truncated length prefix")
		}
		l := binary.BigEndian.Uint32(cur.take(4))
		if int64(l) > cur.left || l > ledger.MaxTxBytes {
			return nil, fmt.Errorf("kernel: batch: tx %d: bad length %d", len(raws), l)
		}
		raws = append(raws, cur.take(int(l)))
	}
	return raws, nil
}

// chunkCursor hands out consecutive pieces of a body read by readChunks.
type chunkCursor struct {
	chunks [][]byte
	left   int64
}

// take returns the next n bytes (n ≤ left).
func (c *chunkCursor) take(n int) []byte {
	c.left -= int64(n)
	for len(c.chunks) > 0 && len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	if len(c.chunks[0]) >= n {
		p := c.chunks[0][:n:n]
		c.chunks[0] = c.chunks[0][n:]
		return p
	}
	p := make([]byte, 0, n)
	for len(p) < n {
		k := min(n-len(p), len(c.chunks[0]))
		p = append(p, c.chunks[0][:k]...)
		if c.chunks[0] = c.chunks[0][k:]; len(c.chunks[0]) == 0 {
			c.chunks = c.chunks[1:]
		}
	}
	return p
}

// bodyErrStatus is the status for a body readChunks refused.
func bodyErrStatus(err error) int {
	if errors.Is(err, ledger.ErrTxTooLarge) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

func (n *Node) handleSubmit(w http.ResponseWriter, r *http.Request) {
	raw, err := readBody(r, ledger.MaxTxBytes)
	if err != nil {
		writeErr(w, bodyErrStatus(err), err)
		return
	}
	wait := r.URL.Query().Get("wait") == "commit"
	res, status := n.Submit(r.Context(), raw, wait)
	writeJSON(w, status, res)
}

// Submit admits one transaction and, with wait, blocks until it commits.
func (n *Node) Submit(ctx context.Context, raw []byte, wait bool) (client.SubmitResult, int) {
	var ch <-chan TxOutcome
	if wait {
		var cancel func()
		ch, cancel = n.mempool.Wait(ledger.HashBytes(raw))
		defer cancel()
	}
	res, code := n.admit(raw)
	if res.Error != "" || !wait {
		return res, code
	}
	return n.awaitCommit(ctx, raw, res, ch)
}

// admit adds a transaction to the mempool and forwards it to the cluster.
func (n *Node) admit(raw []byte) (client.SubmitResult, int) {
	h := ledger.HashBytes(raw)
	res := client.SubmitResult{TxHash: h.String()}
	_, errs := n.mempool.Add([][]byte{raw})
	if errs[0] != nil {
		res.Error = errs[0].Error()
		return res, statusOf(errs[0])
	}
	if n.cluster != nil {
		n.cluster.Forward([][]byte{raw})
	}
	if n.mempool.Size() >= int(n.chain.params.MaxBlockTxs) {
		n.Trigger()
	}
	return res, http.StatusAccepted
}

// awaitCommit waits (at most commitWait) for the outcome of an admitted
// transaction on ch (from Mempool.Wait, taken before it was admitted).
func (n *Node) awaitCommit(ctx context.Context, raw []byte, res client.SubmitResult, ch <-chan TxOutcome) (client.SubmitResult, int) {
	ctx, cancel := context.WithTimeout(ctx, commitWait)
	defer cancel()
	select {
	case o := <-ch:
		if o.Err != nil {
			res.Error = o.Err.Error()
			return res, statusOf(o.Err)
		}
		rc := o.Receipt
		res.Height, res.Code, res.GasUsed = rc.Height, uint32(rc.Code), rc.GasUsed
		// The receipt reports the limit the sender signed (the receipt
		// itself records only what was used).
		var gasLimit uint64
		if tx, err := n.chain.codec.DecodeTx(raw); err == nil {
			gasLimit = tx.GasLimit
		}
		res.Receipt = apiReceipt(rc, gasLimit)
		return res, http.StatusOK
	case <-ctx.Done():
		res.Error = fmt.Sprintf("kernel: tx %s accepted but not committed within %s", res.TxHash, commitWait)
		return res, http.StatusGatewayTimeout
	}
}

func (n *Node) handleBatch(w http.ResponseWriter, r *http.Request) {
	raws, err := readBatch(r)
	if err != nil {
		writeErr(w, bodyErrStatus(err), err)
		return
	}
	hashes, errs := n.mempool.Add(raws)
	out := make([]client.BatchResult, len(raws))
	accepted := make([][]byte, 0, len(raws))
	for i := range raws {
		out[i].TxHash = hashes[i].String()
		if errs[i] != nil {
			out[i].Error = errs[i].Error()
		} else {
			accepted = append(accepted, raws[i])
		}
	}
	if n.cluster != nil {
		n.cluster.Forward(accepted)
	}
	if n.mempool.Size() >= int(n.chain.params.MaxBlockTxs) {
		n.Trigger()
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleSimulate(w http.ResponseWriter, r *http.Request) {
	raw, err := readBody(r, ledger.MaxTxBytes)
	if err != nil {
		writeErr(w, bodyErrStatus(err), err)
		return
	}
	tr, gasLimit, err := n.SimulateTrace(r.Context(), raw)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	out := apiReceipt(&tr.Receipt, gasLimit)
	out.Logs = callLogs(apiCalls(tr.Calls), nil)
	writeJSON(w, http.StatusOK, out)
}

// Simulate executes a signed tx on the latest state and discards the result.
func (n *Node) Simulate(ctx context.Context, raw []byte) (*ledger.Receipt, uint64, error) {
	tr, gasLimit, err := n.SimulateTrace(ctx, raw)
	if err != nil {
		return nil, 0, err
	}
	return &tr.Receipt, gasLimit, nil
}

// SimulateTrace is Simulate with the trace of the execution (gas by part,
// contract calls and their debug logs).
func (n *Node) SimulateTrace(ctx context.Context, raw []byte) (*TxTrace, uint64, error) {
	c := n.chain
	tx, err := c.codec.DecodeTx(raw)
	if err != nil {
		return nil, 0, err
	}
	st := ledger.NewState(c.store)
	ptx := &PendingTx{Tx: tx, Raw: raw, Hash: ledger.HashBytes(raw)}
	if err := c.Verify(st, ptx); err != nil {
		return nil, 0, err
	}
	head := c.store.Head()
	ex := c.NewExecutor(ctx, st, BlockEnv{ChainID: head.ChainID, Height: head.Height + 1, TimeMs: head.Time + 1})
	tr, err := ex.applyTraced(ptx, 0)
	if err != nil {
		return nil, 0, err
	}
	return tr, tx.GasLimit, nil
}

func (n *Node) handleAccount(w http.ResponseWriter, r *http.Request) {
	addr, err := ledger.ParseAddress(r.PathValue("addr"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, err)
		return
	}
	prove := r.URL.Query().Get("prove") == "true"
	a, err := n.AccountJSON(addr, prove)
	if err != nil {
		writeErr(w, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// AccountJSON renders an account, with a state proof if asked.
func (n *Node) AccountJSON(addr ledger.Address, prove bool) (*client.Account, error) {
	c := n.chain
	var acc ledger.Account
	out := &client.Account{Address: addr.String(), Balances: []client.Coin{}}
	var raw []byte
	if prove {
		sp, err := c.store.Prove(ledger.AccountKey(addr))
		if err != nil {
			return nil, err
		}
		pj, err := json.Marshal(sp)
		if err != nil {
			return nil, err
		}
		out.Proof, out.Height, raw = pj, sp.Height, sp.Value
	} else {
		var err error
		out.Height = c.store.Head().Height
		if raw, err = c.store.GetState(ledger.AccountKey(addr)); err != nil {
			return nil, err
		}
	}
	if raw != nil {
		if err := c.codec.Unmarshal(raw, &acc); err != nil {
			return nil, fmt.Errorf("kernel: account %s: %w: %w", addr, ledger.ErrCorrupt, err)
		}
	}
	out.Nonce = acc.Nonce
	for _, b := range acc.Balances {
		out.Balances = append(out.Balances, client.Coin{Denom: b.Denom, Amount: strconv.FormatUint(b.Amount, 10)})
	}
	pk, err := c.store.GetState(ledger.PubKeyKey(addr))
	if err != nil {
		return nil, err
	}
	out.HasPubKey = pk != nil
	return out, nil
}

func (n *Node) handleSupply(w http.ResponseWriter, r *http.Request) {
	c := n.chain
	acc := &ledger.Accounts{St: ledger.NewState(c.store), Codec: c.codec}
	out := []client.Supply{}
	for _, d := range c.denoms.List() {
		total, err := acc.Supply(d.Base)
		if err != nil {
			writeErr(w, http.StatusInternalServerError, err)
			return
		}
		fees, err := acc.Balance(ledger.FeeCollector, d.Base)
		if err != nil {
			writeErr(w, http.StatusInternalServerError, err)
			return
		}
		out = append(out, client.Supply{Denom: d.Base, Total: strconv.FormatUint(total, 10), FeeCollector: strconv.FormatUint(fees, 10)})
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleDenoms(w http.ResponseWriter, r *http.Request) {
	out := []client.Denom{}
	for _, d := range n.chain.denoms.List() {
		out = append(out, client.Denom{Display: d.Display, Base: d.Base, Exponent: d.Exponent, Description: d.Description})
	}
	writeJSON(w, http.StatusOK, out)
}

func (n *Node) handleGenesis(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(n.opts.GenesisDoc)
}

// handleEvents streams server-sent events: "block" and "tx" as they commit.
func (n *Node) handleEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	// send writes one message within eventWriteStall (see there); false:
	// the client is gone or stopped reading.
	send := func(format string, args ...any) bool {
		if err := rc.SetWriteDeadline(time.Now().Add(eventWriteStall)); err != nil {
			return false
		}
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	ch, cancel := n.events.Subscribe(1 << 16)
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if !send(": connected to %s\n\n", n.nodeID) {
		return
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			if !send(": keepalive\n\n") {
				return
			}
		case ev, ok := <-ch:
			if !ok {
				return // fell behind: the client reconnects
			}
			if !send("event: %s\ndata: %s\n\n", ev.Type, ev.Data) {
				return
			}
		}
	}
}
