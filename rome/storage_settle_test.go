package rome

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/sos-kernel/sos/ledger"
)

// pinnedReplicas requests demand for epochs with replicas at max price 5,
// waits for the leases (epoch 1, its draw) and pins a blob of size bytes
// to the request.
func (w *storWorld) pinnedReplicas(demand []ledger.ResourceAmount, epochs uint32, replicas uint16, size int) (req uint64, leases []Lease) {
	w.t.Helper()
	req = id(w.must(w.cons, &ledger.RomeRequest{Demand: demand, MaxPrice: res(4, 5), Epochs: epochs, Replicas: replicas}), "request_id")
	w.untilDrawn(1)
	if leases = w.leasesOf(req); len(leases) != int(replicas) {
		w.t.Fatalf("%d replicas, want %d", len(leases), replicas)
	}
	w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: w.put(size, 1)})
	return req, leases
}

// storageSettleScenario runs two replicas of a request holding pinned
// blobs (a second pin lands mid-lease, so the bytes due grow), proven
// every epoch except one silent miss and one declared miss of one holder
// (its replica stays: storage_repair_misses is high), with a usage report
// in one epoch, under settle_interval_epochs interval, until both leases
// have closed.
func storageSettleScenario(t *testing.T, interval uint64) settleOutcome {
	t.Helper()
	w := newStorWorldOpts(t, harnessOpts{epochBlocks: 2, ttl: 50, settleInterval: interval, reward: 1000}, []uint64{1, 2}, []string{"eu", "us"},
		func(g *storageGenesis) { g.RepairMisses = 10 })
	req, leases := w.pinnedReplicas(res(4, 30), 9, 2, 5000)
	for e := uint64(2); e <= 10; e++ {
		w.untilDrawn(e)
		if e == 4 {
			w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: w.put(9000, 2)}) // due from epoch 6
			w.must(w.provs[0], &ledger.RomeUsage{LeaseID: leases[0].ID, Epoch: 4, Delivered: res(4, 30)})
		}
		for i, l := range leases {
			node := w.nodeOf(l)
			p := w.answer(node)
			switch {
			case p == nil:
			case i == 1 && e == 5: // silent: a miss at the epoch's end
			case i == 1 && e == 7: // declared
				for j := range p.Entries {
					p.Entries[j].Proofs = nil
				}
				w.must(node, p)
			default:
				w.must(node, p)
			}
		}
	}
	w.untilDrawn(12)
	if n := w.storageEvents("storage_missed"); n < 2 {
		t.Fatalf("interval %d: %d misses, want the silent and the declared ones", interval, n)
	}
	out := settleOutcome{Balances: map[string]uint64{}, Leases: map[uint64]string{}, Requests: map[uint64]string{}, Contrib: map[string]uint64{}}
	addrs := []ledger.Address{EscrowAccount, BondAccount}
	for _, u := range w.users {
		addrs = append(addrs, u.Address())
	}
	for _, a := range addrs {
		out.Balances[a.String()] = w.balance(a, "uTFLP")
		c, err := w.m.Contribution(w.st, a)
		if err != nil {
			t.Fatal(err)
		}
		out.Contrib[a.String()] = c
	}
	ls, _ := w.m.Leases(w.st, 0, nil)
	for _, l := range ls {
		if l.Status != StatusEnded || l.SettledTo != l.End {
			t.Fatalf("interval %d: lease %d not over: %+v", interval, l.ID, l)
		}
		out.Leases[l.ID] = fmt.Sprintf("paid %s disputes %d", l.Paid, l.Disputes)
	}
	r, _ := w.m.Request(w.st, req)
	out.Requests[r.ID] = fmt.Sprintf("spent %s refunded %s %s live %d", r.Spent, r.Refunded, StatusName(r.Status), r.LiveLeases)
	recs, _ := w.m.Epochs(w.st, 0)
	for _, rec := range recs {
		out.Attested += rec.Attested + rec.Measured
		out.Balances["minted"] += rec.Rewards.AmountOf("uTFLP")
	}
	for _, a := range w.provs {
		pr, _ := w.m.ProviderRecord(w.st, a.Address())
		out.Contrib["record "+a.Address().String()] = pr.StorageProven<<32 | pr.StorageMissed
	}
	return out
}

