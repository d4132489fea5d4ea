package adversarial

import (
	"encoding/binary"
	"math"

	"github.com/sos-kernel/sos/vm/wasmasm"
)

// A small module builder over vm/wasmasm: enough to write the hostile
// modules of this package as opcode sequences.

// Value types.
const (
	tI32 byte = 0x7f
	tI64 byte = 0x7e
	tF64 byte = 0x7c
)

type sig struct{ params, results []byte }

type local struct {
	n uint32
	t byte
}

type function struct {
	sig    sig
	locals []local
	code   []byte
}

type imported struct {
	module, name string
	sig          sig
}

type module struct {
	imports  []imported
	funcs    []function
	exports  [][]byte
	memMin   uint32
	memMax   uint32 // 0: none
	noMemory bool
	table    []uint32 // funcref table initialized with these functions
	globals  [][]byte // encoded globals
	data     [][]byte // encoded active data segments
}

// importFunc adds an import and returns its function index. Imports must
// all be added before the first func.
func (m *module) importFunc(mod, name string, params, results []byte) uint32 {
	if len(m.funcs) != 0 {
		panic("imports after functions")
	}
	m.imports = append(m.imports, imported{mod, name, sig{params, results}})
	return uint32(len(m.imports) - 1)
}

// sos imports a host function of module "sos" with its ABI signature.
func (m *module) sos(name string) uint32 {
	s, ok := sosSigs[name]
	if !ok {
		panic("unknown host function " + name)
	}
	return m.importFunc("sos", name, s.params, s.results)
}

// wasi imports a wasi_snapshot_preview1 function (all return an errno).
func (m *module) wasi(name string, params ...byte) uint32 {
	return m.importFunc("wasi_snapshot_preview1", name, params, []byte{tI32})
}

var sosSigs = map[string]sig{
	"input_len":          {nil, []byte{tI32}},
	"input_read":         {[]byte{tI32}, nil},
	"set_result":         {[]byte{tI32, tI32}, nil},
	"storage_get":        {[]byte{tI32, tI32, tI32, tI32}, []byte{tI32}},
	"storage_set":        {[]byte{tI32, tI32, tI32, tI32}, nil},
	"storage_delete":     {[]byte{tI32, tI32}, nil},
	"storage_iter_open":  {[]byte{tI32, tI32, tI32, tI32, tI32}, []byte{tI32}},
	"storage_iter_next":  {[]byte{tI32, tI32, tI32, tI32, tI32}, []byte{tI64}},
	"storage_iter_close": {[]byte{tI32}, nil},
	"block_height":       {nil, []byte{tI64}},
	"emit_event":         {[]byte{tI32, tI32}, nil},
	"call":               {[]byte{tI32, tI32, tI32, tI32, tI32}, []byte{tI32}},
	"sha256":             {[]byte{tI32, tI32, tI32}, nil},
	"blake3":             {[]byte{tI32, tI32, tI32}, nil},
	"mldsa_verify":       {[]byte{tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32}, []byte{tI32}},
	"balance":            {[]byte{tI32, tI32, tI32}, []byte{tI64}},
	"debug_log":          {[]byte{tI32, tI32}, nil},
	"addr_to_string":     {[]byte{tI32, tI32, tI32}, []byte{tI32}},
}

// fn adds a function and returns its index.
func (m *module) fn(params, results []byte, locals []local, code ...[]byte) uint32 {
	m.funcs = append(m.funcs, function{sig{params, results}, locals, wasmasm.Cat(code...)})
	return uint32(len(m.imports) + len(m.funcs) - 1)
}

func (m *module) export(name string, idx uint32) {
	m.exports = append(m.exports, wasmasm.Cat(wasmasm.Name(name), []byte{0}, wasmasm.U32(idx)))
}

// contract adds the three entry points a contract must export, execute
// running body (which must leave an i32 on the stack) with the given
// locals.
func (m *module) contract(locals []local, body ...[]byte) {
	ok := m.fn(nil, []byte{tI32}, nil, i32c(0))
	m.export("instantiate", ok)
	m.export("query", ok)
	m.export("execute", m.fn(nil, []byte{tI32}, locals, body...))
}

