package vm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/sos-kernel/sos/internal/failpoint"
	"github.com/sos-kernel/sos/vm/wasmasm"
)

// testInputs are the inputs most job tests give.
func testInputs() []JobFile {
	return []JobFile{JobBytes("data.txt", []byte("some input data\n")), JobBytes("b.bin", bytes.Repeat([]byte{7}, 1000))}
}

func TestJobArgsEnvClockRandom(t *testing.T) {
	v := testJobVM(t, 0)
	spec := testJobSpec("args", "a b", "c")
	spec.Env = []string{"B=2", "A=1"}
	res := runJobtool(t, v, spec)
	want := "args [\"job\" \"args\" \"a b\" \"c\"]\nenv [\"A=1\" \"B=2\"]\nwd \"/in\" <nil>\n"
	if res.Status != JobExited || res.ExitCode != 0 || string(res.Stdout) != want {
		t.Fatalf("args: %v %d %v\n%s%s", res.Status, res.ExitCode, res.Err, res.Stdout, res.Stderr)
	}

	// The clock starts at TimeMs and advances by exactly what the job
	// sleeps; random_get, and with it crypto/rand, math/rand's seed and
	// map order, follows the seed.
	res = runJobtool(t, v, testJobSpec("rand"))
	out := string(res.Stdout)
	for _, line := range []string{"now 2023-11-14T22:13:20.123Z unix_ms 1700000000123\n", "slept 1.5s\n", "after 2023-11-14T22:13:21.623Z\n"} {
		if !strings.Contains(out, line) {
			t.Errorf("rand: no %q in\n%s", line, out)
		}
	}
	spec = testJobSpec("rand")
	spec.Seed[0]++
	spec.TimeMs += 1000
	other := string(runJobtool(t, v, spec).Stdout)
	for _, prefix := range []string{"crypto/rand ", "math/rand ", "now "} {
		if line(out, prefix) == line(other, prefix) {
			t.Errorf("another seed and time, same %q", line(out, prefix))
		}
	}
}

