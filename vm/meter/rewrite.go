package meter

import (
	"math/bits"

	"github.com/sos-kernel/sos/vm/internal/wasmbin"
)

// maxScratch is the most locals the rewriter appends to one function:
// i64 (gas check), i32 (dynamic size and call depth), f32 and f64 (NaN
// canonicalization).
const maxScratch = 4

// Opcodes the rewriter emits that wasmbin does not name.
const (
	opI32Add  byte = 0x6a
	opI32Sub  byte = 0x6b
	opI32GtU  byte = 0x4b
	opI64Add  byte = 0x7c
	opI64ShrU byte = 0x88
)

// Metering model
//
// A function body is split into segments. A segment starts at the function
// entry and after block, loop, if, else, end, br, br_table, return and
// unreachable, i.e. at every instruction a branch can land on. Neither calls
// nor br_if end a segment: the callee meters itself, and the code after a
// br_if is charged together with the code before it, even when the branch is
// taken. That over-charge is deterministic and keeps the number of charges
// low in Go's branch- and call-dense code. The whole cost of a segment is
// subtracted from the gas global at the segment's start, so the gas a call
// consumes is exactly the sum of the costs of the segments it entered plus
// the dynamic charges.
//
// Subtracting is not checking. A check (gas < 0 ⇒ unreachable) is emitted
// only where execution could otherwise run unboundedly or expensively:
//   - at the start of every loop body (each iteration passes it),
//   - at the entry of functions that contain a call (recursion),
//   - after every dynamic charge (memory.grow, bulk memory and table ops).
// Between two checks a function executes a bounded, loop-free path, so gas
// overshoots zero by at most one function's worth of segments and cannot wrap.
// The host must treat gas < 0 after a call as out of gas, and host functions
// must refuse to run when it is already negative.
//
// Segments that begin in unreachable code (after br, br_table, return,
// unreachable) are not charged: they never execute.
//
// Charges are in gas, costs in 1/Scale gas: a segment is charged
// ceil(sum of its costs / Scale), a dynamic charge ceil(operand × unit /
// Scale).
//
// Call depth
//
// The depth of nested Wasm calls is counted in a second appended global, an
// i32, at every call and call_indirect site:
//
//	global.get $depth; i32.const W; i32.add; local.tee $t; global.set $depth
//	local.get $t; i32.const MaxCallDepth; i32.gt_u; if unreachable end
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
// the caller knows its own frame. The trap leaves the counter above
// MaxCallDepth and the gas counter as it was, so the host can tell it from
// running out of gas. $t is
// the i32 scratch local: nothing else uses it between the increment and the
// decrement (arguments are evaluated before the increment, and the callee has
// its own locals), and since calls are balanced the counter equals $t again
// when the callee returns.

type segKind uint8

const (
	segNormal segKind = iota
	segEntry          // function entry: checked if the function calls
	segLoop           // loop body: always checked
	segDead           // after an unconditional branch: never executes
)

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
	scratch        []wasmbin.ValType
	scratchIdx     [4]int64 // by scratchSlot; -1 when not yet allocated
	checkEntry     bool
	seg            []byte
	segCost        int64
	kind           segKind
	out            []byte
	scratchTypesOf [4]wasmbin.ValType
}

const (
	slotI64 = iota
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

	// Pre-scan: does the function call anything? Only then does its entry
	// need a check (see the metering model above). How much stack does its
	// frame take (the weight of its calls in the depth counter)?
	info, err := r.analyze(body, nLocals, results)
	if err != nil {
		return nil, nil, err
	}
	r.checkEntry = info.calls
	r.weight = min(info.weight, int64(r.maxDepth)+1)

	depth := 0
	for off := 0; ; {
		in, err := wasmbin.ReadInstr(body, off)
		if err != nil {
			return nil, nil, err
		}
		raw := body[in.Off:in.End]
		off = in.End
		cost := r.costs.of(in)
		switch in.Op {
		case wasmbin.OpBlock, wasmbin.OpIf:
			r.add(raw, cost)
			r.flush(segNormal)
			depth++
		case wasmbin.OpLoop:
			r.add(raw, cost)
			r.flush(segLoop)
			depth++
		case wasmbin.OpElse:
			r.add(raw, cost)
			r.flush(segNormal)
		case wasmbin.OpEnd:
			r.add(raw, cost)
			if depth == 0 {
				r.flush(segNormal)
				if off != len(body) {
					return nil, nil, &wasmbin.Error{Kind: wasmbin.ErrMalformed, Offset: off, Msg: "section size mismatch: bytes after function end"}
				}
				return r.out, r.scratch, nil
			}
			depth--
			r.flush(segNormal)
		case wasmbin.OpBr, wasmbin.OpBrTable, wasmbin.OpReturn, wasmbin.OpUnreachable:
			r.add(raw, cost)
			r.flush(segDead)
		case wasmbin.OpLocalGet, wasmbin.OpLocalSet, wasmbin.OpLocalTee:
			if in.Imm >= nLocals {
				return nil, nil, &wasmbin.Error{Kind: wasmbin.ErrMalformed, Offset: in.Off, Msg: "invalid: unknown local"}
			}
			r.add(raw, cost)
		case wasmbin.OpGlobalGet, wasmbin.OpGlobalSet:
			if in.Imm >= r.gas {
				return nil, nil, &wasmbin.Error{Kind: wasmbin.ErrMalformed, Offset: in.Off, Msg: "invalid: unknown global"}
			}
			r.add(raw, cost)
		case wasmbin.OpCall, wasmbin.OpCallIndirect:
			if r.maxDepth == 0 {
				r.add(raw, cost)
				break
			}
			t := r.local(slotI32)
			o := wasmbin.AppendU32(append(r.seg, wasmbin.OpGlobalGet), r.depth)
			o = wasmbin.AppendS64(append(o, wasmbin.OpI32Const), r.weight)
			o = append(o, opI32Add)
			o = wasmbin.AppendU32(append(o, wasmbin.OpLocalTee), t)
			o = wasmbin.AppendU32(append(o, wasmbin.OpGlobalSet), r.depth)
			o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
			o = wasmbin.AppendS64(append(o, wasmbin.OpI32Const), int64(int32(r.maxDepth)))
			o = append(o, opI32GtU, wasmbin.OpIf, 0x40, wasmbin.OpUnreachable, wasmbin.OpEnd)
			r.seg = o
			r.add(raw, cost)
			o = wasmbin.AppendU32(append(r.seg, wasmbin.OpLocalGet), t)
			o = wasmbin.AppendS64(append(o, wasmbin.OpI32Const), r.weight)
			o = append(o, opI32Sub)
			r.seg = wasmbin.AppendU32(append(o, wasmbin.OpGlobalSet), r.depth)
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
		default:
			r.add(raw, cost)
			if r.canon && nanOps[in.Op] != 0 && !consumedBlindly(body, off, nanOps[in.Op]) {
				r.canonicalize(in.Op)
			}
		}
	}
}

