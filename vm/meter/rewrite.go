package meter

import (
	"math"
	"math/bits"

	"github.com/sos-kernel/sos/vm/internal/wasmbin"
)

// maxScratch is the most shared scratch locals the rewriter appends to one
// function: i64 (the gas counter), i32 (dynamic size, call depth, br_table
// index), f32 and f64 (NaN canonicalization). With CostTable.BrTableMiss it
// also appends one i64 or two i32 per reachable br_table (its last two indices).
const maxScratch = 4

// Opcodes the rewriter emits that wasmbin does not name.
const (
	opI32Add     byte = 0x6a
	opI32Sub     byte = 0x6b
	opI32LeU     byte = 0x4d
	opI64GeS     byte = 0x59
	opI64Add     byte = 0x7c
	opI64Shl     byte = 0x86
	opI64ShrS    byte = 0x87
	opI32Ne      byte = 0x47
	opI32And     byte = 0x71
	opI64Or      byte = 0x84
	opI64ShrU    byte = 0x88
	opI32WrapI64 byte = 0xa7
)

// Metering model
//
// A function body is split into segments. A segment starts at the function
// entry, at loop, if and else, at the end of a loop, of an if and of a block
// that some branch targets, and after br, br_table, return and unreachable:
// wherever control can arrive other than by falling through. Entering a
// block and the end of a block no branch targets do not start one (control
// only falls through there), nor do calls and br_if: the callee meters
// itself, and the code after a br_if is charged together with the code
// before it, even when the branch is taken. That over-charge is
// deterministic and keeps the number of charges low in Go's branch- and
// call-dense code. The whole cost of a segment is subtracted at the
// segment's start, and every iteration of a loop also pays CostTable.Loop.
//
// The counter lives in a local
//
// Each function keeps the counter in a local, $g, in units of 1/Scale gas:
// it loads the global at entry and after every call ($g = gas << log2 Scale)
// and a segment's charge is one subtraction from $g, a register in compiled
// code. It writes $g back (gas = $g >> log2 Scale, an arithmetic shift, so
// the units spent are rounded up to whole gas and a negative $g stays
// negative) only where someone else can read the global:
//   - before every call and call_indirect: the callee charges the same
//     global and host functions charge and check it;
//   - before leaving the function: return, the final end, and br, br_if and
//     br_table to the function's label;
//   - before unreachable, at every loop check, after every dynamic charge,
//     and on the way to an out-of-gas trap.
// So the global is exact whenever a caller, callee or host function looks
// at it, and after a trap by unreachable, by the depth limit or by running
// out of gas. After any other trap (out-of-bounds access, division by zero,
// a failed call_indirect, ...) it lacks what was charged since the last
// write: at most one loop-free, call-free path of one function, since every
// loop iteration writes. Units are exact within a function; the rounding
// up to whole gas happens once per write-back followed by a load, i.e. once
// per call. The host must not put more than MaxGas in the global, so that
// the shift cannot overflow.
//
// Subtracting is not checking. A check ($g < 0 ⇒ unreachable) is emitted
// only where execution could otherwise run unboundedly or expensively:
//   - at the start of every loop body (each iteration passes it),
//   - at the entry of functions that contain a call (recursion),
//   - after every dynamic charge (memory.grow, bulk memory and table ops).
// Between two checks a function executes a bounded, loop-free path, so gas
// overshoots zero by at most one function's worth of segments and cannot wrap.
// The host must treat gas < 0 after a call as out of gas, and host functions
// must refuse to run when it is already negative. A check is written
// "if ($g >= 0) {} else { unreachable }": that way round wazero lays the trap
// out of line and the common path falls through.
//
// Segments that begin in unreachable code (after br, br_table, return,
// unreachable) are not charged: they never execute.
//
// Indirect jumps that change target
//
// The one dynamic charge that is not an operand's size: when
// CostTable.BrTableMiss is not zero, each br_table that can execute keeps
// the indices it took last ($last) and the time before ($prev), both zero
// at the function's entry, in a local of its own, $s = $prev<<32 | $last,
// and before it
//
//	local.tee $t; local.get $g
//	local.get $t; local.get $s; i32.wrap_i64; i32.ne
//	local.get $t; local.get $s; i64.const 32; i64.shr_u; i32.wrap_i64; i32.ne
//	i32.and; i64.extend_i32_u; i64.const log2(BrTableMiss); i64.shl
//	i64.sub; local.set $g
//	local.get $s; i64.const 32; i64.shl; local.get $t; i64.extend_i32_u
//	i64.or; local.set $s
//
// or, in a function with more than packedMaxIntLocals integer locals, in
// two i32 locals (see brTableMiss for why)
//
//	local.tee $t; local.get $g
//	local.get $t; local.get $last; i32.ne
//	local.get $t; local.get $prev; i32.ne; i32.and; i64.extend_i32_u
//	i64.const log2(BrTableMiss); i64.shl; i64.sub; local.set $g
//	local.get $last; local.set $prev; local.get $t; local.set $last
//
// (i64.const BrTableMiss; i64.mul when it is not a power of two): $g -=
// BrTableMiss when the index is neither of the last two this site took in
// this call of the function. It is branch-free and part of the segment the
// br_table ends, so the gas global is written back by the same rules as any
// other charge (before a br_table that leaves the function, the sync follows
// the charge). It depends only on the execution, not on the CPU: the CPU's
// indirect-branch predictor is what it stands for. Go's wasm backend makes
// every jump that is not a fall-through a br_table on the function's resume
// point, which starts at 0: a Go loop repeats the index or alternates
// between the loop's head and one other block (two remembered indices cover
// both), a call that runs its blocks in order does not go through it; a Go
// branch on the data picks among more targets, unpredictably.
//
// With Options.MissInGlobals, a function that has at least
// siteGlobalMinIntLocals integer params and locals and at most
// maxSiteGlobals sites keeps its k-th site's $s, packed whatever the
// function's number of integer locals, in the appended global $site_k
// instead of a local: the packed instructions with global.get/global.set
// on $site_k. The globals are shared by all
// functions, so the function's entry sets each of its $site_k to 0 (what
// a fresh local holds), and around every call and call_indirect it keeps
// them in locals of its own:
//
//	global.get $site_k; local.set $save_k   (each k, before the call)
//	call f
//	local.get $save_k; global.set $site_k   (each k, after it)
//
// so a callee, this function again included, cannot change what a site
// remembers: every charge, and so the gas at every point, is the one of
// the state in a local (TestMissInGlobalsRecursion). Nothing else reads
// those globals, and a trap ends the instance's use.
//
// Call depth
//
// The depth of nested Wasm calls is counted in a second appended global, an
// i32, at every call and call_indirect site:
//
//	global.get $depth; i32.const W; i32.add; local.tee $t; global.set $depth
//	local.get $t; i32.const MaxCallDepth; i32.le_u; if else unreachable end
//	call f
//	local.get $t; i32.const W; i32.sub; global.set $depth
//
// so recursion traps deterministically at MaxCallDepth nested calls instead
// of at whatever depth the engine's native stack gives out (which depends on
// the wazero version, the CPU and frame sizes). W is the calling function's
// weight (1, or more for frames above FrameSlots slots): the counter is the
// sum of the weights of the frames below the innermost one, so it bounds
// the native stack too. Counting at the call site rather than at function
// entry covers call_indirect and calls of imported functions alike, and
// the caller knows its own frame. The gas counter is written back before
// the increment, so the trap leaves the depth counter above MaxCallDepth
// and the gas counter as exact as before any call, and the host can tell it
// from running out of gas. $t is the i32 scratch local: nothing else uses
// it between the increment and the decrement (arguments are evaluated before
// the increment, and the callee has its own locals), and since calls are
// balanced the counter equals $t again when the callee returns.

