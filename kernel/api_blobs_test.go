package kernel

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/kernel/client"
)

func startBlobNode(t *testing.T, maxUpload ByteSize) (*Node, *client.Client) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.BlobMaxUpload = maxUpload
	return startTestNode(t, newTestChain(t, 1), cfg)
}

// countingReader counts what was read of it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += k
	return k, err
}

// TestBlobAPI: uploads store content under its BLAKE3 id; an upload naming
// an id is checked against it and refused (nothing kept) when the content
// differs, and answered without its body when the node has the blob;
// downloads stream the content with ranges; stat and usage describe the
// store.
func TestBlobAPI(t *testing.T) {
	n, c := startBlobNode(t, 64<<10)
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 3000) // 48,000 bytes
	id := blob.Sum(data)

	put, err := c.PutBlob(ctx, bytes.NewReader(data), int64(len(data)), "")
	if err != nil || put.ID != id.String() || put.Size != uint64(len(data)) || put.Existed {
		t.Fatalf("POST: %+v %v", put, err)
	}
	// The same content named by its id: the node has it and does not read the body.
	cr := &countingReader{r: bytes.NewReader(data)}
	put, err = c.PutBlob(ctx, cr, int64(len(data)), id.String())
	if err != nil || !put.Existed || put.Size != uint64(len(data)) || cr.n != 0 {
		t.Fatalf("PUT of a stored blob: %+v %v (body read: %d bytes)", put, err, cr.n)
	}
	// Content under an id it does not hash to is refused.
	other := append([]byte("X"), data[1:]...)
	_, err = c.PutBlob(ctx, bytes.NewReader(other), int64(len(other)), blob.Sum([]byte("missing")).String())
	var he *client.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusUnprocessableEntity || !strings.Contains(he.Msg, "does not hash to the blob id") {
		t.Fatalf("PUT of other content: %v", err)
	}
	if n.Blobs().Has(blob.Sum(other)) || n.Blobs().Usage().Blobs != 1 {
		t.Fatalf("a refused upload was kept: %+v", n.Blobs().Usage())
	}
	put, err = c.PutBlob(ctx, bytes.NewReader(other), int64(len(other)), blob.Sum(other).String())
	if err != nil || put.Existed || put.ID != blob.Sum(other).String() {
		t.Fatalf("PUT with the right id: %+v %v", put, err)
	}

	var got bytes.Buffer
	if k, err := c.GetBlob(ctx, id.String(), int64(len(data)), &got); err != nil || k != int64(len(data)) || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("GET: %d bytes, %v", k, err)
	}
	req, _ := http.NewRequest(http.MethodGet, c.URL()+"/v1/blobs/"+id.String(), nil)
	req.Header.Set("Range", "bytes=16-31")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || string(part) != "0123456789abcdef" || resp.Header.Get("ETag") != `"`+id.String()+`"` {
		t.Fatalf("range: %d %q %v", resp.StatusCode, part, resp.Header)
	}
	resp, err = http.Head(c.URL() + "/v1/blobs/" + id.String())
	if err != nil || resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(data)) {
		t.Fatalf("HEAD: %v %+v", err, resp)
	}
	resp.Body.Close()

	st, err := c.BlobStat(ctx, id.String())
	if err != nil || !st.Complete || st.Size != uint64(len(data)) || st.Have != st.Size || st.StoredMs == 0 {
		t.Fatalf("stat: %+v %v", st, err)
	}
	if _, err := c.BlobStat(ctx, blob.Sum([]byte("nope")).String()); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("stat of a missing blob: %v", err)
	}
	if _, err := c.BlobStat(ctx, "xyz"); err == nil || !strings.Contains(err.Error(), "hex") {
		t.Fatalf("stat of a bad id: %v", err)
	}
	if _, err := c.GetBlob(ctx, blob.Sum([]byte("nope")).String(), -1, io.Discard); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("GET of a missing blob: %v", err)
	}
	u, err := c.BlobUsage(ctx)
	if err != nil || u.Blobs != 2 || u.Bytes != 2*uint64(len(data)) || u.MaxUpload != 64<<10 || u.Limit != 16<<30 {
		t.Fatalf("usage: %+v %v", u, err)
	}

	// A damaged copy on the node's disk is caught by the client's check.
	path := filepath.Join(n.opts.Home, BlobsDir, id.String()[:2], id.String())
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw[100] ^= 1
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetBlob(ctx, id.String(), int64(len(data)), io.Discard); !errors.Is(err, client.ErrBlobMismatch) {
		t.Fatalf("GET of a damaged copy: %v", err)
	}
}

