package sdktest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/sdktest"
)

// TestCallsRecorded: every top-level call is recorded for the gas replay
// with what a node needs to run it again (entry, handler, sender, the
// instance, the code in order of first use, message, funds, block), nested
// calls are not, and a failed call is marked failed.
func TestCallsRecorded(t *testing.T) {
	app := sdktest.New(sdktest.Config{})
	alice := app.Account("alice")
	app.Mint(alice, sdk.NewCoin(denom, 10))
	s, err := app.Instantiate(store, alice, `{}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := app.Instantiate(proxy, alice, `{}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := app.Instantiate(store, alice, `{}`, nil) // the same code again
	if err != nil {
		t.Fatal(err)
	}
	app.NextBlock()
	fwd := fmt.Sprintf(`{"forward":{"to":%q,"msg":{"set":{"v":3}}}}`, s)
	if _, err := app.Execute(p, alice, fwd, sdk.Coins{sdk.NewCoin(denom, 2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := app.Execute(s2, alice, `{"fail":{}}`, nil); !errors.Is(err, sdktest.ErrContract) {
		t.Fatal(err)
	}
	if err := app.Query(s, `{"get":{}}`, nil); err != nil {
		t.Fatal(err)
	}
	calls := app.Calls()
	want := []struct {
		entry, handler, contract string
		code                     int
		failed                   bool
	}{
		{"instantiate", "instantiate", s.String(), 0, false},
		{"instantiate", "instantiate", p.String(), 1, false},
		{"instantiate", "instantiate", s2.String(), 0, false},
		{"execute", "forward", p.String(), 0, false},
		{"execute", "fail", s2.String(), 0, true},
		{"query", "get", s.String(), 0, false},
	}
	if len(calls) != len(want) || app.Codes() != 2 {
		t.Fatalf("%d calls, %d codes: %+v", len(calls), app.Codes(), calls)
	}
	for i, w := range want {
		c := calls[i]
		if c.Entry != w.entry || c.Handler != w.handler || c.Contract != w.contract || c.Code != w.code || c.Failed != w.failed {
			t.Errorf("call %d: %+v, want %+v", i, c, w)
		}
	}
	if c := calls[3]; c.Sender != alice.String() || c.Msg != fwd || len(c.Funds) != 1 || c.Funds[0].Amount != 2 || c.Height != 2 || c.TimeMs != app.Time().UnixMilli() {
		t.Errorf("execute recorded as %+v", c)
	}
	if calls[5].Sender != "" {
		t.Errorf("a query has no sender: %+v", calls[5])
	}

	// The file `sos contract gas --calls` reads.
	path := filepath.Join(t.TempDir(), "calls.json")
	if err := app.WriteCalls(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f sdktest.CallsFile
	if err := json.Unmarshal(raw, &f); err != nil || f.Version != sdktest.CallsVersion || f.ChainID != "sos-test" || len(f.Calls) != len(calls) {
		t.Fatalf("calls file: %+v %v", f, err)
	}
}

// TestNodeGasNeedsSOS: the replay needs a sos binary and one module per
// code; without them it says so.
func TestNodeGasNeedsSOS(t *testing.T) {
	t.Setenv(sdktest.SOSBinEnv, filepath.Join(t.TempDir(), "no-sos"))
	if _, err := sdktest.FindSOS(); !errors.Is(err, sdktest.ErrNoSOS) {
		t.Fatalf("FindSOS with a missing SOS_BIN: %v", err)
	}
	app := sdktest.New(sdktest.Config{})
	if _, err := app.Instantiate(store, app.Account("alice"), `{}`, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := app.NodeGas(context.Background(), "sos"); err == nil {
		t.Fatal("NodeGas without the module of its one code succeeded")
	}
}

func TestEventOnChain(t *testing.T) {
	app := sdktest.New(sdktest.Config{})
	a, err := app.Instantiate(store, app.Account("alice"), `{}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := app.Execute(a, app.Account("alice"), `{"set":{"v":1}}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	oc := res.Events[0].OnChain()
	if oc.Type != "wasm-set" || oc.Attrs[0] != (sdk.Attr{Key: "contract", Value: a.String()}) || oc.Attrs[1] != (sdk.Attr{Key: "v", Value: "1"}) {
		t.Fatalf("on chain: %+v", oc)
	}
}
