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
// Gas: with Config.Gas (see GasConfig) every call is priced with the chain's
// cost table: the call base, the module load (`sos contract gas FILE.wasm`
// prints it; sdktest.LoadGasFile reads its JSON) and each host function the
// SDK calls, as the node's VM charges them. Result.Gas and App.LastGas give
// the figures by call and host function; App.GasReport summarizes calls per
// handler (min, mean, max), and ReportGas(t, app) logs it at the end of a
// test when SOS_GAS_REPORT is set (SOS_GAS_REPORT=1 go test -v ./...). What
// the harness cannot see is the Wasm instructions: for the examples that is
// 0.05–0.2% of a call, the module load being 99.8% (the counter's
// TestHarnessGasMatchesNode holds it within 1% of a node's receipts); a
// contract doing heavy computation should check `sos tx simulate`.
//
// Events: Result.Events hold what the contract emitted (type and
// attributes as given to ctx.Emit); Event.OnChain gives the receipt's form,
// "wasm-<type>" with the attribute contract=<address> first, which is what
// `sos query txs --event` searches for.
//
// Differences from the node: addresses of test accounts and contracts are
// derived by the harness (deterministic, but not the node's derivation);
// Wasm instruction gas is not counted (see above), nor the addr_to_string and
// addr_from_string host calls the Wasm SDK makes to print and parse addresses
// (the native SDK does that itself: about 600 gas each); ML-DSA verification
// needs Config.VerifyMLDSA because the standard library has no ML-DSA; open
// iterators do not see writes made after they were opened.
package sdktest