func (m *module) dataAt(off uint32, b []byte) {
	m.data = append(m.data, wasmasm.Cat([]byte{0}, i32c(int32(off)), []byte{opEnd}, wasmasm.U32(uint32(len(b))), b))
}

func (m *module) global(t byte, init []byte) uint32 {
	m.globals = append(m.globals, wasmasm.Cat([]byte{t, 1}, init, []byte{opEnd}))
	return uint32(len(m.globals) - 1)
}

func (m *module) bytes() []byte {
	var types [][]byte
	typeIdx := map[string]uint32{}
	typeOf := func(s sig) uint32 {
		k := string(s.params) + "|" + string(s.results)
		if i, ok := typeIdx[k]; ok {
			return i
		}
		typeIdx[k] = uint32(len(types))
		types = append(types, wasmasm.FuncType(s.params, s.results))
		return typeIdx[k]
	}
	var imps, fidx, bodies [][]byte
	for _, im := range m.imports {
		imps = append(imps, wasmasm.Cat(wasmasm.Name(im.module), wasmasm.Name(im.name), []byte{0}, wasmasm.U32(typeOf(im.sig))))
	}
	for _, f := range m.funcs {
		fidx = append(fidx, wasmasm.U32(typeOf(f.sig)))
		var ls [][]byte
		for _, l := range f.locals {
			ls = append(ls, wasmasm.Cat(wasmasm.U32(l.n), []byte{l.t}))
		}
		b := wasmasm.Cat(wasmasm.Vec(ls...), f.code, []byte{opEnd})
		bodies = append(bodies, wasmasm.Cat(wasmasm.U32(uint32(len(b))), b))
	}
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	out = append(out, wasmasm.Section(1, wasmasm.Vec(types...))...)
	if len(imps) > 0 {
		out = append(out, wasmasm.Section(2, wasmasm.Vec(imps...))...)
	}
	out = append(out, wasmasm.Section(3, wasmasm.Vec(fidx...))...)
	if len(m.table) > 0 {
		n := wasmasm.U32(uint32(len(m.table)))
		out = append(out, wasmasm.Section(4, wasmasm.Vec(wasmasm.Cat([]byte{0x70, 1}, n, n)))...)
	}
	if !m.noMemory {
		lim := wasmasm.Cat([]byte{0}, wasmasm.U32(max(m.memMin, 1)))
		if m.memMax != 0 {
			lim = wasmasm.Cat([]byte{1}, wasmasm.U32(max(m.memMin, 1)), wasmasm.U32(m.memMax))
		}
		out = append(out, wasmasm.Section(5, wasmasm.Vec(lim))...)
	}
	if len(m.globals) > 0 {
		out = append(out, wasmasm.Section(6, wasmasm.Vec(m.globals...))...)
	}
	out = append(out, wasmasm.Section(7, wasmasm.Vec(m.exports...))...)
	if len(m.table) > 0 {
		var fs [][]byte
		for _, f := range m.table {
			fs = append(fs, wasmasm.U32(f))
		}
		out = append(out, wasmasm.Section(9, wasmasm.Vec(wasmasm.Cat([]byte{0}, i32c(0), []byte{opEnd}, wasmasm.Vec(fs...))))...)
	}
	out = append(out, wasmasm.Section(10, wasmasm.Vec(bodies...))...)
	if len(m.data) > 0 {
		out = append(out, wasmasm.Section(11, wasmasm.Vec(m.data...))...)
	}
	return out
}

