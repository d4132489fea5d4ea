package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/kernel/client"
)

// TestCLISearchAndTrace: a transfer is found by sender, by event and by
// attribute, not by another sender; `sos tx trace` prints its charges,
// which sum to its gas used (JSON), and an unknown hash is an error.
func TestCLISearchAndTrace(t *testing.T) {
	home, _ := cliNode(t)
	must(t, "keys", "add", "bob", "--home", home)
	var res txResult
	if err := json.Unmarshal([]byte(must(t, "tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "2TFLP", "--home", home, "-o", "json")), &res); err != nil {
		t.Fatal(err)
	}
	bob := strings.TrimSpace(must(t, "keys", "show", "bob", "--home", home))
	search := func(args ...string) client.TxSearch {
		t.Helper()
		var s client.TxSearch
		out := must(t, append([]string{"query", "txs", "--home", home, "-o", "json"}, args...)...)
		if err := json.Unmarshal([]byte(out), &s); err != nil {
			t.Fatalf("%s: %v", out, err)
		}
		return s
	}
	for _, args := range [][]string{{"--sender", "alice"}, {"--event", "transfer", "--attr", "to=" + bob}, {"--event", "transfer", "--from", "1", "--to", "100000"}} {
		if s := search(args...); len(s.Txs) != 1 || s.Txs[0].TxHash != res.TxHash {
			t.Fatalf("query txs %v: %+v", args, s)
		}
	}
	if s := search("--sender", "bob"); len(s.Txs) != 0 {
		t.Fatalf("bob sent nothing: %+v", s)
	}
	if _, msg := sos(t, "query", "txs", "--home", home, "--from", "3"); !strings.Contains(msg, "give a sender, a contract or an event type") {
		t.Fatalf("search without condition: %q", msg)
	}

	out := must(t, "tx", "trace", res.TxHash, "--home", home)
	if !strings.Contains(out, "charges:") || !strings.Contains(out, "intrinsic") || !strings.Contains(out, "state write") {
		t.Fatalf("trace printed:\n%s", out)
	}
	var tr client.TxTrace
	if err := json.Unmarshal([]byte(must(t, "tx", "trace", res.TxHash, "--home", home, "-o", "json")), &tr); err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, g := range tr.Gas {
		sum += g.Gas
	}
	if sum != res.GasUsed || tr.Receipt.GasUsed != res.GasUsed {
		t.Fatalf("trace charges sum to %d, receipt %d, tx %d", sum, tr.Receipt.GasUsed, res.GasUsed)
	}
	if _, msg := sos(t, "tx", "trace", strings.Repeat("ab", 32), "--home", home); msg == "" {
		t.Fatal("trace of an unknown tx succeeded")
	}
}
