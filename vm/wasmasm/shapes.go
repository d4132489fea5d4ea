package wasmasm

import (
	"maps"
	"slices"
)

// Adversarial module shapes: modules that are valid WebAssembly but stress
// a compiler or an upload in one dimension (nesting, branches, locals,
// functions, initialization). Each has one memory and exports its first
// function, () -> i32, as instantiate, execute and query, so both the VM
// and package contracts accept it as a contract; the VM's, the contracts'
// and the adversarial benchmark's tests upload them.

// Value types and opcodes the shapes use.
const (
	i32 = 0x7f
	i64 = 0x7e

	opBlock    = 0x02
	opLoop     = 0x03
	opIf       = 0x04
	opElse     = 0x05
	opEnd      = 0x0b
	opBr       = 0x0c
	opBrIf     = 0x0d
	opBrTable  = 0x0e
	opLocalGet = 0x20
	opLocalSet = 0x21
	opI32Const = 0x41
	opI64Const = 0x42
	opI32Add   = 0x6a
	opI64Add   = 0x7c
	opWrap     = 0xa7 // i32.wrap_i64
)

// Func is one function of a Module: its type index, locals declaration
// (a vector of (count, type) pairs, already encoded) and instructions
// (ending with end).
type Func struct {
	Type   uint32
	Locals []byte
	Code   []byte
}

// Module is a minimal module: function types, functions, one memory of
// MemoryPages pages, function exports, an optional start function.
type Module struct {
	Types       [][]byte // default: one type, () -> i32
	Funcs       []Func
	Exports     map[string]uint32 // export name -> function index
	MemoryPages uint32            // default 1
	Start       *uint32
	Data        []byte // data section payload, if any
}

// Bytes encodes m.
func (m Module) Bytes() []byte {
	types := m.Types
	if types == nil {
		types = [][]byte{FuncType(nil, []byte{i32})}
	}
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	out = append(out, Section(1, Vec(types...))...)
	var fs, bodies [][]byte
	for _, f := range m.Funcs {
		fs = append(fs, U32(f.Type))
		locals := f.Locals
		if locals == nil {
			locals = Vec()
		}
		b := Cat(locals, f.Code)
		bodies = append(bodies, Cat(U32(uint32(len(b))), b))
	}
	out = append(out, Section(3, Vec(fs...))...)
	pages := m.MemoryPages
	if pages == 0 {
		pages = 1
	}
	out = append(out, Section(5, Vec(Cat([]byte{0}, U32(pages))))...)
	var exports [][]byte
	for _, name := range sortedKeys(m.Exports) {
		exports = append(exports, Cat(Name(name), []byte{0}, U32(m.Exports[name])))
	}
	out = append(out, Section(7, Vec(exports...))...)
	if m.Start != nil {
		out = append(out, Section(8, U32(*m.Start))...)
	}
	out = append(out, Section(10, Vec(bodies...))...)
	if m.Data != nil {
		out = append(out, Section(11, m.Data)...)
	}
	return out
}

func sortedKeys(m map[string]uint32) []string {
	return slices.Sorted(maps.Keys(m))
}

// entries exports function 0 under the contract entry points.
func entries() map[string]uint32 {
	return map[string]uint32{"instantiate": 0, "execute": 0, "query": 0}
}

// execute is a module whose only function, exported as the entry points,
// has the given locals and instructions.
func execute(locals, code []byte) []byte {
	return Module{Funcs: []Func{{Locals: locals, Code: code}}, Exports: entries()}.Bytes()
}

// oneI32 declares one i32 local (local 0).
func oneI32() []byte { return Vec(Cat(U32(1), []byte{i32})) }

func repeat(n int, b ...byte) []byte {
	out := make([]byte, 0, n*len(b))
	for range n {
		out = append(out, b...)
	}
	return out
}

// local0Inc is local0 = local0 + 1.
var local0Inc = []byte{opLocalGet, 0, opI32Const, 1, opI32Add, opLocalSet, 0}

