package vm

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/sos-kernel/sos/vm/internal/wasmbin"
)

// moduleStructure is what the structural check measures of a module's
// code: module totals, and the largest value one function reaches. Prepare
// checks the upload's against the structural limits of limits.go before
// instrumenting it and the instrumented module's basic blocks before
// compiling it, and prices compilation from the instrumented module's
// (compileGas).
type moduleStructure struct {
	Types     int // function types
	Functions int // imported and defined functions
	Bodies    int // defined functions (function bodies)
	CodeBytes int // bytes of all bodies' instructions
	Instrs    int // instructions of all bodies
	Simple    int // local.get/set/tee, constants, drop, nop and end among Instrs
	MemOps    int // loads and stores among Instrs
	Calls     int // call and call_indirect among Instrs
	Blocks    int // estimated compiler basic blocks of all bodies (see measureFunction)
	BrLabels  int // br_table labels (default included) of all bodies

	// The superlinear compile-cost terms, summed over all bodies.
	WalkSteps    uint64 // estimated dominator-tree walk steps (see domWalk)
	BlocksLocals uint64 // Σ blocks × (parameters + locals)
	BrLabelsSq   uint64 // Σ over br_tables of labels²

	MaxTypeParams int // parameters of one function type
	MaxTypeResult int // results of one function type
	MaxBodyBytes  int // bytes of one body's instructions
	MaxLocals     int // parameters + locals of one function
	MaxBlocks     int // estimated basic blocks of one function
	MaxNesting    int // control nesting of one function (its own block is 1)
	MaxBrTable    int // labels of one br_table (default included)
}

// measureStructure scans the types and every function body of p and
// returns their structure. It checks one limit itself, MaxNesting (it stops
// as soon as a body goes deeper, so the memory it uses stays bounded), and
// stops at the first malformed instruction or unbalanced body (errors wrap
// ErrInvalidModule); checkStructure checks the others. It is linear in the
// size of the code and never recurses, so a module of any shape is measured
// in bounded time and memory.
func measureStructure(p *wasmbin.Parsed) (moduleStructure, error) {
	s := moduleStructure{Types: len(p.Types), Bodies: len(p.Codes), Functions: len(p.Funcs)}
	for _, t := range p.Types {
		s.MaxTypeParams = max(s.MaxTypeParams, len(t.Params))
		s.MaxTypeResult = max(s.MaxTypeResult, len(t.Results))
	}
	imported := 0
	for _, im := range p.Imports {
		if im.Kind == wasmbin.KindFunc {
			imported++
		}
	}
	s.Functions += imported
	if len(p.Codes) != len(p.Funcs) {
		return s, invalid("%d function bodies for %d functions", len(p.Codes), len(p.Funcs))
	}
	var w walker
	for i := range p.Codes {
		c := &p.Codes[i]
		ti := p.Funcs[i]
		if int(ti) >= len(p.Types) {
			return s, invalid("function %d: unknown type %d", imported+i, ti)
		}
		locals := min(uint64(len(p.Types[ti].Params))+c.NumLocals(), 1<<32)
		f, err := w.measure(c.Body)
		switch {
		case errors.Is(err, errNesting):
			return s, fmt.Errorf("%w: function %d: control nesting deeper than %d", ErrLimit, imported+i, MaxNesting)
		case errors.Is(err, wasmbin.ErrUnsupported):
			return s, fmt.Errorf("%w: function %d: unsupported feature: %w", ErrInvalidModule, imported+i, err)
		case err != nil:
			return s, fmt.Errorf("%w: function %d: %w", ErrInvalidModule, imported+i, err)
		}
		s.CodeBytes += len(c.Body)
		s.Instrs += f.instrs
		s.Simple += f.simple
		s.MemOps += f.memOps
		s.Calls += f.calls
		s.Blocks += f.blocks
		s.BrLabels += f.brLabels
		s.WalkSteps = addSat(s.WalkSteps, f.walkSteps)
		s.BlocksLocals = addSat(s.BlocksLocals, mulSat(uint64(f.blocks), locals))
		s.BrLabelsSq = addSat(s.BrLabelsSq, f.brLabelsSq)
		s.MaxBodyBytes = max(s.MaxBodyBytes, len(c.Body))
		s.MaxLocals = max(s.MaxLocals, int(locals))
		s.MaxBlocks = max(s.MaxBlocks, f.blocks)
		s.MaxNesting = max(s.MaxNesting, f.nesting)
		s.MaxBrTable = max(s.MaxBrTable, f.maxBrTable)
	}
	return s, nil
}

var errNesting = errors.New("nesting too deep")

