package kernel

import (
	"container/heap"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/sos-kernel/sos/ledger"
)

// Mempool errors (matched with errors.Is; the API maps them to HTTP 400/409/503).
var (
	ErrDuplicate    = errors.New("transaction already known")
	ErrNonceTooLow  = errors.New("nonce too low (already used: replay?)")
	ErrNonceTooHigh = errors.New("nonce too far ahead")
	ErrMempoolFull  = errors.New("mempool full")
	ErrGasPriceLow  = errors.New("gas price below this node's minimum")
)

// MempoolConfig bounds the pool.
type MempoolConfig struct {
	MaxTxs       int                        // total transactions held
	MaxNonceGap  uint64                     // how far ahead of the account nonce a tx may be
	MinGasPrices map[string]ledger.GasPrice // per base denom; a denom absent here is not accepted for fees when the map is non-empty
}

// Mempool holds verified transactions until a block includes them. It
// checks everything it can before admitting a tx (decoding, chain id,
// signature, nonce window, funds for amount + maximum fee, minimum gas
// price) so blocks are rarely built with losers. Per sender it keeps txs by
// nonce; across senders it hands out the highest gas price first.
type Mempool struct {
	chain *Chain
	cfg   MempoolConfig

	// chainMin is the floor governance set (market parameter
	// min_gas_prices), on top of this node's own minimums; nil: none.
	chainMin atomic.Pointer[map[string]ledger.GasPrice]

	mu      sync.Mutex
	byHash  map[ledger.Hash]*PendingTx
	senders map[ledger.Address]*senderQueue
	seq     uint64 // arrival counter: equal prices go first come, first served
	waiters map[ledger.Hash][]chan TxOutcome
}

type senderQueue struct {
	next uint64 // next nonce the chain expects (committed nonce + included-but-not-yet-known)
	txs  map[uint64]*poolTx
}

type poolTx struct {
	*PendingTx
	seq uint64
}

// TxOutcome is delivered to those waiting for a transaction's fate.
type TxOutcome struct {
	Receipt *ledger.Receipt
	Err     error
}

// NewMempool creates an empty pool.
func NewMempool(chain *Chain, cfg MempoolConfig) *Mempool {
	if cfg.MaxTxs <= 0 {
		cfg.MaxTxs = 100_000
	}
	if cfg.MaxNonceGap == 0 {
		cfg.MaxNonceGap = 10_000
	}
	return &Mempool{
		chain: chain, cfg: cfg,
		byHash:  make(map[ledger.Hash]*PendingTx),
		senders: make(map[ledger.Address]*senderQueue),
		waiters: make(map[ledger.Hash][]chan TxOutcome),
	}
}

// Size is the number of transactions held.
func (m *Mempool) Size() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byHash)
}

// Add admits a batch of encoded transactions. Signatures are verified on
// all cores. The result has one entry per input: the tx hash and nil, or the
// reason it was refused.
func (m *Mempool) Add(raws [][]byte) ([]ledger.Hash, []error) {
	hashes := make([]ledger.Hash, len(raws))
	errs := make([]error, len(raws))
	ptxs := make([]*PendingTx, len(raws))
	// Decode everything first and parse the senders' public keys (those that
	// travel with first transactions, or are on chain), so a sender's later
	// txs in the same batch verify even when checked before (or beside) the
	// first one. Those keys live as long as the batch: the chain caches a key
	// only once a signature verified with it, so what this pool refuses is
	// not retained.
	parallel(len(raws), func(i int) {
		hashes[i] = ledger.HashBytes(raws[i])
		ptxs[i], errs[i] = m.decode(raws[i], hashes[i])
	})
	batch := m.chain.batchKeys(ledger.NewState(m.chain.store), ptxs)
	parallel(len(raws), func(i int) {
		if errs[i] != nil {
			return
		}
		pk, err := m.chain.keyFor(ledger.NewState(m.chain.store), ptxs[i].Tx, batch)
		if err == nil {
			err = m.chain.verifyWith(ptxs[i], pk)
		}
		if err != nil {
			errs[i], ptxs[i] = err, nil
		}
	})
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, p := range ptxs {
		if errs[i] == nil {
			errs[i] = m.insertLocked(p)
		}
	}
	return hashes, errs
}

