package kernel

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
)

// The node keeps its most recent log records in memory (logRing), so an
// operator can read them from the API (GET /v1/logs) — the TUI's log pane —
// without access to the machine's files. The ring sees what the node's
// logger lets through (its level), and is bounded by count and line length.

// logRingSize is how many records the ring keeps.
const logRingSize = 1000

// logLineMax bounds one record's text (attributes included).
const logLineMax = 1024

// logRing holds the last records, oldest first once full.
type logRing struct {
	mu   sync.Mutex
	buf  []client.LogLine
	next int    // where the next record goes once buf is full
	seq  uint64 // records seen, so a reader can ask for newer ones only
}

func (r *logRing) add(l client.LogLine) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	l.Seq = r.seq
	if len(r.buf) < logRingSize {
		r.buf = append(r.buf, l)
		return
	}
	r.buf[r.next] = l
	r.next = (r.next + 1) % logRingSize
}

// lines returns up to n records after seq (0: from the oldest kept), at
// level min or above, oldest first.
func (r *logRing) lines(after uint64, minLevel slog.Level, n int) []client.LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []client.LogLine{}
	for i := range r.buf {
		l := r.buf[(r.next+i)%len(r.buf)]
		if l.Seq > after && levelOf(l.Level) >= minLevel {
			out = append(out, l)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

func levelOf(s string) slog.Level {
	var l slog.Level
	if l.UnmarshalText([]byte(s)) != nil {
		return slog.LevelInfo
	}
	return l
}

// ringHandler is a slog.Handler that hands every record to next and to the
// ring (with the attributes and groups of its logger).
type ringHandler struct {
	next   slog.Handler
	ring   *logRing
	attrs  string // rendered With attributes
	prefix string // group prefix for later attributes
}

func (h *ringHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *ringHandler) Handle(ctx context.Context, rec slog.Record) error {
	var b strings.Builder
	b.WriteString(rec.Message)
	b.WriteString(h.attrs)
	rec.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, h.prefix, a)
		return b.Len() < logLineMax
	})
	text := b.String()
	if len(text) > logLineMax {
		text = text[:logLineMax] + "…"
	}
	t := rec.Time
	if t.IsZero() {
		t = time.Now()
	}
	h.ring.add(client.LogLine{TimeMs: t.UnixMilli(), Level: rec.Level.String(), Msg: text})
	return h.next.Handle(ctx, rec)
}

func writeAttr(b *strings.Builder, prefix string, a slog.Attr) {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return
	}
	if a.Value.Kind() == slog.KindGroup {
		p := prefix
		if a.Key != "" {
			p += a.Key + "."
		}
		for _, g := range a.Value.Group() {
			writeAttr(b, p, g)
		}
		return
	}
	b.WriteString(" " + prefix + a.Key + "=")
	v := a.Value.String()
	if strings.ContainsAny(v, " \"=") || v == "" {
		v = strconv.Quote(v)
	}
	b.WriteString(v)
}

func (h *ringHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	for _, a := range as {
		writeAttr(&b, h.prefix, a)
	}
	return &ringHandler{next: h.next.WithAttrs(as), ring: h.ring, attrs: h.attrs + b.String(), prefix: h.prefix}
}

func (h *ringHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &ringHandler{next: h.next.WithGroup(name), ring: h.ring, attrs: h.attrs, prefix: h.prefix + name + "."}
}

// handleLogs serves the node's recent log records: ?after=SEQ (newer than
// a record already read), ?level=warn (that level or above), ?limit=N
// (default 200, at most the ring's size).
func (n *Node) handleLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var after uint64
	if s := q.Get("after"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			writeErr(w, http.StatusBadRequest, errBadParam("after", s, "a record sequence number"))
			return
		}
		after = v
	}
	minLevel := slog.LevelDebug
	if s := q.Get("level"); s != "" {
		if err := minLevel.UnmarshalText([]byte(s)); err != nil {
			writeErr(w, http.StatusBadRequest, errBadParam("level", s, "debug, info, warn or error"))
			return
		}
	}
	limit := 200
	if s := q.Get("limit"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			writeErr(w, http.StatusBadRequest, errBadParam("limit", s, "a positive number"))
			return
		}
		limit = min(v, logRingSize)
	}
	writeJSON(w, http.StatusOK, n.logs.lines(after, minLevel, limit))
}

func errBadParam(name, value, want string) error {
	return fmt.Errorf("kernel: query parameter %s=%q: want %s", name, value, want)
}
