package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/sos-kernel/sos/internal/failpoint"
)

func TestPutOpenStat(t *testing.T) {
	clock := &fixedClock{time.Unix(1_700_000_000, 5)}
	fs := vfs.NewMem()
	s := openMem(t, fs, Options{Now: clock.now})
	var total, disk uint64
	for i, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := content(n, uint64(i))
			id := put(t, s, data)
			if id != Sum(data) {
				t.Fatalf("id %s, want BLAKE3 %s", id, Sum(data))
			}
			if !s.Has(id) {
				t.Fatal("Has = false after Put")
			}
			if got := readBlob(t, s, id); !bytes.Equal(got, data) {
				t.Fatal("content differs")
			}
			st, err := s.Stat(id)
			if err != nil {
				t.Fatal(err)
			}
			want := Info{ID: id, Size: uint64(n), Complete: true, Stored: clock.t, Have: uint64(n)}
			if st != want {
				t.Fatalf("Stat = %+v, want %+v", st, want)
			}
			total += uint64(n)
			disk += uint64(n) + outboardLen(uint64(n))
			if u := s.Usage(); u.Blobs != i+1 || u.Bytes != total || u.Disk != disk || u.Reserved != 0 {
				t.Fatalf("Usage = %+v, want %d blobs, %d bytes, %d on disk", u, i+1, total, disk)
			}
		})
	}
	// Reopened, the store knows the same blobs.
	ids := s.List()
	for i := 1; i < len(ids); i++ {
		if bytes.Compare(ids[i-1][:], ids[i][:]) >= 0 {
			t.Fatal("List not sorted")
		}
	}
	u := s.Usage()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openMem(t, fs, Options{})
	if got := s2.List(); !equalIDs(got, ids) {
		t.Fatalf("after reopen: %d blobs, want %d", len(got), len(ids))
	}
	if u2 := s2.Usage(); u2 != u {
		t.Fatalf("after reopen: Usage %+v, want %+v", u2, u)
	}
	st, _ := s2.Stat(ids[0])
	if !st.Stored.Equal(clock.t) {
		t.Fatalf("stored time %v after reopen, want %v", st.Stored, clock.t)
	}
	checkConsistent(t, s2, fs)
}

func equalIDs(a, b []ID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReaderSeeksAndReadsAt(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{})
	data := content(100_000, 7)
	r, err := s.Open(put(t, s, data))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := make([]byte, 10)
	if _, err := r.ReadAt(p, 99_990); err != nil || !bytes.Equal(p, data[99_990:]) {
		t.Fatalf("ReadAt: %v", err)
	}
	if _, err := r.ReadAt(p, 99_995); err != io.EOF {
		t.Fatalf("ReadAt past the end: %v, want EOF", err)
	}
	if _, err := r.Seek(50_000, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	if !bytes.Equal(rest, data[50_000:]) {
		t.Fatal("read after seek differs")
	}
}

func TestPutDeduplicates(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, Options{})
	data := content(3*ChunkSize/2, 1)
	id := put(t, s, data)
	u := s.Usage()
	if id2 := put(t, s, data); id2 != id {
		t.Fatalf("second Put: %s, want %s", id2, id)
	}
	if u2 := s.Usage(); u2 != u {
		t.Fatalf("Usage after a duplicate Put: %+v, want %+v", u2, u)
	}
	if files := listTree(t, fs, "blobs"); len(files) != 3 { // LOCK, data, outboard
		t.Fatalf("files %v", files)
	}
}

func TestConcurrentPutsOfTheSameContent(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, Options{})
	data := content(ChunkSize+3, 2)
	errs := make(chan error, 4)
	for range 4 {
		go func() {
			_, _, err := s.Put(context.Background(), bytes.NewReader(data))
			errs <- err
		}()
	}
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if u := s.Usage(); u.Blobs != 1 || u.Bytes != uint64(len(data)) || u.Reserved != 0 {
		t.Fatalf("Usage %+v", u)
	}
	checkConsistent(t, s, fs)
}

func TestPutLimit(t *testing.T) {
	fs := vfs.NewMem()
	small := content(1000, 1)
	s := openMem(t, fs, Options{Limit: 3 * ChunkSize})
	put(t, s, small)
	before := s.Usage()
	_, _, err := s.Put(context.Background(), bytes.NewReader(content(3*ChunkSize, 2)))
	wantErr(t, err, ErrFull)
	if u := s.Usage(); u != before {
		t.Fatalf("Usage after a refused Put: %+v, want %+v", u, before)
	}
	if len(s.List()) != 1 {
		t.Fatal("refused Put left a blob")
	}
	checkConsistent(t, s, fs)
	// What fits still goes in.
	put(t, s, content(2*ChunkSize, 3))
}

