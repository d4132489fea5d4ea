package wasmbin

import (
	"fmt"
	"unicode/utf8"
)

// ValType is a value type byte.
type ValType byte

// Value types of WebAssembly 2.0.
const (
	I32       ValType = 0x7f
	I64       ValType = 0x7e
	F32       ValType = 0x7d
	F64       ValType = 0x7c
	V128      ValType = 0x7b
	FuncRef   ValType = 0x70
	ExternRef ValType = 0x6f
)

func checkValType(b []byte, off int) (ValType, error) {
	if off >= len(b) {
		return 0, errAt(ErrMalformed, off, "truncated value type")
	}
	switch t := ValType(b[off]); t {
	case I32, I64, F32, F64, FuncRef, ExternRef:
		return t, nil
	case V128:
		return t, errAt(ErrUnsupported, off, "SIMD value type v128")
	case 0x64, 0x63, 0x6e, 0x6d, 0x6c, 0x6b, 0x6a, 0x71, 0x72, 0x73, 0x69:
		return t, errAt(ErrUnsupported, off, "reference type %#x (GC / typed function references)", byte(t))
	default:
		return t, errAt(ErrMalformed, off, "malformed value type %#x", byte(t))
	}
}

func checkRefType(b []byte, off int) (ValType, error) {
	t, err := checkValType(b, off)
	if err != nil {
		return t, err
	}
	if t != FuncRef && t != ExternRef {
		return t, errAt(ErrMalformed, off, "malformed reference type %#x", byte(t))
	}
	return t, nil
}

// reader is a cursor over one section payload.
type reader struct {
	b   []byte
	off int
}

func (r *reader) u32() (uint32, error) {
	v, n, err := readU32(r.b, r.off)
	r.off = n
	return v, err
}

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errAt(ErrMalformed, r.off, "unexpected end of section")
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) bytes(n uint32) ([]byte, error) {
	if uint64(r.off)+uint64(n) > uint64(len(r.b)) {
		return nil, errAt(ErrMalformed, r.off, "unexpected end of section")
	}
	s := r.b[r.off : r.off+int(n) : r.off+int(n)]
	r.off += int(n)
	return s, nil
}

func (r *reader) name() (string, error) {
	n, err := r.u32()
	if err != nil {
		return "", err
	}
	off := r.off
	s, err := r.bytes(n)
	if err != nil {
		return "", err
	}
	if !utf8.Valid(s) {
		return "", errAt(ErrMalformed, off, "malformed UTF-8 encoding")
	}
	return string(s), nil
}

func (r *reader) valType() (ValType, error) {
	t, err := checkValType(r.b, r.off)
	r.off++
	return t, err
}

// count reads a vector length, rejecting lengths that cannot fit in the
// remaining bytes (each element takes at least minSize bytes) so a hostile
// count cannot make us allocate.
func (r *reader) count(minSize int) (uint32, error) {
	n, err := r.u32()
	if err != nil {
		return 0, err
	}
	if uint64(n)*uint64(minSize) > uint64(len(r.b)-r.off) {
		return 0, errAt(ErrMalformed, r.off, "vector length %d exceeds section size", n)
	}
	return n, nil
}

func (r *reader) done() error {
	if r.off != len(r.b) {
		return errAt(ErrMalformed, r.off, "section size mismatch: %d trailing bytes", len(r.b)-r.off)
	}
	return nil
}

// FuncType is a function signature.
type FuncType struct {
	Params, Results []ValType
}

// DecodeTypes parses the type section.
func DecodeTypes(p []byte) ([]FuncType, error) {
	r := &reader{b: p}
	n, err := r.count(3)
	if err != nil {
		return nil, where(err, "wasmbin: type section")
	}
	out := make([]FuncType, n)
	for i := range out {
		form, err := r.byte()
		if err != nil {
			return nil, where(err, "wasmbin: type section: type %d", i)
		}
		switch form {
		case 0x60:
		case 0x4e, 0x4f, 0x50, 0x5e, 0x5f:
			return nil, where(errAt(ErrUnsupported, r.off-1, "GC type form %#x", form), "wasmbin: type section: type %d", i)
		default:
			return nil, where(errAt(ErrMalformed, r.off-1, "malformed function type form %#x", form), "wasmbin: type section: type %d", i)
		}
		for k := 0; k < 2; k++ {
			m, err := r.count(1)
			if err != nil {
				return nil, where(err, "wasmbin: type section: type %d", i)
			}
			vt := make([]ValType, m)
			for j := range vt {
				if vt[j], err = r.valType(); err != nil {
					return nil, where(err, "wasmbin: type section: type %d", i)
				}
			}
			if k == 0 {
				out[i].Params = vt
			} else {
				out[i].Results = vt
			}
		}
	}
	if err := r.done(); err != nil {
		return nil, where(err, "wasmbin: type section")
	}
	return out, nil
}

