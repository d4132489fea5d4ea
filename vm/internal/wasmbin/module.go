package wasmbin

import (
	"bytes"
	"fmt"
)

// SectionID identifies a module section.
type SectionID byte

// Section ids of WebAssembly 2.0. SectionTag (exception handling) is
// recognised only to be rejected.
const (
	SectionCustom    SectionID = 0
	SectionType      SectionID = 1
	SectionImport    SectionID = 2
	SectionFunction  SectionID = 3
	SectionTable     SectionID = 4
	SectionMemory    SectionID = 5
	SectionGlobal    SectionID = 6
	SectionExport    SectionID = 7
	SectionStart     SectionID = 8
	SectionElement   SectionID = 9
	SectionCode      SectionID = 10
	SectionData      SectionID = 11
	SectionDataCount SectionID = 12
	SectionTag       SectionID = 13
)

func (id SectionID) String() string {
	names := [...]string{"custom", "type", "import", "function", "table", "memory", "global",
		"export", "start", "element", "code", "data", "data count", "tag"}
	if int(id) < len(names) {
		return names[id]
	}
	return fmt.Sprintf("unknown(%d)", byte(id))
}

// Order returns the position a non-custom section must have in a module.
// The data count section (id 12) sits between element and code.
func (id SectionID) Order() int {
	switch id {
	case SectionDataCount:
		return 10
	case SectionCode:
		return 11
	case SectionData:
		return 12
	default:
		return int(id)
	}
}

var header = []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}

// Section is one section with its payload kept verbatim.
type Section struct {
	ID      SectionID
	Payload []byte
	// sizeLEB is the original encoding of the payload size. Encode reuses it
	// while the payload length is unchanged so that non-minimal encodings
	// survive a round trip byte for byte.
	sizeLEB []byte
}

// Module is a decoded module: its sections in file order.
type Module struct {
	Sections []Section
}

// Decode splits a binary module into sections. It checks the header and the
// section framing only; payloads are parsed by the Decode* functions. The
// returned module aliases b.
func Decode(b []byte) (*Module, error) {
	if len(b) < len(header) || !bytes.Equal(b[:4], header[:4]) {
		return nil, errAt(ErrMalformed, 0, "wasmbin: magic header not detected")
	}
	if !bytes.Equal(b[4:8], header[4:8]) {
		return nil, errAt(ErrMalformed, 4, "wasmbin: unknown binary version")
	}
	m := &Module{}
	off := len(header)
	for off < len(b) {
		id := SectionID(b[off])
		size, next, err := readU32(b, off+1)
		if err != nil {
			return nil, where(err, "wasmbin: section %d size", len(m.Sections))
		}
		if uint64(next)+uint64(size) > uint64(len(b)) {
			return nil, errAt(ErrMalformed, off, "wasmbin: %s section: length out of bounds", id)
		}
		end := next + int(size)
		m.Sections = append(m.Sections, Section{
			ID:      id,
			Payload: b[next:end:end],
			sizeLEB: b[off+1 : next : next],
		})
		off = end
	}
	return m, nil
}

// Encode serialises the module. For a module returned by Decode and not
// modified, the result equals the decoded bytes.
func (m *Module) Encode() []byte {
	n := len(header)
	for _, s := range m.Sections {
		n += 6 + len(s.Payload)
	}
	out := make([]byte, 0, n)
	out = append(out, header...)
	for _, s := range m.Sections {
		out = append(out, byte(s.ID))
		if s.sizeLEB != nil {
			if v, _, err := readU32(s.sizeLEB, 0); err == nil && int(v) == len(s.Payload) {
				out = append(out, s.sizeLEB...)
				out = append(out, s.Payload...)
				continue
			}
		}
		out = AppendU32(out, uint32(len(s.Payload)))
		out = append(out, s.Payload...)
	}
	return out
}

// Find returns the index of the first section with the given id, or -1.
func (m *Module) Find(id SectionID) int {
	for i, s := range m.Sections {
		if s.ID == id {
			return i
		}
	}
	return -1
}

// Set replaces the payload of the section with the given id, or inserts a new
// section at its canonical position (before the first non-custom section that
// must follow it).
func (m *Module) Set(id SectionID, payload []byte) {
	if i := m.Find(id); i >= 0 {
		m.Sections[i] = Section{ID: id, Payload: payload}
		return
	}
	pos := len(m.Sections)
	for i, s := range m.Sections {
		if s.ID != SectionCustom && s.ID.Order() > id.Order() {
			pos = i
			break
		}
	}
	m.Sections = append(m.Sections, Section{})
	copy(m.Sections[pos+1:], m.Sections[pos:])
	m.Sections[pos] = Section{ID: id, Payload: payload}
}

// CheckOrder verifies that non-custom sections appear at most once and in the
// canonical order, and that every section id is known.
func (m *Module) CheckOrder() error {
	last := 0
	for i, s := range m.Sections {
		if s.ID == SectionCustom {
			continue
		}
		if s.ID == SectionTag {
			return fmt.Errorf("wasmbin: tag section (exception handling): %w", ErrUnsupported)
		}
		if s.ID > SectionTag {
			return fmt.Errorf("wasmbin: section %d: malformed section id %d: %w", i, byte(s.ID), ErrMalformed)
		}
		if o := s.ID.Order(); o <= last {
			return fmt.Errorf("wasmbin: %s section: unexpected content after last section or duplicate section: %w", s.ID, ErrMalformed)
		} else {
			last = o
		}
	}
	return nil
}

// Parsed holds the decoded contents of the sections the metering pass and
// the VM read; every other section stays raw bytes in the Module.
type Parsed struct {
	Types        []FuncType
	Imports      []Import
	Funcs        []uint32 // type index of each defined function
	Tables       []TableType
	Memories     []Limits
	Globals      []Global
	Exports      []Export
	Codes        []Code
	HasCode      bool
	HasDataCount bool
	// What the element, data and name sections hold, counted by walks
	// that keep a hostile count from reaching wazero's decoder
	// (vectors.go).
	Elements     ElementCounts
	DataSegments uint32
	Names        NameCounts
}

// Parse decodes the type, import, function, table, memory, global, export,
// code and data-count sections of m, and walks the element and data
// sections and the custom name section (vectors.go).
func (m *Module) Parse() (*Parsed, error) {
	p := &Parsed{}
	for _, s := range m.Sections {
		var err error
		switch s.ID {
		case SectionType:
			p.Types, err = DecodeTypes(s.Payload)
		case SectionImport:
			p.Imports, err = DecodeImports(s.Payload)
		case SectionFunction:
			p.Funcs, err = DecodeFunctions(s.Payload)
		case SectionTable:
			p.Tables, err = DecodeTables(s.Payload)
		case SectionMemory:
			p.Memories, err = DecodeMemories(s.Payload)
		case SectionGlobal:
			p.Globals, err = DecodeGlobals(s.Payload)
		case SectionExport:
			p.Exports, err = DecodeExports(s.Payload)
		case SectionCode:
			p.HasCode = true
			p.Codes, err = DecodeCode(s.Payload)
		case SectionDataCount:
			p.HasDataCount = true
			_, err = DecodeDataCount(s.Payload)
		case SectionElement:
			p.Elements, err = CheckElements(s.Payload)
		case SectionData:
			p.DataSegments, err = CheckData(s.Payload)
		case SectionCustom:
			var c NameCounts
			c, err = CheckNames(s.Payload)
			p.Names.Functions = max(p.Names.Functions, c.Functions)
			p.Names.Locals = max(p.Names.Locals, c.Locals)
		}
		if err != nil {
			return nil, err
		}
	}
	return p, nil
}
