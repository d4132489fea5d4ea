package ledger

import (
	"fmt"
	"regexp"
)

// Payloads of the ROME resource market (kinds 32–63) and governance (64–79).
// Their rules live in package rome; this file only makes them decodable and
// checks what needs no state.

// Market and governance payload kinds.
const (
	KindRomeOffer        PayloadKind = 32
	KindRomeRequest      PayloadKind = 33
	KindRomeCancel       PayloadKind = 34
	KindRomeUsage        PayloadKind = 35
	KindRomePolicyUpload PayloadKind = 36
	KindCertSign         PayloadKind = 37
	KindCertRevoke       PayloadKind = 38

	KindGovPropose PayloadKind = 64
	KindGovVote    PayloadKind = 65
)

// Resource kinds have fixed ids (the policy ABI uses them): 1 compute,
// 2 bandwidth, 3 energy, 4 storage. MaxResourceKind is the highest id.
const MaxResourceKind = 4

// Market limits checked without state.
const (
	MaxLeaseEpochs   = 100_000
	MaxRegionBytes   = 32
	MaxCreditCerts   = 16
	MaxTitleBytes    = 256
	MaxGovValueBytes = 256
	MaxUsageReport   = MaxResourceKind
	MaxMicroLat      = 90_000_000
	MaxMicroLon      = 180_000_000
	MaxReliability   = 10_000 // basis points
	MaxPolicyName    = 64
	MaxRevokeReason  = 256
)

// ResourceAmount is an amount (or a price) of one resource kind.
type ResourceAmount struct {
	_      struct{} `cbor:",toarray"`
	Kind   uint8    `json:"kind"`
	Amount uint64   `json:"amount"`
}

var regionPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,31}$`)

// validResources checks a per-kind list: known kinds, ascending, each once;
// zero amounts only when allowZero.
func validResources(what string, rs []ResourceAmount, allowZero bool) error {
	if len(rs) == 0 {
		return fmt.Errorf("%s: empty", what)
	}
	for i, r := range rs {
		if r.Kind == 0 || r.Kind > MaxResourceKind {
			return fmt.Errorf("%s: unknown resource kind %d (1 compute, 2 bandwidth, 3 energy, 4 storage)", what, r.Kind)
		}
		if i > 0 && rs[i-1].Kind >= r.Kind {
			return fmt.Errorf("%s: kinds must be ascending and unique", what)
		}
		if r.Amount == 0 && !allowZero {
			return fmt.Errorf("%s: zero amount of kind %d", what, r.Kind)
		}
	}
	return nil
}

// sameKinds reports whether two per-kind lists name the same kinds.
func sameKinds(a, b []ResourceAmount) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Kind != b[i].Kind {
			return false
		}
	}
	return true
}

func validPlace(region string, has bool, lat, lon int32) error {
	if region != "" && !regionPattern.MatchString(region) {
		return fmt.Errorf("region %q: 1-%d of a-z 0-9 . _ - starting with a letter or digit", region, MaxRegionBytes)
	}
	if !has && (lat != 0 || lon != 0) {
		return fmt.Errorf("coordinates given without has_location")
	}
	if lat < -MaxMicroLat || lat > MaxMicroLat {
		return fmt.Errorf("latitude %d micro-degrees outside ±90°", lat)
	}
	if lon < -MaxMicroLon || lon > MaxMicroLon {
		return fmt.Errorf("longitude %d micro-degrees outside ±180°", lon)
	}
	return nil
}

// RomeOffer offers a provider's resources: capacity per kind and a price per
// unit per epoch in each kind's own token (base units).
type RomeOffer struct {
	_           struct{}         `cbor:",toarray"`
	Capacity    []ResourceAmount `json:"capacity"`
	Price       []ResourceAmount `json:"price"`
	Region      string           `json:"region"`
	HasLocation bool             `json:"has_location"`
	Lat         int32            `json:"lat"` // micro-degrees
	Lon         int32            `json:"lon"`
	Attrs       uint64           `json:"attrs"`
	Reliability uint16           `json:"reliability"` // basis points
	// Availability window for new leases, in epochs: [FromEpoch, UntilEpoch);
	// UntilEpoch 0 means open-ended.
	FromEpoch  uint64 `json:"from_epoch"`
	UntilEpoch uint64 `json:"until_epoch"`
	// Node is the account address of the key of the node that runs the
	// offer's jobs (zero: the offer runs no jobs). Bond moves from the
	// provider to rome's bond account when the offer is accepted; slashing
	// takes from it, and it returns once the offer is closed and none of its
	// jobs is pending or challengeable.
	Node Address `json:"node"`
	Bond Coins   `json:"bond"`
}

// Kind implements Payload.
func (*RomeOffer) Kind() PayloadKind { return KindRomeOffer }

// ValidateBasic implements Payload.
func (p *RomeOffer) ValidateBasic() error {
	if err := validResources("capacity", p.Capacity, false); err != nil {
		return fmt.Errorf("ledger: rome offer: %w", err)
	}
	if err := validResources("price", p.Price, true); err != nil {
		return fmt.Errorf("ledger: rome offer: %w", err)
	}
	if !sameKinds(p.Capacity, p.Price) {
		return fmt.Errorf("ledger: rome offer: price must name exactly the kinds of capacity")
	}
	if err := validPlace(p.Region, p.HasLocation, p.Lat, p.Lon); err != nil {
		return fmt.Errorf("ledger: rome offer: %w", err)
	}
	if p.Reliability > MaxReliability {
		return fmt.Errorf("ledger: rome offer: reliability %d > %d basis points", p.Reliability, MaxReliability)
	}
	if p.UntilEpoch != 0 && p.UntilEpoch <= p.FromEpoch {
		return fmt.Errorf("ledger: rome offer: until_epoch %d not after from_epoch %d", p.UntilEpoch, p.FromEpoch)
	}
	if err := p.Bond.Validate(); err != nil {
		return fmt.Errorf("ledger: rome offer: bond: %w", err)
	}
	if len(p.Bond) > 0 && p.Node.IsZero() {
		return fmt.Errorf("ledger: rome offer: a bond backs the jobs of a node, and the offer names none")
	}
	return nil
}

// RomeRequest asks for resources for a number of epochs at most at a price
// per kind; its maximum cost is escrowed when it is accepted.
type RomeRequest struct {
	_              struct{}         `cbor:",toarray"`
	Demand         []ResourceAmount `json:"demand"`
	MaxPrice       []ResourceAmount `json:"max_price"`
	Epochs         uint32           `json:"epochs"`
	Region         string           `json:"region"`
	HasLocation    bool             `json:"has_location"`
	Lat            int32            `json:"lat"`
	Lon            int32            `json:"lon"`
	WithinKm       uint32           `json:"within_km"` // 0: no distance limit
	Attrs          uint64           `json:"attrs"`     // bits the offer must have
	MinReliability uint16           `json:"min_reliability"`
	Bundle         bool             `json:"bundle"`  // all kinds from one provider, in full
	Credits        []uint64         `json:"credits"` // certificate ids redeemed against the cost
	// Replicas > 0 asks for that many copies of the demand, each in full
	// from a distinct provider (Spread: also a distinct region), each
	// held by an offer that names a node and holds a bond; the escrow
	// covers every replica.
	Replicas uint16 `json:"replicas"`
	Spread   uint8  `json:"spread"`
	// MeterKinds has bit k-1 set for each kind k that must be paid by a
	// registered meter's signed readings only (not the parties' reports).
	MeterKinds uint8 `json:"meter_kinds"`
}

// Kind implements Payload.
func (*RomeRequest) Kind() PayloadKind { return KindRomeRequest }

// ValidateBasic implements Payload.
func (p *RomeRequest) ValidateBasic() error {
	if err := validResources("demand", p.Demand, false); err != nil {
		return fmt.Errorf("ledger: rome request: %w", err)
	}
	if err := validResources("max_price", p.MaxPrice, true); err != nil {
		return fmt.Errorf("ledger: rome request: %w", err)
	}
	if !sameKinds(p.Demand, p.MaxPrice) {
		return fmt.Errorf("ledger: rome request: max_price must name exactly the kinds of demand")
	}
	if p.Epochs == 0 || p.Epochs > MaxLeaseEpochs {
		return fmt.Errorf("ledger: rome request: epochs %d outside 1-%d", p.Epochs, MaxLeaseEpochs)
	}
	if err := validPlace(p.Region, p.HasLocation, p.Lat, p.Lon); err != nil {
		return fmt.Errorf("ledger: rome request: %w", err)
	}
	if p.WithinKm > 0 && !p.HasLocation {
		return fmt.Errorf("ledger: rome request: within_km needs a location (--near)")
	}
	if p.WithinKm > 40_075 {
		return fmt.Errorf("ledger: rome request: within_km %d exceeds the Earth's circumference", p.WithinKm)
	}
	if p.MinReliability > MaxReliability {
		return fmt.Errorf("ledger: rome request: min_reliability %d > %d basis points", p.MinReliability, MaxReliability)
	}
	if len(p.Credits) > MaxCreditCerts {
		return fmt.Errorf("ledger: rome request: %d credit certificates, limit %d", len(p.Credits), MaxCreditCerts)
	}
	for i := 1; i < len(p.Credits); i++ {
		if p.Credits[i-1] >= p.Credits[i] {
			return fmt.Errorf("ledger: rome request: credits must be ascending and unique")
		}
	}
	switch {
	case p.Replicas > MaxReplicas:
		return fmt.Errorf("ledger: rome request: %d replicas, limit %d", p.Replicas, MaxReplicas)
	case p.Replicas > 0 && p.Bundle:
		return fmt.Errorf("ledger: rome request: bundle and replicas together: each replica is already served whole by one provider")
	case p.Spread > SpreadRegion:
		return fmt.Errorf("ledger: rome request: spread %d (want 0 none, 1 region)", p.Spread)
	case p.Spread != SpreadNone && p.Replicas == 0:
		return fmt.Errorf("ledger: rome request: spread applies to replicas: give replicas")
	case p.MeterKinds>>MaxResourceKind != 0:
		return fmt.Errorf("ledger: rome request: meter kinds %#x name unknown resource kinds", p.MeterKinds)
	}
	for k := uint8(1); k <= MaxResourceKind; k++ {
		if p.MeterKinds&(1<<(k-1)) != 0 && !hasKind(p.Demand, k) {
			return fmt.Errorf("ledger: rome request: a meter is required for resource kind %d, which the request does not demand", k)
		}
	}
	return nil
}

func hasKind(rs []ResourceAmount, k uint8) bool {
	for _, r := range rs {
		if r.Kind == k {
			return true
		}
	}
	return false
}

// RomeCancel withdraws the sender's open offer or request.
type RomeCancel struct {
	_  struct{} `cbor:",toarray"`
	ID uint64   `json:"id"`
}

// Kind implements Payload.
func (*RomeCancel) Kind() PayloadKind { return KindRomeCancel }

// ValidateBasic implements Payload.
func (p *RomeCancel) ValidateBasic() error {
	if p.ID == 0 {
		return fmt.Errorf("ledger: rome cancel: id 0")
	}
	return nil
}

// RomeUsage is one party's report of what a lease delivered in an epoch.
type RomeUsage struct {
	_         struct{}         `cbor:",toarray"`
	LeaseID   uint64           `json:"lease_id"`
	Epoch     uint64           `json:"epoch"`
	Delivered []ResourceAmount `json:"delivered"`
}

// Kind implements Payload.
func (*RomeUsage) Kind() PayloadKind { return KindRomeUsage }

// ValidateBasic implements Payload.
func (p *RomeUsage) ValidateBasic() error {
	if p.LeaseID == 0 {
		return fmt.Errorf("ledger: rome usage: lease id 0")
	}
	if err := validResources("delivered", p.Delivered, true); err != nil {
		return fmt.Errorf("ledger: rome usage: %w", err)
	}
	return nil
}

// RomePolicyUpload stores an allocation policy (Wasm exporting allocate).
type RomePolicyUpload struct {
	_    struct{} `cbor:",toarray"`
	Name string   `json:"name"`
	Wasm []byte   `json:"-" cbor:"wasm"` // cbor tag: fxamacker would honour json:"-" and drop the field
}

// Kind implements Payload.
func (*RomePolicyUpload) Kind() PayloadKind { return KindRomePolicyUpload }

// ValidateBasic implements Payload.
func (p *RomePolicyUpload) ValidateBasic() error {
	if len(p.Name) == 0 || len(p.Name) > MaxPolicyName {
		return fmt.Errorf("ledger: policy upload: name must be 1-%d bytes", MaxPolicyName)
	}
	if len(p.Wasm) < 8 || string(p.Wasm[:4]) != "\x00asm" {
		return fmt.Errorf("ledger: policy upload: not a WebAssembly module (missing \\0asm header): %w", ErrMalformed)
	}
	return nil
}

// MarshalJSON shows the policy's name, size and id, not its bytes.
func (p *RomePolicyUpload) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprintf(`{"name":%q,"policy_id":%q,"size":%d}`, p.Name, HashBytes(p.Wasm), len(p.Wasm))), nil
}

// CertSign carries an issuer's ML-DSA signature over a pending
// certificate's canonical statement.
type CertSign struct {
	_         struct{} `cbor:",toarray"`
	CertID    uint64   `json:"cert_id"`
	Signature []byte   `json:"signature"`
}

// Kind implements Payload.
func (*CertSign) Kind() PayloadKind { return KindCertSign }

// ValidateBasic implements Payload.
func (p *CertSign) ValidateBasic() error {
	if p.CertID == 0 {
		return fmt.Errorf("ledger: cert sign: cert id 0")
	}
	if len(p.Signature) != SignatureSize {
		return fmt.Errorf("ledger: cert sign: signature is %d bytes, want %d: %w", len(p.Signature), SignatureSize, ErrInvalidSignature)
	}
	return nil
}

// CertRevoke revokes a certificate (its issuer or a governance member).
type CertRevoke struct {
	_      struct{} `cbor:",toarray"`
	CertID uint64   `json:"cert_id"`
	Reason string   `json:"reason"`
}

// Kind implements Payload.
func (*CertRevoke) Kind() PayloadKind { return KindCertRevoke }

// ValidateBasic implements Payload.
func (p *CertRevoke) ValidateBasic() error {
	if p.CertID == 0 {
		return fmt.Errorf("ledger: cert revoke: cert id 0")
	}
	if len(p.Reason) > MaxRevokeReason {
		return fmt.Errorf("ledger: cert revoke: reason longer than %d bytes", MaxRevokeReason)
	}
	return nil
}

// GovPropose files a proposal to change one market parameter (Param =
// Value); package rome lists the parameters and checks the value.
type GovPropose struct {
	_     struct{} `cbor:",toarray"`
	Title string   `json:"title"`
	Param string   `json:"param"`
	Value string   `json:"value"`
}

// Kind implements Payload.
func (*GovPropose) Kind() PayloadKind { return KindGovPropose }

// ValidateBasic implements Payload.
func (p *GovPropose) ValidateBasic() error {
	if len(p.Title) > MaxTitleBytes {
		return fmt.Errorf("ledger: gov propose: title longer than %d bytes", MaxTitleBytes)
	}
	if p.Param == "" || len(p.Param) > 64 {
		return fmt.Errorf("ledger: gov propose: param must be 1-64 bytes")
	}
	if len(p.Value) > MaxGovValueBytes {
		return fmt.Errorf("ledger: gov propose: value longer than %d bytes", MaxGovValueBytes)
	}
	return nil
}

// Vote options.
const (
	VoteYes     uint8 = 1
	VoteNo      uint8 = 2
	VoteAbstain uint8 = 3
)

// GovVote votes on an open proposal (a later vote replaces an earlier one).
type GovVote struct {
	_          struct{} `cbor:",toarray"`
	ProposalID uint64   `json:"proposal_id"`
	Option     uint8    `json:"option"` // 1 yes, 2 no, 3 abstain
}

// Kind implements Payload.
func (*GovVote) Kind() PayloadKind { return KindGovVote }

// ValidateBasic implements Payload.
func (p *GovVote) ValidateBasic() error {
	if p.ProposalID == 0 {
		return fmt.Errorf("ledger: gov vote: proposal id 0")
	}
	if p.Option < VoteYes || p.Option > VoteAbstain {
		return fmt.Errorf("ledger: gov vote: option %d (want 1 yes, 2 no, 3 abstain)", p.Option)
	}
	return nil
}

// newMarketPayload returns an empty market or governance payload of kind k,
// or nil.
func newMarketPayload(k PayloadKind) Payload {
	switch k {
	case KindRomeOffer:
		return &RomeOffer{}
	case KindRomeRequest:
		return &RomeRequest{}
	case KindRomeCancel:
		return &RomeCancel{}
	case KindRomeUsage:
		return &RomeUsage{}
	case KindRomePolicyUpload:
		return &RomePolicyUpload{}
	case KindCertSign:
		return &CertSign{}
	case KindCertRevoke:
		return &CertRevoke{}
	case KindGovPropose:
		return &GovPropose{}
	case KindGovVote:
		return &GovVote{}
	}
	return newJobPayload(k)
}

// marketKindName names market and governance kinds ("" if unknown).
func marketKindName(k PayloadKind) string {
	switch k {
	case KindRomeOffer:
		return "rome_offer"
	case KindRomeRequest:
		return "rome_request"
	case KindRomeCancel:
		return "rome_cancel"
	case KindRomeUsage:
		return "rome_usage"
	case KindRomePolicyUpload:
		return "rome_policy_upload"
	case KindCertSign:
		return "cert_sign"
	case KindCertRevoke:
		return "cert_revoke"
	case KindGovPropose:
		return "gov_propose"
	case KindGovVote:
		return "gov_vote"
	}
	return jobKindName(k)
}
