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
	// DefaultQueryGas is the budget of a query when the caller gives none.
	DefaultQueryGas = 100_000_000
	// MaxPrepareGas bounds module initialization (the start function and
	// _initialize) during Prepare.
	MaxPrepareGas = 500_000_000
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
	GasEmitPerByte       = 30 // the event is decoded as JSON and copied attribute by attribute
	GasCall              = 10_000
	GasHashBase          = 200 // sha256, blake3: at least one block
	GasSHA256PerKiB      = 700
	GasBLAKE3PerKiB      = 1_024 // CPU time of all the goroutines it hashes on
	GasMLDSAVerify       = 150_000
	GasMLDSAPerKiB       = 2_048 // its arguments (the message is hashed)
	GasAddrConvert       = 800
	GasRandomPerKiB      = 4_096 // random_get: a SHA-256 block per 32 bytes
	GasIOVec             = 30    // each iovec of fd_write
	GasPollSubscription  = 20    // each subscription of poll_oneoff
	// GasTrap is charged when a call ends in a trap (or proc_exit): the
	// engine unwinds the stack and builds the error, with a stack trace.
	GasTrap = 10_000
	// GasPageWrite is charged after every call for each 4 KiB block of
	// linear memory it wrote (memory.go): the fault that marks the block
	// written and copying the snapshot back.
	GasPageWrite = 2_000
)

// perKiB is the charge for n bytes at price gas per KiB, rounded up.
func perKiB(n, price uint64) uint64 { return (n*price + 1023) / 1024 }

// Limits are the protocol limits that depend on a VM's Purpose.
type Limits struct {
	MemoryPages uint32 // linear memory, 64 KiB pages
	InputBytes  int    // the input of a call
	ResultBytes int    // what set_result may pass
	Gas         uint64 // the gas limit of a call
}

// Limits returns the limits of a VM with purpose p.
func (p Purpose) Limits() Limits {
	if p == Policies {
		return Limits{MemoryPages: MaxPolicyMemoryPages, InputBytes: MaxPolicyIOBytes, ResultBytes: MaxPolicyIOBytes, Gas: MaxPolicyGas}
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
	o.InitialGas = MaxPrepareGas
	return o
}
