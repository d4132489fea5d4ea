package rome

import (
	"context"
	"errors"
	"testing"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
	"github.com/sos-kernel/sos/vm/wasmasm"
)

// TestPolicyUploadIsPaidAndBounded: a policy upload goes through the VM's
// paid Prepare like a contract's. A policy whose initialization loops
// forever costs its uploader the whole gas limit (before, it ran on
// MaxPrepareGas nobody paid for), and one shaped to stall the compiler is
// refused by the structural limits, charged.
func TestPolicyUploadIsPaidAndBounded(t *testing.T) {
	h := newHarness(t, harnessOpts{vm: newVM(t)})
	upload := func(wasm []byte, gas uint64) (*Tx, error) {
		tx := &Tx{St: h.st, Gas: ledger.NewGasMeter(gas), Sched: &h.sched, Height: h.height, Sender: h.users[0].Address()}
		_, err := h.m.Deliver(context.Background(), tx, &ledger.RomePolicyUpload{Name: "p", Wasm: wasm})
		return tx, err
	}
	const limit = 100_000_000
	tx, err := upload(wasmasm.InitLoop(), limit)
	if !errors.Is(err, ledger.ErrOutOfGas) {
		t.Fatalf("init loop: %v, want out of gas", err)
	}
	if tx.Gas.Used() != limit {
		t.Errorf("init loop charged %d gas, want the limit %d", tx.Gas.Used(), limit)
	}
	tx, err = upload(wasmasm.Nested(vm.MaxNesting), vm.MaxUploadGas)
	if !errors.Is(err, vm.ErrLimit) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("deep nesting: %v, want ErrLimit and ErrInvalid", err)
	}
	if tx.Gas.Used() < vm.GasPrepareBase {
		t.Errorf("deep nesting charged %d gas", tx.Gas.Used())
	}
}
