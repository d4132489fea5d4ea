package conformance

import (
	"cmp"
	"encoding/hex"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"lukechampine.com/blake3"

	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

// ROME market and governance transactions in vectors. Amounts use the CLI's
// notation: resources "compute=100,energy=50" (whole units), prices
// "compute=5,energy=1uKWTT" (a bare number is base units of the kind's
// token), coordinates "48.13,11.58" (degrees, up to six decimals).

// OfferSpec is a rome_offer payload.
type OfferSpec struct {
	Capacity    string `json:"capacity"`
	Price       string `json:"price"`
	Region      string `json:"region,omitempty"`
	At          string `json:"at,omitempty"` // "lat,lon"
	Attrs       uint64 `json:"attrs,omitempty"`
	Reliability uint16 `json:"reliability,omitempty"`
	FromEpoch   uint64 `json:"from_epoch,omitempty"`
	UntilEpoch  uint64 `json:"until_epoch,omitempty"`
	Node        string `json:"node,omitempty"` // key name of the node that runs the offer's jobs
	Bond        string `json:"bond,omitempty"` // "1TFLP,1TBS"
}

// RequestSpec is a rome_request payload.
type RequestSpec struct {
	Demand         string   `json:"demand"`
	MaxPrice       string   `json:"max_price"`
	Epochs         uint32   `json:"epochs"`
	Region         string   `json:"region,omitempty"`
	Near           string   `json:"near,omitempty"` // "lat,lon"
	WithinKm       uint32   `json:"within_km,omitempty"`
	Attrs          uint64   `json:"attrs,omitempty"`
	MinReliability uint16   `json:"min_reliability,omitempty"`
	Bundle         bool     `json:"bundle,omitempty"`
	Credits        []uint64 `json:"credits,omitempty"` // certificate ids
}

// IDSpec names an offer, request or certificate by id.
type IDSpec struct {
	ID uint64 `json:"id"`
}

// UsageSpec is a rome_usage report.
type UsageSpec struct {
	LeaseID   uint64 `json:"lease_id"`
	Epoch     uint64 `json:"epoch"`
	Delivered string `json:"delivered"` // "compute=10,energy=5" (zero allowed)
}

// Blobs in job transactions are given by their content: a blob's id is the
// BLAKE3-256 of the content and its size the content's length, as a node's
// blob store computes them.

// FileSpec is a named blob.
type FileSpec struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// JobSubmitSpec is a job_submit payload.
type JobSubmitSpec struct {
	LeaseID     uint64     `json:"lease_id"`
	Module      string     `json:"module"` // content
	Inputs      []FileSpec `json:"inputs,omitempty"`
	Stdin       string     `json:"stdin,omitempty"`
	Args        []string   `json:"args,omitempty"`
	Env         []string   `json:"env,omitempty"`
	GasLimit    uint64     `json:"gas_limit"`
	MemoryLimit uint64     `json:"memory_limit"`
	OutputLimit uint64     `json:"output_limit"`
}

// JobResultSpec is a job_result payload; the output root is computed from
// the outputs, stdout and stderr (rome.OutputRoot) unless OutputRoot (hex)
// forces another.
type JobResultSpec struct {
	JobID      uint64     `json:"job_id"`
	Class      string     `json:"class"` // exited, trapped, out_of_gas, limit_exceeded
	ExitCode   int32      `json:"exit_code"`
	GasUsed    uint64     `json:"gas_used"`
	Outputs    []FileSpec `json:"outputs,omitempty"`
	Stdout     string     `json:"stdout"`
	Stderr     string     `json:"stderr"`
	OutputRoot string     `json:"output_root,omitempty"`
	BytesIn    uint64     `json:"bytes_in"`
	BytesOut   uint64     `json:"bytes_out"`
}

// JobOutcomeSpec is a job_challenge or job_verdict payload: the outcome of
// running the job (the root over its outputs and streams, and its stdout).
type JobOutcomeSpec struct {
	JobID    uint64     `json:"job_id"`
	ExitCode int32      `json:"exit_code"`
	GasUsed  uint64     `json:"gas_used"`
	Outputs  []FileSpec `json:"outputs,omitempty"`
	Stdout   string     `json:"stdout"`
	Stderr   string     `json:"stderr"`
}

func blobOf(content string) ledger.BlobRef {
	return ledger.BlobRef{ID: blake3.Sum256([]byte(content)), Size: uint64(len(content))}
}

func filesOf(fs []FileSpec) []ledger.JobFile {
	out := make([]ledger.JobFile, len(fs))
	for i, f := range fs {
		b := blobOf(f.Content)
		out[i] = ledger.JobFile{Name: f.Name, ID: b.ID, Size: b.Size}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (o *JobOutcomeSpec) outcome() ledger.JobOutcome {
	so := blobOf(o.Stdout)
	return ledger.JobOutcome{ExitCode: o.ExitCode, GasUsed: o.GasUsed, OutputRoot: rome.OutputRoot(filesOf(o.Outputs), so, blobOf(o.Stderr)), Stdout: so.ID}
}

var jobClasses = map[string]ledger.JobClass{"exited": ledger.JobExited, "trapped": ledger.JobTrapped, "out_of_gas": ledger.JobOutOfGas, "limit_exceeded": ledger.JobLimitExceeded}

// PolicyUploadSpec uploads testdata/wasm/<wasm>.wasm.gz as a policy.
type PolicyUploadSpec struct {
	Name string `json:"name"`
	Wasm string `json:"wasm"`
}

// CertSignSpec signs certificate CertID's statement, as recorded in the
// state before the block, with the key of Signer (default: the sender).
// A signer that is not the certificate's issuer makes a signature the
// chain must refuse.
type CertSignSpec struct {
	CertID uint64 `json:"cert_id"`
	Signer string `json:"signer,omitempty"`
}

// CertRevokeSpec is a cert_revoke payload.
type CertRevokeSpec struct {
	CertID uint64 `json:"cert_id"`
	Reason string `json:"reason"`
}

// ProposeSpec is a gov_propose payload. A value "$policy:NAME" becomes the
// policy id (code hash) of testdata/wasm/NAME.wasm.gz.
type ProposeSpec struct {
	Title string `json:"title,omitempty"`
	Param string `json:"param"`
	Value string `json:"value"`
}

// VoteSpec is a gov_vote payload; option is yes, no or abstain.
type VoteSpec struct {
	ProposalID uint64 `json:"proposal_id"`
	Option     string `json:"option"`
}

const policyRef = "$policy:"

// wasmNames lists the wasm files a transaction names.
func (ts *TxSpec) wasmNames() []string {
	switch {
	case ts.Upload != "":
		return []string{ts.Upload}
	case ts.Instantiate != nil:
		return []string{ts.Instantiate.Code}
	case ts.Migrate != nil:
		return []string{ts.Migrate.Code}
	case ts.PolicyUpload != nil:
		return []string{ts.PolicyUpload.Wasm}
	case ts.GovPropose != nil && strings.HasPrefix(ts.GovPropose.Value, policyRef):
		return []string{strings.TrimPrefix(ts.GovPropose.Value, policyRef)}
	}
	return nil
}

// payloadFields counts the payload fields ts sets.
func (ts *TxSpec) payloadFields() int {
	n := 0
	for _, set := range []bool{ts.Transfer != nil, ts.Upload != "", ts.Instantiate != nil, ts.Execute != nil, ts.Migrate != nil,
		ts.RomeOffer != nil, ts.RomeRequest != nil, ts.RomeCancel != nil, ts.RomeUsage != nil, ts.PolicyUpload != nil,
		ts.CertSign != nil, ts.CertRevoke != nil, ts.GovPropose != nil, ts.GovVote != nil,
		ts.JobSubmit != nil, ts.JobResult != nil, ts.JobChallenge != nil, ts.JobVerdict != nil,
		ts.MemberAdd != nil, ts.MemberPromote != "", ts.MemberRemove != ""} {
		if set {
			n++
		}
	}
	return n
}

func parseResources(s string, zero bool) ([]ledger.ResourceAmount, error) {
	var out []ledger.ResourceAmount
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("%q: want kind=amount", part)
		}
		k, err := rome.ParseKind(name)
		if err != nil {
			return nil, err
		}
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil || v == 0 && !zero {
			return nil, fmt.Errorf("%s=%q: want a whole number of units", name, val)
		}
		out = append(out, ledger.ResourceAmount{Kind: k, Amount: v})
	}
	return sortResources(out)
}

func parsePrices(s string, d *ledger.Denoms) ([]ledger.ResourceAmount, error) {
	var out []ledger.ResourceAmount
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return nil, fmt.Errorf("%q: want kind=price", part)
		}
		k, err := rome.ParseKind(name)
		if err != nil {
			return nil, err
		}
		if _, err := strconv.ParseUint(val, 10, 64); err == nil {
			val += rome.KindDenom(k)
		}
		c, err := d.ParseAmount(val)
		if err != nil {
			return nil, err
		}
		if c.Denom != rome.KindDenom(k) {
			return nil, fmt.Errorf("%s settles in %s, not %s", name, rome.KindDenom(k), c.Denom)
		}
		out = append(out, ledger.ResourceAmount{Kind: k, Amount: c.Amount})
	}
	return sortResources(out)
}

