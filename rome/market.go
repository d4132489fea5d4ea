package rome

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"sync"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

// EscrowAccount is the module account holding requests' escrow.
var EscrowAccount = ledger.DeriveAddress("sos/module", []byte("rome_escrow"))

// Gas charged for market work beyond state access.
const (
	GasOffer   = 20_000
	GasRequest = 30_000
	GasCancel  = 10_000
	GasUsage   = 10_000
	// GasPolicyPerByte is charged per uploaded policy byte before anything
	// else (hashing, deduplication), like contracts.GasUploadPerByte; the
	// VM's Prepare charges the rest of the upload's work and
	// GasPolicyStorePerByte the state the prepared policy takes.
	GasPolicyPerByte      = 2
	GasPolicyStorePerByte = 10
	GasCertSign           = 10_000
	GasGov                = 20_000
	GasCertVerifyExtra    = 0 // the signature check is charged at the schedule's SigVerify
)

// Market executes market and governance payloads and the per-block epoch
// logic. It holds only configuration: all market data is in the State it
// is handed, so it is safe for concurrent use.
type Market struct {
	codec   *ledger.Codec
	chainID string
	denoms  *ledger.Denoms
	gen     Params
	vm      *vm.VM // Purpose vm.Policies; nil: policies cannot be uploaded or run (the fallback runs)

	mu   sync.Mutex
	keys map[string]ledger.PublicKey // parsed issuer keys by hex
}

// New configures the market of a chain from its genesis. v runs policies
// and must have been created with Purpose vm.Policies (the policy limits
// are consensus); nil leaves only the built-in fallback policy.
func New(codec *ledger.Codec, g *ledger.Genesis, v *vm.VM) (*Market, error) {
	if v != nil && v.Limits() != vm.Policies.Limits() {
		return nil, fmt.Errorf("rome: the policy VM has limits %+v, want those of vm.Policies", v.Limits())
	}
	p, err := ParamsFromGenesis(g)
	if err != nil {
		return nil, err
	}
	return &Market{codec: codec, chainID: g.ChainID, denoms: g.DenomSet(), gen: p, vm: v, keys: map[string]ledger.PublicKey{}}, nil
}

// GenesisParams are the parameters genesis set.
func (m *Market) GenesisParams() Params { return m.gen }

// Params returns the current parameters.
func (m *Market) Params(st *ledger.State) (Params, error) {
	return (&store{st: st, codec: m.codec, stored: true}).params(m.gen)
}

// Tx is the context of one market transaction.
type Tx struct {
	St     *ledger.State
	Gas    *ledger.GasMeter
	Sched  *ledger.GasSchedule
	Height uint64
	TimeMs int64
	Sender ledger.Address
	TxHash ledger.Hash
	// PrevHash is the hash of the block before this one: it draws
	// challenge committees.
	PrevHash ledger.Hash
	Events   []ledger.Event // appended on success
}

func (t *Tx) store(m *Market) *store {
	return &store{st: t.St, codec: m.codec, stored: true, gas: t.Gas, sched: t.Sched}
}

func (t *Tx) accounts(m *Market) *ledger.Accounts {
	return &ledger.Accounts{St: t.St, Codec: m.codec, Gas: t.Gas, Sched: t.Sched}
}

func (t *Tx) emit(typ string, kv ...string) { t.Events = append(t.Events, ledger.NewEvent(typ, kv...)) }

// IsMarketPayload reports whether p is a market or governance payload.
func IsMarketPayload(p ledger.Payload) bool {
	k := p.Kind()
	return k >= 32 && k <= 79
}

