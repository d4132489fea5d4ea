package net

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNegotiatedGroupIsX25519MLKEM768(t *testing.T) {
	a, b := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil)
	link(t, a, b)
	in := newInbox(b)
	if err := a.Send(ctxT(t, 5*time.Second), b.ID(), KindConsensus, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	in.expect(t, a.ID(), KindConsensus, "hi")
	for _, s := range []*session{a.session(b.ID()), b.session(a.ID())} {
		if s == nil {
			t.Fatal("no session")
		}
		cs := s.conn.ConnectionState().TLS
		if cs.CurveID != tls.X25519MLKEM768 {
			t.Errorf("negotiated group %v, want X25519MLKEM768", cs.CurveID)
		}
		if cs.Version != tls.VersionTLS13 {
			t.Errorf("TLS version %x, want 1.3", cs.Version)
		}
	}
}

func TestExchangeEveryKindBothWays(t *testing.T) {
	a, b := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil)
	link(t, a, b)
	ina, inb := newInbox(a), newInbox(b)
	const n = 200
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(allKinds))
	for _, k := range allKinds {
		for _, dir := range []struct{ from, to *node }{{a, b}, {b, a}} {
			wg.Go(func() {
				for i := range n {
					msg := fmt.Appendf(nil, "%s-%s-%d", dir.from.ID()[:6], k, i)
					if err := dir.from.Send(ctxT(t, 10*time.Second), dir.to.ID(), k, msg); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, c := range []struct {
		in   *inbox
		from *node
	}{{inb, a}, {ina, b}} {
		for _, k := range allKinds {
			waitFor(t, 10*time.Second, func() bool {
				c.in.mu.Lock()
				defer c.in.mu.Unlock()
				return len(c.in.got[k]) >= n
			}, "%d messages on %s", n, k)
			c.in.mu.Lock()
			got := c.in.got[k]
			c.in.mu.Unlock()
			if len(got) != n {
				t.Fatalf("%s: %d messages, want %d", k, len(got), n)
			}
			for i, r := range got { // in order, no gaps, no duplicates
				want := fmt.Sprintf("%s-%s-%d", c.from.ID()[:6], k, i)
				if r.from != c.from.ID() || string(r.msg) != want {
					t.Fatalf("%s message %d: %q from %.8s, want %q", k, i, r.msg, r.from, want)
				}
			}
		}
	}
	// One connection for the pair, seen from both ends.
	sa, sb := a.session(b.ID()), b.session(a.ID())
	if sa == nil || sb == nil || sa.outbound == sb.outbound {
		t.Fatalf("want one shared connection, got a→b outbound=%v b→a outbound=%v", sa != nil && sa.outbound, sb != nil && sb.outbound)
	}
	for _, p := range a.Peers() {
		if !p.Connected || p.RTT <= 0 || p.ID != b.ID() {
			t.Errorf("a.Peers: %+v", p)
		}
	}
}

// TestRefused covers every way a handshake is refused: the dialing side gets
// the sentinel (from the peer's close code) and the refusing side logs why.
func TestRefused(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config) // config of the dialing node
		member  bool          // whether the server lists the dialer
		reverse bool          // the server dials the odd node instead
		want    error
		log     string
	}{
		{"unknown key", nil, false, false, ErrUnknownPeer, "is not a member"},
		{"different genesis", func(c *Config) { c.GenesisHash = [32]byte{9} }, true, false, ErrGenesisMismatch, "genesis mismatch"},
		{"different genesis, other direction", func(c *Config) { c.GenesisHash = [32]byte{9} }, true, true, ErrGenesisMismatch, "genesis mismatch"},
		{"different chain id", func(c *Config) { c.ChainID = "other-chain" }, true, false, ErrChainMismatch, "chain id mismatch"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newNode(t, testKey(t, 1), nil)
			odd := newNode(t, testKey(t, 3), tc.mutate)
			if tc.member {
				link(t, srv, odd)
			} else {
				odd.SetMembers([]Member{srv.member()})
				srv.SetMembers([]Member{newNode(t, testKey(t, 2), nil).member()})
			}
			dialer, refuser, to := odd, srv, srv.ID()
			if tc.reverse {
				dialer, refuser, to = srv, odd, odd.ID()
			}
			err := dialer.Send(ctxT(t, 5*time.Second), to, KindConsensus, []byte("x"))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Send: %v, want %v", err, tc.want)
			}
			refuser.log.waitLog(t, "refused connection", tc.log)
			if srv.connected(odd.ID()) || odd.connected(srv.ID()) {
				t.Fatal("refused peer is connected")
			}
		})
	}
}

