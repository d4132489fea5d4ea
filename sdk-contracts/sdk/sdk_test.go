package sdk_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/sdktest"
)

// run instantiates a contract whose instantiate handler is f and returns f's
// error: a way to exercise the SDK inside a real call.
func run(t *testing.T, app *sdktest.App, f func(ctx *sdk.Ctx) error) {
	t.Helper()
	c := sdk.Contract{Instantiate: func(ctx *sdk.Ctx, _ json.RawMessage) (any, error) { return nil, f(ctx) }}
	if _, err := app.Instantiate(c, app.Account("tester"), `{}`, nil); err != nil {
		t.Fatal(err)
	}
}

func TestMapRange(t *testing.T) {
	m := sdk.NewMap[uint64, string]("m")
	other := sdk.NewMap[uint64, string]("m2") // a namespace that prefixes ours must not leak in
	keys := func(ctx *sdk.Ctx, b sdk.Bounds[uint64]) []uint64 {
		var ks []uint64
		for k, v := range m.Range(ctx, b) {
			if v != fmt.Sprint("v", k) {
				t.Fatalf("value of %d = %q", k, v)
			}
			ks = append(ks, k)
		}
		return ks
	}
	run(t, sdktest.New(sdktest.Config{}), func(ctx *sdk.Ctx) error {
		for _, k := range []uint64{5, 1, 300, 2, 256, 1 << 40} {
			if err := m.Set(ctx, k, fmt.Sprint("v", k)); err != nil {
				return err
			}
			if err := other.Set(ctx, k, "x"); err != nil {
				return err
			}
		}
		for _, tc := range []struct {
			name string
			b    sdk.Bounds[uint64]
			want []uint64
		}{
			{"all", sdk.Bounds[uint64]{}, []uint64{1, 2, 5, 256, 300, 1 << 40}},
			{"reverse", sdk.Bounds[uint64]{Reverse: true}, []uint64{1 << 40, 300, 256, 5, 2, 1}},
			{"limit", sdk.Bounds[uint64]{Limit: 2}, []uint64{1, 2}},
			{"inclusive", sdk.Bounds[uint64]{Start: sdk.Inclusive[uint64](2), End: sdk.Inclusive[uint64](256)}, []uint64{2, 5, 256}},
			{"exclusive", sdk.Bounds[uint64]{Start: sdk.Exclusive[uint64](2), End: sdk.Exclusive[uint64](256)}, []uint64{5}},
			{"reverse bounded", sdk.Bounds[uint64]{Start: sdk.Exclusive[uint64](1), End: sdk.Inclusive[uint64](300), Reverse: true, Limit: 3}, []uint64{300, 256, 5}},
			{"empty", sdk.Bounds[uint64]{Start: sdk.Inclusive[uint64](6), End: sdk.Exclusive[uint64](7)}, nil},
		} {
			if got := keys(ctx, tc.b); !slices.Equal(got, tc.want) {
				t.Errorf("%s: keys = %v, want %v", tc.name, got, tc.want)
			}
		}
		// Breaking out of a range closes its iterator; ranges nest.
		for k := range m.Range(ctx, sdk.Bounds[uint64]{}) {
			if n := len(keys(ctx, sdk.Bounds[uint64]{Start: sdk.Exclusive(k)})); n != 5 {
				t.Errorf("nested range after %d saw %d keys", k, n)
			}
			break
		}
		return nil
	})
}

func TestStringAndAddressKeys(t *testing.T) {
	app := sdktest.New(sdktest.Config{})
	names := sdk.NewMap[string, int]("names")
	owners := sdk.NewMap[sdk.Address, bool]("owners")
	run(t, app, func(ctx *sdk.Ctx) error {
		for i, s := range []string{"b", "a", "ab", "", "c"} {
			names.Set(ctx, s, i)
		}
		var got []string
		for k := range names.Range(ctx, sdk.Bounds[string]{Start: sdk.Exclusive("a")}) {
			got = append(got, k)
		}
		if want := []string{"ab", "b", "c"}; !slices.Equal(got, want) {
			t.Errorf("string keys after a = %q, want %q", got, want)
		}
		a, b := app.Account("a"), app.Account("b")
		owners.Set(ctx, a, true)
		owners.Set(ctx, b, true)
		var addrs []sdk.Address
		for k := range owners.Range(ctx, sdk.Bounds[sdk.Address]{}) {
			addrs = append(addrs, k)
		}
		if len(addrs) != 2 || strings.Compare(string(addrs[0][:]), string(addrs[1][:])) >= 0 {
			t.Errorf("address keys out of order: %v", addrs)
		}
		return nil
	})
}