func sortResources(rs []ledger.ResourceAmount) ([]ledger.ResourceAmount, error) {
	sort.Slice(rs, func(i, j int) bool { return rs[i].Kind < rs[j].Kind })
	for i := 1; i < len(rs); i++ {
		if rs[i].Kind == rs[i-1].Kind {
			return nil, fmt.Errorf("%s given twice", rome.KindName(rs[i].Kind))
		}
	}
	return rs, nil
}

// parseMicro parses decimal degrees into micro-degrees exactly.
func parseMicro(s string) (int32, error) {
	s = strings.TrimSpace(s)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	ip, fp, _ := strings.Cut(s, ".")
	if ip == "" || len(fp) > 6 {
		return 0, fmt.Errorf("%q: want degrees with at most 6 decimals", s)
	}
	fp += strings.Repeat("0", 6-len(fp))
	i, err1 := strconv.ParseInt(ip, 10, 32)
	f, err2 := strconv.ParseInt(fp, 10, 32)
	if err1 != nil || err2 != nil || i > 180 {
		return 0, fmt.Errorf("%q: not a coordinate", s)
	}
	v := int32(i*1_000_000 + f)
	if neg {
		v = -v
	}
	return v, nil
}

func parseLatLon(s string) (has bool, lat, lon int32, err error) {
	if s == "" {
		return false, 0, 0, nil
	}
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return false, 0, 0, fmt.Errorf("%q: want lat,lon", s)
	}
	if lat, err = parseMicro(a); err != nil {
		return false, 0, 0, err
	}
	if lon, err = parseMicro(b); err != nil {
		return false, 0, 0, err
	}
	return true, lat, lon, nil
}

