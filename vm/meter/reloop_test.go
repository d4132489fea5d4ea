package meter_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/sos-kernel/sos/vm/meter"
	"github.com/sos-kernel/sos/vm/wasmasm"
)

// Options.Reloop must not change what a module does or what it pays: the
// tests below run modules metered with and without it and compare
// everything the host can see (results, the gas global after every call,
// including out of gas at every budget, traps, the depth counter, stdout).

// jobsOptions are the options the VM meters jobs with (see
// vm.jobMeterOptions), without the job-sized limits.
func jobsOptions() meter.Options {
	o := meter.DefaultOptions()
	o.BlindLocals = true
	o.MissInGlobals = true
	return o
}

// withReloop returns opts with Options.Reloop on.
func withReloop(opts meter.Options) meter.Options {
	opts.Reloop = true
	return opts
}

// instrumentReloop meters m with v's options without and with Reloop, and
// checks that the relooped bytes come out the same twice.
func instrumentReloop(t *testing.T, m []byte, v reloopVariant) (off, on []byte) {
	t.Helper()
	off, err := meter.Instrument(m, v.opts)
	if err != nil {
		t.Fatal(err)
	}
	on, err = meter.Instrument(m, withReloop(v.opts))
	if err != nil {
		t.Fatalf("%s: Reloop: %v", v.name, err)
	}
	if again, _ := meter.Instrument(m, withReloop(v.opts)); !bytes.Equal(on, again) {
		t.Fatalf("%s: Reloop is not deterministic", v.name)
	}
	return off, on
}

// TestReloopGoModule: the Go module's functions metered as jobs are, with
// and without Options.Reloop, behave and pay alike (sameOnGoModule).
func TestReloopGoModule(t *testing.T) {
	sameOnGoModule(t, jobsOptions(), withReloop(jobsOptions()), "Reloop")
}

// TestReloopExampleJobs: so do the example jobs (sameOnExampleJobs).
func TestReloopExampleJobs(t *testing.T) {
	sameOnExampleJobs(t, jobsOptions(), withReloop(jobsOptions()), "Reloop")
}

// goFn is a function shaped as Go's wasm backend compiles every function,
// of Go's type (pc i32) -> i32:
//
//	global.get $in; local.set 1              (a prologue)
//	loop                                     (the dispatch loop)
//	  block × n
//	    local.get 0; br_table 0 1 … n-1      (to block pc)
//	  end   code 0
//	  end   code 1
//	  …
//	  end   code n-1
//	end
//	unreachable
//
// where every jump to block K is i32.const K; local.set 0; br to the
// dispatch loop (goJump). f(pc) starts at block pc, as a Go function
// resumed after its goroutine's stack was unwound does. Locals 1 to 3 are
// i64 values (local 1 starts as the global "in"), local 4 an i64 loop
// counter, local 5 an f64, then pad unused i64 locals. f may call
// function 1, g, Go's way (goCall); g counts its calls in the global
// "calls" and returns 1, which unwinds f, at the unwindAt-th. f leaves its
// result in the global "out".
type goFn struct {
	blocks   [][]byte
	pad      int
	unwindAt int64
}

// Globals of a goFn's module.
const (
	gIn    = 0
	gOut   = 1
	gCalls = 2
)

func (f goFn) module() []byte {
	n := len(f.blocks)
	body := []byte{0x23, gIn, 0x21, 1, 0x03, 0x40}
	body = append(body, bytes.Repeat([]byte{0x02, 0x40}, n)...)
	body = append(body, 0x20, 0, 0x0e)
	body = append(body, u32(uint32(n-1))...)
	for k := range n {
		body = append(body, u32(uint32(k))...)
	}
	for _, c := range f.blocks {
		body = append(body, 0x0b)
		body = append(body, c...)
	}
	body = append(body, 0x0b, 0x00, 0x0b) // end loop; unreachable; end
	g := cat([]byte{0x23, gCalls, 0x42, 1, 0x7c, 0x24, gCalls, 0x23, gCalls, 0x42}, wasmasm.S32(int32(f.unwindAt)), []byte{0x51, 0x0b})
	locals := [][2]byte{{4, tI64}, {1, tF64}}
	for p := f.pad; p > 0; p -= 100 {
		locals = append(locals, [2]byte{byte(min(p, 100)), tI64})
	}
	global := []byte{tI64, 0x01, 0x42, 0x00, 0x0b} // mut i64 = 0
	export := func(s string, kind byte, idx uint32) []byte { return cat(name(s), []byte{kind}, u32(idx)) }
	return cat([]byte{0, 'a', 's', 'm', 1, 0, 0, 0},
		section(1, vec(functype([]byte{tI32}, []byte{tI32}))),
		section(3, vec(u32(0), u32(0))),
		section(5, vec([]byte{0x01, 1, 1})), // one page, no growth
		section(6, vec(global, global, global)),
		section(7, vec(export("f", 0, 0), export("in", 3, gIn), export("out", 3, gOut), export("calls", 3, gCalls))),
		section(10, vec(code(locals, body...), code(nil, g...))),
	)
}

