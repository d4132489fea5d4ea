package policy

import "math/bits"

// SatAdd is a + b, or the largest uint64 when the sum overflows: amounts
// and prices in a snapshot are arbitrary uint64s, and a policy must not
// let a wrapped sum make an expensive bundle look cheap.
func SatAdd(a, b uint64) uint64 {
	if s := a + b; s >= a {
		return s
	}
	return ^uint64(0)
}

// SatMul is a × b, or the largest uint64 when the product overflows.
func SatMul(a, b uint64) uint64 {
	if (a|b)>>32 == 0 {
		return a * b // cannot overflow; bits.Mul64 is a long sequence in Wasm
	}
	// bits.Mul64, not a division: policies call this per candidate offer.
	if hi, lo := bits.Mul64(a, b); hi == 0 {
		return lo
	}
	return ^uint64(0)
}