func line(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

// TestJobDeterminism runs the same jobs twice on one VM and once on another
// VM and requires identical results, bit for bit.
func TestJobDeterminism(t *testing.T) {
	specs := map[string]JobSpec{}
	for _, args := range [][]string{
		{"rand"}, {"fsops"}, {"sha256", "data.txt", "b.bin"}, {"mandel", "64", "48", "50"},
		{"exit", "3"}, {"panic", "now"}, {"hog", "64"}, {"loop"}, {"flood", "100000"}, {"recurse", "100000"},
	} {
		spec := testJobSpec(args...)
		spec.Inputs = testInputs()
		switch args[0] {
		case "hog":
			spec.MemoryLimit = 32 << 20
		case "loop":
			spec.GasLimit = 5_000_000
		}
		specs[strings.Join(args, " ")] = spec
	}
	v0, v1 := testJobVM(t, 0), testJobVM(t, 1)
	for name, spec := range specs {
		a := runJobtool(t, v0, spec)
		b := runJobtool(t, v0, spec)
		c := runJobtool(t, v1, spec)
		for _, r := range []*JobResult{&a, &b, &c} {
			r.Err = nil // text, not consensus
		}
		if !reflect.DeepEqual(a, b) || !reflect.DeepEqual(a, c) {
			t.Errorf("%s: results differ:\n%+v\n%+v\n%+v", name, a, b, c)
		}
		t.Logf("%-20s %-14v exit %d gas %d", name, a.Status, a.ExitCode, a.GasUsed)
	}
}

func TestJobExitCodesAndTraps(t *testing.T) {
	v := testJobVM(t, 0)
	for _, tc := range []struct {
		args   []string
		status JobStatus
		code   int32
		stderr string
		err    error
	}{
		{[]string{"hello"}, JobExited, 0, "", nil},
		{[]string{"exit", "0"}, JobExited, 0, "", nil},
		{[]string{"exit", "3"}, JobExited, 3, "", nil},
		{[]string{"exit", "255"}, JobExited, 255, "", nil},
		{[]string{"panic", "on", "purpose"}, JobExited, 2, "panic: job panics: on purpose", nil}, // Go's runtime exits 2
		{[]string{"trap"}, JobExited, 2, "assignment to entry in nil map", nil},
		{[]string{"recurse", "1000"}, JobExited, 0, "", nil},
		{[]string{"recurse", "1000000"}, JobTrapped, 0, "", ErrTrap}, // the call depth limit
		{[]string{"nosuchcommand"}, JobExited, 2, "unknown command", nil},
	} {
		res := runJobtool(t, v, testJobSpec(tc.args...))
		if res.Status != tc.status || res.ExitCode != tc.code || !strings.Contains(string(res.Stderr), tc.stderr) ||
			(tc.err == nil) != (res.Err == nil) || (tc.err != nil && !errors.Is(res.Err, tc.err)) {
			t.Errorf("%q: %v exit %d err %v, stderr %q; want %v exit %d err %v, stderr with %q",
				tc.args, res.Status, res.ExitCode, res.Err, res.Stderr, tc.status, tc.code, tc.err, tc.stderr)
		}
		if res.GasUsed == 0 {
			t.Errorf("%q: no gas used", tc.args)
		}
	}
}

func TestJobOutOfGasExactly(t *testing.T) {
	v := testJobVM(t, 0)
	spec := testJobSpec("sha256", "data.txt", "b.bin")
	spec.Inputs = testInputs()
	full := runJobtool(t, v, spec)
	if full.Status != JobExited || full.ExitCode != 0 {
		t.Fatalf("%v %d %s", full.Status, full.ExitCode, full.Stderr)
	}
	spec.GasLimit = full.GasUsed
	if res := runJobtool(t, v, spec); res.Status != JobExited || res.GasUsed != full.GasUsed || !bytes.Equal(res.Stdout, full.Stdout) {
		t.Fatalf("with exactly the gas it needs: %v gas %d (want %d), err %v", res.Status, res.GasUsed, full.GasUsed, res.Err)
	}
	spec.GasLimit = full.GasUsed - 1
	res := runJobtool(t, v, spec)
	if res.Status != JobOutOfGas || res.GasUsed != spec.GasLimit || !errors.Is(res.Err, ErrOutOfGas) {
		t.Fatalf("with one gas less: %v gas %d err %v", res.Status, res.GasUsed, res.Err)
	}
	spec = testJobSpec("loop")
	spec.GasLimit = 50_000_000
	if res := runJobtool(t, v, spec); res.Status != JobOutOfGas || res.GasUsed != spec.GasLimit {
		t.Fatalf("loop: %v gas %d err %v", res.Status, res.GasUsed, res.Err)
	}
}

func TestJobMemoryLimit(t *testing.T) {
	v := testJobVM(t, 0)
	spec := testJobSpec("hog", "64")
	spec.MemoryLimit = 32 << 20
	res := runJobtool(t, v, spec)
	// memory.grow fails, Go's runtime stops ("out of memory", exit 2), and
	// the limit is the cause.
	if res.Status != JobLimitExceeded || res.ExitCode != 2 || !errors.Is(res.Err, ErrLimit) || !strings.Contains(res.Err.Error(), "memory limit") ||
		!strings.Contains(string(res.Stderr), "out of memory") || res.MemoryBytes > spec.MemoryLimit {
		t.Fatalf("64 MiB in 32 MiB: %v exit %d err %v memory %d\n%.300s", res.Status, res.ExitCode, res.Err, res.MemoryBytes, res.Stderr)
	}
	spec.MemoryLimit = 256 << 20
	res = runJobtool(t, v, spec)
	if res.Status != JobExited || res.ExitCode != 0 || res.MemoryBytes < 64<<20 || res.MemoryBytes > spec.MemoryLimit {
		t.Fatalf("64 MiB in 256 MiB: %v %d err %v memory %d\n%s", res.Status, res.ExitCode, res.Err, res.MemoryBytes, res.Stderr)
	}
	// A module whose initial memory exceeds the limit does not start.
	spec = testJobSpec("hello")
	spec.MemoryLimit = 64 << 10
	res = runJobtool(t, v, spec)
	if res.Status != JobLimitExceeded || res.GasUsed != 0 || !errors.Is(res.Err, ErrLimit) {
		t.Fatalf("one page: %v gas %d err %v", res.Status, res.GasUsed, res.Err)
	}
}

func TestJobOutputLimit(t *testing.T) {
	v := testJobVM(t, 0)
	spec := testJobSpec("write", "/out/big", "2500")
	spec.OutputLimit = 1000
	res := runJobtool(t, v, spec)
	// The write that does not fit fails with ENOSPC, the job gives up
	// (exit 1), and the limit is the cause.
	if res.Status != JobLimitExceeded || res.ExitCode != 1 || !errors.Is(res.Err, ErrLimit) ||
		!strings.Contains(strings.ToLower(string(res.Stderr)), "no space left on device") {
		t.Fatalf("2500 bytes in 1000: %v %d %v %s", res.Status, res.ExitCode, res.Err, res.Stderr)
	}
	if len(res.Outputs) != 1 || res.Outputs[0].Path != "big" || len(res.Outputs[0].Data) != 1000 || res.Outputs[0].Data[999] != 'a'+999%26 {
		t.Fatalf("outputs %+v", res.Outputs)
	}
	spec.OutputLimit = 2500
	if res := runJobtool(t, v, spec); res.Status != JobExited || res.ExitCode != 0 || res.OutputBytes() != 2500 {
		t.Fatalf("2500 bytes in 2500: %v %d %s", res.Status, res.ExitCode, res.Stderr)
	}
	// A job that copes with ENOSPC and exits 0 has exited.
	spec = testJobSpec("fill")
	spec.OutputLimit = 4500
	if res := runJobtool(t, v, spec); res.Status != JobExited || res.ExitCode != 0 || res.OutputBytes() != 4500 ||
		!strings.Contains(strings.ToLower(string(res.Stdout)), "wrote 4500 bytes: no space left on device") {
		t.Fatalf("fill: %v %d %v %q", res.Status, res.ExitCode, res.Err, res.Stdout)
	}

	// Files: MaxJobOutputFiles, then EDQUOT; listings of more entries than
	// one fd_readdir buffer holds stay complete and sorted.
	spec = testJobSpec("many", "300")
	res = runJobtool(t, v, spec)
	if res.Status != JobLimitExceeded || res.ExitCode != 1 || !strings.Contains(strings.ToLower(string(res.Stderr)), "quota exceeded") || len(res.Outputs) != MaxJobOutputFiles {
		t.Fatalf("300 files: %v %d %d outputs %s", res.Status, res.ExitCode, len(res.Outputs), res.Stderr)
	}
	if want := fmt.Sprintf("listed %d: 0000 .. %04d\n", MaxJobOutputFiles, MaxJobOutputFiles-1); string(res.Stdout) != want {
		t.Fatalf("listing %q, want %q", res.Stdout, want)
	}
	for i, o := range res.Outputs {
		if o.Path != fmt.Sprintf("many/%04d", i) {
			t.Fatalf("output %d is %q", i, o.Path)
		}
	}
}

func TestJobStdinAndLogs(t *testing.T) {
	v := testJobVM(t, 0)
	in := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16)
	spec := testJobSpec("cat")
	spec.Stdin = JobBytes("", in)
	res := runJobtool(t, v, spec)
	if res.Status != JobExited || res.StdoutBytes != uint64(len(in)) || !bytes.Equal(res.Stdout, in[:MaxJobLogBytes]) ||
		res.BytesRead != uint64(len(in)) || string(res.Stderr) != fmt.Sprintf("stdin: %d bytes, <nil>\n", len(in)) {
		t.Fatalf("cat of 3 MiB: %v stdout %d of %d, read %d, stderr %q", res.Status, len(res.Stdout), res.StdoutBytes, res.BytesRead, res.Stderr)
	}
	spec = testJobSpec("cat", "data.txt", "/in/b.bin")
	spec.Inputs = testInputs()
	res = runJobtool(t, v, spec)
	if want := append([]byte("some input data\n"), bytes.Repeat([]byte{7}, 1000)...); !bytes.Equal(res.Stdout, want) || res.BytesRead != uint64(len(want)) {
		t.Fatalf("cat of inputs: %q, read %d", res.Stdout, res.BytesRead)
	}
	res = runJobtool(t, v, testJobSpec("flood", "3000000"))
	if res.StdoutBytes != 3000000 || res.StderrBytes != 1500000 || len(res.Stdout) != MaxJobLogBytes || len(res.Stderr) != MaxJobLogBytes {
		t.Fatalf("flood: stdout %d of %d, stderr %d of %d", len(res.Stdout), res.StdoutBytes, len(res.Stderr), res.StderrBytes)
	}
}

