package kernel

import (
	"context"
	"errors"
	"fmt"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
)

// nodeGasPrice is what the node's own transactions (certificate signatures,
// membership changes) pay: the default minimum gas price of every node.
var nodeGasPrice = ledger.GasPrice{Denom: ledger.DefaultFeeDenom, Micro: 10_000}

// nodeTx signs a transaction from this node's own account (its ML-DSA node
// key) with the given nonce.
func (n *Node) nodeTx(p ledger.Payload, nonce, gasLimit uint64) ([]byte, error) {
	key := n.opts.NodeKey
	tx := &ledger.Tx{Version: ledger.TxVersion, ChainID: n.chain.genesis.ChainID, Nonce: nonce, GasLimit: gasLimit,
		GasPrice: nodeGasPrice, Payload: p}
	if nonce == 0 {
		tx.PubKey = key.Public().Bytes()
	}
	if err := n.chain.codec.SignTx(tx, key); err != nil {
		return nil, err
	}
	return n.chain.codec.EncodeTx(tx)
}

// submitNodeTx signs p with the node key at the next free nonce (after the
// node's transactions still in the mempool) and submits it. With wait it
// returns once the transaction is committed, or failed to be.
func (n *Node) submitNodeTx(ctx context.Context, p ledger.Payload, wait bool) (client.SubmitResult, error) {
	// Held until the transaction is in the mempool (with wait, until it is
	// committed: membership changes are rare), so nonces never collide.
	n.nodeTxMu.Lock()
	defer n.nodeTxMu.Unlock()
	if !wait {
		return n.submitNodeTxLocked(ctx, p, 1_000_000)
	}
	nonce, err := n.mempool.NextNonce(n.opts.NodeKey.Address())
	if err != nil {
		return client.SubmitResult{}, err
	}
	raw, err := n.nodeTx(p, nonce, 1_000_000)
	if err != nil {
		return client.SubmitResult{}, err
	}
	res, _ := n.Submit(ctx, raw, wait)
	if res.Error != "" {
		return res, fmt.Errorf("kernel: node transaction %s: %w", p.Kind(), errors.New(res.Error))
	}
	return res, nil
}

// submitNodeTxLocked signs p with the node key at the next free nonce and
// hands it to the mempool without waiting; the caller holds nodeTxMu, so
// no other node-key transaction takes the nonce meanwhile.
func (n *Node) submitNodeTxLocked(ctx context.Context, p ledger.Payload, gasLimit uint64) (client.SubmitResult, error) {
	nonce, err := n.mempool.NextNonce(n.opts.NodeKey.Address())
	if err != nil {
		return client.SubmitResult{}, err
	}
	raw, err := n.nodeTx(p, nonce, gasLimit)
	if err != nil {
		return client.SubmitResult{}, err
	}
	res, _ := n.Submit(ctx, raw, false)
	if res.Error != "" {
		return res, fmt.Errorf("kernel: node transaction %s: %w", p.Kind(), errors.New(res.Error))
	}
	return res, nil
}

// nodeTxPending reports whether transactions of the node key wait in the
// mempool.
func (n *Node) nodeTxPending() bool {
	addr := n.opts.NodeKey.Address()
	n.mempool.mu.Lock()
	defer n.mempool.mu.Unlock()
	q := n.mempool.senders[addr]
	return q != nil && len(q.txs) > 0
}