// Deliver executes a market or governance payload and returns the
// receipt data (JSON). Errors wrap ErrInvalid, ErrNotFound, ErrUnauthorized
// or a ledger sentinel; anything else means the state is broken.
func (m *Market) Deliver(ctx context.Context, tx *Tx, p ledger.Payload) ([]byte, error) {
	var res any
	var err error
	switch p := p.(type) {
	case *ledger.RomeOffer:
		res, err = m.offer(tx, p)
	case *ledger.RomeRequest:
		res, err = m.request(tx, p)
	case *ledger.RomeCancel:
		res, err = m.cancel(tx, p)
	case *ledger.RomeUsage:
		res, err = m.usage(tx, p)
	case *ledger.RomePolicyUpload:
		res, err = m.uploadPolicy(ctx, tx, p)
	case *ledger.CertSign:
		res, err = m.certSign(tx, p)
	case *ledger.CertRevoke:
		res, err = m.certRevoke(tx, p)
	case *ledger.GovPropose:
		res, err = m.propose(tx, p)
	case *ledger.GovVote:
		res, err = m.vote(tx, p)
	case *ledger.JobSubmit:
		res, err = m.submitJob(tx, p)
	case *ledger.JobResult:
		res, err = m.jobResult(tx, p)
	case *ledger.JobChallenge:
		res, err = m.challengeJob(tx, p)
	case *ledger.JobVerdict:
		res, err = m.jobVerdict(tx, p)
	case *ledger.BlobPin:
		res, err = m.pinBlob(tx, p)
	case *ledger.StorageProof:
		res, err = m.storageProof(tx, p)
	case *ledger.MeterRegister:
		res, err = m.registerMeter(tx, p)
	case *ledger.MeterReading:
		res, err = m.meterReading(tx, p)
	default:
		return nil, fmt.Errorf("rome: payload %s: %w", p.Kind(), ledger.ErrUnknownKind)
	}
	if err != nil {
		return nil, err
	}
	return json.Marshal(res)
}

func (m *Market) offer(tx *Tx, p *ledger.RomeOffer) (any, error) {
	if err := tx.Gas.Consume(GasOffer, "rome offer"); err != nil {
		return nil, err
	}
	s := tx.store(m)
	rid, err := s.regionID(p.Region, true)
	if err != nil {
		return nil, err
	}
	id, err := s.next("market")
	if err != nil {
		return nil, err
	}
	leased := make([]ledger.ResourceAmount, len(p.Capacity))
	for i, c := range p.Capacity {
		leased[i] = ledger.ResourceAmount{Kind: c.Kind}
	}
	bond := ledger.Coins{}
	if len(p.Bond) > 0 {
		for _, c := range p.Bond {
			if !m.denoms.IsBase(c.Denom) {
				return nil, fmt.Errorf("rome: offer: bond denom %q: %w", c.Denom, ledger.ErrUnknownDenom)
			}
		}
		if err := tx.accounts(m).Transfer(tx.Sender, BondAccount, p.Bond); err != nil {
			return nil, fmt.Errorf("rome: offer: bond %s: %w", p.Bond, err)
		}
		bond = p.Bond
	}
	o := Offer{ID: id, Owner: tx.Sender, Capacity: p.Capacity, Price: p.Price, Leased: leased, Region: p.Region, RegionID: rid,
		HasLocation: p.HasLocation, Lat: p.Lat, Lon: p.Lon, Attrs: p.Attrs, Reliability: p.Reliability,
		FromEpoch: p.FromEpoch, UntilEpoch: p.UntilEpoch, Height: tx.Height, Status: StatusOpen,
		Node: p.Node, Bond: bond, Slashed: ledger.Coins{}}
	if err := s.put(rkey(tagOffer, u64(id)), &o); err != nil {
		return nil, err
	}
	if err := s.setRaw(rkey(tagOpenOffer, u64(id)), one); err != nil {
		return nil, err
	}
	if err := s.setRaw(rkey(tagOfferFree, u64(id)), one); err != nil {
		return nil, err
	}
	if o.UntilEpoch != 0 {
		if err := s.setRaw(rkey(tagOfferEnd, u64(o.UntilEpoch), u64(id)), one); err != nil {
			return nil, err
		}
	}
	kv := []string{"offer_id", strconv.FormatUint(id, 10), "provider", tx.Sender.String()}
	if !p.Node.IsZero() {
		kv = append(kv, "node", p.Node.String(), "bond", bond.String())
	}
	tx.emit("rome_offer", kv...)
	return map[string]uint64{"offer_id": id}, nil
}

// mulCheck is a·b·c or ErrOverflow.
func mulCheck(a, b, c uint64) (uint64, error) {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return 0, ledger.ErrOverflow
	}
	hi, lo = bits.Mul64(lo, c)
	if hi != 0 {
		return 0, ledger.ErrOverflow
	}
	return lo, nil
}

