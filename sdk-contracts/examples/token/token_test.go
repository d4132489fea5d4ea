package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/sdktest"
)

type env struct {
	app                        *sdktest.App
	token                      sdk.Address
	alice, bob, carol, minterA sdk.Address
}

func setup(t *testing.T) env {
	t.Helper()
	app := sdktest.New(sdktest.Config{})
	e := env{app: app, alice: app.Account("alice"), bob: app.Account("bob"), carol: app.Account("carol"), minterA: app.Account("minter")}
	var err error
	e.token, err = app.Instantiate(contract, e.alice, InstantiateMsg{
		Name: "Flop", Symbol: "FLOP", Decimals: 6,
		InitialBalances: []Balance{{e.alice, 100}, {e.bob, 50}},
		Mint:            &Minter{Minter: e.minterA, Cap: 1000},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e env) balance(t *testing.T, who sdk.Address) uint64 {
	t.Helper()
	var r BalanceResponse
	if err := e.app.Query(e.token, map[string]BalanceQuery{"balance": {who}}, &r); err != nil {
		t.Fatal(err)
	}
	return r.Balance
}

func (e env) supply(t *testing.T) uint64 {
	t.Helper()
	var ti TokenInfo
	if err := e.app.Query(e.token, `{"token_info":{}}`, &ti); err != nil {
		t.Fatal(err)
	}
	return ti.TotalSupply
}

func TestToken(t *testing.T) {
	type call struct {
		from    func(env) sdk.Address
		msg     func(env) string
		wantErr error
	}
	alice := func(e env) sdk.Address { return e.alice }
	bob := func(e env) sdk.Address { return e.bob }
	carol := func(e env) sdk.Address { return e.carol }
	minterF := func(e env) sdk.Address { return e.minterA }
	for _, tc := range []struct {
		name       string
		calls      []call
		wantAlice  uint64
		wantBob    uint64
		wantCarol  uint64
		wantSupply uint64
	}{
		{"initial", nil, 100, 50, 0, 150},
		{"transfer", []call{{alice, func(e env) string {
			return fmt.Sprintf(`{"transfer":{"recipient":%q,"amount":"30"}}`, e.carol)
		}, nil}}, 70, 50, 30, 150},
		{"overspend", []call{{bob, func(e env) string {
			return fmt.Sprintf(`{"transfer":{"recipient":%q,"amount":"51"}}`, e.carol)
		}, ErrInsufficientBalance}}, 100, 50, 0, 150},
		{"zero transfer", []call{{bob, func(e env) string {
			return fmt.Sprintf(`{"transfer":{"recipient":%q,"amount":"0"}}`, e.carol)
		}, ErrInvalid}}, 100, 50, 0, 150},
		{"amount must be a string", []call{{bob, func(e env) string {
			return fmt.Sprintf(`{"transfer":{"recipient":%q,"amount":5}}`, e.carol)
		}, sdk.ErrInvalidMessage}}, 100, 50, 0, 150},
		{"bad address", []call{{bob, func(e env) string {
			return `{"transfer":{"recipient":"sos1nope","amount":"5"}}`
		}, sdk.ErrInvalidAddress}}, 100, 50, 0, 150},
		{"burn", []call{{alice, func(env) string { return `{"burn":{"amount":"40"}}` }, nil}}, 60, 50, 0, 110},
		{"burn too much", []call{{bob, func(env) string { return `{"burn":{"amount":"51"}}` }, ErrInsufficientBalance}}, 100, 50, 0, 150},
		{"mint by minter", []call{{minterF, func(e env) string {
			return fmt.Sprintf(`{"mint":{"recipient":%q,"amount":"850"}}`, e.carol)
		}, nil}}, 100, 50, 850, 1000},
		{"mint above cap", []call{{minterF, func(e env) string {
			return fmt.Sprintf(`{"mint":{"recipient":%q,"amount":"851"}}`, e.carol)
		}, ErrCapExceeded}}, 100, 50, 0, 150},
		{"mint by stranger", []call{{alice, func(e env) string {
			return fmt.Sprintf(`{"mint":{"recipient":%q,"amount":"1"}}`, e.alice)
		}, ErrUnauthorized}}, 100, 50, 0, 150},
		{"allowance and transfer_from", []call{
			{alice, func(e env) string { return fmt.Sprintf(`{"increase_allowance":{"spender":%q,"amount":"20"}}`, e.bob) }, nil},
			{bob, func(e env) string {
				return fmt.Sprintf(`{"transfer_from":{"owner":%q,"recipient":%q,"amount":"15"}}`, e.alice, e.carol)
			}, nil},
			{bob, func(e env) string {
				return fmt.Sprintf(`{"transfer_from":{"owner":%q,"recipient":%q,"amount":"6"}}`, e.alice, e.carol)
			}, ErrInsufficientAllowance},
		}, 85, 50, 15, 150},
		{"transfer_from without allowance", []call{{carol, func(e env) string {
			return fmt.Sprintf(`{"transfer_from":{"owner":%q,"recipient":%q,"amount":"1"}}`, e.alice, e.carol)
		}, ErrInsufficientAllowance}}, 100, 50, 0, 150},
		{"decreased allowance", []call{
			{alice, func(e env) string { return fmt.Sprintf(`{"increase_allowance":{"spender":%q,"amount":"20"}}`, e.bob) }, nil},
			{alice, func(e env) string { return fmt.Sprintf(`{"decrease_allowance":{"spender":%q,"amount":"50"}}`, e.bob) }, nil},
			{bob, func(e env) string {
				return fmt.Sprintf(`{"transfer_from":{"owner":%q,"recipient":%q,"amount":"1"}}`, e.alice, e.bob)
			}, ErrInsufficientAllowance},
		}, 100, 50, 0, 150},
		{"allowance beyond balance", []call{
			{bob, func(e env) string {
				return fmt.Sprintf(`{"increase_allowance":{"spender":%q,"amount":"500"}}`, e.carol)
			}, nil},
			{carol, func(e env) string {
				return fmt.Sprintf(`{"transfer_from":{"owner":%q,"recipient":%q,"amount":"60"}}`, e.bob, e.carol)
			}, ErrInsufficientBalance},
		}, 100, 50, 0, 150},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			for i, c := range tc.calls {
				_, err := e.app.Execute(e.token, c.from(e), c.msg(e), nil)
				if c.wantErr == nil && err != nil {
					t.Fatalf("call %d: %v", i, err)
				}
				if c.wantErr != nil && !errors.Is(err, c.wantErr) {
					t.Fatalf("call %d: err = %v, want %v", i, err, c.wantErr)
				}
			}
			got := [4]uint64{e.balance(t, e.alice), e.balance(t, e.bob), e.balance(t, e.carol), e.supply(t)}
			if want := [4]uint64{tc.wantAlice, tc.wantBob, tc.wantCarol, tc.wantSupply}; got != want {
				t.Fatalf("alice, bob, carol, supply = %v, want %v", got, want)
			}
		})
	}
}

