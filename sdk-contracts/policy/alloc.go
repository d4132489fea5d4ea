package policy

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Allocation assigns part of a request to an offer. Request and Offer are
// positions in the snapshot; Amount and Price are indexed like
// Snapshot.Kinds. A kind with Amount 0 should have Price 0.
type Allocation struct {
	Request, Offer uint32
	Amount         [MaxKinds]uint64
	Price          [MaxKinds]uint64
}

// AppendAllocations appends the ABI encoding of allocs (count, then the
// records, nkinds per-kind entries each) to b.
func AppendAllocations(b []byte, nkinds int, allocs []Allocation) []byte {
	b = binary.LittleEndian.AppendUint32(b, uint32(len(allocs)))
	for i := range allocs {
		a := &allocs[i]
		b = binary.LittleEndian.AppendUint32(b, a.Request)
		b = binary.LittleEndian.AppendUint32(b, a.Offer)
		for k := range nkinds {
			b = binary.LittleEndian.AppendUint64(b, a.Amount[k])
			b = binary.LittleEndian.AppendUint64(b, a.Price[k])
		}
	}
	return b
}

// EncodeAllocations returns the ABI encoding of allocs.
func EncodeAllocations(nkinds int, allocs []Allocation) []byte {
	return AppendAllocations(make([]byte, 0, 4+len(allocs)*AllocationSize(nkinds)), nkinds, allocs)
}

// DecodeAllocations parses an allocation list for a snapshot with nkinds
// kinds. It checks only the framing (count against length, no trailing
// bytes); Snapshot.CheckAllocations checks the content.
func DecodeAllocations(b []byte, nkinds int) ([]Allocation, error) {
	if nkinds < 0 || nkinds > MaxKinds {
		return nil, fmt.Errorf("policy: DecodeAllocations: %d kinds", nkinds)
	}
	if len(b) < 4 {
		return nil, corrupt("allocations: %d bytes, count needs 4", len(b))
	}
	n := uint64(binary.LittleEndian.Uint32(b))
	b = b[4:]
	sz := uint64(AllocationSize(nkinds))
	if n*sz != uint64(len(b)) {
		return nil, corrupt("allocations: %d records need %d bytes, have %d", n, n*sz, len(b))
	}
	out := make([]Allocation, n)
	for i := range out {
		a := &out[i]
		a.Request = binary.LittleEndian.Uint32(b)
		a.Offer = binary.LittleEndian.Uint32(b[4:])
		for k := range nkinds {
			a.Amount[k] = binary.LittleEndian.Uint64(b[8+16*k:])
			a.Price[k] = binary.LittleEndian.Uint64(b[16+16*k:])
		}
		b = b[sz:]
	}
	return out, nil
}

// ErrInvalid is wrapped by every CheckAllocations error.
var ErrInvalid = errors.New("policy: invalid allocation")

func invalid(i int, format string, args ...any) error {
	return fmt.Errorf("%w %d: "+format, append([]any{ErrInvalid, i}, args...)...)
}

// CheckAllocations applies the kernel's validation rules of the ABI to
// allocs: indexes in range, at most one allocation per (request, offer),
// no zero allocation, every constraint of Eligible met, every price of a
// kind with an amount inside [offer price, request max price], no offer
// above its capacity and no request above its demand on any kind, and a
// bundle served by one offer in full on every kind with demand. Prices of
// kinds with amount 0 are not checked. It is meant for tests; it allocates
// per call.
func (s *Snapshot) CheckAllocations(allocs []Allocation) error {
	nk := len(s.Kinds)
	no, nr := len(s.Offers), len(s.Requests)
	used := make([]uint64, no*nk)
	got := make([]uint64, nr*nk)
	served := make([]int32, nr) // allocations per request
	pairs := make(map[uint64]struct{}, len(allocs))
	for i := range allocs {
		a := &allocs[i]
		if int(a.Request) >= nr || int(a.Offer) >= no {
			return invalid(i, "index out of range (request %d of %d, offer %d of %d)", a.Request, nr, a.Offer, no)
		}
		key := uint64(a.Request)<<32 | uint64(a.Offer)
		if _, dup := pairs[key]; dup {
			return invalid(i, "second allocation for request %d, offer %d", a.Request, a.Offer)
		}
		pairs[key] = struct{}{}
		r, o := &s.Requests[a.Request], &s.Offers[a.Offer]
		if !Eligible(o, r, nk) {
			return invalid(i, "request %d not eligible for offer %d", a.Request, a.Offer)
		}
		zero := true
		for k := range nk {
			x := a.Amount[k]
			if x == 0 {
				continue
			}
			zero = false
			if a.Price[k] < o.Price[k] || a.Price[k] > r.MaxPrice[k] {
				return invalid(i, "%s price %d outside [%d, %d]", s.Kinds[k], a.Price[k], o.Price[k], r.MaxPrice[k])
			}
			u := &used[int(a.Offer)*nk+k]
			if *u += x; *u < x || *u > o.Capacity[k] {
				return invalid(i, "offer %d over capacity %d on %s", a.Offer, o.Capacity[k], s.Kinds[k])
			}
			g := &got[int(a.Request)*nk+k]
			if *g += x; r.Replicas == 0 && (*g < x || *g > r.Demand[k]) { // a replica's amount: checkReplica
				return invalid(i, "request %d over demand %d on %s", a.Request, r.Demand[k], s.Kinds[k])
			}
		}
		if zero {
			return invalid(i, "zero allocation")
		}
		served[a.Request]++
		if r.Replicas > 0 {
			if err := s.checkReplica(i, a, allocs[:i]); err != nil {
				return err
			}
		}
		if r.Bundle() {
			if served[a.Request] > 1 {
				return invalid(i, "bundle request %d served by a second offer", a.Request)
			}
			for k := range nk {
				if a.Amount[k] != r.Demand[k] {
					return invalid(i, "bundle request %d: %s amount %d, demand %d", a.Request, s.Kinds[k], a.Amount[k], r.Demand[k])
				}
			}
		}
	}
	return nil
}

// checkReplica checks allocation i, of a replicated request, against the
// replica rules: a whole replica, at most Replicas of them, each from a
// provider (with FlagSpread a region) the request holds none with and no
// earlier allocation gave it.
func (s *Snapshot) checkReplica(i int, a *Allocation, earlier []Allocation) error {
	r, o := &s.Requests[a.Request], &s.Offers[a.Offer]
	for k := range s.Kinds {
		if a.Amount[k] != r.Demand[k] {
			return invalid(i, "replica of request %d: %s amount %d, demand %d", a.Request, s.Kinds[k], a.Amount[k], r.Demand[k])
		}
	}
	if !o.RunsJobs() || r.Spread() && o.Region == 0 {
		return invalid(i, "replica of request %d on offer %d, which holds no bond or has no region", a.Request, a.Offer)
	}
	n := 1
	clash := func(p, region uint32) bool { return p == o.Provider || r.Spread() && region == o.Region }
	for _, h := range s.Held {
		if h.Request == a.Request && clash(h.Provider, h.Region) {
			return invalid(i, "replica of request %d on provider %d or region %d it already holds", a.Request, o.Provider, o.Region)
		}
	}
	for _, e := range earlier {
		if e.Request != a.Request {
			continue
		}
		n++
		if eo := &s.Offers[e.Offer]; clash(eo.Provider, eo.Region) {
			return invalid(i, "second replica of request %d on provider %d or region %d", a.Request, o.Provider, o.Region)
		}
	}
	if n > int(r.Replicas) {
		return invalid(i, "request %d wants %d replicas, got %d", a.Request, r.Replicas, n)
	}
	return nil
}
