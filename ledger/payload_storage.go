package ledger

import (
	"errors"
	"fmt"
)

// Payloads of storage leases and meters (kinds 43–46, in the ROME range):
// pinning a blob to a request's leases, the holders' proofs of storage, and
// signed meter readings. Their rules live in package rome; this file only
// makes them decodable and checks what needs no state.

// Storage and meter payload kinds.
const (
	KindBlobPin       PayloadKind = 43
	KindStorageProof  PayloadKind = 44
	KindMeterRegister PayloadKind = 45
	KindMeterReading  PayloadKind = 46
)

// Storage and meter limits checked without state.
const (
	// MaxReplicas bounds a request's replicas (distinct providers).
	MaxReplicas = 16
	// MaxStorageEntries bounds the holdings one storage_proof answers; a
	// node with more sends several transactions in the epoch.
	MaxStorageEntries = 1024
	// MaxStorageSegments bounds the challenged segments per holding.
	MaxStorageSegments = 16
	// MaxStorageProofBytes bounds one segment's proof: the 8-byte size, 64
	// bytes per tree level (at most 64 levels) and the 1 KiB segment
	// (package blob: 2,312 bytes for a 1 GiB blob).
	MaxStorageProofBytes = 8 + 64*64 + 1024
)

// Spread constraints of a replicated request.
const (
	SpreadNone   uint8 = 0
	SpreadRegion uint8 = 1 // every replica in a different region
)

// BlobPin pins a blob to a request: every lease of the request must hold
// it (within its storage quota) and prove it every epoch. Only the
// request's consumer may send it.
type BlobPin struct {
	_         struct{} `cbor:",toarray"`
	RequestID uint64   `json:"request_id"`
	Blob      BlobRef  `json:"blob"`
}

// Kind implements Payload.
func (*BlobPin) Kind() PayloadKind { return KindBlobPin }

// ValidateBasic implements Payload.
func (p *BlobPin) ValidateBasic() error {
	switch {
	case p.RequestID == 0:
		return fmt.Errorf("ledger: blob pin: request id 0")
	case p.Blob.ID.IsZero():
		return fmt.Errorf("ledger: blob pin: zero blob id")
	}
	return nil
}

// StorageEntry answers the challenges of one holding (a lease holding a
// pinned blob): one proof per challenged segment, in challenge order (the
// segment's bytes and its path to the blob id, blob.Prove). No proofs
// declares that the holder cannot prove it: a miss, recorded at once.
type StorageEntry struct {
	_       struct{} `cbor:",toarray"`
	LeaseID uint64   `json:"lease_id"`
	Blob    BlobID   `json:"blob"`
	Proofs  [][]byte `json:"proofs"`
}

// StorageProof is a holder node's answer to an epoch's storage
// challenges, for its holdings in their canonical order (rome.DueHoldings)
// from where its previous answer in the epoch stopped. Only the node the
// leases' offers name may send it (signed by its node key).
type StorageProof struct {
	_       struct{}       `cbor:",toarray"`
	Epoch   uint64         `json:"epoch"`
	Entries []StorageEntry `json:"entries"`
}

// Kind implements Payload.
func (*StorageProof) Kind() PayloadKind { return KindStorageProof }

// ValidateBasic implements Payload.
func (p *StorageProof) ValidateBasic() error {
	if len(p.Entries) == 0 || len(p.Entries) > MaxStorageEntries {
		return fmt.Errorf("ledger: storage proof: %d entries, want 1-%d", len(p.Entries), MaxStorageEntries)
	}
	for i, e := range p.Entries {
		switch {
		case e.LeaseID == 0:
			return fmt.Errorf("ledger: storage proof: entry %d: lease id 0", i)
		case e.Blob.IsZero():
			return fmt.Errorf("ledger: storage proof: entry %d: zero blob id", i)
		case len(e.Proofs) > MaxStorageSegments:
			return fmt.Errorf("ledger: storage proof: entry %d: %d proofs, limit %d", i, len(e.Proofs), MaxStorageSegments)
		}
		for j, pr := range e.Proofs {
			if len(pr) == 0 || len(pr) > MaxStorageProofBytes {
				return fmt.Errorf("ledger: storage proof: entry %d proof %d: %d bytes, want 1-%d", i, j, len(pr), MaxStorageProofBytes)
			}
		}
	}
	return nil
}

