package smt

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Hash is a 256-bit key or SHA-256 digest. Its text form is 64 lower-case
// hex digits, so Proof values marshal to readable JSON.
type Hash [32]byte

// MaxDepth is the number of key bits, and so the deepest level a node can sit at.
const MaxDepth = 256

// Hash domain separators; see doc.go.
const (
	leafPrefix     = 0x00
	internalPrefix = 0x01
)

// String returns the hash as 64 lower-case hex digits.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the empty-subtree hash (32 zero bytes).
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText encodes h as 64 lower-case hex digits.
func (h Hash) MarshalText() ([]byte, error) {
	out := make([]byte, 64)
	hex.Encode(out, h[:])
	return out, nil
}

// UnmarshalText decodes exactly 64 hex digits.
func (h *Hash) UnmarshalText(text []byte) error {
	if len(text) != 64 {
		return fmt.Errorf("smt: hash must be 64 hex digits, got %d characters", len(text))
	}
	var out Hash
	if _, err := hex.Decode(out[:], text); err != nil {
		return fmt.Errorf("smt: hash: %w", err)
	}
	*h = out
	return nil
}

// ValueHash returns SHA-256(value), the digest the tree stores for a value.
func ValueHash(value []byte) Hash { return sha256.Sum256(value) }

// LeafHash returns SHA-256(0x00 || key || valueHash).
func LeafHash(key, valueHash Hash) Hash {
	var b [65]byte
	b[0] = leafPrefix
	copy(b[1:33], key[:])
	copy(b[33:], valueHash[:])
	return sha256.Sum256(b[:])
}

// InternalHash returns SHA-256(0x01 || left || right).
func InternalHash(left, right Hash) Hash {
	var b [65]byte
	b[0] = internalPrefix
	copy(b[1:33], left[:])
	copy(b[33:], right[:])
	return sha256.Sum256(b[:])
}

// bit returns bit i of k, bit 0 being the most significant bit of k[0].
func bit(k *Hash, i int) int { return int(k[i>>3]>>(7-uint(i&7))) & 1 }

// withBit returns k with bit i set to v.
func withBit(k Hash, i, v int) Hash {
	m := byte(0x80) >> uint(i&7)
	if v == 0 {
		k[i>>3] &^= m
	} else {
		k[i>>3] |= m
	}
	return k
}

// samePrefix reports whether a and b agree on their first n bits.
func samePrefix(a, b *Hash, n int) bool {
	if *a == *b {
		return true
	}
	full := n >> 3
	for i := 0; i < full; i++ {
		if a[i] != b[i] {
			return false
		}
	}
	if rem := n & 7; rem != 0 {
		m := byte(0xff) << uint(8-rem)
		return a[full]&m == b[full]&m
	}
	return true
}
