package rome

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strconv"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

// Block is what the end-of-block logic may know about the block.
type Block struct {
	ChainID string
	Height  uint64
	TimeMs  int64
	// PrevHash is the hash of the block before: at an epoch's first
	// block it seeds the epoch's storage challenges (the hash of the
	// last block of the epoch before).
	PrevHash ledger.Hash
}

// maxEpochEvents bounds the events kept in an epoch record.
const maxEpochEvents = 64

// EndBlock runs after a block's transactions: it closes governance votes
// whose period ends at this height, runs the job deadlines that end here
// (timeouts, closing challenge windows, lapsed challenges) and, at the last
// block of an epoch, processes the epoch (settle, expire, reward, certify,
// match). It is a pure function of the state and the block, and returns
// the events of the jobs and bonds it changed (the epoch's own events are
// in its EpochRecord).
func (m *Market) EndBlock(ctx context.Context, st *ledger.State, b Block) ([]ledger.Event, error) {
	s := &store{st: st, codec: m.codec, stored: true}
	acc := &ledger.Accounts{St: st, Codec: m.codec}
	p, err := s.params(m.gen)
	if err != nil {
		return nil, err
	}
	if err := m.tally(s, p, b.Height); err != nil {
		return nil, err
	}
	if p, err = s.params(m.gen); err != nil { // a proposal may have changed them
		return nil, err
	}
	events := []ledger.Event{}
	je := &jobEnv{m: m, s: s, acc: acc, p: p, height: b.Height, events: &events}
	if err := je.jobsDue(); err != nil {
		return nil, fmt.Errorf("rome: jobs due at %d: %w", b.Height, err)
	}
	clock, err := s.clock(p)
	if err != nil {
		return nil, err
	}
	if b.Height < clock.EndHeight {
		if b.Height == clock.StartHeight {
			// The epoch's first block (and not its last): its storage
			// challenges are drawn now, and the storage rates of the
			// epoch before take their changes (storageRates).
			if err := s.drawChallenges(p, clock.Epoch, b); err != nil {
				return nil, fmt.Errorf("rome: epoch %d: draw challenges at %d: %w", clock.Epoch, b.Height, err)
			}
			if clock.Epoch > 0 {
				if err := s.foldStorageRates(clock.Epoch - 1); err != nil {
					return nil, fmt.Errorf("rome: epoch %d: storage rates at %d: %w", clock.Epoch, b.Height, err)
				}
			}
		}
		return events, nil
	}
	rec, err := m.processEpoch(ctx, s, acc, p, clock.Epoch, b, clock.StartHeight < clock.EndHeight, &events)
	if err != nil {
		return nil, fmt.Errorf("rome: epoch %d: %w", clock.Epoch, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("rome: epoch %d: %w", clock.Epoch, err) // a cancelled policy run must not be recorded as a rejection
	}
	if err := s.put(rkey(tagEpoch, u64(clock.Epoch)), rec); err != nil {
		return nil, err
	}
	clock.Epoch++
	clock.StartHeight = b.Height + 1
	clock.EndHeight = b.Height + p.EpochBlocks
	if err := s.put(rkey(tagClock), &clock); err != nil {
		return nil, err
	}
	if clock.StartHeight == clock.EndHeight {
		// An epoch of one block has no block after its first to answer
		// in: its challenges are drawn now, at the end of the epoch
		// before.
		if err := s.drawChallenges(p, clock.Epoch, b); err != nil {
			return nil, fmt.Errorf("rome: epoch %d: draw challenges at %d: %w", clock.Epoch, b.Height, err)
		}
	}
	return events, nil
}

type epochWork struct {
	m       *Market
	s       *store
	acc     *ledger.Accounts
	p       Params
	e       uint64
	b       Block
	rec     *EpochRecord
	offers  map[uint64]*Offer // loaded records, written back in id order
	reqs    map[uint64]*Request
	paid    map[string]uint64
	refund  map[string]uint64
	attest  map[ledger.Address]uint64 // attested and measured units per provider this epoch
	provOrd []ledger.Address
	events  *[]ledger.Event // EndBlock's events (bonds returned)
	// ratesFolded: the storage rate changes of e-1 were applied at e's
	// first block (storageRates).
	ratesFolded bool
}

func (w *epochWork) offer(id uint64) (*Offer, error) {
	if o, ok := w.offers[id]; ok {
		return o, nil
	}
	o, err := w.s.offer(id)
	if err == nil {
		w.offers[id] = o
	}
	return o, err
}

func (w *epochWork) request(id uint64) (*Request, error) {
	if r, ok := w.reqs[id]; ok {
		return r, nil
	}
	r, err := w.s.request(id)
	if err == nil {
		w.reqs[id] = r
	}
	return r, err
}

func (w *epochWork) event(typ string, kv ...string) {
	if len(w.rec.Events) < maxEpochEvents {
		w.rec.Events = append(w.rec.Events, ledger.NewEvent(typ, kv...))
	}
}

func (w *epochWork) flush() error {
	oids := make([]uint64, 0, len(w.offers))
	for id := range w.offers {
		oids = append(oids, id)
	}
	sort.Slice(oids, func(i, j int) bool { return oids[i] < oids[j] })
	for _, id := range oids {
		// An offer that expired or whose last lease ended may now be idle.
		ev, err := releaseBond(w.acc, w.offers[id])
		if err != nil {
			return err
		}
		if ev != nil {
			*w.events = append(*w.events, *ev)
			if len(w.rec.Events) < maxEpochEvents {
				w.rec.Events = append(w.rec.Events, *ev)
			}
		}
		o := w.offers[id]
		if err := w.putChanged(rkey(tagOffer, u64(id)), o); err != nil {
			return err
		}
		fk := rkey(tagOfferFree, u64(id))
		listed, err := w.s.st.Get(fk)
		if err != nil {
			return err
		}
		if free := o.Status == StatusOpen && o.hasFree(); free && listed == nil {
			err = w.s.setRaw(fk, one)
		} else if !free && listed != nil {
			err = w.s.del(fk)
		}
		if err != nil {
			return err
		}
	}
	rids := make([]uint64, 0, len(w.reqs))
	for id := range w.reqs {
		rids = append(rids, id)
	}
	sort.Slice(rids, func(i, j int) bool { return rids[i] < rids[j] })
	for _, id := range rids {
		if err := w.putChanged(rkey(tagRequest, u64(id)), w.reqs[id]); err != nil {
			return err
		}
	}
	return nil
}

// putChanged writes a record the epoch loaded unless it is unchanged:
// matching reads offers and requests it may not change, and a write costs
// the block's commit even when it changes nothing.
func (w *epochWork) putChanged(k []byte, v any) error {
	raw, err := w.m.codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("rome: encode: %w", err)
	}
	old, err := w.s.st.Get(k)
	if err != nil {
		return err
	}
	if bytes.Equal(old, raw) {
		return nil
	}
	return w.s.setRaw(k, raw)
}

