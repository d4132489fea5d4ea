package vm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/sos-kernel/sos/vm/meter"
)

func TestPrepareRejects(t *testing.T) {
	sosImport := func(n string, typ uint32) []byte { return cat(name("sos"), name(n), []byte{0}, u32(typ)) }
	simd := simple(0x41, 0, 0xfd, 0x0f, 0xfd, 0x15, 0, 0x0b) // i32.const 0; i8x16.splat; i8x16.extract_lane_s 0
	cases := []struct {
		name string
		wasm []byte
		err  error
		text string
	}{
		{"empty", nil, ErrInvalidModule, "magic"},
		{"garbage", []byte("this is not wasm at all"), ErrInvalidModule, "magic"},
		{"truncated", simple(0x41, 0, 0x0b).bytes()[:20], ErrInvalidModule, ""},
		{"too large", make([]byte, MaxCodeBytes+1), ErrLimit, "bytes"},
		{"unknown import", asmModule{
			imports: [][]byte{sosImport("launch_missiles", 0)},
			bodies:  [][]byte{body(0x41, 0, 0x0b)}, exports: [][]byte{exportFunc("execute", 1)},
		}.bytes(), ErrInvalidModule, "sos.launch_missiles: unknown host function"},
		{"import signature", asmModule{
			imports: [][]byte{sosImport("input_len", 1)},
			types:   [][]byte{functype(nil, []byte{tI32}), functype(nil, []byte{tI64})},
			bodies:  [][]byte{body(0x41, 0, 0x0b)}, exports: [][]byte{exportFunc("execute", 1)},
		}.bytes(), ErrInvalidModule, "sos.input_len: signature"},
		{"imported memory", asmModule{
			imports:  [][]byte{cat(name("env"), name("memory"), []byte{2, 0, 1})},
			noMemory: true,
			bodies:   [][]byte{body(0x41, 0, 0x0b)}, exports: [][]byte{exportFunc("execute", 0)},
		}.bytes(), ErrInvalidModule, "only functions"},
		{"no memory", asmModule{noMemory: true, bodies: [][]byte{body(0x41, 0, 0x0b)}, exports: [][]byte{exportFunc("execute", 0)}}.bytes(),
			ErrInvalidModule, "exactly one memory"},
		{"memory too large", asmModule{memory: vec(cat([]byte{0}, u32(200))), bodies: [][]byte{body(0x41, 0, 0x0b)}, exports: [][]byte{exportFunc("execute", 0)}}.bytes(),
			ErrLimit, "pages"},
		{"simd", simd.bytes(), ErrInvalidModule, "unsupported"},
		{"entry signature", asmModule{
			types:  [][]byte{functype(nil, nil)},
			bodies: [][]byte{body(0x0b)}, exports: [][]byte{exportFunc("execute", 0)},
		}.bytes(), ErrInvalidModule, `"execute": signature`},
		{"reserved export", asmModule{bodies: [][]byte{body(0x41, 0, 0x0b)}, exports: [][]byte{exportFunc("sos_gas", 0)}}.bytes(),
			ErrInvalidModule, "reserved"},
		{"data count", asmModule{dataCount: u32(0), bodies: [][]byte{body(0x41, 0, 0x0b)}, exports: [][]byte{exportFunc("execute", 0)}}.bytes(),
			ErrInvalidModule, "passive data"},
		{"table mutation", asmModule{
			bodies: [][]byte{body(0x41, 0, 0xd0, 0x70, 0x26, 0, 0x41, 0, 0x0b)}, exports: [][]byte{exportFunc("execute", 0)},
		}.bytes(), ErrInvalidModule, "modify tables"},
		{"invalid body", simple(0x6a, 0x0b).bytes(), ErrInvalidModule, ""}, // i32.add on an empty stack
		{"start traps", asmModule{
			types:     [][]byte{functype(nil, []byte{tI32}), functype(nil, nil)},
			funcTypes: []uint32{0, 1},
			bodies:    [][]byte{body(0x41, 0, 0x0b), body(0x00, 0x0b)}, exports: [][]byte{exportFunc("execute", 0)},
			start: u32(1),
		}.bytes(), ErrTrap, "unreachable"},
		{"start loops", asmModule{
			types:     [][]byte{functype(nil, []byte{tI32}), functype(nil, nil)},
			funcTypes: []uint32{0, 1},
			bodies:    [][]byte{body(0x41, 0, 0x0b), body(0x03, 0x40, 0x0c, 0, 0x0b, 0x0b)}, exports: [][]byte{exportFunc("execute", 0)},
			start: u32(1),
		}.bytes(), ErrOutOfGas, ""},
	}
	v := newVM(t, Config{})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := v.Prepare(context.Background(), sha256.Sum256(c.wasm), c.wasm, 50_000_000)
			if !errors.Is(err, c.err) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if !strings.Contains(err.Error(), c.text) {
				t.Errorf("err = %q, want it to contain %q", err, c.text)
			}
			t.Log(err)
		})
	}
}

