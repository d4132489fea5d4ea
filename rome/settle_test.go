package rome

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/sos-kernel/sos/ledger"
)

// settleOutcome is what settlement leaves behind, for comparing runs.
type settleOutcome struct {
	Balances map[string]uint64 // account/denom → balance
	Leases   map[uint64]string // id → paid, disputes, status
	Requests map[uint64]string // id → spent, refunded, status
	Contrib  map[string]uint64
	Attested uint64
	Measured uint64
	Disputes uint32
	Rewards  string
	// Certified sums the certificates' units per node, kind and how they
	// were established (a late settlement may put them in a later
	// certificate period).
	Certified map[string]uint64
}

// settleScenario runs a market whose leases have nothing to weigh in most
// epochs, reports (agreed, disputed, one-sided) in some, a kind paid by
// meter only that no meter reads, a lease running jobs now and then (an
// epoch with a job and a report, a job answered in the epoch after its
// submission, a job that times out) and different lengths, with the given
// settle_interval_epochs and an epoch reward, until every lease has
// closed. every is called at each epoch with the live leases.
func settleScenario(t *testing.T, interval uint64, every func(h *harness, e uint64)) settleOutcome {
	t.Helper()
	h := newHarness(t, harnessOpts{epochBlocks: 2, users: 8, ttl: 50, settleInterval: interval, jobs: jobsParams, reward: 1000})
	p1, p2, c1, c2, c3 := h.users[0], h.users[1], h.users[2], h.users[3], h.users[4]
	p3, c4, node := h.users[5], h.users[6], testKey(t, 500)
	h.must(p1, &ledger.RomeOffer{Capacity: res(1, 100, 2, 100), Price: res(1, 3, 2, 2), Region: "a"})
	h.must(p2, &ledger.RomeOffer{Capacity: res(1, 100, 3, 100), Price: res(1, 4, 3, 5), Region: "b"})
	h.must(p3, &ledger.RomeOffer{Capacity: res(1, 10, 2, 5), Price: res(1, 5, 2, 2), Region: "c", Node: node.Address(), Bond: testBond})
	idle := id(h.must(c1, &ledger.RomeRequest{Demand: res(1, 10), MaxPrice: res(1, 3), Epochs: 9, Region: "a"}), "request_id")
	reported := id(h.must(c2, &ledger.RomeRequest{Demand: res(1, 10, 2, 5), MaxPrice: res(1, 3, 2, 2), Epochs: 6, Region: "a"}), "request_id")
	metered := id(h.must(c3, &ledger.RomeRequest{Demand: res(1, 7, 3, 6), MaxPrice: res(1, 4, 3, 5), Epochs: 5, MeterKinds: 1 << (KindEnergy - 1), Region: "b"}), "request_id")
	short := id(h.must(c1, &ledger.RomeRequest{Demand: res(1, 2), MaxPrice: res(1, 4), Epochs: 1, Region: "b"}), "request_id")
	jobs := id(h.must(c4, &ledger.RomeRequest{Demand: res(1, 10, 2, 5), MaxPrice: res(1, 5, 2, 2), Epochs: 10, Region: "c"}), "request_id")
	h.untilEpoch(1)
	leaseOf := map[uint64]*Lease{}
	ls, err := h.m.Leases(h.st, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range ls {
		leaseOf[ls[i].RequestID] = &ls[i]
	}
	for _, r := range []uint64{idle, reported, metered, short, jobs} {
		if leaseOf[r] == nil {
			t.Fatalf("request %d not leased: %+v", r, ls)
		}
	}
	rl := leaseOf[reported]
	usage := func(from *ledger.PrivateKey, e uint64, kv ...uint64) {
		h.must(from, &ledger.RomeUsage{LeaseID: rl.ID, Epoch: e, Delivered: res(kv...)})
	}
	jl := leaseOf[jobs].ID
	submit := func(gas uint64) uint64 { return id(h.must(c4, jobP(jl, gas)), "job_id") }
	result := func(job, gas uint64) { h.must(node, resultP(job, gas, 3)) }
	var carried uint64
	for e := uint64(1); e < 14; e++ {
		h.untilEpoch(e)
		switch e {
		case 2: // both agree: attested
			usage(p1, 2, 1, 8, 2, 5)
			usage(c2, 2, 1, 8, 2, 5)
		case 3: // a dispute, reported the epoch after
			usage(p1, 2+1, 1, 10, 2, 5)
		case 4:
			usage(c2, 3, 1, 6, 2, 4)
			usage(p1, 4, 1, 9) // the provider alone
		}
		// The jobs lease (every result moves 150 bytes: 2 bandwidth
		// units): epoch 2 a job of 2500 gas (3 compute units); epoch 3
		// one of 3100 gas (4 units) and the consumer's report (replaced
		// by the measured units, but the epoch is settled at the next
		// end), and a job answered in epoch 4 with 1000 gas (1 unit);
		// epoch 6 a job that times out (nothing to pay for compute and
		// bandwidth); epoch 8 a job of 9999 gas (10 units).
		switch e {
		case 2, 8:
			j := submit(10_000)
			h.endBlock()
			result(j, map[uint64]uint64{2: 2500, 8: 9999}[e])
		case 3:
			j := submit(4000)
			h.must(c4, &ledger.RomeUsage{LeaseID: jl, Epoch: 3, Delivered: res(1, 10)})
			h.endBlock()
			result(j, 3100)
			carried = submit(3000)
		case 4:
			result(carried, 1000)
		case 6:
			submit(2000)
		}
		if every != nil {
			every(h, e)
		}
	}
	out := settleOutcome{Balances: map[string]uint64{}, Leases: map[uint64]string{}, Requests: map[uint64]string{}, Contrib: map[string]uint64{}}
	addrs := []ledger.Address{EscrowAccount}
	for _, u := range h.users {
		addrs = append(addrs, u.Address())
	}
	for _, a := range addrs {
		for _, d := range []string{"uTFLP", "uTBS", "uKWTT"} {
			out.Balances[a.String()+"/"+d] = h.balance(a, d)
		}
		c, err := h.m.Contribution(h.st, a)
		if err != nil {
			t.Fatal(err)
		}
		out.Contrib[a.String()] = c
	}
	ls, _ = h.m.Leases(h.st, 0, nil)
	// What eager settlement pays: an epoch with nothing to weigh pays the
	// leased amount at the lease's price (not the meter-only energy); the
	// reported lease pays 40 idle, 34 agreed (8 compute, 5 bandwidth), 26
	// disputed (the smaller report: 6, 4), 27 on the provider's report
	// alone (9 compute, no bandwidth), 40, 40.
	// The jobs lease pays 50 + 10 per idle epoch (1, 5, 7, 9, 10), and
	// for compute (5 each) and bandwidth (2 each) 15 + 4, 20 + 4, 5 + 4,
	// 0 + 0, 50 + 4 in epochs 2, 3, 4, 6, 8.
	paid := map[uint64]string{idle: "270uTFLP", reported: "48uTBS,159uTFLP", metered: "140uTFLP", short: "8uTFLP", jobs: "66uTBS,340uTFLP"}
	for _, l := range ls {
		if l.Status != StatusEnded || l.SettledTo != l.End {
			t.Fatalf("interval %d: lease %d not over at epoch 14: %+v", interval, l.ID, l)
		}
		if l.Paid.String() != paid[l.RequestID] {
			t.Errorf("interval %d: lease %d (request %d) paid %s, want %s", interval, l.ID, l.RequestID, l.Paid, paid[l.RequestID])
		}
		out.Leases[l.ID] = fmt.Sprintf("paid %s disputes %d", l.Paid, l.Disputes)
	}
	rs, _ := h.m.Requests(h.st, 0, nil)
	for _, r := range rs {
		out.Requests[r.ID] = fmt.Sprintf("spent %s refunded %s %s live %d", r.Spent, r.Refunded, StatusName(r.Status), r.LiveLeases)
	}
	recs, _ := h.m.Epochs(h.st, 0)
	var rewards ledger.Coins
	for _, rec := range recs {
		out.Attested += rec.Attested
		out.Measured += rec.Measured
		out.Disputes += rec.Disputes
		for _, c := range rec.Rewards {
			rewards, _ = rewards.Add(c)
		}
	}
	out.Rewards = rewards.String()
	out.Certified = map[string]uint64{}
	certs, err := h.m.Certificates(h.st, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range certs {
		out.Certified[fmt.Sprintf("%s/%s/%s", c.Statement.NodeID, KindName(c.Statement.Kind), c.Statement.Measured)] += c.Statement.Amount
	}
	return out
}

// TestSettleIntervalSameOutcome: paying epochs with nothing to weigh late
// (settle_interval_epochs 3, 4, 20) ends with exactly what paying every
// lease at every epoch (1) does: balances, leases' and requests' payments,
// refunds, attested units, disputes, contributions; meanwhile a live lease
// is never more than the interval behind, and with interval 1 always paid
// up to the epoch before.
func TestSettleIntervalSameOutcome(t *testing.T) {
	lag := func(interval uint64) func(h *harness, e uint64) {
		return func(h *harness, e uint64) {
			ls, err := h.m.Leases(h.st, 0, func(l *Lease) bool { return l.Start < e && e < l.End })
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range ls {
				if behind := e - l.SettledTo; behind < 1 || behind > interval || l.NextSettle <= e-1 || l.NextSettle > e-1+interval {
					t.Fatalf("interval %d, epoch %d: lease %d settled to %d, next %d", interval, e, l.ID, l.SettledTo, l.NextSettle)
				}
			}
		}
	}
	// late counts the epochs the jobs lease ran jobs in that were not
	// paid by the end of the epoch after.
	late := map[uint64]int{}
	check := func(interval uint64) func(h *harness, e uint64) {
		lagged := lag(interval)
		return func(h *harness, e uint64) {
			lagged(h, e)
			ls, err := h.m.Leases(h.st, 0, func(l *Lease) bool { return l.Consumer == h.users[6].Address() })
			if err != nil || len(ls) != 1 {
				t.Fatalf("the jobs lease: %+v %v", ls, err)
			}
			if mt, err := h.m.MeasuredUsage(h.st, ls[0].ID, e-2); err != nil {
				t.Fatal(err)
			} else if mt.RanJobs() && !mt.Settled {
				late[interval]++
			}
		}
	}
	want := settleScenario(t, 1, check(1))
	if want.Attested == 0 || want.Disputes == 0 || want.Measured == 0 || want.Rewards == "" || want.Certified[h0runtime(t)] == 0 {
		t.Fatalf("the scenario should attest, dispute, measure, reward and certify measured units: %+v", want)
	}
	if late[1] != 0 {
		t.Fatalf("interval 1: %d job epochs paid late", late[1])
	}
	for _, interval := range []uint64{3, 4, 10, 20} {
		got := settleScenario(t, interval, check(interval))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("interval %d:\n got %+v\nwant %+v", interval, got, want)
		}
	}
	if late[10] == 0 || late[20] == 0 {
		t.Errorf("epochs with jobs paid late: %v; with intervals 10 and 20 some should wait for the lease's due settlement", late)
	}
}

// h0runtime names the certified compute units the jobs provider of
// settleScenario (user 6's key) gets from the runtime.
func h0runtime(t *testing.T) string {
	return testKey(t, 6).Address().String() + "/" + KindName(KindCompute) + "/" + MeasuredRuntime
}

// countingBase counts what a State reads from committed state: point
// reads and keys visited by iteration.
type countingBase struct {
	*memBase
	gets, visited int
}

func (b *countingBase) GetState(k []byte) ([]byte, error) {
	b.gets++
	return b.memBase.GetState(k)
}

func (b *countingBase) IterateState(start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	return b.memBase.IterateState(start, end, reverse, func(k, v []byte) bool {
		b.visited++
		return fn(k, v)
	})
}

// TestIdleLeasesCostNothingPerEpoch: an epoch's end reads and writes what
// the leases due in it need, not what every live lease would. With n
// leases that have nothing to weigh (each on its own offer, which it
// fills): an epoch in which none is due costs the same whether n is 1 or
// 64, and a lease with a report adds a constant; with n = 64 and
// settle_interval_epochs 5 their requests' phases spread their settlements,
// 12 or 13 at each epoch's end instead of all 64 every fifth, and each
// such end costs exactly what settling as many leases at every epoch
// (interval 1) costs. Counted with a store that counts reads, not timed.
func TestIdleLeasesCostNothingPerEpoch(t *testing.T) {
	type cost struct{ gets, visited, writes int }
	// run leases n idle leases from epoch 1 and returns the cost of the
	// ends of epochs 3 to 3+epochs-1 and the leases due at each (report:
	// the first lease's provider reports its epoch 3).
	run := func(n int, interval uint64, report bool, epochs int) (costs []cost, due []int) {
		h := newHarness(t, harnessOpts{epochBlocks: 1, users: 2 * n, ttl: 50, settleInterval: interval})
		for i := 0; i < n; i++ { // n providers, each offer fully leased
			h.must(h.users[i], &ledger.RomeOffer{Capacity: res(1, 1), Price: res(1, 2)})
			h.must(h.users[n+i], &ledger.RomeRequest{Demand: res(1, 1), MaxPrice: res(1, 2), Epochs: 100})
		}
		h.untilEpoch(3) // leased from epoch 1
		if report {
			ls, _ := h.m.Leases(h.st, 1, nil)
			for _, u := range h.users {
				if u.Address() == ls[0].Provider {
					h.must(u, &ledger.RomeUsage{LeaseID: ls[0].ID, Epoch: 3, Delivered: res(1, 1)})
				}
			}
		}
		for range epochs {
			due = append(due, leasesDueNow(t, h.m, h.st))
			h.commit()
			cb := &countingBase{memBase: h.base}
			h.st = ledger.NewState(cb)
			if _, err := h.m.EndBlock(context.Background(), h.st, Block{ChainID: "rome-test", Height: h.height, TimeMs: int64(h.height) * 1000, PrevHash: h.prevHash()}); err != nil {
				t.Fatal(err)
			}
			costs = append(costs, cost{cb.gets, cb.visited, h.st.Len()})
			h.checkSupply()
			h.height++
		}
		ls, _ := h.m.Leases(h.st, 0, nil)
		for _, l := range ls {
			// Paid 2 per epoch (the report says the leased 1 unit) up to where it is settled; never more than
			// the interval behind.
			want := fmt.Sprintf("%duTFLP", 2*(l.SettledTo-1))
			if l.SettledTo <= 1 {
				want = ""
			}
			if l.Paid.String() != want || 3+uint64(epochs)-l.SettledTo > interval {
				t.Fatalf("n=%d, interval %d: lease %d settled to %d, paid %s after epoch %d", n, interval, l.ID, l.SettledTo, l.Paid, 2+epochs)
			}
		}
		return costs, due
	}
	// Interval 200: the 64 leases' first settlements fall in epochs 72-199
	// (their requests' ids are 65-128, after the offers').
	q1, due1 := run(1, 200, false, 2)
	q64, due64 := run(64, 200, false, 2)
	if !slices.Equal(due1, []int{0, 0}) || !slices.Equal(due64, []int{0, 0}) {
		t.Fatalf("leases due at epochs 3-4: %v, %v", due1, due64)
	}
	if !slices.Equal(q1, q64) {
		t.Errorf("an epoch with 64 idle leases cost %+v, with 1 %+v", q64, q1)
	}
	r1, _ := run(1, 200, true, 2)
	r64, _ := run(64, 200, true, 2)
	if r1[1] != r64[1] || r64[1].gets <= q64[1].gets {
		t.Errorf("a reported lease among 64: %+v, among 1: %+v (quiet: %+v)", r64[1], r1[1], q64[1])
	}
	spread, due := run(64, 5, false, 5)
	total := 0
	for i, k := range due {
		total += k
		if k != 12 && k != 13 {
			t.Errorf("interval 5: %d of 64 leases due at epoch %d, want 12 or 13: %v", k, 3+i, due)
		}
		if every, _ := run(k, 1, false, 1); every[0] != spread[i] {
			t.Errorf("epoch %d settling %d of 64 leases cost %+v, %d leases settled every epoch %+v", 3+i, k, spread[i], k, every[0])
		}
	}
	if total != 64 {
		t.Errorf("interval 5: %d settlements in 5 epochs, want each of the 64 leases once: %v", total, due)
	}
	t.Logf("epoch end, idle leases: 1 → %+v, 64 → %+v; one reported: %+v; 64 staggered over 5 epochs: %v leases due → %+v", q1[1], q64[1], r64[1], due, spread)
}

// TestFreedCapacityMatchedSameEpoch: capacity a lease frees at the end of
// its last epoch is offered to the match of that same epoch's end (the
// offer was full, so it was not listed among offers with free capacity),
// and an offer's availability window still ends it.
func TestFreedCapacityMatchedSameEpoch(t *testing.T) {
	h := newHarness(t, harnessOpts{epochBlocks: 1, users: 4, ttl: 50})
	prov, c1, c2 := h.users[0], h.users[1], h.users[2]
	oid := id(h.must(prov, &ledger.RomeOffer{Capacity: res(1, 10), Price: res(1, 2), UntilEpoch: 8}), "offer_id")
	first := id(h.must(c1, &ledger.RomeRequest{Demand: res(1, 10), MaxPrice: res(1, 2), Epochs: 3}), "request_id")
	h.untilEpoch(1)
	second := id(h.must(c2, &ledger.RomeRequest{Demand: res(1, 10), MaxPrice: res(1, 2), Epochs: 2}), "request_id")
	h.untilEpoch(6)
	ls, err := h.m.Leases(h.st, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(ls, func(a, b Lease) int { return cmp.Compare(a.ID, b.ID) })
	if len(ls) != 2 || ls[0].RequestID != first || ls[1].RequestID != second || ls[1].Start != ls[0].End {
		t.Fatalf("leases %+v: the second should start when the first ends (epoch %d)", ls, ls[0].End)
	}
	o, err := h.m.Offer(h.st, oid)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != StatusOpen || amountOf(o.Leased, 1) != 0 {
		t.Fatalf("offer at epoch 6: %+v", o)
	}
	h.untilEpoch(8)
	if o, _ = h.m.Offer(h.st, oid); o.Status != StatusExpired {
		t.Fatalf("offer past its window: %s", StatusName(o.Status))
	}
}

// TestPayIdleIsSettleLease holds the fast path to the full one: for an
// epoch with nothing to weigh, payIdle pays exactly what settleLease
// decides (same state writes, same payments on the lease, its request and
// the epoch, nothing attested), for leases of one or several kinds, with a
// kind paid by meter only, with storage held by no pin.
func TestPayIdleIsSettleLease(t *testing.T) {
	h := newHarness(t, harnessOpts{epochBlocks: 2, users: 5, ttl: 50})
	p1, p2, c1, c2 := h.users[0], h.users[1], h.users[2], h.users[3]
	h.must(p1, &ledger.RomeOffer{Capacity: res(1, 100, 2, 100, 4, 100), Price: res(1, 3, 2, 2, 4, 1), Region: "a"})
	h.must(p2, &ledger.RomeOffer{Capacity: res(1, 100, 3, 100), Price: res(1, 4, 3, 5), Region: "b"})
	h.must(c1, &ledger.RomeRequest{Demand: res(1, 10, 2, 5, 4, 7), MaxPrice: res(1, 3, 2, 2, 4, 1), Epochs: 6, Region: "a"})
	h.must(c2, &ledger.RomeRequest{Demand: res(1, 7, 3, 6), MaxPrice: res(1, 4, 3, 5), Epochs: 6, MeterKinds: 1 << (KindEnergy - 1), Region: "b"})
	h.must(c2, &ledger.RomeRequest{Demand: res(1, 1), MaxPrice: res(1, 4), Epochs: 6, Region: "b"})
	h.untilEpoch(3)
	h.commit()
	ls, err := h.m.Leases(h.st, 0, nil)
	if err != nil || len(ls) != 3 {
		t.Fatalf("leases %+v %v", ls, err)
	}
	work := func() *epochWork {
		st := ledger.NewState(h.base)
		s := &store{st: st, codec: h.m.codec}
		p, err := s.params(h.m.gen)
		if err != nil {
			t.Fatal(err)
		}
		return &epochWork{m: h.m, s: s, acc: &ledger.Accounts{St: st, Codec: h.m.codec}, p: p, e: 3, events: &[]ledger.Event{},
			rec: &EpochRecord{}, offers: map[uint64]*Offer{}, reqs: map[uint64]*Request{}, paid: map[string]uint64{}, refund: map[string]uint64{},
			attest: map[ledger.Address]uint64{}}
	}
	for _, l := range ls {
		full, fast := work(), work()
		lf, err := full.s.lease(l.ID)
		if err != nil {
			t.Fatal(err)
		}
		lq, _ := fast.s.lease(l.ID)
		if err := full.settleLease(lf, 2); err != nil {
			t.Fatal(err)
		}
		if err := fast.payIdle(lq, 1); err != nil {
			t.Fatal(err)
		}
		if len(full.paid) == 0 {
			t.Fatalf("lease %d: nothing paid", l.ID)
		}
		if !reflect.DeepEqual(full.s.st.Changes(), fast.s.st.Changes()) || !reflect.DeepEqual(full.paid, fast.paid) ||
			lf.Paid.String() != lq.Paid.String() || full.reqs[l.RequestID].Spent.String() != fast.reqs[l.RequestID].Spent.String() {
			t.Errorf("lease %d: settleLease paid %v (lease %s), payIdle %v (lease %s)", l.ID, full.paid, lf.Paid, fast.paid, lq.Paid)
		}
		if full.rec.Attested != 0 || full.rec.Measured != 0 || len(full.attest) != 0 {
			t.Errorf("lease %d: an epoch with nothing to weigh attested %+v", l.ID, full.rec)
		}
	}
}

// leasesDueNow counts the leases whose next settlement is the current
// epoch's end.
func leasesDueNow(t *testing.T, m *Market, st *ledger.State) int {
	t.Helper()
	c, err := m.Clock(st)
	if err != nil {
		t.Fatal(err)
	}
	ls, err := m.Leases(st, 0, func(l *Lease) bool { return l.NextSettle == c.Epoch })
	if err != nil {
		t.Fatal(err)
	}
	return len(ls)
}

// TestJobLeasesNotDueCostNothingPerEpoch: the end of the epoch after one in
// which n leases ran a job each, none of them due for settlement, costs
// what it costs with one such lease when the leases share a provider (the
// epochs they ran jobs in are paid at their due settlements, read from
// their Metered records then; the epoch's reward weighs the units the
// runtime measured from one sum per provider), and one more key read and
// deleted per provider when each lease has its own. Counted with a store
// that counts reads, not timed.
func TestJobLeasesNotDueCostNothingPerEpoch(t *testing.T) {
	type cost struct{ gets, visited, writes int }
	run := func(n int, shared bool) cost {
		h := newHarness(t, harnessOpts{epochBlocks: 2, users: 2 * n, ttl: 50, settleInterval: 200,
			jobs: func(j *jobsGenesis) { jobsParams(j); j.ChallengeBlocks = 100 }})
		node := testKey(t, 500)
		for i := 0; i < n; i++ {
			if i == 0 || !shared {
				capacity := uint64(1)
				if shared {
					capacity = uint64(n)
				}
				h.must(h.users[i], &ledger.RomeOffer{Capacity: res(1, capacity), Price: res(1, 2), Node: node.Address(), Bond: testBond})
			}
			h.must(h.users[n+i], &ledger.RomeRequest{Demand: res(1, 1), MaxPrice: res(1, 2), Epochs: 100})
		}
		h.untilEpoch(3) // leased from epoch 1
		ls, err := h.m.Leases(h.st, 0, nil)
		if err != nil || len(ls) != n {
			t.Fatalf("n=%d: leases %+v %v", n, ls, err)
		}
		byConsumer := map[ledger.Address]*ledger.PrivateKey{}
		for _, u := range h.users {
			byConsumer[u.Address()] = u
		}
		var jobs []uint64
		for _, l := range ls {
			jobs = append(jobs, id(h.must(byConsumer[l.Consumer], jobP(l.ID, 1000)), "job_id"))
		}
		h.endBlock()
		for _, j := range jobs {
			h.must(node, resultP(j, 700, 3))
		}
		h.endBlock() // the end of epoch 3
		h.endBlock() // the first block of epoch 4
		if due := leasesDueNow(t, h.m, h.st); due != 0 {
			t.Fatalf("n=%d: %d leases due at the end of epoch 4", n, due)
		}
		h.commit()
		cb := &countingBase{memBase: h.base}
		h.st = ledger.NewState(cb)
		if _, err := h.m.EndBlock(context.Background(), h.st, Block{ChainID: "rome-test", Height: h.height, TimeMs: int64(h.height) * 1000, PrevHash: h.prevHash()}); err != nil {
			t.Fatal(err)
		}
		c := cost{cb.gets, cb.visited, h.st.Len()}
		h.checkSupply()
		h.height++
		if rec, _ := h.m.Epoch(h.st, 4); rec.Rewards.String() != "" {
			t.Fatalf("n=%d: epoch 4 rewarded %s with no reward set", n, rec.Rewards)
		}
		for _, l := range ls {
			mt, err := h.m.MeasuredUsage(h.st, l.ID, 3)
			if err != nil || mt.Settled || mt.Weighed != 1 {
				t.Fatalf("n=%d: lease %d's epoch 3 after the end of epoch 4: %+v %v", n, l.ID, mt, err)
			}
		}
		return c
	}
	one, shared, own := run(1, true), run(64, true), run(64, false)
	if shared != one {
		t.Errorf("the epoch end after 64 leases of one provider ran jobs cost %+v, after 1 %+v", shared, one)
	}
	if want := (cost{one.gets, one.visited + 63, one.writes + 63}); own != want {
		t.Errorf("the epoch end after 64 leases of 64 providers ran jobs cost %+v, want %+v (one weight per provider)", own, want)
	}
	t.Logf("epoch end after leases ran jobs: 1 → %+v, 64 of one provider → %+v, 64 of 64 → %+v", one, shared, own)
}