// goJump is Go's jump to block target from the code of block k of n,
// inside nest blocks or ifs of that code.
func goJump(n, k, nest, target int) []byte {
	return cat([]byte{0x41}, wasmasm.S32(int32(target)), []byte{0x21, 0, 0x0c}, u32(uint32(n-1-k+nest)))
}

// goIfJump jumps to block target when the i32 on the stack is not zero.
func goIfJump(n, k, target int) []byte {
	return cat([]byte{0x04, 0x40}, goJump(n, k, 1, target), []byte{0x0b})
}

// goExit leaves f, returning v, by a br to the function's label from the
// code of block k of n, inside nest blocks or ifs.
func goExit(n, k, nest int, v int32) []byte {
	return cat([]byte{0x41}, wasmasm.S32(v), []byte{0x0c}, u32(uint32(n-k+nest)))
}

// goReturn stores local 2 in "out" and returns v.
func goReturn(v int32) []byte {
	return cat([]byte{0x20, 2, 0x24, gOut, 0x41}, wasmasm.S32(v), []byte{0x0f})
}

// goCall calls g and returns 1 if it does, as Go code unwinds after every call.
var goCall = []byte{0x41, 0, 0x10, 1, 0x04, 0x40, 0x41, 1, 0x0f, 0x0b}

// Code snippets on locals 1 (n), 2 (acc) and 3 (j).
var (
	accZero   = []byte{0x42, 0, 0x21, 2}                               // acc = 0
	accAddN   = []byte{0x20, 2, 0x20, 1, 0x7c, 0x21, 2}                // acc += n
	nDec      = []byte{0x20, 1, 0x42, 1, 0x7d, 0x21, 1}                // n--
	nPositive = []byte{0x20, 1, 0x42, 0, 0x55}                         // n > 0
	accMix    = []byte{0x20, 2, 0x42, 3, 0x7e, 0x20, 1, 0x7c, 0x21, 2} // acc = acc*3 + n
	accRotate = []byte{0x20, 2, 0x20, 2, 0x42, 1, 0x86, 0x85, 0x21, 2} // acc ^= acc << 1
)

// reloopShape is a goFn, what to call it with, and whether Reloop must
// change its instrumented bytes.
type reloopShape struct {
	name     string
	fn       goFn
	relooped bool
	entries  []uint32 // pc arguments
	inputs   []reloopInput
}

type reloopInput struct {
	in     uint64
	trap   bool  // with all the gas it needs: out of bounds, call depth
	sweeps int64 // budgets to try at most (0: maxSweep)
}

