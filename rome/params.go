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

// kindDenoms are the tokens kinds settle in by default; storage's is the
// chain's choice (Params.StorageDenom, genesis only).
var kindDenoms = [...]string{"", "uTFLP", "uTBS", "uKWTT", "uTFLP"}

// KindName names a resource kind ("" if unknown).
func KindName(k uint8) string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return ""
}

// KindDenom is the base denom a kind settles in by default ("" if
// unknown); a chain may settle storage in another token
// (Market.KindDenom).
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
	CertPeriodEpochs uint64   `json:"cert_period_epochs"` // each contributor is certified every this many epochs, at its own phase (certPhase)
	RewardDenom      string   `json:"reward_denom"`
	RewardPerEpoch   uint64   `json:"reward_per_epoch"` // base units minted per epoch to attested contributors
	RewardHalving    uint64   `json:"reward_halving"`   // epochs between halvings of RewardPerEpoch; 0: never
	ActivePolicy     string   `json:"active_policy"`    // policy id (hex); "" runs the built-in fallback
	FallbackPolicy   string   `json:"fallback_policy"`  // "greedy" (the built-in fallback: the better of FirstCome and Greedy) or "none"
	MinGasPrices     string   `json:"min_gas_prices"`   // advisory floor for nodes' mempools ("" = node config)
	Issuers          []string `json:"issuers"`          // ML-DSA public keys (hex) that sign certificates
	QuorumBps        uint64   `json:"quorum_bps"`       // share of total weight that must vote
	ThresholdBps     uint64   `json:"threshold_bps"`    // share of yes among yes+no needed to pass
	VotingPeriod     uint64   `json:"voting_period_blocks"`
	Members          []Member `json:"members"`

	// Workloads (jobs on a lease's provider node).
	GasPerComputeUnit     uint64 `json:"gas_per_compute_unit"`     // a compute unit per epoch buys this much job gas
	BytesPerBandwidthUnit uint64 `json:"bytes_per_bandwidth_unit"` // a bandwidth unit per epoch moves this many bytes
	JobTimeoutBlocks      uint64 `json:"job_timeout_blocks"`       // a job without a result after this many blocks times out
	JobChallengeBlocks    uint64 `json:"job_challenge_blocks"`     // a result may be challenged for this many blocks
	JobVerdictBlocks      uint64 `json:"job_verdict_blocks"`       // the committee has this many blocks to decide a challenge
	JobChallengeDeposit   string `json:"job_challenge_deposit"`    // coins a challenger escrows ("1TFLP")
	JobSlashBps           uint64 `json:"job_slash_bps"`            // share of the remaining bond a proven-wrong provider loses
	JobVerifyAllGas       uint64 `json:"job_verify_all_gas"`       // a challenged job up to this gas is re-executed by every voter
	JobCommitteeSize      uint64 `json:"job_committee_size"`       // voters drawn to re-execute a larger challenged job
	MaxJobModuleBytes     uint64 `json:"max_job_module_bytes"`
	MaxJobMemoryBytes     uint64 `json:"max_job_memory_bytes"`
	MaxJobOutputBytes     uint64 `json:"max_job_output_bytes"`
	OutputRetentionEpochs uint64 `json:"output_retention_epochs"` // how long provider nodes keep job outputs

	// Storage leases (pinned blobs proven by challenges) and meters.
	BytesPerStorageUnit uint64 `json:"bytes_per_storage_unit"` // a storage unit per epoch holds this many bytes
	StorageSegments     uint64 `json:"storage_segments"`       // segments challenged per pinned blob per holder per epoch
	StorageGraceEpochs  uint64 `json:"storage_grace_epochs"`   // epochs a new holding has to fetch its blob before challenges start
	StorageSlashBps     uint64 `json:"storage_slash_bps"`      // share of the remaining bond a lease loses for an epoch with a missed proof
	StorageRepairMisses uint64 `json:"storage_repair_misses"`  // consecutive epochs with a miss after which a replica moves to another provider
	StorageSamples      uint64 `json:"storage_samples"`        // holdings sampled for challenges per node per epoch (with every holding missed the epoch before)
	StorageDenom        string `json:"storage_denom"`          // token storage settles in (genesis only)
	JoulesPerEnergyUnit uint64 `json:"joules_per_energy_unit"` // an energy unit per epoch is this many joules

	// SettleIntervalEpochs: a lease with nothing to weigh in an epoch (no
	// report, job, meter reading or storage due) is paid for it in full at
	// the latest this many epochs later, together with its other such
	// epochs (1: every epoch). See settle in epoch.go.
	SettleIntervalEpochs uint64 `json:"settle_interval_epochs"`
}

