package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel/loadgen"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
)

func newLoadgenCmd(g *globals) *cobra.Command {
	var from, gasPrice, contract, msg string
	var cfg loadgen.Config
	cmd := &cobra.Command{
		Use:   "loadgen",
		Short: "Measure a node: fund fresh senders, pre-sign transfers, submit, time the commits",
		Long: `Fund --senders fresh accounts from --from, pre-sign --txs transfers from them, submit
them in batches and follow the node's event stream until every accepted tx commits.
Prints accepted tx/s (submission), committed tx/s (first submit to last commit) and the
p50/p99 latency from submit to commit. Transient errors (a connection reset, a 5xx
answer) do not stop it: the request is sent again (--attempts times, with backoff), a
batch that still fails is counted as unsent, a dropped event stream is reconnected and
the commits it missed are looked up, and the report says how many of each.`,
		Example: "  sos loadgen --from alice --home ./n1 --txs 20000 --senders 50",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := g.signingKey(from)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			b, err := txbuild.New(ctx, c)
			if err != nil {
				return err
			}
			if gasPrice != "" {
				if cfg.GasPrice, err = b.Denoms.ParseGasPrice(gasPrice); err != nil {
					return err
				}
			}
			if contract != "" {
				a, err := ledger.ParseAddress(contract)
				if err != nil {
					return fmt.Errorf("--execute: %w", err)
				}
				cfg.Contract, cfg.Msg = &a, []byte(msg)
			}
			if g.output == "text" {
				cfg.OnProgress = func(s string) { fmt.Fprintln(os.Stderr, s) }
			}
			res, err := loadgen.Run(ctx, b, key, cfg)
			if res != nil {
				_ = g.print(res, func() {
					fmt.Printf("txs %d accepted %d rejected %d committed %d failed %d\n", res.Txs, res.Accepted, res.Rejected, res.Committed, res.Failed)
					fmt.Printf("accepted %.0f tx/s, committed %.0f tx/s, latency p50 %.1f ms p99 %.1f ms\n", res.AcceptedTPS, res.CommittedTPS, res.P50Ms, res.P99Ms)
					if res.FirstError != "" {
						fmt.Println("first rejection:", res.FirstError)
					}
					if res.TransientErrors > 0 || res.StreamReconnects > 0 {
						fmt.Printf("transient errors %d (requests sent again), unsent %d, event stream reconnects %d, commits looked up %d\n",
							res.TransientErrors, res.Unsent, res.StreamReconnects, res.CommitsLookedUp)
						if res.FirstTransientErr != "" {
							fmt.Println("first transient error:", res.FirstTransientErr)
						}
					}
				})
			}
			return err
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "funded key in --home that pays the senders (required)")
	cmd.Flags().IntVar(&cfg.Txs, "txs", 20000, "transfers to send")
	cmd.Flags().IntVar(&cfg.Senders, "senders", 50, "fresh sender accounts")
	cmd.Flags().IntVar(&cfg.BatchSize, "batch", 500, "transactions per HTTP request")
	cmd.Flags().IntVar(&cfg.Parallel, "parallel", 4, "concurrent requests")
	cmd.Flags().IntVar(&cfg.Attempts, "attempts", 5, "tries per request on transient errors (connection reset, 5xx)")
	cmd.Flags().Float64Var(&cfg.Rate, "rate", 0, "offered load in tx/s (default: as fast as possible); use it to measure latency")
	cmd.Flags().StringVar(&gasPrice, "gas-price", "", "gas price (default 0.01uTFLP)")
	cmd.Flags().DurationVar(&cfg.Timeout, "timeout", 2*time.Minute, "how long to wait for commits")
	cmd.Flags().StringVar(&contract, "execute", "", "contract address: send contract executions instead of transfers")
	cmd.Flags().StringVar(&msg, "msg", `{"increment":{}}`, "message of each execution (with --execute)")
	cmd.Flags().Uint64Var(&cfg.GasLimit, "gas", 0, "gas limit per tx (default 200000 for transfers, 2000000 for executions)")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}
