package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/sos-kernel/sos/internal/failpoint"
)

// source stores data in a fresh in-memory store and returns it with the id.
func source(t testing.TB, data []byte) (*Store, ID) {
	t.Helper()
	s := openMem(t, vfs.NewMem(), Options{})
	return s, put(t, s, data)
}

func transfer(t testing.TB, src *Store, p *Partial, chunks []uint64) {
	t.Helper()
	for _, k := range chunks {
		enc, err := src.ReadSlice(p.ID(), k)
		must(t, err)
		if err := p.WriteSlice(k, enc); err != nil {
			t.Fatalf("chunk %d: %v", k, err)
		}
	}
}

// TestTransfer moves blobs of every edge size chunk by chunk, in random
// order, and checks the received blob byte for byte, outboard included.
func TestTransfer(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	t.Logf("seed 1,2")
	for i, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			data := content(n, uint64(i)+100)
			src, id := source(t, data)
			fs := vfs.NewMem()
			dst := openMem(t, fs, Options{})
			p, err := dst.Begin(id, uint64(n))
			must(t, err)
			if st, _ := dst.Stat(id); st.Complete || st.Size != uint64(n) || st.Have != 0 || dst.Has(id) {
				t.Fatalf("Stat of a new partial blob: %+v", st)
			}
			order := p.Missing()
			if uint64(len(order)) != ChunkCount(uint64(n)) {
				t.Fatalf("Missing %d chunks, want %d", len(order), ChunkCount(uint64(n)))
			}
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			transfer(t, src, p, order)
			if m := p.Missing(); len(m) != 0 {
				t.Fatalf("Missing %v after every chunk", m)
			}
			if st, _ := dst.Stat(id); st.Have != uint64(n) {
				t.Fatalf("Have %d, want %d", st.Have, n)
			}
			must(t, p.Commit())
			if !dst.Has(id) {
				t.Fatal("not complete after Commit")
			}
			if got := readBlob(t, dst, id); !bytes.Equal(got, data) {
				t.Fatal("content differs")
			}
			// The outboard written chunk by chunk is the one Put builds.
			a, _ := readAll(src, src.obaoPath(id))
			b, _ := readAll(dst, dst.obaoPath(id))
			if !bytes.Equal(a[outHdrSize:], b[outHdrSize:]) {
				t.Fatal("received outboard differs from the sender's")
			}
			if u := dst.Usage(); u.Partials != 0 || u.Reserved != 0 || u.Bytes != uint64(n) {
				t.Fatalf("Usage %+v", u)
			}
			checkConsistent(t, dst, fs)
			if left := listTree(t, fs, "blobs/partial"); len(left) != 0 {
				t.Fatalf("partial/ holds %v", left)
			}
		})
	}
}

func TestWriteSliceRejects(t *testing.T) {
	data := content(3*ChunkSize+500, 3)
	size := uint64(len(data))
	src, id := source(t, data)
	other, otherID := source(t, content(len(data), 4))
	good, err := src.ReadSlice(id, 1)
	must(t, err)
	foreign, err := other.ReadSlice(otherID, 1)
	must(t, err)
	last, err := src.ReadSlice(id, 3)
	must(t, err)
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 1
		return b
	}
	depth := (len(good) - lenPrefix - ChunkSize) / pairSize
	cases := []struct {
		name string
		k    uint64
		enc  []byte
		want error
	}{
		{"data byte", 1, flip(len(good) - 1), ErrCorrupt},
		{"first data byte", 1, flip(lenPrefix + depth*pairSize), ErrCorrupt},
		{"root pair, left", 1, flip(lenPrefix), ErrCorrupt},
		{"root pair, right", 1, flip(lenPrefix + 40), ErrCorrupt},
		{"deepest pair", 1, flip(lenPrefix + (depth-1)*pairSize + 5), ErrCorrupt},
		{"length prefix", 1, flip(0), ErrCorrupt},
		{"truncated", 1, good[:len(good)-1], ErrCorrupt},
		{"extended", 1, append(bytes.Clone(good), 0), ErrCorrupt},
		{"empty", 1, nil, ErrCorrupt},
		{"for another chunk", 2, good, ErrCorrupt},
		{"of the last chunk", 0, last, ErrCorrupt},
		{"of another blob", 1, foreign, ErrCorrupt},
		{"past the end", 4, good, ErrRange},
		{"far past the end", 1 << 62, good, ErrRange},
	}
	dst := openMem(t, vfs.NewMem(), Options{})
	p, err := dst.Begin(id, size)
	must(t, err)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, p.WriteSlice(c.k, c.enc), c.want)
			if _, err := VerifySlice(id, size, c.k, c.enc); !errors.Is(err, c.want) {
				t.Fatalf("VerifySlice: %v, want %v", err, c.want)
			}
			if m := p.Missing(); len(m) != 4 {
				t.Fatalf("Missing %v after a rejected slice", m)
			}
		})
	}
	// The good one still goes in, and the blob completes.
	transfer(t, src, p, []uint64{0, 1, 2, 3})
	must(t, p.Commit())
	if !bytes.Equal(readBlob(t, dst, id), data) {
		t.Fatal("content differs")
	}
}

