//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/ledger"
)

// lockedBuffer is an io.Writer the devnet writes to while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func alive(pid int) bool { return syscall.Kill(pid, 0) == nil }

// TestDevnetSurvivesAKilledNode drives the devnet supervisor with stand-in
// node processes: a node killed with kill -9 is reported (which one, and
// how it ended) while the others keep running; 'sos devnet restart N' from
// another "terminal" (the control socket) starts it again; a stop of a
// running node through restart is not reported as a crash; the end of the
// devnet stops every node. It used to end the whole devnet with
// "node 1 exited: <nil>".
func TestDevnetSurvivesAKilledNode(t *testing.T) {
	dir := t.TempDir()
	homes := []string{filepath.Join(dir, "node0"), filepath.Join(dir, "node1"), filepath.Join(dir, "node2")}
	out := &lockedBuffer{}
	d := newSupervisor(dir, homes, []string{"http://a", "http://b", "http://c"}, []string{"p0", "p1", "p2"}, out)
	var mu sync.Mutex
	var started []*exec.Cmd
	d.start = func(i int) (*exec.Cmd, error) {
		c := exec.Command("sleep", "60") // a node that runs until stopped
		dieWithParent(c)
		if err := c.Start(); err != nil {
			return nil, err
		}
		mu.Lock()
		started = append(started, c)
		mu.Unlock()
		return c, nil
	}
	d.probe = func(ctx context.Context, i int) (*client.Status, error) {
		return &client.Status{NodeID: fmt.Sprintf("id%d", i), Leader: "id0"}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.run(ctx) }()
	waitFor(t, "the devnet to announce itself", func() bool { return strings.Contains(out.String(), "devnet of 3 nodes running (leader node0)") })

	status := func() string {
		t.Helper()
		s, err := devnetRequest(ctx, dir, "status")
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if s := status(); strings.Count(s, "running, pid") != 3 {
		t.Fatalf("status:\n%s", s)
	}
	mu.Lock()
	victim := started[1]
	mu.Unlock()
	if err := victim.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed node to be reported", func() bool {
		return strings.Contains(out.String(), "node1 stopped: signal: killed") && strings.Contains(out.String(), "sos devnet restart 1 --dir "+dir)
	})
	select {
	case err := <-done:
		t.Fatalf("the devnet ended when one node was killed: %v", err)
	default:
	}
	mu.Lock()
	others := []*exec.Cmd{started[0], started[2]}
	mu.Unlock()
	for _, c := range others {
		if !alive(c.Process.Pid) {
			t.Fatalf("node pid %d stopped with node1", c.Process.Pid)
		}
	}
	if s := status(); !strings.Contains(s, "node1 stopped") || strings.Count(s, "running, pid") != 2 {
		t.Fatalf("status after the kill:\n%s", s)
	}

	ans, err := devnetRequest(ctx, dir, "restart 1")
	if err != nil || !strings.Contains(ans, "node1 restarted (pid") {
		t.Fatalf("restart 1: %q %v", ans, err)
	}
	if s := status(); strings.Count(s, "running, pid") != 3 {
		t.Fatalf("status after the restart:\n%s", s)
	}
	// Restarting a running node stops it first; that stop is no crash.
	if ans, err := devnetRequest(ctx, dir, "restart 2"); err != nil || !strings.Contains(ans, "node2 restarted") {
		t.Fatalf("restart 2: %q %v", ans, err)
	}
	time.Sleep(200 * time.Millisecond)
	if strings.Contains(out.String(), "node2 stopped") {
		t.Fatalf("a restart was reported as a crash:\n%s", out)
	}
	if _, err := devnetRequest(ctx, dir, "restart 7"); err == nil || !strings.Contains(err.Error(), "no node") {
		t.Fatalf("restart 7: %v", err)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("devnet ended with %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the devnet did not stop")
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range started {
		if alive(c.Process.Pid) && c.ProcessState == nil {
			t.Fatalf("node pid %d still runs after the devnet stopped", c.Process.Pid)
		}
	}
	if _, err := devnetRequest(context.Background(), dir, "status"); err == nil || !strings.Contains(err.Error(), "no devnet running") {
		t.Fatalf("status of a stopped devnet: %v", err)
	}
}

