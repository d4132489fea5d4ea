package kernel

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/sos-kernel/sos/ledger"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/loadgen"
	"github.com/sos-kernel/sos/kernel/txbuild"
)

// startTestNode runs a node on a loopback port over a fresh chain and
// returns a client for it.
func startTestNode(t testing.TB, tn *testNet, cfg Config) (*Node, *client.Client) {
	t.Helper()
	return startTestNodeWith(t, tn, cfg, nil)
}

// startTestNodeWith is startTestNode with the node options adjusted by
// tune (nil: none).
func startTestNodeWith(t testing.TB, tn *testNet, cfg Config, tune func(*NodeOptions)) (*Node, *client.Client) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tn.store.Close()
	opts := NodeOptions{Home: t.TempDir(), Config: cfg, GenesisDoc: tn.doc, NodeKey: tn.nodeKey, Listener: ln}
	if tune != nil {
		tune(&opts)
	}
	node, err := OpenNode(opts)
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
	return node, c
}

// BenchmarkEndToEnd20kTransfers is the foundation throughput figure: a node
// in this process, 20,000 pre-signed transfers from 50 fresh senders
// submitted over HTTP in batches, timed until every one is committed.
func BenchmarkEndToEnd20kTransfers(b *testing.B) {
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tn := newTestChain(b, 1)
		cfg := DefaultConfig()
		_, c := startTestNode(b, tn, cfg)
		ctx := context.Background()
		tb, err := txbuild.New(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := loadgen.Run(ctx, tb, tn.users[0], loadgen.Config{Txs: 20000, Senders: 50})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.CommittedTPS, "committed-tx/s")
		b.ReportMetric(res.AcceptedTPS, "accepted-tx/s")
		b.ReportMetric(res.P50Ms, "p50-ms")
		b.ReportMetric(res.P99Ms, "p99-ms")
	}
}

// BenchmarkNodeStart100kBlocks measures node start (open the store, check
// genesis, serve the API) on a store holding 100,000 blocks.
func BenchmarkNodeStart100kBlocks(b *testing.B) {
	const blocks = 100_000
	tn := newTestChain(b, 1)
	dir := b.TempDir()
	store, err := ledger.Open(filepath.Join(dir, "data"), ledger.StoreOptions{NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	g, _ := ledger.ParseGenesis(tn.doc)
	c := NewChain(store, g, nil)
	if err := c.InitGenesis(tn.doc); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < blocks; i++ {
		bb, err := c.BuildBlock(context.Background(), nil, store.Head().Time+500, tn.nodeKey)
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Commit(bb); err != nil {
			b.Fatal(err)
		}
	}
	if err := store.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		node, err := OpenNode(NodeOptions{Home: dir, Config: DefaultConfig(), GenesisDoc: tn.doc, NodeKey: tn.nodeKey, Listener: ln})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- node.Run(ctx) }()
		<-node.Ready()
		cl, _ := client.New("http://" + node.APIAddr())
		st, err := cl.Status(ctx)
		if err != nil || st.Height < blocks {
			b.Fatalf("status: %+v %v", st, err)
		}
		b.ReportMetric(float64(time.Since(start).Microseconds())/1000, "ms-to-serve")
		cancel()
		<-done
		node.Close()
	}
}
