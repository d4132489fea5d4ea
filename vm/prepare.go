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
	preparedFormat  = 1
	// globalExportPrefix + index exports every mutable global so that a
	// pooled instance can be reset to the snapshot.
	globalExportPrefix = "sos_g"
	// startExport exports the start function during the snapshot run.
	startExport = "sos_start"
	// reservedPrefix is the export namespace of the VM.
	reservedPrefix = "sos_"
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

// Prepare validates an upload, instruments it for gas (package meter), runs
// its initialization (start function and Go's _initialize) once with
// deterministic inputs, and returns the module to store: the instrumented
// code with the post-initialization memory and globals baked in as data
// segments and global initializers, and _initialize removed. The result is a
// pure function of wasm and the cost table: every node computes the same
// bytes.
//
// Errors wrap ErrInvalidModule (malformed, unsupported feature, unknown
// import, bad entry point signature), ErrLimit (size limits) or, when
// initialization fails, ErrTrap / ErrOutOfGas.
func (v *VM) Prepare(ctx context.Context, wasm []byte) ([]byte, ModuleInfo, error) {
	if v.cfg.Purpose == Jobs {
		return nil, ModuleInfo{}, errors.New("vm: Prepare: a Jobs VM runs no contracts")
	}
	if len(wasm) > MaxCodeBytes {
		return nil, ModuleInfo{}, fmt.Errorf("%w: module is %d bytes, limit %d", ErrLimit, len(wasm), MaxCodeBytes)
	}
	if err := checkInterface(wasm); err != nil {
		return nil, ModuleInfo{}, err
	}
	opts := meterOptions(v.cfg.Costs)
	opts.Limits.MaxMemoryPages = v.limits.MemoryPages
	opts.InitialGas = v.prepareGas
	instrumented, err := meter.Instrument(wasm, opts)
	if err != nil {
		if errors.Is(err, meter.ErrLimit) {
			return nil, ModuleInfo{}, fmt.Errorf("%w: %w", ErrLimit, err)
		}
		return nil, ModuleInfo{}, fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	m, err := wasmbin.Decode(instrumented)
	if err != nil {
		return nil, ModuleInfo{}, invalid("instrumented module: %v", err)
	}
	globals, exports, err := globalsAndExports(m)
	if err != nil {
		return nil, ModuleInfo{}, err
	}
	// meter appends the gas global and then the call-depth global: both are
	// reset by every call, so neither is snapshotted nor re-exported.
	metered := uint32(len(globals) - 2)
	for i, g := range globals[:metered] {
		if g.Type.Mutable {
			if g.Type.Type != wasmbin.I32 && g.Type.Type != wasmbin.I64 &&
				g.Type.Type != wasmbin.F32 && g.Type.Type != wasmbin.F64 {
				return nil, ModuleInfo{}, invalid("global %d: mutable reference globals are not supported", i)
			}
			exports = append(exports, wasmbin.Export{Name: globalExportPrefix + strconv.Itoa(i), Kind: wasmbin.KindGlobal, Index: uint32(i)})
		}
	}
	// The start function runs after instantiation, as an export, so that
	// its gas counter can be read when it fails.
	if i := m.Find(wasmbin.SectionStart); i >= 0 {
		r := reader{b: m.Sections[i].Payload}
		idx := r.u32()
		if r.err != nil || r.off != len(r.b) {
			return nil, ModuleInfo{}, invalid("start section: malformed")
		}
		m.Sections = slices.Delete(m.Sections, i, i+1)
		exports = append(exports, wasmbin.Export{Name: startExport, Kind: wasmbin.KindFunc, Index: idx})
	}
	m.Set(wasmbin.SectionExport, wasmbin.EncodeExports(exports))

	snap, err := v.snapshot(ctx, m.Encode(), globals)
	if err != nil {
		return nil, ModuleInfo{}, err
	}

	// Bake the snapshot into the module.
	for i := range globals {
		if globals[i].Type.Mutable {
			globals[i].Init = constExpr(globals[i].Type.Type, snap.globals[i])
		}
	}
	m.Set(wasmbin.SectionGlobal, wasmbin.EncodeGlobals(globals))
	exports = slices.DeleteFunc(exports, func(e wasmbin.Export) bool { return e.Name == "_initialize" || e.Name == startExport })
	m.Set(wasmbin.SectionExport, wasmbin.EncodeExports(exports))
	mi := m.Find(wasmbin.SectionMemory)
	mems, _ := wasmbin.DecodeMemories(m.Sections[mi].Payload)
	mems[0].Min = snap.pages
	m.Set(wasmbin.SectionMemory, encodeMemories(mems))
	m.Set(wasmbin.SectionData, encodeData(segments(snap.memory)))
	meta := preparedMeta{format: preparedFormat, costs: v.cfg.Costs.Version, monoNs: snap.monoNs, pages: snap.pages, initGas: snap.gasUsed}
	m.Sections = append(m.Sections, wasmbin.Section{ID: wasmbin.SectionCustom, Payload: meta.encode()})
	out := m.Encode()

	info := ModuleInfo{Size: len(out), MemoryPages: snap.pages, InitGas: snap.gasUsed}
	for _, e := range exports {
		if e.Kind == wasmbin.KindFunc && !strings.HasPrefix(e.Name, reservedPrefix) {
			info.Exports = append(info.Exports, e.Name)
		}
	}
	slices.Sort(info.Exports)
	return out, info, nil
}

// checkInterface checks imports and exports against the host ABI before the
// (more expensive) instrumentation.
func checkInterface(wasm []byte) error {
	m, err := wasmbin.Decode(wasm)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	if err := m.CheckOrder(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidModule, err)
	}
	parsed, err := m.Parse()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidModule, err)
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
	globals []uint64 // by global index; valid for mutable globals
	monoNs  int64
	gasUsed uint64
}

