// Package blob stores content-addressed blobs on a node's disk and proves
// what it holds: verified transfer slices for moving blobs between nodes and
// storage proofs of small segments for consensus to check.
//
// It is a leaf like ledger: it knows nothing of jobs, leases, the network
// or the ledger, and imports no package of this repository but
// internal/failpoint. What to store, for whom, for how long and within which
// quota is the caller's business (kernel); the store gives it Usage and an
// optional byte limit. VerifyProof and VerifySlice are pure functions that
// need no store, so consensus code (rome) can check a storage proof.
//
// # Blob ids
//
// A blob's ID is the plain BLAKE3-256 hash of its content, so `b3sum FILE`
// prints it (64 hex characters). Every reference to a blob carries its size
// too: slices and proofs are checked against (id, size).
//
// BLAKE3 is a Merkle tree over 1 KiB chunks, left-balanced (a node's left
// subtree holds the largest power of two of chunks below its count), so any
// aligned power-of-two run of chunks is a subtree whose chaining value can
// be checked against the root. The package works with three units, each a
// power-of-two multiple of the last, so each is such a subtree (the last of
// each possibly short):
//
//	segment  1 KiB   SegmentSize  a BLAKE3 chunk: the unit of a storage proof
//	group   16 KiB   GroupSize    the finest subtree whose parent is stored;
//	                              16 chunks is also what one SIMD call hashes
//	chunk    1 MiB   ChunkSize    the transfer unit of ReadSlice/WriteSlice
//
// # Using a store
//
//  1. Open(home/blobs, Options{}) takes the directory's lock and repairs what
//     a crash left (see below).
//  2. Put(ctx, r) stores content and returns (id, size). Has, Stat, Open
//     (a reader with Size), List, Delete, Usage, Check (re-hash, a scrub).
//  3. Sending a blob: ReadSlice(id, k) for each chunk k < ChunkCount(size).
//  4. Receiving one: Begin(id, size) returns a Partial; WriteSlice(k, enc)
//     verifies each slice against the id before writing it (ErrCorrupt: fetch
//     it again, from another peer if need be); Missing lists what is still to
//     fetch, also after a broken connection or a restart (Begin again
//     resumes); Commit makes it a complete blob once every chunk is verified.
//  5. Holding one: Prove(id, seg) answers a storage challenge for segment
//     seg < SegmentCount(size); anyone checks it with VerifyProof(id, size,
//     seg, proof).
//
// # Slices
//
// The slice of transfer chunk k is the Bao slice encoding with 1 MiB groups:
//
//	size (u64 little endian) ‖ for each ancestor of the chunk, root first:
//	left CV ‖ right CV (64 bytes) ‖ the chunk's bytes
//
// — 8 + 64×depth + 1 MiB, about 1,288 bytes of overhead for a 1 TiB blob.
// The receiver hashes the chunk once, with SIMD, to get both its chaining
// value (checked through the path to the id) and the outboard pairs inside
// it, which it writes with the data. The Bao library (lukechampine.com/
// blake3/bao, VerifySlice with group 10) accepts these slices; tests hold
// the two to each other.
//
// # Storage proofs
//
// A Proof of segment seg is the Bao slice encoding of that 1 KiB segment:
//
//	size (u64 LE) ‖ for each ancestor of the segment, root first: left CV ‖
//	right CV ‖ the segment's bytes (1 KiB, or less for the last)
//
// For a 1 GiB blob that is 8 + 20×64 + 1,024 = 2,312 bytes (≤ 4 KiB up to
// MaxSize). The encoding is canonical: its length is fixed by (size, seg),
// the size is checked, and every other byte is bound by the hashes, so for
// a given blob and segment exactly one byte string verifies. The challenged
// segment's data is in the proof, so keeping only hashes does not pay (a
// segment's chaining value does not give its bytes). The holder reads the
// segment's 16 KiB group and the stored pairs above it, recomputes the pairs
// inside the group, and checks its own proof before returning it: a damaged
// copy yields ErrCorrupt, never a bad proof. SegmentCount(0) is 0: the empty
// blob has nothing to prove.
//
// # On disk
//
//	blobs/LOCK                      held while the store is open
//	blobs/ab/abcd…(64 hex)          a blob's content, byte for byte (b3sum prints its name)
//	blobs/ab/abcd….obao             its outboard
//	blobs/partial/<id>              a partial blob's data (preallocated, written chunk by chunk)
//	blobs/partial/<id>.obao         its outboard, filled as chunks verify
//	blobs/partial/<id>.have         its bitmap of verified chunks
//	blobs/tmp/                      Puts in progress; emptied at Open
//
// The outboard holds the pair of child chaining values (64 bytes) of every
// parent node above group level, in post-order: Put emits them in the order
// the subtrees complete, so it needs O(log n) memory and one pass over data
// of unknown length (a Bao outboard is pre-order and needs the size first).
// The pair of the subtree of groups [lo, hi) of a blob of n groups sits at
// index (e − popcount(e)) − (tz(e) − log2(hi−lo)) − 1 with e = hi when the
// subtree is an aligned power of two, else (a node of the right spine)
// n − 2 − popcount(lo); the root is last. A 32-byte header comes first:
// "sos-obao", size, stored time (unix ns), group log (4), CRC-32C. It costs
// 64 bytes per 16 KiB (0.4 %).
//
// The bitmap file is "sos-have", size, chunk size, one bit per chunk, CRC-32C;
// it is replaced atomically (write, fsync, rename, fsync the directory).
//
// # Crashes and full disks
//
// Put writes data and outboard to tmp/, fsyncs both, renames the outboard
// into place, then the data, and fsyncs the directory; Delete removes the
// data first. So the data file exists only with its outboard, and Has
// reports only blobs that can be served. Open removes an outboard without
// data, rebuilds an outboard that is missing or does not match its data's
// size (removing data that does not hash to its name), and empties tmp/.
// A partial blob writes verified chunks without syncing and every
// SyncChunks chunks (and at Close) fsyncs data and outboard, then replaces
// the bitmap: a bit is set on disk only for a chunk that is on disk. A
// crash loses at most the chunks since the last bitmap; they are missing
// again, never wrongly present.
//
// Every write passes the write boundary, where the failpoint
// sos/blob/write-error (failpoint.BlobWriteError) fails it as a full disk
// would; filesystem errors ENOSPC and EDQUOT, like the configured limit,
// are ErrFull. A failed Put leaves nothing; a failed WriteSlice leaves its
// chunk missing; Begin reserves and preallocates a partial blob's full size,
// so a full disk usually shows before a transfer starts.
package blob
