package meter

import "github.com/sos-kernel/sos/vm/internal/wasmbin"

// FrameSlots is how many value slots (locals plus operand stack) one unit
// of call depth stands for. A function whose locals and deepest operand
// stack fit in FrameSlots weighs 1 (every function of Go's wasip1 output
// does); a bigger one weighs 1 + slots/FrameSlots, so that the depth
// counter bounds the engine's native stack, not only the number of calls.
// Without the weight a single function keeping 20,000 values live across a
// recursive call overflows wazero's 400 MB stack after ≈540 calls, before
// a plain call count of 1024 would stop it, and where it stops would again
// depend on the engine.
const FrameSlots = 256

// SpillFreeSlots is how many slots of a frame are priced as if they lived
// in registers: functions with more pay CostTable.Spill in proportion to
// the excess (rounded down, so a few slots more cost nothing). amd64 has
// 16 integer registers; nine in ten functions of Go's wasip1 output have
// at most 14 slots, the largest 25.
const SpillFreeSlots = 16

// frameInfo is what the rewriter needs to know about a function before
// rewriting it.
type frameInfo struct {
	calls  bool  // it contains call or call_indirect
	slots  int64 // locals plus the deepest operand stack
	weight int64 // depth units added at each of its call sites
	sites  int   // br_table sites (reachable or not) when BrTableMiss is charged
}

// ctlFrame is an open block while scanning a body.
type ctlFrame struct {
	base            int64 // operand height below the block's parameters
	params, results int64
	ord             int // index in rewriter.targeted; -1 for the function
}

// analyze scans body once: whether it calls, and an upper bound of its
// frame size in slots (nLocals plus the deepest operand stack). The bound
// is exact for valid code; on invalid code (which wazero rejects after
// instrumentation) it is merely some deterministic number. It also records
// in r.targeted, for every block, loop and if in order of appearance,
// whether some branch targets its label.
func (r *rewriter) analyze(body []byte, nLocals uint32, results int) (frameInfo, error) {
	r.targeted = r.targeted[:0]
	var (
		info  frameInfo
		h     int64 // current operand stack height
		maxH  int64
		extra int64 // locals the rewriter will add per br_table
		ctl   = append(r.ctl[:0], ctlFrame{results: int64(results), ord: -1})
		arity = func(ti uint32) (int64, int64) {
			if int(ti) < len(r.types) {
				t := r.types[ti]
				return int64(len(t.Params)), int64(len(t.Results))
			}
			return 0, 0
		}
	)
	pop := func(n int64) {
		h -= n
		if b := ctl[len(ctl)-1].base; h < b {
			h = b // underflow: unreachable (stack-polymorphic) or invalid code
		}
	}
	push := func(n int64) {
		h += n
		maxH = max(maxH, h)
	}
	// polymorphic: the rest of the block is unreachable.
	polymorphic := func() { h = ctl[len(ctl)-1].base }
	// target marks the block that label l (relative to the innermost) names;
	// branches to the function and invalid labels mark nothing.
	target := func(l uint32) {
		if i := int64(len(ctl)) - 1 - int64(l); i > 0 {
			r.targeted[ctl[i].ord] = true
		}
	}
	defer func() { r.ctl = ctl[:0] }()
	for off := 0; off < len(body); {
		in, err := wasmbin.ReadInstr(body, off)
		if err != nil {
			return info, err
		}
		off = in.End
		op := in.Op
		switch {
		case op == wasmbin.OpBlock || op == wasmbin.OpLoop || op == wasmbin.OpIf:
			if op == wasmbin.OpIf {
				pop(1)
			}
			p, res := r.blockArity(body[in.Off+1 : in.End])
			pop(p)
			ctl = append(ctl, ctlFrame{base: h, params: p, results: res, ord: len(r.targeted)})
			r.targeted = append(r.targeted, false)
			push(p)
		case op == wasmbin.OpElse:
			f := ctl[len(ctl)-1]
			h = f.base
			push(f.params)
		case op == wasmbin.OpEnd:
			f := ctl[len(ctl)-1]
			h = f.base
			push(f.results)
			if len(ctl) == 1 {
				info.slots = int64(nLocals) + maxH
				// The rewriter's locals per br_table (see brTableMiss:
				// one i64 or two i32) are frame too: they weigh in the
				// depth counter, which bounds the native stack, but are
				// not priced as spills (touched once per jump). They
				// count two slots in either form, so depth limits do
				// not depend on the form.
				info.weight = 1 + (info.slots+extra)/FrameSlots
				return info, nil
			}
			ctl = ctl[:len(ctl)-1]
		case op == wasmbin.OpUnreachable || op == wasmbin.OpReturn:
			polymorphic()
		case op == wasmbin.OpBr:
			target(in.Imm)
			polymorphic()
		case op == wasmbin.OpBrTable:
			if r.costs.brMiss != 0 {
				extra += 2
				info.sites++
			}
			brTableLabels(body[in.Off:in.End], target)
			pop(1)
			polymorphic()
		case op == wasmbin.OpBrIf:
			target(in.Imm)
			pop(1)
		case op == wasmbin.OpDrop || op == wasmbin.OpLocalSet ||
			op == wasmbin.OpGlobalSet:
			pop(1)
		case op == wasmbin.OpCall || op == wasmbin.OpCallIndirect:
			info.calls = true
			ti := uint32(len(r.types)) // unknown: arity 0
			if op == wasmbin.OpCall {
				if int(in.Imm) < len(r.funcTypes) {
					ti = r.funcTypes[in.Imm]
				}
			} else {
				pop(1)
				ti = in.Imm
			}
			p, res := arity(ti)
			pop(p)
			push(res)
		case op == wasmbin.OpSelect || op == wasmbin.OpSelectT:
			pop(3)
			push(1)
		case op >= 0x36 && op <= 0x3e, op == wasmbin.OpTableSet: // stores
			pop(2)
		case op == wasmbin.OpLocalGet || op == wasmbin.OpGlobalGet || op == wasmbin.OpMemorySize ||
			(op >= wasmbin.OpI32Const && op <= wasmbin.OpF64Const) ||
			op == wasmbin.OpRefNull || op == wasmbin.OpRefFunc:
			push(1)
		case op == wasmbin.OpPrefixFC:
			switch in.Sub {
			case wasmbin.FCDataDrop, wasmbin.FCElemDrop:
			case wasmbin.FCTableSize:
				push(1)
			case wasmbin.FCTableGrow:
				pop(2)
				push(1)
			case wasmbin.FCMemoryInit, wasmbin.FCMemoryCopy, wasmbin.FCMemoryFill,
				wasmbin.FCTableInit, wasmbin.FCTableCopy, wasmbin.FCTableFill:
				pop(3)
			default: // saturating truncation
				pop(1)
				push(1)
			}
		case binaryOp(op):
			pop(2)
			push(1)
		default:
			// local.tee, table.get, loads, memory.grow, unary numeric
			// ops, conversions, ref.is_null, nop: at most one in, one out.
			if op != wasmbin.OpNop {
				pop(1)
				push(1)
			}
		}
	}
	return info, &wasmbin.Error{Kind: wasmbin.ErrMalformed, Offset: len(body), Msg: "unexpected end of function body"}
}

