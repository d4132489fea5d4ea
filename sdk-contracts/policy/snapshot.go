package policy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
)

// Version is the snapshot format version this package reads and writes
// (2: offers carry their provider's job record; 3: offers carry a
// provider id, requests a replica count, and the snapshot the replicas
// requests already hold).
const Version = 3

// MaxKinds bounds the kinds of a snapshot: the ABI fixes the ids 1..4.
const MaxKinds = 4 // Book.Fits, SatDot, AtMost and the policies unroll four kinds: a fifth is a new ABI version

// Kind is a resource kind id.
type Kind uint8

// The resource kinds of the ABI.
const (
	Compute   Kind = 1 // token uTFLP
	Bandwidth Kind = 2 // token uTBS
	Energy    Kind = 3 // token uKWTT
	Storage   Kind = 4 // token uSTOR
)

// String returns the kind's name, or "kind(N)" for an id outside the ABI.
func (k Kind) String() string {
	switch k {
	case Compute:
		return "compute"
	case Bandwidth:
		return "bandwidth"
	case Energy:
		return "energy"
	case Storage:
		return "storage"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Request flag bits: FlagBundle marks a request that must be served in
// full by one offer; FlagSpread a replicated request whose replicas must
// be in distinct regions.
const (
	FlagBundle = 1
	FlagSpread = 2
)

// ErrCorrupt is wrapped by every decoding error.
var ErrCorrupt = errors.New("policy: corrupt input")

// Snapshot is the input of one policy call: the open market of an epoch.
type Snapshot struct {
	Epoch uint64
	// Kinds lists the kind ids in ascending order; per-kind arrays of
	// offers, requests and allocations are indexed by position in Kinds.
	Kinds    []Kind
	Offers   []Offer   // ascending ID
	Requests []Request // ascending ID
	// Held lists the replicas replicated requests already have, ascending
	// by (request index, provider): new replicas must avoid their
	// providers (and, with FlagSpread, their regions).
	Held []Held
}

// Held is a replica a request already holds.
type Held struct {
	Request  uint32 // index in Snapshot.Requests
	Provider uint32
	Region   uint32
}

// Offer is a provider's remaining capacity this epoch.
type Offer struct {
	ID          uint64
	Region      uint32 // 0 = none
	Lat, Lon    int32  // micro-degrees
	Attrs       uint64 // bit set
	Reliability uint16 // basis points
	Flags       uint8  // FlagRunsJobs
	Jobs        JobRecord
	// Provider identifies the offer's owner (ids from 1, stable across
	// epochs): two replicas of a request never share one.
	Provider uint32
	Capacity [MaxKinds]uint64
	Price    [MaxKinds]uint64 // base units of the kind's token per unit per epoch
}

// FlagRunsJobs marks an offer that names a node and holds a bond: its
// leases can run jobs.
const FlagRunsJobs = 1

// JobRecord counts how the jobs of an offer's provider ended, on every
// lease it ever had.
type JobRecord struct {
	Completed uint64 // exit code 0
	Failed    uint64 // the program failed; the provider did its job
	TimedOut  uint64 // no result in time
	Slashed   uint64 // re-execution proved the result wrong
}

// RunsJobs reports whether the offer's leases can run jobs.
func (o *Offer) RunsJobs() bool { return o.Flags&FlagRunsJobs != 0 }

// JobFailureBps is the share of the provider's jobs that timed out or were
// slashed, in basis points (0 for a provider without jobs): the kernel's
// built-in policy breaks price ties by it, lower first.
func (o *Offer) JobFailureBps() uint32 {
	r := &o.Jobs
	bad := SatAdd(r.TimedOut, r.Slashed)
	total := SatAdd(SatAdd(r.Completed, r.Failed), bad)
	if total == 0 {
		return 0
	}
	hi, lo := bits.Mul64(bad, 10_000)
	q, _ := bits.Div64(hi, lo, total) // hi < total since bad ≤ total
	return uint32(q)
}

// Request is a consumer's open demand.
type Request struct {
	ID             uint64
	Region         uint32 // 0 = any
	Lat, Lon       int32  // micro-degrees
	WithinKm       uint32 // 0 = no distance limit
	Attrs          uint64 // bits the offer must have
	MinReliability uint16 // basis points
	Flags          uint8  // FlagBundle, FlagSpread
	// Replicas is how many more whole replicas a replicated request wants
	// (0: an ordinary request); Demand is then the demand of one replica.
	Replicas uint16
	Demand   [MaxKinds]uint64
	MaxPrice [MaxKinds]uint64
}

// Bundle reports whether the request must land, in full, on one offer.
func (r *Request) Bundle() bool { return r.Flags&FlagBundle != 0 }

// Spread reports whether a replicated request's replicas must be in
// distinct regions.
func (r *Request) Spread() bool { return r.Flags&FlagSpread != 0 }

const (
	headerSize     = 4 + 4 + 8 + 1
	offerFixed     = 8 + 4 + 4 + 4 + 8 + 2 + 1 + 4*8 + 4
	requestFixed   = 8 + 4 + 4 + 4 + 4 + 8 + 2 + 1 + 2
	heldSize       = 4 + 4 + 4
	perKindEntry   = 16
	allocFixed     = 4 + 4
	magic          = "ROME"
	maxCountOnWire = 1 << 31
)

// OfferSize and RequestSize are the encoded sizes of one record.
func OfferSize(nkinds int) int   { return offerFixed + nkinds*perKindEntry }
func RequestSize(nkinds int) int { return requestFixed + nkinds*perKindEntry }

// AllocationSize is the encoded size of one allocation.
func AllocationSize(nkinds int) int { return allocFixed + nkinds*perKindEntry }

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, args...)...)
}