// TestStorageSettleIntervalSameOutcome: storage leases paid in arrears
// (settle_interval_epochs 3, 4, 20) end exactly as paying them at every
// epoch (1): balances (bonds slashed and epoch rewards minted included:
// each epoch's reward weighs the units proven in it, settled or not),
// what each lease and the request paid and got back, measured units,
// contributions, providers' records.
func TestStorageSettleIntervalSameOutcome(t *testing.T) {
	want := storageSettleScenario(t, 1)
	if want.Attested == 0 {
		t.Fatalf("nothing measured: %+v", want)
	}
	if want.Balances["minted"] == 0 {
		t.Fatal("no epoch reward minted")
	}
	// Epochs 1-2 hold nothing due; 3-5 the first blob (5 units), 6-9 both
	// (14): the good replica at 1 per unit, the other at 2 less its two
	// missed epochs (5, 7).
	paid := []string{fmt.Sprintf("paid %duTFLP disputes 0", 3*5+4*14), fmt.Sprintf("paid %duTFLP disputes 0", 2*(2*5+3*14))}
	for _, v := range want.Leases {
		if v != paid[0] && v != paid[1] {
			t.Errorf("lease paid %q, want one of %q", v, paid)
		}
	}
	for _, interval := range []uint64{3, 4, 20} {
		got := storageSettleScenario(t, interval)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("interval %d:\n got %+v\nwant %+v", interval, got, want)
		}
	}
}