// Opcodes.
const (
	opUnreachable  = 0x00
	opNop          = 0x01
	opBlock        = 0x02
	opLoop         = 0x03
	opIf           = 0x04
	opElse         = 0x05
	opEnd          = 0x0b
	opBr           = 0x0c
	opBrIf         = 0x0d
	opBrTable      = 0x0e
	opReturn       = 0x0f
	opCall         = 0x10
	opCallIndirect = 0x11
	opDrop         = 0x1a
	opSelect       = 0x1b
	opLocalGet     = 0x20
	opLocalSet     = 0x21
	opLocalTee     = 0x22
	opGlobalGet    = 0x23
	opGlobalSet    = 0x24
	opI32Load      = 0x28
	opI64Load      = 0x29
	opI32Load8U    = 0x2d
	opI32Store     = 0x36
	opI64Store     = 0x37
	opI32Store8    = 0x3a
	opMemorySize   = 0x3f
	opMemoryGrow   = 0x40
	opI32Const     = 0x41
	opI64Const     = 0x42
	opF64Const     = 0x44
	opI32Eqz       = 0x45
	opI32Ne        = 0x47
	opI32LtU       = 0x49
	opI32GtU       = 0x4b
	opI32GeU       = 0x4f
	opI64Eqz       = 0x50
	opI64Ne        = 0x52
	opI32Add       = 0x6a
	opI32Sub       = 0x6b
	opI32Mul       = 0x6c
	opI32DivU      = 0x6e
	opI32RemU      = 0x70
	opI32And       = 0x71
	opI32Or        = 0x72
	opI32Xor       = 0x73
	opI32Shl       = 0x74
	opI32ShrU      = 0x76
	opI64Add       = 0x7c
	opI64Sub       = 0x7d
	opI64Mul       = 0x7e
	opI64DivS      = 0x7f
	opI64DivU      = 0x80
	opI64RemU      = 0x82
	opI64Xor       = 0x85
	opI64Shl       = 0x86
	opI64ShrU      = 0x88
	opI64Rotl      = 0x89
	opF64Add       = 0xa0
	opF64Mul       = 0xa2
	opF64Div       = 0xa3
	opF64Sqrt      = 0x9f
	opI32WrapI64   = 0xa7
	opI64ExtendU   = 0xad
	opF64ConvertI  = 0xb9 // f64.convert_i64_u
	opI64TruncF64  = 0xb0 // i64.trunc_f64_s
)

var (
	end  = []byte{opEnd}
	drop = []byte{opDrop}
	void = byte(0x40)
)

func op(b ...byte) []byte { return b }
func i32c(v int32) []byte { return wasmasm.Cat([]byte{opI32Const}, wasmasm.S32(v)) }
func i64c(v int64) []byte { return wasmasm.Cat([]byte{opI64Const}, sleb64(v)) }
func f64c(v float64) []byte {
	return binary.LittleEndian.AppendUint64([]byte{opF64Const}, math.Float64bits(v))
}
func lget(i uint32) []byte          { return wasmasm.Cat([]byte{opLocalGet}, wasmasm.U32(i)) }
func lset(i uint32) []byte          { return wasmasm.Cat([]byte{opLocalSet}, wasmasm.U32(i)) }
func ltee(i uint32) []byte          { return wasmasm.Cat([]byte{opLocalTee}, wasmasm.U32(i)) }
func gget(i uint32) []byte          { return wasmasm.Cat([]byte{opGlobalGet}, wasmasm.U32(i)) }
func gset(i uint32) []byte          { return wasmasm.Cat([]byte{opGlobalSet}, wasmasm.U32(i)) }
func call(f uint32) []byte          { return wasmasm.Cat([]byte{opCall}, wasmasm.U32(f)) }
func br(l uint32) []byte            { return wasmasm.Cat([]byte{opBr}, wasmasm.U32(l)) }
func brIf(l uint32) []byte          { return wasmasm.Cat([]byte{opBrIf}, wasmasm.U32(l)) }
func mem(o byte, off uint32) []byte { return wasmasm.Cat([]byte{o, 0}, wasmasm.U32(off)) }
func fc(sub uint32, imm ...byte) []byte {
	return wasmasm.Cat([]byte{0xfc}, wasmasm.U32(sub), imm)
}

func sleb64(v int64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// loopN wraps body in "for i := n; i != 0; i-- { body }", counting in the
// i32 local i.
func loopN(i uint32, n int32, body ...[]byte) []byte {
	return wasmasm.Cat(
		i32c(n), lset(i),
		[]byte{opBlock, void, opLoop, void},
		lget(i), []byte{opI32Eqz}, brIf(1),
		wasmasm.Cat(body...),
		lget(i), i32c(1), []byte{opI32Sub}, lset(i),
		br(0),
		[]byte{opEnd, opEnd},
	)
}