// TestHandModules runs small assembled modules: memory.grow past the limit
// fails, Wasm recursion traps, data and globals survive the snapshot.
func TestHandModules(t *testing.T) {
	twoFuncs := func(entry []byte, helper []byte) asmModule {
		return asmModule{bodies: [][]byte{body(entry...), body(helper...)}, exports: [][]byte{exportFunc("execute", 0)}}
	}
	cases := []struct {
		name string
		mod  asmModule
		err  error
		gas  uint64
	}{
		// Entry points return 0 when the checked condition holds.
		// memory.grow(200) == -1: 1 + 200 pages is past MaxMemoryPages.
		{"grow past limit", simple(0x41, 0xc8, 0x01, 0x40, 0, 0x41, 0x7f, 0x47, 0x0b), nil, 0},
		// memory.grow(10) == 1, the old size.
		{"grow within limit", simple(0x41, 10, 0x40, 0, 0x41, 1, 0x47, 0x0b), nil, 0},
		// func 1 calls itself forever.
		{"recursion", twoFuncs([]byte{0x10, 1, 0x0b}, []byte{0x10, 1, 0x0b}), ErrTrap, 300_000_000},
		{"unreachable", simple(0x00, 0x0b), ErrTrap, 0},
		{"out of bounds", simple(0x41, 0x7f, 0x28, 2, 0, 0x0b), ErrTrap, 0}, // i32.load at -1
		{"loop", simple(0x03, 0x40, 0x0c, 0, 0x0b, 0x41, 0, 0x0b), ErrOutOfGas, 0},
		// Global 0 (mutable, 5) is set to 9 and mem[100] to 7 by the start
		// function; global 0 + mem[100] == 16.
		{"snapshot globals and data", asmModule{
			types:     [][]byte{functype(nil, []byte{tI32}), functype(nil, nil)},
			funcTypes: []uint32{0, 1},
			bodies: [][]byte{
				body(0x23, 0, 0x41, 0xe4, 0, 0x2d, 0, 0, 0x6a, 0x41, 16, 0x47, 0x0b),
				body(0x41, 9, 0x24, 0, 0x41, 0xe4, 0, 0x41, 7, 0x3a, 0, 0, 0x0b),
			},
			globals: vec([]byte{tI32, 1, 0x41, 5, 0x0b}),
			exports: [][]byte{exportFunc("execute", 0)},
			start:   u32(1),
		}, nil, 0},
	}
	v := newVM(t, Config{})
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, _, err := v.Prepare(context.Background(), [32]byte{byte(i), 0xee}, c.mod.bytes(), MaxUploadGas)
			if err != nil {
				t.Fatal(err)
			}
			gas := c.gas
			if gas == 0 {
				gas = 10_000_000
			}
			res, err := v.Call(context.Background(), [32]byte{byte(i), 0xee}, p, "execute", nil, testEnv(), newFakeHost(), gas)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v", err, c.err)
				}
				t.Log(err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Failed {
				t.Error("entry point returned non-zero: condition does not hold")
			}
		})
	}
}