// maxCBORArray is the codec's bound on array elements
// (DecOptions.MaxArrayElements): the hand-written decoders reject what it
// rejects.
const maxCBORArray = 1 << 20

// decodeCanonical decodes a storage_proof body, accepting exactly what
// Codec.Unmarshal accepts (the canonical encoding of some StorageProof:
// shortest heads, definite lengths, null for a nil slice, no trailing
// bytes) without copying the proofs or re-encoding the body to compare:
// the proofs alias b. A block carries ≈10 KB of proofs per transaction,
// so DecodeTx decodes them here (FuzzStorageProofDecoder holds the two
// decoders to the same answers).
func (p *StorageProof) decodeCanonical(b []byte) error {
	n, r, err := cborHead(b, 4)
	if err != nil {
		return err
	}
	if n != 2 {
		return fmt.Errorf("storage proof of %d fields, want 2: %w", n, ErrMalformed)
	}
	if p.Epoch, r, err = cborHead(r, 0); err != nil {
		return fmt.Errorf("epoch: %w", err)
	}
	var null bool
	if n, null, r, err = cborArrayOrNull(r); err != nil {
		return fmt.Errorf("entries: %w", err)
	}
	if !null {
		// Each entry takes at least 36 bytes: no allocation beyond the input.
		if n > uint64(len(r)/36) {
			return fmt.Errorf("%d entries in %d bytes: %w", n, len(r), ErrMalformed)
		}
		p.Entries = make([]StorageEntry, n)
	}
	for i := range p.Entries {
		e := &p.Entries[i]
		var m uint64
		if m, r, err = cborHead(r, 4); err != nil || m != 3 {
			return fmt.Errorf("entry %d of %d fields, want 3: %w", i, m, errors.Join(err, ErrMalformed))
		}
		if e.LeaseID, r, err = cborHead(r, 0); err != nil {
			return fmt.Errorf("entry %d lease: %w", i, err)
		}
		if m, r, err = cborHead(r, 2); err != nil || m != uint64(len(e.Blob)) || len(r) < len(e.Blob) {
			return fmt.Errorf("entry %d blob: %w", i, errors.Join(err, ErrMalformed))
		}
		copy(e.Blob[:], r)
		r = r[len(e.Blob):]
		if m, null, r, err = cborArrayOrNull(r); err != nil {
			return fmt.Errorf("entry %d proofs: %w", i, err)
		}
		if null {
			continue
		}
		if m > uint64(len(r)) { // each proof takes at least one byte
			return fmt.Errorf("entry %d: %d proofs in %d bytes: %w", i, m, len(r), ErrMalformed)
		}
		e.Proofs = make([][]byte, m)
		for j := range e.Proofs {
			if e.Proofs[j], r, err = cborBytesOrNull(r); err != nil {
				return fmt.Errorf("entry %d proof %d: %w", i, j, err)
			}
		}
	}
	if len(r) != 0 {
		return fmt.Errorf("storage proof: %d trailing bytes: %w", len(r), ErrMalformed)
	}
	return nil
}

// cborArrayOrNull reads an array head (its length) or null (a nil slice).
func cborArrayOrNull(b []byte) (n uint64, null bool, rest []byte, err error) {
	if len(b) > 0 && b[0] == 0xf6 {
		return 0, true, b[1:], nil
	}
	n, rest, err = cborHead(b, 4)
	if err == nil && n > maxCBORArray {
		err = fmt.Errorf("array of %d elements: %w", n, ErrMalformed)
	}
	return n, false, rest, err
}

// MarshalJSON shows each entry's proof sizes, not their bytes.
func (e StorageEntry) MarshalJSON() ([]byte, error) {
	sizes := make([]int, len(e.Proofs))
	for i, p := range e.Proofs {
		sizes[i] = len(p)
	}
	return []byte(fmt.Sprintf(`{"lease_id":%d,"blob":%q,"proof_bytes":%s}`, e.LeaseID, e.Blob, intList(sizes))), nil
}

func intList(v []int) string {
	b := []byte{'['}
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = fmt.Appendf(b, "%d", x)
	}
	return string(append(b, ']'))
}

