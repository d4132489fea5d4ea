package rome

import (
	"errors"
	"testing"

	"github.com/sos-kernel/sos/ledger"
)

func offerP() *ledger.RomeOffer {
	return &ledger.RomeOffer{Capacity: res(1, 100, 3, 50), Price: res(1, 5, 3, 1), Region: "eu-west"}
}

func requestP() *ledger.RomeRequest {
	return &ledger.RomeRequest{Demand: res(1, 10, 3, 5), MaxPrice: res(1, 8, 3, 2), Epochs: 3, Region: "eu-west"}
}

func TestPayloadRules(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	prov, cons, other := h.users[0], h.users[1], h.users[2]
	oid := id(h.must(prov, offerP()), "offer_id")
	rid := id(h.must(cons, requestP()), "request_id")
	h.untilEpoch(1)
	leases, _ := h.m.Leases(h.st, 0, nil)
	if len(leases) != 1 {
		t.Fatalf("leases: %d, want 1", len(leases))
	}
	lid := leases[0].ID
	tests := []struct {
		name string
		from *ledger.PrivateKey
		p    ledger.Payload
		want error // nil: any ValidateBasic error
		ok   bool
	}{
		{"offer zero capacity", prov, &ledger.RomeOffer{Capacity: res(1, 0), Price: res(1, 1)}, nil, false},
		{"offer unknown kind", prov, &ledger.RomeOffer{Capacity: res(9, 1), Price: res(9, 1)}, nil, false},
		{"offer price kinds differ", prov, &ledger.RomeOffer{Capacity: res(1, 1), Price: res(2, 1)}, nil, false},
		{"offer bad latitude", prov, &ledger.RomeOffer{Capacity: res(1, 1), Price: res(1, 1), HasLocation: true, Lat: 91_000_000}, nil, false},
		{"offer bad region", prov, &ledger.RomeOffer{Capacity: res(1, 1), Price: res(1, 1), Region: "EU West"}, nil, false},
		{"offer ok", prov, offerP(), nil, true},
		{"request zero epochs", cons, &ledger.RomeRequest{Demand: res(1, 1), MaxPrice: res(1, 1)}, nil, false},
		{"request within-km without location", cons, &ledger.RomeRequest{Demand: res(1, 1), MaxPrice: res(1, 1), Epochs: 1, WithinKm: 5}, nil, false},
		{"request unsorted kinds", cons, &ledger.RomeRequest{Demand: res(3, 1, 1, 1), MaxPrice: res(3, 1, 1, 1), Epochs: 1}, nil, false},
		{"request insufficient funds for escrow", cons, &ledger.RomeRequest{Demand: res(1, 1000), MaxPrice: res(1, 1000), Epochs: 10}, ledger.ErrInsufficientFunds, false},
		{"request escrow overflow", cons, &ledger.RomeRequest{Demand: res(1, 1<<40), MaxPrice: res(1, 1<<40), Epochs: 10}, ledger.ErrOverflow, false},
		{"request credit of someone else's cert", cons, &ledger.RomeRequest{Demand: res(1, 1), MaxPrice: res(1, 1), Epochs: 1, Credits: []uint64{99}}, ErrNotFound, false},
		{"cancel by non-owner", other, &ledger.RomeCancel{ID: oid}, ErrUnauthorized, false},
		{"cancel unknown id", cons, &ledger.RomeCancel{ID: 999}, ErrNotFound, false},
		{"cancel filled request", cons, &ledger.RomeCancel{ID: rid}, ErrInvalid, false},
		{"usage by a stranger", other, &ledger.RomeUsage{LeaseID: lid, Epoch: 1, Delivered: res(1, 1)}, ErrUnauthorized, false},
		{"usage for another epoch", prov, &ledger.RomeUsage{LeaseID: lid, Epoch: 7, Delivered: res(1, 1)}, ErrInvalid, false},
		{"usage for a kind not leased", prov, &ledger.RomeUsage{LeaseID: lid, Epoch: 1, Delivered: res(2, 1)}, ErrInvalid, false},
		{"usage unknown lease", prov, &ledger.RomeUsage{LeaseID: 77, Epoch: 1, Delivered: res(1, 1)}, ErrNotFound, false},
		{"usage ok", prov, &ledger.RomeUsage{LeaseID: lid, Epoch: 1, Delivered: res(1, 10)}, nil, true},
		{"policy upload without a VM", cons, &ledger.RomePolicyUpload{Name: "p", Wasm: []byte("\x00asm\x01\x00\x00\x00")}, ErrNoVM, false},
		{"policy upload not wasm", cons, &ledger.RomePolicyUpload{Name: "p", Wasm: []byte("hello world")}, nil, false},
		{"cert sign unknown cert", h.node, &ledger.CertSign{CertID: 5, Signature: make([]byte, ledger.SignatureSize)}, ErrNotFound, false},
		{"cert revoke by stranger", other, &ledger.CertRevoke{CertID: 5}, ErrNotFound, false},
		{"propose unknown param", cons, &ledger.GovPropose{Param: "color", Value: "red"}, ErrInvalid, false},
		{"propose bad value", cons, &ledger.GovPropose{Param: "epoch_blocks", Value: "0"}, ErrInvalid, false},
		{"propose unknown policy", cons, &ledger.GovPropose{Param: "active_policy", Value: "00" + string(make([]byte, 0)) + "11111111111111111111111111111111111111111111111111111111111111"}, ErrNotFound, false},
		{"vote on unknown proposal", h.node, &ledger.GovVote{ProposalID: 9, Option: ledger.VoteYes}, ErrNotFound, false},
		{"vote option out of range", h.node, &ledger.GovVote{ProposalID: 1, Option: 4}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.deliver(tc.from, tc.p)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case !tc.ok && err == nil:
				t.Fatal("accepted")
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if err != nil && tc.want != nil {
				if _, ok := Code(err); !ok && !errors.Is(err, ledger.ErrInsufficientFunds) && !errors.Is(err, ledger.ErrOverflow) {
					t.Fatalf("error %v maps to no receipt code", err)
				}
			}
		})
	}
	// Voting: only members and contributors have weight.
	pid := id(h.must(cons, &ledger.GovPropose{Param: "epoch_blocks", Value: "3"}), "proposal_id")
	if _, err := h.deliver(other, &ledger.GovVote{ProposalID: pid, Option: ledger.VoteYes}); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("vote without weight: %v", err)
	}
	h.checkSupply()
}

