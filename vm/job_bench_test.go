//go:build linux

package vm

import (
	"context"
	"crypto/sha256"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"golang.org/x/sys/unix"
)

var jobSHA256MiB = flag.Int("job-sha256-mib", 256, "input size of BenchmarkJobOverhead/sha256, MiB")

// BenchmarkJobStart measures the pickup of a job whose module is cached (the
// 3.8 MB test job, a Go program): from RunJob's call to the first
// instruction of the module (checks, module cache, file system, instance
// and memory), and back (closing). The second figure, trivial-job-ns/op,
// is a whole run of "hello", Go's runtime initialization included.
func BenchmarkJobStart(b *testing.B) {
	v := testJobVM(b, 0)
	wasm := loadJobtool(b)
	id := sha256.Sum256(wasm)
	ctx := context.Background()
	spec := testJobSpec("hello")
	spec.Inputs = testInputs()
	if res, err := v.RunJob(ctx, id, JobBytes("", wasm), spec); err != nil || res.ExitCode != 0 {
		b.Fatal(res.Status, err)
	}
	var run time.Duration
	for b.Loop() {
		r, _, err := v.startJob(ctx, id, JobBytes("", wasm), spec)
		if err != nil || r == nil {
			b.Fatal(err)
		}
		r.close()
	}
	b.StopTimer()
	const runs = 20
	for range runs {
		t0 := time.Now()
		if _, err := v.RunJob(ctx, id, JobBytes("", wasm), spec); err != nil {
			b.Fatal(err)
		}
		run += time.Since(t0)
	}
	b.ReportMetric(float64(run.Nanoseconds())/runs, "trivial-job-ns/op")
}

// BenchmarkJobOverhead runs the same CPU-bound WASI programs in the SOS
// executor (metered, the jobs' WASI and file system) and in plain wazero
// (the same optimizing compiler, unmetered, wazero's own WASI over a
// directory) and reports both and their ratio, in wall time and in the
// CPU time of the (locked) thread running the job, which holds better on
// a loaded machine.
//
// The programs: the test job's "mandel" and "sha256", and, when make
// contracts built them, the example jobs sdk-contracts/jobs/mandelbrot (its
// default 1024×768, 1,000 iterations) and sha256sum.
func BenchmarkJobOverhead(b *testing.B) {
	v := testJobVM(b, 0)
	ctx := context.Background()
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCoreFeatures(api.CoreFeaturesV2))
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	type program struct {
		wasm  []byte
		id    [32]byte
		plain wazero.CompiledModule
	}
	programs := map[string]*program{}
	load := func(b *testing.B, name string, wasm []byte) *program {
		if p := programs[name]; p != nil {
			return p
		}
		plain, err := rt.CompileModule(ctx, wasm)
		if err != nil {
			b.Fatal(err)
		}
		p := &program{wasm: wasm, id: sha256.Sum256(wasm), plain: plain}
		programs[name] = p
		return p
	}

	inDir, outDir := b.TempDir(), b.TempDir()
	input := filepath.Join(inDir, "input.bin")
	writeRandomFile(b, input, int64(*jobSHA256MiB)<<20)
	f, err := os.Open(input)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()

	for _, tc := range []struct {
		name    string
		program string // the test job, or an example job
		args    []string
	}{
		{"mandelbrot", "", []string{"mandel", "1024", "768", "256"}},
		{"sha256", "", []string{"sha256", "input.bin"}},
		{"example-mandelbrot", "mandelbrot", nil},
		{"example-sha256sum", "sha256sum", []string{"input.bin"}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var p *program
			if tc.program == "" {
				p = load(b, "jobtool", loadJobtool(b))
			} else {
				p = load(b, tc.program, exampleJob(b, tc.program))
			}
			wasm, id, plain := p.wasm, p.id, p.plain
			spec := testJobSpec(tc.args...)
			spec.GasLimit = 1 << 50
			spec.OutputLimit = 64 << 20
			spec.Inputs = []JobFile{{Name: "input.bin", Size: st.Size(), Data: f}}
			sos := func() (time.Duration, time.Duration) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				c0, t0 := threadCPU(), time.Now()
				res, err := v.RunJob(ctx, id, JobBytes("", wasm), spec)
				wall, cpu := time.Since(t0), threadCPU()-c0
				if err != nil || res.Status != JobExited || res.ExitCode != 0 {
					b.Fatalf("%v %d %v %s", res.Status, res.ExitCode, err, res.Stderr)
				}
				return wall, cpu
			}
			ref := func() (time.Duration, time.Duration) {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				c0, t0 := threadCPU(), time.Now()
				_, err := rt.InstantiateModule(ctx, plain, wazero.NewModuleConfig().WithName("").
					WithArgs(append([]string{"job"}, tc.args...)...).
					WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(inDir, "/in").WithDirMount(outDir, "/out")))
				wall, cpu := time.Since(t0), threadCPU()-c0
				if err != nil {
					b.Fatal(err)
				}
				return wall, cpu
			}
			sos() // warm: page cache, compiled code
			ref()
			var sw, sc, rw, rc time.Duration
			n := 0
			for b.Loop() {
				w, c := sos()
				sw, sc = sw+w, sc+c
				w, c = ref()
				rw, rc = rw+w, rc+c
				n++
			}
			b.ReportMetric(float64(sw.Nanoseconds())/float64(n), "sos-ns/op")
			b.ReportMetric(float64(rw.Nanoseconds())/float64(n), "wazero-ns/op")
			b.ReportMetric(float64(sw)/float64(rw), "ratio-wall")
			b.ReportMetric(float64(sc)/float64(rc), "ratio-cpu")
		})
	}
}

// threadCPU is the CPU time of the calling thread.
func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

// writeRandomFile writes size pseudo-random bytes to path.
func writeRandomFile(tb testing.TB, path string, size int64) {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	var x uint64 = 0x9e3779b97f4a7c15
	for size > 0 {
		for i := 0; i < len(buf); i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			for j := 0; j < 8; j++ {
				buf[i+j] = byte(x >> (8 * j))
			}
		}
		n := min(int64(len(buf)), size)
		if _, err := f.Write(buf[:n]); err != nil {
			tb.Fatal(err)
		}
		size -= n
	}
}
