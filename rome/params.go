package rome

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

// Resource kinds (fixed ids shared with the policy ABI).
const (
	KindCompute   uint8 = 1
	KindBandwidth uint8 = 2
	KindEnergy    uint8 = 3
	KindStorage   uint8 = 4
)

var kindNames = [...]string{"", "compute", "bandwidth", "energy", "storage"}
var kindDenoms = [...]string{"", "uTFLP", "uTBS", "uKWTT", "uSTOR"}

// KindName names a resource kind ("" if unknown).
func KindName(k uint8) string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return ""
}

// KindDenom is the base denom a kind settles in ("" if unknown).
func KindDenom(k uint8) string {
	if int(k) < len(kindDenoms) {
		return kindDenoms[k]
	}
	return ""
}

// ParseKind maps a kind name ("compute") or id ("1") to its id.
func ParseKind(s string) (uint8, error) {
	for i, n := range kindNames {
		if i > 0 && n == s {
			return uint8(i), nil
		}
	}
	if v, err := strconv.ParseUint(s, 10, 8); err == nil && v >= 1 && v <= ledger.MaxResourceKind {
		return uint8(v), nil
	}
	return 0, fmt.Errorf("rome: unknown resource kind %q (compute, bandwidth, energy, storage)", s)
}

// Member is a governance member with a base voting weight (attested
// contribution is added to it).
type Member struct {
	Address ledger.Address `json:"address"`
	Weight  uint64         `json:"weight"`
}

// Params are the market and governance parameters. Genesis sets them
// (extra.rome and extra.gov); passed proposals change them, and the current
// values live in state.
type Params struct {
	EpochBlocks      uint64   `json:"epoch_blocks"`       // blocks per epoch
	PolicyGas        uint64   `json:"policy_gas"`         // gas budget of one policy run
	RequestTTLEpochs uint64   `json:"request_ttl_epochs"` // an unmatched request expires (and refunds) after this
	CertPeriodEpochs uint64   `json:"cert_period_epochs"` // certificates are issued every this many epochs
	RewardDenom      string   `json:"reward_denom"`
	RewardPerEpoch   uint64   `json:"reward_per_epoch"` // base units minted per epoch to attested contributors
	RewardHalving    uint64   `json:"reward_halving"`   // epochs between halvings of RewardPerEpoch; 0: never
	ActivePolicy     string   `json:"active_policy"`    // policy id (hex); "" runs the built-in fallback
	FallbackPolicy   string   `json:"fallback_policy"`  // "greedy" (built-in best fit) or "none"
	MinGasPrices     string   `json:"min_gas_prices"`   // advisory floor for nodes' mempools ("" = node config)
	Issuers          []string `json:"issuers"`          // ML-DSA public keys (hex) that sign certificates
	QuorumBps        uint64   `json:"quorum_bps"`       // share of total weight that must vote
	ThresholdBps     uint64   `json:"threshold_bps"`    // share of yes among yes+no needed to pass
	VotingPeriod     uint64   `json:"voting_period_blocks"`
	Members          []Member `json:"members"`
}

// romeGenesis and govGenesis are the genesis sections (strict JSON).
type romeGenesis struct {
	EpochBlocks      uint64   `json:"epoch_blocks"`
	PolicyGas        uint64   `json:"policy_gas"`
	RequestTTLEpochs uint64   `json:"request_ttl_epochs"`
	CertPeriodEpochs uint64   `json:"cert_period_epochs"`
	Reward           reward   `json:"reward"`
	ActivePolicy     string   `json:"active_policy,omitempty"`
	FallbackPolicy   string   `json:"fallback_policy,omitempty"`
	MinGasPrices     string   `json:"min_gas_prices,omitempty"`
	Issuers          []string `json:"issuers,omitempty"`
}

type reward struct {
	Denom         string `json:"denom"`
	PerEpoch      uint64 `json:"per_epoch,string"`
	HalvingEpochs uint64 `json:"halving_epochs"`
}

type govGenesis struct {
	Members      []Member `json:"members"`
	QuorumBps    uint64   `json:"quorum_bps"`
	ThresholdBps uint64   `json:"threshold_bps"`
	VotingPeriod uint64   `json:"voting_period_blocks"`
}

