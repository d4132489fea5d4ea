package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/rome/marketgen"
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

// TestGenMarketFamily checks --family: the replicas family's market is the
// one marketgen's FamilyConfig gives (replicated requests, providers with
// several offers), a flag beside it overrides the family's value, and an
// unknown family is refused with the names it accepts.
func TestGenMarketFamily(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) ([]byte, error) {
		g := &globals{output: "binary"}
		cmd := newGenMarketCmd(g)
		out := filepath.Join(dir, "m.bin")
		cmd.SetArgs(append(args, "--out", out))
		cmd.SilenceUsage, cmd.SilenceErrors = true, true
		if err := cmd.Execute(); err != nil {
			return nil, err
		}
		return os.ReadFile(out)
	}
	got, err := run("--family", "replicas", "--requests", "300", "--offers", "40", "--seed", "3")
	if err != nil {
		t.Fatal(err)
	}
	fc, ok := marketgen.FamilyConfig("replicas", 300, 40, 3)
	if !ok {
		t.Fatal("no replicas family")
	}
	_, want, err := marketgen.Generate(fc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("--family replicas is not marketgen's replicas family")
	}
	replicated := func(b []byte) int {
		s, err := policy.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range s.Requests {
			if r.Replicas > 1 {
				n++
			}
		}
		return n
	}
	if n := replicated(got); n < 60 || n > 120 {
		t.Fatalf("replicas family: %d of 300 requests replicated, want about 30%%", n)
	}
	none, err := run("--family", "replicas", "--requests", "300", "--offers", "40", "--seed", "3", "--replicas", "0")
	if err != nil {
		t.Fatal(err)
	}
	if replicated(none) != 0 {
		t.Fatalf("--replicas 0 beside --family replicas: %d replicated", replicated(none))
	}
	more, err := run("--requests", "300", "--offers", "40", "--replicas", "0.8", "--max-replicas", "5")
	if err != nil {
		t.Fatal(err)
	}
	if n := replicated(more); n < 200 {
		t.Fatalf("--replicas 0.8: %d of 300 replicated", n)
	}
	if _, err := run("--family", "nope"); err == nil || !strings.Contains(err.Error(), "replicas") {
		t.Fatalf("unknown family: %v", err)
	}
}
