package ledger

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/record"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"
)

// checkFreeSpace refuses to open a store whose disk cannot hold the replay
// of its write-ahead log. Pebble replays the log into memtables on open
// and writes them out as tables before it returns; when that write fails
// for lack of space it retries at once, forever (a node restarted with
// 25 MB free after a full disk spun at 80 % CPU logging "no space left").
// The replay writes about as many bytes as the live log holds (the store
// does not compress), so Open wants that plus a tenth for table overhead,
// plus reserve, free on the disk of dir. The free space comes from the
// filesystem (statfs on the real one), so tests inject it with a vfs.FS;
// a filesystem that cannot tell (vfs.NewMem) is not checked.
func checkFreeSpace(fs vfs.FS, dir string, reserve int64) error {
	du, err := fs.GetDiskUsage(dir)
	if err != nil {
		return nil // unsupported, or a new store whose directory is not made yet
	}
	log := liveWALBytes(fs, dir)
	need := uint64(log + log/10 + reserve)
	if du.AvailBytes >= need {
		return nil
	}
	return fmt.Errorf("ledger: open %s: %s free on its disk, %s needed (%s of write-ahead log to replay into tables, a tenth more for their indexes, and %s to run): free at least %d bytes there (%s more), or move the home to a larger disk: %w",
		dir, mib(int64(du.AvailBytes)), mib(int64(need)), mib(log), mib(reserve), need, mib(int64(need-du.AvailBytes)), ErrNoSpace)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// liveWALBytes is the size of the write-ahead log files Pebble will
// replay: those numbered at or above the manifest's minimum unflushed log.
// Older log files are kept only for reuse and replay nothing. When the
// manifest cannot be read every log file counts, so an error can only
// overstate the need, never understate it.
func liveWALBytes(fs vfs.FS, dir string) int64 {
	logs, err := wal.Scan(wal.Dir{FS: fs, Dirname: dir})
	if err != nil {
		return 0 // no directory yet: nothing to replay
	}
	var minUnflushed uint64
	if desc, err := pebble.Peek(dir, fs); err == nil && desc.Exists {
		minUnflushed = manifestMinUnflushedLog(fs, desc.ManifestFilename) // a path under dir
	}
	var total int64
	for _, ll := range logs {
		if uint64(ll.Num) < minUnflushed {
			continue
		}
		if n, err := ll.PhysicalSize(); err == nil {
			total += int64(n)
		}
	}
	return total
}

// Tags of a manifest's version edits (the LevelDB format Pebble keeps:
// internal/manifest/version_edit.go): an edit that names the comparator or
// the minimum unflushed log number writes them first, in this order.
const (
	manifestTagComparator = 1
	manifestTagLogNumber  = 2
)

// manifestMinUnflushedLog reads the minimum unflushed log number from a
// Pebble manifest: the largest one its version edits record (edits only
// raise it). On any trouble it returns what it has read so far (0 at
// worst: every log counts as live).
func manifestMinUnflushedLog(fs vfs.FS, path string) uint64 {
	f, err := fs.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	r := record.NewReader(f, 0)
	var minLog uint64
	for {
		rec, err := r.Next()
		if err != nil {
			return minLog // io.EOF, or a torn tail: what was read stands
		}
		edit, err := io.ReadAll(rec)
		if err != nil {
			return minLog
		}
		tag, n := binary.Uvarint(edit)
		if n <= 0 {
			continue
		}
		edit = edit[n:]
		if tag == manifestTagComparator {
			l, n := binary.Uvarint(edit)
			if n <= 0 || l > uint64(len(edit)-n) {
				continue
			}
			edit = edit[n+int(l):]
			if tag, n = binary.Uvarint(edit); n <= 0 {
				continue
			}
			edit = edit[n:]
		}
		if tag == manifestTagLogNumber {
			if v, n := binary.Uvarint(edit); n > 0 && v > minLog {
				minLog = v
			}
		}
	}
}
