package meter_test

import (
	"bytes"
	"context"
	"math"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/sos-kernel/sos/vm/meter"
)

// TestBlindLocals: with Options.BlindLocals a float result that goes only
// into a local whose every read is consumed blindly is not canonicalized,
// and every observable result (returns, stores, reinterpretation, the gas)
// is bit-identical to canonicalizing it.
func TestBlindLocals(t *testing.T) {
	nan := math.Float64bits(math.NaN()) | 0xabc // a payload
	f64s := [][2]byte{{2, tF64}}
	mem := []byte{1, 0, 1}
	for _, tc := range []struct {
		name  string
		m     fnModule
		elide bool // BlindLocals leaves out at least one canonicalization
	}{
		// $2 = x + y; return $2 * 1: $2 is blind, the product is returned.
		{"into a blind local", fnModule{params: []byte{tF64, tF64}, results: []byte{tF64}, locals: f64s, body: []byte{
			0x20, 0, 0x20, 1, 0xa0, 0x21, 2, 0x20, 2, 0x44, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0xa2, 0x0b}}, true},
		// the same through local.tee, whose value is compared.
		{"local.tee then a comparison", fnModule{params: []byte{tF64, tF64}, results: []byte{tF64}, locals: f64s, body: []byte{
			0x20, 0, 0x20, 1, 0xa0, 0x22, 2, 0x20, 0, 0x61, 0x1a, // $2 = x+y; drop($2 == x)
			0x20, 2, 0x20, 1, 0xa2, 0x0b}}, true}, // return $2 * y
		// $2 is returned: not blind.
		{"returned local", fnModule{params: []byte{tF64, tF64}, results: []byte{tF64}, locals: f64s, body: []byte{
			0x20, 0, 0x20, 1, 0xa0, 0x21, 2, 0x20, 2, 0x0b}}, false},
		// $2 is stored: not blind; the memory holds the canonical NaN.
		{"stored local", fnModule{params: []byte{tF64, tF64}, results: []byte{tF64}, locals: f64s, memory: mem, body: []byte{
			0x20, 0, 0x20, 1, 0xa0, 0x21, 2, 0x41, 0, 0x20, 2, 0x39, 3, 0, // f64.store $2 at 0
			0x41, 0, 0x2b, 3, 0, 0x0b}}, false}, // return f64.load 0
		// $2 is reinterpreted: not blind.
		{"reinterpreted local", fnModule{params: []byte{tF64, tF64}, results: []byte{tF64}, locals: f64s, body: []byte{
			0x20, 0, 0x20, 1, 0xa0, 0x21, 2, 0x20, 2, 0xbd, 0xbf, 0x0b}}, false},
		// $2 gives its sign to copysign: not blind.
		{"copysign from a local", fnModule{params: []byte{tF64, tF64}, results: []byte{tF64}, locals: f64s, body: []byte{
			0x44, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x20, 0, 0x20, 1, 0xa0, 0x21, 2, 0x20, 2, 0xa6, 0x0b}}, false},
		// A blind local read in a loop that accumulates into itself.
		{"accumulator", fnModule{params: []byte{tF64, tF64}, results: []byte{tF64}, locals: [][2]byte{{1, tF64}, {1, tI32}}, body: []byte{
			0x03, 0x40, // loop
			0x20, 2, 0x20, 0, 0xa0, 0x21, 2, // $2 = $2 + x
			0x20, 3, 0x41, 1, 0x6a, 0x22, 3, 0x41, 10, 0x48, 0x0d, 0, // $3++; br_if $3 < 10
			0x0b,
			0x20, 2, 0x20, 1, 0xa2, 0x0b}}, true}, // return $2 * y
	} {
		base := meter.DefaultOptions()
		blind := base
		blind.BlindLocals = true
		a, err := meter.Instrument(tc.m.bytes(), base)
		if err != nil {
			t.Fatal(err)
		}
		b, err := meter.Instrument(tc.m.bytes(), blind)
		if err != nil {
			t.Fatal(err)
		}
		if elided := len(b) < len(a); elided != tc.elide || (!tc.elide && !bytes.Equal(a, b)) {
			t.Errorf("%s: elided %v (%d → %d bytes), want %v", tc.name, elided, len(a), len(b), tc.elide)
		}
		for _, args := range [][]uint64{{nan, math.Float64bits(2)}, {math.Float64bits(math.Inf(1)), math.Float64bits(math.Inf(-1))},
			{math.Float64bits(1.5), math.Float64bits(-2)}} {
			want, wantGas, err1 := run(t, tc.m.bytes(), base, 1<<40, args...)
			got, gotGas, err2 := run(t, tc.m.bytes(), blind, 1<<40, args...)
			if err1 != nil || err2 != nil || got[0] != want[0] || gotGas != wantGas {
				t.Errorf("%s%x: BlindLocals %#x (%d gas, %v), canonicalizing %#x (%d gas, %v)", tc.name, args, got, gotGas, err2, want, wantGas, err1)
			}
			if math.IsNaN(math.Float64frombits(want[0])) && want[0]&^(1<<63) != 0x7ff8000000000000 && tc.name != "copysign from a local" {
				t.Errorf("%s: a non-canonical NaN %#x is observable", tc.name, want[0])
			}
		}
	}
}

// TestGoModuleBlindLocals: Go code gives the same results and uses the
// same gas with BlindLocals, and the option does leave canonicalizations
// out of it.
func TestGoModuleBlindLocals(t *testing.T) {
	wasm := loadGoWasm(t)
	ctx := context.Background()
	opts := meter.DefaultOptions()
	base, err := meter.Instrument(wasm, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.BlindLocals = true
	blind, err := meter.Instrument(wasm, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("metered %d bytes, with BlindLocals %d", len(base), len(blind))
	if len(blind) >= len(base) {
		t.Fatal("BlindLocals elided nothing in a Go module")
	}
	// The interpreter: these functions are short, and compiling two 4.9 MB
	// modules with the optimizing compiler takes tens of seconds.
	r := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter().WithMemoryLimitPages(meter.DefaultLimits().MaxMemoryPages))
	wasi_snapshot_preview1.MustInstantiate(ctx, r)
	defer r.Close(ctx)
	var mods [2]api.Module
	for i, code := range [][]byte{base, blind} {
		cm, err := r.CompileModule(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		mods[i] = goInstance(t, ctx, r, cm)
	}
	for _, tc := range []struct {
		fn   string
		args []uint64
	}{{"sha", []uint64{3}}, {"jsonparse", []uint64{5}}, {"floats", []uint64{1000}}, {"nan", nil}} {
		var res [2]uint64
		var gas [2]int64
		for i, m := range mods {
			setGas(m, meter.MaxGas)
			out, err := m.ExportedFunction(tc.fn).Call(ctx, tc.args...)
			if err != nil {
				t.Fatalf("%s: %v", tc.fn, err)
			}
			res[i], gas[i] = out[0], meter.MaxGas-gasLeft(m)
		}
		if res[0] != res[1] || gas[0] != gas[1] {
			t.Errorf("%s: %#x (%d gas), with BlindLocals %#x (%d gas)", tc.fn, res[0], gas[0], res[1], gas[1])
		}
	}
}
