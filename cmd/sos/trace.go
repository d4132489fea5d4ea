package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/keyring"
)

// newTraceCmd is "sos tx trace HASH".
func newTraceCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "trace HASH",
		Short: "Re-execute a committed transaction and show its gas by call and host function",
		Long: `Re-execute a committed transaction on its pre-state (the state after the previous block,
with the transactions before it in its block applied again) and print where its gas went:
the charges on the transaction (intrinsic gas, state reads and writes, contract calls),
which add up to the receipt's gas used, and the tree of contract calls, each with its
module load, Wasm instructions, host functions and nested calls, and the contract's
debug log (ctx.Logf). Nothing is written. A node keeps the history needed only for
blocks it executed itself with this version (not for a ledger written by an older
version or restored from a state snapshot); it says so when a transaction is older.`,
		Example: "  sos tx trace 3f2a...c9\n  sos tx trace 3f2a...c9 -o json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return show(g, cmd, func(ctx context.Context, c *client.Client) (*client.TxTrace, error) { return c.TraceTx(ctx, args[0]) },
				func(t *client.TxTrace) { printTrace(os.Stdout, t) })
		},
	}
}

// printTrace writes a trace as text: the charges, then the call tree.
func printTrace(w io.Writer, t *client.TxTrace) {
	rc := t.Receipt
	fmt.Fprintf(w, "tx %s  height %d index %d  code %d (%s)\n", t.TxHash, t.Height, t.Index, rc.Code, rc.CodeName)
	fmt.Fprintf(w, "gas used %s of limit %s\n", group(rc.GasUsed), group(rc.GasLimit))
	if rc.Error != "" {
		fmt.Fprintf(w, "error: %s\n", rc.Error)
	}
	fmt.Fprintln(w, "charges:")
	for _, g := range t.Gas {
		fmt.Fprintf(w, "  %-24s %15s\n", g.What, group(g.Gas))
	}
	if len(t.Calls) > 0 {
		fmt.Fprintln(w, "calls:")
	}
	for _, c := range t.Calls {
		printCall(w, c, "  ")
	}
}

func printCall(w io.Writer, c client.CallTrace, indent string) {
	fmt.Fprintf(w, "%s%s %s  gas %s\n", indent, c.Entry, c.Contract, group(c.GasUsed))
	in := indent + "  "
	row := func(what string, gas uint64, calls int) {
		n := ""
		if calls > 0 {
			n = fmt.Sprintf("×%d", calls)
		}
		fmt.Fprintf(w, "%s%-22s %6s %15s\n", in, what, n, group(gas))
	}
	row("call base", c.CallBaseGas, 0)
	row("warm code set", c.WarmGas, 0)
	row("module load", c.LoadGas, 0)
	row("wasm instructions", c.InstructionGas, 0)
	for _, h := range c.Host {
		row("host "+h.Name, h.Gas, h.Calls)
	}
	if c.Error != "" {
		fmt.Fprintf(w, "%serror: %s\n", in, c.Error)
	}
	if c.Log != "" {
		fmt.Fprintf(w, "%slog:\n", in)
		for _, l := range strings.Split(strings.TrimRight(c.Log, "\n"), "\n") {
			fmt.Fprintf(w, "%s  | %s\n", in, l)
		}
	}
	for _, sub := range c.Calls {
		printCall(w, sub, in)
	}
}

// newQueryTxsCmd is "sos query txs".
func newQueryTxsCmd(g *globals) *cobra.Command {
	var q client.TxQuery
	cmd := &cobra.Command{
		Use:   "txs --contract ADDR | --event TYPE | --sender ADDR [--attr K=V] [--from H --to H]",
		Short: "Search committed transactions by contract, event, attribute, sender and height",
		Long: `Search the node's transaction index. Give at least one of --contract, --event, --sender;
all conditions must hold. --contract finds every transaction that called the contract
(nested calls included) or has an event naming it. Contract events are named wasm-<type> on chain (a contract's
ctx.Emit("increment", ...) is event wasm-increment, with the attribute contract=<address>
first); the chain's own events are transfer, upload, instantiate, migrate and those of the
market (fee, which every transaction has, is not indexed: use --sender). --attr K=V
(repeatable) requires attributes of the --event. Results come in height order, --limit
per page; the next page is --after with the cursor printed last.`,
		Example: "  sos query txs --contract sos1... --event wasm-increment\n  sos query txs --sender alice --from 100 --to 200\n  sos query txs --event transfer --attr to=sos1... --limit 20",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if q.Sender != "" {
				addr, err := keyring.Open(g.home).Resolve(q.Sender)
				if err != nil {
					return err
				}
				q.Sender = addr.String()
			}
			return show(g, cmd, func(ctx context.Context, c *client.Client) (*client.TxSearch, error) { return c.SearchTxs(ctx, q) },
				func(r *client.TxSearch) {
					for _, t := range r.Txs {
						fmt.Printf("%d/%d  %s  %-20s from %s  code %d  gas %s\n", t.Height, t.Index, t.TxHash, t.Kind, t.Sender, t.Code, group(t.GasUsed))
					}
					if len(r.Txs) == 0 {
						fmt.Println("no transactions found")
					}
					if r.IndexBase > 0 {
						fmt.Printf("(the index covers blocks from height %d on; older ones are being indexed or not stored here)\n", r.IndexBase)
					}
					if r.Next != "" {
						fmt.Printf("more: --after %s\n", r.Next)
					}
				})
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Contract, "contract", "", "contract address")
	f.StringVar(&q.Event, "event", "", "event type (contract events: wasm-<type>)")
	f.StringArrayVar(&q.Attrs, "attr", nil, "attribute KEY=VALUE of the --event (repeatable)")
	f.StringVar(&q.Sender, "sender", "", "sender address or key name")
	f.Uint64Var(&q.From, "from", 0, "lowest height")
	f.Uint64Var(&q.To, "to", 0, "highest height (0: the head)")
	f.IntVar(&q.Limit, "limit", 100, "transactions per page (at most 1000)")
	f.StringVar(&q.After, "after", "", "cursor from the previous page (height/index)")
	return cmd
}
