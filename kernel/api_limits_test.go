package kernel

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
)

// countingListener records how many accepted connections are open at once.
type countingListener struct {
	net.Listener
	open, peak atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	n := l.open.Add(1)
	for p := l.peak.Load(); n > p && !l.peak.CompareAndSwap(p, n); p = l.peak.Load() {
	}
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// startLimitedNode runs a node whose API has the given limits, on a
// listener that counts its connections.
func startLimitedNode(t *testing.T, tn *testNet, lim APILimits) (*Node, *client.Client, *countingListener) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: inner}
	tn.store.Close()
	cfg := DefaultConfig()
	cfg.BlockInterval = Duration{50 * time.Millisecond}
	node, err := OpenNode(NodeOptions{Home: t.TempDir(), Config: cfg, GenesisDoc: tn.doc, NodeKey: tn.nodeKey, Listener: ln, API: lim})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- node.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("node did not stop")
		}
		node.Close()
	})
	<-node.Ready()
	c, err := client.New("http://" + node.APIAddr())
	if err != nil {
		t.Fatal(err)
	}
	return node, c, ln
}

// attacker is one raw TCP client misbehaving in some way.
type attacker struct {
	name   string
	opener string        // sent at once
	drip   string        // then one byte of this every 50 ms, cycling
	closed chan struct{} // closed when the server ends the connection
}

func (a *attacker) run(t *testing.T, addr string, stop <-chan struct{}) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Errorf("%s: dial: %v", a.name, err)
		close(a.closed)
		return
	}
	go func() {
		<-stop
		c.Close()
	}()
	go func() { // the server's answer (an error page or nothing) and then EOF
		_, _ = io.Copy(io.Discard, c)
		close(a.closed)
	}()
	if _, err := io.WriteString(c, a.opener); err != nil {
		return
	}
	for i := 0; a.drip != ""; i++ {
		select {
		case <-stop:
			return
		case <-a.closed:
			return
		case <-time.After(50 * time.Millisecond):
		}
		if _, err := c.Write([]byte{a.drip[i%len(a.drip)]}); err != nil {
			return
		}
	}
}

// TestAPISurvivesSlowAndLyingClients points slow and lying raw TCP clients
// at the API: headers sent a byte at a time (slowloris), bodies trickled
// a byte at a time, and requests declaring a Content-Length of 256 MiB (or
// 4 MiB for a single tx) that never send it. The server must hold no more
// connections than its limit, commit no memory to the declared lengths, cut
// every slow client off within its read timeouts, and keep answering
// honest requests meanwhile and afterwards.
func TestAPISurvivesSlowAndLyingClients(t *testing.T) {
	tn := newTestChain(t, 2)
	const maxConns = 12
	lim := APILimits{MaxConns: maxConns, ReadHeaderTimeout: 400 * time.Millisecond, ReadTimeout: 1200 * time.Millisecond, IdleTimeout: time.Second}
	_, c, ln := startLimitedNode(t, tn, lim)
	addr := ln.Addr().String()
	before := liveHeap()

	var attackers []*attacker
	add := func(n int, name, opener, drip string) {
		for range n {
			attackers = append(attackers, &attacker{name: name, opener: opener, drip: drip, closed: make(chan struct{})})
		}
	}
	add(6, "lying batch length", "POST /v1/txs/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 268435456\r\n\r\n0123456789", "")
	add(6, "lying tx length", "POST /v1/txs HTTP/1.1\r\nHost: x\r\nContent-Length: 4194304\r\n\r\n0123456789", "")
	add(6, "slow headers", "GET /v1/status HTTP/1.1\r\nHost: x\r\n", "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n")
	add(6, "slow body", "POST /v1/txs/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n", "x")
	stop := make(chan struct{})
	defer close(stop)
	for _, a := range attackers {
		go a.run(t, addr, stop)
	}
	// The first connections are accepted and their handlers wait for the
	// bodies they were promised.
	time.Sleep(300 * time.Millisecond)
	grew := int64(liveHeap()) - int64(before)
	t.Logf("live heap grew %d KB with %d attackers connected", grew>>10, len(attackers))
	if grew > 16<<20 {
		t.Errorf("live heap grew %d MB while clients declared bodies they never sent", grew>>20)
	}

	// An honest client is served while the attack goes on.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("status during the attack: %v", err)
	}
	t.Logf("status answered after %s during the attack", time.Since(start).Round(time.Millisecond))

	// Every attacker is cut off by the server (none gives up by itself).
	deadline := time.After(10 * time.Second)
	for i, a := range attackers {
		select {
		case <-a.closed:
		case <-deadline:
			t.Fatalf("attacker %d (%s) still connected after 10 s", i, a.name)
		}
	}
	if p := ln.peak.Load(); p > maxConns {
		t.Errorf("%d connections served at once, limit %d", p, maxConns)
	}

	// And the node still takes transactions.
	p := tn.txNonce(t, tn.users[0], transfer(tn.users[1], 5), 200_000, 0)
	res, err := c.SubmitTx(ctx, p.Raw, true)
	if err != nil || res.Error != "" {
		t.Fatalf("submit after the attack: %v %+v", err, res)
	}
}

