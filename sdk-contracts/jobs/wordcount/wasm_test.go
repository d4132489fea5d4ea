//go:build !wasip1

package main

import (
	"bytes"
	"context"
	"testing"
	"testing/fstest"

	"github.com/sos-kernel/sos/sdk-contracts/jobs/internal/textgen"
	"github.com/sos-kernel/sos/sdk-contracts/jobs/internal/wasirun"
)

// TestWasm runs wordcount.wasm (built by make contracts; skipped when it is
// not) as a WASI command in wazero and checks that every mode gives the same
// exit code, stdout, stderr and /out files as the native build.
func TestWasm(t *testing.T) {
	ctx := context.Background()
	r, err := wasirun.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	m := wasirun.Module(t, r, "wordcount.wasm")
	var gen bytes.Buffer
	if err := textgen.Generate(&gen, 5, 200_000); err != nil {
		t.Fatal(err)
	}
	text := map[string]string{"fixed.txt": fixedText, "gen.txt": gen.String()}
	_, mapped := wasirun.Same(t, r, m, run, wasirun.Case{Args: []string{"-map", "gen.txt"}, Files: text})
	counts := map[string]string{"gen.json": mapped[countsFile], "fixed.json": `{"format":"sos.wordcount.counts/1","total":2,"counts":{"the":2}}`}
	for _, c := range []wasirun.Case{
		{Files: text},
		{Args: []string{"-top", "0", "fixed.txt"}, Files: text},
		{Args: []string{"-top", "25"}, Stdin: gen.String()},
		{Args: []string{"-map"}, Files: text},
		{Args: []string{"-reduce", "-top", "30"}, Files: counts},
		{Args: []string{"-reduce", "-map"}, Files: counts},
		{Args: []string{"-reduce"}, Files: text},
		{Args: []string{"-top", "x"}, Files: text},
		{Args: []string{"missing.txt"}, Files: text},
	} {
		res, _ := wasirun.Same(t, r, m, run, c)
		t.Logf("%v: exit %d, %d bytes of stdout", c.Args, res.ExitCode, len(res.Stdout))
	}
}

// BenchmarkWasm counts the 16 MiB text of BenchmarkWordcount in wazero
// (compiler, no metering).
func BenchmarkWasm(b *testing.B) {
	ctx := context.Background()
	r, err := wasirun.New(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(ctx)
	m := wasirun.Module(b, r, "wordcount.wasm")
	var text bytes.Buffer
	if err := textgen.Generate(&text, 1, benchTextBytes); err != nil {
		b.Fatal(err)
	}
	in := fstest.MapFS{"corpus.txt": {Data: text.Bytes()}}
	out := b.TempDir()
	b.SetBytes(benchTextBytes)
	for b.Loop() {
		res, err := r.Run(ctx, m, wasirun.Job{In: in, OutDir: out})
		if err != nil || res.ExitCode != 0 {
			b.Fatalf("exit %d, %v: %s", res.ExitCode, err, res.Stderr)
		}
	}
}