func coinsOf(m map[string]uint64) (ledger.Coins, error) {
	denoms := make([]string, 0, len(m))
	for d := range m {
		denoms = append(denoms, d)
	}
	slices.Sort(denoms) // no map iteration decides output
	var list []ledger.Coin
	for _, d := range denoms {
		if v := m[d]; v > 0 {
			list = append(list, ledger.Coin{Denom: d, Amount: v})
		}
	}
	return ledger.NormalizeCoins(list)
}

// KindDenom is the base denom kind k settles in on this chain ("" if
// unknown): storage's is the genesis parameter storage_denom.
func (m *Market) KindDenom(k uint8) string {
	if k == KindStorage {
		return m.gen.StorageDenom
	}
	return KindDenom(k)
}

// MaxCost is a request's escrow: Σ demand × max price × epochs ×
// max(1, replicas), per token.
func (m *Market) MaxCost(demand, maxPrice []ledger.ResourceAmount, epochs uint32, replicas uint16) (ledger.Coins, error) {
	per := map[string]uint64{}
	for i, d := range demand {
		v, err := mulCheck(d.Amount, maxPrice[i].Amount, uint64(epochs))
		if err == nil {
			v, err = mulCheck(v, uint64(max(1, replicas)), 1)
		}
		if err == nil {
			per[m.KindDenom(d.Kind)], err = ledger.AddUint64(per[m.KindDenom(d.Kind)], v)
		}
		if err != nil {
			return nil, fmt.Errorf("rome: escrow of kind %d: %w", d.Kind, err)
		}
	}
	return coinsOf(per)
}

func (m *Market) request(tx *Tx, p *ledger.RomeRequest) (any, error) {
	if err := tx.Gas.Consume(GasRequest, "rome request"); err != nil {
		return nil, err
	}
	s := tx.store(m)
	for _, d := range p.Demand {
		if !m.denoms.IsBase(m.KindDenom(d.Kind)) {
			return nil, fmt.Errorf("rome: request: kind %s settles in %s, which this chain does not declare: %w", KindName(d.Kind), m.KindDenom(d.Kind), ledger.ErrUnknownDenom)
		}
	}
	escrow, err := m.MaxCost(p.Demand, p.MaxPrice, p.Epochs, p.Replicas)
	if err != nil {
		return nil, err
	}
	params, err := s.params(m.gen)
	if err != nil {
		return nil, err
	}
	clock, err := s.clock(params)
	if err != nil {
		return nil, err
	}
	// Certificates redeemed as credit: the credited part of the escrow is
	// minted (the network pays contributors back in resources).
	credit := map[string]uint64{}
	creditedUnits := map[uint8]uint64{}
	for _, cid := range p.Credits {
		c, err := s.cert(cid)
		if err != nil {
			return nil, err
		}
		switch {
		case c.Statement.NodeID != tx.Sender.String():
			return nil, fmt.Errorf("rome: certificate %d belongs to %s: %w", cid, c.Statement.NodeID, ErrUnauthorized)
		case c.Revoked:
			return nil, fmt.Errorf("rome: certificate %d is revoked: %w", cid, ErrInvalid)
		case len(c.Signature) == 0:
			return nil, fmt.Errorf("rome: certificate %d is not signed yet: %w", cid, ErrInvalid)
		}
		k := c.Statement.Kind
		demand := amountOf(p.Demand, k)
		if demand == 0 {
			return nil, fmt.Errorf("rome: certificate %d is for %s, which the request does not demand: %w", cid, KindName(k), ErrInvalid)
		}
		room := demand*uint64(p.Epochs)*uint64(max(1, p.Replicas)) - creditedUnits[k] // no overflow: MaxCost checked the product
		units := min(c.Statement.Amount-c.Redeemed, room)
		if units == 0 {
			continue
		}
		v, err := mulCheck(units, amountOf(p.MaxPrice, k), 1)
		if err != nil {
			return nil, err
		}
		creditedUnits[k] += units
		credit[m.KindDenom(k)] += v
		c.Redeemed += units
		if err := s.put(rkey(tagCert, u64(cid)), c); err != nil {
			return nil, err
		}
	}
	creditCoins, err := coinsOf(credit)
	if err != nil {
		return nil, err
	}
	pay := ledger.Coins{}
	for _, c := range escrow {
		if v := c.Amount - creditCoins.AmountOf(c.Denom); v > 0 {
			pay = append(pay, ledger.Coin{Denom: c.Denom, Amount: v})
		}
	}
	acc := tx.accounts(m)
	if err := acc.Transfer(tx.Sender, EscrowAccount, pay); err != nil {
		return nil, fmt.Errorf("rome: request: escrow %s: %w", escrow, err)
	}
	if len(creditCoins) > 0 {
		if err := acc.Mint(EscrowAccount, creditCoins); err != nil {
			return nil, err
		}
	}
	rid, err := s.regionID(p.Region, true)
	if err != nil {
		return nil, err
	}
	id, err := s.next("market")
	if err != nil {
		return nil, err
	}
	remaining := slices.Clone(p.Demand)
	for i := range remaining {
		remaining[i].Amount *= uint64(max(1, p.Replicas)) // no overflow: MaxCost checked the product
	}
	r := Request{ID: id, Owner: tx.Sender, Demand: p.Demand, MaxPrice: p.MaxPrice, Remaining: remaining, Epochs: p.Epochs,
		Region: p.Region, RegionID: rid, HasLocation: p.HasLocation, Lat: p.Lat, Lon: p.Lon, WithinKm: p.WithinKm, Attrs: p.Attrs,
		MinReliability: p.MinReliability, Bundle: p.Bundle, Escrow: escrow, Credit: creditCoins, Spent: ledger.Coins{}, Refunded: ledger.Coins{},
		Height: tx.Height, Epoch: clock.Epoch, Status: StatusOpen,
		Replicas: p.Replicas, Spread: p.Spread, MeterKinds: p.MeterKinds, Open: p.Replicas, StorageUnit: params.BytesPerStorageUnit}
	if err := s.put(rkey(tagRequest, u64(id)), &r); err != nil {
		return nil, err
	}
	if err := s.setRaw(rkey(tagOpenReq, u64(id)), one); err != nil {
		return nil, err
	}
	kv := []string{"request_id", strconv.FormatUint(id, 10), "consumer", tx.Sender.String(), "escrow", escrow.String(), "credit", creditCoins.String()}
	if p.Replicas > 0 {
		kv = append(kv, "replicas", strconv.FormatUint(uint64(p.Replicas), 10))
	}
	tx.emit("rome_request", kv...)
	return map[string]any{"request_id": id, "escrow": escrow, "credit": creditCoins}, nil
}

