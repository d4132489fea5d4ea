package vm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/vm/internal/wasmbin"
	"github.com/sos-kernel/sos/vm/wasmasm"
)

func structureOf(t testing.TB, wasm []byte) moduleStructure {
	t.Helper()
	m, err := wasmbin.Decode(wasm)
	if err != nil {
		t.Fatal(err)
	}
	p, err := m.Parse()
	if err != nil {
		t.Fatal(err)
	}
	s, err := measureStructure(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMeasureStructure checks the structural measures on shapes whose
// figures follow from their construction.
func TestMeasureStructure(t *testing.T) {
	cases := []struct {
		name                              string
		wasm                              []byte
		blocks, nesting, maxBrTable, locs int
		walk                              uint64
	}{
		// n blocks nested: the k-th end has one predecessor at depth k-1
		// (its edge walks k-1 steps) and starts a block at depth k (k
		// steps): n² in all.
		{"nested", wasmasm.Nested(100), 101, 101, 0, 1, 100 * 100},
		// Each unit: br_if's fall-through (depth +1, edge from the depth
		// before) and the block's end (two predecessors, depth +1).
		{"chain", wasmasm.BlockChain(3), 7, 2, 0, 1, 0},
		{"br_table", wasmasm.BrTable(10, 3), 6, 5, 10, 1, 0},
		{"straight", wasmasm.Straight(50), 1, 1, 0, 1, 0},
		// loop (2) + 5 × (block + br_if) + the final br_if + the entry.
		{"locals", wasmasm.LocalsBlocks(20, 5), 14, 3, 0, 20, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := structureOf(t, c.wasm)
			if s.MaxBlocks != c.blocks || s.MaxNesting != c.nesting || s.MaxBrTable != c.maxBrTable || s.MaxLocals != c.locs {
				t.Errorf("blocks %d nesting %d br_table %d locals %d, want %d %d %d %d", s.MaxBlocks, s.MaxNesting, s.MaxBrTable, s.MaxLocals, c.blocks, c.nesting, c.maxBrTable, c.locs)
			}
			if c.walk != 0 && s.WalkSteps != c.walk {
				t.Errorf("walk steps %d, want %d", s.WalkSteps, c.walk)
			}
		})
	}
	// A chain of blocks walks quadratically, a Go-style dispatch linearly.
	chain, dispatch := structureOf(t, wasmasm.BlockChain(2000)), structureOf(t, wasmasm.BrTable(2000, 2000))
	if chain.WalkSteps < 2000*2000 || dispatch.WalkSteps > 20*2000 {
		t.Errorf("walk steps: chain of 2000 blocks %d, dispatch over 2000 blocks %d", chain.WalkSteps, dispatch.WalkSteps)
	}
}

// TestStructuralLimits: every structural limit admits a module at the
// limit (checked up to compilation, which the adversarial benchmark times)
// and refuses one just past it, with ErrLimit, charged, before compiling.
func TestStructuralLimits(t *testing.T) {
	v := newVM(t, Config{})
	ctx := context.Background()
	cases := []struct {
		name      string
		at, above []byte
		text      string
	}{
		{"nesting", wasmasm.Nested(MaxNesting - 1), wasmasm.Nested(MaxNesting), "nesting"},
		{"br_table", wasmasm.BrTable(MaxBrTableLabels, 2), wasmasm.BrTable(MaxBrTableLabels+1, 2), "br_table"},
		{"body bytes", wasmasm.Straight((MaxFunctionBytes - 3) / 7), wasmasm.Straight((MaxFunctionBytes-3)/7 + 1), "bytes of a function body"},
		{"locals", wasmasm.LocalsBlocks(MaxFunctionLocals, 4), wasmasm.LocalsBlocks(MaxFunctionLocals+1, 4), "locals"},
		{"functions", wasmasm.Functions(MaxFunctions), wasmasm.Functions(MaxFunctions + 1), "functions"},
		{"blocks", wasmasm.BlockChain(MaxFunctionBlocks/2 - 2), wasmasm.BlockChain(MaxFunctionBlocks / 2), "basic blocks"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, err := v.buildCode(c.at)
			if err != nil {
				t.Fatalf("at the limit: %v", err)
			}
			t.Logf("at the limit: %d bytes, compile priced at %d gas", len(c.at), compileGas(code.st))
			_, info, err := v.Prepare(ctx, [32]byte{byte(i), 2}, c.above, MaxUploadGas)
			if !errors.Is(err, ErrLimit) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("past the limit: %v, want ErrLimit about %q", err, c.text)
			}
			if info.GasUsed < GasPrepareBase+GasPreparePerByte*uint64(len(c.above)) {
				t.Errorf("past the limit: %d gas charged", info.GasUsed)
			}
		})
	}
}

