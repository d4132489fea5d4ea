//go:build !wasip1

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
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
	counts := map[string]string{"gen.tsv": mapped[countsFile], "fixed.tsv": "sos.wordcount.counts/1 total=2 words=1\n2\tthe\n"}
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

// benchTextBytes is the size of the benchmark's generated corpus.
const benchTextBytes = 16 << 20

// BenchmarkWordcount counts the words of 16 MiB of generated text (top 10)
// natively and as wordcount.wasm in wazero (optimizing compiler, no
// metering; skipped when not built).
func BenchmarkWordcount(b *testing.B) {
	var text bytes.Buffer
	if err := textgen.Generate(&text, 1, benchTextBytes); err != nil {
		b.Fatal(err)
	}
	b.Run("native", func(b *testing.B) {
		in, out := b.TempDir(), b.TempDir()
		if err := os.WriteFile(filepath.Join(in, "corpus.txt"), text.Bytes(), 0o644); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(benchTextBytes)
		wasirun.ReportCPU(b, func() {
			var stdout, stderr bytes.Buffer
			if code := run(nil, nil, in, out, &stdout, &stderr); code != 0 {
				b.Fatal(stderr.String())
			}
		})
	})
	b.Run("wasm", func(b *testing.B) {
		ctx := context.Background()
		r, err := wasirun.New(ctx)
		if err != nil {
			b.Fatal(err)
		}
		defer r.Close(ctx)
		m := wasirun.Module(b, r, "wordcount.wasm")
		in := fstest.MapFS{"corpus.txt": {Data: text.Bytes()}}
		out := b.TempDir()
		b.SetBytes(benchTextBytes)
		wasirun.ReportCPU(b, func() {
			res, err := r.Run(ctx, m, wasirun.Job{In: in, OutDir: out})
			if err != nil || res.ExitCode != 0 {
				b.Fatalf("exit %d, %v: %s", res.ExitCode, err, res.Stderr)
			}
		})
	})
}