func reloopShapes() []reloopShape {
	both := []uint32{0, 1}
	small := []reloopInput{{in: 3}, {in: 7}}
	shapes := []reloopShape{{
		name: "unconditional back edge ending a chain",
		fn: goFn{blocks: [][]byte{
			accZero,
			accAddN,
			cat(nDec, []byte{0x20, 1, 0x42, 0, 0x57}, goIfJump(4, 2, 3), goJump(4, 2, 0, 1)), // n <= 0: to 3, else to 1
			goReturn(0),
		}},
		relooped: true, entries: both, inputs: small,
	}, {
		name: "conditional back edge falling through",
		fn: goFn{blocks: [][]byte{
			accZero,
			accMix,
			cat(nDec, nPositive, goIfJump(4, 2, 1)),
			goReturn(0),
		}},
		relooped: true, entries: []uint32{0, 1, 2, 3}, inputs: small,
	}, {
		// Two exits, to blocks 4 and 5, and a back edge from block 3:
		// the br_table's index changes (misses) when the loop exits.
		name: "exits to later blocks",
		fn: goFn{blocks: [][]byte{
			accZero,
			cat(accAddN, []byte{0x20, 1, 0x42, 7, 0x83, 0x42, 5, 0x51}, goIfJump(6, 1, 5)), // n&7 == 5: to 5
			cat(nDec, []byte{0x20, 1, 0x50}, goIfJump(6, 2, 4)),                            // n == 0: to 4
			cat(accRotate, goJump(6, 3, 0, 1)),
			goReturn(1),
			cat([]byte{0x20, 2, 0x42, 100, 0x7c, 0x21, 2}, goReturn(2)),
		}},
		relooped: true, entries: both, inputs: []reloopInput{{in: 4}, {in: 20}, {in: 0}},
	}, {
		name: "call inside the loop",
		fn: goFn{unwindAt: 6, blocks: [][]byte{
			accZero,
			cat(goCall, []byte{0x20, 2, 0x23, gCalls, 0x7c, 0x21, 2}), // acc += calls
			cat(nDec, nPositive, goIfJump(4, 2, 1)),
			goReturn(0),
		}},
		relooped: true, entries: both, inputs: []reloopInput{{in: 3}, {in: 9}}, // g unwinds f at the 6th call
	}, {
		name: "br to the function's label inside the loop",
		fn: goFn{blocks: [][]byte{
			accZero,
			cat(accAddN, []byte{0x20, 1, 0x42, 3, 0x51, 0x04, 0x40, 0x20, 2, 0x24, gOut}, goExit(4, 1, 1, 7), []byte{0x0b}),
			cat(nDec, nPositive, goIfJump(4, 2, 1)),
			goReturn(0),
		}},
		relooped: true, entries: both, inputs: []reloopInput{{in: 2}, {in: 6}},
	}, {
		name: "nested loops",
		fn: goFn{blocks: [][]byte{
			accZero,
			{0x42, 0, 0x21, 3}, // j = 0
			{0x20, 2, 0x20, 3, 0x20, 1, 0x7e, 0x7c, 0x21, 2},                               // acc += j*n
			cat([]byte{0x20, 3, 0x42, 1, 0x7c, 0x22, 3, 0x20, 1, 0x53}, goIfJump(6, 3, 2)), // j++ < n: to 2
			cat(nDec, nPositive, goIfJump(6, 4, 1)),
			goReturn(0),
		}},
		relooped: true, entries: []uint32{0, 1, 2, 3, 4}, inputs: []reloopInput{{in: 2}, {in: 5}},
	}, {
		// br_if 1 in block 1 goes to block 3 directly, not through the
		// dispatch loop: a copy of blocks 1 to 3 would have to branch
		// inside itself.
		name: "direct branch to a block closing inside the loop",
		fn: goFn{blocks: [][]byte{
			accZero,
			cat(accAddN, []byte{0x20, 1, 0xa7, 0x41, 1, 0x71, 0x0d, 1}),
			accRotate,
			cat(nDec, nPositive, goIfJump(5, 3, 1)),
			goReturn(0),
		}},
		entries: both, inputs: small,
	}, {
		// br_if 2 in block 1 leaves the loop for block 4 directly.
		name: "direct branch out of the loop",
		fn: goFn{blocks: [][]byte{
			accZero,
			cat(accMix, []byte{0x20, 1, 0x42, 5, 0x51, 0x0d, 2}),
			accRotate,
			cat(nDec, nPositive, goIfJump(5, 3, 1)),
			goReturn(0),
		}},
		entries: both, inputs: []reloopInput{{in: 3}, {in: 8}},
	}, {
		// j walks through memory 8 KiB at a time: the 9th load is past
		// the one page.
		name: "load out of bounds inside the loop",
		fn: goFn{blocks: [][]byte{
			cat(accZero, []byte{0x42, 0, 0x21, 3}),
			{0x20, 3, 0xa7, 0x29, 3, 0, 0x20, 2, 0x42, 5, 0x7e, 0x7c, 0x20, 1, 0x7c, 0x21, 2, // acc = acc*5 + load(j) + n
				0x20, 3, 0x42, 0x80, 0xc0, 0, 0x7c, 0x21, 3}, // j += 8192
			cat(nDec, nPositive, goIfJump(4, 2, 1)),
			goReturn(0),
		}},
		relooped: true, entries: both, inputs: []reloopInput{{in: 5}, {in: 12, trap: true}},
	}, {
		name: "loop on the entry block",
		fn: goFn{blocks: [][]byte{
			cat(accAddN, nDec, nPositive, goIfJump(2, 0, 0)),
			goReturn(0),
		}},
		relooped: true, entries: []uint32{0}, inputs: small,
	}, {
		name: "back edge from the last block",
		fn: goFn{blocks: [][]byte{
			accZero,
			cat([]byte{0x20, 1, 0x42, 0, 0x57, 0x04, 0x40}, goReturn(0), []byte{0x0b}, accMix), // n <= 0: return
			cat(nDec, goJump(3, 2, 0, 1)),
		}},
		relooped: true, entries: both, inputs: small,
	}, {
		// f recurses with in = n-1 in the first of three iterations of
		// its loop: in calls deep, past MaxCallDepth for the big input.
		name: "recursion inside the loop",
		fn: goFn{unwindAt: -1, blocks: [][]byte{
			cat(accZero, []byte{0x42, 0, 0x21, 3}),
			cat([]byte{0x20, 1, 0x50}, goIfJump(5, 1, 4)), // n == 0: to 4
			{0x20, 3, 0x50, 0x04, 0x40, // j == 0:
				0x20, 1, 0x42, 1, 0x7d, 0x24, gIn, 0x41, 0, 0x10, 0, 0x04, 0x40, 0x41, 1, 0x0f, 0x0b, // f(in = n-1), unwinding if it does
				0x20, 2, 0x23, gOut, 0x7c, 0x21, 2, // acc += out
				0x0b},
			cat([]byte{0x20, 3, 0x42, 1, 0x7c, 0x22, 3, 0x42, 3, 0x53}, goIfJump(5, 3, 2)), // j++ < 3: to 2
			cat(accAddN, goReturn(0)),
		}},
		relooped: true, entries: both, inputs: []reloopInput{{in: 4}, {in: 1100, trap: true, sweeps: 100}},
	}}
	// The same with a frame of more than FrameSlots slots: each call
	// counts 2 in the depth counter, so 600 calls deep is too deep.
	big := shapes[len(shapes)-1]
	big.name += ", big frame"
	big.fn.pad = meter.FrameSlots
	big.inputs = []reloopInput{{in: 4}, {in: 600, trap: true, sweeps: 100}}
	return append(shapes, big)
}

