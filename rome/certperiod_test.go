package rome

import (
	"encoding/hex"
	"errors"
	"math"
	"sort"
	"testing"

	"github.com/sos-kernel/sos/ledger"
)

// TestCertDue: a contributor's period ends at the first epoch d ≥ e with
// (d + 1 + phase) mod P = 0, at most P − 1 epochs later; near the largest
// epoch it saturates instead of wrapping.
func TestCertDue(t *testing.T) {
	for i := range 40 {
		a := testKey(t, 500+i).Address()
		for _, p := range []uint64{1, 2, 3, 5, 7, 100_000, math.MaxUint64} {
			ph := certPhase(a, p)
			for _, e := range []uint64{0, 1, 2, 3, 4, 9, 10, 11, 12345, 1 << 40} {
				d := certDue(a, e, p)
				if d < e || d-e >= p {
					t.Fatalf("P %d, phase %d, e %d: due %d", p, ph, e, d)
				}
				if p != math.MaxUint64 && (d%p+1+ph)%p != 0 {
					t.Fatalf("P %d, phase %d, e %d: due %d does not end a period", p, ph, e, d)
				}
			}
			if d := certDue(a, math.MaxUint64-1, p); d < math.MaxUint64-1 {
				t.Fatalf("P %d: due %d before the epoch", p, d)
			}
		}
	}
}

// govSet changes one parameter as a passed proposal does.
func (h *harness) govSet(name, value string) {
	h.t.Helper()
	s := &store{st: h.st, codec: h.codec}
	p, err := s.params(h.m.gen)
	if err != nil {
		h.t.Fatal(err)
	}
	np, err := p.With(name, value, h.m.denoms)
	if err != nil {
		h.t.Fatalf("%s = %q: %v", name, value, err)
	}
	if err := h.m.applyParams(s, p, np); err != nil {
		h.t.Fatal(err)
	}
}

// certRun is what certScenario leaves behind.
type certRun struct {
	perEpoch map[uint64]uint32 // epoch → certificates issued at its end
	certs    []Certificate     // in id order
	contrib  map[ledger.Address]uint64
	attested uint64
	paid     uint64                    // units the leases paid (at 2 uTFLP each)
	phase    map[ledger.Address]uint64 // under the initial period
	provs    []ledger.Address
}

// certMarket: n providers, each leased by its own consumer for 10 epochs
// from epoch 1 (the harness at epoch 1, its leases and every user's key).
func certMarket(t *testing.T, n int, period uint64) (*harness, []Lease, map[ledger.Address]*ledger.PrivateKey) {
	t.Helper()
	h := newHarness(t, harnessOpts{epochBlocks: 1, users: 2 * n, ttl: 50, certPeriod: period})
	for i := range n {
		h.must(h.users[i], &ledger.RomeOffer{Capacity: res(1, 1), Price: res(1, 2)})
		h.must(h.users[n+i], &ledger.RomeRequest{Demand: res(1, 1), MaxPrice: res(1, 2), Epochs: 10})
	}
	key := map[ledger.Address]*ledger.PrivateKey{}
	for _, u := range h.users {
		key[u.Address()] = u
	}
	h.untilEpoch(1)
	ls, err := h.m.Leases(h.st, 0, nil)
	if err != nil || len(ls) != n {
		t.Fatalf("%d leases, %v", len(ls), err)
	}
	return h, ls, key
}

// reportAll has both parties of every lease live in epoch e report 1 unit
// delivered (attested).
func reportAll(h *harness, key map[ledger.Address]*ledger.PrivateKey, ls []Lease, e uint64) {
	for _, l := range ls {
		if l.Start <= e && e < l.End {
			rep := &ledger.RomeUsage{LeaseID: l.ID, Epoch: e, Delivered: res(1, 1)}
			h.must(key[l.Provider], rep)
			h.must(key[l.Consumer], rep)
		}
	}
}

