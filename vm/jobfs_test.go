package vm

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero/api"

	"github.com/sos-kernel/sos/vm/internal/wasmbin"
	"github.com/sos-kernel/sos/vm/meter"
)

// testGlobal is a gas counter outside any module.
type testGlobal struct {
	api.MutableGlobal
	v uint64
}

func (g *testGlobal) Get() uint64  { return g.v }
func (g *testGlobal) Set(v uint64) { g.v = v }

// newTestFS is the file system of a run with testInputs and an output
// limit.
func newTestFS(outLimit uint64) *jobFS {
	spec := testJobSpec()
	spec.Inputs = testInputs()
	spec.OutputLimit = outLimit
	s := newJobState(context.Background(), &spec)
	s.gas = &testGlobal{v: 1 << 40}
	return s.fs
}

func TestJobFSResolve(t *testing.T) {
	fs := newTestFS(1 << 20)
	if e := fs.mkdir(fs.out, []byte("d")); e != errnoSuccess {
		t.Fatal(e)
	}
	d := fs.out.children["d"]
	for _, tc := range []struct {
		dir  *fsNode
		path string
		want uint16
		node *fsNode
	}{
		{fs.in, "data.txt", errnoSuccess, fs.in.children["data.txt"]},
		{fs.in, "./data.txt", errnoSuccess, fs.in.children["data.txt"]},
		{fs.in, ".", errnoSuccess, fs.in},
		{fs.in, "..", errnoNotcapable, nil},
		{fs.in, "../out", errnoNotcapable, nil},
		{fs.in, "../../etc/passwd", errnoNotcapable, nil},
		{fs.in, "/etc/passwd", errnoNotcapable, nil},
		{fs.in, "/", errnoNotcapable, nil},
		{fs.out, "d/../../in/data.txt", errnoNotcapable, nil},
		{d, "..", errnoSuccess, fs.out},
		{d, "../..", errnoNotcapable, nil},
		{d, "../d/./", errnoSuccess, d},
		{fs.in, "data.txt/x", errnoNotdir, nil},
		{fs.in, "missing/x", errnoNoent, nil},
		{fs.in, "missing", errnoSuccess, nil},
		{fs.in, "", errnoNoent, nil},
		{fs.in, "a\x00b", errnoInval, nil},
		{fs.in, strings.Repeat("x", MaxJobNameBytes+1), errnoNametoolong, nil},
		{fs.in, strings.Repeat("x/", maxPathBytes/2+1), errnoNametoolong, nil},
	} {
		r, e := fs.resolve(tc.dir, []byte(tc.path))
		if e != tc.want || (e == errnoSuccess && r.node != tc.node) {
			t.Errorf("resolve %q: errno %d node %p, want %d %p", tc.path, e, r.node, tc.want, tc.node)
		}
	}
}

func TestJobFSOutputAccounting(t *testing.T) {
	fs := newTestFS(100)
	fd, e := fs.openPath(fs.out, []byte("f"), oflagCreat, rightFdWrite, 0, 0)
	if e != errnoSuccess {
		t.Fatal(e)
	}
	n := fs.fds[fd].node
	if k, e := fs.writeAt(n, make([]byte, 60), 0); k != 60 || e != errnoSuccess {
		t.Fatal(k, e)
	}
	// A second file may only take the 40 bytes left: a partial write, then
	// ENOSPC.
	fd2, _ := fs.openPath(fs.out, []byte("g"), oflagCreat, rightFdWrite, 0, 0)
	g := fs.fds[fd2].node
	if k, e := fs.writeAt(g, make([]byte, 50), 0); k != 40 || e != errnoSuccess {
		t.Fatalf("partial write: %d %d", k, e)
	}
	if k, e := fs.writeAt(g, []byte{1}, 40); k != 0 || e != errnoNospc {
		t.Fatalf("full: %d %d", k, e)
	}
	for _, off := range []int64{41, 1 << 40, 1<<62 + 12345, 1<<63 - 1} {
		if k, e := fs.writeAt(g, []byte{1}, off); k != 0 || e != errnoNospc {
			t.Fatalf("write at %d: %d %d", off, k, e)
		}
	}
	if k, e := fs.writeAt(g, []byte("xy"), 5); k != 2 || e != errnoSuccess || string(g.data[5:7]) != "xy" {
		t.Fatalf("overwrite when full: %d %d", k, e)
	}
	if e := fs.setSize(g, 41); e != errnoNospc {
		t.Fatalf("extend when full: %d", e)
	}
	// An unlinked file keeps its bytes while it is open.
	if e := fs.unlinkFile(fs.out, []byte("f")); e != errnoSuccess || fs.outUsed != 100 {
		t.Fatalf("unlink open file: %d, used %d", e, fs.outUsed)
	}
	if k, e := fs.writeAt(n, []byte{1}, 60); k != 0 || e != errnoNospc {
		t.Fatalf("unlinked file past the limit: %d %d", k, e)
	}
	fs.close(fd)
	if fs.outUsed != 40 {
		t.Fatalf("after close: used %d", fs.outUsed)
	}
	// Truncating frees; a rename over a file frees the file replaced.
	if e := fs.setSize(g, 10); e != errnoSuccess || fs.outUsed != 10 {
		t.Fatalf("truncate: %d, used %d", e, fs.outUsed)
	}
	if e := fs.setSize(g, 30); e != errnoSuccess || fs.outUsed != 30 || g.data[29] != 0 || g.data[10] != 0 {
		t.Fatalf("extend: %d, used %d", e, fs.outUsed)
	}
	fd3, _ := fs.openPath(fs.out, []byte("h"), oflagCreat, rightFdWrite, 0, 0)
	fs.writeAt(fs.fds[fd3].node, []byte("hh"), 0)
	fs.close(fd2)
	if e := fs.rename(fs.out, []byte("h"), fs.out, []byte("g")); e != errnoSuccess || fs.outUsed != 2 || fs.outFiles != 1 {
		t.Fatalf("rename over: %d, used %d, files %d", e, fs.outUsed, fs.outFiles)
	}
	if outs := fs.outputs(); len(outs) != 1 || outs[0].Path != "g" || string(outs[0].Data) != "hh" {
		t.Fatalf("outputs %+v", outs)
	}
	// O_TRUNC frees too.
	if _, e := fs.openPath(fs.out, []byte("g"), oflagTrunc, rightFdWrite, 0, 0); e != errnoSuccess || fs.outUsed != 0 {
		t.Fatalf("O_TRUNC: %d, used %d", e, fs.outUsed)
	}
}

