package kernel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

// checkCallGas checks a call's parts add up to its total, recursively.
func checkCallGas(t *testing.T, c *contracts.CallTrace) {
	t.Helper()
	sum := c.CallBase + c.WarmGas + c.LoadGas + c.InstructionGas
	for _, h := range c.Host {
		sum += h.Gas
	}
	for _, sub := range c.Calls {
		sum += sub.GasUsed
		checkCallGas(t, sub)
	}
	if sum != c.GasUsed {
		t.Fatalf("call %s %s: parts sum to %d, gas_used %d: %+v", c.Entry, c.Contract, sum, c.GasUsed, c)
	}
}

func hostNames(c *contracts.CallTrace) string {
	var names []string
	for _, h := range c.Host {
		names = append(names, h.Name)
	}
	return strings.Join(names, ",")
}

// TestTraceReexecutesOnPreState: a contract call committed after another
// transaction in the same block, and after later blocks changed the same
// storage, is traced on its own pre-state: the trace's receipt is the
// stored one, its charges sum to the receipt's gas_used, every call's
// parts sum to the call's gas, nested calls and host functions are named,
// and ctx.Logf output is there.
func TestTraceReexecutesOnPreState(t *testing.T) {
	tn := withContracts(t, newTestChain(t, 2))
	alice, bob := tn.users[0], tn.users[1]
	id := tn.upload(t, alice, buildWasm(t, "chaos"))
	a := tn.instantiate(t, alice, id, `{}`, alice.Address())
	b := tn.instantiate(t, alice, id, `{}`, ledger.Address{})
	// One block: bob sets b to 3, then alice's call through a sets b to 6.
	first := tn.tx(t, bob, execMsg(b, `{"set":{"value":3}}`), contractGas)
	traced := tn.tx(t, alice, execMsg(a, fmt.Sprintf(`{"call":{"contract":%q,"msg":{"set":{"value":6}}}}`, b)), contractGas)
	bb := tn.block(t, first, traced)
	stored := bb.Receipts[1]
	if stored.Code != ledger.CodeOK {
		t.Fatalf("traced tx failed: %s", stored.Error)
	}
	// Later blocks overwrite the same keys (the trace must not see them).
	tn.exec1(t, bob, execMsg(b, `{"set":{"value":99}}`))
	tn.exec1(t, alice, transfer(bob, 5))

	tr, err := tn.chain.Trace(context.Background(), traced.Hash)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Receipt.GasUsed != stored.GasUsed || string(tr.Receipt.Data) != string(stored.Data) || fmt.Sprint(tr.Receipt.Events) != fmt.Sprint(stored.Events) {
		t.Fatalf("re-executed receipt differs:\n%+v\n%+v", tr.Receipt, stored)
	}
	var sum uint64
	for _, g := range tr.Gas {
		sum += g.Gas
	}
	if sum != stored.GasUsed {
		t.Fatalf("trace charges sum to %d, receipt gas_used %d: %+v", sum, stored.GasUsed, tr.Gas)
	}
	if len(tr.Calls) != 1 || len(tr.Calls[0].Calls) != 1 {
		t.Fatalf("call tree: %+v", tr.Calls)
	}
	top, sub := tr.Calls[0], tr.Calls[0].Calls[0]
	checkCallGas(t, top)
	// The code was uploaded, so it is warm: no call pays the module load.
	if top.Contract != a.String() || sub.Contract != b.String() || sub.Depth != 1 || sub.Entry != "execute" {
		t.Fatalf("calls: %+v / %+v", top, sub)
	}
	if !strings.Contains(hostNames(top), "call") || !strings.Contains(hostNames(sub), "storage_set") || top.InstructionGas == 0 || top.LoadGas != 0 {
		t.Fatalf("host functions: %s / %s, instructions %d, load %d", hostNames(top), hostNames(sub), top.InstructionGas, top.LoadGas)
	}
	// storage_set of key "value" and value "6": the host call, the write
	// and its 6 bytes, plus copying key and value in (under a KiB each:
	// at most one GasCopyPerKiB each) (vm/limits.go).
	for _, h := range sub.Host {
		least := uint64(vm.GasHostBase + vm.GasStorageSet + 6*vm.GasStorageSetPerByte)
		if h.Name == "storage_set" && (h.Calls != 1 || h.Gas < least || h.Gas > least+2*vm.GasCopyPerKiB) {
			t.Fatalf("storage_set traced as %+v", h)
		}
	}
	if !strings.Contains(top.Log, "calling "+b.String()) || !strings.Contains(sub.Log, "set 6") {
		t.Fatalf("debug logs: %q / %q", top.Log, sub.Log)
	}
	// The top-level call's gas is one of the transaction's charges.
	found := false
	for _, g := range tr.Gas {
		found = found || g.Gas == top.GasUsed-top.CallBase && g.What == "contract execute"
	}
	if !found {
		t.Fatalf("no charge of %d for the call in %+v", top.GasUsed-top.CallBase, tr.Gas)
	}

	// A plain transfer traces too: intrinsic gas plus state reads and writes.
	r := tn.exec1(t, alice, transfer(bob, 7))
	tt, err := tn.chain.Trace(context.Background(), r.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	sum = 0
	for _, g := range tt.Gas {
		sum += g.Gas
	}
	if sum != r.GasUsed || tt.Gas[0].What != "intrinsic" || len(tt.Calls) != 0 {
		t.Fatalf("transfer trace: %+v (sum %d, receipt %d)", tt.Gas, sum, r.GasUsed)
	}
	// A failed contract call traces with its error and the gas it paid.
	fr := tn.exec1(t, alice, execMsg(a, `{"panic":{}}`))
	ft, err := tn.chain.Trace(context.Background(), fr.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	if ft.Receipt.GasUsed != fr.GasUsed || len(ft.Calls) != 1 || !strings.Contains(ft.Calls[0].Error, "boom") {
		t.Fatalf("failed call trace: %+v", ft.Calls)
	}
	checkCallGas(t, ft.Calls[0])
}

// TestTraceUnknownTx: an unknown hash is not found (404 in the API).
func TestTraceUnknownTx(t *testing.T) {
	tn := newTestChain(t, 2)
	if _, err := tn.chain.Trace(context.Background(), ledger.Hash{1}); !errors.Is(err, ledger.ErrNotFound) {
		t.Fatalf("unknown tx: %v", err)
	}
}
