package net

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/quic-go/quic-go"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/internal/failpoint"
)

// The data plane: blobs move between nodes in 1 MiB transfer chunks, each
// as its Bao slice encoding (blob.Store.ReadSlice), which the receiver
// verifies against the blob id before writing it (blob.Partial.WriteSlice).
// Transfers are pull only. A fetcher opens a bidirectional QUIC stream per
// source attempt and writes
//
//	frame version u8 | KindBlob u8 | request frame… | end of stream
//
// each request frame (type message, at most maxBlobRequest bytes) being
//
//	blob id [32] | size u64 | tag length u8 | tag | range count u16 |
//	range count × (first chunk u64 | chunk count u32)
//
// (integers big endian; ranges ascending and disjoint, within the blob).
// The server answers each requested chunk in order with a frame
//
//	0 | chunk index u64 | slice encoding (blob.SliceLen bytes)
//
// and closes its side when the requests end. A refusal or failure is one
// last frame, 1 | code u8 | message, after which the server closes.
// QUIC flow control paces the server: it writes as fast as the fetcher
// reads, so up to a stream window of chunks is in flight while the fetcher
// verifies the one it has read. Blob streams have
// the lowest priority of all kinds (incremental among themselves), so a
// transfer never delays consensus traffic on the same connection.

const (
	// MaxBlobTag bounds the tag naming what a transfer is for ("job/42").
	MaxBlobTag = 128

	maxBlobRanges    = 1024
	blobRequestFixed = 32 + 8 + 1 + 2
	maxBlobRequest   = blobRequestFixed + MaxBlobTag + 12*maxBlobRanges
	blobRespHeader   = 1 + 8 // status, chunk index
	// maxBlobResponse bounds any response: a chunk and its path (at most
	// 64 ancestors).
	maxBlobResponse = blobRespHeader + 8 + 64*64 + blob.ChunkSize
	maxBlobErr      = 512

	// maxBlobStreams is how many transfers a peer may run at once on one
	// connection (QUIC's bidirectional stream limit, with the handshake's).
	maxBlobStreams = 16

	blobSlice byte = 0
	blobError byte = 1
)

// Codes of a server's refusal.
const (
	blobErrBadRequest byte = 1
	blobErrRefused    byte = 2
	blobErrNotFound   byte = 3
	blobErrSize       byte = 4
	blobErrInternal   byte = 5
)

// ErrBlobRefused: the source does not serve this blob to this node (its
// authorization callback said no, or it serves no blobs).
var ErrBlobRefused = errors.New("net: blob refused")

// BlobServer is what ServeBlobs serves.
type BlobServer struct {
	// Store holds the blobs; only complete blobs are served.
	Store *blob.Store
	// Authorize decides whether peer may fetch blob id for the purpose
	// tag. It is asked once per request before anything about the blob
	// is revealed, must be quick, and must be set: nil refuses everyone.
	Authorize func(peer PeerID, id blob.ID, tag string) bool
	// Account, if set, is told each chunk's slice bytes once they are
	// handed to QUIC for peer (about 1 MiB a call), so the caller can
	// account the transfer per lease.
	Account func(peer PeerID, id blob.ID, tag string, bytes uint64)
}

// ServeBlobs makes this node serve blobs to the peers srv authorizes, on
// member and worker links alike; the zero BlobServer (the default) serves
// nothing. It may be called again to change what is served.
func (t *Transport) ServeBlobs(srv BlobServer) {
	t.mu.Lock()
	t.blobs = srv
	t.mu.Unlock()
}

func (t *Transport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

func (t *Transport) blobServer() BlobServer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.blobs
}

// blobRequest asks for chunks of a blob.
type blobRequest struct {
	ID     blob.ID
	Size   uint64
	Tag    string
	Ranges []chunkRange
}

// chunkRange is Count chunks from First.
type chunkRange struct {
	First uint64
	Count uint32
}

