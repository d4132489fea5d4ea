package kernel

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/ledger"
	"github.com/sos-kernel/sos/vm"
)

var updateNodeGas = flag.Bool("update-node-gas", false, "rewrite sdk-contracts/examples/counter/testdata/node_gas.json from this node")

// nodeGas is what the counter's TestHarnessGasMatchesNode compares the SDK
// harness with: a node's figures for one sequence of calls.
type nodeGas struct {
	LoadGas uint64            `json:"load_gas"`
	Table   map[string]uint64 `json:"table"` // the node's prices, named as sdktest.GasTable's fields
	Steps   []nodeGasStep     `json:"steps"`
}

// chainGasTable is the node's price list in sdktest.GasTable's terms.
// txOverhead is the size of a signed execute transaction without its
// message (no memo, funds or public key).
func chainGasTable(txOverhead uint64) map[string]uint64 {
	s := ledger.DefaultGasSchedule()
	return map[string]uint64{
		"call_base": contracts.GasCallBase, "instantiate": contracts.GasInstantiate, "host_base": vm.GasHostBase, "per_byte": vm.GasPerByte,
		"storage_get": vm.GasStorageGet, "storage_set": vm.GasStorageSet, "storage_set_per_byte": vm.GasStorageSetPerByte,
		"storage_delete": vm.GasStorageDelete, "iter_open": vm.GasIterOpen, "iter_next": vm.GasIterNext, "balance": vm.GasBalance,
		"transfer": vm.GasTransfer, "emit_event": vm.GasEmitEvent, "emit_per_byte": vm.GasEmitPerByte, "call": vm.GasCall,
		"hash_per_byte": vm.GasHashPerByte, "mldsa_verify": vm.GasMLDSAVerify, "addr_convert": vm.GasAddrConvert,
		"tx_base": s.TxBase, "tx_per_byte": s.TxPerByte, "sig_verify": s.SigVerify, "tx_overhead": txOverhead,
	}
}

type nodeGasStep struct {
	Sender  string         `json:"sender"` // alice (instantiated the contract) or bob
	Entry   string         `json:"entry"`
	Msg     string         `json:"msg"`
	Code    ledger.Code    `json:"code"`
	GasUsed uint64         `json:"gas_used"` // the receipt's (a query: the query's gas)
	CallGas uint64         `json:"call_gas"` // the top-level contract call (call base + load + instructions + host)
	Events  []ledger.Event `json:"events"`   // the contract's events; the contract attribute reads "CONTRACT"
}

// TestHarnessGasGolden runs the counter's calls on a node and hands the
// node's gas and events to the counter's harness test, which must be
// within its stated tolerance (and name events as the chain does). With
// -update-node-gas it rewrites the golden file that test uses on its own.
func TestHarnessGasGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the counter's tests in a subprocess")
	}
	tn := withContracts(t, newTestChain(t, 2))
	alice, bob := tn.users[0], tn.users[1]
	tn.exec1(t, bob, transfer(alice, 1)) // bob's key is on chain: his calls carry none, as in the harness's estimate
	id := tn.upload(t, alice, buildWasm(t, "counter"))
	users := map[string]*ledger.PrivateKey{"alice": alice, "bob": bob}
	var out nodeGas
	var addr ledger.Address
	record := func(sender, entry, msg string, r ledger.Receipt) {
		tr, err := tn.chain.Trace(context.Background(), r.TxHash)
		if err != nil {
			t.Fatal(err)
		}
		st := nodeGasStep{Sender: sender, Entry: entry, Msg: msg, Code: r.Code, GasUsed: r.GasUsed, CallGas: tr.Calls[0].GasUsed, Events: []ledger.Event{}}
		out.LoadGas = tr.Calls[0].LoadGas
		if entry == "execute" && out.Table == nil {
			sched := ledger.DefaultGasSchedule()
			size := (tr.Gas[0].Gas - sched.TxBase - sched.SigVerify) / sched.TxPerByte // tr.Gas[0] is the intrinsic gas
			out.Table = chainGasTable(size - uint64(len(msg)))
		}
		for _, e := range r.Events {
			if e.Type == "fee" || e.Type == "instantiate" {
				continue
			}
			for i, a := range e.Attrs {
				if a.Key == "contract" && a.Value == addr.String() {
					e.Attrs[i].Value = "CONTRACT"
				}
			}
			st.Events = append(st.Events, e)
		}
		out.Steps = append(out.Steps, st)
	}
	inst := tn.exec1(t, alice, &ledger.ContractInstantiate{CodeID: id, Msg: []byte(`{"count":1}`), Label: "gas", Admin: alice.Address()})
	var d struct {
		Address ledger.Address `json:"address"`
	}
	if err := json.Unmarshal(inst.Data, &d); err != nil {
		t.Fatal(err)
	}
	addr = d.Address
	record("alice", "instantiate", `{"count":1}`, inst)
	for _, s := range []struct{ sender, msg string }{
		{"alice", `{"increment":{}}`}, {"bob", `{"increment":{}}`}, {"alice", `{"reset":{"count":5}}`}, {"bob", `{"reset":{"count":0}}`},
	} {
		record(s.sender, "execute", s.msg, tn.exec1(t, users[s.sender], execMsg(addr, s.msg)))
	}
	head := tn.store.Head()
	_, qgas, err := tn.chain.engine.Query(context.Background(), ledger.NewState(tn.store), contracts.Env{ChainID: head.ChainID, Height: head.Height, TimeMs: head.Time}, addr, []byte(`{"get":{}}`), vm.DefaultQueryGas)
	if err != nil {
		t.Fatal(err)
	}
	out.Steps = append(out.Steps, nodeGasStep{Sender: "alice", Entry: "query", Msg: `{"get":{}}`, GasUsed: qgas, CallGas: qgas, Events: []ledger.Event{}})

	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	counter, err := filepath.Abs("../sdk-contracts/examples/counter")
	if err != nil {
		t.Fatal(err)
	}
	if *updateNodeGas {
		if err := os.WriteFile(filepath.Join(counter, "testdata", "node_gas.json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(t.TempDir(), "node_gas.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "test", "-count=1", "-run", "TestHarnessGasMatchesNode", "-v", ".")
	cmd.Dir = counter
	cmd.Env = append(os.Environ(), "SOS_NODE_GAS="+file)
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the harness disagrees with the node:\n%s", res)
	}
	t.Logf("%s", res)
}
