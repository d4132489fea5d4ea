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
	raw, err := s.getRaw(issuerKeyKey(fp))
	if err != nil {
		return nil, err
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
// credited) has its own period of cert_period_epochs (P) epochs, shifted by
// a phase taken from its address, so that in each epoch about 1/P of the
// contributors are certified instead of all of them in one block:
// contributor a's periods end at the epochs d with
// (d + 1 + certPhase(a, P)) mod P = 0. Units credited to a at epoch e are
// added to accumulators keyed by d = certDue(a, e, P), the end of a's
// current period, so an epoch end reads only the contributors due in it,
// and crediting needs no other record. A certificate covers the epochs
// max(d + 1 − P, era) to d, era being the epoch from which the current
// period length applies (tagCertEra; 0 until governance changes it).
//
// Two things move an accumulator to a later end, and then its value also
// carries the window's first epoch (16 bytes instead of 8), so that the
// certificate still covers the epochs in which its units were credited:
//   - a change of cert_period_epochs by governance (rekeyCerts) moves every
//     pending accumulator to its contributor's period end under the new
//     length, and sets the era to the current epoch;
//   - an epoch end with no issuers (governance may remove them all) moves
//     the due accumulators to their contributors' next period end.
//
// So every unit is certified exactly once, and a contributor's windows
// never overlap.

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

// certFrom is the first epoch of the window of a period of P epochs ending
// at d, under the era beginning at epoch era.
func certFrom(d, period, era uint64) uint64 {
	from := uint64(0)
	if d >= period {
		from = d - period + 1
	}
	return max(from, era)
}

var certEraKey = rkey(tagCertEra)

// certAccKey is the accumulator of contributor a's units of one kind and
// source in its period ending at epoch due.
func certAccKey(due uint64, a ledger.Address, kind, src byte, meter uint64) []byte {
	k := rkey(tagCertAcc, u64(due), a[:], []byte{kind, src})
	if src == sourceMeter {
		k = append(k, u64(meter)...)
	}
	return k
}

// certAcc is a decoded accumulator: units, and the window's first epoch
// when the accumulator was moved (hasFrom).
type certAcc struct {
	units   uint64
	from    uint64
	hasFrom bool
}

func decodeCertAcc(k, raw []byte) (certAcc, error) {
	switch len(raw) {
	case 0:
		return certAcc{}, nil
	case 8:
		return certAcc{units: binary.BigEndian.Uint64(raw)}, nil
	case 16:
		return certAcc{units: binary.BigEndian.Uint64(raw), from: binary.BigEndian.Uint64(raw[8:]), hasFrom: true}, nil
	}
	return certAcc{}, fmt.Errorf("rome: certificate accumulator %x: %w", k, ledger.ErrCorrupt)
}

func (s *store) certAcc(k []byte) (certAcc, error) {
	raw, err := s.st.Get(k)
	if err != nil {
		return certAcc{}, err
	}
	if s.gas != nil {
		if err := s.charge(s.sched.ReadBase, "state read"); err != nil {
			return certAcc{}, err
		}
	}
	return decodeCertAcc(k, raw)
}

func (s *store) putCertAcc(k []byte, a certAcc) error {
	if a.units == 0 {
		return s.del(k)
	}
	if !a.hasFrom {
		return s.setRaw(k, u64(a.units))
	}
	return s.setRaw(k, append(u64(a.units), u64(a.from)...))
}

// addCertAcc adds a to the accumulator at k (the earlier window start
// wins when both carry one).
func (s *store) addCertAcc(k []byte, a certAcc) error {
	cur, err := s.certAcc(k)
	if err != nil {
		return err
	}
	cur.units = satAdd(cur.units, a.units)
	if a.hasFrom && (!cur.hasFrom || a.from < cur.from) {
		cur.from, cur.hasFrom = a.from, true
	}
	return s.putCertAcc(k, cur)
}

// pendingCert is one accumulator read by certify or rekeyCerts.
type pendingCert struct {
	due   uint64
	addr  ledger.Address
	kind  uint8
	src   byte
	meter uint64
	acc   certAcc
}

// pendingCerts lists the accumulators under prefix (all of them, or those
// of one period end), in key order.
func (s *store) pendingCerts(prefix []byte) ([]pendingCert, error) {
	base := len(rkey(tagCertAcc)) + 8 + ledger.AddressSize + 2
	var list []pendingCert
	var derr error
	err := s.st.Iterate(prefix, prefixEnd(prefix), false, func(k, v []byte) bool {
		if len(k) != base && len(k) != base+8 {
			return true
		}
		var p pendingCert
		if p.acc, derr = decodeCertAcc(k, v); derr != nil {
			return false
		}
		o := len(rkey(tagCertAcc))
		p.due = binary.BigEndian.Uint64(k[o:])
		copy(p.addr[:], k[o+8:])
		p.kind, p.src = k[base-2], k[base-1]
		if len(k) == base+8 {
			p.meter = binary.BigEndian.Uint64(k[base:])
		}
		list = append(list, p)
		return true
	})
	if err == nil {
		err = derr
	}
	return list, err
}

// rekeyCerts applies a change of cert_period_epochs from old to period at
// epoch e: every pending accumulator moves to its contributor's period end
// under the new length, keeping its window's first epoch, and the new era
// begins at e. It reads every pending accumulator, once per change.
func (s *store) rekeyCerts(old, period, e uint64) error {
	if old == period {
		return nil
	}
	era, err := s.getU64(certEraKey)
	if err != nil {
		return err
	}
	list, err := s.pendingCerts(rkey(tagCertAcc))
	if err != nil {
		return err
	}
	for _, p := range list {
		a := p.acc
		if !a.hasFrom {
			a.from, a.hasFrom = certFrom(p.due, old, era), true
		}
		if err := s.del(certAccKey(p.due, p.addr, p.kind, p.src, p.meter)); err != nil {
			return err
		}
		if err := s.addCertAcc(certAccKey(certDue(p.addr, e, period), p.addr, p.kind, p.src, p.meter), a); err != nil {
			return err
		}
	}
	return s.setU64(certEraKey, e)
}
