package vm

import "github.com/sos-kernel/sos/vm/meter"

// Protocol limits. They are part of consensus: changing one changes which
// transactions succeed, so it needs a protocol version bump, like the cost
// table in package meter.
const (
	// MaxCodeBytes bounds an uploaded module.
	MaxCodeBytes = 8 << 20
	// MaxMemoryPages bounds a contract's linear memory (64 KiB pages):
	// 8 MiB. A Go contract uses ≈46 pages after runtime initialization.
	MaxMemoryPages = 128
	// MaxPolicyMemoryPages bounds the linear memory of a ROME policy (a VM
	// whose Config.Purpose is Policies): 64 MiB. A policy holds one whole
	// market and its working set: on 10,000 requests × 1,000 offers × 4
	// kinds the shipped policies peak at 150-350 pages (optimal: 288, 352
	// with 30% bundles). Every node must refuse the same memory.grow, so the
	// figure is consensus like MaxMemoryPages.
	MaxPolicyMemoryPages = 1024
	// MaxCallDepth bounds nested contract calls: Env.Depth of a call is in
	// [0, MaxCallDepth).
	MaxCallDepth = 8
	// MaxInputBytes bounds the message of a call and of a nested call.
	MaxInputBytes = 256 << 10
	// MaxResultBytes bounds set_result.
	MaxResultBytes = 256 << 10
	// MaxPolicyIOBytes bounds input and result of a ROME policy's calls (a
	// VM whose Config.Purpose is Policies): a policy receives one whole
	// market snapshot and returns one allocation list per epoch (10,000
	// requests × 1,000 offers is ≈1 MB in, ≈1.3 MB out).
	MaxPolicyIOBytes = 16 << 20
	// MaxPolicyGas caps the gas limit of one policy call (the per-epoch
	// policy_gas budget of ROME is at most this): a policy runs once per
	// epoch, not in a transaction, so MaxTxGas does not bound it.
	MaxPolicyGas = 10_000_000_000
	// MaxKeyBytes and MaxValueBytes bound storage keys and values.
	MaxKeyBytes   = 256
	MaxValueBytes = 128 << 10
	// MaxEventBytes bounds one emitted event.
	MaxEventBytes = 8 << 10
	// MaxEvents bounds the events of one call.
	MaxEvents = 256
	// MaxIterators bounds the storage iterators a call may hold open.
	MaxIterators = 16
	// MaxFundsBytes bounds the funds JSON of a nested call.
	MaxFundsBytes = 4 << 10
	// MaxDenomBytes bounds a denomination name.
	MaxDenomBytes = 128
	// MaxHashInputBytes bounds the input of sha256 and blake3.
	MaxHashInputBytes = 1 << 20
	// MaxAddrStringBytes bounds the input of addr_from_string.
	MaxAddrStringBytes = 256
	// MaxCryptoArgBytes bounds each argument of mldsa_verify.
	MaxCryptoArgBytes = 64 << 10
	// MaxTxGas caps the gas limit of one call tree (a transaction).
	MaxTxGas = 1_000_000_000
	// MaxBlockGas caps the gas of all transactions in a block.
	MaxBlockGas = 20_000_000_000
	// DefaultQueryGas is the budget of a query when the caller gives none:
	// MaxTxGas, since every call pays for loading its module (≈170 Mgas
	// for a 3.5 MB Go contract, see GasLoadBase).
	DefaultQueryGas = MaxTxGas
	// MaxUploadGas caps the gas limit of Prepare: everything an upload
	// makes a node do (validation, instrumentation, compilation,
	// initialization, snapshot). Compiling a Go module with wazero's
	// optimizing compiler takes seconds, more than MaxTxGas buys, so an
	// upload transaction has its own, larger cap (the chain's max_upload_gas
	// may lower it, and max_block_gas still bounds a block). See
	// "Upload gas" in doc.go.
	MaxUploadGas = 12_000_000_000
)