type segKind uint8

const (
	segNormal segKind = iota
	segEntry          // function entry: checked if the function calls
	segLoop           // loop body: always checked
	segDead           // after an unconditional branch: never executes
)

// openBlock is a block, loop or if open while rewriting.
type openBlock struct {
	op  byte
	ord int // index in rewriter.targeted
}

type rewriter struct {
	costs     *opCosts
	types     []wasmbin.FuncType
	funcTypes []uint32 // type index of every function, imports first
	canon     bool
	gas       uint32 // index of the gas global
	depth     uint32 // index of the call depth global
	maxDepth  uint32 // 0: calls are not counted
	shift     uint8  // log2(Scale)
	perPage   int64
	perByte   int64
	perElem   int64

	// Per function.
	nLocals        uint32
	weight         int64 // depth units per call (see FrameSlots)
	spill          int64 // added to each instruction's cost (see CostTable.Spill)
	scratch        []wasmbin.ValType
	scratchIdx     [4]int64 // by scratchSlot; -1 when not yet allocated
	checkEntry     bool
	targeted       []bool      // by block ordinal: some branch targets the label (see analyze)
	ctl            []ctlFrame  // analyze's control stack, kept for its capacity
	open           []openBlock // blocks open at the current instruction
	opened         int         // blocks opened so far
	seg            []byte
	segCost        int64
	kind           segKind
	out            []byte
	scratchTypesOf [4]wasmbin.ValType
	blindOn        bool       // Options.BlindLocals
	blind          []bool     // by local index: every read is consumed blindly
	brMissForm     brMissForm // Options.brMissForm
	intLocals      uint64     // the function's i32 and i64 params and locals
	missGlobals    bool       // Options.MissInGlobals

	// Per function, with Options.MissInGlobals: its br_table sites keep
	// their state in globals siteGlobal(0..sites-1), saved in the locals
	// from saveLocal on around each call.
	inGlobals   bool
	sites       int
	site        int    // the next br_table site
	saveLocal   uint32 // first of the sites' save locals
	siteGlobals int    // most sites of any function in globals: the globals to append

	// Options.Reloop (reloop.go), per function: its dispatch head, the
	// copy being emitted, and how many bytes of code it has copied.
	reloop   bool
	disp     dispatch
	cp       *copyState
	relooped int
}

// maxSiteGlobals bounds the br_table sites of one function whose state
// Options.MissInGlobals keeps in globals: each is saved and restored around
// every call the function makes and reset at its entry, so a function with
// more keeps them in locals.
const maxSiteGlobals = 4

