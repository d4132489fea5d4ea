package blob

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Errors, matched with errors.Is.
var (
	// ErrNotFound: no such blob (or partial blob) in the store.
	ErrNotFound = errors.New("not found")
	// ErrCorrupt: bytes do not verify against the blob id (a slice or
	// proof from a peer, or the store's own copy when it is damaged).
	ErrCorrupt = errors.New("corrupt")
	// ErrFull: the store's byte limit or the disk is full.
	ErrFull = errors.New("store full")
	// ErrRange: a chunk or segment index past the end, or a size over
	// MaxSize.
	ErrRange = errors.New("out of range")
	// ErrExists: Begin for a blob that is already complete.
	ErrExists = errors.New("already stored")
	// ErrIncomplete: Commit before every chunk is verified.
	ErrIncomplete = errors.New("incomplete")
	// ErrBusy: the partial blob has a writer already.
	ErrBusy = errors.New("in use")
	// ErrSizeMismatch: Begin with a size other than the partial blob's.
	ErrSizeMismatch = errors.New("size mismatch")
	// ErrLocked: another process holds the store.
	ErrLocked = errors.New("store is in use by another process")
	// ErrClosed: the store or partial blob was closed.
	ErrClosed = errors.New("closed")
)

// Options configures Open. The zero value uses the OS filesystem, no
// byte limit and the wall clock.
type Options struct {
	// FS is the filesystem (nil: the OS's). Tests use vfs.NewMem(),
	// vfs.NewCrashableMem() or errorfs.
	FS vfs.FS
	// Limit bounds the bytes the store holds (blob data, outboards, and the
	// full size of partial blobs and Puts in progress); 0 means no limit. A
	// Put or Begin that would pass it fails with ErrFull.
	Limit uint64
	// Now stamps a blob's stored time (nil: time.Now).
	Now func() time.Time
	// Logger reports what Open repaired (nil: discard).
	Logger *slog.Logger
	// SyncChunks is how many chunks a partial blob verifies between two
	// persisted bitmaps (default 64, i.e. 64 MiB): a crash loses at most
	// that much verified progress, a clean Close none.
	SyncChunks int
}

// Store is a content-addressed blob store rooted in one directory. It is
// safe for concurrent use.
type Store struct {
	fs         vfs.FS
	dir        string
	limit      uint64
	now        func() time.Time
	log        *slog.Logger
	syncChunks int
	lock       io.Closer
	work       sync.Pool // *work

	mu       sync.Mutex
	closed   bool
	blobs    map[ID]entry
	partials map[ID]*partialRec
	bytes    uint64 // content of complete blobs
	disk     uint64 // complete blobs' data and outboards + reserved
	reserved uint64 // partial blobs and Puts in progress
	shards   [256]bool
	seq      uint64
}

type entry struct {
	size   uint64
	stored int64 // unix ns
}

type partialRec struct {
	size uint64
	have uint64   // bytes verified, while no writer is open
	w    *Partial // the open writer, if any
}

// work holds the buffers of one hashing operation.
type work struct {
	buf     []byte // ChunkSize, for Put (allocated on first use)
	scratch [GroupSize]byte
	b       builder
	spans   [2][maxDepth]span
}

// Usage is what the store holds; quotas are the caller's business.
type Usage struct {
	Blobs    int    `json:"blobs"`
	Bytes    uint64 `json:"bytes"` // content bytes of complete blobs
	Partials int    `json:"partials"`
	// Reserved is held for partial blobs (their full size) and Puts in
	// progress, outboards included.
	Reserved uint64 `json:"reserved"`
	// Disk is everything Limit bounds: complete blobs' data and outboards
	// plus Reserved.
	Disk  uint64 `json:"disk"`
	Limit uint64 `json:"limit"` // 0: none
}

// Info describes a stored blob.
type Info struct {
	ID       ID        `json:"id"`
	Size     uint64    `json:"size"`
	Complete bool      `json:"complete"`
	Stored   time.Time `json:"stored"` // when it became complete; zero for a partial blob
	// Have is the bytes verified so far: Size when complete.
	Have uint64 `json:"have"`
}

const (
	tmpDir     = "tmp"
	partialDir = "partial"
	lockName   = "LOCK"
	obaoExt    = ".obao"
	haveExt    = ".have"
)

