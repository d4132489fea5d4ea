package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

// newContractGasCmd is "sos contract gas FILE.wasm": a module's upload and
// per-call load gas, computed locally the way a node charges them.
func newContractGasCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "gas FILE.wasm",
		Short: "Gas to upload a module and to load it on every call (computed locally, no node)",
		Long: `Prepare a module exactly as an upload transaction does (validate, meter, compile,
pre-initialize) on a scratch state and print its gas figures: upload_gas (the upload
payload, without the transaction's intrinsic gas) and load_gas (what every call pays before
the contract runs: for a Go contract most of a call's gas). The SDK test harness prices
calls with load_gas: save the JSON next to the contract's tests and load it with
sdktest.LoadGasFile.`,
		Example: "  sos contract gas sdk-contracts/examples/counter/counter.wasm\n  sos contract gas counter.wasm -o json > testdata/gas.json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			wasm, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			ctx, cancel := cmdContext(cmd, 5*time.Minute)
			defer cancel()
			p, err := profileModule(ctx, wasm)
			if err != nil {
				return err
			}
			return g.print(p, func() {
				fmt.Printf("module    %s bytes (prepared %s)\nupload    %s gas\nper call  %s gas to load (a cold call; warm code pays none) + %s call base\n",
					group(uint64(p.Size)), group(uint64(p.PreparedSize)), group(p.UploadGas), group(p.LoadGas), group(p.CallBase))
			})
		},
	}
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