// settleInterval is SettleIntervalEpochs, 1 for state written before it
// existed.
func (p *Params) settleInterval() uint64 { return max(p.SettleIntervalEpochs, 1) }

// romeGenesis and govGenesis are the genesis sections (strict JSON).
type romeGenesis struct {
	EpochBlocks      uint64          `json:"epoch_blocks"`
	PolicyGas        uint64          `json:"policy_gas"`
	RequestTTLEpochs uint64          `json:"request_ttl_epochs"`
	CertPeriodEpochs uint64          `json:"cert_period_epochs"`
	Reward           reward          `json:"reward"`
	ActivePolicy     string          `json:"active_policy,omitempty"`
	FallbackPolicy   string          `json:"fallback_policy,omitempty"`
	MinGasPrices     string          `json:"min_gas_prices,omitempty"`
	Issuers          []string        `json:"issuers,omitempty"`
	Jobs             jobsGenesis     `json:"jobs"`
	Storage          *storageGenesis `json:"storage,omitempty"`
	Meters           *metersGenesis  `json:"meters,omitempty"`
	SettleInterval   uint64          `json:"settle_interval_epochs,omitempty"`
}

// storageGenesis is extra.rome.storage; fields left out keep their
// defaults.
type storageGenesis struct {
	BytesPerUnit uint64 `json:"bytes_per_unit"`
	Segments     uint64 `json:"segments"`
	GraceEpochs  uint64 `json:"grace_epochs"`
	SlashBps     uint64 `json:"slash_bps"`
	RepairMisses uint64 `json:"repair_misses"`
	Samples      uint64 `json:"samples"`
	Denom        string `json:"denom"`
}

func storageGenesisOf(p Params) *storageGenesis {
	return &storageGenesis{BytesPerUnit: p.BytesPerStorageUnit, Segments: p.StorageSegments, GraceEpochs: p.StorageGraceEpochs,
		SlashBps: p.StorageSlashBps, RepairMisses: p.StorageRepairMisses, Samples: p.StorageSamples, Denom: p.StorageDenom}
}

func (g *storageGenesis) apply(p *Params) {
	p.BytesPerStorageUnit, p.StorageSegments, p.StorageGraceEpochs = g.BytesPerUnit, g.Segments, g.GraceEpochs
	p.StorageSlashBps, p.StorageRepairMisses, p.StorageSamples, p.StorageDenom = g.SlashBps, g.RepairMisses, g.Samples, g.Denom
}

// metersGenesis is extra.rome.meters.
type metersGenesis struct {
	JoulesPerEnergyUnit uint64 `json:"joules_per_energy_unit"`
}

// jobsGenesis is extra.rome.jobs; fields left out keep their defaults.
type jobsGenesis struct {
	GasPerComputeUnit     uint64 `json:"gas_per_compute_unit"`
	BytesPerBandwidthUnit uint64 `json:"bytes_per_bandwidth_unit"`
	TimeoutBlocks         uint64 `json:"timeout_blocks"`
	ChallengeBlocks       uint64 `json:"challenge_blocks"`
	VerdictBlocks         uint64 `json:"verdict_blocks"`
	ChallengeDeposit      string `json:"challenge_deposit"`
	SlashBps              uint64 `json:"slash_bps"`
	VerifyAllGas          uint64 `json:"verify_all_gas"`
	CommitteeSize         uint64 `json:"committee_size"`
	MaxModuleBytes        uint64 `json:"max_module_bytes"`
	MaxMemoryBytes        uint64 `json:"max_memory_bytes"`
	MaxOutputBytes        uint64 `json:"max_output_bytes"`
	OutputRetentionEpochs uint64 `json:"output_retention_epochs"`
}

