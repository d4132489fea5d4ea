package vm

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// jobtoolWasm builds testdata/jobs/jobtool (a WASI command) once per test
// binary.
var jobtoolWasm = sync.OnceValues(func() ([]byte, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return nil, errNoGo
	}
	dir, err := os.MkdirTemp("", "vm-jobtool")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "jobtool.wasm")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, ".")
	cmd.Dir = filepath.Join("testdata", "jobs", "jobtool")
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=", "GOWORK=off")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("building the test job: %v\n%s", err, b)
	}
	return os.ReadFile(out)
})

func loadJobtool(tb testing.TB) []byte {
	tb.Helper()
	b, err := jobtoolWasm()
	if errors.Is(err, errNoGo) {
		tb.Skip("go tool not found")
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// jobVMs are shared by the tests of one binary: compiling the 3.8 MB test
// job takes seconds, and the module cache keeps it. Both share a wazero
// compilation cache directory, so the second VM loads the code the first
// compiled, as a node restarting would; TestMain removes it.
var jobVMs struct {
	sync.Mutex
	vms      [2]*VM
	cacheDir string
}

// testJobVM returns shared Jobs VM i (0 or 1).
func testJobVM(tb testing.TB, i int) *VM {
	tb.Helper()
	jobVMs.Lock()
	defer jobVMs.Unlock()
	if jobVMs.cacheDir == "" {
		dir, err := os.MkdirTemp("", "vm-job-cache")
		if err != nil {
			tb.Fatal(err)
		}
		jobVMs.cacheDir = dir
	}
	if jobVMs.vms[i] == nil {
		v, err := New(context.Background(), Config{Purpose: Jobs, CacheDir: jobVMs.cacheDir})
		if err != nil {
			tb.Fatal(err)
		}
		jobVMs.vms[i] = v
	}
	return jobVMs.vms[i]
}

// closeJobVMs ends the job VMs the tests shared (called by TestMain).
func closeJobVMs() {
	for _, v := range jobVMs.vms {
		if v != nil {
			v.Close(context.Background())
		}
	}
	if jobVMs.cacheDir != "" {
		os.RemoveAll(jobVMs.cacheDir)
	}
}

func testJobSpec(args ...string) JobSpec {
	return JobSpec{
		Args:        args,
		GasLimit:    20_000_000_000,
		MemoryLimit: 256 << 20,
		OutputLimit: 1 << 20,
		TimeMs:      1_700_000_000_123,
		Seed:        sha256.Sum256([]byte("test job seed")),
	}
}

// runJobtool runs the test job on v with spec.
func runJobtool(tb testing.TB, v *VM, spec JobSpec) JobResult {
	tb.Helper()
	wasm := loadJobtool(tb)
	res, err := v.RunJob(context.Background(), sha256.Sum256(wasm), JobBytes("", wasm), spec)
	if err != nil {
		tb.Fatalf("RunJob %q: %v", spec.Args, err)
	}
	return res
}
