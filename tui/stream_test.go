package tui

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"

	"github.com/sos-kernel/sos/kernel/client"
)

// TestStreamReconnects serves an event stream that drops after each event:
// the goroutine must deliver every event, report each drop with the minimum
// delay (the stream worked), and reconnect.
func TestStreamReconnects(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := conns.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, ": hello\n\nevent: block\ndata: {\"height\": %d, \"num_txs\": 1}\n\n", n)
		fmt.Fprintf(w, "event: tx\ndata: {\"tx_hash\": \"ab\", \"height\": %d}\n\nevent: mystery\ndata: {}\n\n", n)
	}))
	defer srv.Close()
	msgs := runStream(t, srv.URL, 8)
	var heights []uint64
	for _, m := range msgs {
		switch m := m.(type) {
		case blockEventMsg:
			heights = append(heights, m.ev.Height)
		case streamDownMsg:
			if m.retry != 10*time.Millisecond {
				t.Fatalf("retry after a working stream is %v, want the minimum", m.retry)
			}
		}
	}
	if len(heights) < 2 || heights[0] != 1 || heights[1] != 2 {
		t.Fatalf("block heights %v, want 1, 2, ... over reconnects (messages %v)", heights, msgs)
	}
}

// TestStreamBackoff: a node that refuses the stream is retried with growing,
// bounded delays.
func TestStreamBackoff(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	msgs := runStream(t, srv.URL, 5)
	want := []time.Duration{10, 20, 40, 40, 40}
	for i, m := range msgs {
		d, ok := m.(streamDownMsg)
		if !ok || d.retry != want[i]*time.Millisecond || d.err == nil {
			t.Fatalf("message %d is %#v, want a drop with retry %vms", i, m, want[i])
		}
	}
}

func runStream(t *testing.T, url string, n int) []tea.Msg {
	t.Helper()
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := fetcher{ctx: ctx, clients: []*client.Client{c}}
	ch := make(chan tea.Msg, 16)
	if msg := f.startStream(0, ch, backoff{min: 10 * time.Millisecond, max: 40 * time.Millisecond})(); msg != nil {
		t.Fatalf("starting the stream answered %v", msg)
	}
	var out []tea.Msg
	for len(out) < n {
		m := f.waitStream(ch)()
		if m == nil {
			t.Fatalf("stream ended early after %v", out)
		}
		if _, isTx := m.(txEventMsg); isTx {
			continue
		}
		out = append(out, m)
	}
	return out
}
