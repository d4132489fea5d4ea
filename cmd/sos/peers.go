package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

func newPeersCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "peers",
		Short: "Cluster members as one node sees them: id fingerprint, address, RTT, role",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(cmd, 10*time.Second)
			defer cancel()
			s, err := c.Status(ctx)
			if err != nil {
				return err
			}
			return g.print(s.Peers, func() {
				fmt.Printf("node %.16s is %s (term %d)\n", s.NodeID, s.Role, s.Term)
				if len(s.Peers) == 0 {
					fmt.Println("no peers: a single node")
				}
				for _, p := range s.Peers {
					link := "connected"
					if !p.Connected {
						link = "not connected"
					}
					self := ""
					if p.NodeID == s.NodeID {
						self, link = " (this node)", "-"
					}
					fmt.Printf("%s  %-21s  %-8s  rtt %6.2f ms  %s%s\n", p.NodeID, p.Address, p.Role, p.RTTMs, link, self)
				}
			})
		},
	}
}