type funcStats struct {
	instrs, simple, memOps, calls         int
	blocks, nesting, brLabels, maxBrTable int
	brLabelsSq, walkSteps                 uint64
}

// walker measures function bodies; it keeps its frame stack between
// bodies.
type walker struct {
	frames []frame
}

// frame is an open block, loop or if while walking a body.
type frame struct {
	op        byte
	start     int  // dominator depth of the current block when it opened
	hdr       int  // loop: depth of its header; else: outerHdr
	outerHdr  int  // loop header depth around the construct
	reachable bool // whether code was reachable when it opened
	hasElse   bool
	thenEnd   int // if: depth at the end of the then arm, -1 unreachable
	// Branches to the construct's end: count, shallowest and summed depth
	// of their source blocks.
	srcN, srcMin, srcSum int
}

// measure walks one body with wasmbin's instruction reader.
//
// blocks estimates the basic blocks wazero's compiler creates for the body:
// one for the entry, one after each block and br_if, two for a loop (its
// header and what follows it) and three for an if (then, else, and what
// follows).
//
// walkSteps estimates the time of the two compiler passes that are
// quadratic in the worst case: loop detection asks, for every control-flow
// edge, whether the target dominates the source by walking up the
// dominator tree from the source, and the loop nesting forest walks up from
// every block to the nearest loop header. Wasm control flow is structured,
// so the dominator depth of every block the compiler creates follows from
// the instructions: measure tracks the depth of the current block, that of
// the innermost loop header, and for each open construct the branches that
// target its end, and adds up those walks as it goes (a chain of n blocks
// costs n²/2 steps; Go's functions, whose blocks hang off one br_table
// inside one loop, cost little).
func (w *walker) measure(body []byte) (funcStats, error) {
	f := funcStats{blocks: 1, nesting: 1}
	cur, hdr := 0, 0
	reachable := true
	w.frames = append(w.frames[:0], frame{reachable: true, srcMin: 1 << 62, thenEnd: -1})
	newBlock := func(depth int) {
		f.walkSteps += uint64(depth - hdr)
	}
	branch := func(label uint32) {
		if int(label) >= len(w.frames) {
			return // invalid; the compiler rejects it
		}
		t := &w.frames[len(w.frames)-1-int(label)]
		if t.op == wasmbin.OpLoop { // back edge: walks up to the header
			f.walkSteps += uint64(max(cur-t.hdr, 0))
			return
		}
		t.srcN++
		t.srcSum += cur
		t.srcMin = min(t.srcMin, cur)
	}
	for off := 0; off < len(body); {
		in, err := wasmbin.ReadInstr(body, off)
		if err != nil {
			return f, err
		}
		off = in.End
		f.instrs++
		switch op := in.Op; {
		case op >= 0x28 && op <= 0x3e:
			f.memOps++
		case op >= wasmbin.OpLocalGet && op <= wasmbin.OpLocalTee, op >= wasmbin.OpI32Const && op <= wasmbin.OpF64Const,
			op == wasmbin.OpDrop, op == wasmbin.OpNop, op == wasmbin.OpEnd:
			f.simple++
		case op == wasmbin.OpCall, op == wasmbin.OpCallIndirect:
			f.calls++
		}
		switch in.Op {
		case wasmbin.OpBlock, wasmbin.OpLoop, wasmbin.OpIf:
			if len(w.frames) >= MaxNesting {
				return f, errNesting
			}
			fr := frame{op: in.Op, start: cur, hdr: hdr, outerHdr: hdr, reachable: reachable, srcMin: 1 << 62, thenEnd: -1}
			switch in.Op {
			case wasmbin.OpBlock:
				f.blocks++
			case wasmbin.OpLoop:
				f.blocks += 2
				if reachable {
					f.walkSteps += uint64(cur) // the entry edge
					cur++
					newBlock(cur)
				}
				fr.hdr, hdr = cur, cur
			case wasmbin.OpIf:
				f.blocks += 3
				if reachable {
					f.walkSteps += 2 * uint64(cur) // the edges to then and else
					newBlock(cur + 1)
					newBlock(cur + 1)
					cur++
				}
			}
			w.frames = append(w.frames, fr)
			f.nesting = max(f.nesting, len(w.frames))
		case wasmbin.OpElse:
			fr := &w.frames[len(w.frames)-1]
			if fr.op != wasmbin.OpIf || fr.hasElse {
				return f, fmt.Errorf("else without if at offset %#x", in.Off)
			}
			fr.hasElse = true
			if reachable {
				fr.thenEnd = cur
			}
			cur, reachable = fr.start+1, fr.reachable
		case wasmbin.OpEnd:
			fr := w.frames[len(w.frames)-1]
			w.frames = w.frames[:len(w.frames)-1]
			if len(w.frames) == 0 {
				if in.End != len(body) {
					return f, fmt.Errorf("instructions after the final end at offset %#x", in.End)
				}
				return f, nil
			}
			// The block after the construct: its predecessors are the
			// branches to it and the fall-through paths.
			preds, pmin, psum := fr.srcN, fr.srcMin, fr.srcSum
			pred := func(d int) { preds, pmin, psum = preds+1, min(pmin, d), psum+d }
			if reachable {
				pred(cur)
			}
			switch fr.op {
			case wasmbin.OpIf:
				if fr.hasElse && fr.thenEnd >= 0 {
					pred(fr.thenEnd)
				} else if !fr.hasElse && fr.reachable {
					pred(fr.start + 1) // the empty else arm
				}
			case wasmbin.OpLoop:
				hdr = fr.outerHdr
			}
			if preds == 0 {
				reachable = false
				continue
			}
			f.walkSteps += uint64(psum)
			idom := pmin
			if preds > 1 { // the nearest common dominator is above the shallowest source
				idom = max(pmin, fr.start)
			}
			cur, reachable = idom+1, true
			newBlock(cur)
		case wasmbin.OpBr:
			if reachable {
				branch(in.Imm)
			}
			reachable = false
		case wasmbin.OpBrIf:
			f.blocks++
			if reachable {
				branch(in.Imm)
				f.walkSteps += uint64(cur)
				cur++
				newBlock(cur)
			}
		case wasmbin.OpBrTable:
			n := int(in.Imm) + 1
			f.brLabels += n
			f.brLabelsSq = addSat(f.brLabelsSq, uint64(n)*uint64(n))
			f.maxBrTable = max(f.maxBrTable, n)
			if reachable {
				err := brTableLabels(body[in.Off:in.End], func(l uint32) {
					// Each edge may be split by a block of its own.
					f.walkSteps += uint64(2*cur + 1 - hdr)
					branch(l)
				})
				if err != nil {
					return f, err
				}
			}
			reachable = false
		case wasmbin.OpReturn, wasmbin.OpUnreachable:
			reachable = false
		}
	}
	return f, fmt.Errorf("function body ends inside %d open blocks", len(w.frames))
}

