package sdk_test

import (
	"errors"
	"fmt"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/sdktest"
)

// A guestbook: anyone signs once, the owner reads the entries in pages.
var (
	entries = sdk.NewMap[sdk.Address, string]("entries")
	total   = sdk.NewItem[uint64]("total")
)

type (
	SignMsg struct {
		Text string `json:"text"`
	}
	ListMsg struct {
		Limit int `json:"limit"`
	}
)

var errAlreadySigned = errors.New("guestbook: already signed")

var guestbook = sdk.Contract{
	Instantiate: sdk.Handler(func(ctx *sdk.Ctx, _ struct{}) (any, error) {
		return nil, total.Set(ctx, 0)
	}),
	Execute: sdk.Handlers{
		"sign": sdk.Handler(func(ctx *sdk.Ctx, m SignMsg) (any, error) {
			if entries.Has(ctx, ctx.Caller()) {
				return nil, errAlreadySigned
			}
			if err := entries.Set(ctx, ctx.Caller(), m.Text); err != nil {
				return nil, err
			}
			ctx.Emit("signed", "by", ctx.Caller().String())
			return total.Update(ctx, func(n uint64, _ bool) (uint64, error) { return n + 1, nil })
		}),
	},
	Query: sdk.Handlers{
		"list": sdk.Handler(func(ctx *sdk.Ctx, m ListMsg) (any, error) {
			var texts []string
			for _, text := range entries.Range(ctx, sdk.Bounds[sdk.Address]{Limit: m.Limit}) {
				texts = append(texts, text)
			}
			return texts, nil
		}),
	},
}

// A contract is a value of type sdk.Contract: handlers by message name and
// typed storage declared once. Here it runs on the in-process chain of
// package sdktest; compiled for GOOS=wasip1 the same value serves the node.
func ExampleContract() {
	app := sdktest.New(sdktest.Config{})
	alice, bob := app.Account("alice"), app.Account("bob")
	book, _ := app.Instantiate(guestbook, alice, `{}`, nil)

	res, _ := app.Execute(book, alice, `{"sign":{"text":"hello"}}`, nil)
	fmt.Printf("result %s, event %s\n", res.Data, res.Events[0].Type)
	app.Execute(book, bob, `{"sign":{"text":"hi"}}`, nil)
	_, err := app.Execute(book, bob, `{"sign":{"text":"again"}}`, nil)
	fmt.Println(errors.Is(err, errAlreadySigned), errors.Is(err, sdktest.ErrContract))

	var texts []string
	app.Query(book, `{"list":{"limit":5}}`, &texts)
	fmt.Println(len(texts))
	// Output:
	// result 1, event signed
	// true true
	// 2
}

// Bounds select a page of a Map; Exclusive starts after the previous page's
// last key.
func ExampleMap_Range() {
	prices := sdk.NewMap[uint64, string]("prices")
	c := sdk.Contract{Instantiate: sdk.Handler(func(ctx *sdk.Ctx, _ struct{}) (any, error) {
		for id := uint64(1); id <= 5; id++ {
			prices.Set(ctx, id, fmt.Sprintf("offer-%d", id))
		}
		for id, v := range prices.Range(ctx, sdk.Bounds[uint64]{Start: sdk.Exclusive[uint64](2), Limit: 2}) {
			fmt.Println(id, v)
		}
		for id := range prices.Range(ctx, sdk.Bounds[uint64]{Reverse: true, Limit: 1}) {
			fmt.Println("last", id)
		}
		return nil, nil
	})}
	app := sdktest.New(sdktest.Config{})
	app.Instantiate(c, app.Account("alice"), `{}`, nil)
	// Output:
	// 3 offer-3
	// 4 offer-4
	// last 5
}

func ExampleParseAddress() {
	a, err := sdk.ParseAddress("sos1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5z5tpwxqergd3c8g7rusqdzp8qy")
	fmt.Println(a[:4], err)
	_, err = sdk.ParseAddress("sos1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5z5tpwxqergd3c8g7rusqdzp8qz")
	fmt.Println(errors.Is(err, sdk.ErrInvalidAddress))
	// Output:
	// [1 2 3 4] <nil>
	// true
}
