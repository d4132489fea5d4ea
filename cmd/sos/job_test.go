package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"lukechampine.com/blake3"

	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/jobrun"
	"github.com/sos-kernel/sos/kernel/jobrun/jobruntest"
	"github.com/sos-kernel/sos/kernel/keyring"
)

// cli runs sos commands in this process against one node, as a user
// would from a shell; executor is what `job verify` re-executes with.
type cli struct {
	t        *testing.T
	home     string
	node     string
	executor jobrun.Executor
	gate     chan struct{} // closed: the node's executor runs its jobs
}

// run executes one command line and returns what it printed on stdout.
func (c *cli) run(args ...string) (string, error) {
	c.t.Helper()
	g := &globals{jobExecutor: func() (jobrun.Executor, error) {
		if c.executor == nil {
			return nil, jobrun.ErrNoExecutor
		}
		return c.executor, nil
	}}
	root := newRoot(g)
	if c.node != "" {
		args = append(args, "--node", c.node)
	}
	root.SetArgs(append(args, "--home", c.home))
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	f, err := os.CreateTemp(c.t.TempDir(), "stdout")
	if err != nil {
		c.t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = f
	err = root.Execute()
	os.Stdout = old
	f.Close()
	out, _ := os.ReadFile(f.Name())
	return string(out), err
}

func (c *cli) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("sos %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func (c *cli) json(v any, args ...string) {
	c.t.Helper()
	out := c.must(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("sos %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// startCLINode makes a home with `sos init` (keys alice and prov funded),
// shortens its epochs and job deadlines, and runs its node in this
// process.
func startCLINode(t *testing.T) (*cli, *kernel.Node) {
	t.Helper()
	return startCLINodeWith(t, true)
}

// startCLINodeWith is startCLINode; native false keeps the node's own
// executor, the VM's Jobs purpose.
func startCLINodeWith(t *testing.T, native bool) (*cli, *kernel.Node) {
	t.Helper()
	home := filepath.Join(t.TempDir(), "n1")
	c := &cli{t: t, home: home}
	c.must("init", "--chain-id", "sos-cli-test")
	for _, k := range []string{"alice", "prov"} {
		c.must("keys", "add", k)
		c.must("genesis", "add-account", k, "1000000000TFLP,5000000KWTT,5000000TBS")
	}
	path := filepath.Join(home, kernel.GenesisFile)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	r := doc["extra"].(map[string]any)["rome"].(map[string]any)
	r["epoch_blocks"], r["cert_period_epochs"] = 3, 100000
	jobs := r["jobs"].(map[string]any)
	jobs["timeout_blocks"], jobs["challenge_blocks"] = 100, 20
	if !native {
		jobs["timeout_blocks"] = 3000 // a minute of 20 ms blocks: the VM compiles the module first
	}
	if raw, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	opts, err := kernel.LoadHome(home)
	if err != nil {
		t.Fatal(err)
	}
	opts.Config.BlockInterval = kernel.Duration{Duration: 20 * time.Millisecond}
	c.gate = make(chan struct{})
	if os.Getenv("SOS_TEST_LOG") != "" {
		opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if native {
		opts.JobExecutor = gatedExecutor{gate: c.gate, x: jobruntest.Sha256Sum{}}
	} else if dir, err := os.UserCacheDir(); err == nil {
		// The CLI's cache: the module compiles once for both.
		opts.JobCacheDir = filepath.Join(dir, "sos", "job-cache")
	}
	if opts.Listener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	n, err := kernel.OpenNode(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		n.Close()
	})
	<-n.Ready()
	c.node = "http://" + n.APIAddr()
	return c, n
}

// gatedExecutor is the node's executor in these tests: a native
// sha256sum (a stand-in for the VM) that runs a job once the gate is open.
type gatedExecutor struct {
	gate <-chan struct{}
	x    jobrun.Executor
}

func (g gatedExecutor) Run(ctx context.Context, s *jobrun.Spec) (*jobrun.Run, error) {
	select {
	case <-g.gate:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.x.Run(ctx, s)
}

// answerJobs lets the node's executor run the jobs waiting for it: it
// fetches them from the node's blob store, stores the outputs there and
// sends the results signed with the home's node key.
func answerJobs(c *cli) { close(c.gate) }

// waitLease waits for an active lease the market is in the epochs of and
// returns its id.
func waitLease(t *testing.T, c *cli, after uint64) uint64 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		var leases []client.RomeLease
		var mk client.RomeMarket
		c.json(&leases, "rome", "leases", "--status", "active")
		c.json(&mk, "rome", "market")
		for _, l := range leases {
			if l.ID > after && mk.Epoch >= l.StartEpoch {
				return l.ID
			}
		}
		time.Sleep(30 * time.Millisecond)
	}
	t.Fatal("no lease within 30 s")
	return 0
}

func b3(p []byte) string { s := blake3.Sum256(p); return hex.EncodeToString(s[:]) }

// TestJobCLIRoundTrip follows acceptance flow 08 through the CLI: an offer
// with a bond (its node defaulting to the home's node key), a request, a
// lease; job submit uploads a module and an input and prints the job id;
// the node's executor (a native sha256sum in place of the VM) answers; job wait, status -o
// json, logs, fetch and verify see the result, and blob put/get/stat work
// on their own. Submissions the market refuses say why and upload nothing.
func TestJobCLIRoundTrip(t *testing.T) {
	c, n := startCLINode(t)
	c.executor = jobruntest.Sha256Sum{}
	nodeKey, _, err := keyring.ReadKeyFile(filepath.Join(c.home, kernel.NodeKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	var offer map[string]any
	c.json(&offer, "rome", "offer", "--from", "prov", "--capacity", "compute=100,bandwidth=50", "--price", "compute=5uTFLP,bandwidth=1uTBS",
		"--region", "eu-west", "--bond", "100TFLP")
	var offers []client.RomeOffer
	c.json(&offers, "rome", "offers")
	if len(offers) != 1 || offers[0].Node != nodeKey.Address().String() || len(offers[0].Bond) != 1 || offers[0].Bond[0].Amount != "100000000" {
		t.Fatalf("offer with a bond: %+v", offers)
	}
	c.must("rome", "request", "--from", "alice", "--demand", "compute=10,bandwidth=5", "--max-price", "compute=8uTFLP,bandwidth=2uTBS",
		"--epochs", "1000", "--region", "eu-west")
	lease := waitLease(t, c, 0)
	L := strconv.FormatUint(lease, 10)

	dir := t.TempDir()
	data := make([]byte, 300_000)
	_, _ = rand.Read(data)
	in, wasm := filepath.Join(dir, "data.bin"), filepath.Join(dir, "job.wasm")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wasm, []byte("\x00asm\x01\x00\x00\x00 stand-in module"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])

	// Refusals: what the market refuses is said before anything is uploaded.
	other := filepath.Join(dir, "other.wasm")
	_ = os.WriteFile(other, []byte("never uploaded"), 0o644)
	for _, r := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "prov"}, "only its consumer submits jobs"},
		{[]string{"--from", "alice", "--gas", "100000000000000"}, "remaining compute budget"},
		{[]string{"--from", "alice", "--memory", "2GiB"}, "max_job_memory_bytes"},
		{[]string{"--from", "alice", "--input", "a/b=" + in}, "plain file name"},
	} {
		out, err := c.run(append([]string{"job", "submit", "--lease", L, "--wasm", other, "--input", "data.bin=" + in}, r.args...)...)
		if err == nil || !strings.Contains(err.Error(), r.want) {
			t.Fatalf("submit %v: %v (want %q)\n%s", r.args, err, r.want, out)
		}
	}
	if st, err := n.Blobs().Stat(idOf(t, b3([]byte("never uploaded")))); err == nil {
		t.Fatalf("a refused submission uploaded its module: %+v", st)
	}

	var sub jobSubmitted
	c.json(&sub, "job", "submit", "--lease", L, "--wasm", wasm, "--input", "data.bin="+in, "--arg", "-v", "--env", "K=V", "--from", "alice")
	if sub.JobID == 0 || sub.Uploaded != 2 || sub.Module.ID != b3([]byte("\x00asm\x01\x00\x00\x00 stand-in module")) || len(sub.Inputs) != 1 ||
		sub.Inputs[0].ID != b3(data) || sub.MemoryLimit != 256<<20 || sub.OutputLimit != 64<<20 || sub.GasLimit != 10*1_000_000_000/defaultJobGasShare {
		t.Fatalf("submitted: %+v", sub)
	}
	J := strconv.FormatUint(sub.JobID, 10)
	// The same files again: nothing to upload; text mode prints the id alone.
	if out := c.must("job", "submit", "--lease", L, "--wasm", wasm, "--input", in, "--from", "alice", "--gas", "50000000"); strings.TrimSpace(out) != strconv.FormatUint(sub.JobID+1, 10) {
		t.Fatalf("second submit printed %q", out)
	}
	if _, err := c.run("job", "wait", J, "--timeout", "200ms"); err == nil || !strings.Contains(err.Error(), "still running") {
		t.Fatalf("wait before a result: %v", err)
	}
	if _, err := c.run("job", "logs", J); err == nil || !strings.Contains(err.Error(), "no result") {
		t.Fatalf("logs before a result: %v", err)
	}
	answerJobs(c)
	if out := c.must("job", "wait", J, "--timeout", "30s"); !strings.Contains(out, "job "+J+" done: exit 0") {
		t.Fatalf("wait: %q", out)
	}
	var st map[string]any
	c.json(&st, "job", "status", J)
	for k, v := range map[string]any{"status": "done", "exit_code": 0.0, "lease_id": float64(lease), "provider": offers[0].Owner,
		"node_id": nodeKey.Address().String(), "verified": nil,
		// Uploaded to the node that runs it: nothing moved over the data plane.
		"bytes_in": 0.0} {
		if st[k] != v {
			t.Errorf("status %s = %v, want %v", k, st[k], v)
		}
	}
	for _, k := range []string{"job_id", "gas_used", "output_root", "submit_height", "result_height", "bytes_out", "verified"} {
		if _, ok := st[k]; !ok {
			t.Errorf("status -o json lacks %s", k)
		}
	}
	if out := c.must("job", "logs", J); !strings.Contains(out, want+"  data.bin") {
		t.Fatalf("logs: %q", out)
	}
	outDir := filepath.Join(dir, "out")
	c.must("job", "fetch", J, "--out", outDir)
	if got, err := os.ReadFile(filepath.Join(outDir, "SHA256SUMS")); err != nil || !strings.Contains(string(got), want) {
		t.Fatalf("fetched SHA256SUMS %q: %v", got, err)
	}
	if out := c.must("job", "verify", J); !strings.Contains(out, "verified: re-execution reproduced exit 0") {
		t.Fatalf("verify: %q", out)
	}
	if _, err := c.run("job", "challenge", J, "--from", "alice"); err == nil || !strings.Contains(err.Error(), "nothing to challenge") {
		t.Fatalf("challenge of a reproduced result: %v", err)
	}
	c.executor = jobruntest.Sha256Sum{Skew: 1} // this re-execution disagrees
	if _, err := c.run("job", "verify", J); err == nil || !strings.Contains(err.Error(), "gas used") {
		t.Fatalf("verify with a differing executor: %v", err)
	}
	c.executor = nil
	if _, err := c.run("job", "verify", J); err == nil || !strings.Contains(err.Error(), "no job executor") {
		t.Fatalf("verify without an executor: %v", err)
	}
	var list client.JobList
	c.json(&list, "job", "list", "--lease", L, "--status", "done")
	if len(list.Jobs) != 2 || list.Jobs[1].JobID != sub.JobID { // the node ran both jobs, newest first
		t.Fatalf("job list: %+v", list)
	}

	// Blobs on their own.
	id := strings.TrimSpace(c.must("blob", "put", in))
	if id != b3(data) {
		t.Fatalf("blob put printed %q, want %s", id, b3(data))
	}
	got := filepath.Join(dir, "got.bin")
	c.must("blob", "get", id, "--out", got)
	if g, _ := os.ReadFile(got); !bytes.Equal(g, data) {
		t.Fatal("blob get wrote other bytes")
	}
	var info client.BlobInfo
	c.json(&info, "blob", "stat", id)
	if !info.Complete || info.Size != uint64(len(data)) {
		t.Fatalf("blob stat: %+v", info)
	}
}

func idOf(t *testing.T, s string) [32]byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return [32]byte(b)
}