// TestEventStreamOutlivesWriteTimeout: the server's timeouts bound
// requests and responses that end; the event stream is exempt and keeps
// delivering blocks long after them.
func TestEventStreamOutlivesWriteTimeout(t *testing.T) {
	tn := newTestChain(t, 1)
	short := 300 * time.Millisecond
	_, c, _ := startLimitedNode(t, tn, APILimits{WriteTimeout: short, ReadTimeout: short, ReadHeaderTimeout: short, IdleTimeout: short})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var blocks atomic.Int64
	var first atomic.Value
	late := make(chan struct{})
	go func() {
		_ = c.Events(ctx, func(ev client.StreamEvent) {
			if ev.Type != "block" {
				return
			}
			if blocks.Add(1) == 1 {
				first.Store(time.Now())
			}
			if t0, ok := first.Load().(time.Time); ok && time.Since(t0) > time.Second {
				select {
				case <-late:
				default:
					close(late)
				}
			}
		})
	}()
	select {
	case <-late:
	case <-ctx.Done():
		t.Fatalf("event stream delivered %d blocks, none more than 1 s (3× the write timeout) after the first", blocks.Load())
	}
}

// TestBatchBodyReadInChunks: a batch is parsed the same whatever chunks
// the body arrived in, including transactions straddling chunk
// boundaries, with or without a declared length.
func TestBatchBodyReadInChunks(t *testing.T) {
	var body bytes.Buffer
	var want [][]byte
	for i := range 300 {
		tx := bytes.Repeat([]byte{byte(i)}, 1+i*37%5000)
		want = append(want, tx)
		_ = binary.Write(&body, binary.BigEndian, uint32(len(tx)))
		body.Write(tx)
	}
	for _, declared := range []bool{true, false} {
		t.Run(fmt.Sprintf("declared=%v", declared), func(t *testing.T) {
			r, _ := http.NewRequest("POST", "/v1/txs/batch", iotest.HalfReader(bytes.NewReader(body.Bytes())))
			r.ContentLength = -1
			if declared {
				r.ContentLength = int64(body.Len())
			}
			got, err := readBatch(r)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%d txs, want %d", len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("tx %d differs", i)
				}
			}
		})
	}
	t.Run("over the limit", func(t *testing.T) {
		r, _ := http.NewRequest("POST", "/v1/txs", strings.NewReader(strings.Repeat("x", 100)))
		r.ContentLength = -1
		if _, err := readBody(r, 99); err == nil {
			t.Fatal("a body over the limit was read")
		}
		r, _ = http.NewRequest("POST", "/v1/txs", strings.NewReader(strings.Repeat("x", 99)))
		r.ContentLength = -1
		if b, err := readBody(r, 99); err != nil || len(b) != 99 {
			t.Fatalf("%d bytes, %v", len(b), err)
		}
	})
	t.Run("short of its declared length", func(t *testing.T) {
		r, _ := http.NewRequest("POST", "/v1/txs", strings.NewReader("abc"))
		r.ContentLength = 10
		r.Body = io.NopCloser(&errAfter{data: []byte("abc"), err: io.ErrUnexpectedEOF})
		if _, err := readBody(r, 1000); err == nil {
			t.Fatal("a truncated body was accepted")
		}
	})
}

type errAfter struct {
	data []byte
	err  error
}

func (e *errAfter) Read(p []byte) (int, error) {
	if len(e.data) == 0 {
		return 0, e.err
	}
	n := copy(p, e.data)
	e.data = e.data[n:]
	return n, nil
}