// TestPrepareDeterministic: two VMs produce the same bytes.
func TestPrepareDeterministic(t *testing.T) {
	wasm := loadContract(t)
	a, ia, err := newVM(t, Config{}).Prepare(context.Background(), testCode, wasm, MaxUploadGas)
	if err != nil {
		t.Fatal(err)
	}
	b, ib, err := newVM(t, Config{}).Prepare(context.Background(), testCode, wasm, MaxUploadGas)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("Prepare is not deterministic")
	}
	want := []string{"execute", "instantiate", "migrate", "query"}
	if strings.Join(ia.Exports, ",") != strings.Join(want, ",") {
		t.Errorf("exports %v, want %v", ia.Exports, want)
	}
	if ia.InitGas == 0 || ia.MemoryPages == 0 || ia.Size != len(a) || ia.GasUsed <= ia.InitGas {
		t.Errorf("info %+v", ia)
	}
	if ia.GasUsed != ib.GasUsed {
		t.Errorf("gas used %d and %d", ia.GasUsed, ib.GasUsed)
	}
	t.Logf("upload %d bytes → prepared %d bytes, %d pages, init %d gas, %d gas in all", len(wasm), len(a), ia.MemoryPages, ia.InitGas, ia.GasUsed)
}

// TestSnapshotEquivalence compares a snapshotted instance with one
// initialized the normal way (instrumented module + our WASI + _initialize
// with Prepare's deterministic inputs): memory after initialization must be
// byte-identical, and calls must give the same results, gas and memory.
func TestSnapshotEquivalence(t *testing.T) {
	wasm := loadContract(t)
	p := loadPrepared(t)
	v := newVM(t, Config{})
	ctx := context.Background()

	// The normal way.
	instrumented, err := meter.Instrument(wasm, meterOptions(v.cfg.Costs))
	if err != nil {
		t.Fatal(err)
	}
	cm, err := v.rt.CompileModule(ctx, instrumented)
	if err != nil {
		t.Fatal(err)
	}
	defer cm.Close(ctx)
	s := &callState{prepare: true, env: &Env{}, logCap: 1 << 10, monoBase: snapshotMonoNs, rng: newRNG(prepareSeed)}
	sctx := context.WithValue(ctx, stateKey{}, s)
	plain, err := v.rt.InstantiateModule(sctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(ctx)
	plainGas := plain.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal)
	s.gas = plainGas
	plainGas.Set(MaxTxGas)
	if _, err := plain.ExportedFunction("_initialize").Call(sctx); err != nil {
		t.Fatal(err)
	}

	// The snapshot.
	mod, err := v.module(ctx, [32]byte{0x5a}, p)
	if err != nil {
		t.Fatal(err)
	}
	defer mod.unref(ctx)
	snap, err := mod.acquire(ctx, v.rt)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.mod.Close(ctx)

	mem := func(m api.Module) []byte {
		b, _ := m.Memory().Read(0, m.Memory().Size())
		return b
	}
	if !bytes.Equal(mem(plain), mem(snap.mod)) {
		t.Fatalf("memory after init differs: %d vs %d bytes", len(mem(plain)), len(mem(snap.mod)))
	}
	for _, msg := range []string{"incr", "global", "json 2", "rand", "clock", "global", "shaloop 1"} {
		var got [2]string
		for i, m := range []api.Module{plain, snap.mod} {
			h := newFakeHost()
			env := testEnv()
			g := m.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal)
			cs := &callState{env: &env, host: h, input: []byte(msg), gas: g, monoBase: mod.monoNs, realBase: env.TimeMs * 1e6, rng: newRNG(env.Seed), logCap: 1 << 10}
			g.Set(testGas)
			_, err := m.ExportedFunction("execute").Call(context.WithValue(ctx, stateKey{}, cs))
			got[i] = fmt.Sprintf("%q gas=%d err=%v", cs.result, testGas-int64(g.Get()), err)
		}
		if got[0] != got[1] {
			t.Errorf("%s: normal init %s, snapshot %s", msg, got[0], got[1])
		}
		if !bytes.Equal(mem(plain), mem(snap.mod)) {
			t.Errorf("%s: memory differs after the call", msg)
		}
	}
}
