package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/wal"
)

// smallFS is an in-memory filesystem of a fixed capacity: a write that
// would take it past its capacity fails with ENOSPC, as a full disk does,
// and GetDiskUsage reports what is left. It stands for the small
// filesystem a test cannot mount.
type smallFS struct {
	vfs.FS
	mu       sync.Mutex
	capacity int64
}

func newSmallFS(capacity int64) *smallFS { return &smallFS{FS: vfs.NewMem(), capacity: capacity} }

// used adds up the sizes of all files.
func (fs *smallFS) used() int64 {
	var total int64
	var walk func(dir string)
	walk = func(dir string) {
		names, err := fs.FS.List(dir)
		if err != nil {
			return
		}
		for _, n := range names {
			p := fs.PathJoin(dir, n)
			if fi, err := fs.FS.Stat(p); err == nil {
				if fi.IsDir() {
					walk(p)
				} else {
					total += fi.Size()
				}
			}
		}
	}
	walk("/")
	return total
}

func (fs *smallFS) grow(by int64) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.capacity += by
}

// reserve fails with ENOSPC if n more bytes do not fit.
func (fs *smallFS) reserve(name string, n int) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.used()+int64(n) > fs.capacity {
		return &os.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
	}
	return nil
}

func (fs *smallFS) GetDiskUsage(string) (vfs.DiskUsage, error) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	used := fs.used()
	return vfs.DiskUsage{AvailBytes: uint64(max(0, fs.capacity-used)), TotalBytes: uint64(fs.capacity), UsedBytes: uint64(used)}, nil
}

func (fs *smallFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs *smallFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, c, opts...)
	return fs.wrap(name, f, err)
}

func (fs *smallFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return fs.wrap(newname, f, err)
}

func (fs *smallFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &smallFile{File: f, fs: fs, name: name}, nil
}

type smallFile struct {
	vfs.File
	fs   *smallFS
	name string
}

