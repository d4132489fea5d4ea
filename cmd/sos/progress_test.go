package main

import (
	"strings"
	"testing"

	"github.com/sos-kernel/sos/kernel/loadgen"
)

// TestLiveLine: on a terminal the progress is one line rewritten in place
// and ended by a newline; with --progress off a terminal it is a line per
// report; neither, nothing.
func TestLiveLine(t *testing.T) {
	if newLiveLine(&strings.Builder{}, false, false) != nil {
		t.Fatal("progress without a terminal or --progress")
	}
	var nl *liveLine
	nl.end() // no progress: end is a no-op
	var tty strings.Builder
	l := newLiveLine(&tty, true, false)
	l.show(loadgen.Live{Total: 10, Sent: 5, Committed: 2})
	l.show(loadgen.Live{Total: 10, Sent: 10, Committed: 10})
	l.end()
	if got := tty.String(); strings.Count(got, "\r\033[K") != 2 || !strings.HasSuffix(got, "committed 10 (100%)  failed 0  rejected 0  0 tx/s  0s\n") || strings.Count(got, "\n") != 1 {
		t.Fatalf("terminal output %q", got)
	}
	var plain strings.Builder
	l = newLiveLine(&plain, false, true)
	l.show(loadgen.Live{Total: 10, Sent: 5})
	l.show(loadgen.Live{Total: 10, Sent: 10})
	l.end()
	if got := plain.String(); strings.Contains(got, "\r") || strings.Count(got, "\n") != 2 || !strings.HasPrefix(got, "sent 5/10") {
		t.Fatalf("--progress output %q", got)
	}
}
