// Package contracts runs the lifecycle of Wasm smart contracts on the
// ledger: upload (code id = SHA-256 of the Wasm, deduplicated), instantiate
// (deterministic address, admin, label, init message, funds), execute, query
// (read-only), migrate (admin only) and synchronous cross-contract calls.
//
// It implements the VM's Host interface over a ledger.State, so a contract
// sees only its own storage, and every call runs between a State snapshot
// and either success or RevertTo: a failing callee reverts its own writes
// (and events) and nothing else. Re-entrancy is refused: a contract already
// on the call stack cannot be called again in the same transaction.
//
// It may import vm and ledger and must never import kernel or net.
//
// Tracing: with Tx.Trace set, every call adds a CallTrace (contract, entry,
// gas in total and by part: call base, module load, Wasm instructions, host
// functions, nested calls; its debug log and error) to a tree; execution
// and gas are the same with or without it (`sos tx trace`, simulate).
// Engine.Profile gives a module's upload and per-call load gas without a
// chain (`sos contract gas`).
//
// State layout (under ledger.PrefixContract):
//
//	0x10 0x01 code_id           → CodeInfo (creator, sizes, height, instances, exports)
//	0x10 0x02 code_id           → prepared module (metered, pre-initialized Wasm)
//	0x10 0x03 address           → Instance (code id, creator, admin, label, calls, gas)
//	0x10 0x04 address key       → the contract's own storage
//	0x10 0x05                   → instance sequence (uint64), for addresses
//
// An instance address is DeriveAddress("sos/contract/v1", code_id, seq).
package contracts
