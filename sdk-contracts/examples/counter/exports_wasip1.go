//go:build wasip1

package main

import "github.com/sos-kernel/sos/sdk-contracts/sdk"

// The Wasm entry points. Go allows //go:wasmexport only in package main, so
// every contract carries these four lines; sdk does the rest.

//go:wasmexport instantiate
func exportInstantiate() int32 { return sdk.Instantiate(contract) }

//go:wasmexport execute
func exportExecute() int32 { return sdk.Execute(contract) }

//go:wasmexport query
func exportQuery() int32 { return sdk.Query(contract) }

//go:wasmexport migrate
func exportMigrate() int32 { return sdk.Migrate(contract) }
