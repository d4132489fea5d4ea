// Package loadgen measures a node end to end: it funds fresh sender
// accounts, pre-signs transfers from them, submits the lot in batches and
// follows the node's event stream to time every commit.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
)

// Config describes a run.
type Config struct {
	Txs        int             // transfers to send in the measured phase
	Senders    int             // fresh accounts sending them
	BatchSize  int             // txs per HTTP request (default 500)
	Parallel   int             // concurrent submitting requests (default 4)
	GasPrice   ledger.GasPrice // zero: txbuild.DefaultGasPrice
	Timeout    time.Duration   // overall commit wait (default 2m)
	Rand       io.Reader       // for sender keys (default crypto/rand)
	OnProgress func(string)    // optional progress lines
	// Contract, when set, makes every measured tx execute Msg on this
	// contract instead of a transfer (e.g. counter's {"increment":{}}).
	Contract *ledger.Address
	Msg      []byte
	GasLimit uint64 // per measured tx (default: 200,000 for transfers, 2,000,000 for contract calls)
	// Rate, when > 0, paces submission at this many tx/s (in batches sent
	// every BatchSize/Rate seconds) to measure latency at an offered load
	// instead of throughput at saturation.
	Rate float64
	// Attempts is how many times a request that met a transient error (a
	// connection reset, a 5xx answer) is sent before its batch is given up
	// and counted as unsent (default 5; backoff from 100 ms, doubling).
	Attempts int
}