func jobsGenesisOf(p Params) jobsGenesis {
	return jobsGenesis{GasPerComputeUnit: p.GasPerComputeUnit, BytesPerBandwidthUnit: p.BytesPerBandwidthUnit,
		TimeoutBlocks: p.JobTimeoutBlocks, ChallengeBlocks: p.JobChallengeBlocks, VerdictBlocks: p.JobVerdictBlocks,
		ChallengeDeposit: p.JobChallengeDeposit, SlashBps: p.JobSlashBps, VerifyAllGas: p.JobVerifyAllGas, CommitteeSize: p.JobCommitteeSize,
		MaxModuleBytes: p.MaxJobModuleBytes, MaxMemoryBytes: p.MaxJobMemoryBytes, MaxOutputBytes: p.MaxJobOutputBytes,
		OutputRetentionEpochs: p.OutputRetentionEpochs}
}

func (j jobsGenesis) apply(p *Params) {
	p.GasPerComputeUnit, p.BytesPerBandwidthUnit = j.GasPerComputeUnit, j.BytesPerBandwidthUnit
	p.JobTimeoutBlocks, p.JobChallengeBlocks, p.JobVerdictBlocks = j.TimeoutBlocks, j.ChallengeBlocks, j.VerdictBlocks
	p.JobChallengeDeposit, p.JobSlashBps, p.JobVerifyAllGas, p.JobCommitteeSize = j.ChallengeDeposit, j.SlashBps, j.VerifyAllGas, j.CommitteeSize
	p.MaxJobModuleBytes, p.MaxJobMemoryBytes, p.MaxJobOutputBytes = j.MaxModuleBytes, j.MaxMemoryBytes, j.MaxOutputBytes
	p.OutputRetentionEpochs = j.OutputRetentionEpochs
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

// DefaultParams suit a devnet with 500 ms blocks: 5 s epochs, 10 s votes;
// a compute unit is one reference core-second of job gas per epoch, jobs
// time out after 10 minutes and may be challenged for 2.
func DefaultParams() Params {
	return Params{
		EpochBlocks: 10, PolicyGas: 2_000_000_000, RequestTTLEpochs: 20, CertPeriodEpochs: 3,
		RewardDenom: "uTFLP", RewardPerEpoch: 1_000_000, RewardHalving: 100_000,
		FallbackPolicy: "greedy", QuorumBps: 3_340, ThresholdBps: 5_000, VotingPeriod: 20,

		GasPerComputeUnit: 1_000_000_000, BytesPerBandwidthUnit: 1 << 20,
		JobTimeoutBlocks: 1200, JobChallengeBlocks: 240, JobVerdictBlocks: 240,
		JobChallengeDeposit: "1TFLP", JobSlashBps: 5_000, JobVerifyAllGas: 100_000_000_000, JobCommitteeSize: 3,
		MaxJobModuleBytes: 64 << 20, MaxJobMemoryBytes: 1 << 30, MaxJobOutputBytes: 256 << 20, OutputRetentionEpochs: 720,

		BytesPerStorageUnit: 1 << 30, StorageSegments: 1, StorageGraceEpochs: 1, StorageSlashBps: 100, StorageRepairMisses: 2, StorageSamples: DefaultStorageSamples,
		StorageDenom: "uTFLP", JoulesPerEnergyUnit: 1000,

		SettleIntervalEpochs: 10,
	}
}

// MaxJobMemory is the most a job's linear memory can be (wasm32: 65,536
// pages of 64 KiB).
const MaxJobMemory = 4 << 30

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
		FallbackPolicy: p.FallbackPolicy, Issuers: []string{hex.EncodeToString(node.Bytes())}, Jobs: jobsGenesisOf(p),
		Storage: storageGenesisOf(p), Meters: &metersGenesis{JoulesPerEnergyUnit: p.JoulesPerEnergyUnit}, SettleInterval: p.SettleIntervalEpochs}
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
		r := romeGenesis{Jobs: jobsGenesisOf(p), Storage: storageGenesisOf(p), Meters: &metersGenesis{JoulesPerEnergyUnit: p.JoulesPerEnergyUnit},
			SettleInterval: p.SettleIntervalEpochs}
		if err := strictJSON(raw, &r); err != nil {
			return p, fmt.Errorf("rome: genesis extra.rome: %w", err)
		}
		p.EpochBlocks, p.PolicyGas, p.RequestTTLEpochs, p.CertPeriodEpochs = r.EpochBlocks, r.PolicyGas, r.RequestTTLEpochs, r.CertPeriodEpochs
		p.RewardDenom, p.RewardPerEpoch, p.RewardHalving = r.Reward.Denom, r.Reward.PerEpoch, r.Reward.HalvingEpochs
		p.ActivePolicy, p.MinGasPrices, p.Issuers = r.ActivePolicy, r.MinGasPrices, r.Issuers
		if r.FallbackPolicy != "" {
			p.FallbackPolicy = r.FallbackPolicy
		}
		r.Jobs.apply(&p)
		if r.Storage != nil {
			r.Storage.apply(&p)
		}
		if r.Meters != nil {
			p.JoulesPerEnergyUnit = r.Meters.JoulesPerEnergyUnit
		}
		p.SettleIntervalEpochs = r.SettleInterval
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
	case p.GasPerComputeUnit == 0:
		return fmt.Errorf("rome: params: gas_per_compute_unit must be > 0")
	case p.BytesPerBandwidthUnit == 0:
		return fmt.Errorf("rome: params: bytes_per_bandwidth_unit must be > 0")
	case p.JobTimeoutBlocks == 0 || p.JobChallengeBlocks == 0 || p.JobVerdictBlocks == 0:
		return fmt.Errorf("rome: params: job_timeout_blocks, job_challenge_blocks and job_verdict_blocks must be > 0")
	case p.JobTimeoutBlocks > 10_000_000 || p.JobChallengeBlocks > 10_000_000 || p.JobVerdictBlocks > 10_000_000:
		return fmt.Errorf("rome: params: job block windows must be ≤ 10000000")
	case p.JobSlashBps > 10_000:
		return fmt.Errorf("rome: params: job_slash_bps is basis points (≤ 10000)")
	case p.JobCommitteeSize == 0 || p.JobCommitteeSize > 1000:
		return fmt.Errorf("rome: params: job_committee_size %d must be 1-1000", p.JobCommitteeSize)
	case p.MaxJobModuleBytes == 0 || p.MaxJobOutputBytes == 0:
		return fmt.Errorf("rome: params: max_job_module_bytes and max_job_output_bytes must be > 0")
	case p.MaxJobMemoryBytes == 0 || p.MaxJobMemoryBytes > MaxJobMemory:
		return fmt.Errorf("rome: params: max_job_memory_bytes %d must be 1-%d", p.MaxJobMemoryBytes, uint64(MaxJobMemory))
	case p.BytesPerStorageUnit == 0:
		return fmt.Errorf("rome: params: bytes_per_storage_unit must be > 0")
	case p.StorageSegments == 0 || p.StorageSegments > ledger.MaxStorageSegments:
		return fmt.Errorf("rome: params: storage_segments %d must be 1-%d", p.StorageSegments, ledger.MaxStorageSegments)
	case p.StorageGraceEpochs > 1000:
		return fmt.Errorf("rome: params: storage_grace_epochs %d must be ≤ 1000", p.StorageGraceEpochs)
	case p.StorageSlashBps > 10_000:
		return fmt.Errorf("rome: params: storage_slash_bps is basis points (≤ 10000)")
	case p.StorageRepairMisses == 0 || p.StorageRepairMisses > 1000:
		return fmt.Errorf("rome: params: storage_repair_misses %d must be 1-1000", p.StorageRepairMisses)
	case p.StorageSamples == 0 || p.StorageSamples > MaxStorageSamples:
		return fmt.Errorf("rome: params: storage_samples %d must be 1-%d", p.StorageSamples, MaxStorageSamples)
	case !denoms.IsBase(p.StorageDenom):
		return fmt.Errorf("rome: params: storage_denom %q: %w", p.StorageDenom, ledger.ErrUnknownDenom)
	case p.JoulesPerEnergyUnit == 0:
		return fmt.Errorf("rome: params: joules_per_energy_unit must be > 0")
	case p.SettleIntervalEpochs == 0 || p.SettleIntervalEpochs > 1_000_000:
		return fmt.Errorf("rome: params: settle_interval_epochs %d must be 1-1000000", p.SettleIntervalEpochs)
	}
	if _, err := denoms.ParseCoins(p.JobChallengeDeposit); err != nil {
		return fmt.Errorf("rome: params: job_challenge_deposit: %w", err)
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
	"gas_per_compute_unit", "bytes_per_bandwidth_unit", "job_timeout_blocks", "job_challenge_blocks", "job_verdict_blocks",
	"job_challenge_deposit", "job_slash_bps", "job_verify_all_gas", "job_committee_size", "max_job_module_bytes",
	"max_job_memory_bytes", "max_job_output_bytes", "output_retention_epochs",
	"bytes_per_storage_unit", "storage_segments", "storage_grace_epochs", "storage_slash_bps", "storage_repair_misses",
	"storage_samples", "joules_per_energy_unit", "settle_interval_epochs", "issuers",
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
	case "gas_per_compute_unit":
		p.GasPerComputeUnit, err = num()
	case "bytes_per_bandwidth_unit":
		p.BytesPerBandwidthUnit, err = num()
	case "job_timeout_blocks":
		p.JobTimeoutBlocks, err = num()
	case "job_challenge_blocks":
		p.JobChallengeBlocks, err = num()
	case "job_verdict_blocks":
		p.JobVerdictBlocks, err = num()
	case "job_challenge_deposit":
		p.JobChallengeDeposit = value
	case "job_slash_bps":
		p.JobSlashBps, err = num()
	case "job_verify_all_gas":
		p.JobVerifyAllGas, err = num()
	case "job_committee_size":
		p.JobCommitteeSize, err = num()
	case "max_job_module_bytes":
		p.MaxJobModuleBytes, err = num()
	case "max_job_memory_bytes":
		p.MaxJobMemoryBytes, err = num()
	case "max_job_output_bytes":
		p.MaxJobOutputBytes, err = num()
	case "output_retention_epochs":
		p.OutputRetentionEpochs, err = num()
	case "bytes_per_storage_unit":
		p.BytesPerStorageUnit, err = num()
	case "storage_segments":
		p.StorageSegments, err = num()
	case "storage_grace_epochs":
		p.StorageGraceEpochs, err = num()
	case "storage_slash_bps":
		p.StorageSlashBps, err = num()
	case "storage_repair_misses":
		p.StorageRepairMisses, err = num()
	case "storage_samples":
		p.StorageSamples, err = num()
	case "joules_per_energy_unit":
		p.JoulesPerEnergyUnit, err = num()
	case "settle_interval_epochs":
		p.SettleIntervalEpochs, err = num()
	case "issuers": // comma-separated ML-DSA public keys (hex); "" for none
		p.Issuers = []string{}
		for _, k := range strings.Split(value, ",") {
			if k = strings.ToLower(strings.TrimSpace(k)); k != "" {
				p.Issuers = append(p.Issuers, k)
			}
		}
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
