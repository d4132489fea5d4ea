// Command counter is the smallest useful SOS contract: a number that anyone
// can increment and only the owner can reset.
//
//	instantiate {"count":N}           the instantiating account becomes the owner
//	execute     {"increment":{}}      count + 1, returns {"count":N}
//	execute     {"reset":{"count":N}} owner only
//	query       {"get":{}}            {"count":N}
//	migrate     {}                    keeps the count
//
// The contract lives in this file, which builds everywhere; the Wasm entry
// points are in exports_wasip1.go, which builds only for GOOS=wasip1. Tests in
// counter_test.go run the contract natively through package sdktest.
package main

import (
	"errors"
	"fmt"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
)

// ErrUnauthorized reports a reset by an account other than the owner.
var ErrUnauthorized = errors.New("counter: unauthorized")

// Messages.
type (
	InstantiateMsg struct {
		Count uint64 `json:"count"`
	}
	IncrementMsg struct{}
	ResetMsg     struct {
		Count uint64 `json:"count"`
	}
	GetMsg        struct{}
	MigrateMsg    struct{}
	CountResponse struct {
		Count uint64 `json:"count"`
	}
)

// State.
var (
	count = sdk.NewItem[uint64]("count")
	owner = sdk.NewItem[sdk.Address]("owner")
)

var contract = sdk.Contract{
	Name:        "sos-example/counter",
	Version:     "1.0.0",
	Instantiate: sdk.Handler(instantiate),
	Execute: sdk.Handlers{
		"increment": sdk.Handler(increment),
		"reset":     sdk.Handler(reset),
	},
	Query: sdk.Handlers{
		"get": sdk.Handler(get),
	},
	Migrate: sdk.Handler(migrate),
}

// main is never called on the node: a contract is a library
// (-buildmode=c-shared) whose entry points are its exports. Natively,
// `go run . schema` prints the JSON Schema of its messages (sdk.Main).
func main() { sdk.Main(contract) }

func instantiate(ctx *sdk.Ctx, msg InstantiateMsg) (any, error) {
	if err := owner.Set(ctx, ctx.Sender()); err != nil {
		return nil, err
	}
	return nil, count.Set(ctx, msg.Count)
}

func increment(ctx *sdk.Ctx, _ IncrementMsg) (any, error) {
	n, err := count.Update(ctx, func(n uint64, _ bool) (uint64, error) { return n + 1, nil })
	if err != nil {
		return nil, err
	}
	return CountResponse{Count: n}, nil
}

func reset(ctx *sdk.Ctx, msg ResetMsg) (any, error) {
	o, err := owner.Get(ctx)
	if err != nil {
		return nil, err
	}
	if ctx.Sender() != o {
		return nil, fmt.Errorf("%w: only the owner %v may reset", ErrUnauthorized, o)
	}
	if err := count.Set(ctx, msg.Count); err != nil {
		return nil, err
	}
	ctx.Emit("reset", "count", fmt.Sprint(msg.Count))
	return CountResponse(msg), nil
}

func get(ctx *sdk.Ctx, _ GetMsg) (any, error) {
	n, err := count.Get(ctx)
	return CountResponse{Count: n}, err
}

func migrate(ctx *sdk.Ctx, _ MigrateMsg) (any, error) {
	// Nothing to convert: the state layout is unchanged, so the count carries over.
	return nil, nil
}
