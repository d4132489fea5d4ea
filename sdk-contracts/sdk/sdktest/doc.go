// Package sdktest is an in-memory chain for testing contracts with plain
// `go test`, in the spirit of CosmWasm's cw-multi-test.
//
// An App holds accounts with balances per denomination, a block height and
// time that the test advances, and contract instances registered by their Go
// value (an sdk.Contract) — no Wasm is involved. Each Instantiate, Execute and
// Migrate is a transaction: funds move from the sender first, and if the
// contract returns an error or panics, every change of the transaction is
// undone (storage, balances, new instances, events). Calls between contracts
// run in process with the ABI's rules: a failing callee reverts only its own
// writes and its caller sees the error text; a panic anywhere traps the whole
// transaction; depth is limited to MaxCallDepth; queries cannot write.
//
// Usage:
//
//  1. app := sdktest.New(sdktest.Config{}) — zero fields take defaults.
//  2. alice := app.Account("alice"); app.Mint(alice, sdk.NewCoin("uTFLP", 100)).
//  3. addr, err := app.Instantiate(contract, alice, `{"count":1}`, nil).
//  4. res, err := app.Execute(addr, alice, `{"increment":{}}`, funds);
//     res.Data is the JSON result, res.Events the events.
//  5. err = app.Query(addr, `{"get":{}}`, &out).
//  6. app.NextBlock() or app.AdvanceBlocks(n) to move height and time.
//  7. app.Migrate(addr, alice, newContract, `{}`) moves the instance to new
//     code; like the node it fails with ErrContractNameChanged when the
//     contract name recorded under sdk.ContractInfoKey changes, and
//     app.MigrateForce allows that.
//
// Messages are JSON text (string, []byte, json.RawMessage) or any value that
// encoding/json encodes. Errors a contract returns come back as a
// *ContractError that matches both ErrContract and the contract's own error
// with errors.Is.
//
// Differences from the node: addresses of test accounts and contracts are
// derived by the harness (deterministic, but not the node's derivation); gas
// is not metered (the node measures it: `sos tx simulate`); ML-DSA
// verification needs Config.VerifyMLDSA because the standard library has no
// ML-DSA; open iterators do not see writes made after they were opened.
package sdktest