// TestJobNoHostFiles: nothing outside /in and /out is reachable, whatever
// the path.
func TestJobNoHostFiles(t *testing.T) {
	v := testJobVM(t, 0)
	spec := testJobSpec("escape")
	spec.Inputs = testInputs()
	res := runJobtool(t, v, spec)
	want := `open /etc/passwd: Bad file number
open /in/../etc/passwd: Bad file number
open /in/../../etc/passwd: Bad file number
open ../etc/passwd: Bad file number
open /: Bad file number
open /tmp: Bad file number
open /proc/self/environ: Bad file number
open /out/../in: ok, dir [b.bin data.txt] <nil>
open /in/./: ok, dir [b.bin data.txt] <nil>
create /out/../../tmp/x: open /out/../../tmp/x: Bad file number
create /in/new: open /in/new: Read-only file system
create /tmp/x: open /tmp/x: Bad file number
create /out/../in/x: open /out/../in/x: Read-only file system
`
	if string(res.Stdout) != want || len(res.Outputs) != 0 {
		t.Fatalf("got\n%s\noutputs %v", res.Stdout, res.Outputs)
	}
	// Go's os package cleans paths before it calls path_open; jobfs_test.go
	// checks the raw paths ("../x", "/etc") against the preopens.
	res = runJobtool(t, v, testJobSpec("links"))
	if want := "symlink: symlink: Not supported\nlink: link: Not supported\n"; string(res.Stdout) != want {
		t.Fatalf("links: %q", res.Stdout)
	}
}

