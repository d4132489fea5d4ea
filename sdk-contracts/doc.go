// Package sdkcontracts holds the contract author's kit: the SDK, its test
// harness and example contracts. Nothing here imports the kernel; it needs
// only the Go standard library, so it can move to its own module unchanged.
//
// Layout:
//
//	sdk/                  package sdk: Contract, Ctx, Item, Map, Address, Coins
//	sdk/sdktest/          package sdktest: an in-memory chain for `go test`
//	sdk/internal/hostabi  the host interface both worlds implement
//	sdk/internal/bech32   BIP-173 addresses without a host
//	sdk/internal/blake3   BLAKE3 for the harness's blake3 host call
//	examples/counter      the smallest contract (instantiate, execute, query, migrate)
//	examples/token        a CW20-like fungible token with allowances
//	examples/escrow       deposits released by an arbiter or refunded after expiry
//	examples/offer-registry  ROME resource offers with indexed, paginated queries
//	policies/             ROME allocation policies (package policies)
//	jobs/                 example jobs: WASI commands run on compute leases (package
//	                      jobs; its test support, jobs/internal/wasirun, uses wazero)
//	build.sh              builds every example, policy and job to <dir>/<name>/<name>.wasm
//
// Each example is a package main in two parts: <name>.go builds everywhere
// and defines the contract value; exports_wasip1.go builds only for
// GOOS=wasip1 and holds the four //go:wasmexport functions. Tests in the same
// package run the contract natively through sdktest, so
//
//	go test ./sdk-contracts/...                      # native, no Wasm runtime needed
//	GOOS=wasip1 GOARCH=wasm go vet ./sdk-contracts/...
//	sdk-contracts/build.sh                           # the .wasm files
//
// all work from the repository root. The tests in this package build every
// example for wasip1 and check its Wasm imports (only modules sos and
// wasi_snapshot_preview1) and exports, and every job (exports _start,
// imports only wasi_snapshot_preview1, no package of ours); they are
// skipped with -short. Jobs are commands, not contracts: see jobs/doc.go
// and docs/jobs-abi.md.
package sdkcontracts