// marketPayload builds a market or governance payload (nil, nil: ts has
// none). cert reads a certificate from the state before the block.
func (v *Vector) marketPayload(ts TxSpec, d *ledger.Denoms, codec *ledger.Codec, cert func(uint64) (*rome.Certificate, error)) (ledger.Payload, error) {
	switch {
	case ts.RomeOffer != nil:
		o := ts.RomeOffer
		capacity, err := parseResources(o.Capacity, false)
		if err != nil {
			return nil, fmt.Errorf("rome_offer capacity: %w", err)
		}
		price, err := parsePrices(o.Price, d)
		if err != nil {
			return nil, fmt.Errorf("rome_offer price: %w", err)
		}
		has, lat, lon, err := parseLatLon(o.At)
		if err != nil {
			return nil, fmt.Errorf("rome_offer at: %w", err)
		}
		p := &ledger.RomeOffer{Capacity: capacity, Price: price, Region: o.Region, HasLocation: has, Lat: lat, Lon: lon,
			Attrs: o.Attrs, Reliability: o.Reliability, FromEpoch: o.FromEpoch, UntilEpoch: o.UntilEpoch}
		if o.Node != "" {
			p.Node = KeyFor(o.Node).Address()
		}
		if o.Bond != "" {
			if p.Bond, err = d.ParseCoins(o.Bond); err != nil {
				return nil, fmt.Errorf("rome_offer bond: %w", err)
			}
		}
		return p, nil
	case ts.RomeRequest != nil:
		r := ts.RomeRequest
		demand, err := parseResources(r.Demand, false)
		if err != nil {
			return nil, fmt.Errorf("rome_request demand: %w", err)
		}
		maxPrice, err := parsePrices(r.MaxPrice, d)
		if err != nil {
			return nil, fmt.Errorf("rome_request max_price: %w", err)
		}
		has, lat, lon, err := parseLatLon(r.Near)
		if err != nil {
			return nil, fmt.Errorf("rome_request near: %w", err)
		}
		return &ledger.RomeRequest{Demand: demand, MaxPrice: maxPrice, Epochs: r.Epochs, Region: r.Region, HasLocation: has, Lat: lat, Lon: lon,
			WithinKm: r.WithinKm, Attrs: r.Attrs, MinReliability: r.MinReliability, Bundle: r.Bundle, Credits: r.Credits}, nil
	case ts.RomeCancel != nil:
		return &ledger.RomeCancel{ID: ts.RomeCancel.ID}, nil
	case ts.RomeUsage != nil:
		u := ts.RomeUsage
		del, err := parseResources(u.Delivered, true)
		if err != nil {
			return nil, fmt.Errorf("rome_usage delivered: %w", err)
		}
		return &ledger.RomeUsage{LeaseID: u.LeaseID, Epoch: u.Epoch, Delivered: del}, nil
	case ts.PolicyUpload != nil:
		return &ledger.RomePolicyUpload{Name: ts.PolicyUpload.Name, Wasm: v.raw[ts.PolicyUpload.Wasm]}, nil
	case ts.CertSign != nil:
		c, err := cert(ts.CertSign.CertID)
		if err != nil {
			return nil, fmt.Errorf("cert_sign: certificate %d: %w", ts.CertSign.CertID, err)
		}
		signer := ts.CertSign.Signer
		if signer == "" {
			signer = ts.From
		}
		return rome.SignPayload(codec, KeyFor(signer), &rome.Pending{Statement: c.Statement, IssuerKey: c.IssuerKey})
	case ts.CertRevoke != nil:
		return &ledger.CertRevoke{CertID: ts.CertRevoke.CertID, Reason: ts.CertRevoke.Reason}, nil
	case ts.GovPropose != nil:
		p := ts.GovPropose
		value := p.Value
		if name, ok := strings.CutPrefix(value, policyRef); ok {
			value = ledger.HashBytes(v.raw[name]).String()
		}
		return &ledger.GovPropose{Title: p.Title, Param: p.Param, Value: value}, nil
	case ts.GovVote != nil:
		opt := map[string]uint8{"yes": ledger.VoteYes, "no": ledger.VoteNo, "abstain": ledger.VoteAbstain}[ts.GovVote.Option]
		if opt == 0 {
			return nil, fmt.Errorf("gov_vote option %q (want yes, no or abstain)", ts.GovVote.Option)
		}
		return &ledger.GovVote{ProposalID: ts.GovVote.ProposalID, Option: opt}, nil
	case ts.JobSubmit != nil:
		j := ts.JobSubmit
		p := &ledger.JobSubmit{LeaseID: j.LeaseID, Module: blobOf(j.Module), Inputs: filesOf(j.Inputs), Args: j.Args, Env: j.Env,
			GasLimit: j.GasLimit, MemoryLimit: j.MemoryLimit, OutputLimit: j.OutputLimit}
		if j.Stdin != "" {
			p.Stdin = blobOf(j.Stdin)
		}
		return p, nil
	case ts.JobResult != nil:
		r := ts.JobResult
		class, ok := jobClasses[r.Class]
		if !ok {
			return nil, fmt.Errorf("job_result class %q (want exited, trapped, out_of_gas or limit_exceeded)", r.Class)
		}
		p := &ledger.JobResult{JobID: r.JobID, Class: class, ExitCode: r.ExitCode, GasUsed: r.GasUsed, Outputs: filesOf(r.Outputs),
			Stdout: blobOf(r.Stdout), Stderr: blobOf(r.Stderr), BytesIn: r.BytesIn, BytesOut: r.BytesOut}
		p.OutputRoot = rome.OutputRoot(p.Outputs, p.Stdout, p.Stderr)
		if r.OutputRoot != "" {
			h, err := ledger.ParseHash(r.OutputRoot)
			if err != nil {
				return nil, fmt.Errorf("job_result output_root: %w", err)
			}
			p.OutputRoot = h
		}
		return p, nil
	case ts.JobChallenge != nil:
		return &ledger.JobChallenge{JobID: ts.JobChallenge.JobID, Outcome: ts.JobChallenge.outcome()}, nil
	case ts.JobVerdict != nil:
		return &ledger.JobVerdict{JobID: ts.JobVerdict.JobID, Outcome: ts.JobVerdict.outcome()}, nil
	}
	return nil, nil
}

