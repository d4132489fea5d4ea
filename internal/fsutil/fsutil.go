// Package fsutil writes small files (configuration, genesis, keys) so that
// a crash or power cut leaves either the old file or the new one, never a
// torn one or a vanished name: the data goes to a temporary file in the
// same directory, which is synced, renamed (or linked) into place, and the
// directory is synced too, since a new name is a change to the directory
// that syncing the file does not make durable.
package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"

	"github.com/sos-kernel/sos/internal/failpoint"
)

// WriteAtomic replaces path with data, mode perm.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, os.Rename)
}

// WriteNew creates path with data, mode perm, and fails with an error
// matching fs.ErrExist if path exists (it is never replaced). The mode is
// set before any byte is written, so a secret is never readable by others.
func WriteNew(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, func(tmp, path string) error {
		if err := os.Link(tmp, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s: %w", path, fs.ErrExist)
			}
			return err
		}
		return nil
	})
}

func write(path string, data []byte, perm os.FileMode, place func(tmp, path string) error) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("fsutil: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("fsutil: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("fsutil: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("fsutil: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("fsutil: %w", err)
	}
	if err := place(tmp.Name(), path); err != nil {
		return fmt.Errorf("fsutil: %w", err)
	}
	return SyncDir(filepath.Dir(path))
}

// SyncDir fsyncs a directory, making the names created, renamed or removed
// in it durable. (Windows cannot sync a directory, and has no need to.)
func SyncDir(dir string) error {
	if v, ok := failpoint.Eval(failpoint.SyncDir); ok {
		msg, _ := v.(string)
		return fmt.Errorf("fsutil: sync directory %s: injected failure %s", dir, msg)
	}
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("fsutil: sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsutil: sync directory %s: %w", dir, err)
	}
	return nil
}