// TestImpostor: a client claims a member's public key but cannot sign with it.
func TestImpostor(t *testing.T) {
	srv, member := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil)
	link(t, srv, member)
	c := dialRaw(t, srv)
	_, err := c.handshake(t, c.signedHello(t, member.cfg.Key.Public(), testKey(t, 66)))
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("impostor handshake: %v, want ErrBadSignature", err)
	}
	srv.log.waitLog(t, "refused connection", "bad handshake signature")
	if srv.connected(member.ID()) {
		t.Fatal("impostor registered as the member")
	}
}

// TestReplayedHandshake records a member's valid hello from session 1 and
// sends it in session 2: the exporter differs, so the signature fails.
func TestReplayedHandshake(t *testing.T) {
	srv, member := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil)
	link(t, srv, member)
	memberKey := member.cfg.Key
	member.Close() // the raw client speaks for it

	c1 := dialRaw(t, srv)
	recorded := c1.signedHello(t, memberKey.Public(), memberKey)
	answer, err := c1.handshake(t, recorded)
	if err != nil {
		t.Fatalf("session 1 (genuine): %v", err)
	}
	h, err := unmarshalHello(answer)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := verifyHello(h, testChain, testGenesis, roleServer, c1.exp)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSignature(h, pub, c1.exp); err != nil {
		t.Fatalf("server hello in session 1: %v", err)
	}

	c2 := dialRaw(t, srv)
	if bytes.Equal(c1.exp, c2.exp) {
		t.Fatal("two sessions share an exporter value")
	}
	if _, err := c2.handshake(t, recorded); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("replayed handshake: %v, want ErrBadSignature", err)
	}
	srv.log.waitLog(t, "refused connection", "bad handshake signature")

	// The server's own hello replayed to it as a client's fails on the role.
	c3 := dialRaw(t, srv)
	if _, err := c3.handshake(t, appendFrame(nil, frameHello, answer)); !errors.Is(err, ErrBadHandshake) && !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("reflected server hello: %v", err)
	}
}

func TestRemovedPeer(t *testing.T) {
	a, b := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil)
	link(t, a, b)
	inb := newInbox(b)
	if err := a.Send(ctxT(t, 5*time.Second), b.ID(), KindGossip, []byte("before")); err != nil {
		t.Fatal(err)
	}
	inb.expect(t, a.ID(), KindGossip, "before")

	if err := a.SetMembers([]Member{a.member()}); err != nil { // b removed
		t.Fatal(err)
	}
	a.log.waitLog(t, "peer removed")
	waitFor(t, 5*time.Second, func() bool { return !b.connected(a.ID()) }, "b to see its connection closed")
	if len(a.Peers()) != 0 {
		t.Fatalf("a.Peers after removal: %+v", a.Peers())
	}
	if err := a.Send(ctxT(t, 5*time.Second), b.ID(), KindGossip, []byte("x")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("send to removed peer: %v, want ErrUnknownPeer", err)
	}
	if err := b.Send(ctxT(t, 5*time.Second), a.ID(), KindGossip, []byte("x")); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("removed peer dialing: %v, want ErrUnknownPeer", err)
	}
	a.log.waitLog(t, "refused connection", "is not a member")
}

