package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
)

// ROME market API types. Resource maps are keyed by kind name (compute,
// bandwidth, energy, storage); amounts are units of the resource, prices
// are amounts of the kind's token per unit per epoch ("5uTFLP").

// RomeOffer is a provider's offer.
type RomeOffer struct {
	ID          uint64            `json:"id"`
	Owner       string            `json:"owner"`
	Status      string            `json:"status"`
	Capacity    map[string]uint64 `json:"capacity"`
	Leased      map[string]uint64 `json:"leased"`
	Price       map[string]string `json:"price"`
	Region      string            `json:"region,omitempty"`
	At          string            `json:"at,omitempty"` // "lat,lon" in degrees
	Attrs       uint64            `json:"attrs"`
	Reliability uint16            `json:"reliability_bps"`
	FromEpoch   uint64            `json:"from_epoch"`
	UntilEpoch  uint64            `json:"until_epoch,omitempty"`
	Height      uint64            `json:"height"`
	// Node is the account address of the key of the node that runs the
	// offer's jobs ("" : the offer runs no jobs); Bond backs them (held by
	// the market, returned once the offer is closed and none of its jobs
	// is pending or challengeable), Slashed is what challenges took from it
	// and OpenJobs how many jobs of its ended leases it still backs (jobs of
	// active leases are not counted: the lease keeps the bond anyway).
	Node     string `json:"node,omitempty"`
	Bond     []Coin `json:"bond"`
	Slashed  []Coin `json:"slashed"`
	OpenJobs uint32 `json:"open_jobs"`
}

// RomeRequest is a consumer's request and its escrow.
type RomeRequest struct {
	ID             uint64            `json:"id"`
	Owner          string            `json:"owner"`
	Status         string            `json:"status"`
	Demand         map[string]uint64 `json:"demand"`
	Remaining      map[string]uint64 `json:"remaining"`
	MaxPrice       map[string]string `json:"max_price"`
	Epochs         uint32            `json:"epochs"`
	Region         string            `json:"region,omitempty"`
	Near           string            `json:"near,omitempty"`
	WithinKm       uint32            `json:"within_km,omitempty"`
	Attrs          uint64            `json:"attrs"`
	MinReliability uint16            `json:"min_reliability_bps"`
	Bundle         bool              `json:"bundle"`
	Escrow         []Coin            `json:"escrow"`
	Credit         []Coin            `json:"credit"`
	Spent          []Coin            `json:"spent"`
	Refunded       []Coin            `json:"refunded"`
	Epoch          uint64            `json:"epoch"`
	LiveLeases     uint32            `json:"live_leases"`
	Height         uint64            `json:"height"`
	// Replicas: whole copies of the demand on distinct providers (0: an
	// ordinary request); Spread "region": in distinct regions too;
	// OpenReplicas wait for a lease; every replica ends at EndEpoch;
	// Repairs counts replicas moved after missed storage proofs.
	Replicas     uint16 `json:"replicas,omitempty"`
	Spread       string `json:"spread,omitempty"`
	OpenReplicas uint16 `json:"open_replicas,omitempty"`
	EndEpoch     uint64 `json:"end_epoch,omitempty"`
	Repairs      uint32 `json:"repairs,omitempty"`
	// MeterKinds are the kinds paid by meter readings only.
	MeterKinds []string `json:"meter_kinds,omitempty"`
	// Pins and PinnedBytes: the blobs pinned to the request.
	Pins        uint32 `json:"pins"`
	PinnedBytes uint64 `json:"pinned_bytes"`
}

// RomeLease is an allocation of an offer to a request for epochs
// [start_epoch, end_epoch).
type RomeLease struct {
	ID         uint64            `json:"id"`
	RequestID  uint64            `json:"request_id"`
	OfferID    uint64            `json:"offer_id"`
	Provider   string            `json:"provider"`
	Consumer   string            `json:"consumer"`
	Amounts    map[string]uint64 `json:"amounts"`
	Prices     map[string]string `json:"prices"`
	StartEpoch uint64            `json:"start_epoch"`
	EndEpoch   uint64            `json:"end_epoch"`
	Status     string            `json:"status"`
	Paid       []Coin            `json:"paid"`
	Disputes   uint32            `json:"disputes"`
	// EndedEarly: the lease lost its replica after missed storage proofs.
	EndedEarly bool `json:"ended_early,omitempty"`
	// SettledToEpoch: the epochs before it are paid; epochs with nothing
	// to weigh are paid at the latest at the end of NextSettleEpoch
	// (docs/rome.md, "When an epoch is paid").
	SettledToEpoch  uint64 `json:"settled_to_epoch"`
	NextSettleEpoch uint64 `json:"next_settle_epoch,omitempty"`
}

