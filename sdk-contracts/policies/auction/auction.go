// Command auction is the double-auction ROME policy: per kind one uniform
// clearing price (the midpoint of the marginal bid and ask), price
// priority under eligibility. The algorithm is in internal/auction; this
// package is its Wasm entry point.
package main

import (
	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/auction"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

func allocate(s *policy.Snapshot) ([]policy.Allocation, error) { return auction.Allocate(s) }

func main() {}

// allocate is exported to Wasm in exports_wasip1.go; natively nothing calls it.
var _ = allocate