// Open opens (creating if needed) the store in dir. It takes the
// directory's lock, removes what interrupted Puts left in tmp/, removes
// outboards whose data is gone and rebuilds an outboard that is missing or
// damaged from its data (removing data that does not match its name), so
// that every blob Has reports can be served. Partial blobs are kept for
// Begin to resume.
func Open(dir string, opts Options) (*Store, error) {
	s := &Store{
		fs: opts.FS, dir: dir, limit: opts.Limit, now: opts.Now, log: opts.Logger,
		syncChunks: opts.SyncChunks,
		blobs:      map[ID]entry{}, partials: map[ID]*partialRec{},
	}
	if s.fs == nil {
		s.fs = vfs.Default
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.syncChunks <= 0 {
		s.syncChunks = 64
	}
	s.work.New = func() any { return new(work) }
	if err := s.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, ioError("open "+dir, err)
	}
	// A directory just made is durable once its parent is synced.
	if err := s.syncDir(s.fs.PathDir(dir)); err != nil {
		return nil, err
	}
	lock, err := s.fs.Lock(s.fs.PathJoin(dir, lockName))
	if err != nil {
		return nil, fmt.Errorf("blob: open %s: %w: %v", dir, ErrLocked, err)
	}
	s.lock = lock
	if err := s.load(); err != nil {
		_ = lock.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) path(elem ...string) string {
	return s.fs.PathJoin(append([]string{s.dir}, elem...)...)
}

func (s *Store) dataPath(id ID) string {
	h := id.String()
	return s.path(h[:2], h)
}

func (s *Store) obaoPath(id ID) string { return s.dataPath(id) + obaoExt }

func (s *Store) load() error {
	if err := s.fs.RemoveAll(s.path(tmpDir)); err != nil {
		return ioError("open: clean tmp", err)
	}
	for _, d := range []string{tmpDir, partialDir} {
		if err := s.fs.MkdirAll(s.path(d), 0o755); err != nil {
			return ioError("open", err)
		}
	}
	if err := s.syncDir(s.dir); err != nil {
		return err
	}
	names, err := s.fs.List(s.dir)
	if err != nil {
		return ioError("open: list", err)
	}
	for _, name := range names {
		var b [1]byte
		if len(name) != 2 || strings.ToLower(name) != name {
			continue
		}
		if _, err := hex.Decode(b[:], []byte(name)); err != nil {
			continue
		}
		s.shards[b[0]] = true
		if err := s.loadShard(name); err != nil {
			return err
		}
	}
	if err := s.loadPartials(); err != nil {
		return err
	}
	return nil
}

func (s *Store) loadShard(shard string) error {
	names, err := s.fs.List(s.path(shard))
	if err != nil {
		return ioError("open: list "+shard, err)
	}
	slices.Sort(names)
	data := map[ID]bool{}
	for _, name := range names {
		if id, err := ParseID(name); err == nil && strings.ToLower(name) == name && name[:2] == shard {
			data[id] = true
		}
	}
	for _, name := range names {
		base, isObao := strings.CutSuffix(name, obaoExt)
		id, err := ParseID(base)
		if err != nil || strings.ToLower(base) != base || base[:2] != shard {
			s.log.Warn("blob: ignoring a stray file", "path", s.path(shard, name))
			continue
		}
		switch {
		case isObao && !data[id]:
			// A Put or Commit renames the outboard first and a Delete removes
			// the data first: an outboard alone is what either left.
			if err := s.fs.Remove(s.path(shard, name)); err != nil {
				return ioError("open: remove orphan outboard", err)
			}
		case !isObao:
			if err := s.loadBlob(id); err != nil {
				return err
			}
		}
	}
	return nil
}

// loadBlob indexes one complete blob, repairing its outboard if needed.
func (s *Store) loadBlob(id ID) error {
	st, err := s.fs.Stat(s.dataPath(id))
	if err != nil {
		return ioError("open: stat", err)
	}
	size := uint64(st.Size())
	if stored, err := s.readOutHeader(s.obaoPath(id), size); err == nil {
		s.index(id, entry{size, stored})
		return nil
	} else {
		s.log.Warn("blob: rebuilding an outboard", "id", id, "reason", err)
	}
	stored := s.now().UnixNano()
	if err := s.rebuildOutboard(id, size, stored); err != nil {
		if errors.Is(err, ErrCorrupt) {
			s.log.Error("blob: removing data that does not match its id", "id", id, "err", err)
			if err := s.fs.Remove(s.dataPath(id)); err != nil {
				return ioError("open: remove corrupt blob", err)
			}
			_ = s.fs.Remove(s.obaoPath(id))
			return nil
		}
		return err
	}
	s.index(id, entry{size, stored})
	return nil
}

func (s *Store) index(id ID, e entry) {
	s.blobs[id] = e
	s.bytes += e.size
	s.disk += e.size + outboardLen(e.size)
}

// readOutHeader checks the outboard at path: its header, its size (for
// a blob of size bytes) and returns the stored time.
func (s *Store) readOutHeader(path string, size uint64) (int64, error) {
	f, err := s.fs.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	h := make([]byte, outHdrSize)
	if _, err := f.ReadAt(h, 0); err != nil {
		return 0, err
	}
	hs, stored, err := decodeOutHeader(h)
	if err != nil {
		return 0, err
	}
	if hs != size || uint64(st.Size()) != outboardLen(size) {
		return 0, fmt.Errorf("blob: outboard for %d bytes (%d long), data has %d: %w", hs, st.Size(), size, ErrCorrupt)
	}
	return stored, nil
}

// rebuildOutboard hashes a blob's data and writes its outboard, or returns
// ErrCorrupt when the data does not hash to id.
func (s *Store) rebuildOutboard(id ID, size uint64, stored int64) error {
	df, err := s.fs.Open(s.dataPath(id))
	if err != nil {
		return ioError("open: rebuild outboard", err)
	}
	defer df.Close()
	tmp := s.tempPath("rebuild") + obaoExt
	of, err := s.create(tmp)
	if err != nil {
		return ioError("open: rebuild outboard", err)
	}
	defer func() { _ = s.fs.Remove(tmp) }()
	err = func() error {
		defer of.Close()
		if err := of.write(encodeOutHeader(size, stored)); err != nil {
			return err
		}
		got, n, err := s.ingest(context.Background(), io.NewSectionReader(df, 0, int64(size)), nil, of, nil)
		if err != nil {
			return err
		}
		if got != id || n != size {
			return fmt.Errorf("blob: %s holds content %s: %w", id, got, ErrCorrupt)
		}
		return of.Sync()
	}()
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			return err
		}
		return ioError("open: rebuild outboard of "+id.String(), err)
	}
	if err := s.fs.Rename(tmp, s.obaoPath(id)); err != nil {
		return ioError("open: rebuild outboard", err)
	}
	return s.syncDir(s.fs.PathDir(s.dataPath(id)))
}

