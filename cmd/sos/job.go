package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/internal/units"
	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/jobrun"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
	"github.com/sos-kernel/sos/vm"
)

// defaultJobExecutor is what `sos job verify` and `sos job challenge`
// re-execute jobs with: the VM's Jobs purpose in this process, with
// wazero's compilation cache under the user's cache directory
// ($XDG_CACHE_HOME/sos/job-cache or ~/.cache/sos/job-cache), so verifying
// a second job of the same module does not compile it again. Without a
// cache directory it compiles every time.
func defaultJobExecutor() (jobrun.Executor, error) {
	cfg := kernel.JobVMConfig{MaxMemoryBytes: vm.MaxJobMemoryBytes}
	if dir, err := os.UserCacheDir(); err == nil {
		cfg.CacheDir = filepath.Join(dir, "sos", "job-cache")
		if err := os.MkdirAll(cfg.CacheDir, 0o700); err != nil {
			cfg.CacheDir = ""
		}
	}
	return kernel.NewJobVM(context.Background(), cfg)
}

// defaultJobGasShare is the share of a lease's compute budget for the
// current epoch that a job gets when --gas is not given (capped at what is
// left): a job pays only for the gas it uses, but its limit is reserved
// while it runs, so a quarter leaves room for three more jobs at once.
const defaultJobGasShare = 4

func newJobCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "job", Short: "Run programs on a lease's provider node: submit, wait, status, logs, fetch, verify, challenge, list",
		Long: `Jobs are WASI command modules (a Go program built with GOOS=wasip1, a Rust one for
wasm32-wasip1, ...) that a compute lease's consumer sends to the lease's provider node. The node runs
them in the same metered, deterministic VM as contracts, stores the outputs and commits a result: exit
code, gas used, output files under an output root. Because execution is deterministic anyone can
re-execute a job (sos job verify) and dispute a wrong result (sos job challenge). See docs/jobs.md.`}
	cmd.AddCommand(newJobSubmitCmd(g), newJobWaitCmd(g), newJobStatusCmd(g), newJobLogsCmd(g), newJobFetchCmd(g),
		newJobVerifyCmd(g), newJobChallengeCmd(g), newJobListCmd(g))
	return cmd
}

func parseJobID(s string) (uint64, error) { return parseID(s, "job id") }

// parseSize reads a size flag ("256MiB").
func parseSize(flag, s string) (uint64, error) {
	v, err := units.ParseBytes(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", flag, err)
	}
	return v, nil
}

// jobSubmitted is what `sos job submit` prints with -o json.
type jobSubmitted struct {
	JobID       uint64           `json:"job_id,omitempty"`
	LeaseID     uint64           `json:"lease_id"`
	TxHash      string           `json:"tx_hash"`
	Height      uint64           `json:"height,omitempty"`
	Deadline    uint64           `json:"deadline,omitempty"`
	Node        string           `json:"node,omitempty"`
	GasLimit    uint64           `json:"gas_limit"`
	MemoryLimit uint64           `json:"memory_limit"`
	OutputLimit uint64           `json:"output_limit"`
	Module      client.BlobRef   `json:"module"`
	Inputs      []client.JobFile `json:"inputs"`
	Stdin       *client.BlobRef  `json:"stdin,omitempty"`
	Uploaded    int              `json:"uploaded"` // blobs sent; the node had the others
	TxGasUsed   uint64           `json:"tx_gas_used,omitempty"`
}

