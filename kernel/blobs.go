package kernel

import (
	"path/filepath"

	"github.com/sos-kernel/sos/blob"
)

// openBlobs opens the node's blob store: <home>/blobs on the OS
// filesystem, or "blobs" in NodeOptions.FS, limited by blob_limit.
func openBlobs(opts NodeOptions) (*blob.Store, error) {
	bo := blob.Options{FS: opts.FS, Limit: uint64(opts.Config.BlobLimit), Now: opts.Clock, Logger: opts.Logger}
	dir := BlobsDir
	if opts.FS == nil {
		dir = filepath.Join(opts.Home, BlobsDir)
	}
	return blob.Open(dir, bo)
}