func (s *Store) tempPath(kind string) string {
	s.mu.Lock()
	s.seq++
	n := s.seq
	s.mu.Unlock()
	return s.path(tmpDir, fmt.Sprintf("%s-%d", kind, n))
}

func (s *Store) create(path string) (*file, error) {
	f, err := s.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, err
	}
	return &file{f, path}, nil
}

func (s *Store) syncDir(dir string) error {
	d, err := s.fs.OpenDir(dir)
	if err != nil {
		return ioError("sync "+dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return ioError("sync "+dir, err)
	}
	return nil
}

// Close releases the store. Partial blobs still open are closed (their
// progress persisted); Puts still running fail.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	var open []*Partial
	for _, r := range s.partials {
		if r.w != nil {
			open = append(open, r.w)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, p := range open {
		errs = append(errs, p.Close())
	}
	errs = append(errs, s.lock.Close())
	return errors.Join(errs...)
}

// reserve accounts n more bytes held by work in progress, or fails with
// ErrFull when the limit would be passed.
func (s *Store) reserve(n uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("blob: %w", ErrClosed)
	}
	if s.limit > 0 && s.disk+n > s.limit {
		return fmt.Errorf("blob: %w: %d bytes held, %d more would pass the limit of %d", ErrFull, s.disk, n, s.limit)
	}
	s.disk += n
	s.reserved += n
	return nil
}

func (s *Store) release(n uint64) {
	s.mu.Lock()
	s.disk -= n
	s.reserved -= n
	s.mu.Unlock()
}

// Put stores the content r yields and returns its id and size. The content
// is streamed to a temporary file while it is hashed and its outboard
// built, synced, and renamed into place; content already stored is not
// stored twice. On any error (ErrFull when the limit or the disk is full,
// the context's error, r's error) nothing of it remains.
func (s *Store) Put(ctx context.Context, r io.Reader) (ID, uint64, error) {
	tmp := s.tempPath("put")
	var held uint64
	fail := func(err error) (ID, uint64, error) {
		_ = s.fs.Remove(tmp)
		_ = s.fs.Remove(tmp + obaoExt)
		s.release(held)
		return ID{}, 0, err
	}
	reserve := func(n uint64) error {
		if err := s.reserve(n); err != nil {
			return err
		}
		held += n
		return nil
	}
	if err := reserve(outHdrSize); err != nil {
		return fail(err)
	}
	df, err := s.create(tmp)
	if err != nil {
		return fail(ioError("put", err))
	}
	of, err := s.create(tmp + obaoExt)
	if err != nil {
		df.Close()
		return fail(ioError("put", err))
	}
	id, size, stored, err := func() (ID, uint64, int64, error) {
		defer df.Close()
		defer of.Close()
		if err := of.write(make([]byte, outHdrSize)); err != nil {
			return ID{}, 0, 0, ioError("put: write outboard", err)
		}
		id, size, err := s.ingest(ctx, r, df, of, reserve)
		if err != nil {
			return ID{}, 0, 0, err
		}
		stored := s.now().UnixNano()
		if err := of.writeAt(encodeOutHeader(size, stored), 0); err != nil {
			return ID{}, 0, 0, ioError("put: write outboard", err)
		}
		if err := df.Sync(); err != nil {
			return ID{}, 0, 0, ioError("put: sync", err)
		}
		if err := of.Sync(); err != nil {
			return ID{}, 0, 0, ioError("put: sync", err)
		}
		return id, size, stored, nil
	}()
	if err != nil {
		return fail(err)
	}
	if err := s.install(id, entry{size, stored}, tmp, tmp+obaoExt, held); err != nil {
		return fail(err)
	}
	return id, size, nil
}

// ingest hashes r's content, writing it to data (if not nil) and the
// outboard's pairs to obao, calling reserve (if not nil) before each write.
func (s *Store) ingest(ctx context.Context, r io.Reader, data, obao sink, reserve func(uint64) error) (ID, uint64, error) {
	w := s.work.Get().(*work)
	defer s.work.Put(w)
	if w.buf == nil {
		w.buf = make([]byte, ChunkSize)
	}
	b := &w.b
	b.reset(false)
	var size uint64
	for {
		if err := ctx.Err(); err != nil {
			return ID{}, 0, fmt.Errorf("blob: put: %w", err)
		}
		n, rerr := io.ReadFull(r, w.buf)
		if n > 0 {
			if size+uint64(n) > MaxSize {
				return ID{}, 0, fmt.Errorf("blob: put: content over %d bytes: %w", uint64(MaxSize), ErrRange)
			}
			for i := 0; i < n; i += GroupSize {
				seg := (size + uint64(i)) / SegmentSize
				b.add(groupNode(w.buf[i:min(i+GroupSize, n)], seg, &w.scratch), seg/groupSegs)
			}
			if err := s.ingestWrite(w.buf[:n], b, data, obao, reserve); err != nil {
				return ID{}, 0, err
			}
			size += uint64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return ID{}, 0, fmt.Errorf("blob: put: read: %w", rerr)
		}
	}
	if size == 0 {
		b.add(groupNode(nil, 0, &w.scratch), 0)
	}
	root := b.finish(rootFlag)
	if err := s.ingestWrite(nil, b, data, obao, reserve); err != nil {
		return ID{}, 0, err
	}
	var id ID
	cvBytes(&root, id[:])
	return id, size, nil
}

// sink takes what ingest produces: a store file, or a comparison.
type sink interface{ write(p []byte) error }

func (s *Store) ingestWrite(p []byte, b *builder, data, obao sink, reserve func(uint64) error) error {
	if reserve != nil {
		if err := reserve(uint64(len(p) + len(b.pairs))); err != nil {
			return err
		}
	}
	if data != nil && len(p) > 0 {
		if err := data.write(p); err != nil {
			return ioError("put: write", err)
		}
	}
	if len(b.pairs) > 0 {
		if err := obao.write(b.pairs); err != nil {
			return ioError("put: write outboard", err)
		}
		b.pairs = b.pairs[:0]
	}
	return nil
}

// install moves a finished blob's synced files (data, outboard) into
// place, outboard first, so that data without its outboard never appears;
// if the blob is already there it drops them instead. held is what the work
// reserved (the blob's data and outboard).
func (s *Store) install(id ID, e entry, data, obao string, held uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.installLocked(id, e, data, obao, held)
}

func (s *Store) installLocked(id ID, e entry, data, obao string, held uint64) error {
	if s.closed {
		return fmt.Errorf("blob: %w", ErrClosed)
	}
	if _, ok := s.blobs[id]; ok {
		_ = s.fs.Remove(data)
		_ = s.fs.Remove(obao)
		s.disk -= held
		s.reserved -= held
		return nil
	}
	if !s.shards[id[0]] {
		if err := s.fs.MkdirAll(s.fs.PathDir(s.dataPath(id)), 0o755); err != nil {
			return ioError("install", err)
		}
		if err := s.syncDir(s.dir); err != nil {
			return err
		}
		s.shards[id[0]] = true
	}
	if err := s.fs.Rename(obao, s.obaoPath(id)); err != nil {
		return ioError("install", err)
	}
	if err := s.fs.Rename(data, s.dataPath(id)); err != nil {
		_ = s.fs.Remove(s.obaoPath(id))
		return ioError("install", err)
	}
	if err := s.syncDir(s.fs.PathDir(s.dataPath(id))); err != nil {
		// The rename may or may not survive a crash; either way the store
		// is consistent (an outboard alone is removed at Open). Keep it.
		s.log.Warn("blob: directory sync failed after install", "id", id, "err", err)
	}
	s.disk -= held
	s.reserved -= held
	s.index(id, e)
	return nil
}

// Has reports whether the blob is stored complete.
func (s *Store) Has(id ID) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.blobs[id]
	return ok
}

