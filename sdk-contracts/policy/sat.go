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

// SatDot is Σ a[k] × b[k] over the MaxKinds kinds, saturating as SatMul
// and SatAdd do: what a whole demand costs at an offer's prices (kinds
// beyond a snapshot's are zero). Policies price every candidate offer of
// a replica or bundle with it (PlaceReplicas, the shipped policies'
// bundle fill, optimal's replicas), so the common case — every factor
// below 2^31, where no product or sum can overflow — is one branch and
// four products; the saturating sums are in satDot.
func SatDot(a, b *[MaxKinds]uint64) uint64 {
	if (a[0]|a[1]|a[2]|a[3]|b[0]|b[1]|b[2]|b[3])>>31 == 0 {
		return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] + a[3]*b[3]
	}
	return satDot(a, b)
}

func satDot(a, b *[MaxKinds]uint64) uint64 {
	// Saturating sums of non-negative terms: the grouping does not matter.
	return SatAdd(SatAdd(SatMul(a[0], b[0]), SatMul(a[1], b[1])), SatAdd(SatMul(a[2], b[2]), SatMul(a[3], b[3])))
}

// MaxPrices returns r's maximum price per kind, with the largest uint64
// on the kinds (of the first nkinds, and beyond them) it does not demand:
// an offer meets r's prices (PriceOK) iff AtMost(&offer.Price, &mx).
func MaxPrices(r *Request, nkinds int) (mx [MaxKinds]uint64) {
	for k := range MaxKinds {
		mx[k] = ^uint64(0)
		if k < nkinds && r.Demand[k] > 0 {
			mx[k] = r.MaxPrice[k]
		}
	}
	return mx
}

// AtMost reports whether a[k] ≤ b[k] on every one of the MaxKinds kinds
// (a price under every maximum, a demand within what is left): unrolled,
// as policies check it per candidate offer and a loop costs in the VM.
func AtMost(a, b *[MaxKinds]uint64) bool {
	return a[0] <= b[0] && a[1] <= b[1] && a[2] <= b[2] && a[3] <= b[3]
}
