//go:build wasip1

package main

import "github.com/sos-kernel/sos/sdk-contracts/policy"

// optimal places replicated requests itself (with the bundles), so it sees
// them: HandleAll, not HandleAnytime.
//
//go:wasmexport allocate
func exportAllocate() int32 { return policy.HandleAll(allocate) }