func newJobSubmitCmd(g *globals) *cobra.Command {
	var tf txFlags
	var lease, gas uint64
	var wasm, stdin, memory, outputLimit string
	var inputs, args, env []string
	c := &cobra.Command{
		Use:   "submit",
		Short: "Send a WASI program and its inputs to a lease's provider node; prints the job id",
		Long: `Upload the module, the inputs and stdin to the node (each named by its BLAKE3 hash; what the
node has already is not sent again) and send job_submit from the lease's consumer. The market refuses
a job for someone else's lease, a lease not running now, or a gas limit above the lease's remaining
compute budget for this epoch; submit checks that before uploading anything.

The job's gas limit (--gas) is reserved in the lease's budget for the current epoch (the lease's
compute amount × gas_per_compute_unit) until the job ends, and only the gas used is metered. Without
--gas a job gets a quarter of the epoch's budget, or what is left of it if that is less.

Inputs are readable by the program at /in/NAME; it writes outputs under /out (sos job fetch).
The job id is printed on stdout (a summary on stderr); -o json prints the submission.`,
		Example: "  sos job submit --lease 3 --wasm sdk-contracts/jobs/wordcount/wordcount.wasm --input corpus.txt=./corpus.txt \\\n" +
			"      --arg -top --arg 20 --memory 256MiB --from cons",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mem, err := parseSize("--memory", memory)
			if err != nil {
				return err
			}
			outLimit, err := parseSize("--output-limit", outputLimit)
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(cmd, blobTimeout)
			defer cancel()
			key, err := g.signingKey(tf.from)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			b, err := txbuild.New(ctx, c)
			if err != nil {
				return err
			}
			// Name every file by its content first: the payload needs the ids.
			mod, err := hashFile(wasm)
			if err != nil {
				return fmt.Errorf("--wasm: %w", err)
			}
			files := []localBlob{mod}
			p := &ledger.JobSubmit{LeaseID: lease, Args: args, Env: env, GasLimit: gas, MemoryLimit: mem, OutputLimit: outLimit,
				Module: ledger.BlobRef{ID: mustBlobID(mod.ID), Size: uint64(mod.Size)}}
			seen := map[string]bool{}
			for _, in := range inputs {
				name, path, ok := strings.Cut(in, "=")
				if !ok {
					name, path = filepath.Base(in), in
				}
				if seen[name] {
					return fmt.Errorf("--input: %q given twice", name)
				}
				seen[name] = true
				f, err := hashFile(path)
				if err != nil {
					return fmt.Errorf("--input %s: %w", name, err)
				}
				files = append(files, f)
				p.Inputs = append(p.Inputs, ledger.JobFile{Name: name, ID: mustBlobID(f.ID), Size: uint64(f.Size)})
			}
			sort.Slice(p.Inputs, func(i, j int) bool { return p.Inputs[i].Name < p.Inputs[j].Name })
			if stdin != "" {
				f, err := hashFile(stdin)
				if err != nil {
					return fmt.Errorf("--stdin: %w", err)
				}
				files = append(files, f)
				p.Stdin = ledger.BlobRef{ID: mustBlobID(f.ID), Size: uint64(f.Size)}
			}
			if p.GasLimit == 0 {
				if p.GasLimit, err = defaultJobGas(ctx, c, lease); err != nil {
					return err
				}
			}
			if err := p.ValidateBasic(); err != nil {
				return err
			}
			if tf.dryRun {
				return g.simulate(cmd, b, key, p, tf.memo)
			}
			// Simulate before uploading: a job the market refuses says why
			// now, not after gigabytes went to the node.
			acc, err := c.Account(ctx, key.Address().String(), false)
			if err != nil {
				return err
			}
			txGas := tf.gas
			if txGas == 0 {
				if txGas, err = b.Estimate(ctx, key, p, acc.Nonce, !acc.HasPubKey, tf.memo); err != nil {
					return fmt.Errorf("job submit refused: %w", err)
				}
			}
			out := jobSubmitted{LeaseID: lease, GasLimit: p.GasLimit, MemoryLimit: mem, OutputLimit: outLimit,
				Module: client.BlobRef{ID: mod.ID, Size: uint64(mod.Size)}, Inputs: []client.JobFile{}}
			for _, in := range p.Inputs {
				out.Inputs = append(out.Inputs, client.JobFile{Name: in.Name, ID: in.ID.String(), Size: in.Size})
			}
			if !p.Stdin.IsZero() {
				out.Stdin = &client.BlobRef{ID: p.Stdin.ID.String(), Size: p.Stdin.Size}
			}
			for _, f := range files {
				sent, err := uploadFile(ctx, c, f)
				if err != nil {
					return err
				}
				if sent {
					out.Uploaded++
				}
			}
			o := txbuild.Options{GasLimit: txGas, Memo: tf.memo, Wait: !tf.noWait}
			if tf.gasPrice != "" {
				if o.GasPrice, err = b.Denoms.ParseGasPrice(tf.gasPrice); err != nil {
					return err
				}
			}
			res, err := b.Send(ctx, key, p, o)
			if err != nil {
				if res != nil && res.Receipt != nil && res.Receipt.Error != "" {
					return fmt.Errorf("job submit failed at height %d: %s", res.Height, res.Receipt.Error)
				}
				return err
			}
			out.TxHash, out.Height, out.TxGasUsed = res.TxHash, res.Height, res.GasUsed
			if res.Receipt != nil && res.Receipt.Data != "" {
				var r struct {
					JobID    uint64 `json:"job_id"`
					Deadline uint64 `json:"deadline"`
					Node     string `json:"node"`
				}
				if err := json.Unmarshal([]byte(res.Receipt.Data), &r); err == nil {
					out.JobID, out.Deadline, out.Node = r.JobID, r.Deadline, r.Node
				}
			}
			return g.print(out, func() {
				if out.JobID == 0 {
					fmt.Printf("tx %s accepted (not waiting for commit): the job id is in its receipt (sos query tx %s)\n", out.TxHash, out.TxHash)
					return
				}
				fmt.Println(out.JobID)
				fmt.Fprintf(os.Stderr, "job %d submitted on lease %d at height %d: gas limit %d, memory %s, output limit %s, deadline height %d; %d of %d blobs uploaded\n",
					out.JobID, lease, out.Height, out.GasLimit, units.Format(mem), units.Format(outLimit), out.Deadline, out.Uploaded, len(files))
			})
		},
	}
	tf.registerGasAs(c, "tx-gas")
	c.Flags().Uint64Var(&lease, "lease", 0, "the lease to run on (you must be its consumer) (required)")
	c.Flags().StringVar(&wasm, "wasm", "", "the WASI command module (.wasm) (required)")
	c.Flags().StringArrayVar(&inputs, "input", nil, "an input NAME=PATH, readable by the job at /in/NAME (PATH alone: NAME is its base name); repeatable")
	c.Flags().StringArrayVar(&args, "arg", nil, "an argument (argv[1:], in order); repeatable")
	c.Flags().StringArrayVar(&env, "env", nil, "an environment variable K=V; repeatable")
	c.Flags().StringVar(&stdin, "stdin", "", "a file to feed the job's stdin")
	c.Flags().Uint64Var(&gas, "gas", 0, "the job's gas limit (default: a quarter of the lease's compute budget for this epoch, at most what is left)")
	c.Flags().StringVar(&memory, "memory", "256MiB", "the job's memory limit (at most the chain's max_job_memory_bytes)")
	c.Flags().StringVar(&outputLimit, "output-limit", "64MiB", "the most the job may write under /out, in total")
	_ = c.MarkFlagRequired("lease")
	_ = c.MarkFlagRequired("wasm")
	return c
}

