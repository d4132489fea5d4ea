// Package wasmasm is a tiny WebAssembly module assembler for tests: enough
// to write modules as opcode bytes without a text-format toolchain. Both the
// VM's and the metering pass's tests build their hand-written modules with it.
package wasmasm

// U32 is the unsigned LEB128 encoding of v.
func U32(v uint32) []byte {
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

// Cat concatenates byte strings.
func Cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// Vec is a Wasm vector: a count followed by the items.
func Vec(items ...[]byte) []byte { return Cat(U32(uint32(len(items))), Cat(items...)) }

// Section frames a section payload with its id and size.
func Section(id byte, payload []byte) []byte {
	return Cat([]byte{id}, U32(uint32(len(payload))), payload)
}

// Name is a length-prefixed UTF-8 name.
func Name(s string) []byte { return Cat(U32(uint32(len(s))), []byte(s)) }

// FuncType encodes a function type from value-type bytes.
func FuncType(params, results []byte) []byte {
	return Cat([]byte{0x60}, U32(uint32(len(params))), params, U32(uint32(len(results))), results)
}
