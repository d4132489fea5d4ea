package sdkcontracts

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// wasmInterface lists a module's imports ("module.name") and exported
// functions. It reads only the section headers and the import and export
// sections: enough to check a contract's surface without a Wasm runtime.
func wasmInterface(b []byte) (imports, exports []string, err error) {
	if len(b) < 8 || string(b[:4]) != "\x00asm" || string(b[4:8]) != "\x01\x00\x00\x00" {
		return nil, nil, errors.New("not a Wasm v1 module")
	}
	r := &reader{b: b[8:]}
	for len(r.b) > 0 && r.err == nil {
		id := r.byte()
		body := &reader{b: r.bytes(int(r.u32()))}
		switch id {
		case 2: // import
			for n := body.u32(); n > 0 && body.err == nil; n-- {
				mod, name := body.name(), body.name()
				imports = append(imports, mod+"."+name)
				switch kind := body.byte(); kind {
				case 0: // func: type index
					body.u32()
				case 1: // table: reftype, limits
					body.byte()
					body.limits()
				case 2: // memory
					body.limits()
				case 3: // global: valtype, mutability
					body.byte()
					body.byte()
				default:
					return nil, nil, fmt.Errorf("import kind %d", kind)
				}
			}
		case 7: // export
			for n := body.u32(); n > 0 && body.err == nil; n-- {
				name := body.name()
				kind := body.byte()
				body.u32()
				if kind == 0 {
					exports = append(exports, name)
				}
			}
		}
		if body.err != nil {
			return nil, nil, body.err
		}
	}
	return imports, exports, r.err
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errors.New("truncated module")
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) u32() uint32 {
	var v uint32
	for shift := 0; shift < 35; shift += 7 {
		c := r.byte()
		v |= uint32(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	r.fail()
	return 0
}

func (r *reader) bytes(n int) []byte {
	if n > len(r.b) {
		r.fail()
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) name() string { return string(r.bytes(int(r.u32()))) }

func (r *reader) limits() {
	flags := r.byte()
	r.u32()
	if flags&1 != 0 {
		r.u32()
	}
}

// buildWasm builds the example in dir for wasip1 the way build.sh does: a
// reactor (-buildmode=c-shared) for contracts and policies, a command for
// jobs.
func buildWasm(t *testing.T, dir string) []byte {
	t.Helper()
	if testing.Short() {
		t.Skip("builds a Wasm module; skipped with -short")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	out := filepath.Join(t.TempDir(), "c.wasm")
	args := []string{"build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s", "-o", out, "./" + dir}
	if strings.HasPrefix(dir, "jobs/") {
		args = slices.Delete(args, 1, 2)
	}
	cmd := exec.Command(gobin, args...)
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s for wasip1: %v\n%s", dir, err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestExampleModules(t *testing.T) {
	for _, tc := range []struct {
		dir     string
		exports []string
	}{
		{"examples/counter", []string{"instantiate", "execute", "query", "migrate"}},
		{"examples/token", []string{"instantiate", "execute", "query"}},
		{"examples/escrow", []string{"instantiate", "execute", "query"}},
		{"examples/offer-registry", []string{"instantiate", "execute", "query", "migrate"}},
	} {
		t.Run(filepath.Base(tc.dir), func(t *testing.T) {
			b := buildWasm(t, tc.dir)
			t.Logf("%s: %d bytes", tc.dir, len(b))
			imports, exports, err := wasmInterface(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range append([]string{"_initialize"}, tc.exports...) {
				if !slices.Contains(exports, want) {
					t.Errorf("missing export %q (exports %v)", want, exports)
				}
			}
			for _, imp := range imports {
				if mod, _, _ := strings.Cut(imp, "."); mod != "sos" && mod != "wasi_snapshot_preview1" {
					t.Errorf("import %q from a module other than sos and wasi_snapshot_preview1", imp)
				}
			}
			t.Logf("imports: %v", imports)
		})
	}
}

// jobNames lists the jobs as build.sh finds them: jobs/<name>/<name>.go.
func jobNames(t *testing.T) []string {
	t.Helper()
	dirs, err := os.ReadDir("jobs")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join("jobs", d.Name(), d.Name()+".go")); err == nil {
			names = append(names, d.Name())
		}
	}
	if len(names) < 3 {
		t.Fatalf("found jobs %v, want at least sha256sum, wordcount and mandelbrot", names)
	}
	return names
}

// TestJobModules builds every example job and checks that it is a WASI
// command as docs/jobs-abi.md requires (it exports _start, not
// _initialize, and imports only wasi_snapshot_preview1) and that its Go
// package imports no package of this repository: a job is an ordinary
// program.
func TestJobModules(t *testing.T) {
	for _, name := range jobNames(t) {
		t.Run(name, func(t *testing.T) {
			b := buildWasm(t, "jobs/"+name)
			t.Logf("%s: %d bytes", name, len(b))
			imports, exports, err := wasmInterface(b)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(exports, "_start") || slices.Contains(exports, "_initialize") {
				t.Errorf("exports %v: want _start and no _initialize (a command, not a reactor)", exports)
			}
			for _, imp := range imports {
				if mod, _, _ := strings.Cut(imp, "."); mod != "wasi_snapshot_preview1" {
					t.Errorf("import %q from a module other than wasi_snapshot_preview1", imp)
				}
			}
			t.Logf("imports: %v", imports)

			cmd := exec.Command("go", "list", "-deps", "./jobs/"+name)
			cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
			deps, err := cmd.Output()
			if err != nil {
				t.Fatalf("go list: %v", err)
			}
			for _, dep := range strings.Fields(string(deps)) {
				if strings.HasPrefix(dep, "github.com/sos-kernel/sos/") && !strings.HasSuffix(dep, "/jobs/"+name) {
					t.Errorf("job %s imports %s: jobs use the standard library only", name, dep)
				}
			}
		})
	}
}

func TestWasmInterfaceRejectsGarbage(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("\x00asm"), []byte("\x00asm\x01\x00\x00\x00\x02\x05\x01"), []byte("\x7fELF....")} {
		if _, _, err := wasmInterface(b); err == nil {
			t.Errorf("wasmInterface(%q) accepted garbage", b)
		}
	}
}
