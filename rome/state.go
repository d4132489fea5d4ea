package rome

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sos-kernel/sos/ledger"
)

// Errors (matched with errors.Is). Code maps them to receipt codes.
var (
	ErrInvalid      = errors.New("rome: invalid")
	ErrNotFound     = errors.New("rome: not found")
	ErrUnauthorized = errors.New("rome: unauthorized")
	ErrNoVM         = errors.New("rome: policies need a VM and this node has none")
)

// Code classifies a market error into a receipt code (ok false: not a
// market error).
func Code(err error) (ledger.Code, bool) {
	switch {
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrNoVM):
		return ledger.CodeInvalidPayload, true
	case errors.Is(err, ErrNotFound):
		return ledger.CodeNotFound, true
	case errors.Is(err, ErrUnauthorized):
		return ledger.CodeUnauthorized, true
	}
	return 0, false
}

// State layout under ledger.PrefixRome (0x20) and ledger.PrefixGov (0x30).
// Ids are 8-byte big-endian so that key order is id order.
const (
	tagParams    byte = 0x01 // → Params (JSON)
	tagSeq       byte = 0x02 // name → u64 counter
	tagClock     byte = 0x03 // → Clock
	tagOffer     byte = 0x10 // id → Offer
	tagRequest   byte = 0x11 // id → Request
	tagLease     byte = 0x12 // id → Lease
	tagEpoch     byte = 0x13 // epoch → EpochRecord
	tagPolicy    byte = 0x14 // policy id → Policy
	tagPolicyBin byte = 0x15 // policy id → prepared Wasm
	tagCert      byte = 0x16 // id → Certificate
	tagUsage     byte = 0x17 // lease id | epoch → Usage
	tagRegion    byte = 0x18 // name → region id (u32)
	tagContrib   byte = 0x1a // address → attested units, all time (governance weight)
	tagCertEra   byte = 0x1b // → u64: the epoch from which the current cert_period_epochs applies (certFrom)
	tagIssuerKey byte = 0x1c // issuer key fingerprint → its ML-DSA public key (raw): every issuer that ever issued a certificate
	tagCertAcc   byte = 0x1e // period's last epoch | address | kind | source [| meter id] → u64 attested units of a contributor's pending certificate period [| u64 its window's first epoch, once moved]
	tagCertPend  byte = 0x1f // cert id → issuer fingerprint: statements waiting for a signature
	tagOpenOffer byte = 0x20 // id → 1: offers still open
	tagOpenReq   byte = 0x21 // id → 1: requests still open
	tagLive      byte = 0x22 // lease id → 1: leases not yet ended
	tagJob       byte = 0x23 // id → Job
	tagJobDue    byte = 0x24 // height | job id → 1: a job's next deadline (result, challenge window, verdicts)
	_            byte = 0x25 // was lease id | job id → 1: a lease's jobs are chained from its Metered records instead (Metered.LastJob, Job.PrevJob)
	tagJobQueue  byte = 0x26 // node address | job id → 1: jobs waiting for their node's result
	tagJobDisp   byte = 0x27 // job id → 1: jobs being challenged
	tagMetered   byte = 0x28 // lease id | epoch → Metered
	tagProvider  byte = 0x29 // provider address → ProviderRecord
	tagProvID    byte = 0x2a // provider address → u32 id in policy snapshots
	tagReqLease  byte = 0x2b // request id | lease id → 1: the leases of a request until they close

	tagPin       byte = 0x30 // request id | pin index (u32) → Pin
	tagBlobPin   byte = 0x31 // blob id | request id → pin index (u64): where a blob is pinned
	tagHolding   byte = 0x32 // node address | lease id | pin index (u32) → Holding: what a node must prove
	tagLeaseStor byte = 0x33 // lease id → LeaseStorage
	tagStorNode  byte = 0x34 // node address → u64 holdings: nodes with something to prove
	tagRound     byte = 0x35 // node address → Round: a node's answers in the current epoch and its last proof
	tagFault     byte = 0x36 // lease id | pin index (u32) → Fault
	tagSeed      byte = 0x37 // → Seed: the current epoch's challenge seed
	tagMissed    byte = 0x38 // lease id | epoch → u64 bytes whose proof was missed
	tagRepair    byte = 0x39 // lease id → 1: leases to move at the end of the epoch
	tagMeter     byte = 0x3a // meter id → Meter
	tagMeterKey  byte = 0x3b // SHA-256 of a device key → meter id
	tagMeterUse  byte = 0x3c // lease id | epoch | kind → MeterUse
	tagActive    byte = 0x3d // epoch | lease id → 1: the lease has something to weigh when the epoch settles (report, reading, missed proof; not jobs: their Metered records are found at the lease's settlement)
	tagSettleAt  byte = 0x3e // epoch | lease id → 1: leases to settle at the end of the epoch (Lease.NextSettle)
	tagOfferFree byte = 0x3f // offer id → 1: open offers with capacity no lease holds (what matching looks at)
	tagOfferEnd  byte = 0x40 // until epoch | offer id → 1: offers with an availability end (what expiry looks at)
	tagChal      byte = 0x41 // node address → Challenged: the holdings a node must prove in the current epoch
	tagHoldSlot  byte = 0x42 // node address | slot (u64) → slotRef (fixed binary: lease id, pin, blob, from, end): a node's holdings by place, for sampling
	tagSuspect   byte = 0x43 // node address | lease id | pin index (u32) → 1: holdings missed and not proven since
	// 0x44 held a holding's last proof (one write per holding proven); Round keeps the node's now.
	tagStorRate   byte = 0x45 // provider address → u64 storage units its leases' proofs pay per epoch (before misses), for rewards
	tagStorRateAt byte = 0x46 // epoch | provider address → u64 (two's complement) change of tagStorRate from that epoch on
	tagStorLost   byte = 0x47 // epoch | provider address → u64 storage units the provider's misses cost in that epoch
	tagJobWeight  byte = 0x48 // epoch | provider address → u64 units the runtime measured for the provider's leases in that epoch, for rewards

	gtagProposal  byte = 0x01 // id → Proposal
	gtagVote      byte = 0x02 // id | address → Vote
	gtagOpen      byte = 0x04 // end height | id → 1: proposals being voted on
	gtagOpenCount byte = 0x05 // → u64: how many
)

