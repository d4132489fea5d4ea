package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/keyring"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
)

// txFlags are shared by every command that signs a transaction.
type txFlags struct {
	from     string
	gas      uint64
	gasPrice string
	memo     string
	noWait   bool
	dryRun   bool
}

func (f *txFlags) register(cmd *cobra.Command) { f.registerGasAs(cmd, "gas") }

// registerGasAs registers the flags with the transaction's gas limit
// named gasFlag (a command whose --gas means something else, like the gas
// limit of a job, calls it --tx-gas).
func (f *txFlags) registerGasAs(cmd *cobra.Command, gasFlag string) {
	cmd.Flags().StringVar(&f.from, "from", "", "name of the signing key in --home's keyring, or \"node\" for the home's node key (required)")
	cmd.Flags().Uint64Var(&f.gas, gasFlag, 0, "gas limit of the transaction (default: simulate and add 20%)")
	cmd.Flags().StringVar(&f.gasPrice, "gas-price", "", "price per gas, e.g. 0.01uTFLP or 1uTFLP (default 0.01uTFLP)")
	cmd.Flags().StringVar(&f.memo, "memo", "", "free text stored with the transaction")
	cmd.Flags().BoolVar(&f.noWait, "no-wait", false, "return once the node accepts the tx instead of waiting for commit")
	cmd.Flags().BoolVar(&f.dryRun, "dry-run", false, "simulate on the node's latest state and print the gas it would use; send nothing")
	_ = cmd.MarkFlagRequired("from")
}

// txResult is what every tx command prints.
type txResult struct {
	TxHash  string          `json:"tx_hash"`
	Height  uint64          `json:"height"`
	Code    uint32          `json:"code"`
	GasUsed uint64          `json:"gas_used"`
	Receipt *client.Receipt `json:"receipt,omitempty"`
}

// sendTx signs payload with --from and submits it; build may read the
// builder's denoms (for amounts) before the payload is final.
func (g *globals) sendTx(cmd *cobra.Command, f *txFlags, build func(b *txbuild.Builder) (ledger.Payload, error)) (*client.SubmitResult, error) {
	return g.submitTx(cmd, f, build, g.printTx)
}

// submitTx signs with the key --from names (signingKey), submits, and on a
// failed transaction prints its receipt with printFailed.
func (g *globals) submitTx(cmd *cobra.Command, f *txFlags, build func(b *txbuild.Builder) (ledger.Payload, error),
	printFailed func(*client.SubmitResult) error) (*client.SubmitResult, error) {
	ctx, cancel := cmdContext(cmd, 60*time.Second)
	defer cancel()
	key, err := g.signingKey(f.from)
	if err != nil {
		return nil, err
	}
	c, err := g.client()
	if err != nil {
		return nil, err
	}
	b, err := txbuild.New(ctx, c)
	if err != nil {
		return nil, err
	}
	g.denoms = denomTableOf(b.Denoms)
	p, err := build(b)
	if err != nil {
		return nil, err
	}
	if err := p.ValidateBasic(); err != nil {
		return nil, err
	}
	if f.dryRun {
		return nil, g.simulate(cmd, b, key, p, f.memo) // nil result: nothing was sent
	}
	o := txbuild.Options{GasLimit: f.gas, Memo: f.memo, Wait: !f.noWait}
	if f.gasPrice != "" {
		if o.GasPrice, err = b.Denoms.ParseGasPrice(f.gasPrice); err != nil {
			return nil, err
		}
	}
	res, err := b.Send(ctx, key, p, o)
	var sim *txbuild.SimulationError
	switch {
	case res != nil && errors.Is(err, txbuild.ErrTxFailed):
		// The receipt goes to stdout (with -o json, whole); why it failed
		// is said once, as the command's error.
		_ = printFailed(res)
		return res, g.txFailed(res)
	case errors.As(err, &sim):
		return nil, g.simulationFailed(sim.Receipt)
	}
	return res, err
}

// simulate prints the receipt the transaction would get and the gas limit
// to use for it.
func (g *globals) simulate(cmd *cobra.Command, b *txbuild.Builder, key *ledger.PrivateKey, p ledger.Payload, memo string) error {
	ctx, cancel := cmdContext(cmd, 60*time.Second)
	defer cancel()
	acc, err := b.Client.Account(ctx, key.Address().String(), false)
	if err != nil {
		return err
	}
	rc, err := b.Simulate(ctx, key, p, acc.Nonce, !acc.HasPubKey, memo)
	if err != nil {
		return err
	}
	out := struct {
		GasEstimate uint64          `json:"gas_estimate"`
		GasUsed     uint64          `json:"gas_used"`
		Code        uint32          `json:"code"`
		Receipt     *client.Receipt `json:"receipt"`
	}{txbuild.GasWithMargin(rc.GasUsed), rc.GasUsed, rc.Code, rc}
	if err := g.print(out, func() {
		fmt.Printf("simulation: code %d (%s), gas used %s, suggested --gas %d\n", rc.Code, rc.CodeName, group(rc.GasUsed), out.GasEstimate)
		for _, l := range rc.Logs {
			fmt.Printf("log %s %s:\n", l.Entry, l.Contract)
			for _, line := range strings.Split(strings.TrimRight(l.Log, "\n"), "\n") {
				fmt.Printf("  | %s\n", line)
			}
		}
	}); err != nil {
		return err
	}
	if rc.Code != 0 {
		return g.simulationFailed(rc)
	}
	return nil
}