func TestPutDiskFull(t *testing.T) {
	mem := vfs.NewMem()
	full := diskFull()
	s := openMem(t, errorfs.Wrap(mem, full), Options{})
	keep := put(t, s, content(5000, 1))
	before := s.Usage()
	full.On()
	_, _, err := s.Put(context.Background(), bytes.NewReader(content(2*ChunkSize, 2)))
	full.Off()
	wantErr(t, err, ErrFull)
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("error does not say the disk is full: %v", err)
	}
	if u := s.Usage(); u != before {
		t.Fatalf("Usage %+v, want %+v", u, before)
	}
	if ids := s.List(); len(ids) != 1 || ids[0] != keep {
		t.Fatalf("List %v", ids)
	}
	checkConsistent(t, s, mem)
	put(t, s, content(2*ChunkSize, 2)) // works again once there is room
}

// TestPutFailpoint fails the store's writes through the named failpoint,
// as a test that runs the sos binary would with GOFAIL_FAILPOINTS.
func TestPutFailpoint(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, Options{})
	for _, c := range []struct {
		terms string
		full  bool
	}{{"return", true}, {`return("eio")`, false}, {"3*off->return", true}} {
		disable, err := failpoint.Enable(failpoint.BlobWriteError, c.terms)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = s.Put(context.Background(), bytes.NewReader(content(3*ChunkSize, 9)))
		disable()
		if err == nil {
			t.Fatalf("%s: Put succeeded", c.terms)
		}
		if errors.Is(err, ErrFull) != c.full {
			t.Fatalf("%s: %v, ErrFull = %v", c.terms, err, !c.full)
		}
		if c.terms == `return("eio")` && !errors.Is(err, syscall.EIO) {
			t.Fatalf("%s: %v, want EIO", c.terms, err)
		}
		if len(s.List()) != 0 || s.Usage() != (Usage{}) {
			t.Fatalf("%s: a failed Put left %+v", c.terms, s.Usage())
		}
		checkConsistent(t, s, fs)
	}
}

func TestPutCanceled(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	r := &cancelAfter{r: bytes.NewReader(content(4*ChunkSize, 1)), n: 2 * ChunkSize, cancel: cancel}
	_, _, err := s.Put(ctx, r)
	wantErr(t, err, context.Canceled)
	if s.Usage() != (Usage{}) {
		t.Fatalf("Usage %+v", s.Usage())
	}
	checkConsistent(t, s, fs)
}

type cancelAfter struct {
	r      io.Reader
	n      int
	cancel func()
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestPutReaderError(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, Options{})
	boom := errors.New("boom")
	_, _, err := s.Put(context.Background(), io.MultiReader(bytes.NewReader(content(ChunkSize+5, 1)), &failingReader{boom}))
	wantErr(t, err, boom)
	if s.Usage() != (Usage{}) {
		t.Fatalf("Usage %+v", s.Usage())
	}
	checkConsistent(t, s, fs)
}

type failingReader struct{ err error }

func (f *failingReader) Read([]byte) (int, error) { return 0, f.err }

// TestPutCrashAnywhere crashes the filesystem at every operation of a Put
// (keeping only what was synced, or a random part of the rest) and reopens
// the store: the blob is either complete and correct or absent.
func TestPutCrashAnywhere(t *testing.T) {
	data := content(2*ChunkSize+GroupSize+3, 4)
	want := Sum(data)
	for _, unsynced := range []int{0, 50, 100} {
		mem := vfs.NewCrashableMem()
		var ops int
		var clones []*vfs.MemFS
		rng := rand.New(rand.NewPCG(1, uint64(unsynced)))
		fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op) error {
			ops++
			cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced}
			if unsynced > 0 {
				cfg.RNG = rand.New(rand.NewPCG(rng.Uint64(), 0))
			}
			clones = append(clones, mem.CrashClone(cfg))
			return nil
		}))
		s, err := Open("blobs", Options{FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		clones = clones[:0]
		put(t, s, data)
		clones = append(clones, mem.CrashClone(vfs.CrashCloneCfg{}))
		s.Close()
		present := 0
		for i, c := range clones {
			s2, err := Open("blobs", Options{FS: c})
			if err != nil {
				t.Fatalf("unsynced %d%%, crash at op %d: reopen: %v", unsynced, i, err)
			}
			if s2.Has(want) {
				present++
				if got := readBlob(t, s2, want); !bytes.Equal(got, data) {
					t.Fatalf("crash at op %d: blob listed with other content", i)
				}
			} else if len(s2.List()) != 0 {
				t.Fatalf("crash at op %d: unexpected blobs %v", i, s2.List())
			}
			checkConsistent(t, s2, c)
			if u := s2.Usage(); u.Reserved != 0 {
				t.Fatalf("crash at op %d: reserved %d", i, u.Reserved)
			}
			s2.Close()
		}
		t.Logf("unsynced %d%%: %d crash points, blob present after %d", unsynced, len(clones), present)
		if present == 0 {
			t.Fatalf("unsynced %d%%: the blob survived no crash point, not even after Put returned", unsynced)
		}
		if !hasBlob(clones[len(clones)-1], want) {
			t.Fatal("a Put that returned did not survive a crash")
		}
	}
}