// Nested is n blocks nested inside each other, each followed by an
// increment of a local: control nesting depth n+1.
func Nested(n int) []byte {
	code := repeat(n, opBlock, 0x40)
	code = append(code, opLocalGet, 0, opLocalSet, 0)
	for range n {
		code = append(code, opEnd)
		code = append(code, local0Inc...)
	}
	code = append(code, opLocalGet, 0, opEnd)
	return execute(oneI32(), code)
}

// BlockChain is n blocks one after the other, each left early by a br_if:
// a chain of 2n basic blocks, the worst case for dominator-tree walks.
func BlockChain(n int) []byte {
	code := repeat(n, opBlock, 0x40, opLocalGet, 0, opBrIf, 0, opI32Const, 1, opLocalSet, 0, opEnd)
	code = append(code, opLocalGet, 0, opEnd)
	return execute(oneI32(), code)
}

// NestedIfs is n if/else nested inside each other: 3n basic blocks.
func NestedIfs(n int) []byte {
	code := repeat(n, opLocalGet, 0, opIf, 0x40)
	code = append(code, opI32Const, 1, opLocalSet, 0)
	code = append(code, repeat(n, opElse, opI32Const, 2, opLocalSet, 0, opEnd)...)
	code = append(code, opLocalGet, 0, opEnd)
	return execute(oneI32(), code)
}

// BrTable is one br_table of labels labels (default included) spread
// over depth nested blocks, inside a loop: the dispatch Go's compiler
// emits at the top of every function, at any size.
func BrTable(labels, depth int) []byte {
	code := []byte{opLoop, 0x40}
	code = append(code, repeat(depth, opBlock, 0x40)...)
	code = append(code, opLocalGet, 0, opBrTable)
	code = append(code, U32(uint32(labels-1))...)
	for i := range labels {
		code = append(code, U32(uint32(i%depth))...)
	}
	for range depth {
		code = append(code, opEnd)
		code = append(code, local0Inc...)
	}
	code = append(code, opEnd, opLocalGet, 0, opEnd)
	return execute(oneI32(), code)
}

// Straight is one function of n straight-line increments (7 bytes each).
func Straight(n int) []byte {
	code := repeat(n, local0Inc...)
	code = append(code, opLocalGet, 0, opEnd)
	return execute(oneI32(), code)
}

// LocalsBlocks is a loop over blocks blocks (each with a br_if) that
// rotate values through locals i64 locals, all of them live across every
// block: the compiler gives each block a parameter per local.
func LocalsBlocks(locals, blocks int) []byte {
	decl := Vec(Cat(U32(uint32(locals)), []byte{i64}))
	code := []byte{opLoop, 0x40}
	for k := range blocks {
		i, j := k%locals, (k+1)%locals
		code = append(code, opBlock, 0x40, opLocalGet)
		code = append(code, U32(uint32(j))...)
		code = append(code, opI64Const, 1, opI64Add, opLocalSet)
		code = append(code, U32(uint32(i))...)
		code = append(code, opLocalGet, 0, opWrap, opBrIf, 0, opEnd)
	}
	for i := range locals {
		code = append(code, opLocalGet)
		code = append(code, U32(uint32(i))...)
		code = append(code, opLocalSet, 0)
	}
	code = append(code, opLocalGet, 0, opWrap, opBrIf, 0, opEnd, opI32Const, 0, opEnd)
	return execute(decl, code)
}

// Functions is n tiny functions (each returns 1); the first is execute.
func Functions(n int) []byte {
	m := Module{Exports: entries()}
	for range n {
		m.Funcs = append(m.Funcs, Func{Code: []byte{opI32Const, 1, opEnd}})
	}
	return m.Bytes()
}

// InitLoop is a module whose start function loops forever: its upload
// runs until the uploader's gas is gone.
func InitLoop() []byte {
	start := uint32(1)
	return Module{
		Types:   [][]byte{FuncType(nil, []byte{i32}), FuncType(nil, nil)},
		Funcs:   []Func{{Code: []byte{opI32Const, 0, opEnd}}, {Type: 1, Code: []byte{opLoop, 0x40, opBr, 0, opEnd, opEnd}}},
		Exports: entries(),
		Start:   &start,
	}.Bytes()
}