// hasFree reports whether some capacity of the offer is not leased.
func (o *Offer) hasFree() bool {
	for _, c := range o.Capacity {
		if c.Amount > amountOf(o.Leased, c.Kind) {
			return true
		}
	}
	return false
}

// processEpoch ends epoch e at its last block b; ratesFolded says that the
// epoch's first block, an earlier one, already applied the storage rate
// changes of the epoch before (EndBlock).
func (m *Market) processEpoch(ctx context.Context, s *store, acc *ledger.Accounts, p Params, e uint64, b Block, ratesFolded bool, events *[]ledger.Event) (*EpochRecord, error) {
	w := &epochWork{m: m, s: s, acc: acc, p: p, e: e, b: b, events: events, ratesFolded: ratesFolded,
		rec:    &EpochRecord{Epoch: e, Height: b.Height, Kinds: []KindStat{}, Events: []ledger.Event{}, Paid: ledger.Coins{}, Refunded: ledger.Coins{}, Rewards: ledger.Coins{}},
		offers: map[uint64]*Offer{}, reqs: map[uint64]*Request{}, paid: map[string]uint64{}, refund: map[string]uint64{},
		attest: map[ledger.Address]uint64{}}
	steps := []func() error{w.storageRates, w.jobWeights, w.settle, w.storageCheck, w.expire, w.reward, w.certify}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := w.match(ctx); err != nil {
		return nil, err
	}
	if err := w.flush(); err != nil {
		return nil, err
	}
	var err error
	if w.rec.Paid, err = coinsOf(w.paid); err != nil {
		return nil, err
	}
	if w.rec.Refunded, err = coinsOf(w.refund); err != nil {
		return nil, err
	}
	return w.rec, nil
}

// settle pays the leases for the epoch before e (reports for an epoch are
// accepted during it and the next one, so settlement waits one epoch),
// releases the capacity of leases whose last epoch is e, and closes leases
// whose last epoch is now settled. Usage reports decide the amount paid per
// kind (capped at the leased amount):
//   - no report: the leased amount is paid (delivery is presumed);
//   - reports present: the smallest reported amount is paid — what both
//     sides acknowledge; a disagreement between the two reports is recorded
//     as a dispute and the disputed part is not paid (it returns with the
//     escrow);
//   - both reports present: the agreed (smallest) amount is attested and
//     counts for rewards, certificates and governance weight.
//
// Only the leases that need it are visited, so that an epoch costs what
// happened in it, not the number of leases: those with a report, a meter
// reading or a missed storage proof to weigh in the epoch settling (the
// tagActive index their transactions and the miss pass write) and those
// whose settlement is due now (tagSettleAt: at most
// settle_interval_epochs after their last one, at an epoch their request
// id's phase staggers (dueAfter); the end of their last epoch; their
// close). The epochs a lease ran jobs in are not a reason to visit it:
// whenever it is visited, each unpaid epoch with a Metered record is
// weighed by settleLease (what the runtime measured is known from that
// record whenever it is read), so a lease running a job now and then is
// paid for it at its next due settlement, like its idle epochs, and an
// epoch's end does not cost a visit per lease that ran a job in the
// epoch before; the epoch's reward still weighs the measured units at
// their own epoch (jobWeights). An epoch with nothing to weigh is worth
// the leased amount of every kind not paid by meter only — the same for every such epoch of
// the lease — except storage held for pinned blobs, which is
// worth its proven byte-epochs: the bytes due (fixed before the epoch
// began) less the bytes missed (none, or the lease would have been
// visited for it). Both are known from the lease's own records whenever
// it is visited, so a visit pays all of the lease's unpaid epochs at once,
// oldest first, and a lease holding pinned blobs is not visited at every
// epoch either; with settle_interval_epochs 1 every live lease is visited
// at every epoch.
func (w *epochWork) settle() error {
	var active []uint64
	if w.e >= 1 {
		var err error
		if active, err = w.s.ids(rkey(tagActive, u64(w.e-1))); err != nil {
			return err
		}
		for _, id := range active {
			if err := w.s.del(rkey(tagActive, u64(w.e-1), u64(id))); err != nil {
				return err
			}
		}
	}
	due, err := w.s.ids(rkey(tagSettleAt, u64(w.e)))
	if err != nil {
		return err
	}
	for _, id := range due {
		if err := w.s.del(rkey(tagSettleAt, u64(w.e), u64(id))); err != nil {
			return err
		}
	}
	weigh := make(map[uint64]bool, len(active))
	for _, id := range active {
		weigh[id] = true
	}
	ids := append(append(make([]uint64, 0, len(active)+len(due)), active...), due...)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	for _, id := range ids {
		// Entries of a lease that closed early (a moved replica) are
		// dropped as their epoch comes.
		if raw, err := w.s.st.Get(rkey(tagLive, u64(id))); err != nil {
			return err
		} else if raw == nil {
			continue
		}
		l, err := w.s.lease(id)
		if err != nil {
			return err
		}
		if err := w.settleThrough(l, weigh[id]); err != nil {
			return err
		}
		if err := w.lifecycle(l); err != nil {
			return err
		}
	}
	return nil
}

