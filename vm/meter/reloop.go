package meter

import (
	"slices"

	"github.com/sos-kernel/sos/vm/internal/wasmbin"
)

// Relooping Go's dispatch loops (Options.Reloop)
//
// Go's wasm backend compiles a function that jumps as
//
//	loop $dispatch
//	  block  block ... block        (one per jump target and resume point)
//	    local.get $pc  br_table 0 1 2 ...
//	  end  <code 0>
//	  end  <code 1>
//	  ...
//	end
//
// and every jump that is not a fall-through as i32.const K; local.set $pc;
// br $dispatch, conditional ones inside if ... end. So each iteration of a
// Go loop goes back through the dispatch head: an indirect jump through the
// br_table, and a merge of every jump of the function, where the compiler
// stores the loop's live values to the stack (BENCHMARKS.md, "Jobs
// executor"). Where a jump goes back to a block K whose code the function
// has already passed, Reloop also emits, at the jump, a copy of the code
// from block K to the jump inside a loop of its own:
//
//	i32.const K; local.set $pc        (as before)
//	<the dispatch head's charge, check and br_table tracking, for index K>
//	loop $L
//	  <code K ... up to the jump, blocks' ends left out>
//	  i32.const K; local.set $pc
//	  <the dispatch head's charge, check and tracking, for index K>
//	  br $L
//	end
//
// The copy is the same code, metered by the same rules as the original
// (the ends it leaves out still end segments, branches are renumbered for
// their new depth), and where the original jump went through the dispatch
// head the copy pays what the head charges: its segment's cost with the
// head's check and write-back, and the br_table's tracking run on the
// constant K, on the same state. So gas, traps, out-of-gas points, the gas
// global after a trap and results are those of the code without it, on
// every path: jumps out of the copy go through the dispatch head as the
// original's do and land in the original code, and a copy whose jump back
// sat in an if falls out of its loop where the original fell out of the if.
//
// A jump is taken only if its shape is Go's and the copy can be exact:
// the function has such a head (a loop of empty type whose body starts
// with empty blocks, local.get and br_table, its first one), the jump is
// the three instructions above in reachable code followed by an end,
// alone at the top of the code or first in an if of empty type, block K's
// code lies before it, and the code in between has no br_table, no else
// or end of a construct it did not open other than the dispatch blocks'
// ends, and no branch to a block that ends before the jump. A copy is at
// most maxReloopRegion bytes, and a function's copies at most the size of
// its body.

// maxReloopRegion bounds the code one copy repeats: a hot Go loop is a
// few blocks (the example mandelbrot's escape loop is three), and a longer
// stretch gains little from losing one dispatch per iteration while it
// costs its size again in compiled code.
const maxReloopRegion = 8 << 10

// dispatch is what the rewriter learned of a function's dispatch head.
type dispatch struct {
	// While the head is being read.
	pending bool
	hasPC   bool
	nBlocks int

	found    bool
	loopOrd  int    // ordinal of the dispatch loop
	pc       uint32 // the local the br_table reads
	headCost int64  // the cost of the head's segment, Loop included
	track    []byte // the br_table's tracking (index on the stack, left there), and its write-back if any
	stack    []openBlock
	loopPos  int      // position of the loop in stack
	labels   []uint32 // the br_table's labels, the default last
	start    []int    // by stack position: where the code after that block's end starts (0 before it)
	opened   []int    // by stack position: r.opened there
}

// copyState is the copy being emitted.
type copyState struct {
	k     uint32      // the index the copy's loop jumps back to
	base  int         // len(r.open) at the jump: the frames the copy sits in
	outer []openBlock // the original's frames around the copied code, outside those it opens
}