func (s *Store) entry(id ID) (entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return entry{}, fmt.Errorf("blob: %w", ErrClosed)
	}
	e, ok := s.blobs[id]
	if !ok {
		return entry{}, fmt.Errorf("blob: %s: %w", id, ErrNotFound)
	}
	return e, nil
}

// Stat describes a complete or partial blob.
func (s *Store) Stat(id ID) (Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.blobs[id]; ok {
		return Info{ID: id, Size: e.size, Complete: true, Stored: time.Unix(0, e.stored), Have: e.size}, nil
	}
	if r, ok := s.partials[id]; ok {
		return s.partialInfo(id, r), nil
	}
	return Info{}, fmt.Errorf("blob: %s: %w", id, ErrNotFound)
}

// List returns the ids of the complete blobs, sorted.
func (s *Store) List() []ID {
	s.mu.Lock()
	ids := make([]ID, 0, len(s.blobs))
	for id := range s.blobs {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	slices.SortFunc(ids, func(a, b ID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}

// Usage is what the store holds now.
func (s *Store) Usage() Usage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Usage{Blobs: len(s.blobs), Bytes: s.bytes, Partials: len(s.partials), Reserved: s.reserved, Disk: s.disk, Limit: s.limit}
}

// Delete removes a blob: the complete blob and any partial one that has no
// open writer (ErrBusy if it has). Readers already open keep reading.
func (s *Store) Delete(id ID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("blob: %w", ErrClosed)
	}
	e, complete := s.blobs[id]
	r, partial := s.partials[id]
	if !complete && !partial {
		return fmt.Errorf("blob: delete %s: %w", id, ErrNotFound)
	}
	if partial && r.w != nil {
		return fmt.Errorf("blob: delete %s: partial blob %w", id, ErrBusy)
	}
	if complete {
		// Data first: an outboard alone is cleaned up at Open, data alone
		// would need its outboard rebuilt.
		if err := s.fs.Remove(s.dataPath(id)); err != nil && !isNotExist(err) {
			return ioError("delete", err)
		}
		delete(s.blobs, id)
		s.bytes -= e.size
		s.disk -= e.size + outboardLen(e.size)
		if err := s.fs.Remove(s.obaoPath(id)); err != nil && !isNotExist(err) {
			return ioError("delete", err)
		}
	}
	if partial {
		if err := s.removePartialFiles(id); err != nil {
			return err
		}
		delete(s.partials, id)
		s.disk -= r.size + outboardLen(r.size)
		s.reserved -= r.size + outboardLen(r.size)
	}
	return nil
}

// Reader reads a stored blob: io.Reader, io.ReaderAt, io.Seeker and Size.
type Reader struct {
	*io.SectionReader
	f vfs.File
}

// Close closes the underlying file.
func (r *Reader) Close() error { return r.f.Close() }

// Open opens a complete blob for reading.
func (s *Store) Open(id ID) (*Reader, error) {
	e, err := s.entry(id)
	if err != nil {
		return nil, err
	}
	f, err := s.fs.Open(s.dataPath(id))
	if err != nil {
		if isNotExist(err) {
			return nil, fmt.Errorf("blob: open %s: %w", id, ErrNotFound)
		}
		return nil, ioError("open "+id.String(), err)
	}
	return &Reader{io.NewSectionReader(f, 0, int64(e.size)), f}, nil
}

// readFull reads exactly len(p) bytes at off; a short file is ErrCorrupt
// (the store's copy was truncated behind its back).
func readFull(f vfs.File, p []byte, off uint64, what string) error {
	n, err := f.ReadAt(p, int64(off))
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		return fmt.Errorf("blob: %s: short read at %d: %w", what, off, ErrCorrupt)
	}
	return fmt.Errorf("blob: %s: %w", what, err)
}

