package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel"
)

func newRunCmd(g *globals) *cobra.Command {
	var api, logLevel string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the node: produce blocks and serve the HTTP API",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
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
			node, err := kernel.OpenNode(opts)
			if err != nil {
				return err
			}
			defer node.Close()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
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
	return cmd
}
