package blob

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// content is n deterministic pseudo-random bytes.
func content(n int, seed uint64) []byte {
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// fixedClock is a clock that only moves when told.
type fixedClock struct{ t time.Time }

func (c *fixedClock) now() time.Time { return c.t }

func openMem(t testing.TB, fs vfs.FS, opts Options) *Store {
	t.Helper()
	opts.FS = fs
	s, err := Open("blobs", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func put(t testing.TB, s *Store, data []byte) ID {
	t.Helper()
	id, size, err := s.Put(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatalf("put %d bytes: %v", len(data), err)
	}
	if size != uint64(len(data)) {
		t.Fatalf("put: size %d, want %d", size, len(data))
	}
	return id
}

func readBlob(t testing.TB, s *Store, id ID) []byte {
	t.Helper()
	r, err := s.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != r.Size() {
		t.Fatalf("read %d bytes, Size %d", len(b), r.Size())
	}
	return b
}

// diskFull is an errorfs injector that fails writes with ENOSPC while on.
func diskFull() *errorfs.Toggle {
	return &errorfs.Toggle{Injector: errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind.ReadOrWrite() == errorfs.OpIsWrite {
			return fmt.Errorf("injected on %s: %w", op.Path, syscall.ENOSPC)
		}
		return nil
	})}
}

// listTree lists every file under dir of fs (relative paths).
func listTree(t testing.TB, fs vfs.FS, dir string) []string {
	t.Helper()
	var out []string
	var walk func(string, string)
	walk = func(d, rel string) {
		names, err := fs.List(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			p := fs.PathJoin(d, n)
			st, err := fs.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.IsDir() {
				walk(p, rel+n+"/")
			} else {
				out = append(out, rel+n)
			}
		}
	}
	walk(dir, "")
	return out
}

func wantErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

// checkConsistent asserts what the store promises after any failure or
// crash: every blob it lists can be served and checks out, and nothing is
// left in tmp/.
func checkConsistent(t testing.TB, s *Store, fs vfs.FS) {
	t.Helper()
	for _, id := range s.List() {
		if err := s.Check(context.Background(), id); err != nil {
			t.Fatalf("listed blob %s: %v", id, err)
		}
		st, _ := s.Stat(id)
		for k := uint64(0); k < ChunkCount(st.Size); k++ {
			enc, err := s.ReadSlice(id, k)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := VerifySlice(id, st.Size, k, enc); err != nil {
				t.Fatal(err)
			}
		}
	}
	if left, _ := fs.List(fs.PathJoin("blobs", tmpDir)); len(left) != 0 {
		t.Fatalf("tmp/ holds %v", left)
	}
}

func errorsIs(err, target error) bool { return errors.Is(err, target) }