// DefaultParams suit a devnet with 500 ms blocks: 5 s epochs, 10 s votes.
func DefaultParams() Params {
	return Params{
		EpochBlocks: 10, PolicyGas: 2_000_000_000, RequestTTLEpochs: 20, CertPeriodEpochs: 3,
		RewardDenom: "uTFLP", RewardPerEpoch: 1_000_000, RewardHalving: 100_000,
		FallbackPolicy: "greedy", QuorumBps: 3_340, ThresholdBps: 5_000, VotingPeriod: 20,
	}
}

// DefaultMemberWeight is the base weight "sos init" gives its node: large
// against early contributions (attested units), so a fresh devnet's
// operator can govern alone until contributors have delivered about as much.
const DefaultMemberWeight = 1_000_000

// GenesisSections returns default extra.rome and extra.gov sections with
// node as the only governance member and certificate issuer ("sos init").
func GenesisSections(node ledger.PublicKey) (romeJSON, govJSON json.RawMessage, err error) {
	p := DefaultParams()
	r := romeGenesis{EpochBlocks: p.EpochBlocks, PolicyGas: p.PolicyGas, RequestTTLEpochs: p.RequestTTLEpochs,
		CertPeriodEpochs: p.CertPeriodEpochs, Reward: reward{Denom: p.RewardDenom, PerEpoch: p.RewardPerEpoch, HalvingEpochs: p.RewardHalving},
		FallbackPolicy: p.FallbackPolicy, Issuers: []string{hex.EncodeToString(node.Bytes())}}
	g := govGenesis{Members: []Member{{Address: node.Address(), Weight: DefaultMemberWeight}}, QuorumBps: p.QuorumBps, ThresholdBps: p.ThresholdBps, VotingPeriod: p.VotingPeriod}
	if romeJSON, err = json.Marshal(r); err != nil {
		return nil, nil, err
	}
	govJSON, err = json.Marshal(g)
	return romeJSON, govJSON, err
}

func strictJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data")
	}
	return nil
}

// ParamsFromGenesis reads extra.rome and extra.gov over the defaults. With
// no issuers listed, every genesis node issues; with no members, every
// genesis node's account is a member of weight 1.
func ParamsFromGenesis(g *ledger.Genesis) (Params, error) {
	p := DefaultParams()
	if raw, ok := g.Extra["rome"]; ok {
		var r romeGenesis
		if err := strictJSON(raw, &r); err != nil {
			return p, fmt.Errorf("rome: genesis extra.rome: %w", err)
		}
		p.EpochBlocks, p.PolicyGas, p.RequestTTLEpochs, p.CertPeriodEpochs = r.EpochBlocks, r.PolicyGas, r.RequestTTLEpochs, r.CertPeriodEpochs
		p.RewardDenom, p.RewardPerEpoch, p.RewardHalving = r.Reward.Denom, r.Reward.PerEpoch, r.Reward.HalvingEpochs
		p.ActivePolicy, p.MinGasPrices, p.Issuers = r.ActivePolicy, r.MinGasPrices, r.Issuers
		if r.FallbackPolicy != "" {
			p.FallbackPolicy = r.FallbackPolicy
		}
	}
	if raw, ok := g.Extra["gov"]; ok {
		var gv govGenesis
		if err := strictJSON(raw, &gv); err != nil {
			return p, fmt.Errorf("rome: genesis extra.gov: %w", err)
		}
		p.Members, p.QuorumBps, p.ThresholdBps, p.VotingPeriod = gv.Members, gv.QuorumBps, gv.ThresholdBps, gv.VotingPeriod
	}
	keys, err := g.NodePubKeys()
	if err != nil {
		return p, err
	}
	if len(p.Issuers) == 0 {
		for _, k := range keys {
			p.Issuers = append(p.Issuers, hex.EncodeToString(k.Bytes()))
		}
	}
	if len(p.Members) == 0 {
		for _, k := range keys {
			p.Members = append(p.Members, Member{Address: k.Address(), Weight: 1})
		}
	}
	if err := p.Validate(g.DenomSet()); err != nil {
		return p, err
	}
	return p, nil
}