// watchHead follows the instructions that may form the function's
// dispatch head (see dispatch); it runs before each instruction is
// rewritten, outside copies.
func (r *rewriter) watchHead(in wasmbin.Instr, raw []byte) {
	h := &r.disp
	if !r.reloop || h.found {
		return
	}
	switch {
	case in.Op == wasmbin.OpLoop && raw[1] == 0x40:
		h.pending, h.hasPC, h.nBlocks, h.loopOrd = true, false, 0, r.opened
	case h.pending && !h.hasPC && in.Op == wasmbin.OpBlock && raw[1] == 0x40:
		h.nBlocks++
	case h.pending && !h.hasPC && h.nBlocks > 0 && in.Op == wasmbin.OpLocalGet:
		h.hasPC, h.pc = true, in.Imm
	case h.pending && h.hasPC && in.Op == wasmbin.OpBrTable:
	default:
		h.pending = false
	}
}

// noteHead records the dispatch head at its br_table, before the segment
// is flushed: track is what brTableMiss and the write-back added to it.
func (r *rewriter) noteHead(raw, track []byte) {
	h := &r.disp
	if !h.pending || !h.hasPC || h.found || r.kind != segLoop || r.cp != nil {
		return
	}
	h.pending = false
	loopPos := len(r.open) - 1 - h.nBlocks
	if loopPos < 0 || r.open[loopPos].op != wasmbin.OpLoop || r.open[loopPos].ord != h.loopOrd {
		return
	}
	h.found = true
	h.headCost = r.segCost
	h.track = slices.Clone(track)
	h.stack = slices.Clone(r.open)
	h.loopPos = loopPos
	h.labels = h.labels[:0]
	brTableLabels(raw, func(l uint32) { h.labels = append(h.labels, l) })
	h.start = make([]int, len(r.open))
	h.opened = make([]int, len(r.open))
}

// noteEnd records where the code after a dispatch block starts.
func (r *rewriter) noteEnd(b openBlock, next int) {
	h := &r.disp
	if !h.found || b.ord <= h.loopOrd || b.ord > h.loopOrd+h.nBlocks {
		return
	}
	pos := h.loopPos + b.ord - h.loopOrd
	h.start[pos], h.opened[pos] = next, r.opened
}

// target is the position in the head's stack of the block the dispatch
// br_table takes for index k, if it is one of the dispatch blocks.
func (h *dispatch) target(k uint32) (int, bool) {
	l := h.labels[len(h.labels)-1]
	if uint64(k) < uint64(len(h.labels)-1) {
		l = h.labels[k]
	}
	pos := len(h.stack) - 1 - int(l)
	return pos, pos > h.loopPos
}

// label is the depth to emit for a branch to label l of the instruction
// being rewritten, and whether it leaves the function. Inside a copy,
// labels of the original's outer frames are renumbered for the copy's
// place (one more for its loop); ok is false if the frame is not around
// the copy, which regionOK rules out.
func (r *rewriter) label(l uint32) (depth uint32, exits, ok bool) {
	if r.cp == nil {
		return l, l == uint32(len(r.open)), true
	}
	locals := len(r.open) - r.cp.base
	if int(l) < locals {
		return l, false, true
	}
	if int(l)-locals > len(r.cp.outer) {
		return 0, false, false
	}
	ord, fn := r.targetOrd(l)
	if fn {
		return uint32(len(r.open) + 1), true, true
	}
	for j := r.cp.base - 1; j >= 0; j-- {
		if r.open[j].ord == ord {
			return uint32(len(r.open) - j), false, true
		}
	}
	return 0, false, false
}

// targetOrd is the ordinal of the frame label l of the current
// instruction names in the original code; fn when it is the function.
func (r *rewriter) targetOrd(l uint32) (ord int, fn bool) {
	if r.cp == nil {
		if int(l) >= len(r.open) {
			return 0, true
		}
		return r.open[len(r.open)-1-int(l)].ord, false
	}
	locals := len(r.open) - r.cp.base
	if int(l) < locals {
		return r.open[len(r.open)-1-int(l)].ord, false
	}
	idx := int(l) - locals
	if idx >= len(r.cp.outer) {
		return 0, true
	}
	return r.cp.outer[len(r.cp.outer)-1-idx].ord, false
}