// certScenario: n providers, each leased by its own consumer for 10
// epochs from epoch 1, both parties reporting 1 unit every epoch (attested,
// so certified); at each epoch change is called first. It runs until every
// lease has ended and every period that holds units has been certified.
func certScenario(t *testing.T, n int, period uint64, change func(h *harness, e uint64)) certRun {
	t.Helper()
	h, ls, key := certMarket(t, n, period)
	const last = 40
	for e := uint64(1); e < last; e++ {
		h.untilEpoch(e)
		if change != nil {
			change(h, e)
		}
		reportAll(h, key, ls, e)
	}
	h.untilEpoch(last)
	var paid uint64
	ls, _ = h.m.Leases(h.st, 0, nil)
	for _, l := range ls {
		paid += l.Paid.AmountOf("uTFLP") / 2
	}
	out := certRun{paid: paid, perEpoch: map[uint64]uint32{}, contrib: map[ledger.Address]uint64{}, phase: map[ledger.Address]uint64{}}
	recs, err := h.m.Epochs(h.st, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		out.perEpoch[r.Epoch] = r.Certs
		out.attested += r.Attested
	}
	if out.certs, err = h.m.Certificates(h.st, 0, nil); err != nil {
		t.Fatal(err)
	}
	sort.Slice(out.certs, func(i, j int) bool { return out.certs[i].Statement.ID < out.certs[j].Statement.ID })
	for i := range n {
		a := h.users[i].Address()
		out.provs = append(out.provs, a)
		out.phase[a] = certPhase(a, period)
		if out.contrib[a], err = h.m.Contribution(h.st, a); err != nil {
			t.Fatal(err)
		}
	}
	// Nothing is left waiting: every accumulator was certified.
	left := 0
	_ = h.st.Iterate(rkey(tagCertAcc), prefixEnd(rkey(tagCertAcc)), false, func(k, v []byte) bool { left++; return true })
	if left != 0 {
		t.Fatalf("%d certificate accumulators left after every period ended", left)
	}
	return out
}

// checkCertified: each provider's certificates add up to its attested
// units (its contribution: every unit paid here is attested), their
// windows follow one another without overlap, and the total is the
// epochs' attested total.
func checkCertified(t *testing.T, r certRun) {
	t.Helper()
	var sum uint64
	for _, a := range r.provs {
		var got uint64
		prevTo := int64(-1)
		for _, c := range r.certs {
			s := c.Statement
			if s.NodeID != a.String() {
				continue
			}
			if int64(s.FromEpoch) <= prevTo || s.FromEpoch > s.ToEpoch {
				t.Errorf("%s: certificate %d covers %d-%d after one ending at %d", a, s.ID, s.FromEpoch, s.ToEpoch, prevTo)
			}
			prevTo = int64(s.ToEpoch)
			got += s.Amount
		}
		if got != r.contrib[a] || got != 10 {
			t.Errorf("%s: certified %d units, attested %d, want 10", a, got, r.contrib[a])
		}
		sum += got
	}
	if sum != r.attested || sum != r.paid {
		t.Errorf("certified %d units in all, the epochs attested %d, the leases paid %d", sum, r.attested, r.paid)
	}
}

// TestCertificatesSpreadOverPeriod: with cert_period_epochs 3 each epoch
// end certifies the providers whose own period ends there (by phase), about
// a third of them, not all of them every third epoch; every unit is
// certified exactly once and each certificate covers its provider's own
// window of 3 epochs.
func TestCertificatesSpreadOverPeriod(t *testing.T) {
	const n, period = 24, 3
	r := certScenario(t, n, period, nil)
	checkCertified(t, r)
	due := func(e uint64) (k uint32) { // providers whose period ends at e
		for _, a := range r.provs {
			if (e+1+r.phase[a])%period == 0 {
				k++
			}
		}
		return k
	}
	// Reports of epochs 1-10 are settled at the ends of epochs 2-11: every
	// window ending in 4..11 holds units.
	for e := uint64(4); e <= 11; e++ {
		if r.perEpoch[e] != due(e) || r.perEpoch[e] == 0 || r.perEpoch[e] >= n {
			t.Errorf("epoch %d: %d certificates, want the %d of %d providers due", e, r.perEpoch[e], due(e), n)
		}
	}
	for _, c := range r.certs {
		s := c.Statement
		if s.ToEpoch-s.FromEpoch != period-1 {
			t.Errorf("certificate %d covers %d-%d, not a period of %d", s.ID, s.FromEpoch, s.ToEpoch, period)
		}
	}
	t.Logf("certificates per epoch: %v", r.perEpoch)
}