// Limits are the limits of a memory or table.
type Limits struct {
	Min    uint32
	Max    uint32
	HasMax bool
}

func (r *reader) limits(memory bool) (Limits, error) {
	off := r.off
	flag, err := r.byte()
	if err != nil {
		return Limits{}, err
	}
	var l Limits
	switch flag {
	case 0x00:
	case 0x01:
		l.HasMax = true
	case 0x02, 0x03:
		if memory {
			return l, errAt(ErrUnsupported, off, "shared memory (threads)")
		}
		return l, errAt(ErrMalformed, off, "malformed limits flag %#x", flag)
	case 0x04, 0x05, 0x06, 0x07:
		if memory {
			return l, errAt(ErrUnsupported, off, "64-bit memory (memory64)")
		}
		return l, errAt(ErrUnsupported, off, "64-bit table (memory64)")
	default:
		return l, errAt(ErrMalformed, off, "integer too large: limits flag %#x", flag)
	}
	if l.Min, err = r.u32(); err != nil {
		return l, err
	}
	if l.HasMax {
		if l.Max, err = r.u32(); err != nil {
			return l, err
		}
	}
	return l, nil
}

// TableType is the type of a table.
type TableType struct {
	Elem   ValType
	Limits Limits
}

func (r *reader) tableType() (TableType, error) {
	t, err := checkRefType(r.b, r.off)
	r.off++
	if err != nil {
		return TableType{}, err
	}
	l, err := r.limits(false)
	return TableType{Elem: t, Limits: l}, err
}

// GlobalType is the type of a global.
type GlobalType struct {
	Type    ValType
	Mutable bool
}

func (r *reader) globalType() (GlobalType, error) {
	t, err := r.valType()
	if err != nil {
		return GlobalType{}, err
	}
	off := r.off
	m, err := r.byte()
	if err != nil {
		return GlobalType{}, err
	}
	if m > 1 {
		return GlobalType{}, errAt(ErrMalformed, off, "malformed mutability %#x", m)
	}
	return GlobalType{Type: t, Mutable: m == 1}, nil
}

// ExternKind is the kind of an import or export.
type ExternKind byte

// Extern kinds.
const (
	KindFunc   ExternKind = 0
	KindTable  ExternKind = 1
	KindMemory ExternKind = 2
	KindGlobal ExternKind = 3
	KindTag    ExternKind = 4
)

// Import is one import.
type Import struct {
	Module, Name string
	Kind         ExternKind
	TypeIndex    uint32 // KindFunc
	Table        TableType
	Memory       Limits
	Global       GlobalType
}

// DecodeImports parses the import section.
func DecodeImports(p []byte) ([]Import, error) {
	r := &reader{b: p}
	n, err := r.count(4)
	if err != nil {
		return nil, where(err, "wasmbin: import section")
	}
	out := make([]Import, n)
	for i := range out {
		if err := r.importEntry(&out[i]); err != nil {
			return nil, where(err, "wasmbin: import section: import %d", i)
		}
	}
	if err := r.done(); err != nil {
		return nil, where(err, "wasmbin: import section")
	}
	return out, nil
}

func (r *reader) importEntry(im *Import) error {
	var err error
	if im.Module, err = r.name(); err != nil {
		return err
	}
	if im.Name, err = r.name(); err != nil {
		return err
	}
	off := r.off
	k, err := r.byte()
	if err != nil {
		return err
	}
	im.Kind = ExternKind(k)
	switch im.Kind {
	case KindFunc:
		im.TypeIndex, err = r.u32()
	case KindTable:
		im.Table, err = r.tableType()
	case KindMemory:
		im.Memory, err = r.limits(true)
	case KindGlobal:
		im.Global, err = r.globalType()
	case KindTag:
		err = errAt(ErrUnsupported, off, "tag import (exception handling)")
	default:
		err = errAt(ErrMalformed, off, "malformed import kind %#x", k)
	}
	return err
}

