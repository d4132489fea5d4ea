package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/internal/failpoint"
)

func TestWriteAtomicReplaces(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "config.toml")
	for _, content := range []string{"one", "two, longer"} {
		if err := WriteAtomic(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != content {
			t.Fatalf("read %q, %v; want %q", b, err, content)
		}
	}
	if des, _ := os.ReadDir(dir); len(des) != 1 {
		t.Fatalf("%d entries left in the directory, want 1", len(des))
	}
}

func TestWriteNewIsPrivateAndNeverReplaces(t *testing.T) {
	p := filepath.Join(t.TempDir(), "key.json")
	if err := WriteNew(p, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o", fi.Mode().Perm())
	}
	if err := WriteNew(p, []byte("other"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write: %v, want fs.ErrExist", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "secret" {
		t.Fatalf("replaced: %q", b)
	}
}

// TestDirectoryIsSyncedAfterTheRename: both writers sync the directory
// once the name is in place, and report a failure to do so.
func TestDirectoryIsSyncedAfterTheRename(t *testing.T) {
	disable, err := failpoint.Enable(failpoint.SyncDir, `return("injected")`)
	if err != nil {
		t.Fatal(err)
	}
	defer disable()
	dir := t.TempDir()
	for i, write := range []func(string, []byte, os.FileMode) error{WriteAtomic, WriteNew} {
		p := filepath.Join(dir, string(rune('a'+i)))
		err := write(p, []byte("x"), 0o600)
		if err == nil || !strings.Contains(err.Error(), "sync directory") {
			t.Fatalf("writer %d: %v, want the directory sync's failure", i, err)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("writer %d: the sync failed before the file was in place: %v", i, err)
		}
	}
}