// siteGlobalMinIntLocals: with Options.MissInGlobals, functions with at
// least this many integer params and locals keep their sites' state in
// globals (packed). With the gas counter and the state they hold more
// integer values than the 14 integer registers wazero allocates on amd64;
// below it the state in a register is cheaper than a load and a store per
// jump (the test job's mandel, 12: 1.01× plain wazero with it in a local,
// 1.06× in a global; the example mandelbrot's render, 16: 1.46× and
// 1.23×). Above packedMaxIntLocals, where the state would otherwise take
// two i32 locals, a global too (Go's sha256 block function, 18: the test
// job's sha256 1.10–1.14× against 1.11–1.20×, means 1.12 and 1.17, in
// alternating runs; BENCHMARKS.md, "Jobs executor").
const siteGlobalMinIntLocals = 13

// brMissForm chooses how brTableMiss keeps a site's last two indices.
type brMissForm uint8

const (
	brMissAuto      brMissForm = iota // by the function's integer locals (brTableMiss)
	brMissPacked                      // one i64 local (tests only)
	brMissTwoLocals                   // two i32 locals (tests only)
)

// packedMaxIntLocals: functions with at most this many integer params and
// locals keep a br_table site's two indices packed in one local, those
// with more in two (see brTableMiss). Go's wasm backend declares one i32
// and up to 16 i64 locals (its registers), as many as the function uses.
const packedMaxIntLocals = 16

const (
	slotGas = iota // the function's copy of the gas counter
	slotI32
	slotF32
	slotF64
)

func newRewriter(opts *Options, types []wasmbin.FuncType, funcTypes []uint32, gas, depth uint32) *rewriter {
	return &rewriter{
		costs:          opts.Costs.flatten(),
		types:          types,
		funcTypes:      funcTypes,
		canon:          opts.CanonicalizeNaN,
		blindOn:        opts.BlindLocals,
		brMissForm:     opts.brMissForm,
		missGlobals:    opts.MissInGlobals,
		reloop:         opts.Reloop,
		gas:            gas,
		depth:          depth,
		maxDepth:       opts.MaxCallDepth,
		shift:          uint8(bits.TrailingZeros32(opts.Costs.Scale)),
		perPage:        int64(opts.Costs.MemoryGrowPerPage),
		perByte:        int64(opts.Costs.BulkPerByte),
		perElem:        int64(opts.Costs.TablePerElem),
		scratchTypesOf: [4]wasmbin.ValType{wasmbin.I64, wasmbin.I32, wasmbin.F32, wasmbin.F64},
	}
}

// local returns the index of the scratch local for slot, appending it to the
// function's locals on first use. Existing local indices never change.
func (r *rewriter) local(slot int) uint32 {
	if r.scratchIdx[slot] < 0 {
		r.scratchIdx[slot] = int64(r.nLocals) + int64(len(r.scratch))
		r.scratch = append(r.scratch, r.scratchTypesOf[slot])
	}
	return uint32(r.scratchIdx[slot])
}

// rewrite meters one function body (the expression after the locals). It
// returns the new body and the types of the locals to append.
func (r *rewriter) rewrite(body []byte, nLocals uint32, results int) ([]byte, []wasmbin.ValType, error) {
	r.nLocals = nLocals
	r.scratch = nil
	r.scratchIdx = [4]int64{-1, -1, -1, -1}
	r.out = make([]byte, 0, len(body)+len(body)/2+32)
	r.seg = r.seg[:0]
	r.segCost = 0
	r.kind = segEntry
	r.open = r.open[:0]
	r.opened = 0

	// Pre-scan: does the function call anything? Only then does its entry
	// need a check (see the metering model above). How much stack does its
	// frame take (the weight of its calls in the depth counter)? Which
	// blocks are branch targets?
	info, err := r.analyze(body, nLocals, results)
	if err != nil {
		return nil, nil, err
	}
	r.blind = r.blind[:0]
	if r.canon && r.blindOn {
		r.blind = blindLocals(body, nLocals, r.blind)
	}
	r.checkEntry = info.calls
	r.weight = min(info.weight, int64(r.maxDepth)+1)
	r.spill = 0
	if info.slots > SpillFreeSlots {
		r.spill = r.costs.spill * (info.slots - SpillFreeSlots) / info.slots
	}
	r.local(slotGas) // the first scratch local, whatever the body holds
	r.sites, r.site = info.sites, 0
	r.inGlobals = r.missGlobals && r.sites > 0 && r.sites <= maxSiteGlobals &&
		(r.brMissForm == brMissPacked || (r.brMissForm == brMissAuto && r.intLocals >= siteGlobalMinIntLocals))
	if r.inGlobals {
		r.siteGlobals = max(r.siteGlobals, r.sites)
		r.saveLocal = r.nLocals + uint32(len(r.scratch))
		for range r.sites {
			r.scratch = append(r.scratch, wasmbin.I64)
		}
	}

	r.disp, r.cp, r.relooped = dispatch{}, nil, 0
	for off := 0; ; {
		in, err := wasmbin.ReadInstr(body, off)
		if err != nil {
			return nil, nil, err
		}
		next, done, err := r.step(body, in, nLocals)
		if err != nil {
			return nil, nil, err
		}
		if done {
			if next != len(body) {
				return nil, nil, &wasmbin.Error{Kind: wasmbin.ErrMalformed, Offset: next, Msg: "section size mismatch: bytes after function end"}
			}
			if r.inGlobals {
				// Each call starts with both remembered indices 0,
				// as a site's local would.
				var reset []byte
				for k := range r.sites {
					reset = wasmbin.AppendU32(append(reset, wasmbin.OpI64Const, 0, wasmbin.OpGlobalSet), r.siteGlobal(k))
				}
				r.out = append(reset, r.out...)
			}
			return r.out, r.scratch, nil
		}
		off = next
	}
}

