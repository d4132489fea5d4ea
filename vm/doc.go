// Package vm runs contracts: WebAssembly modules compiled from Go
// (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared), metered, deterministic and
// sandboxed, on wazero.
//
// The VM knows nothing of the ledger, the network or the kernel. A contract
// sees the chain only through the Host interface, which package contracts
// implements over a ledger transaction buffer, and through Env.
//
// # Using it
//
//  1. v, err := vm.New(ctx, vm.Config{CacheDir: dir}); defer v.Close(ctx).
//  2. At upload: prepared, info, err := v.Prepare(ctx, wasm). Reject the
//     upload on error (errors.Is ErrInvalidModule, ErrLimit, ErrTrap,
//     ErrOutOfGas); otherwise store prepared under the code id (the hash of
//     wasm) and keep info.Exports to know which entry points exist.
//  3. Per call: res, err := v.Call(ctx, codeID, prepared, "execute", msg,
//     env, host, gasLimit). Charge res.GasUsed in every case. If err != nil
//     or res.Failed, discard everything the call wrote through host (the VM
//     never undoes writes; the caller's transaction buffer does).
//  4. Nested calls: the guest's call/query_contract reach Host.Call, which
//     runs v.Call again with Env.Depth+1 and gasLimit as given, and reverts
//     the callee's writes when it fails.
//
// # Host ABI
//
// docs/contracts-abi.md is the reference. The guest exports instantiate,
// execute, query and migrate (each () -> i32: 0 ok, 1 handled error with the
// error text as result) and imports module "sos": input_len/input_read,
// set_result, storage_get/set/delete, storage_iter_open/next/close,
// block_height, block_time, chain_id, self_address, sender, caller, funds,
// balance, transfer, emit_event, call, query_contract,
// call_result_len/read, sha256, blake3, mldsa_verify,
// addr_to_string/addr_from_string and debug_log. Every host function
// charges GasHostBase plus per-byte and per-operation costs (limits.go)
// through the same gas global the metering pass maintains, and refuses to
// run once it is negative. Sizes beyond the limits of limits.go trap with
// ErrLimit; a state change in a read-only call (the "query" entry point, or
// Env.ReadOnly) traps with ErrReadOnly.
//
// set_result may be called more than once; the last call wins. It replaces
// the result only after its gas is paid, so Result.Data always holds one
// whole result, and Call returns it also when the call fails (a trap, out
// of gas): contracts ignore it then (the call reverts), while a ROME policy's
// caller uses the last allocation the policy handed in before it stopped
// (docs/rome-policy-abi.md).
//
// # Determinism
//
// Everything a contract can observe is a function of the prepared module,
// the message, Env and the Host's answers:
//   - gas: instruction costs are compiled into the module by package meter
//     (cost table versioned, part of the cache key); host costs are
//     constants;
//   - floats: NaN results are canonicalized by the metering pass;
//   - WASI is our own: clock_time_get returns the block time (realtime) and
//     the snapshot's monotonic time, both advanced only by poll_oneoff
//     (virtual time, so time.Sleep returns at once); random_get is a
//     SHA-256 counter stream seeded with Env.Seed; stdout/stderr go to the
//     debug log (not consensus); no arguments, environment, files or
//     sockets (EBADF); proc_exit ends the call as a trap;
//   - every call starts from the same state: the snapshot taken by Prepare
//     (Go's heap and GC state never carry over between calls, so gas cannot
//     depend on history);
//   - modules using SIMD, threads, other post-2.0 proposals, passive data
//     segments or table mutation are rejected at upload.
//
// # Snapshot design
//
// Go's runtime initialization (_initialize) costs milliseconds and a Go
// module carries tens of thousands of data segments. Prepare therefore runs
// initialization once, Wizer style: it instruments the module, exports
// every mutable global (sos_g<index>), runs the start function and
// _initialize in wazero's interpreter (compiling 2.4 MB of Go with the
// optimizing compiler takes seconds; interpreting init takes tens of
// milliseconds) with a fixed clock and seed, then writes a new module: the
// memory becomes data segments (split only at zero runs of ≥ 64 bytes),
// global initializers become the values after init, the start section and
// _initialize disappear, memory's minimum becomes its size after init, and a
// "sos.prepared" custom section records the format, cost table version and
// the monotonic clock to resume from.
//
// When Call first sees a code id, it turns the data segments into a memory
// image in a memfd and compiles the module without them (LRU of
// Config.ModuleCacheSize modules, on top of wazero's on-disk compilation
// cache when Config.CacheDir is set). Instances map the image privately
// (copy-on-write) through experimental.WithMemoryAllocator and are pooled.
// After a call, an instance is reset to the snapshot: the pages the call
// wrote are found in /proc/self/pagemap (they became private copies) and
// the image is copied back into them, and the mutable globals are restored.
// An instance that trapped or grew its memory is closed instead. Other
// systems reset by copying the whole image.
//
// # Limits
//
// limits.go holds the protocol constants: module size (8 MiB), memory (128
// pages, 8 MiB), call depth (8), message/result/key/value/event sizes,
// gas per transaction, per block and for initialization, and host costs.
// Memory, input and result sizes and the gas limit of a call depend on the
// VM's Purpose (Config.Purpose, VM.Limits): Contracts has the figures above
// and MaxTxGas; Policies, for ROME allocation policies (one call per epoch
// on a whole market snapshot), has 1,024 pages (64 MiB), 16 MiB of input and
// of result and MaxPolicyGas. A node runs one VM of each purpose; both are
// consensus, like the cost table.
// Two depth limits exist: nested contract calls (8, Env.Depth) and nested
// Wasm function calls inside one contract (meter.DefaultMaxCallDepth,
// 1024, counted by the metering pass in the sos_depth global so every node
// traps at the same depth whatever its native stack); the latter surfaces as
// ErrTrap "call depth exceeded".
// Execution time is bounded by gas alone: contexts are not polled during
// execution (wazero's WithCloseOnContextDone makes loops ≈17× slower).
package vm