// TestStorageLeasesNotDueCostNothingPerEpoch: n leases holding pinned
// blobs on one node, proven every epoch, cost an epoch's end the same
// reads and writes whether n is 16 or 64 while none is due for settlement
// (each lease is visited when it is, not at every epoch; the challenges
// sample storage_samples of the node's holdings by slot); with n = 64 and
// settle_interval_epochs 5 their phases spread the settlements, 12 or 13
// at each epoch's end instead of all 64 every fifth, and each such end
// (once every lease has been settled since its pin) costs exactly what as
// many leases settled at every epoch (interval 1) cost. Counted with a store
// that counts reads, not timed.
func TestStorageLeasesNotDueCostNothingPerEpoch(t *testing.T) {
	type cost struct{ gets, visited, writes int }
	// run returns the cost of the ends of epochs 3 to 3+epochs-1 and the
	// leases due at each.
	run := func(n int, interval uint64, epochs int) (costs []cost, due []int) {
		w := newStorWorldOpts(t, harnessOpts{epochBlocks: 1, ttl: 50, settleInterval: interval}, []uint64{1}, []string{"eu"}, func(g *storageGenesis) {
			g.RepairMisses = 10
		})
		w.must(w.provs[0], &ledger.RomeOffer{Capacity: res(4, uint64(10*n)), Price: res(4, 1), Region: "eu", Node: w.nodes[0].Address(), Bond: testBond})
		var reqs []uint64
		for i := 0; i < n; i++ {
			reqs = append(reqs, id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 10), MaxPrice: res(4, 1), Epochs: 100, Replicas: 1, Region: "eu"}), "request_id"))
		}
		w.untilDrawn(1)
		for i, r := range reqs {
			w.must(w.cons, &ledger.BlobPin{RequestID: r, Blob: w.put(2000, uint64(i+1))})
		}
		w.untilDrawn(3) // due from epoch 3
		for range epochs {
			due = append(due, leasesDueNow(t, w.m, w.st))
			if p := w.answer(w.nodes[0]); p != nil {
				w.must(w.nodes[0], p)
			}
			w.commit()
			cb := &countingBase{memBase: w.base}
			w.st = ledger.NewState(cb)
			evs, err := w.m.EndBlock(context.Background(), w.st, Block{ChainID: "rome-test", Height: w.height, TimeMs: int64(w.height) * 1000, PrevHash: w.prevHash()})
			if err != nil {
				t.Fatal(err)
			}
			w.events = append(w.events, evs...)
			costs = append(costs, cost{cb.gets, cb.visited, w.st.Len()})
			w.checkSupply()
			w.height++
		}
		if w.storageEvents("storage_missed") != 0 {
			t.Fatal("misses")
		}
		ls, _ := w.m.Leases(w.st, 0, nil)
		for _, l := range ls {
			// ⌈2000 / 1024⌉ = 2 units an epoch from epoch 3 to where it
			// is settled, never more than the interval behind.
			want := ""
			if l.SettledTo > 3 {
				want = fmt.Sprintf("%duTFLP", 2*(l.SettledTo-3))
			}
			if l.Paid.String() != want || 3+uint64(epochs)-l.SettledTo > interval {
				t.Fatalf("n=%d, interval %d: lease %d settled to %d, paid %s after epoch %d", n, interval, l.ID, l.SettledTo, l.Paid, 2+epochs)
			}
		}
		return costs, due
	}
	// Interval 100: no lease of 64 is due before epoch 36.
	q16, due16 := run(16, 100, 2)
	q64, due64 := run(64, 100, 2)
	if !slices.Equal(due16, []int{0, 0}) || !slices.Equal(due64, []int{0, 0}) {
		t.Fatalf("leases due at epochs 3-4: %v, %v", due16, due64)
	}
	if !slices.Equal(q16, q64) {
		t.Errorf("an epoch with 64 leases holding blobs cost %+v, with 16 %+v", q64, q16)
	}
	// Two rounds of 5 epochs: a lease's first settlement that pays proven
	// bytes also merges its storage record's buckets (one more write), so
	// epochs 9-12 (every lease has had it: those due at epoch 3 had none
	// due yet and have it at 8) are compared with leases settled at every
	// epoch.
	spread, due := run(64, 5, 10)
	total := 0
	for i, k := range due {
		total += k
		if k != 12 && k != 13 {
			t.Errorf("interval 5: %d of 64 leases due at epoch %d, want 12 or 13: %v", k, 3+i, due)
		}
		if i < 6 {
			continue
		}
		if every, _ := run(k, 1, 3); every[2] != spread[i] {
			t.Errorf("epoch %d settling %d of 64 leases cost %+v, %d leases settled every epoch %+v", 3+i, k, spread[i], k, every[2])
		}
	}
	if total != 128 {
		t.Errorf("interval 5: %d settlements in 10 epochs, want each of the 64 leases twice: %v", total, due)
	}
	t.Logf("epoch end, leases holding blobs: 16 → %+v, 64 → %+v; 64 staggered over 10 epochs: %v leases due → %+v", q16[1], q64[1], due, spread)
}

// TestChallengedHead: the miss pass reads a challenge list's epoch and
// length from its encoding's head as the codec wrote it, for lists of 0 to
// 300 items and epochs of every integer width, and refuses anything else.
func TestChallengedHead(t *testing.T) {
	c := ledger.NewCodec()
	for _, epoch := range []uint64{0, 5, 23, 24, 255, 256, 70_000, 1 << 33} {
		for _, n := range []int{0, 1, 23, 24, 255, 256, 300} {
			ch := Challenged{Epoch: epoch, Items: make([]ChallengeItem, n)}
			for i := range ch.Items {
				ch.Items[i] = ChallengeItem{Lease: uint64(i), Pin: uint32(i), Blob: ledger.BlobRef{Size: 4096}}
			}
			raw, err := c.Marshal(&ch)
			if err != nil {
				t.Fatal(err)
			}
			e, got, ok := challengedHead(raw)
			if !ok || e != epoch || got != uint64(n) {
				t.Fatalf("epoch %d, %d items: read %d, %d, %v", epoch, n, e, got, ok)
			}
		}
	}
	for _, bad := range [][]byte{nil, {0x82}, {0x83, 0x01, 0x80}, {0x82, 0x18}, {0x82, 0x01, 0x01}, {0x82, 0x01, 0x9b, 0x01}} {
		if _, _, ok := challengedHead(bad); ok {
			t.Errorf("%x read as a challenge list", bad)
		}
	}
}

