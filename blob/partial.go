package blob

import (
	"bytes"
	"fmt"
	"io"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Partial is a blob being received chunk by chunk: each slice is verified
// against the blob id before it is written, and a bitmap of verified chunks
// is persisted so that after a broken connection or a restart Missing says
// what to fetch again. Commit makes it a complete blob. A Partial is safe
// for concurrent use: slices from several peers can be verified in
// parallel.
type Partial struct {
	s          *Store
	id         ID
	size       uint64
	nseg       uint64
	chunks     uint64
	data, obao *file
	dataPath   string
	obaoPath   string
	havePath   string

	mu       sync.RWMutex
	closed   bool
	have     []uint64      // bit k: chunk k verified and written
	count    atomic.Uint64 // chunks verified
	bytes    atomic.Uint64 // their bytes
	unsynced int           // chunks verified since the bitmap was last persisted
}

func (s *Store) partialPath(id ID) string { return s.path(partialDir, id.String()) }

// Begin starts receiving the blob (id, size), or resumes the partial blob
// left by an earlier Begin (after Close or a restart). The full size and
// its outboard are reserved against the limit (ErrFull) and preallocated on
// disk, so a full disk shows here rather than in the middle of a transfer.
// A blob already complete is ErrExists; a partial blob with another writer
// is ErrBusy, one begun with another size ErrSizeMismatch (Delete it to
// start over).
func (s *Store) Begin(id ID, size uint64) (*Partial, error) {
	if size > MaxSize {
		return nil, fmt.Errorf("blob: begin %s: size %d: %w", id, size, ErrRange)
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, fmt.Errorf("blob: %w", ErrClosed)
	}
	if _, ok := s.blobs[id]; ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("blob: begin %s: %w", id, ErrExists)
	}
	rec, resume := s.partials[id]
	switch {
	case resume && rec.w != nil:
		s.mu.Unlock()
		return nil, fmt.Errorf("blob: begin %s: partial blob %w", id, ErrBusy)
	case resume && rec.size != size:
		s.mu.Unlock()
		return nil, fmt.Errorf("blob: begin %s with %d bytes: the partial blob has %d: %w", id, size, rec.size, ErrSizeMismatch)
	case !resume:
		need := size + outboardLen(size)
		if s.limit > 0 && s.disk+need > s.limit {
			s.mu.Unlock()
			return nil, fmt.Errorf("blob: begin %s: %w: %d bytes held, %d more would pass the limit of %d", id, ErrFull, s.disk, need, s.limit)
		}
		s.disk += need
		s.reserved += need
		rec = &partialRec{size: size}
		s.partials[id] = rec
	}
	base := s.partialPath(id)
	p := &Partial{
		s: s, id: id, size: size, nseg: leaves(size), chunks: ChunkCount(size),
		dataPath: base, obaoPath: base + obaoExt, havePath: base + haveExt,
	}
	rec.w = p
	s.mu.Unlock()

	var err error
	if resume {
		err = p.resume()
	} else {
		err = p.create()
	}
	if err != nil {
		p.closeFiles()
		s.mu.Lock()
		rec.w = nil
		if !resume {
			_ = s.removePartialFiles(id)
			delete(s.partials, id)
			need := size + outboardLen(size)
			s.disk -= need
			s.reserved -= need
		}
		s.mu.Unlock()
		return nil, err
	}
	return p, nil
}

// create makes a new partial blob's files: the (empty) bitmap first, so
// that at Open a partial blob is whatever has a bitmap.
func (p *Partial) create() error {
	p.have = make([]uint64, ceilDiv(p.chunks, 64))
	if err := p.writeHave(); err != nil {
		return err
	}
	return p.createFiles()
}

// createFiles creates the data and outboard files, preallocated, synced
// and in the directory before any chunk can be marked verified.
func (p *Partial) createFiles() error {
	s := p.s
	var err error
	if p.data, err = s.create(p.dataPath); err != nil {
		return ioError("begin", err)
	}
	if p.obao, err = s.create(p.obaoPath); err != nil {
		return ioError("begin", err)
	}
	if err := p.data.preallocate(p.size); err != nil {
		return ioError("begin: preallocate", err)
	}
	if err := p.obao.preallocate(outboardLen(p.size)); err != nil {
		return ioError("begin: preallocate", err)
	}
	if err := p.obao.writeAt(encodeOutHeader(p.size, 0), 0); err != nil {
		return ioError("begin", err)
	}
	if err := p.data.Sync(); err != nil {
		return ioError("begin: sync", err)
	}
	if err := p.obao.Sync(); err != nil {
		return ioError("begin: sync", err)
	}
	return s.syncDir(s.path(partialDir))
}

