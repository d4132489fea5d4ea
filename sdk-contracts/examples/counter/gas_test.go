package main

import (
	"flag"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/sdk/sdktest"
)

var wasmFile = flag.String("wasm", "counter.wasm", "the compiled counter (make contracts) for the gas report")

// TestGasReport makes the calls of a typical session. With SOS_GAS_REPORT=1
// (and sos on PATH or in SOS_BIN) it prints the node's gas for each of them
// and per handler, replayed by `sos contract gas counter.wasm --calls`, and
// fails if a call's outcome on the node differs from the harness's:
//
//	make contracts && SOS_GAS_REPORT=1 go test -v -run TestGasReport ./sdk-contracts/examples/counter
func TestGasReport(t *testing.T) {
	app := sdktest.New(sdktest.Config{})
	sdktest.ReportGas(t, app, *wasmFile)
	alice, bob := app.Account("alice"), app.Account("bob")
	addr, err := app.Instantiate(contract, alice, InstantiateMsg{Count: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct {
		sender string
		msg    string
		fails  bool
	}{
		{"alice", `{"increment":{}}`, false},
		{"bob", `{"increment":{}}`, false},
		{"alice", `{"reset":{"count":5}}`, false},
		{"bob", `{"reset":{"count":0}}`, true}, // only the owner resets
		{"alice", `{"increment":{}}`, false},
	} {
		app.NextBlock()
		if _, err := app.Execute(addr, app.Account(s.sender), s.msg, nil); (err != nil) != s.fails {
			t.Fatalf("%s by %s: %v", s.msg, s.sender, err)
		}
	}
	var r CountResponse
	if err := app.Query(addr, `{"get":{}}`, &r); err != nil || r.Count != 6 {
		t.Fatalf("count %d, %v", r.Count, err)
	}
	if _, err := app.Migrate(addr, bob, contract, `{}`); err == nil {
		t.Fatal("bob migrated alice's counter")
	}
	if _, err := app.Migrate(addr, alice, contract, `{}`); err != nil {
		t.Fatal(err)
	}
	if n := len(app.Calls()); n != 9 {
		t.Fatalf("%d calls recorded", n)
	}
}
