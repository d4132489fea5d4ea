package meter_test

import "github.com/sos-kernel/sos/vm/wasmasm"

// Short names for the shared test assembler (vm/wasmasm) plus the
// helpers only these tests need.

var (
	u32      = wasmasm.U32
	cat      = wasmasm.Cat
	vec      = wasmasm.Vec
	section  = wasmasm.Section
	name     = wasmasm.Name
	functype = wasmasm.FuncType
)

// code encodes one function body; locals are (count, type) pairs.
func code(locals [][2]byte, instrs ...byte) []byte {
	var ls [][]byte
	for _, l := range locals {
		ls = append(ls, []byte{l[0], l[1]})
	}
	b := cat(vec(ls...), instrs)
	return cat(u32(uint32(len(b))), b)
}

const (
	tI32 = 0x7f
	tI64 = 0x7e
	tF32 = 0x7d
	tF64 = 0x7c
)

// fnModule is a module with one exported function "f" of the given type
// and body, plus optional extra sections placed in canonical order by id.
type fnModule struct {
	params, results []byte
	locals          [][2]byte
	body            []byte
	memory          []byte // memory section payload, if any
	table, elem     []byte // table and element section payloads, if any
	extraExports    [][]byte
}

func (m fnModule) bytes() []byte {
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	out = append(out, section(1, vec(functype(m.params, m.results)))...)
	out = append(out, section(3, vec(u32(0)))...)
	if m.table != nil {
		out = append(out, section(4, m.table)...)
	}
	if m.memory != nil {
		out = append(out, section(5, m.memory)...)
	}
	exports := append([][]byte{cat(name("f"), []byte{0}, u32(0))}, m.extraExports...)
	out = append(out, section(7, vec(exports...))...)
	if m.elem != nil {
		out = append(out, section(9, m.elem)...)
	}
	out = append(out, section(10, vec(code(m.locals, m.body...)))...)
	return out
}
