package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel/keyring"
)

func newKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage account keys (ML-DSA-65) in the home's keyring",
		Long: `Manage account keys (ML-DSA-65) in the keyring of a home: one file per key under HOME/keys.
HOME is --home, else $SOS_HOME, else ~/.sos; a key made in one home is not seen from another.`,
	}
	cmd.AddCommand(
		&cobra.Command{
			Use: "add NAME", Short: "Create a new key in --home's keyring and print its address", Args: cobra.ExactArgs(1),
			Example: "  sos keys add alice --home ./n1",
			RunE: func(cmd *cobra.Command, args []string) error {
				kr := keyring.Open(g.home)
				e, err := kr.Add(args[0])
				if err != nil {
					return err
				}
				// Say where the key went: without --home it lands in the
				// default home, which is easy to miss.
				where := kr.Dir()
				if abs, err := filepath.Abs(where); err == nil {
					where = abs
				}
				fmt.Fprintf(os.Stderr, "key %q stored in %s\n", e.Name, where)
				return g.print(e, func() { fmt.Printf("%s %s\n", e.Name, e.Address) })
			},
		},
		&cobra.Command{
			Use: "show NAME", Short: "Print a key's address", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				e, err := keyring.Open(g.home).Get(args[0])
				if err != nil {
					return err
				}
				return g.print(e, func() { fmt.Println(e.Address) })
			},
		},
		&cobra.Command{
			Use: "list", Short: "List keys with their addresses", Args: cobra.NoArgs,
			RunE: func(cmd *cobra.Command, args []string) error {
				es, err := keyring.Open(g.home).List()
				if err != nil {
					return err
				}
				return g.print(es, func() {
					for _, e := range es {
						fmt.Printf("%-16s %s\n", e.Name, e.Address)
					}
				})
			},
		},
	)
	return cmd
}