// resume reopens a partial blob's files and its bitmap. Files that are
// missing or do not belong to this blob are started afresh.
func (p *Partial) resume() error {
	s := p.s
	p.have = make([]uint64, ceilDiv(p.chunks, 64))
	fresh := false
	if b, err := readAll(s, p.havePath); err != nil {
		s.log.Warn("blob: partial bitmap unreadable; refetching everything", "id", p.id, "err", err)
		fresh = true
	} else if size, have, err := decodeHave(b); err != nil || size != p.size {
		s.log.Warn("blob: partial bitmap damaged; refetching everything", "id", p.id, "err", err)
		fresh = true
	} else {
		p.have = have
	}
	if !fresh {
		if _, err := s.readOutHeaderPartial(p.obaoPath, p.size); err != nil {
			fresh = true
		} else if _, err := s.fs.Stat(p.dataPath); err != nil {
			fresh = true
		}
	}
	if fresh {
		clear(p.have)
		if err := p.writeHave(); err != nil {
			return err
		}
		return p.createFiles()
	}
	var err error
	f, err := s.fs.OpenReadWrite(p.dataPath, vfs.WriteCategoryUnspecified)
	if err != nil {
		return ioError("begin", err)
	}
	p.data = &file{f, p.dataPath}
	if f, err = s.fs.OpenReadWrite(p.obaoPath, vfs.WriteCategoryUnspecified); err != nil {
		return ioError("begin", err)
	}
	p.obao = &file{f, p.obaoPath}
	n, b := haveCount(p.have, p.size)
	p.count.Store(n)
	p.bytes.Store(b)
	return nil
}

// haveCount is the number of chunks set in have and their bytes.
func haveCount(have []uint64, size uint64) (chunks, bytes uint64) {
	for _, w := range have {
		chunks += uint64(bits.OnesCount64(w))
	}
	bytes = chunks * ChunkSize
	if last := ChunkCount(size) - 1; have[last/64]&(1<<(last%64)) != 0 {
		bytes -= ChunkSize - (size - last*ChunkSize)
	}
	return chunks, bytes
}

// readOutHeaderPartial checks a partial blob's outboard header.
func (s *Store) readOutHeaderPartial(path string, size uint64) (int64, error) {
	f, err := s.fs.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := make([]byte, outHdrSize)
	if err := readFull(f, h, 0, "partial outboard"); err != nil {
		return 0, err
	}
	hs, stored, err := decodeOutHeader(h)
	if err == nil && hs != size {
		err = fmt.Errorf("blob: partial outboard for %d bytes, want %d: %w", hs, size, ErrCorrupt)
	}
	return stored, err
}

func readAll(s *Store, path string) ([]byte, error) {
	f, err := s.fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// writeHave persists the bitmap atomically (write, sync, rename).
func (p *Partial) writeHave() error {
	tmp := p.havePath + ".tmp"
	f, err := p.s.create(tmp)
	if err != nil {
		return ioError("partial: write bitmap", err)
	}
	err = f.write(encodeHave(p.size, p.have, p.chunks))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = p.s.fs.Rename(tmp, p.havePath)
	}
	if err != nil {
		_ = p.s.fs.Remove(tmp)
		return ioError("partial: write bitmap", err)
	}
	// Without this a crash may bring back the previous bitmap: safe, but
	// the progress since is fetched again.
	return p.s.syncDir(p.s.path(partialDir))
}

// ID is the blob being received.
func (p *Partial) ID() ID { return p.id }

// Size is its size in bytes.
func (p *Partial) Size() uint64 { return p.size }

// Chunks is its number of transfer chunks (ChunkCount(Size())).
func (p *Partial) Chunks() uint64 { return p.chunks }

func (p *Partial) hasLocked(k uint64) bool { return p.have[k/64]&(1<<(k%64)) != 0 }

// Missing returns the chunks not yet verified, in order.
func (p *Partial) Missing() []uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []uint64
	for k := uint64(0); k < p.chunks; k++ {
		if !p.hasLocked(k) {
			out = append(out, k)
		}
	}
	return out
}