// brTableLabels calls f with every label of a br_table instruction (raw is
// the whole instruction, already checked by wasmbin.ReadInstr), the default
// last.
func brTableLabels(raw []byte, f func(uint32)) {
	p := 1
	next := func() uint32 {
		var v uint32
		for s := 0; ; s += 7 {
			c := raw[p]
			p++
			v |= uint32(c&0x7f) << s
			if c&0x80 == 0 {
				return v
			}
		}
	}
	for n := uint64(next()); n > 0; n-- {
		f(next())
	}
	f(next())
}

// binaryOp reports numeric instructions that take two operands and push one:
// comparisons other than eqz, and binary arithmetic.
func binaryOp(op byte) bool {
	switch {
	case op >= 0x46 && op <= 0x4f, op >= 0x51 && op <= 0x66: // comparisons
		return true
	case op >= 0x6a && op <= 0x78, op >= 0x7c && op <= 0x8a: // integer binary
		return true
	case op >= 0x92 && op <= 0x98, op >= 0xa0 && op <= 0xa6: // float binary
		return true
	}
	return false
}

// blockArity decodes a block type (the immediate of block, loop or if).
func (r *rewriter) blockArity(imm []byte) (params, results int64) {
	if len(imm) == 0 || imm[0] == 0x40 {
		return 0, 0
	}
	if imm[0]&0xc0 == 0x40 { // a value type
		return 0, 1
	}
	// A non-negative s33 type index; wasmbin has checked the encoding.
	var ti uint64
	for i, c := range imm {
		ti |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 || i == 4 {
			break
		}
	}
	if ti < uint64(len(r.types)) {
		t := r.types[ti]
		return int64(len(t.Params)), int64(len(t.Results))
	}
	return 0, 0
}