func mustBlobID(s string) ledger.BlobID {
	id, err := ledger.ParseBlobID(s)
	if err != nil {
		panic(err) // s comes from hashFile: 64 hex digits
	}
	return id
}

// defaultJobGas is the gas limit of a job submitted without --gas: a
// share of the lease's budget for the current epoch, at most what is left.
func defaultJobGas(ctx context.Context, c *client.Client, lease uint64) (uint64, error) {
	u, err := c.LeaseUsage(ctx, lease)
	if err != nil {
		return 0, fmt.Errorf("lease %d: %w", lease, err)
	}
	cur := u.Current()
	if cur == nil {
		return 1, nil // the lease does not run now: the market says so when the submission is simulated
	}
	if cur.RemainingGas == 0 {
		return 0, fmt.Errorf("lease %d has no compute budget left in epoch %d (budget %d gas: %d used, %d reserved by running jobs): "+
			"wait for the next epoch or for running jobs to end", lease, cur.Epoch, cur.BudgetGas, cur.Gas, cur.Reserved)
	}
	return max(1, min(cur.RemainingGas, cur.BudgetGas/defaultJobGasShare, rome.MaxJobGas)), nil
}

// settled reports whether a job's status will not change without a
// challenge: it has a result, or it timed out or was slashed.
func settled(status string) bool { return status != "submitted" && status != "running" }

