// Command optimal is the surplus-maximizing ROME policy, an anytime policy:
// it hands in the greedy allocation first, then, for divisible demand, the
// exact min-cost flow per kind, and with bundles an allocation guided by
// the Lagrangian prices of the LP relaxation, when it beats greedy's. The
// algorithm is in internal/optimal; this package is its Wasm entry point.
package main

import (
	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/optimal"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

func allocate(s *policy.Snapshot, handIn func([]policy.Allocation)) ([]policy.Allocation, error) {
	return optimal.Allocate(s, handIn)
}

func main() {}

// allocate is exported to Wasm in exports_wasip1.go; natively nothing calls it.
var _ = allocate
