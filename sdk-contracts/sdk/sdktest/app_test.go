package sdktest_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/sdktest"
)

const denom = "uTFLP"

var (
	value   = sdk.NewItem[uint64]("value")
	errBoom = errors.New("store: boom")
)

// store keeps a number; "fail" writes, emits and then returns an error;
// "panic" writes and then panics; "pay" sends some of its balance.
var store = sdk.Contract{
	Instantiate: sdk.Handler(func(*sdk.Ctx, struct{}) (any, error) { return nil, nil }),
	Execute: sdk.Handlers{
		"set": sdk.Handler(func(ctx *sdk.Ctx, m struct {
			V uint64 `json:"v"`
		}) (any, error) {
			ctx.Emit("set", "v", fmt.Sprint(m.V))
			return nil, value.Set(ctx, m.V)
		}),
		"fail": sdk.Handler(func(ctx *sdk.Ctx, _ struct{}) (any, error) {
			value.Set(ctx, 666)
			ctx.Emit("doomed")
			return nil, errBoom
		}),
		"panic": sdk.Handler(func(ctx *sdk.Ctx, _ struct{}) (any, error) {
			value.Set(ctx, 666)
			panic("boom") // a contract panic must trap and revert
		}),
		"pay": sdk.Handler(func(ctx *sdk.Ctx, m struct {
			To     sdk.Address `json:"to"`
			Amount uint64      `json:"amount"`
		}) (any, error) {
			return nil, ctx.Transfer(m.To, denom, m.Amount)
		}),
	},
	Query: sdk.Handlers{
		"get": sdk.Handler(func(ctx *sdk.Ctx, _ struct{}) (any, error) {
			v, _, err := value.Lookup(ctx)
			return v, err
		}),
		"write": sdk.Handler(func(ctx *sdk.Ctx, _ struct{}) (any, error) { return nil, value.Set(ctx, 1) }),
		"pay": sdk.Handler(func(ctx *sdk.Ctx, _ struct{}) (any, error) {
			return nil, ctx.Transfer(ctx.Self(), denom, 0)
		}),
	},
}

// proxyMsg forwards Msg to To with Funds; Fail makes the proxy fail
// afterwards, Then runs a second forward.
type proxyMsg struct {
	To    sdk.Address     `json:"to"`
	Msg   json.RawMessage `json:"msg"`
	Funds sdk.Coins       `json:"funds,omitempty"`
	Fail  bool            `json:"fail,omitempty"`
}

var proxy = sdk.Contract{
	Instantiate: sdk.Handler(func(*sdk.Ctx, struct{}) (any, error) { return nil, nil }),
	Execute: sdk.Handlers{
		"forward": sdk.Handler(func(ctx *sdk.Ctx, m proxyMsg) (any, error) {
			value.Set(ctx, 1) // the proxy's own write
			res, err := ctx.Call(m.To, m.Msg, m.Funds)
			if m.Fail {
				return nil, errors.New("proxy: failing after the call")
			}
			if err != nil {
				// Swallow the callee's error: the callee is reverted, the proxy is not.
				return map[string]string{"callee_error": err.Error(), "is_call_failed": fmt.Sprint(errors.Is(err, sdk.ErrCallFailed)), "is_boom": fmt.Sprint(errors.Is(err, errBoom))}, nil
			}
			return res, nil
		}),
		"recurse": sdk.Handler(func(ctx *sdk.Ctx, _ struct{}) (any, error) {
			return ctx.Call(ctx.Self(), `{"recurse":{}}`, nil)
		}),
	},
	Query: sdk.Handlers{
		"get": store.Query["get"],
		"ask": sdk.Handler(func(ctx *sdk.Ctx, m proxyMsg) (any, error) {
			var v uint64
			err := ctx.Query(m.To, m.Msg, &v)
			return v, err
		}),
	},
}

type world struct {
	app          *sdktest.App
	alice        sdk.Address
	store, proxy sdk.Address
}