// TestResumeAfterRestart writes half the chunks, closes the partial blob
// and the store, reopens both and fetches exactly the rest.
func TestResumeAfterRestart(t *testing.T) {
	data := content(7*ChunkSize+321, 5)
	size := uint64(len(data))
	src, id := source(t, data)
	fs := vfs.NewMem()
	dst := openMem(t, fs, Options{})
	p, err := dst.Begin(id, size)
	must(t, err)
	first := []uint64{0, 2, 4, 6}
	transfer(t, src, p, first)
	must(t, p.Close())
	wantErr(t, p.WriteSlice(1, nil), ErrClosed)
	must(t, dst.Close())

	dst2 := openMem(t, fs, Options{})
	parts := dst2.Partials()
	if len(parts) != 1 || parts[0].ID != id || parts[0].Have != 4*ChunkSize || parts[0].Complete {
		t.Fatalf("Partials %+v", parts)
	}
	if u := dst2.Usage(); u.Partials != 1 || u.Reserved != size+outboardLen(size) {
		t.Fatalf("Usage %+v", u)
	}
	p2, err := dst2.Begin(id, size)
	must(t, err)
	if m := p2.Missing(); !slices.Equal(m, []uint64{1, 3, 5, 7}) {
		t.Fatalf("Missing %v, want [1 3 5 7]", m)
	}
	wantErr(t, p2.Commit(), ErrIncomplete)
	transfer(t, src, p2, p2.Missing())
	must(t, p2.Commit())
	if !bytes.Equal(readBlob(t, dst2, id), data) {
		t.Fatal("content differs")
	}
	checkConsistent(t, dst2, fs)
}

// TestResumeAfterCrash crashes while chunks arrive: what the bitmap says
// was verified is on disk, the rest is fetched again.
func TestResumeAfterCrash(t *testing.T) {
	data := content(5*ChunkSize, 6)
	size := uint64(len(data))
	src, id := source(t, data)
	mem := vfs.NewCrashableMem()
	dst := openMem(t, mem, Options{SyncChunks: 2})
	p, err := dst.Begin(id, size)
	must(t, err)
	transfer(t, src, p, []uint64{4, 0, 3, 1, 2}) // the bitmap is persisted after the 2nd and 4th
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	p.Close()

	dst2 := openMem(t, crashed, Options{})
	p2, err := dst2.Begin(id, size)
	must(t, err)
	if m := p2.Missing(); !slices.Equal(m, []uint64{2}) {
		t.Fatalf("Missing after a crash %v, want [2]", m)
	}
	transfer(t, src, p2, p2.Missing())
	must(t, p2.Commit())
	if !bytes.Equal(readBlob(t, dst2, id), data) {
		t.Fatal("content differs")
	}
	must(t, dst2.Check(context.Background(), id))
}

