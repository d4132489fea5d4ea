package client

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"lukechampine.com/blake3"
)

// ErrBlobMismatch is returned when downloaded content does not hash to the
// blob id asked for (or has another size than expected).
var ErrBlobMismatch = errors.New("blob content does not match its id")

// BlobInfo describes a blob the node holds (GET /v1/blobs/{id}/stat).
type BlobInfo struct {
	ID       string `json:"blob_id"`
	Size     uint64 `json:"size"`
	Complete bool   `json:"complete"` // false: a transfer in progress
	Have     uint64 `json:"have"`     // bytes verified so far (Size when complete)
	StoredMs int64  `json:"stored_ms,omitempty"`
}

// BlobPut is the answer to an upload: the blob's id and size, and whether
// the node had it already.
type BlobPut struct {
	ID      string `json:"blob_id"`
	Size    uint64 `json:"size"`
	Existed bool   `json:"existed"`
}

// BlobUsage is what the node's blob store holds (GET /v1/blobs).
type BlobUsage struct {
	Blobs     int    `json:"blobs"`
	Bytes     uint64 `json:"bytes"` // content of complete blobs
	Partials  int    `json:"partials"`
	Reserved  uint64 `json:"reserved"` // held for transfers in progress
	Disk      uint64 `json:"disk"`     // what the limit bounds: data, outboards and reservations
	Limit     uint64 `json:"limit"`    // 0: only the disk
	MaxUpload uint64 `json:"max_upload"`
}

// BlobStat describes one blob on the node (ErrNotFound if it has none).
func (c *Client) BlobStat(ctx context.Context, id string) (*BlobInfo, error) {
	var out BlobInfo
	return &out, c.GetJSON(ctx, "/v1/blobs/"+url.PathEscape(id)+"/stat", &out)
}

// BlobUsage returns what the node's blob store holds and its limits.
func (c *Client) BlobUsage(ctx context.Context) (*BlobUsage, error) {
	var out BlobUsage
	return &out, c.GetJSON(ctx, "/v1/blobs", &out)
}

// PutBlob uploads size bytes read from r (size < 0: unknown, sent
// chunked). With id set the node stores the content only if it hashes to
// id (otherwise it refuses with 422 and keeps nothing), and a node that
// has the blob already answers before the body is sent. The node refuses
// a body over its blob_max_upload with 413.
func (c *Client) PutBlob(ctx context.Context, r io.Reader, size int64, id string) (*BlobPut, error) {
	method, path := http.MethodPost, "/v1/blobs"
	if id != "" {
		method, path = http.MethodPut, "/v1/blobs/"+url.PathEscape(id)
	}
	if size == 0 {
		r = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	if size != 0 {
		// The node answers first when it refuses the upload (too large) or
		// has the blob already: the body is then not sent at all.
		req.Header.Set("Expect", "100-continue")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("client: %s %s: read: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, httpError(resp.StatusCode, data)
	}
	var out BlobPut
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("client: %s %s: decode: %w", method, path, err)
	}
	return &out, nil
}

// GetBlob streams blob id into w and checks the content: its BLAKE3 hash
// must be id (and its length size, when size ≥ 0). On a mismatch it
// returns ErrBlobMismatch after w has received the bytes, so a caller
// writing a file writes to a temporary one and renames it only on success.
func (c *Client) GetBlob(ctx context.Context, id string, size int64, w io.Writer) (int64, error) {
	want, err := hex.DecodeString(id)
	if err != nil || len(want) != 32 {
		return 0, fmt.Errorf("client: blob id %q: want 64 hex characters", id)
	}
	path := "/v1/blobs/" + url.PathEscape(id)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return 0, fmt.Errorf("client: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("client: GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return 0, httpError(resp.StatusCode, data)
	}
	h := blake3.New(32, nil)
	body := io.Reader(resp.Body)
	if size >= 0 {
		body = io.LimitReader(resp.Body, size+1) // one byte more tells a longer blob
	}
	n, err := io.Copy(io.MultiWriter(w, h), body)
	if err != nil {
		return n, fmt.Errorf("client: GET %s: %w", path, err)
	}
	if size >= 0 && n != size {
		return n, fmt.Errorf("client: blob %s: %d bytes, want %d: %w", id, n, size, ErrBlobMismatch)
	}
	if got := h.Sum(nil); !bytes.Equal(got, want) {
		return n, fmt.Errorf("client: blob %s: content hashes to %x: %w", id, got, ErrBlobMismatch)
	}
	return n, nil
}