func (r *blobRequest) append(dst []byte) []byte {
	dst = append(dst, r.ID[:]...)
	dst = binary.BigEndian.AppendUint64(dst, r.Size)
	dst = append(dst, byte(len(r.Tag)))
	dst = append(dst, r.Tag...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(r.Ranges)))
	for _, c := range r.Ranges {
		dst = binary.BigEndian.AppendUint64(dst, c.First)
		dst = binary.BigEndian.AppendUint32(dst, c.Count)
	}
	return dst
}

// decodeBlobRequest parses a request from an untrusted peer. It never
// panics, and accepts only what a fetcher sends: a size within
// blob.MaxSize, a valid UTF-8 tag of at most MaxBlobTag bytes, and 1 to
// maxBlobRanges non-empty ranges, ascending, disjoint and within the blob.
func decodeBlobRequest(b []byte) (blobRequest, error) {
	var r blobRequest
	bad := func(format string, args ...any) (blobRequest, error) {
		return blobRequest{}, fmt.Errorf("%w: blob request: "+format, append([]any{ErrBadFrame}, args...)...)
	}
	if len(b) < blobRequestFixed {
		return bad("%d bytes", len(b))
	}
	b = b[copy(r.ID[:], b):]
	r.Size = binary.BigEndian.Uint64(b)
	if r.Size > blob.MaxSize {
		return bad("size %d over %d", r.Size, uint64(blob.MaxSize))
	}
	n := int(b[8])
	b = b[9:]
	if n > MaxBlobTag || len(b) < n+2 {
		return bad("tag of %d bytes", n)
	}
	if !utf8.Valid(b[:n]) {
		return bad("tag is not UTF-8")
	}
	r.Tag, b = string(b[:n]), b[n:]
	count := int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if count == 0 || count > maxBlobRanges {
		return bad("%d ranges", count)
	}
	if len(b) != 12*count {
		return bad("%d bytes of ranges, want %d", len(b), 12*count)
	}
	chunks := blob.ChunkCount(r.Size)
	r.Ranges = make([]chunkRange, count)
	var next uint64 // ranges are ascending and disjoint: each starts at or after next
	for i := range r.Ranges {
		c := chunkRange{First: binary.BigEndian.Uint64(b), Count: binary.BigEndian.Uint32(b[8:])}
		b = b[12:]
		if c.Count == 0 || c.First < next || c.First >= chunks || uint64(c.Count) > chunks-c.First {
			return bad("range %d+%d of a %d-chunk blob", c.First, c.Count, chunks)
		}
		next = c.First + uint64(c.Count)
		r.Ranges[i] = c
	}
	return r, nil
}

// chunkRanges turns ascending chunk indexes into ranges.
func chunkRanges(ks []uint64) []chunkRange {
	var out []chunkRange
	for _, k := range ks {
		if n := len(out); n > 0 && out[n-1].First+uint64(out[n-1].Count) == k && out[n-1].Count < ^uint32(0) {
			out[n-1].Count++
			continue
		}
		out = append(out, chunkRange{First: k, Count: 1})
	}
	return out
}

// blobRefusal is a server's refusal as the fetcher sees it.
type blobRefusal struct {
	code byte
	msg  string
}

func (e *blobRefusal) Error() string { return "net: blob source: " + e.msg }

func (e *blobRefusal) Unwrap() error {
	switch e.code {
	case blobErrRefused:
		return ErrBlobRefused
	case blobErrNotFound:
		return blob.ErrNotFound
	case blobErrSize:
		return blob.ErrSizeMismatch
	case blobErrBadRequest:
		return ErrBadFrame
	}
	return nil
}

// blobBuf returns a buffer for one response frame.
func (t *Transport) blobBuf() *[]byte {
	if b, ok := t.bufPool.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, frameHeaderSize+maxBlobResponse)
	return &b
}

// acceptBidiStreams serves the bidirectional streams a peer opens after
// the handshake: blob transfers.
func (s *session) acceptBidiStreams() {
	for {
		st, err := s.conn.AcceptStream(s.conn.Context())
		if err != nil {
			return
		}
		s.t.wg.Go(func() { s.serveBlobStream(st) })
	}
}

