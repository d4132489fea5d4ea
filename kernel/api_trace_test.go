package kernel

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sos-kernel/sos/kernel/client"
	"github.com/sos-kernel/sos/kernel/txbuild"
	"github.com/sos-kernel/sos/ledger"
)

// TestAPISimulateTraceAndSearch drives a node over HTTP: simulate shows a
// contract's debug logs; the committed call is found by contract, event
// and sender; its trace's charges sum to the receipt's gas and name the
// nested call.
func TestAPISimulateTraceAndSearch(t *testing.T) {
	tn := newTestChain(t, 2)
	cfg := DefaultConfig()
	cfg.BlockInterval = Duration{Duration: 20 * time.Millisecond}
	_, c := startTestNode(t, tn, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	b, err := txbuild.New(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	alice := tn.users[0]
	send := func(p ledger.Payload, gas uint64) *client.SubmitResult {
		t.Helper()
		res, err := b.Send(ctx, alice, p, txbuild.Options{GasLimit: gas, Wait: true})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	wasm := buildWasm(t, "chaos")
	send(&ledger.ContractUpload{Wasm: wasm}, uploadGas)
	id := ledger.HashBytes(wasm)
	addrOf := func(res *client.SubmitResult) ledger.Address {
		var d struct {
			Address ledger.Address `json:"address"`
		}
		if err := json.Unmarshal([]byte(res.Receipt.Data), &d); err != nil {
			t.Fatal(err)
		}
		return d.Address
	}
	a := addrOf(send(&ledger.ContractInstantiate{CodeID: id, Msg: []byte(`{}`), Label: "a"}, contractGas))
	bb := addrOf(send(&ledger.ContractInstantiate{CodeID: id, Msg: []byte(`{}`), Label: "b"}, contractGas))
	call := execMsg(a, fmt.Sprintf(`{"call":{"contract":%q,"msg":{"set":{"value":4}}}}`, bb))

	acc, err := c.Account(ctx, alice.Address().String(), false)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := b.Simulate(ctx, alice, call, acc.Nonce, false, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(sim.Logs) != 2 || !strings.Contains(sim.Logs[0].Log, "calling") || sim.Logs[1].Log != "set 4" || sim.Logs[1].Depth != 1 {
		t.Fatalf("simulate logs: %+v", sim.Logs)
	}

	res := send(call, contractGas)
	for _, q := range []client.TxQuery{
		{Contract: bb.String()},
		{Contract: a.String(), Sender: alice.Address().String(), From: res.Height, To: res.Height},
	} {
		found, err := c.SearchTxs(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(found.Txs) == 0 || found.Txs[len(found.Txs)-1].TxHash != res.TxHash || found.IndexBase != 0 {
			t.Fatalf("search %+v: %+v", q, found)
		}
	}
	if _, err := c.SearchTxs(ctx, client.TxQuery{Attrs: []string{"x=y"}}); err == nil {
		t.Fatal("search without an indexed condition succeeded")
	}

	tr, err := c.TraceTx(ctx, res.TxHash)
	if err != nil {
		t.Fatal(err)
	}
	var sum uint64
	for _, g := range tr.Gas {
		sum += g.Gas
	}
	if sum != res.GasUsed || tr.Receipt.GasUsed != res.GasUsed || len(tr.Calls) != 1 || len(tr.Calls[0].Calls) != 1 || tr.Calls[0].Calls[0].Contract != bb.String() {
		t.Fatalf("trace: sum %d, gas_used %d: %+v", sum, res.GasUsed, tr)
	}
	if len(tr.Receipt.Logs) != 2 {
		t.Fatalf("trace logs: %+v", tr.Receipt.Logs)
	}
}