// TestJobFSMatchesPOSIX runs the file system exercise under the jobs' WASI
// and under wazero's WASI over real directories, which answers as the
// host's POSIX file system does, and requires the same transcript.
func TestJobFSMatchesPOSIX(t *testing.T) {
	v := testJobVM(t, 0)
	wasm := loadJobtool(t)
	spec := testJobSpec("fsops")
	spec.Inputs = testInputs()
	ours := runJobtool(t, v, spec)

	ctx := context.Background()
	in, out := t.TempDir(), t.TempDir()
	for _, f := range spec.Inputs {
		b := make([]byte, f.Size)
		f.Data.ReadAt(b, 0)
		if err := os.WriteFile(filepath.Join(in, f.Name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfigInterpreter())
	defer rt.Close(ctx)
	wasi_snapshot_preview1.MustInstantiate(ctx, rt)
	var stdout, stderr bytes.Buffer
	_, err := rt.InstantiateWithConfig(ctx, wasm, wazero.NewModuleConfig().WithArgs("job", "fsops").
		WithStdout(&stdout).WithStderr(&stderr).
		WithFSConfig(wazero.NewFSConfig().WithReadOnlyDirMount(in, "/in").WithDirMount(out, "/out")))
	if err != nil {
		t.Fatalf("wazero: %v\n%s", err, stderr.Bytes())
	}
	if ours.Status != JobExited || ours.ExitCode != 0 || !bytes.Equal(ours.Stdout, stdout.Bytes()) {
		t.Fatalf("transcripts differ: ours (%v %d)\n%s\nPOSIX\n%s", ours.Status, ours.ExitCode, ours.Stdout, stdout.Bytes())
	}
	for _, o := range ours.Outputs {
		b, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(o.Path)))
		if err != nil || !bytes.Equal(b, o.Data) {
			t.Errorf("output %s: %q, POSIX %q %v", o.Path, o.Data, b, err)
		}
	}
}

