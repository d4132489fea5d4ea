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
//
// The record does not store the issuer's public key: the statement names
// the issuer by fingerprint, and the key is in the market's issuer registry
// (one record per issuer ever used, written when it issues its first
// certificate, kept when governance removes the issuer so that its
// certificates can still be shown and verified). IssuerKey is filled from
// the registry by the market's readers (Market.Certificate,
// Market.Certificates, PendingSignatures); it is never encoded.
type Certificate struct {
	_            struct{}  `cbor:",toarray"`
	Statement    Statement `json:"statement"`
	IssuerKey    []byte    `cbor:"-" json:"issuer_key"`
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
		out = append(out, Pending{Statement: c.Statement, IssuerKey: issuer.Bytes()})
	}
	return out, nil
}

// issuerKeyKey is the registry record of the issuer with fingerprint fp.
func issuerKeyKey(fp string) []byte { return rkey(tagIssuerKey, []byte(fp)) }

// issuerKey returns the public key (raw bytes) of the issuer with
// fingerprint fp from the issuer registry.
func (s *store) issuerKey(fp string) ([]byte, error) {
	k := issuerKeyKey(fp)
	raw, err := s.st.Get(k)
	if err != nil {
		return nil, err
	}
	if s.gas != nil {
		if err := s.charge(s.sched.ReadBase+s.sched.ReadPerByte*uint64(len(k)+len(raw)), "state read"); err != nil {
			return nil, err
		}
	}
	if raw == nil {
		return nil, fmt.Errorf("rome: issuer %s is not in the issuer registry: %w", fp, ErrNotFound)
	}
	return raw, nil
}

// registerIssuer records an issuer's public key under its fingerprint the
// first time it issues a certificate; an issuer already registered costs
// one read. seen (per epoch end) saves the read for the next certificates
// of the same issuer.
func (s *store) registerIssuer(pk ledger.PublicKey, seen map[string]bool) error {
	fp := pk.Fingerprint()
	if seen[fp] {
		return nil
	}
	seen[fp] = true
	k := issuerKeyKey(fp)
	raw, err := s.st.Get(k)
	if err != nil {
		return err
	}
	if raw != nil {
		return nil
	}
	return s.setRaw(k, pk.Bytes())
}

// withIssuerKeys fills the certificates' IssuerKey from the registry (one
// read per distinct issuer).
func (s *store) withIssuerKeys(cs []Certificate) error {
	keys := map[string][]byte{}
	for i := range cs {
		fp := cs[i].Statement.Issuer
		k, ok := keys[fp]
		if !ok {
			var err error
			if k, err = s.issuerKey(fp); err != nil {
				return fmt.Errorf("rome: certificate %d: %w", cs[i].Statement.ID, err)
			}
			keys[fp] = k
		}
		cs[i].IssuerKey = k
	}
	return nil
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

// Certificate periods. Each contributor (a provider whose units are
// credited) has its own period of cert_period_epochs epochs, shifted by a
// phase taken from its address, so that in each epoch about 1/period of
// the contributors are certified instead of all of them in one block:
// contributor a's periods end at the epochs d with
// (d + 1 + certPhase(a, P)) mod P = 0. Units credited to a are added to
// accumulators keyed by the last epoch of a's pending period (tagCertAcc),
// so an epoch end reads only the contributors due in it. A contributor's
// period is fixed when its first unit after its previous certificate is
// credited (certNext), and the certificate covers from that period's first
// epoch (never before the epoch after the previous certificate) to its
// last. A change of cert_period_epochs applies to the periods that begin
// after it; with no issuers when a period ends, its units carry over to
// the contributor's next period end.

// certPhase is contributor a's phase for a period of P epochs.
func certPhase(a ledger.Address, period uint64) uint64 {
	return binary.BigEndian.Uint64(a[:8]) % period
}

// certDue is the first epoch d ≥ e that ends one of contributor a's
// periods of P epochs (saturating at the largest epoch).
func certDue(a ledger.Address, e, period uint64) uint64 {
	y := (certPhase(a, period) + 1) % period
	x := e % period
	r := x + y // (e + 1 + phase) mod P, without overflow
	if x >= period-y {
		r = x - (period - y)
	}
	if r == 0 {
		return e
	}
	if e > ^uint64(0)-(period-r) {
		return ^uint64(0)
	}
	return e + (period - r)
}

// certNext is a contributor's certificate period (tagCertNext, 17 bytes:
// pending flag, due, from). While pending, due is the epoch its period
// ends (where its accumulators are) and from the first epoch it covers;
// otherwise from is the first epoch its next period may cover (the epoch
// after its last certificate).
type certNext struct {
	pending   bool
	due, from uint64
}

func (c certNext) encode() []byte {
	b := make([]byte, 17)
	if c.pending {
		b[0] = 1
	}
	binary.BigEndian.PutUint64(b[1:], c.due)
	binary.BigEndian.PutUint64(b[9:], c.from)
	return b
}

func (s *store) certNext(a ledger.Address) (certNext, error) {
	k := rkey(tagCertNext, a[:])
	raw, err := s.st.Get(k)
	if err != nil {
		return certNext{}, err
	}
	if raw == nil {
		return certNext{}, nil
	}
	if len(raw) != 17 || raw[0] > 1 {
		return certNext{}, fmt.Errorf("rome: certificate period of %s: %w", a, ledger.ErrCorrupt)
	}
	return certNext{pending: raw[0] == 1, due: binary.BigEndian.Uint64(raw[1:]), from: binary.BigEndian.Uint64(raw[9:])}, nil
}

func (s *store) putCertNext(a ledger.Address, c certNext) error {
	return s.setRaw(rkey(tagCertNext, a[:]), c.encode())
}

// certPeriod returns contributor a's pending period at epoch e, beginning
// one (under period P) if none is pending.
func (s *store) certPeriod(a ledger.Address, e, period uint64) (certNext, error) {
	c, err := s.certNext(a)
	if err != nil || c.pending {
		return c, err
	}
	due := certDue(a, e, period)
	from := uint64(0)
	if due >= period {
		from = due - period + 1
	}
	c = certNext{pending: true, due: due, from: max(from, c.from)}
	return c, s.putCertNext(a, c)
}

// certAccKey is the accumulator of contributor a's units of one kind and
// source in its period ending at epoch due.
func certAccKey(due uint64, a ledger.Address, kind, src byte, meter uint64) []byte {
	k := rkey(tagCertAcc, u64(due), a[:], []byte{kind, src})
	if src == sourceMeter {
		k = append(k, u64(meter)...)
	}
	return k
}