// waitJob returns job id once it is settled or ctx ends. It reads the
// job after every block of the node's event stream, and every second
// should the stream fail.
func waitJob(ctx context.Context, c *client.Client, id uint64) (*client.Job, error) {
	wake := make(chan struct{}, 1)
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		_ = c.Events(sctx, func(ev client.StreamEvent) {
			if ev.Type == "block" {
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		})
	}()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last *client.Job
	var lastErr error
	for {
		j, err := c.Job(ctx, id)
		switch {
		case errors.Is(err, client.ErrNotFound):
			return nil, err
		case err == nil:
			last, lastErr = j, nil
			if settled(j.Status) {
				return j, nil
			}
		case ctx.Err() == nil:
			lastErr = err // the node may be restarting: keep asking
		}
		select {
		case <-ctx.Done():
			if lastErr != nil {
				return last, fmt.Errorf("%w (last error: %v)", ctx.Err(), lastErr)
			}
			return last, ctx.Err()
		case <-wake:
		case <-tick.C:
		}
	}
}

// jobLine is the one-line summary of a job.
func jobLine(j *client.Job) string {
	s := fmt.Sprintf("job %d %s", j.JobID, j.Status)
	if j.ExitCode != nil {
		s += fmt.Sprintf(": exit %d (%s), gas %d of %d", *j.ExitCode, j.Class, j.GasUsed, j.GasLimit)
	}
	switch j.Status {
	case "timeout":
		s += fmt.Sprintf(": no result by its deadline (height %d); the consumer pays nothing for it", j.Deadline)
	case "slashed":
		s += ": re-execution proved the result wrong; the provider's bond was slashed"
	case "challenged":
		s += ": its result is disputed; the committee re-executes it"
	case "submitted", "running":
		s += fmt.Sprintf(": deadline height %d", j.Deadline)
	}
	return s
}

func newJobWaitCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	c := &cobra.Command{
		Use:   "wait JOB_ID",
		Short: "Wait for a job's result; prints status, exit code and gas",
		Long: `Wait until the job has a result (done or failed), timed out or was slashed, and print it.

A job whose program exits non-zero, traps or runs out of gas is "failed" but completed: the provider
did its job, and wait exits 0 (check exit_code). wait exits non-zero when the job timed out or was
slashed (it produced no valid result), and when its own --timeout passes first.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseJobID(args[0])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(cmd, timeout)
			defer cancel()
			j, err := waitJob(ctx, c, id)
			if err != nil {
				if j != nil && errors.Is(err, context.DeadlineExceeded) {
					return fmt.Errorf("job %d is still %s after %s (deadline height %d, node at height %d)", id, j.Status, timeout, j.Deadline, j.Height)
				}
				return err
			}
			if err := g.print(j, func() { fmt.Println(jobLine(j)) }); err != nil {
				return err
			}
			if j.Status == "timeout" || j.Status == "slashed" {
				return fmt.Errorf("job %d %s", id, map[string]string{"timeout": "timed out", "slashed": "was slashed"}[j.Status])
			}
			return nil
		},
	}
	c.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "give up after this long")
	return c
}

func refText(r *client.BlobRef) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprintf("%s (%s)", r.ID, units.Format(r.Size))
}

func verifiedText(v *bool) string {
	switch {
	case v == nil:
		return "not re-executed by this node"
	case *v:
		return "yes: this node's re-execution reproduced the result"
	}
	return "NO: this node's re-execution differs from the result"
}

func printJob(j *client.Job) {
	fmt.Println(jobLine(j))
	fmt.Printf("lease %d (offer %d)  provider %s  consumer %s\nnode %s\n", j.LeaseID, j.OfferID, j.Provider, j.Consumer, j.NodeID)
	fmt.Printf("submitted at height %d (epoch %d), deadline %d", j.SubmitHeight, j.SubmitEpoch, j.Deadline)
	if j.ResultHeight > 0 {
		fmt.Printf("; result at height %d, challengeable until %d", j.ResultHeight, j.ChallengeEnd)
	}
	fmt.Printf("\nmodule %s\n", refText(&j.Module))
	for _, in := range j.Inputs {
		fmt.Printf("input  %s %s (%s)\n", in.Name, in.ID, units.Format(in.Size))
	}
	if j.Stdin != nil {
		fmt.Printf("stdin  %s\n", refText(j.Stdin))
	}
	if len(j.Args) > 0 {
		fmt.Printf("args   %s\n", strings.Join(j.Args, " "))
	}
	if len(j.Env) > 0 {
		fmt.Printf("env    %s\n", strings.Join(j.Env, " "))
	}
	fmt.Printf("limits gas %d, memory %s, output %s\n", j.GasLimit, units.Format(j.MemoryLimit), units.Format(j.OutputLimit))
	if j.HasResult() {
		for _, o := range j.Outputs {
			fmt.Printf("output %s %s (%s)\n", o.Name, o.ID, units.Format(o.Size))
		}
		fmt.Printf("stdout %s\nstderr %s\noutput root %s\nbytes in %s, out %s\nverified: %s\n", refText(j.Stdout), refText(j.Stderr), j.OutputRoot,
			units.Format(j.BytesIn), units.Format(j.BytesOut), verifiedText(j.Verified))
	}
	if ch := j.Challenge; ch != nil {
		state := ch.Outcome
		if state == "" {
			state = fmt.Sprintf("open, verdicts until height %d", ch.VerdictEnd)
		}
		fmt.Printf("challenge by %s at height %d (%s): claims exit %d, gas %d, output root %s; %d of %d verdicts\n",
			ch.Challenger, ch.Height, state, ch.Claim.ExitCode, ch.Claim.GasUsed, ch.Claim.OutputRoot, len(ch.Votes), len(ch.Committee))
	}
}

func newJobStatusCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "status JOB_ID", Short: "A job's record: status, result, outputs, challenge (-o json: every field)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseJobID(args[0])
			if err != nil {
				return err
			}
			return show(g, cmd, func(ctx context.Context, c *client.Client) (*client.Job, error) { return c.Job(ctx, id) }, printJob)
		},
	}
}

// resultJob fetches a job that must have a result.
func resultJob(ctx context.Context, c *client.Client, id uint64) (*client.Job, error) {
	j, err := c.Job(ctx, id)
	if err != nil {
		return nil, err
	}
	if !j.HasResult() {
		return nil, fmt.Errorf("job %d has no result (%s): wait for it with sos job wait %d", id, j.Status, id)
	}
	return j, nil
}

func newJobLogsCmd(g *globals) *cobra.Command {
	var stderr bool
	c := &cobra.Command{
		Use: "logs JOB_ID", Short: "Print a job's stdout (or --stderr), checked against the result", Args: cobra.ExactArgs(1),
		Long: `Print what the job wrote to stdout (or stderr), as its result recorded it: the first 1 MiB of each.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseJobID(args[0])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(cmd, 5*time.Minute)
			defer cancel()
			j, err := resultJob(ctx, c, id)
			if err != nil {
				return err
			}
			ref := j.Stdout
			if stderr {
				ref = j.Stderr
			}
			var buf strings.Builder
			if _, err := c.GetBlob(ctx, ref.ID, int64(ref.Size), &buf); err != nil {
				return err
			}
			_, err = os.Stdout.WriteString(buf.String())
			return err
		},
	}
	c.Flags().BoolVar(&stderr, "stderr", false, "print stderr instead of stdout")
	return c
}

// checkOutputRoot checks a job's listed outputs, stdout and stderr
// against its output root (rome.OutputRoot): the files fetched are then
// the ones the result committed to.
func checkOutputRoot(j *client.Job) ([]ledger.JobFile, error) {
	files := make([]ledger.JobFile, 0, len(j.Outputs))
	for _, o := range j.Outputs {
		id, err := ledger.ParseBlobID(o.ID)
		if err != nil {
			return nil, fmt.Errorf("job %d: output %q: %w", j.JobID, o.Name, err)
		}
		files = append(files, ledger.JobFile{Name: o.Name, ID: id, Size: o.Size})
	}
	ref := func(r *client.BlobRef) (ledger.BlobRef, error) {
		if r == nil {
			return ledger.BlobRef{}, fmt.Errorf("job %d: result without stdout or stderr", j.JobID)
		}
		id, err := ledger.ParseBlobID(r.ID)
		return ledger.BlobRef{ID: id, Size: r.Size}, err
	}
	so, err := ref(j.Stdout)
	if err != nil {
		return nil, err
	}
	se, err := ref(j.Stderr)
	if err != nil {
		return nil, err
	}
	want, err := ledger.ParseHash(j.OutputRoot)
	if err != nil {
		return nil, fmt.Errorf("job %d: output root: %w", j.JobID, err)
	}
	if got := rome.OutputRoot(files, so, se); got != want {
		return nil, fmt.Errorf("job %d: the outputs the node lists hash to output root %s, the result's is %s: refusing to fetch them", j.JobID, got, want)
	}
	return files, nil
}

