package keyring

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/internal/failpoint"
	"github.com/sos-kernel/sos/ledger"
)

type zeroReader struct{ b byte }

func (z *zeroReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = z.b
	}
	z.b++
	return len(p), nil
}

func TestKeyFilesAreWrittenPrivate(t *testing.T) {
	home := t.TempDir()
	kr := Open(home).WithRand(&zeroReader{})
	e, err := kr.Add("alice")
	if err != nil {
		t.Fatal(err)
	}
	key, err := ledger.PrivateKeyFromSeed(bytes.Repeat([]byte{7}, ledger.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	node := filepath.Join(home, "node_key.json")
	if err := WriteKeyFile(node, "node", key); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{kr.path("alice"), node} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s has mode %04o, want 0600", p, fi.Mode().Perm())
		}
	}
	got, err := kr.Get("alice")
	if err != nil || got.Address != e.Address {
		t.Fatalf("get: %v %v", got, err)
	}
	// No temporary files are left behind.
	des, _ := os.ReadDir(filepath.Join(home, "keys"))
	if len(des) != 1 {
		t.Fatalf("keys/ holds %d entries, want 1", len(des))
	}
}

// TestKeyFileOthersCanReadIsRefused: as ssh does with private keys, a key
// file that other users may read or write is not used, and the error says
// how to fix it.
func TestKeyFileOthersCanReadIsRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	home := t.TempDir()
	kr := Open(home).WithRand(&zeroReader{})
	if _, err := kr.Add("alice"); err != nil {
		t.Fatal(err)
	}
	p := kr.path("alice")
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o660} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		_, err := kr.Get("alice")
		if !errors.Is(err, ErrKeyFileMode) || !strings.Contains(err.Error(), "chmod 600 "+p) {
			t.Fatalf("mode %04o: %v, want ErrKeyFileMode naming 'chmod 600 %s'", mode, err, p)
		}
		if _, _, err := ReadKeyFile(p); !errors.Is(err, ErrKeyFileMode) {
			t.Fatalf("ReadKeyFile, mode %04o: %v", mode, err)
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := kr.Get("alice"); err != nil {
			t.Fatalf("mode %04o: %v", mode, err)
		}
	}
}

func TestWriteKeyFileNeverOverwrites(t *testing.T) {
	p := filepath.Join(t.TempDir(), "node_key.json")
	k1, _ := ledger.PrivateKeyFromSeed(bytes.Repeat([]byte{1}, ledger.SeedSize))
	k2, _ := ledger.PrivateKeyFromSeed(bytes.Repeat([]byte{2}, ledger.SeedSize))
	if err := WriteKeyFile(p, "node", k1); err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyFile(p, "node", k2); !errors.Is(err, ErrExists) {
		t.Fatalf("second write: %v, want ErrExists", err)
	}
	got, _, err := ReadKeyFile(p)
	if err != nil || got.Address() != k1.Address() {
		t.Fatalf("the first key was replaced or damaged: %v", err)
	}
}

// TestWriteKeyFileSyncsDirectory: the new name is made durable by syncing
// the directory; a failure there is reported, not ignored.
func TestWriteKeyFileSyncsDirectory(t *testing.T) {
	disable, err := failpoint.Enable(failpoint.SyncDir, `return("disk gone")`)
	if err != nil {
		t.Fatal(err)
	}
	defer disable()
	k, _ := ledger.PrivateKeyFromSeed(bytes.Repeat([]byte{3}, ledger.SeedSize))
	err = WriteKeyFile(filepath.Join(t.TempDir(), "k.json"), "k", k)
	if err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Fatalf("write with a failing directory sync: %v", err)
	}
	if failpoint.Count(failpoint.SyncDir) != 1 {
		t.Fatalf("directory synced %d times, want 1", failpoint.Count(failpoint.SyncDir))
	}
}