// reloopOutcome is what the host sees of a call of a goFn's f.
type reloopOutcome struct {
	ret, out, calls uint64
	gas             int64 // the gas global after the call
	depth           uint64
	trap            string // the error's first line, "" if none
}

// goFnInstance is an instance of a goFn's module, plain or metered.
type goFnInstance struct {
	m              api.Module
	f              api.Function
	in, out, calls api.MutableGlobal
	gas, depth     api.MutableGlobal // nil if plain
}

func instantiateGoFn(tb testing.TB, ctx context.Context, r wazero.Runtime, wasm []byte) goFnInstance {
	tb.Helper()
	m, err := r.Instantiate(ctx, wasm)
	if err != nil {
		tb.Fatalf("instantiate: %v", err)
	}
	g := func(name string) api.MutableGlobal {
		v, _ := m.ExportedGlobal(name).(api.MutableGlobal)
		return v
	}
	return goFnInstance{m: m, f: m.ExportedFunction("f"), in: g("in"), out: g("out"), calls: g("calls"),
		gas: g(meter.GasGlobalExport), depth: g(meter.DepthGlobalExport)}
}

// call runs f(pc) with in and gas. A trap does not make a wazero instance
// unusable, and f writes no memory: every call starts from the same state.
func (i goFnInstance) call(ctx context.Context, pc uint32, in uint64, gas int64) reloopOutcome {
	i.in.Set(in)
	i.out.Set(0)
	i.calls.Set(0)
	if i.gas != nil {
		i.gas.Set(uint64(gas))
		i.depth.Set(0)
	}
	res, err := i.f.Call(ctx, uint64(pc))
	o := reloopOutcome{out: i.out.Get(), calls: i.calls.Get()}
	if err != nil {
		o.trap = firstLine(err)
	} else {
		o.ret = res[0]
	}
	if i.gas != nil {
		o.gas, o.depth = int64(i.gas.Get()), i.depth.Get()
	}
	return o
}

// reloopVariant is a set of options Reloop is compared under.
type reloopVariant struct {
	name string
	opts meter.Options
}

// reloopVariants: the jobs' options, with each form of the br_table
// tracking (a packed local, a global, two locals), the contracts'
// options, and distinct costs in whole gas (Scale 1), where a charge
// misplaced by a unit shows in the gas left.
func reloopVariants() []reloopVariant {
	jobs := jobsOptions()
	unit := jobs
	unit.Costs = syncCosts()
	return []reloopVariant{
		{"jobs", jobs},
		{"jobs, state in globals", meter.PackedBrTableMiss(jobs)},
		{"jobs, two locals", meter.TwoLocalBrTableMiss(jobs)},
		{"contracts", meter.DefaultOptions()},
		{"distinct costs", unit},
	}
}

