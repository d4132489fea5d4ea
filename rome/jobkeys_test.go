package rome

import (
	"context"
	"testing"

	"github.com/sos-kernel/sos/ledger"
)

// TestJobCostFlatInProviders: the state a job's transactions and its end
// read and write (job_submit, job_result, the end of its challenge window)
// is the same number of keys whether the market has 1 job-running offer
// or 24, and whichever of them runs the job: nothing per job walks the
// providers, offers or leases. Counted with a store that counts reads
// (point reads and keys visited by iteration) and the keys each step
// leaves changed, not timed.
func TestJobCostFlatInProviders(t *testing.T) {
	type cost struct{ gets, visited, writes int }
	type costs struct{ submit, result, final cost }
	run := func(n, on int) costs {
		h := newHarness(t, harnessOpts{epochBlocks: 10, jobs: jobsParams, ttl: 50, users: 2 * n})
		nodes := make(map[ledger.Address]*ledger.PrivateKey)
		cons := make(map[ledger.Address]*ledger.PrivateKey)
		for i := range n {
			nk := testKey(t, 500+i)
			nodes[nk.Address()] = nk
			cons[h.users[n+i].Address()] = h.users[n+i]
			h.must(h.users[i], &ledger.RomeOffer{Capacity: res(1, 10, 2, 5), Price: res(1, 5, 2, 2), Node: nk.Address(), Bond: testBond})
			h.must(h.users[n+i], &ledger.RomeRequest{Demand: res(1, 10, 2, 5), MaxPrice: res(1, 8, 2, 3), Epochs: 20})
		}
		h.untilEpoch(1)
		ls, err := h.m.Leases(h.st, 0, nil)
		if err != nil || len(ls) != n {
			t.Fatalf("%d leases for %d offers: %v", len(ls), n, err)
		}
		l := ls[on]
		// Each step runs in a block of its own on freshly committed state,
		// so that every read below reaches the counting store.
		var cb *countingBase
		fresh := func() {
			h.commit()
			cb = &countingBase{memBase: h.base}
			h.st = ledger.NewState(cb)
		}
		// end ends the block as h.endBlock does, but leaves the supply
		// check (which iterates every account) to measure, after counting.
		end := func() {
			evs, err := h.m.EndBlock(context.Background(), h.st, Block{ChainID: "rome-test", Height: h.height, TimeMs: int64(h.height) * 1000, PrevHash: h.prevHash()})
			if err != nil {
				t.Fatalf("end block %d: %v", h.height, err)
			}
			h.events = append(h.events, evs...)
			h.height++
		}
		// measure runs step (which ends the block) on fresh state.
		measure := func(step func()) cost {
			fresh()
			step()
			c := cost{cb.gets, cb.visited, h.st.Len()}
			h.checkSupply()
			return c
		}
		job := func(id uint64) *Job {
			j, err := h.m.Job(h.st, id)
			if err != nil {
				t.Fatal(err)
			}
			return j
		}
		h.endBlock()
		var c costs
		var jid uint64
		c.submit = measure(func() { jid = id(h.must(cons[l.Consumer], jobP(l.ID, 1000)), "job_id"); end() })
		c.result = measure(func() { h.must(nodes[job(jid).Node], resultP(jid, 500, 3)); end() })
		for h.height < job(jid).Result.ChallengeEnd {
			fresh()
			h.endBlock()
		}
		c.final = measure(end)
		if j := job(jid); j.Status != JobDone || h.events[len(h.events)-1].Type != "job_final" {
			t.Fatalf("job %d is %s after its challenge window; last event %s", jid, JobStatusName(j.Status), h.events[len(h.events)-1].Type)
		}
		return c
	}
	one := run(1, 0)
	// The keys themselves: submit reads params, lease, clock, offer, the
	// lease's Metered record, the job sequence, the deadline count (and
	// the end of block its deadline scan) and writes the sequence, the
	// count, the job, its deadline, its node's queue and the Metered
	// record, which also heads the chain of the lease's jobs (no index
	// entry per job). The result reads no request (the lease carries its
	// meter kinds) and moves the job's deadline without touching the
	// count. The end of the challenge window reads the lease, not the
	// offer, and writes the deadline count and entry: the offer's record
	// counts only the open jobs of ended leases (endLeaseJobs). Before:
	// submit 8 reads / 8 writes (an index entry per job by lease), then
	// 8 / 7 (the offer's open-job count, written at submit and at the end
	// of the window: final 6 / 3); result 10 / 7 (the request read, the
	// count read and written).
	if want := (costs{submit: cost{8, 0, 6}, result: cost{9, 0, 5}, final: cost{6, 1, 2}}); one != want {
		t.Errorf("a job costs %+v, want %+v", one, want)
	}
	for _, tc := range []struct{ n, on int }{{24, 0}, {24, 17}} {
		if got := run(tc.n, tc.on); got != one {
			t.Errorf("a job on offer %d of %d costs %+v; with one offer %+v", tc.on, tc.n, got, one)
		}
	}
	t.Logf("per job (reads, keys visited, keys written): %+v", one)
}