// substituteKeys replaces "$address:NAME" and "$pubkey:NAME" strings in
// decoded genesis_extra JSON with the deterministic key's address or
// public key (hex).
func substituteKeys(x any) any {
	switch t := x.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = substituteKeys(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = substituteKeys(e)
		}
		return out
	case string:
		if n, ok := strings.CutPrefix(t, "$address:"); ok {
			return KeyFor(n).Address().String()
		}
		if n, ok := strings.CutPrefix(t, "$pubkey:"); ok {
			return hex.EncodeToString(KeyFor(n).Public().Bytes())
		}
	}
	return x
}

// MarketResult is the market's state after the last block, in short (the
// state roots cover all of it; this says what happened in words).
type MarketResult struct {
	ActivePolicy string           `json:"active_policy"` // policy id, "" for the built-in fallback
	EpochBlocks  uint64           `json:"epoch_blocks"`
	Epoch        uint64           `json:"epoch"` // current epoch
	Policies     []string         `json:"policies,omitempty"`
	Offers       []OfferResult    `json:"offers,omitempty"`
	Requests     []RequestResult  `json:"requests,omitempty"`
	Leases       []LeaseResult    `json:"leases,omitempty"`
	Certificates []CertResult     `json:"certificates,omitempty"`
	Proposals    []ProposalResult `json:"proposals,omitempty"`
	Jobs         []JobSummary     `json:"jobs,omitempty"`
	// Providers are the job records of the providers of offers that run
	// jobs, by key name.
	Providers map[string]rome.ProviderRecord `json:"providers,omitempty"`
}