// settleThrough pays lease l for its unpaid epochs up to the one before e,
// oldest first: those in which it ran jobs (a Metered record) and, when
// weigh is set, the epoch before e through settleLease; the others, with
// nothing to weigh, at the idle rate (storage held for pinned blobs at its
// proven byte-epochs).
func (w *epochWork) settleThrough(l *Lease, weigh bool) error {
	if w.e == 0 {
		return nil
	}
	se := w.e - 1
	from, to := max(l.SettledTo, l.Start), min(se+1, l.End)
	if from < to {
		weighed, err := w.s.jobEpochs(l.ID, from, to)
		if err != nil {
			return err
		}
		if weigh && se < to && (len(weighed) == 0 || weighed[len(weighed)-1] != se) {
			weighed = append(weighed, se)
		}
		at := from
		for _, x := range append(weighed, to) {
			if at < x {
				if err := w.payPlain(l, at, x); err != nil {
					return err
				}
			}
			if x < to {
				if err := w.settleLease(l, x); err != nil {
					return err
				}
			}
			at = x + 1
		}
	}
	l.SettledTo = max(l.SettledTo, min(se+1, l.End))
	return nil
}

// payPlain pays lease l's epochs [a, b), which have nothing to weigh: at
// the idle rate, storage from the lease's first proof-paid epoch on at its
// proven byte-epochs.
func (w *epochWork) payPlain(l *Lease, a, b uint64) error {
	ls, stored, err := w.s.leaseStorage(l.ID)
	if err != nil {
		return err
	}
	split := b // epochs from split on pay storage by proofs
	if stored {
		split = min(max(a, ls.Since), b)
	}
	if a < split {
		if err := w.payIdle(l, split-a); err != nil {
			return err
		}
	}
	if split < b {
		if err := w.payStored(l, ls, split, b); err != nil {
			return err
		}
	}
	return nil
}

// payIdle pays n epochs with nothing to weigh: the leased amount of each
// kind at the lease's price, except kinds the request pays by meter only
// (no meter read them).
func (w *epochWork) payIdle(l *Lease, n uint64) error {
	return w.payEpochs(l, n, nil)
}

// payStored pays epochs [a, b) of a lease that holds pinned blobs and had
// nothing else to weigh in them: storage its proven units (measured by
// proofs: they count for rewards, certificates and governance weight like
// any measured unit, in the epoch they are paid), the other kinds as
// payIdle — what settleLease pays for each of those epochs, summed.
func (w *epochWork) payStored(l *Lease, ls *LeaseStorage, a, b uint64) error {
	units, err := w.storageUnits(l, ls, a, b)
	if err != nil {
		return err
	}
	if err := w.payEpochs(l, b-a, &units); err != nil {
		return err
	}
	r, err := w.request(l.RequestID)
	if err != nil {
		return err
	}
	if units == 0 || r.Metered(KindStorage) {
		return nil
	}
	w.rec.Measured = satAdd(w.rec.Measured, units)
	// The epoch rewards weighed these units at their own epochs
	// (storageRates).
	return w.credit(l, units, 0, []certUnits{{kind: KindStorage, src: sourceProofs, units: units}})
}

// storageRates counts, for the epoch's rewards, the storage units every
// provider's leases are paid by proofs for the epoch being settled (e-1),
// whether or not they are settled now: its rate (changed by the changes
// scheduled for that epoch) less what its misses in it cost. This keeps
// an epoch's reward shared as if every lease holding pinned blobs were
// settled at every epoch, for a read per provider holding something
// rather than per lease.
func (w *epochWork) storageRates() error {
	if w.e == 0 {
		return nil
	}
	se := w.e - 1
	if !w.ratesFolded {
		if err := w.s.foldStorageRates(se); err != nil {
			return err
		}
	}
	lost, err := w.s.addrCounts(rkey(tagStorLost, u64(se)))
	if err != nil {
		return err
	}
	lostOf := make(map[ledger.Address]uint64, len(lost))
	for _, l := range lost {
		if err := w.s.del(rkey(tagStorLost, u64(se), l.a[:])); err != nil {
			return err
		}
		lostOf[l.a] = l.v
	}
	rates, err := w.s.addrCounts(rkey(tagStorRate))
	if err != nil {
		return err
	}
	for _, r := range rates {
		w.weigh(r.a, r.v-min(r.v, lostOf[r.a]))
	}
	return nil
}

// foldStorageRates applies the changes scheduled for epoch se to the
// providers' storage rates. Every change for se is scheduled during se or
// before (rescheduleRate changes epochs from the current one on), so it
// may run at any block after se's last: at the first block of se+1 when
// that is not also its last, which takes the writes of an epoch in which
// many providers' rates change at once (a large batch of pins) out of
// se+1's last block; else in storageRates, at that last block.
func (s *store) foldStorageRates(se uint64) error {
	changes, err := s.addrCounts(rkey(tagStorRateAt, u64(se)))
	if err != nil {
		return err
	}
	for _, c := range changes {
		if err := s.del(rkey(tagStorRateAt, u64(se), c.a[:])); err != nil {
			return err
		}
		k := rkey(tagStorRate, c.a[:])
		v, err := s.getU64(k)
		if err != nil {
			return err
		}
		if err := s.setU64(k, v+c.v); err != nil { // two's complement: the rate never goes below 0
			return err
		}
	}
	return nil
}