func TestJobFSLimits(t *testing.T) {
	fs := newTestFS(1 << 20)
	// Paths under /out stay within MaxJobPathBytes.
	name := strings.Repeat("n", 200)
	dir := fs.out
	path := ""
	for i := 0; ; i++ {
		e := fs.mkdir(dir, []byte(name))
		if path += "/" + name; len(path)-1 > MaxJobPathBytes {
			if e != errnoNametoolong {
				t.Fatalf("path of %d bytes: errno %d", len(path)-1, e)
			}
			break
		}
		if e != errnoSuccess {
			t.Fatalf("level %d: %d", i, e)
		}
		dir = dir.children[name]
	}
	// Moving the deep tree under a longer name would make a path too long.
	if e := fs.rename(fs.out, []byte(name), fs.out, []byte(name+"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")); e != errnoNametoolong {
		t.Fatalf("rename making a path too long: %d", e)
	}
	if e := fs.rename(fs.out, []byte(name), fs.out, []byte("short")); e != errnoSuccess {
		t.Fatalf("rename to a shorter name: %d", e)
	}
	for _, tc := range []struct {
		name string
		want uint16
	}{
		{"\xff\xfe", errnoIlseq},
		{strings.Repeat("x", MaxJobNameBytes), errnoSuccess},
	} {
		if _, e := fs.openPath(fs.out, []byte(tc.name), oflagCreat, rightFdWrite, 0, 0); e != tc.want {
			t.Errorf("create %q: %d, want %d", tc.name, e, tc.want)
		}
	}
	// Directories: MaxJobOutputDirs, then EDQUOT.
	for fs.outDirs < MaxJobOutputDirs {
		if e := fs.mkdir(fs.out, fmt.Appendf(nil, "d%d", fs.outDirs)); e != errnoSuccess {
			t.Fatal(e)
		}
	}
	if e := fs.mkdir(fs.out, []byte("one more")); e != errnoDquot {
		t.Fatalf("dir %d: %d", MaxJobOutputDirs+1, e)
	}
	// Nothing under /in changes.
	for what, e := range map[string]uint16{
		"create":   fs.mkdir(fs.in, []byte("x")),
		"unlink":   fs.unlinkFile(fs.in, []byte("data.txt")),
		"rename":   fs.rename(fs.in, []byte("data.txt"), fs.in, []byte("y")),
		"move out": fs.rename(fs.in, []byte("data.txt"), fs.out, []byte("y")),
	} {
		if e != errnoRofs && e != errnoXdev {
			t.Errorf("%s in /in: %d", what, e)
		}
	}
	if _, e := fs.openPath(fs.in, []byte("data.txt"), 0, rightFdWrite, 0, 0); e != errnoRofs {
		t.Errorf("open an input for writing: %d", e)
	}
}

