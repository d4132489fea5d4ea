package net

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	stdnet "net"
	"strings"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/sos-kernel/sos/ledger"
)

// Joining: a node that is not a member yet knows one member by its node id
// and address ("<node-id>@host:port"). It listens on its own p2p address
// (ListenJoiner) and, from that socket, connects to the member with the
// joiner role, proves its ML-DSA identity the same way members do (a
// signature over the TLS exporter), checks that the node answering is the
// one it named, and sends one request. The member's JoinHandler decides
// what to answer. Before it records anything about the joiner it dials the
// address the joiner claims (Transport.VerifyAddr) with the probe role; the
// joiner answers only that member's probe, with a hello signed by its key,
// so the member knows the address is served by the joiner's key and cannot
// be made to record or dial a third party's address as a member. Nothing
// else is possible on a joiner's or a probe's connection.

// JoinHandler answers the join request of a node authenticated by key. An
// error wrapping ErrJoinPending tells the joiner to ask again later (it is
// not admitted yet); any other error refuses it.
type JoinHandler func(ctx context.Context, key ledger.PublicKey, req []byte) ([]byte, error)

// MaxJoinRequest and MaxJoinResponse bound the join messages.
const (
	MaxJoinRequest  = 64 << 10
	MaxJoinResponse = 32 << 20
)

var (
	// ErrJoinRefused is returned by Join when the member refused the request.
	ErrJoinRefused = errors.New("net: join refused")
	// ErrJoinPending is returned by Join when the member recorded the
	// request but has not admitted the node (yet): ask again later.
	ErrJoinPending = errors.New("net: join pending")
)

// joinTimeout bounds serving one join request (the handler may dial the
// joiner back and wait for a transaction to commit).
const joinTimeout = 30 * time.Second

// SetJoinHandler lets non-members ask this node to admit them; nil (the
// default) refuses them.
func (t *Transport) SetJoinHandler(h JoinHandler) {
	t.mu.Lock()
	t.join = h
	t.mu.Unlock()
}

// Join answers: a status byte, then the handler's answer or its error text.
const (
	joinOK      = 0
	joinErr     = 1
	joinPending = 2
)

