package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/ledger"
)

func newQueryCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "query", Aliases: []string{"q"}, Short: "Read chain state from a node"}
	var prove bool
	account := &cobra.Command{
		Use: "account ADDRESS|NAME", Short: "Balances and nonce of an account (--prove adds a state proof)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			addr, err := keyring.Open(g.home).Resolve(args[0])
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(cmd, 30*time.Second)
			defer cancel()
			a, err := c.Account(ctx, addr.String(), prove)
			if err != nil {
				return err
			}
			if g.output == "text" {
				g.denomTable(ctx, c)
			}
			return g.print(a, func() {
				fmt.Printf("address %s\nnonce   %d\nheight  %d\n", a.Address, a.Nonce, a.Height)
				for _, b := range a.Balances {
					fmt.Printf("  %s\n", g.denoms.Format(b.Amount, b.Denom))
				}
				if prove {
					fmt.Printf("proof   %s\n", a.Proof)
				}
			})
		},
	}
	account.Flags().BoolVar(&prove, "prove", false, "include a sparse Merkle proof against the state root at the returned height")
	block := &cobra.Command{
		Use: "block [HEIGHT]", Short: "A block with its transactions (default: latest)", Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var h uint64
			if len(args) == 1 {
				var err error
				if h, err = strconv.ParseUint(args[0], 10, 64); err != nil {
					return fmt.Errorf("height %q is not a number", args[0])
				}
			}
			return show(g, cmd, func(ctx context.Context, c *client.Client) (*client.Block, error) { return c.Block(ctx, h) }, func(b *client.Block) {
				fmt.Printf("height %d  hash %s\ntime %s  txs %d  gas %d\nstate root %s\n", b.Height, b.Hash,
					time.UnixMilli(b.TimeMs).UTC().Format(time.RFC3339Nano), b.NumTxs, b.GasUsed, b.StateRoot)
				for _, t := range b.Txs {
					fmt.Printf("  %s %-10s from %s code %d gas %d\n", t.TxHash, t.Kind, t.Sender, t.Code, t.GasUsed)
				}
			})
		},
	}
	tx := &cobra.Command{
		Use: "tx HASH", Short: "A committed transaction and its receipt", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) (*client.Tx, error) { return c.Tx(ctx, args[0]) }, func(t *client.Tx) {
				fmt.Printf("tx %s\nheight %d index %d\nkind %s from %s nonce %d\ncode %d gas used %d\npayload %s\n",
					t.TxHash, t.Height, t.Index, t.Kind, t.Sender, t.Nonce, t.Code, t.GasUsed, t.Payload)
				if t.Receipt != nil {
					fmt.Printf("gas limit %s, fee %s\n", group(t.Receipt.GasLimit), g.denoms.Format(t.Receipt.Fee.Amount, t.Receipt.Fee.Denom))
					if t.Code != 0 {
						fmt.Println("failed:", explainReceipt(g.denoms, t.Receipt, false))
					}
				}
			})
		},
	}
	status := &cobra.Command{
		Use: "status", Short: "Height, state root and health of a node", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) (*client.Status, error) { return c.Status(ctx) }, func(s *client.Status) {
				fmt.Printf("chain %s  node %s  (%s)\nheight %d  state root %s\nmempool %d\n", s.ChainID, s.NodeID, s.Role, s.Height, s.StateRoot, s.MempoolSize)
				fmt.Println(syncLine(s))
			})
		},
	}
	supply := &cobra.Command{
		Use: "supply", Short: "Total supply of every token and the fees collected", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) ([]client.Supply, error) { return c.Supply(ctx) }, func(s []client.Supply) {
				for _, x := range s {
					fmt.Printf("%-6s total %s  fees collected %s\n", g.denoms.Display(x.Denom), g.denoms.Format(x.Total, x.Denom), g.denoms.Format(x.FeeCollector, x.Denom))
				}
			})
		},
	}
	cmd.AddCommand(account, block, tx, status, supply, newQueryTxsCmd(g))
	return cmd
}

