package vm

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/sos-kernel/sos/vm/internal/wasmbin"
	"github.com/sos-kernel/sos/vm/meter"
)

const (
	// preparedSection is the custom section Prepare appends; Call refuses
	// modules without it.
	preparedSection = "sos.prepared"
	preparedFormat  = 2
	// globalExportPrefix + index exports every mutable global so that a
	// pooled instance can be reset to the snapshot.
	globalExportPrefix = "sos_g"
	// startExport exports the start function during the snapshot run.
	startExport = "sos_start"
	// reservedPrefix is the export namespace of the VM.
	reservedPrefix = "sos_"
	// reservedSection is the custom section namespace of the VM.
	reservedSection = "sos."
	// minZeroGap is the shortest run of zero bytes that splits a data
	// segment: wazero pays ≈100 ns per segment, so shorter gaps cost more
	// than copying their zeros.
	minZeroGap = 64
)

// entryPoints must have type () -> i32 when exported.
var entryPoints = []string{"instantiate", "execute", "query", "migrate"}

// prepareSeed seeds random_get during _initialize (a fixed value: every node
// must compute the same snapshot).
var prepareSeed = sha256.Sum256([]byte("sos vm prepare seed v1"))

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidModule, fmt.Sprintf(format, args...))
}

// Prepare validates an upload, instruments it for gas (package meter),
// compiles it, runs its initialization (start function and Go's
// _initialize) once with deterministic inputs, and returns the module to
// store: the instrumented code, followed by the post-initialization memory
// (as data segments) and globals (in the "sos.prepared" custom section). The
// result is a pure function of wasm, the cost table and the VM's Purpose:
// every node computes the same bytes.
//
// All of that is paid for with gas, at most gasLimit (itself at most
// MaxUploadGas): reading and instrumenting the upload (GasPreparePerByte),
// compiling it (compileGas, charged before the compiler runs), the
// instance that runs initialization (instanceGas), the
// instructions and host calls of initialization, and the snapshot
// (GasSnapshotPerPage). info.GasUsed is set in every case, errors
// included: the uploader is charged for the work done, and the whole limit
// when the budget runs out (ErrOutOfGas).
//
// The compiled code stays in the VM's module cache under codeID (the id
// later calls will use, the hash of wasm), and in wazero's on-disk
// compilation cache when Config.CacheDir is set, so calls do not compile it
// again; a node that lost both recompiles at its own cost.
//
// Errors wrap ErrInvalidModule (malformed, unsupported feature, unknown
// import, bad entry point signature, rejected by the compiler), ErrLimit
// (size and structural limits), ErrOutOfGas or, when initialization fails,
// ErrTrap.
func (v *VM) Prepare(ctx context.Context, codeID [32]byte, wasm []byte, gasLimit uint64) ([]byte, ModuleInfo, error) {
	if v.cfg.Purpose == Jobs {
		return nil, ModuleInfo{}, errors.New("vm: Prepare: a Jobs VM runs no contracts")
	}
	if gasLimit > MaxUploadGas {
		return nil, ModuleInfo{}, fmt.Errorf("%w: upload gas limit %d above %d", ErrLimit, gasLimit, uint64(MaxUploadGas))
	}
	g := &gasBudget{limit: gasLimit}
	out, info, err := v.prepare(ctx, codeID, wasm, g)
	info.GasUsed = g.used
	return out, info, err
}

// gasBudget counts the gas of one Prepare.
type gasBudget struct{ limit, used uint64 }

// charge takes n gas, or all that is left and ErrOutOfGas when n does not
// fit: work is charged before it is done.
func (g *gasBudget) charge(n uint64, what string) error {
	if left := g.limit - g.used; n > left {
		g.used = g.limit
		return fmt.Errorf("%w: prepare: %s needs %d gas, %d left", ErrOutOfGas, what, n, left)
	}
	g.used += n
	return nil
}