// jobWeights counts, for the epoch's rewards, the units the runtime
// measured for every provider's leases in the epoch being settled (e-1),
// whether or not they are settled now (a lease that ran jobs is paid for
// them when its settlement falls due): the sums the job results of that
// epoch wrote (store.reweigh). This keeps an epoch's reward shared as if
// every lease that ran jobs were settled at the end of the next epoch, for
// a read per provider whose leases ran jobs rather than a settlement per
// lease.
func (w *epochWork) jobWeights() error {
	if w.e == 0 {
		return nil
	}
	list, err := w.s.addrCounts(rkey(tagJobWeight, u64(w.e-1)))
	if err != nil {
		return err
	}
	for _, e := range list {
		if err := w.s.del(rkey(tagJobWeight, u64(w.e-1), e.a[:])); err != nil {
			return err
		}
		w.weigh(e.a, e.v)
	}
	return nil
}

// payEpochs pays n epochs of lease l at the idle rate; storage, when
// stored is set, *stored units in all (the proven ones).
func (w *epochWork) payEpochs(l *Lease, n uint64, stored *uint64) error {
	r, err := w.request(l.RequestID)
	if err != nil {
		return err
	}
	pay := map[string]uint64{}
	for _, a := range l.Amounts {
		if r.Metered(a.Kind) || a.Amount == 0 {
			continue
		}
		amt, times := a.Amount, n
		if stored != nil && a.Kind == KindStorage {
			amt, times = *stored, 1
		}
		v, err := mulCheck(amt, amountOf(l.Prices, a.Kind), times) // ≤ the escrow: cannot overflow
		if err != nil {
			return fmt.Errorf("lease %d: %d idle epochs: %w", l.ID, n, err)
		}
		if v == 0 {
			continue
		}
		d := w.m.KindDenom(a.Kind)
		sum, c := bits.Add64(pay[d], v, 0)
		if c != 0 {
			return fmt.Errorf("lease %d: %d idle epochs: %w", l.ID, n, ledger.ErrOverflow)
		}
		pay[d] = sum
	}
	return w.payProvider(l, r, pay)
}

// certUnits are units of one kind a settlement certifies, and how they
// were established.
type certUnits struct {
	kind  uint8
	src   byte
	meter uint64
	units uint64
}

// weigh adds u units to provider a's weight in the epoch's rewards
// (providers in the order they were first weighed).
func (w *epochWork) weigh(a ledger.Address, u uint64) {
	if u == 0 {
		return
	}
	if _, ok := w.attest[a]; !ok {
		w.provOrd = append(w.provOrd, a)
	}
	w.attest[a] = satAdd(w.attest[a], u)
}

// credit counts total attested or measured units of lease l's provider
// for its certificates (certs, per kind and source, added to the
// accumulators of the provider's pending certificate period: see
// certPhase) and its governance weight, and rewarded of them for the
// epoch's rewards (storage units paid by proofs are weighed there at their
// own epoch: storageRates).
func (w *epochWork) credit(l *Lease, total, rewarded uint64, certs []certUnits) error {
	w.weigh(l.Provider, rewarded)
	if total == 0 {
		return nil
	}
	due := certDue(l.Provider, w.e, w.p.CertPeriodEpochs)
	for _, c := range certs {
		if c.units == 0 {
			continue
		}
		k := certAccKey(due, l.Provider, c.kind, c.src, c.meter)
		if err := w.s.addCertAcc(k, certAcc{units: c.units}); err != nil {
			return err
		}
	}
	return w.addContribution(l.Provider, total)
}

// payProvider moves pay from escrow to the lease's provider and records
// it on the lease, its request and the epoch.
func (w *epochWork) payProvider(l *Lease, r *Request, pay map[string]uint64) error {
	coins, err := coinsOf(pay)
	if err != nil {
		return err
	}
	if len(coins) == 0 {
		return nil
	}
	if err := w.acc.Transfer(EscrowAccount, l.Provider, coins); err != nil {
		return fmt.Errorf("lease %d: pay %s: %w", l.ID, coins, err)
	}
	for _, c := range coins {
		w.paid[c.Denom] += c.Amount
		if r.Spent, err = r.Spent.Add(c); err != nil {
			return err
		}
		if l.Paid, err = l.Paid.Add(c); err != nil {
			return err
		}
	}
	return nil
}

// schedule records when lease l is settled next at the latest: the end of
// its last epoch (its capacity is freed), the end of the epoch after (its
// last epoch is paid and it closes) or its next due epoch after e
// (dueAfter: at most settle_interval_epochs later, at its request's
// phase), whichever comes first; a closed lease has no next settlement.
func (w *epochWork) schedule(l *Lease) error {
	var next uint64
	if w.e < l.End {
		next = min(dueAfter(w.e, l.RequestID, w.p.settleInterval()), l.End)
		if l.End-1 > w.e {
			next = min(next, l.End-1)
		}
	}
	if next == l.NextSettle {
		return nil
	}
	if l.NextSettle > w.e {
		if err := w.s.del(rkey(tagSettleAt, u64(l.NextSettle), u64(l.ID))); err != nil {
			return err
		}
	}
	l.NextSettle = next
	if next == 0 {
		return nil
	}
	return w.s.setRaw(rkey(tagSettleAt, u64(next), u64(l.ID)), one)
}

// dueAfter is the first epoch after e at whose end a lease of request
// req falls due for its periodic settlement: the first n > e with
// (n + req) mod interval = 0, so n - e is 1 to interval. The phase (req
// mod interval) staggers the leases that started together — the requests
// a match places have different ids — over the interval's epochs, about
// 1/interval of them at each epoch's end, instead of all of them falling
// due at the same one every interval epochs; the replicas of a request
// share it, so their settlements write the request's record once.
func dueAfter(e, req, interval uint64) uint64 {
	return e + 1 + (interval-(e+1+req%interval)%interval)%interval
}

