// Package wasmasm is a tiny WebAssembly module assembler for tests: enough
// to write modules as opcode bytes without a text-format toolchain. The
// VM's, the metering pass's and ROME's tests build their hand-written
// modules (and misbehaving policies) with it.
package wasmasm

import "github.com/sos-kernel/sos/vm/internal/wasmbin"

// U32 is the unsigned LEB128 encoding of v.
func U32(v uint32) []byte { return wasmbin.AppendU32(nil, v) }

// S32 is the signed LEB128 encoding of v (i32.const immediates).
func S32(v int32) []byte { return wasmbin.AppendS64(nil, int64(v)) }

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
