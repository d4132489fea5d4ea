package contracts

import (
	"context"
	"errors"
	"testing"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
	"github.com/sos-kernel/sos/vm/meter"
	"github.com/sos-kernel/sos/vm/wasmasm"
)

// newTestEngine is an Engine over a fresh VM and a State on a real store.
func newTestEngine(t *testing.T) (*Engine, *ledger.State) {
	t.Helper()
	ctx := context.Background()
	v, err := vm.New(ctx, vm.Config{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(ctx) })
	store, err := ledger.Open(t.TempDir(), ledger.StoreOptions{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	denoms, err := ledger.NewDenoms(ledger.DefaultDenoms())
	if err != nil {
		t.Fatal(err)
	}
	return New(v, store.Codec(), denoms), ledger.NewState(store)
}

func newTx(st *ledger.State, gas uint64) *Tx {
	return &Tx{St: st, Gas: ledger.NewGasMeter(gas), ChainID: "upload-test", Height: 1, TimeMs: 1000, Sender: ledger.Address{7}}
}

// TestUploadAdversarialShapes uploads, through the real path (Engine over
// vm.VM and a ledger.State), modules built to crash or stall a compiler:
// each is refused with ErrLimit before anything compiles it, the uploader
// is charged, and the engine keeps answering. Before the structural limits
// these uploads were accepted (and 2.5 million nested blocks killed the
// process at the first call).
func TestUploadAdversarialShapes(t *testing.T) {
	e, st := newTestEngine(t)
	ctx := context.Background()
	cases := []struct {
		name string
		wasm []byte
	}{
		{"deep nesting", wasmasm.Nested(vm.MaxNesting)},
		{"far too deep nesting", wasmasm.Nested(300_000)},
		{"huge br_table", wasmasm.BrTable(vm.MaxBrTableLabels+1, 2)},
		{"giant function", wasmasm.Straight(vm.MaxFunctionBytes/7 + 1)},
		{"many locals", wasmasm.LocalsBlocks(vm.MaxFunctionLocals+1, 4)},
		{"huge function count", wasmasm.Functions(vm.MaxFunctions + 1)},
		{"long block chain", wasmasm.BlockChain(vm.MaxFunctionBlocks/2 + 1)},
		{"call sites past the block limit once metered", wasmasm.Calls(vm.MaxFunctionBlocks/3 + 1)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tx := newTx(st, vm.MaxUploadGas)
			_, err := e.Upload(ctx, tx, c.wasm)
			if !errors.Is(err, vm.ErrLimit) {
				t.Fatalf("err = %v, want ErrLimit", err)
			}
			if min := GasUploadPerByte*uint64(len(c.wasm)) + vm.GasPrepareBase; tx.Gas.Used() < min {
				t.Errorf("charged %d gas, want at least %d", tx.Gas.Used(), min)
			}
			t.Logf("%d bytes: %v (%d gas)", len(c.wasm), err, tx.Gas.Used())
		})
	}
	// The engine still uploads and runs contracts: a shape at the limits.
	tx := newTx(st, vm.MaxUploadGas)
	id, err := e.Upload(ctx, tx, wasmasm.Nested(vm.MaxNesting-1))
	if err != nil {
		t.Fatalf("upload at the nesting limit: %v", err)
	}
	call := newTx(st, vm.MaxTxGas)
	addr, _, err := e.Instantiate(ctx, call, id, nil, "nested", ledger.Address{}, nil)
	if err != nil && !errors.Is(err, ErrContract) { // the function returns its counter: non-zero is a handled error
		t.Fatalf("instantiate: %v", err)
	}
	t.Logf("instantiated %s, %d gas", addr, call.Gas.Used())
}

// TestUploadChargesInitialization: a module whose start function loops
// forever costs its uploader the whole gas limit and fails with out of
// gas, and one with a long finite initialization pays for its instructions.
// Before, initialization ran on MaxPrepareGas that nobody paid for.
func TestUploadChargesInitialization(t *testing.T) {
	e, st := newTestEngine(t)
	ctx := context.Background()
	const limit = 200_000_000
	tx := newTx(st, limit)
	_, err := e.Upload(ctx, tx, wasmasm.InitLoop())
	if !errors.Is(err, ledger.ErrOutOfGas) || !errors.Is(err, vm.ErrOutOfGas) {
		t.Fatalf("err = %v, want out of gas", err)
	}
	if tx.Gas.Used() != limit {
		t.Errorf("charged %d gas, want the whole limit %d", tx.Gas.Used(), limit)
	}

	small, big := newTx(st, vm.MaxUploadGas), newTx(st, vm.MaxUploadGas)
	if _, err := e.Upload(ctx, small, wasmasm.InitWork(1_000)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Upload(ctx, big, wasmasm.InitWork(1_000_000)); err != nil {
		t.Fatal(err)
	}
	// 999,000 more iterations, each at least a loop iteration's cost.
	costs := meter.DefaultCosts()
	if d, want := big.Gas.Used()-small.Gas.Used(), 999_000*uint64(costs.Loop)/uint64(costs.Scale); d < want {
		t.Errorf("the longer initialization cost only %d more gas, want at least %d", d, want)
	}
	t.Logf("init of 1,000 iterations: %d gas; of 1,000,000: %d gas", small.Gas.Used(), big.Gas.Used())
}

// TestCallsPayLoadAndBase: every call pays GasCallBase and the module load
// (vm.GasLoadBase...), whether or not the module is in memory; a call whose
// limit does not cover them fails out of gas without running.
func TestCallsPayLoadAndBase(t *testing.T) {
	e, st := newTestEngine(t)
	ctx := context.Background()
	id, err := e.Upload(ctx, newTx(st, vm.MaxUploadGas), wasmasm.Straight(10))
	if err != nil {
		t.Fatal(err)
	}
	call := newTx(st, vm.MaxTxGas)
	addr, _, err := e.Instantiate(ctx, call, id, nil, "s", ledger.Address{}, nil)
	if err != nil && !errors.Is(err, ErrContract) {
		t.Fatal(err)
	}
	var gas []uint64
	for range 2 { // the second call finds the module in memory: same gas
		tx := newTx(st, vm.MaxTxGas)
		if _, err := e.Execute(ctx, tx, addr, nil, nil); err != nil && !errors.Is(err, ErrContract) {
			t.Fatal(err)
		}
		gas = append(gas, tx.Gas.Used())
	}
	if gas[0] != gas[1] || gas[0] < GasCallBase+vm.GasLoadBase {
		t.Errorf("execute charged %v gas, want equal amounts above %d", gas, GasCallBase+vm.GasLoadBase)
	}
	tx := newTx(st, GasCallBase+vm.GasLoadBase/2)
	if _, err := e.Execute(ctx, tx, addr, nil, nil); !errors.Is(err, ledger.ErrOutOfGas) {
		t.Errorf("execute below the load charge: %v, want out of gas", err)
	}
	if _, used, err := e.Query(ctx, st, Env{ChainID: "upload-test"}, addr, nil, vm.DefaultQueryGas); used < GasCallBase+vm.GasLoadBase || (err != nil && !errors.Is(err, ErrContract)) {
		t.Errorf("query: %d gas, %v", used, err)
	}
}