// instrCost is what in costs in this function: its class's cost, plus
// the function's spill surcharge for everything but block structure.
func (r *rewriter) instrCost(in wasmbin.Instr) int64 {
	cost := r.costs.of(in)
	switch in.Op {
	case wasmbin.OpBlock, wasmbin.OpLoop, wasmbin.OpElse, wasmbin.OpEnd, wasmbin.OpNop:
	default:
		cost += r.spill
	}
	return cost
}

// step rewrites one instruction of body (or, where Reloop takes a jump
// back, the jump's three) and returns the offset of the next one; done
// reports the function's final end. While r.cp is set it emits a copy
// (see reloop.go): branches are renumbered for the copy's place, and the
// ends of dispatch blocks the copy leaves out still end segments.
func (r *rewriter) step(body []byte, in wasmbin.Instr, nLocals uint32) (next int, done bool, err error) {
	raw := body[in.Off:in.End]
	next = in.End
	cost := r.instrCost(in)
	if r.cp == nil {
		r.watchHead(in, raw)
	}
	switch in.Op {
	case wasmbin.OpBlock:
		// Entering a block is falling through: the segment goes on.
		r.add(raw, cost)
		r.open = append(r.open, openBlock{in.Op, r.ordinal()})
	case wasmbin.OpIf:
		r.add(raw, cost)
		r.flush(segNormal)
		r.open = append(r.open, openBlock{in.Op, r.ordinal()})
	case wasmbin.OpLoop:
		r.add(raw, cost)
		r.flush(segLoop)
		r.segCost = r.costs.loop
		r.open = append(r.open, openBlock{in.Op, r.ordinal()})
	case wasmbin.OpElse:
		r.add(raw, cost)
		r.flush(segNormal)
	case wasmbin.OpEnd:
		if r.cp != nil && len(r.open) == r.cp.base {
			r.copyOuterEnd(cost)
			break
		}
		if len(r.open) == 0 {
			r.sync()
			r.add(raw, cost)
			r.flush(segNormal)
			return next, true, nil
		}
		b := r.open[len(r.open)-1]
		r.open = r.open[:len(r.open)-1]
		r.add(raw, cost)
		// The end of a block no branch targets is reached only by
		// falling through: the segment goes on (dead stays dead).
		if b.op != wasmbin.OpBlock || b.ord >= len(r.targeted) || r.targeted[b.ord] {
			r.flush(segNormal)
		}
		if r.cp == nil {
			r.noteEnd(b, next)
		}
	case wasmbin.OpBr, wasmbin.OpBrIf:
		depth, exits, ok := r.label(in.Imm)
		if !ok { // regionOK keeps such branches out of copies
			return 0, false, &wasmbin.Error{Kind: wasmbin.ErrMalformed, Offset: in.Off, Msg: "meter: branch out of a relooped copy"}
		}
		r.syncIf(exits)
		r.add(relabel(raw, in, depth), cost)
		if in.Op == wasmbin.OpBr {
			r.flush(segDead)
		}
	case wasmbin.OpBrTable:
		if r.cp != nil { // regionOK keeps br_table out of copies
			return 0, false, &wasmbin.Error{Kind: wasmbin.ErrMalformed, Offset: in.Off, Msg: "meter: br_table in a relooped copy"}
		}
		trackFrom := len(r.seg)
		if r.costs.brMiss != 0 && r.kind != segDead {
			if err := r.brTableMiss(in.Off); err != nil {
				return 0, false, err
			}
		}
		exits := false
		brTableLabels(raw, func(l uint32) { exits = exits || l == uint32(len(r.open)) })
		r.syncIf(exits)
		track := r.seg[trackFrom:]
		r.add(raw, cost)
		r.noteHead(raw, track)
		r.flush(segDead)
	case wasmbin.OpReturn, wasmbin.OpUnreachable:
		r.sync()
		r.add(raw, cost)
		r.flush(segDead)
	case wasmbin.OpLocalGet, wasmbin.OpLocalSet, wasmbin.OpLocalTee:
		if in.Imm >= nLocals {
			return 0, false, &wasmbin.Error{Kind: wasmbin.ErrMalformed, Offset: in.Off, Msg: "invalid: unknown local"}
		}
		r.add(raw, cost)
	case wasmbin.OpGlobalGet, wasmbin.OpGlobalSet:
		if in.Imm >= r.gas {
			return 0, false, &wasmbin.Error{Kind: wasmbin.ErrMalformed, Offset: in.Off, Msg: "invalid: unknown global"}
		}
		r.add(raw, cost)
	case wasmbin.OpCall, wasmbin.OpCallIndirect:
		r.call(raw, cost)
	case wasmbin.OpMemoryGrow:
		r.dynamic(r.perPage)
		r.add(raw, cost)
	case wasmbin.OpPrefixFC:
		switch in.Sub {
		case wasmbin.FCMemoryInit, wasmbin.FCMemoryCopy, wasmbin.FCMemoryFill:
			r.dynamic(r.perByte)
		case wasmbin.FCTableInit, wasmbin.FCTableCopy, wasmbin.FCTableFill, wasmbin.FCTableGrow:
			r.dynamic(r.perElem)
		}
		r.add(raw, cost)
	case wasmbin.OpI32Const:
		if n, ok, err := r.jumpBack(body, in); err != nil || ok {
			return n, false, err
		}
		r.add(raw, cost)
	default:
		r.add(raw, cost)
		if r.canon && nanOps[in.Op] != 0 && !consumedBlindly(body, next, nanOps[in.Op]) && !r.intoBlindLocal(body, next, nanOps[in.Op]) {
			r.canonicalize(in.Op)
		}
	}
	return next, false, nil
}

