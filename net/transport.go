package net

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	stdnet "net"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/sos-kernel/sos/ledger"
)

// PeerID is a node id: the fingerprint of its ML-DSA-65 public key
// (ledger.PublicKey.Fingerprint).
type PeerID string

// Member is a node allowed to connect.
type Member struct {
	Key  ledger.PublicKey
	Addr string // host:port to dial; empty if we only accept its connections
}

// ID is the member's node id.
func (m Member) ID() PeerID { return KeyID(m.Key) }

// KeyID is the node id of a key.
func KeyID(k ledger.PublicKey) PeerID { return PeerID(k.Fingerprint()) }

// PeerInfo describes a member as seen by this node.
type PeerInfo struct {
	ID        PeerID
	Addr      string // the member's address, or the remote address if it has none
	Connected bool
	Outbound  bool          // we dialed the current connection
	RTT       time.Duration // QUIC smoothed RTT; zero when not connected
}

// Handler receives the messages of one stream kind. It runs on the stream's
// reader goroutine, so messages from one peer on one kind arrive one at a
// time and in order; a slow handler slows that peer's sender down (QUIC flow
// control) without affecting other peers or kinds. msg belongs to the handler.
type Handler func(from PeerID, msg []byte)

// DropFunc decides whether a message is lost, for partition simulation in
// tests: it is asked for every message sent to (outbound) or received from a
// peer, and a true answer drops the message silently, as a network would.
type DropFunc func(peer PeerID, kind StreamKind, outbound bool) bool

// Config configures a Transport. The zero value of every optional field picks
// the default named in its comment.
type Config struct {
	ListenAddr  string             // UDP address to listen on, e.g. "127.0.0.1:7000" (required)
	Key         *ledger.PrivateKey // node identity (required)
	ChainID     string             // required, at most 200 bytes
	GenesisHash [32]byte           // peers with another genesis are refused

	// MaxFrame caps every message (default DefaultMaxFrame, 64 MiB). Per
	// kind the default is lower: consensus 16 MiB, gossip 4 MiB; Limits
	// overrides a kind's limit, still capped by MaxFrame.
	MaxFrame int
	Limits   map[StreamKind]int

	Logger *slog.Logger // default: discard
	Rand   io.Reader    // carrier certificate and boot id; default crypto/rand

	HandshakeTimeout time.Duration // QUIC + identity handshake; default 5 s
	IdleTimeout      time.Duration // a silent connection is closed after this; default 15 s
	MinBackoff       time.Duration // first redial delay; default 50 ms
	MaxBackoff       time.Duration // redial delay cap; default 2 s

	// BlobRounds is how many rounds over its sources in a row FetchBlob
	// makes without verifying a chunk before it gives up (default 4); the
	// rounds wait MinBackoff, doubling up to MaxBackoff, between them.
	BlobRounds int

	// Drop is a test hook that simulates network partitions (see Partition).
	Drop DropFunc
}

func (c Config) withDefaults() Config {
	if c.MaxFrame == 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.IdleTimeout == 0 {
		c.IdleTimeout = 15 * time.Second
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = 50 * time.Millisecond
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 2 * time.Second
	}
	if c.BlobRounds == 0 {
		c.BlobRounds = 4
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.ListenAddr == "":
		return errors.New("net: config: ListenAddr is empty")
	case c.Key == nil:
		return errors.New("net: config: Key is nil")
	case c.ChainID == "" || len(c.ChainID) > maxChainID:
		return fmt.Errorf("net: config: ChainID must be 1..%d bytes, got %d", maxChainID, len(c.ChainID))
	case c.MaxFrame < 0:
		return fmt.Errorf("net: config: MaxFrame %d is negative", c.MaxFrame)
	case c.HandshakeTimeout < 0 || c.IdleTimeout < 0:
		return errors.New("net: config: negative timeout")
	case c.MinBackoff < 0 || c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("net: config: backoff %v..%v is not a range", c.MinBackoff, c.MaxBackoff)
	case c.BlobRounds < 0:
		return fmt.Errorf("net: config: BlobRounds %d is negative", c.BlobRounds)
	}
	for k, v := range c.Limits {
		if !k.message() || v <= 0 {
			return fmt.Errorf("net: config: limit %d for %s", v, k)
		}
	}
	return nil
}

// limit is the largest message of a kind.
func (c *Config) limit(k StreamKind) int {
	l := k.defaultLimit()
	if v, ok := c.Limits[k]; ok {
		l = v
	}
	return min(l, c.MaxFrame)
}

