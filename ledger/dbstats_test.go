package ledger

import (
	"bytes"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestDBStatsCountsFlushes: a memtable flush (Store.Flush) shows in
// DBStats as one more finished flush, and the memtable's size is reported;
// before it none.
func TestDBStatsCountsFlushes(t *testing.T) {
	s, err := Open("data", StoreOptions{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	commitTxBlock(t, s, [][]byte{bytes.Repeat([]byte{1}, 64<<10)})
	before := s.DBStats()
	if before.MemTableBytes == 0 {
		t.Fatalf("no memtable bytes: %+v", before)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	after := s.DBStats()
	if after.Flushes != before.Flushes+1 || after.FlushesRunning != 0 {
		t.Fatalf("flushes %+v → %+v, want one more finished", before, after)
	}
}
