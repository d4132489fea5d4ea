package net

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/sos-kernel/sos/ledger"
)

const testChain = "sos-test"

var allKinds = []StreamKind{KindConsensus, KindGossip, KindSync, KindReplication, KindFollow}

var testGenesis = [32]byte{1, 2, 3}

// testKey derives a node key from a seed, so runs are reproducible.
func testKey(t testing.TB, seed byte) *ledger.PrivateKey {
	t.Helper()
	k, err := ledger.GenerateKey(rand.NewChaCha8([32]byte{seed}))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// logBuf collects a node's log so tests can check refusals were logged.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitLog waits (bounded) until the log contains every substring.
func (l *logBuf) waitLog(t testing.TB, subs ...string) {
	t.Helper()
	waitFor(t, 5*time.Second, func() bool {
		s := l.String()
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				return false
			}
		}
		return true
	}, "log to contain %q", subs)
}

type node struct {
	*Transport
	log *logBuf
}

// newNode starts a transport on a loopback port; mutate adjusts its config.
func newNode(t testing.TB, key *ledger.PrivateKey, mutate func(*Config)) *node {
	t.Helper()
	lb := &logBuf{}
	cfg := Config{
		ListenAddr:       "127.0.0.1:0",
		Key:              key,
		ChainID:          testChain,
		GenesisHash:      testGenesis,
		Logger:           slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})),
		HandshakeTimeout: 2 * time.Second,
		MinBackoff:       10 * time.Millisecond,
		MaxBackoff:       200 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	tr, err := Listen(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return &node{Transport: tr, log: lb}
}

func (n *node) member() Member {
	return Member{Key: n.cfg.Key.Public(), Addr: n.Addr().String()}
}

// link makes every node a member of every other.
func link(t testing.TB, nodes ...*node) {
	t.Helper()
	var ms []Member
	for _, n := range nodes {
		ms = append(ms, n.member())
	}
	for _, n := range nodes {
		if err := n.SetMembers(ms); err != nil {
			t.Fatal(err)
		}
	}
}

// inbox records the messages a node receives, per kind.
type inbox struct {
	mu  sync.Mutex
	got map[StreamKind][]recv
	ch  chan recv
}

type recv struct {
	from PeerID
	kind StreamKind
	msg  []byte
}

func newInbox(n *node) *inbox {
	in := &inbox{got: map[StreamKind][]recv{}, ch: make(chan recv, 1<<16)}
	for _, k := range allKinds {
		n.Handle(k, func(from PeerID, msg []byte) {
			r := recv{from, k, msg}
			in.mu.Lock()
			in.got[k] = append(in.got[k], r)
			in.mu.Unlock()
			select {
			case in.ch <- r:
			default:
			}
		})
	}
	return in
}

// expect waits (bounded) for the next message and checks it.
func (in *inbox) expect(t testing.TB, from PeerID, kind StreamKind, msg string) {
	t.Helper()
	select {
	case r := <-in.ch:
		if r.from != from || r.kind != kind || string(r.msg) != msg {
			t.Fatalf("got %q on %s from %.8s, want %q on %s from %.8s", r.msg, r.kind, r.from, msg, kind, from)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("no message %q on %s within 5s", msg, kind)
	}
}

// expectNone checks nothing arrives for a while.
func (in *inbox) expectNone(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case r := <-in.ch:
		t.Fatalf("unexpected message %q on %s from %.8s", r.msg, r.kind, r.from)
	case <-time.After(d):
	}
}

func waitFor(t testing.TB, limit time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for "+format, append([]any{limit}, args...)...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// session returns n's current session to a peer, or nil.
func (n *node) session(id PeerID) *session {
	n.mu.Lock()
	defer n.mu.Unlock()
	if ps := n.peers[id]; ps != nil {
		return ps.sess
	}
	return nil
}

func (n *node) connected(id PeerID) bool { return n.session(id) != nil }

// rawClient is a QUIC client under the test's control, for sending
// hand-made (forged, replayed) handshakes.
type rawClient struct {
	conn *quic.Conn
	exp  []byte
}

func dialRaw(t testing.TB, to *node) *rawClient {
	t.Helper()
	cert, err := carrierCert(rand.NewChaCha8([32]byte{99}))
	if err != nil {
		t.Fatal(err)
	}
	conn, err := quic.DialAddr(ctxT(t, 5*time.Second), to.Addr().String(), tlsConfig(cert), &quic.Config{HandshakeIdleTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.CloseWithError(0, "") })
	exp, err := sessionBinding(conn)
	if err != nil {
		t.Fatal(err)
	}
	return &rawClient{conn: conn, exp: exp}
}

// handshake sends raw hello bytes (a whole frame) and returns the server's
// answer or its refusal (mapped to our sentinels).
func (c *rawClient) handshake(t testing.TB, frame []byte) ([]byte, error) {
	t.Helper()
	st, err := c.conn.OpenStreamSync(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := st.Write(frame); err != nil {
		return nil, remoteRefusal(err)
	}
	payload, err := readFrame(st, frameHello, maxHello)
	if err != nil {
		return nil, remoteRefusal(err)
	}
	return payload, nil
}

// signedHello builds a client hello for the raw session, claiming claimKey's
// identity but signing with signKey.
func (c *rawClient) signedHello(t testing.TB, claim ledger.PublicKey, signKey *ledger.PrivateKey) []byte {
	t.Helper()
	h, err := newHello(signKey, testChain, testGenesis, [bootIDSize]byte{7}, roleClient, c.exp)
	if err != nil {
		t.Fatal(err)
	}
	h.PubKey = claim.Bytes()
	return appendFrame(nil, frameHello, h.marshal())
}

func isStreamErr(err error, code quic.StreamErrorCode) bool {
	var se *quic.StreamError
	return errors.As(err, &se) && se.ErrorCode == code && se.Remote
}