// TestJobOtherToolchains runs WASI commands built by Rust's std
// (cargo-wasi) and by C with wasi-libc (zig cc), from wazero's test data.
func TestJobOtherToolchains(t *testing.T) {
	dir := wazeroDir(t)
	v := testJobVM(t, 0)
	data := "some input data\n"
	for _, tc := range []struct {
		file   string
		args   []string
		stdin  string
		stdout string
		code   int32
	}{
		{"imports/wasi_snapshot_preview1/example/testdata/cargo-wasi/cat.wasm", []string{"/in/data.txt"}, "", data, 0},
		{"imports/wasi_snapshot_preview1/example/testdata/cargo-wasi/cat.wasm", []string{"data.txt"}, "", "", 1},
		{"imports/wasi_snapshot_preview1/example/testdata/zig-cc/cat.wasm", []string{"/in/data.txt", "/in/data.txt"}, "", data + data, 0},
		{"imports/wasi_snapshot_preview1/testdata/cargo-wasi/wasi.wasm", []string{"ls", "/in"}, "", "/in/b.bin\n/in/data.txt\n", 0},
		{"imports/wasi_snapshot_preview1/testdata/cargo-wasi/wasi.wasm", []string{"ls", "/in/data.txt"}, "", "ENOTDIR\n", 0},
		{"imports/wasi_snapshot_preview1/testdata/cargo-wasi/wasi.wasm", []string{"stat"}, "",
			"stdin isatty: false\nstdout isatty: false\nstderr isatty: false\n/ isatty: false\n", 0}, // logs, not a terminal
		{"imports/wasi_snapshot_preview1/testdata/zig-cc/wasi.wasm", []string{"ls", "/in", "repeat"}, "",
			"./b.bin\n./data.txt\n./b.bin\n./data.txt\n", 0},
		{"imports/wasi_snapshot_preview1/testdata/zig-cc/wasi.wasm", []string{"poll", "1", "0"}, "x", "STDIN\n", 0},
		{"imports/wasi_snapshot_preview1/testdata/zig-cc/wasi.wasm", []string{"sleepmillis", "500"}, "", "OK\n", 0},
	} {
		wasm, err := os.ReadFile(filepath.Join(dir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		spec := testJobSpec(tc.args...)
		spec.Inputs = testInputs()
		spec.Stdin = JobBytes("", []byte(tc.stdin))
		res, err := v.RunJob(context.Background(), sha256.Sum256(wasm), JobBytes("", wasm), spec)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != JobExited || res.ExitCode != tc.code || (tc.code == 0 && string(res.Stdout) != tc.stdout) {
			t.Errorf("%s %q: %v %d err %v\nstdout %q\nstderr %q", filepath.Base(filepath.Dir(tc.file)), tc.args,
				res.Status, res.ExitCode, res.Err, res.Stdout, res.Stderr)
		}
	}
}

// wazeroDir is the module directory of the wazero this module builds with.
func wazeroDir(t *testing.T) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/tetratelabs/wazero").Output()
	dir := strings.TrimSpace(string(out))
	if err != nil || dir == "" {
		t.Skipf("wazero's module directory: %v", err)
	}
	return dir
}

// failingReader fails every read after the first n bytes.
type failingReader struct {
	data []byte
	n    int64
}

func (r failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > r.n {
		return 0, errors.New("disk on fire")
	}
	return copy(p, r.data[off:]), nil
}

func TestJobInputFailures(t *testing.T) {
	v := testJobVM(t, 0)
	wasm := loadJobtool(t)
	id := sha256.Sum256(wasm)
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), 200_000)
	for name, in := range map[string]JobFile{
		"failing": {Name: "data.txt", Size: int64(len(big)), Data: failingReader{big, 100_000}},
		"short":   {Name: "data.txt", Size: int64(len(big)) + 10, Data: byteReaderAt(big)},
	} {
		spec := testJobSpec("sha256", "data.txt")
		spec.Inputs = []JobFile{in}
		if _, err := v.RunJob(ctx, id, JobBytes("", wasm), spec); !errors.Is(err, ErrJobInput) {
			t.Errorf("%s input: %v", name, err)
		}
		spec = testJobSpec("cat")
		spec.Stdin = in
		if _, err := v.RunJob(ctx, id, JobBytes("", wasm), spec); !errors.Is(err, ErrJobInput) {
			t.Errorf("%s stdin: %v", name, err)
		}
	}

	disable, err := failpoint.Enable(failpoint.JobInputRead, "return")
	if err != nil {
		t.Fatal(err)
	}
	spec := testJobSpec("cat", "data.txt")
	spec.Inputs = testInputs()
	_, err = v.RunJob(ctx, id, JobBytes("", wasm), spec)
	disable()
	if !errors.Is(err, ErrJobInput) || failpoint.Count(failpoint.JobInputRead) != 0 {
		t.Fatalf("failpoint: %v", err)
	}
	if res, err := v.RunJob(ctx, id, JobBytes("", wasm), spec); err != nil || string(res.Stdout) != "some input data\n" {
		t.Fatalf("after the failpoint: %v %q", err, res.Stdout)
	}

	// An unreadable module is the host's failure and is not cached as
	// invalid.
	other := append(bytes.Clone(wasm), 0, 0) // a custom section would be valid; trailing bytes are not read
	otherID := sha256.Sum256(other)
	if _, err := v.RunJob(ctx, otherID, JobFile{Size: int64(len(wasm)), Data: failingReader{wasm, 100}}, testJobSpec("hello")); !errors.Is(err, ErrJobInput) {
		t.Fatalf("unreadable module: %v", err)
	}
	if _, err := v.RunJob(ctx, otherID, JobFile{Size: 10, Data: byteReaderAt(wasm[:5])}, testJobSpec("hello")); !errors.Is(err, ErrJobInput) {
		t.Fatalf("short module: %v", err)
	}
}

// cancelReader cancels a context when it is first read.
type cancelReader struct {
	data   []byte
	cancel context.CancelFunc
}

func (r cancelReader) ReadAt(p []byte, off int64) (int, error) {
	r.cancel()
	return byteReaderAt(r.data).ReadAt(p, off)
}

func TestJobCancel(t *testing.T) {
	v := testJobVM(t, 0)
	wasm := loadJobtool(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.RunJob(ctx, sha256.Sum256(wasm), JobBytes("", wasm), testJobSpec("hello")); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	spec := testJobSpec("cat")
	in := bytes.Repeat([]byte("y"), 1<<20)
	spec.Stdin = JobFile{Size: int64(len(in)), Data: cancelReader{in, cancel}}
	if _, err := v.RunJob(ctx, sha256.Sum256(wasm), JobBytes("", wasm), spec); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled while running: %v", err)
	}
}