// Transport links this node to its members over QUIC. It is safe for
// concurrent use.
type Transport struct {
	cfg  Config
	id   PeerID
	boot [bootIDSize]byte
	log  *slog.Logger

	udp   *stdnet.UDPConn
	qt    *quic.Transport
	ln    *quic.Listener
	tls   *tls.Config
	qconf *quic.Config

	ctx       context.Context // canceled by Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu       sync.Mutex
	closed   bool
	members  map[PeerID]Member
	join     JoinHandler
	peers    map[PeerID]*peerState // members, workers, or the member followed
	handlers [numKinds]Handler
	borrowed [numKinds]bool // handler does not keep msg: the stream reuses its buffer

	// Worker links (worker.go). A member admits the workers its policy
	// approves; a worker (follow set) talks to the member it follows only.
	follow    *target // the member this worker follows
	policy    WorkerPolicy
	policyGen uint64 // bumped by SetWorkerPolicy

	blobs   BlobServer // what ServeBlobs set (blob.go)
	bufPool sync.Pool  // *[]byte of maxBlobResponse, for fetches
}

// peerLink is what a connection links this node to.
type peerLink byte

const (
	linkMember   peerLink = iota // a member, from a member
	linkWorker                   // a worker, from a member
	linkFollowed                 // the member this worker follows, from the worker
)

// restricted reports whether the link carries only the kinds
// AllowedForWorkers.
func (l peerLink) restricted() bool { return l != linkMember }

// peerState is the connection state of one member or worker.
type peerState struct {
	sess     *session
	changed  chan struct{} // closed (and replaced) whenever sess changes
	dialing  bool
	failures int
	nextDial time.Time
	lastErr  error // of the last failed dial
	link     peerLink
	// A worker's node id and address to dial it at (the one ConnectWorker
	// gave or its last connection came from), and its key once it has
	// connected; linkWorker only.
	remote target
	key    ledger.PublicKey
}

// target is a node to dial: its id (checked against the key that answers)
// and address.
type target struct {
	id   PeerID
	addr string
}

func (p *peerState) notify() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// Listen starts a transport on cfg.ListenAddr. It accepts connections from
// members only; set them with SetMembers. The transport closes when ctx is
// canceled or Close is called.
func Listen(ctx context.Context, cfg Config) (*Transport, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	t := &Transport{
		cfg:     cfg,
		id:      PeerID(cfg.Key.Public().Fingerprint()),
		log:     cfg.Logger.With("node", cfg.Key.Public().Fingerprint()[:12]),
		members: map[PeerID]Member{},
		peers:   map[PeerID]*peerState{},
	}
	if _, err := io.ReadFull(cfg.Rand, t.boot[:]); err != nil {
		return nil, fmt.Errorf("net: boot id: %w", err)
	}
	cert, err := carrierCert(cfg.Rand)
	if err != nil {
		return nil, err
	}
	t.tls = tlsConfig(cert)
	t.qconf = &quic.Config{
		HandshakeIdleTimeout: cfg.HandshakeTimeout,
		MaxIdleTimeout:       cfg.IdleTimeout,
		KeepAlivePeriod:      cfg.IdleTimeout / 3,
		// The handshake stream (and slack for its teardown), then the
		// blob transfers a peer may run at once.
		MaxIncomingStreams:    2 + maxBlobStreams,
		MaxIncomingUniStreams: 16,
		// Large windows so one snapshot stream fills a fast link. A blob
		// transfer runs on a new stream: starting its window at a few
		// chunks (rather than quic-go's 512 KiB) lets it reach full speed
		// at once instead of after the window has grown.
		InitialStreamReceiveWindow:     8 << 20,
		MaxStreamReceiveWindow:         32 << 20,
		InitialConnectionReceiveWindow: 16 << 20,
		MaxConnectionReceiveWindow:     64 << 20,
	}
	addr, err := stdnet.ResolveUDPAddr("udp", cfg.ListenAddr)
	if err != nil {
		return nil, fmt.Errorf("net: listen %s: %w", cfg.ListenAddr, err)
	}
	t.udp, err = stdnet.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("net: listen %s: %w", cfg.ListenAddr, err)
	}
	// A reset key derived from the node key survives restarts, so a peer still
	// holding a connection to our previous process learns at its next message
	// (a stateless reset) that the connection is gone, instead of idling out
	// for IdleTimeout. quic-go answers only packets longer than
	// MinStatelessResetSize (43 bytes and up) with a reset, so that the reset
	// cannot be told apart from a packet and never loops; with its default
	// 4-byte connection ids a small message (a raft heartbeat) travels in a
	// 34-byte packet that draws no reset, and a peer learned of the restart
	// only if a path MTU probe happened to be in flight. Connection ids of
	// resetConnIDLen bytes make every packet carrying a message, or an ACK,
	// long enough.
	resetKey := quic.StatelessResetKey(sha256.Sum256(append([]byte("sos/v1/stateless-reset/"), cfg.Key.Seed()...)))
	t.qt = &quic.Transport{Conn: t.udp, StatelessResetKey: &resetKey, ConnectionIDLength: resetConnIDLen}
	t.ln, err = t.qt.Listen(t.tls, t.qconf)
	if err != nil {
		t.udp.Close()
		return nil, fmt.Errorf("net: listen %s: %w", cfg.ListenAddr, err)
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	stop := context.AfterFunc(ctx, func() { t.Close() })
	t.wg.Go(func() {
		defer stop()
		t.acceptLoop()
	})
	t.log.Info("net: listening", "addr", t.Addr().String())
	return t, nil
}

