package kernel

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestLogRing: the ring keeps the last logRingSize records with their
// attributes (With and groups included), oldest first, filters by level
// and sequence, and still hands every record to the node's own handler.
func TestLogRing(t *testing.T) {
	ring := &logRing{}
	var out strings.Builder
	log := slog.New(&ringHandler{next: slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}), ring: ring})
	log.With("node", "n1").WithGroup("raft").Info("hello world", "term", 3, "peer", "a b")
	log.Warn("careful")
	got := ring.lines(0, slog.LevelDebug, 10)
	if len(got) != 2 || got[0].Msg != `hello world node=n1 raft.term=3 raft.peer="a b"` || got[0].Level != "INFO" || got[1].Msg != "careful" {
		t.Fatalf("ring: %+v", got)
	}
	if !strings.Contains(out.String(), "hello world") || !strings.Contains(out.String(), "careful") {
		t.Fatalf("the node's handler missed records: %q", out.String())
	}
	if w := ring.lines(0, slog.LevelWarn, 10); len(w) != 1 || w[0].Msg != "careful" {
		t.Fatalf("level filter: %+v", w)
	}
	if a := ring.lines(got[0].Seq, slog.LevelDebug, 10); len(a) != 1 || a[0].Seq != got[1].Seq {
		t.Fatalf("after filter: %+v", a)
	}
	for i := range logRingSize + 10 {
		log.Debug(fmt.Sprint("line ", i), "pad", strings.Repeat("x", 2*logLineMax))
	}
	all := ring.lines(0, slog.LevelDebug, 2*logRingSize)
	if len(all) != logRingSize || !strings.HasPrefix(all[0].Msg, "line 10 ") || !strings.HasPrefix(all[len(all)-1].Msg, fmt.Sprint("line ", logRingSize+9)) {
		t.Fatalf("bounded ring: %d records, first %.20q last %.20q", len(all), all[0].Msg, all[len(all)-1].Msg)
	}
	for _, l := range all {
		if len(l.Msg) > logLineMax+len("…") {
			t.Fatalf("record of %d bytes kept", len(l.Msg))
		}
		if l.Seq <= 1 {
			t.Fatal("sequence numbers must grow")
		}
	}
}

// TestLogsEndpoint: GET /v1/logs serves the node's recent records (the
// "node started" line among them), filtered by level; bad parameters are
// refused with 400.
func TestLogsEndpoint(t *testing.T) {
	tn := newTestChain(t, 1)
	cfg := DefaultConfig()
	_, c := startTestNodeWith(t, tn, cfg, func(o *NodeOptions) {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lines, err := c.Logs(ctx, 0, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range lines {
		found = found || strings.HasPrefix(l.Msg, "node started") && strings.Contains(l.Msg, "node_id=")
	}
	if !found {
		t.Fatalf("no 'node started' record in %+v", lines)
	}
	if w, err := c.Logs(ctx, 0, "error", 0); err != nil || len(w) != 0 {
		t.Fatalf("error-level records of a healthy node: %+v %v", w, err)
	}
	for _, q := range []string{"after=x", "level=loud", "limit=0"} {
		resp, err := http.Get(c.URL() + "/v1/logs?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("?%s: %d, want 400", q, resp.StatusCode)
		}
	}
}