// TestCertificatePeriodChangeLosesNothing: governance changes
// cert_period_epochs mid-way (3 → 5 → 2 → 1): a pending period ends where
// it was fixed, the next ones follow the new value, windows never overlap,
// and every unit is still certified exactly once.
func TestCertificatePeriodChangeLosesNothing(t *testing.T) {
	r := certScenario(t, 12, 3, func(h *harness, e uint64) {
		switch e {
		case 3:
			h.govSet("cert_period_epochs", "5")
		case 7:
			h.govSet("cert_period_epochs", "2")
		case 10:
			h.govSet("cert_period_epochs", "1")
		}
	})
	checkCertified(t, r)
	// Between the changes of epochs 7 and 10 the periods are 2 epochs
	// long, after it 1; the units pending at a change keep their window's
	// start.
	later, moved := 0, 0
	for _, c := range r.certs {
		s := c.Statement
		switch {
		case s.FromEpoch >= 10:
			if s.ToEpoch != s.FromEpoch {
				t.Errorf("certificate %d covers %d-%d after the period became 1", s.ID, s.FromEpoch, s.ToEpoch)
			}
		case s.FromEpoch >= 7:
			later++
			if s.ToEpoch-s.FromEpoch > 1 {
				t.Errorf("certificate %d covers %d-%d after the period became 2", s.ID, s.FromEpoch, s.ToEpoch)
			}
		case s.ToEpoch >= 7:
			moved++
		}
	}
	if later == 0 || moved == 0 {
		t.Errorf("%d certificates of periods after the last change, %d of periods it moved", later, moved)
	}
	t.Logf("certificates per epoch: %v", r.perEpoch)
}

// TestCertificatesWithoutIssuersCarryOver: while governance leaves no
// issuers, no certificate is issued and the units carry over to each
// provider's next period end; with issuers back, they are certified, once.
func TestCertificatesWithoutIssuersCarryOver(t *testing.T) {
	var issuers string
	r := certScenario(t, 12, 3, func(h *harness, e uint64) {
		switch e {
		case 3:
			p, err := h.m.Params(h.st)
			if err != nil {
				t.Fatal(err)
			}
			issuers = p.Issuers[0]
			h.govSet("issuers", "")
		case 9:
			h.govSet("issuers", issuers)
		}
	})
	checkCertified(t, r)
	for e := uint64(3); e < 9; e++ {
		if r.perEpoch[e] != 0 {
			t.Errorf("epoch %d: %d certificates issued with no issuers", e, r.perEpoch[e])
		}
	}
	long := 0
	for _, c := range r.certs {
		if c.Statement.ToEpoch-c.Statement.FromEpoch >= 3 {
			long++
		}
	}
	if long == 0 {
		t.Error("no certificate covers the epochs without issuers")
	}
}

// oldCertificate is the certificate record as it was stored before the
// issuer registry: the issuer's whole public key in every record.
type oldCertificate struct {
	_            struct{} `cbor:",toarray"`
	Statement    Statement
	IssuerKey    []byte
	Signature    []byte
	Revoked      bool
	RevokeReason string
	Redeemed     uint64
}