// resetConnIDLen is the length of the connection ids a transport issues:
// QUIC's maximum, 16 bytes more per packet than quic-go's default. A
// short-header packet is 1 + resetConnIDLen + packet number (1..4) + frames
// + 16 (AEAD tag) bytes; a STREAM frame carrying a message is at least 9
// bytes (type, stream id, offset, and our 6-byte frame header), an ACK frame
// at least 5, so each such packet is at least 43 bytes: over quic-go's
// threshold for answering with a stateless reset (see Listen).
// All nodes must agree on it: a restarted node reads the connection id of a
// stale packet with its own length to derive the reset token.
const resetConnIDLen = 20

// ID is this node's id.
func (t *Transport) ID() PeerID { return t.id }

// Key is this node's public key.
func (t *Transport) Key() ledger.PublicKey { return t.cfg.Key.Public() }

// Addr is the bound UDP address (useful with port 0).
func (t *Transport) Addr() stdnet.Addr { return t.udp.LocalAddr() }

// Handle sets the handler of a stream kind (nil drops its messages). Set
// handlers before peers may send; messages arriving without one are dropped.
// It panics if kind is not a valid message kind (a programmer error:
// KindBlob is served by ServeBlobs).
func (t *Transport) Handle(kind StreamKind, h Handler) {
	if !kind.message() {
		panic(fmt.Sprintf("net: Handle: %s is not a message kind", kind)) // programmer error
	}
	t.mu.Lock()
	t.handlers[kind] = h
	t.borrowed[kind] = false
	t.mu.Unlock()
}

// HandleBorrowed is Handle for a handler that is done with msg when it
// returns (it decodes or copies what it needs). Such a stream reads every
// frame into the same buffer, which saves allocating and page-faulting a
// fresh one per message: raft appends carry whole blocks.
func (t *Transport) HandleBorrowed(kind StreamKind, h Handler) {
	t.Handle(kind, h)
	t.mu.Lock()
	t.borrowed[kind] = h != nil
	t.mu.Unlock()
}

// SetMembers replaces the set of nodes allowed to connect (this node may be
// in it; it is ignored). Connections to nodes no longer in the set are
// closed, and their new connections are refused. A worker that becomes a
// member loses its worker link and connects again as a member. A worker
// (Follow) has no members: it fails with anyone but itself.
func (t *Transport) SetMembers(members []Member) error {
	next := make(map[PeerID]Member, len(members))
	for _, m := range members {
		if m.Key.IsZero() {
			return errors.New("net: SetMembers: member without a key")
		}
		if id := m.ID(); id != t.id {
			next[id] = m
		}
	}
	var removed []*session
	t.mu.Lock()
	if t.follow != nil && len(next) > 0 {
		t.mu.Unlock()
		return errors.New("net: SetMembers: this node is a worker (Follow); it has no members")
	}
	for id, ps := range t.peers {
		if _, ok := next[id]; ok == (ps.link == linkMember) {
			continue
		}
		if ps.sess != nil {
			removed = append(removed, ps.sess)
			ps.sess = nil
		}
		ps.notify()
		delete(t.peers, id)
	}
	t.members = next
	t.mu.Unlock()
	for _, s := range removed {
		if s.link == linkWorker {
			t.log.Info("net: worker became a member, closing its worker link", "peer", s.peer)
			s.conn.CloseWithError(codeRemoved, "now a member: connect as one")
			continue
		}
		t.log.Warn("net: peer removed from members, closing its connection", "peer", s.peer)
		s.conn.CloseWithError(codeRemoved, "removed from members")
	}
	return nil
}

// Peers lists the members (sorted by id) and their connection state; on a
// worker, the member it follows.
func (t *Transport) Peers() []PeerInfo {
	t.mu.Lock()
	out := make([]PeerInfo, 0, len(t.members)+1)
	for id, m := range t.members {
		out = append(out, t.peerInfo(id, m.Addr))
	}
	if t.follow != nil {
		out = append(out, t.peerInfo(t.follow.id, t.follow.addr))
	}
	t.mu.Unlock()
	slices.SortFunc(out, func(a, b PeerInfo) int { return cmpID(a.ID, b.ID) })
	return out
}

// peerInfo describes a peer; t.mu must be held.
func (t *Transport) peerInfo(id PeerID, addr string) PeerInfo {
	info := PeerInfo{ID: id, Addr: addr}
	if ps := t.peers[id]; ps != nil && ps.sess != nil {
		info.Connected = true
		info.Outbound = ps.sess.outbound
		info.RTT = ps.sess.conn.ConnectionStats().SmoothedRTT
		if info.Addr == "" {
			info.Addr = ps.sess.conn.RemoteAddr().String()
		}
	}
	return info
}

