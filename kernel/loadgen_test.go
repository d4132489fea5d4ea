package kernel

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/loadgen"
	"github.com/sos-kernel/sos/kernel/txbuild"
)

// flakyProxy stands between the load generator and the node and breaks
// things the way a network does: the first time it sees each batch it
// resets the connection, alternately before the node gets the request and
// after the node admitted it (the answer is lost), and it cuts the first
// event stream after a moment.
type flakyProxy struct {
	rp      *httputil.ReverseProxy
	mu      sync.Mutex
	seen    map[[32]byte]bool
	resets  int
	streams atomic.Int64
}

func newFlakyProxy(t *testing.T, nodeURL string) *httptest.Server {
	u, err := url.Parse(nodeURL)
	if err != nil {
		t.Fatal(err)
	}
	p := &flakyProxy{rp: httputil.NewSingleHostReverseProxy(u), seen: map[[32]byte]bool{}}
	p.rp.FlushInterval = -1
	p.rp.ErrorLog = log.New(io.Discard, "", 0)
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return srv
}

func (p *flakyProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/v1/txs/batch":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.mu.Lock()
		first := !p.seen[sha256.Sum256(body)]
		p.seen[sha256.Sum256(body)] = true
		p.resets++
		after := p.resets%2 == 0
		p.mu.Unlock()
		if first {
			if after {
				p.rp.ServeHTTP(httptest.NewRecorder(), r) // admitted; the answer is lost
			}
			reset(w)
			return
		}
	case "/v1/events":
		if p.streams.Add(1) == 1 {
			ctx, cancel := context.WithTimeout(r.Context(), 700*time.Millisecond)
			defer cancel()
			r = r.WithContext(ctx)
		}
	}
	p.rp.ServeHTTP(w, r)
}

// reset closes the client's connection with a TCP RST.
func reset(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// TestLoadgenRidesOutResetsAndReportsCommits: connection resets and a
// dropped event stream do not abort the load generator: it sends the
// batches again (a batch the node had admitted comes back "already
// known", which counts as accepted), follows the stream again, looks up
// the commits it missed, counts the errors and reports every commit.
func TestLoadgenRidesOutResetsAndReportsCommits(t *testing.T) {
	tn := newTestChain(t, 1)
	cfg := DefaultConfig()
	cfg.BlockInterval = Duration{100 * time.Millisecond}
	node, _ := startTestNode(t, tn, cfg)
	proxy := newFlakyProxy(t, "http://"+node.APIAddr())
	c, err := client.New(proxy.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tb, err := txbuild.New(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	const txs = 300
	res, err := loadgen.Run(ctx, tb, tn.users[0], loadgen.Config{Txs: txs, Senders: 10, BatchSize: 25, Parallel: 2, Timeout: 30 * time.Second})
	if err != nil {
		t.Fatalf("loadgen: %v (result %+v)", err, res)
	}
	t.Logf("%+v", *res)
	if res.Committed != txs || res.Accepted != txs || res.Rejected != 0 || res.Unsent != 0 {
		t.Fatalf("committed %d, accepted %d, rejected %d, unsent %d of %d", res.Committed, res.Accepted, res.Rejected, res.Unsent, txs)
	}
	if res.TransientErrors < txs/25 || res.FirstTransientErr == "" {
		t.Fatalf("%d transient errors counted, want one per batch (≥ %d)", res.TransientErrors, txs/25)
	}
	if res.StreamReconnects < 1 {
		t.Fatal("the dropped event stream was not counted")
	}
}
