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
// An upload may carry the JSON Schema document of the code's messages
// (SchemaFormat); it is stored next to the code and never changes. A
// migration reads the contract name the instance records under the storage
// key ContractInfoKey (the SDK's Contract.Name, cw2-style) before and after
// the new code's migrate entry point and fails with ErrContractNameChanged
// when it changed, unless the transaction is forced.
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
//	0x10 0x06 code_id           → the code's message schema (JSON, optional, as uploaded)
//	0x10 0x07 code_id           → last use (big-endian uint64 height) of a warm code
//	0x10 0x08                   → the warm code ids, 32 bytes each, in the order they became warm
//
// The warm code set (warm.go) is the consensus answer to which modules
// every node keeps loaded: calls of warm code pay no module load, a call
// of cold code pays it and makes the code warm, evicting the least
// recently used code beyond ledger.Params.WarmCodes. The node pins the
// committed set in its VM (SyncWarm) after every block, at start and after
// a state sync.
//
// An instance address is DeriveAddress("sos/contract/v1", code_id, seq).
package contracts