// ordinal is the index in r.targeted of the block being opened: blocks are
// numbered in order of appearance, as analyze numbered them.
func (r *rewriter) ordinal() int {
	r.opened++
	return r.opened - 1
}

func (r *rewriter) add(raw []byte, cost int64) {
	r.seg = append(r.seg, raw...)
	r.segCost += cost
}

// call emits a call or call_indirect with the counters around it: the gas
// counter goes to the global before (the callee and the host read it there)
// and comes back after (they lowered it); the depth counter is raised and
// checked before and lowered after.
func (r *rewriter) call(raw []byte, cost int64) {
	r.sync()
	if r.maxDepth != 0 {
		t := r.local(slotI32)
		o := wasmbin.AppendU32(append(r.seg, wasmbin.OpGlobalGet), r.depth)
		o = wasmbin.AppendS64(append(o, wasmbin.OpI32Const), r.weight)
		o = append(o, opI32Add)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalTee), t)
		o = wasmbin.AppendU32(append(o, wasmbin.OpGlobalSet), r.depth)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
		o = wasmbin.AppendS64(append(o, wasmbin.OpI32Const), int64(int32(r.maxDepth)))
		r.seg = appendTrapUnless(append(o, opI32LeU))
	}
	if r.inGlobals {
		// The callee may be this function again (recursion), which
		// resets and moves the sites' globals: keep this call's.
		for k := range r.sites {
			r.seg = wasmbin.AppendU32(append(r.seg, wasmbin.OpGlobalGet), r.siteGlobal(k))
			r.seg = wasmbin.AppendU32(append(r.seg, wasmbin.OpLocalSet), r.saveLocal+uint32(k))
		}
	}
	r.add(raw, cost)
	o := r.appendLoad(r.seg)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalSet), r.local(slotGas))
	if r.inGlobals {
		for k := range r.sites {
			o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), r.saveLocal+uint32(k))
			o = wasmbin.AppendU32(append(o, wasmbin.OpGlobalSet), r.siteGlobal(k))
		}
	}
	if r.maxDepth != 0 {
		t := r.local(slotI32)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
		o = wasmbin.AppendS64(append(o, wasmbin.OpI32Const), r.weight)
		o = append(o, opI32Sub)
		o = wasmbin.AppendU32(append(o, wasmbin.OpGlobalSet), r.depth)
	}
	r.seg = o
}

