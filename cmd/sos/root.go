package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/jobrun"
)

// globals are the flags every command shares.
type globals struct {
	home      string
	node      string
	output    string
	minHeight uint64
	keys      keyringFlags
	// jobExecutor makes the executor that re-executes jobs (sos job verify,
	// sos job challenge); tests give a stand-in.
	jobExecutor func() (jobrun.Executor, error)

	nodeFrom string            // how nodeURL chose the URL, for "no node at URL" errors
	denoms   client.DenomTable // the chain's tokens once known, for amounts in text output
}

// newGlobals returns the globals of a real run (main's).
func newGlobals() *globals { return &globals{jobExecutor: defaultJobExecutor} }

func newRootCmd() *cobra.Command { return newRoot(newGlobals()) }

// newRoot builds the command tree around g, whose fields its flags fill
// (main reads them to explain an error; tests preset fields that have no
// flag: a cheap KDF, a fake prompt, a stand-in job executor).
func newRoot(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "sos",
		Short:         "SOS kernel: a node of the spatial operating system",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if g.output != "text" && g.output != "json" {
				return fmt.Errorf("-o %q: want text or json", g.output)
			}
			return nil
		},
	}
	root.PersistentFlags().StringVar(&g.home, "home", defaultHome(), "node home directory: config.toml, keys/, data ($SOS_HOME if set, else ~/.sos)")
	root.PersistentFlags().StringVar(&g.node, "node", "", "node API URL (default: the api_addr of --home, else http://127.0.0.1:26657)")
	root.PersistentFlags().StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	root.PersistentFlags().Uint64Var(&g.minHeight, "min-height", 0,
		"answer only once the node has committed this height (waits up to 20 s): read a write made through another node")
	g.keys.register(root)
	root.AddCommand(
		newInitCmd(g), newKeysCmd(g), newGenesisCmd(g), newRunCmd(g), newTxCmd(g),
		newQueryCmd(g), newVerifyProofCmd(g), newLoadgenCmd(g), newVersionCmd(g), newContractCmd(g), newDevnetCmd(g), newTUICmd(g), newConformanceCmd(g), newPeersCmd(g), newClusterCmd(g),
		newRomeCmd(g), newCertCmd(g), newGovCmd(g), newJobCmd(g), newBlobCmd(g), newMeterCmd(g),
	)
	strictCommands(root)
	return root
}

// strictCommands makes every command fail as a user expects: a group
// command (one with subcommands and nothing to run itself) refuses an
// unknown subcommand with a non-zero exit instead of printing help and
// exiting 0, and a wrong argument count names the command's usage line.
func strictCommands(c *cobra.Command) {
	if c.HasSubCommands() && c.Run == nil && c.RunE == nil {
		c.Args = cobra.ArbitraryArgs
		c.RunE = func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			var names []string
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, sub.Name())
				}
			}
			return fmt.Errorf("unknown command %q for %q (available: %s; see %s --help)", args[0], cmd.CommandPath(), strings.Join(names, ", "), cmd.CommandPath())
		}
	} else if c.Args != nil {
		validate := c.Args
		c.Args = func(cmd *cobra.Command, args []string) error {
			if err := validate(cmd, args); err != nil {
				return fmt.Errorf("%w (usage: %s)", err, cmd.UseLine())
			}
			return nil
		}
	}
	for _, sub := range c.Commands() {
		strictCommands(sub)
	}
}

func defaultHome() string {
	if h := os.Getenv("SOS_HOME"); h != "" {
		return h
	}
	if d, err := os.UserHomeDir(); err == nil {
		return filepath.Join(d, ".sos")
	}
	return ".sos"
}

// nodeURL resolves --node: the flag, else the home's api_addr, else the
// default; nodeFrom records which, for the error when nothing answers.
func (g *globals) nodeURL() string {
	if g.node != "" {
		g.nodeFrom = "--node"
		if !strings.Contains(g.node, "://") {
			return "http://" + g.node
		}
		return g.node
	}
	if cfg, err := kernel.LoadConfig(g.home); err == nil {
		g.nodeFrom = "api_addr of --home " + g.home
		return "http://" + cfg.APIAddr
	}
	g.nodeFrom = "the default: --home " + g.home + " has no config.toml"
	return "http://" + kernel.DefaultConfig().APIAddr
}

// client is the API client of the node the flags name (with --min-height,
// every request waits for that height).
func (g *globals) client() (*client.Client, error) {
	c, err := client.New(g.nodeURL())
	if err != nil {
		return nil, err
	}
	return c.AtHeight(g.minHeight), nil
}

// denomTable returns the chain's tokens for amounts in text output, asking
// the node once; without an answer amounts show in base units.
func (g *globals) denomTable(ctx context.Context, c *client.Client) client.DenomTable {
	if g.denoms == nil {
		g.denoms = client.DenomTable{}
		if ds, err := c.Denoms(ctx); err == nil {
			g.denoms = client.NewDenomTable(ds)
		}
	}
	return g.denoms
}

// print writes v as JSON with -o json, else calls text.
func (g *globals) print(v any, text func()) error {
	if g.output == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text()
	return nil
}

func cmdContext(cmd *cobra.Command, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(cmd.Context(), d)
}

// oneLine flattens an error for the one-line failure message.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the sos version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.print(map[string]string{"version": kernel.Version}, func() { fmt.Println(kernel.Version) })
		},
	}
}

// show fetches a value from the node (bounded by 30 s) and prints it: as
// JSON with -o json, else with text.
func show[T any](g *globals, cmd *cobra.Command, fetch func(context.Context, *client.Client) (T, error), text func(T)) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, cancel := cmdContext(cmd, 30*time.Second)
	defer cancel()
	v, err := fetch(ctx, c)
	if err != nil {
		return err
	}
	if g.output == "text" {
		g.denomTable(ctx, c)
	}
	return g.print(v, func() { text(v) })
}
