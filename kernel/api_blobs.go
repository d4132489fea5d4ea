package kernel

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"lukechampine.com/blake3"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/kernel/client"
)

// The blob routes are the node operator's local interface to the node's
// blob store (the API listens on loopback by default and has no
// authentication): `sos job submit` uploads a job's module and inputs
// through them, `sos job fetch` downloads outputs. Other nodes never use
// them: blobs move between nodes on the QUIC data plane, where each
// request is authorized by the requester's ML-DSA node identity (a
// party of the job's lease, or a verifier of the job).

// Transfers through the API are paced, not timed: a body may take
// blobGrace plus its length at blobMinRate to arrive (or to leave), so an
// upload of gigabytes is never cut off by the server's request timeouts
// while a client trickling bytes slower than blobMinRate is, once the
// grace has passed. The deadline moves every paceStep bytes.
const (
	blobGrace   = 30 * time.Second
	blobMinRate = 256 << 10 // bytes per second
	paceStep    = 1 << 20
	// blobAnswerStall is how long the answer to an upload may take to leave.
	blobAnswerStall = 20 * time.Second
)

// Upload refusals, mapped to statuses by blobStatus.
var (
	errUploadTooLarge = errors.New("upload larger than blob_max_upload")
	errUploadCut      = errors.New("upload ended before its declared length")
	errUploadMismatch = errors.New("content does not hash to the blob id named")
)

func (n *Node) registerBlobAPI(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/blobs", n.handleBlobUsage)
	mux.HandleFunc("POST /v1/blobs", n.handleBlobPut)
	mux.HandleFunc("PUT /v1/blobs", n.handleBlobPut)
	mux.HandleFunc("PUT /v1/blobs/{id}", n.handleBlobPut)
	mux.HandleFunc("GET /v1/blobs/{id}", n.handleBlobGet) // and HEAD
	mux.HandleFunc("GET /v1/blobs/{id}/stat", n.handleBlobStat)
}

// blobStatus maps a blob error to an HTTP status.
func blobStatus(err error) int {
	switch {
	case errors.Is(err, blob.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errUploadTooLarge), errors.Is(err, blob.ErrRange):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errUploadMismatch):
		return http.StatusUnprocessableEntity
	case errors.Is(err, blob.ErrFull):
		return http.StatusInsufficientStorage
	case errors.Is(err, os.ErrDeadlineExceeded):
		return http.StatusRequestTimeout
	case errors.Is(err, errUploadCut):
		return http.StatusBadRequest
	case errors.Is(err, blob.ErrClosed):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func pathBlobID(w http.ResponseWriter, r *http.Request) (blob.ID, bool) {
	id, err := blob.ParseID(r.PathValue("id"))
	if err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("kernel: %w", err))
		return blob.ID{}, false
	}
	return id, true
}

func (n *Node) handleBlobUsage(w http.ResponseWriter, r *http.Request) {
	u := n.blobs.Usage()
	writeJSON(w, http.StatusOK, client.BlobUsage{Blobs: u.Blobs, Bytes: u.Bytes, Partials: u.Partials, Reserved: u.Reserved,
		Disk: u.Disk, Limit: u.Limit, MaxUpload: uint64(n.opts.Config.BlobMaxUpload)})
}

func apiBlobInfo(in blob.Info) client.BlobInfo {
	out := client.BlobInfo{ID: in.ID.String(), Size: in.Size, Complete: in.Complete, Have: in.Have}
	if !in.Stored.IsZero() {
		out.StoredMs = in.Stored.UnixMilli()
	}
	return out
}

func (n *Node) handleBlobStat(w http.ResponseWriter, r *http.Request) {
	id, ok := pathBlobID(w, r)
	if !ok {
		return
	}
	in, err := n.blobs.Stat(id)
	if err != nil {
		writeErr(w, blobStatus(err), fmt.Errorf("kernel: %w", err))
		return
	}
	writeJSON(w, http.StatusOK, apiBlobInfo(in))
}

