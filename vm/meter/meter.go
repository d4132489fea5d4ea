package meter

import (
	"errors"
	"fmt"
	"math"

	"github.com/sos-kernel/sos/vm/internal/wasmbin"
)

// GasGlobalExport is the export name of the gas counter that Instrument adds:
// a mutable i64 global holding the remaining gas. The host sets it before a
// call and reads it after; a value below zero means the call ran out of gas.
const GasGlobalExport = "sos_gas"

// MaxGas is the most gas the host may put in the gas global (and the most
// Options.InitialGas). Inside a function the counter is kept in 1/Scale
// gas, and MaxGas × MaxScale must fit in an int64; a larger value makes the
// count wrap.
const MaxGas = 1<<53 - 1

// DepthGlobalExport is the export name of the call depth counter that
// Instrument adds after the gas global: a mutable i32 holding the number of
// Wasm calls in progress below the entry function. The host sets it to 0
// before every call from outside the module; a trap that leaves it above
// Options.MaxCallDepth is a call-depth trap.
const DepthGlobalExport = "sos_depth"

// DefaultMaxCallDepth is the protocol's bound on nested Wasm calls (of
// functions up to FrameSlots slots; bigger frames count more). Go's wasip1
// code keeps goroutine stacks in linear memory and unwinds the Wasm stack
// whenever a goroutine's stack grows, so ordinary Go code nests about 30
// Wasm calls (runtime init, encoding/json, GC; see TestGoCallDepthHeadroom)
// and deliberate Go recursion about half its Go depth (3,000 Go frames fit,
// 10,000 do not).
const DefaultMaxCallDepth = 1024

// MaxCallDepthLimit bounds Options.MaxCallDepth.
const MaxCallDepthLimit = 1 << 20

var (
	// ErrUnsupportedFeature classifies modules that use a feature outside the
	// deterministic WebAssembly 2.0 subset we accept (SIMD, threads, ...).
	ErrUnsupportedFeature = errors.New("meter: unsupported feature")
	// ErrLimit classifies modules that exceed a protocol limit.
	ErrLimit = errors.New("meter: limit exceeded")
	// ErrMalformed classifies bytes that are not a well-formed module.
	ErrMalformed = errors.New("meter: malformed module")
)

// Limits are protocol caps checked at upload. A zero field means no cap
// (only useful in tests; the VM uses DefaultLimits).
//
// MaxMemoryPages is also a run-time cap: a memory declared without a maximum
// can grow past any static check, so the VM must configure wazero with
// wazero.NewRuntimeConfig().WithMemoryLimitPages(MaxMemoryPages), which makes
// memory.grow beyond it return -1 deterministically.
type Limits struct {
	MaxCodeBytes   uint32 // size of the uploaded module in bytes
	MaxMemoryPages uint32 // initial and maximum memory size, 64 KiB pages
	MaxFunctions   uint32 // imported + defined functions
	MaxGlobals     uint32 // imported + defined globals (not counting the gas global)
	MaxTableSize   uint32 // initial and maximum size of each table
	MaxLocals      uint32 // parameters + locals of one function
}

// DefaultLimits returns the protocol limits. A Go wasip1 contract is ≈2.4 MB,
// ≈5,800 functions, a 5,837-entry table and 46 pages after init.
func DefaultLimits() Limits {
	return Limits{
		MaxCodeBytes:   8 << 20,
		MaxMemoryPages: 128, // 8 MiB
		MaxFunctions:   50_000,
		MaxGlobals:     1_000,
		MaxTableSize:   50_000,
		MaxLocals:      10_000,
	}
}

