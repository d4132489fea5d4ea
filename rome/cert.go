package rome

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/sos-kernel/sos/ledger"
)

// StatementVersion is the version of the certificate statement format
// (2: statements say how the amount was measured).
const StatementVersion = 2

// How a certificate's amount was established.
const (
	MeasuredRuntime  = "runtime"  // the job runtime metered it (gas, bytes moved)
	MeasuredReported = "reported" // provider and consumer reported the same amount
	MeasuredProofs   = "proofs"   // storage: byte-epochs the holder proved
	MeasuredMeter    = "meter"    // "meter <id>": a registered device's signed readings
)

// Sources of certificate-period accumulators (the byte after the kind in
// their key; a meter's key ends with the meter id).
const (
	sourceReported byte = 0
	sourceRuntime  byte = 1
	sourceProofs   byte = 2
	sourceMeter    byte = 3
)

func sourceName(src byte, meter uint64) string {
	switch src {
	case sourceRuntime:
		return MeasuredRuntime
	case sourceProofs:
		return MeasuredProofs
	case sourceMeter:
		return MeasuredMeter + " " + strconv.FormatUint(meter, 10)
	}
	return MeasuredReported
}

// Statement is what a certificate's issuer signs: its canonical CBOR
// encoding, signed with ML-DSA-65 under ledger.PurposeCertificate and the
// chain id.
type Statement struct {
	_            struct{} `cbor:",toarray"`
	Version      uint8    `json:"version"`
	ChainID      string   `json:"chain_id"`
	ID           uint64   `json:"cert_id"`
	NodeID       string   `json:"node_id"` // the contributor's account address (sos1...)
	Kind         uint8    `json:"kind"`
	Amount       uint64   `json:"amount"` // attested units delivered in the epoch range
	FromEpoch    uint64   `json:"from_epoch"`
	ToEpoch      uint64   `json:"to_epoch"` // inclusive
	Issuer       string   `json:"issuer"`   // fingerprint of the issuer's node key
	IssuedHeight uint64   `json:"issued_height"`
	Measured     string   `json:"measured"` // MeasuredRuntime, MeasuredReported, MeasuredProofs or "meter <id>"
}

// Certificate is a statement on the ledger with its signature (empty until
// the issuer signs) and its life cycle.
type Certificate struct {
	_            struct{}  `cbor:",toarray"`
	Statement    Statement `json:"statement"`
	IssuerKey    []byte    `json:"issuer_key"`
	Signature    []byte    `json:"signature"`
	Revoked      bool      `json:"revoked"`
	RevokeReason string    `json:"revoke_reason"`
	Redeemed     uint64    `json:"redeemed"` // units already used as credit
}

// SignBytes is the canonical statement a signature covers.
func (s *Statement) SignBytes(codec *ledger.Codec) ([]byte, error) {
	b, err := codec.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("rome: statement: %w", err)
	}
	return b, nil
}

// SignStatement signs a statement with an issuer key.
func SignStatement(codec *ledger.Codec, key *ledger.PrivateKey, s *Statement) ([]byte, error) {
	b, err := s.SignBytes(codec)
	if err != nil {
		return nil, err
	}
	return key.Sign(ledger.PurposeCertificate, s.ChainID, b)
}

// VerifyStatement checks sig over s with the issuer's public key, and that
// the key is the issuer the statement names.
func VerifyStatement(codec *ledger.Codec, issuerKey []byte, s *Statement, sig []byte) error {
	pk, err := ledger.ParsePublicKey(issuerKey)
	if err != nil {
		return fmt.Errorf("rome: certificate %d: issuer key: %w", s.ID, err)
	}
	if pk.Fingerprint() != s.Issuer {
		return fmt.Errorf("rome: certificate %d: issuer key %s is not the issuer %s the statement names: %w", s.ID, pk.Fingerprint(), s.Issuer, ledger.ErrInvalidSignature)
	}
	b, err := s.SignBytes(codec)
	if err != nil {
		return err
	}
	if err := pk.Verify(ledger.PurposeCertificate, s.ChainID, b, sig); err != nil {
		return fmt.Errorf("rome: certificate %d: %w", s.ID, err)
	}
	return nil
}

