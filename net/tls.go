package net

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"

	"github.com/quic-go/quic-go"
)

// alpn is the TLS application protocol; a QUIC endpoint of another
// application fails the TLS handshake instead of reaching ours.
const alpn = "sos/1"

// pqGroup is the only key exchange we offer: hybrid X25519 + ML-KEM-768.
// Offering nothing else means there is no classical group to downgrade to.
const pqGroup = tls.X25519MLKEM768

// carrierCert makes the ephemeral self-signed certificate TLS requires. It
// authenticates nothing: identity is the ML-DSA signature over the exporter.
func carrierCert(rand io.Reader) (tls.Certificate, error) {
	pub, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("net: carrier key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "sos node"},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand, tmpl, tmpl, pub, priv)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("net: carrier certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

func tlsConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates:     []tls.Certificate{cert},
		MinVersion:       tls.VersionTLS13,
		CurvePreferences: []tls.CurveID{pqGroup},
		NextProtos:       []string{alpn},
		// The certificate is a carrier only; the peer is authenticated after
		// the handshake by its ML-DSA signature over the TLS exporter.
		InsecureSkipVerify: true, //nolint:gosec // see above
		// No session tickets: every connection runs a full handshake, so its
		// exporter is fresh and there is no 0-RTT data to replay.
		SessionTicketsDisabled: true,
	}
}

// Application error codes carried by QUIC CONNECTION_CLOSE and
// STOP_SENDING/RESET_STREAM, so that the refused side learns why.
const (
	codeShutdown        quic.ApplicationErrorCode = 0x100
	codeUnknownPeer     quic.ApplicationErrorCode = 0x101
	codeBadSignature    quic.ApplicationErrorCode = 0x102
	codeGenesisMismatch quic.ApplicationErrorCode = 0x103
	codeChainMismatch   quic.ApplicationErrorCode = 0x104
	codeVersion         quic.ApplicationErrorCode = 0x105
	codeBadHandshake    quic.ApplicationErrorCode = 0x106
	codeNotPostQuantum  quic.ApplicationErrorCode = 0x107
	codeRemoved         quic.ApplicationErrorCode = 0x108
	codeDuplicate       quic.ApplicationErrorCode = 0x109
	codeReplaced        quic.ApplicationErrorCode = 0x10a

	streamBadFrame  quic.StreamErrorCode = 0x201
	streamTooLarge  quic.StreamErrorCode = 0x202
	streamAborted   quic.StreamErrorCode = 0x203
	streamBadOpen   quic.StreamErrorCode = 0x204
	streamNoHandler quic.StreamErrorCode = 0x205
	// streamNotAllowed: a kind a worker link does not carry.
	streamNotAllowed quic.StreamErrorCode = 0x206
	// streamCanceled: a blob transfer abandoned by its fetcher (canceled,
	// a corrupt chunk, a local error), or by the server (failpoint).
	streamCanceled quic.StreamErrorCode = 0x207
)

var codeErrors = []struct {
	code quic.ApplicationErrorCode
	err  error
}{
	{codeUnknownPeer, ErrUnknownPeer},
	{codeBadSignature, ErrBadSignature},
	{codeGenesisMismatch, ErrGenesisMismatch},
	{codeChainMismatch, ErrChainMismatch},
	{codeVersion, ErrVersion},
	{codeBadHandshake, ErrBadHandshake},
	{codeNotPostQuantum, ErrNotPostQuantum},
	{codeRemoved, ErrRemoved},
	{codeDuplicate, ErrDuplicate},
	{codeShutdown, ErrClosed},
}

// closeCode is the code we close a connection with when refusing it for err.
func closeCode(err error) quic.ApplicationErrorCode {
	for _, c := range codeErrors {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return codeBadHandshake
}

// refusedError is a refusal received from the peer as a QUIC close code.
type refusedError struct {
	reason error  // our sentinel for the code
	detail string // the peer's error text
}

func (e *refusedError) Error() string {
	return "net: refused by peer: " + strings.TrimPrefix(e.detail, "net: ")
}

func (e *refusedError) Unwrap() error { return e.reason }

// remoteRefusal turns the peer's close code back into our sentinel, so a
// node dialing a peer that refused it gets e.g. ErrGenesisMismatch.
func remoteRefusal(err error) error {
	var ae *quic.ApplicationError
	if !errors.As(err, &ae) || !ae.Remote {
		return err
	}
	for _, c := range codeErrors {
		if ae.ErrorCode == c.code {
			return &refusedError{reason: c.err, detail: ae.ErrorMessage}
		}
	}
	return err
}

// wrapUnlessRefused prefixes err with what we were doing, unless it is the
// peer's refusal, which says it all.
func wrapUnlessRefused(what string, err error) error {
	err = remoteRefusal(err)
	var r *refusedError
	if errors.As(err, &r) {
		return err
	}
	return fmt.Errorf("net: %s: %w", what, err)
}
