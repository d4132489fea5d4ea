package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/rome"
)

func newCertCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "cert", Short: "Internal certificates: ML-DSA-signed statements of attested contribution"}
	var nodeID string
	list := &cobra.Command{
		Use: "list", Short: "List certificates (newest first)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) ([]client.Certificate, error) {
				return c.Certificates(ctx, nodeID)
			}, func(list []client.Certificate) {
				if len(list) == 0 {
					fmt.Println("no certificates")
				}
				for _, x := range list {
					s := x.Statement
					fmt.Printf("cert %d  %-8s %s  %s %d  epochs %d-%d  issuer %s\n", s.ID, x.Status, s.NodeID, x.KindName, s.Amount, s.FromEpoch, s.ToEpoch, s.Issuer)
				}
			})
		},
	}
	list.Flags().StringVar(&nodeID, "node-id", "", "only certificates of this contributor (account address)")
	show := &cobra.Command{
		Use: "show ID", Short: "Show a certificate; with -o json the output is a file 'sos cert verify' checks offline", Args: cobra.ExactArgs(1),
		Example: "  sos cert show 1 -o json > c.json && sos cert verify c.json",
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0], "certificate id")
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(cmd, 30*time.Second)
			defer cancel()
			x, err := c.Certificate(ctx, id)
			if err != nil {
				return err
			}
			return g.print(x, func() { printCert(x) })
		},
	}
	var genesisPath string
	verify := &cobra.Command{
		Use:   "verify FILE",
		Short: "Verify a certificate file offline: the ML-DSA signature over its statement and its issuer",
		Long: `Verify a certificate file (from 'sos cert show ID -o json') without a node: the ML-DSA-65
signature over the canonical statement, with the issuer key in the file, and that the key is the
issuer the statement names. With --genesis, the issuer must also be one of that chain's nodes.
Revocation is ledger state: check it with 'sos cert show'.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var f rome.CertFile
			if err := json.Unmarshal(raw, &f); err != nil {
				return fmt.Errorf("%s: not a certificate file: %w", args[0], err)
			}
			if f.Signature == "" {
				// Exported before its issuer signed it: nothing to verify yet.
				return fmt.Errorf("%s: certificate %d is not signed yet (status %s): its issuing node signs it after the next block; "+
					"export it again with 'sos cert show %d -o json' once 'sos cert list' says signed", args[0], f.Statement.ID, f.Status, f.Statement.ID)
			}
			var trusted []string
			if genesisPath != "" {
				doc, err := os.ReadFile(genesisPath)
				if err != nil {
					return err
				}
				gen, err := ledger.ParseGenesis(doc)
				if err != nil {
					return err
				}
				p, err := rome.ParamsFromGenesis(gen)
				if err != nil {
					return err
				}
				trusted = p.Issuers
				if gen.ChainID != f.Statement.ChainID {
					return fmt.Errorf("certificate is for chain %q, genesis is %q", f.Statement.ChainID, gen.ChainID)
				}
			}
			verr := rome.VerifyFile(&f, trusted)
			out := map[string]any{"valid": verr == nil, "cert_id": f.Statement.ID, "node_id": f.Statement.NodeID, "issuer": f.Statement.Issuer,
				"kind": rome.KindName(f.Statement.Kind), "amount": f.Statement.Amount, "revoked_when_exported": f.Revoked}
			if verr != nil {
				out["error"] = verr.Error()
			}
			if err := g.print(out, func() {
				if verr == nil {
					fmt.Printf("certificate %d: valid ML-DSA-65 signature by issuer %s (%s %d by %s, epochs %d-%d)\n", f.Statement.ID, f.Statement.Issuer,
						rome.KindName(f.Statement.Kind), f.Statement.Amount, f.Statement.NodeID, f.Statement.FromEpoch, f.Statement.ToEpoch)
					if f.Revoked {
						fmt.Println("note: the certificate was revoked when exported:", f.RevokeReason)
					}
				}
			}); err != nil {
				return err
			}
			return verr
		},
	}
	verify.Flags().StringVar(&genesisPath, "genesis", "", "genesis.json whose issuers to trust (default: the key in the file)")
	var rv txFlags
	var reason string
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "Revoke a certificate (its issuer or a governance member)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := parseID(args[0], "certificate id")
			if err != nil {
				return err
			}
			return g.runMarketTx(cmd, &rv, func(b *txbuild.Builder) (ledger.Payload, error) {
				return &ledger.CertRevoke{CertID: id, Reason: reason}, nil
			})
		},
	}
	rv.register(revoke)
	revoke.Flags().StringVar(&reason, "reason", "", "why")
	var sg txFlags
	sign := &cobra.Command{
		Use:   "sign-pending",
		Short: "Sign the certificates waiting for this home's node key (the node does this itself after each block)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			key, _, err := keyringReadNodeKey(g.home)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(cmd, 30*time.Second)
			defer cancel()
			list, err := c.Certificates(ctx, "")
			if err != nil {
				return err
			}
			codec := ledger.NewCodec()
			n := 0
			for _, x := range list {
				if x.Status != "pending" || x.Statement.Issuer != key.Public().Fingerprint() {
					continue
				}
				st := statementOf(&x)
				p, err := rome.SignPayload(codec, key, &rome.Pending{Statement: st})
				if err != nil {
					return err
				}
				if _, err := g.sendMarketTx(cmd, &sg, func(b *txbuild.Builder) (ledger.Payload, error) { return p, nil }); err != nil {
					return err
				}
				n++
			}
			return g.print(map[string]int{"signed": n}, func() { fmt.Printf("signed %d certificate(s)\n", n) })
		},
	}
	sg.register(sign)
	_ = sign.Flags().Set("from", "node")
	cmd.AddCommand(list, show, verify, revoke, sign)
	return cmd
}

func keyringReadNodeKey(home string) (*ledger.PrivateKey, string, error) {
	return keyring.ReadKeyFile(filepath.Join(home, kernel.NodeKeyFile))
}

func statementOf(x *client.Certificate) rome.Statement {
	s := x.Statement
	return rome.Statement{Version: s.Version, ChainID: s.ChainID, ID: s.ID, NodeID: s.NodeID, Kind: s.Kind, Amount: s.Amount,
		FromEpoch: s.FromEpoch, ToEpoch: s.ToEpoch, Issuer: s.Issuer, IssuedHeight: s.IssuedHeight, Measured: s.Measured}
}

func printCert(x *client.Certificate) {
	s := x.Statement
	fmt.Printf("certificate %d (%s)\n  chain     %s\n  node      %s\n  delivered %d %s in epochs %d-%d\n  measured  %s\n  issuer    %s at height %d\n",
		s.ID, x.Status, s.ChainID, s.NodeID, s.Amount, x.KindName, s.FromEpoch, s.ToEpoch, s.Measured, s.Issuer, s.IssuedHeight)
	if x.Redeemed > 0 {
		fmt.Printf("  redeemed  %d of %d units as credit\n", x.Redeemed, s.Amount)
	}
	if x.Revoked {
		fmt.Printf("  revoked   %s\n", x.RevokeReason)
	}
}
