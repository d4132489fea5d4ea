//go:build wasip1

package main

import "github.com/sos-kernel/sos/sdk-contracts/sdk"

//go:wasmexport instantiate
func exportInstantiate() int32 { return sdk.Instantiate(contract) }

//go:wasmexport execute
func exportExecute() int32 { return sdk.Execute(contract) }

//go:wasmexport query
func exportQuery() int32 { return sdk.Query(contract) }

//go:wasmexport migrate
func exportMigrate() int32 { return sdk.Migrate(contract) }