// Options configure Instrument.
type Options struct {
	Costs  CostTable
	Limits Limits
	// CanonicalizeNaN rewrites every float result that may be a NaN with an
	// implementation-defined payload into the canonical quiet NaN, so results
	// are bit-identical across CPU architectures.
	CanonicalizeNaN bool
	// BlindLocals, with CanonicalizeNaN, leaves a float result as it is
	// when it only goes into a local every read of which is consumed
	// blindly (see consumedBlindly: by arithmetic whose own result is
	// canonicalized or goes into such a local in turn, by a comparison or
	// a truncation): no payload or sign of a NaN that local holds can be
	// observed, so every result is bit-identical to canonicalizing it, and
	// the gas too (canonicalization is not charged). Float code whose
	// values live in locals, as Go's compiler keeps them, then runs without
	// a check after every operation. It changes the instrumented bytes,
	// which contracts store in state, so DefaultOptions leaves it off; the
	// VM turns it on for jobs, whose instrumented code is never stored.
	BlindLocals bool
	// InitialGas is the initial value of the gas global: the budget of the
	// module's start function, which runs during instantiation before the
	// host can set the counter. Zero makes any start function run out of
	// gas. At most MaxGas.
	InitialGas int64
	// MaxCallDepth bounds nested Wasm calls: the call that would make the
	// depth counter exceed it traps with unreachable. Each call adds the
	// calling function's weight, 1 unless its frame exceeds FrameSlots. Zero leaves calls
	// uncounted (the depth global is still added), so the engine's own,
	// platform-dependent stack limit applies: only for tests. It changes the
	// instrumented program, so it is consensus like the cost table: a new
	// value needs a new CostTable.Version.
	MaxCallDepth uint32

	// MissInGlobals keeps the br_table tracking's state (see
	// "Indirect jumps that change target" in rewrite.go) of the k-th site of
	// a function with many integer locals (siteGlobalMinIntLocals), packed,
	// in a global, the k-th appended after the depth global, instead of
	// locals: the same gas, traps and results, no
	// register held across the function's loops for it (see brTableMiss).
	// It changes the instrumented bytes, which contracts store in state, so
	// DefaultOptions leaves it off; the VM turns it on for jobs.
	MissInGlobals bool

	// Reloop gives the hot loops of Go's dispatch-loop code a WebAssembly
	// loop of their own (see reloop.go): where a function jumps back to an
	// earlier block of its dispatch loop (i32.const K; local.set $pc; br
	// $dispatch, the only way Go's wasm backend jumps), the rewriter also
	// emits a copy of the code from block K to the jump inside a loop, whose
	// back edge branches to that loop directly instead of through the
	// dispatch br_table. The copy is metered as the code it copies and the
	// jump it replaces pays what the dispatch head would have charged, the
	// br_table tracking included, so gas, traps, out-of-gas points and
	// results are those of the module without it. It changes the
	// instrumented bytes, which contracts store in state, so DefaultOptions
	// leaves it off; the VM turns it on for jobs.
	Reloop bool

	// brMissForm forces one form of the br_table tracking (tests only).
	brMissForm brMissForm
}

// DefaultOptions returns the protocol options.
func DefaultOptions() Options {
	return Options{Costs: DefaultCosts(), Limits: DefaultLimits(), CanonicalizeNaN: true, MaxCallDepth: DefaultMaxCallDepth}
}

// classify maps a wasmbin error to our sentinels.
func classify(err error, format string, args ...any) error {
	kind := ErrMalformed
	if errors.Is(err, wasmbin.ErrUnsupported) {
		kind = ErrUnsupportedFeature
	}
	msg := fmt.Sprintf(format, args...)
	if msg != "" {
		msg += ": "
	}
	return fmt.Errorf("%w: %s%w", kind, msg, err)
}

func limitErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrLimit, fmt.Sprintf(format, args...))
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupportedFeature, fmt.Sprintf(format, args...))
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func over(v uint64, limit uint32) bool { return limit != 0 && v > uint64(limit) }

// MaxDataSegments bounds the data segments of a module: the limit the
// WebAssembly JavaScript API sets (Go's linker emits a handful).
const MaxDataSegments = 100_000

// checkVectors bounds what the element, data and name sections hold
// (wasmbin.Parse has checked their counts against their sizes): the
// compiler allocates for each entry, so a module within MaxCodeBytes
// could otherwise still make it allocate tens of times its size. Element
// segments and their entries are bounded by MaxTableSize (an active
// segment longer than its table fails at instantiation; Go's modules
// hold one segment as long as their table), names by the functions and
// locals a module may have.
func checkVectors(p *wasmbin.Parsed, l Limits) error {
	switch {
	case over(p.Elements.Segments, l.MaxTableSize):
		return limitErr("%d element segments, limit %d", p.Elements.Segments, l.MaxTableSize)
	case over(p.Elements.Entries, l.MaxTableSize):
		return limitErr("element segments with %d entries, limit %d (MaxTableSize)", p.Elements.Entries, l.MaxTableSize)
	case p.DataSegments > MaxDataSegments:
		return limitErr("%d data segments, limit %d", p.DataSegments, MaxDataSegments)
	case over(p.Names.Functions, l.MaxFunctions):
		return limitErr("name section: names for %d functions, limit %d", p.Names.Functions, l.MaxFunctions)
	case over(p.Names.Locals, l.MaxLocals):
		return limitErr("name section: names for %d locals of one function, limit %d", p.Names.Locals, l.MaxLocals)
	}
	return nil
}