// WriteSlice verifies enc, the slice encoding of chunk k (as ReadSlice
// produced it on the sender), and writes the chunk. A slice that does not
// verify is ErrCorrupt and changes nothing (fetch it again, from another
// peer if need be); a chunk already held is accepted without work. A
// failed write (ErrFull when the disk is full) leaves the chunk missing.
func (p *Partial) WriteSlice(k uint64, enc []byte) error {
	s := p.s
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return fmt.Errorf("blob: write slice %d of %s: %w", k, p.id, ErrClosed)
	}
	if k < p.chunks && p.hasLocked(k) {
		p.mu.RUnlock()
		return nil
	}
	w := s.work.Get().(*work)
	err := p.writeSlice(w, k, enc)
	s.work.Put(w)
	p.mu.RUnlock()
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("blob: write slice %d of %s: %w", k, p.id, ErrClosed)
	}
	if !p.hasLocked(k) {
		p.have[k/64] |= 1 << (k % 64)
		p.count.Add(1)
		p.bytes.Add(min((k+1)*ChunkSize, p.size) - k*ChunkSize)
		p.unsynced++
	}
	if p.unsynced >= s.syncChunks {
		return p.flushLocked()
	}
	return nil
}

func (p *Partial) writeSlice(w *work, k uint64, enc []byte) error {
	data, path, err := verifySlice(&p.id, p.size, k, enc, &w.b, &w.scratch, w.spans[0][:0])
	if err != nil {
		return err
	}
	if err := p.data.writeAt(data, k*ChunkSize); err != nil {
		return ioError(fmt.Sprintf("write slice %d of %s", k, p.id), err)
	}
	ng := ceilDiv(p.nseg, groupSegs)
	// The pairs inside the chunk, in post-order: a whole chunk's are one
	// run of the outboard; write each run at once.
	pairs, spans := w.b.pairs, w.b.spans
	for i := 0; i < len(spans); {
		first := entryIndex(ng, spans[i])
		j := i + 1
		for j < len(spans) && entryIndex(ng, spans[j]) == first+uint64(j-i) {
			j++
		}
		if err := p.obao.writeAt(pairs[i*pairSize:j*pairSize], outHdrSize+pairSize*first); err != nil {
			return ioError(fmt.Sprintf("write slice %d of %s", k, p.id), err)
		}
		i = j
	}
	// The verified pairs above the chunk (rewritten by every chunk under
	// them; they are the same bytes).
	for i, sp := range path {
		off := outHdrSize + pairSize*entryIndex(ng, groupSpan(sp))
		if err := p.obao.writeAt(enc[lenPrefix+i*pairSize:lenPrefix+(i+1)*pairSize], off); err != nil {
			return ioError(fmt.Sprintf("write slice %d of %s", k, p.id), err)
		}
	}
	return nil
}

// Flush persists the verified-chunk bitmap now (WriteSlice does it every
// Options.SyncChunks chunks, Close always).
func (p *Partial) Flush() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("blob: flush %s: %w", p.id, ErrClosed)
	}
	return p.flushLocked()
}

// flushLocked syncs the chunks written, then records them as verified.
func (p *Partial) flushLocked() error {
	if p.unsynced == 0 {
		return nil
	}
	if err := p.data.Sync(); err != nil {
		return ioError("partial: sync", err)
	}
	if err := p.obao.Sync(); err != nil {
		return ioError("partial: sync", err)
	}
	if err := p.writeHave(); err != nil {
		return err
	}
	p.unsynced = 0
	return nil
}

func (p *Partial) closeFiles() {
	if p.data != nil {
		_ = p.data.Close()
	}
	if p.obao != nil {
		_ = p.obao.Close()
	}
}

// Close persists the progress and releases the partial blob; Begin resumes
// it later.
func (p *Partial) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	err := p.flushLocked()
	p.closed = true
	p.closeFiles()
	p.mu.Unlock()
	s := p.s
	s.mu.Lock()
	if rec := s.partials[p.id]; rec != nil && rec.w == p {
		rec.w = nil
		rec.have = p.bytes.Load()
	}
	s.mu.Unlock()
	return err
}

// Abort removes the partial blob and what it had received.
func (p *Partial) Abort() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return fmt.Errorf("blob: abort %s: %w", p.id, ErrClosed)
	}
	p.closed = true
	p.closeFiles()
	p.mu.Unlock()
	s := p.s
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.partials[p.id]
	if rec == nil || rec.w != p {
		return nil
	}
	delete(s.partials, p.id)
	s.disk -= rec.size + outboardLen(rec.size)
	s.reserved -= rec.size + outboardLen(rec.size)
	return s.removePartialFiles(p.id)
}