// snapshot instantiates the module with the interpreter (compiling a 2.4 MB
// module with the optimizing compiler takes seconds; interpreting Go's
// runtime initialization takes milliseconds), runs _initialize and reads
// back memory and mutable globals.
func (v *VM) snapshot(ctx context.Context, wasm []byte, globals []wasmbin.Global) (*snapshot, error) {
	cm, err := v.snapRT.CompileModule(ctx, wasm)
	if err != nil {
		return nil, invalid("%v", err)
	}
	defer cm.Close(ctx)
	s := &callState{
		resultCap: MaxResultBytes,
		prepare:   true,
		env:       &Env{},
		logCap:    v.cfg.DebugLogBytes,
		monoBase:  snapshotMonoNs,
		rng:       newRNG(prepareSeed),
	}
	cctx := context.WithValue(ctx, stateKey{}, s)
	mod, err := v.snapRT.InstantiateModule(cctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, invalid("instantiate: %v", err)
	}
	defer mod.Close(ctx)
	gas := mod.ExportedGlobal(meter.GasGlobalExport).(api.MutableGlobal)
	s.gas = gas
	if start := mod.ExportedFunction(startExport); start != nil {
		if _, err := start.Call(cctx); err != nil {
			return nil, fmt.Errorf("vm: prepare: start function: %w", s.classify(err, int64(gas.Get())))
		}
	}
	if init := mod.ExportedFunction("_initialize"); init != nil {
		if _, err := init.Call(cctx); err != nil {
			return nil, fmt.Errorf("vm: prepare: _initialize: %w", s.classify(err, int64(gas.Get())))
		}
	}
	left := int64(gas.Get())
	if left < 0 {
		return nil, fmt.Errorf("%w: prepare: initialization", ErrOutOfGas)
	}
	mem := mod.Memory()
	buf, _ := mem.Read(0, mem.Size())
	snap := &snapshot{
		memory:  append([]byte(nil), buf...),
		pages:   mem.Size() / 65536,
		globals: make([]uint64, len(globals)),
		monoNs:  s.monoBase + s.advance,
		gasUsed: uint64(v.prepareGas - left),
	}
	for i, g := range globals {
		if !g.Type.Mutable || i >= len(globals)-2 {
			continue
		}
		snap.globals[i] = mod.ExportedGlobal(globalExportPrefix + strconv.Itoa(i)).Get()
	}
	return snap, nil
}

// constExpr encodes "T.const v; end" for a numeric global.
func constExpr(t wasmbin.ValType, v uint64) []byte {
	var b []byte
	switch t {
	case wasmbin.I32:
		b = wasmbin.AppendS64([]byte{wasmbin.OpI32Const}, int64(int32(v)))
	case wasmbin.I64:
		b = wasmbin.AppendS64([]byte{wasmbin.OpI64Const}, int64(v))
	case wasmbin.F32:
		b = binary.LittleEndian.AppendUint32([]byte{wasmbin.OpF32Const}, uint32(v))
	case wasmbin.F64:
		b = binary.LittleEndian.AppendUint64([]byte{wasmbin.OpF64Const}, v)
	}
	return append(b, wasmbin.OpEnd)
}

func encodeMemories(ms []wasmbin.Limits) []byte {
	b := wasmbin.AppendU32(nil, uint32(len(ms)))
	for _, l := range ms {
		if l.HasMax {
			b = append(b, 1)
			b = wasmbin.AppendU32(b, l.Min)
			b = wasmbin.AppendU32(b, l.Max)
		} else {
			b = append(b, 0)
			b = wasmbin.AppendU32(b, l.Min)
		}
	}
	return b
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

// preparedMeta is the payload of the sos.prepared custom section.
type preparedMeta struct {
	format  byte
	costs   uint32
	monoNs  int64
	pages   uint32
	initGas uint64
}

func (pm preparedMeta) encode() []byte {
	b := wasmbin.AppendU32(nil, uint32(len(preparedSection)))
	b = append(b, preparedSection...)
	b = append(b, pm.format)
	b = binary.LittleEndian.AppendUint32(b, pm.costs)
	b = binary.LittleEndian.AppendUint64(b, uint64(pm.monoNs))
	b = binary.LittleEndian.AppendUint32(b, pm.pages)
	return binary.LittleEndian.AppendUint64(b, pm.initGas)
}

func decodeMeta(payload []byte) (preparedMeta, bool) {
	r := reader{b: payload}
	name := r.bytes(r.u32())
	if r.err != nil || string(name) != preparedSection {
		return preparedMeta{}, false
	}
	rest := r.bytes(25)
	if r.err != nil || r.off != len(payload) {
		return preparedMeta{}, false
	}
	return preparedMeta{
		format:  rest[0],
		costs:   binary.LittleEndian.Uint32(rest[1:]),
		monoNs:  int64(binary.LittleEndian.Uint64(rest[5:])),
		pages:   binary.LittleEndian.Uint32(rest[13:]),
		initGas: binary.LittleEndian.Uint64(rest[17:]),
	}, true
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
