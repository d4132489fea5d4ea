// Package kernel is the node: configuration, lifecycle, deterministic
// execution of transactions and blocks, the mempool, block production and
// the HTTP API with its event stream.
//
// It wires the other packages (ledger for storage, and the VM, contracts,
// market and network layers as they are added) and must never import the
// TUI: the TUI reads the API through package kernel/client like any other
// program.
//
// Using it:
//
//  1. LoadHome reads config.toml, genesis.json and node_key.json from a home
//     made by "sos init" (or fill NodeOptions yourself; inject Clock, Logger
//     and a vfs.FS in tests).
//  2. OpenNode opens the store and commits genesis as block 0 on first start
//     (later starts check the genesis is the same).
//  3. Run serves the API and produces a block every block_interval until the
//     context ends; it returns the error that stopped it (for instance a full
//     disk), never leaving a half-written block. The API bounds its clients
//     (NodeOptions.API, APILimits: timeouts, a connection cap, bodies read as
//     they arrive, never sized by their declared length). Every refusal,
//     an unknown route too, is a JSON error; any request may carry
//     ?min_height=H to be answered once block H is committed here.
//  4. Close closes the store.
//
// Execution (Chain, Executor) is a pure function of the stored state, the
// block header (height, time) and the transactions: BuildBlock on the
// proposer and ExecuteBlock on any other node give bit-identical receipts and
// state roots, and ExecuteBlock refuses a block whose signed header disagrees
// (ErrStateMismatch).
//
// In a cluster, membership is ledger state changed only by transactions a
// voting member signs (membership.go); raft follows it (cluster_members.go).
// Who may join is an operator's decision (admission.go): a join request is
// answered with the genesis only once the ledger lists the node; until an
// operator admits it (or it presents a join token minted in the member's
// home) it is a node-local, bounded, expiring pending request, recorded only
// after its claimed address was dialed back and answered with its key.
// A member that a member_remove takes out learns it — by applying that
// block, or from a majority of voters refusing it — and stops with
// ErrRemoved (cluster_removed.go).
//
// Operations: block_retention prunes old block bodies in the background
// (prune.go; never the state); the last log records are kept in memory for
// GET /v1/logs (logring.go); raft's view is exported as metrics
// (metrics_raft.go). docs/operations.md is the operator's manual.
//
// Workloads: the node keeps a blob store in <home>/blobs (Blobs; bounded
// by blob_limit) that job modules, inputs and outputs live in, serves it
// on the API as the operator's local interface (api_blobs.go), and
// renders jobs from the market's state (api_jobs.go). What the ledger
// cannot know — whether this node's executor runs a job now, and whether
// its verifier reproduced a result — is the JobRegistry (Jobs), which the
// executor and verifier fill and the API, TUI and metrics read. Running a
// job from its record is package kernel/jobrun.
//
// Workers: a provider's node need not be a member. OpenWorker and
// Worker.Run run a node that keeps no ledger and follows one member
// over net.KindFollow (worker.go): it trusts a header only when a voter
// signed it and a job only with a state proof against such a header, runs
// the jobs of the offers naming its node key and hands its results to
// the member. The member side (worker_member.go) sends those updates
// only to the workers a block concerns, stages their jobs' blobs, and
// copies a result's outputs from the worker before admitting it; the
// messages are in worker_wire.go.
//
// Gas of a contract's tests: ReplayGas (gasreplay.go) runs the calls the
// SDK harness recorded (sdktest) on a scratch chain built like a node's
// (NewChainWithVM, genesis gas schedule, warm code set), one signed
// transaction per block, and returns each call's receipt gas, call gas and
// module load; `sos contract gas FILE.wasm --calls FILE` prints it.
package kernel