// brTableLabels calls fn for each label of the br_table instruction b
// (opcode included), default last.
func brTableLabels(b []byte, fn func(uint32)) error {
	r := reader{b: b[1:]}
	n := r.u32()
	for i := uint32(0); i <= n && r.err == nil; i++ {
		l := r.u32()
		if r.err == nil {
			fn(l)
		}
	}
	return r.err
}

// checkStructure enforces the structural limits of limits.go but
// MaxNesting (which measureStructure checks) and MaxFunctionBlocks (which
// Prepare checks on the instrumented code, the compiler's input).
func checkStructure(s moduleStructure) error {
	for _, c := range []struct {
		what       string
		got, limit int
	}{
		{"function types", s.Types, MaxTypes},
		{"parameters of a function type", s.MaxTypeParams, MaxTypeParams},
		{"results of a function type", s.MaxTypeResult, MaxTypeResults},
		{"functions", s.Functions, MaxFunctions},
		{"bytes of a function body", s.MaxBodyBytes, MaxFunctionBytes},
		{"parameters and locals of a function", s.MaxLocals, MaxFunctionLocals},
		{"labels of a br_table", s.MaxBrTable, MaxBrTableLabels},
	} {
		if c.got > c.limit {
			return fmt.Errorf("%w: module has %d %s, limit %d", ErrLimit, c.got, c.what, c.limit)
		}
	}
	return nil
}

// compileGas prices compiling a module of structure s (the instrumented
// code) with wazero's optimizing compiler; see the GasCompile constants.
func compileGas(s moduleStructure) uint64 {
	g := uint64(GasCompileBase) +
		GasCompilePerFunction*uint64(s.Bodies) +
		GasCompilePerInstr*uint64(s.Instrs-s.Simple) +
		GasCompilePerMemOp*uint64(s.MemOps) +
		GasCompilePerBrLabel*uint64(s.BrLabels)
	g = addSat(g, mulSat(GasCompileWalkStep, s.WalkSteps))
	g = addSat(g, mulSat(GasCompileBlockLocal, s.BlocksLocals))
	return addSat(g, mulSat(GasCompileBrLabelsSq, s.BrLabelsSq)/1024)
}

func mulSat(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return ^uint64(0)
	}
	return lo
}

func addSat(a, b uint64) uint64 {
	if s, c := bits.Add64(a, b, 0); c == 0 {
		return s
	}
	return ^uint64(0)
}
