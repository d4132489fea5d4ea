// Package vm runs contracts: WebAssembly modules compiled from Go
// (GOOS=wasip1 GOARCH=wasm -buildmode=c-shared), metered, deterministic and
// sandboxed, on wazero. A VM of Purpose Jobs runs WASI command modules
// instead: the workloads of leases (see "Jobs" below).
//
// The VM knows nothing of the ledger, the network or the kernel. A contract
// sees the chain only through the Host interface, which package contracts
// implements over a ledger transaction buffer, and through Env.
//
// # Using it
//
//  1. v, err := vm.New(ctx, vm.Config{CacheDir: dir}); defer v.Close(ctx).
//  2. At upload: prepared, info, err := v.Prepare(ctx, codeID, wasm,
//     gasLimit), with codeID the hash of wasm and gasLimit what the
//     uploader's transaction has left (at most MaxUploadGas). Charge
//     info.GasUsed in every case. Reject the upload on error (errors.Is
//     ErrInvalidModule, ErrLimit, ErrTrap, ErrOutOfGas); otherwise store
//     prepared under the code id and keep info.Exports to know which entry
//     points exist.
//  3. Per call: res, err := v.Call(ctx, codeID, prepared, "execute", msg,
//     env, host, gasLimit[, vm.Warm(fetch)]). Charge res.GasUsed in every
//     case (it includes loading the module, unless the call is Warm: see
//     "Warm code"). If err != nil or res.Failed, discard everything
//     the call wrote through host (the VM never undoes writes; the caller's
//     transaction buffer does).
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
// Before the call the VM charges GasCallPerPage per 64 KiB page of the
// memory the call starts with; after it, GasPageWrite for every 4 KiB
// block of memory the call wrote and GasTrap if it trapped (see "Memory"
// below).
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
// initialization once, Wizer style. It checks the structural limits,
// instruments the module, exports every mutable global (sos_g<index>) and
// the start function (sos_start, its start section removed) and takes the
// data segments out: the result, the code module, is what every call will
// instantiate, and Prepare compiles it once with wazero's optimizing
// compiler. It then instantiates it, writes the data segments into its
// memory as instantiation would, runs the start function and _initialize
// with a fixed clock and seed and the uploader's gas, and stores the code
// module followed by the memory after init as data segments (split only at
// zero runs of ≥ 64 bytes) and a "sos.prepared" custom section: format,
// cost table version, the monotonic clock to resume from, the memory size,
// the mutable globals' values, and the figures the load charge needs.
//
// The compiled code module stays in the module cache (an LRU of
// Config.ModuleCacheSize modules), and in wazero's on-disk compilation
// cache when Config.CacheDir is set, so no call compiles: a call that
// misses the LRU strips the data and sos.prepared sections to get the code
// module back byte for byte, which wazero finds compiled in memory or on
// disk; only a node that lost its cache directory compiles again, at its
// own expense (nodes should set CacheDir). The data segments become a
// memory image in a memfd. Instances map the image privately
// (copy-on-write) through experimental.WithMemoryAllocator, grow from the
// module's declared memory to the snapshot's size, get the snapshot's
// global values, and are pooled.
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
// # Upload gas
//
// Everything an upload makes a node do is charged to the uploader, at the
// same one gas ≈ one nanosecond as execution, within the gas limit the
// uploader gives Prepare (at most MaxUploadGas); work is charged before it
// is done, so a budget that runs out stops the upload with ErrOutOfGas and
// charges the whole limit:
//   - reading the upload: GasPrepareBase + GasPreparePerByte per byte
//     (decoding, interface and structural checks, instrumentation);
//   - compiling it: compileGas, computed from the instrumented module's
//     structure before the compiler runs. wazero's optimizing compiler is
//     linear in instructions (more per load or store, per br_table label)
//     but two of its passes walk the dominator tree from every block and
//     edge, quadratic for a chain of blocks, and its SSA construction can
//     give every block a parameter per local. measureStructure estimates
//     those walks from the structured control flow (a chain of n blocks
//     costs about n² steps, Go's dispatch loops little) and counts blocks ×
//     locals. The constants were fitted on the CPU time of compiling thirty
//     adversarial shapes and the example contracts and policies; each of
//     them compiles at 0.5–1.8 ns per gas (BENCHMARKS.md);
//   - initialization: the instructions and host calls of the start
//     function and _initialize, metered like any call;
//   - the snapshot: GasSnapshotPerPage per page of memory after init.
//
// A 3.5 MB Go contract takes about 3.9 Ggas to upload (three seconds of
// compilation on the reference machine, more than MaxTxGas), hence the
// separate MaxUploadGas and the chain's max_upload_gas.
//
// Rationale: initialization used to run in wazero's interpreter, on
// MaxPrepareGas of budget nobody paid for: a 98-byte module looping in its
// start function cost its uploader 9,800 gas and every node 95 s. Pricing
// interpreted gas at a multiple does not work well: on the same
// instrumented code the interpreter runs a plain loop at 261 ns/gas, a
// counted loop at 322 ns/gas and Go's _initialize at 170 ns/gas (CPU time,
// BenchmarkInitInterpreter), where the compiled loops run at 1.2–1.4, so
// the multiple would be about 300, one multiple is off by 2× between those
// mixes alone, and a 12 Ggas budget would buy 40 Mgas of interpreted
// initialization. Compilation has to happen at upload anyway (a module
// must never be compiled for the first time by a call, where it cannot be
// priced), so initialization runs compiled, on the very code every call
// runs, at the execution price, and the module is compiled once.
//
// A call that is not Warm then pays for loading its module before it runs
// (GasLoadBase and the other GasLoad figures, from the prepared module's
// size, functions, blocks and memory pages): decoding and validating the
// code and reading it from the on-disk cache is what a call that misses
// the LRU costs (≈120 ms for a 3.5 MB Go contract), an attacker cycling
// through more contracts than the LRU holds makes every call miss, and the
// gas cannot depend on whether this node had the module in memory.
//
// # Warm code
//
// Charging every call the load (≈170 Mgas for a Go contract, against ≈0.1
// Mgas for the work of the example counter's increment) would price calls
// by what a node with no memory does, so the caller can say a code is warm
// (CallOption Warm): its consensus state holds a bounded set of codes that
// every node keeps loaded, and a warm call pays no load. The VM supports
// this with pinning: SetPinned names the code ids the module cache never
// evicts (at most PinCapacity: ModuleCacheSize less MinUnpinnedModules,
// which stay for everything else), and CacheStats reports what is in
// memory. The gas of a warm call is the same on every node, whatever it
// has loaded: a node that does not have the module (it restarted,
// installed a state snapshot, or the code became warm in the block being
// executed) fetches the prepared bytes (Warm's fetch) and loads it at its
// own cost, once, since the caller pins it. What makes a code warm is the
// caller's consensus rule: package contracts keeps a least-recently-used
// set of ledger.Params.WarmCodes codes in contract state, where a cold
// call pays the load and makes its code warm; rome runs the active policy
// warm (chosen by governance, one per epoch) and pins it in the Policies
// VM.
//
// Instances: a call reuses a pooled instance, whose memory and mutable
// globals are reset to the snapshot after every call, a trapping one
// included (nothing else can differ: Prepare refuses instructions that
// modify tables and passive data segments). An instance whose memory grew
// cannot be reset; the call that grew it pays for the new instance
// (instanceGas: GasInstanceBase and GasInstancePerElemByte, mostly wazero
// filling the table from the element segments, ≈0.5 ms for a Go module),
// or runs out of gas. Prepare pays it for the instance that runs
// initialization, and a cold call's load includes it.
//
// # Limits
//
// limits.go holds the protocol constants: module size (8 MiB), memory (128
// pages, 8 MiB), call depth (8), message/result/key/value/event sizes,
// gas per transaction, per block and per upload, and host costs.
// The structural limits (MaxFunctions, MaxFunctionBytes,
// MaxFunctionLocals, MaxFunctionBlocks, MaxNesting, MaxBrTableLabels,
// MaxTypes, MaxTypeParams, MaxTypeResults) are checked before anything
// compiles or instruments a module: wazero's compiler recurses over chains
// of blocks (2.5 million nested blocks overflowed Go's stack and killed the
// process) and is superlinear per function, so the limits bound what it is
// ever asked to do, and compileGas prices what remains. They are set from
// the largest values Go's toolchain emits, with headroom (limits.go).
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
//
// # Jobs
//
// A VM whose Config.Purpose is Jobs runs WASI command modules, what
// GOOS=wasip1 go build, Rust's wasm32-wasip1 and wasi-libc produce: a job is
// an ordinary program with arguments, environment, stdin, input files and
// output files, run once from a fresh instance (no Prepare, no snapshot: Go's
// runtime initialization is part of the job). The VM knows nothing of leases
// or blobs; inputs come in as io.ReaderAt.
//
//  1. v, err := vm.New(ctx, vm.Config{Purpose: vm.Jobs, CacheDir: dir,
//     MaxJobModuleBytes: m, MaxJobMemoryBytes: n}) — the caps are the node's
//     configuration (defaults 64 MiB and 1 GiB, the governance defaults).
//  2. res, err := v.RunJob(ctx, moduleID, vm.JobFile{Size: size, Data: r},
//     vm.JobSpec{Args, Env, Stdin, Inputs, GasLimit, MemoryLimit,
//     OutputLimit, TimeMs, Seed}). moduleID keys the compiled-module cache
//     (the module's blob id; the module is read only on a miss). Compiling is
//     the provider's own cost: no gas is charged for it.
//  3. err != nil means the node could not run the job and there is no
//     outcome: a spec beyond the VM's caps or the protocol limits (ErrLimit),
//     an unreadable module, input or stdin (ErrJobInput, also the failpoint
//     failpoint.JobInputRead), ctx cancelled (seen at the next host call), a
//     closed VM. Otherwise res is the outcome, consensus like a receipt:
//     Status (JobExited with ExitCode, JobTrapped, JobOutOfGas,
//     JobLimitExceeded — the program failed after the memory or output
//     limits refused it something —; a module that is not a valid WASI
//     command is JobTrapped with Err wrapping ErrInvalidModule and no gas
//     used),
//     GasUsed, Outputs (the files under /out, sorted by path), Stdout and
//     Stderr (the first MaxJobLogBytes of each) with their total lengths,
//     BytesRead and MemoryBytes. Err's text is for people.
//
// What a job sees (its ABI). The module exports _start () -> () and imports
// only functions of wasi_snapshot_preview1, with their WASI signatures, and
// defines one memory; the start section, if any, runs first. argv[0] is
// "job", argv[1:] JobSpec.Args; the environment is JobSpec.Env. Descriptors:
// 0 reads JobSpec.Stdin; 1 and 2 are captured (they are not terminals:
// isatty is false); 3 is the preopen "/in", read-only, one file per input
// (read lazily: only what the job reads is fetched); 4 is "/out", writable,
// in memory. Go's os package takes the first preopen as its working
// directory, so a relative path names an input. Files under /out may nest
// (directories are created as usual) and are limited together: bytes to
// JobSpec.OutputLimit (a write that does not fit writes what fits, then
// fails with ENOSPC), MaxJobOutputFiles files and MaxJobOutputDirs
// directories (EDQUOT), names of at most MaxJobNameBytes
// bytes of UTF-8 (ENAMETOOLONG, EILSEQ), paths of at most MaxJobPathBytes
// below /out (ENAMETOOLONG), MaxJobOpenFiles descriptors (EMFILE). There are
// no host files, links or sockets: an absolute path or ".." above a preopen
// fails with ENOTCAPABLE, symlink and link with ENOTSUP, sock_* with
// ENOTSOCK. Listings are sorted by name without "." and "..". The realtime
// clock starts at JobSpec.TimeMs, the monotonic one at the contracts'
// snapshot clock, and both advance only when poll_oneoff waits for a clock
// (so time.Sleep returns at once, and exactly that much later by the
// clocks); descriptors are always ready, so poll_oneoff never blocks and
// returns their events without advancing the clocks. random_get is the
// contracts' SHA-256 stream seeded with JobSpec.Seed (so are crypto/rand,
// math/rand's seed and Go's map order). proc_exit ends the run with its
// code; a Go panic exits with code 2. A Rust panic or an unreachable is a
// trap.
//
// Limits of a run. Gas: the metering pass and cost table of contracts (one
// gas meaning everywhere; with meter.Options.BlindLocals, MissInGlobals
// and Reloop, which change no result, no gas and no out-of-gas point,
// only the instrumented bytes that jobs, unlike contracts, never store),
// structural limits sized for programs
// (MaxJobFunctions and friends in limits.go), and the host functions charge
// GasHostBase per call plus GasPerByte per byte copied and the GasJob* costs
// (per iovec, directory entry, path component, new file, byte a file grows
// without being written); RunJob's GasUsed is exact, a limit of exactly the
// gas used suffices, one less runs out. Memory: JobSpec.MemoryLimit is a
// property of the run, not of the compiled module: the run's memory
// allocator (jobmem.go) reserves that many bytes and refuses a memory.grow
// beyond them (it returns -1, as Wasm specifies); one runtime and one
// compiled module serve every limit, and a module declaring a larger
// maximum is not refused. The other ways to limit memory cost more: a
// memory section rewritten per limit needs a compilation per limit, a check
// in front of every memory.grow a change of the metering pass that every
// contract would carry. A refusal by the memory or the output limits is
// remembered: a program that copes with it and exits 0 has exited, one that
// then fails (Go's runtime stops with "out of memory", exit code 2; a job
// gives up on ENOSPC) ends as JobLimitExceeded, with its exit code, so the
// outcome names the cause.
//
// Start. Compiled modules are cached (LRU of Config.ModuleCacheSize, 8 for
// Jobs, on top of wazero's on-disk cache under Config.CacheDir). A Go
// program carries tens of thousands of data segments, which wazero would
// copy one by one at every instantiation (≈30 ms for the 3.8 MB test job):
// the segments are applied once, into a memory image in a memfd that each
// run maps copy-on-write below an anonymous reservation of its memory
// limit, so a run starts in about a millisecond (BENCHMARKS.md).
package vm