// TestTamperedFrame writes frames with corrupted headers on a raw stream of
// an authenticated connection: the receiver refuses, logs and closes the
// stream, and the connection keeps working.
func TestTamperedFrame(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(frame []byte) []byte
		code   uint64
		log    string
	}{
		{"version", func(f []byte) []byte { f[0] ^= 0xff; return f }, uint64(streamBadFrame), "bad frame: version"},
		{"type", func(f []byte) []byte { f[1] = 0x7f; return f }, uint64(streamBadFrame), "bad frame: type"},
		{"length", func(f []byte) []byte { f[2] ^= 0x80; return f }, uint64(streamTooLarge), "frame too large"},
		{"preamble", func(f []byte) []byte { return f }, uint64(streamBadOpen), "refused stream"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil)
			link(t, a, b)
			inb := newInbox(b)
			if err := a.Send(ctxT(t, 5*time.Second), b.ID(), KindGossip, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			inb.expect(t, a.ID(), KindGossip, "hello")

			st, err := a.session(b.ID()).conn.OpenUniStreamSync(ctxT(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			preamble := []byte{frameVersion, byte(KindGossip)}
			if tc.name == "preamble" {
				preamble[1] = 0xee
			}
			wire := append(preamble, appendFrame(nil, frameMessage, []byte("good"))...)
			wire = append(wire, tc.tamper(appendFrame(nil, frameMessage, []byte("evil")))...)
			st.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := st.Write(wire); err != nil {
				t.Fatal(err)
			}
			if tc.name != "preamble" {
				inb.expect(t, a.ID(), KindGossip, "good")
			}
			b.log.waitLog(t, tc.log)
			// The receiver stopped the stream: writes fail with its code.
			var werr error
			waitFor(t, 5*time.Second, func() bool {
				_, werr = st.Write([]byte{0})
				return werr != nil
			}, "the tampered stream to be closed")
			if !isStreamErr(werr, quicCode(tc.code)) {
				t.Fatalf("write after tamper: %v, want stream error %#x", werr, tc.code)
			}
			inb.expectNone(t, 50*time.Millisecond)
			if err := a.Send(ctxT(t, 5*time.Second), b.ID(), KindGossip, []byte("after")); err != nil {
				t.Fatal(err)
			}
			inb.expect(t, a.ID(), KindGossip, "after")
		})
	}
}

func TestOversizedFrame(t *testing.T) {
	limits := func(c *Config) { c.Limits = map[StreamKind]int{KindGossip: 1024} }
	a, b := newNode(t, testKey(t, 1), limits), newNode(t, testKey(t, 2), limits)
	link(t, a, b)
	inb := newInbox(b)
	if err := a.Send(ctxT(t, 5*time.Second), b.ID(), KindGossip, make([]byte, 1025)); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("Send of 1025 bytes with limit 1024: %v", err)
	}
	if err := a.Send(ctxT(t, 5*time.Second), b.ID(), KindGossip, bytes.Repeat([]byte{'x'}, 1024)); err != nil {
		t.Fatal(err)
	}
	inb.expect(t, a.ID(), KindGossip, strings.Repeat("x", 1024))

	// A peer announcing more than the receiver's limit is refused at the header.
	st, err := a.session(b.ID()).conn.OpenUniStreamSync(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	wire := append([]byte{frameVersion, byte(KindGossip)}, appendFrameHeader(nil, frameMessage, 1<<30)...)
	if _, err := st.Write(wire); err != nil {
		t.Fatal(err)
	}
	b.log.waitLog(t, "refused frame", "frame too large: 1073741824 bytes, limit 1024")
}

// TestReadFrameRefusesBeforeAllocating: a header announcing a huge frame
// costs no payload memory, and an allowed large frame that stalls costs at
// most one read chunk.
func TestReadFrameRefusesBeforeAllocating(t *testing.T) {
	tests := []struct {
		name     string
		announce int
		limit    int
		maxBytes uint64
		want     error
	}{
		{"over limit", 1 << 30, DefaultMaxFrame, 4 << 10, ErrFrameTooLarge},
		{"max uint32", 1<<32 - 1, DefaultMaxFrame, 4 << 10, ErrFrameTooLarge},
		{"allowed but stalls", 60 << 20, DefaultMaxFrame, readChunk + 64<<10, errUnexpectedEOF},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wire := append(appendFrameHeader(nil, frameMessage, tc.announce), "only a few bytes"...)
			var err error
			allocated := bytesAllocated(func() { _, err = readFrame(bytes.NewReader(wire), frameMessage, tc.limit) })
			if !errors.Is(err, tc.want) {
				t.Fatalf("readFrame: %v, want %v", err, tc.want)
			}
			if allocated > tc.maxBytes {
				t.Fatalf("allocated %d bytes, want ≤ %d", allocated, tc.maxBytes)
			}
		})
	}
}

