package main

import (
	"strings"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/tui"
)

func newTUICmd(g *globals) *cobra.Command {
	var nodes []string
	cmd := &cobra.Command{
		Use:   "tui",
		Short: "Live terminal inspector of a node or a cluster (repeat --node for several)",
		Long: `Open the terminal UI: overview, blocks → transactions → receipts, accounts and tokens,
contracts and their storage, and a cluster view comparing heights and state roots of every
--node given. Press ? for all keys, q to quit.`,
		Example: "  sos tui --node http://127.0.0.1:26657 --node http://127.0.0.1:26667",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			urls := make([]string, 0, len(nodes))
			for _, n := range nodes {
				if !strings.Contains(n, "://") {
					n = "http://" + n
				}
				urls = append(urls, n)
			}
			if len(urls) == 0 {
				urls = []string{g.nodeURL()}
			}
			return tui.Run(cmd.Context(), urls, tui.Options{})
		},
	}
	cmd.Flags().StringArrayVar(&nodes, "node", nil, "node API URL (repeat for a cluster; default: the api_addr of --home)")
	return cmd
}