// CertFile is the offline form of a certificate (sos cert show -o json):
// everything needed to verify it without a node.
type CertFile struct {
	Statement    Statement `json:"statement"`
	KindName     string    `json:"kind_name"`
	IssuerKey    string    `json:"issuer_key"` // hex
	Signature    string    `json:"signature"`  // hex; "" while pending
	Revoked      bool      `json:"revoked"`
	RevokeReason string    `json:"revoke_reason,omitempty"`
	Redeemed     uint64    `json:"redeemed"`
	Status       string    `json:"status"` // pending, signed, revoked
}

// File converts a certificate to its offline form.
func (c *Certificate) File() CertFile {
	f := CertFile{Statement: c.Statement, KindName: KindName(c.Statement.Kind), IssuerKey: hex.EncodeToString(c.IssuerKey),
		Signature: hex.EncodeToString(c.Signature), Revoked: c.Revoked, RevokeReason: c.RevokeReason, Redeemed: c.Redeemed, Status: "pending"}
	switch {
	case c.Revoked:
		f.Status = "revoked"
	case len(c.Signature) > 0:
		f.Status = "signed"
	}
	return f
}

// VerifyFile verifies a certificate file offline: the signature over the
// canonical statement with the key in the file, and that the key is the
// named issuer. trusted, when not empty, lists issuer keys (hex) the
// verifier accepts (for example the genesis nodes).
func VerifyFile(f *CertFile, trusted []string) error {
	if f.Signature == "" {
		return fmt.Errorf("rome: certificate %d is not signed yet: %w", f.Statement.ID, ledger.ErrInvalidSignature)
	}
	key, err := hex.DecodeString(f.IssuerKey)
	if err != nil {
		return fmt.Errorf("rome: certificate: issuer_key is not hex")
	}
	sig, err := hex.DecodeString(f.Signature)
	if err != nil {
		return fmt.Errorf("rome: certificate: signature is not hex")
	}
	if len(trusted) > 0 {
		ok := false
		for _, t := range trusted {
			ok = ok || t == f.IssuerKey
		}
		if !ok {
			return fmt.Errorf("rome: certificate %d: issuer %s is not a trusted issuer: %w", f.Statement.ID, f.Statement.Issuer, ledger.ErrInvalidSignature)
		}
	}
	return VerifyStatement(ledger.NewCodec(), key, &f.Statement, sig)
}

// Pending is a statement waiting for its issuer's signature.
type Pending struct {
	Statement Statement
	IssuerKey []byte
}

// PendingSignatures lists (in id order, at most limit) the statements that
// wait for the issuer with public key issuer. The node holding that key
// signs each (SignStatement) and submits the signatures as CertSign
// transactions (SignPayload); execution checks them against the key.
func PendingSignatures(st *ledger.State, codec *ledger.Codec, issuer ledger.PublicKey, limit int) ([]Pending, error) {
	s := &store{st: st, codec: codec}
	prefix := rkey(tagCertPend)
	want := issuer.Fingerprint()
	var ids []uint64
	err := st.Iterate(prefix, prefixEnd(prefix), false, func(k, v []byte) bool {
		if len(k) == len(prefix)+8 && string(v) == want {
			ids = append(ids, binary.BigEndian.Uint64(k[len(prefix):]))
		}
		return len(ids) < limit
	})
	if err != nil {
		return nil, err
	}
	out := make([]Pending, 0, len(ids))
	for _, id := range ids {
		c, err := s.cert(id)
		if err != nil {
			return nil, err
		}
		out = append(out, Pending{Statement: c.Statement, IssuerKey: c.IssuerKey})
	}
	return out, nil
}

// SignPayload signs a pending statement and returns the CertSign payload
// that records the signature on the ledger.
func SignPayload(codec *ledger.Codec, key *ledger.PrivateKey, p *Pending) (*ledger.CertSign, error) {
	sig, err := SignStatement(codec, key, &p.Statement)
	if err != nil {
		return nil, err
	}
	return &ledger.CertSign{CertID: p.Statement.ID, Signature: sig}, nil
}
