//go:build !wasip1

package main

import (
	"context"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/jobs/internal/wasirun"
)

// TestWasm runs mandelbrot.wasm (built by make contracts; skipped when it
// is not) as a WASI command in wazero and checks that it writes the same
// PNG, byte for byte, and the same summary as the native build.
func TestWasm(t *testing.T) {
	ctx := context.Background()
	r, err := wasirun.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	m := wasirun.Module(t, r, "mandelbrot.wasm")
	for _, c := range []wasirun.Case{
		{Args: []string{"-width", "96", "-height", "72", "-iter", "300"}},
		{Args: []string{"-width", "80", "-height", "60", "-iter", "2000", "-xmin", "-0.7487", "-xmax", "-0.7387", "-ymin", "0.1", "-ymax", "0.1075"}},
		{Args: []string{"-width", "0"}},
	} {
		res, out := wasirun.Same(t, r, m, run, c)
		t.Logf("%v: exit %d, %s: %d bytes", c.Args, res.ExitCode, outFile, len(out[outFile]))
	}
}

// BenchmarkMandelbrot renders the default image (1024×768, 1000
// iterations: 133 million iterations of the inner loop) natively and as
// mandelbrot.wasm in wazero (optimizing compiler, no metering; skipped when
// not built).
func BenchmarkMandelbrot(b *testing.B) {
	b.Run("native", func(b *testing.B) {
		wasirun.ReportCPU(b, func() {
			if r := runJob(b); r.code != 0 {
				b.Fatal(r.stderr)
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
		m := wasirun.Module(b, r, "mandelbrot.wasm")
		out := b.TempDir()
		wasirun.ReportCPU(b, func() {
			res, err := r.Run(ctx, m, wasirun.Job{OutDir: out})
			if err != nil || res.ExitCode != 0 {
				b.Fatalf("exit %d, %v: %s", res.ExitCode, err, res.Stderr)
			}
		})
	})
}
