package sdktest_test

import (
	"errors"
	"fmt"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/sdktest"
)

// A test chain: accounts, balances, blocks and contract instances, all in
// process. A failing transaction leaves no trace.
func ExampleApp() {
	app := sdktest.New(sdktest.Config{Height: 10})
	alice := app.Account("alice")
	app.Mint(alice, sdk.NewCoin("uTFLP", 100))

	tip := sdk.Contract{
		Instantiate: sdk.Handler(func(*sdk.Ctx, struct{}) (any, error) { return nil, nil }),
		Execute: sdk.Handlers{"tip": sdk.Handler(func(ctx *sdk.Ctx, _ struct{}) (any, error) {
			if ctx.BlockHeight() < 11 {
				return nil, errors.New("tipjar: closed until block 11")
			}
			return ctx.Funds(), nil
		})},
	}
	jar, _ := app.Instantiate(tip, alice, `{}`, nil)

	_, err := app.Execute(jar, alice, `{"tip":{}}`, sdk.Coins{sdk.NewCoin("uTFLP", 5)})
	fmt.Println(err != nil, app.Balance(alice, "uTFLP"))

	app.NextBlock()
	res, _ := app.Execute(jar, alice, `{"tip":{}}`, sdk.Coins{sdk.NewCoin("uTFLP", 5)})
	fmt.Println(string(res.Data), app.Balance(alice, "uTFLP"), app.Balance(jar, "uTFLP"))
	// Output:
	// true 100
	// [{"denom":"uTFLP","amount":"5"}] 95 5
}

// Errors returned by a contract keep their identity in tests (errors.Is),
// while the text is what the chain would put in the receipt.
func ExampleContractError() {
	errSoldOut := errors.New("shop: sold out")
	shop := sdk.Contract{Instantiate: sdk.Handler(func(*sdk.Ctx, struct{}) (any, error) { return nil, errSoldOut })}
	app := sdktest.New(sdktest.Config{})
	_, err := app.Instantiate(shop, app.Account("alice"), `{}`, nil)

	var ce *sdktest.ContractError
	fmt.Println(errors.Is(err, errSoldOut), errors.As(err, &ce), ce.Msg)
	// Output:
	// true true shop: sold out
}
