package ledger

import "fmt"

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