func cmpID(a, b PeerID) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Send delivers msg to a member (not this node) on the stream of kind. If there is no
// connection it dials (and redials with exponential backoff, MinBackoff to
// MaxBackoff) until connected or ctx is done. A nil error means the message
// was handed to QUIC; see the package documentation for what is guaranteed.
// Send does not retain msg after it returns. To a worker, or from a worker
// to its member, only the kinds AllowedForWorkers may be sent
// (ErrKindNotAllowed).
func (t *Transport) Send(ctx context.Context, to PeerID, kind StreamKind, msg []byte) error {
	if !kind.message() {
		return fmt.Errorf("net: send: %s is not a message kind", kind)
	}
	if l := t.cfg.limit(kind); len(msg) > l {
		return fmt.Errorf("net: send %s to %s: %w: %d bytes, limit %d", kind, to, ErrFrameTooLarge, len(msg), l)
	}
	if t.cfg.Drop != nil && t.cfg.Drop(to, kind, true) {
		return nil
	}
	s, err := t.connect(ctx, to)
	if err != nil {
		return err
	}
	return s.send(ctx, kind, msg)
}

// Close closes every connection and stops listening. It waits for the
// transport's goroutines, including running handlers, so a Handler must not
// call it.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.closed = true
		var open []*session
		for _, ps := range t.peers {
			if ps.sess != nil {
				open = append(open, ps.sess)
			}
			ps.notify()
		}
		t.mu.Unlock()
		for _, s := range open {
			s.conn.CloseWithError(codeShutdown, "shutting down")
		}
		t.cancel()
		t.ln.Close()
		t.qt.Close()
		t.udp.Close()
		t.wg.Wait()
		t.log.Info("net: closed")
	})
	return nil
}

// connect returns the live session to a member, a worker or the member
// this worker follows, dialing if needed. The dial runs on its own
// goroutine, bounded by HandshakeTimeout rather than by ctx, so that
// callers with short deadlines (raft ticks) still get connected.
func (t *Transport) connect(ctx context.Context, to PeerID) (*session, error) {
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, ErrClosed
		}
		m, lk, ok := t.linkTo(to)
		if !ok {
			t.mu.Unlock()
			return nil, fmt.Errorf("net: send to %s: %w", to, ErrUnknownPeer)
		}
		ps := t.peerState(to, lk)
		if ps.sess != nil {
			s := ps.sess
			t.mu.Unlock()
			return s, nil
		}
		now := time.Now()
		lastErr := ps.lastErr
		if refused(lastErr) && now.Before(ps.nextDial) {
			// Refused moments ago; redialing before the backoff would not help.
			t.mu.Unlock()
			return nil, lastErr
		}
		if !ps.dialing && m.addr != "" && !now.Before(ps.nextDial) {
			ps.dialing = true
			t.wg.Add(1) // under t.mu, see register
			go func() {
				defer t.wg.Done()
				t.redial(ps, m, lk)
			}()
		}
		ch := ps.changed
		wait := time.Until(ps.nextDial)
		if ps.dialing || m.addr == "" {
			wait = t.cfg.MaxBackoff
		}
		t.mu.Unlock()
		timer := time.NewTimer(max(wait, time.Millisecond))
		select {
		case <-ctx.Done():
			timer.Stop()
			if lastErr != nil {
				return nil, fmt.Errorf("net: connect %s: %w (last error: %w)", to, ctx.Err(), lastErr)
			}
			return nil, fmt.Errorf("net: connect %s: %w", to, ctx.Err())
		case <-ch:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// redial dials a peer once and records the outcome and the next backoff.
func (t *Transport) redial(ps *peerState, m target, lk peerLink) {
	_, err := t.dial(t.ctx, m, lk)
	t.mu.Lock()
	defer t.mu.Unlock()
	ps.dialing = false
	if err == nil {
		return // register has notified the waiters
	}
	ps.lastErr = err
	if errors.Is(err, ErrDuplicate) {
		// The peer's own connection to us won the race; wait for it.
		ps.nextDial = time.Now().Add(t.cfg.MinBackoff)
	} else {
		ps.failures++
		ps.nextDial = time.Now().Add(t.backoff(ps.failures))
	}
	ps.notify()
}

// refused reports whether a dial failed because a node refused the other
// (which redialing will not fix) rather than because of the network.
func refused(err error) bool {
	if err == nil {
		return false
	}
	for _, c := range codeErrors {
		if c.err != ErrDuplicate && c.err != ErrClosed && errors.Is(err, c.err) {
			return true
		}
	}
	return false
}

func (t *Transport) backoff(failures int) time.Duration {
	d := t.cfg.MinBackoff
	for i := 1; i < failures && d < t.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, t.cfg.MaxBackoff)
}

