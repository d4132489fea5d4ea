package rome

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/sos-kernel/sos/ledger"
)

// The policy ABI v3 (docs/rome-policy-abi.md): one binary snapshot in, one
// allocation list out, integers little-endian.

// ErrMalformed marks snapshot or allocation bytes that do not decode.
var ErrMalformed = errors.New("rome: malformed")

// ErrInfeasible marks an allocation list that breaks a market rule.
var ErrInfeasible = errors.New("rome: infeasible allocation")

const (
	snapMagic   = "ROME"
	snapVersion = 3
	offerFixed  = 8 + 4 + 4 + 4 + 8 + 2 + 1 + 4*8 + 4 // id region lat lon attrs reliability flags jobs(completed failed timed_out slashed) provider
	reqFixed    = 8 + 4 + 4 + 4 + 4 + 8 + 2 + 1 + 2   // … flags replicas
	heldSize    = 4 + 4 + 4
	allocFixed  = 4 + 4
)

// SnapOffer is an offer as a policy sees it. Capacity and Price follow
// Snapshot.Kinds; capacity is what remains this epoch. RunsJobs and Jobs
// tell how the offer's provider has run jobs (its ProviderRecord).
type SnapOffer struct {
	ID          uint64
	Region      uint32
	Lat, Lon    int32
	Attrs       uint64
	Reliability uint16
	RunsJobs    bool // the offer names a node and holds a bond
	Jobs        ProviderRecord
	// Provider identifies the offer's owner (ids from 1, stable across
	// epochs): two replicas of a request never share one.
	Provider uint32
	Capacity []uint64
	Price    []uint64
}

// Offer flag bits (ABI v2).
const offerFlagJobs = 1

// Request flag bits (ABI v3).
const (
	reqFlagBundle = 1
	reqFlagSpread = 2
)

// SnapRequest is a request as a policy sees it; Demand is what remains —
// for a replicated request (Replicas > 0) the demand of one replica, of
// which Replicas are wanted.
type SnapRequest struct {
	ID             uint64
	Region         uint32
	Lat, Lon       int32
	WithinKm       uint32
	Attrs          uint64
	MinReliability uint16
	Bundle         bool
	Spread         bool   // replicas in distinct regions
	Replicas       uint16 // replicas still wanted (0: an ordinary request)
	Demand         []uint64
	MaxPrice       []uint64
}

// Held is a replica a request already has: its provider and region,
// which its new replicas must avoid (the region only with Spread).
type Held struct {
	Request  uint32 // index in Snapshot.Requests
	Provider uint32
	Region   uint32
}

// Snapshot is the input of a policy run.
type Snapshot struct {
	Epoch    uint64
	Kinds    []uint8 // ascending kind ids
	Offers   []SnapOffer
	Requests []SnapRequest
	Held     []Held // by request index, then provider
}

// Allocation gives a request an amount of an offer per kind at a price.
type Allocation struct {
	Request uint32 // index in Snapshot.Requests
	Offer   uint32 // index in Snapshot.Offers
	Amount  []uint64
	Price   []uint64
}

// Encode renders the snapshot in ABI v3.
func (s *Snapshot) Encode() []byte {
	nk := len(s.Kinds)
	n := 4 + 4 + 8 + 1 + nk + 8 + len(s.Offers)*(offerFixed+16*nk) + len(s.Requests)*(reqFixed+16*nk) + 4 + len(s.Held)*heldSize
	b := make([]byte, 0, n)
	le := binary.LittleEndian
	b = append(b, snapMagic...)
	b = le.AppendUint32(b, snapVersion)
	b = le.AppendUint64(b, s.Epoch)
	b = append(b, byte(nk))
	b = append(b, s.Kinds...)
	b = le.AppendUint32(b, uint32(len(s.Offers)))
	b = le.AppendUint32(b, uint32(len(s.Requests)))
	for _, o := range s.Offers {
		b = le.AppendUint64(b, o.ID)
		b = le.AppendUint32(b, o.Region)
		b = le.AppendUint32(b, uint32(o.Lat))
		b = le.AppendUint32(b, uint32(o.Lon))
		b = le.AppendUint64(b, o.Attrs)
		b = le.AppendUint16(b, o.Reliability)
		var flags byte
		if o.RunsJobs {
			flags |= offerFlagJobs
		}
		b = append(b, flags)
		b = le.AppendUint64(b, o.Jobs.Completed)
		b = le.AppendUint64(b, o.Jobs.Failed)
		b = le.AppendUint64(b, o.Jobs.TimedOut)
		b = le.AppendUint64(b, o.Jobs.Slashed)
		b = le.AppendUint32(b, o.Provider)
		for k := 0; k < nk; k++ {
			b = le.AppendUint64(b, o.Capacity[k])
			b = le.AppendUint64(b, o.Price[k])
		}
	}
	for _, r := range s.Requests {
		b = le.AppendUint64(b, r.ID)
		b = le.AppendUint32(b, r.Region)
		b = le.AppendUint32(b, uint32(r.Lat))
		b = le.AppendUint32(b, uint32(r.Lon))
		b = le.AppendUint32(b, r.WithinKm)
		b = le.AppendUint64(b, r.Attrs)
		b = le.AppendUint16(b, r.MinReliability)
		var flags byte
		if r.Bundle {
			flags |= reqFlagBundle
		}
		if r.Spread {
			flags |= reqFlagSpread
		}
		b = append(b, flags)
		b = le.AppendUint16(b, r.Replicas)
		for k := 0; k < nk; k++ {
			b = le.AppendUint64(b, r.Demand[k])
			b = le.AppendUint64(b, r.MaxPrice[k])
		}
	}
	b = le.AppendUint32(b, uint32(len(s.Held)))
	for _, h := range s.Held {
		b = le.AppendUint32(b, h.Request)
		b = le.AppendUint32(b, h.Provider)
		b = le.AppendUint32(b, h.Region)
	}
	return b
}

