package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
)

func newClusterCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Cluster membership: members, join requests, admit, promote, remove, join tokens",
		Long: `Membership lives on the ledger and changes only by transactions a voting member's operator
signs with that member's node key (--from node). A node asks to join with 'sos init --join';
the member it asks records the request as pending ('sos cluster requests') until an operator
admits it ('sos cluster admit', as a learner or as a voter-to-be), or admits it at once if it
presents a join token minted on that member ('sos cluster token'). A learner becomes a voter
only if it was admitted '--as voter' (the leader promotes it once it has caught up) or by
'sos cluster promote'. 'sos cluster remove' takes a member out. Raft follows the ledger.`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "members",
		Short: "List the members: node id, p2p address, role (voter/learner), height admitted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) ([]client.Member, error) { return c.Members(ctx) },
				func(ms []client.Member) {
					for _, m := range ms {
						role := m.Role
						if m.AsVoter {
							role += " (voter once caught up)"
						}
						fmt.Printf("%s  %-21s  %-7s  since %d\n", m.NodeID, m.Address, role, m.Since)
					}
				})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "requests",
		Short: "List the join requests waiting for admission on --node (node-local, they expire)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) ([]client.JoinRequest, error) { return c.JoinRequests(ctx) },
				func(rs []client.JoinRequest) {
					if len(rs) == 0 {
						fmt.Println("no pending join requests")
						return
					}
					now := time.Now()
					for _, r := range rs {
						verified := "address verified"
						if !r.AddressVerified {
							verified = "address NOT verified: " + r.VerifyError
						}
						fmt.Printf("%s  %-21s  %s  first %s ago, last %s ago\n", r.NodeID, r.Address, verified,
							ago(now, r.FirstSeen), ago(now, r.LastSeen))
					}
					fmt.Println("admit one with: sos cluster admit NODE_ID [--as voter] --from node --home <a voting member's home>")
				})
		},
	})
	cmd.AddCommand(newAdmitCmd(g), newPromoteCmd(g), newRemoveCmd(g), newTokenCmd(g))
	return cmd
}

func ago(now time.Time, ms int64) string {
	return now.Sub(time.UnixMilli(ms)).Truncate(time.Second).String()
}

// memberTx is a membership command: one node id argument, a payload signed
// with --from (the node key of a voting member).
func memberTx(g *globals, use, short, long, example string, build func(ctx context.Context, c *client.Client, id string) (ledger.Payload, error)) (*cobra.Command, *txFlags) {
	var f txFlags
	cmd := &cobra.Command{
		Use: use, Short: short, Long: long, Example: example,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := g.sendTx(cmd, &f, func(b *txbuild.Builder) (ledger.Payload, error) {
				ctx, cancel := cmdContext(cmd, 30*time.Second)
				defer cancel()
				return build(ctx, b.Client, args[0])
			})
			if err != nil || res == nil {
				return err
			}
			return g.printTx(res)
		},
	}
	f.register(cmd)
	return cmd, &f
}

func newAdmitCmd(g *globals) *cobra.Command {
	var as string
	cmd, _ := memberTx(g, "admit NODE_ID",
		"Admit a node whose join request is pending on --node (signed by a voting member's node key: --from node)",
		`Admit a node that asked to join ('sos init --join') and whose request is pending on the node
--node names (the member it asked; see 'sos cluster requests'). The member_add carries the
node's key and its verified p2p address; its signer must be a voting member (--from node with
that member's --home). --as learner (default) admits a non-voting learner that stays one
until 'sos cluster promote'; --as voter admits a learner that the leader promotes to voter
once it has caught up. Every voter changes the quorum: admit voters deliberately.`,
		"  sos cluster admit 05d6b90428560c8d8c1b0f2b5e4c... --as voter --from node --home ./n1",
		func(ctx context.Context, c *client.Client, id string) (ledger.Payload, error) {
			if as != "learner" && as != "voter" {
				return nil, fmt.Errorf("--as %q: want learner or voter", as)
			}
			reqs, err := c.JoinRequests(ctx)
			if err != nil {
				return nil, err
			}
			for _, r := range reqs {
				if r.NodeID == id {
					return kernel.AdmitPayload(r, id, as == "voter")
				}
			}
			return nil, fmt.Errorf("no pending join request of %s on %s (requests live on the member the node asked, for %s after its last request; list them with 'sos cluster requests')",
				id, c.URL(), kernel.JoinRequestTTL)
		})
	cmd.Flags().StringVar(&as, "as", "learner", "learner (stays one until promoted) or voter (promoted by the leader once caught up)")
	return cmd
}

func newPromoteCmd(g *globals) *cobra.Command {
	cmd, _ := memberTx(g, "promote NODE_ID",
		"Make a learner a voter (signed by a voting member's node key: --from node)",
		`Promote a learner to voter with a member_promote transaction. Do it once the learner has
caught up ('sos query status' on it, or the leader's peers list): a voter that lags counts in
the quorum without helping it.`,
		"  sos cluster promote 05d6b90428560c8d8c1b0f2b5e4c... --from node --home ./n1",
		func(_ context.Context, _ *client.Client, id string) (ledger.Payload, error) {
			return &ledger.MemberPromote{NodeID: id}, nil
		})
	return cmd
}

func newRemoveCmd(g *globals) *cobra.Command {
	cmd, _ := memberTx(g, "remove NODE_ID",
		"Remove a member (signed by a voting member's node key: --from node)", "",
		"  sos cluster remove 05d6b90428560c8d8c1b0f2b5e4c... --from node --home ./n1 --node http://127.0.0.1:26657",
		func(_ context.Context, _ *client.Client, id string) (ledger.Payload, error) {
			return &ledger.MemberRemove{NodeID: id}, nil
		})
	return cmd
}

func newTokenCmd(g *globals) *cobra.Command {
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Mint a single-use join token in a member's --home (admits one node as a learner)",
		Long: fmt.Sprintf(`Mint a join token on the member whose --home this is. The token is printed once; the home
keeps only its hash, under %s/, until it is used or expires (--ttl, at most %s). A node
that runs 'sos init --join <this member>@<its p2p address> --token TOKEN' is admitted at
once as a learner, after the member has checked the node's p2p address answers with its key;
the first node that presents the token is the only one that can use it. Run it where the
member's home is: holding the home (and its node key) is what authorizes admissions.`, kernel.JoinTokenDir, kernel.MaxJoinTokenTTL),
		Example: "  sos cluster token --ttl 10m --home ./n1",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := kernel.LoadConfig(g.home)
			if err != nil {
				return err
			}
			key, _, err := keyring.ReadKeyFile(filepath.Join(g.home, kernel.NodeKeyFile))
			if err != nil {
				return err
			}
			tok, exp, err := kernel.MintJoinToken(g.home, ttl, time.Now(), rand.Reader)
			if err != nil {
				return err
			}
			join := key.Public().Fingerprint() + "@" + cfg.P2PAddr
			out := struct {
				Token     string    `json:"token"`
				ExpiresAt time.Time `json:"expires_at"`
				Join      string    `json:"join"`
			}{tok, exp.UTC(), join}
			return g.print(out, func() {
				fmt.Printf("join token: %s\nexpires:    %s (single use)\non the new node run:\n  sos init --home <new home> --p2p <its address> --join %s --token %s\n",
					tok, exp.Local().Format(time.RFC3339), join, tok)
			})
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 10*time.Minute, "how long the token stays valid")
	return cmd
}
