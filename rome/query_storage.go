package rome

import (
	"encoding/binary"
	"fmt"

	"github.com/sos-kernel/sos/ledger"
)

// Read access to storage leases and meters for the API, the holder nodes'
// provers and tools. Queries charge no gas and never write.

// DueHolding is a holding a node must answer in the current epoch, with
// the segments challenged.
type DueHolding struct {
	Lease    uint64
	Pin      uint32
	Request  uint64
	Blob     ledger.BlobRef
	Segments []uint64
}

// StorageDue is a node's work for the current epoch: the challenged
// holdings (sampled, and those missed before) it has not answered yet, in
// the order its storage_proof transactions must answer them (at most
// limit; 0: all).
type StorageDue struct {
	Epoch  uint64
	Seeded bool // the epoch has challenges
	// DrawHeight is the block at whose end they were drawn (when
	// Seeded): proofs go into the blocks after it.
	DrawHeight uint64
	Holdings   []DueHolding
}

// StorageDue lists what node still has to prove in the current epoch.
func (m *Market) StorageDue(st *ledger.State, node ledger.Address, limit int) (*StorageDue, error) {
	s := m.reader(st)
	p, err := s.params(m.gen)
	if err != nil {
		return nil, err
	}
	clock, err := s.clock(p)
	if err != nil {
		return nil, err
	}
	out := &StorageDue{Epoch: clock.Epoch}
	seed, ok, err := s.seed()
	if err != nil || !ok || seed.Epoch != clock.Epoch {
		return out, err
	}
	out.Seeded, out.DrawHeight = true, seed.Height
	chal, ok, err := s.challenged(node)
	if err != nil || !ok || chal.Epoch != clock.Epoch {
		return out, err
	}
	rd, err := s.round(node, clock.Epoch)
	if err != nil {
		return nil, err
	}
	items := chal.Items[min(len(chal.Items), int(rd.Proven)+int(rd.Declared)):]
	if limit > 0 && len(items) > limit {
		items = items[:limit]
	}
	for _, it := range items {
		var h Holding
		if _, err := s.get(holdingKey(node, it.Lease, it.Pin), &h); err != nil {
			return nil, err
		}
		out.Holdings = append(out.Holdings, DueHolding{Lease: it.Lease, Pin: it.Pin, Request: h.Request, Blob: it.Blob,
			Segments: Challenges(seed.Seed, it.Lease, it.Blob.ID, it.Blob.Size, p.StorageSegments)})
	}
	return out, nil
}

// HoldingInfo is a holding of a node.
type HoldingInfo struct {
	Node    ledger.Address
	Lease   uint64
	Pin     uint32
	Holding Holding
}

// NodeHoldings lists the holdings of node (what it must fetch and keep),
// in key order, at most limit (0: all).
func (m *Market) NodeHoldings(st *ledger.State, node ledger.Address, limit int) ([]HoldingInfo, error) {
	prefix := rkey(tagHolding, node[:])
	var out []HoldingInfo
	var derr error
	err := st.Iterate(prefix, prefixEnd(prefix), false, func(k, v []byte) bool {
		n, lease, pin, ok := holdingOf(k)
		if !ok {
			return true
		}
		var h Holding
		if derr = m.codec.Unmarshal(v, &h); derr != nil {
			return false
		}
		out = append(out, HoldingInfo{Node: n, Lease: lease, Pin: pin, Holding: h})
		return limit <= 0 || len(out) < limit
	})
	if err == nil {
		err = derr
	}
	return out, err
}

// HolderStatus is how one lease holds a pinned blob.
type HolderStatus struct {
	LeaseID  uint64         `json:"lease_id"`
	OfferID  uint64         `json:"offer_id"`
	Provider ledger.Address `json:"provider"`
	Node     ledger.Address `json:"node"`
	Region   string         `json:"region"`
	Lease    string         `json:"lease_status"`
	// Holding: the node holds it (false: the lease ended or lost it).
	Holding         bool   `json:"holding"`
	FromEpoch       uint64 `json:"from_epoch"` // first challenged epoch
	LastProofHeight uint64 `json:"last_proof_height"`
	LastProofEpoch  uint64 `json:"last_proof_epoch"`
	Misses          uint64 `json:"misses"`
	LastMissEpoch   uint64 `json:"last_miss_epoch"`
}

// PinStatus is a pin of a blob and who holds it.
type PinStatus struct {
	RequestID uint64         `json:"request_id"`
	Pin       uint32         `json:"pin"`
	Blob      ledger.BlobRef `json:"blob"`
	Height    uint64         `json:"height"`
	Epoch     uint64         `json:"epoch"`
	Replicas  uint16         `json:"replicas"`
	Holders   []HolderStatus `json:"holders"`
}