// brTableMiss emits, before a br_table (its index on top of the stack), the
// misprediction charge and the update of the site's $last and $prev (see
// "Indirect jumps that change target" above): $g -= BrTableMiss when the
// index is neither, then $prev = $last and $last = index. It is
// branch-free, so it adds no branch to predict, and the charge stays within
// the segment's loop-free path like any other (no check needed).
//
// The two indices live in one i64 local (packed) when the function has at
// most packedMaxIntLocals integer params and locals, else in two i32
// locals: the same gas either way (TestBrTableMissEmissions), chosen from
// the function alone, so deterministic. In Go's code every jump goes
// through the dispatch br_table, and which form is cheaper depends on the
// function: where registers are left, one value fewer carried around every
// loop saves more than the shifts that pack it cost (the test job's mandel,
// 12 integer params and locals, ran at 1.20× plain wazero with two locals,
// 0.99× packed, 0.86× without the charge); where Go already uses all 16 of its
// integer registers, spilled either way, the shifts cost more (sha256's
// block function, 18: 1.13× with two locals, 1.23× packed, 1.08× without;
// BENCHMARKS.md, "Jobs executor"). Branching on index != $last was slower
// than both (1.33× on mandel): wazero passes the locals an if/else changes
// through its merge. analyze weighs two slots per site in the depth
// counter either way, so call depth limits do not depend on the form.
//
// Where the packed state lives matters as much (Options.MissInGlobals):
// in a local it holds one more register across the function's loops,
// which in Go's float code, already short of registers at its dispatch
// loop, costs more than a load and a store per jump (the example
// mandelbrot job, whose escape loop goes through the dispatch br_table at
// every iteration, 1.46× plain wazero with the state in a local, 1.23×
// in a global; the test job's mandel and sha256 unchanged). The gas
// counter itself stays in a local: kept in a global too, its
// load-subtract-store at every segment makes a dependency chain through
// memory, and every Go job ran slower (mandelbrot 2.1–2.4×, mandel 1.6×,
// sha256 1.2×). Nor does it gain in a vector register: in an f64 local
// (exact below 2^53 units) each charge is a 4-cycle subsd on the
// counter's chain and a constant moved through an integer register, in
// lane 0 of a v128 (i64x2.sub) a constant load, and both spend more
// instructions per iteration than the one integer register they free
// saves (example mandelbrot 1.35–1.55× and 1.30–1.39× against
// 1.22–1.38× in the same runs; BENCHMARKS.md, "Jobs executor", stop 25).
// In a global the state is packed in every function, those above
// packedMaxIntLocals included: there the shifts cost nothing a register
// would save, and two locals held across Go's sha256 block function cost
// it ≈ 0.05 of its run time.
func (r *rewriter) brTableMiss(off int) error {
	packed := r.packed() || r.inGlobals // in a global the state is packed
	site := r.site
	r.site++
	t := r.local(slotI32)
	g := r.local(slotGas)
	s := int64(r.nLocals) + int64(len(r.scratch))
	if s+1 > math.MaxUint32 {
		return &wasmbin.Error{Kind: wasmbin.ErrMalformed, Offset: off, Msg: "too many locals"}
	}
	if !packed {
		r.scratch = append(r.scratch, wasmbin.I32, wasmbin.I32)
		last, prev := uint32(s), uint32(s+1)
		o := wasmbin.AppendU32(append(r.seg, wasmbin.OpLocalTee), t)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), g)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), last)
		o = append(o, opI32Ne)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), prev)
		o = append(o, opI32Ne, opI32And, wasmbin.OpI64ExtendI32U)
		o = r.appendTimesBrMiss(o)
		o = append(o, wasmbin.OpI64Sub)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalSet), g)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), last)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalSet), prev)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
		r.seg = wasmbin.AppendU32(append(o, wasmbin.OpLocalSet), last)
		return nil
	}
	get, set, si := byte(wasmbin.OpLocalGet), byte(wasmbin.OpLocalSet), uint32(s)
	if r.inGlobals {
		get, set, si = wasmbin.OpGlobalGet, wasmbin.OpGlobalSet, r.siteGlobal(site)
	} else {
		r.scratch = append(r.scratch, wasmbin.I64)
	}
	o := wasmbin.AppendU32(append(r.seg, wasmbin.OpLocalTee), t)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), g)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
	o = wasmbin.AppendU32(append(o, get), si)
	o = append(o, opI32WrapI64, opI32Ne)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
	o = wasmbin.AppendU32(append(o, get), si)
	o = append(o, wasmbin.OpI64Const, 32, opI64ShrU, opI32WrapI64, opI32Ne, opI32And, wasmbin.OpI64ExtendI32U)
	o = r.appendTimesBrMiss(o)
	o = append(o, wasmbin.OpI64Sub)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalSet), g)
	o = wasmbin.AppendU32(append(o, get), si)
	o = append(o, wasmbin.OpI64Const, 32, opI64Shl)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
	o = append(o, wasmbin.OpI64ExtendI32U, opI64Or)
	r.seg = wasmbin.AppendU32(append(o, set), si)
	return nil
}

// packed reports whether the function keeps each br_table site's last two
// indices packed in one i64 (see brTableMiss).
func (r *rewriter) packed() bool {
	if r.brMissForm != brMissAuto {
		return r.brMissForm == brMissPacked
	}
	return r.intLocals <= packedMaxIntLocals
}

// siteGlobal is the index of the global of the function's k-th br_table
// site (Options.MissInGlobals).
func (r *rewriter) siteGlobal(k int) uint32 {
	return r.depth + 1 + uint32(k)
}

// appendTimesBrMiss multiplies the i64 0 or 1 on top of the stack by
// BrTableMiss (a shift when it is a power of two).
func (r *rewriter) appendTimesBrMiss(o []byte) []byte {
	if c := r.costs.brMiss; c&(c-1) == 0 {
		return append(o, wasmbin.OpI64Const, byte(bits.TrailingZeros64(uint64(c))), opI64Shl)
	}
	o = wasmbin.AppendS64(append(o, wasmbin.OpI64Const), r.costs.brMiss)
	return append(o, wasmbin.OpI64Mul)
}

// sync appends to the segment a store of the gas counter to the global.
func (r *rewriter) sync() { r.syncIf(true) }

func (r *rewriter) syncIf(cond bool) {
	if cond {
		r.seg = r.appendStore(r.seg)
	}
}