// serveBlobStream answers one fetcher's stream.
func (s *session) serveBlobStream(st *quic.Stream) {
	t := s.t
	st.SetReadDeadline(time.Now().Add(t.cfg.IdleTimeout))
	br := bufio.NewReaderSize(st, 16<<10)
	var pre [2]byte
	if _, err := io.ReadFull(br, pre[:]); err != nil {
		st.CancelRead(streamCanceled)
		st.CancelWrite(streamCanceled)
		return
	}
	if pre[0] != frameVersion || StreamKind(pre[1]) != KindBlob {
		t.log.Warn("net: refused stream", "peer", s.peer, "reason", fmt.Errorf("%w: bidirectional stream preamble %x", ErrBadFrame, pre))
		st.CancelRead(streamBadOpen)
		st.CancelWrite(streamBadOpen)
		return
	}
	if t.cfg.Drop != nil && t.cfg.Drop(s.peer, KindBlob, false) {
		st.CancelRead(streamCanceled)
		st.CancelWrite(streamCanceled)
		return
	}
	st.SetPriority(KindBlob.urgency(), true)
	srv := t.blobServer()
	var allowed struct {
		id  blob.ID
		tag string
		ok  bool
	}
	for {
		st.SetReadDeadline(time.Now().Add(t.cfg.IdleTimeout))
		payload, err := readFrame(br, frameMessage, maxBlobRequest)
		if errors.Is(err, io.EOF) {
			st.Close() // every request answered
			return
		}
		if err != nil {
			if errors.Is(err, ErrBadFrame) || errors.Is(err, ErrFrameTooLarge) {
				s.refuseBlob(st, blobErrBadRequest, err)
				return
			}
			st.CancelWrite(streamCanceled) // the fetcher went away
			return
		}
		req, err := decodeBlobRequest(payload)
		if err != nil {
			s.refuseBlob(st, blobErrBadRequest, err)
			return
		}
		// Authorization comes first, so a refused peer learns nothing
		// about the blob, not even whether this node holds it.
		if !allowed.ok || allowed.id != req.ID || allowed.tag != req.Tag {
			if srv.Store == nil || srv.Authorize == nil || !srv.Authorize(s.peer, req.ID, req.Tag) {
				s.refuseBlob(st, blobErrRefused, fmt.Errorf("%w: blob %s for %q", ErrBlobRefused, req.ID, req.Tag))
				return
			}
			allowed.id, allowed.tag, allowed.ok = req.ID, req.Tag, true
		}
		info, err := srv.Store.Stat(req.ID)
		switch {
		case err != nil || !info.Complete:
			s.refuseBlob(st, blobErrNotFound, fmt.Errorf("blob %s: %w", req.ID, blob.ErrNotFound))
			return
		case info.Size != req.Size:
			s.refuseBlob(st, blobErrSize, fmt.Errorf("blob %s has %d bytes, not %d: %w", req.ID, info.Size, req.Size, blob.ErrSizeMismatch))
			return
		}
		if !s.serveChunks(st, srv, &req) {
			return
		}
	}
}

// serveChunks writes the requested chunks in order. A reader prepares
// the next slice while the current one is sent (QUIC's Write returns only
// once the data is nearly all in packets), so the link never idles on a
// disk read. It returns false when the stream is done (the fetcher left,
// or a failure was reported).
func (s *session) serveChunks(st *quic.Stream, srv BlobServer, req *blobRequest) bool {
	const head = frameHeaderSize + blobRespHeader
	type prepared struct {
		k   uint64
		bp  *[]byte
		err error
	}
	next := make(chan prepared, 1)
	stop := make(chan struct{})
	defer close(stop)
	s.t.wg.Go(func() {
		defer close(next)
		for _, r := range req.Ranges {
			for k := r.First; k < r.First+uint64(r.Count); k++ {
				bp := s.t.blobBuf()
				buf, err := srv.Store.AppendSlice((*bp)[:head], req.ID, k)
				*bp = buf
				select {
				case next <- prepared{k, bp, err}:
				case <-stop:
					s.t.bufPool.Put(bp)
					return
				}
				if err != nil {
					return
				}
			}
		}
	})
	for p := range next {
		ok := s.serveChunk(st, srv, req, p.k, *p.bp, p.err)
		*p.bp = (*p.bp)[:0]
		s.t.bufPool.Put(p.bp)
		if !ok {
			return false
		}
	}
	return true
}