// peerState returns (creating) the state of a peer on link lk; t.mu must
// be held.
func (t *Transport) peerState(id PeerID, lk peerLink) *peerState {
	ps := t.peers[id]
	if ps == nil {
		ps = &peerState{changed: make(chan struct{}), link: lk}
		t.peers[id] = ps
	}
	return ps
}

// linkTo returns the peer to dial for id and the link to it: a member, the
// member this worker follows, or a worker this member knows; t.mu must be
// held.
func (t *Transport) linkTo(id PeerID) (target, peerLink, bool) {
	if m, ok := t.members[id]; ok {
		return target{id, m.Addr}, linkMember, true
	}
	if t.follow != nil && t.follow.id == id {
		return *t.follow, linkFollowed, true
	}
	if ps := t.peers[id]; ps != nil && ps.link == linkWorker {
		return ps.remote, linkWorker, true
	}
	return target{}, 0, false
}

// handlerOf returns the kind's handler and whether it borrows messages.
func (t *Transport) handlerOf(kind StreamKind) (Handler, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.handlers[kind], t.borrowed[kind]
}

func (t *Transport) acceptLoop() {
	for {
		conn, err := t.ln.Accept(t.ctx)
		if err != nil {
			return
		}
		t.wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.ctx, t.cfg.HandshakeTimeout)
			defer cancel()
			if _, err := t.accept(ctx, conn); err != nil && !errors.Is(err, errJoinServed) {
				t.refuse(conn, roleServer, err)
			}
		})
	}
}

// refuse logs why a connection is refused and closes it with a code that
// tells the peer the reason.
func (t *Transport) refuse(conn *quic.Conn, side role, err error) {
	level, msg := slog.LevelWarn, "net: refused connection"
	if errors.Is(err, ErrDuplicate) {
		level = slog.LevelDebug // the normal outcome of a simultaneous dial
	}
	if r := (*refusedError)(nil); errors.As(err, &r) {
		msg = "net: connection refused by peer"
	}
	t.log.Log(context.Background(), level, msg, "remote", conn.RemoteAddr().String(), "side", side.String(), "reason", err)
	conn.CloseWithError(closeCode(err), err.Error())
}

// sessionBinding checks the negotiated key exchange and returns this TLS
// session's exporter value, which each side signs.
func sessionBinding(conn *quic.Conn) ([]byte, error) {
	cs := conn.ConnectionState().TLS
	if cs.CurveID != pqGroup {
		return nil, fmt.Errorf("%w: negotiated %v", ErrNotPostQuantum, cs.CurveID)
	}
	exp, err := cs.ExportKeyingMaterial(exporterLabel, nil, exporterSize)
	if err != nil {
		return nil, fmt.Errorf("net: tls exporter: %w", err)
	}
	return exp, nil
}

// accept runs the server side of the identity handshake: read and check the
// client's hello, register the session, then answer with ours.
func (t *Transport) accept(ctx context.Context, conn *quic.Conn) (*session, error) {
	exp, err := sessionBinding(conn)
	if err != nil {
		return nil, err
	}
	st, err := conn.AcceptStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("net: accept handshake stream: %w", err)
	}
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	h, err := readHelloFrame(st)
	if err != nil {
		return nil, err
	}
	// Who may connect is decided by admits, for every role.
	lk, answer := linkMember, roleServer
	switch h.Role {
	case roleClient: // a member, or the member this worker follows
		if t.following() {
			lk, answer = linkFollowed, roleWorker
		}
	case roleWorker:
		lk = linkWorker
	case roleJoiner:
		return nil, t.serveJoin(ctx, conn, st, h, exp)
	default:
		return nil, fmt.Errorf("%w: role %s may not connect to a member", ErrBadHandshake, h.Role)
	}
	gen := t.workerGen()
	theirs, pub, err := t.checkHello(h, h.Role, exp)
	if err != nil {
		return nil, err
	}
	s := t.newSession(conn, pub, false, theirs.Boot, lk, gen)
	if err := t.register(s); err != nil {
		return nil, err
	}
	if err := t.writeHello(st, answer, exp); err != nil {
		conn.CloseWithError(codeBadHandshake, "handshake write failed")
		return nil, err
	}
	st.Close()
	return s, nil
}

// dial connects to a peer on link lk and runs the client side of the
// handshake.
func (t *Transport) dial(ctx context.Context, m target, lk peerLink) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, t.cfg.HandshakeTimeout)
	defer cancel()
	addr, err := stdnet.ResolveUDPAddr("udp", m.addr)
	if err != nil {
		return nil, fmt.Errorf("net: dial %s: %w", m.addr, err)
	}
	conn, err := t.qt.Dial(ctx, addr, t.tls, t.qconf)
	if err != nil {
		t.log.Debug("net: dial failed", "peer", m.id, "addr", m.addr, "err", err)
		return nil, fmt.Errorf("net: dial %s: %w", m.addr, err)
	}
	s, err := t.handshakeClient(ctx, conn, m, lk)
	if err != nil {
		t.refuse(conn, roleClient, err)
		return nil, err
	}
	return s, nil
}