// endLease ends active lease l, after its last epoch or when its replica
// moves away early: its capacity goes back to its offer, and its jobs
// still open are counted on the offer, whose bond they keep
// (endLeaseJobs).
func (w *epochWork) endLease(l *Lease) error {
	l.Status = StatusEnded
	o, err := w.offer(l.OfferID)
	if err != nil {
		return err
	}
	for _, a := range l.Amounts {
		setAmount(o.Leased, a.Kind, amountOf(o.Leased, a.Kind)-a.Amount)
	}
	return w.s.endLeaseJobs(l, o, w.b.Height)
}

// lifecycle frees a lease's capacity after its last epoch and closes it
// (and settles its request's escrow) once that epoch is paid.
func (w *epochWork) lifecycle(l *Lease) error {
	if l.Status == StatusActive && w.e+1 >= l.End {
		if err := w.endLease(l); err != nil {
			return err
		}
	}
	if w.e >= l.End {
		if err := w.s.del(rkey(tagLive, u64(l.ID))); err != nil {
			return err
		}
		if err := w.s.del(rkey(tagReqLease, u64(l.RequestID), u64(l.ID))); err != nil {
			return err
		}
		if err := w.s.removeHoldings(l, true); err != nil {
			return err
		}
		if err := w.s.delPrefix(rkey(tagMeterUse, u64(l.ID))); err != nil {
			return err
		}
		r, err := w.request(l.RequestID)
		if err != nil {
			return err
		}
		r.LiveLeases--
		if r.Status != StatusOpen && r.LiveLeases == 0 {
			if err := w.finalize(r); err != nil {
				return err
			}
		}
	}
	if err := w.schedule(l); err != nil {
		return err
	}
	return w.s.put(rkey(tagLease, u64(l.ID)), l)
}

func (w *epochWork) settleLease(l *Lease, se uint64) error {
	var u Usage
	if _, err := w.s.get(rkey(tagUsage, u64(l.ID), u64(se)), &u); err != nil {
		return err
	}
	mt, err := w.s.metered(l.ID, se)
	if err != nil {
		return err
	}
	r, err := w.request(l.RequestID)
	if err != nil {
		return err
	}
	// A lease that ran jobs in the epoch is paid what the runtime measured
	// for compute and bandwidth, whatever the parties reported; one that
	// holds pinned blobs is paid for storage what its node proved; a kind
	// a meter measured is paid what the meter read.
	measured := mt.RanJobs()
	var mc, mb uint64
	if measured {
		mc, mb = MeasuredUnits(mt, w.p, l)
	}
	ls, proofs, err := w.s.leaseStorage(l.ID)
	if err != nil {
		return err
	}
	proofs = proofs && se >= ls.Since
	var stUnits uint64
	if proofs {
		if stUnits, err = w.storageUnits(l, ls, se, se+1); err != nil {
			return err
		}
	}
	pay := map[string]uint64{}
	var attested, evidence uint64
	units := make([]uint64, len(l.Amounts)) // paid per kind
	src := make([]byte, len(l.Amounts))     // how each was established
	meterOf := make([]uint64, len(l.Amounts))
	certified := make([]bool, len(l.Amounts)) // counts for certificates
	disputed := false
	for i, a := range l.Amounts {
		amt := a.Amount
		rp, rc := min(amountOf(u.Provider, a.Kind), amt), min(amountOf(u.Consumer, a.Kind), amt)
		mu, metered, err := w.s.meterUse(l.ID, se, a.Kind)
		if err != nil {
			return err
		}
		switch {
		case metered:
			unit := MeterUnit(w.p, a.Kind)
			if a.Kind == KindStorage {
				unit = r.unitBytes(w.p) // the request's terms
			}
			amt = min(ceilDiv(mu.Amount, unit), a.Amount)
			src[i], meterOf[i], certified[i] = sourceMeter, mu.MeterID, true
			evidence += amt
		case r.Metered(a.Kind):
			amt = 0 // the request pays this kind by meter only, and no meter read it
		case proofs && a.Kind == KindStorage:
			amt, src[i], certified[i] = stUnits, sourceProofs, true
			evidence += amt
		case measured && a.Kind == KindCompute:
			amt, src[i], certified[i] = mc, sourceRuntime, true
			evidence += amt
		case measured && a.Kind == KindBandwidth:
			amt, src[i], certified[i] = mb, sourceRuntime, true
			evidence += amt
		case u.HasProvider && u.HasConsumer:
			if rp != rc {
				disputed = true
			}
			amt = min(rp, rc)
			attested += amt
			certified[i] = true
		case u.HasProvider:
			amt = rp
		case u.HasConsumer:
			amt = rc
		}
		units[i] = amt
		if amt == 0 {
			continue
		}
		v := amt * amountOf(l.Prices, a.Kind) // ≤ the escrowed demand × max price: no overflow
		pay[w.m.KindDenom(a.Kind)] += v
	}
	if measured {
		mt.Settled, mt.PaidCompute, mt.PaidBandwidth = true, mc, mb
		if err := w.s.putMetered(l.ID, se, mt); err != nil {
			return err
		}
	}
	if err := w.payProvider(l, r, pay); err != nil {
		return err
	}
	if disputed {
		l.Disputes++
		w.rec.Disputes++
		w.event("rome_dispute", "lease_id", strconv.FormatUint(l.ID, 10), "epoch", strconv.FormatUint(se, 10))
	}
	w.rec.Attested = satAdd(w.rec.Attested, attested)
	w.rec.Measured = satAdd(w.rec.Measured, evidence)
	// Attested and measured units count alike for rewards, certificates
	// (which say how they were established) and governance weight.
	var certs []certUnits
	for i, a := range l.Amounts {
		if certified[i] && units[i] > 0 {
			certs = append(certs, certUnits{kind: a.Kind, src: src[i], meter: meterOf[i], units: units[i]})
		}
	}
	total := satAdd(attested, evidence)
	rewarded := total
	if se+1 < w.e {
		// An epoch paid late ran jobs and had nothing else to weigh (a
		// report, reading or miss settles its epoch at the next end):
		// its reward was shared when it ended, its storage units by
		// storageRates, its measured ones by jobWeights.
		rewarded = 0
	} else {
		// storageRates weighed stUnits and jobWeights mt.Weighed for this
		// lease and epoch already; a meter reading the storage or compute
		// replaces them (the provider's weight holds them: no underflow).
		var weighed uint64
		if proofs && !r.Metered(KindStorage) {
			weighed = stUnits
		}
		weighed = satAdd(weighed, mt.Weighed)
		if w.attest[l.Provider] < weighed {
			return fmt.Errorf("lease %d: epoch %d: %d storage and job units weighed for provider %s, the lease alone has %d: %w",
				l.ID, se, w.attest[l.Provider], l.Provider, weighed, ledger.ErrCorrupt)
		}
		if weighed > 0 {
			w.attest[l.Provider] -= weighed
		}
	}
	return w.credit(l, total, rewarded, certs)
}