// relabel returns raw (br or br_if) with its label set to depth.
func relabel(raw []byte, in wasmbin.Instr, depth uint32) []byte {
	if depth == in.Imm {
		return raw
	}
	return wasmbin.AppendU32([]byte{in.Op}, depth)
}

// copyOuterEnd meters the end of a dispatch block inside a copy, which the
// copy leaves out: its cost and the segment it ends are the original's.
func (r *rewriter) copyOuterEnd(cost int64) {
	b := r.cp.outer[len(r.cp.outer)-1]
	r.cp.outer = r.cp.outer[:len(r.cp.outer)-1]
	r.add(nil, cost)
	if b.op != wasmbin.OpBlock || b.ord >= len(r.targeted) || r.targeted[b.ord] {
		r.flush(segNormal)
	}
}

// i32Const decodes the value of an i32.const.
func i32Const(raw []byte) uint32 {
	var v uint32
	var s uint
	for _, c := range raw[1:] {
		v |= uint32(c&0x7f) << s
		s += 7
		if c&0x80 == 0 {
			if s < 32 && c&0x40 != 0 {
				v |= ^uint32(0) << s
			}
			break
		}
	}
	return v
}

// jumpBack handles i32.const K when it starts a jump through the dispatch
// head that Reloop takes: outside a copy, a jump back to a block whose
// code lies before it gets its copy; inside one, a jump to the copy's K
// becomes the copy's back edge. ok is false for any other i32.const.
func (r *rewriter) jumpBack(body []byte, in wasmbin.Instr) (next int, ok bool, err error) {
	h := &r.disp
	if !r.reloop || !h.found || r.kind == segDead {
		return 0, false, nil
	}
	set, err := wasmbin.ReadInstr(body, in.End)
	if err != nil || set.Op != wasmbin.OpLocalSet || set.Imm != h.pc {
		return 0, false, nil
	}
	br, err := wasmbin.ReadInstr(body, set.End)
	if err != nil || br.Op != wasmbin.OpBr {
		return 0, false, nil
	}
	if ord, fn := r.targetOrd(br.Imm); fn || ord != h.loopOrd {
		return 0, false, nil
	}
	k := i32Const(body[in.Off:in.End])
	pos, ok := h.target(k)
	if !ok {
		return 0, false, nil
	}
	if r.cp != nil {
		if k != r.cp.k {
			return 0, false, nil
		}
		r.jumpCost(body, in, set, br)
		r.virtualHead(k)
		r.out = wasmbin.AppendU32(append(r.out, wasmbin.OpBr), uint32(len(r.open)-r.cp.base))
		return br.End, true, nil
	}
	start := h.start[pos]
	if start == 0 {
		return 0, false, nil
	}
	after, err := wasmbin.ReadInstr(body, br.End)
	if err != nil || after.Op != wasmbin.OpEnd {
		return 0, false, nil
	}
	end, inIf, ok := r.regionOK(body, pos, in.Off, after)
	if !ok || end-start > maxReloopRegion || r.relooped+end-start > len(body) {
		return 0, false, nil
	}
	r.jumpCost(body, in, set, br)
	r.virtualHead(k)
	r.out = append(r.out, wasmbin.OpLoop, 0x40)
	if err := r.emitCopy(body, start, end, k, pos); err != nil {
		return 0, false, err
	}
	r.out = append(r.out, wasmbin.OpEnd)
	if !inIf {
		// Nothing falls out of the copy: the code after it is as dead as
		// after the jump, whatever the stack holds.
		r.out = append(r.out, wasmbin.OpUnreachable)
	}
	return br.End, true, nil
}

