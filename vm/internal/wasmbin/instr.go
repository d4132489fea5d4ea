package wasmbin

// Opcodes the rewriter cares about by name. The scanner knows every
// WebAssembly 2.0 opcode; only those referred to elsewhere are named.
const (
	OpUnreachable   byte = 0x00
	OpNop           byte = 0x01
	OpBlock         byte = 0x02
	OpLoop          byte = 0x03
	OpIf            byte = 0x04
	OpElse          byte = 0x05
	OpEnd           byte = 0x0b
	OpBr            byte = 0x0c
	OpBrIf          byte = 0x0d
	OpBrTable       byte = 0x0e
	OpReturn        byte = 0x0f
	OpCall          byte = 0x10
	OpCallIndirect  byte = 0x11
	OpDrop          byte = 0x1a
	OpSelect        byte = 0x1b
	OpSelectT       byte = 0x1c
	OpLocalGet      byte = 0x20
	OpLocalSet      byte = 0x21
	OpLocalTee      byte = 0x22
	OpGlobalGet     byte = 0x23
	OpGlobalSet     byte = 0x24
	OpTableGet      byte = 0x25
	OpTableSet      byte = 0x26
	OpMemorySize    byte = 0x3f
	OpMemoryGrow    byte = 0x40
	OpI32Const      byte = 0x41
	OpI64Const      byte = 0x42
	OpF32Const      byte = 0x43
	OpF64Const      byte = 0x44
	OpI32Eqz        byte = 0x45
	OpI64LtS        byte = 0x53
	OpF32Eq         byte = 0x5b
	OpF64Eq         byte = 0x61
	OpI64Sub        byte = 0x7d
	OpI64Mul        byte = 0x7e
	OpI64ExtendI32U byte = 0xad
	OpRefNull       byte = 0xd0
	OpRefIsNull     byte = 0xd1
	OpRefFunc       byte = 0xd2
	OpPrefixFC      byte = 0xfc
	OpPrefixSIMD    byte = 0xfd
	OpPrefixAtomic  byte = 0xfe
)

// Sub-opcodes of the 0xFC prefix.
const (
	FCMemoryInit uint32 = 8
	FCDataDrop   uint32 = 9
	FCMemoryCopy uint32 = 10
	FCMemoryFill uint32 = 11
	FCTableInit  uint32 = 12
	FCElemDrop   uint32 = 13
	FCTableCopy  uint32 = 14
	FCTableGrow  uint32 = 15
	FCTableSize  uint32 = 16
	FCTableFill  uint32 = 17
)

// Instr is one decoded instruction of a body.
type Instr struct {
	Op  byte   // first opcode byte
	Sub uint32 // sub-opcode after the 0xFC prefix
	Off int    // offset of the opcode
	End int    // offset just after the immediates
	// Imm is the first index immediate (label, function, local, global,
	// type...) where the instruction has one, the number of labels before
	// the default one for br_table; unused otherwise.
	Imm uint32
}

