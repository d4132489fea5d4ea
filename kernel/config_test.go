package kernel

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/internal/failpoint"
	"github.com/sos-kernel/sos/kernel/keyring"
)

// TestWriteFileAtomicSyncsDirectory: after the rename, the directory is
// synced (the rename is not durable otherwise) and a failure is reported.
func TestWriteFileAtomicSyncsDirectory(t *testing.T) {
	p := filepath.Join(t.TempDir(), GenesisFile)
	disable, err := failpoint.Enable(failpoint.SyncDir, "return")
	if err != nil {
		t.Fatal(err)
	}
	err = WriteFileAtomic(p, []byte("{}"), 0o644)
	n := failpoint.Count(failpoint.SyncDir)
	disable()
	if err == nil || n != 1 {
		t.Fatalf("directory synced %d times, error %v; want one failing sync reported", n, err)
	}
	if err := WriteFileAtomic(p, []byte(`{"a":1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != `{"a":1}` {
		t.Fatalf("content %q", b)
	}
}

// TestLoadHomeRefusesReadableNodeKey: a node key other users can read is
// not used; the error says which file and the chmod that fixes it.
func TestLoadHomeRefusesReadableNodeKey(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	tn := newTestChain(t, 1)
	home := t.TempDir()
	if err := SaveConfig(home, DefaultConfig()); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(filepath.Join(home, GenesisFile), tn.doc, 0o644); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(home, NodeKeyFile)
	if err := keyring.WriteKeyFile(keyPath, "node", tn.nodeKey); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadHome(home); err != nil {
		t.Fatalf("a 0600 node key: %v", err)
	}
	if err := os.Chmod(keyPath, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadHome(home)
	if !errors.Is(err, keyring.ErrKeyFileMode) || !strings.Contains(err.Error(), "chmod 600 "+keyPath) {
		t.Fatalf("a world-readable node key: %v, want ErrKeyFileMode with 'chmod 600 %s'", err, keyPath)
	}
}