// serveChunk sends chunk k, whose slice buf holds after the response
// header (err: reading it failed).
func (s *session) serveChunk(st *quic.Stream, srv BlobServer, req *blobRequest, k uint64, buf []byte, err error) bool {
	const head = frameHeaderSize + blobRespHeader
	if err != nil {
		code := blobErrInternal
		if errors.Is(err, blob.ErrNotFound) {
			code = blobErrNotFound // deleted meanwhile
		}
		s.refuseBlob(st, code, err)
		return false
	}
	appendFrameHeader(buf[:0], frameMessage, len(buf)-frameHeaderSize)
	buf[frameHeaderSize] = blobSlice
	binary.BigEndian.PutUint64(buf[frameHeaderSize+1:], k)
	if _, ok := failpoint.Eval(failpoint.NetBlobCorruptChunk); ok {
		buf[len(buf)-1] ^= 0x01
	}
	if _, ok := failpoint.Eval(failpoint.NetBlobDropConn); ok {
		s.t.log.Warn("net: failpoint: dropping the connection mid-transfer", "peer", s.peer, "blob", req.ID, "chunk", k)
		s.conn.CloseWithError(0, "failpoint "+failpoint.NetBlobDropConn)
		return false
	}
	st.SetWriteDeadline(time.Now().Add(s.t.cfg.IdleTimeout))
	if _, err := st.Write(buf); err != nil {
		return false // the fetcher canceled or the connection broke
	}
	if srv.Account != nil {
		srv.Account(s.peer, req.ID, req.Tag, uint64(len(buf)-head))
	}
	return true
}

// refuseBlob sends the fetcher the reason it gets no (more) chunks and
// ends the stream.
func (s *session) refuseBlob(st *quic.Stream, code byte, err error) {
	level := slog.LevelInfo
	if code == blobErrBadRequest || code == blobErrInternal {
		level = slog.LevelWarn
	}
	s.t.log.Log(context.Background(), level, "net: blob request refused", "peer", s.peer, "reason", err)
	msg := err.Error()
	if len(msg) > maxBlobErr {
		msg = strings.ToValidUTF8(msg[:maxBlobErr], "")
	}
	st.SetWriteDeadline(time.Now().Add(s.t.cfg.HandshakeTimeout))
	_, _ = st.Write(appendFrame(nil, frameMessage, append([]byte{blobError, code}, msg...)))
	st.Close()
	st.CancelRead(streamCanceled)
}

// FetchStats says what FetchBlob did.
type FetchStats struct {
	Chunks   int    // chunks received and verified by this call
	Resumed  int    // chunks already verified when it began (a resumed partial blob)
	Bytes    uint64 // slice bytes received from all sources, verified or not (what servers account)
	Corrupt  int    // slices that failed verification (each fetched again)
	Attempts int    // source attempts (one stream each)
	// Sources has one entry per source given, in order.
	Sources []SourceStats
}

// SourceStats is what one source gave a fetch.
type SourceStats struct {
	Peer    PeerID
	Bytes   uint64 // slice bytes received, verified or not
	Chunks  int    // chunks verified
	Corrupt int    // slices that failed verification
	Err     error  // its last failure, nil if none
}