// TestEncodeChallengedMatchesCodec: the draw's hand-written encoding of a
// challenge list is the codec's, byte for byte, for integers of every
// width in every field and lists of 0 to 300 items (the state root and so
// consensus depend on the bytes).
func TestEncodeChallengedMatchesCodec(t *testing.T) {
	c := ledger.NewCodec()
	widths := []uint64{0, 1, 23, 24, 255, 256, 65_535, 65_536, 1<<32 - 1, 1 << 32, 1<<64 - 1}
	for _, epoch := range widths {
		for _, n := range []int{0, 1, 23, 24, 255, 256, 300} {
			ch := Challenged{Epoch: epoch, Items: make([]ChallengeItem, n)}
			for i := range ch.Items {
				w := widths[(i+int(epoch%7))%len(widths)]
				ch.Items[i] = ChallengeItem{Lease: w, Pin: uint32(widths[(i+3)%len(widths)]),
					Blob: ledger.BlobRef{ID: ledger.BlobID(ledger.HashBytes([]byte{byte(i)})), Size: widths[(i+5)%len(widths)]}}
			}
			want, err := c.Marshal(&ch)
			if err != nil {
				t.Fatal(err)
			}
			if got := encodeChallenged(&ch); !bytes.Equal(got, want) {
				t.Fatalf("epoch %d, %d items:\n got %x\nwant %x", epoch, n, got, want)
			}
		}
	}
}

// TestRoundHead: the miss pass reads a node's answers from its Round's
// head as the codec wrote it, for counts and epochs of every integer
// width and any lease providers, and refuses anything else.
func TestRoundHead(t *testing.T) {
	c := ledger.NewCodec()
	widths := []uint64{0, 1, 23, 24, 255, 256, 65_536, 1<<32 - 1, 1 << 40}
	for i, epoch := range widths {
		for j, proven := range widths {
			r := Round{Epoch: epoch, Proven: uint32(proven), Declared: uint32(widths[(i+j)%len(widths)]), LastHeight: proven, LastEpoch: epoch,
				Providers: make([]LeaseProvider, j%4)}
			raw, err := c.Marshal(&r)
			if err != nil {
				t.Fatal(err)
			}
			e, p, d, ok := roundHead(raw)
			if !ok || e != r.Epoch || p != r.Proven || d != r.Declared {
				t.Fatalf("%+v: read %d, %d, %d, %v", r, e, p, d, ok)
			}
		}
	}
	for _, bad := range [][]byte{nil, {0x86}, {0x85, 0x01, 0x01, 0x01}, {0x86, 0x01, 0x18}, {0x86, 0x01, 0x01, 0x41},
		{0x86, 0x01, 0x1b, 0x01, 0, 0, 0, 0, 0, 0, 0, 0x01}} {
		if _, _, _, ok := roundHead(bad); ok {
			t.Errorf("%x read as a round", bad)
		}
	}
}

// TestSlotRefEncoding: a slot record round-trips through its fixed layout,
// and a record of another length is corrupt.
func TestSlotRefEncoding(t *testing.T) {
	ref := slotRef{Lease: 1<<40 + 3, Pin: 7, Blob: ledger.BlobRef{ID: ledger.BlobID{1, 2, 3}, Size: 1 << 30}, From: 9, End: 1 << 50}
	var got slotRef
	if err := got.decode(ref.encode()); err != nil || got != ref {
		t.Fatalf("decoded %+v, %v; want %+v", got, err, ref)
	}
	if err := got.decode(ref.encode()[1:]); !errors.Is(err, ledger.ErrCorrupt) {
		t.Fatalf("short record: %v", err)
	}
}

