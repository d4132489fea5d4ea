package net

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/internal/failpoint"
)

// blobContent is n deterministic pseudo-random bytes.
func blobContent(n int, seed byte) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{seed, 0xb1}).Read(b)
	return b
}

// memStore is a blob store in memory.
func memStore(t testing.TB) *blob.Store {
	t.Helper()
	s, err := blob.Open("blobs", blob.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func putBlob(t testing.TB, s *blob.Store, data []byte) blob.ID {
	t.Helper()
	id, _, err := s.Put(context.Background(), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func readStored(t testing.TB, s *blob.Store, id blob.ID) []byte {
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
	return b
}

// ledgerBook records what a server authorized and accounted.
type ledgerBook struct {
	mu      sync.Mutex
	asked   []string // "peer/id/tag" per authorization
	served  map[PeerID]uint64
	chunks  map[PeerID]int
	allowed func(peer PeerID) bool
	hold    func(peer PeerID, chunks int) // see holdAfter
}

// holdAfter makes the server, right after it has sent peer its nth chunk
// (counted since the book began) and before it evaluates the failpoints of
// the next, wait until done reports true, bounded by 10 s: so a failpoint
// that breaks the connection at the next chunk does so after the fetcher
// verified what it was sent, however slow the machine, rather than after a
// sleep that a loaded machine may outlast.
func (lb *ledgerBook) holdAfter(t testing.TB, peer PeerID, n int, done func() bool) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.hold = func(p PeerID, chunks int) {
		if p != peer || chunks != n {
			return
		}
		deadline := time.Now().Add(10 * time.Second)
		for !done() {
			if time.Now().After(deadline) {
				t.Errorf("server held after chunk %d to %.8s: condition still false after 10s", n, peer)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// serve makes n serve s, authorizing peers that allowed approves (all when nil).
func serve(n *node, s *blob.Store, allowed func(PeerID) bool) *ledgerBook {
	lb := &ledgerBook{served: map[PeerID]uint64{}, chunks: map[PeerID]int{}, allowed: allowed}
	n.ServeBlobs(BlobServer{
		Store: s,
		Authorize: func(peer PeerID, id blob.ID, tag string) bool {
			lb.mu.Lock()
			defer lb.mu.Unlock()
			lb.asked = append(lb.asked, string(peer)+"/"+id.String()+"/"+tag)
			return lb.allowed == nil || lb.allowed(peer)
		},
		Account: func(peer PeerID, _ blob.ID, _ string, bytes uint64) {
			lb.mu.Lock()
			lb.served[peer] += bytes
			lb.chunks[peer]++
			hold, n := lb.hold, lb.chunks[peer]
			lb.mu.Unlock()
			if hold != nil {
				hold(peer, n)
			}
		},
	})
	return lb
}

// haveChunks is how many whole chunks of id s has verified so far.
func haveChunks(s *blob.Store, id blob.ID) uint64 {
	info, err := s.Stat(id)
	if err != nil {
		return 0
	}
	return info.Have / blob.ChunkSize
}

// authorizations are the server's authorization calls so far. The book is
// written on the server's goroutines, ordered before what the test sees
// only through the network, which the race detector cannot see: read it
// under its lock.
func (lb *ledgerBook) authorizations() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return slices.Clone(lb.asked)
}

func (lb *ledgerBook) totals(p PeerID) (uint64, int) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return lb.served[p], lb.chunks[p]
}

func enable(t testing.TB, name, terms string) {
	t.Helper()
	disable, err := failpoint.Enable(name, terms)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(disable)
}

// sliceBytes is the slice bytes of every chunk of a blob of size bytes.
func sliceBytes(t testing.TB, size uint64) uint64 {
	var n uint64
	for k := range blob.ChunkCount(size) {
		l, err := blob.SliceLen(size, k)
		if err != nil {
			t.Fatal(err)
		}
		n += uint64(l)
	}
	return n
}

// TestFetchBlob: a blob of a few MiB moves between two members, verified
// and identical; the server authorized the fetcher for the tag and
// accounted exactly the bytes the fetcher received; a second fetch finds it
// stored and moves nothing; the empty blob moves too.
func TestFetchBlob(t *testing.T) {
	a, b := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil)
	link(t, a, b)
	sa, sb := memStore(t), memStore(t)
	data := blobContent(5<<20+12345, 1)
	id := putBlob(t, sa, data)
	empty := putBlob(t, sa, nil)
	book := serve(a, sa, nil)
	size := uint64(len(data))

	st, err := b.FetchBlob(ctxT(t, 20*time.Second), id, size, []PeerID{a.ID()}, sb, "job/42")
	if err != nil {
		t.Fatal(err)
	}
	if got := readStored(t, sb, id); !bytes.Equal(got, data) {
		t.Fatal("fetched content differs")
	}
	served, chunks := book.totals(b.ID())
	want := sliceBytes(t, size)
	if st.Chunks != 6 || st.Resumed != 0 || st.Corrupt != 0 || st.Attempts != 1 || st.Bytes != want {
		t.Fatalf("stats %+v, want 6 chunks, 1 attempt, %d bytes", st, want)
	}
	if served != want || chunks != 6 || st.Sources[0].Bytes != st.Bytes || st.Sources[0].Chunks != 6 {
		t.Fatalf("server accounted %d bytes in %d chunks, fetcher %+v; want %d bytes", served, chunks, st.Sources[0], want)
	}
	if asked := book.authorizations(); len(asked) != 1 || asked[0] != string(b.ID())+"/"+id.String()+"/job/42" {
		t.Fatalf("authorization asked %q", asked)
	}

	st, err = b.FetchBlob(ctxT(t, 5*time.Second), id, size, []PeerID{a.ID()}, sb, "job/42")
	if err != nil || st.Chunks != 0 || st.Resumed != 6 || st.Attempts != 0 {
		t.Fatalf("second fetch of a stored blob: %+v, %v", st, err)
	}
	if _, err := b.FetchBlob(ctxT(t, 5*time.Second), id, size+1, []PeerID{a.ID()}, sb, "job/42"); !errors.Is(err, blob.ErrSizeMismatch) {
		t.Fatalf("stored blob asked with another size: %v", err)
	}

	if _, err := b.FetchBlob(ctxT(t, 10*time.Second), empty, 0, []PeerID{a.ID()}, sb, "job/42"); err != nil {
		t.Fatal(err)
	}
	if !sb.Has(empty) {
		t.Fatal("empty blob not stored")
	}
}

// TestFetchBlobCorruptChunk: a source serving a chunk that does not verify
// is detected: the chunk is counted, not written, and fetched again — from
// the next source, or from the same one in the next round when it is the
// only one.
func TestFetchBlobCorruptChunk(t *testing.T) {
	a, b, c := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil), newNode(t, testKey(t, 3), nil)
	link(t, a, b, c)
	sa, sb := memStore(t), memStore(t)
	data := blobContent(4<<20, 2)
	id := putBlob(t, sa, data)
	putBlob(t, sb, data)
	serve(a, sa, nil)
	serve(b, sb, nil)
	size := uint64(len(data))

	t.Run("next source", func(t *testing.T) {
		sc := memStore(t)
		enable(t, failpoint.NetBlobCorruptChunk, "1*return(true)->off") // a's first chunk
		st, err := c.FetchBlob(ctxT(t, 20*time.Second), id, size, []PeerID{a.ID(), b.ID()}, sc, "t")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readStored(t, sc, id), data) {
			t.Fatal("content differs")
		}
		sa, sb := st.Sources[0], st.Sources[1]
		if st.Corrupt != 1 || sa.Corrupt != 1 || !errors.Is(sa.Err, blob.ErrCorrupt) || sb.Chunks == 0 || sb.Corrupt != 0 || sa.Chunks+sb.Chunks != 4 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("same source", func(t *testing.T) {
		sc := memStore(t)
		enable(t, failpoint.NetBlobCorruptChunk, "2*off->1*return(true)->off") // a's third chunk
		st, err := c.FetchBlob(ctxT(t, 20*time.Second), id, size, []PeerID{a.ID()}, sc, "t")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(readStored(t, sc, id), data) {
			t.Fatal("content differs")
		}
		if st.Corrupt != 1 || st.Attempts != 2 || st.Chunks != 4 {
			t.Fatalf("stats %+v, want 1 corrupt chunk fetched again in a second attempt", st)
		}
	})
}

// TestFetchBlobResumes: a connection broken mid-transfer (failpoint) is
// redialed and the fetch goes on with the chunks still missing — the ones
// verified before the break are not asked for again — within one call, and
// across calls when the first gives up.
func TestFetchBlobResumes(t *testing.T) {
	a := newNode(t, testKey(t, 1), nil)
	b := newNode(t, testKey(t, 2), func(c *Config) { c.BlobRounds = 2 })
	link(t, a, b)
	sa := memStore(t)
	data := blobContent(8<<20, 3)
	id := putBlob(t, sa, data)
	book := serve(a, sa, nil)
	size := uint64(len(data))

	// Chunks 0–3 go out at once; the server waits until the fetcher has
	// verified them, then sends 4 and drops the connection before 5.
	sb := memStore(t)
	book.holdAfter(t, b.ID(), 4, func() bool { return haveChunks(sb, id) >= 4 })
	enable(t, failpoint.NetBlobDropConn, "5*off->1*return(true)->off")
	st, err := b.FetchBlob(ctxT(t, 30*time.Second), id, size, []PeerID{a.ID()}, sb, "t")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(readStored(t, sb, id), data) {
		t.Fatal("content differs")
	}
	_, served := book.totals(b.ID())
	// 5 chunks before the break, then the 3 or 4 still missing: a fetch
	// starting over would make it 13.
	if st.Chunks != 8 || st.Attempts < 2 || served > 9 || served < 8 {
		t.Fatalf("stats %+v, %d chunks served; want 8 verified and at most one sent twice", st, served)
	}

	// Now the connection breaks for good after chunk 3: the fetch gives up,
	// keeping what it verified, and a later fetch asks only for the rest.
	c := newNode(t, testKey(t, 3), func(c *Config) { c.BlobRounds = 2 })
	link(t, a, b, c)
	sc := memStore(t)
	book.holdAfter(t, c.ID(), 4, func() bool { return haveChunks(sc, id) >= 4 })
	enable(t, failpoint.NetBlobDropConn, "4*off->return(true)")
	st, err = c.FetchBlob(ctxT(t, 30*time.Second), id, size, []PeerID{a.ID()}, sc, "t")
	if err == nil {
		t.Fatal("fetch through a connection that always breaks succeeded")
	}
	info, serr := sc.Stat(id)
	if serr != nil || info.Complete || info.Have < 4<<20 || st.Chunks < 4 {
		t.Fatalf("after the failed fetch: %+v, %v; stats %+v", info, serr, st)
	}
	held := st.Chunks
	enable(t, failpoint.NetBlobDropConn, "off")
	_, before := book.totals(c.ID())
	st, err = c.FetchBlob(ctxT(t, 30*time.Second), id, size, []PeerID{a.ID()}, sc, "t")
	if err != nil {
		t.Fatal(err)
	}
	_, after := book.totals(c.ID())
	if st.Resumed != held || st.Chunks != 8-held || after-before != 8-held {
		t.Fatalf("resumed fetch: %+v, %d chunks served; want %d resumed", st, after-before, held)
	}
	if !bytes.Equal(readStored(t, sc, id), data) {
		t.Fatal("content differs")
	}
}

// TestFetchBlobRefused: a peer the authorization callback refuses gets no
// byte, learns nothing (not even whether the blob exists) and keeps
// nothing; an authorized peer asking for a blob the source lacks, or with
// a wrong size, gets the matching error; a node serving nothing refuses.
func TestFetchBlobRefused(t *testing.T) {
	a, b, c := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil), newNode(t, testKey(t, 3), nil)
	link(t, a, b, c)
	sa := memStore(t)
	data := blobContent(2<<20, 4)
	id := putBlob(t, sa, data)
	book := serve(a, sa, func(p PeerID) bool { return p == b.ID() })
	absent := blob.Sum([]byte("absent"))
	size := uint64(len(data))

	sc := memStore(t)
	for _, want := range []blob.ID{id, absent} {
		st, err := c.FetchBlob(ctxT(t, 10*time.Second), want, size, []PeerID{a.ID()}, sc, "job/1")
		if !errors.Is(err, ErrBlobRefused) {
			t.Fatalf("unauthorized fetch of %s: %v", want, err)
		}
		if st.Chunks != 0 || st.Bytes != 0 {
			t.Fatalf("unauthorized fetch got %+v", st)
		}
	}
	if served, _ := book.totals(c.ID()); served != 0 {
		t.Fatalf("served %d bytes to an unauthorized peer", served)
	}
	if sc.Has(id) || len(sc.Partials()) != 0 || sc.Usage().Disk != 0 {
		t.Fatalf("unauthorized fetcher kept something: %+v", sc.Usage())
	}

	sb := memStore(t)
	if _, err := b.FetchBlob(ctxT(t, 10*time.Second), absent, size, []PeerID{a.ID()}, sb, "job/1"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("fetch of a blob the source lacks: %v", err)
	}
	if _, err := b.FetchBlob(ctxT(t, 10*time.Second), id, size-1, []PeerID{a.ID()}, sb, "job/1"); !errors.Is(err, blob.ErrSizeMismatch) {
		t.Fatalf("fetch with a wrong size: %v", err)
	}
	if _, err := a.FetchBlob(ctxT(t, 10*time.Second), id, size, []PeerID{c.ID()}, memStore(t), "job/1"); !errors.Is(err, ErrBlobRefused) {
		t.Fatalf("fetch from a node serving nothing: %v", err)
	}
	if _, err := b.FetchBlob(ctxT(t, 10*time.Second), id, size, []PeerID{PeerID("stranger")}, sb, "job/1"); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("fetch from a stranger: %v", err)
	}
	if _, err := b.FetchBlob(ctxT(t, 10*time.Second), id, size, nil, sb, string(make([]byte, MaxBlobTag+1))); err == nil {
		t.Fatal("oversized tag accepted")
	}
	start := time.Now()
	if _, err := b.FetchBlob(ctxT(t, 10*time.Second), id, size, nil, sb, "job/1"); err == nil || time.Since(start) > time.Second {
		t.Fatalf("fetch without sources: %v after %v", err, time.Since(start))
	}
	if sb.Has(id) || len(sb.Partials()) != 0 || sb.Usage().Disk != 0 {
		t.Fatalf("failed fetches kept something: %+v", sb.Usage())
	}
}

// TestFetchBlobCanceled: canceling the context ends a fetch whose source
// stalls, promptly, keeping the chunks verified.
func TestFetchBlobCanceled(t *testing.T) {
	a, b := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil)
	link(t, a, b)
	sa, sb := memStore(t), memStore(t)
	data := blobContent(4<<20, 5)
	id := putBlob(t, sa, data)
	serve(a, sa, nil)
	// Stalls 2 s before each chunk after the second: long enough that the
	// poll below sees exactly two chunks on a loaded machine, far longer
	// than a canceled fetch may take to return.
	enable(t, failpoint.NetBlobDropConn, "2*off->sleep(2000)")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		st  FetchStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := b.FetchBlob(ctx, id, uint64(len(data)), []PeerID{a.ID()}, sb, "t")
		done <- result{st, err}
	}()
	waitFor(t, 20*time.Second, func() bool {
		info, err := sb.Stat(id)
		return err == nil && info.Have == 2<<20
	}, "two chunks verified")
	start := time.Now()
	cancel()
	var r result
	select {
	case r = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("canceled fetch did not return")
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("canceled fetch returned after %v", d)
	}
	if !errors.Is(r.err, context.Canceled) || r.st.Chunks != 2 {
		t.Fatalf("canceled fetch: %+v, %v", r.st, r.err)
	}
	if info, err := sb.Stat(id); err != nil || info.Have != 2<<20 {
		t.Fatalf("after cancel: %+v, %v", info, err)
	}
}