// TestJobFetchRefusesMismatches: a node (here a proxy in front of a real
// one) that lists outputs other than the result's output root commits
// to, or serves bytes other than an output's id names, gets nothing
// written.
func TestJobFetchRefusesMismatches(t *testing.T) {
	c, _ := startCLINode(t)
	c.must("rome", "offer", "--from", "prov", "--capacity", "compute=100", "--price", "compute=5uTFLP", "--bond", "100TFLP")
	c.must("rome", "request", "--from", "alice", "--demand", "compute=10", "--max-price", "compute=8uTFLP", "--epochs", "1000")
	L := strconv.FormatUint(waitLease(t, c, 0), 10)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.txt")
	_ = os.WriteFile(in, []byte("some input\n"), 0o644)
	J := strings.TrimSpace(c.must("job", "submit", "--lease", L, "--wasm", in, "--input", in, "--from", "alice"))
	answerJobs(c)
	c.must("job", "wait", J, "--timeout", "30s")

	target, _ := url.Parse(c.node)
	for _, tc := range []struct {
		name   string
		modify func(*http.Response) error
		want   string
	}{
		{"forged output list", func(r *http.Response) error {
			if !strings.HasPrefix(r.Request.URL.Path, "/v1/jobs/") {
				return nil
			}
			var j map[string]any
			if err := json.NewDecoder(r.Body).Decode(&j); err != nil {
				return err
			}
			j["outputs"].([]any)[0].(map[string]any)["name"] = "forged"
			return setJSON(r, j)
		}, "refusing to fetch"},
		{"corrupt output bytes", func(r *http.Response) error {
			if !strings.HasPrefix(r.Request.URL.Path, "/v1/blobs/") {
				return nil
			}
			b, err := io.ReadAll(r.Body)
			if err != nil {
				return err
			}
			b[0] ^= 1
			r.Body = io.NopCloser(bytes.NewReader(b))
			return nil
		}, "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := httputil.NewSingleHostReverseProxy(target)
			p.ModifyResponse = tc.modify
			srv := httptest.NewServer(p)
			defer srv.Close()
			proxied := &cli{t: t, home: c.home, node: srv.URL}
			out := filepath.Join(t.TempDir(), "out")
			if _, err := proxied.run("job", "fetch", J, "--out", out); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("fetch through the proxy: %v (want %q)", err, tc.want)
			}
			if ents, _ := os.ReadDir(out); len(ents) != 0 {
				t.Fatalf("a refused fetch wrote %v", ents)
			}
		})
	}
	// Through the node itself the same fetch works.
	c.must("job", "fetch", J, "--out", filepath.Join(dir, "ok"))
}