// Result is what a run measured.
type Result struct {
	Txs          int     `json:"txs"`
	Accepted     int     `json:"accepted"`
	Rejected     int     `json:"rejected"`
	Committed    int     `json:"committed"`
	Failed       int     `json:"failed"` // committed with a non-zero code
	SignSeconds  float64 `json:"sign_seconds"`
	SubmitSecs   float64 `json:"submit_seconds"`
	TotalSeconds float64 `json:"total_seconds"`
	AcceptedTPS  float64 `json:"accepted_tps"`
	CommittedTPS float64 `json:"committed_tps"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	FirstError   string  `json:"first_error,omitempty"`
	// Unsent counts txs whose batch still failed after Attempts tries: the
	// node never answered for them (they may have been admitted anyway;
	// their commits are counted all the same).
	Unsent int `json:"unsent"`
	// TransientErrors counts requests that failed and were retried or given
	// up; StreamReconnects, drops of the event stream followed. Commits the
	// stream missed while down are looked up one by one at the end.
	TransientErrors   int    `json:"transient_errors"`
	StreamReconnects  int    `json:"stream_reconnects"`
	FirstTransientErr string `json:"first_transient_error,omitempty"`
	CommitsLookedUp   int    `json:"commits_looked_up"`
}

// transferGas covers a transfer with the public key attached (≈ 100k gas).
const transferGas = 200_000

// Run funds cfg.Senders accounts from funder, then sends cfg.Txs transfers.
func Run(ctx context.Context, b *txbuild.Builder, funder *ledger.PrivateKey, cfg Config) (*Result, error) {
	if cfg.Txs <= 0 || cfg.Senders <= 0 {
		return nil, fmt.Errorf("loadgen: --txs and --senders must be positive")
	}
	if cfg.Senders > cfg.Txs {
		cfg.Senders = cfg.Txs
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.GasPrice.Denom == "" {
		cfg.GasPrice = txbuild.DefaultGasPrice
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Minute
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 5
	}
	progress := cfg.OnProgress
	if progress == nil {
		progress = func(string) {}
	}
	senders := make([]*ledger.PrivateKey, cfg.Senders)
	for i := range senders {
		k, err := ledger.GenerateKey(cfg.Rand)
		if err != nil {
			return nil, err
		}
		senders[i] = k
	}
	perSender := (cfg.Txs + cfg.Senders - 1) / cfg.Senders
	if cfg.GasLimit == 0 {
		cfg.GasLimit = transferGas
		if cfg.Contract != nil {
			cfg.GasLimit = 2_000_000
		}
	}
	maxFee, err := cfg.GasPrice.Fee(cfg.GasLimit)
	if err != nil {
		return nil, err
	}
	// Each sender pays fee + 1 base unit per tx; fund fees in the fee denom.
	fund := ledger.Coins{{Denom: cfg.GasPrice.Denom, Amount: uint64(perSender) * (maxFee + 1)}}
	rt := &retrier{client: b.Client, attempts: cfg.Attempts}
	if err := fundSenders(ctx, b, rt, funder, senders, fund, cfg.GasPrice); err != nil {
		return nil, err
	}
	progress(fmt.Sprintf("funded %d senders", len(senders)))

	// Pre-sign, in submission order: round-robin over senders, nonces ascending.
	t0 := time.Now()
	raws := make([][]byte, 0, cfg.Txs)
	type job struct{ s, n, slot int }
	var jobs []job
	for n := 0; n < perSender && len(jobs) < cfg.Txs; n++ {
		for s := 0; s < len(senders) && len(jobs) < cfg.Txs; s++ {
			jobs = append(jobs, job{s, n, len(jobs)})
		}
	}
	raws = raws[:len(jobs)]
	var sg errgroup.Group
	sg.SetLimit(runtime.GOMAXPROCS(0))
	for _, j := range jobs {
		sg.Go(func() error {
			to := senders[(j.s+1)%len(senders)].Address()
			var p ledger.Payload = &ledger.Transfer{To: to, Amount: ledger.Coins{{Denom: cfg.GasPrice.Denom, Amount: 1}}}
			if cfg.Contract != nil {
				p = &ledger.ContractExecute{Contract: *cfg.Contract, Msg: cfg.Msg}
			}
			raw, err := b.Sign(senders[j.s], p, uint64(j.n), j.n == 0, cfg.GasLimit, cfg.GasPrice, "")
			raws[j.slot] = raw
			return err
		})
	}
	if err := sg.Wait(); err != nil {
		return nil, err
	}
	res := &Result{Txs: len(raws), SignSeconds: time.Since(t0).Seconds()}
	progress(fmt.Sprintf("signed %d transfers in %.2fs", len(raws), res.SignSeconds))

	// Follow commits through the event stream.
	hashIdx := make(map[string]int, len(raws))
	for i, r := range raws {
		hashIdx[ledger.HashBytes(r).String()] = i
	}
	submitted := make([]time.Time, len(raws))
	committed := make([]time.Time, len(raws))
	seen := make([]bool, len(raws))     // commit known (event or look-up)
	accepted := make([]bool, len(raws)) // admitted, or its fate unknown (unsent)
	var mu sync.Mutex
	done := make(chan struct{})
	var commits, failed, expected int
	expected = len(raws)
	var doneOnce sync.Once
	sctx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	streamErr := make(chan error, 1)
	streaming := make(chan struct{})
	onEvent := func(ev client.StreamEvent) {
		if ev.Type != "tx" {
			return
		}
		var te client.TxEvent
		if json.Unmarshal(ev.Data, &te) != nil {
			return
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		i, ok := hashIdx[te.TxHash]
		if !ok || seen[i] {
			return
		}
		seen[i], committed[i] = true, now
		commits++
		if te.Code != 0 {
			failed++
		}
		if commits >= expected {
			doneOnce.Do(func() { close(done) })
		}
	}
	reconnects := 0
	go func() {
		// A dropped stream is followed up: commits made while it was down
		// are looked up at the end.
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
			err := b.Client.Events(sctx, onEvent)
			if sctx.Err() != nil {
				streamErr <- nil
				return
			}
			mu.Lock()
			reconnects++
			n := reconnects
			mu.Unlock()
			if n > 20 {
				streamErr <- err
				return
			}
			select {
			case <-sctx.Done():
			case <-time.After(backoff):
			}
		}
	}()
	// Give the stream a moment to connect before submitting.
	go func() {
		time.Sleep(200 * time.Millisecond)
		close(streaming)
	}()
	<-streaming

	start := time.Now()
	var rejected, unsent int
	var firstErr string
	submit := func(lo, hi int) error {
		now := time.Now()
		mu.Lock()
		for i := lo; i < hi; i++ {
			submitted[i] = now
		}
		mu.Unlock()
		out, retried, err := rt.submit(ctx, raws[lo:hi])
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return err
			}
			if isTransient(err) {
				// Given up: the node may or may not have them.
				unsent += hi - lo
				for i := lo; i < hi; i++ {
					accepted[i] = true
				}
				return nil
			}
			rejected += hi - lo // the node refused the request itself
			expected -= hi - lo
			if firstErr == "" {
				firstErr = err.Error()
			}
			return nil
		}
		for k, r := range out {
			// A batch sent again after its answer was lost finds its txs
			// already admitted: they count as accepted.
			if r.Error != "" && !(retried && strings.Contains(r.Error, alreadyKnown)) {
				rejected++
				expected--
				if firstErr == "" {
					firstErr = r.Error
				}
				continue
			}
			accepted[lo+k] = true
		}
		return nil
	}
	// The first round carries every sender's public key: send it alone so
	// no later nonce can arrive before the key is known.
	firstRound := min(len(senders), len(raws))
	if err := submit(0, firstRound); err != nil {
		return nil, fmt.Errorf("loadgen: submit: %w", err)
	}
	var subg errgroup.Group
	subg.SetLimit(cfg.Parallel)
	batch := cfg.BatchSize
	var tick *time.Ticker
	if cfg.Rate > 0 {
		// Small batches at a steady pace: 20 per second at most.
		batch = max(1, int(cfg.Rate/20))
		tick = time.NewTicker(time.Duration(float64(batch) / cfg.Rate * float64(time.Second)))
		defer tick.Stop()
	}
	for lo := firstRound; lo < len(raws); lo += batch {
		hi := min(lo+batch, len(raws))
		if tick != nil {
			<-tick.C
		}
		subg.Go(func() error { return submit(lo, hi) })
	}
	if err := subg.Wait(); err != nil {
		return nil, fmt.Errorf("loadgen: submit: %w", err)
	}
	submitDur := time.Since(start)
	mu.Lock()
	if commits >= expected {
		doneOnce.Do(func() { close(done) })
	}
	mu.Unlock()
	progress(fmt.Sprintf("submitted %d (%d rejected, %d unsent) in %.2fs", len(raws), rejected, unsent, submitDur.Seconds()))

	timeout := time.NewTimer(cfg.Timeout)
	defer timeout.Stop()
	idle := time.NewTicker(time.Second)
	defer idle.Stop()
	var streamDead error
wait:
	for {
		select {
		case <-done:
			break wait
		case err := <-streamErr:
			streamDead = err
			break wait
		case <-timeout.C:
			break wait
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-idle.C:
			// After a stream drop, some commits were never seen: once the
			// node holds nothing more, waiting longer would not show them.
			mu.Lock()
			gaps := reconnects > 0 || unsent > 0
			mu.Unlock()
			if !gaps {
				continue
			}
			if st, err := b.Client.Status(ctx); err == nil && st.MempoolSize == 0 {
				break wait
			}
		}
	}
	stopStream()
	mu.Lock()
	gaps := reconnects > 0 || unsent > 0 || streamDead != nil
	mu.Unlock()
	lookedUp := 0
	if gaps {
		lookedUp = lookUpCommits(ctx, b.Client, raws, &mu, accepted, seen, &commits, &failed, cfg.Parallel)
	}
	mu.Lock()
	defer mu.Unlock()
	res.Accepted, res.Rejected, res.Committed, res.Failed = len(raws)-rejected-unsent, rejected, commits, failed
	res.Unsent, res.StreamReconnects, res.CommitsLookedUp = unsent, reconnects, lookedUp
	res.TransientErrors, res.FirstTransientErr = rt.stats()
	res.FirstError = firstErr
	res.SubmitSecs = submitDur.Seconds()
	res.AcceptedTPS = float64(res.Accepted) / submitDur.Seconds()
	var last time.Time
	lat := make([]float64, 0, commits)
	for i := range raws {
		if committed[i].IsZero() {
			continue // not committed, or its commit was looked up: no latency
		}
		if committed[i].After(last) {
			last = committed[i]
		}
		lat = append(lat, float64(committed[i].Sub(submitted[i]).Microseconds())/1000)
	}
	if len(lat) > 0 {
		res.TotalSeconds = last.Sub(start).Seconds()
		res.CommittedTPS = float64(len(lat)) / res.TotalSeconds
		slices.Sort(lat)
		res.P50Ms = lat[len(lat)*50/100]
		res.P99Ms = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	if streamDead != nil {
		return res, fmt.Errorf("loadgen: event stream lost for good (%d reconnects): %w; %d of %d accepted txs found committed", reconnects, streamDead, commits, res.Accepted+unsent)
	}
	if commits < res.Accepted {
		return res, fmt.Errorf("loadgen: only %d of %d accepted txs committed within %s", commits, res.Accepted, cfg.Timeout)
	}
	return res, nil
}

// alreadyKnown is how the node words a refusal of a transaction it holds
// or committed (kernel.ErrDuplicate).
const alreadyKnown = "already known"

// lookUpCommits asks the node, one tx at a time, about the accepted ones
// whose commit the event stream never showed (it was down for a while),
// and counts those it finds committed. It returns how many it found.
func lookUpCommits(ctx context.Context, c *client.Client, raws [][]byte, mu *sync.Mutex, accepted, seen []bool, commits, failed *int, parallel int) int {
	var todo []int
	mu.Lock()
	for i := range raws {
		if accepted[i] && !seen[i] {
			todo = append(todo, i)
		}
	}
	mu.Unlock()
	var found atomic.Int64
	var g errgroup.Group
	g.SetLimit(max(1, parallel))
	for _, i := range todo {
		g.Go(func() error {
			tx, err := c.Tx(ctx, ledger.HashBytes(raws[i]).String())
			if err != nil {
				return nil // not committed (or the node is gone): not counted
			}
			mu.Lock()
			defer mu.Unlock()
			if !seen[i] {
				seen[i] = true
				*commits++
				if tx.Code != 0 {
					*failed++
				}
				found.Add(1)
			}
			return nil
		})
	}
	_ = g.Wait()
	return int(found.Load())
}

// retrier sends batches, sending again after transient errors.
type retrier struct {
	client   *client.Client
	attempts int

	mu       sync.Mutex
	errors   int
	firstErr string
}

// isTransient tells an error worth another try (the connection broke, the
// node was busy or restarting: a 5xx answer) from a refusal (4xx).
func isTransient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var he *client.HTTPError
	if errors.As(err, &he) {
		return he.Status >= 500
	}
	return !errors.Is(err, client.ErrNotFound)
}

// submit sends raws as one batch, up to r.attempts times while the error
// is transient (backoff 100 ms, doubling to 2 s). retried reports whether
// the answer came from a repeat (so "already known" means admitted).
func (r *retrier) submit(ctx context.Context, raws [][]byte) (out []client.BatchResult, retried bool, err error) {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		out, err = r.client.SubmitBatch(ctx, raws)
		if err == nil || !isTransient(err) || ctx.Err() != nil {
			return out, attempt > 1, err
		}
		r.mu.Lock()
		r.errors++
		if r.firstErr == "" {
			r.firstErr = err.Error()
		}
		r.mu.Unlock()
		if attempt >= r.attempts {
			return nil, attempt > 1, err
		}
		select {
		case <-ctx.Done():
			return nil, true, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

func (r *retrier) stats() (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errors, r.firstErr
}

// fundSenders sends one transfer per sender from funder and waits for all.
func fundSenders(ctx context.Context, b *txbuild.Builder, rt *retrier, funder *ledger.PrivateKey, senders []*ledger.PrivateKey, amount ledger.Coins, price ledger.GasPrice) error {
	acc, err := b.Client.Account(ctx, funder.Address().String(), false)
	if err != nil {
		return fmt.Errorf("loadgen: funder: %w", err)
	}
	raws := make([][]byte, len(senders))
	for i, s := range senders {
		p := &ledger.Transfer{To: s.Address(), Amount: amount}
		if raws[i], err = b.Sign(funder, p, acc.Nonce+uint64(i), i == 0 && !acc.HasPubKey, transferGas, price, "loadgen funding"); err != nil {
			return err
		}
	}
	out, retried, err := rt.submit(ctx, raws)
	if err != nil {
		return fmt.Errorf("loadgen: fund senders: %w", err)
	}
	for i, r := range out {
		if r.Error != "" && !(retried && strings.Contains(r.Error, alreadyKnown)) {
			return fmt.Errorf("loadgen: fund sender %d: %s", i, r.Error)
		}
	}
	// Wait until the funder's nonce has moved past the last funding tx.
	want := acc.Nonce + uint64(len(senders))
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		a, err := b.Client.Account(ctx, funder.Address().String(), false)
		if err == nil && a.Nonce >= want {
			last, err := b.Client.Account(ctx, senders[len(senders)-1].Address().String(), false)
			if err == nil && len(last.Balances) > 0 {
				return nil
			}
			return fmt.Errorf("loadgen: funding committed but sender has no balance (funder out of funds?)")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("loadgen: funding transactions not committed within a minute")
}
