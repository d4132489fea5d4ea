package vm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/sos-kernel/sos/vm/meter"
)

// Purpose selects the limits a VM enforces (see Limits). Contracts and ROME
// policies are built, prepared and metered alike, but a policy processes a
// whole market once per epoch, so a VM for policies admits more memory,
// larger input and results and a larger gas limit. A prepared module runs
// with the limits of the VM that calls it.
type Purpose uint8

const (
	// Contracts: MaxMemoryPages of memory, MaxInputBytes of input,
	// MaxResultBytes of result, MaxTxGas of gas. The zero value.
	Contracts Purpose = iota
	// Policies: MaxPolicyMemoryPages of memory, MaxPolicyIOBytes of input
	// and of result, MaxPolicyGas of gas.
	Policies
	// Jobs: WASI command modules run by RunJob (job.go), with the memory
	// and module size caps of Config.MaxJobMemoryBytes and
	// Config.MaxJobModuleBytes and each job's own limits. A Jobs VM runs
	// no contracts (Prepare and Call refuse).
	Jobs
)

// String names the purpose.
func (p Purpose) String() string {
	switch p {
	case Contracts:
		return "contracts"
	case Policies:
		return "policies"
	case Jobs:
		return "jobs"
	}
	return fmt.Sprintf("Purpose(%d)", uint8(p))
}

// DefaultModuleCacheSize is the module cache size of a Config that sets
// none; MinUnpinnedModules is how many modules of a VM's cache SetPinned
// always leaves to calls and queries outside the pinned set (PinCapacity).
const (
	DefaultModuleCacheSize = 64
	MinUnpinnedModules     = 16
)

// Config configures a VM. The zero value is usable: a VM for contracts,
// protocol costs, no on-disk cache, a 64-entry module cache and an 8 KiB
// debug log.
type Config struct {
	// Purpose selects the protocol limits: Contracts (the zero value),
	// Policies or Jobs. It is consensus, like Costs.
	Purpose Purpose
	// Costs is the instruction cost table; zero means meter.DefaultCosts().
	// It is consensus: every node must use the same table.
	Costs meter.CostTable
	// CacheDir holds wazero's on-disk compilation cache; "" means none.
	CacheDir string
	// ModuleCacheSize is the number of compiled, snapshotted modules kept in
	// memory (LRU, pinned modules never evicted); 0 means
	// DefaultModuleCacheSize. A node sets it to at least its chain's warm
	// set size plus MinUnpinnedModules (PinCapacity, SetPinned).
	ModuleCacheSize int
	// DebugLogBytes caps the debug log kept per call (the tail is kept);
	// 0 means 8 KiB, negative means no log.
	DebugLogBytes int
	// Logger receives cache and lifecycle events; nil means none.
	Logger *slog.Logger

	// MaxJobModuleBytes and MaxJobMemoryBytes are a Jobs VM's caps: the
	// largest module it runs and the most linear memory one job may ask
	// for (JobSpec.MemoryLimit). They are the node's configuration, not
	// consensus: RunJob refuses a job beyond them with an error and never
	// runs it differently. Zero means DefaultMaxJobModuleBytes and
	// DefaultMaxJobMemoryBytes.
	MaxJobModuleBytes int64
	MaxJobMemoryBytes int64
}