// handshakeClient runs the dialing side of the handshake. On a member
// link both sides speak as members (client, server); a member dialing a
// worker expects the worker role back; a worker dialing its member speaks
// as a worker.
func (t *Transport) handshakeClient(ctx context.Context, conn *quic.Conn, m target, lk peerLink) (*session, error) {
	ours, want := roleClient, roleServer
	switch lk {
	case linkWorker:
		want = roleWorker
	case linkFollowed:
		ours = roleWorker
	}
	exp, err := sessionBinding(conn)
	if err != nil {
		return nil, err
	}
	st, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, wrapUnlessRefused("open handshake stream", err)
	}
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	gen := t.workerGen()
	if err := t.writeHello(st, ours, exp); err != nil {
		return nil, err
	}
	theirs, pub, err := t.readHello(st, want, exp)
	if err != nil {
		return nil, err
	}
	if id := PeerID(pub.Fingerprint()); id != m.id {
		return nil, fmt.Errorf("%w: dialed %s at %s, answered by %s", ErrUnknownPeer, m.id, m.addr, id)
	}
	st.Close()
	s := t.newSession(conn, pub, true, theirs.Boot, lk, gen)
	if err := t.register(s); err != nil {
		return nil, err
	}
	return s, nil
}

func (t *Transport) writeHello(w io.Writer, r role, exp []byte) error {
	h, err := newHello(t.cfg.Key, t.cfg.ChainID, t.cfg.GenesisHash, t.boot, r, exp)
	if err != nil {
		return err
	}
	if _, err := w.Write(appendFrame(nil, frameHello, h.marshal())); err != nil {
		return wrapUnlessRefused("write handshake", err)
	}
	return nil
}

// readHello reads the peer's hello and checks it completely: chain, genesis,
// role, membership, and the signature over this session's exporter.
func (t *Transport) readHello(r io.Reader, want role, exp []byte) (hello, ledger.PublicKey, error) {
	h, err := readHelloFrame(r)
	if err != nil {
		return h, ledger.PublicKey{}, err
	}
	return t.checkHello(h, want, exp)
}

// readHelloFrame reads and parses a hello without checking it.
func readHelloFrame(r io.Reader) (hello, error) {
	payload, err := readFrame(r, frameHello, maxHello)
	if err != nil {
		return hello{}, wrapUnlessRefused("read handshake", err)
	}
	return unmarshalHello(payload)
}

// checkHello checks a hello completely: chain, genesis, role, membership,
// and the signature over this session's exporter.
func (t *Transport) checkHello(h hello, want role, exp []byte) (hello, ledger.PublicKey, error) {
	pub, err := verifyHello(h, t.cfg.ChainID, t.cfg.GenesisHash, want, exp)
	if err != nil {
		return h, pub, err
	}
	id := PeerID(pub.Fingerprint())
	if id == t.id {
		return h, pub, fmt.Errorf("%w: peer presents our own key", ErrUnknownPeer)
	}
	if err := t.admits(pub, want); err != nil {
		return h, pub, err
	}
	if err := checkSignature(h, pub, exp); err != nil {
		return h, pub, fmt.Errorf("%w (peer %s)", err, id)
	}
	return h, pub, nil
}

// admits is the one place that decides whether the node id may talk to
// this node in role r (its key's signature is checked afterwards, so a
// stranger costs no signature verification):
//
//   - as a member (client or server side): on a member, a node of the
//     member set; on a worker, only the member it follows;
//   - as a worker: on a member, a node that is not a member and that the
//     worker policy (SetWorkerPolicy) approves — no policy, no workers; a
//     worker admits no workers;
//   - as a joiner: anyone, while a JoinHandler is set (the handler decides
//     what to answer, and a joiner's connection carries nothing but one
//     request).
//
// Every other role is refused: a member answers no probes. The link a
// role gets decides what it may carry: a worker link only the kinds
// AllowedForWorkers, and no connection ever changes a node's role, so a
// worker cannot become a member by connecting.
func (t *Transport) admits(key ledger.PublicKey, r role) error {
	id := KeyID(key)
	t.mu.Lock()
	switch r {
	case roleClient, roleServer:
		defer t.mu.Unlock()
		if t.follow != nil {
			if t.follow.id != id {
				return fmt.Errorf("%w: %s is not the member this worker follows", ErrUnknownPeer, id)
			}
			return nil
		}
		if _, ok := t.members[id]; !ok {
			return fmt.Errorf("%w: %s is not a member", ErrUnknownPeer, id)
		}
		return nil
	case roleWorker:
		following := t.follow != nil
		_, member := t.members[id]
		policy := t.policy
		t.mu.Unlock()
		switch {
		case following:
			return fmt.Errorf("%w: a worker admits no workers", ErrBadHandshake)
		case member:
			return fmt.Errorf("%w: %s is a member: it connects as one, not as a worker", ErrBadHandshake, id)
		case policy == nil:
			return fmt.Errorf("%w: this node admits no workers", ErrUnknownPeer)
		case !policy(id, key):
			return fmt.Errorf("%w: %s is not an approved worker", ErrUnknownPeer, id)
		}
		return nil
	case roleJoiner:
		defer t.mu.Unlock()
		if t.join == nil {
			return fmt.Errorf("%w: this node does not admit new members", ErrUnknownPeer)
		}
		return nil
	}
	t.mu.Unlock()
	return fmt.Errorf("%w: role %s may not connect to a member", ErrBadHandshake, r)
}