func TestItem(t *testing.T) {
	type config struct {
		Owner sdk.Address `json:"owner"`
		Limit int         `json:"limit"`
	}
	item := sdk.NewItem[config]("config")
	app := sdktest.New(sdktest.Config{})
	run(t, app, func(ctx *sdk.Ctx) error {
		if _, err := item.Get(ctx); !errors.Is(err, sdk.ErrNotFound) {
			t.Errorf("Get of an empty item: err = %v", err)
		}
		if _, ok, err := item.Lookup(ctx); ok || err != nil {
			t.Errorf("Lookup of an empty item = %v, %v", ok, err)
		}
		want := config{Owner: ctx.Sender(), Limit: 3}
		if err := item.Set(ctx, want); err != nil {
			return err
		}
		got, err := item.Update(ctx, func(c config, ok bool) (config, error) {
			if !ok {
				t.Error("Update saw no value")
			}
			c.Limit++
			return c, nil
		})
		if err != nil || got.Limit != 4 || got.Owner != want.Owner {
			t.Errorf("Update = %+v, %v", got, err)
		}
		boom := errors.New("boom")
		if _, err := item.Update(ctx, func(c config, _ bool) (config, error) { return config{}, boom }); !errors.Is(err, boom) {
			t.Errorf("Update error = %v", err)
		}
		if got, _ := item.Get(ctx); got.Limit != 4 {
			t.Errorf("failed Update changed the item: %+v", got)
		}
		item.Delete(ctx)
		if item.Has(ctx) {
			t.Error("item still there after Delete")
		}
		return nil
	})
}

