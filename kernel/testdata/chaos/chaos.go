// Command chaos is a test contract for the kernel: it misbehaves on request
// (loops, panics, recurses through itself, writes inside a query, emits huge
// events) so the tests can check what the chain does about it.
package main

import (
	"errors"
	"strings"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
)

type (
	Empty   struct{}
	CallMsg struct {
		Contract sdk.Address `json:"contract"`
		Msg      any         `json:"msg"`
	}
	SetMsg struct {
		Value uint64 `json:"value"`
	}
	EventMsg struct {
		Bytes int `json:"bytes"`
	}
)

var value = sdk.NewItem[uint64]("value")

var contract = sdk.Contract{
	Instantiate: sdk.Handler(func(ctx *sdk.Ctx, _ Empty) (any, error) { return nil, value.Set(ctx, 0) }),
	Execute: sdk.Handlers{
		"set": sdk.Handler(func(ctx *sdk.Ctx, m SetMsg) (any, error) { return nil, value.Set(ctx, m.Value) }),
		// set_then_fail writes, then returns an error: the write must be undone.
		"set_then_fail": sdk.Handler(func(ctx *sdk.Ctx, m SetMsg) (any, error) {
			if err := value.Set(ctx, m.Value); err != nil {
				return nil, err
			}
			return nil, errors.New("chaos: failing on purpose")
		}),
		"loop": sdk.Handler(func(ctx *sdk.Ctx, _ Empty) (any, error) {
			_ = value.Set(ctx, 99) // must not survive running out of gas
			for {
			}
		}),
		"panic": sdk.Handler(func(ctx *sdk.Ctx, _ Empty) (any, error) {
			_ = value.Set(ctx, 98)
			panic("chaos: boom")
		}),
		"call": sdk.Handler(func(ctx *sdk.Ctx, m CallMsg) (any, error) {
			_ = value.Set(ctx, 7)
			return ctx.Call(m.Contract, m.Msg, nil)
		}),
		// call_ignore_error calls and swallows the callee's error: the
		// callee's own writes are reverted, the caller's stay.
		"call_ignore_error": sdk.Handler(func(ctx *sdk.Ctx, m CallMsg) (any, error) {
			_ = value.Set(ctx, 8)
			_, err := ctx.Call(m.Contract, m.Msg, nil)
			if err == nil {
				return "callee ok", nil
			}
			return "callee failed: " + err.Error(), nil
		}),
		"event": sdk.Handler(func(ctx *sdk.Ctx, m EventMsg) (any, error) {
			ctx.Emit("big", "data", strings.Repeat("x", m.Bytes))
			return nil, nil
		}),
	},
	Query: sdk.Handlers{
		"get": sdk.Handler(func(ctx *sdk.Ctx, _ Empty) (any, error) { return value.Get(ctx) }),
		"write": sdk.Handler(func(ctx *sdk.Ctx, _ Empty) (any, error) {
			return nil, value.Set(ctx, 1)
		}),
	},
	Migrate: sdk.Handler(func(ctx *sdk.Ctx, _ Empty) (any, error) { return nil, value.Set(ctx, 1000) }),
}

func main() {}