func hasBlob(fs vfs.FS, id ID) bool {
	s, err := Open("blobs", Options{FS: fs})
	if err != nil {
		return false
	}
	defer s.Close()
	return s.Has(id)
}

func TestOpenRepairs(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, Options{})
	a, b, c := content(40_000, 1), content(3000, 2), content(ChunkSize+1, 3)
	ida, idb, idc := put(t, s, a), put(t, s, b), put(t, s, c)
	s.Close()
	// a: its outboard is lost; b: its data is lost; c: a byte of its data
	// flips and its outboard is lost (the data no longer matches its id);
	// plus leftovers of an interrupted Put and a stray file.
	must(t, fs.Remove(s.obaoPath(ida)))
	must(t, fs.Remove(s.dataPath(idb)))
	flipByte(t, fs, s.dataPath(idc), 100)
	must(t, fs.Remove(s.obaoPath(idc)))
	writeFile(t, fs, "blobs/tmp/put-7", []byte("half a blob"))
	writeFile(t, fs, "blobs/"+ida.String()[:2]+"/README", []byte("not a blob"))

	s2 := openMem(t, fs, Options{})
	if ids := s2.List(); len(ids) != 1 || ids[0] != ida {
		t.Fatalf("after repair: %v, want only %s", ids, ida)
	}
	if err := s2.Check(context.Background(), ida); err != nil {
		t.Fatalf("rebuilt outboard: %v", err)
	}
	for _, p := range []string{s.obaoPath(idb), s.dataPath(idc), s.obaoPath(idc)} {
		if _, err := fs.Stat(p); err == nil {
			t.Errorf("%s still there", p)
		}
	}
	if _, err := fs.Stat("blobs/" + ida.String()[:2] + "/README"); err != nil {
		t.Error("a stray file was removed")
	}
	checkConsistent(t, s2, fs)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeFile(t testing.TB, fs vfs.FS, path string, b []byte) {
	t.Helper()
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	must(t, err)
	_, err = f.Write(b)
	must(t, err)
	must(t, f.Close())
}

func flipByte(t testing.TB, fs vfs.FS, path string, off int64) {
	t.Helper()
	f, err := fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	must(t, err)
	defer f.Close()
	b := make([]byte, 1)
	_, err = f.ReadAt(b, off)
	must(t, err)
	b[0] ^= 0x40
	_, err = f.WriteAt(b, off)
	must(t, err)
}

func TestCheckFindsDamage(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, Options{})
	data := content(2*ChunkSize+100, 5)
	id := put(t, s, data)
	must(t, s.Check(context.Background(), id))
	flipByte(t, fs, s.dataPath(id), ChunkSize+5)
	wantErr(t, s.Check(context.Background(), id), ErrCorrupt)
	// The damaged segment can no longer be proven, the others still can.
	_, err := s.Prove(id, ChunkSize/SegmentSize)
	wantErr(t, err, ErrCorrupt)
	if _, err := s.Prove(id, 0); err != nil {
		t.Fatal(err)
	}
	// The slice is served as it is; the receiver rejects it.
	enc, err := s.ReadSlice(id, 1)
	must(t, err)
	_, err = VerifySlice(id, uint64(len(data)), 1, enc)
	wantErr(t, err, ErrCorrupt)

	// A damaged outboard pair is found too.
	flipByte(t, fs, s.dataPath(id), ChunkSize+5) // repair the data
	must(t, s.Check(context.Background(), id))
	flipByte(t, fs, s.obaoPath(id), outHdrSize+3)
	wantErr(t, s.Check(context.Background(), id), ErrCorrupt)
}

