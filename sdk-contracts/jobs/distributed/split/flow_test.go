//go:build !wasip1

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/sos-kernel/sos/sdk-contracts/jobs/internal/wasirun"
)

// TestDistributedWordcount is the flow of ../README.md with wazero standing
// in for the providers: split a corpus into 3 parts, run wordcount.wasm
// -map on each (one job per lease), then wordcount.wasm -reduce on the
// three counts.tsv outputs, and compare with one wordcount.wasm job over
// the whole corpus. Skipped when wordcount.wasm is not built.
func TestDistributedWordcount(t *testing.T) {
	ctx := context.Background()
	r, err := wasirun.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	wc := wasirun.Module(t, r, "../../wordcount/wordcount.wasm")

	dir := t.TempDir()
	corpus := genText(t, 42, 2<<20)
	if err := os.WriteFile(filepath.Join(dir, "corpus.txt"), corpus, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-n", "3", "-o", filepath.Join(dir, "parts"), filepath.Join(dir, "corpus.txt")}, &stdout, &stderr); code != 0 {
		t.Fatalf("split: exit %d: %s", code, stderr.String())
	}

	job := func(args []string, in fstest.MapFS) (wasirun.Result, map[string]string) {
		t.Helper()
		out := t.TempDir()
		res, err := r.Run(ctx, wc, wasirun.Job{Args: args, In: in, OutDir: out})
		if err != nil || res.ExitCode != 0 {
			t.Fatalf("%v: exit %d, %v: %s", args, res.ExitCode, err, res.Stderr)
		}
		return res, wasirun.ReadTree(t, out)
	}

	reduceIn := fstest.MapFS{}
	for k := 1; k <= 3; k++ {
		part, err := os.ReadFile(filepath.Join(dir, "parts", fmt.Sprintf("corpus.part%d.txt", k)))
		if err != nil {
			t.Fatal(err)
		}
		res, out := job([]string{"-map"}, fstest.MapFS{"part.txt": {Data: part}})
		t.Logf("map %d: %s", k, res.Stdout)
		reduceIn[fmt.Sprintf("counts-%d.tsv", k)] = &fstest.MapFile{Data: []byte(out["counts.tsv"])}
	}
	reduced, reduceOut := job([]string{"-reduce", "-top", "20"}, reduceIn)
	whole, wholeOut := job([]string{"-top", "20"}, fstest.MapFS{"corpus.txt": {Data: corpus}})
	if string(reduced.Stdout) != string(whole.Stdout) || reduceOut["top.txt"] != wholeOut["top.txt"] || reduceOut["top.txt"] != string(whole.Stdout) {
		t.Fatalf("map/reduce top 20:\n%s\none job:\n%s", reduced.Stdout, whole.Stdout)
	}
	t.Logf("top 20 of %d bytes in 3 parts:\n%s", len(corpus), reduced.Stdout)
}
