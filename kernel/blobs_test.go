package kernel

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/blob"
	"github.com/sos-kernel/sos/kernel/client"
)

// TestNodeBlobStore: the node keeps its blobs in <home>/blobs across
// restarts, within blob_limit (an upload past it is refused with 507 and
// leaves nothing), and releases the store when it closes.
func TestNodeBlobStore(t *testing.T) {
	tn := newTestChain(t, 1)
	tn.store.Close()
	home := t.TempDir()
	cfg := DefaultConfig()
	cfg.BlobLimit = 64 << 10
	open := func() *Node {
		t.Helper()
		n, err := OpenNode(NodeOptions{Home: home, Config: cfg, GenesisDoc: tn.doc, NodeKey: tn.nodeKey})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := open()
	srv := httptest.NewServer(n.apiHandler())
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	small := []byte("kept across restarts")
	if _, err := c.PutBlob(context.Background(), bytes.NewReader(small), int64(len(small)), ""); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 100<<10)
	_, err = c.PutBlob(context.Background(), bytes.NewReader(big), int64(len(big)), "")
	var he *client.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusInsufficientStorage || !strings.Contains(he.Msg, "store full") {
		t.Fatalf("an upload past blob_limit: %v", err)
	}
	if u := n.Blobs().Usage(); u.Blobs != 1 || u.Reserved != 0 || u.Limit != 64<<10 {
		t.Fatalf("usage after the refusal: %+v", u)
	}
	srv.Close()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home, BlobsDir, blob.Sum(small).String()[:2], blob.Sum(small).String())); err != nil {
		t.Fatalf("the blob is not in <home>/blobs: %v", err)
	}
	n = open()
	defer n.Close()
	if !n.Blobs().Has(blob.Sum(small)) {
		t.Fatal("the blob is gone after a restart")
	}
}

// TestConfigBlobSizes: blob_limit and blob_max_upload are written and read
// with units, and nonsense is refused naming the setting.
func TestConfigBlobSizes(t *testing.T) {
	home := t.TempDir()
	cfg := DefaultConfig()
	cfg.BlobLimit, cfg.BlobMaxUpload = 3<<30, 1536<<10
	if err := SaveConfig(home, cfg); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(home, ConfigFile))
	if !strings.Contains(string(raw), "blob_limit = '3GiB'") || !strings.Contains(string(raw), "blob_max_upload = '1536KiB'") {
		t.Fatalf("config.toml:\n%s", raw)
	}
	got, err := LoadConfig(home)
	if err != nil || got.BlobLimit != cfg.BlobLimit || got.BlobMaxUpload != cfg.BlobMaxUpload {
		t.Fatalf("loaded %+v, %v", got, err)
	}
	for _, c := range []struct{ line, want string }{
		{"blob_limit = '16 gigs'", "blob_limit"},
		{"blob_max_upload = '0'", "blob_max_upload must be positive"},
	} {
		if err := os.WriteFile(filepath.Join(home, ConfigFile), []byte(c.line+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadConfig(home); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (want %q)", c.line, err, c.want)
		}
	}
}