// jumpCost ends the segment of a jump through the dispatch head: the
// three instructions' costs are charged with it as before, the br itself
// is not emitted (what follows stands for it), and the code after it is
// dead.
func (r *rewriter) jumpCost(body []byte, in, set, br wasmbin.Instr) {
	r.add(body[in.Off:in.End], r.instrCost(in))
	r.add(body[set.Off:set.End], r.instrCost(set))
	r.add(nil, r.instrCost(br))
	r.flush(segDead)
}

// virtualHead emits what the dispatch head does for index k: its
// segment's charge, check and write-back, and the br_table's tracking
// on k.
func (r *rewriter) virtualHead(k uint32) {
	r.emitCheck(r.disp.headCost, false)
	if len(r.disp.track) > 0 {
		o := wasmbin.AppendS64(append(r.out, wasmbin.OpI32Const), int64(int32(k)))
		o = append(o, r.disp.track...)
		r.out = append(o, wasmbin.OpDrop)
	}
}

// regionOK checks the code from dispatch block pos's start to the jump at
// site (whose br is followed by after, an end) and returns where the copy
// ends: after the jump, or after the end of the if the jump is first in
// (inIf). See "Relooping" above for what is refused.
func (r *rewriter) regionOK(body []byte, pos, site int, after wasmbin.Instr) (end int, inIf, ok bool) {
	h := &r.disp
	outerLen := pos
	var local []wasmbin.Instr // constructs the code opens, still open
	maxTarget := -1           // deepest outer frame a branch names
	for off := h.start[pos]; off < site; {
		in, err := wasmbin.ReadInstr(body, off)
		if err != nil || in.End > site {
			return 0, false, false
		}
		off = in.End
		switch in.Op {
		case wasmbin.OpBlock, wasmbin.OpLoop, wasmbin.OpIf:
			local = append(local, in)
		case wasmbin.OpElse:
			if len(local) == 0 {
				return 0, false, false
			}
		case wasmbin.OpEnd:
			if len(local) > 0 {
				local = local[:len(local)-1]
				break
			}
			if outerLen-1 <= h.loopPos {
				return 0, false, false
			}
			outerLen--
		case wasmbin.OpBr, wasmbin.OpBrIf:
			if int(in.Imm) < len(local) {
				break
			}
			idx := int(in.Imm) - len(local)
			if idx > outerLen {
				return 0, false, false
			}
			if idx < outerLen {
				maxTarget = max(maxTarget, outerLen-1-idx)
			}
		case wasmbin.OpBrTable:
			return 0, false, false
		}
	}
	if maxTarget >= outerLen || len(r.open) != outerLen+len(local) {
		return 0, false, false
	}
	switch len(local) {
	case 0:
		return after.Off, false, true // the copy ends with the jump (after.Off is the br's end)
	case 1:
		f := local[0]
		if f.Op != wasmbin.OpIf || body[f.Off+1] != 0x40 || f.End != site {
			return 0, false, false
		}
		return after.End, true, true
	}
	return 0, false, false
}

// emitCopy emits the copy of body[start:end], the code from dispatch
// block pos on, inside the loop jumpBack opened.
func (r *rewriter) emitCopy(body []byte, start, end int, k uint32, pos int) error {
	opened := r.opened
	r.opened = r.disp.opened[pos]
	r.cp = &copyState{k: k, base: len(r.open), outer: slices.Clone(r.disp.stack[:pos])}
	r.kind = segNormal
	for off := start; off < end; {
		in, err := wasmbin.ReadInstr(body, off)
		if err != nil {
			return err
		}
		next, _, err := r.step(body, in, r.nLocals)
		if err != nil {
			return err
		}
		off = next
	}
	if len(r.open) != r.cp.base {
		return &wasmbin.Error{Kind: wasmbin.ErrMalformed, Offset: end, Msg: "meter: relooped copy left a construct open"}
	}
	r.flush(segDead)
	r.cp, r.opened = nil, opened
	r.relooped += end - start
	return nil
}