// TestReconnectAfterRestart: a peer that stops and starts again on the same
// address is reached again well within IdleTimeout. After a crash (no
// CONNECTION_CLOSE) only the restarted node's stateless reset can end the
// stale connection in time: a's first small messages travel in packets that
// must be long enough to draw one (resetConnIDLen). a probes no path MTU, so
// an MTU probe in flight (large enough to draw a reset whatever the
// connection id length) cannot do that job instead.
func TestReconnectAfterRestart(t *testing.T) {
	const recoverWithin = 5 * time.Second // IdleTimeout is 15 s
	tests := []struct {
		name  string
		crash bool // stop without telling the peer (no CONNECTION_CLOSE)
	}{{"clean close", false}, {"crash", true}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newNode(t, testKey(t, 1), nil)
			a.qconf.DisablePathMTUDiscovery = true // read by a's dials only; set before the first
			bKey := testKey(t, 2)
			b := newNode(t, bKey, nil)
			link(t, a, b)
			inb := newInbox(b)
			if err := a.Send(ctxT(t, 5*time.Second), b.ID(), KindConsensus, []byte("m0")); err != nil {
				t.Fatal(err)
			}
			inb.expect(t, a.ID(), KindConsensus, "m0")

			addr := b.Addr().String()
			if tc.crash {
				b.qt.Close() // drop every connection silently
				b.udp.Close()
			} else {
				b.Close()
				waitFor(t, 5*time.Second, func() bool { return !a.connected(b.ID()) }, "a to notice b left")
			}
			// While b is down, sends fail after backoff within their context.
			if !tc.crash {
				start := time.Now()
				err := a.Send(ctxT(t, 300*time.Millisecond), b.ID(), KindConsensus, []byte("lost"))
				if err == nil || time.Since(start) > 3*time.Second {
					t.Fatalf("send to a stopped peer: %v after %v", err, time.Since(start))
				}
			}
			b2 := newNode(t, bKey, func(c *Config) { c.ListenAddr = addr })
			b2.SetMembers([]Member{a.member(), b2.member()})
			inb2 := newInbox(b2)
			// Messages sent on a connection not yet known to be dead are lost
			// (at most once); keep sending until one arrives, bounded.
			deadline := time.Now().Add(recoverWithin)
			for i := 1; ; i++ {
				if time.Now().After(deadline) {
					t.Fatalf("no message reached the restarted peer within %v", recoverWithin)
				}
				if err := a.Send(ctxT(t, 5*time.Second), b.ID(), KindConsensus, fmt.Appendf(nil, "m%d", i)); err != nil {
					t.Logf("send %d: %v", i, err)
				}
				select {
				case r := <-inb2.ch:
					if r.from != a.ID() {
						t.Fatalf("message from %s", r.from)
					}
					if tc.crash {
						a.log.waitLog(t, "net: peer disconnected", "received a stateless reset")
					}
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
}

func TestPartition(t *testing.T) {
	var p Partition
	keys := []byte{1, 2, 3}
	var nodes []*node
	for _, k := range keys {
		key := testKey(t, k)
		nodes = append(nodes, newNode(t, key, func(c *Config) { c.Drop = p.Filter(KeyID(key.Public())) }))
	}
	link(t, nodes...)
	a, b, c := nodes[0], nodes[1], nodes[2]
	ina, inb, inc := newInbox(a), newInbox(b), newInbox(c)
	send := func(from, to *node, msg string) {
		t.Helper()
		if err := from.Send(ctxT(t, 5*time.Second), to.ID(), KindConsensus, []byte(msg)); err != nil {
			t.Fatal(err)
		}
	}
	send(a, c, "before")
	inc.expect(t, a.ID(), KindConsensus, "before")

	p.Isolate(c.ID())
	send(a, b, "majority")
	inb.expect(t, a.ID(), KindConsensus, "majority")
	send(a, c, "to minority")
	send(b, c, "to minority")
	send(c, a, "from minority")
	inc.expectNone(t, 200*time.Millisecond)
	ina.expectNone(t, 50*time.Millisecond)

	p.Heal()
	send(a, c, "healed")
	inc.expect(t, a.ID(), KindConsensus, "healed")
	send(c, b, "healed too")
	inb.expect(t, c.ID(), KindConsensus, "healed too")
}

// TestSimultaneousDial: both nodes dial at once, repeatedly; they converge on
// one connection and lose no message sent after convergence.
func TestSimultaneousDial(t *testing.T) {
	for round := range 5 {
		a, b := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil)
		link(t, a, b)
		ina, inb := newInbox(a), newInbox(b)
		var wg sync.WaitGroup
		wg.Go(func() { a.Send(ctxT(t, 5*time.Second), b.ID(), KindGossip, []byte("x")) })
		wg.Go(func() { b.Send(ctxT(t, 5*time.Second), a.ID(), KindGossip, []byte("x")) })
		wg.Wait()
		waitFor(t, 5*time.Second, func() bool {
			sa, sb := a.session(b.ID()), b.session(a.ID())
			return sa != nil && sb != nil && sa.outbound != sb.outbound
		}, "round %d: one shared connection", round)
		for len(ina.ch) > 0 {
			<-ina.ch
		}
		for len(inb.ch) > 0 {
			<-inb.ch
		}
		if err := a.Send(ctxT(t, 5*time.Second), b.ID(), KindGossip, []byte("y")); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(ctxT(t, 5*time.Second), a.ID(), KindGossip, []byte("y")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 5*time.Second, func() bool {
			return lastMsg(inb) == "y" && lastMsg(ina) == "y"
		}, "round %d: messages after convergence", round)
	}
}

func lastMsg(in *inbox) string {
	in.mu.Lock()
	defer in.mu.Unlock()
	g := in.got[KindGossip]
	if len(g) == 0 {
		return ""
	}
	return string(g[len(g)-1].msg)
}

func TestConfigValidate(t *testing.T) {
	key := testKey(t, 1)
	ok := Config{ListenAddr: "127.0.0.1:0", Key: key, ChainID: testChain}
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"ok", func(*Config) {}, ""},
		{"no addr", func(c *Config) { c.ListenAddr = "" }, "ListenAddr"},
		{"no key", func(c *Config) { c.Key = nil }, "Key"},
		{"no chain", func(c *Config) { c.ChainID = "" }, "ChainID"},
		{"long chain", func(c *Config) { c.ChainID = strings.Repeat("c", 201) }, "ChainID"},
		{"negative frame", func(c *Config) { c.MaxFrame = -1 }, "MaxFrame"},
		{"backoff", func(c *Config) { c.MinBackoff, c.MaxBackoff = time.Second, time.Millisecond }, "backoff"},
		{"bad limit", func(c *Config) { c.Limits = map[StreamKind]int{9: 10} }, "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mutate(&c)
			err := c.validate()
			if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("validate: %v, want error containing %q", err, tc.want)
			}
		})
	}
}

