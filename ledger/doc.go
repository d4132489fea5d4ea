// Package ledger stores the chain: blocks, signed transactions, receipts and
// the state (accounts, balances, contract and market records) on Pebble, with
// a sparse Merkle tree over all state so any value can be proven against a
// block's state root.
//
// It owns the consensus data formats and must stay free of everything else:
// it knows nothing of Wasm, the network or the node (it imports no other
// package of this repository except its own smt sub-package).
//
// # Keys and addresses
//
// Accounts, node identities and block proposers use ML-DSA-65 (FIPS 204,
// cloudflare/circl). A key is stored as its 32-byte seed. Signatures are
// deterministic and domain-separated through the FIPS 204 context string
// "sos/v1/<purpose>/<chain id>" (purposes: tx, block, handshake,
// certificate, usage), so a signature for one purpose or chain never
// verifies for another.
//
// An address is SHA-256("sos/address/v1" || 0x00 || packed public key), 32
// bytes, shown as bech32 with the prefix "sos" (sos1...). Other address kinds
// (contracts, module accounts) hash under their own domain with DeriveAddress.
// The public key travels with an account's first transaction and is then
// stored on chain (state key 0x02 || address).
//
// # Encoding
//
// Everything hashed or signed is CBOR in core deterministic encoding
// (RFC 8949 §4.2, fxamacker/cbor), structs as arrays. Decoding re-encodes and
// compares, so a value has exactly one accepted byte string: non-canonical,
// truncated or trailing bytes are ErrMalformed. The transaction envelope
// and the storage_proof body (kilobytes of proofs in every such
// transaction) are parsed by hand instead, accepting exactly the same byte
// strings without re-encoding, their byte strings aliasing the input (a
// test and a fuzz target hold the storage_proof decoder to the codec's
// answers). A transaction is
//
//	[version, chain_id, sender, pubkey, nonce, gas_limit, [fee_denom, price×10^6], kind, body, memo, signature]
//
// where kind tags the payload (a tagged union: see PayloadKind for the
// reserved ranges) and the signature covers the same array with an empty
// signature. Transactions are at most MaxTxBytes.
//
// # Tokens and gas
//
// Balances are uint64 base units per denom (1 TFLP = 10^6 uTFLP); TFLP, TBS,
// KWTT and STOR are always declared, genesis may declare more. Every change
// of a balance goes through Accounts, which keeps total supply = sum of all
// balances (fees sit in the FeeCollector module account). Gas prices have six
// decimals (0.01uTFLP is exact); a transaction reserves gas_limit × price
// before it runs and is refunded the unused part. GasSchedule prices bytes,
// signature checks, state reads and writes.
//
// # Storage
//
// Pebble tables (one leading byte): head, blocks by height (a header piece
// plus one key per transaction, reassembled into the canonical bytes on
// read; see blockstore.go), block hash → height, tx hash → (height, index),
// receipts, current state, SMT nodes, genesis, and an aux table for
// node-local data. Store.Commit writes a block,
// its receipts, its state changes and SMT nodes and the new head in one
// synced batch: after kill -9 the store opens at the last block whose batch
// reached the disk. A failed write (disk full) returns ErrStorageFailed and
// the store refuses further commits until restarted. Open first checks that
// the disk has room to replay the write-ahead log (Pebble writes it out as
// tables before it returns, and would retry forever on a full disk): if
// not, it returns ErrNoSpace saying where and how much must be freed.
//
// Reads of committed state go through two bounded in-memory caches that
// change nothing but speed: decoded SMT nodes by path, and state values by
// key (StoreOptions.CacheValueBytes, default 64 MiB; Commit writes every
// changed key through, a state import clears it, and a read that raced a
// commit does not fill it). Pebble's memtable is 64 MiB
// (StoreOptions.MemTableBytes): larger makes every write's skiplist search
// slower on a large state. DBStats counts its flushes and
// compactions (finished and running), so a measurement can tell a block's
// own work from the background work running beside it.
//
// PruneBlocks deletes old block bodies and receipts (a node's
// block_retention; see prune.go): each step deletes a range of heights and
// raises the pruning mark (Earliest) in one synced batch, never touching the
// state, block 0 or the head; Block and Receipt below the mark return
// ErrPruned (which is also ErrNotFound). The same batch deletes the pruned
// blocks' undo records and index keys (listed by each commit in its prune
// log) and raises HistoryBase and IndexBase: StateAt and SearchTxs of
// pruned heights return ErrPruned too.
// Two more tables are written in the same batch as each block: the undo
// records of state history (the value every key the block changed had
// before it; StateAt reads the state after any block from the first block
// the store executed itself, see history.go) and the transaction index
// (keys by sender, contract called, event type and event attribute, with the
// height and index of each transaction; SearchTxs, see txindex.go). A
// store written before they existed marks them as starting at its head on
// open; BuildIndex indexes its older blocks, newest first.
//
// The state root is the root of the compact sparse Merkle tree of package
// smt over SHA-256(state key) → value; see smt's documentation for the exact
// hashing. Store.Prove returns a value with its proof against the current
// head's state root.
package ledger