func rkey(tag byte, parts ...[]byte) []byte {
	k := []byte{ledger.PrefixRome, tag}
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func gkey(tag byte, parts ...[]byte) []byte {
	k := []byte{ledger.PrefixGov, tag}
	for _, p := range parts {
		k = append(k, p...)
	}
	return k
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// prefixEnd is the smallest key greater than every key starting with p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

var one = []byte{1}

// Status values of offers, requests, leases.
const (
	StatusOpen      uint8 = 1
	StatusFilled    uint8 = 2 // request: all demand allocated, leases running
	StatusCancelled uint8 = 3
	StatusExpired   uint8 = 4
	StatusDone      uint8 = 5 // request: leases over, escrow settled
	StatusActive    uint8 = 6 // lease
	StatusEnded     uint8 = 7 // lease
)

// StatusName names a status.
func StatusName(s uint8) string {
	switch s {
	case StatusOpen:
		return "open"
	case StatusFilled:
		return "filled"
	case StatusCancelled:
		return "cancelled"
	case StatusExpired:
		return "expired"
	case StatusDone:
		return "done"
	case StatusActive:
		return "active"
	case StatusEnded:
		return "ended"
	}
	return fmt.Sprintf("status(%d)", s)
}

// Clock is the epoch counter: epoch Epoch runs from block StartHeight to
// block EndHeight. StartHeight is fixed when the epoch before ends (its
// last block plus one), so a change of epoch_blocks by governance does
// not move it; the epoch's storage challenges are drawn at the end of
// block StartHeight (drawChallenges).
type Clock struct {
	_           struct{} `cbor:",toarray"`
	Epoch       uint64   `json:"epoch"`
	EndHeight   uint64   `json:"end_height"`
	StartHeight uint64   `json:"start_height"`
}

// Offer is a provider's standing offer.
type Offer struct {
	_           struct{}                `cbor:",toarray"`
	ID          uint64                  `json:"id"`
	Owner       ledger.Address          `json:"owner"`
	Capacity    []ledger.ResourceAmount `json:"capacity"`
	Price       []ledger.ResourceAmount `json:"price"`
	Leased      []ledger.ResourceAmount `json:"leased"` // same kinds as Capacity: amounts held by live leases
	Region      string                  `json:"region"`
	RegionID    uint32                  `json:"region_id"`
	HasLocation bool                    `json:"has_location"`
	Lat         int32                   `json:"lat"`
	Lon         int32                   `json:"lon"`
	Attrs       uint64                  `json:"attrs"`
	Reliability uint16                  `json:"reliability"`
	FromEpoch   uint64                  `json:"from_epoch"`
	UntilEpoch  uint64                  `json:"until_epoch"`
	Height      uint64                  `json:"height"`
	Status      uint8                   `json:"status"`
	Node        ledger.Address          `json:"node"`    // account of the node key that runs its jobs (zero: none)
	Bond        ledger.Coins            `json:"bond"`    // held in BondAccount
	Slashed     ledger.Coins            `json:"slashed"` // taken from the bond, all time
	// OpenJobs counts the jobs of its ended leases that are still pending,
	// challengeable or challenged: the bond stays while > 0. A lease's
	// jobs are counted when it ends (while it is active the lease keeps
	// the bond anyway), so no job writes the offer while its lease runs.
	OpenJobs uint32 `json:"open_jobs"`
}

// RunsJobs reports whether the offer names a node and holds a bond: what a
// lease needs to take jobs.
func (o *Offer) RunsJobs() bool { return !o.Node.IsZero() && len(o.Bond) > 0 }

// Request is a consumer's request with its escrow accounting.
type Request struct {
	_              struct{}                `cbor:",toarray"`
	ID             uint64                  `json:"id"`
	Owner          ledger.Address          `json:"owner"`
	Demand         []ledger.ResourceAmount `json:"demand"`
	MaxPrice       []ledger.ResourceAmount `json:"max_price"`
	Remaining      []ledger.ResourceAmount `json:"remaining"` // demand not yet allocated
	Epochs         uint32                  `json:"epochs"`
	Region         string                  `json:"region"`
	RegionID       uint32                  `json:"region_id"`
	HasLocation    bool                    `json:"has_location"`
	Lat            int32                   `json:"lat"`
	Lon            int32                   `json:"lon"`
	WithinKm       uint32                  `json:"within_km"`
	Attrs          uint64                  `json:"attrs"`
	MinReliability uint16                  `json:"min_reliability"`
	Bundle         bool                    `json:"bundle"`
	Escrow         ledger.Coins            `json:"escrow"` // all escrowed, credit included
	Credit         ledger.Coins            `json:"credit"` // escrow minted from redeemed certificates
	Spent          ledger.Coins            `json:"spent"`  // paid to providers
	Refunded       ledger.Coins            `json:"refunded"`
	Height         uint64                  `json:"height"`
	Epoch          uint64                  `json:"epoch"` // epoch it was accepted in
	LiveLeases     uint32                  `json:"live_leases"`
	Status         uint8                   `json:"status"`
	// Replicated requests (Replicas > 0): each replica is the full Demand
	// from a distinct provider (and region with Spread); Open replicas wait
	// for a lease (Remaining is Demand × Open); every replica lease ends at
	// EndEpoch, fixed by the first one.
	Replicas   uint16 `json:"replicas"`
	Spread     uint8  `json:"spread"`
	MeterKinds uint8  `json:"meter_kinds"` // bit k-1: kind k is paid by meter readings only
	Open       uint16 `json:"open_replicas"`
	EndEpoch   uint64 `json:"end_epoch"`
	Repairs    uint32 `json:"repairs"` // replicas moved after missed proofs
	// Pinned blobs: every lease holds each of them.
	Pins        uint32 `json:"pins"`
	PinnedBytes uint64 `json:"pinned_bytes"`
	// StorageUnit is bytes_per_storage_unit when the request was
	// accepted: its leases' quotas and proven units stay in it whatever
	// governance sets later (a lease's terms do not change under it).
	StorageUnit uint64 `json:"storage_unit_bytes"`
}

// Replicated reports whether the request asks for replicas.
func (r *Request) Replicated() bool { return r.Replicas > 0 }

// Metered reports whether kind k of the request is paid by meters only.
func (r *Request) Metered(k uint8) bool { return meterOnly(r.MeterKinds, k) }

// meterOnly reports whether kinds (bit k-1: kind k) marks kind k as paid
// by meter readings only.
func meterOnly(kinds, k uint8) bool { return k >= 1 && kinds&(1<<(k-1)) != 0 }

// Lease is an allocation: amounts of an offer for a request, at a price per
// unit per epoch, for epochs [Start, End).
type Lease struct {
	_         struct{}                `cbor:",toarray"`
	ID        uint64                  `json:"id"`
	RequestID uint64                  `json:"request_id"`
	OfferID   uint64                  `json:"offer_id"`
	Provider  ledger.Address          `json:"provider"`
	Consumer  ledger.Address          `json:"consumer"`
	Amounts   []ledger.ResourceAmount `json:"amounts"`
	Prices    []ledger.ResourceAmount `json:"prices"`
	Start     uint64                  `json:"start_epoch"`
	End       uint64                  `json:"end_epoch"`
	Paid      ledger.Coins            `json:"paid"`
	Disputes  uint32                  `json:"disputes"` // epochs with a disputed part
	Status    uint8                   `json:"status"`
	// EndedEarly: the lease lost its replica after missed storage proofs
	// (End was moved forward).
	EndedEarly bool `json:"ended_early"`
	// SettledTo: the epochs before it are paid. An epoch with nothing to
	// weigh is paid in full when the lease is next settled: at the end of
	// NextSettle at the latest (settle_interval_epochs after the last
	// settlement, or when the lease ends), earlier when something happens
	// on it.
	SettledTo  uint64 `json:"settled_to_epoch"`
	NextSettle uint64 `json:"next_settle_epoch"`
	// MeterKinds is the request's (bit k-1: kind k is paid by meter
	// readings only), copied when the lease is made so that a job's result
	// weighs its units without reading the request (jobWeight).
	MeterKinds uint8 `json:"meter_kinds"`
}

// Metered reports whether kind k of the lease is paid by meter readings
// only (its request's MeterKinds).
func (l *Lease) Metered(k uint8) bool { return meterOnly(l.MeterKinds, k) }

// Usage holds the two parties' reports for one lease and epoch.
type Usage struct {
	_           struct{}                `cbor:",toarray"`
	HasProvider bool                    `json:"has_provider"`
	Provider    []ledger.ResourceAmount `json:"provider"`
	HasConsumer bool                    `json:"has_consumer"`
	Consumer    []ledger.ResourceAmount `json:"consumer"`
}

// Policy is an uploaded allocation policy.
type Policy struct {
	_        struct{}       `cbor:",toarray"`
	ID       ledger.Hash    `json:"id"`
	Name     string         `json:"name"`
	Uploader ledger.Address `json:"uploader"`
	Size     uint32         `json:"size"`
	Height   uint64         `json:"height"`
}

// KindStat summarizes one resource kind in an epoch.
type KindStat struct {
	_              struct{} `cbor:",toarray"`
	Kind           uint8    `json:"kind"`
	Capacity       uint64   `json:"capacity"`        // of open offers
	Leased         uint64   `json:"leased"`          // held by live leases next epoch
	Demand         uint64   `json:"demand"`          // open demand before matching
	Matched        uint64   `json:"matched"`         // allocated this epoch
	UtilizationBps uint32   `json:"utilization_bps"` // leased / capacity
	ClearingPrice  uint64   `json:"clearing_price"`  // volume-weighted price of this epoch's allocations
}

// EpochRecord is what an epoch did.
type EpochRecord struct {
	_          struct{}       `cbor:",toarray"`
	Epoch      uint64         `json:"epoch"`
	Height     uint64         `json:"height"`
	Policy     string         `json:"policy"` // policy id, "builtin:fcfs" or "builtin:greedy" (the built-in fallback's choice), "builtin" (nothing to match) or "none"
	PolicyGas  uint64         `json:"policy_gas"`
	Rejected   string         `json:"rejected"` // why the active policy's output was not used ("" if it was)
	Offers     uint32         `json:"offers"`
	Requests   uint32         `json:"requests"`
	NewLeases  uint32         `json:"new_leases"`
	MatchedBps uint32         `json:"matched_bps"`
	Kinds      []KindStat     `json:"kinds"`
	Paid       ledger.Coins   `json:"paid"`
	Refunded   ledger.Coins   `json:"refunded"`
	Rewards    ledger.Coins   `json:"rewards"`
	Disputes   uint32         `json:"disputes"`
	Certs      uint32         `json:"certs"`
	Events     []ledger.Event `json:"events"`
	Measured   uint64         `json:"measured_units"` // units paid for by the runtime's measurement (jobs)
	Attested   uint64         `json:"attested_units"` // units both parties reported alike
	// Interrupted is set when the active policy trapped or ran out of gas
	// after handing in the allocation that was used: how it stopped.
	Interrupted string `json:"interrupted,omitempty"`
}

// store reads and writes market records on a State, charging gas when a
// meter is attached (transactions) and nothing otherwise (end of block,
// queries).
type store struct {
	st    *ledger.State
	codec *ledger.Codec
	// stored decodes records with codec.UnmarshalStored (no canonical
	// re-encoding: the market's own records); false keeps the check.
	stored bool
	gas    *ledger.GasMeter
	sched  *ledger.GasSchedule
}

func (s *store) charge(n uint64, what string) error {
	if s.gas == nil {
		return nil
	}
	return s.gas.Consume(n, what)
}

// getRaw reads the value at k (nil when absent), charging a read of its
// key and value.
func (s *store) getRaw(k []byte) ([]byte, error) {
	raw, err := s.st.Get(k)
	if err != nil {
		return nil, err
	}
	if s.gas != nil {
		if err := s.charge(s.sched.ReadBase+s.sched.ReadPerByte*uint64(len(k)+len(raw)), "state read"); err != nil {
			return nil, err
		}
	}
	return raw, nil
}

// addrCount is an 8-byte counter stored under prefix | an account address.
type addrCount struct {
	a ledger.Address
	v uint64
}

// addrCounts lists the counters under prefix keyed by an address, in key
// order (end of block only: nothing is charged).
func (s *store) addrCounts(prefix []byte) ([]addrCount, error) {
	var out []addrCount
	err := s.st.Iterate(prefix, prefixEnd(prefix), false, func(k, v []byte) bool {
		if len(k) == len(prefix)+ledger.AddressSize && len(v) == 8 {
			var e addrCount
			copy(e.a[:], k[len(prefix):])
			e.v = binary.BigEndian.Uint64(v)
			out = append(out, e)
		}
		return true
	})
	return out, err
}

func (s *store) get(k []byte, v any) (bool, error) {
	raw, err := s.getRaw(k)
	if err != nil {
		return false, err
	}
	if raw == nil {
		return false, nil
	}
	if err := s.decode(raw, v); err != nil {
		return false, fmt.Errorf("rome: record %x: %w: %w", k, ledger.ErrCorrupt, err)
	}
	return true, nil
}

// decode decodes a market record read from state.
func (s *store) decode(raw []byte, v any) error {
	if s.stored {
		return s.codec.UnmarshalStored(raw, v)
	}
	return s.codec.Unmarshal(raw, v)
}

func (s *store) put(k []byte, v any) error {
	raw, err := s.codec.Marshal(v)
	if err != nil {
		return fmt.Errorf("rome: encode: %w", err)
	}
	return s.setRaw(k, raw)
}

func (s *store) setRaw(k, raw []byte) error {
	if s.gas != nil {
		if err := s.charge(s.sched.WriteBase+s.sched.WritePerByte*uint64(len(k)+len(raw)), "state write"); err != nil {
			return err
		}
	}
	s.st.Set(k, raw)
	return nil
}

func (s *store) del(k []byte) error {
	if s.gas != nil {
		if err := s.charge(s.sched.WriteBase, "state delete"); err != nil {
			return err
		}
	}
	s.st.Delete(k)
	return nil
}

func (s *store) getU64(k []byte) (uint64, error) {
	raw, err := s.st.Get(k)
	if err != nil {
		return 0, err
	}
	if s.gas != nil {
		if err := s.charge(s.sched.ReadBase, "state read"); err != nil {
			return 0, err
		}
	}
	if raw == nil {
		return 0, nil
	}
	if len(raw) != 8 {
		return 0, fmt.Errorf("rome: counter %x: %w", k, ledger.ErrCorrupt)
	}
	return binary.BigEndian.Uint64(raw), nil
}

func (s *store) setU64(k []byte, v uint64) error {
	if v == 0 {
		return s.del(k)
	}
	return s.setRaw(k, u64(v))
}

// next returns the next id of a sequence (ids start at 1).
func (s *store) next(name string) (uint64, error) {
	k := rkey(tagSeq, []byte(name))
	v, err := s.getU64(k)
	if err != nil {
		return 0, err
	}
	v++
	return v, s.setRaw(k, u64(v))
}

// touch records that a lease has something for its settlement of epoch e
// to weigh (a report, a meter reading, a missed proof): it is settled when
// e is, not with its epochs that have nothing (see settle). Jobs do not
// touch: the epochs a lease ran jobs in are weighed at its next due
// settlement, found by its Metered records (store.jobEpochs).
func (s *store) touch(lease, e uint64) error {
	return s.setRaw(rkey(tagActive, u64(e), u64(lease)), one)
}

// ids lists the ids under an index prefix in ascending order.
func (s *store) ids(prefix []byte) ([]uint64, error) {
	var out []uint64
	err := s.st.Iterate(prefix, prefixEnd(prefix), false, func(k, v []byte) bool {
		if len(k) >= len(prefix)+8 {
			out = append(out, binary.BigEndian.Uint64(k[len(prefix):]))
		}
		return true
	})
	return out, err
}

func (s *store) params(gen Params) (Params, error) {
	raw, err := s.st.Get(rkey(tagParams))
	if err != nil || raw == nil {
		return gen, err
	}
	var p Params
	if err := json.Unmarshal(raw, &p); err != nil {
		return gen, fmt.Errorf("rome: params: %w: %w", ledger.ErrCorrupt, err)
	}
	return p, nil
}

func (s *store) setParams(p Params) error {
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return s.setRaw(rkey(tagParams), raw)
}

func (s *store) clock(p Params) (Clock, error) {
	var c Clock
	ok, err := s.get(rkey(tagClock), &c)
	if err != nil {
		return c, err
	}
	if !ok {
		c = Clock{Epoch: 0, EndHeight: p.EpochBlocks, StartHeight: 1}
	}
	return c, nil
}

func (s *store) offer(id uint64) (*Offer, error) {
	var o Offer
	ok, err := s.get(rkey(tagOffer, u64(id)), &o)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("rome: offer %d: %w", id, ErrNotFound)
	}
	return &o, nil
}

func (s *store) request(id uint64) (*Request, error) {
	var r Request
	ok, err := s.get(rkey(tagRequest, u64(id)), &r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("rome: request %d: %w", id, ErrNotFound)
	}
	return &r, nil
}

func (s *store) lease(id uint64) (*Lease, error) {
	var l Lease
	ok, err := s.get(rkey(tagLease, u64(id)), &l)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("rome: lease %d: %w", id, ErrNotFound)
	}
	return &l, nil
}