// reloopEngines are wazero's interpreter and compiler, which must agree.
func reloopEngines(ctx context.Context) (names []string, rs []wazero.Runtime) {
	return []string{"interpreter", "compiler"}, []wazero.Runtime{
		wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter()),
		wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigCompiler()),
	}
}

// plenty is more gas than any goFn needs, and little enough that a copy
// that loops forever runs out instead of hanging the test.
const plenty = 1 << 22

// maxSweep bounds the budgets compareBudgets tries by default.
const maxSweep = 3000

// compareBudgets runs f(pc) with in in both instances with all the gas
// and every budget from 0 to what it needs, or, if that is more than
// sweeps budgets, sweeps budgets spread evenly and the last sweeps/10,
// and reports the first budget where they differ. It returns the outcome
// with all the gas.
func compareBudgets(t *testing.T, ctx context.Context, what string, off, on goFnInstance, pc uint32, in uint64, sweeps int64) reloopOutcome {
	t.Helper()
	want := off.call(ctx, pc, in, plenty)
	if got := on.call(ctx, pc, in, plenty); got != want {
		t.Errorf("%s: f(%d) with in=%d: %+v relooped, %+v not", what, pc, in, got, want)
		return want
	}
	need := plenty - want.gas
	step := max(1, need/sweeps)
	for limit := int64(0); limit <= need; {
		w := off.call(ctx, pc, in, limit)
		if g := on.call(ctx, pc, in, limit); g != w {
			t.Errorf("%s: f(%d) with in=%d and %d gas (of %d): %+v relooped, %+v not", what, pc, in, limit, need, g, w)
			return want
		}
		if limit += step; limit > need-sweeps/10 {
			step = 1
		}
	}
	return want
}

// TestReloopShapes: hand-built Go-shaped functions (see reloopShapes),
// metered with and without Options.Reloop under each reloopVariant, run
// in wazero's interpreter and compiler from the blocks they can be
// resumed at, behave alike at every gas budget up to what they need: the
// same result, gas left, depth counter and trap. With all the gas they
// return what the unmetered function returns.
func TestReloopShapes(t *testing.T) {
	ctx := context.Background()
	names, rs := reloopEngines(ctx)
	for _, r := range rs {
		defer r.Close(ctx)
	}
	for _, sh := range reloopShapes() {
		t.Run(sh.name, func(t *testing.T) {
			m := sh.fn.module()
			plain := instantiateGoFn(t, ctx, rs[0], m)
			for _, v := range reloopVariants() {
				a, b := instrumentReloop(t, m, v)
				if sh.relooped && bytes.Equal(a, b) {
					t.Errorf("%s: Reloop changed nothing", v.name)
				}
				for e, r := range rs {
					what := v.name + ", " + names[e]
					off, on := instantiateGoFn(t, ctx, r, a), instantiateGoFn(t, ctx, r, b)
					for _, pc := range sh.entries {
						for _, in := range sh.inputs {
							sweeps := in.sweeps
							if sweeps == 0 {
								sweeps = maxSweep
							}
							want := compareBudgets(t, ctx, what, off, on, pc, in.in, sweeps)
							if in.trap {
								if want.trap == "" || want.gas < 0 {
									t.Errorf("%s: f(%d) with in=%d and all the gas: %+v, want a trap other than out of gas", what, pc, in.in, want)
								}
								continue
							}
							p := plain.call(ctx, pc, in.in, 0)
							if want.trap != "" || want.ret != p.ret || want.out != p.out || want.calls != p.calls {
								t.Errorf("%s: f(%d) with in=%d: %+v metered, %+v plain", what, pc, in.in, want, p)
							}
						}
					}
				}
			}
		})
	}
}

// fuzzBytes hands out a fuzz input's bytes, then zeros.
type fuzzBytes []byte

func (b *fuzzBytes) next() int {
	if len(*b) == 0 {
		return 0
	}
	v := (*b)[0]
	*b = (*b)[1:]
	return int(v)
}

// loopBound is how many times a generated function may pass a loop head
// (the start of a block some jump goes back to) before it returns 2.
const loopBound = 40