// TestEpochLifecycle follows one lease through matching, attested and
// disputed settlement, rewards, certificates and the refund.
func TestEpochLifecycle(t *testing.T) {
	h := newHarness(t, harnessOpts{reward: 1000})
	prov, cons := h.users[0], h.users[1]
	h.must(prov, offerP())
	out := h.must(cons, requestP())
	rid := id(out, "request_id")
	esc := EscrowAccount
	if got := h.balance(esc, "uTFLP"); got != 240 {
		t.Fatalf("escrow %d uTFLP, want 10×8×3 = 240", got)
	}
	if got := h.balance(esc, "uKWTT"); got != 30 {
		t.Fatalf("escrow %d uKWTT, want 5×2×3 = 30", got)
	}
	h.untilEpoch(1)
	leases, _ := h.m.Leases(h.st, 0, nil)
	if len(leases) != 1 || leases[0].Start != 1 || leases[0].End != 4 {
		t.Fatalf("leases after epoch 0: %+v", leases)
	}
	l := leases[0]
	if amountOf(l.Prices, 1) != 5 || amountOf(l.Amounts, 1) != 10 {
		t.Fatalf("lease terms: %+v", l)
	}
	p0, k0 := h.balance(prov.Address(), "uTFLP"), h.balance(prov.Address(), "uKWTT")
	// Epoch 1: both report the full amounts: paid and attested.
	h.must(prov, &ledger.RomeUsage{LeaseID: l.ID, Epoch: 1, Delivered: res(1, 10, 3, 5)})
	h.must(cons, &ledger.RomeUsage{LeaseID: l.ID, Epoch: 1, Delivered: res(1, 10, 3, 5)})
	h.untilEpoch(2)
	if got := h.balance(prov.Address(), "uTFLP") - p0; got != 0 {
		t.Fatalf("epoch 1 paid before its report window closed: %d", got)
	}
	h.untilEpoch(3) // the end of epoch 2 settles epoch 1
	if got := h.balance(prov.Address(), "uTFLP") - p0; got != 50+1000 {
		t.Fatalf("provider got %d uTFLP, want 50 payment + 1000 reward", got)
	}
	if got := h.balance(prov.Address(), "uKWTT") - k0; got != 5 {
		t.Fatalf("provider got %d uKWTT, want 5", got)
	}
	certs, _ := h.m.Certificates(h.st, 0, nil)
	if len(certs) != 2 {
		t.Fatalf("certificates: %d, want 2 (compute, energy)", len(certs))
	}
	// The issuing node signs them (what the kernel hook does).
	pend, err := PendingSignatures(h.st, h.codec, h.node.Public(), 10)
	if err != nil || len(pend) != 2 {
		t.Fatalf("pending: %d, %v", len(pend), err)
	}
	for i := range pend {
		sp, err := SignPayload(h.codec, h.node, &pend[i])
		if err != nil {
			t.Fatal(err)
		}
		bad := *sp
		bad.Signature = append([]byte(nil), sp.Signature...)
		bad.Signature[0] ^= 1
		if _, err := h.deliver(h.users[2], &bad); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("tampered signature accepted: %v", err)
		}
		h.must(h.users[2], sp) // anyone may carry the issuer's signature
	}
	if pend, _ := PendingSignatures(h.st, h.codec, h.node.Public(), 10); len(pend) != 0 {
		t.Fatalf("still pending: %d", len(pend))
	}
	c, _ := h.m.Certificate(h.st, 1)
	f := c.File()
	if err := VerifyFile(&f, nil); err != nil {
		t.Fatalf("verify: %v", err)
	}
	// Epoch 2: no reports: paid by default, nothing attested.
	p1 := h.balance(prov.Address(), "uTFLP")
	h.untilEpoch(4)
	if got := h.balance(prov.Address(), "uTFLP") - p1; got != 50 {
		t.Fatalf("epoch 2 payment %d, want 50 (no reward without attestation)", got)
	}
	// Epoch 3 (reported during epoch 4, still in its window): disagreement
	// on compute: only the agreed 4 units are paid.
	h.must(prov, &ledger.RomeUsage{LeaseID: l.ID, Epoch: 3, Delivered: res(1, 10, 3, 5)})
	h.must(cons, &ledger.RomeUsage{LeaseID: l.ID, Epoch: 3, Delivered: res(1, 4, 3, 5)})
	if _, err := h.deliver(cons, &ledger.RomeUsage{LeaseID: l.ID, Epoch: 2, Delivered: res(1, 4)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("report after its window: %v", err)
	}
	c0 := h.balance(cons.Address(), "uTFLP")
	o, _ := h.m.Offer(h.st, 1)
	if amountOf(o.Leased, 1) != 0 {
		t.Fatalf("capacity not released after the lease's last epoch: %+v", o.Leased)
	}
	h.untilEpoch(5)
	rec, _ := h.m.Epoch(h.st, 4)
	if rec.Disputes != 1 {
		t.Fatalf("disputes %d, want 1", rec.Disputes)
	}
	l2, _ := h.m.Lease(h.st, l.ID)
	if l2.Status != StatusEnded || l2.Disputes != 1 {
		t.Fatalf("lease after its last epoch: %+v", l2)
	}
	r, _ := h.m.Request(h.st, rid)
	if r.Status != StatusDone {
		t.Fatalf("request status %s, want done", StatusName(r.Status))
	}
	// Spent 50+50+20 uTFLP, 15 uKWTT: the rest returns.
	if got := h.balance(cons.Address(), "uTFLP") - c0; got != 240-120 {
		t.Fatalf("refund %d uTFLP, want 120", got)
	}
	if h.balance(esc, "uTFLP") != 0 || h.balance(esc, "uKWTT") != 0 {
		t.Fatalf("escrow not empty: %d uTFLP %d uKWTT", h.balance(esc, "uTFLP"), h.balance(esc, "uKWTT"))
	}
	// Governance: contributors now hold most weight, so the node alone
	// cannot pass a proposal; with the provider's vote it passes and executes.
	pid := id(h.must(h.node, &ledger.GovPropose{Param: "epoch_blocks", Value: "3"}), "proposal_id")
	h.must(h.node, &ledger.GovVote{ProposalID: pid, Option: ledger.VoteYes})
	for i := 0; i < 4; i++ {
		h.endBlock()
	}
	pr, _ := h.m.Proposal(h.st, pid)
	if pr.Status != ProposalRejected {
		t.Fatalf("node-only proposal: %s (%s)", ProposalStatusName(pr.Status), pr.Result)
	}
	pid = id(h.must(h.node, &ledger.GovPropose{Param: "epoch_blocks", Value: "3"}), "proposal_id")
	h.must(h.node, &ledger.GovVote{ProposalID: pid, Option: ledger.VoteYes})
	h.must(prov, &ledger.GovVote{ProposalID: pid, Option: ledger.VoteYes})
	for i := 0; i < 4; i++ {
		h.endBlock()
	}
	pr, _ = h.m.Proposal(h.st, pid)
	p, _ := h.m.Params(h.st)
	if pr.Status != ProposalPassed || p.EpochBlocks != 3 {
		t.Fatalf("proposal %s (%s), epoch_blocks %d", ProposalStatusName(pr.Status), pr.Result, p.EpochBlocks)
	}
	// Credit: the provider redeems its compute certificate against a request.
	h.must(h.users[2], &ledger.RomeOffer{Capacity: res(1, 50), Price: res(1, 1)})
	var computeCert uint64
	all, _ := h.m.Certificates(h.st, 0, nil)
	for _, c := range all {
		if c.Statement.Kind == 1 && c.Statement.NodeID == prov.Address().String() && len(c.Signature) > 0 {
			computeCert = c.Statement.ID
		}
	}
	before := h.balance(prov.Address(), "uTFLP")
	out = h.must(prov, &ledger.RomeRequest{Demand: res(1, 2), MaxPrice: res(1, 3), Epochs: 1, Credits: []uint64{computeCert}})
	r2, _ := h.m.Request(h.st, id(out, "request_id"))
	if r2.Credit.AmountOf("uTFLP") != 6 || before-h.balance(prov.Address(), "uTFLP") != 0 {
		t.Fatalf("credit %s, paid %d: want the whole 2×3×1 escrow covered by credit", r2.Credit, before-h.balance(prov.Address(), "uTFLP"))
	}
	c, _ = h.m.Certificate(h.st, computeCert)
	if c.Redeemed != 2 {
		t.Fatalf("redeemed %d units, want 2", c.Redeemed)
	}
	// Revocation by the issuer.
	h.must(h.node, &ledger.CertRevoke{CertID: computeCert, Reason: "test"})
	if _, err := h.deliver(prov, &ledger.RomeRequest{Demand: res(1, 2), MaxPrice: res(1, 3), Epochs: 1, Credits: []uint64{computeCert}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("revoked credit: %v", err)
	}
	c2, _ := h.m.Clock(h.st)
	h.untilEpoch(c2.Epoch + 4) // the credited request is matched, paid, done; unspent credit burned
	r2, _ = h.m.Request(h.st, r2.ID)
	if r2.Status != StatusDone {
		t.Fatalf("credited request: %s", StatusName(r2.Status))
	}
}

func TestCancelRefundsAndExpiry(t *testing.T) {
	h := newHarness(t, harnessOpts{ttl: 2})
	cons := h.users[1]
	c0 := h.balance(cons.Address(), "uTFLP")
	rid := id(h.must(cons, requestP()), "request_id")
	if h.balance(cons.Address(), "uTFLP") != c0-240 {
		t.Fatal("escrow not taken")
	}
	h.must(cons, &ledger.RomeCancel{ID: rid})
	if h.balance(cons.Address(), "uTFLP") != c0 || h.balance(EscrowAccount, "uTFLP") != 0 {
		t.Fatal("cancel did not refund")
	}
	if _, err := h.deliver(cons, &ledger.RomeCancel{ID: rid}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("second cancel: %v", err)
	}
	// Unmatched requests expire after request_ttl_epochs and refund.
	rid = id(h.must(cons, requestP()), "request_id")
	h.untilEpoch(3)
	r, _ := h.m.Request(h.st, rid)
	if r.Status != StatusExpired || h.balance(cons.Address(), "uTFLP") != c0 {
		t.Fatalf("expiry: status %s, balance %d of %d", StatusName(r.Status), h.balance(cons.Address(), "uTFLP"), c0)
	}
}

func TestConstraintsAndBundles(t *testing.T) {
	h := newHarness(t, harnessOpts{})
	a, b, cons := h.users[0], h.users[2], h.users[1]
	// Munich and Berlin; a request near Augsburg within 100 km reaches Munich only.
	h.must(a, &ledger.RomeOffer{Capacity: res(1, 5, 3, 5), Price: res(1, 1, 3, 1), HasLocation: true, Lat: 48_137_000, Lon: 11_575_000})
	h.must(b, &ledger.RomeOffer{Capacity: res(1, 50, 3, 50), Price: res(1, 1, 3, 1), HasLocation: true, Lat: 52_520_000, Lon: 13_405_000})
	near := id(h.must(cons, &ledger.RomeRequest{Demand: res(1, 10), MaxPrice: res(1, 2), Epochs: 1, HasLocation: true, Lat: 48_370_000, Lon: 10_898_000, WithinKm: 100}), "request_id")
	bundle := id(h.must(cons, &ledger.RomeRequest{Demand: res(1, 10, 3, 10), MaxPrice: res(1, 2, 3, 2), Epochs: 1, Bundle: true}), "request_id")
	h.untilEpoch(1)
	leases, _ := h.m.Leases(h.st, 0, nil)
	for _, l := range leases {
		switch l.RequestID {
		case near:
			if l.OfferID != 1 || amountOf(l.Amounts, 1) != 5 {
				t.Fatalf("near request served by %+v", l)
			}
		case bundle:
			if l.OfferID != 2 || amountOf(l.Amounts, 1) != 10 || amountOf(l.Amounts, 3) != 10 {
				t.Fatalf("bundle served by %+v", l)
			}
		}
	}
	if len(leases) != 2 {
		t.Fatalf("%d leases, want 2", len(leases))
	}
	r, _ := h.m.Request(h.st, near)
	if r.Status != StatusOpen || amountOf(r.Remaining, 1) != 5 {
		t.Fatalf("partially served request: %s remaining %v", StatusName(r.Status), r.Remaining)
	}
}