// TestBlobUploadLimits: a body over blob_max_upload is refused whether it
// declares its length (before it is read) or not, and a body cut short of
// its declared length is refused rather than stored truncated; nothing of
// either is kept.
func TestBlobUploadLimits(t *testing.T) {
	n, c := startBlobNode(t, 1<<10)
	ctx := context.Background()
	big := bytes.Repeat([]byte{7}, 2<<10)
	for _, size := range []int64{int64(len(big)), -1} {
		cr := &countingReader{r: bytes.NewReader(big)}
		_, err := c.PutBlob(ctx, cr, size, "")
		var he *client.HTTPError
		if !errors.As(err, &he) || he.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("upload of %d bytes (declared %d): %v", len(big), size, err)
		}
		if size > 0 && cr.n != 0 {
			t.Fatalf("a declared body over the limit was sent (%d bytes)", cr.n)
		}
	}
	// Declare 1000 bytes, send 500 and stop sending.
	conn, err := net.Dial("tcp", n.APIAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "POST /v1/blobs HTTP/1.1\r\nHost: node\r\nContent-Length: 1000\r\n\r\n"+strings.Repeat("a", 500))
	_ = conn.(*net.TCPConn).CloseWrite()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	answer, _ := io.ReadAll(conn)
	if !bytes.HasPrefix(answer, []byte("HTTP/1.1 400")) || !bytes.Contains(answer, []byte("ended before its declared length")) {
		t.Fatalf("cut upload answered %q", answer)
	}
	if u := n.Blobs().Usage(); u.Blobs != 0 || u.Reserved != 0 {
		t.Fatalf("refused uploads left %+v", u)
	}
}

// TestPaceDeadline: a transfer's deadline is its start, the grace and its
// bytes at the minimum rate; it moves once per paceStep.
func TestPaceDeadline(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var set []time.Time
	p := newPace(func(d time.Time) error { set = append(set, d); return nil }, start)
	p.advance(paceStep / 2)
	p.advance(paceStep / 2) // a full step: moves
	p.advance(10 * blobMinRate)
	want := []time.Time{start.Add(blobGrace), start.Add(blobGrace + 4*time.Second), start.Add(blobGrace + 14*time.Second)}
	if len(set) != len(want) {
		t.Fatalf("deadlines %v, want %v", set, want)
	}
	for i := range want {
		if !set[i].Equal(want[i]) {
			t.Fatalf("deadline %d: %v, want %v", i, set[i], want[i])
		}
	}
}

// slowReader yields chunk bytes every interval, n times.
type slowReader struct {
	chunk    []byte
	n        int
	interval time.Duration
	pending  []byte
}

func (s *slowReader) Read(p []byte) (int, error) {
	if len(s.pending) == 0 {
		if s.n == 0 {
			return 0, io.EOF
		}
		time.Sleep(s.interval)
		s.pending, s.n = s.chunk, s.n-1
	}
	k := copy(p, s.pending)
	s.pending = s.pending[k:]
	return k, nil
}

// TestBlobTransfersOutliveServerTimeouts: with the server's read and write
// timeouts far shorter than a transfer, an upload and a download that keep
// above the minimum rate still complete (the blob routes pace their
// deadlines); without the pacing both are cut off at the timeout.
func TestBlobTransfersOutliveServerTimeouts(t *testing.T) {
	tn := newTestChain(t, 1)
	tn.store.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := OpenNode(NodeOptions{Home: t.TempDir(), Config: DefaultConfig(), GenesisDoc: tn.doc, NodeKey: tn.nodeKey, Listener: ln,
		API: APILimits{ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done; n.Close() }()
	<-n.Ready()
	c, err := client.New("http://" + n.APIAddr())
	if err != nil {
		t.Fatal(err)
	}
	// 5 chunks of 64 KiB, one every 80 ms: 400 ms at 800 KiB/s.
	chunk := bytes.Repeat([]byte("slow but steady "), 4096)
	put, err := c.PutBlob(ctx, &slowReader{chunk: chunk, n: 5, interval: 80 * time.Millisecond}, int64(5*len(chunk)), "")
	if err != nil || put.Size != uint64(5*len(chunk)) {
		t.Fatalf("a steady upload longer than the read timeout: %+v %v", put, err)
	}
	// A 16 MiB blob read in 1 MiB steps 40 ms apart: 640 ms of writing.
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<20)
	put, err = c.PutBlob(ctx, bytes.NewReader(big), int64(len(big)), "")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(c.URL() + "/v1/blobs/" + put.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got bytes.Buffer
	buf := make([]byte, 1<<20)
	for {
		time.Sleep(40 * time.Millisecond)
		k, err := io.ReadFull(resp.Body, buf)
		got.Write(buf[:k])
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatalf("a steady download longer than the write timeout, after %d bytes: %v", got.Len(), err)
		}
	}
	if !bytes.Equal(got.Bytes(), big) {
		t.Fatalf("downloaded %d bytes, want %d", got.Len(), len(big))
	}
}