// serveJoin runs the server side of a joiner's connection. It always ends
// the connection; the error it returns is logged as the reason.
func (t *Transport) serveJoin(ctx context.Context, conn *quic.Conn, st *quic.Stream, h hello, exp []byte) error {
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
	if err := t.admits(pub, roleJoiner); err != nil {
		return err
	}
	if err := checkSignature(h, pub, exp); err != nil {
		return fmt.Errorf("%w (joiner %s)", err, pub.Fingerprint())
	}
	t.mu.Lock()
	handler := t.join
	t.mu.Unlock()
	if handler == nil {
		return fmt.Errorf("%w: this node does not admit new members", ErrUnknownPeer)
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
	t.log.Debug("net: join request", "joiner", pub.Fingerprint(), "remote", conn.RemoteAddr().String())
	resp, herr := handler(hctx, pub, req)
	out := []byte{joinOK}
	switch {
	case errors.Is(herr, ErrJoinPending):
		out = append([]byte{joinPending}, strings.TrimPrefix(herr.Error(), ErrJoinPending.Error()+": ")...)
	case herr != nil:
		out = append([]byte{joinErr}, herr.Error()...)
	default:
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
	if herr != nil && out[0] == joinErr {
		return fmt.Errorf("%w: %v", ErrJoinRefused, herr)
	}
	return errJoinServed
}

// errJoinServed ends a joiner's connection after an answer (admitted or
// pending).
var errJoinServed = errors.New("net: join request served")

// Join connects to the member expect at addr as a joiner identified by key,
// from a socket of its own, sends req and returns the member's answer. It
// does not answer the member's dial-back: a member that verifies joiners'
// addresses refuses it unless a Joiner (ListenJoiner) serves the address it
// claims. It fails if the node at addr is not expect, with ErrJoinPending
// if the member has not admitted the node yet, and with ErrJoinRefused if
// it refused.
func Join(ctx context.Context, key *ledger.PrivateKey, addr string, expect PeerID, req []byte) ([]byte, error) {
	cert, err := carrierCert(rand.Reader)
	if err != nil {
		return nil, err
	}
	udpAddr, err := stdnet.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("net: join %s: %w", addr, err)
	}
	conn, err := quic.DialAddr(ctx, udpAddr.String(), tlsConfig(cert), joinerQUIC(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("net: join %s: %w", addr, err)
	}
	defer conn.CloseWithError(0, "")
	return askJoin(ctx, conn, key, addr, expect, req)
}

func joinerQUIC(handshake time.Duration) *quic.Config {
	return &quic.Config{HandshakeIdleTimeout: handshake, MaxIdleTimeout: joinTimeout + 5*time.Second, MaxIncomingStreams: 1}
}

// askJoin runs the joiner's side of a join on a fresh connection.
func askJoin(ctx context.Context, conn *quic.Conn, key *ledger.PrivateKey, addr string, expect PeerID, req []byte) ([]byte, error) {
	if len(req) > MaxJoinRequest {
		return nil, fmt.Errorf("net: join request of %d bytes, limit %d", len(req), MaxJoinRequest)
	}
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
	switch resp[0] {
	case joinOK:
	case joinPending:
		return nil, fmt.Errorf("%w at %.12s: %s", ErrJoinPending, expect, resp[1:])
	default:
		return nil, fmt.Errorf("%w by %s: %s", ErrJoinRefused, expect, resp[1:])
	}
	_, _ = io.Copy(io.Discard, st)
	return resp[1:], nil
}

// VerifyAddr is the member's side of a join's dial-back: it dials addr from
// this transport's socket and checks that the node answering proves it
// holds key (a hello in the joiner role signed over this session's TLS
// exporter). The connection carries nothing else and is closed at once. It
// fails with ErrUnknownPeer if another key answers, and within the
// handshake timeout if nothing does.
func (t *Transport) VerifyAddr(ctx context.Context, addr string, key ledger.PublicKey) error {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	udpAddr, err := stdnet.ResolveUDPAddr("udp", addr)
	if err != nil {
		return fmt.Errorf("net: verify %s: %w", addr, err)
	}
	conn, err := t.qt.Dial(ctx, udpAddr, t.tls, t.qconf)
	if err != nil {
		return fmt.Errorf("net: verify %s: %w", addr, err)
	}
	defer conn.CloseWithError(0, "address verified")
	exp, err := sessionBinding(conn)
	if err != nil {
		return err
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return wrapUnlessRefused("verify: open stream", err)
	}
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	if err := t.writeHello(st, roleProbe, exp); err != nil {
		return err
	}
	theirs, err := readHelloFrame(st)
	if err != nil {
		return err
	}
	pub, err := verifyHello(theirs, "", [32]byte{}, roleJoiner, exp)
	if err != nil {
		return err
	}
	if !bytes.Equal(pub.Bytes(), key.Bytes()) {
		return fmt.Errorf("%w: %s is served by %s, not by %s", ErrUnknownPeer, addr, pub.Fingerprint(), key.Fingerprint())
	}
	if err := checkSignature(theirs, pub, exp); err != nil {
		return fmt.Errorf("%w (at %s)", err, addr)
	}
	st.Close()
	return nil
}

// JoinerConfig configures ListenJoiner.
type JoinerConfig struct {
	ListenAddr string             // the p2p address the joiner claims, e.g. "127.0.0.1:27000" (required)
	Key        *ledger.PrivateKey // the joiner's node identity (required)
	// Member is the node id of the member asked to admit the joiner: the
	// only node whose dial-back is answered (required).
	Member           PeerID
	Logger           *slog.Logger  // default: discard
	HandshakeTimeout time.Duration // default 5 s
}

// Joiner is a node asking to join a cluster. It listens on the p2p address
// it claims, where it answers nothing but the dial-back of the member it
// asks, and it sends its join requests from the same socket.
type Joiner struct {
	cfg   JoinerConfig
	log   *slog.Logger
	udp   *stdnet.UDPConn
	qt    *quic.Transport
	ln    *quic.Listener
	tls   *tls.Config
	qconf *quic.Config

	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// ListenJoiner starts listening as a joiner on cfg.ListenAddr. Close it
// once the member has answered (the node's own transport will listen on
// the address when it runs).
func ListenJoiner(ctx context.Context, cfg JoinerConfig) (*Joiner, error) {
	switch {
	case cfg.ListenAddr == "":
		return nil, errors.New("net: joiner config: ListenAddr is empty")
	case cfg.Key == nil:
		return nil, errors.New("net: joiner config: Key is nil")
	case cfg.Member == "":
		return nil, errors.New("net: joiner config: Member is empty")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HandshakeTimeout <= 0 {
		cfg.HandshakeTimeout = 5 * time.Second
	}
	cert, err := carrierCert(rand.Reader)
	if err != nil {
		return nil, err
	}
	addr, err := stdnet.ResolveUDPAddr("udp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("net: joiner listen %s: %w", cfg.ListenAddr, err)
	}
	j := &Joiner{cfg: cfg, log: cfg.Logger.With("joiner", cfg.Key.Public().Fingerprint()[:12])}
	if j.udp, err = stdnet.ListenUDP("udp", addr); err != nil {
		return nil, fmt.Errorf("net: joiner listen %s: %w", cfg.ListenAddr, err)
	}
	j.qt = &quic.Transport{Conn: j.udp}
	j.tls, j.qconf = tlsConfig(cert), joinerQUIC(cfg.HandshakeTimeout)
	if j.ln, err = j.qt.Listen(j.tls, j.qconf); err != nil {
		j.udp.Close()
		return nil, fmt.Errorf("net: joiner listen %s: %w", cfg.ListenAddr, err)
	}
	j.ctx, j.cancel = context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, func() { j.Close() })
	j.wg.Go(func() {
		defer stop()
		for {
			conn, err := j.ln.Accept(j.ctx)
			if err != nil {
				return
			}
			j.wg.Go(func() {
				if err := j.serveProbe(conn); err != nil {
					j.log.Warn("net: joiner refused a connection", "remote", conn.RemoteAddr().String(), "reason", err)
					conn.CloseWithError(closeCode(err), err.Error())
				}
			})
		}
	})
	return j, nil
}

// Addr is the bound UDP address.
func (j *Joiner) Addr() stdnet.Addr { return j.udp.LocalAddr() }

// Ask sends req to the member (cfg.Member) at memberAddr, as Join does but
// from the joiner's listening socket, and returns its answer.
func (j *Joiner) Ask(ctx context.Context, memberAddr string, req []byte) ([]byte, error) {
	udpAddr, err := stdnet.ResolveUDPAddr("udp", memberAddr)
	if err != nil {
		return nil, fmt.Errorf("net: join %s: %w", memberAddr, err)
	}
	conn, err := j.qt.Dial(ctx, udpAddr, j.tls, j.qconf)
	if err != nil {
		return nil, fmt.Errorf("net: join %s: %w", memberAddr, err)
	}
	defer conn.CloseWithError(0, "")
	return askJoin(ctx, conn, j.cfg.Key, memberAddr, j.cfg.Member, req)
}

// Close stops listening and waits for the probes being answered.
func (j *Joiner) Close() error {
	j.closeOnce.Do(func() {
		j.cancel()
		j.ln.Close()
		j.qt.Close()
		j.udp.Close()
		j.wg.Wait()
	})
	return nil
}

// serveProbe answers the member's dial-back with the joiner's identity, and
// refuses anyone else.
func (j *Joiner) serveProbe(conn *quic.Conn) error {
	ctx, cancel := context.WithTimeout(j.ctx, j.cfg.HandshakeTimeout)
	defer cancel()
	exp, err := sessionBinding(conn)
	if err != nil {
		return err
	}
	st, err := conn.AcceptStream(ctx)
	if err != nil {
		return fmt.Errorf("net: accept probe stream: %w", err)
	}
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	h, err := readHelloFrame(st)
	if err != nil {
		return err
	}
	switch {
	case h.Version != protocolVersion:
		return fmt.Errorf("%w: prober %d, ours %d", ErrVersion, h.Version, protocolVersion)
	case h.Role != roleProbe:
		return fmt.Errorf("%w: role %s: a joining node answers only its member's dial-back", ErrBadHandshake, h.Role)
	}
	pub, err := ledger.ParsePublicKey(h.PubKey)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadHandshake, err)
	}
	if id := KeyID(pub); id != j.cfg.Member {
		return fmt.Errorf("%w: dial-back by %s, we asked %s", ErrUnknownPeer, id, j.cfg.Member)
	}
	if err := checkSignature(h, pub, exp); err != nil {
		return fmt.Errorf("%w (prober %s)", err, pub.Fingerprint())
	}
	var boot [bootIDSize]byte
	mine, err := newHello(j.cfg.Key, "", [32]byte{}, boot, roleJoiner, exp)
	if err != nil {
		return err
	}
	if _, err := st.Write(appendFrame(nil, frameHello, mine.marshal())); err != nil {
		return wrapUnlessRefused("probe: write handshake", err)
	}
	st.Close()
	j.log.Info("net: answered the member's dial-back", "member", pub.Fingerprint(), "remote", conn.RemoteAddr().String())
	select {
	case <-conn.Context().Done():
	case <-ctx.Done():
		conn.CloseWithError(0, "probe answered")
	}
	return nil
}