func setJSON(r *http.Response, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	r.ContentLength = int64(len(b))
	r.Header.Set("Content-Length", strconv.Itoa(len(b)))
	return nil
}

// TestJobInTheVM is acceptance flow 08 with the real executor on both
// sides: the node runs sdk-contracts/jobs/sha256sum (built by make
// contracts; skipped without it) in its Jobs VM, and `sos job verify`
// re-executes it in this process's (defaultJobExecutor, compilation cache
// under the user's cache directory) and reproduces exit code, gas, output
// root and stdout.
func TestJobInTheVM(t *testing.T) {
	wasm, err := filepath.Abs("../../sdk-contracts/jobs/sha256sum/sha256sum.wasm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(wasm); err != nil {
		t.Skipf("%s not built (make contracts): %v", wasm, err)
	}
	if testing.Short() {
		t.Skip("compiles a Go job module (seconds)")
	}
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	t.Setenv("HOME", cache) // where os.UserCacheDir looks on other systems
	c, _ := startCLINodeWith(t, false)
	x, err := defaultJobExecutor()
	if err != nil {
		t.Fatal(err)
	}
	c.executor = x
	c.must("rome", "offer", "--from", "prov", "--capacity", "compute=100", "--price", "compute=5uTFLP", "--bond", "100TFLP")
	c.must("rome", "request", "--from", "alice", "--demand", "compute=10", "--max-price", "compute=8uTFLP", "--epochs", "1000")
	L := strconv.FormatUint(waitLease(t, c, 0), 10)
	data := make([]byte, 200_000)
	_, _ = rand.Read(data)
	in := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(in, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	J := strings.TrimSpace(c.must("job", "submit", "--lease", L, "--wasm", wasm, "--input", "data.bin="+in, "--from", "alice"))
	if out := c.must("job", "wait", J, "--timeout", "60s"); !strings.Contains(out, "done: exit 0 (exited)") {
		t.Fatalf("wait: %q", out)
	}
	if out := c.must("job", "logs", J); out != hex.EncodeToString(sum[:])+"  data.bin\n" {
		t.Fatalf("logs: %q", out)
	}
	if out := c.must("job", "verify", J); !strings.Contains(out, "verified: re-execution reproduced exit 0") {
		t.Fatalf("verify: %q", out)
	}
	if ents, err := os.ReadDir(filepath.Join(cache, "sos", "job-cache")); err != nil || len(ents) == 0 {
		t.Fatalf("the CLI's compilation cache is empty: %v", err)
	}
}