// Structural limits, checked on every upload before it is instrumented or
// compiled (checkStructure). They keep every module within what wazero's
// compiler handles in bounded time and stack: it recurses over chains of
// basic blocks (2.5 million nested blocks overflowed Go's 1 GB stack) and
// its time grows faster than linearly with the blocks, locals and br_table
// labels of a function, which compileGas prices. Each is set from the
// largest value Go's toolchain emits, with headroom: over the example
// contracts and policies and a 16 MB program linking most of the standard
// library (go/types, net/http, crypto/x509, html/template, image/*,
// archive/*), Go reaches 8,721 functions, 9 parameters, 21 parameters +
// locals, a 62 KB body, 4,425 basic blocks in one instrumented function,
// nesting 1,077 and a 1,643-label br_table; TestStructureOfGoModules keeps
// the example contracts and policies under half of every limit. For
// comparison, CosmWasm's check_wasm allows 20,000 functions and 100
// parameters per function; wasmparser, which NEAR and wasmtime validate
// with, allows 128 KiB function bodies and 50,000 locals. They are
// consensus, like the cost table.
const (
	// MaxFunctions bounds imported + defined functions.
	MaxFunctions = 20_000
	// MaxTypes bounds the function types of the type section.
	MaxTypes = 1_024
	// MaxTypeParams and MaxTypeResults bound one function type.
	MaxTypeParams  = 64
	MaxTypeResults = 16
	// MaxFunctionBytes bounds the instructions of one function body.
	MaxFunctionBytes = 128 << 10
	// MaxFunctionLocals bounds the parameters and locals of one function:
	// the compiler's time grows with blocks × locals, and faster than
	// linearly in the locals (a function of 128 live locals compiles
	// about twice as slowly per block and local as one of 16).
	MaxFunctionLocals = 64
	// MaxFunctionBlocks bounds the basic blocks wazero's compiler makes of
	// one instrumented function, estimated from its instructions
	// (walker.measure: one per block and br_if, two per loop, three per if,
	// plus the entry). The metering adds an if at each call site and loop
	// head, so it is checked after instrumentation; Go's largest function
	// reaches 2,296 (contracts and policies) and 4,425 (the 16 MB program).
	MaxFunctionBlocks = 16_384
	// MaxNesting bounds the control nesting of one function (block, loop
	// and if inside each other; the function body counts as one).
	MaxNesting = 8_192
	// MaxBrTableLabels bounds the labels of one br_table, default included.
	MaxBrTableLabels = 16_384
)

// Upload and load gas: what Prepare charges on top of the instructions
// initialization runs, and what every call charges for loading its module.
// Like the host costs, one gas is meant to be one nanosecond on the
// reference machine; each figure comes from measurement (see "Upload gas"
// in doc.go and BENCHMARKS.md).
const (
	// GasPrepareBase and GasPreparePerByte price reading an upload:
	// decoding, the interface and structural checks, instrumentation and
	// writing the prepared module, per uploaded byte.
	GasPrepareBase    = 500_000
	GasPreparePerByte = 100
	// Compilation of the instrumented module by wazero's optimizing
	// compiler (compileGas): a base, per function, per instruction other
	// than local accesses and constants (which compile to nothing), on top
	// of that per load or store (each gets a bounds check and its own
	// exit path) and per br_table label, plus the superlinear terms per
	// function: per estimated dominator-tree walk step, per block × local
	// (the SSA construction may give every block a parameter per local),
	// and per label² of one br_table, in 1/1024 gas. Fitted by least
	// squares on the relative error over the example contracts and
	// policies and thirty adversarial shapes (vm/adversarial).
	GasCompileBase        = 250_000
	GasCompilePerFunction = 3_000
	GasCompilePerInstr    = 2_200
	GasCompilePerMemOp    = 5_000
	GasCompilePerBrLabel  = 8_000
	GasCompileWalkStep    = 9
	GasCompileBlockLocal  = 150
	GasCompileBrLabelsSq  = 196 // 1/1024 gas per label² of one br_table
	// GasSnapshotPerPage prices reading the memory after initialization,
	// writing it into the prepared module and mapping it for the first
	// call, per 64 KiB page.
	GasSnapshotPerPage = 130_000
	// GasLoadBase and the other GasLoad figures are charged by every call,
	// before it runs, for loading its module: decoding and validating the
	// code (per byte of the prepared module, per function, per basic
	// block), reading its compiled form from wazero's on-disk cache, and
	// building the memory image of the snapshot (per page). That is what an
	// attacker cycling through more contracts than the module cache holds
	// makes every node do on every call, and whether this node had the
	// module in memory cannot change the gas, so every call pays for the
	// load as if it missed.
	GasLoadBase        = 100_000
	GasLoadPerByte     = 24
	GasLoadPerFunction = 1_500
	GasLoadPerBlock    = 200
	GasLoadPerPage     = 35_000
	// GasInstanceBase and GasInstancePerElemByte price a new instance of a
	// loaded module: wazero maps the memory image, sets up the globals and
	// fills the table from the element segments, ≈210 ns per entry, which
	// dominates for Go modules (≈2,200 entries, 0.47 ms). An entry takes
	// at least one byte of the element section (Go's take two), so the
	// price is per byte of that section. Prepare pays it for the instance
	// that runs initialization, a cold call with the load; a warm call's
	// instance comes from the pool and is reset (a trapped one too), so
	// only a call that grew its memory, whose instance cannot be reset,
	// pays for the instance that replaces it.
	GasInstanceBase        = 20_000
	GasInstancePerElemByte = 200
)

