package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

func newGovCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "gov", Short: "Governance: proposals to change market parameters, voted by weight of attested contribution"}
	var pf txFlags
	var title, param, value string
	propose := &cobra.Command{
		Use:   "propose",
		Short: "Propose a parameter change; it executes by itself if it passes at the end of the voting period",
		Long: "Propose a parameter change. Parameters: " + strings.Join(rome.GovParams, ", ") + ".\n" +
			"A proposal passes when the votes cast reach quorum_bps of the total weight and yes exceeds threshold_bps of yes+no.",
		Example: "  sos gov propose --param epoch_blocks --value 20 --title 'slower epochs' --from node\n" +
			"  sos gov propose --param active_policy --value 3f2a... --from alice",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.runMarketTx(cmd, &pf, func(b *txbuild.Builder) (ledger.Payload, error) {
				return &ledger.GovPropose{Title: title, Param: param, Value: value}, nil
			})
		},
	}
	pf.register(propose)
	propose.Flags().StringVar(&title, "title", "", "proposal title")
	propose.Flags().StringVar(&param, "param", "", "parameter to change (required)")
	propose.Flags().StringVar(&value, "value", "", "its new value")
	_ = propose.MarkFlagRequired("param")

	var vf txFlags
	vote := &cobra.Command{
		Use: "vote ID yes|no|abstain", Short: "Vote on a proposal (a later vote replaces an earlier one)", Args: cobra.ExactArgs(2),
		Example: "  sos gov vote 1 yes --from node",
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0], "proposal id")
			if err != nil {
				return err
			}
			opt := map[string]uint8{"yes": ledger.VoteYes, "no": ledger.VoteNo, "abstain": ledger.VoteAbstain}[strings.ToLower(args[1])]
			if opt == 0 {
				return fmt.Errorf("vote %q: want yes, no or abstain", args[1])
			}
			return g.runMarketTx(cmd, &vf, func(b *txbuild.Builder) (ledger.Payload, error) {
				return &ledger.GovVote{ProposalID: id, Option: opt}, nil
			})
		},
	}
	vf.register(vote)

	proposals := &cobra.Command{
		Use: "proposals", Short: "List proposals (newest first)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) ([]client.GovProposal, error) { return c.GovProposals(ctx) }, func(list []client.GovProposal) {
				if len(list) == 0 {
					fmt.Println("no proposals")
				}
				for _, p := range list {
					printProposalLine(&p)
				}
			})
		},
	}
	show := &cobra.Command{
		Use: "show ID", Short: "Show a proposal with its votes", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0], "proposal id")
			if err != nil {
				return err
			}
			return show(g, cmd, func(ctx context.Context, c *client.Client) (*client.GovProposal, error) {
				return c.GovProposal(ctx, id)
			}, func(p *client.GovProposal) {
				printProposalLine(p)
				if p.Result != "" {
					fmt.Println("  result:", p.Result)
				}
				for _, v := range p.Votes {
					fmt.Printf("  %s voted %s with weight %d at height %d\n", v.Voter, v.Option, v.Weight, v.Height)
				}
			})
		},
	}
	cmd.AddCommand(propose, vote, proposals, show)
	return cmd
}

func printProposalLine(p *client.GovProposal) {
	fmt.Printf("proposal %d  %-8s %s = %q  (%s)  votes until height %d: yes %d no %d abstain %d of %d\n",
		p.ID, p.Status, p.Param, p.Value, p.Title, p.EndHeight, p.Yes, p.No, p.Abstain, p.TotalWeight)
}