func (c Config) withDefaults() (Config, error) {
	if c.Costs == (meter.CostTable{}) {
		c.Costs = meter.DefaultCosts()
	}
	if c.ModuleCacheSize == 0 {
		c.ModuleCacheSize = DefaultModuleCacheSize
		if c.Purpose == Jobs {
			c.ModuleCacheSize = defaultJobModuleCacheSize
		}
	}
	if c.Purpose != Contracts && c.Purpose != Policies && c.Purpose != Jobs {
		return c, fmt.Errorf("vm: config: unknown %v", c.Purpose)
	}
	if err := c.jobDefaults(); err != nil {
		return c, err
	}
	if c.ModuleCacheSize < 0 {
		return c, fmt.Errorf("vm: config: ModuleCacheSize %d is negative", c.ModuleCacheSize)
	}
	if c.DebugLogBytes == 0 {
		c.DebugLogBytes = 8 << 10
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c, nil
}

// Env is what a call may learn about its context. Everything in it must be
// identical on every node executing the call.
type Env struct {
	ChainID string
	Height  uint64
	TimeMs  int64 // block time, unix milliseconds
	// Self is the called contract, Sender the account that signed the
	// transaction, Caller the immediate caller (Sender or a contract).
	Self, Sender, Caller [32]byte
	// Funds is the JSON list of coins sent with the call
	// ([{"denom":"uTFLP","amount":"5"}]); nil means none.
	Funds []byte
	// Seed seeds random_get; derive it from the block and transaction
	// hashes (and the call's position in the call tree).
	Seed [32]byte
	// ReadOnly makes every state change fail with ErrReadOnly (queries).
	ReadOnly bool
	// Depth is the nesting level: 0 for a transaction's call, parent+1
	// for a nested call; it must stay below MaxCallDepth.
	Depth int
	// Trace, when set, receives the call's gas by part (debugging tools:
	// `sos tx trace`). The contract cannot observe it; execution and gas
	// are the same with or without it.
	Trace *Trace
}

// Trace is one call's gas by part: loading the module, each host function
// (its calls and the gas they charged, without nested contract calls,
// whose gas their own traces report) and, by difference, the Wasm
// instructions. LoadGas + HostGas() + Instructions = Result.GasUsed +
// the nested calls' gas.
type Trace struct {
	LoadGas uint64
	Host    []HostGas // in order of first use
}

// HostGas is the gas of one host function within a call.
type HostGas struct {
	Name  string `json:"name"`
	Calls int    `json:"calls"`
	Gas   uint64 `json:"gas"`
}

func (t *Trace) add(name string, gas uint64) {
	for i := range t.Host {
		if t.Host[i].Name == name {
			t.Host[i].Calls++
			t.Host[i].Gas += gas
			return
		}
	}
	t.Host = append(t.Host, HostGas{Name: name, Calls: 1, Gas: gas})
}

// HostGas is the gas all host functions charged.
func (t *Trace) HostGas() uint64 {
	var n uint64
	for _, h := range t.Host {
		n += h.Gas
	}
	return n
}

// Host is the contract's view of the chain, implemented by package
// contracts over a ledger transaction buffer. The VM validates sizes and
// charges gas before calling it; the VM copies every slice it passes, so the
// Host may keep them. Storage is already scoped to Env.Self.
//
// A Host error other than the documented sentinels aborts the call and is
// returned (wrapped) by Call. The VM never undoes writes: when Call returns
// an error or Result.Failed, the caller must discard everything the call
// (and its nested calls) wrote.
type Host interface {
	StorageGet(key []byte) (val []byte, found bool, err error)
	StorageSet(key, val []byte) error
	StorageDelete(key []byte) error
	// StorageIterate iterates keys in [start, end) (end nil: no bound) in
	// ascending order, or descending when reverse is set.
	StorageIterate(start, end []byte, reverse bool) (Iterator, error)
	Balance(addr [32]byte, denom string) (uint64, error)
	// Transfer moves coins from Env.Self; ErrInsufficientFunds and
	// ErrUnknownDenom become return codes 1 and 2 for the guest.
	Transfer(to [32]byte, denom string, amount uint64) error
	// Call runs a nested call of another contract with at most gasLimit gas
	// and reports the gas it used. A non-nil error means the callee failed:
	// the Host must have reverted the callee's writes; the guest sees
	// return code 1 and err.Error() as the result.
	Call(ctx context.Context, addr [32]byte, msg, funds []byte, gasLimit uint64, readOnly bool) (result []byte, gasUsed uint64, err error)
	Emit(eventJSON []byte) error
	AddrToString(a [32]byte) string
	AddrFromString(s string) ([32]byte, error)
}

// Iterator walks storage entries; see Host.StorageIterate.
type Iterator interface {
	// Next returns the next entry, or ok == false at the end.
	Next() (key, val []byte, ok bool, err error)
	Close() error
}

// Result is the outcome of a call that ran to completion.
type Result struct {
	// Data is what the contract passed to set_result last (nil if it never
	// did): its answer, or the error text when Failed. Call returns it also
	// with an error (a trap, out of gas): then it is whatever the guest had
	// handed in before it stopped, which contracts ignore and rome's
	// policies may use (docs/rome-policy-abi.md, anytime policies).
	Data []byte
	// GasUsed is set also when Call returns an error (the fee is charged).
	GasUsed uint64
	// LoadGas is the part of GasUsed that paid for loading the module
	// (loadGas): zero for a Warm call, and when the gas limit could not pay
	// for the load (then nothing was loaded).
	LoadGas uint64
	// Failed reports that the entry point returned 1 (a handled error):
	// the caller reverts the call's writes.
	Failed bool
	// DebugLog is the tail of debug_log and stdout/stderr output. It is not
	// consensus data.
	DebugLog []byte
}

// ModuleInfo describes a prepared module.
type ModuleInfo struct {
	// Exports are the exported function names callable with Call
	// (instantiate, execute, query, migrate, allocate, ...), sorted.
	Exports []string
	// Size is the size of the prepared module in bytes.
	Size int
	// MemoryPages is the memory size after initialization.
	MemoryPages uint32
	// InitGas is the gas _initialize (and any start function) used.
	InitGas uint64
	// GasUsed is the gas Prepare charged: everything it did, initialization
	// included. Prepare sets it also when it returns an error.
	GasUsed uint64
}

// VM compiles, caches and runs contracts. It is safe for concurrent use.
type VM struct {
	cfg     Config
	limits  Limits         // cfg.Purpose.Limits()
	rt      wazero.Runtime // optimizing compiler: compiles at Prepare, runs init and calls
	cache   wazero.CompilationCache
	modules *moduleCache

	mu     sync.Mutex
	closed bool
}

// New creates a VM. Close it to release compiled code and memory mappings.
func New(ctx context.Context, cfg Config) (*VM, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.Purpose == Jobs {
		return newJobVM(ctx, cfg)
	}
	if err := checkPageSize(); err != nil {
		return nil, err
	}
	v := &VM{cfg: cfg, limits: cfg.Purpose.Limits()}
	rc := wazero.NewRuntimeConfig().
		WithMemoryLimitPages(v.limits.MemoryPages).
		WithCoreFeatures(api.CoreFeaturesV2)
	if cfg.CacheDir != "" {
		cache, err := wazero.NewCompilationCacheWithDir(cfg.CacheDir)
		if err != nil {
			return nil, fmt.Errorf("vm: compilation cache %s: %w", cfg.CacheDir, err)
		}
		v.cache = cache
		rc = rc.WithCompilationCache(cache)
	}
	v.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	if err := instantiateHostModules(ctx, v.rt); err != nil {
		v.Close(ctx)
		return nil, err
	}
	v.modules = newModuleCache(cfg.ModuleCacheSize)
	return v, nil
}

// Close releases everything; calls in flight must have returned.
func (v *VM) Close(ctx context.Context) error {
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return nil
	}
	v.closed = true
	v.mu.Unlock()
	if v.modules != nil {
		v.modules.closeAll(ctx)
	}
	var errs []error
	if v.rt != nil {
		errs = append(errs, v.rt.Close(ctx))
	}
	if v.cache != nil {
		errs = append(errs, v.cache.Close(ctx))
	}
	return errors.Join(errs...)
}

