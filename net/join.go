package net

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	stdnet "net"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/sos-kernel/sos/ledger"
)

// Joining: a node that is not a member yet knows one member by its node id
// and address ("<node-id>@host:port"). It connects with the joiner role,
// proves its own ML-DSA identity the same way members do (a signature over
// the TLS exporter), checks that the node answering is the one it named,
// and sends one request; the member's JoinHandler answers (typically with
// the genesis and the membership, after admitting the node through a signed
// ledger transaction). Nothing else is possible on a joiner's connection.

// JoinHandler answers the join request of a node authenticated by key.
type JoinHandler func(ctx context.Context, key ledger.PublicKey, req []byte) ([]byte, error)

// MaxJoinRequest and MaxJoinResponse bound the join messages.
const (
	MaxJoinRequest  = 64 << 10
	MaxJoinResponse = 32 << 20
)

// ErrJoinRefused is returned by Join when the member refused the request.
var ErrJoinRefused = errors.New("net: join refused")

// joinTimeout bounds serving one join request (the handler may wait for a
// transaction to commit).
const joinTimeout = 30 * time.Second

// SetJoinHandler lets non-members ask this node to admit them; nil (the
// default) refuses them.
func (t *Transport) SetJoinHandler(h JoinHandler) {
	t.mu.Lock()
	t.join = h
	t.mu.Unlock()
}

// Join answers: status byte 0 and the handler's answer, or 1 and an error.
const (
	joinOK  = 0
	joinErr = 1
)

// serveJoin runs the server side of a joiner's connection. It always ends
// the connection; the error it returns is logged as the reason.
func (t *Transport) serveJoin(ctx context.Context, conn *quic.Conn, st *quic.Stream, h hello, exp []byte) error {
	t.mu.Lock()
	handler := t.join
	t.mu.Unlock()
	if handler == nil {
		return fmt.Errorf("%w: this node does not admit new members", ErrUnknownPeer)
	}
	if h.Version != protocolVersion {
		return fmt.Errorf("%w: joiner %d, ours %d", ErrVersion, h.Version, protocolVersion)
	}
	if h.ChainID != "" || h.Genesis != ([32]byte{}) {
		return fmt.Errorf("%w: a joiner's hello names no chain", ErrBadHandshake)
	}
	pub, err := ledger.ParsePublicKey(h.PubKey)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadHandshake, err)
	}
	if err := checkSignature(h, pub, exp); err != nil {
		return fmt.Errorf("%w (joiner %s)", err, pub.Fingerprint())
	}
	if err := t.writeHello(st, roleServer, exp); err != nil {
		return err
	}
	// The handshake deadline is over; the request gets time of its own.
	st.SetDeadline(time.Now().Add(joinTimeout))
	req, err := readFrame(st, frameMessage, MaxJoinRequest)
	if err != nil {
		return fmt.Errorf("net: join request from %s: %w", pub.Fingerprint(), err)
	}
	hctx, cancel := context.WithTimeout(t.ctx, joinTimeout)
	defer cancel()
	t.log.Info("net: join request", "joiner", pub.Fingerprint(), "remote", conn.RemoteAddr().String())
	resp, herr := handler(hctx, pub, req)
	out := []byte{joinOK}
	if herr != nil {
		out = append([]byte{joinErr}, herr.Error()...)
	} else {
		out = append(out, resp...)
	}
	if len(out) > MaxJoinResponse {
		out = append([]byte{joinErr}, fmt.Sprintf("join answer of %d bytes is too large", len(out))...)
	}
	if _, err := st.Write(appendFrame(nil, frameMessage, out)); err != nil {
		return fmt.Errorf("net: join answer to %s: %w", pub.Fingerprint(), err)
	}
	st.Close()
	// Let the joiner read the answer and close the connection itself.
	select {
	case <-conn.Context().Done():
	case <-time.After(5 * time.Second):
		conn.CloseWithError(0, "join answered")
	}
	if herr != nil {
		return fmt.Errorf("%w: %v", ErrJoinRefused, herr)
	}
	return errJoinServed
}

// errJoinServed ends a joiner's connection after a successful answer.
var errJoinServed = errors.New("net: join request served")

// Join connects to the member expect at addr as a joiner identified by key,
// sends req and returns the member's answer. It fails if the node at addr
// is not expect, and with ErrJoinRefused if the member refused.
func Join(ctx context.Context, key *ledger.PrivateKey, addr string, expect PeerID, req []byte) ([]byte, error) {
	if len(req) > MaxJoinRequest {
		return nil, fmt.Errorf("net: join request of %d bytes, limit %d", len(req), MaxJoinRequest)
	}
	cert, err := carrierCert(rand.Reader)
	if err != nil {
		return nil, err
	}
	udpAddr, err := stdnet.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("net: join %s: %w", addr, err)
	}
	conn, err := quic.DialAddr(ctx, udpAddr.String(), tlsConfig(cert), &quic.Config{HandshakeIdleTimeout: 5 * time.Second, MaxIdleTimeout: joinTimeout + 5*time.Second})
	if err != nil {
		return nil, fmt.Errorf("net: join %s: %w", addr, err)
	}
	defer conn.CloseWithError(0, "")
	exp, err := sessionBinding(conn)
	if err != nil {
		return nil, err
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, wrapUnlessRefused("join: open stream", err)
	}
	deadline := time.Now().Add(joinTimeout + 5*time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	st.SetDeadline(deadline)
	var boot [bootIDSize]byte
	mine, err := newHello(key, "", [32]byte{}, boot, roleJoiner, exp)
	if err != nil {
		return nil, err
	}
	if _, err := st.Write(appendFrame(nil, frameHello, mine.marshal())); err != nil {
		return nil, wrapUnlessRefused("join: write handshake", err)
	}
	theirs, err := readHelloFrame(st)
	if err != nil {
		return nil, err
	}
	// The member's chain and genesis are not known yet: they are what the
	// joiner learns. Its identity is what the joiner checks.
	pub, err := verifyHello(theirs, theirs.ChainID, theirs.Genesis, roleServer, exp)
	if err != nil {
		return nil, err
	}
	if id := PeerID(pub.Fingerprint()); id != expect {
		return nil, fmt.Errorf("%w: expected %s at %s, answered by %s", ErrUnknownPeer, expect, addr, id)
	}
	if err := checkSignature(theirs, pub, exp); err != nil {
		return nil, err
	}
	if _, err := st.Write(appendFrame(nil, frameMessage, req)); err != nil {
		return nil, wrapUnlessRefused("join: write request", err)
	}
	resp, err := readFrame(st, frameMessage, MaxJoinResponse)
	if err != nil {
		return nil, wrapUnlessRefused("join: read answer", err)
	}
	if len(resp) == 0 {
		return nil, fmt.Errorf("%w: empty join answer", ErrBadFrame)
	}
	if resp[0] != joinOK {
		return nil, fmt.Errorf("%w by %s: %s", ErrJoinRefused, expect, resp[1:])
	}
	_, _ = io.Copy(io.Discard, st)
	return resp[1:], nil
}