// openPair opens a complete blob's data and outboard.
func (s *Store) openPair(id ID, op string) (data, obao vfs.File, err error) {
	data, err = s.fs.Open(s.dataPath(id))
	if err == nil {
		obao, err = s.fs.Open(s.obaoPath(id))
		if err != nil {
			data.Close()
		}
	}
	if err != nil {
		if isNotExist(err) {
			return nil, nil, fmt.Errorf("blob: %s %s: %w", op, id, ErrNotFound)
		}
		return nil, nil, ioError(op+" "+id.String(), err)
	}
	return data, obao, nil
}

// readPairs reads the outboard pairs of path (spans in segments, all above
// group level) into dst, 64 bytes each.
func readPairs(obao vfs.File, nseg uint64, path []span, dst []byte, what string) error {
	ng := ceilDiv(nseg, groupSegs)
	for i, sp := range path {
		off := outHdrSize + pairSize*entryIndex(ng, groupSpan(sp))
		if err := readFull(obao, dst[i*pairSize:(i+1)*pairSize], off, what); err != nil {
			return err
		}
	}
	return nil
}

// ReadSlice returns the slice encoding of transfer chunk k of a complete
// blob: the content length (8 bytes, little endian), the child pair of
// each ancestor of the chunk from the root down (64 bytes each), then the
// chunk's bytes — the Bao slice encoding with 1 MiB groups, which
// VerifySlice and Partial.WriteSlice check. It reads what it sends without
// hashing it: the receiver verifies.
func (s *Store) ReadSlice(id ID, k uint64) ([]byte, error) {
	return s.AppendSlice(nil, id, k)
}