// Decode parses a snapshot. It rejects a wrong magic or version, kinds that
// are not ascending ABI ids, counts that do not match the length, ids that
// are not strictly ascending and trailing bytes.
func Decode(b []byte) (*Snapshot, error) {
	s := new(Snapshot)
	if err := s.decode(b); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Snapshot) decode(b []byte) error {
	if len(b) < headerSize {
		return corrupt("snapshot: %d bytes, header needs %d", len(b), headerSize)
	}
	if string(b[:4]) != magic {
		return corrupt("snapshot: magic %q, want %q", b[:4], magic)
	}
	if v := binary.LittleEndian.Uint32(b[4:]); v != Version {
		return corrupt("snapshot: version %d, want %d", v, Version)
	}
	s.Epoch = binary.LittleEndian.Uint64(b[8:])
	nk := int(b[16])
	b = b[headerSize:]
	if nk > MaxKinds || len(b) < nk+8 {
		return corrupt("snapshot: %d kinds", nk)
	}
	s.Kinds = make([]Kind, nk)
	for i := range nk {
		k := Kind(b[i])
		if k < Compute || k > Storage || (i > 0 && k <= s.Kinds[i-1]) {
			return corrupt("snapshot: kind %d at %d: want ascending ids in 1..4", k, i)
		}
		s.Kinds[i] = k
	}
	b = b[nk:]
	no := uint64(binary.LittleEndian.Uint32(b))
	nr := uint64(binary.LittleEndian.Uint32(b[4:]))
	b = b[8:]
	osz, rsz := uint64(OfferSize(nk)), uint64(RequestSize(nk))
	if no*osz+nr*rsz+4 > uint64(len(b)) {
		return corrupt("snapshot: %d offers and %d requests need %d bytes, have %d", no, nr, no*osz+nr*rsz+4, len(b))
	}
	s.Offers = make([]Offer, no)
	for i := range s.Offers {
		o := &s.Offers[i]
		o.ID = binary.LittleEndian.Uint64(b)
		o.Region = binary.LittleEndian.Uint32(b[8:])
		o.Lat = int32(binary.LittleEndian.Uint32(b[12:]))
		o.Lon = int32(binary.LittleEndian.Uint32(b[16:]))
		o.Attrs = binary.LittleEndian.Uint64(b[20:])
		o.Reliability = binary.LittleEndian.Uint16(b[28:])
		o.Flags = b[30]
		o.Jobs.Completed = binary.LittleEndian.Uint64(b[31:])
		o.Jobs.Failed = binary.LittleEndian.Uint64(b[39:])
		o.Jobs.TimedOut = binary.LittleEndian.Uint64(b[47:])
		o.Jobs.Slashed = binary.LittleEndian.Uint64(b[55:])
		o.Provider = binary.LittleEndian.Uint32(b[63:])
		if o.Flags&^FlagRunsJobs != 0 || o.Provider == 0 {
			return corrupt("snapshot: offer %d: flags %#x, provider %d", i, o.Flags, o.Provider)
		}
		p := b[offerFixed:]
		for k := range nk {
			o.Capacity[k] = binary.LittleEndian.Uint64(p[16*k:])
			o.Price[k] = binary.LittleEndian.Uint64(p[16*k+8:])
		}
		if i > 0 && o.ID <= s.Offers[i-1].ID {
			return corrupt("snapshot: offer %d: id %d not above %d", i, o.ID, s.Offers[i-1].ID)
		}
		b = b[osz:]
	}
	s.Requests = make([]Request, nr)
	for i := range s.Requests {
		r := &s.Requests[i]
		r.ID = binary.LittleEndian.Uint64(b)
		r.Region = binary.LittleEndian.Uint32(b[8:])
		r.Lat = int32(binary.LittleEndian.Uint32(b[12:]))
		r.Lon = int32(binary.LittleEndian.Uint32(b[16:]))
		r.WithinKm = binary.LittleEndian.Uint32(b[20:])
		r.Attrs = binary.LittleEndian.Uint64(b[24:])
		r.MinReliability = binary.LittleEndian.Uint16(b[32:])
		r.Flags = b[34]
		r.Replicas = binary.LittleEndian.Uint16(b[35:])
		if r.Flags&^(FlagBundle|FlagSpread) != 0 || r.Spread() && r.Replicas == 0 || r.Bundle() && r.Replicas > 0 {
			return corrupt("snapshot: request %d: flags %#x with %d replicas", i, r.Flags, r.Replicas)
		}
		p := b[requestFixed:]
		for k := range nk {
			r.Demand[k] = binary.LittleEndian.Uint64(p[16*k:])
			r.MaxPrice[k] = binary.LittleEndian.Uint64(p[16*k+8:])
		}
		if i > 0 && r.ID <= s.Requests[i-1].ID {
			return corrupt("snapshot: request %d: id %d not above %d", i, r.ID, s.Requests[i-1].ID)
		}
		b = b[rsz:]
	}
	nh := uint64(binary.LittleEndian.Uint32(b))
	b = b[4:]
	if nh*heldSize != uint64(len(b)) {
		return corrupt("snapshot: %d held replicas need %d bytes, have %d", nh, nh*heldSize, len(b))
	}
	if nh > 0 {
		s.Held = make([]Held, nh)
	}
	for i := range s.Held {
		h := &s.Held[i]
		h.Request = binary.LittleEndian.Uint32(b)
		h.Provider = binary.LittleEndian.Uint32(b[4:])
		h.Region = binary.LittleEndian.Uint32(b[8:])
		switch {
		case uint64(h.Request) >= nr || s.Requests[h.Request].Replicas == 0:
			return corrupt("snapshot: held replica %d: request index %d is not a replicated request", i, h.Request)
		case h.Provider == 0:
			return corrupt("snapshot: held replica %d: provider 0", i)
		case i > 0 && (s.Held[i-1].Request > h.Request || s.Held[i-1].Request == h.Request && s.Held[i-1].Provider >= h.Provider):
			return corrupt("snapshot: held replicas not ascending by (request, provider)")
		}
		b = b[heldSize:]
	}
	return nil
}