// InitWork is a module whose start function counts a local down from n
// (a few instructions per iteration) and returns: a finite initialization
// whose gas grows with n.
func InitWork(n int32) []byte {
	start := uint32(1)
	code := []byte{opI32Const}
	code = append(code, S32(n)...)
	code = append(code, opLocalSet, 0, opLoop, 0x40,
		opLocalGet, 0, opI32Const, 0x7f, opI32Add, opLocalSet, 0, // local0 -= 1
		opLocalGet, 0, opBrIf, 0, opEnd, opEnd)
	return Module{
		Types:   [][]byte{FuncType(nil, []byte{i32}), FuncType(nil, nil)},
		Funcs:   []Func{{Code: []byte{opI32Const, 0, opEnd}}, {Type: 1, Locals: oneI32(), Code: code}},
		Exports: entries(),
		Start:   &start,
	}.Bytes()
}

// DeepStack pushes n constants on the operand stack, then adds them all:
// n values live at once.
func DeepStack(n int) []byte {
	code := repeat(n, opI32Const, 1)
	code = append(code, repeat(n-1, opI32Add)...)
	code = append(code, opEnd)
	return execute(nil, code)
}

// Loads is n loads from memory, each added to a local.
func Loads(n int) []byte {
	code := repeat(n, opLocalGet, 0, 0x28, 2, 0, opLocalGet, 0, opI32Add, opLocalSet, 0)
	code = append(code, opLocalGet, 0, opEnd)
	return execute(oneI32(), code)
}

// Calls is n calls of a second function that returns 1, added to a local.
func Calls(n int) []byte {
	code := repeat(n, 0x10, 1, opLocalGet, 0, opI32Add, opLocalSet, 0)
	code = append(code, opLocalGet, 0, opEnd)
	return Module{
		Funcs:   []Func{{Locals: oneI32(), Code: code}, {Code: []byte{opI32Const, 1, opEnd}}},
		Exports: entries(),
	}.Bytes()
}

// IfChain is n if/else one after the other, each else trapping (the shape
// of the checks the metering pass adds at call sites).
func IfChain(n int) []byte {
	code := repeat(n, opLocalGet, 0, opIf, 0x40, opI32Const, 1, opLocalSet, 0, opElse, 0x00, opEnd)
	code = append(code, opLocalGet, 0, opEnd)
	return execute(oneI32(), code)
}

// LoadChain is n i32.loads, each loading from the address the previous
// one read: 3 bytes per load.
func LoadChain(n int) []byte {
	code := []byte{opLocalGet, 0}
	code = append(code, repeat(n, 0x28, 2, 0)...)
	code = append(code, opEnd)
	return execute(oneI32(), code)
}

// InitGrow is a module whose start function grows memory to pages pages
// and writes one byte in every 4 KiB: its snapshot is the whole memory.
func InitGrow(pages int) []byte {
	start := uint32(1)
	code := []byte{opI32Const}
	code = append(code, S32(int32(pages-1))...)
	code = append(code, 0x40, 0, 0x1a, // memory.grow; drop
		opI32Const, 0, opLocalSet, 0,
		opLoop, 0x40,
		opLocalGet, 0, opI32Const, 1, 0x3a, 0, 0, // i32.store8 [local0] = 1
		opLocalGet, 0, opI32Const)
	code = append(code, S32(4096)...)
	code = append(code, opI32Add, opLocalSet, 0,
		opLocalGet, 0, opI32Const)
	code = append(code, S32(int32(pages*65536))...)
	code = append(code, 0x49, opBrIf, 0, opEnd, opEnd) // i32.lt_u; br_if 0
	return Module{
		Types:   [][]byte{FuncType(nil, []byte{i32}), FuncType(nil, nil)},
		Funcs:   []Func{{Code: []byte{opI32Const, 0, opEnd}}, {Type: 1, Locals: oneI32(), Code: code}},
		Exports: entries(),
		Start:   &start,
	}.Bytes()
}