func (r *rewriter) add(raw []byte, cost int64) {
	r.seg = append(r.seg, raw...)
	r.segCost += cost
}

// flush emits the charge for the current segment followed by its code, and
// starts a segment of the given kind.
func (r *rewriter) flush(next segKind) {
	switch r.kind {
	case segDead:
	case segLoop:
		r.emitCheck(r.segCost)
	case segEntry:
		if r.checkEntry {
			r.emitCheck(r.segCost)
		} else {
			r.emitCharge(r.segCost)
		}
	default:
		r.emitCharge(r.segCost)
	}
	r.out = append(r.out, r.seg...)
	r.seg = r.seg[:0]
	r.segCost = 0
	r.kind = next
}

// gasOf converts a cost in units to gas, rounding up.
func (r *rewriter) gasOf(units int64) int64 {
	return (units + 1<<r.shift - 1) >> r.shift
}

// emitCharge: gas -= c units (rounded up to whole gas).
func (r *rewriter) emitCharge(c int64) {
	c = r.gasOf(c)
	if c == 0 {
		return
	}
	o := r.out
	o = wasmbin.AppendU32(append(o, wasmbin.OpGlobalGet), r.gas)
	o = wasmbin.AppendS64(append(o, wasmbin.OpI64Const), c)
	o = append(o, wasmbin.OpI64Sub)
	o = wasmbin.AppendU32(append(o, wasmbin.OpGlobalSet), r.gas)
	r.out = o
}

// emitCheck: gas -= c; if gas < 0 { unreachable }. The new value is kept in
// a scratch local rather than re-read from the global.
func (r *rewriter) emitCheck(c int64) {
	c = r.gasOf(c)
	o := r.out
	o = wasmbin.AppendU32(append(o, wasmbin.OpGlobalGet), r.gas)
	if c != 0 {
		t := r.local(slotI64)
		o = wasmbin.AppendS64(append(o, wasmbin.OpI64Const), c)
		o = append(o, wasmbin.OpI64Sub)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalTee), t)
		o = wasmbin.AppendU32(append(o, wasmbin.OpGlobalSet), r.gas)
		o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
	}
	r.out = appendTrapIfNegative(o)
}

func appendTrapIfNegative(o []byte) []byte {
	return append(o, wasmbin.OpI64Const, 0, wasmbin.OpI64LtS,
		wasmbin.OpIf, 0x40, wasmbin.OpUnreachable, wasmbin.OpEnd)
}

// dynamic charges perUnit × the i32 operand on top of the stack (in units,
// rounded up to whole gas), leaving the operand in place, and checks, so an
// expensive operation never starts without the gas to pay for it.
func (r *rewriter) dynamic(perUnit int64) {
	if perUnit == 0 {
		return
	}
	s := r.local(slotI32)
	t := r.local(slotI64)
	o := r.seg
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalTee), s)
	o = wasmbin.AppendU32(append(o, wasmbin.OpGlobalGet), r.gas)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), s)
	o = append(o, wasmbin.OpI64ExtendI32U)
	if scale := int64(1) << r.shift; perUnit%scale == 0 {
		o = wasmbin.AppendS64(append(o, wasmbin.OpI64Const), perUnit/scale)
		o = append(o, wasmbin.OpI64Mul)
	} else {
		// ceil(n × perUnit / scale); n × perUnit < 2^56, no overflow.
		o = wasmbin.AppendS64(append(o, wasmbin.OpI64Const), perUnit)
		o = append(o, wasmbin.OpI64Mul)
		o = wasmbin.AppendS64(append(o, wasmbin.OpI64Const), scale-1)
		o = append(o, opI64Add)
		o = wasmbin.AppendS64(append(o, wasmbin.OpI64Const), int64(r.shift))
		o = append(o, opI64ShrU)
	}
	o = append(o, wasmbin.OpI64Sub)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalTee), t)
	o = wasmbin.AppendU32(append(o, wasmbin.OpGlobalSet), r.gas)
	o = wasmbin.AppendU32(append(o, wasmbin.OpLocalGet), t)
	r.seg = appendTrapIfNegative(o)
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
