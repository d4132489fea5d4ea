package sdktest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/sdktest"
)

var blob = sdk.NewItem[string]("blob")

// big stores a value larger than the SDK's 1 KiB read buffer and reads it
// back: the Wasm SDK asks storage_get twice then, and the node charges both.
var big = sdk.Contract{
	Instantiate: sdk.Handler(func(ctx *sdk.Ctx, _ struct{}) (any, error) {
		return nil, blob.Set(ctx, strings.Repeat("x", 2000))
	}),
	Query: sdk.Handlers{
		"get": sdk.Handler(func(ctx *sdk.Ctx, _ struct{}) (any, error) {
			v, err := blob.Get(ctx)
			return len(v), err
		}),
	},
}

func TestGasMetering(t *testing.T) {
	const load = 1_000_000
	tb := sdktest.ChainGasTable()
	app := sdktest.New(sdktest.Config{Gas: &sdktest.GasConfig{LoadGas: load}})
	alice := app.Account("alice")
	s, err := app.Instantiate(store, alice, `{}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := app.Instantiate(proxy, alice, `{}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	app.SetLoadGas(s, 2*load)
	msg := fmt.Sprintf(`{"forward":{"to":%q,"msg":{"set":{"v":3}}}}`, s)
	res, err := app.Execute(p, alice, msg, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := res.Gas
	if g == nil || len(g.Calls) != 2 || g.Calls[0].Handler != "forward" || g.Calls[1].Handler != "set" || g.Calls[1].Depth != 1 {
		t.Fatalf("calls: %+v", g)
	}
	outer, inner := g.Calls[0], g.Calls[1]
	if inner.Load != 2*load || outer.Load != load {
		t.Fatalf("load gas %d / %d", outer.Load, inner.Load)
	}
	for _, c := range g.Calls {
		sum := c.CallBase + c.Load
		for _, v := range c.Host {
			sum += v
		}
		if sum != c.Total {
			t.Fatalf("%s: parts %d, total %d", c.Handler, sum, c.Total)
		}
	}
	// The call host function costs its base, the bytes sent and the callee.
	inMsg := `{"set":{"v":3}}`
	if want := tb.HostBase + tb.Call + uint64(len(inMsg))*tb.PerByte + inner.Total; outer.Host["call"] != want {
		t.Fatalf("call charged %d, want %d", outer.Host["call"], want)
	}
	// The stored value: key "value" (5 bytes) and "3" (1 byte).
	if want := tb.HostBase + 6*tb.PerByte + tb.StorageSet + 6*tb.StorageSetPerByte; inner.Host["storage_set"] != want {
		t.Fatalf("storage_set charged %d, want %d", inner.Host["storage_set"], want)
	}
	if want := tb.TxBase + tb.SigVerify + tb.TxPerByte*(tb.TxOverhead+uint64(len(msg))) + outer.Total; g.Tx != want {
		t.Fatalf("tx gas %d, want %d", g.Tx, want)
	}

	// A value over the SDK's buffer is read twice (2,002 bytes: the JSON string).
	b, err := app.Instantiate(big, alice, `{}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := app.QueryRaw(b, `{"get":{}}`); err != nil {
		t.Fatal(err)
	}
	get := app.LastGas().Calls[0].Host["storage_get"]
	if want := 2*(tb.HostBase+tb.StorageGet+4*tb.PerByte) + 2002*tb.PerByte; get != want {
		t.Fatalf("storage_get of 2000 bytes charged %d, want %d", get, want)
	}

	rep := app.GasReport()
	if len(rep.Rows) != 4 || !strings.Contains(rep.String(), "execute/forward") || rep.Rows[0].Calls != 1 {
		t.Fatalf("report:\n%s", rep)
	}
}

func TestGasOffByDefault(t *testing.T) {
	app := sdktest.New(sdktest.Config{})
	a, err := app.Instantiate(store, app.Account("alice"), `{}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := app.Execute(a, app.Account("alice"), `{"set":{"v":1}}`, nil)
	if err != nil || res.Gas != nil || app.LastGas() != nil || len(app.GasReport().Rows) != 0 {
		t.Fatalf("gas measured without Config.Gas: %+v %v", res.Gas, err)
	}
	// Events as the chain records them.
	oc := res.Events[0].OnChain()
	if oc.Type != "wasm-set" || oc.Attrs[0] != (sdk.Attr{Key: "contract", Value: a.String()}) || oc.Attrs[1] != (sdk.Attr{Key: "v", Value: "1"}) {
		t.Fatalf("on chain: %+v", oc)
	}
}
