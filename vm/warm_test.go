package vm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/vm/wasmasm"
)

// TestWarmCallSkipsLoad: a Warm call is charged exactly the load less than
// a cold one, whether or not this node has the module in memory; a node
// without it fetches the prepared module and loads it at its own cost.
// Before Warm, every call paid the load.
func TestWarmCallSkipsLoad(t *testing.T) {
	ctx := context.Background()
	id := [32]byte{0x77}
	loaded := newVM(t, Config{})
	p, _, err := loaded.Prepare(ctx, id, wasmasm.Straight(100), MaxUploadGas)
	if err != nil {
		t.Fatal(err)
	}
	load, err := loadGas(p)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 10_000_000
	cold, err := loaded.Call(ctx, id, p, "execute", nil, testEnv(), newFakeHost(), limit)
	if err != nil {
		t.Fatal(err)
	}
	if cold.LoadGas != load {
		t.Fatalf("cold call: LoadGas %d, want %d", cold.LoadGas, load)
	}
	warm, err := loaded.Call(ctx, id, nil, "execute", nil, testEnv(), newFakeHost(), limit, Warm(func() ([]byte, error) {
		t.Error("a node with the module loaded fetched it")
		return p, nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if warm.LoadGas != 0 || warm.GasUsed != cold.GasUsed-load {
		t.Fatalf("warm call: %d gas (load %d), want the cold call's %d less the load %d", warm.GasUsed, warm.LoadGas, cold.GasUsed, load)
	}

	// A node that restarted: nothing in memory, the same gas.
	fresh := newVM(t, Config{})
	fetched := 0
	for range 2 {
		res, err := fresh.Call(ctx, id, nil, "execute", nil, testEnv(), newFakeHost(), limit, Warm(func() ([]byte, error) { fetched++; return p, nil }))
		if err != nil {
			t.Fatal(err)
		}
		if res.GasUsed != warm.GasUsed {
			t.Errorf("warm call on a node without the module: %d gas, want %d", res.GasUsed, warm.GasUsed)
		}
	}
	if fetched != 1 || fresh.CacheStats().Loads != 1 {
		t.Errorf("fetched %d times, %d loads; want the module fetched and loaded once", fetched, fresh.CacheStats().Loads)
	}

	// A warm call whose module cannot be fetched fails without charging.
	boom := errors.New("no such code")
	res, err := newVM(t, Config{}).Call(ctx, id, nil, "execute", nil, testEnv(), newFakeHost(), limit, Warm(func() ([]byte, error) { return nil, boom }))
	if !errors.Is(err, boom) || res.GasUsed != 0 {
		t.Errorf("unfetchable warm module: %v, %d gas", err, res.GasUsed)
	}
}

// TestSetPinned: the module cache never evicts a pinned module, however
// many others are loaded; unpinned, it is evicted like any other; a VM
// refuses to pin more than PinCapacity.
func TestSetPinned(t *testing.T) {
	ctx := context.Background()
	v := newVM(t, Config{ModuleCacheSize: MinUnpinnedModules + 1})
	if v.PinCapacity() != 1 {
		t.Fatalf("PinCapacity %d, want 1", v.PinCapacity())
	}
	if err := v.SetPinned([][32]byte{{1}, {2}}); !errors.Is(err, ErrLimit) {
		t.Fatalf("pinning 2 of 1: %v, want ErrLimit", err)
	}
	prepare := func(i int) ([32]byte, []byte) {
		id := [32]byte{0x10, byte(i)}
		p, _, err := v.Prepare(ctx, id, wasmasm.Straight(10+i), MaxUploadGas)
		if err != nil {
			t.Fatal(err)
		}
		return id, p
	}
	pinned, _ := prepare(0)
	if err := v.SetPinned([][32]byte{pinned}); err != nil {
		t.Fatal(err)
	}
	key := cacheKey{code: pinned, costs: v.cfg.Costs.Version}
	inCache := func() bool {
		v.modules.mu.Lock()
		defer v.modules.mu.Unlock()
		_, ok := v.modules.byKey[key]
		return ok
	}
	for i := 1; i <= 2*MinUnpinnedModules; i++ {
		id, p := prepare(i)
		if _, err := v.Call(ctx, id, p, "execute", nil, testEnv(), newFakeHost(), 10_000_000); err != nil {
			t.Fatal(err)
		}
	}
	if !inCache() {
		t.Fatal("the pinned module was evicted")
	}
	st := v.CacheStats()
	if st.Modules != MinUnpinnedModules+1 || st.Pinned != 1 || st.PinnedLoaded != 1 || st.Evictions == 0 {
		t.Errorf("stats %+v", st)
	}
	if err := v.SetPinned(nil); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= MinUnpinnedModules+1; i++ {
		prepare(100 + i)
	}
	if inCache() {
		t.Error("an unpinned module outlived more loads than the cache holds")
	}
}

// TestGrownInstancePaysReplacement: a call that grows its memory leaves
// an instance that cannot be reset, and pays for the new one (instGas); a
// call that traps does not (its instance is reset and reused).
func TestGrownInstancePaysReplacement(t *testing.T) {
	p := loadPrepared(t)
	v := newVM(t, Config{})
	ctx := context.Background()
	call := func(msg string) Result {
		res, _ := v.Call(ctx, testCode, nil, "execute", []byte(msg), testEnv(), newFakeHost(), testGas, Warm(func() ([]byte, error) { return p, nil }))
		return res
	}
	call("incr") // load
	mod, err := v.module(ctx, testCode, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer mod.unref(ctx)
	pooled := func() int { mod.mu.Lock(); defer mod.mu.Unlock(); return len(mod.pool) }
	base := call("incr").GasUsed
	if n := pooled(); n != 1 {
		t.Fatalf("%d pooled instances after a call, want 1", n)
	}
	if res := call("panic x"); res.GasUsed == 0 || pooled() != 1 {
		t.Errorf("after a trap: %d pooled instances, want the reset one", pooled())
	}
	if again := call("incr").GasUsed; again != base {
		t.Errorf("a call after a trap cost %d gas, before %d", again, base)
	}
	grown := call("grow 4")
	if pooled() != 0 {
		t.Fatal("the grown instance was pooled")
	}
	// The same call with one gas less than it used runs to the end, and
	// then cannot pay for the replacement instance.
	res, err := v.Call(ctx, testCode, nil, "execute", []byte("grow 4"), testEnv(), newFakeHost(), grown.GasUsed-1, Warm(nil))
	if !errors.Is(err, ErrOutOfGas) || !strings.Contains(err.Error(), "replacing its instance") || res.GasUsed != grown.GasUsed-1 {
		t.Errorf("grow with 1 gas less: %v, %d gas; want out of gas paying the %d-gas instance, the whole limit charged", err, res.GasUsed, mod.instGas)
	}
}