func newVerifyProofCmd(g *globals) *cobra.Command {
	var root string
	var height uint64
	cmd := &cobra.Command{
		Use:   "verify-proof FILE",
		Short: "Check an account proof (from 'query account --prove -o json') against a block's state root",
		Long: `Check an account proof against a state root. The root comes from --root, or from the
block at --height (default: the proof's height) fetched from --node. Exit status 0 means the
account's balances and nonce in FILE are committed under that root.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			var acc struct {
				Address  string          `json:"address"`
				Nonce    uint64          `json:"nonce"`
				Balances []client.Coin   `json:"balances"`
				Proof    json.RawMessage `json:"proof"`
			}
			if err := json.Unmarshal(data, &acc); err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			var sp ledger.StateProof
			if len(acc.Proof) == 0 {
				return fmt.Errorf("%s has no proof (use 'sos query account ADDR --prove -o json')", args[0])
			}
			if err := json.Unmarshal(acc.Proof, &sp); err != nil {
				return fmt.Errorf("%s: proof: %w", args[0], err)
			}
			addr, err := ledger.ParseAddress(acc.Address)
			if err != nil {
				return err
			}
			if string(sp.Key) != string(ledger.AccountKey(addr)) {
				return fmt.Errorf("the proof is for another key than account %s", addr)
			}
			var want ledger.Hash
			if root != "" {
				if want, err = ledger.ParseHash(root); err != nil {
					return err
				}
			} else {
				if height == 0 {
					height = sp.Height
				}
				c, err := g.client()
				if err != nil {
					return err
				}
				ctx, cancel := cmdContext(cmd, 10*time.Second)
				defer cancel()
				b, err := c.Block(ctx, height)
				if err != nil {
					return err
				}
				if want, err = ledger.ParseHash(b.StateRoot); err != nil {
					return err
				}
			}
			if err := sp.Verify(want); err != nil {
				return err
			}
			// The proof covers the stored record; the balances and nonce shown
			// in the file must be that record, not something edited beside it.
			var rec ledger.Account
			if sp.Value != nil {
				if err := ledger.NewCodec().Unmarshal(sp.Value, &rec); err != nil {
					return fmt.Errorf("proof value is not an account record: %w", err)
				}
			}
			shown := make([]string, 0, len(acc.Balances))
			for _, b := range acc.Balances {
				shown = append(shown, b.Amount+b.Denom)
			}
			proven := make([]string, 0, len(rec.Balances))
			for _, b := range rec.Balances {
				proven = append(proven, b.String())
			}
			if rec.Nonce != acc.Nonce || strings.Join(shown, ",") != strings.Join(proven, ",") {
				return fmt.Errorf("the account shown in %s (nonce %d, %s) is not the proven record (nonce %d, %s)",
					args[0], acc.Nonce, strings.Join(shown, ","), rec.Nonce, strings.Join(proven, ","))
			}
			res := map[string]any{"valid": true, "address": addr.String(), "state_root": want.String(), "height": sp.Height}
			return g.print(res, func() { fmt.Printf("valid: account %s is committed under state root %s\n", addr, want) })
		},
	}
	cmd.Flags().StringVar(&root, "root", "", "state root (hex) to check against, instead of asking a node")
	cmd.Flags().Uint64Var(&height, "height", 0, "take the state root of this block (default: the proof's height)")
	return cmd
}

// syncLine says whether the node keeps up with its cluster.
func syncLine(s *client.Status) string {
	switch s.SyncState {
	case "", client.SyncInSync:
		return "sync in sync"
	}
	line := "sync " + strings.ReplaceAll(s.SyncState, "_", " ")
	if s.ClusterHeight > s.Height {
		line += fmt.Sprintf(": %d blocks behind the cluster (at %d)", s.ClusterHeight-s.Height, s.ClusterHeight)
	}
	if s.SyncError != "" {
		line += "\nlast sync error: " + s.SyncError
	}
	return line
}
