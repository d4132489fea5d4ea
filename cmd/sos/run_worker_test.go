package main

import (
	"strings"
	"testing"
)

// TestRunWorkerFlags: --worker and --follow go together, and a bad
// member reference is refused before anything starts.
func TestRunWorkerFlags(t *testing.T) {
	home := t.TempDir()
	must(t, "init", "--home", home, "--chain-id", "wk", "--p2p", "127.0.0.1:0")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--worker"}, "--worker and --follow"},
		{[]string{"--follow", "abc@127.0.0.1:1"}, "--worker and --follow"},
		{[]string{"--worker", "--follow", "127.0.0.1:1"}, "want <node-id>@host:port"},
	} {
		_, msg := sos(t, append([]string{"run", "--home", home}, c.args...)...)
		if !strings.Contains(msg, c.want) {
			t.Errorf("sos run %s: %q, want %q", strings.Join(c.args, " "), msg, c.want)
		}
	}
}