func (s *store) cert(id uint64) (*Certificate, error) {
	var c Certificate
	ok, err := s.get(rkey(tagCert, u64(id)), &c)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("rome: certificate %d: %w", id, ErrNotFound)
	}
	return &c, nil
}

// regionID returns the id of a region name, assigning the next one on
// first appearance (0 for no region).
func (s *store) regionID(name string, assign bool) (uint32, error) {
	if name == "" {
		return 0, nil
	}
	k := rkey(tagRegion, []byte(name))
	v, err := s.getU64(k)
	if err != nil || v != 0 || !assign {
		return uint32(v), err
	}
	n, err := s.next("region")
	if err != nil {
		return 0, err
	}
	if n > 1<<32-1 {
		return 0, fmt.Errorf("rome: region ids exhausted: %w", ErrInvalid)
	}
	return uint32(n), s.setRaw(k, u64(n))
}

// providerID returns the snapshot id of a provider address, assigning the
// next one on first use when assign is set (0: none yet).
func (s *store) providerID(a ledger.Address, assign bool) (uint32, error) {
	k := rkey(tagProvID, a[:])
	v, err := s.getU64(k)
	if err != nil || v != 0 || !assign {
		return uint32(v), err
	}
	n, err := s.next("provider")
	if err != nil {
		return 0, err
	}
	if n > 1<<32-1 {
		return 0, fmt.Errorf("rome: provider ids exhausted: %w", ErrInvalid)
	}
	return uint32(n), s.setRaw(k, u64(n))
}

// amountOf returns the amount of kind k in a per-kind list.
func amountOf(rs []ledger.ResourceAmount, k uint8) uint64 {
	for _, r := range rs {
		if r.Kind == k {
			return r.Amount
		}
	}
	return 0
}

// setAmount sets kind k in a per-kind list that already names it.
func setAmount(rs []ledger.ResourceAmount, k uint8, v uint64) {
	for i := range rs {
		if rs[i].Kind == k {
			rs[i].Amount = v
			return
		}
	}
}