func (m *Market) cancel(tx *Tx, p *ledger.RomeCancel) (any, error) {
	if err := tx.Gas.Consume(GasCancel, "rome cancel"); err != nil {
		return nil, err
	}
	s := tx.store(m)
	if o, err := s.offer(p.ID); err == nil {
		if o.Owner != tx.Sender {
			return nil, fmt.Errorf("rome: offer %d belongs to %s: %w", p.ID, o.Owner, ErrUnauthorized)
		}
		if o.Status != StatusOpen {
			return nil, fmt.Errorf("rome: offer %d is %s: %w", p.ID, StatusName(o.Status), ErrInvalid)
		}
		o.Status = StatusCancelled
		ev, err := releaseBond(tx.accounts(m), o)
		if err != nil {
			return nil, err
		}
		if err := s.put(rkey(tagOffer, u64(o.ID)), o); err != nil {
			return nil, err
		}
		if err := s.del(rkey(tagOpenOffer, u64(o.ID))); err != nil {
			return nil, err
		}
		if err := s.del(rkey(tagOfferFree, u64(o.ID))); err != nil {
			return nil, err
		}
		if o.UntilEpoch != 0 {
			if err := s.del(rkey(tagOfferEnd, u64(o.UntilEpoch), u64(o.ID))); err != nil {
				return nil, err
			}
		}
		tx.emit("rome_cancel", "offer_id", strconv.FormatUint(o.ID, 10))
		if ev != nil {
			tx.Events = append(tx.Events, *ev)
		}
		return map[string]any{"offer_id": o.ID, "status": "cancelled"}, nil
	} else if !isNotFound(err) {
		return nil, err
	}
	r, err := s.request(p.ID)
	if err != nil {
		return nil, fmt.Errorf("rome: cancel: no offer or request %d: %w", p.ID, ErrNotFound)
	}
	if r.Owner != tx.Sender {
		return nil, fmt.Errorf("rome: request %d belongs to %s: %w", p.ID, r.Owner, ErrUnauthorized)
	}
	if r.Status != StatusOpen {
		return nil, fmt.Errorf("rome: request %d is %s: %w", p.ID, StatusName(r.Status), ErrInvalid)
	}
	r.Status = StatusCancelled
	if err := s.del(rkey(tagOpenReq, u64(r.ID))); err != nil {
		return nil, err
	}
	var refund ledger.Coins
	if r.LiveLeases == 0 {
		if refund, err = m.finalize(s, tx.accounts(m), r); err != nil {
			return nil, err
		}
	}
	if err := s.put(rkey(tagRequest, u64(r.ID)), r); err != nil {
		return nil, err
	}
	tx.emit("rome_cancel", "request_id", strconv.FormatUint(r.ID, 10), "refund", refund.String())
	return map[string]any{"request_id": r.ID, "status": "cancelled", "refund": refund}, nil
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// finalize returns what is left of a closed request's escrow: credit that
// was not spent is burned (it was minted), the rest goes back to the owner.
// Payments spend credit first.
func (m *Market) finalize(s *store, acc *ledger.Accounts, r *Request) (ledger.Coins, error) {
	var refund, burn []ledger.Coin
	for _, c := range r.Escrow {
		spent, done := r.Spent.AmountOf(c.Denom), r.Refunded.AmountOf(c.Denom)
		left := c.Amount - spent - done
		cr := r.Credit.AmountOf(c.Denom)
		unusedCredit := cr - min(cr, spent)
		b := min(unusedCredit, left)
		if b > 0 {
			burn = append(burn, ledger.Coin{Denom: c.Denom, Amount: b})
		}
		if left-b > 0 {
			refund = append(refund, ledger.Coin{Denom: c.Denom, Amount: left - b})
		}
	}
	if len(burn) > 0 {
		if err := acc.Burn(EscrowAccount, burn); err != nil {
			return nil, err
		}
	}
	if len(refund) > 0 {
		if err := acc.Transfer(EscrowAccount, r.Owner, refund); err != nil {
			return nil, err
		}
	}
	all, err := ledger.NormalizeCoins(append(append(append([]ledger.Coin{}, r.Refunded...), refund...), burn...))
	if err != nil {
		return nil, err
	}
	r.Refunded = all
	if r.Status == StatusFilled {
		r.Status = StatusDone
	}
	return ledger.Coins(refund), nil
}

func (m *Market) usage(tx *Tx, p *ledger.RomeUsage) (any, error) {
	if err := tx.Gas.Consume(GasUsage, "rome usage"); err != nil {
		return nil, err
	}
	s := tx.store(m)
	l, err := s.lease(p.LeaseID)
	if err != nil {
		return nil, err
	}
	if tx.Sender != l.Provider && tx.Sender != l.Consumer {
		return nil, fmt.Errorf("rome: lease %d: only its provider and consumer report usage: %w", l.ID, ErrUnauthorized)
	}
	params, err := s.params(m.gen)
	if err != nil {
		return nil, err
	}
	clock, err := s.clock(params)
	if err != nil {
		return nil, err
	}
	if p.Epoch != clock.Epoch && p.Epoch+1 != clock.Epoch {
		return nil, fmt.Errorf("rome: usage for epoch %d: reports are accepted during the epoch they cover and the next (now %d): %w", p.Epoch, clock.Epoch, ErrInvalid)
	}
	if p.Epoch < l.Start || p.Epoch >= l.End {
		return nil, fmt.Errorf("rome: lease %d does not run in epoch %d (epochs %d-%d): %w", l.ID, p.Epoch, l.Start, l.End-1, ErrInvalid)
	}
	for _, d := range p.Delivered {
		if amountOf(l.Amounts, d.Kind) == 0 {
			return nil, fmt.Errorf("rome: lease %d has no %s: %w", l.ID, KindName(d.Kind), ErrInvalid)
		}
	}
	k := rkey(tagUsage, u64(l.ID), u64(p.Epoch))
	var u Usage
	if _, err := s.get(k, &u); err != nil {
		return nil, err
	}
	if !u.HasProvider && !u.HasConsumer {
		if err := s.touch(l.ID, p.Epoch); err != nil {
			return nil, err
		}
	}
	role := "consumer"
	if tx.Sender == l.Provider {
		u.HasProvider, u.Provider, role = true, p.Delivered, "provider"
	}
	if tx.Sender == l.Consumer { // a self-lease reports as both parties
		u.HasConsumer, u.Consumer = true, p.Delivered
	}
	if err := s.put(k, &u); err != nil {
		return nil, err
	}
	tx.emit("rome_usage", "lease_id", strconv.FormatUint(l.ID, 10), "epoch", strconv.FormatUint(p.Epoch, 10), "role", role)
	return map[string]any{"lease_id": l.ID, "epoch": p.Epoch, "role": role}, nil
}

func (m *Market) issuerKey(hexKey string) (ledger.PublicKey, error) {
	m.mu.Lock()
	k, ok := m.keys[hexKey]
	m.mu.Unlock()
	if ok {
		return k, nil
	}
	raw, err := hex.DecodeString(hexKey)
	if err != nil {
		return k, fmt.Errorf("rome: issuer key: %w", ledger.ErrCorrupt)
	}
	if k, err = ledger.ParsePublicKey(raw); err != nil {
		return k, err
	}
	m.mu.Lock()
	m.keys[hexKey] = k
	m.mu.Unlock()
	return k, nil
}

func (m *Market) certSign(tx *Tx, p *ledger.CertSign) (any, error) {
	if err := tx.Gas.Consume(GasCertSign+tx.Sched.SigVerify, "cert sign"); err != nil {
		return nil, err
	}
	s := tx.store(m)
	c, err := s.cert(p.CertID)
	if err != nil {
		return nil, err
	}
	if len(c.Signature) > 0 {
		return nil, fmt.Errorf("rome: certificate %d is already signed: %w", p.CertID, ErrInvalid)
	}
	key, err := s.issuerKey(c.Statement.Issuer)
	if err != nil {
		return nil, err
	}
	if err := VerifyStatement(m.codec, key, &c.Statement, p.Signature); err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrUnauthorized)
	}
	c.Signature = p.Signature
	if err := s.put(rkey(tagCert, u64(p.CertID)), c); err != nil {
		return nil, err
	}
	if err := s.del(rkey(tagCertPend, u64(p.CertID))); err != nil {
		return nil, err
	}
	tx.emit("cert_signed", "cert_id", strconv.FormatUint(p.CertID, 10), "issuer", c.Statement.Issuer)
	return map[string]any{"cert_id": p.CertID, "status": "signed"}, nil
}