// handleBlobPut stores a request body as a blob. The id to expect comes
// from the path (PUT /v1/blobs/{id}) or ?id=; with one, content that does
// not hash to it is refused (422) and nothing is kept, and a blob the
// store has already is answered without reading the body.
func (n *Node) handleBlobPut(w http.ResponseWriter, r *http.Request) {
	want, hasWant := blob.ID{}, false
	s := r.PathValue("id")
	if s == "" {
		s = r.URL.Query().Get("id")
	}
	if s != "" {
		var err error
		if want, err = blob.ParseID(s); err != nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("kernel: %w", err))
			return
		}
		hasWant = true
	}
	rc := http.NewResponseController(w)
	answer := func(status int, v any) {
		_ = rc.SetWriteDeadline(time.Now().Add(blobAnswerStall)) // the upload may have outlasted the server's write timeout
		writeJSON(w, status, v)
	}
	if hasWant {
		if in, err := n.blobs.Stat(want); err == nil && in.Complete {
			answer(http.StatusOK, client.BlobPut{ID: want.String(), Size: in.Size, Existed: true})
			return
		}
	}
	limit := int64(n.opts.Config.BlobMaxUpload)
	if r.ContentLength > limit {
		answer(http.StatusRequestEntityTooLarge, client.Error{Error: fmt.Sprintf("kernel: upload of %d bytes: %v (%d)", r.ContentLength, errUploadTooLarge, limit)})
		return
	}
	body := &uploadReader{r: r.Body, limit: limit, pace: newPace(rc.SetReadDeadline, time.Now())}
	if hasWant {
		body.want, body.h = want, blake3.New(32, nil)
	}
	id, size, err := n.blobs.Put(r.Context(), body)
	if err != nil {
		answer(blobStatus(err), client.Error{Error: fmt.Sprintf("kernel: upload: %v", err)})
		return
	}
	answer(http.StatusCreated, client.BlobPut{ID: id.String(), Size: size})
}

// uploadReader reads an upload's body for blob.Store.Put: it enforces the
// size limit, paces the read deadline, checks the content against the
// expected id (the store keeps nothing when Read fails) and turns a body
// cut short into an error (the store would take io.ErrUnexpectedEOF for
// the end of the content).
type uploadReader struct {
	r     io.Reader
	limit int64
	n     int64
	pace  *pace
	h     *blake3.Hasher // nil: no id to expect
	want  blob.ID
}

func (u *uploadReader) Read(p []byte) (int, error) {
	if room := u.limit - u.n + 1; int64(len(p)) > room {
		p = p[:room] // one byte past the limit tells a body over it
	}
	k, err := u.r.Read(p)
	u.n += int64(k)
	u.pace.advance(k)
	if u.h != nil {
		u.h.Write(p[:k])
	}
	if u.n > u.limit {
		return k, fmt.Errorf("%w (%d bytes)", errUploadTooLarge, u.limit)
	}
	switch {
	case err == io.EOF && u.h != nil:
		var got blob.ID
		u.h.Sum(got[:0])
		if !bytes.Equal(got[:], u.want[:]) {
			return k, fmt.Errorf("%w: %s hashes to %s", errUploadMismatch, u.want, got)
		}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return k, fmt.Errorf("%w (%d bytes arrived)", errUploadCut, u.n)
	}
	return k, err
}

func (n *Node) handleBlobGet(w http.ResponseWriter, r *http.Request) {
	id, ok := pathBlobID(w, r)
	if !ok {
		return
	}
	rd, err := n.blobs.Open(id)
	if errors.Is(err, blob.ErrNotFound) && r.Method == http.MethodGet {
		// A pinned blob this node lacks comes from its holders first
		// (storage leases: sos blob get from any node).
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(pinnedFetchWait + blobGrace))
		if ok, ferr := n.fetchForGet(r.Context(), id); ferr != nil {
			writeErr(w, http.StatusBadGateway, fmt.Errorf("kernel: blob %s is pinned but could not be fetched from its holders: %w", id, ferr))
			return
		} else if ok {
			rd, err = n.blobs.Open(id)
		}
	}
	if err != nil {
		writeErr(w, blobStatus(err), fmt.Errorf("kernel: %w", err))
		return
	}
	defer rd.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"`+id.String()+`"`)
	h.Set("Cache-Control", "public, max-age=31536000, immutable") // content-addressed: it never changes
	rc := http.NewResponseController(w)
	http.ServeContent(&pacedWriter{ResponseWriter: w, pace: newPace(rc.SetWriteDeadline, time.Now())}, r, "", time.Time{}, rd)
}

// pacedWriter is a ResponseWriter whose connection write deadline moves
// as the body leaves (see pace).
type pacedWriter struct {
	http.ResponseWriter
	pace *pace
}

func (p *pacedWriter) Write(b []byte) (int, error) {
	k, err := p.ResponseWriter.Write(b)
	p.pace.advance(k)
	return k, err
}

// pace moves a connection deadline as a transfer progresses: after n
// bytes it is start + blobGrace + n/blobMinRate. A server without
// deadlines (a test recorder) ignores it.
type pace struct {
	set   func(time.Time) error
	start time.Time
	n     int64
	next  int64
}

func newPace(set func(time.Time) error, now time.Time) *pace {
	p := &pace{set: set, start: now}
	p.advance(0)
	return p
}

func (p *pace) advance(k int) {
	p.n += int64(k)
	if p.n < p.next {
		return
	}
	earned := time.Duration(p.n/blobMinRate)*time.Second + time.Duration(p.n%blobMinRate)*time.Second/blobMinRate
	_ = p.set(p.start.Add(blobGrace + earned))
	p.next = p.n + paceStep
}