// decode does the checks that need neither a lock nor a key: decoding,
// stateless rules, chain, gas price, already committed.
func (m *Mempool) decode(raw []byte, h ledger.Hash) (*PendingTx, error) {
	c := m.chain
	tx, err := c.codec.DecodeTx(raw)
	if err != nil {
		return nil, err
	}
	if tx.ChainID != c.genesis.ChainID {
		return nil, fmt.Errorf("kernel: tx chain id %q, this chain is %q: %w", tx.ChainID, c.genesis.ChainID, ledger.ErrWrongChain)
	}
	if !c.denoms.IsBase(tx.GasPrice.Denom) {
		return nil, fmt.Errorf("kernel: gas price denom %q: %w", tx.GasPrice.Denom, ledger.ErrUnknownDenom)
	}
	if floor := m.chainMin.Load(); floor != nil {
		if minP, ok := (*floor)[tx.GasPrice.Denom]; ok && tx.GasPrice.Less(minP) {
			return nil, fmt.Errorf("kernel: gas price %s < the chain's minimum %s (market parameter min_gas_prices, set by governance): %w", tx.GasPrice, minP, ErrGasPriceLow)
		}
	}
	if len(m.cfg.MinGasPrices) > 0 {
		minP, ok := m.cfg.MinGasPrices[tx.GasPrice.Denom]
		if !ok {
			return nil, fmt.Errorf("kernel: this node takes fees only in %s: %w", minPriceList(m.cfg.MinGasPrices), ErrGasPriceLow)
		}
		if tx.GasPrice.Less(minP) {
			return nil, fmt.Errorf("kernel: gas price %s < minimum %s: %w", tx.GasPrice, minP, ErrGasPriceLow)
		}
	}
	if max := c.params.MaxGas(tx.Payload); tx.GasLimit > max {
		return nil, fmt.Errorf("kernel: gas limit %d > chain maximum %d", tx.GasLimit, max)
	}
	return &PendingTx{Tx: tx, Raw: raw, Hash: h}, nil
}

// parallel runs fn(0..n-1) on all cores.
func parallel(n int, fn func(i int)) {
	var g errgroup.Group
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := 0; i < n; i++ {
		g.Go(func() error { fn(i); return nil })
	}
	_ = g.Wait()
}

func minPriceList(m map[string]ledger.GasPrice) string {
	s := ""
	for _, d := range sortedKeys(m) {
		if s != "" {
			s += ","
		}
		s += d
	}
	return s
}

// NextNonce is the nonce a new transaction from addr should carry: the
// account's next nonce after the ones already waiting here.
func (m *Mempool) NextNonce(addr ledger.Address) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q, err := m.queueLocked(addr)
	if err != nil {
		return 0, err
	}
	next := q.next
	for q.txs[next] != nil {
		next++
	}
	m.dropIfEmpty(addr, q)
	return next, nil
}

func (m *Mempool) queueLocked(addr ledger.Address) (*senderQueue, error) {
	q := m.senders[addr]
	if q != nil {
		return q, nil
	}
	acc, _, err := (&ledger.Accounts{St: ledger.NewState(m.chain.store), Codec: m.chain.codec}).Get(addr)
	if err != nil {
		return nil, err
	}
	q = &senderQueue{next: acc.Nonce, txs: make(map[uint64]*poolTx)}
	m.senders[addr] = q
	return q, nil
}

func (m *Mempool) insertLocked(p *PendingTx) error {
	tx := p.Tx
	if _, dup := m.byHash[p.Hash]; dup {
		return fmt.Errorf("kernel: tx %s: %w", p.Hash, ErrDuplicate)
	}
	q, err := m.queueLocked(tx.Sender)
	if err != nil {
		return err
	}
	if tx.Nonce < q.next {
		// A committed transaction always lands here (its nonce is used), so
		// the tx index is consulted only now, to say which it is: looking
		// every admission up in the store would cost more than the rest.
		m.dropIfEmpty(tx.Sender, q)
		if _, _, err := m.chain.store.TxLocation(p.Hash); err == nil {
			return fmt.Errorf("kernel: tx %s is already committed: %w", p.Hash, ErrDuplicate)
		}
		return fmt.Errorf("kernel: tx nonce %d, account %s is at %d: %w", tx.Nonce, tx.Sender, q.next, ErrNonceTooLow)
	}
	if tx.Nonce > q.next+m.cfg.MaxNonceGap {
		m.dropIfEmpty(tx.Sender, q)
		return fmt.Errorf("kernel: tx nonce %d, account %s is at %d (window %d): %w", tx.Nonce, tx.Sender, q.next, m.cfg.MaxNonceGap, ErrNonceTooHigh)
	}
	if err := m.checkFunds(p); err != nil {
		m.dropIfEmpty(tx.Sender, q)
		return err
	}
	if old, ok := q.txs[tx.Nonce]; ok {
		// Replace-by-fee: only a strictly better price (≥ 10% more) replaces.
		if old.Tx.GasPrice.Denom != tx.GasPrice.Denom || tx.GasPrice.Micro < old.Tx.GasPrice.Micro+old.Tx.GasPrice.Micro/10+1 {
			return fmt.Errorf("kernel: nonce %d of %s already pending with gas price %s (replace with ≥10%% more): %w", tx.Nonce, tx.Sender, old.Tx.GasPrice, ErrDuplicate)
		}
		delete(m.byHash, old.Hash)
		m.notifyLocked(old.Hash, TxOutcome{Err: fmt.Errorf("kernel: replaced by %s", p.Hash)})
	}
	if len(m.byHash) >= m.cfg.MaxTxs && !m.evictCheaperLocked(tx.GasPrice) {
		return fmt.Errorf("kernel: %d txs held: %w", len(m.byHash), ErrMempoolFull)
	}
	m.seq++
	q.txs[tx.Nonce] = &poolTx{PendingTx: p, seq: m.seq}
	m.byHash[p.Hash] = p
	return nil
}