func TestJobSpecErrors(t *testing.T) {
	v := testJobVM(t, 0)
	wasm := loadJobtool(t)
	id := sha256.Sum256(wasm)
	for name, tc := range map[string]struct {
		mod    JobFile
		modify func(*JobSpec)
		want   error
	}{
		"no module":           {JobFile{}, func(*JobSpec) {}, nil},
		"module too large":    {JobFile{Size: DefaultMaxJobModuleBytes + 1, Data: byteReaderAt(wasm)}, func(*JobSpec) {}, ErrLimit},
		"gas above max":       {JobBytes("", wasm), func(s *JobSpec) { s.GasLimit = 1 << 60 }, ErrLimit},
		"no memory":           {JobBytes("", wasm), func(s *JobSpec) { s.MemoryLimit = 0 }, ErrLimit},
		"memory above cap":    {JobBytes("", wasm), func(s *JobSpec) { s.MemoryLimit = DefaultMaxJobMemoryBytes + 65536 }, ErrLimit},
		"too many args":       {JobBytes("", wasm), func(s *JobSpec) { s.Args = make([]string, MaxJobArgs+1) }, ErrLimit},
		"args too long":       {JobBytes("", wasm), func(s *JobSpec) { s.Args = []string{strings.Repeat("a", MaxJobArgBytes)} }, ErrLimit},
		"NUL in an argument":  {JobBytes("", wasm), func(s *JobSpec) { s.Args = []string{"a\x00b"} }, nil},
		"env without =":       {JobBytes("", wasm), func(s *JobSpec) { s.Env = []string{"PATH"} }, nil},
		"input name with /":   {JobBytes("", wasm), func(s *JobSpec) { s.Inputs = []JobFile{JobBytes("a/b", nil)} }, nil},
		"input named ..":      {JobBytes("", wasm), func(s *JobSpec) { s.Inputs = []JobFile{JobBytes("..", nil)} }, nil},
		"input given twice":   {JobBytes("", wasm), func(s *JobSpec) { s.Inputs = []JobFile{JobBytes("a", nil), JobBytes("a", nil)} }, nil},
		"input without data":  {JobBytes("", wasm), func(s *JobSpec) { s.Inputs = []JobFile{{Name: "a", Size: 3}} }, nil},
		"input name not UTF8": {JobBytes("", wasm), func(s *JobSpec) { s.Inputs = []JobFile{JobBytes("\xff", nil)} }, nil},
		"too many inputs":     {JobBytes("", wasm), func(s *JobSpec) { s.Inputs = make([]JobFile, MaxJobInputs+1) }, ErrLimit},
		"stdin without data":  {JobBytes("", wasm), func(s *JobSpec) { s.Stdin = JobFile{Size: 1} }, nil},
	} {
		spec := testJobSpec("hello")
		tc.modify(&spec)
		_, err := v.RunJob(context.Background(), id, tc.mod, spec)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || !strings.HasPrefix(err.Error(), "vm: ") {
			t.Errorf("%s: %v, want an error wrapping %v", name, err, tc.want)
		}
	}
}

func TestJobPurposes(t *testing.T) {
	v := testJobVM(t, 0)
	if _, _, err := v.Prepare(context.Background(), testCode, simple(0x41, 0, 0x0b).bytes(), MaxUploadGas); err == nil {
		t.Error("Prepare on a Jobs VM")
	}
	if _, err := v.Call(context.Background(), testCode, []byte{}, "execute", nil, testEnv(), newFakeHost(), 1000); err == nil {
		t.Error("Call on a Jobs VM")
	}
	c := newVM(t, Config{})
	if _, err := c.RunJob(context.Background(), testCode, JobBytes("", []byte{0}), testJobSpec()); err == nil {
		t.Error("RunJob on a contracts VM")
	}
	if _, err := New(context.Background(), Config{Purpose: Jobs, MaxJobMemoryBytes: MaxJobMemoryBytes + 1}); err == nil {
		t.Error("a memory cap above 4 GiB")
	}
	if got := v.Limits().MemoryPages; got != DefaultMaxJobMemoryBytes/65536 {
		t.Errorf("Limits().MemoryPages = %d", got)
	}
	if Jobs.String() != "jobs" || JobLimitExceeded.String() != "limit_exceeded" {
		t.Error("names")
	}
}

// Hand-written job modules for what Go does not emit.

const tVoid = 0x40

// wasiImport imports a function of wasi_snapshot_preview1 with type t.
func wasiImport(fn string, t uint32) []byte {
	return cat(name("wasi_snapshot_preview1"), name(fn), []byte{0}, u32(t))
}

// fdWriteTypes: type 0 () -> (), type 1 fd_write's.
var fdWriteTypes = [][]byte{functype(nil, nil), functype([]byte{tI32, tI32, tI32, tI32}, []byte{tI32})}

// writeHi calls fd_write(1, iovec at 0, 1, nwritten at 8): the data
// segments put the iovec {16, 2} at 0.
var writeHi = []byte{0x41, 1, 0x41, 0, 0x41, 1, 0x41, 8, 0x10, 0, 0x1a}

// dataSegment is an active segment at off (flag 0) or a passive one
// (flag 1).
func dataSegment(flag byte, off int32, b []byte) []byte {
	if flag == 1 {
		return cat([]byte{1}, u32(uint32(len(b))), b)
	}
	return cat([]byte{0, 0x41}, wasmasm.S32(off), []byte{0x0b}, u32(uint32(len(b))), b)
}