// ReadInstr decodes the instruction at b[off:]. Errors wrap ErrMalformed
// (truncated or unknown encodings) or ErrUnsupported (opcodes of proposals
// outside WebAssembly 2.0) and carry the offset.
func ReadInstr(b []byte, off int) (Instr, error) {
	if off >= len(b) {
		return Instr{}, errAt(ErrMalformed, off, "unexpected end of function body")
	}
	in := Instr{Op: b[off], Off: off}
	p := off + 1
	var err error
	u32 := func() uint32 {
		if err != nil {
			return 0
		}
		var v uint32
		v, p, err = readU32(b, p)
		return v
	}
	zeroByte := func() {
		if err != nil {
			return
		}
		if p >= len(b) {
			err = errAt(ErrMalformed, p, "truncated immediate")
			return
		}
		if b[p] != 0 {
			err = errAt(ErrUnsupported, p, "non-zero memory index (multi-memory)")
			return
		}
		p++
	}
	switch op := in.Op; {
	case op == OpUnreachable, op == OpNop, op == OpElse, op == OpEnd, op == OpReturn,
		op == OpDrop, op == OpSelect:
	case op == OpBlock, op == OpLoop, op == OpIf:
		p, err = blockType(b, p)
	case op == OpBr, op == OpBrIf, op == OpCall:
		in.Imm = u32()
	case op == OpBrTable:
		n := u32()
		in.Imm = n
		if err == nil && uint64(n) > uint64(len(b)-p) {
			err = errAt(ErrMalformed, p, "br_table length %d exceeds body", n)
		}
		for i := uint32(0); i <= n && err == nil; i++ {
			u32()
		}
	case op == OpCallIndirect:
		in.Imm = u32() // type index
		u32()          // table index (a 0x00 byte in 1.0, a u32 in 2.0)
	case op == OpSelectT:
		n := u32()
		if err == nil && n != 1 {
			err = errAt(ErrMalformed, p, "invalid result arity %d for select", n)
		}
		if err == nil {
			_, err = checkValType(b, p)
			p++
		}
	case op >= OpLocalGet && op <= OpTableSet:
		in.Imm = u32()
	case op >= 0x28 && op <= 0x3e: // loads and stores: memarg
		align := u32()
		if err == nil && align >= 64 {
			if align < 128 {
				err = errAt(ErrUnsupported, p, "memory index in memarg (multi-memory)")
			} else {
				err = errAt(ErrMalformed, p, "malformed memop flags")
			}
		}
		u32() // offset
	case op == OpMemorySize, op == OpMemoryGrow:
		zeroByte()
	case op == OpI32Const:
		_, p, err = readSigned(b, p, 32)
	case op == OpI64Const:
		_, p, err = readSigned(b, p, 64)
	case op == OpF32Const:
		p += 4
	case op == OpF64Const:
		p += 8
	case op >= 0x45 && op <= 0xc4: // numeric, incl. sign extension
	case op == OpRefNull:
		_, err = checkRefType(b, p)
		p++
	case op == OpRefIsNull:
	case op == OpRefFunc:
		in.Imm = u32()
	case op == OpPrefixFC:
		in.Sub = u32()
		if err != nil {
			break
		}
		switch in.Sub {
		case 0, 1, 2, 3, 4, 5, 6, 7: // saturating truncation
		case FCMemoryInit:
			in.Imm = u32()
			zeroByte()
		case FCDataDrop, FCElemDrop, FCTableGrow, FCTableSize, FCTableFill:
			in.Imm = u32()
		case FCMemoryCopy:
			zeroByte()
			zeroByte()
		case FCMemoryFill:
			zeroByte()
		case FCTableInit, FCTableCopy:
			in.Imm = u32()
			u32()
		case 18, 19:
			err = errAt(ErrUnsupported, off, "0xfc %d (memory64/GC)", in.Sub)
		default:
			err = errAt(ErrMalformed, off, "illegal opcode 0xfc %d", in.Sub)
		}
	case op == OpPrefixSIMD:
		err = errAt(ErrUnsupported, off, "SIMD instruction (0xfd prefix)")
	case op == OpPrefixAtomic:
		err = errAt(ErrUnsupported, off, "threads/atomics instruction (0xfe prefix)")
	case op == 0xfb:
		err = errAt(ErrUnsupported, off, "GC instruction (0xfb prefix)")
	case op >= 0x06 && op <= 0x0a, op == 0x18, op == 0x19, op == 0x1f:
		err = errAt(ErrUnsupported, off, "exception handling instruction %#x", op)
	case op == 0x12, op == 0x13:
		err = errAt(ErrUnsupported, off, "tail call instruction %#x", op)
	case op == 0x14, op == 0x15, op >= 0xd3 && op <= 0xd6:
		err = errAt(ErrUnsupported, off, "typed function reference instruction %#x", op)
	default:
		err = errAt(ErrMalformed, off, "illegal opcode %#x", op)
	}
	if err != nil {
		return Instr{}, err
	}
	if p > len(b) {
		return Instr{}, errAt(ErrMalformed, off, "truncated immediate")
	}
	in.End = p
	return in, nil
}

// blockType validates a block type: 0x40 (empty), a value type, or a
// non-negative s33 type index.
func blockType(b []byte, p int) (int, error) {
	if p >= len(b) {
		return p, errAt(ErrMalformed, p, "truncated block type")
	}
	c := b[p]
	if c == 0x40 {
		return p + 1, nil
	}
	if c&0xc0 == 0x40 { // single-byte negative s33: a value type
		_, err := checkValType(b, p)
		return p + 1, err
	}
	v, n, err := readSigned(b, p, 33)
	if err != nil {
		return n, err
	}
	if v < 0 {
		return n, errAt(ErrMalformed, p, "malformed block type")
	}
	return n, nil
}

// FC returns whether in is the given 0xFC sub-opcode.
func (in Instr) FC(sub uint32) bool { return in.Op == OpPrefixFC && in.Sub == sub }
