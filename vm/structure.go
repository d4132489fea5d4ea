package vm

import (
	"errors"
	"fmt"
	"math/bits"

	"github.com/sos-kernel/sos/vm/internal/wasmbin"
)

// Structure is what the structural check measures of a module's code:
// module totals and the largest value one function reaches. Prepare checks
// the upload's Structure against the structural limits of limits.go before
// anything else reads its code, and prices compilation from the Structure
// of the instrumented module (compileGas).
type Structure struct {
	Types     int // function types
	Functions int // imported and defined functions
	Bodies    int // defined functions (function bodies)
	CodeBytes int // bytes of all function bodies' instructions
	Instrs    int // instructions of all bodies
	Blocks    int // estimated compiler basic blocks of all bodies (see measureFunction)
	BrLabels  int // br_table labels (default included) of all bodies

	// Sums of the superlinear compile-cost terms over all bodies.
	BlocksSq      uint64 // Σ blocks²
	BlocksLocals  uint64 // Σ blocks × (params + locals)
	BrLabelsSq    uint64 // Σ over br_tables of labels²
	MaxTypeParams int    // parameters of one function type
	MaxTypeResult int    // results of one function type

	MaxBodyBytes int // bytes of one body's instructions
	MaxLocals    int // parameters + locals of one function
	MaxBlocks    int // estimated basic blocks of one function
	MaxNesting   int // control nesting of one function (its own block is 1)
	MaxBrTable   int // labels of one br_table (default included)
}

// measureStructure scans the types and every function body of p and
// returns their Structure. It checks no limit (checkStructure does) but
// stops at the first malformed instruction or unbalanced body (errors wrap
// ErrInvalidModule). It is linear in the size of the code, keeps no stack
// and never recurses, so a module of any shape is measured in bounded time
// and memory.
func measureStructure(p *wasmbin.Parsed) (Structure, error) {
	s := Structure{Types: len(p.Types), Bodies: len(p.Codes), Functions: len(p.Funcs)}
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
	for i := range p.Codes {
		c := &p.Codes[i]
		ti := p.Funcs[i]
		if int(ti) >= len(p.Types) {
			return s, invalid("function %d: unknown type %d", imported+i, ti)
		}
		locals := min(uint64(len(p.Types[ti].Params))+c.NumLocals(), 1<<32)
		f, err := measureFunction(c.Body)
		if errors.Is(err, wasmbin.ErrUnsupported) {
			return s, fmt.Errorf("%w: function %d: unsupported feature: %w", ErrInvalidModule, imported+i, err)
		}
		if err != nil {
			return s, fmt.Errorf("%w: function %d: %w", ErrInvalidModule, imported+i, err)
		}
		body := len(c.Body)
		s.CodeBytes += body
		s.Instrs += f.instrs
		s.Blocks += f.blocks
		s.BrLabels += f.brLabels
		s.BlocksSq = addSat(s.BlocksSq, mulSat(uint64(f.blocks), uint64(f.blocks)))
		s.BlocksLocals = addSat(s.BlocksLocals, mulSat(uint64(f.blocks), locals))
		s.BrLabelsSq = addSat(s.BrLabelsSq, f.brLabelsSq)
		s.MaxBodyBytes = max(s.MaxBodyBytes, body)
		s.MaxLocals = max(s.MaxLocals, int(locals))
		s.MaxBlocks = max(s.MaxBlocks, f.blocks)
		s.MaxNesting = max(s.MaxNesting, f.nesting)
		s.MaxBrTable = max(s.MaxBrTable, f.maxBrTable)
	}
	return s, nil
}

type funcStats struct {
	instrs, blocks, nesting, brLabels, maxBrTable int
	brLabelsSq                                    uint64
}

// measureFunction walks one body with wasmbin's instruction reader,
// tracking control nesting with a counter.
//
// blocks estimates the basic blocks wazero's compiler creates for the body:
// one for the entry, one after each block and br_if, two for a loop (its
// header and what follows it) and three for an if (then, else, and what
// follows). Several compiler passes walk the dominator tree from every
// block, so their time grows with blocks² in the worst case (a chain of
// blocks), and the SSA construction can give every block a parameter for
// every local (blocks × locals); compileGas prices both.
func measureFunction(body []byte) (funcStats, error) {
	f := funcStats{blocks: 1, nesting: 1}
	depth := 1
	for off := 0; off < len(body); {
		in, err := wasmbin.ReadInstr(body, off)
		if err != nil {
			return f, err
		}
		f.instrs++
		switch in.Op {
		case wasmbin.OpBlock:
			f.blocks++
			depth++
		case wasmbin.OpLoop:
			f.blocks += 2
			depth++
		case wasmbin.OpIf:
			f.blocks += 3
			depth++
		case wasmbin.OpBrIf:
			f.blocks++
		case wasmbin.OpEnd:
			depth--
			if depth == 0 && in.End != len(body) {
				return f, fmt.Errorf("instructions after the final end at offset %#x", in.End)
			}
		case wasmbin.OpBrTable:
			n := int(in.Imm) + 1
			f.brLabels += n
			f.brLabelsSq = addSat(f.brLabelsSq, uint64(n)*uint64(n))
			f.maxBrTable = max(f.maxBrTable, n)
		}
		f.nesting = max(f.nesting, depth)
		off = in.End
	}
	if depth != 0 {
		return f, fmt.Errorf("function body ends inside %d open blocks", depth)
	}
	return f, nil
}

// checkStructure enforces the structural limits of limits.go. They bound
// what any compiler or validator is asked to handle (wazero's optimizing
// compiler recurses over chains of blocks and is superlinear in blocks,
// locals and br_table labels per function), so they are checked on the
// upload before instrumentation or compilation.
func checkStructure(s Structure) error {
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
		{"basic blocks of a function", s.MaxBlocks, MaxFunctionBlocks},
		{"control nesting depth of a function", s.MaxNesting, MaxNesting},
		{"labels of a br_table", s.MaxBrTable, MaxBrTableLabels},
	} {
		if c.got > c.limit {
			return fmt.Errorf("%w: module has %d %s, limit %d", ErrLimit, c.got, c.what, c.limit)
		}
	}
	return nil
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