// fetchedFile is one output `sos job fetch` wrote.
type fetchedFile struct {
	Name string `json:"name"`
	ID   string `json:"blob_id"`
	Size uint64 `json:"size"`
	Path string `json:"path"`
}

func newJobFetchCmd(g *globals) *cobra.Command {
	var out string
	c := &cobra.Command{
		Use: "fetch JOB_ID --out DIR", Short: "Download a job's output files, each checked against the result's output root", Args: cobra.ExactArgs(1),
		Long: `Download the files the job wrote under /out into DIR (nested paths become directories). The list
of outputs must hash to the output root the result committed to, and each file to its blob id: a
file that does not is refused (nothing is written under its name).`,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseJobID(args[0])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(cmd, blobTimeout)
			defer cancel()
			j, err := resultJob(ctx, c, id)
			if err != nil {
				return err
			}
			files, err := checkOutputRoot(j)
			if err != nil {
				return err
			}
			var got []fetchedFile
			for _, f := range files {
				rel := filepath.FromSlash(f.Name)
				if !filepath.IsLocal(rel) {
					return fmt.Errorf("job %d: output %q is not a path inside %s", id, f.Name, out)
				}
				path := filepath.Join(out, rel)
				if _, err := downloadFile(ctx, c, f.ID.String(), int64(f.Size), path); err != nil {
					return fmt.Errorf("job %d: output %s: %w", id, f.Name, err)
				}
				got = append(got, fetchedFile{Name: f.Name, ID: f.ID.String(), Size: f.Size, Path: path})
			}
			return g.print(map[string]any{"job_id": id, "output_root": j.OutputRoot, "files": got}, func() {
				for _, f := range got {
					fmt.Printf("%s  %s  %s\n", f.Path, units.Format(f.Size), f.ID)
				}
				fmt.Printf("%d outputs of job %d checked against output root %s\n", len(got), id, j.OutputRoot)
			})
		},
	}
	c.Flags().StringVar(&out, "out", "", "directory to write the outputs into (required)")
	_ = c.MarkFlagRequired("out")
	return c
}

// verifyReport is what `sos job verify` prints with -o json.
type verifyReport struct {
	JobID   uint64            `json:"job_id"`
	Match   bool              `json:"match"`
	Diffs   []string          `json:"diffs"`
	Outcome client.JobOutcome `json:"outcome"` // the re-execution's
	Claimed client.JobOutcome `json:"claimed"` // the result's
	Class   string            `json:"class"`
}

func outcomeOf(o ledger.JobOutcome) client.JobOutcome {
	return client.JobOutcome{ExitCode: o.ExitCode, GasUsed: o.GasUsed, OutputRoot: o.OutputRoot.String(), Stdout: o.Stdout.String()}
}

// reexecute runs job id locally, fetching its module and inputs from the
// node's blob API, and compares the outcome with its result's.
func (g *globals) reexecute(ctx context.Context, c *client.Client, id, maxBytes uint64) (*jobrun.Report, error) {
	j, err := resultJob(ctx, c, id)
	if err != nil {
		return nil, err
	}
	job, err := jobrun.FromAPI(j)
	if err != nil {
		return nil, err
	}
	claimed, err := claimedOutcome(j)
	if err != nil {
		return nil, err
	}
	x, err := g.jobExecutor()
	if err != nil {
		return nil, fmt.Errorf("cannot re-execute job %d: %w", id, err)
	}
	return jobrun.Verify(ctx, &job, claimed, jobrun.ClientBlobs{Client: c}, x, maxBytes)
}