// Validate rejects parameters the market cannot run with.
func (p *Params) Validate(denoms *ledger.Denoms) error {
	switch {
	case p.EpochBlocks == 0 || p.EpochBlocks > 1_000_000:
		return fmt.Errorf("rome: params: epoch_blocks %d must be 1-1000000", p.EpochBlocks)
	case p.PolicyGas == 0 || p.PolicyGas > vm.MaxPolicyGas:
		return fmt.Errorf("rome: params: policy_gas %d must be 1-%d", p.PolicyGas, uint64(vm.MaxPolicyGas))
	case p.RequestTTLEpochs == 0:
		return fmt.Errorf("rome: params: request_ttl_epochs must be > 0")
	case p.CertPeriodEpochs == 0:
		return fmt.Errorf("rome: params: cert_period_epochs must be > 0")
	case p.RewardPerEpoch > 0 && !denoms.IsBase(p.RewardDenom):
		return fmt.Errorf("rome: params: reward denom %q: %w", p.RewardDenom, ledger.ErrUnknownDenom)
	case p.FallbackPolicy != "greedy" && p.FallbackPolicy != "none":
		return fmt.Errorf("rome: params: fallback_policy %q (want greedy or none)", p.FallbackPolicy)
	case p.QuorumBps > 10_000 || p.ThresholdBps > 10_000:
		return fmt.Errorf("rome: params: quorum_bps and threshold_bps are basis points (≤ 10000)")
	case p.VotingPeriod == 0:
		return fmt.Errorf("rome: params: voting_period_blocks must be > 0")
	}
	if p.ActivePolicy != "" {
		if _, err := ledger.ParseHash(p.ActivePolicy); err != nil {
			return fmt.Errorf("rome: params: active_policy: %w", err)
		}
	}
	if p.MinGasPrices != "" {
		if _, err := denoms.ParseGasPrices(p.MinGasPrices); err != nil {
			return fmt.Errorf("rome: params: min_gas_prices: %w", err)
		}
	}
	for i, s := range p.Issuers {
		raw, err := hex.DecodeString(s)
		if err != nil {
			return fmt.Errorf("rome: params: issuer %d is not hex", i)
		}
		if _, err := ledger.ParsePublicKey(raw); err != nil {
			return fmt.Errorf("rome: params: issuer %d: %w", i, err)
		}
	}
	seen := map[ledger.Address]bool{}
	for _, m := range p.Members {
		if m.Address.IsZero() || seen[m.Address] {
			return fmt.Errorf("rome: params: member %s zero or listed twice", m.Address)
		}
		seen[m.Address] = true
	}
	return nil
}

// GovParams lists the parameters a proposal may change.
var GovParams = []string{
	"active_policy", "fallback_policy", "epoch_blocks", "policy_gas", "request_ttl_epochs", "cert_period_epochs",
	"reward_per_epoch", "reward_halving", "min_gas_prices", "quorum_bps", "threshold_bps", "voting_period_blocks",
}

// With returns p with one parameter changed (as a proposal would), or an
// error naming what is wrong with the value.
func (p Params) With(name, value string, denoms *ledger.Denoms) (Params, error) {
	num := func() (uint64, error) {
		v, err := strconv.ParseUint(strings.TrimSpace(value), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("rome: %s: %q is not a non-negative integer: %w", name, value, ErrInvalid)
		}
		return v, nil
	}
	var err error
	switch name {
	case "active_policy":
		switch value {
		case "", "builtin", "fallback", "none":
			p.ActivePolicy = ""
		default:
			h, herr := ledger.ParseHash(value)
			if herr != nil {
				return p, fmt.Errorf("rome: active_policy: %w: %w", herr, ErrInvalid)
			}
			p.ActivePolicy = h.String()
		}
	case "fallback_policy":
		p.FallbackPolicy = value
	case "epoch_blocks":
		p.EpochBlocks, err = num()
	case "policy_gas":
		p.PolicyGas, err = num()
	case "request_ttl_epochs":
		p.RequestTTLEpochs, err = num()
	case "cert_period_epochs":
		p.CertPeriodEpochs, err = num()
	case "reward_per_epoch":
		p.RewardPerEpoch, err = num()
	case "reward_halving":
		p.RewardHalving, err = num()
	case "min_gas_prices":
		p.MinGasPrices = value
	case "quorum_bps":
		p.QuorumBps, err = num()
	case "threshold_bps":
		p.ThresholdBps, err = num()
	case "voting_period_blocks":
		p.VotingPeriod, err = num()
	default:
		return p, fmt.Errorf("rome: unknown governance parameter %q (one of %s): %w", name, strings.Join(GovParams, ", "), ErrInvalid)
	}
	if err != nil {
		return p, err
	}
	if verr := p.Validate(denoms); verr != nil {
		return p, fmt.Errorf("%w: %w", verr, ErrInvalid)
	}
	return p, nil
}
