package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/ledger"
)

func newRunCmd(g *globals) *cobra.Command {
	var api, logLevel, follow string
	var worker bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the node: produce blocks and serve the HTTP API",
		Long: `Run the node: produce blocks (as a cluster member) and serve the HTTP API.

With --worker --follow <node-id>@host:port the node runs as a worker instead: a provider's
machine that is not a cluster member. It keeps no ledger and never votes; it follows the
member named (its p2p address, see 'sos peers') over QUIC, trusts a committed header only
when a voter of the cluster signed it and a job only with a state proof against such a
header, runs the jobs of the offers naming its node key, serves their outputs and sends
its results through that member. The member accepts it only while a live offer names this
node's key (rome offer --node <its node account>); fund that account, it pays the results'
fees. The home needs config.toml (p2p_addr, job_*), node_key.json and the cluster's
genesis.json (docs/jobs.md, "Workers").`,
		Example: `  sos run --home ./n1
  sos run --home ./w1 --worker --follow <node-id>@127.0.0.1:26656`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if worker != (follow != "") {
				return errors.New("--worker and --follow <node-id>@host:port go together: a worker follows one cluster member")
			}
			if os.Getenv("GOGC") == "" {
				// The heap is mostly short-lived block and tx buffers (an ML-DSA
				// tx is 3.4 KB, a full block 17 MB); collecting at 100% growth
				// spends a third of the CPU in GC under load. 400% trades memory
				// (tens of MB) for ≈30% more committed tx/s.
				debug.SetGCPercent(400)
			}
			opts, err := kernel.LoadHome(g.home)
			if err != nil {
				return err
			}
			if api != "" {
				opts.Config.APIAddr = api
			}
			if logLevel != "" {
				opts.Config.LogLevel = logLevel
			}
			opts.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: kernel.ParseLogLevel(opts.Config.LogLevel)}))
			if worker {
				return runWorker(cmd, g.home, opts, follow)
			}
			node, err := kernel.OpenNode(opts)
			if errors.Is(err, ledger.ErrLocked) {
				return homeBusy(g.home, err)
			}
			if err != nil {
				return err
			}
			defer node.Close()
			// This process holds the home now (the store's lock): say which
			// one, for a second 'sos run' and for 'sos devnet'.
			pidFile := filepath.Join(g.home, pidFileName)
			if err := kernel.WriteFileAtomic(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
				return err
			}
			defer os.Remove(pidFile)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-node.Ready()
				fmt.Fprintf(os.Stderr, "sos node %s serving API on http://%s\n", node.NodeID(), node.APIAddr())
			}()
			return node.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&api, "api", "", "API listen address (overrides api_addr in config.toml)")
	cmd.Flags().StringVar(&logLevel, "log-level", "", "debug, info, warn or error")
	cmd.Flags().BoolVar(&worker, "worker", false, "run as a worker: a provider node that is not a cluster member (needs --follow)")
	cmd.Flags().StringVar(&follow, "follow", "", "with --worker: the member to follow, <node-id>@host:port (its p2p address)")
	return cmd
}

// runWorker runs the home's node as a worker following member.
func runWorker(cmd *cobra.Command, home string, opts kernel.NodeOptions, member string) error {
	w, err := kernel.OpenWorker(kernel.WorkerOptions{Home: home, Config: opts.Config, GenesisDoc: opts.GenesisDoc, NodeKey: opts.NodeKey,
		Follow: member, Logger: opts.Logger})
	if err != nil {
		return err
	}
	defer w.Close()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "sos worker %s (node account %s) following %s, p2p on %s\n", w.NodeID(), opts.NodeKey.Address(), member, w.P2PAddr())
	return w.Run(ctx)
}

// pidFileName is the file in a home naming the process that runs its node
// (written once the store is locked, removed on exit).
const pidFileName = "sos.pid"

// homeBusy explains a home whose store another process holds: which
// process, when its pid file says and it is alive, and what to do.
func homeBusy(home string, err error) error {
	abs, aerr := filepath.Abs(home)
	if aerr != nil {
		abs = home
	}
	if pid, ok := homePID(home); ok {
		return fmt.Errorf("another sos process (pid %d) holds this home %s: stop it (kill %d) or use another --home: %w", pid, abs, pid, ledger.ErrLocked)
	}
	return fmt.Errorf("another sos process holds this home %s (its data directory is locked); stop it or use another --home: %w", abs, err)
}

// homePID reads the pid file of a home and reports whether that process
// is alive.
func homePID(home string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(home, pidFileName))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, false
	}
	if p, err := os.FindProcess(pid); err != nil || p.Signal(syscall.Signal(0)) != nil {
		return 0, false
	}
	return pid, true
}