// Host-call gas costs. One gas is meant to be about one nanosecond on the
// reference machine, like meter.DefaultCosts: each figure is the measured
// time of the work (BenchmarkAdversarial in package vm/adversarial,
// through contracts.Engine over a Pebble-backed ledger), except
// GasStorageSetPerByte, which prices state growth, far above its CPU time.
// Per-KiB figures are charged per byte, rounded up (perKiB).
const (
	GasHostBase          = 100 // every host function, including WASI: the call out of compiled code and back
	GasCopyPerKiB        = 32  // bytes copied between guest and host memory
	GasStoreReadPerKiB   = 160 // bytes of values and keys read from the store
	GasStorageGet        = 1_500
	GasStorageSet        = 700
	GasStorageSetPerByte = 10
	GasStorageDelete     = 600
	GasIterOpen          = 2_000
	GasIterNext          = 500 // per entry visited
	GasIterSkip          = 150 // per deleted or replaced entry skipped
	GasBalance           = 1_000
	GasTransfer          = 5_000
	GasEmitEvent         = 1_000
	GasEmitPerByte       = 30    // the event is decoded as JSON and copied attribute by attribute
	GasCall              = 1_000 // a nested call or query: the host side of the call (the callee's engine pays its own call base)
	GasHashBase          = 200   // sha256, blake3: at least one block
	GasSHA256PerKiB      = 700
	GasBLAKE3PerKiB      = 1_024 // CPU time of all the goroutines it hashes on
	GasMLDSAVerify       = 150_000
	GasMLDSAPerKiB       = 2_048 // its arguments (the message is hashed)
	GasAddrConvert       = 800
	GasRandomPerKiB      = 4_096 // random_get: a SHA-256 block per 32 bytes
	GasIOVec             = 30    // each iovec of fd_write
	GasPollSubscription  = 20    // each subscription of poll_oneoff
	// GasTrap is charged when a call ends in a trap (or proc_exit): the
	// engine unwinds the stack and builds the error, with a stack trace,
	// and a Go module's runtime walks its stack tables on the way there
	// (a panic in a Go contract costs ≈140 µs more than a call that
	// returns, of which the instructions it runs pay about half).
	GasTrap = 18_000
	// GasCallPerPage is charged by every call, before it runs, per 64 KiB
	// page of the memory it starts with: the write tracking scans the
	// whole memory after the call (≈40 ns a page), and reading one byte
	// in every 4 KiB block of it costs a TLB and cache miss each (≈20 ns,
	// 16 a page) that the price of a load does not cover. 8 MiB: ≈26 kgas,
	// a Go contract's 52 pages ≈10 kgas.
	GasCallPerPage = 200
	// GasPageWrite is charged after every call for each 4 KiB block of
	// linear memory it wrote (memory.go): the fault that marks the block
	// written and copying the snapshot back.
	GasPageWrite = 2_000
)

// perKiB is the charge for n bytes at price gas per KiB, rounded up.
func perKiB(n, price uint64) uint64 { return (n*price + 1023) / 1024 }