// Limits returns the protocol limits v enforces (those of its Purpose).
func (v *VM) Limits() Limits { return v.limits }

// Call runs entry (instantiate, execute, query, migrate, ...) of a prepared
// module on a fresh instance state: memory and globals exactly as Prepare
// snapshotted them. codeID identifies prepared in the module cache (the
// code's hash); prepared must be bytes Prepare returned.
//
// On success Result.Failed tells whether the contract reported a handled
// error. On error (ErrOutOfGas, ErrTrap, ErrReadOnly, ErrLimit, ErrCallDepth
// or a Host error), Result still carries GasUsed and DebugLog. In both
// failure cases the caller must revert the call's writes. The "query"
// entry point always runs read-only, whatever env.ReadOnly says.
//
// A call pays for loading the module (Result.LoadGas) unless opts has
// Warm; a call whose instance cannot be reused (its memory grew) pays for
// its replacement (instanceGas). See "Warm code" in doc.go.
func (v *VM) Call(ctx context.Context, codeID [32]byte, prepared []byte, entry string, input []byte,
	env Env, host Host, gasLimit uint64, opts ...CallOption) (Result, error) {
	switch {
	case gasLimit > v.limits.Gas:
		return Result{}, fmt.Errorf("%w: gas limit %d above %d", ErrLimit, gasLimit, v.limits.Gas)
	case len(input) > v.limits.InputBytes:
		return Result{}, fmt.Errorf("%w: message is %d bytes, limit %d", ErrLimit, len(input), v.limits.InputBytes)
	case env.Depth < 0 || env.Depth >= MaxCallDepth:
		return Result{}, fmt.Errorf("%w: depth %d, limit %d", ErrCallDepth, env.Depth, MaxCallDepth)
	case host == nil:
		return Result{}, errors.New("vm: Call: nil Host")
	case v.cfg.Purpose == Jobs:
		return Result{}, errors.New("vm: Call: a Jobs VM runs no contracts")
	}
	if entry == "query" {
		env.ReadOnly = true
	}
	var co callOptions
	for _, o := range opts {
		o(&co)
	}
	// A cold call is charged the load first, whether or not this node has
	// the module in memory (see GasLoadBase), and before any loading work.
	// A warm one is not: the caller's consensus state says every node keeps
	// the module loaded, and a node that does not loads it at its own cost.
	var load uint64
	if !co.warm {
		var err error
		if load, err = loadGas(prepared); err != nil {
			return Result{}, err
		}
		if load > gasLimit {
			return Result{GasUsed: gasLimit}, fmt.Errorf("%w: loading the module needs %d gas, the limit is %d", ErrOutOfGas, load, gasLimit)
		}
	}
	if env.Trace != nil {
		env.Trace.LoadGas = min(load, gasLimit)
	}
	mod, err := v.module(ctx, codeID, prepared, co.fetch)
	if err != nil {
		return Result{GasUsed: load, LoadGas: load}, err
	}
	defer mod.unref(ctx)
	// Every call pays for its memory before it runs (GasCallPerPage): the
	// write tracking scans all of it after the call, and the call can read
	// every 4 KiB block of it for the price of a load each.
	memGas := GasCallPerPage * uint64(mod.pages)
	if load+memGas > gasLimit {
		return Result{GasUsed: gasLimit, LoadGas: load}, fmt.Errorf("%w: the call's memory of %d pages needs %d gas, the limit is %d after the load", ErrOutOfGas, mod.pages, memGas, gasLimit-load)
	}
	inst, err := mod.acquire(ctx, v.rt)
	if err != nil {
		return Result{GasUsed: load, LoadGas: load}, err
	}
	fn := inst.entries[entry]
	if fn == nil {
		mod.release(ctx, inst, true)
		return Result{GasUsed: load, LoadGas: load}, fmt.Errorf("%w: entry point %q is not exported", ErrInvalidModule, entry)
	}
	runGas := gasLimit - load - memGas

	s := &callState{
		resultCap: v.limits.ResultBytes,
		ctx:       ctx,
		env:       &env,
		host:      host,
		input:     input,
		gas:       inst.gas,
		logCap:    v.cfg.DebugLogBytes,
		monoBase:  mod.monoNs,
		realBase:  env.TimeMs * 1_000_000,
		rng:       newRNG(env.Seed),
	}
	inst.gas.Set(runGas)
	inst.mod.ExportedGlobal(meter.DepthGlobalExport).(api.MutableGlobal).Set(0) // Wasm call depth (meter.Instrument)
	ret, callErr := fn.Call(context.WithValue(ctx, stateKey{}, s))
	left := int64(inst.gas.Get())
	depth := uint32(inst.mod.ExportedGlobal(meter.DepthGlobalExport).Get())
	s.closeIterators()
	// The 4 KiB blocks of memory the call wrote are paid for after it
	// (memory.go); a trapped instance is reset and reused like any other.
	// A trap is paid for too (GasTrap).
	pages, memErr := inst.mem.written()
	paid := left
	if memErr == nil && left >= 0 {
		paid = left - int64(min(pages, 1<<30))*GasPageWrite
		if callErr != nil {
			paid -= GasTrap
		}
	}

	// Data is kept also when the call fails: a caller may use what the
	// guest handed in before it trapped or ran out of gas (rome's anytime
	// policies). set_result replaces it only once its gas is paid, so it is
	// always a whole result.
	res := Result{DebugLog: s.log, LoadGas: load, Data: s.result}
	if paid < 0 {
		res.GasUsed = gasLimit
	} else {
		res.GasUsed = gasLimit - uint64(paid)
	}
	// An instance is reset and reused also after a trap (its memory pages
	// and every mutable global go back to the snapshot; tables cannot
	// change), but not once its memory grew: the call that grew it pays
	// for the new instance a later call will need, as far as its gas
	// limit goes (see instanceGas).
	reuse := memErr == nil && inst.mod.Memory().Size() == mod.pages*65536
	mod.release(ctx, inst, reuse)
	if !reuse && paid >= 0 {
		if uint64(paid) >= mod.instGas {
			res.GasUsed += mod.instGas
		} else {
			res.GasUsed = gasLimit
			if callErr == nil {
				return res, fmt.Errorf("%w: the call grew its memory, and replacing its instance needs %d gas", ErrOutOfGas, mod.instGas)
			}
		}
	}

	if memErr != nil {
		return res, memErr
	}
	if callErr != nil {
		if s.trap == nil && left >= 0 && depth > meter.DefaultMaxCallDepth {
			return res, fmt.Errorf("%w: call depth exceeded (more than %d nested Wasm calls)", ErrTrap, meter.DefaultMaxCallDepth)
		}
		return res, s.classify(callErr, left)
	}
	if left < 0 { // cannot happen: a negative counter traps before returning
		return res, fmt.Errorf("%w: gas counter negative after return", ErrOutOfGas)
	}
	if paid < 0 {
		return res, fmt.Errorf("%w: the call wrote %d pages of memory (%d gas each)", ErrOutOfGas, pages, GasPageWrite)
	}
	res.Failed = len(ret) == 1 && uint32(ret[0]) != 0
	return res, nil
}

