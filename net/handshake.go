package net

import (
	"bytes"
	"crypto/subtle"
	"fmt"

	"github.com/sos-kernel/sos/ledger"
)

// protocolVersion is the transport protocol version in the handshake.
const protocolVersion = 1

// exporterLabel is the TLS exporter label (RFC 8446 §7.5) whose output each
// side signs. It differs per TLS session, which is what binds the ML-DSA
// identity to this session.
const exporterLabel = "sos/v1/handshake"

// exporterSize is the exporter output length.
const exporterSize = 32

// role is the side of the QUIC connection. It is signed so a server's
// handshake can never be reflected back as a client's in the same session.
type role byte

const (
	roleClient role = 1
	roleServer role = 2
	// roleJoiner is a client that is not a member yet: it knows neither the
	// chain id nor the genesis (it signs with an empty chain id and a zero
	// genesis) and may only ask to join (see join.go).
	roleJoiner role = 3
	// roleProbe is a member dialing back the address a joiner claims, to
	// check that the joiner's key answers there; the joiner answers in
	// roleJoiner (see join.go).
	roleProbe role = 4
	// roleWorker is a node that is not a member and follows one (see
	// worker.go), as either side of the connection: it dials the member it
	// follows, and it answers that member's dials. Its link carries only
	// the kinds AllowedForWorkers. The member's side of a worker link is
	// roleClient or roleServer as usual, so neither hello can be reflected
	// as the other's.
	roleWorker role = 5
)

func (r role) String() string {
	switch r {
	case roleClient:
		return "client"
	case roleJoiner:
		return "joiner"
	case roleProbe:
		return "probe"
	case roleServer:
		return "server"
	case roleWorker:
		return "worker"
	}
	return fmt.Sprintf("role(%d)", byte(r))
}

// bootIDSize is the size of the random per-process id in the handshake; a
// new boot id tells a node that the peer restarted, so a lingering
// connection from the previous process is stale.
const bootIDSize = 8

// hello is the handshake message each side sends on the handshake stream.
//
// Layout: version u8 | role u8 | len(chain id) u8 | chain id | genesis [32] |
// boot id [8] | ML-DSA-65 public key [1952] | ML-DSA-65 signature [3309].
type hello struct {
	Version byte
	Role    role
	ChainID string
	Genesis [32]byte
	Boot    [bootIDSize]byte
	PubKey  []byte
	Sig     []byte
}

const maxChainID = 200 // the ML-DSA context must stay ≤ 255 bytes

// helloSize is the encoded size of a hello with a chain id of n bytes.
func helloSize(n int) int {
	return 3 + n + 32 + bootIDSize + ledger.PublicKeySize + ledger.SignatureSize
}

// maxHello bounds the handshake frame.
var maxHello = helloSize(maxChainID)

func (h *hello) marshal() []byte {
	b := make([]byte, 0, helloSize(len(h.ChainID)))
	b = append(b, h.Version, byte(h.Role), byte(len(h.ChainID)))
	b = append(b, h.ChainID...)
	b = append(b, h.Genesis[:]...)
	b = append(b, h.Boot[:]...)
	b = append(b, h.PubKey...)
	return append(b, h.Sig...)
}

// unmarshalHello parses a hello. It never panics; it checks sizes only, the
// content is checked by verify.
func unmarshalHello(b []byte) (hello, error) {
	var h hello
	if len(b) < 3 {
		return h, fmt.Errorf("%w: %d bytes", ErrBadHandshake, len(b))
	}
	h.Version, h.Role = b[0], role(b[1])
	n := int(b[2])
	if n > maxChainID {
		return h, fmt.Errorf("%w: chain id of %d bytes", ErrBadHandshake, n)
	}
	if len(b) != helloSize(n) {
		return h, fmt.Errorf("%w: %d bytes, want %d", ErrBadHandshake, len(b), helloSize(n))
	}
	b = b[3:]
	h.ChainID, b = string(b[:n]), b[n:]
	b = b[copy(h.Genesis[:], b):]
	b = b[copy(h.Boot[:], b):]
	h.PubKey = append([]byte(nil), b[:ledger.PublicKeySize]...)
	h.Sig = append([]byte(nil), b[ledger.PublicKeySize:]...)
	return h, nil
}

// transcript is what a side signs: the session's TLS exporter value, its role,
// and the fields that must not be swapped in transit. The chain id is bound
// through the ML-DSA context (ledger.PurposeHandshake, chain id).
func (h *hello) transcript(exporter []byte) []byte {
	b := make([]byte, 0, len(exporter)+2+32+bootIDSize)
	b = append(b, exporter...)
	b = append(b, byte(h.Role), h.Version)
	b = append(b, h.Genesis[:]...)
	return append(b, h.Boot[:]...)
}

// newHello builds and signs this node's hello for a session.
func newHello(key *ledger.PrivateKey, chainID string, genesis [32]byte, boot [bootIDSize]byte, r role, exporter []byte) (hello, error) {
	h := hello{
		Version: protocolVersion,
		Role:    r,
		ChainID: chainID,
		Genesis: genesis,
		Boot:    boot,
		PubKey:  key.Public().Bytes(),
	}
	sig, err := key.Sign(ledger.PurposeHandshake, chainID, h.transcript(exporter))
	if err != nil {
		return h, fmt.Errorf("net: sign handshake: %w", err)
	}
	h.Sig = sig
	return h, nil
}

// verifyHello checks a peer's hello against our chain, the expected role and
// this session's exporter, and returns the peer's key. Membership is the
// caller's check (it needs the member set under a lock). The cheap checks run
// first so that a stranger costs no signature verification.
func verifyHello(h hello, chainID string, genesis [32]byte, want role, exporter []byte) (ledger.PublicKey, error) {
	if h.Version != protocolVersion {
		return ledger.PublicKey{}, fmt.Errorf("%w: peer %d, ours %d", ErrVersion, h.Version, protocolVersion)
	}
	if h.ChainID != chainID {
		return ledger.PublicKey{}, fmt.Errorf("%w: peer %q, ours %q", ErrChainMismatch, h.ChainID, chainID)
	}
	if subtle.ConstantTimeCompare(h.Genesis[:], genesis[:]) != 1 {
		return ledger.PublicKey{}, fmt.Errorf("%w: peer %x, ours %x", ErrGenesisMismatch, h.Genesis[:8], genesis[:8])
	}
	if h.Role != want {
		return ledger.PublicKey{}, fmt.Errorf("%w: role %d, want %s", ErrBadHandshake, h.Role, want)
	}
	pub, err := ledger.ParsePublicKey(h.PubKey)
	if err != nil {
		return ledger.PublicKey{}, fmt.Errorf("%w: %v", ErrBadHandshake, err)
	}
	return pub, nil
}

// checkSignature verifies the hello's signature under pub for this session.
func checkSignature(h hello, pub ledger.PublicKey, exporter []byte) error {
	if !bytes.Equal(pub.Bytes(), h.PubKey) {
		return fmt.Errorf("%w: key changed", ErrBadSignature)
	}
	if err := pub.Verify(ledger.PurposeHandshake, h.ChainID, h.transcript(exporter), h.Sig); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	return nil
}
