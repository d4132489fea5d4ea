//go:build !wasip1

// Package wasirun runs a job's .wasm as a WASI command in plain wazero, laid
// out the way the SOS executor lays out a job (argv[0] "job", inputs
// read-only under /in, outputs under /out, stdin, stdout and stderr
// captured, wazero's fixed clock and seeded random), so that the tests of
// the example jobs can check that the built modules run and give the same
// outputs as the native build. It is test support: no job imports it.
package wasirun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// Job is one run: what the executor gives a job.
type Job struct {
	Args   []string // after argv[0]
	Env    []string // "K=V"
	Stdin  []byte
	In     fs.FS  // mounted read-only at /in; nil for none
	OutDir string // host directory mounted at /out; "" for none
}

// Result is how a run ended and what it printed.
type Result struct {
	ExitCode       uint32
	Stdout, Stderr []byte
}

// Runner compiles modules once and runs them in fresh instances.
type Runner struct {
	rt    wazero.Runtime
	cache wazero.CompilationCache // nil without a cache directory
}

// New returns a Runner using wazero's optimizing compiler where it exists.
// Close it when done. Compiling a Go module takes seconds, so compiled code
// is cached on disk in os.TempDir()/sos-wasirun-cache (wazero keys it by
// module hash and its own version) and later test runs load it in
// milliseconds.
func New(ctx context.Context) (*Runner, error) {
	r := &Runner{}
	cfg := wazero.NewRuntimeConfig()
	if cache, err := wazero.NewCompilationCacheWithDir(filepath.Join(os.TempDir(), "sos-wasirun-cache")); err == nil {
		r.cache = cache
		cfg = cfg.WithCompilationCache(cache)
	}
	r.rt = wazero.NewRuntimeWithConfig(ctx, cfg)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, r.rt); err != nil {
		r.Close(ctx)
		return nil, fmt.Errorf("wasirun: instantiate WASI: %w", err)
	}
	return r, nil
}

// Close releases the runtime and every compiled module.
func (r *Runner) Close(ctx context.Context) error {
	err := r.rt.Close(ctx)
	if r.cache != nil {
		err = errors.Join(err, r.cache.Close(ctx))
	}
	return err
}

// Compile compiles a module.
func (r *Runner) Compile(ctx context.Context, wasm []byte) (wazero.CompiledModule, error) {
	m, err := r.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, fmt.Errorf("wasirun: compile: %w", err)
	}
	return m, nil
}

// Run instantiates m, which runs its _start, and returns its exit code and
// output. A trap is an error; an exit code is not.
func (r *Runner) Run(ctx context.Context, m wazero.CompiledModule, job Job) (Result, error) {
	var stdout, stderr bytes.Buffer
	fsc := wazero.NewFSConfig()
	if job.In != nil {
		fsc = fsc.WithFSMount(job.In, "/in")
	}
	if job.OutDir != "" {
		fsc = fsc.WithDirMount(job.OutDir, "/out")
	}
	cfg := wazero.NewModuleConfig().
		WithName(""). // anonymous: instances of one module may coexist
		WithArgs(append([]string{"job"}, job.Args...)...).
		WithStdin(bytes.NewReader(job.Stdin)).
		WithStdout(&stdout).
		WithStderr(&stderr).
		WithFSConfig(fsc)
	for _, kv := range job.Env {
		k, v, _ := strings.Cut(kv, "=")
		cfg = cfg.WithEnv(k, v)
	}
	mod, err := r.rt.InstantiateModule(ctx, m, cfg)
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if mod != nil {
		mod.Close(ctx)
	}
	if exit, ok := errors.AsType[*sys.ExitError](err); ok {
		res.ExitCode = exit.ExitCode()
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("wasirun: run: %w (stderr %q)", err, stderr.Bytes())
	}
	return res, nil
}

// Module reads a job's .wasm at path (relative to the test's package
// directory) and compiles it, or skips the test when it has not been built.
// The module lives as long as r.
func Module(tb testing.TB, r *Runner, path string) wazero.CompiledModule {
	tb.Helper()
	wasm, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		tb.Skipf("%s not built (run make contracts)", filepath.Base(path))
	}
	if err != nil {
		tb.Fatal(err)
	}
	m, err := r.Compile(context.Background(), wasm)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// Native is the signature of a job's run function: the program with its
// environment passed in.
type Native func(args []string, stdin io.Reader, inDir, outDir string, stdout, stderr io.Writer) int

// Case is one job run for Same: files (slash paths) are the inputs.
type Case struct {
	Args  []string
	Stdin string
	Files map[string]string
}

// Same runs c through native, in temporary directories, and through m, with
// the inputs in an in-memory fs.FS, and fails tb unless both give the same
// exit code, stdout, stderr and files under /out. It returns the wasm run's
// result and its /out files.
func Same(tb testing.TB, r *Runner, m wazero.CompiledModule, native Native, c Case) (Result, map[string]string) {
	tb.Helper()
	in, nativeOut, wasmOut := tb.TempDir(), tb.TempDir(), tb.TempDir()
	mapFS := fstest.MapFS{}
	for name, data := range c.Files {
		p := filepath.Join(in, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			tb.Fatal(err)
		}
		mapFS[name] = &fstest.MapFile{Data: []byte(data), Mode: 0o444}
	}
	var stdout, stderr bytes.Buffer
	code := native(c.Args, strings.NewReader(c.Stdin), in, nativeOut, &stdout, &stderr)

	res, err := r.Run(context.Background(), m, Job{Args: c.Args, Stdin: []byte(c.Stdin), In: mapFS, OutDir: wasmOut})
	if err != nil {
		tb.Fatal(err)
	}
	if int(res.ExitCode) != code {
		tb.Errorf("%v: exit code %d in wasm, %d natively", c.Args, res.ExitCode, code)
	}
	if string(res.Stdout) != stdout.String() {
		tb.Errorf("%v: stdout in wasm:\n%s\nnatively:\n%s", c.Args, res.Stdout, stdout.String())
	}
	if string(res.Stderr) != stderr.String() {
		tb.Errorf("%v: stderr in wasm:\n%s\nnatively:\n%s", c.Args, res.Stderr, stderr.String())
	}
	wasmFiles, nativeFiles := ReadTree(tb, wasmOut), ReadTree(tb, nativeOut)
	if !maps.Equal(wasmFiles, nativeFiles) {
		tb.Errorf("%v: /out in wasm has %d files (%v), natively %d (%v), or their contents differ",
			c.Args, len(wasmFiles), slices.Sorted(maps.Keys(wasmFiles)), len(nativeFiles), slices.Sorted(maps.Keys(nativeFiles)))
	}
	return res, wasmFiles
}

// ReadTree returns the regular files under dir by slash path.
func ReadTree(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return files
}

// ReportCPU runs f b.N times (through b.Loop) and reports the process's CPU
// time per operation as "cpu-ns/op" beside the wall time.
func ReportCPU(b *testing.B, f func()) {
	b.Helper()
	start := CPUTime()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	if n > 0 {
		b.ReportMetric(float64(CPUTime()-start)/float64(n), "cpu-ns/op")
	}
}