// JobSummary is a job's final state.
type JobSummary struct {
	ID       uint64       `json:"id"`
	Lease    uint64       `json:"lease"`
	Node     string       `json:"node"`
	Status   string       `json:"status"`
	Deadline uint64       `json:"deadline"`
	ExitCode *int32       `json:"exit_code,omitempty"`
	GasUsed  *uint64      `json:"gas_used,omitempty"`
	Root     string       `json:"output_root,omitempty"`
	Dispute  string       `json:"dispute,omitempty"` // outcome of its challenge
	Votes    int          `json:"votes,omitempty"`
	Slashed  ledger.Coins `json:"slashed,omitempty"`
	Refund   ledger.Coins `json:"refund,omitempty"`
}

// OfferResult is an offer's final state.
type OfferResult struct {
	ID      uint64       `json:"id"`
	Owner   string       `json:"owner"`
	Status  string       `json:"status"`
	Leased  string       `json:"leased"`
	Node    string       `json:"node,omitempty"`
	Bond    ledger.Coins `json:"bond,omitempty"`
	Slashed ledger.Coins `json:"slashed,omitempty"`
}

// RequestResult is a request's final state and escrow accounting.
type RequestResult struct {
	ID        uint64       `json:"id"`
	Owner     string       `json:"owner"`
	Status    string       `json:"status"`
	Remaining string       `json:"remaining"`
	Escrow    ledger.Coins `json:"escrow"`
	Credit    ledger.Coins `json:"credit,omitempty"`
	Spent     ledger.Coins `json:"spent"`
	Refunded  ledger.Coins `json:"refunded"`
}