func TestDelete(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, Options{})
	keep := put(t, s, content(10, 1))
	u := s.Usage()
	id := put(t, s, content(ChunkSize*2, 2))
	r, err := s.Open(id)
	must(t, err)
	defer r.Close()
	must(t, s.Delete(id))
	if s.Has(id) {
		t.Fatal("Has after Delete")
	}
	if got := s.Usage(); got != u {
		t.Fatalf("Usage %+v, want %+v", got, u)
	}
	_, err = s.Open(id)
	wantErr(t, err, ErrNotFound)
	_, err = s.Stat(id)
	wantErr(t, err, ErrNotFound)
	_, err = s.ReadSlice(id, 0)
	wantErr(t, err, ErrNotFound)
	_, err = s.Prove(id, 0)
	wantErr(t, err, ErrNotFound)
	wantErr(t, s.Delete(id), ErrNotFound)
	// A reader opened before goes on reading.
	if n, err := io.Copy(io.Discard, r); err != nil || n != ChunkSize*2 {
		t.Fatalf("reader after delete: %d, %v", n, err)
	}
	if ids := s.List(); len(ids) != 1 || ids[0] != keep {
		t.Fatalf("List %v", ids)
	}
	if files := listTree(t, fs, "blobs"); len(files) != 3 {
		t.Fatalf("files left: %v", files)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	fs := vfs.NewMem()
	s := openMem(t, fs, Options{})
	_, err := Open("blobs", Options{FS: fs})
	wantErr(t, err, ErrLocked)
	must(t, s.Close())
	s2, err := Open("blobs", Options{FS: fs})
	must(t, err)
	s2.Close()
}

func TestClosedStore(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{})
	id := put(t, s, []byte("x"))
	must(t, s.Close())
	_, _, err := s.Put(context.Background(), strings.NewReader("y"))
	wantErr(t, err, ErrClosed)
	_, err = s.Open(id)
	wantErr(t, err, ErrClosed)
	_, err = s.Begin(Sum([]byte("z")), 1)
	wantErr(t, err, ErrClosed)
}

// TestOnDisk runs a Put, a transfer and a proof on the OS filesystem, where
// fsync, rename and fallocate are real.
func TestOnDisk(t *testing.T) {
	dir := t.TempDir()
	src, err := Open(dir+"/a", Options{})
	must(t, err)
	defer src.Close()
	dst, err := Open(dir+"/b", Options{})
	must(t, err)
	defer dst.Close()
	for _, n := range []int{0, 1, 2*ChunkSize + 12345} {
		data := content(n, 8)
		id := put(t, src, data)
		p, err := dst.Begin(id, uint64(len(data)))
		must(t, err)
		for _, k := range p.Missing() {
			must(t, p.WriteSlice(k, mustSlice(t, src, id, k)))
		}
		must(t, p.Commit())
		if got := readBlob(t, dst, id); !bytes.Equal(got, data) {
			t.Fatal("content differs")
		}
		must(t, dst.Check(context.Background(), id))
		if n > 0 {
			seg := SegmentCount(uint64(n)) - 1
			pr, err := dst.Prove(id, seg)
			must(t, err)
			must(t, VerifyProof(id, uint64(len(data)), seg, pr))
		}
	}
	must(t, dst.Close())
	dst2, err := Open(dir+"/b", Options{})
	must(t, err)
	defer dst2.Close()
	if len(dst2.List()) != 3 {
		t.Fatalf("reopened: %d blobs", len(dst2.List()))
	}
}

func TestAppendSlice(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{})
	id := put(t, s, content(2*ChunkSize+9, 13))
	want := mustSlice(t, s, id, 1)
	buf, err := s.AppendSlice([]byte("prefix"), id, 1)
	must(t, err)
	if string(buf[:6]) != "prefix" || !bytes.Equal(buf[6:], want) {
		t.Fatal("AppendSlice did not append the slice")
	}
	buf, err = s.AppendSlice(buf[:0], id, 2)
	must(t, err)
	if !bytes.Equal(buf, mustSlice(t, s, id, 2)) {
		t.Fatal("reused buffer holds another slice")
	}
	if _, err := s.AppendSlice(buf[:0], id, 3); !errors.Is(err, ErrRange) {
		t.Fatalf("past the end: %v", err)
	}
}
