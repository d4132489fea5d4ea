package ledger

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestOpenLockedByAnotherProcess: a store another process holds is refused
// with ErrLocked, whatever errno the file lock reports (Pebble returns
// fcntl's EAGAIN as is, which used to read "resource temporarily
// unavailable" with nothing to match).
func TestOpenLockedByAnotherProcess(t *testing.T) {
	if dir := os.Getenv("SOS_LEDGER_HOLD_LOCK"); dir != "" {
		s, err := Open(dir, StoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		os.Stdout.WriteString("locked\n")
		time.Sleep(30 * time.Second) // the parent kills this process
		return
	}
	dir := t.TempDir()
	holder := exec.Command(os.Args[0], "-test.run=^TestOpenLockedByAnotherProcess$")
	holder.Env = append(os.Environ(), "SOS_LEDGER_HOLD_LOCK="+dir)
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "locked" {
		t.Fatalf("holder process: %q %v", line, err)
	}
	_, err = Open(dir, StoreOptions{})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("open of a store another process holds: %v, want ErrLocked", err)
	}
}
