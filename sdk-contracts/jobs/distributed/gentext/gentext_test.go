package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/jobs/internal/textgen"
)

func TestGentext(t *testing.T) {
	var want bytes.Buffer
	if err := textgen.Generate(&want, 9, 3<<10); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-seed", "9", "-size", "3KiB"}, &stdout, &stderr); code != 0 || !bytes.Equal(stdout.Bytes(), want.Bytes()) {
		t.Fatalf("exit %d, %d bytes, stderr %q", code, stdout.Len(), stderr.String())
	}
	file := filepath.Join(t.TempDir(), "t.txt")
	if code := run([]string{"-seed", "9", "-size", "3072", "-o", file}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if b, err := os.ReadFile(file); err != nil || !bytes.Equal(b, want.Bytes()) {
		t.Fatalf("file: %d bytes, %v", len(b), err)
	}
	for _, bad := range []string{"1TiB", "-1", "65GiB", "x", "1.5MiB"} {
		stderr.Reset()
		if code := run([]string{"-size", bad}, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "-size") {
			t.Errorf("-size %s: exit %d stderr %q", bad, code, stderr.String())
		}
	}
}
