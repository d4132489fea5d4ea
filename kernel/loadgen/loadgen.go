// Package loadgen measures a node end to end: it funds fresh sender
// accounts, pre-signs transfers from them, submits the lot in batches and
// follows the node's event stream to time every commit.
package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"
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
	if err := fundSenders(ctx, b, funder, senders, fund, cfg.GasPrice); err != nil {
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
	var mu sync.Mutex
	done := make(chan struct{})
	var commits, failed, expected int
	expected = len(raws)
	var doneOnce sync.Once
	sctx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	streamErr := make(chan error, 1)
	streaming := make(chan struct{})
	go func() {
		first := true
		streamErr <- b.Client.Events(sctx, func(ev client.StreamEvent) {
			if first {
				first = false
			}
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
			if !ok || !committed[i].IsZero() {
				return
			}
			committed[i] = now
			commits++
			if te.Code != 0 {
				failed++
			}
			if commits >= expected {
				doneOnce.Do(func() { close(done) })
			}
		})
	}()
	// Give the stream a moment to connect before submitting.
	go func() {
		time.Sleep(200 * time.Millisecond)
		close(streaming)
	}()
	<-streaming

	start := time.Now()
	var rejected int
	var firstErr string
	submit := func(lo, hi int) error {
		now := time.Now()
		mu.Lock()
		for i := lo; i < hi; i++ {
			submitted[i] = now
		}
		mu.Unlock()
		out, err := b.Client.SubmitBatch(ctx, raws[lo:hi])
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		for _, r := range out {
			if r.Error != "" {
				rejected++
				expected--
				if firstErr == "" {
					firstErr = r.Error
				}
			}
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
	progress(fmt.Sprintf("submitted %d (%d rejected) in %.2fs", len(raws), rejected, submitDur.Seconds()))

	timeout := time.NewTimer(cfg.Timeout)
	defer timeout.Stop()
	select {
	case <-done:
	case err := <-streamErr:
		return nil, fmt.Errorf("loadgen: event stream ended before all commits: %w", err)
	case <-timeout.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	stopStream()
	mu.Lock()
	defer mu.Unlock()
	res.Accepted, res.Rejected, res.Committed, res.Failed = len(raws)-rejected, rejected, commits, failed
	res.FirstError = firstErr
	res.SubmitSecs = submitDur.Seconds()
	res.AcceptedTPS = float64(res.Accepted) / submitDur.Seconds()
	var last time.Time
	lat := make([]float64, 0, commits)
	for i := range raws {
		if committed[i].IsZero() {
			continue
		}
		if committed[i].After(last) {
			last = committed[i]
		}
		lat = append(lat, float64(committed[i].Sub(submitted[i]).Microseconds())/1000)
	}
	if commits > 0 {
		res.TotalSeconds = last.Sub(start).Seconds()
		res.CommittedTPS = float64(commits) / res.TotalSeconds
		slices.Sort(lat)
		res.P50Ms = lat[len(lat)*50/100]
		res.P99Ms = lat[min(len(lat)-1, len(lat)*99/100)]
	}
	if commits < res.Accepted {
		return res, fmt.Errorf("loadgen: only %d of %d accepted txs committed within %s", commits, res.Accepted, cfg.Timeout)
	}
	return res, nil
}

// fundSenders sends one transfer per sender from funder and waits for all.
func fundSenders(ctx context.Context, b *txbuild.Builder, funder *ledger.PrivateKey, senders []*ledger.PrivateKey, amount ledger.Coins, price ledger.GasPrice) error {
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
	out, err := b.Client.SubmitBatch(ctx, raws)
	if err != nil {
		return fmt.Errorf("loadgen: fund senders: %w", err)
	}
	for i, r := range out {
		if r.Error != "" {
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
