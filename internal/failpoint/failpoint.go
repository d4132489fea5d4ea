package failpoint

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	gofail "go.etcd.io/gofail/runtime"
)

// Failpoint names. Each names a boundary, not a code path: the package
// that owns the boundary evaluates it.
const (
	// Example is evaluated only by this package's tests.
	Example = "sos/failpoint/example"

	// BlobWriteError fails a write of the blob store (package blob) to its
	// files: data, outboard, partial bitmap. The value picks the error:
	// `return("eio")` an I/O error, anything else ENOSPC (the disk is full).
	BlobWriteError = "sos/blob/write-error"
	// SyncDir fails the fsync of a directory after internal/fsutil renamed
	// a file into it (kernel.WriteFileAtomic, key files); a string value is
	// added to the error text.
	SyncDir = "sos/kernel/sync-dir"
	// SyncAnswerDrop drops the block- and state-sync answers a node
	// receives from the peer whose node id is the value, or from every
	// peer with "*": a sync source that dies or stops answering
	// (kernel/cluster.go, where the transport hands sync answers over).
	SyncAnswerDrop = "sos/kernel/sync-answer-drop"
	// FollowUpdateDrop makes a member fail to send an update to a worker
	// it links (kernel/worker_member.go, where the update goes to the
	// transport), as a broken or congested worker link would. Evaluated
	// once per update.
	FollowUpdateDrop = "sos/kernel/follow-update-drop"

	// NetBlobCorruptChunk makes a node serving a blob (package net) flip
	// a byte of the slice it is about to send, so the fetcher's
	// verification fails for that chunk. Evaluated once per chunk served.
	NetBlobCorruptChunk = "sos/net/blob-corrupt-chunk"
	// NetBlobDropConn makes a node serving a blob close the whole QUIC
	// connection to the fetcher before it sends a chunk, as a broken
	// network would mid-transfer. Evaluated once per chunk served.
	NetBlobDropConn = "sos/net/blob-drop-conn"
	// JobInputRead fails a job's read of an input or of stdin (package vm:
	// the boundary between a running job and the store its inputs come
	// from). RunJob then returns an error wrapping vm.ErrJobInput.
	JobInputRead = "sos/vm/job-input-read"
	// JobForgeOutput makes a node's job executor (package kernel, at its
	// output boundary: after the run, before the outputs are stored and
	// the result is sent) report a forged run: other stdout bytes, so a
	// different output root that re-execution does not reproduce. The
	// result stays well-formed (its root is that of the outputs it lists),
	// so only a challenge can catch it. Evaluated once per job run.
	JobForgeOutput = "sos/job/forge-output"
)

// registry registers each name with gofail once per process (gofail panics
// on a second registration).
var registry sync.Map // name -> *gofail.Failpoint

func point(name string) *gofail.Failpoint {
	if fp, ok := registry.Load(name); ok {
		return fp.(*gofail.Failpoint)
	}
	mu.Lock()
	defer mu.Unlock()
	if fp, ok := registry.Load(name); ok {
		return fp.(*gofail.Failpoint)
	}
	fp := gofail.NewFailpoint(name)
	registry.Store(name, fp)
	return fp
}

var mu sync.Mutex // serializes registration

// fired counts, by name, the evaluations that fired since Enable. gofail
// keeps a counter too, but its Status reads it without the lock its
// evaluations take it under: Count racing with Eval was a data race
// (TestJobOutputsOnAFullDisk under -race).
var fired sync.Map // name -> *atomic.Int64

func firedCount(name string) *atomic.Int64 {
	v, _ := fired.LoadOrStore(name, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// Eval evaluates the failpoint name: its value and true when it is
// enabled and its terms fire this time, nil and false otherwise (always,
// unless GOFAIL_FAILPOINTS or Enable turned it on). An action such as
// sleep or panic happens inside Eval.
func Eval(name string) (any, bool) {
	v, err := point(name).Acquire()
	if err != nil {
		return nil, false
	}
	firedCount(name).Add(1)
	return v, true
}

// Enable turns the failpoint name on with gofail terms ("return",
// `return("x")`, "2*return", "off", ...). Meant for tests running in the
// same process; it returns a function that turns it off again.
func Enable(name, terms string) (disable func(), err error) {
	point(name)
	firedCount(name).Store(0)
	if err := gofail.Enable(name, terms); err != nil {
		return nil, fmt.Errorf("failpoint: enable %s=%s: %w", name, terms, err)
	}
	return func() {
		if err := gofail.Disable(name); err != nil && !errors.Is(err, gofail.ErrDisabled) {
			panic(fmt.Sprintf("failpoint: disable %s: %v", name, err))
		}
		firedCount(name).Store(0)
	}, nil
}

// Count is how many times the failpoint name fired since it was enabled
// (0 once it is turned off again). It may be called while the failpoint
// is evaluated.
func Count(name string) int {
	return int(firedCount(name).Load())
}
