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
// reference machine, like meter.DefaultCosts; storage writes are priced above
// their CPU time, through GasStorageSetPerByte, because they grow state.
// GasHostBase, GasStorageGet, GasStorageSet and GasStorageDelete were
// lowered with cost table v2 (from 100, 1,000, 5,000 and 2,000): the storage
// workload of BenchmarkGasCalibration ran at 0.15 ns/gas with them, 6×
// overpriced.
const (
	GasHostBase          = 40 // every host function, including WASI
	GasPerByte           = 1  // bytes copied between guest and host
	GasStorageGet        = 200
	GasStorageSet        = 300
	GasStorageSetPerByte = 10
	GasStorageDelete     = 300
	GasIterOpen          = 2_000
	GasIterNext          = 500
	GasIterSkip          = 100
	GasBalance           = 1_000
	GasTransfer          = 5_000
	GasEmitEvent         = 1_000
	GasEmitPerByte       = 5
	GasCall              = 20_000
	GasHashPerByte       = 2
	GasMLDSAVerify       = 200_000
	GasAddrConvert       = 500
	// GasPageWrite is charged after every call for each 4 KiB block of
	// linear memory it wrote (memory.go): the fault that marks the block
	// written and copying the snapshot back.
	GasPageWrite = 2_000
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
