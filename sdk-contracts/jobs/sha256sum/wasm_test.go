//go:build !wasip1

package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/sos-kernel/sos/sdk-contracts/jobs/internal/wasirun"
)

// TestWasm runs sha256sum.wasm (built by make contracts; skipped when it is
// not) as a WASI command in wazero and checks that it gives the same exit
// code, stdout, stderr and /out files as the native build on the same
// inputs.
func TestWasm(t *testing.T) {
	ctx := context.Background()
	r, err := wasirun.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	m := wasirun.Module(t, r, "sha256sum.wasm")
	files := map[string]string{
		"abc.txt": "abc", "empty": "", "a/long": strings.Repeat("sos job ", 300_000), "a.b/x.txt": "abc",
		"back\\slash": "1", "new\nline": "2",
	}
	for _, c := range []wasirun.Case{
		{Files: files},
		{Args: []string{"empty", "-", "a/long"}, Stdin: "abc", Files: files},
		{Stdin: "from stdin"},
		{Args: []string{"abc.txt", "nope", "a"}, Files: files},
		{Args: []string{"-c"}, Files: files},
	} {
		res, _ := wasirun.Same(t, r, m, run, c)
		t.Logf("%v: exit %d, %d bytes of stdout", c.Args, res.ExitCode, len(res.Stdout))
	}
}

// BenchmarkSha256sum hashes one 64 MiB input natively and as
// sha256sum.wasm in wazero (optimizing compiler, no metering; skipped when
// not built): the ratio is what Wasm costs before SOS adds its meter.
func BenchmarkSha256sum(b *testing.B) {
	data := make([]byte, 64<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	b.Run("native", func(b *testing.B) {
		in, out := b.TempDir(), b.TempDir()
		if err := os.WriteFile(filepath.Join(in, "data.bin"), data, 0o644); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(data)))
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
		m := wasirun.Module(b, r, "sha256sum.wasm")
		in := fstest.MapFS{"data.bin": {Data: data}}
		out := b.TempDir()
		b.SetBytes(int64(len(data)))
		wasirun.ReportCPU(b, func() {
			res, err := r.Run(ctx, m, wasirun.Job{In: in, OutDir: out})
			if err != nil || res.ExitCode != 0 {
				b.Fatalf("exit %d, %v: %s", res.ExitCode, err, res.Stderr)
			}
		})
	})
}
