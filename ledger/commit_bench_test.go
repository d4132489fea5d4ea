package ledger

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// BenchmarkCommitSpread is the ledger side of a block of jobs: a state of
// 100,000 records, then blocks that each read and rewrite 24 records and
// add 8 new ones (with a block of that many changes). hot rewrites the
// same 24 records every block; spread takes them in turn from 4,800 (200
// workers' records), so each block touches records no recent block did.
// Per block: read, Prepare and Commit; with the default 64 MiB memtable and
// with 256 MiB (the size before).
//
//	go test ./ledger -run '^$' -bench CommitSpread -benchtime 2000x
func BenchmarkCommitSpread(b *testing.B) {
	for _, mode := range []struct {
		name     string
		pool, mt int
	}{{"hot", 24, 0}, {"spread", 4800, 0}, {"hot/memtable=256MiB", 24, 256 << 20}, {"spread/memtable=256MiB", 4800, 256 << 20}} {
		b.Run(mode.name, func(b *testing.B) {
			s, err := Open("db", StoreOptions{FS: vfs.NewMem(), NoSync: true, MemTableBytes: mode.mt})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			key := func(i int) []byte { return fmt.Appendf(nil, "\x01rec/%08d", i) }
			val := func(i, h int) []byte { return fmt.Appendf(nil, "%0100d", i*1_000_003+h) }
			commitState(b, s, 0, func(st *State) {
				for i := range 100_000 {
					st.Set(key(i), val(i, 0))
				}
			})
			next, fresh := 0, 1_000_000
			h := uint64(1)
			block := func() {
				commitState(b, s, h, func(st *State) {
					for range 24 {
						k := key(next % mode.pool)
						if _, err := st.Get(k); err != nil {
							b.Fatal(err)
						}
						st.Set(k, val(next, int(h)))
						next++
					}
					for range 8 {
						st.Set(key(fresh), val(fresh, int(h)))
						fresh++
					}
				})
				h++
			}
			for range 400 { // warm: every spread record written once since genesis
				block()
			}
			b.ResetTimer()
			for range b.N {
				block()
			}
		})
	}
}