func (w *epochWork) finalize(r *Request) error {
	refund, err := w.m.finalize(w.s, w.acc, r)
	if err != nil {
		return err
	}
	for _, c := range refund {
		w.refund[c.Denom] += c.Amount
	}
	return nil
}

func (w *epochWork) addContribution(a ledger.Address, units uint64) error {
	k := rkey(tagContrib, a[:])
	cur, err := w.s.getU64(k)
	if err != nil {
		return err
	}
	if err := w.s.setU64(k, satAdd(cur, units)); err != nil {
		return err
	}
	tk := rkey(tagSeq, []byte("contrib_total"))
	tot, err := w.s.getU64(tk)
	if err != nil {
		return err
	}
	return w.s.setU64(tk, satAdd(tot, units))
}

// expire closes requests unmatched for request_ttl_epochs and offers whose
// availability window has passed.
func (w *epochWork) expire() error {
	ids, err := w.s.ids(rkey(tagOpenReq))
	if err != nil {
		return err
	}
	for _, id := range ids {
		r, err := w.request(id)
		if err != nil {
			return err
		}
		// A replicated request whose replicas all end by the next epoch
		// has no time left to place one.
		over := r.Replicated() && r.EndEpoch != 0 && w.e+1 >= r.EndEpoch
		if w.e < r.Epoch+w.p.RequestTTLEpochs && !over {
			continue
		}
		r.Status = StatusExpired
		if err := w.s.del(rkey(tagOpenReq, u64(id))); err != nil {
			return err
		}
		if r.LiveLeases == 0 {
			if err := w.finalize(r); err != nil {
				return err
			}
		}
		w.event("rome_expired", "request_id", strconv.FormatUint(id, 10))
	}
	// Offers whose window ends by the next epoch, by their end (cancelled
	// ones left the index when they were).
	prefix := rkey(tagOfferEnd)
	var ends [][2]uint64
	if err := w.s.st.Iterate(prefix, rkey(tagOfferEnd, u64(w.e+2)), false, func(k, _ []byte) bool {
		if len(k) == len(prefix)+16 {
			ends = append(ends, [2]uint64{binary.BigEndian.Uint64(k[len(prefix):]), binary.BigEndian.Uint64(k[len(prefix)+8:])})
		}
		return true
	}); err != nil {
		return err
	}
	for _, end := range ends {
		if err := w.s.del(rkey(tagOfferEnd, u64(end[0]), u64(end[1]))); err != nil {
			return err
		}
		o, err := w.offer(end[1])
		if err != nil {
			return err
		}
		if o.Status != StatusOpen {
			continue
		}
		o.Status = StatusExpired
		if err := w.s.del(rkey(tagOpenOffer, u64(o.ID))); err != nil {
			return err
		}
	}
	return nil
}

// RewardFor is the reward minted for epoch e: per_epoch halved every
// halving epochs.
func RewardFor(p Params, e uint64) uint64 {
	if p.RewardHalving == 0 {
		return p.RewardPerEpoch
	}
	h := e / p.RewardHalving
	if h >= 64 {
		return 0
	}
	return p.RewardPerEpoch >> h
}

// reward mints the epoch's reward to providers in proportion to the units
// they delivered with both parties' attestation (floor; the remainder is
// not minted).
func (w *epochWork) reward() error {
	pool := RewardFor(w.p, w.e)
	if pool == 0 || len(w.provOrd) == 0 {
		return nil
	}
	provs := append([]ledger.Address(nil), w.provOrd...)
	sort.Slice(provs, func(i, j int) bool { return bytes.Compare(provs[i][:], provs[j][:]) < 0 })
	var total uint64
	for _, a := range provs {
		total = satAdd(total, w.attest[a])
	}
	var minted uint64
	for _, a := range provs {
		hi, lo := bits.Mul64(pool, w.attest[a])
		share, _ := bits.Div64(hi, lo, total) // hi < total since attest[a] ≤ total
		if share == 0 {
			continue
		}
		c := ledger.Coins{{Denom: w.p.RewardDenom, Amount: share}}
		if err := w.acc.Mint(a, c); err != nil {
			return err
		}
		minted += share
	}
	if minted > 0 {
		w.rec.Rewards = ledger.Coins{{Denom: w.p.RewardDenom, Amount: minted}}
	}
	return nil
}

