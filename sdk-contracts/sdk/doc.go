// Package sdk is the contract author's SDK: it turns a Go value of type
// Contract into a Wasm contract for the SOS kernel, hiding the pointer-level
// host ABI (docs/contracts-abi.md) behind typed messages, typed storage and a
// Ctx.
//
// # Writing a contract
//
// Step 1. Make a package main and declare the state once, at package level:
//
//	var count = sdk.NewItem[uint64]("count")              // one value
//	var balances = sdk.NewMap[sdk.Address, uint64]("bal") // keyed values
//
// Step 2. Write handlers. sdk.Handler decodes the JSON message into a typed
// struct (unknown fields are an error); the result is JSON-encoded; a
// returned error becomes the receipt error and reverts the call:
//
//	func increment(ctx *sdk.Ctx, _ IncrementMsg) (any, error) { ... }
//
// Step 3. Put them in a Contract. Execute and Query dispatch on the single
// top-level key of the message: {"increment":{}} runs Execute["increment"]
// with {}. Instantiate and Migrate get the whole message.
//
//	var contract = sdk.Contract{
//		Name:        "acme-counter", // recorded under ContractInfoKey; guards migrations
//		Version:     "1.0.0",
//		Instantiate: sdk.Handler(instantiate),
//		Execute:     sdk.Handlers{"increment": sdk.Handler(increment)},
//		Query:       sdk.Handlers{"get": sdk.Handler(get)},
//		Migrate:     sdk.Handler(migrate), // optional
//	}
//
//	func main() { sdk.Main(contract) } // never called on the node; natively: go run . schema
//
// Step 4. In a file exports_wasip1.go (//go:build wasip1), export the entry
// points. Go accepts //go:wasmexport only in package main, hence these lines
// in every contract (leave out migrate if there is none):
//
//	//go:wasmexport instantiate
//	func exportInstantiate() int32 { return sdk.Instantiate(contract) }
//
//	//go:wasmexport execute
//	func exportExecute() int32 { return sdk.Execute(contract) }
//
//	//go:wasmexport query
//	func exportQuery() int32 { return sdk.Query(contract) }
//
//	//go:wasmexport migrate
//	func exportMigrate() int32 { return sdk.Migrate(contract) }
//
// Step 5. Test natively with package sdktest (an in-memory chain) in _test.go
// files of the same package: go test ./mycontract.
//
// Step 6. Build and upload:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -ldflags=-s -o mycontract.wasm ./mycontract
//	sos contract upload mycontract.wasm --from alice
//
// # Message schema
//
// Contract.Schema describes the messages as JSON Schema (draft 2020-12),
// generated from the Go types the handlers made by Handler decode; Main
// prints it for `go run . schema`, and `sos contract upload --schema` stores
// it with the code so that the CLI checks messages before sending them. See
// Schema for the layout and the type mapping.
//
// # Contract name and version
//
// With Contract.Name set, Serve records {"contract":Name,"version":Version}
// under ContractInfoKey after every successful instantiate and migrate (the
// cw2 convention). ReadContractInfo reads it; in a migrate handler it is the
// previous code's record. The node refuses a migration after which the
// recorded name differs from the one before, unless it is forced.
//
// # The module
//
// This package is the Go module github.com/sos-kernel/sos/sdk-contracts/sdk
// (sdk-contracts/sdk/go.mod): it depends on nothing but the standard library,
// so a contract module needs only a require of it and, until it is
// published, a replace to a checkout (`sos contract new` writes both).
//
// # Storage
//
// Values are JSON (readable with `sos contract state`). Map keys are encoded
// so that byte order is key order (see Key), and Range walks a map in key
// order between Bounds, forwards or backwards, with a limit — the building
// block for paginated queries. Item and Map methods take the Ctx, so a
// contract keeps no state of its own between calls: on the chain every
// transaction starts from a fresh instance.
//
// # Errors, panics and gas
//
// A handler's error is a handled failure: the node reverts the call's writes
// and puts the error text in the receipt. A panic is a trap: it reverts too,
// and the receipt shows the tail of the debug log (Go prints the panic
// there). Gas is metered by the node, not by the SDK; estimate it with
// `sos tx simulate`. Natively (sdktest) nothing is metered.
//
// # Builds
//
// Files built for GOOS=wasip1 call the node through //go:wasmimport. In any
// other build the entry-point functions (Instantiate, Execute, ...) panic —
// there is no node — and contracts run through sdktest instead, which calls
// Contract.Serve with an in-process host.
package sdk
