// Package tui is the operator's live inspector of one node or a cluster, drawn
// in the terminal with Bubble Tea.
//
// It talks to nodes only through their HTTP API (package kernel/client) and
// never imports the ledger, the VM or the kernel itself, so it can inspect any
// node it can reach.
//
// Using it:
//
//  1. Call [Run] with a context, one or more node URLs and [Options]. The zero
//     Options draw full screen on the process's terminal and fall back to a
//     refresh every 5 seconds.
//  2. Run returns nil when the operator quits (q or ctrl+c), or ctx.Err()
//     when the context ends first.
//
// Views: 1 Overview, 2 Blocks, 3 Accounts, 4 Contracts, 5 Cluster, 6 ROME
// (the resource market: epoch, active policy, utilization bars and clearing
// price history per resource kind, disputes, and lists of offers, requests,
// leases, epochs and disputes) and 7 Certs (certificates grouped by node,
// with the node's signed/unsigned/revoked status and a detail pane; the
// inspector does not verify ML-DSA signatures itself, `sos cert verify`
// does that offline) and 8 Jobs (workloads: the queue of jobs waiting for
// their node's result, the results, and all jobs, with a detail pane:
// data, limits, result, outputs, whether this node's verifier reproduced
// the result, and a challenge) and 9 Gov (governance proposals, voting
// ones first, with the live tally against quorum and threshold, the votes
// and the current parameters) and 0 Storage (GET /v1/storage/pins: pinned
// blobs with replicas proven/wanted, their holders' last proof heights and
// misses, and a state — fetching, held, waiting, missed, repairing,
// ended —; the storage record of each provider that holds one or owns a
// meter: proofs ok/missed, bond left, slashed; the meters with their last
// reading and the energy settled on their word, from the certificates
// that name them; enter opens an item). The Overview ends with the node's recent
// log lines (GET /v1/logs). The Cluster view shows per node its lag behind
// the leader, the age of its newest block (stalled past 30 s, in red),
// raft commit/applied index and mempool, and lists the members the nodes
// report that no --node URL reaches. A node without the market API (404) says
// so. A terminal too narrow for the tab bar drops the labels' padding,
// then the space after each digit, then cuts the titles of the tabs not
// shown.
//
// Keys: 1-9 and 0 or tab/shift+tab (also →/←, l/h) switch views; ↑↓ (k/j), pgup/pgdn,
// g/G move in lists (the cursor stays on its item while live data
// arrives, so enter opens what is selected); enter opens (block →
// transaction → receipt, instance → storage, a pinned blob, provider or
// meter → its detail); esc goes back or clears a
// filter; / filters the list by what a user searches for, not only the
// shown columns (blocks: a transaction's hash, sender or kind, of blocks
// seen live or opened; a whole transaction hash is looked up on the node
// and opens that transaction; in Accounts it looks
// up an address); x toggles hex/text in the storage
// browser; s/S switch the ROME, Jobs and Storage views' lists; n shows
// the next node; r
// refreshes now; ? lists every key; q or ctrl+c quits.
//
// How it is built (the bubbletea habits of the style guide):
//
//   - The model is a state machine: Update does no IO. Every request runs in a
//     tea.Cmd that returns a typed message (statusMsg, blocksMsg, ...).
//   - Live updates come from each node's event stream (GET /v1/events). A
//     goroutine per node, started by a Cmd, reads the stream and feeds a
//     channel; a Cmd that waits for one message of that channel is re-issued
//     after each message. The goroutine reconnects with a bounded
//     exponential backoff when the stream drops.
//   - Lists and status are refreshed after block events (debounced) and by a
//     slow fallback tick; nothing polls busily.
//   - Each tab is one type implementing the small tab interface; the tab bar,
//     key dispatch and help are generic over the registry of tabs.
//   - The clock is injected (Options.Now) so that tests render byte-identical
//     frames; frames are cut to the terminal's width and height, never
//     wrapped.
package tui