func TestJobFSDescriptors(t *testing.T) {
	fs := newTestFS(1 << 20)
	var last uint32
	for {
		fd, e := fs.openPath(fs.in, []byte("data.txt"), 0, rightFdRead, 0, 0)
		if e == errnoMfile {
			break
		}
		if e != errnoSuccess || (last != 0 && fd != last+1) {
			t.Fatalf("open: fd %d errno %d after %d", fd, e, last)
		}
		last = fd
	}
	if last != MaxJobOpenFiles-1 {
		t.Fatalf("last descriptor %d", last)
	}
	fs.close(7)
	if fd, e := fs.openPath(fs.in, []byte("b.bin"), 0, rightFdRead, 0, 0); fd != 7 || e != errnoSuccess {
		t.Fatalf("the lowest free descriptor: %d %d", fd, e)
	}
	// renumber: to takes from's file and from is closed.
	fs.renumber(7, 8)
	if f, e := fs.fd(8); e != errnoSuccess || f.node.name != "b.bin" {
		t.Fatalf("renumbered: %v %d", f, e)
	}
	if _, e := fs.fd(7); e != errnoBadf {
		t.Fatalf("from after renumber: %d", e)
	}
	if n := fs.in.children["data.txt"].open; n != MaxJobOpenFiles-5-2 {
		t.Fatalf("data.txt open %d times", n)
	}
}

// FuzzJobModule: instrumentJob (the checks and the metering of an
// untrusted job module) never panics, and what it accepts is a module whose
// initial memory image matches its memory.
func FuzzJobModule(f *testing.F) {
	start := asmModule{types: [][]byte{functype(nil, nil)}, bodies: [][]byte{body(0x0b)}, exports: [][]byte{exportFunc("_start", 0)}}
	f.Add(start.bytes())
	withData := start
	withData.data = vec(dataSegment(0, 10, []byte("hello")))
	f.Add(withData.bytes())
	f.Add(simple(0x41, 0, 0x0b).bytes())
	f.Fuzz(func(t *testing.T, wasm []byte) {
		code, data, pages, err := instrumentJob(wasm, meter.DefaultCosts())
		if err != nil {
			return
		}
		if _, err := wasmbin.Decode(code); err != nil {
			t.Fatalf("accepted module does not decode: %v", err)
		}
		if data != nil && len(data) != int(pages)*65536 {
			t.Fatalf("image of %d bytes for %d pages", len(data), pages)
		}
	})
}

// TestJobMemoryImage: a Go program's data segments become the memory image
// (and leave the compiled module), and the slice-backed memory used when
// mmap fails grows with zeros and refuses to grow past its limit.
func TestJobMemoryImage(t *testing.T) {
	code, data, pages, err := instrumentJob(loadJobtool(t), meter.DefaultCosts())
	if err != nil {
		t.Fatal(err)
	}
	m, err := wasmbin.Decode(code)
	if err != nil {
		t.Fatal(err)
	}
	if data == nil || len(data) != int(pages)*65536 || m.Find(wasmbin.SectionData) >= 0 {
		t.Fatalf("image of %d bytes for %d pages, data section kept: %v", len(data), pages, m.Find(wasmbin.SectionData) >= 0)
	}

	img, err := newImage([]byte{1, 2, 3, 4}, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer img.close()
	s := newJobState(context.Background(), &JobSpec{})
	mem := newSliceJobMemory(img, 3*65536, s)
	b := mem.Reallocate(65536)
	if len(b) != 65536 || b[3] != 4 || b[4] != 0 {
		t.Fatalf("initial memory: %d bytes, % x", len(b), b[:8])
	}
	b[65535] = 9
	b = mem.Reallocate(3 * 65536)
	if len(b) != 3*65536 || b[65535] != 9 || b[65536] != 0 || b[3*65536-1] != 0 || s.memPeak != 3*65536 {
		t.Fatalf("grown memory: %d bytes, peak %d", len(b), s.memPeak)
	}
	if b := mem.Reallocate(4 * 65536); b != nil || s.limitHit == nil || s.memPeak != 3*65536 {
		t.Fatalf("growing past the limit: %d bytes, refusal %v", len(b), s.limitHit)
	}
}

// testModule is an api.Module without memory.
type testModule struct{ api.Module }

func (testModule) Memory() api.Memory { return nil }

// TestJobHostBug: a host function that panics with anything but a trap
// ends the run as the host's failure (RunJob's error), not as an outcome.
func TestJobHostBug(t *testing.T) {
	s := newJobState(context.Background(), &JobSpec{})
	s.gas = &testGlobal{v: 1000}
	f := jobGuestFunc(jobFunc{name: "buggy", fn: func(_ *jobState, _ api.Memory, st []uint64) {
		_ = st[len(st)] // index out of range
	}})
	defer func() {
		r := recover()
		if _, ok := r.(*trap); !ok || s.infra == nil || !strings.Contains(s.infra.Error(), "buggy") {
			t.Fatalf("recovered %v, host failure %v", r, s.infra)
		}
	}()
	f(context.WithValue(context.Background(), jobStateKey{}, s), testModule{}, make([]uint64, 1))
}
