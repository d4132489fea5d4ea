package wasmbin

// The sections below are not otherwise parsed by this package (the
// metering pass copies them byte for byte), but wazero's decoder allocates
// for each of them a slice as long as the count the module declares
// (make([]ElementSegment, n), make([]DataSegment, n), make(NameMap, n),
// ...) before reading its entries: a count of 2^32 − 1 in a 20-byte module
// asks for hundreds of gigabytes, which ends the process with "fatal error:
// runtime: out of memory". These walks check every count against the
// bytes that remain (each entry takes at least minSize of them), so a
// module that passes them can make wazero allocate no more than a small
// multiple of its size, and return what they counted for the caller's
// limits. A count that fails here is one wazero could not have read to the
// end either (it runs out of bytes), so a well-formed module is never
// refused by these walks.

// ElementCounts is what an element section holds.
type ElementCounts struct {
	Segments uint64
	Entries  uint64 // function indices and element expressions, all segments
}

// CheckElements walks an element section payload (WebAssembly 2.0,
// prefixes 0–7).
func CheckElements(p []byte) (ElementCounts, error) {
	var c ElementCounts
	r := &reader{b: p}
	n, err := r.count(3) // prefix 1: flags, elemkind, an empty vector
	if err != nil {
		return c, where(err, "wasmbin: element section")
	}
	for i := range n {
		entries, err := r.elementSegment()
		if err != nil {
			return c, where(err, "wasmbin: element section: segment %d", i)
		}
		c.Segments++
		c.Entries += uint64(entries)
	}
	if err := r.done(); err != nil {
		return c, where(err, "wasmbin: element section")
	}
	return c, nil
}

func (r *reader) elementSegment() (uint32, error) {
	flags, err := r.u32()
	if err != nil {
		return 0, err
	}
	if flags > 7 {
		return 0, errAt(ErrMalformed, r.off, "unknown element segment flags %d", flags)
	}
	if flags == 2 || flags == 6 { // an explicit table index
		if _, err := r.u32(); err != nil {
			return 0, err
		}
	}
	if flags&1 == 0 { // active: an offset expression
		if err := r.constExpr(); err != nil {
			return 0, err
		}
	}
	if flags&3 != 0 { // an element kind (0x00) or reference type byte
		if _, err := r.byte(); err != nil {
			return 0, err
		}
	}
	if flags&4 == 0 { // function indices
		n, err := r.count(1)
		if err != nil {
			return 0, err
		}
		for range n {
			if _, err := r.u32(); err != nil {
				return 0, err
			}
		}
		return n, nil
	}
	n, err := r.count(2) // expressions: an instruction and end
	if err != nil {
		return 0, err
	}
	for range n {
		if err := r.constExpr(); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (r *reader) constExpr() error {
	end, err := ConstExprEnd(r.b, r.off)
	if err != nil {
		return err
	}
	r.off = end
	return nil
}

// CheckData walks a data section payload (prefixes 0–2) and returns its
// number of segments.
func CheckData(p []byte) (uint32, error) {
	r := &reader{b: p}
	n, err := r.count(2) // prefix 1: flags and an empty vector
	if err != nil {
		return 0, where(err, "wasmbin: data section")
	}
	for i := range n {
		if err := r.dataSegment(); err != nil {
			return 0, where(err, "wasmbin: data section: segment %d", i)
		}
	}
	if err := r.done(); err != nil {
		return 0, where(err, "wasmbin: data section")
	}
	return n, nil
}

func (r *reader) dataSegment() error {
	flags, err := r.u32()
	if err != nil {
		return err
	}
	switch flags {
	case 0:
	case 1:
	case 2:
		if _, err := r.u32(); err != nil { // memory index
			return err
		}
	default:
		return errAt(ErrMalformed, r.off, "unknown data segment flags %d", flags)
	}
	if flags != 1 {
		if err := r.constExpr(); err != nil {
			return err
		}
	}
	n, err := r.u32()
	if err != nil {
		return err
	}
	_, err = r.bytes(n)
	return err
}

// NameCounts is the most entries of one kind the name section lists.
type NameCounts struct {
	Functions uint64 // function names, and functions with local names
	Locals    uint64 // local names of one function
}

// CheckNames walks the custom section named "name" (p is the custom
// section's whole payload, its name included) as wazero reads it: the
// module name, function names and local names subsections, each entry's
// count checked; other subsections are skipped. Any other custom section
// passes unread.
func CheckNames(p []byte) (NameCounts, error) {
	var c NameCounts
	r := &reader{b: p}
	name, err := r.name()
	if err != nil || name != "name" {
		return c, nil // not the name section; an unreadable name is Decode's business elsewhere
	}
	for r.off < len(r.b) {
		id, err := r.byte()
		if err != nil {
			return c, where(err, "wasmbin: name section")
		}
		size, err := r.u32()
		if err != nil {
			return c, where(err, "wasmbin: name section")
		}
		sub, err := r.bytes(size)
		if err != nil {
			return c, where(err, "wasmbin: name section: subsection %d", id)
		}
		s := &reader{b: sub}
		switch id {
		case 1: // function names: a name map
			n, err := s.nameMap()
			if err != nil {
				return c, where(err, "wasmbin: name section: function names")
			}
			c.Functions = max(c.Functions, uint64(n))
		case 2: // local names: an indirect name map
			n, err := s.count(2)
			if err != nil {
				return c, where(err, "wasmbin: name section: local names")
			}
			c.Functions = max(c.Functions, uint64(n))
			for range n {
				if _, err := s.u32(); err != nil {
					return c, where(err, "wasmbin: name section: local names")
				}
				locals, err := s.nameMap()
				if err != nil {
					return c, where(err, "wasmbin: name section: local names")
				}
				c.Locals = max(c.Locals, uint64(locals))
			}
		}
	}
	return c, nil
}

// nameMap reads a vector of (index, name) pairs.
func (r *reader) nameMap() (uint32, error) {
	n, err := r.count(2) // an index and an empty name
	if err != nil {
		return 0, err
	}
	for range n {
		if _, err := r.u32(); err != nil {
			return 0, err
		}
		l, err := r.u32()
		if err != nil {
			return 0, err
		}
		if _, err := r.bytes(l); err != nil {
			return 0, err
		}
	}
	return n, nil
}