// FuzzChallengedHead: whatever the bytes, reading a challenge list's head
// does not panic, and when the codec decodes them as a Challenged the head
// agrees with it.
func FuzzChallengedHead(f *testing.F) {
	c := ledger.NewCodec()
	for _, n := range []int{0, 1, 24, 300} {
		raw, err := c.Marshal(&Challenged{Epoch: uint64(n) * 1000, Items: make([]ChallengeItem, n)})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte{0x82, 0x1b, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, n, ok := challengedHead(b)
		var ch Challenged
		if c.Unmarshal(b, &ch) == nil && (!ok || e != ch.Epoch || n != uint64(len(ch.Items))) {
			t.Fatalf("%x: head %d, %d, %v; decoded epoch %d, %d items", b, e, n, ok, ch.Epoch, len(ch.Items))
		}
	})
}

// TestStoreDecodesWithoutReencoding: the market reads its own records
// with the codec's UnmarshalStored (no canonical re-encoding):
// every record the codec wrote decodes to the same value either way; a
// record in a non-canonical encoding (an integer in a longer form than
// needed), which only a corrupt store could hold, is decoded rather than
// refused (the codec refuses it: the check the market no longer pays for
// on each read); bytes that are not a record are still ErrCorrupt.
func TestStoreDecodesWithoutReencoding(t *testing.T) {
	h := newHarness(t, harnessOpts{epochBlocks: 2, users: 2})
	s := &store{st: h.st, codec: h.m.codec, stored: true}
	l := &Lease{ID: 7, RequestID: 3, OfferID: 2, Start: 1, End: 9, NextSettle: 5, SettledTo: 4, Status: StatusActive,
		Amounts: []ledger.ResourceAmount{{Kind: KindStorage, Amount: 30}}, Paid: ledger.Coins{{Denom: "uTFLP", Amount: 12}}}
	rd := &Round{Epoch: 4, Proven: 8, LastHeight: 77, LastEpoch: 4, Providers: []LeaseProvider{{Lease: 7}}}
	for i, v := range []any{l, rd} {
		k := rkey(tagSeq, []byte{byte(i)})
		if err := s.put(k, v); err != nil {
			t.Fatal(err)
		}
		got := reflect.New(reflect.TypeOf(v).Elem()).Interface()
		if ok, err := s.get(k, got); err != nil || !ok {
			t.Fatalf("%T: %v %v", v, ok, err)
		}
		if !reflect.DeepEqual(got, v) {
			t.Errorf("%T: got %+v, want %+v", v, got, v)
		}
	}
	// Round{Epoch: 4, ...} with its epoch as a two-byte integer (0x19 0x0004).
	raw, err := h.m.codec.Marshal(rd)
	if err != nil {
		t.Fatal(err)
	}
	if raw[1] != 0x04 {
		t.Fatalf("encoding %x", raw)
	}
	long := append([]byte{raw[0], 0x19, 0x00, 0x04}, raw[2:]...)
	var viaCodec Round
	if err := h.m.codec.Unmarshal(long, &viaCodec); !errors.Is(err, ledger.ErrMalformed) {
		t.Fatalf("codec accepted a non-canonical record: %v", err)
	}
	h.st.Set(rkey(tagSeq, []byte("long")), long)
	var got Round
	if ok, err := s.get(rkey(tagSeq, []byte("long")), &got); err != nil || !ok || !reflect.DeepEqual(&got, rd) {
		t.Fatalf("non-canonical record: %v %v %+v", ok, err, got)
	}
	h.st.Set(rkey(tagSeq, []byte("bad")), []byte{0x85, 0x01})
	if _, err := s.get(rkey(tagSeq, []byte("bad")), &got); !errors.Is(err, ledger.ErrCorrupt) {
		t.Fatalf("truncated record: %v", err)
	}
}