// FetchBlob fetches the blob (id, size) into dst from sources — members,
// workers, or the member this worker follows — and returns once it is
// stored complete. It resumes a partial blob (only the chunks Missing are
// asked for), verifies every chunk against id before writing it, and tries
// the sources in order, moving on when one fails: unreachable, refusing
// (ErrBlobRefused), not holding the blob, stalling for IdleTimeout, or
// serving a chunk that does not verify (counted in the stats; the chunk is
// asked of the next source). When a round over all sources verifies
// nothing, it waits (MinBackoff doubling up to MaxBackoff) and tries them
// again, up to Config.BlobRounds rounds in a row. tag names the purpose
// ("job/42"): sources authorize and account by it.
//
// On failure the chunks verified so far stay in dst for a later call (a
// partial blob that holds nothing is removed) and the error wraps each
// source's last failure, and ctx's error when ctx ended it. A blob dst
// already holds is not fetched. Errors of dst itself (blob.ErrFull, a busy
// partial blob) end the fetch at once.
func (t *Transport) FetchBlob(ctx context.Context, id blob.ID, size uint64, sources []PeerID, dst *blob.Store, tag string) (FetchStats, error) {
	st := FetchStats{Sources: make([]SourceStats, len(sources))}
	for i, p := range sources {
		st.Sources[i].Peer = p
	}
	fail := func(err error) (FetchStats, error) {
		return st, fmt.Errorf("net: fetch blob %s: %w", id, err)
	}
	if len(tag) > MaxBlobTag || !utf8.ValidString(tag) {
		return fail(fmt.Errorf("tag must be UTF-8 of at most %d bytes", MaxBlobTag))
	}
	p, err := dst.Begin(id, size)
	if errors.Is(err, blob.ErrExists) {
		if info, err := dst.Stat(id); err == nil && info.Size != size {
			return fail(fmt.Errorf("stored with %d bytes, asked for %d: %w", info.Size, size, blob.ErrSizeMismatch))
		}
		st.Resumed = int(blob.ChunkCount(size))
		return st, nil
	}
	if err != nil {
		return fail(err)
	}
	missing := p.Missing()
	st.Resumed = int(p.Chunks()) - len(missing)
	idle := 0
	var ended error // a local error, or ctx's, that ends the fetch
	if len(sources) == 0 {
		ended = errors.New("no sources")
	}
	for len(missing) > 0 && ended == nil {
		before := len(missing)
		for i := range sources {
			if len(missing) == 0 {
				break
			}
			n, srcErr, localErr := t.fetchFrom(ctx, p, &st, i, missing, tag)
			missing = p.Missing()
			if srcErr != nil {
				st.Sources[i].Err = srcErr
				t.log.Info("net: blob source failed", "blob", id, "peer", sources[i], "verified", n, "missing", len(missing), "err", srcErr)
			}
			if localErr != nil {
				ended = localErr
				break
			}
		}
		if len(missing) == 0 || ended != nil {
			break
		}
		// A round that verified chunks does not count: every such round
		// brings the blob closer, so rounds stay bounded by its chunks.
		if len(missing) < before {
			idle = 0
		} else if idle++; idle >= t.cfg.BlobRounds {
			break
		}
		timer := time.NewTimer(t.backoff(max(idle, 1)))
		select {
		case <-ctx.Done():
			ended = ctx.Err()
		case <-timer.C:
		}
		timer.Stop()
	}
	if len(missing) == 0 {
		if err := p.Commit(); err != nil {
			p.Close()
			return fail(err)
		}
		return st, nil
	}
	if len(missing) == int(p.Chunks()) {
		err = p.Abort() // nothing to resume: leave nothing behind
	} else {
		err = p.Close()
	}
	errs := []error{ended, err}
	for _, s := range st.Sources {
		errs = append(errs, s.Err)
	}
	return fail(fmt.Errorf("%d of %d chunks missing after %d attempts: %w", len(missing), p.Chunks(), st.Attempts, errors.Join(errs...)))
}