// LeaseResult is a lease's final state.
type LeaseResult struct {
	ID       uint64       `json:"id"`
	Request  uint64       `json:"request"`
	Offer    uint64       `json:"offer"`
	Provider string       `json:"provider"`
	Consumer string       `json:"consumer"`
	Amounts  string       `json:"amounts"`
	Prices   string       `json:"prices"`
	Epochs   [2]uint64    `json:"epochs"` // [start, end)
	Paid     ledger.Coins `json:"paid"`
	Disputes uint32       `json:"disputes,omitempty"`
	Status   string       `json:"status"`
}

// CertResult is a certificate's statement and status (the signature is in
// the state root, not repeated here).
type CertResult struct {
	ID       uint64 `json:"id"`
	NodeID   string `json:"node_id"`
	Kind     string `json:"kind"`
	Amount   uint64 `json:"amount"`
	Epochs   string `json:"epochs"` // from-to, inclusive
	Issuer   string `json:"issuer"`
	Status   string `json:"status"` // pending, signed, revoked
	Redeemed uint64 `json:"redeemed,omitempty"`
	Measured string `json:"measured"` // runtime or reported
}

// ProposalResult is a proposal's outcome.
type ProposalResult struct {
	ID          uint64 `json:"id"`
	Param       string `json:"param"`
	Value       string `json:"value"`
	Status      string `json:"status"`
	Yes         uint64 `json:"yes"`
	No          uint64 `json:"no"`
	Abstain     uint64 `json:"abstain"`
	TotalWeight uint64 `json:"total_weight"`
	Result      string `json:"result"`
}

func fmtResources(rs []ledger.ResourceAmount) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = rome.KindName(r.Kind) + "=" + strconv.FormatUint(r.Amount, 10)
	}
	return strings.Join(parts, ",")
}