// DecodeFunctions parses the function section: one type index per defined
// function.
func DecodeFunctions(p []byte) ([]uint32, error) {
	r := &reader{b: p}
	n, err := r.count(1)
	if err != nil {
		return nil, where(err, "wasmbin: function section")
	}
	out := make([]uint32, n)
	for i := range out {
		if out[i], err = r.u32(); err != nil {
			return nil, where(err, "wasmbin: function section: function %d", i)
		}
	}
	if err := r.done(); err != nil {
		return nil, where(err, "wasmbin: function section")
	}
	return out, nil
}

// DecodeTables parses the table section.
func DecodeTables(p []byte) ([]TableType, error) {
	r := &reader{b: p}
	n, err := r.count(3)
	if err != nil {
		return nil, where(err, "wasmbin: table section")
	}
	out := make([]TableType, n)
	for i := range out {
		if r.off < len(r.b) && r.b[r.off] == 0x40 {
			return nil, where(errAt(ErrUnsupported, r.off, "table with initializer (typed function references)"), "wasmbin: table section: table %d", i)
		}
		if out[i], err = r.tableType(); err != nil {
			return nil, where(err, "wasmbin: table section: table %d", i)
		}
	}
	if err := r.done(); err != nil {
		return nil, where(err, "wasmbin: table section")
	}
	return out, nil
}

// DecodeMemories parses the memory section.
func DecodeMemories(p []byte) ([]Limits, error) {
	r := &reader{b: p}
	n, err := r.count(2)
	if err != nil {
		return nil, where(err, "wasmbin: memory section")
	}
	out := make([]Limits, n)
	for i := range out {
		if out[i], err = r.limits(true); err != nil {
			return nil, where(err, "wasmbin: memory section: memory %d", i)
		}
	}
	if err := r.done(); err != nil {
		return nil, where(err, "wasmbin: memory section")
	}
	return out, nil
}

// Global is a defined global: its type and its constant initializer
// expression, kept verbatim including the final end opcode.
type Global struct {
	Type GlobalType
	Init []byte
}

// DecodeGlobals parses the global section.
func DecodeGlobals(p []byte) ([]Global, error) {
	r := &reader{b: p}
	n, err := r.count(4)
	if err != nil {
		return nil, where(err, "wasmbin: global section")
	}
	out := make([]Global, n)
	for i := range out {
		if out[i].Type, err = r.globalType(); err != nil {
			return nil, where(err, "wasmbin: global section: global %d", i)
		}
		start := r.off
		end, err := ConstExprEnd(r.b, r.off)
		if err != nil {
			return nil, where(err, "wasmbin: global section: global %d", i)
		}
		out[i].Init = r.b[start:end:end]
		r.off = end
	}
	if err := r.done(); err != nil {
		return nil, where(err, "wasmbin: global section")
	}
	return out, nil
}

// EncodeGlobals serialises a global section payload.
func EncodeGlobals(gs []Global) []byte {
	out := AppendU32(nil, uint32(len(gs)))
	for _, g := range gs {
		mut := byte(0)
		if g.Type.Mutable {
			mut = 1
		}
		out = append(out, byte(g.Type.Type), mut)
		out = append(out, g.Init...)
	}
	return out
}

// ConstExprEnd returns the offset just after the end opcode terminating the
// constant expression that starts at b[off:]. It only delimits the
// expression; which instructions are constant is the validator's business.
func ConstExprEnd(b []byte, off int) (int, error) {
	depth := 0
	for {
		in, err := ReadInstr(b, off)
		if err != nil {
			return 0, err
		}
		off = in.End
		switch in.Op {
		case OpBlock, OpLoop, OpIf:
			depth++
		case OpEnd:
			if depth == 0 {
				return off, nil
			}
			depth--
		}
	}
}

// Export is one export.
type Export struct {
	Name  string
	Kind  ExternKind
	Index uint32
}

