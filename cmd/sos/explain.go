package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
)

// Errors a user meets are said with what to do about them. The node and
// the ledger report causes (a receipt's code and error text, a refused
// connection); the CLI knows which flag the user can change.

// explain is the one-line message main prints for err.
func (g *globals) explain(err error) string {
	msg := oneLine(err)
	if errors.Is(err, client.ErrNoNode) {
		from := g.nodeFrom
		if from == "" {
			from = "--node or the api_addr of --home"
		}
		msg += fmt.Sprintf(" — is `sos run` running? (URL from %s; point to a running node with --node URL or --home DIR)", from)
	}
	return msg
}

// explainReceipt says why a transaction failed, from its receipt, with
// amounts in display units (dt). With simulated, the receipt comes from a
// dry run whose gas limit is the chain's per-transaction cap rather than
// the user's --gas.
func explainReceipt(dt client.DenomTable, rc *client.Receipt, simulated bool) string {
	switch ledger.Code(rc.Code) {
	case ledger.CodeOutOfGas:
		used, limit := group(rc.GasUsed), group(rc.GasLimit)
		if simulated {
			return fmt.Sprintf("out of gas: used %s of limit %s, the chain's max_tx_gas: no gas limit lets it finish", used, limit)
		}
		if rc.GasLimit == 0 {
			return "out of gas; raise --gas (" + rc.Error + ")"
		}
		return fmt.Sprintf("out of gas: used %s of limit %s; raise --gas (or leave it out: the CLI then simulates the transaction and adds 20%%)", used, limit)
	case ledger.CodeContractTrap:
		// The VM reports "vm: trap: unreachable in $1467: contract
		// panicked: panic: boom (in main.f at file.go:12)": the trap site
		// of a panic is the runtime's abort, the panic line says it all.
		if _, p, ok := strings.Cut(rc.Error, "contract panicked: "); ok {
			return "contract panicked: " + strings.TrimPrefix(p, "panic: ")
		}
	}
	if rc.Error == "" {
		return rc.CodeName
	}
	return dt.Text(rc.Error)
}

// txFailed is the error of a committed transaction whose payload failed.
func (g *globals) txFailed(res *client.SubmitResult) error {
	why := "code " + fmt.Sprint(res.Code)
	if res.Receipt != nil {
		why = explainReceipt(g.denoms, res.Receipt, false)
	}
	return fmt.Errorf("tx %s failed at height %d: %s: %w", res.TxHash, res.Height, why, txbuild.ErrTxFailed)
}

// simulationFailed is the error of a dry run whose transaction would fail.
func (g *globals) simulationFailed(rc *client.Receipt) error {
	return fmt.Errorf("the transaction would fail (simulated on the node's latest state; nothing was sent): %s: %w",
		explainReceipt(g.denoms, rc, true), txbuild.ErrSimulation)
}

// group writes an integer with thousands separated, as amounts are.
func group(v uint64) string { return client.FormatUnits(fmt.Sprint(v), 0) }

// denomTableOf is the display table of a chain's tokens as txbuild read them.
func denomTableOf(d *ledger.Denoms) client.DenomTable {
	t := client.DenomTable{}
	for _, dn := range d.List() {
		t[dn.Base] = client.Denom{Display: dn.Display, Base: dn.Base, Exponent: dn.Exponent}
	}
	return t
}
