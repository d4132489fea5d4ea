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
	return n.signTx(n.opts.NodeKey, p, nonce, gasLimit)
}

// signTx signs a transaction from key's account with the given nonce.
func (n *Node) signTx(key *ledger.PrivateKey, p ledger.Payload, nonce, gasLimit uint64) ([]byte, error) {
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
	n.txMu.Lock()
	raw, err := n.nextTx(n.opts.NodeKey, p, 1_000_000)
	if err != nil {
		n.txMu.Unlock()
		return client.SubmitResult{}, err
	}
	var ch <-chan TxOutcome
	if wait {
		var cancel func()
		ch, cancel = n.mempool.Wait(ledger.HashBytes(raw))
		defer cancel()
	}
	res, _ := n.admit(raw)
	n.txMu.Unlock()
	if res.Error == "" && wait {
		res, _ = n.awaitCommit(ctx, raw, res, ch)
	}
	if res.Error != "" {
		return res, fmt.Errorf("kernel: node transaction %s: %w", p.Kind(), errors.New(res.Error))
	}
	return res, nil
}

// nextTx signs p from key's account at its next free nonce (after its
// transactions in the mempool). Call it with txMu held until the
// transaction is admitted, so two never take the same nonce.
func (n *Node) nextTx(key *ledger.PrivateKey, p ledger.Payload, gasLimit uint64) ([]byte, error) {
	nonce, err := n.mempool.NextNonce(key.Address())
	if err != nil {
		return nil, err
	}
	return n.signTx(key, p, nonce, gasLimit)
}

// submitTxAs signs p with key (the node key, or a key of the home's
// keyring: a job's consumer) at its next free nonce and submits it
// without waiting for a block; it returns the transaction's hash. The gas
// limit covers the payload's bytes (a result lists up to thousands of
// outputs); only the gas used is paid.
func (n *Node) submitTxAs(ctx context.Context, key *ledger.PrivateKey, p ledger.Payload) (ledger.Hash, error) {
	body, err := n.chain.codec.Marshal(p)
	if err != nil {
		return ledger.Hash{}, err
	}
	gas := 1_000_000 + 2*n.chain.sched.TxPerByte*uint64(len(body))
	n.txMu.Lock()
	raw, err := n.nextTx(key, p, gas)
	if err != nil {
		n.txMu.Unlock()
		return ledger.Hash{}, err
	}
	res, _ := n.admit(raw)
	n.txMu.Unlock()
	if res.Error != "" {
		return ledger.Hash{}, fmt.Errorf("kernel: %s from %s: %w", p.Kind(), key.Address(), errors.New(res.Error))
	}
	return ledger.HashBytes(raw), nil
}

// submitNodeTxLocked signs p with the node key at the next free nonce and
// hands it to the mempool without waiting; the caller holds txMu, so no
// other node-key transaction takes the nonce meanwhile.
func (n *Node) submitNodeTxLocked(p ledger.Payload, gasLimit uint64) (client.SubmitResult, error) {
	raw, err := n.nextTx(n.opts.NodeKey, p, gasLimit)
	if err != nil {
		return client.SubmitResult{}, err
	}
	res, _ := n.admit(raw)
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
