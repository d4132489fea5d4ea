// Package meter rewrites uploaded WebAssembly modules so that they consume
// gas deterministically and compute bit-identical float results everywhere.
//
// wazero has no fuel, and a host call per basic block is ≈24× slower than
// straight code, so metering is compiled into the module: Instrument appends
// a mutable i64 global (exported as GasGlobalExport) holding the remaining
// gas. Each function works on a copy of it in a local, in 1/Scale gas: at
// the start of each straight-line segment it subtracts the segment's static
// cost (from a versioned CostTable), checks at loop heads and at the entry
// of functions that call (trapping with unreachable once the counter is
// negative), and writes the counter back, rounded up to whole gas spent,
// wherever other code can read it: before calls, returns and traps, and at
// every loop iteration. Operations whose cost depends on an operand
// (memory.grow, memory.copy/fill/init, table.copy/fill/init/grow) are
// charged operand × unit cost just before they run, and a br_table pays
// CostTable.BrTableMiss when its index is neither of the last two the same
// site took in the same call (a mispredicted indirect jump, which is how
// Go's data-dependent branches compile). rewrite.go states the exact
// rules.
//
// Recursion is bounded deterministically, not by the engine's native stack
// (whose size depends on the wazero version, the CPU and frame sizes): a
// second appended global, a mutable i32 exported as DepthGlobalExport, counts
// nested calls at every call and call_indirect site (weighted by the
// caller's frame size, see FrameSlots), and a call that would take it above
// Options.MaxCallDepth traps with unreachable.
//
// Using it:
//
//  1. At upload, out, err := meter.Instrument(wasm, meter.DefaultOptions());
//     reject the upload if err wraps ErrUnsupportedFeature, ErrLimit or
//     ErrMalformed (errors.Is). Store out; key the compiled-module cache by
//     hash(wasm), Costs.Version and Limits.
//  2. Compile out with wazero configured with
//     WithMemoryLimitPages(Limits.MaxMemoryPages), which caps memories that
//     declare no maximum.
//  3. Before each call set the exported global GasGlobalExport to the gas
//     limit (at most MaxGas) and DepthGlobalExport to 0; after it read the
//     gas global back. A value below zero, or a trap with gas below zero,
//     is out of gas; gas used is limit − value. A trap with gas not
//     negative and the depth global above Options.MaxCallDepth is a call
//     depth trap.
//  4. Host functions charge by lowering the same global, and must fail when
//     it is already negative (checks are not emitted before calls). The
//     global is up to date whenever a host function runs.
//
// NaN canonicalization (Options.CanonicalizeNaN) rewrites the result of
// every float operation that may produce a NaN with an
// implementation-defined payload, unless the next instruction consumes it
// without looking at the payload (consumedBlindly). Options.BlindLocals
// also skips results that only go into a local whose every read is
// consumed that way; results and gas are bit-identical, the instrumented
// bytes are not, so it is off by default (contracts store their
// instrumented code in state) and on for the VM's jobs. So is
// Options.MissInGlobals, which keeps the br_table tracking's state in
// appended globals (not exported) instead of locals, saved around calls:
// the same gas at every point, one register fewer held across loops. So
// is Options.Reloop (reloop.go), which gives each jump back through a Go
// function's dispatch loop a WebAssembly loop of its own over a metered
// copy of the code, charging at its back edge what the dispatch head
// charges: the same gas, traps and results, loops that no longer pass the
// dispatch br_table and its merge of every jump of the function.
//
// What is rejected (ErrUnsupportedFeature) and why: SIMD (float lane results
// are harder to make deterministic and not needed by Go), threads/atomics and
// shared memory (non-deterministic scheduling), and every proposal outside
// WebAssembly 2.0 core (exception handling, tail calls, GC, typed function
// references, memory64, multi-memory), since the rewriter's scanner and our
// cost model cover exactly 2.0. The export names GasGlobalExport and
// DepthGlobalExport are reserved.
//
// The rewrite preserves the meaning of every valid module other than gas
// consumption, NaN payloads and the depth at which recursion traps: no
// function, type or global index shifts (the gas and depth globals are
// appended last, scratch locals after existing locals),
// and every section other than global, export and code is copied byte for
// byte. The conformance/spectest package checks this against the official
// WebAssembly test suite.
package meter