func TestJobHandWrittenModules(t *testing.T) {
	v := testJobVM(t, 0)
	iovec := []byte{16, 0, 0, 0, 2, 0, 0, 0}
	start := func(instrs ...byte) asmModule {
		return asmModule{types: [][]byte{functype(nil, nil)}, bodies: [][]byte{body(append(instrs, 0x0b)...)}, exports: [][]byte{exportFunc("_start", 0)}}
	}
	hi := asmModule{types: fdWriteTypes, imports: [][]byte{wasiImport("fd_write", 1)}, funcTypes: []uint32{0},
		bodies: [][]byte{body(append(writeHi, 0x0b)...)}, exports: [][]byte{exportFunc("_start", 1)},
		data: vec(dataSegment(0, 0, iovec), dataSegment(0, 16, []byte("hi")))}
	passive := hi
	passive.bodies = [][]byte{body(append([]byte{0x41, 16, 0x41, 0, 0x41, 2, 0xfc, 8, 1, 0}, append(writeHi, 0x0b)...)...)}
	passive.dataCount = u32(2)
	passive.data = vec(dataSegment(0, 0, iovec), dataSegment(1, 0, []byte("hi")))
	startSection := hi
	startSection.bodies = append(startSection.bodies, body(append(writeHi, 0x0b)...))
	startSection.funcTypes = []uint32{0, 0}
	startSection.start = u32(2)
	simd := start(0xfd, 0x0c, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x1a)

	for name, tc := range map[string]struct {
		mod    asmModule
		status JobStatus
		err    error
		stdout string
	}{
		"writes hi":                {hi, JobExited, nil, "hi"},
		"passive data segment":     {passive, JobExited, nil, "hi"},
		"start section runs first": {startSection, JobExited, nil, "hihi"},
		"unreachable":              {start(0x00), JobTrapped, ErrTrap, ""},
		"infinite loop":            {start(0x03, tVoid, 0x0c, 0, 0x0b), JobOutOfGas, ErrOutOfGas, ""},
		"grow within the limit":    {start(0x41, 3, 0x40, 0, 0x1a), JobExited, nil, ""},
		// memory.grow(100) beyond 10 pages returns -1 (else unreachable);
		// the module copes, so it exits 0.
		"grow beyond the limit": {start(0x41, 0xe4, 0x00, 0x40, 0, 0x41, 0x7f, 0x47, 0x04, tVoid, 0x00, 0x0b), JobExited, nil, ""},
		// ... and fails when it does not.
		"grow beyond the limit, then trap": {start(0x41, 0xe4, 0x00, 0x40, 0, 0x41, 0x7f, 0x46, 0x04, tVoid, 0x00, 0x0b), JobLimitExceeded, ErrLimit, ""},
		"data segment out of bounds":       {asmModule{types: [][]byte{functype(nil, nil)}, bodies: [][]byte{body(0x0b)}, exports: [][]byte{exportFunc("_start", 0)}, data: vec(dataSegment(0, 65535, []byte("xy")))}, JobTrapped, ErrTrap, ""},
		"no _start":                        {asmModule{types: [][]byte{functype(nil, nil)}, bodies: [][]byte{body(0x0b)}, exports: [][]byte{exportFunc("main", 0)}}, JobTrapped, ErrInvalidModule, ""},
		"_start returns a value":           {asmModule{bodies: [][]byte{body(0x41, 0, 0x0b)}, exports: [][]byte{exportFunc("_start", 0)}}, JobTrapped, ErrInvalidModule, ""},
		"imports the contract ABI":         {asmModule{types: [][]byte{functype(nil, nil), functype(nil, []byte{tI32})}, imports: [][]byte{cat(name("sos"), name("input_len"), []byte{0}, u32(1))}, bodies: [][]byte{body(0x0b)}, exports: [][]byte{exportFunc("_start", 1)}}, JobTrapped, ErrInvalidModule, ""},
		"wrong WASI signature":             {asmModule{types: [][]byte{functype(nil, nil)}, imports: [][]byte{wasiImport("fd_write", 0)}, bodies: [][]byte{body(0x0b)}, exports: [][]byte{exportFunc("_start", 1)}}, JobTrapped, ErrInvalidModule, ""},
		"no memory":                        {asmModule{types: [][]byte{functype(nil, nil)}, noMemory: true, bodies: [][]byte{body(0x0b)}, exports: [][]byte{exportFunc("_start", 0)}}, JobTrapped, ErrInvalidModule, ""},
		"SIMD":                             {simd, JobTrapped, ErrInvalidModule, ""},
		"reserved export name":             {asmModule{types: [][]byte{functype(nil, nil)}, bodies: [][]byte{body(0x0b)}, exports: [][]byte{exportFunc("_start", 0), exportFunc("sos_gas", 0)}}, JobTrapped, ErrInvalidModule, ""},
	} {
		wasm := tc.mod.bytes()
		spec := testJobSpec()
		spec.MemoryLimit = 10 * 65536
		spec.GasLimit = 100_000_000
		res, err := v.RunJob(context.Background(), sha256.Sum256(wasm), JobBytes("", wasm), spec)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if res.Status != tc.status || (tc.err == nil) != (res.Err == nil) || (tc.err != nil && !errors.Is(res.Err, tc.err)) || string(res.Stdout) != tc.stdout {
			t.Errorf("%s: %v err %v stdout %q; want %v err %v stdout %q", name, res.Status, res.Err, res.Stdout, tc.status, tc.err, tc.stdout)
		}
		if errors.Is(tc.err, ErrInvalidModule) && res.GasUsed != 0 {
			t.Errorf("%s: an invalid module used %d gas", name, res.GasUsed)
		}
	}
	// Bytes that are not a module at all, and a contract (a WASI reactor
	// importing the contract ABI).
	for name, wasm := range map[string][]byte{"garbage": []byte("not wasm at all"), "contract": loadContract(t)} {
		res, err := v.RunJob(context.Background(), sha256.Sum256(wasm), JobBytes("", wasm), testJobSpec())
		if err != nil || res.Status != JobTrapped || !errors.Is(res.Err, ErrInvalidModule) {
			t.Errorf("%s: %v %v %v", name, res.Status, res.Err, err)
		}
	}
}

