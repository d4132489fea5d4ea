package rome

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"

	"github.com/sos-kernel/sos/ledger"
)

// openCountKey counts the proposals being voted on.
var openCountKey = gkey(gtagOpenCount)

// Proposal statuses.
const (
	ProposalVoting   uint8 = 1
	ProposalPassed   uint8 = 2 // and executed
	ProposalRejected uint8 = 3
	ProposalFailed   uint8 = 4 // passed, but the change could no longer be applied
)

// ProposalStatusName names a proposal status.
func ProposalStatusName(s uint8) string {
	switch s {
	case ProposalVoting:
		return "voting"
	case ProposalPassed:
		return "passed"
	case ProposalRejected:
		return "rejected"
	case ProposalFailed:
		return "failed"
	}
	return fmt.Sprintf("status(%d)", s)
}

// VoteName names a vote option.
func VoteName(o uint8) string {
	switch o {
	case ledger.VoteYes:
		return "yes"
	case ledger.VoteNo:
		return "no"
	case ledger.VoteAbstain:
		return "abstain"
	}
	return fmt.Sprintf("option(%d)", o)
}

// Proposal changes one parameter if it passes.
type Proposal struct {
	_           struct{}       `cbor:",toarray"`
	ID          uint64         `json:"id"`
	Proposer    ledger.Address `json:"proposer"`
	Title       string         `json:"title"`
	Param       string         `json:"param"`
	Value       string         `json:"value"`
	Submit      uint64         `json:"submit_height"`
	End         uint64         `json:"end_height"` // votes count until this block; the tally runs at its end
	Status      uint8          `json:"status"`
	Yes         uint64         `json:"yes"`
	No          uint64         `json:"no"`
	Abstain     uint64         `json:"abstain"`
	TotalWeight uint64         `json:"total_weight"`
	Result      string         `json:"result"`
}

// Vote is one member's vote with the weight it had when cast.
type Vote struct {
	_      struct{}       `cbor:",toarray"`
	Voter  ledger.Address `json:"voter"`
	Option uint8          `json:"option"`
	Weight uint64         `json:"weight"`
	Height uint64         `json:"height"`
}

// Weight is an address's voting weight: its genesis member weight plus the
// units it delivered with attestation.
func (m *Market) Weight(st *ledger.State, p Params, a ledger.Address) (uint64, error) {
	return (&store{st: st, codec: m.codec, stored: true}).weight(p, a)
}

func (s *store) weight(p Params, a ledger.Address) (uint64, error) {
	w, err := s.getU64(rkey(tagContrib, a[:]))
	if err != nil {
		return 0, err
	}
	for _, mb := range p.Members {
		if mb.Address == a {
			w = satAdd(w, mb.Weight)
		}
	}
	return w, nil
}

func (s *store) totalWeight(p Params) (uint64, error) {
	w, err := s.getU64(rkey(tagSeq, []byte("contrib_total")))
	if err != nil {
		return 0, err
	}
	for _, mb := range p.Members {
		w = satAdd(w, mb.Weight)
	}
	return w, nil
}

func (m *Market) checkChange(s *store, p Params, param, value string) (Params, error) {
	np, err := p.With(param, value, m.denoms)
	if err != nil {
		return p, err
	}
	if param == "active_policy" && np.ActivePolicy != "" {
		id, _ := ledger.ParseHash(np.ActivePolicy)
		var pol Policy
		ok, err := s.get(rkey(tagPolicy, id[:]), &pol)
		if err != nil {
			return p, err
		}
		if !ok {
			return p, fmt.Errorf("rome: policy %s: %w", id, ErrNotFound)
		}
	}
	return np, nil
}

func (m *Market) propose(tx *Tx, p *ledger.GovPropose) (any, error) {
	if err := tx.Gas.Consume(GasGov, "gov propose"); err != nil {
		return nil, err
	}
	s := tx.store(m)
	params, err := s.params(m.gen)
	if err != nil {
		return nil, err
	}
	if _, err := m.checkChange(s, params, p.Param, p.Value); err != nil {
		return nil, err
	}
	id, err := s.next("proposal")
	if err != nil {
		return nil, err
	}
	title := p.Title
	if title == "" {
		title = p.Param + " = " + p.Value
	}
	pr := Proposal{ID: id, Proposer: tx.Sender, Title: title, Param: p.Param, Value: p.Value, Submit: tx.Height,
		End: tx.Height + params.VotingPeriod, Status: ProposalVoting}
	if err := s.put(gkey(gtagProposal, u64(id)), &pr); err != nil {
		return nil, err
	}
	if err := s.setRaw(gkey(gtagOpen, u64(pr.End), u64(id)), one); err != nil {
		return nil, err
	}
	open, err := s.getU64(openCountKey)
	if err != nil {
		return nil, err
	}
	if err := s.setU64(openCountKey, open+1); err != nil {
		return nil, err
	}
	tx.emit("gov_proposal", "proposal_id", strconv.FormatUint(id, 10), "param", p.Param, "value", p.Value, "end_height", strconv.FormatUint(pr.End, 10))
	return map[string]any{"proposal_id": id, "end_height": pr.End}, nil
}

