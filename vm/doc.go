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
// run once it is negative; WASI functions charge per element too (each
// iovec of fd_write, each subscription of poll_oneoff). Sizes beyond the
// limits of limits.go trap with ErrLimit; a state change in a read-only
// call (the "query" entry point, or Env.ReadOnly) traps with ErrReadOnly.
// After the call the VM charges GasPageWrite for every 4 KiB block of
// memory the call wrote and GasTrap if it trapped (see "Memory" below).
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
// After a call, an instance is reset to the snapshot — the pages the call
// wrote get the image back and become unwritten again, the mutable
// globals are restored — whether the call returned or trapped. An instance
// that grew its memory is closed (wazero cannot shrink a memory), but its
// mapping is reset and serves the next instance. Other systems reset by
// copying the whole image.
//
// # Memory: what a call pays for the pages it writes
//
// Each 4 KiB block of memory a call writes costs the node a fault (the
// page becomes a private copy, or loses its write protection) and a copy
// back at reset: ≈1–4 µs, against a fraction of a gas for the store that
// wrote it. Before this was priced, a call storing one byte per 4 KiB
// across 8 MiB ran at ≈1,200 ns/gas. The VM therefore charges
// GasPageWrite (2,000 gas) per distinct 4 KiB block written, after the
// call (memory.go). Determinism was the constraint: what an instance's
// pages cost depends on its pool history (a page written by an earlier
// call stays a private copy), so neither faults nor resets can be
// charged as they happen. The options measured (AMD EPYC VM, CPU time
// per 4 KiB page, other jobs running):
//   - a charge for the pages a call can touch (its memory size): a Go
//     contract has ≈850 pages after init, so even at the cost of a copy
//     (≈0.7 µs) every call would pay ≈600,000 gas, 15× counter.increment's
//     whole cost;
//   - pre-faulted private memory reset by copying everything: the same
//     ≈600 µs per call, actually spent;
//   - software tracking (instrumenting every store with a page check):
//     ≈8–10 more instructions per store, against the metering overhead
//     budget (geomean ≤ 1.15);
//   - counting the blocks written, exactly, with the kernel's help: each
//     call starts from a mapping where no page is marked written, so the
//     count is a function of the execution. With copy-on-write alone (any
//     Linux) a written page is a private copy and reset drops it: 2.5 µs
//     per page written per call, counter.increment (19 pages) 65 → 200 µs.
//     With asynchronous userfaultfd write protection and PAGEMAP_SCAN
//     (Linux 6.7) written pages stay resident, reset copies the image back
//     and protects them again, and the next write costs a protection fault
//     (≈0.8 µs): counter.increment 65 → 85–93 µs of CPU, its gas 8,438 →
//     46,438. This is what the VM does, falling back to the copy-on-write
//     way where the kernel lacks the features; both count the same pages.
//
// The count is in 4 KiB blocks whatever the engine does, so the VM
// refuses hosts whose pages are not 4 KiB (see checkPageSize); memory_other
// counts blocks that differ from the snapshot after the call, which equals
// the Linux count unless a call writes a block back to its snapshot
// contents — validators must run Linux. Reading memory costs no faults
// (mappings are populated when created and outlive instances), and memory
// grown by memory.grow is paid for when grown.
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
