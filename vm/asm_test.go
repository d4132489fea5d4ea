package vm

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

func body(instrs ...byte) []byte {
	b := cat(vec(), instrs)
	return cat(u32(uint32(len(b))), b)
}

const (
	tI32 = 0x7f
	tI64 = 0x7e
)

// asmModule is a module whose functions all have type 0 = () -> i32 unless
// types/funcTypes say otherwise; function i is exported under exports[i].
type asmModule struct {
	types     [][]byte // default: () -> i32
	imports   [][]byte
	funcTypes []uint32
	bodies    [][]byte
	exports   [][]byte
	memory    []byte // memory section payload; default one memory, min 1
	noMemory  bool
	globals   []byte // global section payload
	start     []byte
	dataCount []byte
	data      []byte
}

func (m asmModule) bytes() []byte {
	out := []byte{0, 'a', 's', 'm', 1, 0, 0, 0}
	types := m.types
	if types == nil {
		types = [][]byte{functype(nil, []byte{tI32})}
	}
	out = append(out, section(1, vec(types...))...)
	if m.imports != nil {
		out = append(out, section(2, vec(m.imports...))...)
	}
	var fs [][]byte
	for i := range m.bodies {
		t := uint32(0)
		if i < len(m.funcTypes) {
			t = m.funcTypes[i]
		}
		fs = append(fs, u32(t))
	}
	out = append(out, section(3, vec(fs...))...)
	if !m.noMemory {
		mem := m.memory
		if mem == nil {
			mem = vec([]byte{0, 1})
		}
		out = append(out, section(5, mem)...)
	}
	if m.globals != nil {
		out = append(out, section(6, m.globals)...)
	}
	out = append(out, section(7, vec(m.exports...))...)
	if m.start != nil {
		out = append(out, section(8, m.start)...)
	}
	if m.dataCount != nil {
		out = append(out, section(12, m.dataCount)...)
	}
	out = append(out, section(10, vec(m.bodies...))...)
	if m.data != nil {
		out = append(out, section(11, m.data)...)
	}
	return out
}

func exportFunc(n string, idx uint32) []byte { return cat(name(n), []byte{0}, u32(idx)) }

// simple returns a module exporting "execute" with the given body.
func simple(instrs ...byte) asmModule {
	return asmModule{bodies: [][]byte{body(instrs...)}, exports: [][]byte{exportFunc("execute", 0)}}
}
