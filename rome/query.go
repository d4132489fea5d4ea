package rome

import (
	"encoding/binary"
	"errors"
	"slices"

	"github.com/sos-kernel/sos/ledger"
)

// Read access for the API and tools. Queries charge no gas and never write.

func (m *Market) reader(st *ledger.State) *store { return &store{st: st, codec: m.codec, stored: true} }

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

// Certificates lists certificates, newest first, each with its issuer's
// key from the issuer registry.
func (m *Market) Certificates(st *ledger.State, limit int, keep func(*Certificate) bool) ([]Certificate, error) {
	cs, err := list(m, st, rkey(tagCert), true, limit, keep)
	if err != nil {
		return nil, err
	}
	return cs, m.reader(st).withIssuerKeys(cs)
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

// Certificate returns one certificate with its issuer's key from the
// issuer registry.
func (m *Market) Certificate(st *ledger.State, id uint64) (*Certificate, error) {
	s := m.reader(st)
	c, err := s.cert(id)
	if err != nil {
		return nil, err
	}
	cs := []Certificate{*c}
	if err := s.withIssuerKeys(cs); err != nil {
		return nil, err
	}
	return &cs[0], nil
}

// IssuerKey returns the public key of the certificate issuer with the
// given fingerprint from the issuer registry (every issuer that ever
// issued a certificate, including those governance has since removed).
func (m *Market) IssuerKey(st *ledger.State, fingerprint string) ([]byte, error) {
	return m.reader(st).issuerKey(fingerprint)
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

// LiveTally fills a proposal that is still voting with the weight of the
// votes cast so far and the total weight now: the stored record is tallied
// only when its voting period ends, so without this a proposal under vote
// would read "yes 0 no 0 of 0" while its votes are listed. A closed
// proposal keeps the tally it was decided with.
func (m *Market) LiveTally(st *ledger.State, p *Proposal) error {
	if p.Status != ProposalVoting {
		return nil
	}
	votes, err := m.Votes(st, p.ID)
	if err != nil {
		return err
	}
	s := m.reader(st)
	params, err := s.params(m.gen)
	if err != nil {
		return err
	}
	p.Yes, p.No, p.Abstain = countVotes(votes)
	p.TotalWeight, err = s.totalWeight(params)
	return err
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
	PendingJobs  int `json:"pending_jobs"` // waiting for a result
	Challenges   int `json:"challenges"`   // waiting for verdicts
}

// Counts counts open offers and requests, live leases and unsigned
// certificates.
func (m *Market) Counts(st *ledger.State) (Counts, error) {
	var c Counts
	for _, x := range []struct {
		tag byte
		n   *int
	}{{tagOpenOffer, &c.OpenOffers}, {tagOpenReq, &c.OpenRequests}, {tagLive, &c.LiveLeases}, {tagCertPend, &c.PendingCerts},
		{tagJobQueue, &c.PendingJobs}, {tagJobDisp, &c.Challenges}} {
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

// Job returns one job (ErrNotFound if absent).
func (m *Market) Job(st *ledger.State, id uint64) (*Job, error) { return m.reader(st).job(id) }

// JobFilter selects jobs; zero fields match everything.
type JobFilter struct {
	Lease    uint64
	Status   uint8 // JobSubmitted, ...
	Provider ledger.Address
	Consumer ledger.Address
	Node     ledger.Address
	Before   uint64 // only ids below this (the cursor of the previous page); 0: from the newest
	Limit    int    // page size; ≤ 0 means 100, at most 1000
}

func (f *JobFilter) keep(j *Job) bool {
	return (f.Lease == 0 || j.LeaseID == f.Lease) && (f.Status == 0 || j.Status == f.Status) &&
		(f.Provider.IsZero() || j.Provider == f.Provider) && (f.Consumer.IsZero() || j.Consumer == f.Consumer) &&
		(f.Node.IsZero() || j.Node == f.Node)
}

// Jobs lists the jobs f selects, newest first, one page at a time: next is
// the Before of the following page (0 when this is the last). A lease's
// jobs are read through its Metered records (leaseJobs) and a node's jobs
// waiting for results through their index; other filters scan jobs from
// the newest.
func (m *Market) Jobs(st *ledger.State, f JobFilter) (jobs []Job, next uint64, err error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	s := m.reader(st)
	jobs = []Job{}
	var prefix []byte
	if !f.Node.IsZero() && f.Status == JobSubmitted {
		prefix = rkey(tagJobQueue, f.Node[:])
	}
	switch {
	case f.Lease != 0:
		jobs, err = s.leaseJobs(&f, limit)
	case prefix == nil:
		end := prefixEnd(rkey(tagJob))
		if f.Before > 0 {
			end = rkey(tagJob, u64(f.Before))
		}
		var derr error
		err = st.Iterate(rkey(tagJob), end, true, func(k, v []byte) bool {
			var j Job
			if derr = m.codec.Unmarshal(v, &j); derr != nil {
				return false
			}
			if f.keep(&j) {
				jobs = append(jobs, j)
			}
			return len(jobs) < limit
		})
		if err == nil {
			err = derr
		}
	default:
		end := prefixEnd(prefix)
		if f.Before > 0 {
			end = append(append([]byte(nil), prefix...), u64(f.Before)...)
		}
		var ids []uint64
		if err = st.Iterate(prefix, end, true, func(k, v []byte) bool {
			if len(k) == len(prefix)+8 {
				ids = append(ids, binary.BigEndian.Uint64(k[len(prefix):]))
			}
			return true
		}); err != nil {
			return nil, 0, err
		}
		for _, id := range ids {
			j, jerr := s.job(id)
			if jerr != nil {
				return nil, 0, jerr
			}
			if f.keep(j) {
				jobs = append(jobs, *j)
			}
			if len(jobs) == limit {
				break
			}
		}
	}
	if err != nil {
		return nil, 0, err
	}
	if len(jobs) == limit {
		next = jobs[len(jobs)-1].ID
	}
	return jobs, next, nil
}

// leaseJobs is Jobs for f.Lease: newest first, through the lease's
// Metered records (newest epoch first), each the head of the chain of the
// jobs submitted in its epoch (Metered.LastJob, Job.PrevJob, descending
// ids). A Before that is one of the lease's jobs (the cursor of the
// previous page) resumes at the job before it.
func (s *store) leaseJobs(f *JobFilter, limit int) ([]Job, error) {
	jobs := []Job{}
	prefix := rkey(tagMetered, u64(f.Lease))
	end := prefixEnd(prefix)
	// follow visits the chain from id; false when the page is full.
	follow := func(id uint64) (bool, error) {
		for id != 0 {
			j, err := s.job(id)
			if err != nil {
				return false, err
			}
			if (f.Before == 0 || j.ID < f.Before) && f.keep(j) {
				jobs = append(jobs, *j)
				if len(jobs) == limit {
					return false, nil
				}
			}
			id = j.PrevJob
		}
		return true, nil
	}
	if f.Before > 0 {
		if j, err := s.job(f.Before); err == nil && j.LeaseID == f.Lease {
			more, err := follow(j.PrevJob)
			if err != nil || !more {
				return jobs, err
			}
			end = rkey(tagMetered, u64(f.Lease), u64(j.Epoch))
		} else if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
	}
	var heads []uint64
	if err := s.eachMetered(f.Lease, prefix, end, true, func(_ uint64, mt *Metered) {
		if mt.LastJob != 0 {
			heads = append(heads, mt.LastJob)
		}
	}); err != nil {
		return nil, err
	}
	for _, id := range heads {
		if more, err := follow(id); err != nil || !more {
			return jobs, err
		}
	}
	return jobs, nil
}

// PendingJobs lists the jobs waiting for node's result, oldest first (at
// most limit): the queue of the executor that holds node's key.
func (m *Market) PendingJobs(st *ledger.State, node ledger.Address, limit int) ([]Job, error) {
	return m.jobsUnder(st, rkey(tagJobQueue, node[:]), limit, nil)
}

// PendingJobIDs is PendingJobs without loading the jobs: the ids, oldest
// first (at most limit; 0: all). An executor polling its queue after
// every block reads only the records of the jobs it can start.
func (m *Market) PendingJobIDs(st *ledger.State, node ledger.Address, limit int) ([]uint64, error) {
	prefix := rkey(tagJobQueue, node[:])
	ids := []uint64{}
	err := st.Iterate(prefix, prefixEnd(prefix), false, func(k, v []byte) bool {
		if len(k) == len(prefix)+8 {
			ids = append(ids, binary.BigEndian.Uint64(k[len(prefix):]))
		}
		return limit <= 0 || len(ids) < limit
	})
	return ids, err
}

// ChallengedJobs lists the challenged jobs, oldest first (at most limit),
// on whose committee member sits and that still wait for its verdict: the
// queue of the verifier that holds member's key.
func (m *Market) ChallengedJobs(st *ledger.State, member ledger.Address, limit int) ([]Job, error) {
	return m.jobsUnder(st, rkey(tagJobDisp), limit, func(j *Job) bool {
		if j.Dispute == nil || !slices.Contains(j.Dispute.Committee, member) {
			return false
		}
		for _, v := range j.Dispute.Votes {
			if v.Voter == member {
				return false
			}
		}
		return true
	})
}

// jobsUnder loads the jobs whose ids end the keys under prefix, in
// ascending id order.
func (m *Market) jobsUnder(st *ledger.State, prefix []byte, limit int, keep func(*Job) bool) ([]Job, error) {
	var ids []uint64
	if err := st.Iterate(prefix, prefixEnd(prefix), false, func(k, v []byte) bool {
		if len(k) == len(prefix)+8 {
			ids = append(ids, binary.BigEndian.Uint64(k[len(prefix):]))
		}
		return true
	}); err != nil {
		return nil, err
	}
	s := m.reader(st)
	out := []Job{}
	for _, id := range ids {
		if limit > 0 && len(out) >= limit {
			break
		}
		j, err := s.job(id)
		if err != nil {
			return nil, err
		}
		if keep == nil || keep(j) {
			out = append(out, *j)
		}
	}
	return out, nil
}

// ProviderRecord returns how a provider's jobs ended (zero counts for a
// provider that never ran one).
func (m *Market) ProviderRecord(st *ledger.State, provider ledger.Address) (ProviderRecord, error) {
	r, err := m.reader(st).provider(provider)
	if err != nil {
		return ProviderRecord{}, err
	}
	return *r, nil
}

// MeasuredUsage returns what a lease's jobs used in an epoch as the
// runtime measured it, with the gas its running jobs reserve.
func (m *Market) MeasuredUsage(st *ledger.State, lease, epoch uint64) (Metered, error) {
	mt, err := m.reader(st).metered(lease, epoch)
	if err != nil {
		return Metered{}, err
	}
	return *mt, nil
}
