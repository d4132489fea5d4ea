package rome

import (
	"github.com/sos-kernel/sos/ledger"
)

// Read access for the API and tools. Queries charge no gas and never write.

func (m *Market) reader(st *ledger.State) *store { return &store{st: st, codec: m.codec} }

// list decodes records under a tag in ascending key order, keeping those
// keep accepts, at most limit (newest first when reverse).
func list[T any](m *Market, st *ledger.State, prefix []byte, reverse bool, limit int, keep func(*T) bool) ([]T, error) {
	out := []T{}
	var derr error
	err := st.Iterate(prefix, prefixEnd(prefix), reverse, func(k, v []byte) bool {
		var x T
		if derr = m.codec.Unmarshal(v, &x); derr != nil {
			return false
		}
		if keep == nil || keep(&x) {
			out = append(out, x)
		}
		return limit <= 0 || len(out) < limit
	})
	if err == nil {
		err = derr
	}
	return out, err
}

// Offers lists offers, newest first.
func (m *Market) Offers(st *ledger.State, limit int, keep func(*Offer) bool) ([]Offer, error) {
	return list(m, st, rkey(tagOffer), true, limit, keep)
}

// Requests lists requests, newest first.
func (m *Market) Requests(st *ledger.State, limit int, keep func(*Request) bool) ([]Request, error) {
	return list(m, st, rkey(tagRequest), true, limit, keep)
}

// Leases lists leases, newest first.
func (m *Market) Leases(st *ledger.State, limit int, keep func(*Lease) bool) ([]Lease, error) {
	return list(m, st, rkey(tagLease), true, limit, keep)
}

// Epochs lists epoch records, newest first.
func (m *Market) Epochs(st *ledger.State, limit int) ([]EpochRecord, error) {
	return list[EpochRecord](m, st, rkey(tagEpoch), true, limit, nil)
}

// Policies lists uploaded policies by id.
func (m *Market) Policies(st *ledger.State) ([]Policy, error) {
	return list[Policy](m, st, rkey(tagPolicy), false, 0, nil)
}

// Certificates lists certificates, newest first.
func (m *Market) Certificates(st *ledger.State, limit int, keep func(*Certificate) bool) ([]Certificate, error) {
	return list(m, st, rkey(tagCert), true, limit, keep)
}

// Proposals lists proposals, newest first.
func (m *Market) Proposals(st *ledger.State, limit int) ([]Proposal, error) {
	return list[Proposal](m, st, gkey(gtagProposal), true, limit, nil)
}

// Offer returns one offer (ErrNotFound if absent).
func (m *Market) Offer(st *ledger.State, id uint64) (*Offer, error) { return m.reader(st).offer(id) }

// Request returns one request.
func (m *Market) Request(st *ledger.State, id uint64) (*Request, error) {
	return m.reader(st).request(id)
}

// Lease returns one lease.
func (m *Market) Lease(st *ledger.State, id uint64) (*Lease, error) { return m.reader(st).lease(id) }

// Certificate returns one certificate.
func (m *Market) Certificate(st *ledger.State, id uint64) (*Certificate, error) {
	return m.reader(st).cert(id)
}

// Epoch returns one epoch record.
func (m *Market) Epoch(st *ledger.State, e uint64) (*EpochRecord, error) {
	var r EpochRecord
	ok, err := m.reader(st).get(rkey(tagEpoch, u64(e)), &r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	return &r, nil
}

// Proposal returns one proposal.
func (m *Market) Proposal(st *ledger.State, id uint64) (*Proposal, error) {
	var p Proposal
	ok, err := m.reader(st).get(gkey(gtagProposal, u64(id)), &p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	return &p, nil
}

// Clock returns the current epoch and the height it ends at.
func (m *Market) Clock(st *ledger.State) (Clock, error) {
	s := m.reader(st)
	p, err := s.params(m.gen)
	if err != nil {
		return Clock{}, err
	}
	return s.clock(p)
}

// Counts are the market's live totals.
type Counts struct {
	OpenOffers   int `json:"open_offers"`
	OpenRequests int `json:"open_requests"`
	LiveLeases   int `json:"live_leases"`
	PendingCerts int `json:"pending_certs"`
}

// Counts counts open offers and requests, live leases and unsigned
// certificates.
func (m *Market) Counts(st *ledger.State) (Counts, error) {
	var c Counts
	for _, x := range []struct {
		tag byte
		n   *int
	}{{tagOpenOffer, &c.OpenOffers}, {tagOpenReq, &c.OpenRequests}, {tagLive, &c.LiveLeases}, {tagCertPend, &c.PendingCerts}} {
		p := rkey(x.tag)
		if err := st.Iterate(p, prefixEnd(p), false, func(k, v []byte) bool { *x.n++; return true }); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Contribution returns an address's attested units (all time).
func (m *Market) Contribution(st *ledger.State, a ledger.Address) (uint64, error) {
	return m.reader(st).getU64(rkey(tagContrib, a[:]))
}

// Usage returns the reports for a lease in an epoch.
func (m *Market) Usage(st *ledger.State, lease, epoch uint64) (*Usage, error) {
	var u Usage
	_, err := m.reader(st).get(rkey(tagUsage, u64(lease), u64(epoch)), &u)
	return &u, err
}