func TestAllowanceQueryAndEvents(t *testing.T) {
	e := setup(t)
	res, err := e.app.Execute(e.token, e.alice, fmt.Sprintf(`{"increase_allowance":{"spender":%q,"amount":"7"}}`, e.bob), nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Data) != `{"allowance":"7"}` {
		t.Fatalf("result %s", res.Data)
	}
	var a AllowanceResponse
	if err := e.app.Query(e.token, map[string]AllowanceQuery{"allowance": {e.alice, e.bob}}, &a); err != nil || a.Allowance != 7 {
		t.Fatalf("allowance = %d, %v", a.Allowance, err)
	}
	res, err = e.app.Execute(e.token, e.alice, fmt.Sprintf(`{"transfer":{"recipient":%q,"amount":"1"}}`, e.bob), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := sdk.Event{Type: "transfer", Attrs: []sdk.Attr{{Key: "from", Value: e.alice.String()}, {Key: "to", Value: e.bob.String()}, {Key: "amount", Value: "1"}}}
	if len(res.Events) != 1 || fmt.Sprint(res.Events[0].Event) != fmt.Sprint(want) {
		t.Fatalf("events = %+v", res.Events)
	}
}

func TestInstantiateValidation(t *testing.T) {
	app := sdktest.New(sdktest.Config{})
	alice := app.Account("alice")
	for _, tc := range []struct {
		name string
		msg  InstantiateMsg
		want error
	}{
		{"short name", InstantiateMsg{Name: "F", Symbol: "FLOP"}, ErrInvalid},
		{"long symbol", InstantiateMsg{Name: "Flop", Symbol: "FLOPFLOPFLOPF"}, ErrInvalid},
		{"too many decimals", InstantiateMsg{Name: "Flop", Symbol: "FLOP", Decimals: 19}, ErrInvalid},
		{"over cap", InstantiateMsg{Name: "Flop", Symbol: "FLOP", InitialBalances: []Balance{{alice, 11}}, Mint: &Minter{Minter: alice, Cap: 10}}, ErrCapExceeded},
		{"overflow", InstantiateMsg{Name: "Flop", Symbol: "FLOP", InitialBalances: []Balance{{alice, 1 << 63}, {alice, 1 << 63}}}, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := app.Instantiate(contract, alice, tc.msg, nil); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}
