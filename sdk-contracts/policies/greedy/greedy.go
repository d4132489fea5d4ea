// Command greedy is the greedy best-fit ROME policy (fast): bundles by
// total bid (Σ demand × max price) descending, each on the cheapest
// eligible offer with room for all of it; then, kind by kind, divisible
// requests by max price descending, each from the cheapest eligible offers,
// split across offers when one is not enough. Trades pay the offer's price.
// The algorithm is fill.Greedy; this package is its Wasm entry point.
package main

import (
	"github.com/sos-kernel/sos/sdk-contracts/policies/internal/fill"
	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

func allocate(s *policy.Snapshot) ([]policy.Allocation, error) { return fill.Greedy(s), nil }

func main() {}

// allocate is exported to Wasm in exports_wasip1.go; natively nothing calls it.
var _ = allocate
