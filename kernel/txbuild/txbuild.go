// Package txbuild signs and sends transactions through a node's API: it
// reads the sender's nonce, attaches the public key to an account's first
// transaction, estimates gas by simulation, signs with ML-DSA-65 and waits
// for the commit. The CLI, the load generator and tests share it.
package txbuild

import (
	"context"
	"errors"
	"fmt"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/ledger"
)

// Builder builds transactions for one chain.
type Builder struct {
	Client  *client.Client
	ChainID string
	Denoms  *ledger.Denoms
	Codec   *ledger.Codec
	// MaxTxGas is the chain's per-transaction gas cap: the budget of a
	// simulation; MaxUploadGas that of an upload's (0: MaxTxGas).
	MaxTxGas, MaxUploadGas uint64
}

// New asks the node for its chain id and tokens.
func New(ctx context.Context, c *client.Client) (*Builder, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return nil, err
	}
	ds, err := c.Denoms(ctx)
	if err != nil {
		return nil, err
	}
	list := make([]ledger.Denom, len(ds))
	for i, d := range ds {
		list[i] = ledger.Denom{Display: d.Display, Base: d.Base, Exponent: d.Exponent, Description: d.Description}
	}
	denoms, err := ledger.NewDenoms(list)
	if err != nil {
		return nil, fmt.Errorf("txbuild: node's denoms: %w", err)
	}
	return &Builder{Client: c, ChainID: st.ChainID, Denoms: denoms, Codec: ledger.NewCodec(), MaxTxGas: st.MaxTxGas, MaxUploadGas: st.MaxUploadGas}, nil
}

// Options are the per-transaction choices.
type Options struct {
	GasLimit   uint64          // 0: simulate and add a margin
	GasPrice   ledger.GasPrice // zero: DefaultGasPrice
	Memo       string
	Nonce      *uint64 // nil: ask the node
	WithPubKey *bool   // nil: attach when the chain has no key for the sender
	Wait       bool    // wait for commit
}

// DefaultGasPrice is the price the CLI pays unless told otherwise; it meets
// a default node's minimum.
var DefaultGasPrice = ledger.GasPrice{Denom: ledger.DefaultFeeDenom, Micro: 10_000} // 0.01uTFLP

// Sign builds and signs a transaction.
func (b *Builder) Sign(key *ledger.PrivateKey, p ledger.Payload, nonce uint64, withPubKey bool, gasLimit uint64, price ledger.GasPrice, memo string) ([]byte, error) {
	tx := &ledger.Tx{
		Version: ledger.TxVersion, ChainID: b.ChainID, Nonce: nonce, GasLimit: gasLimit,
		GasPrice: price, Payload: p, Memo: memo,
	}
	if withPubKey {
		tx.PubKey = key.Public().Bytes()
	}
	if err := b.Codec.SignTx(tx, key); err != nil {
		return nil, err
	}
	return b.Codec.EncodeTx(tx)
}

// Prepare resolves nonce, key attachment and gas, and returns signed bytes.
func (b *Builder) Prepare(ctx context.Context, key *ledger.PrivateKey, p ledger.Payload, o Options) ([]byte, error) {
	if o.GasPrice.Denom == "" {
		o.GasPrice = DefaultGasPrice
	}
	var nonce uint64
	withKey := true
	if o.Nonce == nil || o.WithPubKey == nil {
		acc, err := b.Client.Account(ctx, key.Address().String(), false)
		if err != nil {
			return nil, err
		}
		nonce, withKey = acc.Nonce, !acc.HasPubKey
	}
	if o.Nonce != nil {
		nonce = *o.Nonce
	}
	if o.WithPubKey != nil {
		withKey = *o.WithPubKey
	}
	gas := o.GasLimit
	if gas == 0 {
		est, err := b.Estimate(ctx, key, p, nonce, withKey, o.Memo)
		if err != nil {
			return nil, err
		}
		gas = est
	}
	return b.Sign(key, p, nonce, withKey, gas, o.GasPrice, o.Memo)
}

// ErrSimulation is returned when the dry run of a transaction fails.
var ErrSimulation = errors.New("simulation failed")

// SimulationError is a dry run whose transaction failed (it matches
// ErrSimulation); Receipt says why, for a caller to explain.
type SimulationError struct {
	Receipt *client.Receipt
}

func (e *SimulationError) Error() string {
	return fmt.Sprintf("txbuild: %s: %s (code %d: %s)", ErrSimulation, e.Receipt.Error, e.Receipt.Code, e.Receipt.CodeName)
}

func (e *SimulationError) Unwrap() error { return ErrSimulation }

// Estimate simulates the transaction and returns gas used plus a 20% margin
// (gas can differ a little between simulation and inclusion, e.g. when the
// signature size of the final tx differs).
func (b *Builder) Estimate(ctx context.Context, key *ledger.PrivateKey, p ledger.Payload, nonce uint64, withKey bool, memo string) (uint64, error) {
	rc, err := b.Simulate(ctx, key, p, nonce, withKey, memo)
	if err != nil {
		return 0, err
	}
	if rc.Code != 0 {
		return rc.GasUsed, &SimulationError{Receipt: rc}
	}
	return GasWithMargin(rc.GasUsed), nil
}

// GasWithMargin is the gas limit Estimate suggests for a simulated use.
func GasWithMargin(used uint64) uint64 { return used + used/5 + 1000 }

// Simulate runs the transaction on the node's latest state (at gas price
// zero, so the sender need not afford the fee) and returns its receipt.
func (b *Builder) Simulate(ctx context.Context, key *ledger.PrivateKey, p ledger.Payload, nonce uint64, withKey bool, memo string) (*client.Receipt, error) {
	gas := b.MaxTxGas
	if gas == 0 {
		gas = 100_000_000
	}
	switch p.(type) {
	case *ledger.ContractUpload, *ledger.RomePolicyUpload:
		gas = max(gas, b.MaxUploadGas)
	}
	raw, err := b.Sign(key, p, nonce, withKey, gas, ledger.GasPrice{Denom: ledger.DefaultFeeDenom}, memo)
	if err != nil {
		return nil, err
	}
	rc, err := b.Client.Simulate(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("txbuild: simulate: %w", err)
	}
	return rc, nil
}

// ErrTxFailed is returned when a committed transaction's payload failed.
var ErrTxFailed = errors.New("transaction failed")

// Send prepares, submits and (with o.Wait) waits for commit. A committed
// transaction whose payload failed returns its result and ErrTxFailed.
func (b *Builder) Send(ctx context.Context, key *ledger.PrivateKey, p ledger.Payload, o Options) (*client.SubmitResult, error) {
	raw, err := b.Prepare(ctx, key, p, o)
	if err != nil {
		return nil, err
	}
	res, err := b.Client.SubmitTx(ctx, raw, o.Wait)
	if err != nil {
		return nil, err
	}
	if res.Error != "" {
		return res, fmt.Errorf("txbuild: %s", res.Error)
	}
	if o.Wait && res.Code != 0 {
		msg := ""
		if res.Receipt != nil {
			msg = res.Receipt.Error
		}
		return res, fmt.Errorf("txbuild: tx %s at height %d: %w: code %d: %s", res.TxHash, res.Height, ErrTxFailed, res.Code, msg)
	}
	return res, nil
}