func TestAddress(t *testing.T) {
	app := sdktest.New(sdktest.Config{})
	a := app.Account("alice")
	s := a.String()
	if !strings.HasPrefix(s, "sos1") || len(s) != 62 {
		t.Fatalf("String = %q", s)
	}
	for _, tc := range []struct {
		in   string
		want error
	}{
		{s, nil},
		{strings.ToUpper(s), nil},
		{s[:len(s)-1] + "q", sdk.ErrInvalidAddress},               // checksum
		{"cosmos1" + s[4:], sdk.ErrInvalidAddress},                // prefix
		{"sos1qqqqqqqqqqqqqqqqqqqq3dpgfr", sdk.ErrInvalidAddress}, // too short
	} {
		got, err := sdk.ParseAddress(tc.in)
		if !errors.Is(err, tc.want) || (err == nil && got != a) {
			t.Errorf("ParseAddress(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	b, _ := json.Marshal(struct{ A sdk.Address }{a})
	if string(b) != `{"A":"`+s+`"}` {
		t.Fatalf("JSON = %s", b)
	}
}

func TestDispatchErrors(t *testing.T) {
	app := sdktest.New(sdktest.Config{})
	c := sdk.Contract{
		Instantiate: func(*sdk.Ctx, json.RawMessage) (any, error) { return nil, nil },
		Execute: sdk.Handlers{
			"ping": sdk.Handler(func(_ *sdk.Ctx, m struct {
				N int `json:"n"`
			}) (any, error) {
				return map[string]int{"pong": m.N}, nil
			}),
			"raw": func(*sdk.Ctx, json.RawMessage) (any, error) { return []byte("not json"), nil },
			"bad": func(*sdk.Ctx, json.RawMessage) (any, error) { return make(chan int), nil },
		},
	}
	addr, err := app.Instantiate(c, app.Account("a"), `{}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		msg     string
		want    string
		wantErr error
	}{
		{`{"ping":{"n":3}}`, `{"pong":3}`, nil},
		{`{"ping":null}`, `{"pong":0}`, nil},
		{`{"raw":{}}`, `not json`, nil},
		{`{"ping":{"n":3}} {}`, ``, sdk.ErrInvalidMessage},
		{`{"ping":{"n":"3"}}`, ``, sdk.ErrInvalidMessage},
		{`{"ping":{"m":3}}`, ``, sdk.ErrInvalidMessage},
		{`{}`, ``, sdk.ErrInvalidMessage},
		{`[]`, ``, sdk.ErrInvalidMessage},
		{`{"pong":{}}`, ``, sdk.ErrUnknownMessage},
		{`{"bad":{}}`, ``, nil}, // the result cannot be encoded: an error, not a trap
	} {
		res, err := app.Execute(addr, app.Account("a"), tc.msg, nil)
		switch {
		case tc.msg == `{"bad":{}}`:
			if !errors.Is(err, sdktest.ErrContract) || !strings.Contains(err.Error(), "encode result") {
				t.Errorf("%s: err = %v", tc.msg, err)
			}
		case tc.wantErr != nil:
			if !errors.Is(err, tc.wantErr) {
				t.Errorf("%s: err = %v, want %v", tc.msg, err, tc.wantErr)
			}
		case err != nil || string(res.Data) != tc.want:
			t.Errorf("%s: %s, %v; want %s", tc.msg, res.Data, err, tc.want)
		}
	}
	if err := app.Query(addr, `{"x":{}}`, nil); !errors.Is(err, sdk.ErrNoEntryPoint) {
		t.Errorf("query of a contract without queries: err = %v", err)
	}
}

func TestCtx(t *testing.T) {
	app := sdktest.New(sdktest.Config{ChainID: "sos-ctx", Height: 77})
	alice := app.Account("alice")
	app.Mint(alice, sdk.NewCoin("uTFLP", 50))
	c := sdk.Contract{Instantiate: func(ctx *sdk.Ctx, _ json.RawMessage) (any, error) {
		if ctx.ChainID() != "sos-ctx" || ctx.BlockHeight() != 77 || !ctx.BlockTime().Equal(app.Time()) {
			t.Errorf("block = %s %d %v", ctx.ChainID(), ctx.BlockHeight(), ctx.BlockTime())
		}
		if ctx.Sender() != alice || ctx.Caller() != alice || ctx.Self().IsZero() || ctx.Entry() != sdk.EntryInstantiate {
			t.Errorf("addresses: sender %v caller %v self %v", ctx.Sender(), ctx.Caller(), ctx.Self())
		}
		if f := ctx.Funds(); f.AmountOf("uTFLP") != 20 || f.String() != "20uTFLP" {
			t.Errorf("funds = %v", f)
		}
		if b := ctx.Balance(ctx.Self(), "uTFLP"); b != 20 {
			t.Errorf("own balance = %d", b)
		}
		if err := ctx.Transfer(alice, "uTFLP", 21); !errors.Is(err, sdk.ErrInsufficientFunds) {
			t.Errorf("overdraft: %v", err)
		}
		if err := ctx.Transfer(alice, "uNOPE", 1); !errors.Is(err, sdk.ErrUnknownDenom) {
			t.Errorf("unknown denom: %v", err)
		}
		if d := ctx.Sha256([]byte("abc")); fmt.Sprintf("%x", d[:4]) != "ba7816bf" {
			t.Errorf("sha256 = %x", d)
		}
		if d := ctx.Blake3([]byte("abc")); fmt.Sprintf("%x", d[:4]) != "6437b3ac" {
			t.Errorf("blake3 = %x", d)
		}
		ctx.Logf("paid %d", 5)
		return nil, ctx.Transfer(alice, "uTFLP", 5)
	}}
	if _, err := app.Instantiate(c, alice, `{}`, sdk.Coins{sdk.NewCoin("uTFLP", 20)}); err != nil {
		t.Fatal(err)
	}
	if got := app.Balance(alice, "uTFLP"); got != 35 {
		t.Fatalf("alice has %d, want 35", got)
	}
	if log := app.Log(); len(log) != 1 || log[0] != "paid 5" {
		t.Fatalf("log = %q", log)
	}
}