// Append appends the ABI encoding of s to b. Per-kind entries beyond
// len(s.Kinds) are not encoded. It panics if s has more than MaxKinds kinds
// (a programmer error).
func (s *Snapshot) Append(b []byte) []byte {
	nk := len(s.Kinds)
	if nk > MaxKinds {
		panic("policy: Snapshot.Append: more than MaxKinds kinds")
	}
	b = append(b, magic...)
	b = binary.LittleEndian.AppendUint32(b, Version)
	b = binary.LittleEndian.AppendUint64(b, s.Epoch)
	b = append(b, byte(nk))
	for _, k := range s.Kinds {
		b = append(b, byte(k))
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.Offers)))
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.Requests)))
	for i := range s.Offers {
		o := &s.Offers[i]
		b = binary.LittleEndian.AppendUint64(b, o.ID)
		b = binary.LittleEndian.AppendUint32(b, o.Region)
		b = binary.LittleEndian.AppendUint32(b, uint32(o.Lat))
		b = binary.LittleEndian.AppendUint32(b, uint32(o.Lon))
		b = binary.LittleEndian.AppendUint64(b, o.Attrs)
		b = binary.LittleEndian.AppendUint16(b, o.Reliability)
		b = append(b, o.Flags)
		b = binary.LittleEndian.AppendUint64(b, o.Jobs.Completed)
		b = binary.LittleEndian.AppendUint64(b, o.Jobs.Failed)
		b = binary.LittleEndian.AppendUint64(b, o.Jobs.TimedOut)
		b = binary.LittleEndian.AppendUint64(b, o.Jobs.Slashed)
		b = binary.LittleEndian.AppendUint32(b, o.Provider)
		for k := range nk {
			b = binary.LittleEndian.AppendUint64(b, o.Capacity[k])
			b = binary.LittleEndian.AppendUint64(b, o.Price[k])
		}
	}
	for i := range s.Requests {
		r := &s.Requests[i]
		b = binary.LittleEndian.AppendUint64(b, r.ID)
		b = binary.LittleEndian.AppendUint32(b, r.Region)
		b = binary.LittleEndian.AppendUint32(b, uint32(r.Lat))
		b = binary.LittleEndian.AppendUint32(b, uint32(r.Lon))
		b = binary.LittleEndian.AppendUint32(b, r.WithinKm)
		b = binary.LittleEndian.AppendUint64(b, r.Attrs)
		b = binary.LittleEndian.AppendUint16(b, r.MinReliability)
		b = append(b, r.Flags)
		b = binary.LittleEndian.AppendUint16(b, r.Replicas)
		for k := range nk {
			b = binary.LittleEndian.AppendUint64(b, r.Demand[k])
			b = binary.LittleEndian.AppendUint64(b, r.MaxPrice[k])
		}
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.Held)))
	for _, h := range s.Held {
		b = binary.LittleEndian.AppendUint32(b, h.Request)
		b = binary.LittleEndian.AppendUint32(b, h.Provider)
		b = binary.LittleEndian.AppendUint32(b, h.Region)
	}
	return b
}

// Size is the length of the encoding of s.
func (s *Snapshot) Size() int {
	nk := len(s.Kinds)
	return headerSize + nk + 8 + len(s.Offers)*OfferSize(nk) + len(s.Requests)*RequestSize(nk) + 4 + len(s.Held)*heldSize
}

// Encode returns the ABI encoding of s.
func (s *Snapshot) Encode() []byte { return s.Append(make([]byte, 0, s.Size())) }