func (g *globals) printTx(res *client.SubmitResult) error {
	out := txResult{TxHash: res.TxHash, Height: res.Height, Code: res.Code, GasUsed: res.GasUsed, Receipt: res.Receipt}
	return g.print(out, func() { g.printTxLine(res) })
}

// printTxLine is the text summary of a submitted transaction. A failed
// one's error is not printed here: the command returns it, and main prints
// it once.
func (g *globals) printTxLine(res *client.SubmitResult) {
	if res.Height == 0 {
		fmt.Printf("tx %s accepted (not waiting for commit)\n", res.TxHash)
		return
	}
	outcome := "ok"
	if res.Code != 0 {
		outcome = fmt.Sprintf("failed (code %d)", res.Code)
		if res.Receipt != nil {
			outcome = fmt.Sprintf("failed (code %d, %s)", res.Code, res.Receipt.CodeName)
		}
	}
	gas := group(res.GasUsed)
	if res.Receipt != nil && res.Receipt.GasLimit > 0 {
		gas += " of limit " + group(res.Receipt.GasLimit)
	}
	fmt.Printf("tx %s committed at height %d: %s, gas used %s\n", res.TxHash, res.Height, outcome, gas)
	if res.Receipt != nil && res.Receipt.Fee.Denom != "" {
		fmt.Printf("fee %s\n", g.denoms.Format(res.Receipt.Fee.Amount, res.Receipt.Fee.Denom))
	}
}

func newTxCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "tx", Short: "Sign and send transactions"}
	cmd.AddCommand(newTransferCmd(g), newSimulateCmd(g), newTraceCmd(g))
	return cmd
}

func newTransferCmd(g *globals) *cobra.Command {
	var tf txFlags
	var to, amount string
	transfer := &cobra.Command{
		Use:     "transfer",
		Short:   "Send tokens to another account",
		Example: "  sos tx transfer --from alice --to sos1... --amount 25TFLP --home ./n1",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := g.sendTx(cmd, &tf, func(b *txbuild.Builder) (ledger.Payload, error) {
				dest, err := keyring.Open(g.home).Resolve(to)
				if err != nil {
					return nil, fmt.Errorf("--to: %w", err)
				}
				coins, err := b.Denoms.ParseCoins(amount)
				if err != nil {
					return nil, fmt.Errorf("--amount: %w", err)
				}
				return &ledger.Transfer{To: dest, Amount: coins}, nil
			})
			if err != nil || res == nil {
				return err
			}
			return g.printTx(res)
		},
	}
	tf.register(transfer)
	transfer.Flags().StringVar(&to, "to", "", "recipient address (sos1...) or key name (required)")
	transfer.Flags().StringVar(&amount, "amount", "", "amount, e.g. 25TFLP or 25TFLP,3KWTT (required)")
	_ = transfer.MarkFlagRequired("to")
	_ = transfer.MarkFlagRequired("amount")
	return transfer
}

// newSimulateCmd is "sos tx simulate ...": the same commands with --dry-run.
func newSimulateCmd(g *globals) *cobra.Command {
	sim := &cobra.Command{
		Use:   "simulate",
		Short: "Estimate gas of a transaction without sending it (any tx command with --dry-run)",
		Long: `Run a transaction on the node's latest state without committing it and print the gas it
uses and the receipt it would get. The subcommands take the same arguments as the real ones.`,
		Example: "  sos tx simulate transfer --from alice --to bob --amount 1TFLP\n  sos tx simulate contract execute sos1... '{\"increment\":{}}' --from alice",
	}
	transfer := newTransferCmd(g)
	forceDryRun(transfer)
	sim.AddCommand(transfer)
	contract := newContractCmd(g)
	for _, c := range contract.Commands() {
		if c.Flags().Lookup("dry-run") != nil {
			forceDryRun(c)
		} else {
			contract.RemoveCommand(c)
		}
	}
	sim.AddCommand(contract)
	return sim
}

func forceDryRun(c *cobra.Command) {
	_ = c.Flags().Set("dry-run", "true")
	c.Flags().Lookup("dry-run").Hidden = true
}