func (v *VM) prepare(ctx context.Context, codeID [32]byte, wasm []byte, g *gasBudget) ([]byte, ModuleInfo, error) {
	if len(wasm) > MaxCodeBytes {
		return nil, ModuleInfo{}, fmt.Errorf("%w: module is %d bytes, limit %d", ErrLimit, len(wasm), MaxCodeBytes)
	}
	if err := g.charge(GasPrepareBase+GasPreparePerByte*uint64(len(wasm)), "reading the upload"); err != nil {
		return nil, ModuleInfo{}, err
	}
	c, err := v.buildCode(wasm)
	if err != nil {
		return nil, ModuleInfo{}, err
	}
	m, code, data, mutable, exports, st := c.m, c.code, c.data, c.mutable, c.exports, c.st
	if err := g.charge(compileGas(st), "compilation"); err != nil {
		return nil, ModuleInfo{}, err
	}
	cm, err := v.rt.CompileModule(ctx, code)
	if err != nil {
		return nil, ModuleInfo{}, invalid("%v", err)
	}
	keep := false
	defer func() {
		if !keep {
			cm.Close(ctx)
		}
	}()

	if err := g.charge(instanceGas(elementBytes(m)), "instantiation"); err != nil {
		return nil, ModuleInfo{}, err
	}
	snap, err := v.initialize(ctx, cm, data, mutable, g)
	if err != nil {
		return nil, ModuleInfo{}, err
	}
	if err := g.charge(GasSnapshotPerPage*uint64(snap.pages), "snapshot"); err != nil {
		return nil, ModuleInfo{}, err
	}

	// Bake the snapshot into the stored module: data segments and the
	// sos.prepared section, which load strips again to get code back.
	m.Sections = slices.Insert(m.Sections, dataSectionIndex(m), wasmbin.Section{ID: wasmbin.SectionData, Payload: encodeData(segments(snap.memory))})
	meta := preparedMeta{format: preparedFormat, costs: v.cfg.Costs.Version, monoNs: snap.monoNs, pages: snap.pages, initGas: snap.gasUsed,
		functions: uint32(st.Functions), blocks: uint32(st.Blocks), globals: snap.globals}
	m.Sections = append(m.Sections, wasmbin.Section{ID: wasmbin.SectionCustom, Payload: meta.encode()})
	out := m.Encode()

	info := ModuleInfo{Size: len(out), MemoryPages: snap.pages, InitGas: snap.gasUsed}
	for _, e := range exports {
		if e.Kind == wasmbin.KindFunc && callable(e.Name) {
			info.Exports = append(info.Exports, e.Name)
		}
	}
	slices.Sort(info.Exports)
	if minPages, err := memoryMin(m); err == nil {
		keep = v.keepPrepared(codeID, cm, snap.memory, minPages, meta, elementBytes(m))
	}
	return out, info, nil
}

// codeModule is an upload made ready to compile: instrumented, its mutable
// globals and start function exported, its data segments taken out.
type codeModule struct {
	m       *wasmbin.Module
	code    []byte // m encoded: what is compiled and instantiated
	data    []activeSegment
	mutable []uint32 // indexes of the mutable globals to snapshot
	exports []wasmbin.Export
	st      moduleStructure // of code, for compileGas
}