// FuzzMeasureFunction feeds arbitrary bytes to the structural walk as a
// function body: it must return (an error or figures) without panicking,
// and its figures must be consistent.
func FuzzMeasureFunction(f *testing.F) {
	for _, wasm := range [][]byte{wasmasm.Nested(5), wasmasm.BlockChain(3), wasmasm.NestedIfs(3), wasmasm.BrTable(5, 3),
		wasmasm.LocalsBlocks(3, 3), wasmasm.IfChain(3), wasmasm.Calls(2), wasmasm.InitLoop()} {
		m, _ := wasmbin.Decode(wasm)
		p, _ := m.Parse()
		for _, c := range p.Codes {
			f.Add(c.Body)
		}
	}
	f.Add([]byte{0x0b})
	f.Add([]byte{0x05, 0x0b})
	f.Add([]byte{0x0e, 0x02, 0x00, 0x05, 0x01, 0x0b})
	var w walker
	f.Fuzz(func(t *testing.T, body []byte) {
		fs, err := w.measure(body)
		if err != nil {
			return
		}
		if fs.instrs == 0 || fs.nesting < 1 || fs.nesting > MaxNesting || fs.blocks < 1 || fs.simple > fs.instrs {
			t.Fatalf("inconsistent figures %+v", fs)
		}
		// A valid walk is bounded by blocks × nesting-ish depth: at most
		// (instructions + labels)² steps.
		if n := uint64(fs.instrs + fs.brLabels + 1); fs.walkSteps > 4*n*n {
			t.Fatalf("walk steps %d for %d instructions", fs.walkSteps, fs.instrs)
		}
	})
}

// FuzzDecodeActiveData feeds arbitrary data sections to the decoder that
// takes an upload's data segments out of it: errors or segments inside
// the payload, never a panic.
func FuzzDecodeActiveData(f *testing.F) {
	f.Add(wasmasm.Vec(wasmasm.Cat([]byte{0, 0x41, 8, 0x0b}, wasmasm.Vec([]byte("hi")))))
	f.Add(wasmasm.Vec(wasmasm.Cat([]byte{1}, wasmasm.Vec([]byte("passive")))))
	f.Add(wasmasm.Vec(wasmasm.Cat([]byte{2, 0, 0x41, 0x80, 0x80, 0x04, 0x0b}, wasmasm.Vec([]byte("x")))))
	f.Add([]byte{0x05})
	f.Fuzz(func(t *testing.T, p []byte) {
		segs, err := decodeActiveData(p)
		if err != nil {
			return
		}
		total := 0
		for _, s := range segs {
			total += len(s.data)
		}
		if total > len(p) {
			t.Fatalf("%d segment bytes from a %d-byte section", total, len(p))
		}
	})
}

// TestStructureOfGoModules measures the modules Go's toolchain emits (the
// test contract, and the example contracts and policies when `make
// contracts` built them) and requires them to use at most half of every
// structural limit, instrumented included: the headroom the limits were
// chosen with (limits.go).
func TestStructureOfGoModules(t *testing.T) {
	files, _ := filepath.Glob("../sdk-contracts/examples/*/*.wasm")
	policies, _ := filepath.Glob("../sdk-contracts/policies/*/*.wasm")
	mods := map[string][]byte{"vm/testdata/contract": loadContract(t)}
	for _, f := range append(files, policies...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		mods[f] = b
	}
	v := newVM(t, Config{})
	for name, wasm := range mods {
		orig := structureOf(t, wasm)
		code, err := v.buildCode(wasm)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		inst := code.st
		for _, c := range []struct {
			what       string
			got, limit int
		}{
			{"functions", orig.Functions, MaxFunctions},
			{"types", orig.Types, MaxTypes},
			{"type parameters", orig.MaxTypeParams, MaxTypeParams},
			{"type results", orig.MaxTypeResult, MaxTypeResults},
			{"body bytes", orig.MaxBodyBytes, MaxFunctionBytes},
			{"locals", orig.MaxLocals, MaxFunctionLocals},
			{"nesting", inst.MaxNesting, MaxNesting},
			{"br_table labels", orig.MaxBrTable, MaxBrTableLabels},
			{"basic blocks once instrumented", inst.MaxBlocks, MaxFunctionBlocks},
		} {
			if c.got > c.limit/2 {
				t.Errorf("%s: %d %s, more than half the limit %d", name, c.got, c.what, c.limit)
			}
		}
		t.Logf("%s: %d functions, largest body %d B, %d locals, %d blocks (instrumented), nesting %d, br_table %d",
			name, orig.Functions, orig.MaxBodyBytes, orig.MaxLocals, inst.MaxBlocks, inst.MaxNesting, orig.MaxBrTable)
	}
}
