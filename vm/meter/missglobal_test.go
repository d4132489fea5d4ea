package meter_test

import (
	"bytes"
	"testing"

	"github.com/sos-kernel/sos/vm/meter"
)

// recursiveSite is f(n) = n, where a call with n > 0 takes its br_table
// (index n/2) twice, calling f(n-1) between the two: the second jump
// repeats the first (no miss charge) only if the br_table's remembered
// indices are this call's own, not those the recursive call left behind,
// and the callee's first jump, often the caller's index, is charged only
// if the callee starts with indices of its own (0, 0).
var recursiveSite = fnModule{
	params: []byte{tI32}, results: []byte{tI32}, locals: [][2]byte{{1, tI32}},
	body: []byte{
		0x20, 0, 0x45, 0x04, 0x40, 0x41, 0, 0x0f, 0x0b, // if n == 0 { return 0 }
		0x03, 0x40, // loop
		0x02, 0x40, 0x20, 0, 0x41, 1, 0x76, 0x0e, 1, 0, 0, 0x0b, // block; br_table 0 0 on n/2; end
		0x20, 1, 0x45, 0x04, 0x40, // if i == 0
		0x20, 0, 0x41, 1, 0x6b, 0x10, 0, 0x1a, // drop f(n-1)
		0x0b,                            // end
		0x20, 1, 0x41, 1, 0x6a, 0x22, 1, // i++ (tee)
		0x41, 2, 0x49, 0x0d, 0, // br_if loop while i < 2
		0x0b,    // end loop
		0x20, 0, // n
		0x0b,
	},
}

// TestMissInGlobalsRecursion: with Options.MissInGlobals a br_table's
// state lives in a global shared by every call of its function; the gas
// of a recursion that jumps on both sides of its call, and the point where
// it runs out of gas at every budget up to what it needs, are those of the
// state in a local. It fails if calls do not keep the caller's state (the
// recursive call then leaves a different last index behind) or if the
// function's entry does not reset it.
func TestMissInGlobalsRecursion(t *testing.T) {
	// f has 3 integer params and locals, too few for the default to put
	// its state in a global: force the packed form, which does.
	opts := meter.PackedBrTableMiss(meter.DefaultOptions())
	withGlobals := opts
	withGlobals.MissInGlobals = true
	m := recursiveSite.bytes()
	a, _ := meter.Instrument(m, opts)
	b, err := meter.Instrument(m, withGlobals)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, b) {
		t.Fatal("MissInGlobals changed nothing")
	}
	for n := uint64(0); n <= 6; n++ {
		res, want, err := run(t, m, opts, 1<<40, n)
		if err != nil || res[0] != n {
			t.Fatalf("f(%d) = %v, %v", n, res, err)
		}
		res, got, err := run(t, m, withGlobals, 1<<40, n)
		if err != nil || res[0] != n {
			t.Fatalf("MissInGlobals: f(%d) = %v, %v", n, res, err)
		}
		if got != want {
			t.Errorf("f(%d): %d gas with the state in globals, %d in a local", n, got, want)
		}
		if n != 4 {
			continue
		}
		// Out of gas at every budget below what it needs: same trap,
		// same gas left.
		for limit := int64(0); limit < want; limit++ {
			_, wl, we := run(t, m, opts, limit, n)
			_, gl, ge := run(t, m, withGlobals, limit, n)
			if wl != gl || (we == nil) != (ge == nil) {
				t.Fatalf("f(%d) with %d gas: used %d (err %v) with globals, %d (err %v) in a local", n, limit, gl, ge, wl, we)
			}
		}
	}
	// Without the miss charge the option emits nothing.
	opts.Costs.BrTableMiss, withGlobals.Costs.BrTableMiss = 0, 0
	a, _ = meter.Instrument(m, opts)
	b, _ = meter.Instrument(m, withGlobals)
	if !bytes.Equal(a, b) {
		t.Error("MissInGlobals changed a module metered without the br_table charge")
	}
}

// TestMissInGlobalsChoice: by default only a function with at least 13
// integer params and locals (with the gas counter and the state, more
// than wazero's 14 integer registers on amd64) keeps its br_table state
// in a global, packed also above 16 (where a local state takes two i32
// locals): the same gas, and above 16 the same out-of-gas points as the
// two locals' form.
func TestMissInGlobalsChoice(t *testing.T) {
	opts := meter.DefaultOptions()
	withGlobals := opts
	withGlobals.MissInGlobals = true
	for _, tc := range []struct {
		i64s   byte // f's i64 locals besides its i32 param and local
		global bool
	}{{0, false}, {10, false}, {11, true}, {14, true}, {15, true}, {20, true}} {
		m := recursiveSite
		m.locals = [][2]byte{{1, tI32}, {tc.i64s, tI64}}
		a, err := meter.Instrument(m.bytes(), opts)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := meter.Instrument(m.bytes(), withGlobals)
		if changed := !bytes.Equal(a, b); changed != tc.global {
			t.Errorf("%d integer params and locals: state in a global %v, want %v", 2+int(tc.i64s), changed, tc.global)
		}
		for n := uint64(0); n <= 5 && tc.global; n++ {
			_, want, _ := run(t, m.bytes(), opts, 1<<40, n)
			if _, got, _ := run(t, m.bytes(), withGlobals, 1<<40, n); got != want {
				t.Errorf("%d integer locals, f(%d): %d gas with the state in globals, %d in a local", 2+int(tc.i64s), n, got, want)
			}
		}
		if tc.i64s != 15 {
			continue
		}
		// Two i32 locals against one packed global: out of gas at the
		// same gas for every budget below what f(4) needs.
		_, need, _ := run(t, m.bytes(), opts, 1<<40, 4)
		for limit := int64(0); limit < need; limit++ {
			_, wl, we := run(t, m.bytes(), opts, limit, 4)
			_, gl, ge := run(t, m.bytes(), withGlobals, limit, 4)
			if wl != gl || (we == nil) != (ge == nil) {
				t.Fatalf("f(4) with %d gas: used %d (err %v) with globals, %d (err %v) in locals", limit, gl, ge, wl, we)
			}
		}
	}
}

// TestMissInGlobalsGoModule: the Go module's functions metered as jobs
// are (BlindLocals) with and without Options.MissInGlobals behave and pay
// alike (sameOnGoModule).
func TestMissInGlobalsGoModule(t *testing.T) {
	opts := meter.DefaultOptions()
	opts.BlindLocals = true
	withGlobals := opts
	withGlobals.MissInGlobals = true
	sameOnGoModule(t, opts, withGlobals, "MissInGlobals")
}

// TestMissInGlobalsExampleJobs: so do the example jobs (sameOnExampleJobs).
func TestMissInGlobalsExampleJobs(t *testing.T) {
	opts := meter.DefaultOptions()
	opts.BlindLocals = true
	withGlobals := opts
	withGlobals.MissInGlobals = true
	sameOnExampleJobs(t, opts, withGlobals, "MissInGlobals")
}