// MeterRegister registers a metering device of a resource kind by its
// ML-DSA-65 public key; the sender (a provider) owns it.
type MeterRegister struct {
	_        struct{} `cbor:",toarray"`
	Resource uint8    `json:"kind"` // the resource kind it measures
	PubKey   []byte   `json:"pubkey"`
}

// Kind implements Payload.
func (*MeterRegister) Kind() PayloadKind { return KindMeterRegister }

// ValidateBasic implements Payload.
func (p *MeterRegister) ValidateBasic() error {
	if p.Resource == 0 || p.Resource > MaxResourceKind {
		return fmt.Errorf("ledger: meter register: unknown resource kind %d", p.Resource)
	}
	if _, err := ParsePublicKey(p.PubKey); err != nil {
		return fmt.Errorf("ledger: meter register: %w", err)
	}
	return nil
}

// MarshalJSON shows the device key's fingerprint, not its bytes.
func (p *MeterRegister) MarshalJSON() ([]byte, error) {
	fp := ""
	if k, err := ParsePublicKey(p.PubKey); err == nil {
		fp = k.Fingerprint()
	}
	return []byte(fmt.Sprintf(`{"kind":%d,"key":%q}`, p.Resource, fp)), nil
}

// MeterStatement is what a metering device signs (PurposeMeter, the chain
// id): a cumulative counter of a resource delivered to a lease in an
// epoch, with the device's sequence number. Counters and sequence numbers
// only grow, so a reading cannot be replayed or rolled back.
type MeterStatement struct {
	_       struct{} `cbor:",toarray"`
	LeaseID uint64   `json:"lease_id"`
	Epoch   uint64   `json:"epoch"`
	Kind    uint8    `json:"kind"`
	Counter uint64   `json:"counter"` // cumulative, in the kind's measure (energy: millijoules)
	Seq     uint64   `json:"seq"`
}

// MeterReading submits a device's signed statement; anyone may send it.
type MeterReading struct {
	_         struct{}       `cbor:",toarray"`
	MeterID   uint64         `json:"meter_id"`
	Statement MeterStatement `json:"statement"`
	Signature []byte         `json:"signature"`
}

// Kind implements Payload.
func (*MeterReading) Kind() PayloadKind { return KindMeterReading }

// ValidateBasic implements Payload.
func (p *MeterReading) ValidateBasic() error {
	s := &p.Statement
	switch {
	case p.MeterID == 0:
		return fmt.Errorf("ledger: meter reading: meter id 0")
	case s.LeaseID == 0:
		return fmt.Errorf("ledger: meter reading: lease id 0")
	case s.Kind == 0 || s.Kind > MaxResourceKind:
		return fmt.Errorf("ledger: meter reading: unknown resource kind %d", s.Kind)
	case s.Seq == 0:
		return fmt.Errorf("ledger: meter reading: sequence numbers start at 1")
	case len(p.Signature) != SignatureSize:
		return fmt.Errorf("ledger: meter reading: signature is %d bytes, want %d: %w", len(p.Signature), SignatureSize, ErrInvalidSignature)
	}
	return nil
}

// SignMeterStatement signs a statement with a device key.
func SignMeterStatement(c *Codec, key *PrivateKey, chainID string, s *MeterStatement) ([]byte, error) {
	b, err := c.Marshal(s)
	if err != nil {
		return nil, err
	}
	return key.Sign(PurposeMeter, chainID, b)
}

// VerifyMeterStatement checks a device's signature over a statement.
func VerifyMeterStatement(c *Codec, key PublicKey, chainID string, s *MeterStatement, sig []byte) error {
	b, err := c.Marshal(s)
	if err != nil {
		return err
	}
	return key.Verify(PurposeMeter, chainID, b, sig)
}

func newStoragePayload(k PayloadKind) Payload {
	switch k {
	case KindBlobPin:
		return &BlobPin{}
	case KindStorageProof:
		return &StorageProof{}
	case KindMeterRegister:
		return &MeterRegister{}
	case KindMeterReading:
		return &MeterReading{}
	}
	return nil
}

func storageKindName(k PayloadKind) string {
	switch k {
	case KindBlobPin:
		return "blob_pin"
	case KindStorageProof:
		return "storage_proof"
	case KindMeterRegister:
		return "meter_register"
	case KindMeterReading:
		return "meter_reading"
	}
	return ""
}