// TestDevnetEndsWhenEveryNodeStopped: with no node left the devnet says so
// and ends with an error instead of waiting forever.
func TestDevnetEndsWhenEveryNodeStopped(t *testing.T) {
	dir := t.TempDir()
	out := &lockedBuffer{}
	d := newSupervisor(dir, []string{filepath.Join(dir, "node0")}, []string{"http://a"}, []string{"p0"}, out)
	d.start = func(i int) (*exec.Cmd, error) {
		c := exec.Command("sh", "-c", "echo 'error: kernel: config: api_addr in use' >&2; exit 1")
		c.Stderr = nil
		return c, c.Start()
	}
	d.probe = func(ctx context.Context, i int) (*client.Status, error) { return nil, fmt.Errorf("down") }
	err := d.run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "every node has stopped") {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(out.String(), "node0 stopped: exit status 1") {
		t.Fatalf("output:\n%s", out)
	}
}

func TestParseDevnetFunds(t *testing.T) {
	fs, err := parseDevnetFunds([]string{"bob=100TFLP,5KWTT", "carol=1uTBS"})
	if err != nil || len(fs) != 2 || fs[0].name != "bob" || fs[0].coins.AmountOf("uTFLP") != 100_000_000 || fs[0].coins.AmountOf("uKWTT") != 5_000_000 {
		t.Fatalf("%+v %v", fs, err)
	}
	for _, bad := range []string{"bob", "=1TFLP", "bob=", "operator=1TFLP", "bob=1XYZ"} {
		if _, err := parseDevnetFunds([]string{bad}); err == nil {
			t.Errorf("--fund %q accepted", bad)
		}
	}
	if _, err := parseDevnetFunds([]string{"bob=1TFLP", "bob=2TFLP"}); err == nil {
		t.Error("a name funded twice was accepted")
	}
}

// TestDevnetInitFund: --fund NAME=AMOUNTS makes one key NAME, the same in
// every home, funded in the shared genesis; a devnet that exists refuses a
// --fund it does not hold instead of ignoring it.
func TestDevnetInitFund(t *testing.T) {
	dir := t.TempDir()
	funds, err := parseDevnetFunds([]string{"bob=100TFLP,5KWTT"})
	if err != nil {
		t.Fatal(err)
	}
	homes, err := devnetInit(dir, "fund-test", 2, funds)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, h := range homes {
		e, err := keyring.Open(h).Get("bob")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, e.Address)
	}
	if addrs[0] != addrs[1] {
		t.Fatalf("bob differs between homes: %v", addrs)
	}
	doc, err := os.ReadFile(filepath.Join(homes[1], kernel.GenesisFile))
	if err != nil {
		t.Fatal(err)
	}
	gen, err := ledger.ParseGenesis(doc)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, a := range gen.Accounts {
		if a.Address.String() == addrs[0] {
			found = a.Balances.AmountOf("uTFLP") == 100_000_000 && a.Balances.AmountOf("uKWTT") == 5_000_000
		}
	}
	if !found {
		t.Fatal("bob is not funded with 100 TFLP and 5 KWTT in the genesis")
	}
	if _, err := devnetInit(dir, "fund-test", 2, funds); err != nil {
		t.Fatalf("restarting the same devnet with the same --fund: %v", err)
	}
	carol, _ := parseDevnetFunds([]string{"carol=1TFLP"})
	if _, err := devnetInit(dir, "fund-test", 2, carol); err == nil || !strings.Contains(err.Error(), "applies when a devnet is created") {
		t.Fatalf("a new --fund on an existing devnet: %v", err)
	}
}