// RomeKindStat is one resource kind in an epoch.
type RomeKindStat struct {
	Kind           string  `json:"kind"`
	Capacity       uint64  `json:"capacity"`
	Leased         uint64  `json:"leased"`
	Demand         uint64  `json:"demand"`
	Matched        uint64  `json:"matched"`
	UtilizationBps uint32  `json:"utilization_bps"`
	Utilization    float64 `json:"utilization_pct"`
	ClearingPrice  string  `json:"clearing_price"`
}

// RomeEpoch is what an epoch did.
type RomeEpoch struct {
	Epoch      uint64         `json:"epoch"`
	Height     uint64         `json:"height"`
	Policy     string         `json:"policy"`
	PolicyGas  uint64         `json:"policy_gas"`
	Rejected   string         `json:"rejected,omitempty"`
	Offers     uint32         `json:"offers"`
	Requests   uint32         `json:"requests"`
	NewLeases  uint32         `json:"new_leases"`
	MatchedBps uint32         `json:"matched_bps"`
	Matched    float64        `json:"matched_pct"`
	Kinds      []RomeKindStat `json:"kinds"`
	Paid       []Coin         `json:"paid"`
	Refunded   []Coin         `json:"refunded"`
	Rewards    []Coin         `json:"rewards"`
	Disputes   uint32         `json:"disputes"`
	Certs      uint32         `json:"certs"`
	Events     []Event        `json:"events"`

	// Interrupted: the active policy trapped or ran out of gas after
	// handing in the allocation used ("out of gas", "trap", ...).
	Interrupted string `json:"interrupted,omitempty"`
}

// RomeMarket summarizes the market now.
type RomeMarket struct {
	Height         uint64             `json:"height"`
	Epoch          uint64             `json:"epoch"`
	EpochEndHeight uint64             `json:"epoch_end_height"`
	EpochBlocks    uint64             `json:"epoch_blocks"`
	ActivePolicy   string             `json:"active_policy"`
	FallbackPolicy string             `json:"fallback_policy"`
	OpenOffers     int                `json:"open_offers"`
	OpenRequests   int                `json:"open_requests"`
	LiveLeases     int                `json:"live_leases"`
	PendingCerts   int                `json:"pending_certs"`
	PendingJobs    int                `json:"pending_jobs"`    // waiting for their node's result
	Challenges     int                `json:"challenges"`      // challenged jobs waiting for verdicts
	Utilization    map[string]float64 `json:"utilization_pct"` // last epoch, per kind
	Matched        float64            `json:"matched_pct"`     // last epoch
	ClearingPrices map[string]string  `json:"clearing_prices"` // last epoch, per kind
	LastEpoch      *RomeEpoch         `json:"last_epoch,omitempty"`
}

// RomePolicy is an uploaded allocation policy.
type RomePolicy struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Uploader string `json:"uploader"`
	Size     uint32 `json:"size"`
	Height   uint64 `json:"height"`
	Active   bool   `json:"active"`
}

// CertStatement is what a certificate's issuer signs (see rome.Statement).
type CertStatement struct {
	Version      uint8  `json:"version"`
	ChainID      string `json:"chain_id"`
	ID           uint64 `json:"cert_id"`
	NodeID       string `json:"node_id"`
	Kind         uint8  `json:"kind"`
	Amount       uint64 `json:"amount"`
	FromEpoch    uint64 `json:"from_epoch"`
	ToEpoch      uint64 `json:"to_epoch"`
	Issuer       string `json:"issuer"`
	IssuedHeight uint64 `json:"issued_height"`
	// Measured says how the amount was established: "runtime" (jobs'
	// metered VM and data plane), "proofs" (storage proofs), "meter <id>"
	// (a registered device's signed readings) or "reported" (both parties
	// reported it alike). It is part of what the issuer signs.
	Measured string `json:"measured"`
}

// Certificate is a certificate in its offline-verifiable form.
type Certificate struct {
	Statement    CertStatement `json:"statement"`
	KindName     string        `json:"kind_name"`
	IssuerKey    string        `json:"issuer_key"`
	Signature    string        `json:"signature"`
	Revoked      bool          `json:"revoked"`
	RevokeReason string        `json:"revoke_reason,omitempty"`
	Redeemed     uint64        `json:"redeemed"`
	Status       string        `json:"status"`
}

