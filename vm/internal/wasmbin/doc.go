// Package wasmbin decodes and encodes WebAssembly 2.0 binary modules at the
// section level, with just enough structure to rewrite function bodies.
//
// Why our own codec: the metering pass must never change the meaning of a
// valid module. Generic re-encoders normalise what they do not model (drop the
// data-count section, reject passive element segments, coerce reference
// types). This package instead keeps every section's payload verbatim, so
// Decode followed by Encode reproduces the input byte for byte, and only the
// sections a caller explicitly re-encodes (globals, exports, code) change.
//
// Layers:
//
//  1. Decode / Module.Encode split a module into sections (id + raw payload).
//  2. Decode* functions parse individual section payloads (types, imports,
//     functions, tables, memories, globals, exports, code, data count) and
//     reject trailing bytes, so a re-encoded section cannot silently repair a
//     malformed one.
//  3. ReadInstr walks a function body one instruction at a time, decoding the
//     immediates of every WebAssembly 2.0 core opcode. Proposals outside 2.0
//     (SIMD 0xFD, threads 0xFE, exception handling, tail calls, GC, typed
//     function references, multi-memory, memory64) are recognised only to be
//     reported with ErrUnsupported.
//
// Every decode error wraps ErrMalformed or ErrUnsupported and names where it
// happened; no input makes the package panic (see FuzzDecode).
package wasmbin
