//go:build wasip1

package main

import "github.com/sos-kernel/sos/sdk-contracts/policy"

//go:wasmexport allocate
func exportAllocate() int32 { return policy.HandleAnytime(allocate) }
