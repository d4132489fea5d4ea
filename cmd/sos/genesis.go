package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/ledger"
)

func newGenesisCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "genesis", Short: "Edit genesis.json before the first start"}
	cmd.AddCommand(&cobra.Command{
		Use:     "add-account NAME|ADDRESS AMOUNTS",
		Short:   "Fund an account in genesis.json (amounts like 1000000TFLP,5000KWTT)",
		Example: "  sos genesis add-account alice 1000000TFLP,5000KWTT --home ./n1",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := filepath.Join(g.home, kernel.GenesisFile)
			doc, err := os.ReadFile(path)
			if err != nil {
				return fmt.Errorf("%w (run 'sos init' first)", err)
			}
			gen, err := ledger.ParseGenesis(doc)
			if err != nil {
				return err
			}
			if _, err := os.Stat(filepath.Join(g.home, "data")); err == nil {
				return fmt.Errorf("the node in %s has already started: genesis can no longer change", g.home)
			}
			addr, err := keyring.Open(g.home).Resolve(args[0])
			if err != nil {
				return err
			}
			coins, err := gen.DenomSet().ParseCoins(args[1])
			if err != nil {
				return err
			}
			if len(coins) == 0 {
				return fmt.Errorf("no amount given")
			}
			found := false
			for i := range gen.Accounts {
				if gen.Accounts[i].Address == addr {
					merged, err := ledger.NormalizeCoins(append(append(ledger.Coins{}, gen.Accounts[i].Balances...), coins...))
					if err != nil {
						return err
					}
					gen.Accounts[i].Balances = merged
					found = true
				}
			}
			if !found {
				gen.Accounts = append(gen.Accounts, ledger.GenesisAccount{Address: addr, Balances: coins})
			}
			if err := gen.Validate(); err != nil {
				return err
			}
			out, err := gen.Marshal()
			if err != nil {
				return err
			}
			if err := kernel.WriteFileAtomic(path, out, 0o644); err != nil {
				return err
			}
			res := map[string]any{"address": addr.String(), "added": coins}
			return g.print(res, func() { fmt.Printf("genesis: %s += %s\n", addr, coins) })
		},
	})
	return cmd
}
