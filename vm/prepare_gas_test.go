package vm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/vm/wasmasm"
)

// TestPrepareGas checks what Prepare charges: reading, compilation,
// initialization and snapshot add up exactly, and a budget that runs out at
// any stage fails with ErrOutOfGas, charges the whole limit, and leaves
// nothing behind. Before, initialization ran on MaxPrepareGas and nothing
// was charged.
func TestPrepareGas(t *testing.T) {
	ctx := context.Background()
	wasm := wasmasm.InitWork(10_000)
	v := newVM(t, Config{})
	code, err := v.buildCode(wasm)
	if err != nil {
		t.Fatal(err)
	}
	reading := GasPrepareBase + GasPreparePerByte*uint64(len(wasm))
	compile := compileGas(code.st)
	id := [32]byte{0xaa}
	_, info, err := v.Prepare(ctx, id, wasm, MaxUploadGas)
	if err != nil {
		t.Fatal(err)
	}
	want := reading + compile + info.InitGas + GasSnapshotPerPage*uint64(info.MemoryPages)
	if info.GasUsed != want || info.InitGas == 0 {
		t.Fatalf("GasUsed %d (init %d), want reading %d + compile %d + init + snapshot = %d", info.GasUsed, info.InitGas, reading, compile, want)
	}
	if _, _, err := v.Prepare(ctx, id, wasm, MaxUploadGas+1); !errors.Is(err, ErrLimit) {
		t.Errorf("limit above MaxUploadGas: %v, want ErrLimit", err)
	}
	for _, c := range []struct {
		name  string
		limit uint64
		text  string
	}{
		{"reading", reading - 1, "reading"},
		{"compilation", reading + compile - 1, "compilation"},
		{"initialization", reading + compile + info.InitGas/2, "start function"},
		{"snapshot", want - 1, "snapshot"},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := newVM(t, Config{})
			p, got, err := v.Prepare(ctx, id, wasm, c.limit)
			if !errors.Is(err, ErrOutOfGas) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("err = %v, want ErrOutOfGas in %s", err, c.text)
			}
			if got.GasUsed != c.limit || p != nil {
				t.Errorf("GasUsed %d, want the limit %d (prepared %d bytes)", got.GasUsed, c.limit, len(p))
			}
			if len(v.modules.byKey) != 0 {
				t.Errorf("a failed Prepare left a module in the cache")
			}
		})
	}
}

// TestPrepareLeavesModuleLoaded: the first call of a module finds it
// compiled and loaded (Prepare compiled it), and pays the same gas as a
// call after the module was evicted.
func TestPrepareLeavesModuleLoaded(t *testing.T) {
	ctx := context.Background()
	v := newVM(t, Config{ModuleCacheSize: 1, CacheDir: t.TempDir()})
	a, b := [32]byte{1}, [32]byte{2}
	pa, _, err := v.Prepare(ctx, a, wasmasm.Straight(100), MaxUploadGas)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.modules.byKey[cacheKey{code: a, costs: v.cfg.Costs.Version}]; !ok {
		t.Fatal("Prepare did not leave the module in the cache")
	}
	pb, _, err := v.Prepare(ctx, b, wasmasm.Straight(200), MaxUploadGas)
	if err != nil {
		t.Fatal(err)
	}
	call := func(id [32]byte, p []byte) uint64 {
		res, err := v.Call(ctx, id, p, "execute", nil, testEnv(), newFakeHost(), 10_000_000)
		if err != nil {
			t.Fatal(err)
		}
		return res.GasUsed
	}
	hit := call(b, pb)   // b is in the cache
	missA := call(a, pa) // a was evicted by b's Prepare: loaded from the disk cache
	missB := call(b, pb) // and b by a
	if hit != missB {
		t.Errorf("a hit cost %d gas, a miss %d: the load charge depends on the cache", hit, missB)
	}
	load, _ := loadGas(pa)
	if missA < load {
		t.Errorf("a call charged %d gas, less than its load %d", missA, load)
	}
}

// TestLoadChargedFirst: a call whose limit does not cover the module load
// fails with ErrOutOfGas, charges its limit, and loads nothing.
func TestLoadChargedFirst(t *testing.T) {
	ctx := context.Background()
	p, _, err := newVM(t, Config{}).Prepare(ctx, [32]byte{3}, wasmasm.Straight(100), MaxUploadGas)
	if err != nil {
		t.Fatal(err)
	}
	load, err := loadGas(p)
	if err != nil {
		t.Fatal(err)
	}
	v := newVM(t, Config{})
	res, err := v.Call(ctx, [32]byte{3}, p, "execute", nil, testEnv(), newFakeHost(), load-1)
	if !errors.Is(err, ErrOutOfGas) || res.GasUsed != load-1 {
		t.Fatalf("call below the load charge: %v, %d gas, want ErrOutOfGas and the limit %d", err, res.GasUsed, load-1)
	}
	if len(v.modules.byKey) != 0 {
		t.Error("the module was loaded anyway")
	}
	if res, err = v.Call(ctx, [32]byte{3}, p, "execute", nil, testEnv(), newFakeHost(), load+1_000_000); err != nil || res.GasUsed <= load {
		t.Fatalf("call above the load charge: %v, %d gas", err, res.GasUsed)
	}
}
