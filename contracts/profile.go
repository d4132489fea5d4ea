package contracts

import (
	"context"
	"fmt"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

// GasProfile is what a module costs on the chain before any of its own
// work: uploading it once and loading it on every call.
type GasProfile struct {
	Size         int    `json:"size"`          // bytes uploaded
	PreparedSize int    `json:"prepared_size"` // bytes stored
	UploadGas    uint64 `json:"upload_gas"`    // the upload payload's gas (without the transaction's intrinsic gas)
	LoadGas      uint64 `json:"load_gas"`      // charged by every call, before the contract runs
	CallBase     uint64 `json:"call_base"`     // charged by every call too
}

type emptyState struct{}

func (emptyState) GetState([]byte) ([]byte, error) { return nil, nil }
func (emptyState) IterateState([]byte, []byte, bool, func(k, v []byte) bool) error {
	return nil
}

// Profile uploads wasm on an empty scratch state, exactly as an upload
// transaction would, and reports its gas figures. Nothing is stored.
func (e *Engine) Profile(ctx context.Context, wasm []byte) (*GasProfile, error) {
	st := ledger.NewState(emptyState{})
	tx := &Tx{St: st, Gas: ledger.NewGasMeter(vm.MaxUploadGas)}
	id, err := e.Upload(ctx, tx, wasm, nil)
	if err != nil {
		return nil, err
	}
	prepared, err := e.code(st, id)
	if err != nil {
		return nil, err
	}
	load, err := vm.LoadGas(prepared)
	if err != nil {
		return nil, fmt.Errorf("contracts: profile: %w", err)
	}
	return &GasProfile{Size: len(wasm), PreparedSize: len(prepared), UploadGas: tx.Gas.Used(), LoadGas: load, CallBase: GasCallBase}, nil
}