// buildCode checks an upload (interface, structural limits) and turns it
// into the module that is compiled once and instantiated by every call.
func (v *VM) buildCode(wasm []byte) (*codeModule, error) {
	if err := checkInterface(wasm); err != nil {
		return nil, err
	}
	opts := meterOptions(v.cfg.Costs)
	opts.Limits.MaxMemoryPages = v.limits.MemoryPages
	instrumented, err := meter.Instrument(wasm, opts)
	if err != nil {
		if errors.Is(err, meter.ErrLimit) {
			return nil, fmt.Errorf("%w: %w", ErrLimit, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	m, err := wasmbin.Decode(instrumented)
	if err != nil {
		return nil, invalid("instrumented module: %v", err)
	}
	globals, exports, err := globalsAndExports(m)
	if err != nil {
		return nil, err
	}
	// meter appends the gas global and then the call-depth global: both are
	// reset by every call, so neither is snapshotted nor re-exported.
	metered := uint32(len(globals) - 2)
	var mutable []uint32
	for i, g := range globals[:metered] {
		if g.Type.Mutable {
			if g.Type.Type != wasmbin.I32 && g.Type.Type != wasmbin.I64 &&
				g.Type.Type != wasmbin.F32 && g.Type.Type != wasmbin.F64 {
				return nil, invalid("global %d: mutable reference globals are not supported", i)
			}
			mutable = append(mutable, uint32(i))
			exports = append(exports, wasmbin.Export{Name: globalExportPrefix + strconv.Itoa(i), Kind: wasmbin.KindGlobal, Index: uint32(i)})
		}
	}
	// The start function runs after instantiation, as an export, so that
	// it gets the uploader's gas and its counter can be read when it fails.
	if i := m.Find(wasmbin.SectionStart); i >= 0 {
		r := reader{b: m.Sections[i].Payload}
		idx := r.u32()
		if r.err != nil || r.off != len(r.b) {
			return nil, invalid("start section: malformed")
		}
		m.Sections = slices.Delete(m.Sections, i, i+1)
		exports = append(exports, wasmbin.Export{Name: startExport, Kind: wasmbin.KindFunc, Index: idx})
	}
	m.Set(wasmbin.SectionExport, wasmbin.EncodeExports(exports))
	// The data segments are written into memory by hand before
	// initialization, as instantiation would, and leave the module: what is
	// compiled here is exactly what every call instantiates (its memory comes
	// from the snapshot image), so it is compiled once.
	var data []activeSegment
	if i := m.Find(wasmbin.SectionData); i >= 0 {
		if data, err = decodeActiveData(m.Sections[i].Payload); err != nil {
			return nil, invalid("data section: %v", err)
		}
		m.Sections = slices.Delete(m.Sections, i, i+1)
	}
	code := m.Encode()

	parsed, err := m.Parse()
	if err != nil {
		return nil, invalid("instrumented module: %v", err)
	}
	st, err := measureStructure(parsed)
	if err != nil {
		return nil, err
	}
	// The metering adds a check (an if) at function entries, loop heads and
	// call sites, so the blocks the compiler sees are bounded here.
	if st.MaxBlocks > MaxFunctionBlocks {
		return nil, fmt.Errorf("%w: a function has %d basic blocks once instrumented, limit %d", ErrLimit, st.MaxBlocks, MaxFunctionBlocks)
	}
	return &codeModule{m: m, code: code, data: data, mutable: mutable, exports: exports, st: st}, nil
}

// callable reports whether Call may run the export name: entry points and
// helpers, not the VM's own exports nor _initialize, which ran at Prepare.
func callable(name string) bool {
	return !strings.HasPrefix(name, reservedPrefix) && name != "_initialize"
}

// dataSectionIndex is where a data section goes in m: after its last
// non-custom section (data has the highest order).
func dataSectionIndex(m *wasmbin.Module) int {
	at := 0
	for i, s := range m.Sections {
		if s.ID != wasmbin.SectionCustom {
			at = i + 1
		}
	}
	return at
}

// checkInterface checks the module's structure against the structural
// limits, and its imports and exports against the host ABI, before the
// (more expensive) instrumentation.
func checkInterface(wasm []byte) error {
	m, err := wasmbin.Decode(wasm)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	if err := m.CheckOrder(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	for _, s := range m.Sections {
		if s.ID == wasmbin.SectionCustom {
			r := reader{b: s.Payload}
			if name := r.bytes(r.u32()); r.err == nil && strings.HasPrefix(string(name), reservedSection) {
				return invalid("custom section %q: names starting with %q are reserved", name, reservedSection)
			}
		}
	}
	parsed, err := m.Parse()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	st, err := measureStructure(parsed)
	if err != nil {
		return err
	}
	if err := checkStructure(st); err != nil {
		return err
	}
	if parsed.HasDataCount {
		return invalid("data count section: passive data segments (memory.init, data.drop) are not supported")
	}
	// Tables must not change during initialization; see checkTables.
	types, imports, funcs, exports, nMems := parsed.Types, parsed.Imports, parsed.Funcs, parsed.Exports, len(parsed.Memories)
	sigs := hostSignatures()
	var funcTypes []uint32
	for _, im := range imports {
		if im.Kind != wasmbin.KindFunc {
			return invalid("import %s.%s: only functions may be imported", im.Module, im.Name)
		}
		h, ok := sigs[im.Module+"."+im.Name]
		if !ok {
			return invalid("import %s.%s: unknown host function", im.Module, im.Name)
		}
		if int(im.TypeIndex) >= len(types) {
			return invalid("import %s.%s: unknown type %d", im.Module, im.Name, im.TypeIndex)
		}
		if want := toFuncType(h); !sameType(types[im.TypeIndex], want) {
			return invalid("import %s.%s: signature %s, want %s", im.Module, im.Name, types[im.TypeIndex], want)
		}
		funcTypes = append(funcTypes, im.TypeIndex)
	}
	if nMems != 1 {
		return invalid("module must define exactly one memory, has %d", nMems)
	}
	funcTypes = append(funcTypes, funcs...)
	for _, e := range exports {
		if strings.HasPrefix(e.Name, reservedPrefix) {
			return invalid("export %q: names starting with %q are reserved", e.Name, reservedPrefix)
		}
		if e.Kind != wasmbin.KindFunc {
			continue
		}
		if int(e.Index) >= len(funcTypes) || int(funcTypes[e.Index]) >= len(types) {
			return invalid("export %q: unknown function %d", e.Name, e.Index)
		}
		ft := types[funcTypes[e.Index]]
		want := wasmbin.FuncType{Results: []wasmbin.ValType{wasmbin.I32}}
		if e.Name == "_initialize" {
			want = wasmbin.FuncType{}
		} else if !slices.Contains(entryPoints, e.Name) {
			continue
		}
		if !sameType(ft, want) {
			return invalid("export %q: signature %s, want %s", e.Name, ft, want)
		}
	}
	return checkTables(m)
}

// checkTables rejects instructions that change a table: the snapshot bakes
// memory and globals, not tables, so a table must be what the element
// section says it is.
func checkTables(m *wasmbin.Module) error {
	i := m.Find(wasmbin.SectionCode)
	if i < 0 {
		return nil
	}
	codes, err := wasmbin.DecodeCode(m.Sections[i].Payload)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	for fi, c := range codes {
		// Fast path: a body without the table.set opcode or the 0xFC
		// prefix byte cannot contain a table mutation.
		if !slices.Contains(c.Body, wasmbin.OpTableSet) && !slices.Contains(c.Body, wasmbin.OpPrefixFC) {
			continue
		}
		for off := 0; off < len(c.Body); {
			in, err := wasmbin.ReadInstr(c.Body, off)
			if err != nil {
				if errors.Is(err, wasmbin.ErrUnsupported) {
					return fmt.Errorf("%w: function body %d: %w", ErrInvalidModule, fi, err)
				}
				return fmt.Errorf("%w: function body %d: %w", ErrInvalidModule, fi, err)
			}
			if in.Op == wasmbin.OpTableSet || in.FC(wasmbin.FCTableGrow) || in.FC(wasmbin.FCTableFill) ||
				in.FC(wasmbin.FCTableCopy) || in.FC(wasmbin.FCTableInit) {
				return invalid("function body %d: instructions that modify tables (table.set/grow/fill/copy/init) are not supported", fi)
			}
			off = in.End
		}
	}
	return nil
}

func toFuncType(h hostFunc) wasmbin.FuncType {
	var ft wasmbin.FuncType
	for _, p := range h.params {
		ft.Params = append(ft.Params, wasmbin.ValType(p))
	}
	for _, r := range h.results {
		ft.Results = append(ft.Results, wasmbin.ValType(r))
	}
	return ft
}

func sameType(a, b wasmbin.FuncType) bool {
	return slices.Equal(a.Params, b.Params) && slices.Equal(a.Results, b.Results)
}

func globalsAndExports(m *wasmbin.Module) ([]wasmbin.Global, []wasmbin.Export, error) {
	var globals []wasmbin.Global
	var exports []wasmbin.Export
	var err error
	if i := m.Find(wasmbin.SectionGlobal); i >= 0 {
		if globals, err = wasmbin.DecodeGlobals(m.Sections[i].Payload); err != nil {
			return nil, nil, invalid("%v", err)
		}
	}
	if i := m.Find(wasmbin.SectionExport); i >= 0 {
		if exports, err = wasmbin.DecodeExports(m.Sections[i].Payload); err != nil {
			return nil, nil, invalid("%v", err)
		}
	}
	if len(globals) == 0 {
		return nil, nil, invalid("instrumented module has no gas global")
	}
	return globals, exports, nil
}

type snapshot struct {
	memory  []byte
	pages   uint32
	globals []globalValue // the mutable globals after initialization
	monoNs  int64
	gasUsed uint64
}

// globalValue is a mutable global's value after initialization.
type globalValue struct {
	index uint32
	value uint64
}

// initialize instantiates the compiled module with the upload's data
// segments written into its memory, runs the start function and
// _initialize with the gas left in g, and reads back memory and the
// mutable globals.
func (v *VM) initialize(ctx context.Context, cm wazero.CompiledModule, data []activeSegment, mutable []uint32, g *gasBudget) (*snapshot, error) {
	s := &callState{
		resultCap: MaxResultBytes,
		prepare:   true,
		env:       &Env{},
		logCap:    v.cfg.DebugLogBytes,
		monoBase:  snapshotMonoNs,
		rng:       newRNG(prepareSeed),
	}
	cctx := context.WithValue(ctx, stateKey{}, s)
	mod, err := v.rt.InstantiateModule(cctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, invalid("instantiate: %v", err)
	}
	defer mod.Close(ctx)
	mem := mod.Memory()
	for i, d := range data {
		if !mem.Write(d.off, d.data) {
			return nil, invalid("data segment %d: %d bytes at %#x are outside the initial memory of %d bytes", i, len(d.data), d.off, mem.Size())
		}
	}
	budget := min(g.limit-g.used, meter.MaxGas)
	gas := mod.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal)
	gas.Set(budget)
	mod.ExportedGlobal(meter.DepthGlobalExport).(api.MutableGlobal).Set(0)
	s.gas = gas
	run := func(name, what string) error {
		fn := mod.ExportedFunction(name)
		if fn == nil {
			return nil
		}
		if _, err := fn.Call(cctx); err != nil {
			left := int64(gas.Get())
			if left < 0 {
				g.used = g.limit
			} else {
				g.used += budget - uint64(left)
			}
			return fmt.Errorf("vm: prepare: %s: %w", what, s.classify(err, left))
		}
		return nil
	}
	if err := run(startExport, "start function"); err != nil {
		return nil, err
	}
	if err := run("_initialize", "_initialize"); err != nil {
		return nil, err
	}
	left := int64(gas.Get())
	if left < 0 { // cannot happen: a negative counter traps before returning
		g.used = g.limit
		return nil, fmt.Errorf("%w: prepare: initialization", ErrOutOfGas)
	}
	used := budget - uint64(left)
	g.used += used
	buf, _ := mem.Read(0, mem.Size())
	snap := &snapshot{
		memory:  append([]byte(nil), buf...),
		pages:   mem.Size() / 65536,
		monoNs:  s.monoBase + s.advance,
		gasUsed: used,
	}
	for _, i := range mutable {
		snap.globals = append(snap.globals, globalValue{index: i, value: mod.ExportedGlobal(globalExportPrefix + strconv.Itoa(int(i))).Get()})
	}
	return snap, nil
}

// activeSegment is an active data segment of memory 0: bytes written at
// a constant offset when the module is instantiated.
type activeSegment struct {
	off  uint32
	data []byte
}

// decodeActiveData parses an upload's data section. Offsets must be
// i32.const expressions (the only constant a module without imported
// globals can use); passive segments, which nothing can copy without a data
// count section, are skipped.
func decodeActiveData(p []byte) ([]activeSegment, error) {
	r := reader{b: p}
	n := r.u32()
	if r.err == nil && uint64(n) > uint64(len(p)) {
		return nil, fmt.Errorf("%d segments in %d bytes", n, len(p))
	}
	segs := make([]activeSegment, 0, n)
	for i := uint32(0); i < n && r.err == nil; i++ {
		flag := r.u32()
		if flag == 2 && r.u32() != 0 {
			return nil, fmt.Errorf("segment %d: memory index is not 0", i)
		}
		var off uint32
		if flag == 0 || flag == 2 {
			if op := r.byte(); r.err == nil && op != wasmbin.OpI32Const {
				return nil, fmt.Errorf("segment %d: offset is not an i32.const expression", i)
			}
			v := r.s64()
			if r.err == nil && (v < math.MinInt32 || v > math.MaxInt32) {
				return nil, fmt.Errorf("segment %d: offset %d is not an i32", i, v)
			}
			off = uint32(int32(v))
			if op := r.byte(); r.err == nil && op != wasmbin.OpEnd {
				return nil, fmt.Errorf("segment %d: offset is not an i32.const expression", i)
			}
		} else if flag != 1 {
			return nil, fmt.Errorf("segment %d: unknown flags %d", i, flag)
		}
		d := r.bytes(r.u32())
		if flag != 1 && r.err == nil {
			segs = append(segs, activeSegment{off: off, data: d})
		}
	}
	if r.err == nil && r.off != len(p) {
		return nil, errors.New("trailing bytes")
	}
	return segs, r.err
}

// segment is an active data segment of memory 0.
type segment struct {
	off  uint32
	data []byte
}

// segments splits memory into the non-zero runs separated by at least
// minZeroGap zero bytes.
func segments(mem []byte) []segment {
	var segs []segment
	i, n := 0, len(mem)
	for {
		for i < n && mem[i] == 0 {
			i++
		}
		if i == n {
			return segs
		}
		start, end := i, i+1 // end: just after the last non-zero byte
		for j := i + 1; j < n; j++ {
			if mem[j] != 0 {
				end = j + 1
			} else if j-end+1 >= minZeroGap {
				break
			}
		}
		segs = append(segs, segment{off: uint32(start), data: mem[start:end]})
		i = end
	}
}

func encodeData(segs []segment) []byte {
	size := 5
	for _, s := range segs {
		size += 12 + len(s.data)
	}
	b := make([]byte, 0, size)
	b = wasmbin.AppendU32(b, uint32(len(segs)))
	for _, s := range segs {
		b = append(b, 0, wasmbin.OpI32Const)
		b = wasmbin.AppendS64(b, int64(int32(s.off)))
		b = append(b, wasmbin.OpEnd)
		b = wasmbin.AppendU32(b, uint32(len(s.data)))
		b = append(b, s.data...)
	}
	return b
}

// decodeData parses a data section written by encodeData and applies it to
// mem; anything else is an error.
func decodeData(p []byte, mem []byte) error {
	r := reader{b: p}
	n := r.u32()
	for i := uint32(0); i < n && r.err == nil; i++ {
		if r.byte() != 0 || r.byte() != wasmbin.OpI32Const {
			return fmt.Errorf("data segment %d: not written by Prepare", i)
		}
		off := uint32(int32(r.s64()))
		if r.byte() != wasmbin.OpEnd {
			return fmt.Errorf("data segment %d: not written by Prepare", i)
		}
		l := r.u32()
		d := r.bytes(l)
		if r.err == nil && uint64(off)+uint64(l) > uint64(len(mem)) {
			return fmt.Errorf("data segment %d: out of memory bounds", i)
		}
		copy(mem[off:], d)
	}
	if r.err == nil && r.off != len(p) {
		return errors.New("data section: trailing bytes")
	}
	return r.err
}

// preparedMeta is the payload of the sos.prepared custom section, the last
// section of a prepared module.
type preparedMeta struct {
	format  byte
	costs   uint32
	monoNs  int64
	pages   uint32
	initGas uint64
	// functions and blocks of the code: with the size and pages, what a
	// load costs (loadGas).
	functions, blocks uint32
	globals           []globalValue // mutable globals after initialization, by index
}

func (pm preparedMeta) encode() []byte {
	b := wasmbin.AppendU32(nil, uint32(len(preparedSection)))
	b = append(b, preparedSection...)
	b = append(b, pm.format)
	b = binary.LittleEndian.AppendUint32(b, pm.costs)
	b = binary.LittleEndian.AppendUint64(b, uint64(pm.monoNs))
	b = binary.LittleEndian.AppendUint32(b, pm.pages)
	b = binary.LittleEndian.AppendUint64(b, pm.initGas)
	b = wasmbin.AppendU32(b, pm.functions)
	b = wasmbin.AppendU32(b, pm.blocks)
	b = wasmbin.AppendU32(b, uint32(len(pm.globals)))
	for _, g := range pm.globals {
		b = wasmbin.AppendU32(b, g.index)
		b = binary.LittleEndian.AppendUint64(b, g.value)
	}
	return b
}

func decodeMeta(payload []byte) (preparedMeta, bool) {
	r := reader{b: payload}
	name := r.bytes(r.u32())
	if r.err != nil || string(name) != preparedSection {
		return preparedMeta{}, false
	}
	fixed := r.bytes(25)
	if r.err != nil {
		return preparedMeta{}, false
	}
	pm := preparedMeta{
		format:  fixed[0],
		costs:   binary.LittleEndian.Uint32(fixed[1:]),
		monoNs:  int64(binary.LittleEndian.Uint64(fixed[5:])),
		pages:   binary.LittleEndian.Uint32(fixed[13:]),
		initGas: binary.LittleEndian.Uint64(fixed[17:]),
	}
	if pm.format != preparedFormat {
		return pm, true // the caller reports the format
	}
	pm.functions = r.u32()
	pm.blocks = r.u32()
	n := r.u32()
	if r.err != nil || uint64(n)*9 > uint64(len(payload)) {
		return preparedMeta{}, false
	}
	for i := uint32(0); i < n && r.err == nil; i++ {
		idx := r.u32()
		v := r.bytes(8)
		if r.err == nil {
			pm.globals = append(pm.globals, globalValue{index: idx, value: binary.LittleEndian.Uint64(v)})
		}
	}
	if r.err != nil || r.off != len(payload) {
		return preparedMeta{}, false
	}
	return pm, true
}

// splitPrepared takes a prepared module apart: the code Prepare compiled
// (every section but the data section and the trailing sos.prepared
// section, byte for byte), the snapshot's data section and the metadata.
func splitPrepared(prepared []byte) (code []byte, data []byte, meta preparedMeta, minPages uint32, err error) {
	wm, err := wasmbin.Decode(prepared)
	if err != nil {
		return nil, nil, meta, 0, invalid("prepared module: %v", err)
	}
	n := len(wm.Sections)
	found := false
	if n > 0 && wm.Sections[n-1].ID == wasmbin.SectionCustom {
		meta, found = decodeMeta(wm.Sections[n-1].Payload)
	}
	switch {
	case !found:
		return nil, nil, meta, 0, invalid("module was not produced by Prepare (no %s section)", preparedSection)
	case meta.format != preparedFormat:
		return nil, nil, meta, 0, invalid("prepared module format %d, want %d", meta.format, preparedFormat)
	}
	wm.Sections = wm.Sections[:n-1]
	i := wm.Find(wasmbin.SectionData)
	if i < 0 {
		return nil, nil, meta, 0, invalid("prepared module has no data section")
	}
	data = wm.Sections[i].Payload
	wm.Sections = slices.Delete(wm.Sections, i, i+1)
	if minPages, err = memoryMin(wm); err != nil {
		return nil, nil, meta, 0, err
	}
	return wm.Encode(), data, meta, minPages, nil
}

// memoryMin is the minimum size of m's memory, in pages.
func memoryMin(m *wasmbin.Module) (uint32, error) {
	i := m.Find(wasmbin.SectionMemory)
	if i < 0 {
		return 0, invalid("module has no memory")
	}
	mems, err := wasmbin.DecodeMemories(m.Sections[i].Payload)
	if err != nil || len(mems) != 1 {
		return 0, invalid("memory section: %v", err)
	}
	return mems[0].Min, nil
}

// LoadGas is what a cold call of a prepared module pays for loading it
// (GasLoadBase and the other GasLoad figures), before it runs: the figure
// the SDK test harness needs to price calls like the node (`sos contract
// gas`).
func LoadGas(prepared []byte) (uint64, error) { return loadGas(prepared) }

// loadGas is what every call of a prepared module pays for loading it:
// see GasLoadBase. It reads the module's section headers and metadata
// only, so it is known before any loading work.
func loadGas(prepared []byte) (uint64, error) {
	wm, err := wasmbin.Decode(prepared)
	if err != nil {
		return 0, invalid("prepared module: %v", err)
	}
	n := len(wm.Sections)
	if n == 0 || wm.Sections[n-1].ID != wasmbin.SectionCustom {
		return 0, invalid("module was not produced by Prepare (no %s section)", preparedSection)
	}
	meta, ok := decodeMeta(wm.Sections[n-1].Payload)
	switch {
	case !ok:
		return 0, invalid("module was not produced by Prepare (no %s section)", preparedSection)
	case meta.format != preparedFormat:
		return 0, invalid("prepared module format %d, want %d", meta.format, preparedFormat)
	}
	return GasLoadBase + GasLoadPerByte*uint64(len(prepared)) + GasLoadPerFunction*uint64(meta.functions) +
		GasLoadPerBlock*uint64(meta.blocks) + GasLoadPerPage*uint64(meta.pages) + instanceGas(elementBytes(wm)), nil
}

// instanceGas is what creating an instance of a loaded module costs (see
// GasInstanceBase): a cold call creates one after loading the module, and
// a call whose memory grew pays for the one that replaces its instance.
func instanceGas(elemBytes int) uint64 {
	return GasInstanceBase + GasInstancePerElemByte*uint64(elemBytes)
}

// elementBytes is the size of m's element section: every entry of an
// element segment takes at least one byte, so it bounds the table entries
// an instantiation writes.
func elementBytes(m *wasmbin.Module) int {
	if i := m.Find(wasmbin.SectionElement); i >= 0 {
		return len(m.Sections[i].Payload)
	}
	return 0
}

// reader is a tiny LEB128 reader for the sections Prepare writes.
type reader struct {
	b   []byte
	off int
	err error
}

var errShort = errors.New("unexpected end of section")

func (r *reader) byte() byte {
	if r.err != nil || r.off >= len(r.b) {
		r.err = errShort
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *reader) u32() uint32 {
	var v uint64
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			if v > math.MaxUint32 {
				r.err = errors.New("integer too large")
			}
			return uint32(v)
		}
	}
	r.err = errors.New("integer too long")
	return 0
}

func (r *reader) s64() int64 {
	var v int64
	var shift uint
	for shift < 70 {
		c := r.byte()
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v
		}
	}
	r.err = errors.New("integer too long")
	return 0
}

func (r *reader) bytes(n uint32) []byte {
	if r.err != nil || uint64(r.off)+uint64(n) > uint64(len(r.b)) {
		r.err = errShort
		return nil
	}
	r.off += int(n)
	return r.b[r.off-int(n) : r.off]
}
