package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/kernel"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

// newContractGasCmd is "sos contract gas FILE.wasm...": a module's upload
// and load gas, or (--calls) a test's calls replayed on a scratch chain.
func newContractGasCmd(g *globals) *cobra.Command {
	var callsFile string
	cmd := &cobra.Command{
		Use:   "gas FILE.wasm [FILE.wasm...]",
		Short: "Gas of a module, or of a test's calls replayed as a node runs them (locally, no node)",
		Long: `Without --calls: prepare a module exactly as an upload transaction does (validate,
meter, compile, pre-initialize) on a scratch state and print upload_gas (the upload
payload, without the transaction's intrinsic gas) and load_gas (what a cold call pays before
the contract runs; uploaded and recently used code is warm and pays none).

With --calls FILE: replay the calls the SDK test harness recorded (sdktest.App.Calls, written
by sdktest.ReportGas when SOS_GAS_REPORT is set) on a scratch chain in a temporary
directory, executed by this binary's engine with the genesis gas schedule and cost table it
carries: the modules are uploaded (module i is the i-th FILE.wasm; uploaded code is warm),
each sender's key is put on chain, then each call is one transaction signed as the CLI signs
it. It prints each call's receipt gas (gas_used), its contract call's gas and whether it paid
the module load, then a summary per handler (calls, min, avg, max): the numbers a node gives.`,
		Example: "  sos contract gas sdk-contracts/examples/counter/counter.wasm\n" +
			"  sos contract gas counter.wasm --calls calls.json -o json",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var wasms [][]byte
			for _, a := range args {
				w, err := os.ReadFile(a)
				if err != nil {
					return err
				}
				wasms = append(wasms, w)
			}
			ctx, cancel := cmdContext(cmd, 10*time.Minute)
			defer cancel()
			if callsFile != "" {
				return replayCalls(ctx, g, wasms, callsFile)
			}
			if len(wasms) > 1 {
				return fmt.Errorf("sos: contract gas: several modules need --calls")
			}
			p, err := profileModule(ctx, wasms[0])
			if err != nil {
				return err
			}
			return g.print(p, func() {
				fmt.Printf("module    %s bytes (prepared %s)\nupload    %s gas\nper call  %s gas to load (a cold call; warm code pays none) + %s call base\n",
					group(uint64(p.Size)), group(uint64(p.PreparedSize)), group(p.UploadGas), group(p.LoadGas), group(p.CallBase))
			})
		},
	}
	cmd.Flags().StringVar(&callsFile, "calls", "", "replay the calls the SDK test harness recorded in this file (JSON)")
	return cmd
}

func profileModule(ctx context.Context, wasm []byte) (*contracts.GasProfile, error) {
	machine, err := vm.New(ctx, vm.Config{})
	if err != nil {
		return nil, err
	}
	defer machine.Close(ctx)
	eng, err := contracts.New(machine, ledger.NewCodec(), nil, min(ledger.DefaultWarmCodes, max(1, machine.PinCapacity())))
	if err != nil {
		return nil, err
	}
	return eng.Profile(ctx, wasm)
}

// gasReport is what `contract gas --calls` prints as JSON.
type gasReport struct {
	*kernel.GasReplay
	Summary []gasSummaryRow `json:"summary"`
}

// gasSummaryRow is one handler's receipts (Foundry's gas report).
type gasSummaryRow struct {
	Handler string `json:"handler"` // entry/handler, e.g. execute/increment
	Calls   int    `json:"calls"`
	Min     uint64 `json:"min"`
	Avg     uint64 `json:"avg"`
	Max     uint64 `json:"max"`
}

// summarize groups the calls' gas_used by entry/handler, sorted by name.
func summarize(calls []kernel.GasReplayCall) []gasSummaryRow {
	by := map[string]*gasSummaryRow{}
	sums := map[string]uint64{}
	for _, c := range calls {
		k := c.Entry + "/" + c.Handler
		r := by[k]
		if r == nil {
			r = &gasSummaryRow{Handler: k, Min: c.GasUsed}
			by[k] = r
		}
		r.Calls++
		sums[k] += c.GasUsed
		r.Min, r.Max = min(r.Min, c.GasUsed), max(r.Max, c.GasUsed)
	}
	out := make([]gasSummaryRow, 0, len(by))
	for k, r := range by {
		r.Avg = sums[k] / uint64(r.Calls)
		out = append(out, *r)
	}
	slices.SortFunc(out, func(x, y gasSummaryRow) int { return strings.Compare(x.Handler, y.Handler) })
	return out
}

func replayCalls(ctx context.Context, g *globals, wasms [][]byte, file string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var calls kernel.GasCalls
	if err := json.Unmarshal(raw, &calls); err != nil {
		return fmt.Errorf("sos: contract gas: %s: %w: %w", file, kernel.ErrBadCalls, err)
	}
	dir, err := os.MkdirTemp("", "sos-gas-replay")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	rep, err := kernel.ReplayGas(ctx, dir, wasms, calls)
	if err != nil {
		return err
	}
	out := gasReport{GasReplay: rep, Summary: summarize(rep.Calls)}
	return g.print(out, func() {
		for i, u := range rep.Uploads {
			fmt.Printf("module %d  %s  %s bytes, upload %s gas\n", i, u.CodeID, group(uint64(u.Size)), group(u.GasUsed))
		}
		fmt.Printf("\n%-4s %-28s %6s %14s %14s %6s  %s\n", "#", "call", "code", "gas_used", "call_gas", "load", "sender")
		for i, c := range rep.Calls {
			load := "warm"
			if c.LoadCharged {
				load = group(c.LoadGas)
			}
			code := fmt.Sprint(uint32(c.Code))
			if c.HarnessFailed != (c.Code != ledger.CodeOK) {
				code += "!" // the harness and the chain disagree
			}
			fmt.Printf("%-4d %-28s %6s %14s %14s %6s  %s\n", i, c.Entry+"/"+c.Handler, code, group(c.GasUsed), group(c.CallGas), load, c.Sender)
		}
		fmt.Printf("\n%-32s %6s %14s %14s %14s\n", "handler", "calls", "min", "avg", "max")
		for _, r := range out.Summary {
			fmt.Printf("%-32s %6d %14s %14s %14s\n", r.Handler, r.Calls, group(r.Min), group(r.Avg), group(r.Max))
		}
		fmt.Println()
		for _, n := range rep.Notes {
			fmt.Println("note:", n)
		}
	})
}
