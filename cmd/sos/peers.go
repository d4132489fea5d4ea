package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel/client"
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
					fmt.Println(peerLine(s.NodeID, p))
				}
			})
		},
	}
}

// peerLine is one member in 'sos peers': the node answering is marked as
// itself, not listed as a connected peer, and a follower's missing link to
// another follower reads "idle" (raft never needs it), not as a fault.
func peerLine(self string, p client.Peer) string {
	link := p.Link
	if link == "" { // a node from before links were reported
		link = client.LinkDown
		if p.Connected {
			link = client.LinkConnected
		}
	}
	rtt := fmt.Sprintf("rtt %6.2f ms", p.RTTMs)
	if p.Self || p.NodeID == self {
		link, rtt = "this node", "            "
	} else if !p.Connected {
		rtt = "rtt      —   "
	}
	return fmt.Sprintf("%s  %-21s  %-8s  %s  %s", p.NodeID, p.Address, p.Role, rtt, link)
}
