package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
)

func newClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Cluster membership as the ledger records it: list members, remove one",
		Long: `Membership lives on the ledger: a node joins with 'sos init --join' (a member admits it
with a signed MemberAdd transaction, as a learner), is promoted to voter by the leader once it
has caught up, and leaves when a voting member signs a MemberRemove. Raft follows the ledger.`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "members",
		Short: "List the members: node id, p2p address, role (voter/learner), height admitted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) ([]client.Member, error) { return c.Members(ctx) },
				func(ms []client.Member) {
					for _, m := range ms {
						fmt.Printf("%s  %-21s  %-7s  since %d\n", m.NodeID, m.Address, m.Role, m.Since)
					}
				})
		},
	})
	var f txFlags
	remove := &cobra.Command{
		Use:     "remove NODE_ID",
		Short:   "Remove a member (signed by a voting member's node key: --from node)",
		Example: "  sos cluster remove 05d6b90428560c8d8c1b0f2b5e4c... --from node --home ./n1 --node http://127.0.0.1:26657",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := g.sendTx(cmd, &f, func(*txbuild.Builder) (ledger.Payload, error) {
				return &ledger.MemberRemove{NodeID: args[0]}, nil
			})
			if err != nil || res == nil {
				return err
			}
			return g.printTx(res)
		},
	}
	f.register(remove)
	cmd.AddCommand(remove)
	return cmd
}