// certify issues one certificate per (contributor, kind, source) for the
// contributors whose certificate period ends with this epoch (each has its
// own phase: certPhase), from the accumulators keyed by this epoch — the
// due contributors only, not every pending accumulator. The statement is
// recorded unsigned; its issuer (chosen by id among the issuers) signs it
// with a CertSign transaction, and the issuer's key is registered the
// first time it issues. With no issuers the units carry over to each
// contributor's next period end (the certificate then covers the longer
// window). It runs after every credit of the epoch (settle, expire).
func (w *epochWork) certify() error {
	list, err := w.s.pendingCerts(rkey(tagCertAcc, u64(w.e)))
	if err != nil || len(list) == 0 {
		return err
	}
	era, err := w.s.getU64(certEraKey)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, a := range list {
		from := a.acc.from
		if !a.acc.hasFrom {
			from = certFrom(w.e, w.p.CertPeriodEpochs, era)
		}
		if err := w.s.del(certAccKey(w.e, a.addr, a.kind, a.src, a.meter)); err != nil {
			return err
		}
		if len(w.p.Issuers) == 0 { // carried over to the contributor's next period end
			next := certAccKey(certDue(a.addr, w.e+1, w.p.CertPeriodEpochs), a.addr, a.kind, a.src, a.meter)
			if err := w.s.addCertAcc(next, certAcc{units: a.acc.units, from: from, hasFrom: true}); err != nil {
				return err
			}
			continue
		}
		id, err := w.s.next("cert")
		if err != nil {
			return err
		}
		ik := w.p.Issuers[id%uint64(len(w.p.Issuers))]
		pk, err := w.m.issuerKey(ik)
		if err != nil {
			return err
		}
		if err := w.s.registerIssuer(pk, seen); err != nil {
			return err
		}
		c := Certificate{
			Statement: Statement{Version: StatementVersion, ChainID: w.m.chainID, ID: id, NodeID: a.addr.String(), Kind: a.kind,
				Amount: a.acc.units, FromEpoch: from, ToEpoch: w.e, Issuer: pk.Fingerprint(), IssuedHeight: w.b.Height, Measured: sourceName(a.src, a.meter)},
			Signature: []byte{},
		}
		if err := w.s.put(rkey(tagCert, u64(id)), &c); err != nil {
			return err
		}
		if err := w.s.setRaw(rkey(tagCertPend, u64(id)), []byte(c.Statement.Issuer)); err != nil {
			return err
		}
		w.rec.Certs++
		w.event("cert_issued", "cert_id", strconv.FormatUint(id, 10), "node_id", c.Statement.NodeID, "kind", KindName(a.kind), "amount", strconv.FormatUint(a.acc.units, 10),
			"measured", c.Statement.Measured)
	}
	return nil
}