func (m *Market) vote(tx *Tx, p *ledger.GovVote) (any, error) {
	if err := tx.Gas.Consume(GasGov, "gov vote"); err != nil {
		return nil, err
	}
	s := tx.store(m)
	var pr Proposal
	ok, err := s.get(gkey(gtagProposal, u64(p.ProposalID)), &pr)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("rome: proposal %d: %w", p.ProposalID, ErrNotFound)
	}
	if pr.Status != ProposalVoting || tx.Height > pr.End {
		return nil, fmt.Errorf("rome: proposal %d is closed (%s): %w", pr.ID, ProposalStatusName(pr.Status), ErrInvalid)
	}
	params, err := s.params(m.gen)
	if err != nil {
		return nil, err
	}
	w, err := s.weight(params, tx.Sender)
	if err != nil {
		return nil, err
	}
	if w == 0 {
		return nil, fmt.Errorf("rome: %s has no voting weight (members and attested contributors vote): %w", tx.Sender, ErrUnauthorized)
	}
	v := Vote{Voter: tx.Sender, Option: p.Option, Weight: w, Height: tx.Height}
	if err := s.put(gkey(gtagVote, u64(pr.ID), tx.Sender[:]), &v); err != nil {
		return nil, err
	}
	tx.emit("gov_vote", "proposal_id", strconv.FormatUint(pr.ID, 10), "voter", tx.Sender.String(), "option", VoteName(p.Option), "weight", strconv.FormatUint(w, 10))
	return map[string]any{"proposal_id": pr.ID, "option": VoteName(p.Option), "weight": w}, nil
}

// Votes lists a proposal's votes in voter order.
func (m *Market) Votes(st *ledger.State, id uint64) ([]Vote, error) {
	s := &store{st: st, codec: m.codec, stored: true}
	prefix := gkey(gtagVote, u64(id))
	var out []Vote
	var derr error
	err := st.Iterate(prefix, prefixEnd(prefix), false, func(k, v []byte) bool {
		var vt Vote
		if derr = s.codec.Unmarshal(v, &vt); derr != nil {
			return false
		}
		out = append(out, vt)
		return true
	})
	if err == nil {
		err = derr
	}
	return out, err
}

// tally closes the proposals whose voting period ends at or before height:
// it passes when the votes cast reach quorum_bps of the total weight and
// yes exceeds threshold_bps of yes+no; a passed proposal executes now.
func (m *Market) tally(s *store, p Params, height uint64) error {
	// Most blocks have no proposal open: one read instead of a range scan
	// (which merges every write buffered in the block).
	open, err := s.getU64(openCountKey)
	if err != nil || open == 0 {
		return err
	}
	prefix := gkey(gtagOpen)
	end := gkey(gtagOpen, u64(height+1))
	var keys [][]byte
	if err := s.st.Iterate(prefix, end, false, func(k, v []byte) bool {
		keys = append(keys, append([]byte(nil), k...))
		return true
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if len(k) != len(prefix)+16 {
			continue
		}
		id := binary.BigEndian.Uint64(k[len(prefix)+8:])
		var pr Proposal
		ok, err := s.get(gkey(gtagProposal, u64(id)), &pr)
		if err != nil {
			return err
		}
		if err := s.del(k); err != nil {
			return err
		}
		open--
		if err := s.setU64(openCountKey, open); err != nil {
			return err
		}
		if !ok {
			continue
		}
		votes, err := m.Votes(s.st, id)
		if err != nil {
			return err
		}
		pr.Yes, pr.No, pr.Abstain = countVotes(votes)
		if pr.TotalWeight, err = s.totalWeight(p); err != nil {
			return err
		}
		cast := satAdd(satAdd(pr.Yes, pr.No), pr.Abstain)
		quorum := geBps(cast, pr.TotalWeight, p.QuorumBps)
		pass := quorum && pr.Yes > 0 && gtBps(pr.Yes, satAdd(pr.Yes, pr.No), p.ThresholdBps)
		switch {
		case !quorum:
			pr.Status, pr.Result = ProposalRejected, "quorum not reached"
		case !pass:
			pr.Status, pr.Result = ProposalRejected, "threshold not reached"
		default:
			np, err := m.checkChange(s, p, pr.Param, pr.Value)
			if err != nil {
				if _, ok := Code(err); !ok {
					return err
				}
				pr.Status, pr.Result = ProposalFailed, err.Error()
				break
			}
			if err := m.applyParams(s, p, np); err != nil {
				return err
			}
			p = np
			pr.Status, pr.Result = ProposalPassed, "executed: "+pr.Param+" = "+pr.Value
		}
		if err := s.put(gkey(gtagProposal, u64(id)), &pr); err != nil {
			return err
		}
	}
	return nil
}

// applyParams records the parameters a passed proposal set; a change of
// cert_period_epochs moves the pending certificate periods (rekeyCerts).
func (m *Market) applyParams(s *store, old, np Params) error {
	if np.CertPeriodEpochs != old.CertPeriodEpochs {
		clock, err := s.clock(old)
		if err != nil {
			return err
		}
		if err := s.rekeyCerts(old.CertPeriodEpochs, np.CertPeriodEpochs, clock.Epoch); err != nil {
			return err
		}
	}
	return s.setParams(np)
}

// countVotes sums the weight behind each option.
func countVotes(votes []Vote) (yes, no, abstain uint64) {
	for _, v := range votes {
		switch v.Option {
		case ledger.VoteYes:
			yes = satAdd(yes, v.Weight)
		case ledger.VoteNo:
			no = satAdd(no, v.Weight)
		default:
			abstain = satAdd(abstain, v.Weight)
		}
	}
	return yes, no, abstain
}

// geBps reports a ≥ b·bps/10000 exactly; gtBps reports a > b·bps/10000.
func geBps(a, b, bp uint64) bool {
	h1, l1 := bits.Mul64(a, 10_000)
	h2, l2 := bits.Mul64(b, bp)
	return h1 > h2 || h1 == h2 && l1 >= l2
}

func gtBps(a, b, bp uint64) bool {
	h1, l1 := bits.Mul64(a, 10_000)
	h2, l2 := bits.Mul64(b, bp)
	return h1 > h2 || h1 == h2 && l1 > l2
}