func claimedOutcome(j *client.Job) (ledger.JobOutcome, error) {
	o, ok := j.Outcome()
	if !ok {
		return ledger.JobOutcome{}, fmt.Errorf("job %d has no result", j.JobID)
	}
	root, err := ledger.ParseHash(o.OutputRoot)
	if err != nil {
		return ledger.JobOutcome{}, err
	}
	so, err := ledger.ParseBlobID(o.Stdout)
	if err != nil {
		return ledger.JobOutcome{}, err
	}
	return ledger.JobOutcome{ExitCode: o.ExitCode, GasUsed: o.GasUsed, OutputRoot: root, Stdout: so}, nil
}

func newJobVerifyCmd(g *globals) *cobra.Command {
	var maxBytes string
	c := &cobra.Command{
		Use: "verify JOB_ID", Short: "Re-execute a job here and compare with its result: exit code, gas, output root, stdout", Args: cobra.ExactArgs(1),
		Long: `Fetch the job's module and inputs from the node (each checked against its id), run the job in
this process's VM with the job's args, env, limits, seed and clock, and compare the outcome with the
result the provider's node committed. Execution is deterministic, so an honest result is reproduced
bit for bit; a difference is printed and verify exits non-zero: dispute it with sos job challenge.

What it proves and what not: a match shows the provider ran this module on these inputs; it says
nothing about confidentiality (the provider saw the inputs) and re-executing costs you the job's run.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseJobID(args[0])
			if err != nil {
				return err
			}
			mb, err := parseSize("--max-bytes", maxBytes)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(cmd, blobTimeout)
			defer cancel()
			rep, err := g.reexecute(ctx, c, id, mb)
			if err != nil {
				return err
			}
			out := verifyReport{JobID: id, Match: rep.Match, Diffs: rep.Diffs, Outcome: outcomeOf(rep.Result.Outcome()), Claimed: outcomeOf(rep.Claimed),
				Class: ledger.JobClassName(rep.Result.Class)}
			if out.Diffs == nil {
				out.Diffs = []string{}
			}
			if err := g.print(out, func() {
				if rep.Match {
					fmt.Printf("job %d verified: re-execution reproduced exit %d (%s), gas %d, output root %s\n", id, out.Outcome.ExitCode, out.Class, out.Outcome.GasUsed, out.Outcome.OutputRoot)
					return
				}
				fmt.Printf("job %d: re-execution DIFFERS from the result:\n", id)
				for _, d := range rep.Diffs {
					fmt.Println("  " + d)
				}
			}); err != nil {
				return err
			}
			if !rep.Match {
				return fmt.Errorf("job %d: the result is not reproduced (%s); dispute it with: sos job challenge %d --from KEY", id, strings.Join(rep.Diffs, "; "), id)
			}
			return nil
		},
	}
	c.Flags().StringVar(&maxBytes, "max-bytes", "4GiB", "refuse to load a job whose module, inputs and stdin are larger")
	return c
}

func newJobChallengeCmd(g *globals) *cobra.Command {
	var tf txFlags
	var exit int32
	var gas uint64
	var root, stdout, maxBytes string
	c := &cobra.Command{
		Use: "challenge JOB_ID", Short: "Dispute a job's result on chain with your own outcome (escrows the challenge deposit)", Args: cobra.ExactArgs(1),
		Long: `File job_challenge: the challenger's outcome (exit code, gas used, output root, stdout id) against
the result. By default the outcome is a local re-execution (as sos job verify), and a result it
reproduces is not challenged. --exit, --gas, --output-root and --stdout give the outcome instead.

The challenge escrows the chain's job_challenge_deposit. A committee of validators re-executes the
job: if the majority differs from the result, the provider loses part of its bond (the challenger
is rewarded and gets the deposit back); if it reproduces the result, the deposit goes to the
provider; with no majority in time, the deposit returns.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseJobID(args[0])
			if err != nil {
				return err
			}
			flags := []string{"exit", "gas", "output-root", "stdout"}
			given := 0
			for _, f := range flags {
				if cmd.Flags().Changed(f) {
					given++
				}
			}
			var claim ledger.JobOutcome
			switch given {
			case len(flags):
				claim.ExitCode, claim.GasUsed = exit, gas
				if claim.OutputRoot, err = ledger.ParseHash(root); err != nil {
					return fmt.Errorf("--output-root: %w", err)
				}
				if claim.Stdout, err = ledger.ParseBlobID(stdout); err != nil {
					return fmt.Errorf("--stdout: %w", err)
				}
			case 0:
				mb, err := parseSize("--max-bytes", maxBytes)
				if err != nil {
					return err
				}
				c, err := g.client()
				if err != nil {
					return err
				}
				ctx, cancel := cmdContext(cmd, blobTimeout)
				defer cancel()
				rep, err := g.reexecute(ctx, c, id, mb)
				if errors.Is(err, jobrun.ErrNoExecutor) {
					return fmt.Errorf("%w: give your outcome with --exit, --gas, --output-root and --stdout", err)
				}
				if err != nil {
					return err
				}
				if rep.Match {
					return fmt.Errorf("job %d: re-execution reproduced the result: there is nothing to challenge", id)
				}
				fmt.Fprintf(os.Stderr, "re-execution differs: %s\n", strings.Join(rep.Diffs, "; "))
				claim = rep.Result.Outcome()
			default:
				return fmt.Errorf("give all of --exit, --gas, --output-root and --stdout, or none (then the outcome is a local re-execution)")
			}
			return g.runMarketTx(cmd, &tf, func(b *txbuild.Builder) (ledger.Payload, error) {
				return &ledger.JobChallenge{JobID: id, Outcome: claim}, nil
			})
		},
	}
	tf.registerGasAs(c, "tx-gas")
	c.Flags().Int32Var(&exit, "exit", 0, "your outcome's exit code")
	c.Flags().Uint64Var(&gas, "gas", 0, "your outcome's gas used")
	c.Flags().StringVar(&root, "output-root", "", "your outcome's output root (64 hex digits)")
	c.Flags().StringVar(&stdout, "stdout", "", "your outcome's stdout blob id")
	c.Flags().StringVar(&maxBytes, "max-bytes", "4GiB", "refuse to re-execute a job whose module, inputs and stdin are larger")
	return c
}