// appendStore appends gas = $g >> shift: the counter in whole gas, the
// fraction of a gas spent since the last load rounded up (an arithmetic
// shift rounds towards −∞, so a negative $g stays negative).
func (r *rewriter) appendStore(o []byte) []byte {
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), r.local(slotGas))
	return r.appendToGlobal(o)
}

// appendToGlobal stores the units on the stack to the gas global.
func (r *rewriter) appendToGlobal(o []byte) []byte {
	if r.shift != 0 {
		o = append(o, wasmbin.OpI64Const, r.shift, opI64ShrS)
	}
	return wasmbin.AppendU32(append(o, wasmbin.OpGlobalSet), r.gas)
}

// appendLoad pushes the gas global in units: gas << shift (gas ≤ MaxGas,
// so it cannot overflow).
func (r *rewriter) appendLoad(o []byte) []byte {
	o = wasmbin.AppendU32(append(o, wasmbin.OpGlobalGet), r.gas)
	if r.shift != 0 {
		o = append(o, wasmbin.OpI64Const, r.shift, opI64Shl)
	}
	return o
}

// flush emits the charge for the current segment followed by its code, and
// starts a segment of the given kind.
func (r *rewriter) flush(next segKind) {
	switch r.kind {
	case segDead:
	case segLoop:
		r.emitCheck(r.segCost, false)
	case segEntry:
		if r.checkEntry {
			r.emitCheck(r.segCost, true)
		} else {
			r.out = r.appendCharge(r.out, r.segCost, true, false)
		}
	default:
		r.out = r.appendCharge(r.out, r.segCost, false, false)
	}
	r.out = append(r.out, r.seg...)
	r.seg = r.seg[:0]
	r.segCost = 0
	r.kind = next
}

// appendCharge appends $g -= c (units), where $g is loaded from the global
// at the function's entry, and also stores the result to the global if store
// is set.
func (r *rewriter) appendCharge(o []byte, c int64, entry, store bool) []byte {
	g := r.local(slotGas)
	if c == 0 && !entry {
		return o
	}
	if entry {
		o = r.appendLoad(o)
	} else {
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), g)
	}
	if c != 0 {
		o = wasmbin.AppendS64(append(o, wasmbin.OpI64Const), c)
		o = append(o, wasmbin.OpI64Sub)
	}
	if store && c != 0 {
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalTee), g)
		return r.appendToGlobal(o)
	}
	return wasmbin.AppendU32(append(o, wasmbin.OpLocalSet), g)
}

// emitCheck: $g -= c; if $g < 0 { gas = $g; unreachable }. A loop's check
// always stores the counter (see the metering model); an entry check stores
// it only on the way to the trap.
func (r *rewriter) emitCheck(c int64, entry bool) {
	store := !entry
	o := r.appendCharge(r.out, c, entry, store)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), r.local(slotGas))
	o = append(o, wasmbin.OpI64Const, 0, opI64GeS)
	if store {
		r.out = appendTrapUnless(o)
		return
	}
	o = append(o, wasmbin.OpIf, 0x40, wasmbin.OpElse)
	o = r.appendStore(o)
	r.out = append(o, wasmbin.OpUnreachable, wasmbin.OpEnd)
}

// dynamic charges perUnit × the i32 operand on top of the stack (in units;
// n × perUnit < 2^56 cannot overflow), leaving the operand in place, stores
// the counter and checks it, so an expensive operation never starts without
// the gas to pay for it.
func (r *rewriter) dynamic(perUnit int64) {
	if perUnit == 0 {
		return
	}
	s := r.local(slotI32)
	g := r.local(slotGas)
	o := r.seg
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalTee), s)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), g)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), s)
	o = append(o, wasmbin.OpI64ExtendI32U)
	o = wasmbin.AppendS64(append(o, wasmbin.OpI64Const), perUnit)
	o = append(o, wasmbin.OpI64Mul, wasmbin.OpI64Sub)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalTee), g)
	o = r.appendToGlobal(o)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), g)
	r.seg = appendTrapUnless(append(o, wasmbin.OpI64Const, 0, opI64GeS))
}

// appendTrapUnless appends "if (condition) {} else { unreachable }": that
// way round, wazero's compiler lays the trap out of the hot path, which
// then falls through instead of jumping over the trap.
func appendTrapUnless(o []byte) []byte {
	return append(o, wasmbin.OpIf, 0x40, wasmbin.OpElse, wasmbin.OpUnreachable, wasmbin.OpEnd)
}

// nanOps marks the float instructions whose NaN results have an
// implementation-defined payload (and sign): arithmetic, sqrt, min/max,
// rounding, demote and promote. Bit operations (abs, neg, copysign,
// reinterpret), loads and constants propagate payloads exactly and are left
// alone.
var nanOps = func() (t [256]uint8) {
	for _, op := range []byte{0x8d, 0x8e, 0x8f, 0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0xb6} {
		t[op] = 32
	}
	for _, op := range []byte{0x9b, 0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xbb} {
		t[op] = 64
	}
	return t
}()

