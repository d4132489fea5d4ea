package rome

import (
	"bytes"
	"context"
	"sort"
	"testing"

	"github.com/sos-kernel/sos/ledger"
)

// lsmBase is committed state as an LSM store such as pebble holds it
// before a compaction: a deleted key leaves a tombstone that an iterator
// over its range still steps over. stepped counts the entries (live or
// tombstones) iterations stepped over.
type lsmBase struct {
	*memBase
	dead    map[string]bool
	stepped int
}

func (b *lsmBase) IterateState(start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	var keys []string
	in := func(k string) bool {
		return bytes.Compare([]byte(k), start) >= 0 && (end == nil || bytes.Compare([]byte(k), end) < 0)
	}
	for k := range b.m {
		if in(k) {
			keys = append(keys, k)
		}
	}
	for k := range b.dead {
		if in(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for i := range keys {
		k := keys[i]
		if reverse {
			k = keys[len(keys)-1-i]
		}
		b.stepped++
		if b.dead[k] {
			continue
		}
		if !fn([]byte(k), b.m[k]) {
			break
		}
	}
	return nil
}

// commit moves st's writes into b, keeping a tombstone for each delete.
func (b *lsmBase) commit(st *ledger.State) {
	for _, c := range st.Changes() {
		if c.Value == nil {
			b.dead[string(c.Key)] = true
		} else {
			delete(b.dead, string(c.Key))
		}
	}
	b.memBase.commit(st)
}

// TestJobsDueReadsOnlyItsHeight: a block's deadline check reads the index
// entries of its own height, not the deletions left by the deadlines of
// every job run before (on a store that keeps tombstones until a
// compaction, as pebble does). After n jobs ran to the end of their
// challenge window, the end of a block with one job pending and nothing
// due steps over the same number of entries whether n is 1 or 40. Without
// the point range it steps over the 2n tombstones of their deadlines and
// challenge windows.
func TestJobsDueReadsOnlyItsHeight(t *testing.T) {
	stepped := func(n int) int {
		w := newJobWorld(t, 3, 1, nil)
		lb := &lsmBase{memBase: w.base, dead: map[string]bool{}}
		next := func() { // end the block and commit it, as a node does
			t.Helper()
			w.endBlock()
			lb.commit(w.st)
			w.st = ledger.NewState(lb)
		}
		next()
		var ids []uint64
		for range n {
			ids = append(ids, id(w.must(w.cons, jobP(w.lease, 100)), "job_id"))
		}
		next()
		for _, jid := range ids {
			w.must(w.nodeKey, resultP(jid, 50, 3))
		}
		end := w.job(ids[0]).Result.ChallengeEnd
		for w.height <= end {
			next()
		}
		for _, jid := range ids {
			if j := w.job(jid); j.Status != JobDone {
				t.Fatalf("n=%d: job %d is %s after its challenge window", n, jid, JobStatusName(j.Status))
			}
		}
		if c, _ := w.m.Clock(w.st); c.EndHeight == w.height || c.EndHeight == w.height+1 {
			next() // keep the measured block off an epoch's end
			next()
		}
		w.must(w.cons, jobP(w.lease, 100)) // pending: the deadline count is not zero
		next()
		lb.stepped = 0
		if _, err := w.m.EndBlock(context.Background(), w.st, Block{ChainID: "rome-test", Height: w.height, TimeMs: int64(w.height) * 1000, PrevHash: w.prevHash()}); err != nil {
			t.Fatal(err)
		}
		if len(lb.dead) < 2*n {
			t.Fatalf("n=%d: %d tombstones, want at least the %d deadlines run", n, len(lb.dead), 2*n)
		}
		return lb.stepped
	}
	one, many := stepped(1), stepped(40)
	if one != many {
		t.Fatalf("a block's end stepped over %d entries after 40 jobs, %d after 1", many, one)
	}
	t.Logf("entries stepped over at a block's end: %d after 1 job, %d after 40", one, many)
}