func (m *Market) certRevoke(tx *Tx, p *ledger.CertRevoke) (any, error) {
	if err := tx.Gas.Consume(GasCertSign, "cert revoke"); err != nil {
		return nil, err
	}
	s := tx.store(m)
	c, err := s.cert(p.CertID)
	if err != nil {
		return nil, err
	}
	params, err := s.params(m.gen)
	if err != nil {
		return nil, err
	}
	key, err := s.issuerKey(c.Statement.Issuer)
	if err != nil {
		return nil, err
	}
	allowed := ledger.AddressFromPublicKey(key) == tx.Sender
	for _, mb := range params.Members {
		allowed = allowed || mb.Address == tx.Sender
	}
	if !allowed {
		return nil, fmt.Errorf("rome: certificate %d: only its issuer or a governance member may revoke it: %w", p.CertID, ErrUnauthorized)
	}
	if c.Revoked {
		return nil, fmt.Errorf("rome: certificate %d is already revoked: %w", p.CertID, ErrInvalid)
	}
	c.Revoked, c.RevokeReason = true, p.Reason
	if err := s.put(rkey(tagCert, u64(p.CertID)), c); err != nil {
		return nil, err
	}
	if err := s.del(rkey(tagCertPend, u64(p.CertID))); err != nil {
		return nil, err
	}
	tx.emit("cert_revoked", "cert_id", strconv.FormatUint(p.CertID, 10))
	return map[string]any{"cert_id": p.CertID, "status": "revoked"}, nil
}