type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) need(n int) bool {
	if r.err != nil {
		return false
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = fmt.Errorf("%w: truncated at byte %d", ErrMalformed, r.off)
		return false
	}
	return true
}

func (r *reader) u8() uint8 {
	if !r.need(1) {
		return 0
	}
	r.off++
	return r.b[r.off-1]
}

func (r *reader) u16() uint16 {
	if !r.need(2) {
		return 0
	}
	r.off += 2
	return binary.LittleEndian.Uint16(r.b[r.off-2:])
}

func (r *reader) u32() uint32 {
	if !r.need(4) {
		return 0
	}
	r.off += 4
	return binary.LittleEndian.Uint32(r.b[r.off-4:])
}

func (r *reader) u64() uint64 {
	if !r.need(8) {
		return 0
	}
	r.off += 8
	return binary.LittleEndian.Uint64(r.b[r.off-8:])
}

// DecodeSnapshot parses ABI v3 snapshot bytes strictly: it is the exact
// inverse of Encode (unknown flag bits, unordered kinds or ids and trailing
// bytes are ErrMalformed).
func DecodeSnapshot(b []byte) (*Snapshot, error) {
	r := &reader{b: b}
	if !r.need(4) || string(b[:4]) != snapMagic {
		return nil, fmt.Errorf("%w: snapshot: missing ROME magic", ErrMalformed)
	}
	r.off = 4
	if v := r.u32(); r.err == nil && v != snapVersion {
		return nil, fmt.Errorf("%w: snapshot: version %d, want %d", ErrMalformed, v, snapVersion)
	}
	s := &Snapshot{Epoch: r.u64()}
	nk := int(r.u8())
	if !r.need(nk) {
		return nil, r.err
	}
	for i := 0; i < nk; i++ {
		k := r.u8()
		if k == 0 || k > ledger.MaxResourceKind || i > 0 && s.Kinds[i-1] >= k {
			return nil, fmt.Errorf("%w: snapshot: kinds must be ascending ids 1-%d", ErrMalformed, ledger.MaxResourceKind)
		}
		s.Kinds = append(s.Kinds, k)
	}
	no, nr := int(r.u32()), int(r.u32())
	if r.err != nil {
		return nil, r.err
	}
	osz, rsz := offerFixed+16*nk, reqFixed+16*nk
	if uint64(no)*uint64(osz)+uint64(nr)*uint64(rsz)+4 > uint64(len(b)-r.off) {
		return nil, fmt.Errorf("%w: snapshot: %d offers and %d requests do not fit %d bytes", ErrMalformed, no, nr, len(b)-r.off)
	}
	s.Offers = make([]SnapOffer, no)
	for i := range s.Offers {
		o := &s.Offers[i]
		o.ID, o.Region, o.Lat, o.Lon, o.Attrs, o.Reliability = r.u64(), r.u32(), int32(r.u32()), int32(r.u32()), r.u64(), r.u16()
		flags := r.u8()
		if flags&^offerFlagJobs != 0 {
			return nil, fmt.Errorf("%w: snapshot: offer %d: unknown flag bits %#x", ErrMalformed, o.ID, flags)
		}
		o.RunsJobs = flags&offerFlagJobs != 0
		o.Jobs = ProviderRecord{Completed: r.u64(), Failed: r.u64(), TimedOut: r.u64(), Slashed: r.u64()}
		o.Provider = r.u32()
		if o.Provider == 0 {
			return nil, fmt.Errorf("%w: snapshot: offer %d: provider id 0", ErrMalformed, o.ID)
		}
		o.Capacity, o.Price = make([]uint64, nk), make([]uint64, nk)
		for k := 0; k < nk; k++ {
			o.Capacity[k], o.Price[k] = r.u64(), r.u64()
		}
		if i > 0 && s.Offers[i-1].ID >= o.ID {
			return nil, fmt.Errorf("%w: snapshot: offer ids not ascending", ErrMalformed)
		}
	}
	s.Requests = make([]SnapRequest, nr)
	for i := range s.Requests {
		q := &s.Requests[i]
		q.ID, q.Region, q.Lat, q.Lon, q.WithinKm, q.Attrs, q.MinReliability = r.u64(), r.u32(), int32(r.u32()), int32(r.u32()), r.u32(), r.u64(), r.u16()
		flags := r.u8()
		if flags&^(reqFlagBundle|reqFlagSpread) != 0 {
			return nil, fmt.Errorf("%w: snapshot: request %d: unknown flag bits %#x", ErrMalformed, q.ID, flags)
		}
		q.Bundle, q.Spread = flags&reqFlagBundle != 0, flags&reqFlagSpread != 0
		q.Replicas = r.u16()
		if q.Spread && q.Replicas == 0 || q.Bundle && q.Replicas > 0 {
			return nil, fmt.Errorf("%w: snapshot: request %d: spread without replicas, or a replicated bundle", ErrMalformed, q.ID)
		}
		q.Demand, q.MaxPrice = make([]uint64, nk), make([]uint64, nk)
		for k := 0; k < nk; k++ {
			q.Demand[k], q.MaxPrice[k] = r.u64(), r.u64()
		}
		if i > 0 && s.Requests[i-1].ID >= q.ID {
			return nil, fmt.Errorf("%w: snapshot: request ids not ascending", ErrMalformed)
		}
	}
	nh := r.u32()
	if r.err != nil {
		return nil, r.err
	}
	if uint64(nh)*heldSize != uint64(len(b)-r.off) {
		return nil, fmt.Errorf("%w: snapshot: %d held replicas do not fill %d bytes", ErrMalformed, nh, len(b)-r.off)
	}
	s.Held = make([]Held, nh)
	for i := range s.Held {
		h := &s.Held[i]
		h.Request, h.Provider, h.Region = r.u32(), r.u32(), r.u32()
		switch {
		case int(h.Request) >= nr || s.Requests[h.Request].Replicas == 0:
			return nil, fmt.Errorf("%w: snapshot: held replica %d names request index %d, not a replicated request", ErrMalformed, i, h.Request)
		case h.Provider == 0:
			return nil, fmt.Errorf("%w: snapshot: held replica %d: provider id 0", ErrMalformed, i)
		case i > 0 && (s.Held[i-1].Request > h.Request || s.Held[i-1].Request == h.Request && s.Held[i-1].Provider >= h.Provider):
			return nil, fmt.Errorf("%w: snapshot: held replicas not ascending by (request, provider)", ErrMalformed)
		}
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(s.Held) == 0 {
		s.Held = nil
	}
	return s, nil
}

// EncodeAllocations renders an allocation list for nk kinds.
func EncodeAllocations(nk int, as []Allocation) []byte {
	le := binary.LittleEndian
	b := make([]byte, 0, 4+len(as)*(allocFixed+16*nk))
	b = le.AppendUint32(b, uint32(len(as)))
	for _, a := range as {
		b = le.AppendUint32(b, a.Request)
		b = le.AppendUint32(b, a.Offer)
		for k := 0; k < nk; k++ {
			b = le.AppendUint64(b, a.Amount[k])
			b = le.AppendUint64(b, a.Price[k])
		}
	}
	return b
}

// DecodeAllocations parses a policy's output for nk kinds. The length must
// match the count exactly.
func DecodeAllocations(b []byte, nk int) ([]Allocation, error) {
	r := &reader{b: b}
	n := r.u32()
	if r.err != nil {
		return nil, fmt.Errorf("%w: allocations: no count", ErrMalformed)
	}
	sz := uint64(allocFixed + 16*nk)
	if uint64(n)*sz != uint64(len(b)-4) {
		return nil, fmt.Errorf("%w: allocations: count %d needs %d bytes, got %d", ErrMalformed, n, uint64(n)*sz, len(b)-4)
	}
	out := make([]Allocation, n)
	for i := range out {
		a := &out[i]
		a.Request, a.Offer = r.u32(), r.u32()
		a.Amount, a.Price = make([]uint64, nk), make([]uint64, nk)
		for k := 0; k < nk; k++ {
			a.Amount[k], a.Price[k] = r.u64(), r.u64()
		}
	}
	return out, r.err
}

// cosTable is COS[d] = round(cos(d°)·10^6), d = 0..90 (ABI).
var cosTable = [91]int64{1000000, 999848, 999391, 998630, 997564, 996195, 994522, 992546, 990268, 987688, 984808, 981627, 978148, 974370, 970296, 965926, 961262, 956305, 951057, 945519, 939693, 933580, 927184, 920505, 913545, 906308, 898794, 891007, 882948, 874620, 866025, 857167, 848048, 838671, 829038, 819152, 809017, 798636, 788011, 777146, 766044, 754710, 743145, 731354, 719340, 707107, 694658, 681998, 669131, 656059, 642788, 629320, 615661, 601815, 587785, 573576, 559193, 544639, 529919, 515038, 500000, 484810, 469472, 453990, 438371, 422618, 406737, 390731, 374607, 358368, 342020, 325568, 309017, 292372, 275637, 258819, 241922, 224951, 207912, 190809, 173648, 156434, 139173, 121869, 104528, 87156, 69756, 52336, 34899, 17452, 0}

// WithinDistance applies the ABI's integer distance rule: the offer at
// (latO, lonO) is within km of (latR, lonR), coordinates in micro-degrees.
func WithinDistance(latO, lonO, latR, lonR int32, km uint32) bool {
	dy := (int64(latO) - int64(latR)) * 111320 / 1_000_000
	sum := int64(latO) + int64(latR)
	if sum < 0 {
		sum = -sum
	}
	d := sum / 2 / 1_000_000
	if d > 90 {
		d = 90
	}
	q := cosTable[d]
	dx := (int64(lonO) - int64(lonR)) * 111320 / 1_000_000 * q / 1_000_000
	lim := int64(km) * 1000
	return dx*dx+dy*dy <= lim*lim
}

// Eligible applies the ABI's eligibility rules to a (request, offer) pair.
// A replica is held only by an offer that names a node and holds a bond
// (it proves what it holds and backs it), and with Spread only by one
// with a region. (Whether the provider or region is already taken by
// another replica is a rule of the whole list: Validate.)
func Eligible(r *SnapRequest, o *SnapOffer) bool {
	if r.Region != 0 && r.Region != o.Region {
		return false
	}
	if r.Replicas > 0 && (!o.RunsJobs || r.Spread && o.Region == 0) {
		return false
	}
	if o.Attrs&r.Attrs != r.Attrs || o.Reliability < r.MinReliability {
		return false
	}
	if r.WithinKm > 0 && !WithinDistance(o.Lat, o.Lon, r.Lat, r.Lon, r.WithinKm) {
		return false
	}
	for k := range r.Demand {
		if r.Demand[k] > 0 && o.Price[k] > r.MaxPrice[k] {
			return false
		}
	}
	return true
}

// Validate checks an allocation list against its snapshot and returns the
// first broken rule (wrapping ErrInfeasible). A list that passes never
// exceeds any capacity or demand and respects every constraint and price.
func Validate(s *Snapshot, as []Allocation) error {
	nk := len(s.Kinds)
	no, nr := len(s.Offers), len(s.Requests)
	used := make([]uint64, no*nk)
	got := make([]uint64, nr*nk)
	pairs := make(map[uint64]struct{}, len(as))
	served := make([]int, nr) // allocations per request
	for i, a := range as {
		if int(a.Request) >= nr || int(a.Offer) >= no {
			return fmt.Errorf("%w: allocation %d: index out of range (request %d of %d, offer %d of %d)", ErrInfeasible, i, a.Request, nr, a.Offer, no)
		}
		if len(a.Amount) != nk || len(a.Price) != nk {
			return fmt.Errorf("%w: allocation %d: %d kinds, want %d", ErrInfeasible, i, len(a.Amount), nk)
		}
		pk := uint64(a.Request)<<32 | uint64(a.Offer)
		if _, dup := pairs[pk]; dup {
			return fmt.Errorf("%w: allocation %d: request %d and offer %d paired twice", ErrInfeasible, i, a.Request, a.Offer)
		}
		pairs[pk] = struct{}{}
		r, o := &s.Requests[a.Request], &s.Offers[a.Offer]
		if !Eligible(r, o) {
			return fmt.Errorf("%w: allocation %d: offer %d does not meet request %d's constraints", ErrInfeasible, i, o.ID, r.ID)
		}
		nonzero := false
		for k := 0; k < nk; k++ {
			amt := a.Amount[k]
			if amt == 0 {
				continue
			}
			nonzero = true
			if a.Price[k] < o.Price[k] || a.Price[k] > r.MaxPrice[k] {
				return fmt.Errorf("%w: allocation %d: kind %d price %d outside [%d, %d]", ErrInfeasible, i, s.Kinds[k], a.Price[k], o.Price[k], r.MaxPrice[k])
			}
			u, c1 := bits.Add64(used[int(a.Offer)*nk+k], amt, 0)
			g, c2 := bits.Add64(got[int(a.Request)*nk+k], amt, 0)
			if c1 != 0 || u > o.Capacity[k] {
				return fmt.Errorf("%w: allocation %d: offer %d kind %d over capacity %d", ErrInfeasible, i, o.ID, s.Kinds[k], o.Capacity[k])
			}
			if r.Replicas == 0 && (c2 != 0 || g > r.Demand[k]) { // a replica's amount is checked by validateReplicas
				return fmt.Errorf("%w: allocation %d: request %d kind %d over demand %d", ErrInfeasible, i, r.ID, s.Kinds[k], r.Demand[k])
			}
			used[int(a.Offer)*nk+k], got[int(a.Request)*nk+k] = u, g
		}
		if !nonzero {
			return fmt.Errorf("%w: allocation %d: zero allocation", ErrInfeasible, i)
		}
		served[a.Request]++
	}
	if err := validateReplicas(s, as, served); err != nil {
		return err
	}
	for ri := range s.Requests {
		r := &s.Requests[ri]
		if !r.Bundle || served[ri] == 0 {
			continue
		}
		if served[ri] > 1 {
			return fmt.Errorf("%w: bundle request %d served by %d offers", ErrInfeasible, r.ID, served[ri])
		}
		for k := 0; k < nk; k++ {
			if got[ri*nk+k] != r.Demand[k] {
				return fmt.Errorf("%w: bundle request %d not served in full on kind %d", ErrInfeasible, r.ID, s.Kinds[k])
			}
		}
	}
	return nil
}

// validateReplicas checks the replica rules: a replicated request gets at
// most Replicas allocations, each its full demand on every kind (a replica
// is whole), from providers distinct from each other and from the replicas
// it holds, and with Spread in regions distinct likewise.
func validateReplicas(s *Snapshot, as []Allocation, served []int) error {
	nk := len(s.Kinds)
	type slot struct{ req, v uint32 }
	var takenProv, takenRegion map[slot]bool
	for _, h := range s.Held {
		if takenProv == nil {
			takenProv, takenRegion = map[slot]bool{}, map[slot]bool{}
		}
		takenProv[slot{h.Request, h.Provider}] = true
		takenRegion[slot{h.Request, h.Region}] = true
	}
	for i, a := range as {
		r := &s.Requests[a.Request]
		if r.Replicas == 0 {
			continue
		}
		if takenProv == nil {
			takenProv, takenRegion = map[slot]bool{}, map[slot]bool{}
		}
		o := &s.Offers[a.Offer]
		for k := 0; k < nk; k++ {
			if a.Amount[k] != r.Demand[k] {
				return fmt.Errorf("%w: allocation %d: a replica of request %d gets %d of kind %d, not its whole demand %d", ErrInfeasible, i, r.ID, a.Amount[k], s.Kinds[k], r.Demand[k])
			}
		}
		if ps := (slot{a.Request, o.Provider}); takenProv[ps] {
			return fmt.Errorf("%w: allocation %d: request %d already has a replica with provider %d", ErrInfeasible, i, r.ID, o.Provider)
		} else {
			takenProv[ps] = true
		}
		if r.Spread {
			if rs := (slot{a.Request, o.Region}); takenRegion[rs] {
				return fmt.Errorf("%w: allocation %d: request %d already has a replica in region %d", ErrInfeasible, i, r.ID, o.Region)
			} else {
				takenRegion[rs] = true
			}
		}
	}
	for ri := range s.Requests {
		if r := &s.Requests[ri]; r.Replicas > 0 && served[ri] > int(r.Replicas) {
			return fmt.Errorf("%w: request %d wants %d replicas and got %d", ErrInfeasible, r.ID, r.Replicas, served[ri])
		}
	}
	return nil
}