// TestBorrowedStreamReusesBuffer: a borrowed handler sees every message
// intact, in order, across frames that shrink and grow past the read chunk,
// while the stream reads them into one reused buffer.
func TestBorrowedStreamReusesBuffer(t *testing.T) {
	a, b := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil)
	link(t, a, b)
	kind := allKinds[0]
	sizes := []int{3 << 20, 10, readChunk + 1, 5 << 20, 1, 2 << 20}
	type seen struct {
		sum  [32]byte
		size int
		base *byte
	}
	got := make(chan seen, len(sizes))
	b.HandleBorrowed(kind, func(_ PeerID, msg []byte) {
		s := seen{sum: sha256.Sum256(msg), size: len(msg)}
		if cap(msg) > 0 {
			s.base = &msg[:1][0]
		}
		got <- s
	})
	var want [][32]byte
	for i, n := range sizes {
		msg := bytes.Repeat([]byte{byte(i + 1)}, n)
		want = append(want, sha256.Sum256(msg))
		if err := a.Send(ctxT(t, 10*time.Second), b.ID(), kind, msg); err != nil {
			t.Fatal(err)
		}
	}
	bases := map[*byte]bool{}
	for i := range sizes {
		select {
		case s := <-got:
			if s.size != sizes[i] || s.sum != want[i] {
				t.Fatalf("message %d: %d bytes, content ok %v; want %d bytes", i, s.size, s.sum == want[i], sizes[i])
			}
			bases[s.base] = true
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d did not arrive", i)
		}
	}
	// The 3 MiB buffer carries the smaller frames after it; only the 5 MiB
	// frame needs a new one, which then carries the last.
	if len(bases) > 2 {
		t.Fatalf("%d distinct buffers for %d frames, want the stream to reuse its buffer", len(bases), len(sizes))
	}
}