// Commit makes the partial blob a complete blob, once every chunk is
// verified (ErrIncomplete before). If the blob was stored meanwhile (a Put
// of the same content), the partial blob is dropped.
func (p *Partial) Commit() error {
	s := p.s
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return fmt.Errorf("blob: commit %s: %w", p.id, ErrClosed)
	}
	if n := p.count.Load(); n < p.chunks {
		return fmt.Errorf("blob: commit %s: %d of %d chunks missing: %w", p.id, p.chunks-n, p.chunks, ErrIncomplete)
	}
	if st, err := p.data.Stat(); err != nil {
		return ioError("commit", err)
	} else if uint64(st.Size()) != p.size {
		return fmt.Errorf("blob: commit %s: data file has %d bytes, want %d: %w", p.id, st.Size(), p.size, ErrCorrupt)
	}
	stored := s.now().UnixNano()
	if err := p.obao.writeAt(encodeOutHeader(p.size, stored), 0); err != nil {
		return ioError("commit", err)
	}
	if err := p.data.Sync(); err != nil {
		return ioError("commit: sync", err)
	}
	if err := p.obao.Sync(); err != nil {
		return ioError("commit: sync", err)
	}
	p.closed = true
	p.closeFiles()

	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.partials[p.id]
	held := p.size + outboardLen(p.size)
	if err := s.installLocked(p.id, entry{p.size, stored}, p.dataPath, p.obaoPath, held); err != nil {
		// What was renamed, if anything, Open sorts out: the bitmap is
		// still there, so the partial blob resumes (its files afresh).
		rec.w = nil
		rec.have = 0
		return err
	}
	delete(s.partials, p.id)
	if err := s.fs.Remove(p.havePath); err != nil && !isNotExist(err) {
		s.log.Warn("blob: removing a committed partial blob's bitmap", "id", p.id, "err", err)
	}
	return nil
}

// removePartialFiles deletes a partial blob's files (s.mu held).
func (s *Store) removePartialFiles(id ID) error {
	base := s.partialPath(id)
	// The bitmap first: without it the rest is an orphan for Open.
	for _, name := range []string{base + haveExt, base + haveExt + ".tmp", base, base + obaoExt} {
		if err := s.fs.Remove(name); err != nil && !isNotExist(err) {
			return ioError("remove partial "+id.String(), err)
		}
	}
	return nil
}

func (s *Store) partialInfo(id ID, r *partialRec) Info {
	have := r.have
	if r.w != nil {
		have = r.w.bytes.Load()
	}
	return Info{ID: id, Size: r.size, Have: have}
}

// Partials describes the partial blobs, sorted by id: transfers to resume.
func (s *Store) Partials() []Info {
	s.mu.Lock()
	out := make([]Info, 0, len(s.partials))
	for id, r := range s.partials {
		out = append(out, s.partialInfo(id, r))
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b Info) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	return out
}

// loadPartials indexes the partial blobs at Open: each is a bitmap file;
// files without one are removed.
func (s *Store) loadPartials() error {
	dir := s.path(partialDir)
	names, err := s.fs.List(dir)
	if err != nil {
		return ioError("open: list partial", err)
	}
	slices.Sort(names)
	haves := map[string]bool{}
	for _, name := range names {
		if base, ok := strings.CutSuffix(name, haveExt); ok {
			haves[base] = true
		}
	}
	for _, name := range names {
		base := name
		for _, ext := range []string{haveExt + ".tmp", haveExt, obaoExt} {
			if b, ok := strings.CutSuffix(name, ext); ok {
				base = b
				break
			}
		}
		id, perr := ParseID(base)
		if perr != nil || !haves[base] || name == base+haveExt+".tmp" {
			if err := s.fs.Remove(s.fs.PathJoin(dir, name)); err != nil {
				return ioError("open: remove orphan partial file", err)
			}
			continue
		}
		if name != base+haveExt {
			continue
		}
		b, err := readAll(s, s.fs.PathJoin(dir, name))
		if err != nil {
			return ioError("open: read partial bitmap", err)
		}
		size, have, err := decodeHave(b)
		if err != nil {
			s.log.Warn("blob: removing a partial blob with a damaged bitmap", "id", id, "err", err)
			if err := s.removePartialFiles(id); err != nil {
				return err
			}
			continue
		}
		if _, ok := s.blobs[id]; ok {
			if err := s.removePartialFiles(id); err != nil {
				return err
			}
			continue
		}
		_, n := haveCount(have, size)
		s.partials[id] = &partialRec{size: size, have: n}
		s.disk += size + outboardLen(size)
		s.reserved += size + outboardLen(size)
	}
	return nil
}
