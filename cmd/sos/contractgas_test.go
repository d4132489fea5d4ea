package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestContractGasReport is the gas report end to end: the counter's
// harness test, run with SOS_GAS_REPORT=1 and this package built as sos,
// records its calls, and `sos contract gas counter.wasm --calls` replays
// them on the engine and prints each call's gas and the per-handler
// summary (kernel's TestGasReplayMatchesNode holds the figures equal to a
// node's receipts).
func TestContractGasReport(t *testing.T) {
	if testing.Short() {
		t.Skip("builds sos and the counter, and runs the counter's tests")
	}
	dir := t.TempDir()
	wasm := filepath.Join(dir, "counter.wasm")
	build := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s", "-o", wasm, "../../sdk-contracts/examples/counter")
	build.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build counter: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, "sos")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build sos: %v\n%s", err, out)
	}
	run := exec.Command("go", "test", "-count=1", "-run", "^TestGasReport$", "-v", ".", "-args", "-wasm="+wasm)
	run.Dir = "../../sdk-contracts/examples/counter"
	run.Env = append(os.Environ(), "SOS_GAS_REPORT=1", "SOS_BIN="+bin)
	out, err := run.CombinedOutput()
	if err != nil {
		t.Fatalf("the counter's gas report failed: %v\n%s", err, out)
	}
	for _, want := range []string{"the node's figures from " + bin, "execute/increment                     3", "query/get", "warm"} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "SKIP") {
		t.Fatalf("the report was skipped:\n%s", out)
	}

	// A calls file of another version is refused before anything runs.
	calls := filepath.Join(dir, "calls.json")
	if err := os.WriteFile(calls, []byte(`{"version":9,"calls":[]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, msg := sos(t, "contract", "gas", wasm, "--calls", calls); !strings.Contains(msg, "bad gas calls: version 9") {
		t.Fatalf("version 9: %q", msg)
	}
	if _, msg := sos(t, "contract", "gas", wasm, wasm); !strings.Contains(msg, "need --calls") {
		t.Fatalf("two modules without --calls: %q", msg)
	}
}
