package wasmbin

// The LEB128 readers are strict in the way the spec's binary format is: an
// encoding longer than ceil(N/7) bytes is malformed, and so are unused bits in
// the last byte that do not match the value (zero for unsigned, the sign for
// signed). Leniency here could let a malformed module reach wazero re-encoded
// into a different, valid one.

// readU32 decodes an unsigned 32-bit LEB128 at b[off:], returning the value
// and the offset after it.
func readU32(b []byte, off int) (uint32, int, error) {
	var v uint32
	for i := 0; i < 5; i++ {
		if off+i >= len(b) {
			return 0, off, errAt(ErrMalformed, off, "truncated u32")
		}
		c := b[off+i]
		if i == 4 {
			if c&0x80 != 0 {
				return 0, off, errAt(ErrMalformed, off, "integer representation too long")
			}
			if c&0x70 != 0 {
				return 0, off, errAt(ErrMalformed, off, "integer too large")
			}
		}
		v |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			return v, off + i + 1, nil
		}
	}
	return 0, off, errAt(ErrMalformed, off, "integer representation too long")
}

// skipSigned validates a signed LEB128 of the given bit width (32, 33 or 64)
// and returns its value and the offset after it.
func readSigned(b []byte, off int, bits int) (int64, int, error) {
	maxBytes := (bits + 6) / 7
	var v int64
	shift := 0
	for i := 0; i < maxBytes; i++ {
		if off+i >= len(b) {
			return 0, off, errAt(ErrMalformed, off, "truncated signed integer")
		}
		c := b[off+i]
		if i == maxBytes-1 {
			if c&0x80 != 0 {
				return 0, off, errAt(ErrMalformed, off, "integer representation too long")
			}
			// Bits of the last byte beyond the value width must all equal
			// the sign bit (the highest value bit).
			used := bits - 7*i // value bits carried by this byte
			mask := byte(0x7f) &^ (byte(1)<<(used-1) - 1)
			if m := c & mask; m != 0 && m != mask {
				return 0, off, errAt(ErrMalformed, off, "integer too large")
			}
		}
		v |= int64(c&0x7f) << shift
		shift += 7
		if c&0x80 == 0 {
			if shift < 64 && c&0x40 != 0 {
				v |= -1 << shift
			}
			return v, off + i + 1, nil
		}
	}
	return 0, off, errAt(ErrMalformed, off, "integer representation too long")
}

// AppendU32 appends the minimal unsigned LEB128 encoding of v.
func AppendU32(b []byte, v uint32) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}

// AppendS64 appends the minimal signed LEB128 encoding of v.
func AppendS64(b []byte, v int64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