// A CallOption changes how Call treats the module: see Warm.
type CallOption func(*callOptions)

type callOptions struct {
	warm  bool
	fetch func() ([]byte, error)
}

// Warm tells Call that the caller's consensus state holds the code warm
// (package contracts' warm set; the active ROME policy): the call is not
// charged for loading the module, and a node that does not have it in
// memory (it restarted, or it was not pinned yet) loads it at its own
// cost. Call's prepared may then be nil: fetch is called for the prepared
// module only if this node must load it. Which codes are warm must be
// consensus, and the caller keeps them pinned (SetPinned), so a warm call
// never makes a node load a module over and over.
func Warm(fetch func() ([]byte, error)) CallOption {
	return func(o *callOptions) { o.warm, o.fetch = true, fetch }
}

// classify turns the error of a guest call into our sentinels.
func (s *callState) classify(err error, gasLeft int64) error {
	if s.trap != nil {
		if errors.Is(s.trap, ErrTrap) && s.exited {
			return fmt.Errorf("%w: contract exited with code %d%s", ErrTrap, s.exitCode, s.panicText())
		}
		return s.trap
	}
	if gasLeft < 0 {
		return fmt.Errorf("%w: %s", ErrOutOfGas, trapText(err))
	}
	return fmt.Errorf("%w: %s%s", ErrTrap, trapText(err), s.panicText())
}

