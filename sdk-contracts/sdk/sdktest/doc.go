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
// Gas: the harness prices nothing itself: a native run cannot know the
// Wasm instruction gas a node charges, which is most of a warm call. It
// records every top-level call (App.Calls: entry, sender, instance, code,
// message, funds, block), and ReportGas(t, app, "hello.wasm") prints, when
// the test ends and SOS_GAS_REPORT is set, the node's figures for them:
// `sos contract gas hello.wasm --calls FILE` (sos from SOS_BIN or PATH;
// without one the test is skipped, saying why) replays the calls on the
// node's engine with that binary's cost table and warm code set, and
// reports each call's receipt gas_used, its contract call's gas and
// whether it paid the module load, and calls / min / avg / max per handler
// (Foundry's gas report). The figures equal a node's receipts (kernel's
// TestGasReplayMatchesNode holds them equal, tolerance 0). App.NodeGas
// returns them as values; App.WriteCalls writes the calls file.
//
// Events: Result.Events hold what the contract emitted (type and
// attributes as given to ctx.Emit); Event.OnChain gives the receipt's form,
// "wasm-<type>" with the attribute contract=<address> first, which is what
// `sos query txs --event` searches for.
//
// Differences from the node: addresses of test accounts and contracts are
// derived by the harness (deterministic, but not the node's derivation; the
// gas replay maps them); gas is the replay's (see above); ML-DSA verification
// needs Config.VerifyMLDSA because the standard library has no ML-DSA; open
// iterators do not see writes made after they were opened.
package sdktest