// TestCertificateRecordWithoutIssuerKey: a certificate record no longer
// carries the issuer's 1,952-byte key (the epoch end writes ≈1.9 KB less
// per certificate, and its signature later as much less again); the key
// is registered once per issuer. After governance replaces the issuer,
// the old issuer's certificates are still shown with its key, verify
// offline, and the old issuer can still sign and revoke its own.
func TestCertificateRecordWithoutIssuerKey(t *testing.T) {
	h := newHarness(t, harnessOpts{epochBlocks: 1, users: 2})
	prov, cons := h.users[0], h.users[1]
	h.must(prov, &ledger.RomeOffer{Capacity: res(1, 10), Price: res(1, 2)})
	h.must(cons, &ledger.RomeRequest{Demand: res(1, 10), MaxPrice: res(1, 2), Epochs: 8})
	h.untilEpoch(1)
	ls, _ := h.m.Leases(h.st, 0, nil)
	l := ls[0]
	report := func(e uint64) {
		rep := &ledger.RomeUsage{LeaseID: l.ID, Epoch: e, Delivered: res(1, 10)}
		h.must(prov, rep)
		h.must(cons, rep)
	}
	report(1)
	h.untilEpoch(2)
	nCert, certBytes := 0, 0
	regs := 0
	for e := uint64(2); e <= 3; e++ { // the ends of epochs 2 and 3 certify epochs 1 and 2
		report(e)
		h.commit()
		h.endBlock()
		for _, c := range h.st.Changes() {
			if c.Value == nil || len(c.Key) < 2 || c.Key[0] != ledger.PrefixRome {
				continue
			}
			switch c.Key[1] {
			case tagCert:
				nCert++
				certBytes += len(c.Value)
				var old oldCertificate
				var cur Certificate
				if err := h.codec.Unmarshal(c.Value, &cur); err != nil {
					t.Fatal(err)
				}
				old.Statement, old.IssuerKey, old.Signature = cur.Statement, h.node.Public().Bytes(), []byte{}
				ob, err := h.codec.Marshal(&old)
				if err != nil {
					t.Fatal(err)
				}
				if d := len(ob) - len(c.Value); d < 1900 {
					t.Errorf("certificate record %d bytes, with the issuer key %d: only %d less", len(c.Value), len(ob), d)
				}
				if len(c.Value) > 400 {
					t.Errorf("certificate record %d bytes", len(c.Value))
				}
			case tagIssuerKey:
				regs++
				if hex.EncodeToString(c.Value) != hex.EncodeToString(h.node.Public().Bytes()) {
					t.Error("the issuer registry holds another key")
				}
			}
		}
	}
	if nCert != 2 || regs != 1 {
		t.Fatalf("%d certificates written, the issuer registered %d times; want 2 and once", nCert, regs)
	}
	t.Logf("certificate record: %d bytes", certBytes/nCert)

	// Governance replaces the issuer; the old one's certificates remain.
	other := testKey(t, 4242)
	h.govSet("issuers", hex.EncodeToString(other.Public().Bytes()))
	report(4)
	h.untilEpoch(8)
	all, err := h.m.Certificates(h.st, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	byIssuer := map[string][]Certificate{}
	for _, c := range all {
		byIssuer[c.Statement.Issuer] = append(byIssuer[c.Statement.Issuer], c)
		if ledger.AddressFromPublicKey(c.IssuerKey) == (ledger.Address{}) || len(c.IssuerKey) != len(h.node.Public().Bytes()) {
			t.Fatalf("certificate %d shown without its issuer key", c.Statement.ID)
		}
	}
	oldFP, newFP := h.node.Public().Fingerprint(), other.Public().Fingerprint()
	if len(byIssuer[oldFP]) < 2 || len(byIssuer[newFP]) == 0 {
		t.Fatalf("certificates by issuer: old %d, new %d", len(byIssuer[oldFP]), len(byIssuer[newFP]))
	}
	// The removed issuer signs one of its pending certificates and
	// revokes another; both are found through the registry.
	pend, err := PendingSignatures(h.st, h.codec, h.node.Public(), 10)
	if err != nil || len(pend) < 2 {
		t.Fatalf("pending for the old issuer: %d, %v", len(pend), err)
	}
	sp, err := SignPayload(h.codec, h.node, &pend[0])
	if err != nil {
		t.Fatal(err)
	}
	h.must(cons, sp)
	h.must(h.node, &ledger.CertRevoke{CertID: pend[1].Statement.ID, Reason: "test"})
	c, err := h.m.Certificate(h.st, pend[0].Statement.ID)
	if err != nil {
		t.Fatal(err)
	}
	f := c.File()
	if err := VerifyFile(&f, []string{hex.EncodeToString(h.node.Public().Bytes())}); err != nil {
		t.Fatalf("the removed issuer's certificate does not verify: %v", err)
	}
	// The new issuer's certificates verify with the new key only.
	np, _ := PendingSignatures(h.st, h.codec, other.Public(), 10)
	if len(np) == 0 {
		t.Fatal("nothing pending for the new issuer")
	}
	bad, _ := SignPayload(h.codec, h.node, &Pending{Statement: np[0].Statement})
	if _, err := h.deliver(cons, bad); err == nil {
		t.Fatal("a certificate of the new issuer accepted the old issuer's signature")
	}
	good, _ := SignPayload(h.codec, other, &np[0])
	h.must(cons, good)
}

// accCountingBase counts the certificate accumulators an iteration visits.
type accCountingBase struct {
	*memBase
	visited int
}

func (b *accCountingBase) IterateState(start, end []byte, reverse bool, fn func(k, v []byte) bool) error {
	return b.memBase.IterateState(start, end, reverse, func(k, v []byte) bool {
		if len(k) > 1 && k[0] == ledger.PrefixRome && k[1] == tagCertAcc {
			b.visited++
		}
		return fn(k, v)
	})
}

// TestCertifyReadsOnlyDueContributors: an epoch end visits the
// accumulators of the contributors due in it, not every pending one.
func TestCertifyReadsOnlyDueContributors(t *testing.T) {
	h, ls, key := certMarket(t, 24, 3)
	for e := uint64(1); e <= 6; e++ {
		h.untilEpoch(e)
		reportAll(h, key, ls, e)
	}
	h.commit()
	pending := 0
	_ = h.st.Iterate(rkey(tagCertAcc), prefixEnd(rkey(tagCertAcc)), false, func(k, v []byte) bool { pending++; return true })
	cb := &accCountingBase{memBase: h.base}
	h.st = ledger.NewState(cb)
	h.endBlock() // the end of epoch 6
	rec, err := h.m.Epoch(h.st, 6)
	if err != nil {
		t.Fatal(err)
	}
	if pending <= int(rec.Certs) || rec.Certs == 0 || cb.visited != int(rec.Certs) {
		t.Fatalf("epoch 6 end: %d accumulators pending, %d visited, %d certificates issued", pending, cb.visited, rec.Certs)
	}
	t.Logf("epoch 6 end: %d of %d pending accumulators visited, %d certificates", cb.visited, pending, rec.Certs)
}

// TestIssuersGovParam: issuers is a governance parameter, a comma-separated
// list of hex ML-DSA keys; anything else is refused.
func TestIssuersGovParam(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	p, err := h.m.Params(h.st)
	if err != nil {
		t.Fatal(err)
	}
	a, b := hex.EncodeToString(testKey(t, 91).Public().Bytes()), hex.EncodeToString(testKey(t, 92).Public().Bytes())
	q, err := p.With("issuers", " "+a+", "+b+" ", h.m.denoms)
	if err != nil || len(q.Issuers) != 2 || q.Issuers[0] != a || q.Issuers[1] != b {
		t.Fatalf("issuers %v, %v", q.Issuers, err)
	}
	if q, err = p.With("issuers", "", h.m.denoms); err != nil || len(q.Issuers) != 0 {
		t.Fatalf("no issuers: %v, %v", q.Issuers, err)
	}
	for _, bad := range []string{"zz", a[:100], a + ",00"} {
		if _, err := p.With("issuers", bad, h.m.denoms); !errors.Is(err, ErrInvalid) {
			t.Errorf("issuers %.20q: %v", bad, err)
		}
	}
}