// DecodeExports parses the export section.
func DecodeExports(p []byte) ([]Export, error) {
	r := &reader{b: p}
	n, err := r.count(3)
	if err != nil {
		return nil, where(err, "wasmbin: export section")
	}
	out := make([]Export, n)
	for i := range out {
		e := &out[i]
		if e.Name, err = r.name(); err != nil {
			return nil, where(err, "wasmbin: export section: export %d", i)
		}
		off := r.off
		k, err := r.byte()
		if err != nil {
			return nil, where(err, "wasmbin: export section: export %d", i)
		}
		e.Kind = ExternKind(k)
		switch e.Kind {
		case KindFunc, KindTable, KindMemory, KindGlobal:
		case KindTag:
			return nil, where(errAt(ErrUnsupported, off, "tag export (exception handling)"), "wasmbin: export section: export %d", i)
		default:
			return nil, where(errAt(ErrMalformed, off, "malformed export kind %#x", k), "wasmbin: export section: export %d", i)
		}
		if e.Index, err = r.u32(); err != nil {
			return nil, where(err, "wasmbin: export section: export %d", i)
		}
	}
	if err := r.done(); err != nil {
		return nil, where(err, "wasmbin: export section")
	}
	return out, nil
}

// EncodeExports serialises an export section payload.
func EncodeExports(es []Export) []byte {
	out := AppendU32(nil, uint32(len(es)))
	for _, e := range es {
		out = AppendU32(out, uint32(len(e.Name)))
		out = append(out, e.Name...)
		out = append(out, byte(e.Kind))
		out = AppendU32(out, e.Index)
	}
	return out
}

// LocalDecl declares Count locals of one type.
type LocalDecl struct {
	Count uint32
	Type  ValType
}

// Code is one function body: its local declarations and its expression
// (instructions up to and including the final end).
type Code struct {
	Locals []LocalDecl
	Body   []byte
}

// NumLocals is the number of declared locals (not counting parameters).
func (c *Code) NumLocals() uint64 {
	var n uint64
	for _, l := range c.Locals {
		n += uint64(l.Count)
	}
	return n
}

// DecodeCode parses the code section. Bodies alias p.
func DecodeCode(p []byte) ([]Code, error) {
	r := &reader{b: p}
	n, err := r.count(2)
	if err != nil {
		return nil, where(err, "wasmbin: code section")
	}
	out := make([]Code, n)
	for i := range out {
		size, err := r.u32()
		if err != nil {
			return nil, where(err, "wasmbin: code section: function %d: body size", i)
		}
		body, err := r.bytes(size)
		if err != nil {
			return nil, where(err, "wasmbin: code section: function %d", i)
		}
		br := &reader{b: body}
		nd, err := br.count(2)
		if err != nil {
			return nil, where(err, "wasmbin: code section: function %d: locals", i)
		}
		decls := make([]LocalDecl, nd)
		var total uint64
		for j := range decls {
			if decls[j].Count, err = br.u32(); err != nil {
				return nil, where(err, "wasmbin: code section: function %d: locals", i)
			}
			if decls[j].Type, err = br.valType(); err != nil {
				return nil, where(err, "wasmbin: code section: function %d: locals", i)
			}
			total += uint64(decls[j].Count)
		}
		if total > 0xffffffff {
			return nil, where(errAt(ErrMalformed, 0, "too many locals"), "wasmbin: code section: function %d", i)
		}
		if br.off >= len(body) {
			return nil, where(errAt(ErrMalformed, br.off, "function body has no end"), "wasmbin: code section: function %d", i)
		}
		out[i] = Code{Locals: decls, Body: body[br.off:]}
	}
	if err := r.done(); err != nil {
		return nil, where(err, "wasmbin: code section")
	}
	return out, nil
}

// EncodeCode serialises a code section payload.
func EncodeCode(cs []Code) []byte {
	size := 5
	for _, c := range cs {
		size += len(c.Body) + 5 + 6*len(c.Locals) + 5
	}
	out := make([]byte, 0, size)
	out = AppendU32(out, uint32(len(cs)))
	var tmp []byte
	for _, c := range cs {
		tmp = AppendU32(tmp[:0], uint32(len(c.Locals)))
		for _, l := range c.Locals {
			tmp = AppendU32(tmp, l.Count)
			tmp = append(tmp, byte(l.Type))
		}
		out = AppendU32(out, uint32(len(tmp)+len(c.Body)))
		out = append(out, tmp...)
		out = append(out, c.Body...)
	}
	return out
}

// DecodeDataCount parses the data count section.
func DecodeDataCount(p []byte) (uint32, error) {
	r := &reader{b: p}
	n, err := r.u32()
	if err == nil {
		err = r.done()
	}
	if err != nil {
		return 0, where(err, "wasmbin: data count section")
	}
	return n, nil
}

// String formats a function type as (params) -> (results), for messages.
func (f FuncType) String() string { return fmt.Sprintf("%v -> %v", f.Params, f.Results) }