func TestBeginErrors(t *testing.T) {
	data := content(2*ChunkSize, 7)
	size := uint64(len(data))
	_, id := source(t, data)
	dst := openMem(t, vfs.NewMem(), Options{Limit: 3 * ChunkSize})
	p, err := dst.Begin(id, size)
	must(t, err)
	_, err = dst.Begin(id, size)
	wantErr(t, err, ErrBusy)
	wantErr(t, dst.Delete(id), ErrBusy)
	must(t, p.Close())
	_, err = dst.Begin(id, size+1)
	wantErr(t, err, ErrSizeMismatch)
	_, err = dst.Begin(Sum([]byte("big")), 2*ChunkSize)
	wantErr(t, err, ErrFull)
	_, err = dst.Begin(id, MaxSize+1)
	wantErr(t, err, ErrRange)
	// Delete drops the idle partial blob and its reservation.
	must(t, dst.Delete(id))
	if u := dst.Usage(); u != (Usage{Limit: 3 * ChunkSize}) {
		t.Fatalf("Usage %+v", u)
	}
	small := put(t, dst, []byte("hello"))
	_, err = dst.Begin(small, 5)
	wantErr(t, err, ErrExists)
}

func TestAbort(t *testing.T) {
	data := content(ChunkSize+1, 8)
	src, id := source(t, data)
	fs := vfs.NewMem()
	dst := openMem(t, fs, Options{})
	p, err := dst.Begin(id, uint64(len(data)))
	must(t, err)
	transfer(t, src, p, []uint64{0})
	must(t, p.Abort())
	if u := dst.Usage(); u != (Usage{}) {
		t.Fatalf("Usage %+v", u)
	}
	if left := listTree(t, fs, "blobs/partial"); len(left) != 0 {
		t.Fatalf("partial/ holds %v", left)
	}
	_, err = dst.Stat(id)
	wantErr(t, err, ErrNotFound)
}

// TestCommitAfterPut: the same content arrived by Put meanwhile.
func TestCommitAfterPut(t *testing.T) {
	data := content(ChunkSize+1, 9)
	src, id := source(t, data)
	fs := vfs.NewMem()
	dst := openMem(t, fs, Options{})
	p, err := dst.Begin(id, uint64(len(data)))
	must(t, err)
	transfer(t, src, p, p.Missing())
	put(t, dst, data)
	must(t, p.Commit())
	if u := dst.Usage(); u.Blobs != 1 || u.Partials != 0 || u.Reserved != 0 {
		t.Fatalf("Usage %+v", u)
	}
	checkConsistent(t, dst, fs)
	if left := listTree(t, fs, "blobs/partial"); len(left) != 0 {
		t.Fatalf("partial/ holds %v", left)
	}
}

func TestWriteSliceDiskFull(t *testing.T) {
	data := content(3*ChunkSize, 10)
	size := uint64(len(data))
	src, id := source(t, data)
	mem := vfs.NewMem()
	full := diskFull()
	dst := openMem(t, errorfs.Wrap(mem, full), Options{})

	// Full at Begin: nothing is left behind.
	full.On()
	_, err := dst.Begin(id, size)
	full.Off()
	wantErr(t, err, ErrFull)
	if u := dst.Usage(); u != (Usage{}) {
		t.Fatalf("Usage after a failed Begin %+v", u)
	}
	if left := listTree(t, mem, "blobs/partial"); len(left) != 0 {
		t.Fatalf("partial/ holds %v", left)
	}

	// Full in the middle of the transfer: the chunk stays missing.
	p, err := dst.Begin(id, size)
	must(t, err)
	transfer(t, src, p, []uint64{0})
	enc, err := src.ReadSlice(id, 1)
	must(t, err)
	full.On()
	err = p.WriteSlice(1, enc)
	full.Off()
	wantErr(t, err, ErrFull)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("error does not say the disk is full: %v", err)
	}
	if m := p.Missing(); !slices.Equal(m, []uint64{1, 2}) {
		t.Fatalf("Missing %v", m)
	}
	// Through the failpoint as well.
	disable, err := failpoint.Enable(failpoint.BlobWriteError, "return")
	must(t, err)
	err = p.WriteSlice(2, mustSlice(t, src, id, 2))
	disable()
	wantErr(t, err, ErrFull)
	wantErr(t, p.Commit(), ErrIncomplete)
	transfer(t, src, p, p.Missing())
	must(t, p.Commit())
	if !bytes.Equal(readBlob(t, dst, id), data) {
		t.Fatal("content differs")
	}
	checkConsistent(t, dst, mem)
}