// generatedGoFn is a goFn built from fuzz bytes, what to call it with and
// under which options.
type generatedGoFn struct {
	fn        goFn
	pc        uint32
	in        uint64
	variant   int // in reloopVariants
	frac      int // a budget: frac/256 of the need
	backEdges bool
	direct    bool // some code branches directly to a later block
	floatBits bool // f reads the bits of its float local, NaN payloads included
}

// f64 operators the generator picks from: add, sub, mul, div, min, max
// and sqrt (unary).
var fuzzFloatOps = []byte{0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0x9f}

// i64 binary operators the generator picks from: add, sub, mul, xor,
// rotl, shr_u, and, or.
var fuzzOps = []byte{0x7c, 0x7d, 0x7e, 0x85, 0x89, 0x88, 0x83, 0x84}

// i64 comparisons: lt_s, gt_s, eq, ne.
var fuzzCmps = []byte{0x53, 0x55, 0x51, 0x52}

// genGoFn builds a Go-shaped function of 2 to 7 blocks from b: each
// block's code is a few of i64 arithmetic on locals 1 to 3, loads (some
// out of bounds), calls of g (which unwind f at its unwindAt-th call),
// conditional jumps to any block (some by an index past the br_table's
// labels), exits by a br to the function's label, divisions that may
// trap, and, less like Go, direct br_ifs to a later block or to the
// dispatch loop, jumps in else arms, after other code in an if, before
// dead code and in blocks of the code's own, Wasm
// loops and br_tables of its own, and f64 arithmetic on local 5, read back
// by its bits (where NaN canonicalization shows) or truncated (where
// BlindLocals leaves it alone); it ends falling through (to unreachable
// from the last block), jumping to any block or returning. Every block
// some jump goes back to (every block, if a br_if goes to the dispatch
// loop) starts by counting the passes through it in local 4 and
// returning after loopBound, so every call ends: a cycle of blocks needs
// a jump back (falling through and branching directly only go forward).
func genGoFn(b fuzzBytes) generatedGoFn {
	n := 2 + b.next()%6
	g := generatedGoFn{pc: uint32(b.next() % (n + 1)), in: uint64(int64(int8(b.next()))), variant: b.next(), frac: b.next()}
	g.fn.unwindAt = int64(1 + b.next()%16)
	g.floatBits = b.next()%2 == 1
	if b.next()%2 == 1 {
		g.fn.pad = 10 // 15 integer locals: the jobs' options keep the br_table state in a global
	}
	local := func() byte { return byte(1 + b.next()%3) }
	head := make([]bool, n)
	redispatch := false
	jump := func(k, nest int) []byte {
		t := b.next() % (n + 2)
		k32 := int32(t)
		switch t {
		case n: // past the br_table's labels, two bytes of LEB: the default block
			k32, t = int32(n+64+b.next()%64), n-1
		case n + 1: // negative, huge unsigned: the default block
			k32, t = int32(-1-b.next()%8), n-1
		}
		if t <= k {
			head[t] = true
			g.backEdges = true
		}
		return cat([]byte{0x41}, wasmasm.S32(k32), []byte{0x21, 0, 0x0c}, u32(uint32(n-1-k+nest)))
	}
	cond := func() []byte {
		return cat([]byte{0x20, local(), 0x42}, wasmasm.S32(int32(int8(b.next()))), []byte{fuzzCmps[b.next()%len(fuzzCmps)]})
	}
	arith := func() []byte { // c = a op b
		return []byte{0x20, local(), 0x20, local(), fuzzOps[b.next()%len(fuzzOps)], 0x21, local()}
	}
	for k := range n {
		var c []byte
		for range b.next() % 5 {
			switch op := b.next() % 20; op {
			case 0, 1:
				c = append(c, arith()...)
			case 2: // c = a op const
				c = cat(c, []byte{0x20, local(), 0x42}, wasmasm.S32(int32(int8(b.next()))), []byte{fuzzOps[b.next()%len(fuzzOps)], 0x21, local()})
			case 3, 4:
				c = cat(c, cond(), []byte{0x04, 0x40}, jump(k, 1), []byte{0x0b})
			case 5: // c += load(a & mask), past the page with the wide mask
				mask := int32(0xfff8)
				if b.next()%8 == 0 {
					mask = 0x1fff8
				}
				c = cat(c, []byte{0x20, local(), 0xa7, 0x41}, wasmasm.S32(mask), []byte{0x71, 0x29, 3, 0})
				l := local()
				c = append(c, 0x20, l, 0x7c, 0x21, l)
			case 6: // c += calls, after a call of g
				l := local()
				c = cat(c, goCall, []byte{0x20, l, 0x23, gCalls, 0x7c, 0x21, l})
			case 7:
				c = cat(c, cond(), []byte{0x04, 0x40, 0x20, 2, 0x24, gOut}, goExit(n, k, 1, 3), []byte{0x0b})
			case 8:
				if k < n-1 {
					c = append(c, 0x20, local(), 0xa7, 0x41, 1, 0x71, 0x0d)
					c = append(c, u32(uint32(b.next()%(n-1-k)))...)
					g.direct = true
				}
			case 9: // c = a / (b | const): traps on 0 and on MinInt64 / -1
				c = cat(c, []byte{0x20, local(), 0x20, local(), 0x42}, wasmasm.S32(int32(int8(b.next()))), []byte{0x84, 0x7f, 0x21, local()})
			case 10: // if/else, a jump in either arm
				then, els := arith(), arith()
				if b.next()%2 == 0 {
					then = jump(k, 1)
				} else {
					els = jump(k, 1)
				}
				c = cat(c, cond(), []byte{0x04, 0x40}, then, []byte{0x05}, els, []byte{0x0b})
			case 11: // a jump in a block of the code's own, left by a br_if
				c = cat(c, []byte{0x02, 0x40}, cond(), []byte{0x0d, 0}, jump(k, 1), []byte{0x0b})
			case 12: // a jump in an if in a block
				c = cat(c, []byte{0x02, 0x40}, cond(), []byte{0x04, 0x40}, jump(k, 2), []byte{0x0b}, arith(), []byte{0x0b})
			case 13: // a Wasm loop of the code's own, on the loop counter
				c = cat(c, []byte{0x03, 0x40}, arith(), []byte{0x20, 4, 0x42, 1, 0x7c, 0x22, 4, 0x42, loopBound, 0x54, 0x0d, 0, 0x0b})
			case 14: // a br_table of the code's own (a second site)
				c = cat(c, []byte{0x02, 0x40, 0x02, 0x40, 0x20, local(), 0xa7, 0x0e, 2, 0, 1, 1, 0x0b}, arith(), []byte{0x0b})
			case 15: // br_if to the dispatch loop: to block pc again
				c = cat(c, cond(), []byte{0x0d}, u32(uint32(n-1-k)))
				redispatch = true
			case 16: // x = x op float(a), which may be a NaN (0/0, inf-inf, sqrt(-1))
				if op := fuzzFloatOps[b.next()%len(fuzzFloatOps)]; op == 0x9f {
					c = append(c, 0x20, 5, 0x9f, 0x21, 5)
				} else {
					c = append(c, 0x20, 5, 0x20, local(), 0xb9, op, 0x21, 5)
				}
			case 18: // a jump after other code in an if
				c = cat(c, cond(), []byte{0x04, 0x40}, arith(), jump(k, 1), []byte{0x0b})
			case 19: // a jump followed by dead code
				c = cat(c, cond(), []byte{0x04, 0x40}, jump(k, 1), arith(), []byte{0x0b})
			case 17: // c = the bits of x, where NaN canonicalization shows, or x truncated
				if g.floatBits {
					c = append(c, 0x20, 5, 0xbd, 0x21, local())
				} else {
					c = append(c, 0x20, 5, 0xfc, 6, 0x21, local())
				}
			}
		}
		switch t := b.next() % 8; {
		case t == 7 && k == n-1: // off the dispatch loop, to unreachable
		case t < 3 && k < n-1: // fall through
		case t < 6:
			c = append(c, jump(k, 0)...)
		default:
			c = append(c, goReturn(0)...)
		}
		g.fn.blocks = append(g.fn.blocks, c)
	}
	for k, h := range head {
		if h || redispatch {
			check := cat([]byte{0x20, 4, 0x42, 1, 0x7c, 0x22, 4, 0x42, loopBound, 0x5a, 0x04, 0x40}, goReturn(2), []byte{0x0b})
			g.fn.blocks[k] = cat(check, g.fn.blocks[k])
		}
	}
	return g
}

