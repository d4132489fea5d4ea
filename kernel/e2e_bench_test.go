package kernel

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/loadgen"
	"github.com/sos-kernel/sos/kernel/txbuild"
)

// startTestNode runs a node on a loopback port over a fresh chain and
// returns a client for it.
func startTestNode(t testing.TB, tn *testNet, cfg Config) (*Node, *client.Client) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tn.store.Close()
	node, err := OpenNode(NodeOptions{Home: t.TempDir(), Config: cfg, GenesisDoc: tn.doc, NodeKey: tn.nodeKey, Listener: ln})
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