// storageUnitScenario runs one replica holding a 5,000-byte blob from
// epoch 1 and a 3,000-byte one pinned at epoch 4, proven every epoch,
// until the lease has closed; with change, governance sets
// bytes_per_storage_unit from 1,024 to 4,096 at epoch 3. It returns
// what the lease paid and the provider's storage rate left at the end.
func storageUnitScenario(t *testing.T, change bool) (paid string, rate uint64, w *storWorld) {
	t.Helper()
	w = newStorWorldOpts(t, harnessOpts{epochBlocks: 2, ttl: 50, settleInterval: 3}, []uint64{1}, []string{"eu"}, nil)
	req, leases := w.pinnedReplicas(res(4, 20), 6, 1, 5000)
	for e := uint64(2); e <= 8; e++ {
		w.untilDrawn(e)
		if change && e == 3 {
			w.govSet("bytes_per_storage_unit", "4096")
		}
		if e == 4 {
			w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: w.put(3000, 2)})
		}
		if p := w.answer(w.nodeOf(leases[0])); p != nil {
			w.must(w.nodeOf(leases[0]), p)
		}
	}
	w.untilEpoch(10) // the rate's last change (epoch 7, the lease's end) is weighed at epoch 8's end
	l, _ := w.m.Lease(w.st, leases[0].ID)
	if n := w.storageEvents("storage_missed"); n != 0 {
		t.Fatalf("%d misses: every challenge was answered", n)
	}
	if l.Status != StatusEnded || l.SettledTo != l.End {
		t.Fatalf("lease not over: %+v", l)
	}
	s := &store{st: w.st, codec: w.codec}
	prov := w.provs[0].Address()
	rate, err := s.getU64(rkey(tagStorRate, prov[:]))
	if err != nil {
		t.Fatal(err)
	}
	return l.Paid.String(), rate, w
}

// TestStorageUnitChangeKeepsLeaseTerms: a governance change of
// bytes_per_storage_unit applies to requests made after it. A running
// lease keeps the unit its request was made with — for its quota, what
// its proofs pay and its provider's reward rate — so it pays what it
// would have paid without the change, and the provider's rate returns
// to zero when the lease ends (on main the rate scheduled in old units
// was taken back in new ones and wrapped around).
func TestStorageUnitChangeKeepsLeaseTerms(t *testing.T) {
	wantPaid, rate, _ := storageUnitScenario(t, false)
	if rate != 0 || wantPaid != "23uTFLP" {
		t.Fatalf("without a change the lease paid %s (want 5 units × 3 epochs + 8 × 1) and the rate ends at %d", wantPaid, rate)
	}
	paid, rate, w := storageUnitScenario(t, true)
	if paid != wantPaid {
		t.Errorf("lease paid %s after the unit changed, want %s (its request's terms)", paid, wantPaid)
	}
	if rate != 0 {
		t.Errorf("the provider's storage rate ends at %d after the lease closed, want 0", rate)
	}
	// A request made after the change has quotas in the new unit.
	req := id(w.must(w.cons, &ledger.RomeRequest{Demand: res(4, 2), MaxPrice: res(4, 5), Epochs: 3, Replicas: 1}), "request_id")
	w.untilEpoch(11)
	if len(w.leasesOf(req)) != 1 {
		t.Fatal("the new request was not placed")
	}
	w.must(w.cons, &ledger.BlobPin{RequestID: req, Blob: w.put(8000, 3)}) // 2 units of 4,096 bytes
	if _, err := w.deliver(w.cons, &ledger.BlobPin{RequestID: req, Blob: ledger.BlobRef{ID: ledger.BlobID{7}, Size: 193}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a pin over the new unit's quota: %v", err)
	}
}