// panicText returns ": <reason>" from the debug log when the Go runtime
// printed a panic or fatal error before exiting, else "".
func (s *callState) panicText() string {
	log := string(s.log)
	for _, marker := range []string{"panic: ", "fatal error: "} {
		if i := strings.LastIndex(log, marker); i >= 0 {
			return ": contract panicked: " + firstLine(log[i:]) + panicSite(log[i:])
		}
	}
	if log = strings.TrimSpace(log); log != "" {
		if len(log) > 200 {
			log = "…" + log[len(log)-200:]
		}
		return ": debug log: " + log
	}
	return ""
}

// panicSite finds where a Go guest panicked in the traceback its runtime
// printed after the panic line ("goroutine 1 [running]:", then the
// function and its file:line): " (in main.handle at counter.go:12)", or ""
// when there is none. The Go runtime names functions from its own tables,
// so this works for stripped modules too.
func panicSite(log string) string {
	lines := strings.Split(log, "\n")
	for i, l := range lines {
		if !strings.HasPrefix(l, "goroutine ") || i+2 >= len(lines) {
			continue
		}
		fn := strings.TrimSpace(lines[i+1])
		if j := strings.LastIndexByte(fn, '('); j > 0 {
			fn = fn[:j]
		}
		at := strings.TrimSpace(lines[i+2])
		if j := strings.Index(at, " +0x"); j > 0 {
			at = at[:j]
		}
		if fn == "" || at == "" {
			return ""
		}
		return " (in " + fn + " at " + at + ")"
	}
	return ""
}

// trapText condenses wazero's "wasm error: X\nwasm stack trace:\n\tf(...)"
// into "X in f".
func trapText(err error) string {
	msg := err.Error()
	lines := strings.Split(msg, "\n")
	text := strings.TrimPrefix(lines[0], "wasm error: ")
	for i, l := range lines {
		if strings.HasPrefix(l, "wasm stack trace:") && i+1 < len(lines) {
			fn := strings.TrimPrefix(strings.TrimSpace(lines[i+1]), ".")
			if j := strings.IndexByte(fn, '('); j > 0 {
				fn = fn[:j]
			}
			return text + " in " + fn
		}
	}
	return text
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