// register makes s the session of its peer. When both nodes dial each other
// at once, both keep the connection dialed by the smaller node id, so they
// converge on one connection per pair; the losing connection is refused
// before any message is sent on it. A connection from a new process of
// the peer (new boot id), or a redial, replaces the old one.
func (t *Transport) register(s *session) error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrClosed
	}
	if err := t.stillAdmitted(s); err != nil {
		t.mu.Unlock()
		return err
	}
	ps := t.peerState(s.peer, s.link)
	if ps.link != s.link {
		t.mu.Unlock()
		return fmt.Errorf("%w: %s is linked as another role", ErrDuplicate, s.peer)
	}
	if s.link == linkWorker {
		ps.key = s.key
		if !s.outbound {
			// Dial a worker back where its last connection came from.
			ps.remote = target{s.peer, s.conn.RemoteAddr().String()}
		}
	}
	if !s.outbound && ps.dialing && t.id < s.peer {
		// Our own dial to this peer is under way and will win the tie-break,
		// so refuse now, before either side sends on a connection that would
		// be closed later, losing messages.
		t.mu.Unlock()
		return fmt.Errorf("%w: with %s (our dial wins)", ErrDuplicate, s.peer)
	}
	old := ps.sess
	if old != nil && old.boot == s.boot && old.outbound != s.outbound {
		winnerDialed := (t.id < s.peer) == s.outbound
		if !winnerDialed {
			t.mu.Unlock()
			return fmt.Errorf("%w: with %s", ErrDuplicate, s.peer)
		}
	}
	ps.sess = s
	ps.failures = 0
	ps.nextDial = time.Time{}
	ps.lastErr = nil
	ps.notify()
	// Add under t.mu: Close sets t.closed under t.mu before it waits.
	t.wg.Add(3)
	t.mu.Unlock()
	if old != nil {
		old.conn.CloseWithError(codeReplaced, "replaced by a newer connection")
	}
	t.log.Info("net: peer connected", "peer", s.peer, "remote", s.conn.RemoteAddr().String(), "outbound", s.outbound, "link", s.link.String())
	go func() { defer t.wg.Done(); s.watch() }()
	go func() { defer t.wg.Done(); s.acceptStreams() }()
	go func() { defer t.wg.Done(); s.acceptBidiStreams() }()
	return nil
}

// stillAdmitted repeats admits' decision for a session about to be
// registered, in case membership, the followed member or the worker
// policy changed during its handshake; t.mu must be held.
func (t *Transport) stillAdmitted(s *session) error {
	_, member := t.members[s.peer]
	switch s.link {
	case linkMember:
		if !member {
			return fmt.Errorf("%w: %s removed during handshake", ErrUnknownPeer, s.peer)
		}
	case linkFollowed:
		if t.follow == nil || t.follow.id != s.peer {
			return fmt.Errorf("%w: %s is no longer the member this worker follows", ErrUnknownPeer, s.peer)
		}
	case linkWorker:
		if member || t.follow != nil || s.gen != t.policyGen {
			return fmt.Errorf("%w: worker %s: membership or worker policy changed during handshake", ErrUnknownPeer, s.peer)
		}
	}
	return nil
}

func (l peerLink) String() string {
	switch l {
	case linkWorker:
		return "worker"
	case linkFollowed:
		return "followed"
	}
	return "member"
}

// session is one authenticated QUIC connection to a member or a worker.
type session struct {
	t        *Transport
	peer     PeerID
	key      ledger.PublicKey
	conn     *quic.Conn
	outbound bool
	boot     [bootIDSize]byte
	link     peerLink
	gen      uint64 // the worker policy generation its admission saw
	out      [numKinds]outStream
}

// outStream is the long-lived stream carrying one kind to the peer.
type outStream struct {
	mu sync.Mutex
	s  *quic.SendStream
}

func (t *Transport) newSession(conn *quic.Conn, key ledger.PublicKey, outbound bool, boot [bootIDSize]byte, lk peerLink, gen uint64) *session {
	return &session{t: t, peer: KeyID(key), key: key, conn: conn, outbound: outbound, boot: boot, link: lk, gen: gen}
}

