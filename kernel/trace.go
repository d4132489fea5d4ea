package kernel

import (
	"context"
	"fmt"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/ledger"
)

// TxTrace is a transaction re-executed with its gas recorded by part: the
// charges on the transaction's meter (intrinsic, state reads and writes,
// events, each contract call as a whole), which sum to GasUsed, and the
// tree of contract calls, each split into call base, module load, Wasm
// instructions, host functions and nested calls, with its debug log.
type TxTrace struct {
	Receipt ledger.Receipt         // as re-executed
	Gas     []ledger.GasItem       // the transaction meter's charges, in order
	Calls   []*contracts.CallTrace // the contract calls (empty for other payloads)
}

// applyTraced is Apply with tracing: the same state changes, receipt and
// gas, plus the trace.
func (e *Executor) applyTraced(ptx *PendingTx, index uint32) (*TxTrace, error) {
	e.trace = &traceState{calls: &contracts.TxTrace{}}
	defer func() { e.trace = nil }()
	rc, err := e.Apply(ptx, index)
	if err != nil {
		return nil, err
	}
	return &TxTrace{Receipt: rc, Gas: e.trace.meter.Items(), Calls: e.trace.calls.Calls}, nil
}

// traceState is what Apply fills in while tracing.
type traceState struct {
	meter *ledger.GasMeter
	calls *contracts.TxTrace
}

// Trace re-executes the committed transaction hash on its pre-state: the
// state after the previous block (ledger.Store.StateAt) with the block's
// earlier transactions applied again, in the block's environment. Nothing
// is written. The re-executed receipt is the stored one (Trace checks and
// fails with ErrStateMismatch otherwise).
func (c *Chain) Trace(ctx context.Context, hash ledger.Hash) (*TxTrace, error) {
	height, index, err := c.store.TxLocation(hash)
	if err != nil {
		return nil, err
	}
	if height == 0 {
		return nil, fmt.Errorf("kernel: trace %s: genesis has no transactions: %w", hash, ledger.ErrNotFound)
	}
	b, err := c.store.Block(height)
	if err != nil {
		return nil, err
	}
	if int(index) >= len(b.Txs) {
		return nil, fmt.Errorf("kernel: trace %s: index %d beyond block %d: %w", hash, index, height, ledger.ErrCorrupt)
	}
	stored, err := c.store.Receipt(height, index)
	if err != nil {
		return nil, err
	}
	pre, err := c.store.StateAt(height - 1)
	if err != nil {
		return nil, fmt.Errorf("kernel: trace %s (block %d): %w", hash, height, err)
	}
	defer pre.Close()
	st := ledger.NewState(pre)
	ex := c.NewExecutor(ctx, st, BlockEnv{ChainID: b.Header.ChainID, Height: height, TimeMs: b.Header.Time, PrevHash: b.Header.PrevHash})
	for i := 0; i <= int(index); i++ {
		tx, err := c.codec.DecodeTx(b.Txs[i])
		if err != nil {
			return nil, fmt.Errorf("kernel: trace %s: block %d tx %d: %w", hash, height, i, err)
		}
		ptx := &PendingTx{Tx: tx, Raw: b.Txs[i], Hash: ledger.HashBytes(b.Txs[i])}
		if i < int(index) {
			if _, err := ex.Apply(ptx, uint32(i)); err != nil {
				return nil, fmt.Errorf("kernel: trace %s: re-executing block %d tx %d: %w", hash, height, i, err)
			}
			continue
		}
		tr, err := ex.applyTraced(ptx, index)
		if err != nil {
			return nil, fmt.Errorf("kernel: trace %s: %w", hash, err)
		}
		if tr.Receipt.GasUsed != stored.GasUsed || tr.Receipt.Code != stored.Code {
			return tr, fmt.Errorf("kernel: trace %s: re-execution used %d gas (code %s), the block recorded %d (code %s): %w",
				hash, tr.Receipt.GasUsed, tr.Receipt.Code, stored.GasUsed, stored.Code, ErrStateMismatch)
		}
		return tr, nil
	}
	panic("unreachable")
}