// TestJobConcurrent: runs sharing a VM (its compiled module and memory
// image) do not see each other.
func TestJobConcurrent(t *testing.T) {
	v := testJobVM(t, 0)
	var specs []JobSpec
	for i := range 6 {
		spec := testJobSpec("fsops")
		if i%2 == 1 {
			spec = testJobSpec("rand")
		}
		spec.Seed[1] = byte(i)
		spec.Inputs = testInputs()
		specs = append(specs, spec)
	}
	want := make([]JobResult, len(specs))
	for i, spec := range specs {
		want[i] = runJobtool(t, v, spec)
	}
	got := make([]JobResult, len(specs))
	done := make(chan int)
	for i, spec := range specs {
		go func() {
			wasm := loadJobtool(t)
			got[i], _ = v.RunJob(context.Background(), sha256.Sum256(wasm), JobBytes("", wasm), spec)
			done <- i
		}()
	}
	for range specs {
		<-done
	}
	for i := range specs {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("run %d concurrently: %+v\nalone: %+v", i, got[i], want[i])
		}
	}
}

// exampleJob reads sdk-contracts/jobs/NAME/NAME.wasm, built by make
// contracts; the test skips when it is not.
func exampleJob(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "sdk-contracts", "jobs", name, name+".wasm"))
	if err != nil {
		tb.Skipf("example job %s not built (make contracts): %v", name, err)
	}
	return b
}

// TestJobExamples runs the example jobs of sdk-contracts/jobs in the
// executor and checks their answers. Their tests there run the same
// modules in plain wazero against their native builds; this checks the
// executor's WASI, file system and metering run them too. sha256sum is
// not here: conformance's job vector (TestJobVectors) runs it in the
// executor with every answer pinned, and cmd/sos's TestJobInTheVM runs the
// built module through a node.
func TestJobExamples(t *testing.T) {
	v := testJobVM(t, 0)
	ctx := context.Background()
	run := func(name string, spec JobSpec) JobResult {
		wasm := exampleJob(t, name)
		res, err := v.RunJob(ctx, sha256.Sum256(wasm), JobBytes("", wasm), spec)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if res.Status != JobExited || res.ExitCode != 0 {
			t.Fatalf("%s: %v %d %v\n%s", name, res.Status, res.ExitCode, res.Err, res.Stderr)
		}
		return res
	}
	t.Run("wordcount", func(t *testing.T) {
		if testing.Short() {
			t.Skip("compiles a 3 MB module (seconds)")
		}
		spec := testJobSpec("-top", "2")
		spec.Inputs = []JobFile{JobBytes("text.txt", []byte("the cat and the dog and THE bird"))}
		res := run("wordcount", spec)
		if !strings.HasPrefix(string(res.Stdout), "3\tthe\n2\tand\n") {
			t.Fatalf("stdout %q", res.Stdout)
		}
	})
	t.Run("mandelbrot", func(t *testing.T) {
		if testing.Short() {
			t.Skip("compiles a 3 MB module (seconds)")
		}
		res := run("mandelbrot", testJobSpec("-width", "64", "-height", "48", "-iter", "50"))
		if len(res.Outputs) != 1 || res.Outputs[0].Path != "mandelbrot.png" {
			t.Fatalf("outputs %+v", res.Outputs)
		}
		img, err := png.Decode(bytes.NewReader(res.Outputs[0].Data))
		if err != nil || img.Bounds().Dx() != 64 || img.Bounds().Dy() != 48 {
			t.Fatalf("png: %v %v", err, img)
		}
	})
}