// Instrument validates that wasm uses only supported features and fits the
// limits, then returns a rewritten module that meters gas (and, optionally,
// canonicalizes NaNs). The same input and options always give the same
// output bytes. Errors wrap ErrUnsupportedFeature, ErrLimit or ErrMalformed.
//
// Instrument does not fully validate the module (types of operands, index
// ranges): the caller compiles the result with wazero, which does. It
// guarantees that a valid input yields a valid output with the same meaning,
// and that an input it cannot parse is rejected.
func Instrument(wasm []byte, opts Options) ([]byte, error) {
	if err := opts.Costs.validate(); err != nil {
		return nil, err
	}
	if opts.InitialGas < 0 || opts.InitialGas > MaxGas {
		return nil, fmt.Errorf("meter: InitialGas %d outside [0, MaxGas]", opts.InitialGas)
	}
	if opts.MaxCallDepth > MaxCallDepthLimit {
		return nil, fmt.Errorf("meter: MaxCallDepth %d above %d", opts.MaxCallDepth, MaxCallDepthLimit)
	}
	if over(uint64(len(wasm)), opts.Limits.MaxCodeBytes) {
		return nil, limitErr("module is %d bytes, limit %d", len(wasm), opts.Limits.MaxCodeBytes)
	}
	m, err := wasmbin.Decode(wasm)
	if err != nil {
		return nil, classify(err, "")
	}
	if err := m.CheckOrder(); err != nil {
		return nil, classify(err, "")
	}
	parsed, err := m.Parse()
	if err != nil {
		return nil, classify(err, "")
	}
	types, imports, funcs, tables := parsed.Types, parsed.Imports, parsed.Funcs, parsed.Tables
	memories, globals, exports, codes, hasCode := parsed.Memories, parsed.Globals, parsed.Exports, parsed.Codes, parsed.HasCode
	if len(funcs) != len(codes) {
		return nil, malformed("function and code section have inconsistent lengths (%d and %d)", len(funcs), len(codes))
	}

	var funcTypes []uint32 // type index of every function, imports first
	var nGlobals, nMemories uint64
	for _, im := range imports {
		switch im.Kind {
		case wasmbin.KindFunc:
			funcTypes = append(funcTypes, im.TypeIndex)
		case wasmbin.KindGlobal:
			nGlobals++
		case wasmbin.KindMemory:
			nMemories++
			if err := checkMemory(im.Memory, opts.Limits, "imported memory "+im.Module+"."+im.Name); err != nil {
				return nil, err
			}
		case wasmbin.KindTable:
			if err := checkTable(im.Table, opts.Limits, "imported table "+im.Module+"."+im.Name); err != nil {
				return nil, err
			}
		}
	}
	nImportedFuncs := len(funcTypes)
	funcTypes = append(funcTypes, funcs...)
	if over(uint64(len(funcTypes)), opts.Limits.MaxFunctions) {
		return nil, limitErr("%d functions, limit %d", len(funcTypes), opts.Limits.MaxFunctions)
	}
	for i, mem := range memories {
		if err := checkMemory(mem, opts.Limits, fmt.Sprintf("memory %d", i)); err != nil {
			return nil, err
		}
	}
	if nMemories += uint64(len(memories)); nMemories > 1 {
		return nil, unsupported("%d memories (multi-memory is not part of WebAssembly 2.0)", nMemories)
	}
	for i, t := range tables {
		if err := checkTable(t, opts.Limits, fmt.Sprintf("table %d", i)); err != nil {
			return nil, err
		}
	}
	if err := checkVectors(parsed, opts.Limits); err != nil {
		return nil, err
	}
	nGlobals += uint64(len(globals))
	if over(nGlobals, opts.Limits.MaxGlobals) {
		return nil, limitErr("%d globals, limit %d", nGlobals, opts.Limits.MaxGlobals)
	}
	if nGlobals >= math.MaxUint32-1-maxSiteGlobals {
		return nil, limitErr("%d globals", nGlobals)
	}
	for _, e := range exports {
		// The gas and depth globals take indices nGlobals and nGlobals+1:
		// an export of those would be invalid before instrumentation and
		// valid after it.
		if (e.Kind == wasmbin.KindGlobal && uint64(e.Index) >= nGlobals) ||
			(e.Kind == wasmbin.KindFunc && int(e.Index) >= len(funcTypes)) {
			return nil, malformed("export %q: unknown index %d", e.Name, e.Index)
		}
		if e.Name == GasGlobalExport || e.Name == DepthGlobalExport {
			return nil, unsupported("export name %q is reserved for the metering counters", e.Name)
		}
	}
	gasIndex := uint32(nGlobals)
	depthIndex := gasIndex + 1

	rw := newRewriter(&opts, types, funcTypes, gasIndex, depthIndex)
	for i := range codes {
		fidx := nImportedFuncs + i
		ti := funcTypes[fidx]
		if int(ti) >= len(types) {
			return nil, malformed("function %d: unknown type %d", fidx, ti)
		}
		nParams := uint64(len(types[ti].Params))
		nLocals := nParams + codes[i].NumLocals()
		if over(nLocals, opts.Limits.MaxLocals) {
			return nil, limitErr("function %d: %d locals, limit %d", fidx, nLocals, opts.Limits.MaxLocals)
		}
		if nLocals+maxScratch > math.MaxUint32 {
			return nil, limitErr("function %d: too many locals", fidx)
		}
		rw.intLocals = 0
		for _, p := range types[ti].Params {
			if p == wasmbin.I32 || p == wasmbin.I64 {
				rw.intLocals++
			}
		}
		for _, d := range codes[i].Locals {
			if d.Type == wasmbin.I32 || d.Type == wasmbin.I64 {
				rw.intLocals += uint64(d.Count)
			}
		}
		body, extra, err := rw.rewrite(codes[i].Body, uint32(nLocals), len(types[ti].Results))
		if err != nil {
			return nil, classify(err, "code section: function %d", fidx)
		}
		codes[i].Body = body
		for _, t := range extra {
			codes[i].Locals = append(codes[i].Locals, wasmbin.LocalDecl{Count: 1, Type: t})
		}
	}

	// The gas and depth globals go last so no existing global index shifts,
	// then the br_table sites' globals of Options.MissInGlobals (not
	// exported).
	init := wasmbin.AppendS64([]byte{wasmbin.OpI64Const}, opts.InitialGas)
	init = append(init, wasmbin.OpEnd)
	globals = append(globals,
		wasmbin.Global{Type: wasmbin.GlobalType{Type: wasmbin.I64, Mutable: true}, Init: init},
		wasmbin.Global{Type: wasmbin.GlobalType{Type: wasmbin.I32, Mutable: true}, Init: []byte{wasmbin.OpI32Const, 0, wasmbin.OpEnd}})
	for range rw.siteGlobals {
		globals = append(globals, wasmbin.Global{Type: wasmbin.GlobalType{Type: wasmbin.I64, Mutable: true},
			Init: []byte{wasmbin.OpI64Const, 0, wasmbin.OpEnd}})
	}
	m.Set(wasmbin.SectionGlobal, wasmbin.EncodeGlobals(globals))
	exports = append(exports,
		wasmbin.Export{Name: GasGlobalExport, Kind: wasmbin.KindGlobal, Index: gasIndex},
		wasmbin.Export{Name: DepthGlobalExport, Kind: wasmbin.KindGlobal, Index: depthIndex})
	m.Set(wasmbin.SectionExport, wasmbin.EncodeExports(exports))
	if hasCode {
		m.Set(wasmbin.SectionCode, wasmbin.EncodeCode(codes))
	}
	return m.Encode(), nil
}

func checkMemory(l wasmbin.Limits, lim Limits, what string) error {
	if over(uint64(l.Min), lim.MaxMemoryPages) {
		return limitErr("%s: minimum %d pages, limit %d", what, l.Min, lim.MaxMemoryPages)
	}
	if l.HasMax && over(uint64(l.Max), lim.MaxMemoryPages) {
		return limitErr("%s: maximum %d pages, limit %d", what, l.Max, lim.MaxMemoryPages)
	}
	return nil
}

func checkTable(t wasmbin.TableType, lim Limits, what string) error {
	if over(uint64(t.Limits.Min), lim.MaxTableSize) {
		return limitErr("%s: minimum size %d, limit %d", what, t.Limits.Min, lim.MaxTableSize)
	}
	if t.Limits.HasMax && over(uint64(t.Limits.Max), lim.MaxTableSize) {
		return limitErr("%s: maximum size %d, limit %d", what, t.Limits.Max, lim.MaxTableSize)
	}
	return nil
}