func newWorld(t *testing.T) world {
	t.Helper()
	app := sdktest.New(sdktest.Config{})
	w := world{app: app, alice: app.Account("alice")}
	app.Mint(w.alice, sdk.NewCoin(denom, 100))
	var err error
	if w.store, err = app.Instantiate(store, w.alice, `{}`, nil); err != nil {
		t.Fatal(err)
	}
	if w.proxy, err = app.Instantiate(proxy, w.alice, `{}`, nil); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w world) value(t *testing.T, addr sdk.Address) uint64 {
	t.Helper()
	var v uint64
	if err := w.app.Query(addr, `{"get":{}}`, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func (w world) forward(msg string, funds sdk.Coins, fail bool) (sdktest.Result, error) {
	return w.app.Execute(w.proxy, w.alice, map[string]proxyMsg{"forward": {To: w.store, Msg: json.RawMessage(msg), Funds: funds, Fail: fail}}, sdk.Coins{sdk.NewCoin(denom, 10)})
}

func TestTransactions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		run        func(w world) (sdktest.Result, error)
		wantErr    error
		wantStore  uint64 // store's value afterwards
		wantAlice  uint64 // alice's balance afterwards
		wantEvents int
	}{
		{"direct write", func(w world) (sdktest.Result, error) {
			return w.app.Execute(w.store, w.alice, `{"set":{"v":7}}`, sdk.Coins{sdk.NewCoin(denom, 5)})
		}, nil, 7, 95, 1},
		{"handler error reverts writes, funds and events", func(w world) (sdktest.Result, error) {
			return w.app.Execute(w.store, w.alice, `{"fail":{}}`, sdk.Coins{sdk.NewCoin(denom, 5)})
		}, errBoom, 0, 100, 0},
		{"panic traps and reverts", func(w world) (sdktest.Result, error) {
			return w.app.Execute(w.store, w.alice, `{"panic":{}}`, sdk.Coins{sdk.NewCoin(denom, 5)})
		}, sdktest.ErrTrap, 0, 100, 0},
		{"funds above the balance", func(w world) (sdktest.Result, error) {
			return w.app.Execute(w.store, w.alice, `{"set":{"v":1}}`, sdk.Coins{sdk.NewCoin(denom, 101)})
		}, sdk.ErrInsufficientFunds, 0, 100, 0},
		{"call through a proxy", func(w world) (sdktest.Result, error) {
			return w.forward(`{"set":{"v":9}}`, sdk.Coins{sdk.NewCoin(denom, 4)}, false)
		}, nil, 9, 90, 1},
		{"failing callee is reverted, caller goes on", func(w world) (sdktest.Result, error) {
			return w.forward(`{"fail":{}}`, sdk.Coins{sdk.NewCoin(denom, 4)}, false)
		}, nil, 0, 90, 0},
		{"failing caller reverts a successful callee", func(w world) (sdktest.Result, error) {
			return w.forward(`{"set":{"v":9}}`, nil, true)
		}, sdktest.ErrContract, 0, 100, 0},
		{"callee panic traps the whole transaction", func(w world) (sdktest.Result, error) {
			return w.forward(`{"panic":{}}`, nil, false)
		}, sdktest.ErrTrap, 0, 100, 0},
		{"call depth is limited", func(w world) (sdktest.Result, error) {
			return w.app.Execute(w.proxy, w.alice, `{"recurse":{}}`, nil)
		}, sdktest.ErrTrap, 0, 100, 0},
		{"write in a query traps", func(w world) (sdktest.Result, error) {
			return sdktest.Result{}, w.app.Query(w.store, `{"write":{}}`, nil)
		}, sdktest.ErrTrap, 0, 100, 0},
		{"transfer in a query traps", func(w world) (sdktest.Result, error) {
			return sdktest.Result{}, w.app.Query(w.store, `{"pay":{}}`, nil)
		}, sdktest.ErrTrap, 0, 100, 0},
		{"no contract", func(w world) (sdktest.Result, error) {
			return w.app.Execute(w.alice, w.alice, `{"set":{}}`, nil)
		}, sdktest.ErrNoContract, 0, 100, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			res, err := tc.run(w)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			t.Logf("err = %v", err)
			if got := w.value(t, w.store); got != tc.wantStore {
				t.Errorf("store value = %d, want %d", got, tc.wantStore)
			}
			if got := w.app.Balance(w.alice, denom); got != tc.wantAlice {
				t.Errorf("alice balance = %d, want %d", got, tc.wantAlice)
			}
			if len(res.Events) != tc.wantEvents || len(w.app.Events()) != tc.wantEvents {
				t.Errorf("events = %v / %v, want %d", res.Events, w.app.Events(), tc.wantEvents)
			}
		})
	}
}

func TestCallerSeesOnlyErrorText(t *testing.T) {
	w := newWorld(t)
	res, err := w.forward(`{"fail":{}}`, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]string
	if err := json.Unmarshal(res.Data, &out); err != nil {
		t.Fatal(err)
	}
	if out["is_call_failed"] != "true" || out["is_boom"] != "false" || !strings.Contains(out["callee_error"], errBoom.Error()) {
		t.Fatalf("proxy saw %v", out)
	}
	if got := w.value(t, w.proxy); got != 1 {
		t.Fatalf("proxy's own write lost: %d", got)
	}
}