// fetchFrom asks source i of st for the missing chunks of p over one
// stream. It returns how many chunks it verified, the source's failure
// (move on to the next) and a local failure (stop fetching: dst failed,
// or ctx ended).
func (t *Transport) fetchFrom(ctx context.Context, p *blob.Partial, st *FetchStats, i int, missing []uint64, tag string) (verified int, srcErr, localErr error) {
	src := st.Sources[i].Peer
	st.Attempts++
	if src == t.id {
		return 0, fmt.Errorf("net: blob source %s is this node", src), nil
	}
	if t.cfg.Drop != nil && t.cfg.Drop(src, KindBlob, true) {
		return 0, fmt.Errorf("net: blob source %s: unreachable (partitioned)", src), nil
	}
	cctx, cancel := context.WithTimeout(ctx, max(t.cfg.HandshakeTimeout, t.cfg.IdleTimeout))
	defer cancel()
	s, err := t.connect(cctx, src)
	if errors.Is(err, ErrClosed) && t.isClosed() {
		return 0, err, err
	}
	if err != nil {
		return 0, err, ctx.Err()
	}
	str, err := s.conn.OpenStreamSync(cctx)
	if err != nil {
		return 0, wrapUnlessRefused("open blob stream to "+string(src), err), ctx.Err()
	}
	str.SetPriority(KindBlob.urgency(), true)
	stop := context.AfterFunc(ctx, func() {
		str.CancelRead(streamCanceled)
		str.CancelWrite(streamCanceled)
	})
	defer stop()
	defer str.CancelRead(streamCanceled) // a no-op once everything was read

	// All requests go at once; QUIC flow control paces the answers.
	req := blobRequest{ID: p.ID(), Size: p.Size(), Tag: tag}
	out := []byte{frameVersion, byte(KindBlob)}
	for ranges := chunkRanges(missing); len(ranges) > 0; {
		n := min(len(ranges), maxBlobRanges)
		req.Ranges, ranges = ranges[:n], ranges[n:]
		out = appendFrame(out, frameMessage, req.append(nil))
	}
	str.SetWriteDeadline(time.Now().Add(t.cfg.IdleTimeout))
	if _, err := str.Write(out); err != nil {
		return 0, wrapUnlessRefused("blob request to "+string(src), err), ctx.Err()
	}
	str.Close()

	// Each chunk is verified and written as soon as it is read: QUIC's
	// receive window (8 MiB to start) holds the chunks behind it, so the
	// source keeps sending meanwhile, and no handoff to other goroutines
	// adds scheduling delays to every chunk.
	bp := t.blobBuf()
	defer t.bufPool.Put(bp)
	var ok, bad int
	var received uint64
	for _, k := range missing {
		n, _ := blob.SliceLen(p.Size(), k)
		want := blobRespHeader + n
		str.SetReadDeadline(time.Now().Add(t.cfg.IdleTimeout))
		payload, err := readFrameInto(str, frameMessage, max(want, 2+maxBlobErr), (*bp)[:0])
		if err != nil {
			srcErr = wrapUnlessRefused(fmt.Sprintf("blob source %s: chunk %d", src, k), err)
			break
		}
		if len(payload) >= 2 && payload[0] == blobError {
			msg := payload[2:]
			if len(msg) > maxBlobErr {
				msg = msg[:maxBlobErr]
			}
			srcErr = &blobRefusal{code: payload[1], msg: strings.ToValidUTF8(string(msg), "?")}
			break
		}
		if len(payload) != want || payload[0] != blobSlice || binary.BigEndian.Uint64(payload[1:]) != k {
			srcErr = fmt.Errorf("%w: blob source %s: answer of %d bytes for chunk %d, want %d bytes", ErrBadFrame, src, len(payload), k, want)
			break
		}
		received += uint64(n)
		if err := p.WriteSlice(k, payload[blobRespHeader:]); err != nil {
			if errors.Is(err, blob.ErrCorrupt) {
				bad++
				srcErr = fmt.Errorf("net: blob source %s: chunk %d: %w", src, k, err)
			} else {
				localErr = err
			}
			break
		}
		ok++
	}
	src0 := &st.Sources[i]
	src0.Bytes += received
	src0.Chunks += ok
	src0.Corrupt += bad
	st.Bytes += received
	st.Chunks += ok
	st.Corrupt += bad
	if ctx.Err() != nil {
		return ok, ctx.Err(), ctx.Err()
	}
	return ok, srcErr, localErr
}