// TestBlobKindIsNotAMessageKind: KindBlob has no handler and no Send.
func TestBlobKindIsNotAMessageKind(t *testing.T) {
	a, b := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil)
	link(t, a, b)
	if err := a.Send(ctxT(t, 5*time.Second), b.ID(), KindBlob, []byte("x")); err == nil {
		t.Fatal("Send on KindBlob accepted")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Handle(KindBlob) did not panic")
		}
	}()
	a.Handle(KindBlob, func(PeerID, []byte) {})
}

func TestBlobRequestRoundTrip(t *testing.T) {
	req := blobRequest{ID: blob.Sum([]byte("x")), Size: 10 << 20, Tag: "job/42", Ranges: []chunkRange{{0, 2}, {3, 1}, {5, 5}}}
	got, err := decodeBlobRequest(req.append(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != req.ID || got.Size != req.Size || got.Tag != req.Tag || len(got.Ranges) != 3 || got.Ranges[2] != req.Ranges[2] {
		t.Fatalf("round trip: %+v", got)
	}
	if r := chunkRanges([]uint64{0, 1, 3, 5, 6, 7, 8, 9}); len(r) != 3 || r[0] != (chunkRange{0, 2}) || r[1] != (chunkRange{3, 1}) || r[2] != (chunkRange{5, 5}) {
		t.Fatalf("chunkRanges: %+v", r)
	}
}

// TestBlobRequestRefusals: the decoder refuses every malformed request
// with ErrBadFrame.
func TestBlobRequestRefusals(t *testing.T) {
	ok := blobRequest{ID: blob.Sum(nil), Size: 3 << 20, Tag: "t", Ranges: []chunkRange{{0, 1}, {2, 1}}}
	tests := []struct {
		name   string
		mutate func(*blobRequest)
		raw    func([]byte) []byte
	}{
		{name: "short", raw: func(b []byte) []byte { return b[:10] }},
		{name: "trailing byte", raw: func(b []byte) []byte { return append(b, 0) }},
		{name: "truncated range", raw: func(b []byte) []byte { return b[:len(b)-1] }},
		{name: "size over max", mutate: func(r *blobRequest) { r.Size = blob.MaxSize + 1 }},
		{name: "tag not utf-8", mutate: func(r *blobRequest) { r.Tag = "\xff" }},
		{name: "tag too long", mutate: func(r *blobRequest) { r.Tag = string(bytes.Repeat([]byte("t"), MaxBlobTag+1)) }},
		{name: "no ranges", mutate: func(r *blobRequest) { r.Ranges = nil }},
		{name: "too many ranges", mutate: func(r *blobRequest) {
			r.Size = blob.MaxSize
			r.Ranges = make([]chunkRange, maxBlobRanges+1)
			for i := range r.Ranges {
				r.Ranges[i] = chunkRange{uint64(2 * i), 1}
			}
		}},
		{name: "empty range", mutate: func(r *blobRequest) { r.Ranges[1].Count = 0 }},
		{name: "past the end", mutate: func(r *blobRequest) { r.Ranges[1] = chunkRange{2, 2} }},
		{name: "first past the end", mutate: func(r *blobRequest) { r.Ranges[1] = chunkRange{1 << 62, 1} }},
		{name: "overlapping", mutate: func(r *blobRequest) { r.Ranges = []chunkRange{{0, 2}, {1, 1}} }},
		{name: "descending", mutate: func(r *blobRequest) { r.Ranges = []chunkRange{{2, 1}, {0, 1}} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ok
			r.Ranges = append([]chunkRange(nil), ok.Ranges...)
			if tc.mutate != nil {
				tc.mutate(&r)
			}
			b := r.append(nil)
			if tc.raw != nil {
				b = tc.raw(b)
			}
			if _, err := decodeBlobRequest(b); !errors.Is(err, ErrBadFrame) {
				t.Fatalf("decode: %v, want ErrBadFrame", err)
			}
		})
	}
	if _, err := decodeBlobRequest(ok.append(nil)); err != nil {
		t.Fatal(err)
	}
}

// FuzzBlobRequest: the request decoder never panics, and what it accepts
// encodes back to the same bytes (the encoding is canonical).
func FuzzBlobRequest(f *testing.F) {
	f.Add((&blobRequest{ID: blob.Sum(nil), Size: 3 << 20, Tag: "job/42", Ranges: []chunkRange{{0, 1}, {2, 1}}}).append(nil))
	f.Add((&blobRequest{Size: 0, Ranges: []chunkRange{{0, 1}}}).append(nil))
	f.Add((&blobRequest{Size: blob.MaxSize, Tag: "x", Ranges: []chunkRange{{1 << 29, 1 << 20}}}).append(nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeBlobRequest(b)
		if err != nil {
			if !errors.Is(err, ErrBadFrame) {
				t.Fatalf("error %v is not ErrBadFrame", err)
			}
			return
		}
		if got := r.append(nil); !bytes.Equal(got, b) {
			t.Fatalf("re-encoded %x, decoded from %x", got, b)
		}
	})
}

// TestFetchBlobClosedTransport: a fetch on a closed transport fails at
// once, leaving nothing behind.
func TestFetchBlobClosedTransport(t *testing.T) {
	a, b := newNode(t, testKey(t, 1), nil), newNode(t, testKey(t, 2), nil)
	link(t, a, b)
	sb := memStore(t)
	b.Close()
	start := time.Now()
	st, err := b.FetchBlob(ctxT(t, 10*time.Second), blob.Sum([]byte("x")), 1, []PeerID{a.ID()}, sb, "t")
	if !errors.Is(err, ErrClosed) || st.Attempts != 1 || time.Since(start) > 500*time.Millisecond {
		t.Fatalf("fetch on a closed transport: %v after %d attempts, %v", err, st.Attempts, time.Since(start))
	}
	if len(sb.Partials()) != 0 {
		t.Fatal("a failed fetch left a partial blob")
	}
}