// checkGenerated meters g with and without Options.Reloop under its
// variant and compares the two in each runtime with all the gas, none,
// what it needs and one less, a half, a third, a seventh and frac/256 of
// it, and with all the gas against the unmetered function. It reports
// whether Reloop changed the instrumented bytes.
func checkGenerated(t *testing.T, ctx context.Context, names []string, rs []wazero.Runtime, g generatedGoFn) bool {
	t.Helper()
	m := g.fn.module()
	variants := reloopVariants()
	v := variants[g.variant%len(variants)]
	plain := instantiateGoFn(t, ctx, rs[0], m)
	defer plain.m.Close(ctx)
	a, b := instrumentReloop(t, m, v)
	for e, r := range rs {
		what := v.name + ", " + names[e]
		off, on := instantiateGoFn(t, ctx, r, a), instantiateGoFn(t, ctx, r, b)
		want := off.call(ctx, g.pc, g.in, plenty)
		if got := on.call(ctx, g.pc, g.in, plenty); got != want {
			t.Errorf("%s: f(%d) with in=%d: %+v relooped, %+v not", what, g.pc, g.in, got, want)
		}
		// Unmetered, a NaN's bits are the engine's own.
		if p := plain.call(ctx, g.pc, g.in, 0); !g.floatBits && (p.ret != want.ret || p.out != want.out || p.calls != want.calls || p.trap != want.trap) {
			t.Errorf("%s: f(%d) with in=%d: %+v metered, %+v plain", what, g.pc, g.in, want, p)
		}
		need := plenty - want.gas
		for _, limit := range []int64{0, need - 1, need, need / 2, need / 3, need / 7, need * int64(g.frac) / 256} {
			w := off.call(ctx, g.pc, g.in, limit)
			if got := on.call(ctx, g.pc, g.in, limit); got != w {
				t.Errorf("%s: f(%d) with in=%d and %d gas (of %d): %+v relooped, %+v not", what, g.pc, g.in, limit, need, got, w)
			}
		}
		off.m.Close(ctx)
		on.m.Close(ctx)
	}
	if t.Failed() {
		t.Logf("module: %x", m)
	}
	return !bytes.Equal(a, b)
}

