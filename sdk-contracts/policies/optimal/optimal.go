// Command optimal is the surplus-maximizing ROME policy: exact min-cost
// flow per kind for divisible demand, after placing bundles by the dual
// prices of the LP relaxation. The algorithm is in internal/optimal; this
// package is its Wasm entry point.
package main

import (
	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/optimal"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

func allocate(s *policy.Snapshot) ([]policy.Allocation, error) { return optimal.Allocate(s) }

func main() {}

// allocate is exported to Wasm in exports_wasip1.go; natively nothing calls it.
var _ = allocate