// marketResult summarizes the market (nil when nothing was ever offered,
// requested, uploaded or proposed). name shows an address as a key name.
func marketResult(m *rome.Market, st *ledger.State, name func(ledger.Address) string) (*MarketResult, error) {
	p, err := m.Params(st)
	if err != nil {
		return nil, err
	}
	clock, err := m.Clock(st)
	if err != nil {
		return nil, err
	}
	out := &MarketResult{ActivePolicy: p.ActivePolicy, EpochBlocks: p.EpochBlocks, Epoch: clock.Epoch}
	pols, err := m.Policies(st)
	if err != nil {
		return nil, err
	}
	for _, x := range pols {
		out.Policies = append(out.Policies, x.Name+" "+x.ID.String())
	}
	offers, err := m.Offers(st, 0, nil)
	if err != nil {
		return nil, err
	}
	providers := map[ledger.Address]bool{}
	for _, o := range oldestFirst(offers) {
		or := OfferResult{ID: o.ID, Owner: name(o.Owner), Status: rome.StatusName(o.Status), Leased: fmtResources(o.Leased),
			Bond: o.Bond, Slashed: o.Slashed}
		if !o.Node.IsZero() {
			or.Node = name(o.Node)
			providers[o.Owner] = true
		}
		out.Offers = append(out.Offers, or)
	}
	for a := range providers { // a map: the JSON object's keys are sorted
		r, err := m.ProviderRecord(st, a)
		if err != nil {
			return nil, err
		}
		if out.Providers == nil {
			out.Providers = map[string]rome.ProviderRecord{}
		}
		out.Providers[name(a)] = r
	}
	reqs, err := m.Requests(st, 0, nil)
	if err != nil {
		return nil, err
	}
	for _, r := range oldestFirst(reqs) {
		out.Requests = append(out.Requests, RequestResult{ID: r.ID, Owner: name(r.Owner), Status: rome.StatusName(r.Status), Remaining: fmtResources(r.Remaining),
			Escrow: r.Escrow, Credit: r.Credit, Spent: r.Spent, Refunded: r.Refunded})
	}
	leases, err := m.Leases(st, 0, nil)
	if err != nil {
		return nil, err
	}
	for _, l := range oldestFirst(leases) {
		out.Leases = append(out.Leases, LeaseResult{ID: l.ID, Request: l.RequestID, Offer: l.OfferID, Provider: name(l.Provider), Consumer: name(l.Consumer),
			Amounts: fmtResources(l.Amounts), Prices: fmtResources(l.Prices), Epochs: [2]uint64{l.Start, l.End}, Paid: l.Paid, Disputes: l.Disputes,
			Status: rome.StatusName(l.Status)})
	}
	certs, err := m.Certificates(st, 0, nil)
	if err != nil {
		return nil, err
	}
	for _, c := range oldestFirst(certs) {
		f := c.File()
		s := c.Statement
		node := s.NodeID
		if a, err := ledger.ParseAddress(node); err == nil {
			node = name(a)
		}
		out.Certificates = append(out.Certificates, CertResult{ID: s.ID, NodeID: node, Kind: rome.KindName(s.Kind), Amount: s.Amount,
			Epochs: fmt.Sprintf("%d-%d", s.FromEpoch, s.ToEpoch), Issuer: name(ledger.AddressFromPublicKey(c.IssuerKey)), Status: f.Status, Redeemed: c.Redeemed,
			Measured: s.Measured})
	}
	for before := uint64(0); ; {
		jobs, next, err := m.Jobs(st, rome.JobFilter{Before: before, Limit: 1000})
		if err != nil {
			return nil, err
		}
		for _, j := range jobs {
			js := JobSummary{ID: j.ID, Lease: j.LeaseID, Node: name(j.Node), Status: rome.JobStatusName(j.Status), Deadline: j.Deadline}
			if r := j.Result; r != nil {
				js.ExitCode, js.GasUsed, js.Root = &r.ExitCode, &r.GasUsed, r.OutputRoot.String()
			}
			if d := j.Dispute; d != nil {
				js.Dispute, js.Votes, js.Slashed, js.Refund = d.Outcome, len(d.Votes), d.Slashed, d.Refund
			}
			out.Jobs = append(out.Jobs, js)
		}
		if next == 0 {
			break
		}
		before = next
	}
	slices.SortFunc(out.Jobs, func(a, b JobSummary) int { return cmp.Compare(a.ID, b.ID) })
	props, err := m.Proposals(st, 0)
	if err != nil {
		return nil, err
	}
	for _, x := range oldestFirst(props) {
		out.Proposals = append(out.Proposals, ProposalResult{ID: x.ID, Param: x.Param, Value: x.Value, Status: rome.ProposalStatusName(x.Status),
			Yes: x.Yes, No: x.No, Abstain: x.Abstain, TotalWeight: x.TotalWeight, Result: x.Result})
	}
	if len(out.Policies)+len(out.Offers)+len(out.Requests)+len(out.Leases)+len(out.Certificates)+len(out.Proposals)+len(out.Jobs) == 0 {
		return nil, nil
	}
	return out, nil
}

// oldestFirst reverses a query's newest-first list.
func oldestFirst[T any](s []T) []T {
	slices.Reverse(s)
	return s
}
