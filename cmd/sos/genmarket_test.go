package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/policy"
)

func TestGenMarketDeterministic(t *testing.T) {
	dir := t.TempDir()
	run := func(name string, args ...string) []byte {
		t.Helper()
		g := &globals{output: "binary"}
		cmd := newGenMarketCmd(g)
		out := filepath.Join(dir, name)
		cmd.SetArgs(append(args, "--out", out))
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := run("a.bin", "--requests", "50", "--offers", "10", "--seed", "7")
	b := run("b.bin", "--requests", "50", "--offers", "10", "--seed", "7")
	c := run("c.bin", "--requests", "50", "--offers", "10", "--seed", "8")
	if !bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatal("gen-market is not a function of its seed")
	}
	s, err := policy.Decode(a)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Requests) != 50 || len(s.Offers) != 10 || len(s.Kinds) != 4 {
		t.Fatalf("got %d requests, %d offers, %d kinds", len(s.Requests), len(s.Offers), len(s.Kinds))
	}
}