// AppendSlice is ReadSlice appending to dst, so a sender can reuse one
// buffer (SliceLen bytes) for every chunk.
func (s *Store) AppendSlice(dst []byte, id ID, k uint64) ([]byte, error) {
	e, err := s.entry(id)
	if err != nil {
		return dst, err
	}
	var buf [maxDepth]span
	path, off, length, err := sliceLayout(e.size, k, buf[:0])
	if err != nil {
		return dst, err
	}
	data, obao, err := s.openPair(id, "read slice")
	if err != nil {
		return dst, err
	}
	defer data.Close()
	defer obao.Close()
	start := len(dst)
	dst = slices.Grow(dst, lenPrefix+pairSize*len(path)+int(length))
	out := dst[start : start+lenPrefix+pairSize*len(path)+int(length)]
	binary.LittleEndian.PutUint64(out, e.size)
	what := "read slice of " + id.String()
	if err := readPairs(obao, leaves(e.size), path, out[lenPrefix:], what); err != nil {
		return dst[:start], err
	}
	if err := readFull(data, out[lenPrefix+pairSize*len(path):], off, what); err != nil {
		return dst[:start], err
	}
	return dst[:start+len(out)], nil
}

// Prove returns the storage proof of segment seg of a complete blob (see
// Proof). It reads the segment's group (16 KiB) and the outboard pairs
// above it, recomputes the pairs inside the group, and checks the result
// with VerifyProof: a damaged copy gives ErrCorrupt, never a bad proof.
func (s *Store) Prove(id ID, seg uint64) (Proof, error) {
	e, err := s.entry(id)
	if err != nil {
		return nil, err
	}
	w := s.work.Get().(*work)
	defer s.work.Put(w)
	path, length, err := proofLayout(e.size, seg, w.spans[0][:0])
	if err != nil {
		return nil, err
	}
	n := leaves(e.size)
	g := seg / groupSegs
	gs := span{g * groupSegs, min((g+1)*groupSegs, n)}
	top, _ := ancestors(n, gs, w.spans[1][:0])
	data, obao, err := s.openPair(id, "prove")
	if err != nil {
		return nil, err
	}
	defer data.Close()
	defer obao.Close()
	what := "prove " + id.String()
	out := make([]byte, lenPrefix+pairSize*len(path)+int(length))
	binary.LittleEndian.PutUint64(out, e.size)
	if err := readPairs(obao, n, top, out[lenPrefix:], what); err != nil {
		return nil, err
	}
	gdata := w.scratch[:min(gs.hi*SegmentSize, e.size)-gs.lo*SegmentSize]
	if err := readFull(data, gdata, gs.lo*SegmentSize, what); err != nil {
		return nil, err
	}
	var cvs [groupSegs]cv
	segmentCVs(gdata, gs.lo, &cvs)
	for i := len(top); i < len(path); i++ {
		sp := path[i]
		m := split(sp.lo, sp.hi)
		l, r := subtreeCV(cvs[:], gs.lo, span{sp.lo, m}), subtreeCV(cvs[:], gs.lo, span{m, sp.hi})
		cvBytes(&l, out[lenPrefix+i*pairSize:])
		cvBytes(&r, out[lenPrefix+i*pairSize+cvSize:])
	}
	start := (seg - gs.lo) * SegmentSize
	copy(out[lenPrefix+pairSize*len(path):], gdata[start:start+length])
	if err := VerifyProof(id, e.size, seg, out); err != nil {
		return nil, fmt.Errorf("blob: prove segment %d of %s: the stored copy is damaged: %w", seg, id, ErrCorrupt)
	}
	return out, nil
}