func mustSlice(t testing.TB, s *Store, id ID, k uint64) []byte {
	t.Helper()
	enc, err := s.ReadSlice(id, k)
	must(t, err)
	return enc
}

// TestConcurrentWriteSlice verifies slices from several goroutines at once.
func TestConcurrentWriteSlice(t *testing.T) {
	data := content(9*ChunkSize+77, 11)
	src, id := source(t, data)
	dst := openMem(t, vfs.NewMem(), Options{SyncChunks: 3})
	p, err := dst.Begin(id, uint64(len(data)))
	must(t, err)
	errs := make(chan error, 10)
	for w := range 3 {
		go func() {
			for k := uint64(w); k < 10; k += 2 { // overlapping: some chunks twice
				enc, err := src.ReadSlice(id, k)
				if err == nil {
					err = p.WriteSlice(k, enc)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range 3 {
		must(t, <-errs)
	}
	must(t, p.Commit())
	if !bytes.Equal(readBlob(t, dst, id), data) {
		t.Fatal("content differs")
	}
}

func TestHaveFileDecoding(t *testing.T) {
	have := []uint64{0b1011}
	b := encodeHave(3*ChunkSize+1, have, 4)
	size, got, err := decodeHave(b)
	if err != nil || size != 3*ChunkSize+1 || !slices.Equal(got, have) {
		t.Fatalf("round trip: %d %v %v", size, got, err)
	}
	for i := range b {
		bad := bytes.Clone(b)
		bad[i] ^= 1
		if _, _, err := decodeHave(bad); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	if _, _, err := decodeHave(b[:len(b)-1]); err == nil {
		t.Fatal("truncated bitmap accepted")
	}
}

// TestReceiveCrashAnywhere crashes at every filesystem operation of a whole
// receive (Begin, slices, Commit) and reopens: the blob is complete and
// correct, or a partial blob whose resumed transfer ends correct, or absent.
func TestReceiveCrashAnywhere(t *testing.T) {
	data := content(ChunkSize+2*GroupSize+5, 12)
	size := uint64(len(data))
	src, id := source(t, data)
	for _, unsynced := range []int{0, 100} {
		mem := vfs.NewCrashableMem()
		var clones []*vfs.MemFS
		fs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(errorfs.Op) error {
			cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced}
			if unsynced > 0 {
				cfg.RNG = rand.New(rand.NewPCG(uint64(len(clones)), 3))
			}
			clones = append(clones, mem.CrashClone(cfg))
			return nil
		}))
		dst, err := Open("blobs", Options{FS: fs, SyncChunks: 1})
		must(t, err)
		clones = clones[:0]
		p, err := dst.Begin(id, size)
		must(t, err)
		transfer(t, src, p, []uint64{1, 0})
		must(t, p.Commit())
		clones = append(clones, mem.CrashClone(vfs.CrashCloneCfg{}))
		dst.Close()
		var complete, partial, absent int
		for i, c := range clones {
			s, err := Open("blobs", Options{FS: c})
			if err != nil {
				t.Fatalf("crash at op %d: reopen: %v", i, err)
			}
			switch {
			case s.Has(id):
				complete++
			case len(s.Partials()) == 1:
				partial++
				p, err := s.Begin(id, size)
				must(t, err)
				transfer(t, src, p, p.Missing())
				must(t, p.Commit())
			default:
				absent++
				if u := s.Usage(); u != (Usage{}) {
					t.Fatalf("crash at op %d: nothing stored but Usage %+v", i, u)
				}
			}
			if s.Has(id) && !bytes.Equal(readBlob(t, s, id), data) {
				t.Fatalf("crash at op %d: content differs", i)
			}
			checkConsistent(t, s, c)
			s.Close()
		}
		t.Logf("unsynced %d%%: %d crash points: complete %d, partial %d, absent %d", unsynced, len(clones), complete, partial, absent)
		if complete == 0 || partial == 0 {
			t.Fatal("the crash points did not cover every state")
		}
	}
}
