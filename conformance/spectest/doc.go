// Package spectest runs the official WebAssembly core test suite through the
// metering rewrite and checks that it changes nothing but gas.
//
// The suite (converted by wast2json to *.json + *.wasm) ships inside the
// wazero module; the test finds it in the Go module cache with
// `go list -m -json github.com/tetratelabs/wazero` and never copies it into
// this repository. For every command of every file (v1 = WebAssembly 1.0,
// v2 = 2.0) it runs the module on plain wazero and, after meter.Instrument
// with a huge gas budget, on a second wazero runtime, and requires:
//
//   - assert_return / action: identical results bit for bit, except that
//     where the expectation is nan:canonical or nan:arithmetic both need only
//     satisfy it (NaN canonicalization may change the payload);
//   - assert_trap: both trap with the same wasm error;
//   - assert_exhaustion: plain wazero overflows its stack; the metered module
//     traps at the call depth limit (unreachable with the sos_depth counter
//     above meter.DefaultMaxCallDepth), or overflows too;
//   - assert_invalid / assert_malformed (binary form): plain wazero rejects the
//     module, and so do we — either meter.Instrument or compiling its output;
//   - assert_unlinkable / assert_uninstantiable: the same outcome on both.
//
// # Features rejected by policy
//
// meter.Instrument rejects these with meter.ErrUnsupportedFeature; files and
// commands that need them are counted as "rejected by policy", not failures:
//
//   - SIMD (0xFD prefix, v128; every simd_*.json file): 128-bit lane float
//     results would need per-lane NaN canonicalization, Go's wasip1 output
//     does not use SIMD, and the cost model covers scalar code only.
//   - Threads and atomics (0xFE prefix, shared memories): scheduling makes
//     execution non-deterministic; contracts are single-threaded.
//   - Everything outside WebAssembly 2.0 core — exception handling, tail
//     calls, GC, typed function references, memory64, multi-memory — because
//     the rewriter's instruction scanner and the cost table cover exactly 2.0;
//     an opcode we do not understand could not be metered.
//   - An export named sos_gas or sos_depth (reserved for the metering
//     counters).
//
// Text-format assertions (module_type "text") are skipped: there is no text
// parser in the loop, exactly as in wazero's own runner.
package spectest
