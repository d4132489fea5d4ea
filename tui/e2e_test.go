package tui

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/sos-kernel/sos/kernel/client"
)

// helperNodeEnv makes the test binary run the TUI instead of the tests: the
// end-to-end test starts it that way inside tmux, a real terminal.
const helperNodeEnv = "SOS_TUI_E2E_NODE"

func TestMain(m *testing.M) {
	if node := os.Getenv(helperNodeEnv); node != "" {
		if err := Run(context.Background(), []string{node}, Options{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestEndToEnd starts a real node, drives the TUI (in tmux when it is
// installed, else in-process on pipes), sends a transfer and follows it from
// the Blocks view down to its receipt.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test builds and runs a node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sos := buildSOS(t, ctx)
	home := filepath.Join(t.TempDir(), "home")
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, sos, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("sos %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("init", "--home", home, "--chain-id", "tui-e2e")
	run("keys", "add", "alice", "--home", home)
	run("keys", "add", "bob", "--home", home)
	bob := strings.TrimSpace(run("keys", "show", "bob", "--home", home))
	run("genesis", "add-account", "alice", "1000TFLP", "--home", home)
	run("genesis", "add-account", "bob", "1000TFLP", "--home", home)

	url := startNode(t, ctx, sos, home)

	var d driver
	if tmux, err := exec.LookPath("tmux"); err == nil {
		d = startTmux(t, tmux, url)
	} else {
		t.Logf("tmux not installed (%v): driving the TUI in-process", err)
		d = startInProcess(t, ctx, url)
	}
	defer d.close()

	waitScreen(t, d, "overview with height", func(s string) bool {
		return strings.Contains(s, "height") && strings.Contains(s, "tui-e2e")
	})
	// The node's own log, read from GET /v1/logs.
	waitScreen(t, d, "the overview's log pane with the node's start", func(s string) bool {
		return strings.Contains(s, "Recent log") && strings.Contains(s, "node started")
	})

	out := run("tx", "transfer", "--from", "alice", "--to", bob, "--amount", "1TFLP", "--home", home, "--node", url, "-o", "json")
	var res struct {
		TxHash string `json:"tx_hash"`
		Height uint64 `json:"height"`
		Code   uint32 `json:"code"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Height == 0 || res.Code != 0 {
		t.Fatalf("transfer: %v: %s", err, out)
	}
	h := u64(res.Height)

	d.keys("2")
	row := regexp.MustCompile(`(?m)^\S?\s+` + h + `\s+\d\d:\d\d:\d\d\s+1\s`)
	waitScreen(t, d, "block "+h+" with 1 tx in the Blocks view", row.MatchString)

	d.keys("/")
	d.keys(h)
	d.keys("enter")
	d.keys("enter")
	waitScreen(t, d, "block "+h+" opened", func(s string) bool {
		return strings.Contains(s, "Block "+h) && strings.Contains(s, "transfer")
	})
	d.keys("enter")
	waitScreen(t, d, "the receipt of the transfer", func(s string) bool {
		return strings.Contains(s, res.TxHash) && regexp.MustCompile(`result\s+ok`).MatchString(s) && strings.Contains(s, "Events (")
	})

	// The market views against the real node's API: an offer appears in
	// the ROME view once its block is in, the certificates view answers.
	run("rome", "offer", "--from", "alice", "--capacity", "compute=100", "--price", "compute=5uTFLP", "--region", "eu-west", "--home", home, "--node", url)
	d.keys("6")
	waitScreen(t, d, "the ROME view with the offer", func(s string) bool {
		return strings.Contains(s, "ROME market  epoch") && strings.Contains(s, "compute 0/100") && strings.Contains(s, "eu-west")
	})
	d.keys("7")
	waitScreen(t, d, "the certificates view", func(s string) bool {
		return strings.Contains(s, "Certificates (") || strings.Contains(s, "no certificate issued yet")
	})
	// Governance from the real node: its parameters, no proposal yet.
	d.keys("9")
	waitScreen(t, d, "the governance view", func(s string) bool {
		return strings.Contains(s, "Governance") && strings.Contains(s, "no proposals yet") && strings.Contains(s, "quorum_bps")
	})
	// Storage from the real node: alice offers storage with a bond (her
	// node holds it), bob's one-replica request is matched, a blob pinned
	// to it appears in the Storage view, its holder fetches and proves it.
	run("rome", "offer", "--from", "alice", "--capacity", "storage=500", "--price", "storage=2uTFLP", "--region", "eu-west", "--bond", "50TFLP",
		"--home", home, "--node", url)
	var req struct {
		ID uint64 `json:"request_id"`
	}
	out = run("rome", "request", "--from", "bob", "--demand", "storage=20", "--max-price", "storage=3uTFLP", "--epochs", "10", "--replicas", "1",
		"--region", "eu-west", "--home", home, "--node", url, "-o", "json")
	if err := json.Unmarshal([]byte(out), &req); err != nil || req.ID == 0 {
		t.Fatalf("storage request: %v: %s", err, out)
	}
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	for start := time.Now(); ; time.Sleep(200 * time.Millisecond) {
		ls, err := c.RomeLeases(ctx, client.RomeFilter{Owner: bob, Status: "active"})
		if err == nil && len(ls) > 0 {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("no storage lease for request %d after 30 s (%v)", req.ID, err)
		}
	}
	blobFile := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(blobFile, bytes.Repeat([]byte("sos storage e2e "), 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	var put struct {
		ID string `json:"blob_id"`
	}
	out = run("blob", "put", blobFile, "--home", home, "--node", url, "-o", "json")
	if err := json.Unmarshal([]byte(out), &put); err != nil || put.ID == "" {
		t.Fatalf("blob put: %v: %s", err, out)
	}
	run("blob", "pin", put.ID, "--request", u64(req.ID), "--from", "bob", "--home", home, "--node", url)
	d.keys("0")
	pinRow := regexp.MustCompile(`(?m)^\S?\s+` + put.ID[:12] + `\S*\s+64\.0 KiB\s+#` + u64(req.ID) + `\s+\d/1\s+(fetching|held)`)
	waitScreen(t, d, "the pinned blob in the Storage view", pinRow.MatchString)
	heldRow := regexp.MustCompile(`(?m)^\S?\s+` + put.ID[:12] + `\S*\s+64\.0 KiB\s+#` + u64(req.ID) + `\s+1/1\s+held\s+\d+`)
	waitScreen(t, d, "the pinned blob proven by its holder", heldRow.MatchString)
	d.keys("enter")
	waitScreen(t, d, "the pinned blob's detail", func(s string) bool {
		return strings.Contains(s, "blob id      "+put.ID) && strings.Contains(s, "Holders (1)") && regexp.MustCompile(`eu-west\s+held`).MatchString(s)
	})
	d.keys("backspace")

	// A transaction hash typed in the Blocks filter is looked up on the
	// node and opens in its block.
	d.keys("2")
	// Back with backspace (receipt → block → list, then the height filter
	// cleared): an escape followed by "/" within tmux's escape-time would
	// read as alt+/.
	d.keys("backspace")
	d.keys("backspace")
	d.keys("backspace")
	d.keys("/")
	d.keys(res.TxHash)
	d.keys("enter")
	waitScreen(t, d, "the transfer found by its hash", func(s string) bool {
		return strings.Contains(s, res.TxHash) && regexp.MustCompile(`result\s+ok`).MatchString(s)
	})

	d.keys("q")
	if err := d.wait(10 * time.Second); err != nil {
		t.Fatalf("q did not quit the TUI: %v\n%s", err, d.screen())
	}
}

func buildSOS(t *testing.T, ctx context.Context) string {
	t.Helper()
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if err != nil || root == "." {
		t.Skipf("cannot find the module root (go env GOMOD: %v)", err)
	}
	bin := filepath.Join(t.TempDir(), "sos")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/sos")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("cannot build sos, skipping the end-to-end test: %v\n%s", err, out)
	}
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startNode runs the node until the test ends and waits for its API.
func startNode(t *testing.T, ctx context.Context, sos, home string) string {
	t.Helper()
	port := freePort(t)
	var log bytes.Buffer
	cmd := exec.Command(sos, "run", "--home", home, "--api", fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("node log:\n%s", log.String())
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := c.WaitHeight(wctx, 1); err != nil {
		t.Fatalf("node did not serve its API: %v", err)
	}
	return url
}

// driver is a running TUI the test types into and reads from.
type driver interface {
	keys(k string) // "enter", "esc" or literal text
	screen() string
	wait(d time.Duration) error // until the TUI has exited
	close()
}

func waitScreen(t *testing.T, d driver, what string, ok func(string) bool) {
	t.Helper()
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	for {
		s := d.screen()
		if ok(s) {
			t.Logf("saw %s after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; screen:\n%s", what, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tmuxDriver runs the TUI (this test binary in helper mode) in a detached
// tmux session on a private server socket.
type tmuxDriver struct {
	tmux, sock, session string
}

func startTmux(t *testing.T, tmux, url string) *tmuxDriver {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	d := &tmuxDriver{tmux: tmux, sock: filepath.Join(t.TempDir(), "tmux.sock"), session: "tui"}
	cmdline := fmt.Sprintf("env %s=%s TERM=xterm-256color %s", helperNodeEnv, url, exe)
	if out, err := d.cmd("new-session", "-d", "-s", d.session, "-x", "120", "-y", "40", cmdline).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	return d
}

func (d *tmuxDriver) cmd(args ...string) *exec.Cmd {
	return exec.Command(d.tmux, append([]string{"-S", d.sock}, args...)...)
}

func (d *tmuxDriver) keys(k string) {
	switch k {
	case "enter":
		d.cmd("send-keys", "-t", d.session, "Enter").Run()
	case "esc":
		d.cmd("send-keys", "-t", d.session, "Escape").Run()
	case "backspace":
		d.cmd("send-keys", "-t", d.session, "BSpace").Run()
	default:
		d.cmd("send-keys", "-t", d.session, "-l", k).Run()
	}
	time.Sleep(50 * time.Millisecond) // keep keystrokes apart, as a person would
}

func (d *tmuxDriver) screen() string {
	out, _ := d.cmd("capture-pane", "-p", "-t", d.session).Output()
	return string(out)
}

func (d *tmuxDriver) wait(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if d.cmd("has-session", "-t", d.session).Run() != nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("tmux session still running after %v", timeout)
}

func (d *tmuxDriver) close() { d.cmd("kill-server").Run() }

// pipeDriver runs the TUI in this process: keys go through a pipe, and the
// screen is the model's last frame, captured by a program filter.
type pipeDriver struct {
	in     *io.PipeWriter
	done   chan error
	cancel context.CancelFunc
	mu     sync.Mutex
	last   string
}

func startInProcess(t *testing.T, ctx context.Context, url string) *pipeDriver {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	d := &pipeDriver{in: pw, done: make(chan error, 1), cancel: cancel}
	capture := func(m tea.Model, msg tea.Msg) tea.Msg {
		s := ansi.Strip(m.View().Content)
		d.mu.Lock()
		d.last = s
		d.mu.Unlock()
		return msg
	}
	opts := Options{Input: pr, Output: io.Discard, NoAltScreen: true, Width: 120, Height: 40}
	go func() { d.done <- run(ctx, []string{url}, opts, tea.WithFilter(capture), tea.WithoutSignalHandler()) }()
	return d
}

func (d *pipeDriver) keys(k string) {
	switch k {
	case "enter":
		k = "\r"
	case "esc":
		k = "\x1b"
	case "backspace":
		k = "\x7f"
	}
	d.in.Write([]byte(k))
	time.Sleep(50 * time.Millisecond)
}

func (d *pipeDriver) screen() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last
}

func (d *pipeDriver) wait(timeout time.Duration) error {
	select {
	case err := <-d.done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("still running after %v", timeout)
	}
}

func (d *pipeDriver) close() {
	d.cancel()
	d.in.Close()
}
