package kernel

import (
	"context"
	"fmt"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

// Market returns the ROME market (nil if genesis configured it wrongly;
// InitGenesis then reports why).
func (c *Chain) Market() *rome.Market { return c.market }

// runMarket executes a ROME market or governance payload.
func (e *Executor) runMarket(ptx *PendingTx, gas *ledger.GasMeter) ([]ledger.Event, []byte, error) {
	c := e.chain
	if c.market == nil {
		return nil, nil, c.marketErr
	}
	tx := &rome.Tx{St: e.st, Gas: gas, Sched: &c.sched, Height: e.env.Height, TimeMs: e.env.TimeMs, Sender: ptx.Tx.Sender, TxHash: ptx.Hash,
		PrevHash: e.env.PrevHash}
	data, err := c.market.Deliver(e.ctx, tx, ptx.Tx.Payload)
	if err != nil {
		return nil, nil, err
	}
	return tx.Events, data, nil
}

// endMarket runs the market's end-of-block work: governance tallies, job
// deadlines and, at an epoch's last block, the epoch.
func (c *Chain) endMarket(ex *Executor) error {
	if c.market == nil {
		return c.marketErr
	}
	evs, err := c.market.EndBlock(ex.ctx, ex.st, rome.Block{ChainID: ex.env.ChainID, Height: ex.env.Height, TimeMs: ex.env.TimeMs, PrevHash: ex.env.PrevHash})
	if err != nil {
		return err
	}
	ex.endEvents = append(ex.endEvents, evs...)
	return nil
}

// applyChainMinGasPrices gives the mempool the gas price floor the market
// parameters (governance) set, after a commit changed it.
func (n *Node) applyChainMinGasPrices() {
	m := n.chain.market
	if m == nil {
		return
	}
	p, err := m.Params(ledger.NewState(n.store))
	if err != nil {
		n.log.Warn("rome: read market parameters", "err", err)
		return
	}
	if p.MinGasPrices == n.chainMinGas {
		return
	}
	prices, err := n.chain.denoms.ParseGasPrices(p.MinGasPrices)
	if err != nil {
		n.log.Warn("rome: min_gas_prices on chain", "value", p.MinGasPrices, "err", err)
		return
	}
	floor := map[string]ledger.GasPrice{}
	for _, pr := range prices {
		floor[pr.Denom] = pr
	}
	n.mempool.SetChainMinGasPrices(floor)
	n.chainMinGas = p.MinGasPrices
	n.log.Info("chain minimum gas prices", "min_gas_prices", p.MinGasPrices)
}

// maxCertSigsPerBlock bounds the signing transactions submitted per commit.
const maxCertSigsPerBlock = 64

// signCertificates submits this node's signatures for certificate
// statements waiting for it (execution records them unsigned: it holds no
// keys). It runs after each commit, and only when none of the node's own
// transactions is still pending, so nonces never collide and a signature is
// submitted once. The node's account pays the fees.
func (n *Node) signCertificates() {
	m := n.chain.market
	if m == nil {
		return
	}
	key := n.opts.NodeKey
	addr := key.Address()
	if !n.txMu.TryLock() {
		return // another node-key transaction (a job loop's, the storage worker's) is being sent: sign after the next block
	}
	defer n.txMu.Unlock()
	if n.nodeTxPending() {
		return
	}
	st := ledger.NewState(n.store)
	pend, err := rome.PendingSignatures(st, n.chain.codec, key.Public(), maxCertSigsPerBlock)
	if err != nil || len(pend) == 0 {
		if err != nil {
			n.log.Warn("rome: pending certificates", "err", err)
		}
		return
	}
	acc, _, err := (&ledger.Accounts{St: st, Codec: n.chain.codec}).Get(addr)
	if err != nil {
		n.log.Warn("rome: node account", "err", err)
		return
	}
	if acc.Balances.AmountOf(ledger.DefaultFeeDenom) < 20_000*uint64(len(pend)) {
		n.log.Debug("rome: the node account cannot pay for certificate signatures", "address", addr, "pending", len(pend))
		return
	}
	nonce := acc.Nonce
	for i := range pend {
		p, err := rome.SignPayload(n.chain.codec, key, &pend[i])
		if err != nil {
			n.log.Warn("rome: sign certificate", "cert_id", pend[i].Statement.ID, "err", err)
			return
		}
		raw, err := n.nodeTx(p, nonce, 1_000_000)
		if err != nil {
			return
		}
		if res, _ := n.Submit(context.Background(), raw, false); res.Error != "" {
			n.log.Warn("rome: submit certificate signature", "cert_id", p.CertID, "err", fmt.Errorf("%s", res.Error))
			return
		}
		nonce++
	}
	n.log.Info("rome: signed certificates", "count", len(pend))
}