func TestCrossContractQueryAndSenderCaller(t *testing.T) {
	w := newWorld(t)
	if _, err := w.app.Execute(w.store, w.alice, `{"set":{"v":42}}`, nil); err != nil {
		t.Fatal(err)
	}
	var v uint64
	if err := w.app.Query(w.proxy, map[string]proxyMsg{"ask": {To: w.store, Msg: json.RawMessage(`{"get":{}}`)}}, &v); err != nil || v != 42 {
		t.Fatalf("query through proxy = %d, %v", v, err)
	}

	var seen [2]sdk.Address
	who := sdk.Contract{
		Instantiate: sdk.Handler(func(*sdk.Ctx, struct{}) (any, error) { return nil, nil }),
		Execute: sdk.Handlers{"who": sdk.Handler(func(ctx *sdk.Ctx, _ struct{}) (any, error) {
			seen = [2]sdk.Address{ctx.Sender(), ctx.Caller()}
			return nil, nil
		})},
	}
	whoAddr, err := w.app.Instantiate(who, w.alice, `{}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.app.Execute(w.proxy, w.alice, map[string]proxyMsg{"forward": {To: whoAddr, Msg: json.RawMessage(`{"who":{}}`)}}, nil); err != nil {
		t.Fatal(err)
	}
	if seen != [2]sdk.Address{w.alice, w.proxy} {
		t.Fatalf("sender, caller = %v, want alice, proxy", seen)
	}
}

func TestContractTransfers(t *testing.T) {
	w := newWorld(t)
	bob := w.app.Account("bob")
	if _, err := w.app.Execute(w.store, w.alice, `{"set":{"v":1}}`, sdk.Coins{sdk.NewCoin(denom, 30)}); err != nil {
		t.Fatal(err)
	}
	pay := func(n uint64) error {
		_, err := w.app.Execute(w.store, w.alice, fmt.Sprintf(`{"pay":{"to":%q,"amount":%d}}`, bob, n), nil)
		return err
	}
	if err := pay(31); !errors.Is(err, sdk.ErrInsufficientFunds) {
		t.Fatalf("overdraft: %v", err)
	}
	if err := pay(30); err != nil {
		t.Fatal(err)
	}
	if w.app.Balance(bob, denom) != 30 || w.app.Balance(w.store, denom) != 0 {
		t.Fatalf("bob %d, store %d", w.app.Balance(bob, denom), w.app.Balance(w.store, denom))
	}
}

func TestDeterministicAddresses(t *testing.T) {
	a, b := newWorld(t), newWorld(t)
	if a.store != b.store || a.proxy != b.proxy || a.store == a.proxy {
		t.Fatalf("addresses differ between runs or collide: %v %v %v %v", a.store, b.store, a.proxy, b.proxy)
	}
}

func TestMLDSA(t *testing.T) {
	verify := sdk.Contract{Instantiate: sdk.Handler(func(ctx *sdk.Ctx, _ struct{}) (any, error) {
		return ctx.VerifyMLDSA([]byte("pk"), []byte("msg"), []byte("sig"), nil), nil
	})}
	app := sdktest.New(sdktest.Config{})
	if _, err := app.Instantiate(verify, app.Account("a"), `{}`, nil); !errors.Is(err, sdktest.ErrTrap) {
		t.Fatalf("no verifier: err = %v, want ErrTrap", err)
	}
	app = sdktest.New(sdktest.Config{VerifyMLDSA: func(pub, msg, sig, _ []byte) bool { return string(sig) == "sig" }})
	if _, err := app.Instantiate(verify, app.Account("a"), `{}`, nil); err != nil {
		t.Fatal(err)
	}
}

func TestLimits(t *testing.T) {
	big := sdk.Contract{Instantiate: sdk.Handler(func(ctx *sdk.Ctx, m struct {
		Key, Value, Event int
	}) (any, error) {
		if m.Event > 0 {
			ctx.Emit("e", "k", strings.Repeat("x", m.Event))
			return nil, nil
		}
		return nil, sdk.NewMap[string, string]("m").Set(ctx, strings.Repeat("k", m.Key), strings.Repeat("v", m.Value))
	})}
	app := sdktest.New(sdktest.Config{})
	for _, tc := range []struct {
		msg  string
		trap bool
	}{
		{`{"Key":200,"Value":10}`, false},
		{`{"Key":300,"Value":10}`, true},
		{`{"Key":1,"Value":131072}`, true},
		{`{"Event":9000}`, true},
	} {
		_, err := app.Instantiate(big, app.Account("a"), tc.msg, nil)
		if tc.trap != errors.Is(err, sdktest.ErrTrap) {
			t.Errorf("%s: err = %v, want trap %v", tc.msg, err, tc.trap)
		}
	}
}
