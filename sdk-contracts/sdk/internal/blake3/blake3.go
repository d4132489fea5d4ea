// Package blake3 computes 32-byte BLAKE3 digests (default hash mode) with the
// standard library only, so the test harness answers the blake3 host call
// exactly as the node does. It is a straightforward port of the reference
// implementation: correctness over speed.
package blake3

import (
	"encoding/binary"
	"math/bits"
)

const (
	chunkLen   = 1024
	blockLen   = 64
	chunkStart = 1 << 0
	chunkEnd   = 1 << 1
	parent     = 1 << 2
	root       = 1 << 3
)

var iv = [8]uint32{0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A, 0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19}

var permutation = [16]int{2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8}

func g(s *[16]uint32, a, b, c, d int, mx, my uint32) {
	s[a] = s[a] + s[b] + mx
	s[d] = bits.RotateLeft32(s[d]^s[a], -16)
	s[c] = s[c] + s[d]
	s[b] = bits.RotateLeft32(s[b]^s[c], -12)
	s[a] = s[a] + s[b] + my
	s[d] = bits.RotateLeft32(s[d]^s[a], -8)
	s[c] = s[c] + s[d]
	s[b] = bits.RotateLeft32(s[b]^s[c], -7)
}

func compress(cv [8]uint32, m [16]uint32, counter uint64, n uint32, flags uint32) [16]uint32 {
	s := [16]uint32{
		cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
		iv[0], iv[1], iv[2], iv[3], uint32(counter), uint32(counter >> 32), n, flags,
	}
	for r := range 7 {
		g(&s, 0, 4, 8, 12, m[0], m[1])
		g(&s, 1, 5, 9, 13, m[2], m[3])
		g(&s, 2, 6, 10, 14, m[4], m[5])
		g(&s, 3, 7, 11, 15, m[6], m[7])
		g(&s, 0, 5, 10, 15, m[8], m[9])
		g(&s, 1, 6, 11, 12, m[10], m[11])
		g(&s, 2, 7, 8, 13, m[12], m[13])
		g(&s, 3, 4, 9, 14, m[14], m[15])
		if r < 6 {
			var p [16]uint32
			for i, j := range permutation {
				p[i] = m[j]
			}
			m = p
		}
	}
	for i := range 8 {
		s[i] ^= s[i+8]
		s[i+8] ^= cv[i]
	}
	return s
}

func words(b []byte) (m [16]uint32) {
	var buf [blockLen]byte
	copy(buf[:], b)
	for i := range m {
		m[i] = binary.LittleEndian.Uint32(buf[4*i:])
	}
	return m
}

// output is a node not yet compressed: it becomes a chaining value, or with
// the root flag the digest.
type output struct {
	cv      [8]uint32
	block   [16]uint32
	counter uint64
	n       uint32
	flags   uint32
}

func (o output) chainingValue() (cv [8]uint32) {
	s := compress(o.cv, o.block, o.counter, o.n, o.flags)
	copy(cv[:], s[:8])
	return cv
}

func chunkOutput(chunk []byte, index uint64) output {
	cv := iv
	flags := uint32(chunkStart)
	for len(chunk) > blockLen {
		s := compress(cv, words(chunk[:blockLen]), index, blockLen, flags)
		copy(cv[:], s[:8])
		chunk = chunk[blockLen:]
		flags = 0
	}
	return output{cv: cv, block: words(chunk), counter: index, n: uint32(len(chunk)), flags: flags | chunkEnd}
}

func parentOutput(left, right [8]uint32) output {
	var m [16]uint32
	copy(m[:8], left[:])
	copy(m[8:], right[:])
	return output{cv: iv, block: m, n: blockLen, flags: parent}
}

// Sum256 returns the 32-byte BLAKE3 digest of data.
func Sum256(data []byte) [32]byte {
	var stack [][8]uint32
	var index uint64
	for len(data) > chunkLen {
		cv := chunkOutput(data[:chunkLen], index).chainingValue()
		data = data[chunkLen:]
		index++
		for total := index; total&1 == 0; total >>= 1 {
			cv = parentOutput(stack[len(stack)-1], cv).chainingValue()
			stack = stack[:len(stack)-1]
		}
		stack = append(stack, cv)
	}
	out := chunkOutput(data, index)
	for i := len(stack) - 1; i >= 0; i-- {
		out = parentOutput(stack[i], out.chainingValue())
	}
	s := compress(out.cv, out.block, 0, out.n, out.flags|root)
	var d [32]byte
	for i := range 8 {
		binary.LittleEndian.PutUint32(d[4*i:], s[i])
	}
	return d
}