func (m *Mempool) dropIfEmpty(a ledger.Address, q *senderQueue) {
	if len(q.txs) == 0 {
		delete(m.senders, a)
	}
}

// checkFunds: the committed balance must cover this tx's maximum fee and,
// for transfers, its amount. Earlier pending txs of the same sender are not
// subtracted; execution catches the rest and a failed payload still pays.
func (m *Mempool) checkFunds(p *PendingTx) error {
	tx := p.Tx
	acc, _, err := (&ledger.Accounts{St: ledger.NewState(m.chain.store), Codec: m.chain.codec}).Get(tx.Sender)
	if err != nil {
		return err
	}
	need := ledger.Coins{{Denom: tx.GasPrice.Denom, Amount: tx.MaxFee()}}
	if t, ok := tx.Payload.(*ledger.Transfer); ok {
		for _, c := range t.Amount {
			if !m.chain.denoms.IsBase(c.Denom) {
				return fmt.Errorf("kernel: transfer: %w %q", ledger.ErrUnknownDenom, c.Denom)
			}
			if need, err = need.Add(c); err != nil {
				return fmt.Errorf("kernel: transfer amount + fee: %w", err)
			}
		}
	}
	for _, c := range need {
		if have := acc.Balances.AmountOf(c.Denom); have < c.Amount {
			d := m.chain.denoms
			return fmt.Errorf("kernel: %s has %s, needs %s for amount + max fee: %w", tx.Sender,
				amountText(d, have, c.Denom), amountText(d, c.Amount, c.Denom), ledger.ErrInsufficientFunds)
		}
	}
	return nil
}

// evictCheaperLocked drops the last-nonce tx of the cheapest sender if it is
// cheaper than price, making room; it reports whether room was made.
func (m *Mempool) evictCheaperLocked(price ledger.GasPrice) bool {
	var victim *poolTx
	var victimAddr ledger.Address
	for addr, q := range m.senders {
		var last *poolTx
		for _, t := range q.txs {
			if last == nil || t.Tx.Nonce > last.Tx.Nonce {
				last = t
			}
		}
		if last != nil && (victim == nil || last.Tx.GasPrice.Micro < victim.Tx.GasPrice.Micro) {
			victim, victimAddr = last, addr
		}
	}
	if victim == nil || victim.Tx.GasPrice.Denom == price.Denom && !victim.Tx.GasPrice.Less(price) {
		return false
	}
	q := m.senders[victimAddr]
	delete(q.txs, victim.Tx.Nonce)
	m.dropIfEmpty(victimAddr, q)
	delete(m.byHash, victim.Hash)
	m.notifyLocked(victim.Hash, TxOutcome{Err: fmt.Errorf("kernel: evicted by a better-paying tx: %w", ErrMempoolFull)})
	return true
}

// senderHeap orders sender heads by gas price (high first), then arrival.
type senderHeap []*poolTx