// consumedBlindly reports whether the float just produced (a possibly
// non-canonical NaN of the given width, on top of the stack) is certain to be
// consumed by the instruction at off — directly, or after one pure push when
// that instruction is binary — by an instruction whose result does not depend
// on the NaN's payload or sign: NaN-producing arithmetic (whose own result is
// canonicalized in turn), comparisons, and truncations to integer. The result
// is then bit-identical to canonicalizing first, without the extra code.
// copysign, neg, abs, stores, reinterpret, local.set/tee and everything else
// observe the bits and are not in the lists.
func consumedBlindly(body []byte, off int, width uint8) bool {
	next, err := wasmbin.ReadInstr(body, off)
	if err != nil {
		return false
	}
	if blindUnary(next, width) || blindBinary(next.Op, width) {
		return true
	}
	switch next.Op {
	case wasmbin.OpLocalGet, wasmbin.OpGlobalGet, wasmbin.OpF32Const, wasmbin.OpF64Const:
		after, err := wasmbin.ReadInstr(body, next.End)
		return err == nil && blindBinary(after.Op, width)
	}
	return false
}

// blindBinary: binary ops of the given width that consume two floats and
// either produce a canonicalized float or compare.
func blindBinary(op byte, width uint8) bool {
	if width == 32 {
		return (op >= 0x5b && op <= 0x60) || (op >= 0x92 && op <= 0x97)
	}
	return (op >= 0x61 && op <= 0x66) || (op >= 0xa0 && op <= 0xa5)
}

// blindUnary: unary consumers of a float of the given width that are
// payload-blind: rounding, sqrt, demote/promote and truncation to integer.
func blindUnary(in wasmbin.Instr, width uint8) bool {
	op := in.Op
	if in.Op == wasmbin.OpPrefixFC {
		// trunc_sat: 0,1 and 4,5 read f32; 2,3 and 6,7 read f64.
		return in.Sub < 8 && ((in.Sub/2)%2 == 0) == (width == 32)
	}
	if width == 32 {
		return (op >= 0x8d && op <= 0x91) || op == 0xa8 || op == 0xa9 || op == 0xae || op == 0xaf || op == 0xbb
	}
	return (op >= 0x9b && op <= 0x9f) || op == 0xaa || op == 0xab || op == 0xb0 || op == 0xb1 || op == 0xb6
}

// blindLocals marks, for each of the function's nLocals locals, whether
// every read of it (local.get, and the value local.tee leaves) is consumed
// blindly. It reuses b.
func blindLocals(body []byte, nLocals uint32, b []bool) []bool {
	for i := uint32(0); i < nLocals; i++ {
		b = append(b, true)
	}
	for off := 0; off < len(body); {
		in, err := wasmbin.ReadInstr(body, off)
		if err != nil { // the rewrite reports it; nothing is blind
			clear(b)
			return b
		}
		off = in.End
		if (in.Op == wasmbin.OpLocalGet || in.Op == wasmbin.OpLocalTee) && in.Imm < nLocals &&
			!consumedBlindly(body, off, 32) && !consumedBlindly(body, off, 64) {
			// A valid module cannot feed a local of one width to an
			// instruction of the other, so either width will do.
			b[in.Imm] = false
		}
	}
	return b
}

// intoBlindLocal reports whether the float just produced (of the given
// width, on top of the stack) goes by the instruction at off into a blind
// local and nowhere else, or nowhere but blind consumers: local.set of a
// blind local, or local.tee of one followed by a blind consumer.
func (r *rewriter) intoBlindLocal(body []byte, off int, width uint8) bool {
	if len(r.blind) == 0 {
		return false
	}
	next, err := wasmbin.ReadInstr(body, off)
	if err != nil || (next.Op != wasmbin.OpLocalSet && next.Op != wasmbin.OpLocalTee) ||
		int(next.Imm) >= len(r.blind) || !r.blind[next.Imm] {
		return false
	}
	return next.Op == wasmbin.OpLocalSet || consumedBlindly(body, next.End, width)
}

// canonicalize appends x → (x == x ? x : canonical NaN) after op if op may
// produce a NaN, as a branch: NaNs are rare, so the branch is predicted
// and costs less than select, which wazero lowers to a compare plus a
// conditional move between float and integer registers. Blocks cannot take
// parameters in 1.0, so the value goes through a scratch local.
func (r *rewriter) canonicalize(op byte) {
	switch nanOps[op] {
	case 32:
		t := r.local(slotF32)
		o := wasmbin.AppendU32(append(r.seg, wasmbin.OpLocalSet), t)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
		o = append(o, wasmbin.OpF32Eq, wasmbin.OpIf, byte(wasmbin.F32))
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
		o = append(o, wasmbin.OpElse, wasmbin.OpF32Const, 0x00, 0x00, 0xc0, 0x7f) // 0x7fc00000
		r.seg = append(o, wasmbin.OpEnd)
	case 64:
		t := r.local(slotF64)
		o := wasmbin.AppendU32(append(r.seg, wasmbin.OpLocalSet), t)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
		o = append(o, wasmbin.OpF64Eq, wasmbin.OpIf, byte(wasmbin.F64))
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
		o = append(o, wasmbin.OpElse, wasmbin.OpF64Const, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f) // 0x7ff8000000000000
		r.seg = append(o, wasmbin.OpEnd)
	}
}