// match snapshots open offers and requests for epoch e+1, runs the policy
// and records the leases.
func (w *epochWork) match(ctx context.Context) error {
	next := w.e + 1
	// Open offers with free capacity: those listed, and those this epoch
	// changed (a lease that ended freed capacity; flush lists them).
	oids, err := w.s.ids(rkey(tagOfferFree))
	if err != nil {
		return err
	}
	for id := range w.offers {
		oids = append(oids, id)
	}
	slices.Sort(oids)
	oids = slices.Compact(oids)
	rids, err := w.s.ids(rkey(tagOpenReq))
	if err != nil {
		return err
	}
	var offers []*Offer
	var reqs []*Request
	var present [ledger.MaxResourceKind + 1]bool
	for _, id := range oids {
		o, err := w.offer(id)
		if err != nil {
			return err
		}
		if o.Status != StatusOpen || o.FromEpoch > next || o.UntilEpoch != 0 && next >= o.UntilEpoch {
			continue
		}
		free := false
		for _, c := range o.Capacity {
			if c.Amount > amountOf(o.Leased, c.Kind) {
				free, present[c.Kind] = true, true
			}
		}
		if free {
			offers = append(offers, o)
		}
	}
	for _, id := range rids {
		r, err := w.request(id)
		if err != nil {
			return err
		}
		open := false
		for _, d := range r.Remaining {
			if d.Amount > 0 {
				open, present[d.Kind] = true, true
			}
		}
		if open {
			reqs = append(reqs, r)
		}
	}
	snap := &Snapshot{Epoch: next}
	for k := uint8(1); k <= ledger.MaxResourceKind; k++ {
		if present[k] {
			snap.Kinds = append(snap.Kinds, k)
		}
	}
	nk := len(snap.Kinds)
	for _, o := range offers {
		rec, err := w.s.provider(o.Owner)
		if err != nil {
			return err
		}
		pid, err := w.s.providerID(o.Owner, true)
		if err != nil {
			return err
		}
		so := SnapOffer{ID: o.ID, Region: o.RegionID, Lat: o.Lat, Lon: o.Lon, Attrs: o.Attrs, Reliability: o.Reliability,
			RunsJobs: o.RunsJobs(), Jobs: ProviderRecord{Completed: rec.Completed, Failed: rec.Failed, TimedOut: rec.TimedOut, Slashed: rec.Slashed},
			Provider: pid, Capacity: make([]uint64, nk), Price: make([]uint64, nk)}
		for i, k := range snap.Kinds {
			so.Capacity[i] = amountOf(o.Capacity, k) - amountOf(o.Leased, k)
			so.Price[i] = amountOf(o.Price, k)
		}
		snap.Offers = append(snap.Offers, so)
	}
	for ri, r := range reqs {
		sr := SnapRequest{ID: r.ID, Region: r.RegionID, Lat: r.Lat, Lon: r.Lon, WithinKm: r.WithinKm, Attrs: r.Attrs,
			MinReliability: r.MinReliability, Bundle: r.Bundle, Demand: make([]uint64, nk), MaxPrice: make([]uint64, nk)}
		for i, k := range snap.Kinds {
			sr.Demand[i] = amountOf(r.Remaining, k)
			sr.MaxPrice[i] = amountOf(r.MaxPrice, k)
		}
		if r.Replicated() {
			// A replica is the whole demand; the replicas it already has
			// rule out their providers (and regions).
			sr.Replicas, sr.Spread = r.Open, r.Spread == ledger.SpreadRegion
			for i, k := range snap.Kinds {
				sr.Demand[i] = amountOf(r.Demand, k)
			}
			held, err := w.heldReplicas(r, uint32(ri))
			if err != nil {
				return err
			}
			snap.Held = append(snap.Held, held...)
		}
		snap.Requests = append(snap.Requests, sr)
	}
	w.rec.Offers, w.rec.Requests = uint32(len(offers)), uint32(len(reqs))
	stats := make([]KindStat, nk)
	for i, k := range snap.Kinds {
		stats[i].Kind = k
		for _, r := range snap.Requests {
			stats[i].Demand = satAdd(stats[i].Demand, r.Demand[i])
		}
	}
	var allocs []Allocation
	w.rec.Policy = Builtin
	if w.p.ActivePolicy != "" {
		w.rec.Policy = w.p.ActivePolicy
	}
	if len(offers) > 0 && len(reqs) > 0 {
		a := w.m.allocate(ctx, w.s, w.p, snap, vm.Env{ChainID: w.b.ChainID, Height: w.b.Height, TimeMs: w.b.TimeMs})
		allocs = a.as
		w.rec.Policy, w.rec.PolicyGas, w.rec.Rejected, w.rec.Interrupted = a.used, a.gas, a.rejected, a.interrupted
		if a.rejected != "" {
			w.event("rome_policy_rejected", "policy", w.p.ActivePolicy, "reason", a.rejected, "fallback", a.used)
		}
		if a.interrupted != "" {
			w.event("rome_policy_interrupted", "policy", w.p.ActivePolicy, "reason", a.interrupted)
		}
	}
	// Record the leases.
	volume := make([][2]uint64, nk) // 128-bit Σ amount×price per kind
	for _, a := range allocs {
		o, r := offers[a.Offer], reqs[a.Request]
		id, err := w.s.next("lease")
		if err != nil {
			return err
		}
		l := Lease{ID: id, RequestID: r.ID, OfferID: o.ID, Provider: o.Owner, Consumer: r.Owner,
			Start: next, End: next + uint64(r.Epochs), Paid: ledger.Coins{}, Status: StatusActive, SettledTo: next, MeterKinds: r.MeterKinds}
		if r.Replicated() {
			if r.EndEpoch == 0 {
				r.EndEpoch = l.End
			}
			l.End = r.EndEpoch // every replica ends together
			r.Open--
		}
		for i, k := range snap.Kinds {
			if a.Amount[i] == 0 {
				continue
			}
			l.Amounts = append(l.Amounts, ledger.ResourceAmount{Kind: k, Amount: a.Amount[i]})
			l.Prices = append(l.Prices, ledger.ResourceAmount{Kind: k, Amount: a.Price[i]})
			setAmount(o.Leased, k, amountOf(o.Leased, k)+a.Amount[i])
			setAmount(r.Remaining, k, amountOf(r.Remaining, k)-a.Amount[i])
			stats[i].Matched += a.Amount[i]
			hi, lo := bits.Mul64(a.Amount[i], a.Price[i])
			var c uint64
			volume[i][1], c = bits.Add64(volume[i][1], lo, 0)
			volume[i][0] += hi + c
		}
		r.LiveLeases++
		filled := true
		for _, d := range r.Remaining {
			filled = filled && d.Amount == 0
		}
		if filled && r.Status == StatusOpen {
			r.Status = StatusFilled
			if err := w.s.del(rkey(tagOpenReq, u64(r.ID))); err != nil {
				return err
			}
		}
		if err := w.schedule(&l); err != nil {
			return err
		}
		if err := w.s.put(rkey(tagLease, u64(id)), &l); err != nil {
			return err
		}
		if err := w.s.setRaw(rkey(tagLive, u64(id)), one); err != nil {
			return err
		}
		if err := w.s.setRaw(rkey(tagReqLease, u64(r.ID), u64(id)), one); err != nil {
			return err
		}
		if err := w.s.placeHoldings(w.p, &l, r, o.Node); err != nil {
			return err
		}
		w.rec.NewLeases++
	}
	// Statistics.
	var dem, mat uint64
	for i := range stats {
		st := &stats[i]
		for _, o := range offers {
			st.Capacity = satAdd(st.Capacity, amountOf(o.Capacity, st.Kind))
			st.Leased = satAdd(st.Leased, amountOf(o.Leased, st.Kind))
		}
		st.UtilizationBps = bps(st.Leased, st.Capacity)
		if st.Matched > 0 && volume[i][0] < st.Matched {
			st.ClearingPrice, _ = bits.Div64(volume[i][0], volume[i][1], st.Matched)
		}
		dem, mat = satAdd(dem, st.Demand), satAdd(mat, st.Matched)
	}
	w.rec.Kinds = stats
	w.rec.MatchedBps = bps(mat, dem)
	return nil
}

// bps is a/b in basis points (0 when b is 0), without overflow.
func bps(a, b uint64) uint32 {
	if b == 0 {
		return 0
	}
	hi, lo := bits.Mul64(min(a, b), 10_000)
	q, _ := bits.Div64(hi, lo, b)
	return uint32(q)
}

// heldReplicas lists the providers and regions of a replicated request's
// running replicas, for the policy to avoid (snapshot request index ri).
func (w *epochWork) heldReplicas(r *Request, ri uint32) ([]Held, error) {
	leases, err := w.s.requestLeases(r.ID)
	if err != nil {
		return nil, err
	}
	var out []Held
	for _, l := range leases {
		if l.End <= w.e+1 && !l.EndedEarly {
			continue // ends before the new replica starts (a replica that lost its place still rules its provider out)
		}
		o, err := w.offer(l.OfferID)
		if err != nil {
			return nil, err
		}
		pid, err := w.s.providerID(l.Provider, true)
		if err != nil {
			return nil, err
		}
		out = append(out, Held{Request: ri, Provider: pid, Region: o.RegionID})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Provider < out[j].Provider })
	out = slices.CompactFunc(out, func(a, b Held) bool { return a.Provider == b.Provider })
	return out, nil
}