// BlobPins lists where blob id is pinned and how each lease holds it: the
// last proof height per holder, misses (at most limit pins; 0: all).
func (m *Market) BlobPins(st *ledger.State, id ledger.BlobID, limit int) ([]PinStatus, error) {
	s := m.reader(st)
	p, err := s.params(m.gen)
	if err != nil {
		return nil, err
	}
	clock, err := s.clock(p)
	if err != nil {
		return nil, err
	}
	prefix := rkey(tagBlobPin, id[:])
	type ref struct {
		req uint64
		pin uint32
	}
	var refs []ref
	if err := st.Iterate(prefix, prefixEnd(prefix), false, func(k, v []byte) bool {
		if len(k) == len(prefix)+8 && len(v) == 8 {
			refs = append(refs, ref{binary.BigEndian.Uint64(k[len(prefix):]), uint32(binary.BigEndian.Uint64(v))})
		}
		return limit <= 0 || len(refs) < limit
	}); err != nil {
		return nil, err
	}
	out := []PinStatus{}
	for _, rf := range refs {
		pn, err := s.pin(rf.req, rf.pin)
		if err != nil {
			return nil, err
		}
		r, err := s.request(rf.req)
		if err != nil {
			return nil, err
		}
		ps := PinStatus{RequestID: rf.req, Pin: rf.pin, Blob: pn.Blob, Height: pn.Height, Epoch: pn.Epoch, Replicas: r.Replicas, Holders: []HolderStatus{}}
		leases, err := s.requestLeases(rf.req)
		if err != nil {
			return nil, err
		}
		for _, l := range leases {
			hs, err := m.holderStatus(s, clock.Epoch, l, rf.pin)
			if err != nil {
				return nil, err
			}
			ps.Holders = append(ps.Holders, hs)
		}
		out = append(out, ps)
	}
	return out, nil
}

func (m *Market) holderStatus(s *store, epoch uint64, l *Lease, pin uint32) (HolderStatus, error) {
	o, err := s.offer(l.OfferID)
	if err != nil {
		return HolderStatus{}, err
	}
	hs := HolderStatus{LeaseID: l.ID, OfferID: o.ID, Provider: l.Provider, Node: o.Node, Region: o.Region, Lease: StatusName(l.Status)}
	var h Holding
	ok, err := s.get(holdingKey(o.Node, l.ID, pin), &h)
	if err != nil {
		return hs, err
	}
	hs.Holding, hs.FromEpoch = ok, h.From
	var f Fault
	if _, err := s.get(rkey(tagFault, u64(l.ID), u32(pin)), &f); err != nil {
		return hs, err
	}
	hs.Misses, hs.LastMissEpoch, hs.LastProofHeight = f.Misses, f.LastMiss, f.LastProof
	// A held blob's last proof is its node's: each proof answers a random
	// sample of everything the node holds (the chain keeps one proof
	// record per node, not one per holding).
	if rd, err := s.round(o.Node, epoch); err != nil {
		return hs, err
	} else if ok && rd.LastEpoch >= h.From && rd.LastHeight >= hs.LastProofHeight {
		hs.LastProofHeight, hs.LastProofEpoch = rd.LastHeight, rd.LastEpoch
	}
	return hs, nil
}

// RequestPins lists the blobs pinned to a request, in pin order (at most
// limit; 0: all).
func (m *Market) RequestPins(st *ledger.State, req uint64, limit int) ([]Pin, error) {
	return list[Pin](m, st, rkey(tagPin, u64(req)), false, limit, nil)
}

// LeaseStorage is what a lease holds and how it proved it (ok false: it
// holds nothing).
func (m *Market) LeaseStorage(st *ledger.State, lease uint64) (*LeaseStorage, bool, error) {
	return m.reader(st).leaseStorage(lease)
}

// Holds reports whether node holds blob id for request req (a lease of the
// request names node and holds the pin): the data plane serves a holder
// the pinned blob of the request it holds.
func (m *Market) Holds(st *ledger.State, req uint64, id ledger.BlobID, node ledger.Address) (bool, error) {
	s := m.reader(st)
	raw, err := st.Get(rkey(tagBlobPin, id[:], u64(req)))
	if err != nil || len(raw) != 8 {
		return false, err
	}
	pin := uint32(binary.BigEndian.Uint64(raw))
	leases, err := s.requestLeases(req)
	if err != nil {
		return false, err
	}
	for _, l := range leases {
		raw, err := st.Get(holdingKey(node, l.ID, pin))
		if err != nil {
			return false, err
		}
		if raw != nil {
			return true, nil
		}
	}
	return false, nil
}

// Meters lists registered meters, newest first (keep filters).
func (m *Market) Meters(st *ledger.State, limit int, keep func(*Meter) bool) ([]Meter, error) {
	return list(m, st, rkey(tagMeter), true, limit, keep)
}

// Meter returns one meter.
func (m *Market) Meter(st *ledger.State, id uint64) (*Meter, error) { return m.reader(st).meter(id) }

// MeterUse is what a meter measured for a lease's kind in an epoch (ok
// false: nothing).
func (m *Market) MeterUse(st *ledger.State, lease, epoch uint64, kind uint8) (*MeterUse, bool, error) {
	return m.reader(st).meterUse(lease, epoch, kind)
}

// StorageEpoch is a lease's storage in an epoch: bytes due, missed and
// proven (so far, for the current epoch).
type StorageEpoch struct {
	Due    uint64 `json:"due_bytes"`
	Missed uint64 `json:"missed_bytes"`
	Proven uint64 `json:"proven_bytes"`
}

// LeaseStorageEpoch reports a lease's storage in epoch e.
func (m *Market) LeaseStorageEpoch(st *ledger.State, lease, e uint64) (StorageEpoch, error) {
	s := m.reader(st)
	ls, ok, err := s.leaseStorage(lease)
	if err != nil || !ok {
		return StorageEpoch{}, err
	}
	missed, err := s.getU64(rkey(tagMissed, u64(lease), u64(e)))
	if err != nil {
		return StorageEpoch{}, fmt.Errorf("rome: lease %d: %w", lease, err)
	}
	due := ls.DueBytes(e)
	return StorageEpoch{Due: due, Missed: missed, Proven: due - min(due, missed)}, nil
}
