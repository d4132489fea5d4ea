package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/client"
)

// stdoutMu serializes commands whose stdout a test captures (the CLI
// prints to os.Stdout, which sos() swaps for a pipe).
var stdoutMu sync.Mutex

// sos runs one CLI command in this process and returns what it printed on
// stdout and the message main would print for its error ("" if none).
func sos(t *testing.T, args ...string) (string, string) {
	t.Helper()
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	g := newGlobals()
	root := newRoot(g)
	root.SetArgs(args)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	saved := os.Stdout
	os.Stdout = w
	got := make(chan string)
	go func() { b, _ := io.ReadAll(r); got <- string(b) }()
	err = root.Execute()
	os.Stdout = saved
	w.Close()
	out := <-got
	if err != nil {
		return out, g.explain(err)
	}
	return out, ""
}

// must is sos for a command that has to succeed.
func must(t *testing.T, args ...string) string {
	t.Helper()
	out, msg := sos(t, args...)
	if msg != "" {
		t.Fatalf("sos %s: %s", strings.Join(args, " "), msg)
	}
	return out
}

// cliNode makes a home with a funded key alice (as the README does) and
// runs 'sos run' on it in this process, with 50 ms blocks.
func cliNode(t *testing.T) (home, url string) {
	t.Helper()
	home = filepath.Join(t.TempDir(), "n1")
	must(t, "init", "--home", home, "--chain-id", "cli-test")
	must(t, "keys", "add", "alice", "--home", home)
	must(t, "genesis", "add-account", "alice", "1000000TFLP,5000KWTT", "--home", home)
	cfg, err := kernel.LoadConfig(home)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.APIAddr, err = freeAddr(); err != nil {
		t.Fatal(err)
	}
	if cfg.P2PAddr, err = freeAddr(); err != nil {
		t.Fatal(err)
	}
	cfg.BlockInterval = kernel.Duration{Duration: 50 * time.Millisecond}
	if err := kernel.SaveConfig(home, cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		root := newRootCmd()
		root.SetArgs([]string{"run", "--home", home, "--log-level", "error"})
		done <- root.ExecuteContext(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("sos run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("sos run did not stop")
		}
	})
	url = "http://" + cfg.APIAddr
	c, _ := client.New(url)
	deadline := time.Now().Add(30 * time.Second)
	for {
		sctx, scancel := context.WithTimeout(ctx, time.Second)
		_, err := c.Status(sctx)
		scancel()
		if err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("sos run ended: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node did not serve its API: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return home, url
}

// TestCLIAgainstANode runs the README's first commands against a node and
// checks what they say: amounts in display units, a failed transaction's
// error printed once and saying what to do, reads at a height, and a
// second 'sos run' on the home naming the process that holds it.
func TestCLIAgainstANode(t *testing.T) {
	home, url := cliNode(t)
	must(t, "keys", "add", "bob", "--home", home)

	out := must(t, "tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "25TFLP", "--home", home)
	if !strings.Contains(out, ": ok, gas used ") || !strings.Contains(out, " of limit ") || !strings.Contains(out, " TFLP\n") || strings.Contains(out, "uTFLP") {
		t.Fatalf("transfer printed:\n%s", out)
	}
	out = must(t, "query", "account", "alice", "--home", home)
	if !strings.Contains(out, "  5,000 KWTT\n") || !strings.Contains(out, "  999,974.99") || strings.Contains(out, "uTFLP") {
		t.Fatalf("query account printed:\n%s", out)
	}
	out = must(t, "query", "supply", "--home", home)
	if !strings.Contains(out, "TFLP   total 1,001,000 TFLP  fees collected 0.000") {
		t.Fatalf("query supply printed:\n%s", out)
	}

	// Out of gas: the receipt is printed, the error once, with the numbers.
	var sim struct {
		GasUsed uint64 `json:"gas_used"`
	}
	if err := json.Unmarshal([]byte(must(t, "tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1TFLP", "--dry-run", "-o", "json", "--home", home)), &sim); err != nil || sim.GasUsed == 0 {
		t.Fatalf("dry run: %+v %v", sim, err)
	}
	limit := sim.GasUsed - 100
	out, msg := sos(t, "tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1TFLP", "--gas", strconv.FormatUint(limit, 10), "--home", home)
	want := fmt.Sprintf("of limit %s; raise --gas", group(limit))
	if !strings.Contains(msg, "out of gas: used ") || !strings.Contains(msg, want) {
		t.Fatalf("out of gas says %q, want %q", msg, want)
	}
	if !strings.Contains(out, "failed (code 1, out of gas)") || strings.Contains(out, "out of gas:") {
		t.Fatalf("out of gas printed (the error belongs to the error line only):\n%s", out)
	}
	// With -o json the receipt is whole and has the real gas limit.
	out, msg = sos(t, "tx", "transfer", "--from", "alice", "--to", "bob", "--amount", "1TFLP", "--gas", strconv.FormatUint(limit, 10), "--home", home, "-o", "json")
	var res txResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.Receipt == nil || res.Receipt.GasLimit != limit || msg == "" {
		t.Fatalf("-o json of a failed tx: %q %v, error %q", out, err, msg)
	}

	// --min-height: a read waits for the height.
	var st client.Status
	if err := json.Unmarshal([]byte(must(t, "query", "status", "--node", url, "-o", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(must(t, "query", "status", "--node", url, "-o", "json", "--min-height", fmt.Sprint(st.Height+4))), &st); err != nil || st.Height < 4 {
		t.Fatalf("status with --min-height: %+v %v", st, err)
	}

	// A second node on the same home names the process holding it.
	_, msg = sos(t, "run", "--home", home, "--api", "127.0.0.1:0")
	abs, _ := filepath.Abs(home)
	if want := fmt.Sprintf("another sos process (pid %d) holds this home %s", os.Getpid(), abs); !strings.Contains(msg, want) {
		t.Fatalf("second sos run says %q, want %q", msg, want)
	}
}

// TestCLIErrorsSayWhatToDo: the usual mistakes of a first session get an
// error that names what was tried and what to change.
func TestCLIErrorsSayWhatToDo(t *testing.T) {
	dead, err := freeAddr() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	_, msg := sos(t, "query", "status", "--node", "http://"+dead)
	if !strings.Contains(msg, "no node at http://"+dead) || !strings.Contains(msg, "is `sos run` running?") || !strings.Contains(msg, "URL from --node") {
		t.Fatalf("no node: %q", msg)
	}
	empty := t.TempDir()
	_, msg = sos(t, "query", "status", "--home", empty)
	if !strings.Contains(msg, "has no config.toml") {
		t.Fatalf("no node from a home without config: %q", msg)
	}
	_, msg = sos(t, "keys", "show", "alice", "--home", empty)
	if want := filepath.Join(empty, "keys"); !strings.Contains(msg, `"alice"`) || !strings.Contains(msg, want) || !strings.Contains(msg, "--home") {
		t.Fatalf("missing key: %q, want the keyring %s named", msg, want)
	}
	if _, msg := sos(t, "devnet", "restart", "1", "--dir", empty); !strings.Contains(msg, "no devnet running in "+empty) {
		t.Fatalf("devnet restart without a devnet: %q", msg)
	}
}

// TestExplainReceipt: how a failed receipt reads.
func TestExplainReceipt(t *testing.T) {
	cases := []struct {
		rc        client.Receipt
		simulated bool
		want      string
	}{
		{client.Receipt{Code: 1, CodeName: "out of gas", GasUsed: 120000, GasLimit: 120000, Error: "out of gas: vm: out of gas: unreachable in $2008"}, false,
			"out of gas: used 120,000 of limit 120,000; raise --gas"},
		{client.Receipt{Code: 1, GasUsed: 600000000, GasLimit: 600000000}, true, "out of gas: used 600,000,000 of limit 600,000,000, the chain's max_tx_gas"},
		{client.Receipt{Code: 9, Error: "vm: trap: unreachable in $1467: contract panicked: panic: chaos: boom (in main.f at chaos.go:112)"}, false,
			"contract panicked: chaos: boom (in main.f at chaos.go:112)"},
		{client.Receipt{Code: 9, Error: "vm: trap: integer divide by zero in $12"}, false, "vm: trap: integer divide by zero in $12"},
		{client.Receipt{Code: 8, CodeName: "contract error"}, false, "contract error"},
		{client.Receipt{Code: 2, Error: "ledger: transfer: insufficient funds: have 999934938072uTFLP, need 1000000000000uTFLP"}, false,
			"ledger: transfer: insufficient funds: have 999,934.938072 TFLP, need 1,000,000 TFLP"},
	}
	dt := client.NewDenomTable([]client.Denom{{Display: "TFLP", Base: "uTFLP", Exponent: 6}})
	for _, tc := range cases {
		if got := explainReceipt(dt, &tc.rc, tc.simulated); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%+v:\n got %q\nwant %q…", tc.rc, got, tc.want)
		}
	}
}

// TestCertVerifyUnsigned: a certificate exported before its issuer signed
// it is not "invalid signature" but "not signed yet", with what to do.
func TestCertVerifyUnsigned(t *testing.T) {
	f := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(f, []byte(`{"statement":{"cert_id":2,"node_id":"sos1x"},"status":"pending","signature":""}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, msg := sos(t, "cert", "verify", f)
	if !strings.Contains(msg, "certificate 2 is not signed yet (status pending)") || !strings.Contains(msg, "sos cert list") {
		t.Fatalf("verify of an unsigned export: %q", msg)
	}
}

// TestPeerLine: 'sos peers' marks the node itself and reads a follower's
// missing link to another follower as idle.
func TestPeerLine(t *testing.T) {
	for _, c := range []struct {
		p    client.Peer
		want string
	}{
		{client.Peer{NodeID: "me", Self: true, Link: client.LinkSelf}, "this node"},
		{client.Peer{NodeID: "a", Connected: true, Link: client.LinkConnected, RTTMs: 1.5}, "rtt   1.50 ms  connected"},
		{client.Peer{NodeID: "b", Link: client.LinkIdle}, "idle"},
		{client.Peer{NodeID: "c", Link: client.LinkDown}, "disconnected"},
		{client.Peer{NodeID: "me"}, "this node"}, // an older node: no self flag
	} {
		if got := peerLine("me", c.p); !strings.HasSuffix(got, c.want) {
			t.Errorf("%+v: %q, want …%q", c.p, got, c.want)
		}
	}
}
