package meter_test

// A tiny module assembler for tests: enough to write functions as opcode
// bytes without a text-format toolchain.

func u32(v uint32) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func vec(items ...[]byte) []byte { return cat(u32(uint32(len(items))), cat(items...)) }

func section(id byte, payload []byte) []byte {
	return cat([]byte{id}, u32(uint32(len(payload))), payload)
}

func name(s string) []byte { return cat(u32(uint32(len(s))), []byte(s)) }

func functype(params, results []byte) []byte {
	return cat([]byte{0x60}, u32(uint32(len(params))), params, u32(uint32(len(results))), results)
}

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
