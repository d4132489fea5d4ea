package rome

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/ledger"
)

// Storage leases: a request's consumer pins blobs (BlobPin); every lease of
// the request then holds each of them — a Holding per (node, lease, pin) —
// and its node proves them. At the end of the first block of epoch e
// (drawChallenges, from EndBlock) the challenge seed of e is fixed from
// that block's PrevHash, the hash of e-1's last block (unknown until that
// block existed); an epoch of one block has it fixed at the end of e-1's
// last block instead, from the hash of the block before, since it has no
// block after its first to answer in. Proofs of e are accepted in the
// blocks after the draw, to e's last. From it, setChallenges picks what each node
// must prove in e (its Challenged list): storage_samples of its holdings
// drawn at random (SamplePlaces over the node's holdings by slot; all of
// them when it has no more), every holding it missed and has not proven
// since (a suspect), keeping those due in e; Challenges derives the
// segments of each. During epoch e each holder node sends storage_proof
// transactions answering its list in order from where its last answer
// stopped (its Round), with the segments themselves and their paths to
// the blob id, checked by blob.VerifyProof. At the end of epoch e every
// challenged holding left unanswered, and every one the node declared it
// cannot prove, is a miss: the lease is not paid for that blob's bytes in
// e, storage_slash_bps of its offer's remaining bond goes to the consumer
// (once per lease and epoch), the miss counts in the provider's record,
// the holding is challenged every epoch until it is proven again and,
// after storage_repair_misses epochs with a miss in a row, the replica
// moves: the lease ends and the request's slot is offered to the market
// again; the new holder fetches from the others.
//
// Sampling keeps an epoch's proofs bounded by the number of holder nodes
// × storage_samples rather than by the number of holdings (the figure and
// the detection odds are in docs/storage.md). A storage_proof writes one
// record of the node's (its Round), whatever the number of holdings it
// answers. Settlement pays storage as proven byte-epochs:
// the bytes due in the epoch (per lease, bucketed by the epoch their
// challenges start) minus the missed bytes. Both are known in advance or
// recorded per lease and epoch, so it is lazy (settle in epoch.go): a
// lease's proven epochs are paid together at its next settlement, an
// epoch with a miss with the next epoch's end.

// Gas of storage transactions beyond their state access.
const (
	GasPin           = 20_000
	GasStorageProof  = 10_000 // per transaction
	GasStorageEntry  = 1_000  // per holding answered
	GasStorageVerify = 8_000  // per segment proof checked (≈8 µs of CPU for a 1 GiB blob)
)

// MaxPins bounds the blobs pinned to one request.
const MaxPins = 1 << 20

// DefaultStorageSamples is storage_samples by default; MaxStorageSamples
// bounds it (a node's list of challenges fits one storage_proof).
const (
	DefaultStorageSamples = 8
	MaxStorageSamples     = ledger.MaxStorageEntries / 2
)

// Pin is a blob pinned to a request.
type Pin struct {
	_      struct{}       `cbor:",toarray"`
	Index  uint32         `json:"pin"`
	Blob   ledger.BlobRef `json:"blob"`
	Height uint64         `json:"height"`
	Epoch  uint64         `json:"epoch"`
}

// Holding is a pinned blob a lease's node must prove, epochs [From, End).
type Holding struct {
	_       struct{}       `cbor:",toarray"`
	Request uint64         `json:"request_id"`
	Blob    ledger.BlobRef `json:"blob"`
	From    uint64         `json:"from_epoch"` // first challenged epoch (the blob had storage_grace_epochs to arrive)
	End     uint64         `json:"end_epoch"`  // the lease's end
	// Slot is its place among its node's holdings (0..n-1): challenges
	// sample slots.
	Slot uint64 `json:"slot"`
}

// slotRef is what a node's slot names: the holding's key parts and what
// a challenge needs (the blob, the epochs it is due), so drawing a sample
// reads one key per slot. It is stored in a fixed binary layout
// (slotRefSize bytes: lease, pin, blob id, size, from, end, big-endian),
// not CBOR: decoding it is a copy, and the draw reads storage_samples of
// them per holder node at every epoch's end.
type slotRef struct {
	Lease uint64
	Pin   uint32
	Blob  ledger.BlobRef
	From  uint64
	End   uint64
}

const slotRefSize = 8 + 4 + 32 + 8 + 8 + 8

func (r *slotRef) encode() []byte {
	b := make([]byte, 0, slotRefSize)
	b = binary.BigEndian.AppendUint64(b, r.Lease)
	b = binary.BigEndian.AppendUint32(b, r.Pin)
	b = append(b, r.Blob.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, r.Blob.Size)
	b = binary.BigEndian.AppendUint64(b, r.From)
	return binary.BigEndian.AppendUint64(b, r.End)
}

func (r *slotRef) decode(v []byte) error {
	if len(v) != slotRefSize {
		return fmt.Errorf("rome: slot record of %d bytes, want %d: %w", len(v), slotRefSize, ledger.ErrCorrupt)
	}
	r.Lease, r.Pin = binary.BigEndian.Uint64(v), binary.BigEndian.Uint32(v[8:])
	copy(r.Blob.ID[:], v[12:44])
	r.Blob.Size, r.From, r.End = binary.BigEndian.Uint64(v[44:]), binary.BigEndian.Uint64(v[52:]), binary.BigEndian.Uint64(v[60:])
	return nil
}

// slot is node's slot i (ok false: none).
func (s *store) slot(node ledger.Address, i uint64) (ref slotRef, ok bool, err error) {
	v, err := s.st.Get(rkey(tagHoldSlot, node[:], u64(i)))
	if err != nil || v == nil {
		return ref, false, err
	}
	return ref, true, ref.decode(v)
}

func (s *store) setSlot(node ledger.Address, i uint64, ref *slotRef) error {
	return s.setRaw(rkey(tagHoldSlot, node[:], u64(i)), ref.encode())
}

// Due reports whether the holding is challenged in epoch e (the empty blob
// never is: it has no segments).
func (h *Holding) Due(e uint64) bool { return h.From <= e && e < h.End && h.Blob.Size > 0 }

// StorageBucket is bytes a lease holds from the epoch their challenges
// start.
type StorageBucket struct {
	_     struct{} `cbor:",toarray"`
	From  uint64   `json:"from_epoch"`
	Bytes uint64   `json:"bytes"`
}

// LeaseStorage is what a lease holds and how it has proven it.
type LeaseStorage struct {
	_        struct{}        `cbor:",toarray"`
	Node     ledger.Address  `json:"node"`
	Holdings uint32          `json:"holdings"`
	Buckets  []StorageBucket `json:"buckets"`
	Misses   uint64          `json:"misses"`    // holding-epochs missed, all time
	MissRun  uint32          `json:"miss_run"`  // epochs in a row with a miss
	LastMiss uint64          `json:"last_miss"` // last epoch with a miss, plus one (0: none)
	Slashed  ledger.Coins    `json:"slashed"`
	// Since is the first epoch whose storage is paid by proofs: the
	// lease's start, or the epoch of its first pin (before it nothing
	// was pinned, and the leased amount is paid as for any lease).
	Since uint64 `json:"since_epoch"`
}

// DueBytes is what the lease must prove in epoch e.
func (ls *LeaseStorage) DueBytes(e uint64) uint64 {
	var n uint64
	for _, b := range ls.Buckets {
		if b.From <= e {
			n = satAdd(n, b.Bytes)
		}
	}
	return n
}

// Round is a node's answers to the challenges of epoch Epoch so far (the
// first Proven + Declared items of its Challenged list are answered) and
// its last storage_proof that proved a holding. It is the node's one
// record of its proofs: a storage_proof writes it once, whatever the
// number of holdings it answers, and it lives as long as the node holds
// something (a new epoch's answers start from zero in the same record).
type Round struct {
	_          struct{} `cbor:",toarray"`
	Epoch      uint64   `json:"epoch"`
	Proven     uint32   `json:"proven"`
	Declared   uint32   `json:"declared"`          // holdings the node said it cannot prove
	LastHeight uint64   `json:"last_proof_height"` // height of the node's last proof of a holding (0: none)
	LastEpoch  uint64   `json:"last_proof_epoch"`
	// Providers remembers the provider of the leases the node proved for
	// lately (at most maxRoundProviders, the last proof's first): a proof
	// credits a holding to its lease's provider, which never changes, so
	// the next proofs need not read the lease records (leases are never
	// deleted and their ids never reused).
	Providers []LeaseProvider `json:"lease_providers"`
}