// FuzzReloop: random Go-shaped functions (genGoFn) behave alike metered
// with and without Options.Reloop.
func FuzzReloop(f *testing.F) {
	f.Add([]byte{})
	// Two blocks, block 0 looping on itself until n < 5.
	f.Add([]byte{0, 0, 20, 0, 0, 0, 1, 3, 1, 5, 1, 0, 0, 1, 0, 0, 3})
	// Seven blocks, loops through calls, loads and exits.
	f.Add([]byte{5, 0, 100, 1, 128, 5, 1, 4, 3, 2, 7, 1, 1, 1, 2, 6, 0, 4, 2, 1, 9, 5, 1, 3, 6, 2, 2, 0, 2, 7, 2, 3, 0, 1, 2,
		3, 3, 1, 2, 40, 3, 2, 1, 1, 1, 0, 0, 5, 5, 2, 0, 0, 3, 2, 1, 1, 1, 7, 3, 2, 1, 0, 0, 2, 2, 4, 4, 0, 1, 2})
	rng := rand.New(rand.NewPCG(1, 2))
	for range 16 {
		seed := make([]byte, 64)
		for i := range seed {
			seed[i] = byte(rng.Uint32())
		}
		f.Add(seed)
	}
	ctx := context.Background()
	names, rs := reloopEngines(ctx)
	for _, r := range rs {
		defer r.Close(ctx)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkGenerated(t, ctx, names, rs, genGoFn(data))
	})
}

// TestReloopGenerated runs FuzzReloop's check on 300 random functions
// (seeded, so the same ones every run) and checks that Reloop rewrote
// most of those with a jump back and no direct branch: a check that
// finds no difference in code that was not relooped proves nothing.
func TestReloopGenerated(t *testing.T) {
	const seed = 7
	rng := rand.New(rand.NewPCG(seed, seed))
	ctx := context.Background()
	names, rs := reloopEngines(ctx)
	for _, r := range rs {
		defer r.Close(ctx)
	}
	loops, relooped := 0, 0
	for i := range 300 {
		data := make([]byte, 16+rng.IntN(100))
		for j := range data {
			data[j] = byte(rng.Uint32())
		}
		g := genGoFn(data)
		changed := false
		t.Run(fmt.Sprint(i), func(t *testing.T) { changed = checkGenerated(t, ctx, names, rs, g) })
		if g.backEdges && !g.direct {
			loops++
			if changed {
				relooped++
			}
		}
	}
	t.Logf("seed %d: Reloop rewrote %d of %d functions with a jump back and no direct branch", seed, relooped, loops)
	if relooped < loops/2 {
		t.Error("Reloop left more than half of them alone")
	}
}
