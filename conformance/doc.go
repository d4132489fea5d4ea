// Package conformance holds what every SOS node must reproduce bit for bit:
// golden state vectors (genesis + signed transactions → state root after
// each block, every receipt and final balances), known-answer tests for
// keys, addresses and transaction encoding, and (in spectest) the
// WebAssembly spec suite run through the metering pass.
//
// It uses the kernel as a black box: a vector is executed by the same
// kernel.Chain a node runs, on a fresh store, with keys derived from fixed
// seeds so signatures and transaction hashes are reproducible (ML-DSA-65
// signing is deterministic here).
//
// A vector's transactions may be transfers, contract uploads, instantiations,
// executions and migrations, and ROME market and governance payloads
// (offers, requests, cancels, usage reports, policy uploads, certificate
// signatures and revocations, proposals and votes; see market.go). Genesis
// may list deterministic node keys (nodes), which issue certificates and
// govern unless genesis_extra says otherwise; a block's sign_certificates
// makes those nodes sign their pending certificate statements as a running
// node does after each commit. Expectations then also hold each ROME epoch
// record, the market's final state and the escrow account's balance.
//
// Job vectors (a file with "job_runs", see jobs.go) check determinism of
// jobs: a module with inputs, stdin, args, env, limits, seed and clock →
// end class, exit code, gas used, stdout and stderr ids, outputs and output
// root, run by kernel.JobVM through jobrun.Execute exactly as a provider's
// executor, a consumer's verifier and a challenge committee run them.
//
// Vectors live in testdata/*.json. `go test ./conformance` and
// `sos conformance run DIR` check them; `go test ./conformance -update`
// rewrites the expectations and prints what changed — a change there is a
// consensus change and must be deliberate.
package conformance
