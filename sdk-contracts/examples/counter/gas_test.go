package main

import (
	"encoding/json"
	"fmt"
	"os"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/sdktest"
)

// gasTolerance is how far the harness's gas may be from the node's: the
// harness prices everything but the Wasm instructions, which for the
// counter are about 0.1% of a call (the module load is 99.9%).
const gasTolerance = 0.01

// TestHarnessGasMatchesNode runs the calls of testdata/node_gas.json (a
// node's receipts for them, written by kernel's TestHarnessGasGolden,
// which also runs this test against a node it just ran: SOS_NODE_GAS) in
// the harness and checks the gas of each call and of each transaction is
// within gasTolerance, and that the events are named as on the chain.
func TestHarnessGasMatchesNode(t *testing.T) {
	path := os.Getenv("SOS_NODE_GAS")
	if path == "" {
		path = "testdata/node_gas.json"
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var node struct {
		LoadGas uint64           `json:"load_gas"`
		Table   sdktest.GasTable `json:"table"`
		Steps   []struct {
			Sender, Entry, Msg string
			Code               int
			GasUsed            uint64 `json:"gas_used"`
			CallGas            uint64 `json:"call_gas"`
			Events             []sdk.Event
		}
	}
	if err := json.Unmarshal(raw, &node); err != nil {
		t.Fatal(err)
	}
	if node.Table != sdktest.ChainGasTable() {
		t.Fatalf("sdktest.ChainGasTable() is not the node's table any more:\n harness %+v\n node    %+v", sdktest.ChainGasTable(), node.Table)
	}
	gas, err := sdktest.LoadGasFile(path)
	if err != nil {
		t.Fatal(err)
	}
	app := sdktest.New(sdktest.Config{Gas: gas})
	sdktest.ReportGas(t, app)
	var addr sdk.Address
	near := func(what string, got, want uint64) {
		t.Helper()
		d := float64(got) - float64(want)
		if d < 0 {
			d = -d
		}
		if d > gasTolerance*float64(want) {
			t.Errorf("%s: harness %d, node %d (%.3f%% off, tolerance %.1f%%)", what, got, want, 100*d/float64(want), 100*gasTolerance)
		} else {
			t.Logf("%s: harness %d, node %d (%.4f%% off)", what, got, want, 100*d/float64(want))
		}
	}
	for _, s := range node.Steps {
		sender := app.Account(s.Sender)
		var res sdktest.Result
		var err error
		switch s.Entry {
		case "instantiate":
			addr, err = app.Instantiate(contract, sender, s.Msg, nil)
			res.Gas = app.LastGas()
		case "execute":
			res, err = app.Execute(addr, sender, s.Msg, nil)
		case "query":
			_, err = app.QueryRaw(addr, s.Msg)
			res.Gas = app.LastGas()
		}
		if (err != nil) != (s.Code != 0) {
			t.Fatalf("%s %s by %s: err %v, node code %d", s.Entry, s.Msg, s.Sender, err, s.Code)
		}
		g := app.LastGas()
		if g == nil || len(g.Calls) == 0 {
			t.Fatalf("%s %s: no gas measured", s.Entry, s.Msg)
		}
		name := fmt.Sprintf("%s %s by %s", s.Entry, s.Msg, s.Sender)
		near(name+": call", g.Calls[0].Total, s.CallGas)
		near(name+": tx", g.Tx, s.GasUsed)
		var events []sdk.Event
		for _, e := range res.Events {
			oc := e.OnChain()
			oc.Attrs[0].Value = "CONTRACT"
			events = append(events, oc)
		}
		if fmt.Sprint(events) != fmt.Sprint(s.Events) && !(len(events) == 0 && len(s.Events) == 0) {
			t.Errorf("%s: harness events %v, node %v", name, events, s.Events)
		}
	}
	if rep := app.GasReport(); len(rep.Rows) != 4 || rep.Rows[0].Handler != "execute/increment" || rep.Rows[0].Calls != 2 {
		t.Errorf("gas report:\n%s", rep)
	}
}