// watch forgets the session when its connection ends.
func (s *session) watch() {
	<-s.conn.Context().Done()
	t := s.t
	t.mu.Lock()
	if ps := t.peers[s.peer]; ps != nil && ps.sess == s {
		ps.sess = nil
		ps.notify()
	}
	t.mu.Unlock()
	t.log.Info("net: peer disconnected", "peer", s.peer, "cause", context.Cause(s.conn.Context()))
}

func (s *session) acceptStreams() {
	for {
		rs, err := s.conn.AcceptUniStream(s.conn.Context())
		if err != nil {
			return
		}
		s.t.wg.Go(func() { s.readStream(rs) })
	}
}

// readStream reads the frames of one inbound stream and hands them to the
// kind's handler. A malformed or oversized frame closes the stream.
func (s *session) readStream(rs *quic.ReceiveStream) {
	t := s.t
	br := bufio.NewReaderSize(rs, 64<<10)
	var pre [2]byte
	if _, err := io.ReadFull(br, pre[:]); err != nil {
		return
	}
	kind := StreamKind(pre[1])
	if pre[0] != frameVersion || !kind.message() {
		t.log.Warn("net: refused stream", "peer", s.peer, "reason", fmt.Errorf("%w: stream preamble %x", ErrBadFrame, pre))
		rs.CancelRead(streamBadOpen)
		return
	}
	if s.link.restricted() && !kind.AllowedForWorkers() {
		t.log.Warn("net: refused stream", "peer", s.peer, "link", s.link.String(), "kind", kind.String(), "reason", ErrKindNotAllowed)
		rs.CancelRead(streamNotAllowed)
		return
	}
	limit := t.cfg.limit(kind)
	var buf []byte // reused across frames when the handler borrows them
	for {
		msg, err := readFrameInto(br, frameMessage, limit, buf)
		if err != nil {
			switch {
			case errors.Is(err, ErrFrameTooLarge):
				t.log.Warn("net: refused frame", "peer", s.peer, "kind", kind.String(), "reason", err)
				rs.CancelRead(streamTooLarge)
			case errors.Is(err, ErrBadFrame):
				t.log.Warn("net: refused frame", "peer", s.peer, "kind", kind.String(), "reason", err)
				rs.CancelRead(streamBadFrame)
			}
			return
		}
		if t.cfg.Drop != nil && t.cfg.Drop(s.peer, kind, false) {
			continue
		}
		h, borrowed := t.handlerOf(kind)
		if h != nil {
			h(s.peer, msg)
		}
		if borrowed && cap(msg) <= maxReusedFrame {
			buf = msg[:0]
		} else {
			buf = nil
		}
	}
}

// maxReusedFrame bounds the buffer a stream keeps between frames.
const maxReusedFrame = 64 << 20

// send writes one frame on the kind's stream, opening the stream on first use.
func (s *session) send(ctx context.Context, kind StreamKind, msg []byte) error {
	if s.link.restricted() && !kind.AllowedForWorkers() {
		return fmt.Errorf("net: send %s to %s: %w", kind, s.peer, ErrKindNotAllowed)
	}
	o := &s.out[kind]
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.s == nil {
		st, err := s.conn.OpenUniStreamSync(ctx)
		if err != nil {
			return wrapUnlessRefused(fmt.Sprintf("send %s to %s", kind, s.peer), err)
		}
		st.SetPriority(kind.urgency(), false)
		o.s = st
		if err := s.write(ctx, st, []byte{frameVersion, byte(kind)}, nil); err != nil {
			return s.abort(o, kind, err)
		}
	}
	var hdr [frameHeaderSize]byte
	if err := s.write(ctx, o.s, appendFrameHeader(hdr[:0], frameMessage, len(msg)), msg); err != nil {
		return s.abort(o, kind, err)
	}
	return nil
}

// abort resets a stream whose frame may be half written (the receiver drops
// the partial frame); the next send opens a new stream.
func (s *session) abort(o *outStream, kind StreamKind, err error) error {
	o.s.CancelWrite(streamAborted)
	o.s = nil
	return wrapUnlessRefused(fmt.Sprintf("send %s to %s", kind, s.peer), err)
}

// write writes a and b, giving up when ctx is done.
func (s *session) write(ctx context.Context, st *quic.SendStream, a, b []byte) error {
	if ctx.Done() != nil {
		fired := make(chan struct{})
		stop := context.AfterFunc(ctx, func() {
			st.SetWriteDeadline(time.Unix(1, 0))
			close(fired)
		})
		defer func() {
			if !stop() {
				<-fired
				st.SetWriteDeadline(time.Time{})
			}
		}()
	}
	if _, err := st.Write(a); err != nil {
		return err
	}
	if len(b) > 0 {
		if _, err := st.Write(b); err != nil {
			return err
		}
	}
	return nil
}