// LeaseProvider is a lease and its provider.
type LeaseProvider struct {
	_        struct{}       `cbor:",toarray"`
	Lease    uint64         `json:"lease_id"`
	Provider ledger.Address `json:"provider"`
}

// maxRoundProviders bounds Round.Providers: a node answers for a few
// leases; one with more reads the others' records.
const maxRoundProviders = 32

// ChallengeItem is a holding challenged in an epoch.
type ChallengeItem struct {
	_     struct{}       `cbor:",toarray"`
	Lease uint64         `json:"lease_id"`
	Pin   uint32         `json:"pin"`
	Blob  ledger.BlobRef `json:"blob"`
}

// Challenged is what a node must prove in an epoch, in holding key order.
type Challenged struct {
	_     struct{}        `cbor:",toarray"`
	Epoch uint64          `json:"epoch"`
	Items []ChallengeItem `json:"items"`
}

// Fault is a holding's record of missed proofs.
type Fault struct {
	_         struct{} `cbor:",toarray"`
	Misses    uint64   `json:"misses"`
	LastMiss  uint64   `json:"last_miss_epoch"`
	LastProof uint64   `json:"last_proof_height"` // height of its last proof before the miss (0: none known)
}

// Seed is an epoch's challenge seed and the block at whose end it was
// drawn (the epoch's first block; the last block of the epoch before for
// an epoch of one block): proofs of the epoch are accepted after it.
type Seed struct {
	_      struct{}    `cbor:",toarray"`
	Epoch  uint64      `json:"epoch"`
	Seed   ledger.Hash `json:"seed"`
	Height uint64      `json:"height"`
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func holdingKey(node ledger.Address, lease uint64, pin uint32) []byte {
	return rkey(tagHolding, node[:], u64(lease), u32(pin))
}

// holdingOf splits a holding key.
func holdingOf(k []byte) (node ledger.Address, lease uint64, pin uint32, ok bool) {
	p := len(rkey(tagHolding))
	if len(k) != p+ledger.AddressSize+12 {
		return node, 0, 0, false
	}
	copy(node[:], k[p:])
	return node, binary.BigEndian.Uint64(k[p+ledger.AddressSize:]), binary.BigEndian.Uint32(k[p+ledger.AddressSize+8:]), true
}

// ChallengeSeed is the seed of epoch e's storage challenges: SHA-256 over
// the chain id, the epoch and prev, the hash of the block before the one
// that draws them — the last block of epoch e-1 when they are drawn at
// the end of e's first block (drawChallenges).
func ChallengeSeed(chainID string, e uint64, prev ledger.Hash) ledger.Hash {
	b := []byte("sos/storage/seed\x00" + chainID + "\x00")
	b = binary.BigEndian.AppendUint64(b, e)
	return sha256.Sum256(append(b, prev[:]...))
}

// SamplePlaces are the slots of the n holdings (of a node's count) sampled
// for the epoch of seed: every slot when count ≤ n, else n distinct slots
// drawn by Floyd's algorithm, draw j being SHA-256(seed | node | j) mod
// (j+1); in ascending order.
func SamplePlaces(seed ledger.Hash, node ledger.Address, count, n uint64) []uint64 {
	if count <= n {
		out := make([]uint64, count)
		for i := range out {
			out[i] = uint64(i)
		}
		return out
	}
	var buf [20 + 32 + ledger.AddressSize + 8]byte
	b := append(buf[:0], "sos/storage/sample\x00"...)
	b = append(b, seed[:]...)
	b = append(b, node[:]...)
	base := len(b)
	chosen := make(map[uint64]bool, n)
	out := make([]uint64, 0, n)
	for j := count - n; j < count; j++ {
		b = binary.BigEndian.AppendUint64(b[:base], j)
		h := sha256.Sum256(b)
		t := binary.BigEndian.Uint64(h[:8]) % (j + 1)
		if chosen[t] {
			t = j
		}
		chosen[t] = true
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// Challenges are the segments of a holding (lease, blob of size bytes) to
// prove in the epoch of seed: min(n, SegmentCount(size)) indexes, each
// SHA-256(seed | lease | blob id | i) mod the segment count. The empty
// blob has none.
func Challenges(seed ledger.Hash, lease uint64, id ledger.BlobID, size, n uint64) []uint64 {
	segs := blob.SegmentCount(size)
	k := min(n, segs)
	out := make([]uint64, k)
	var buf [17 + 32 + 8 + 32 + 8]byte
	b := append(buf[:0], "sos/storage/seg\x00"...)
	b = append(b, seed[:]...)
	b = binary.BigEndian.AppendUint64(b, lease)
	b = append(b, id[:]...)
	base := len(b)
	for i := range out {
		b = binary.BigEndian.AppendUint64(b[:base], uint64(i))
		h := sha256.Sum256(b)
		out[i] = binary.BigEndian.Uint64(h[:8]) % segs
	}
	return out
}

// store helpers.

func (s *store) pin(req uint64, idx uint32) (*Pin, error) {
	var p Pin
	ok, err := s.get(rkey(tagPin, u64(req), u32(idx)), &p)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("rome: request %d pin %d: %w", req, idx, ErrNotFound)
	}
	return &p, nil
}

func (s *store) leaseStorage(lease uint64) (*LeaseStorage, bool, error) {
	var ls LeaseStorage
	ok, err := s.get(rkey(tagLeaseStor, u64(lease)), &ls)
	return &ls, ok, err
}

// round is node's Round for epoch e: no answers yet when its record is
// of an earlier epoch (its last proof stays).
func (s *store) round(node ledger.Address, e uint64) (*Round, error) {
	var r Round
	if _, err := s.get(rkey(tagRound, node[:]), &r); err != nil {
		return nil, err
	}
	if r.Epoch != e {
		r.Epoch, r.Proven, r.Declared = e, 0, 0
	}
	return &r, nil
}

// answered is how many items of its epoch-e challenge list node has
// answered (proven or declared), read from its Round's head without
// decoding the rest of the record (the miss pass reads every challenged
// node's).
func (s *store) answered(node ledger.Address, e uint64) (uint64, error) {
	k := rkey(tagRound, node[:])
	raw, err := s.st.Get(k)
	if err != nil {
		return 0, err
	}
	if s.gas != nil { // as get charges
		if err := s.charge(s.sched.ReadBase+s.sched.ReadPerByte*uint64(len(k)+len(raw)), "state read"); err != nil {
			return 0, err
		}
	}
	if raw == nil {
		return 0, nil
	}
	ep, proven, declared, ok := roundHead(raw)
	if !ok {
		var r Round
		if err := s.decode(raw, &r); err != nil {
			return 0, fmt.Errorf("rome: record %x: %w: %w", k, ledger.ErrCorrupt, err)
		}
		ep, proven, declared = r.Epoch, r.Proven, r.Declared
	}
	if ep != e {
		return 0, nil
	}
	return uint64(proven) + uint64(declared), nil
}

func (s *store) challenged(node ledger.Address) (*Challenged, bool, error) {
	var c Challenged
	ok, err := s.get(rkey(tagChal, node[:]), &c)
	return &c, ok, err
}

func suspectKey(node ledger.Address, lease uint64, pin uint32) []byte {
	return rkey(tagSuspect, node[:], u64(lease), u32(pin))
}

// suspectsCountKey counts the suspects of all nodes: with none, neither a
// proof nor the challenge draw looks for any.
var suspectsCountKey = rkey(tagSeq, []byte("suspects"))

func (s *store) seed() (*Seed, bool, error) {
	var sd Seed
	ok, err := s.get(rkey(tagSeed), &sd)
	return &sd, ok, err
}

var holdingsCountKey = rkey(tagSeq, []byte("holdings"))

// requestLeases lists the leases of a request that have not closed.
func (s *store) requestLeases(req uint64) ([]*Lease, error) {
	ids, err := s.ids(rkey(tagReqLease, u64(req)))
	if err != nil {
		return nil, err
	}
	out := make([]*Lease, 0, len(ids))
	for _, id := range ids {
		l, err := s.lease(id)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

// addHolding makes the lease's node hold pin from epoch from (pinned in
// epoch now; r is the lease's request); the empty blob and a holding that
// would start after the lease are not recorded.
func (s *store) addHolding(p Params, node ledger.Address, l *Lease, r *Request, pin *Pin, from, now uint64) error {
	if pin.Blob.Size == 0 || from >= l.End {
		return nil
	}
	nk := rkey(tagStorNode, node[:])
	slot, err := s.getU64(nk)
	if err != nil {
		return err
	}
	h := Holding{Request: l.RequestID, Blob: pin.Blob, From: from, End: l.End, Slot: slot}
	if err := s.put(holdingKey(node, l.ID, pin.Index), &h); err != nil {
		return err
	}
	if err := s.setSlot(node, slot, &slotRef{Lease: l.ID, Pin: pin.Index, Blob: pin.Blob, From: from, End: l.End}); err != nil {
		return err
	}
	ls, had, err := s.leaseStorage(l.ID)
	if err != nil {
		return err
	}
	var old *LeaseStorage
	if had {
		c := *ls
		c.Buckets = slices.Clone(ls.Buckets)
		old = &c
	} else {
		ls.Since = max(now, l.Start)
	}
	ls.Node = node
	ls.Holdings++
	added := false
	for i := range ls.Buckets {
		if ls.Buckets[i].From == from {
			ls.Buckets[i].Bytes = satAdd(ls.Buckets[i].Bytes, pin.Blob.Size)
			added = true
		}
	}
	if !added {
		ls.Buckets = append(ls.Buckets, StorageBucket{From: from, Bytes: pin.Blob.Size})
	}
	if ls.Slashed == nil {
		ls.Slashed = ledger.Coins{}
	}
	if err := s.put(rkey(tagLeaseStor, u64(l.ID)), ls); err != nil {
		return err
	}
	if err := s.rescheduleRate(p, l, r, old, l.End, ls, now); err != nil {
		return err
	}
	if err := s.addCount(nk, 1); err != nil {
		return err
	}
	return s.addCount(holdingsCountKey, 1)
}

// addCount adds d (±) to a counter, deleting it at zero.
func (s *store) addCount(k []byte, d int64) error {
	v, err := s.getU64(k)
	if err != nil {
		return err
	}
	if d < 0 && v < uint64(-d) {
		return fmt.Errorf("rome: counter %x below zero: %w", k, ledger.ErrCorrupt)
	}
	return s.setU64(k, uint64(int64(v)+d))
}

// removeHoldings deletes a lease's holdings (it no longer proves
// anything); with drop it also deletes its storage record, faults and
// missed-bytes records (the lease closed).
func (s *store) removeHoldings(l *Lease, drop bool) error {
	ls, ok, err := s.leaseStorage(l.ID)
	if err != nil || !ok {
		return err
	}
	prefix := rkey(tagHolding, ls.Node[:], u64(l.ID))
	var keys [][]byte
	if err := s.st.Iterate(prefix, prefixEnd(prefix), false, func(k, _ []byte) bool {
		keys = append(keys, bytes.Clone(k))
		return true
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.dropHolding(ls.Node, k); err != nil {
			return err
		}
	}
	if err := s.delSuspects(ls.Node, l.ID); err != nil {
		return err
	}
	if n := int64(len(keys)); n > 0 {
		if err := s.addCount(holdingsCountKey, -n); err != nil {
			return err
		}
		if left, err := s.getU64(rkey(tagStorNode, ls.Node[:])); err != nil {
			return err
		} else if left == 0 { // the node proves nothing more: drop its rounds and challenges
			if err := s.del(rkey(tagRound, ls.Node[:])); err != nil {
				return err
			}
			if err := s.del(rkey(tagChal, ls.Node[:])); err != nil {
				return err
			}
		}
	}
	if !drop {
		ls.Holdings = 0
		return s.put(rkey(tagLeaseStor, u64(l.ID)), ls)
	}
	if err := s.delPrefix(rkey(tagFault, u64(l.ID))); err != nil {
		return err
	}
	if err := s.delPrefix(rkey(tagMissed, u64(l.ID))); err != nil {
		return err
	}
	if err := s.del(rkey(tagRepair, u64(l.ID))); err != nil {
		return err
	}
	return s.del(rkey(tagLeaseStor, u64(l.ID)))
}

// dropHolding deletes node's holding at key k: the node's last holding
// takes its slot, so slots stay 0..n-1 for sampling.
func (s *store) dropHolding(node ledger.Address, k []byte) error {
	var h Holding
	ok, err := s.get(k, &h)
	if err != nil || !ok {
		return err
	}
	nk := rkey(tagStorNode, node[:])
	n, err := s.getU64(nk)
	if err != nil {
		return err
	}
	if n == 0 || h.Slot >= n {
		return fmt.Errorf("rome: holding %x: slot %d of %d: %w", k, h.Slot, n, ledger.ErrCorrupt)
	}
	lastKey := rkey(tagHoldSlot, node[:], u64(n-1))
	if h.Slot != n-1 {
		ref, ok, err := s.slot(node, n-1)
		if err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("rome: node %s: slot %d: %w", node, n-1, ledger.ErrCorrupt)
		}
		mk := holdingKey(node, ref.Lease, ref.Pin)
		var moved Holding
		if ok, err := s.get(mk, &moved); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("rome: node %s: slot %d names no holding: %w", node, n-1, ledger.ErrCorrupt)
		}
		moved.Slot = h.Slot
		if err := s.put(mk, &moved); err != nil {
			return err
		}
		if err := s.setSlot(node, h.Slot, &ref); err != nil {
			return err
		}
	}
	if err := s.del(lastKey); err != nil {
		return err
	}
	if err := s.del(k); err != nil {
		return err
	}
	return s.addCount(nk, -1)
}

// drawChallenges draws epoch e's storage challenges at the end of block b
// when anything is held: the seed from b's PrevHash, then setChallenges.
// b is the epoch's first block, or the last of the epoch before when e
// has a single block (EndBlock). The first block's PrevHash is the hash
// of e-1's last block, which nobody knew before that block existed —
// the same unpredictability as when the draw was at that last block
// itself, seeded from the block before it: a proposer who wants other
// challenges must withhold or rebuild a whole block and lose its turn,
// and the lists are fixed before any proof of e can be included (every
// proof of e lands in a block after b). The holdings due in e all exist
// by then: a pin made in e, even in b itself, is challenged from e+1 on
// at the earliest (BlobPin), and a lease's holdings are placed at an
// epoch's end, so what settlement counts as due in e (the lease's
// buckets from e) is exactly what the draw could pick.
func (s *store) drawChallenges(p Params, e uint64, b Block) error {
	if n, err := s.getU64(holdingsCountKey); err != nil || n == 0 {
		return err
	}
	sd := &Seed{Epoch: e, Seed: ChallengeSeed(b.ChainID, e, b.PrevHash), Height: b.Height}
	if err := s.put(rkey(tagSeed), sd); err != nil {
		return err
	}
	return s.setChallenges(p, sd)
}

// setChallenges fixes what each node must prove in the epoch of sd: the
// holdings at its sampled slots and its suspects, those due in the
// epoch, in key order. A node with nothing due has no list. Every node
// with a list holds something (removeHoldings drops the list of a node
// left with nothing), so this replaces every list of the epoch before.
func (s *store) setChallenges(p Params, sd *Seed) error {
	nodes, err := s.addrCounts(rkey(tagStorNode)) // node → its holdings
	if err != nil {
		return err
	}
	suspects, err := s.getU64(suspectsCountKey)
	if err != nil {
		return err
	}
	var kbuf []byte
	for _, nc := range nodes {
		items := make([]ChallengeItem, 0, min(nc.v, p.StorageSamples))
		add := func(ref *slotRef) {
			h := Holding{Blob: ref.Blob, From: ref.From, End: ref.End}
			if h.Due(sd.Epoch) {
				items = append(items, ChallengeItem{Lease: ref.Lease, Pin: ref.Pin, Blob: ref.Blob})
			}
		}
		if nc.v <= p.StorageSamples {
			// Every holding: one pass over the node's slots instead of a
			// lookup per slot.
			refs, err := s.slotRefs(nc.a)
			if err != nil {
				return err
			}
			if uint64(len(refs)) != nc.v {
				return fmt.Errorf("rome: node %s: %d slots for %d holdings: %w", nc.a, len(refs), nc.v, ledger.ErrCorrupt)
			}
			for i := range refs {
				add(&refs[i])
			}
		} else {
			// One key buffer for the node's slots (State.Get keeps its
			// own copy of a key it caches).
			kbuf = append(rkey(tagHoldSlot, nc.a[:]), make([]byte, 8)...)
			for _, slot := range SamplePlaces(sd.Seed, nc.a, nc.v, p.StorageSamples) {
				binary.BigEndian.PutUint64(kbuf[len(kbuf)-8:], slot)
				v, err := s.st.Get(kbuf)
				if err != nil {
					return err
				} else if v == nil {
					return fmt.Errorf("rome: node %s: slot %d of %d: %w", nc.a, slot, nc.v, ledger.ErrCorrupt)
				}
				var ref slotRef
				if err := ref.decode(v); err != nil {
					return err
				}
				add(&ref)
			}
		}
		if suspects > 0 {
			sp := rkey(tagSuspect, nc.a[:])
			var keys [][]byte
			if err := s.st.Iterate(sp, prefixEnd(sp), false, func(k, _ []byte) bool {
				keys = append(keys, rkey(tagHolding, k[len(rkey(tagSuspect)):]))
				return true
			}); err != nil {
				return err
			}
			for _, k := range keys {
				_, lease, pin, ok := holdingOf(k)
				if !ok {
					return fmt.Errorf("rome: suspect key %x: %w", k, ledger.ErrCorrupt)
				}
				var h Holding
				if ok, err := s.get(k, &h); err != nil {
					return err
				} else if ok && h.Due(sd.Epoch) {
					items = append(items, ChallengeItem{Lease: lease, Pin: pin, Blob: h.Blob})
				}
			}
		}
		// Holding key order: (lease, pin) under the node.
		slices.SortFunc(items, func(a, b ChallengeItem) int {
			if c := cmp.Compare(a.Lease, b.Lease); c != 0 {
				return c
			}
			return cmp.Compare(a.Pin, b.Pin)
		})
		items = slices.CompactFunc(items, func(a, b ChallengeItem) bool { return a.Lease == b.Lease && a.Pin == b.Pin })
		ck := rkey(tagChal, nc.a[:])
		if len(items) == 0 {
			if err := s.del(ck); err != nil {
				return err
			}
		} else if err := s.setRaw(ck, encodeChallenged(&Challenged{Epoch: sd.Epoch, Items: items})); err != nil {
			return err
		}
	}
	return nil
}

// slotRefs are all of node's slots, in slot order.
func (s *store) slotRefs(node ledger.Address) ([]slotRef, error) {
	prefix := rkey(tagHoldSlot, node[:])
	var refs []slotRef
	var derr error
	if err := s.st.Iterate(prefix, prefixEnd(prefix), false, func(k, v []byte) bool {
		var ref slotRef
		if derr = ref.decode(v); derr != nil {
			derr = fmt.Errorf("rome: record %x: %w", k, derr)
			return false
		}
		refs = append(refs, ref)
		return true
	}); err != nil {
		return nil, err
	}
	return refs, derr
}

// setSuspect marks a holding missed (challenged every epoch until it is
// proven); delSuspect clears the mark; delSuspects clears a lease's.
func (s *store) setSuspect(node ledger.Address, lease uint64, pin uint32) error {
	k := suspectKey(node, lease, pin)
	if raw, err := s.st.Get(k); err != nil || raw != nil {
		return err
	}
	if err := s.setRaw(k, one); err != nil {
		return err
	}
	return s.addCount(suspectsCountKey, 1)
}

func (s *store) delSuspect(node ledger.Address, lease uint64, pin uint32) error {
	if n, err := s.getU64(suspectsCountKey); err != nil || n == 0 {
		return err
	}
	k := suspectKey(node, lease, pin)
	if raw, err := s.st.Get(k); err != nil || raw == nil {
		return err
	}
	if err := s.del(k); err != nil {
		return err
	}
	return s.addCount(suspectsCountKey, -1)
}

func (s *store) delSuspects(node ledger.Address, lease uint64) error {
	if n, err := s.getU64(suspectsCountKey); err != nil || n == 0 {
		return err
	}
	n, err := s.delPrefixCount(rkey(tagSuspect, node[:], u64(lease)))
	if err != nil || n == 0 {
		return err
	}
	return s.addCount(suspectsCountKey, -int64(n))
}

func (s *store) delPrefix(prefix []byte) error {
	_, err := s.delPrefixCount(prefix)
	return err
}

// delPrefixCount deletes every key under prefix and says how many.
func (s *store) delPrefixCount(prefix []byte) (int, error) {
	var keys [][]byte
	if err := s.st.Iterate(prefix, prefixEnd(prefix), false, func(k, _ []byte) bool {
		keys = append(keys, bytes.Clone(k))
		return true
	}); err != nil {
		return 0, err
	}
	for _, k := range keys {
		if err := s.del(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

// storEnv is what the storage rules need: the store, accounts, parameters,
// the epoch, a place for events, and how to load and save offers and
// requests (the epoch's work caches them and writes them back at its end).
type storEnv struct {
	m      *Market
	s      *store
	acc    *ledger.Accounts
	p      Params
	height uint64
	epoch  uint64
	events *[]ledger.Event
	w      *epochWork // nil in a transaction
}

func (e *storEnv) emit(typ string, kv ...string) {
	ev := ledger.NewEvent(typ, kv...)
	*e.events = append(*e.events, ev)
	if e.w != nil && len(e.w.rec.Events) < maxEpochEvents {
		e.w.rec.Events = append(e.w.rec.Events, ev)
	}
}

func (e *storEnv) offer(id uint64) (*Offer, error) {
	if e.w != nil {
		return e.w.offer(id)
	}
	return e.s.offer(id)
}

func (e *storEnv) putOffer(o *Offer) error {
	if e.w != nil {
		return nil // flushed with the epoch's work
	}
	return e.s.put(rkey(tagOffer, u64(o.ID)), o)
}

func (m *Market) pinBlob(tx *Tx, p *ledger.BlobPin) (any, error) {
	if err := tx.Gas.Consume(GasPin, "blob pin"); err != nil {
		return nil, err
	}
	s := tx.store(m)
	params, err := s.params(m.gen)
	if err != nil {
		return nil, err
	}
	clock, err := s.clock(params)
	if err != nil {
		return nil, err
	}
	r, err := s.request(p.RequestID)
	if err != nil {
		return nil, err
	}
	if r.Owner != tx.Sender {
		return nil, fmt.Errorf("rome: request %d belongs to %s: only its consumer pins blobs to it: %w", r.ID, r.Owner, ErrUnauthorized)
	}
	if amountOf(r.Demand, KindStorage) == 0 {
		return nil, fmt.Errorf("rome: request %d demands no storage to hold a blob in: %w", r.ID, ErrInvalid)
	}
	if raw, err := s.st.Get(rkey(tagBlobPin, p.Blob.ID[:], u64(r.ID))); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fmt.Errorf("rome: blob %s is already pinned to request %d: %w", p.Blob.ID, r.ID, ErrInvalid)
	}
	if r.Pins >= MaxPins {
		return nil, fmt.Errorf("rome: request %d has %d pins, the most one request holds: %w", r.ID, r.Pins, ErrInvalid)
	}
	total, err := ledger.AddUint64(r.PinnedBytes, p.Blob.Size)
	if err != nil {
		return nil, fmt.Errorf("rome: request %d: pinned bytes: %w", r.ID, err)
	}
	all, err := s.requestLeases(r.ID)
	if err != nil {
		return nil, err
	}
	var leases []*Lease
	for _, l := range all {
		if l.End > clock.Epoch {
			leases = append(leases, l)
		}
	}
	if r.Replicated() {
		quota := satMul(amountOf(r.Demand, KindStorage), r.unitBytes(params))
		if total > quota {
			return nil, fmt.Errorf("rome: request %d: %d pinned bytes with this blob of %d exceed a replica's quota of %d bytes (storage %d × the request's %d bytes per storage unit): %w",
				r.ID, total, p.Blob.Size, quota, amountOf(r.Demand, KindStorage), r.unitBytes(params), ErrInvalid)
		}
		if len(leases) == 0 && (r.Open == 0 || r.Status != StatusOpen) {
			return nil, fmt.Errorf("rome: request %d has no running lease to hold the blob: %w", r.ID, ErrInvalid)
		}
	} else {
		if amountOf(r.Remaining, KindStorage) > 0 {
			return nil, fmt.Errorf("rome: request %d still has %d storage units without a lease: pin once every lease is placed (or ask for --replicas): %w",
				r.ID, amountOf(r.Remaining, KindStorage), ErrInvalid)
		}
		if len(leases) == 0 {
			return nil, fmt.Errorf("rome: request %d has no running lease to hold the blob: %w", r.ID, ErrInvalid)
		}
	}
	offers := make([]*Offer, len(leases))
	for i, l := range leases {
		quota := satMul(amountOf(l.Amounts, KindStorage), r.unitBytes(params))
		if total > quota {
			return nil, fmt.Errorf("rome: lease %d: %d pinned bytes with this blob of %d exceed its quota of %d bytes (storage %d × the request's %d bytes per storage unit): %w",
				l.ID, total, p.Blob.Size, quota, amountOf(l.Amounts, KindStorage), r.unitBytes(params), ErrInvalid)
		}
		if offers[i], err = s.offer(l.OfferID); err != nil {
			return nil, err
		}
		if !offers[i].RunsJobs() {
			return nil, fmt.Errorf("rome: lease %d: offer %d names no node or holds no bond, so nothing proves or backs what it holds: %w", l.ID, l.OfferID, ErrInvalid)
		}
	}
	pin := &Pin{Index: r.Pins, Blob: p.Blob, Height: tx.Height, Epoch: clock.Epoch}
	if err := s.put(rkey(tagPin, u64(r.ID), u32(pin.Index)), pin); err != nil {
		return nil, err
	}
	if err := s.setRaw(rkey(tagBlobPin, p.Blob.ID[:], u64(r.ID)), u64(uint64(pin.Index))); err != nil {
		return nil, err
	}
	r.Pins++
	r.PinnedBytes = total
	if err := s.put(rkey(tagRequest, u64(r.ID)), r); err != nil {
		return nil, err
	}
	from := clock.Epoch + 1 + params.StorageGraceEpochs
	for i, l := range leases {
		if err := s.addHolding(params, offers[i].Node, l, r, pin, max(from, l.Start+params.StorageGraceEpochs), clock.Epoch); err != nil {
			return nil, err
		}
	}
	tx.emit("blob_pinned", "request_id", strconv.FormatUint(r.ID, 10), "pin", strconv.FormatUint(uint64(pin.Index), 10),
		"blob", p.Blob.ID.String(), "size", strconv.FormatUint(p.Blob.Size, 10), "holders", strconv.Itoa(len(leases)),
		"from_epoch", strconv.FormatUint(from, 10))
	return map[string]any{"request_id": r.ID, "pin": pin.Index, "blob_id": p.Blob.ID, "size": p.Blob.Size, "holders": len(leases),
		"from_epoch": from, "pinned_bytes": total}, nil
}

// dueHolding is a holding challenged in an epoch, with its key parts.
type dueHolding struct {
	Lease   uint64
	Pin     uint32
	Holding Holding
}

func (m *Market) storageProof(tx *Tx, p *ledger.StorageProof) (any, error) {
	proofs := 0
	for _, en := range p.Entries {
		proofs += len(en.Proofs)
	}
	if err := tx.Gas.Consume(GasStorageProof+GasStorageEntry*uint64(len(p.Entries))+GasStorageVerify*uint64(proofs), "storage proof"); err != nil {
		return nil, err
	}
	s := tx.store(m)
	params, err := s.params(m.gen)
	if err != nil {
		return nil, err
	}
	clock, err := s.clock(params)
	if err != nil {
		return nil, err
	}
	if p.Epoch != clock.Epoch {
		return nil, fmt.Errorf("rome: storage proof for epoch %d: proofs are accepted during the epoch they answer only (now %d): %w", p.Epoch, clock.Epoch, ErrInvalid)
	}
	seed, ok, err := s.seed()
	if err != nil {
		return nil, err
	}
	if !ok || seed.Epoch != p.Epoch {
		if tx.Height == clock.StartHeight && clock.StartHeight < clock.EndHeight {
			return nil, fmt.Errorf("rome: storage proof for epoch %d: its challenges are drawn at the end of its first block %d: proofs are accepted from block %d on: %w",
				p.Epoch, tx.Height, tx.Height+1, ErrInvalid)
		}
		return nil, fmt.Errorf("rome: storage proof: epoch %d has no challenges: %w", p.Epoch, ErrInvalid)
	}
	node := tx.Sender
	chal, ok, err := s.challenged(node)
	if err != nil {
		return nil, err
	}
	if !ok || chal.Epoch != p.Epoch {
		return nil, fmt.Errorf("rome: storage proof: %s has nothing challenged in epoch %d: %w", node, p.Epoch, ErrInvalid)
	}
	round, err := s.round(node, p.Epoch)
	if err != nil {
		return nil, err
	}
	pos := int(round.Proven) + int(round.Declared)
	env := &storEnv{m: m, s: s, acc: tx.accounts(m), p: params, height: tx.Height, epoch: p.Epoch, events: &tx.Events}
	// A node answers for a few leases of a few providers: small slices,
	// in first-seen order, instead of maps.
	var leases []*Lease
	var credits []provCredit
	var used []LeaseProvider // the leases proven for, with their providers
	lease := func(id uint64) (*Lease, error) {
		if k := slices.IndexFunc(leases, func(l *Lease) bool { return l.ID == id }); k >= 0 {
			return leases[k], nil
		}
		l, err := s.lease(id)
		if err == nil {
			leases = append(leases, l)
		}
		return l, err
	}
	suspects, err := s.getU64(suspectsCountKey)
	if err != nil {
		return nil, err
	}
	var proven, declared uint32
	for i, en := range p.Entries {
		if pos+i >= len(chal.Items) {
			return nil, fmt.Errorf("rome: storage proof: entry %d (lease %d, blob %s): %s has no more holdings challenged in epoch %d: %w",
				i, en.LeaseID, en.Blob, node, p.Epoch, ErrInvalid)
		}
		it := &chal.Items[pos+i]
		if en.LeaseID != it.Lease || en.Blob != it.Blob.ID {
			return nil, fmt.Errorf("rome: storage proof: entry %d names lease %d blob %s, but the next holding challenged is lease %d blob %s: %w",
				i, en.LeaseID, en.Blob, it.Lease, it.Blob.ID, ErrInvalid)
		}
		d := dueHolding{Lease: it.Lease, Pin: it.Pin}
		if len(en.Proofs) == 0 {
			l, err := lease(d.Lease)
			if err != nil {
				return nil, err
			}
			if ok, err := s.get(holdingKey(node, it.Lease, it.Pin), &d.Holding); err != nil {
				return nil, err
			} else if !ok {
				return nil, fmt.Errorf("rome: storage proof: lease %d pin %d: challenged but not held: %w", it.Lease, it.Pin, ledger.ErrCorrupt)
			}
			if err := env.miss(l, node, &d, true); err != nil {
				return nil, err
			}
			declared++
			continue
		}
		d.Holding.Blob = it.Blob
		segs := Challenges(seed.Seed, d.Lease, d.Holding.Blob.ID, d.Holding.Blob.Size, params.StorageSegments)
		if len(en.Proofs) != len(segs) {
			return nil, fmt.Errorf("rome: storage proof: entry %d (lease %d, blob %s): %d proofs, %d segments are challenged: %w",
				i, d.Lease, en.Blob, len(en.Proofs), len(segs), ErrInvalid)
		}
		for j, seg := range segs {
			if err := blob.VerifyProof(blob.ID(d.Holding.Blob.ID), d.Holding.Blob.Size, seg, en.Proofs[j]); err != nil {
				return nil, fmt.Errorf("rome: storage proof: entry %d (lease %d, blob %s): segment %d: %w: %w", i, d.Lease, en.Blob, seg, err, ErrInvalid)
			}
		}
		if suspects > 0 {
			if err := s.delSuspect(node, it.Lease, it.Pin); err != nil {
				return nil, err
			}
		}
		// The provider the holding is credited to: remembered by the
		// node's round, else from the lease.
		var prov ledger.Address
		if k := slices.IndexFunc(used, func(lp LeaseProvider) bool { return lp.Lease == d.Lease }); k >= 0 {
			prov = used[k].Provider
		} else if k := slices.IndexFunc(round.Providers, func(lp LeaseProvider) bool { return lp.Lease == d.Lease }); k >= 0 {
			prov = round.Providers[k].Provider
			used = append(used, round.Providers[k])
		} else {
			l, err := lease(d.Lease)
			if err != nil {
				return nil, err
			}
			prov = l.Provider
			used = append(used, LeaseProvider{Lease: l.ID, Provider: l.Provider})
		}
		if k := slices.IndexFunc(credits, func(c provCredit) bool { return c.provider == prov }); k >= 0 {
			credits[k].n++
		} else {
			credits = append(credits, provCredit{prov, 1})
		}
		proven++
	}
	// This proof's leases first, then the others remembered, up to the
	// bound.
	for _, lp := range round.Providers {
		if len(used) == maxRoundProviders {
			break
		}
		if !slices.ContainsFunc(used, func(u LeaseProvider) bool { return u.Lease == lp.Lease }) {
			used = append(used, lp)
		}
	}
	round.Providers = used[:min(len(used), maxRoundProviders)]
	round.Proven += proven
	round.Declared += declared
	if proven > 0 {
		round.LastHeight, round.LastEpoch = tx.Height, p.Epoch
	}
	if err := s.put(rkey(tagRound, node[:]), round); err != nil {
		return nil, err
	}
	for _, c := range credits {
		if err := s.updateProvider(c.provider, func(r *ProviderRecord) { r.StorageProven = satAdd(r.StorageProven, c.n) }); err != nil {
			return nil, err
		}
	}
	tx.emit("storage_proof", "node", node.String(), "epoch", strconv.FormatUint(p.Epoch, 10), "proven", strconv.FormatUint(uint64(proven), 10),
		"declared_missing", strconv.FormatUint(uint64(declared), 10))
	return &proofResult{Declared: declared, Epoch: p.Epoch, Proven: proven, RoundProven: round.Proven}, nil
}

// provCredit is the holdings a storage_proof proved for one provider.
type provCredit struct {
	provider ledger.Address
	n        uint64
}

// proofResult is a storage_proof's receipt result. Its fields are in key
// order: its JSON is byte for byte what the map it replaces gave
// (encoding/json sorts map keys), without the map.
type proofResult struct {
	Declared    uint32 `json:"declared_missing"`
	Epoch       uint64 `json:"epoch"`
	Proven      uint32 `json:"proven"`
	RoundProven uint32 `json:"round_proven"`
}

// miss records that holding d of lease l was not proven in the epoch:
// declared by its node, or unanswered at the epoch's end.
func (e *storEnv) miss(l *Lease, node ledger.Address, d *dueHolding, declared bool) error {
	s := e.s
	fk := rkey(tagFault, u64(l.ID), u32(d.Pin))
	var f Fault
	if _, err := s.get(fk, &f); err != nil {
		return err
	}
	rd, err := s.round(node, e.epoch)
	if err != nil {
		return err
	}
	f.LastProof = max(f.LastProof, rd.LastHeight)
	f.Misses++
	f.LastMiss = e.epoch
	if err := s.put(fk, &f); err != nil {
		return err
	}
	// Challenged again every epoch until it is proven.
	if err := s.setSuspect(node, l.ID, d.Pin); err != nil {
		return err
	}
	mk := rkey(tagMissed, u64(l.ID), u64(e.epoch))
	missed, err := s.getU64(mk)
	if err != nil {
		return err
	}
	if err := s.setU64(mk, satAdd(missed, d.Holding.Blob.Size)); err != nil {
		return err
	}
	ls, _, err := s.leaseStorage(l.ID)
	if err != nil {
		return err
	}
	// The units the miss costs the provider's rewards for the epoch.
	if r, err := s.request(l.RequestID); err != nil {
		return err
	} else if u := storUnitsAt(r.unitBytes(e.p), ls, l, e.epoch); u > 0 && !r.Metered(KindStorage) {
		due := ls.DueBytes(e.epoch)
		left := func(m uint64) uint64 {
			return min(ceilDiv(due-min(due, m), r.unitBytes(e.p)), amountOf(l.Amounts, KindStorage))
		}
		if lost := left(missed) - left(satAdd(missed, d.Holding.Blob.Size)); lost > 0 {
			k := rkey(tagStorLost, u64(e.epoch), l.Provider[:])
			cur, err := s.getU64(k)
			if err != nil {
				return err
			}
			if err := s.setU64(k, cur+lost); err != nil {
				return err
			}
		}
	}
	ls.Misses++
	how := "unanswered"
	if declared {
		how = "declared"
	}
	e.emit("storage_missed", "lease_id", strconv.FormatUint(l.ID, 10), "request_id", strconv.FormatUint(l.RequestID, 10),
		"blob", d.Holding.Blob.ID.String(), "epoch", strconv.FormatUint(e.epoch, 10), "node", node.String(),
		"provider", l.Provider.String(), "how", how)
	if ls.LastMiss != e.epoch+1 { // the lease's first miss in the epoch
		if ls.LastMiss == e.epoch {
			ls.MissRun++
		} else {
			ls.MissRun = 1
		}
		ls.LastMiss = e.epoch + 1
		// The epoch is settled with the next epoch's end, not in arrears
		// with the lease's epochs that have nothing to weigh.
		if err := s.touch(l.ID, e.epoch); err != nil {
			return err
		}
		o, err := e.offer(l.OfferID)
		if err != nil {
			return err
		}
		slashed := shareBps(o.Bond, e.p.StorageSlashBps)
		if len(slashed) > 0 {
			o.Bond = subCoins(o.Bond, slashed)
			if o.Slashed, err = addCoins(o.Slashed, slashed); err != nil {
				return err
			}
			if err := e.acc.Transfer(BondAccount, l.Consumer, slashed); err != nil {
				return err
			}
			if ls.Slashed, err = addCoins(ls.Slashed, slashed); err != nil {
				return err
			}
			if err := e.putOffer(o); err != nil {
				return err
			}
		}
		e.emit("storage_slashed", "lease_id", strconv.FormatUint(l.ID, 10), "offer_id", strconv.FormatUint(o.ID, 10),
			"provider", l.Provider.String(), "consumer", l.Consumer.String(), "slashed", slashed.String(),
			"epoch", strconv.FormatUint(e.epoch, 10), "miss_run", strconv.FormatUint(uint64(ls.MissRun), 10))
		r, err := s.request(l.RequestID)
		if err != nil {
			return err
		}
		if r.Replicated() && uint64(ls.MissRun) >= e.p.StorageRepairMisses {
			if err := s.setRaw(rkey(tagRepair, u64(l.ID)), one); err != nil {
				return err
			}
		}
	}
	if err := s.put(rkey(tagLeaseStor, u64(l.ID)), ls); err != nil {
		return err
	}
	return s.updateProvider(l.Provider, func(r *ProviderRecord) { r.StorageMissed++ })
}

// storageCheck ends epoch e's challenges: every holding challenged in e
// that its node left unanswered is a miss; leases with too many misses in
// a row lose their replica (the request's slot opens again for the match
// that follows). The epoch's challenge lists stay until the next draw
// replaces them (a proof checks the list's epoch), and a node's Round
// stays: the next epoch's answers start from zero in it.
func (w *epochWork) storageCheck() error {
	env := &storEnv{m: w.m, s: w.s, acc: w.acc, p: w.p, height: w.b.Height, epoch: w.e, events: w.events, w: w}
	prefix := rkey(tagChal)
	type list struct {
		node   ledger.Address
		epoch  uint64
		n      uint64
		header bool // epoch and n read from the record's head
		raw    []byte
	}
	var lists []list
	if err := w.s.st.Iterate(prefix, prefixEnd(prefix), false, func(k, v []byte) bool {
		if len(k) == len(prefix)+ledger.AddressSize {
			l := list{raw: bytes.Clone(v)}
			copy(l.node[:], k[len(prefix):])
			l.epoch, l.n, l.header = challengedHead(v)
			lists = append(lists, l)
		}
		return true
	}); err != nil {
		return err
	}
	leases := map[uint64]*Lease{}
	check := func(cl *list) error {
		if cl.header && cl.epoch != w.e {
			return nil
		}
		node := cl.node
		answered, err := w.s.answered(node, w.e)
		if err != nil {
			return err
		}
		if cl.header && answered >= cl.n {
			return nil // every item answered: the list need not be decoded
		}
		var chal Challenged
		if err := w.s.decode(cl.raw, &chal); err != nil {
			return fmt.Errorf("rome: challenges of %s: %w: %w", node, ledger.ErrCorrupt, err)
		}
		if chal.Epoch != w.e {
			return nil
		}
		for _, it := range chal.Items[min(uint64(len(chal.Items)), answered):] {
			d := dueHolding{Lease: it.Lease, Pin: it.Pin}
			if ok, err := w.s.get(holdingKey(node, it.Lease, it.Pin), &d.Holding); err != nil {
				return err
			} else if !ok {
				continue // its lease closed at this epoch's end: nothing left to hold
			}
			l, ok := leases[d.Lease]
			if !ok {
				if l, err = w.s.lease(d.Lease); err != nil {
					return err
				}
				leases[d.Lease] = l
			}
			if err := env.miss(l, node, &d, false); err != nil {
				return err
			}
		}
		return nil
	}
	for i := range lists {
		if err := check(&lists[i]); err != nil {
			return err
		}
	}
	repairs, err := w.s.ids(rkey(tagRepair))
	if err != nil {
		return err
	}
	for _, id := range repairs {
		if err := w.s.del(rkey(tagRepair, u64(id))); err != nil {
			return err
		}
		l, err := w.s.lease(id)
		if err != nil {
			return err
		}
		if err := w.moveReplica(env, l); err != nil {
			return err
		}
	}
	return nil
}

// challengedHead reads the epoch and the number of items of an encoded
// Challenged (a CBOR array of the epoch and the list of items, in the
// codec's canonical form) without decoding the items; ok is false for
// anything else (the caller then decodes it whole).
func challengedHead(v []byte) (epoch, n uint64, ok bool) {
	if len(v) < 1 || v[0] != 0x82 { // array of 2
		return 0, 0, false
	}
	epoch, rest, ok := cborArg(v[1:], 0)
	if !ok {
		return 0, 0, false
	}
	n, _, ok = cborArg(rest, 4)
	return epoch, n, ok
}

// encodeChallenged is the codec's canonical encoding of a Challenged
// (an array of the epoch and the items, each an array of lease, pin and
// blob, the blob an array of its id as a byte string and its size), byte
// for byte (TestEncodeChallengedMatchesCodec), without the reflection:
// the draw writes one list per holder node at every epoch's end.
func encodeChallenged(c *Challenged) []byte {
	b := make([]byte, 0, 12+len(c.Items)*(3+9+5+3+32+9))
	b = append(b, 0x82)
	b = ledger.AppendCBORHead(b, 0, c.Epoch)
	b = ledger.AppendCBORHead(b, 4, uint64(len(c.Items)))
	for i := range c.Items {
		it := &c.Items[i]
		b = append(b, 0x83)
		b = ledger.AppendCBORHead(b, 0, it.Lease)
		b = ledger.AppendCBORHead(b, 0, uint64(it.Pin))
		b = append(b, 0x82, 0x58, byte(len(it.Blob.ID)))
		b = append(b, it.Blob.ID[:]...)
		b = ledger.AppendCBORHead(b, 0, it.Blob.Size)
	}
	return b
}

// roundHead reads the epoch and the answer counts of an encoded Round (a
// CBOR array of six, starting with the epoch, Proven and Declared, as the
// codec writes it) without decoding the rest; ok is false for anything
// else (the caller then decodes it whole).
func roundHead(v []byte) (epoch uint64, proven, declared uint32, ok bool) {
	if len(v) < 1 || v[0] != 0x86 { // array of 6
		return 0, 0, 0, false
	}
	var x [3]uint64
	rest := v[1:]
	for i := range x {
		if x[i], rest, ok = cborUint(rest); !ok {
			return 0, 0, 0, false
		}
	}
	if x[1] > 0xffffffff || x[2] > 0xffffffff {
		return 0, 0, 0, false
	}
	return x[0], uint32(x[1]), uint32(x[2]), true
}

// cborUint reads an unsigned integer (major type 0) from the head of b.
func cborUint(b []byte) (x uint64, rest []byte, ok bool) {
	return cborArg(b, 0)
}

// cborArg reads the argument of a CBOR head of major type major.
func cborArg(b []byte, major byte) (x uint64, rest []byte, ok bool) {
	if len(b) < 1 || b[0]>>5 != major {
		return 0, nil, false
	}
	ai := b[0] & 0x1f
	switch {
	case ai < 24:
		return uint64(ai), b[1:], true
	case ai <= 27:
		w := 1 << (ai - 24) // 1, 2, 4 or 8 bytes
		if len(b) < 1+w {
			return 0, nil, false
		}
		for _, c := range b[1 : 1+w] {
			x = x<<8 | uint64(c)
		}
		return x, b[1+w:], true
	}
	return 0, nil, false
}

// moveReplica ends a lease after epoch e because its holder kept missing
// proofs, and opens its request's replica slot again: the match at the end
// of this epoch may place it on another provider from e+1, whose node then
// fetches the pinned blobs from the holders left.
func (w *epochWork) moveReplica(env *storEnv, l *Lease) error {
	if l.End <= w.e+1 {
		return nil // it ends with this epoch anyway
	}
	oldEnd := l.End
	l.End, l.EndedEarly = w.e+1, true
	if ls, ok, err := w.s.leaseStorage(l.ID); err != nil {
		return err
	} else if ok {
		r, err := w.request(l.RequestID)
		if err != nil {
			return err
		}
		if err := w.s.rescheduleRate(w.p, l, r, ls, oldEnd, ls, w.e+1); err != nil {
			return err
		}
	}
	if l.Status == StatusActive {
		if err := w.endLease(l); err != nil {
			return err
		}
	}
	if err := w.s.put(rkey(tagLease, u64(l.ID)), l); err != nil {
		return err
	}
	if err := w.s.removeHoldings(l, false); err != nil {
		return err
	}
	r, err := w.request(l.RequestID)
	if err != nil {
		return err
	}
	reopened := false
	if r.Replicated() && r.EndEpoch > w.e+1 && (r.Status == StatusOpen || r.Status == StatusFilled) {
		r.Open++
		r.Repairs++
		r.Epoch = w.e // a fresh request_ttl_epochs to find the replica a home
		for _, a := range l.Amounts {
			setAmount(r.Remaining, a.Kind, amountOf(r.Remaining, a.Kind)+a.Amount)
		}
		if r.Status == StatusFilled {
			r.Status = StatusOpen
			if err := w.s.setRaw(rkey(tagOpenReq, u64(r.ID)), one); err != nil {
				return err
			}
		}
		reopened = true
	}
	env.emit("storage_repair", "lease_id", strconv.FormatUint(l.ID, 10), "request_id", strconv.FormatUint(r.ID, 10),
		"provider", l.Provider.String(), "epoch", strconv.FormatUint(w.e, 10), "reoffered", strconv.FormatBool(reopened))
	return nil
}

// placeHoldings gives a new lease of a request with pins its holdings:
// every pinned blob, challenged from storage_grace_epochs after the
// lease starts (its node fetches them meanwhile).
func (s *store) placeHoldings(p Params, l *Lease, r *Request, node ledger.Address) error {
	if r.Pins == 0 {
		return nil
	}
	prefix := rkey(tagPin, u64(r.ID))
	var pins []Pin
	var derr error
	if err := s.st.Iterate(prefix, prefixEnd(prefix), false, func(_, v []byte) bool {
		var pn Pin
		if derr = s.codec.Unmarshal(v, &pn); derr != nil {
			return false
		}
		pins = append(pins, pn)
		return true
	}); err != nil {
		return err
	}
	if derr != nil {
		return fmt.Errorf("rome: request %d pins: %w: %w", r.ID, ledger.ErrCorrupt, derr)
	}
	for i := range pins {
		if err := s.addHolding(p, node, l, r, &pins[i], l.Start+p.StorageGraceEpochs, l.Start); err != nil {
			return err
		}
	}
	return nil
}

// storageUnits is what lease l (storage record ls) is paid for storage in
// epochs [a, b), all of them settled now: the sum over the epochs of their
// proven byte-epochs (the bytes due minus the bytes missed) in units, each
// epoch's capped at the lease's amount — the bytes due change only where a
// bucket starts and the missed bytes only in an epoch with a miss, so the
// sum is taken over those stretches, not epoch by epoch. The settled
// epochs' buckets then merge into one (their missed bytes stay for the
// record until the lease closes).
func (w *epochWork) storageUnits(l *Lease, ls *LeaseStorage, a, b uint64) (uint64, error) {
	if a >= b {
		return 0, nil
	}
	r, err := w.request(l.RequestID)
	if err != nil {
		return 0, err
	}
	unit := r.unitBytes(w.p)
	type miss struct{ e, bytes uint64 }
	var misses []miss
	if ls.LastMiss > a { // a miss in [a, b) or later (none recorded before a)
		prefix := rkey(tagMissed, u64(l.ID))
		if err := w.s.st.Iterate(rkey(tagMissed, u64(l.ID), u64(a)), rkey(tagMissed, u64(l.ID), u64(b)), false, func(k, v []byte) bool {
			if len(k) == len(prefix)+8 && len(v) == 8 {
				misses = append(misses, miss{binary.BigEndian.Uint64(k[len(prefix):]), binary.BigEndian.Uint64(v)})
			}
			return true
		}); err != nil {
			return 0, err
		}
	}
	cuts := []uint64{a, b}
	for _, bk := range ls.Buckets {
		if a < bk.From && bk.From < b {
			cuts = append(cuts, bk.From)
		}
	}
	for _, m := range misses {
		cuts = append(cuts, m.e, m.e+1)
	}
	slices.Sort(cuts)
	cuts = slices.Compact(cuts)
	amount := amountOf(l.Amounts, KindStorage)
	var units uint64
	mi := 0
	for i := 0; i+1 < len(cuts) && cuts[i] < b; i++ {
		e, n := cuts[i], min(cuts[i+1], b)-cuts[i]
		var missed uint64
		if mi < len(misses) && misses[mi].e == e { // a miss's stretch is its epoch alone
			missed = misses[mi].bytes
			mi++
		}
		due := ls.DueBytes(e)
		u := min(ceilDiv(due-min(due, missed), unit), amount)
		units = satAdd(units, satMul(u, n)) // ≤ amount × n: within the escrow
	}
	var merged []StorageBucket
	var old StorageBucket
	for _, bk := range ls.Buckets {
		if bk.From < b {
			old.Bytes = satAdd(old.Bytes, bk.Bytes)
		} else {
			merged = append(merged, bk)
		}
	}
	if old.Bytes > 0 {
		merged = append([]StorageBucket{old}, merged...)
	}
	if merged == nil {
		merged = []StorageBucket{}
	}
	if slices.Equal(merged, ls.Buckets) {
		return units, nil // settled before and nothing new: no write
	}
	ls.Buckets = merged
	return units, w.s.put(rkey(tagLeaseStor, u64(l.ID)), ls)
}

// storUnitsAt is what lease l with storage record ls is paid by proofs for
// storage in epoch e before any miss: the bytes due in units, capped at
// the leased amount; 0 outside the lease or before its storage is paid by
// proofs.
func storUnitsAt(unit uint64, ls *LeaseStorage, l *Lease, e uint64) uint64 {
	if ls == nil || e < ls.Since || e < l.Start || e >= l.End {
		return 0
	}
	return min(ceilDiv(ls.DueBytes(e), unit), amountOf(l.Amounts, KindStorage))
}

// unitBytes is the storage unit r's leases are measured in: the one it
// was accepted with (p's for a record from before requests kept it).
func (r *Request) unitBytes(p Params) uint64 {
	if r.StorageUnit > 0 {
		return r.StorageUnit
	}
	return p.BytesPerStorageUnit
}

// rescheduleRate records how a change of lease l's storage (record old
// with the lease ending at oldEnd, now cur with l.End; old nil: none),
// made in epoch now and changing only epochs from now on, changes its
// provider's storage rate: the units its proofs pay per epoch, which the
// epoch's reward weighs at every epoch whether or not the lease is
// settled then (see storageRates). The rate changes where the lease's
// units do — at its first epoch paid by proofs, where a bucket's bytes
// become due, at its end — so a lease costs a write per change, not per
// epoch. A request paying storage by meter only pays nothing by proofs.
func (s *store) rescheduleRate(p Params, l *Lease, r *Request, old *LeaseStorage, oldEnd uint64, cur *LeaseStorage, now uint64) error {
	if r.Metered(KindStorage) {
		return nil
	}
	unit := r.unitBytes(p)
	ol := *l
	ol.End = oldEnd
	pts := []uint64{now}
	for _, x := range []struct {
		ls  *LeaseStorage
		end uint64
	}{{old, oldEnd}, {cur, l.End}} {
		if x.ls == nil {
			continue
		}
		pts = append(pts, x.ls.Since, x.end)
		for _, b := range x.ls.Buckets {
			pts = append(pts, b.From)
		}
	}
	slices.Sort(pts)
	pts = slices.Compact(pts)
	at := func(ls *LeaseStorage, l *Lease, t uint64) uint64 {
		if t == 0 {
			return 0
		}
		return storUnitsAt(unit, ls, l, t) - storUnitsAt(unit, ls, l, t-1) // two's complement
	}
	for _, t := range pts {
		if t < now {
			continue
		}
		if t == 0 {
			continue
		}
		d := at(cur, l, t) - at(old, &ol, t)
		if t == now { // epochs before now do not change: compare from now's level
			d = storUnitsAt(unit, cur, l, t) - storUnitsAt(unit, old, &ol, t)
		}
		if d == 0 {
			continue
		}
		k := rkey(tagStorRateAt, u64(t), l.Provider[:])
		v, err := s.getU64(k)
		if err != nil {
			return err
		}
		if err := s.setU64(k, v+d); err != nil {
			return err
		}
	}
	return nil
}
