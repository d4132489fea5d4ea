package kernel

import (
	"context"
	"net"
	"testing"
	"time"
)

// TestCloseStopsRun: Close on a node whose Run is still going stops Run and
// waits for it before closing the stores, so no goroutine of Run (block
// production, raft apply, jobs) uses a closed store. Before, Close closed
// Pebble under a running node and its next block panicked with
// "pebble: closed" (seen when a test's cleanup gave up waiting for Run).
func TestCloseStopsRun(t *testing.T) {
	tn := newTestChain(t, 1)
	tn.store.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.BlockInterval.Duration = 10 * time.Millisecond
	node, err := OpenNode(NodeOptions{Home: t.TempDir(), Config: cfg, GenesisDoc: tn.doc, NodeKey: tn.nodeKey, Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- node.Run(context.Background()) }()
	<-node.Ready()
	if err := node.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close returned while Run was still running")
	}
}
