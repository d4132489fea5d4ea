package contracts

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
	"github.com/sos-kernel/sos/vm/wasmasm"
)

// engineOn is an engine with its own VM (its own module cache: another
// node) over st's store, with a warm set of size codes.
func engineOn(t *testing.T, size, cacheSize int) *Engine {
	t.Helper()
	ctx := context.Background()
	v, err := vm.New(ctx, vm.Config{CacheDir: t.TempDir(), ModuleCacheSize: cacheSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(ctx) })
	denoms, err := ledger.NewDenoms(ledger.DefaultDenoms())
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(v, ledger.NewCodec(), denoms, size)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func txAt(st *ledger.State, height, gas uint64) *Tx {
	tx := newTx(st, gas)
	tx.Height = height
	return tx
}

func warmIDsOf(t *testing.T, e *Engine, st *ledger.State) []ledger.Hash {
	t.Helper()
	ws, err := e.WarmCodes(st)
	if err != nil {
		t.Fatal(err)
	}
	var ids []ledger.Hash
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	return ids
}

// TestWarmSet walks the warm set through uploads, warm and cold calls and
// evictions: what is warm, what each call pays, and which code leaves.
// Before the warm set, every call paid the module load.
func TestWarmSet(t *testing.T) {
	_, st := newTestEngine(t)
	e := engineOn(t, 2, 0)
	ctx := context.Background()
	upload := func(h uint64, wasm []byte) ledger.Hash {
		id, err := e.Upload(ctx, txAt(st, h, vm.MaxUploadGas), wasm, nil)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	call := func(h uint64, addr ledger.Address, gas uint64) (uint64, error) {
		tx := txAt(st, h, gas)
		_, err := e.Execute(ctx, tx, addr, nil, nil)
		if errors.Is(err, ErrContract) { // wasmasm modules return 1
			err = nil
		}
		return tx.Gas.Used(), err
	}
	wantSet := func(ids ...ledger.Hash) {
		t.Helper()
		if got := warmIDsOf(t, e, st); !slices.Equal(got, ids) {
			t.Fatalf("warm set %v, want %v", got, ids)
		}
	}
	a := upload(1, wasmasm.Straight(10))
	b := upload(2, wasmasm.Straight(20))
	wantSet(a, b)
	addrA, _, err := e.Instantiate(ctx, txAt(st, 3, vm.MaxTxGas), a, nil, "a", ledger.Address{}, nil)
	if err != nil && !errors.Is(err, ErrContract) {
		t.Fatal(err)
	}
	addrB, _, err := e.Instantiate(ctx, txAt(st, 3, vm.MaxTxGas), b, nil, "b", ledger.Address{}, nil)
	if err != nil && !errors.Is(err, ErrContract) {
		t.Fatal(err)
	}
	// Both were used at height 3: the tie goes to a, warm first.
	c := upload(4, wasmasm.Straight(30))
	wantSet(b, c)

	cold, err := call(5, addrA, vm.MaxTxGas)
	if err != nil {
		t.Fatal(err)
	}
	wantSet(c, a) // b, last used at 3, left
	warm, err := call(5, addrA, vm.MaxTxGas)
	if err != nil {
		t.Fatal(err)
	}
	if d := cold - warm; d < e.warmGas()+vm.GasLoadBase || warm > d {
		t.Errorf("cold call %d gas, warm %d: want the cold one to pay the load and %d to make the code warm", cold, warm, e.warmGas())
	}
	// The first call of a block records the use; later ones write nothing.
	if next, err := call(6, addrA, vm.MaxTxGas); err != nil || next != warm+GasWarmTouch {
		t.Errorf("first call at a new height: %d gas (%v), want %d + %d", next, err, warm, GasWarmTouch)
	}
	if ws, _ := e.WarmCodes(st); ws[1] != (WarmCode{ID: a, LastUse: 6}) {
		t.Errorf("warm set %+v, want a last used at 6", ws)
	}

	// A cold call that cannot pay the load warms nothing.
	if _, err := call(7, addrB, GasCallBase+e.warmGas()+vm.GasLoadBase/2); !errors.Is(err, ledger.ErrOutOfGas) {
		t.Fatalf("cold call below the load: %v, want out of gas", err)
	}
	wantSet(c, a)

	// A query pays like a call and writes nothing.
	snap := st.Snapshot()
	_, used, err := e.Query(ctx, st, Env{ChainID: "upload-test", Height: 8}, addrB, nil, vm.DefaultQueryGas)
	if err != nil && !errors.Is(err, ErrContract) {
		t.Fatal(err)
	}
	if used < cold-GasWarmTouch || st.Snapshot() != snap {
		t.Errorf("cold query: %d gas, state written: %v; want about a cold call's %d and no write", used, st.Snapshot() != snap, cold)
	}
}

// TestWarmGasSameOnEveryNode runs the same transactions on engines whose
// VMs have different modules in memory (one uploaded the codes, one
// restarted with nothing loaded, one with the smallest cache that pins the
// set): every call charges the same gas and leaves the same warm set.
func TestWarmGasSameOnEveryNode(t *testing.T) {
	_, st := newTestEngine(t)
	ctx := context.Background()
	const size = 2
	uploader := engineOn(t, size, 0)
	var ids []ledger.Hash
	var addrs []ledger.Address
	for i := range 3 {
		id, err := uploader.Upload(ctx, txAt(st, uint64(1+i), vm.MaxUploadGas), wasmasm.Straight(10+10*i), nil)
		if err != nil {
			t.Fatal(err)
		}
		addr, _, err := uploader.Instantiate(ctx, txAt(st, uint64(1+i), vm.MaxTxGas), id, nil, "x", ledger.Address{}, nil)
		if err != nil && !errors.Is(err, ErrContract) {
			t.Fatal(err)
		}
		ids, addrs = append(ids, id), append(addrs, addr)
	}
	// The set is {1, 2}; the calls go warm (2), cold (0 evicts 1), cold (1
	// evicts 2), warm (0) twice.
	run := func(e *Engine) ([]uint64, []ledger.Hash) {
		snap := st.Snapshot()
		defer st.RevertTo(snap)
		var gas []uint64
		for i, k := range []int{2, 0, 1, 0, 0} {
			tx := txAt(st, uint64(10+i), vm.MaxTxGas)
			if _, err := e.Execute(ctx, tx, addrs[k], nil, nil); err != nil && !errors.Is(err, ErrContract) {
				t.Fatal(err)
			}
			gas = append(gas, tx.Gas.Used())
		}
		return gas, warmIDsOf(t, e, st)
	}
	wantGas, wantSet := run(uploader)
	if !slices.Equal(wantSet, []ledger.Hash{ids[0], ids[1]}) {
		t.Fatalf("warm set %v, want codes 0 and 1", wantSet)
	}
	for name, e := range map[string]*Engine{
		"restarted":      engineOn(t, size, 0),
		"smallest cache": engineOn(t, size, size+vm.MinUnpinnedModules),
	} {
		if err := e.SyncWarm(st); err != nil {
			t.Fatal(err)
		}
		gas, set := run(e)
		if !slices.Equal(gas, wantGas) || !slices.Equal(set, wantSet) {
			t.Errorf("%s node: gas %v, set %v; the uploader's %v, %v", name, gas, set, wantGas, wantSet)
		}
	}
	if wantGas[3] >= wantGas[1] || wantGas[3] != wantGas[4] {
		t.Errorf("gas %v: want warm calls cheaper than cold ones", wantGas)
	}
}

// TestWarmSetNeedsPinCapacity: an engine refuses a warm set its VM cannot
// pin, and SyncWarm pins the committed set.
func TestWarmSetNeedsPinCapacity(t *testing.T) {
	ctx := context.Background()
	v, err := vm.New(ctx, vm.Config{ModuleCacheSize: vm.MinUnpinnedModules + 2})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close(ctx)
	denoms, err := ledger.NewDenoms(ledger.DefaultDenoms())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 3} {
		if _, err := New(v, ledger.NewCodec(), denoms, n); !errors.Is(err, vm.ErrLimit) {
			t.Errorf("warm set of %d on a VM that pins 2: %v, want ErrLimit", n, err)
		}
	}
	e, err := New(v, ledger.NewCodec(), denoms, 2)
	if err != nil {
		t.Fatal(err)
	}
	_, st := newTestEngine(t)
	for i := range 3 {
		if _, err := e.Upload(ctx, txAt(st, uint64(i+1), vm.MaxUploadGas), wasmasm.Straight(5+i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.SyncWarm(st); err != nil {
		t.Fatal(err)
	}
	if s := v.CacheStats(); s.Pinned != 2 || s.PinnedLoaded != 2 {
		t.Errorf("cache stats %+v, want the 2 warm codes pinned and loaded", s)
	}
}