// GovVote is one vote.
type GovVote struct {
	Voter  string `json:"voter"`
	Option string `json:"option"`
	Weight uint64 `json:"weight"`
	Height uint64 `json:"height"`
}

// GovProposal is a governance proposal.
type GovProposal struct {
	ID          uint64    `json:"id"`
	Proposer    string    `json:"proposer"`
	Title       string    `json:"title"`
	Param       string    `json:"param"`
	Value       string    `json:"value"`
	SubmitHt    uint64    `json:"submit_height"`
	EndHeight   uint64    `json:"end_height"`
	Status      string    `json:"status"`
	Yes         uint64    `json:"yes"`
	No          uint64    `json:"no"`
	Abstain     uint64    `json:"abstain"`
	TotalWeight uint64    `json:"total_weight"`
	Result      string    `json:"result,omitempty"`
	Votes       []GovVote `json:"votes,omitempty"`
}

// RomeFilter narrows list queries; zero values mean "any".
type RomeFilter struct {
	Owner  string // address
	Status string // open, active, ... or "all"
	Limit  int
}

func (f RomeFilter) query() string {
	v := url.Values{}
	if f.Owner != "" {
		v.Set("owner", f.Owner)
	}
	if f.Status != "" {
		v.Set("status", f.Status)
	}
	if f.Limit > 0 {
		v.Set("limit", strconv.Itoa(f.Limit))
	}
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// RomeOffers lists offers, newest first.
func (c *Client) RomeOffers(ctx context.Context, f RomeFilter) ([]RomeOffer, error) {
	var out []RomeOffer
	return out, c.GetJSON(ctx, "/v1/rome/offers"+f.query(), &out)
}

// RomeRequests lists requests, newest first.
func (c *Client) RomeRequests(ctx context.Context, f RomeFilter) ([]RomeRequest, error) {
	var out []RomeRequest
	return out, c.GetJSON(ctx, "/v1/rome/requests"+f.query(), &out)
}

// RomeLeases lists leases, newest first.
func (c *Client) RomeLeases(ctx context.Context, f RomeFilter) ([]RomeLease, error) {
	var out []RomeLease
	return out, c.GetJSON(ctx, "/v1/rome/leases"+f.query(), &out)
}

// RomeMarket returns the market summary.
func (c *Client) RomeMarket(ctx context.Context) (*RomeMarket, error) {
	var out RomeMarket
	return &out, c.GetJSON(ctx, "/v1/rome/market", &out)
}

// RomeEpochs lists epoch records, newest first.
func (c *Client) RomeEpochs(ctx context.Context, limit int) ([]RomeEpoch, error) {
	var out []RomeEpoch
	return out, c.GetJSON(ctx, "/v1/rome/epochs"+RomeFilter{Limit: limit}.query(), &out)
}

// RomePolicies lists uploaded policies.
func (c *Client) RomePolicies(ctx context.Context) ([]RomePolicy, error) {
	var out []RomePolicy
	return out, c.GetJSON(ctx, "/v1/rome/policies", &out)
}

// RomeParams returns the current market and governance parameters.
func (c *Client) RomeParams(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	return out, c.GetJSON(ctx, "/v1/rome/params", &out)
}

// Certificates lists certificates, optionally of one node (account address).
func (c *Client) Certificates(ctx context.Context, nodeID string) ([]Certificate, error) {
	var out []Certificate
	p := "/v1/certs"
	if nodeID != "" {
		p += "?node_id=" + url.QueryEscape(nodeID)
	}
	return out, c.GetJSON(ctx, p, &out)
}

// Certificate returns one certificate.
func (c *Client) Certificate(ctx context.Context, id uint64) (*Certificate, error) {
	var out Certificate
	return &out, c.GetJSON(ctx, fmt.Sprintf("/v1/certs/%d", id), &out)
}

// GovProposals lists proposals, newest first.
func (c *Client) GovProposals(ctx context.Context) ([]GovProposal, error) {
	var out []GovProposal
	return out, c.GetJSON(ctx, "/v1/gov/proposals", &out)
}

// GovProposal returns a proposal with its votes.
func (c *Client) GovProposal(ctx context.Context, id uint64) (*GovProposal, error) {
	var out GovProposal
	return &out, c.GetJSON(ctx, fmt.Sprintf("/v1/gov/proposals/%d", id), &out)
}
