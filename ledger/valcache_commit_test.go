package ledger

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestReadsDoNotGoBackDuringCommit: a reader that has seen a block's write
// to one key never reads, afterwards, a value from before that block for
// another key the block also wrote. Key "big" is too large for the value
// cache (its reads always go to Pebble, which shows a block as soon as its
// batch is in); key "small" is cached. Before the cache dropped a block's
// keys ahead of its batch, a read of "small" in the window between the
// batch and the cache's update returned the cached value of the block
// before, after a read of "big" had returned this block's.
func TestReadsDoNotGoBackDuringCommit(t *testing.T) {
	s, err := Open("db", StoreOptions{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	big := func(h uint64) []byte {
		v := bytes.Repeat([]byte{'x'}, maxCachedValue+1)
		binary.BigEndian.PutUint64(v, h)
		return v
	}
	small := func(h uint64) []byte { return binary.BigEndian.AppendUint64(nil, h) }
	commitState(t, s, 0, func(st *State) {
		st.Set([]byte("big"), big(0))
		st.Set([]byte("small"), small(0))
	})
	const blocks = 400
	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan string, 1)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				b, err1 := s.GetState([]byte("big"))
				v, err2 := s.GetState([]byte("small"))
				if err1 != nil || err2 != nil || len(b) < 8 || len(v) != 8 {
					select {
					case errs <- "read failed":
					default:
					}
					return
				}
				if hb, hs := binary.BigEndian.Uint64(b), binary.BigEndian.Uint64(v); hs < hb {
					select {
					case errs <- "read \"big\" at block " + itoa(hb) + ", then \"small\" at block " + itoa(hs):
					default:
					}
					return
				}
			}
		}()
	}
	for h := uint64(1); h <= blocks; h++ {
		commitState(t, s, h, func(st *State) {
			st.Set([]byte("big"), big(h))
			st.Set([]byte("small"), small(h))
		})
	}
	stop.Store(true)
	wg.Wait()
	select {
	case e := <-errs:
		t.Fatal(e)
	default:
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