// Job limits (Purpose Jobs, RunJob). A job is an ordinary program, not a
// contract: its module size and memory are bounded by the node's
// configuration (Config.MaxJobModuleBytes, Config.MaxJobMemoryBytes, whose
// defaults follow the governance defaults max_job_module_bytes and
// max_job_memory_bytes) and by each job's own limits, its gas by the
// lease's budget. What the constants below bound is consensus: it decides
// what a job sees (an errno, a truncated log), so every node must apply the
// same figures. The file and log figures match package ledger's bounds on
// a job_result (MaxJobOutputs, MaxJobPathBytes, MaxJobNameBytes,
// MaxJobLogBytes), so a run's outcome always fits in a result transaction.
const (
	// DefaultMaxJobModuleBytes and DefaultMaxJobMemoryBytes are the caps of
	// a Jobs VM whose Config leaves them zero.
	DefaultMaxJobModuleBytes = 64 << 20
	DefaultMaxJobMemoryBytes = 1 << 30
	// MaxJobMemoryBytes is the largest cap a node may configure: the whole
	// 32-bit address space.
	MaxJobMemoryBytes = 4 << 30
	// MaxJobLogBytes caps what a run keeps of stdout and of stderr: the
	// first MaxJobLogBytes bytes of each (JobResult.StdoutBytes and
	// StderrBytes count everything written).
	MaxJobLogBytes = 1 << 20
	// MaxJobOutputFiles bounds the files under /out, MaxJobOutputDirs its
	// directories: creating one more fails with EDQUOT.
	MaxJobOutputFiles = 256
	MaxJobOutputDirs  = 256
	// MaxJobNameBytes bounds a file name (an input's, or one component of
	// a path under /out) and MaxJobPathBytes a path under /out relative to
	// it: a longer one fails with ENAMETOOLONG.
	MaxJobNameBytes = 255
	MaxJobPathBytes = 1024
	// MaxJobInputs bounds the inputs of a job, MaxJobArgs its arguments
	// and MaxJobEnv its environment variables; MaxJobArgBytes bounds args
	// and environment together (their bytes plus one NUL each).
	MaxJobInputs   = 64
	MaxJobArgs     = 256
	MaxJobEnv      = 256
	MaxJobArgBytes = 64 << 10
	// MaxJobOpenFiles bounds the file descriptors of a run (stdio and the
	// two preopens included): opening one more fails with EMFILE.
	MaxJobOpenFiles = 1024
	// MaxJobPollSubscriptions bounds the subscriptions of one poll_oneoff.
	MaxJobPollSubscriptions = MaxJobOpenFiles + 1
)

// Job module structure, checked by meter.Instrument before a job module is
// compiled (jobMeterOptions). A Go program with its dependencies is 5-30 MB
// and reaches about 20,000 functions at 16 MB; these bound compile time,
// which is the provider's own cost, and are consensus because a module
// beyond them ends as an invalid module everywhere.
const (
	MaxJobFunctions = 1 << 20
	MaxJobGlobals   = 1 << 16
	MaxJobTableSize = 1 << 20
	MaxJobLocals    = 50_000
)

// Job WASI costs, on top of GasHostBase per call and GasPerByte per byte
// copied between the job and the host (arguments, paths, data, directory
// entries). One gas is meant to be one nanosecond on the reference
// machine, as for the contract WASI; these follow its constants so a
// re-pricing of one carries over to the other.
const (
	// GasPerByte is charged per byte a job copies between its memory and
	// the host. (Contracts pay GasCopyPerKiB: their copies are measured by
	// the adversarial benchmark; a job's are not yet.)
	GasPerByte = 1
	// GasJobIovec is charged per iovec of fd_read, fd_write, fd_pread and
	// fd_pwrite (each is a bounds check and a copy setup).
	GasJobIovec = GasHostBase / 4
	// GasJobEntry is charged per directory entry listed or returned by
	// fd_readdir and per subscription of poll_oneoff.
	GasJobEntry = GasHostBase
	// GasJobLookup is charged per path component resolved.
	GasJobLookup = GasHostBase
	// GasJobOpen is charged when a file descriptor, file or directory is
	// created (path_open, path_create_directory).
	GasJobOpen = 5 * GasHostBase
	// GasJobGrowPerByte is charged per byte a file under /out grows by
	// without being written (fd_filestat_set_size, fd_allocate, a write past
	// the end): the host allocates and zeroes it.
	GasJobGrowPerByte = GasPerByte
)

// Limits are the protocol limits that depend on a VM's Purpose.
type Limits struct {
	MemoryPages uint32 // linear memory, 64 KiB pages
	InputBytes  int    // the input of a call
	ResultBytes int    // what set_result may pass
	Gas         uint64 // the gas limit of a call
}

// Limits returns the limits of a VM with purpose p.
func (p Purpose) Limits() Limits {
	switch p {
	case Policies:
		return Limits{MemoryPages: MaxPolicyMemoryPages, InputBytes: MaxPolicyIOBytes, ResultBytes: MaxPolicyIOBytes, Gas: MaxPolicyGas}
	case Jobs: // VM.Limits reports the memory cap of the VM's Config
		return Limits{MemoryPages: DefaultMaxJobMemoryBytes / 65536, Gas: meter.MaxGas}
	}
	return Limits{MemoryPages: MaxMemoryPages, InputBytes: MaxInputBytes, ResultBytes: MaxResultBytes, Gas: MaxTxGas}
}

// meterOptions returns the instrumentation options matching these limits
// (a contract's memory; Prepare sets the VM's own).
func meterOptions(costs meter.CostTable) meter.Options {
	o := meter.DefaultOptions()
	o.Costs = costs
	o.Limits.MaxCodeBytes = MaxCodeBytes
	o.Limits.MaxMemoryPages = MaxMemoryPages
	return o
}
