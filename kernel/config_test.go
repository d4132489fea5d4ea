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

// TestConfigKeyringBackend: keyring_backend is test by default (so homes
// from before it existed keep their plaintext keys), file or test when
// set, and anything else is refused naming the setting.
func TestConfigKeyringBackend(t *testing.T) {
	home := t.TempDir()
	old := "moniker = 'n'\napi_addr = '127.0.0.1:1'\np2p_addr = '127.0.0.1:2'\n"
	for _, c := range []struct{ line, want, err string }{
		{"", "test", ""},
		{"keyring_backend = 'file'\n", "file", ""},
		{"keyring_backend = 'test'\n", "test", ""},
		{"keyring_backend = 'os'\n", "", `keyring_backend "os"`},
	} {
		if err := os.WriteFile(filepath.Join(home, ConfigFile), []byte(old+c.line), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(home)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("%q: %v, want an error naming %s", c.line, err, c.err)
			}
			continue
		}
		if err != nil || cfg.KeyringBackend != c.want {
			t.Fatalf("%q: %q %v, want %s", c.line, cfg.KeyringBackend, err, c.want)
		}
	}
}

// TestConfigStorageProofSpread: storage_proof_spread defaults to 0.5 when
// absent, reads a fraction in [0, 0.9], and refuses one past 0.9 (an
// answer could then miss the epoch's end), a negative one and NaN.
func TestConfigStorageProofSpread(t *testing.T) {
	home := t.TempDir()
	old := "moniker = 'n'\napi_addr = '127.0.0.1:1'\np2p_addr = '127.0.0.1:2'\n"
	for _, c := range []struct {
		line string
		want float64
		err  bool
	}{
		{"", 0.5, false},
		{"storage_proof_spread = 0\n", 0, false},
		{"storage_proof_spread = 0.9\n", 0.9, false},
		{"storage_proof_spread = 0.95\n", 0, true},
		{"storage_proof_spread = 1\n", 0, true},
		{"storage_proof_spread = -0.1\n", 0, true},
		{"storage_proof_spread = nan\n", 0, true},
	} {
		if err := os.WriteFile(filepath.Join(home, ConfigFile), []byte(old+c.line), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := LoadConfig(home)
		if c.err {
			if err == nil || !strings.Contains(err.Error(), "storage_proof_spread") {
				t.Fatalf("%q: %v, want an error naming storage_proof_spread", c.line, err)
			}
			continue
		}
		if err != nil || cfg.StorageProofSpread != c.want {
			t.Fatalf("%q: %v %v, want %v", c.line, cfg.StorageProofSpread, err, c.want)
		}
	}
}