func (f *smallFile) Write(p []byte) (int, error) {
	if err := f.fs.reserve(f.name, len(p)); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *smallFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.fs.reserve(f.name, len(p)); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

// TestRestartAfterDiskFull fills a small filesystem with blocks until a
// commit fails for lack of space, frees a little and restarts: the store
// must refuse to open with ErrNoSpace, saying where and how much it needs,
// instead of retrying the replay of its write-ahead log forever; once that
// much is free it opens at the last committed block and goes on.
func TestRestartAfterDiskFull(t *testing.T) {
	const capacity, ballast = 12 << 20, 1 << 20
	fs := newSmallFS(capacity)
	f, err := fs.Create("ballast", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(make([]byte, ballast)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	opts := StoreOptions{FS: fs, FreeReserve: 256 << 10}
	s, err := Open("data", opts)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(6, 6))
	var last uint64
	for i := 0; ; i++ {
		txs := make([][]byte, 8)
		for j := range txs {
			txs[j] = make([]byte, 64<<10)
			for k := range txs[j] {
				txs[j][k] = byte(rng.Uint32())
			}
		}
		if err := tryCommitTxBlock(s, txs); err != nil {
			if !errors.Is(err, ErrStorageFailed) {
				t.Fatalf("block %d: %v, want a storage failure", i, err)
			}
			break
		}
		last = s.Head().Height
		if i > 1000 {
			t.Fatal("the disk never filled")
		}
	}
	closeAfterFailure(s)
	t.Logf("disk full after block %d", last)

	// Free a little: the ballast.
	if err := fs.Remove("ballast"); err != nil {
		t.Fatal(err)
	}
	_, err = openWithin(t, "data", opts, 20*time.Second)
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("open with %d bytes free: %v, want ErrNoSpace", ballast, err)
	}
	t.Logf("refused: %v", err)
	var need int64
	if i := strings.Index(err.Error(), "free at least "); i < 0 || !strings.Contains(err.Error(), "data") {
		t.Fatalf("the refusal does not say where and how much: %v", err)
	} else if _, err := fmt.Sscanf(err.Error()[i:], "free at least %d bytes", &need); err != nil {
		t.Fatalf("the refusal does not say how much: %v", err)
	}

	// Free what it asked for: it opens where it stopped and goes on.
	du, _ := fs.GetDiskUsage("data")
	fs.grow(need - int64(du.AvailBytes))
	s, err = openWithin(t, "data", opts, 20*time.Second)
	if err != nil {
		t.Fatalf("open with the space it asked for: %v", err)
	}
	defer s.Close()
	if s.Head().Height != last {
		t.Fatalf("reopened at %d, last commit was %d", s.Head().Height, last)
	}
	if err := tryCommitTxBlock(s, [][]byte{[]byte("after")}); err != nil {
		t.Fatalf("commit after recovery: %v", err)
	}
}

// openWithin opens a store, failing the test if Open does not return in
// time (it used to retry a failing flush forever).
func openWithin(t *testing.T, dir string, opts StoreOptions, d time.Duration) (*Store, error) {
	t.Helper()
	type result struct {
		s   *Store
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := Open(dir, opts)
		ch <- result{s, err}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-ctx.Done():
		t.Fatalf("open did not return within %s", d)
		return nil, nil
	}
}

// closeAfterFailure closes a store whose disk failed; Pebble may panic.
func closeAfterFailure(s *Store) {
	defer func() { _ = recover() }()
	_ = s.Close()
}

// TestLiveWALBytesIsWhatPebbleReplays holds liveWALBytes to Pebble: after
// memtables were flushed (their logs kept only for reuse), the logs it
// counts are exactly the ones Pebble replays on the next open, read from
// Pebble's own log of the replay.
func TestLiveWALBytesIsWhatPebbleReplays(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("data", StoreOptions{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	big := func(n int) [][]byte {
		txs := make([][]byte, n)
		for i := range txs {
			txs[i] = bytes.Repeat([]byte{byte(i)}, 32<<10)
		}
		return txs
	}
	allLogs := func() (n int, size int64) {
		logs, err := wal.Scan(wal.Dir{FS: fs, Dirname: "data"})
		if err != nil {
			t.Fatal(err)
		}
		for _, ll := range logs {
			sz, _ := ll.PhysicalSize()
			n, size = n+1, size+int64(sz)
		}
		return n, size
	}
	for round := range 4 {
		for range 5 {
			commitTxBlock(t, s, big(16))
		}
		if round < 3 {
			if err := s.db.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	head := s.Head()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	live := liveWALBytes(fs, "data")
	n, all := allLogs()
	t.Logf("%d log files, %d bytes; live %d bytes", n, all, live)
	if live <= 0 || live >= all {
		t.Fatalf("live WAL bytes %d of %d in %d files: flushed logs are counted or live ones are not", live, all, n)
	}

	// What Pebble replays on open, from its own log (the replayed logs are
	// gone after the open).
	logs, err := wal.Scan(wal.Dir{FS: fs, Dirname: "data"})
	if err != nil {
		t.Fatal(err)
	}
	sizes := map[uint64]int64{}
	for _, ll := range logs {
		sz, _ := ll.PhysicalSize()
		sizes[uint64(ll.Num)] = int64(sz)
	}
	var logBuf strings.Builder
	logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err = Open("data", StoreOptions{FS: fs, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Head() != head {
		t.Fatal("head changed across the reopen")
	}
	replayed := regexp.MustCompile(`WAL (\d+)\S* .*?stopped reading at offset`).FindAllStringSubmatch(logBuf.String(), -1)
	var replayedBytes int64
	for _, m := range replayed {
		num, _ := strconv.ParseUint(m[1], 10, 64)
		replayedBytes += sizes[num]
	}
	if len(replayed) == 0 || replayedBytes != live {
		t.Fatalf("pebble replayed %d logs of %d bytes; liveWALBytes said %d", len(replayed), replayedBytes, live)
	}
}