func (h senderHeap) Len() int { return len(h) }
func (h senderHeap) Less(i, j int) bool {
	if h[i].Tx.GasPrice.Micro != h[j].Tx.GasPrice.Micro {
		return h[i].Tx.GasPrice.Micro > h[j].Tx.GasPrice.Micro
	}
	return h[i].seq < h[j].seq
}
func (h senderHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *senderHeap) Push(x any)   { *h = append(*h, x.(*poolTx)) }
func (h *senderHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// Reap returns up to max executable transactions: per sender in nonce order
// from the expected nonce without gaps, across senders by gas price.
func (m *Mempool) Reap(max int) []*PendingTx {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := make(senderHeap, 0, len(m.senders))
	for _, q := range m.senders {
		if t, ok := q.txs[q.next]; ok {
			h = append(h, t)
		}
	}
	heap.Init(&h)
	out := make([]*PendingTx, 0, min(max, len(m.byHash)))
	for h.Len() > 0 && len(out) < max {
		t := heap.Pop(&h).(*poolTx)
		out = append(out, t.PendingTx)
		q := m.senders[t.Tx.Sender]
		if n, ok := q.txs[t.Tx.Nonce+1]; ok {
			heap.Push(&h, n)
		}
	}
	return out
}

// Update removes what a committed block included, drops what it rejected,
// and wakes the waiters.
func (m *Mempool) Update(bb *BuiltBlock) {
	m.mu.Lock()
	defer m.mu.Unlock()
	// Each sender's queue is swept once per block, up to its highest
	// included nonce: sweeping it once per included transaction was
	// quadratic (a sender with a thousand queued transactions and a
	// thousand in the block meant a million steps).
	type senderNonce struct {
		sender ledger.Address
		nonce  uint64
	}
	usedBy := make(map[senderNonce]ledger.Hash, len(bb.Included))
	highest := make(map[ledger.Address]uint64)
	for _, p := range bb.Included {
		usedBy[senderNonce{p.Tx.Sender, p.Tx.Nonce}] = p.Hash
		if n, ok := highest[p.Tx.Sender]; !ok || p.Tx.Nonce > n {
			highest[p.Tx.Sender] = p.Tx.Nonce
		}
	}
	for i, p := range bb.Included {
		if top, first := highest[p.Tx.Sender]; first {
			delete(highest, p.Tx.Sender)
			if q := m.senders[p.Tx.Sender]; q != nil {
				// Drop everything at or below the highest included nonce
				// (a tx with an included nonce but another hash is now a
				// replay).
				for n, t := range q.txs {
					if n > top {
						continue
					}
					delete(q.txs, n)
					delete(m.byHash, t.Hash)
					if h, ok := usedBy[senderNonce{p.Tx.Sender, n}]; !ok || h != t.Hash {
						m.notifyLocked(t.Hash, TxOutcome{Err: fmt.Errorf("kernel: nonce %d already used on chain: %w", n, ErrNonceTooLow)})
					}
				}
				if top+1 > q.next {
					q.next = top + 1
				}
				m.dropIfEmpty(p.Tx.Sender, q)
			}
		}
		delete(m.byHash, p.Hash)
		r := bb.Receipts[i]
		m.notifyLocked(p.Hash, TxOutcome{Receipt: &r})
	}
	for _, r := range bb.Rejected {
		q := m.senders[r.Tx.Tx.Sender]
		if q != nil {
			if t, ok := q.txs[r.Tx.Tx.Nonce]; ok && t.Hash == r.Tx.Hash {
				delete(q.txs, r.Tx.Tx.Nonce)
			}
			// The account's real nonce may have moved (another node's block):
			// forget the queue's idea of it so the next insert re-reads it.
			if errors.Is(r.Err, ErrTxRejected) && len(q.txs) == 0 {
				delete(m.senders, r.Tx.Tx.Sender)
			}
		}
		delete(m.byHash, r.Tx.Hash)
		m.notifyLocked(r.Tx.Hash, TxOutcome{Err: r.Err})
	}
}

// Lookup returns the admitted transaction with hash h, or nil.
func (m *Mempool) Lookup(h ledger.Hash) *PendingTx {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.byHash[h]
}

// SetChainMinGasPrices installs the chain-wide gas price floor per denom
// (nil or empty: none). Transactions already admitted stay.
func (m *Mempool) SetChainMinGasPrices(floor map[string]ledger.GasPrice) {
	if len(floor) == 0 {
		m.chainMin.Store(nil)
		return
	}
	m.chainMin.Store(&floor)
}

// Reset drops every pending transaction (telling waiters why) and forgets
// the senders' nonces, after the state under the pool was replaced.
func (m *Mempool) Reset(why error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for h := range m.byHash {
		m.notifyLocked(h, TxOutcome{Err: why})
	}
	m.byHash = map[ledger.Hash]*PendingTx{}
	m.senders = map[ledger.Address]*senderQueue{}
}

// Wait registers interest in a transaction's outcome. The channel receives
// exactly one outcome (buffered); cancel removes the registration.
func (m *Mempool) Wait(h ledger.Hash) (ch <-chan TxOutcome, cancel func()) {
	c := make(chan TxOutcome, 1)
	m.mu.Lock()
	m.waiters[h] = append(m.waiters[h], c)
	m.mu.Unlock()
	return c, func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		ws := m.waiters[h]
		for i, w := range ws {
			if w == c {
				m.waiters[h] = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(m.waiters[h]) == 0 {
			delete(m.waiters, h)
		}
	}
}

func (m *Mempool) notifyLocked(h ledger.Hash, o TxOutcome) {
	for _, c := range m.waiters[h] {
		select {
		case c <- o:
		default:
		}
	}
	delete(m.waiters, h)
}