// Check re-reads a complete blob and verifies its data against its id and
// its outboard against the data (a scrub): ErrCorrupt if either is damaged.
func (s *Store) Check(ctx context.Context, id ID) error {
	e, err := s.entry(id)
	if err != nil {
		return err
	}
	data, obao, err := s.openPair(id, "check")
	if err != nil {
		return err
	}
	defer data.Close()
	defer obao.Close()
	h := make([]byte, outHdrSize)
	if err := readFull(obao, h, 0, "check "+id.String()); err != nil {
		return err
	}
	if size, _, err := decodeOutHeader(h); err != nil || size != e.size {
		return fmt.Errorf("blob: check %s: outboard header: %w", id, ErrCorrupt)
	}
	if st, err := obao.Stat(); err != nil || uint64(st.Size()) != outboardLen(e.size) {
		return fmt.Errorf("blob: check %s: outboard length: %w", id, ErrCorrupt)
	}
	cmp := &compareWriter{r: io.NewSectionReader(obao, outHdrSize, int64(outboardLen(e.size)-outHdrSize))}
	got, size, err := s.ingest(ctx, io.NewSectionReader(data, 0, int64(e.size)+1), nil, cmp, nil)
	if err != nil {
		return err
	}
	if got != id || size != e.size {
		return fmt.Errorf("blob: check %s: data hashes to %s (%d bytes): %w", id, got, size, ErrCorrupt)
	}
	if cmp.bad {
		return fmt.Errorf("blob: check %s: outboard does not match the data: %w", id, ErrCorrupt)
	}
	return nil
}

// compareWriter compares what is written with what r yields.
type compareWriter struct {
	r   io.Reader
	buf []byte
	bad bool
}

func (c *compareWriter) write(p []byte) error {
	if cap(c.buf) < len(p) {
		c.buf = make([]byte, len(p))
	}
	b := c.buf[:len(p)]
	if _, err := io.ReadFull(c.r, b); err != nil || !bytes.Equal(b, p) {
		c.bad = true
	}
	return nil
}