func newJobListCmd(g *globals) *cobra.Command {
	var lease, before uint64
	var status, provider, consumer, node string
	var limit int
	c := &cobra.Command{
		Use: "list", Short: "List jobs, newest first (filters: lease, status, provider, consumer, node)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := client.JobFilter{Lease: lease, Status: status, Before: before, Limit: limit}
			kr := keyring.Open(g.home)
			for _, x := range []struct {
				flag, v string
				dst     *string
			}{{"--provider", provider, &f.Provider}, {"--consumer", consumer, &f.Consumer}, {"--node-addr", node, &f.Node}} {
				if x.v == "" {
					continue
				}
				a, err := kr.Resolve(x.v)
				if err != nil {
					return fmt.Errorf("%s: %w", x.flag, err)
				}
				*x.dst = a.String()
			}
			return show(g, cmd, func(ctx context.Context, c *client.Client) (*client.JobList, error) { return c.Jobs(ctx, f) }, func(l *client.JobList) {
				if len(l.Jobs) == 0 {
					fmt.Println("no jobs")
				}
				for i := range l.Jobs {
					j := &l.Jobs[i]
					res := "-"
					if j.ExitCode != nil {
						res = fmt.Sprintf("exit %d, gas %d", *j.ExitCode, j.GasUsed)
					}
					fmt.Printf("job %-6d %-10s lease %-5d %-22s submitted %d  node %s\n", j.JobID, j.Status, j.LeaseID, res, j.SubmitHeight, j.NodeID)
				}
				if l.NextBefore != 0 {
					fmt.Printf("more: sos job list --before %d\n", l.NextBefore)
				}
			})
		},
	}
	c.Flags().Uint64Var(&lease, "lease", 0, "only jobs of this lease")
	c.Flags().StringVar(&status, "status", "", "only this status: submitted, running, done, failed, timeout, challenged, slashed")
	c.Flags().StringVar(&provider, "provider", "", "only jobs of this provider (address or key name)")
	c.Flags().StringVar(&consumer, "consumer", "", "only jobs of this consumer (address or key name)")
	c.Flags().StringVar(&node, "node-addr", "", "only jobs run by this node key (address or key name)")
	c.Flags().Uint64Var(&before, "before", 0, "only jobs with a lower id (the next page)")
	c.Flags().IntVar(&limit, "limit", 100, "at most this many")
	return c
}
