// Command chaos is a test contract for the kernel: it misbehaves on request
// (loops, panics, recurses through itself, writes inside a query, emits huge
// events) so the tests can check what the chain does about it.
package main

import (
	"encoding/hex"
	"errors"
	"fmt"
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

var (
	value = sdk.NewItem[uint64]("value")
	notes = sdk.NewMap[string, string]("notes")
)

// TourMsg drives "tour": one call that uses every host function, so a golden
// vector pins all of them (results go into the response and events).
type TourMsg struct {
	Peer    sdk.Address `json:"peer"`    // another instance of this contract
	PubKey  []byte      `json:"pub_key"` // an ML-DSA-65 key, signature and context to verify
	Message []byte      `json:"message"`
	Sig     []byte      `json:"sig"`
	Context []byte      `json:"context"`
	Pay     sdk.Address `json:"pay"` // receives 1 uTFLP from the contract
}

func tour(ctx *sdk.Ctx, m TourMsg) (any, error) {
	out := map[string]any{}
	out["height"] = ctx.BlockHeight()
	out["time"] = ctx.BlockTime().UnixMilli()
	out["chain_id"] = ctx.ChainID()
	out["self"] = ctx.Self().String()
	out["sender"] = ctx.Sender().String()
	out["caller"] = ctx.Caller().String()
	out["funds"] = ctx.Funds()
	out["balance"] = ctx.Balance(ctx.Self(), "uTFLP")
	if err := ctx.Transfer(m.Pay, "uTFLP", 1); err != nil {
		return nil, err
	}
	out["unknown_denom"] = fmt.Sprint(ctx.Transfer(m.Pay, "uNOPE", 1))
	for _, k := range []string{"b", "a", "c"} {
		if err := notes.Set(ctx, k, "note "+k); err != nil {
			return nil, err
		}
	}
	notes.Delete(ctx, "b")
	var keys []string
	for k := range notes.Range(ctx, sdk.Bounds[string]{Reverse: true}) {
		keys = append(keys, k)
	}
	out["keys_desc"] = keys
	v, err := value.Get(ctx)
	if err != nil {
		return nil, err
	}
	out["value"] = v
	sha := ctx.Sha256([]byte("sos"))
	b3 := ctx.Blake3([]byte("sos"))
	out["sha256"] = hex.EncodeToString(sha[:])
	out["blake3"] = hex.EncodeToString(b3[:])
	out["mldsa_valid"] = ctx.VerifyMLDSA(m.PubKey, m.Message, m.Sig, m.Context)
	out["mldsa_tampered"] = ctx.VerifyMLDSA(m.PubKey, append([]byte("x"), m.Message...), m.Sig, m.Context)
	var peer uint64
	if err := ctx.Query(m.Peer, map[string]any{"get": map[string]any{}}, &peer); err != nil {
		return nil, err
	}
	out["peer_value"] = peer
	if _, err := ctx.Call(m.Peer, map[string]any{"set": map[string]any{"value": v + 100}}, nil); err != nil {
		return nil, err
	}
	ctx.Log("tour done")
	ctx.Emit("tour", "self", ctx.Self().String(), "sha256", hex.EncodeToString(sha[:]))
	return out, nil
}

var contract = sdk.Contract{
	Name:        "sos-test/chaos",
	Version:     "1.0.0",
	Instantiate: sdk.Handler(func(ctx *sdk.Ctx, _ Empty) (any, error) { return nil, value.Set(ctx, 0) }),
	Execute: sdk.Handlers{
		"set": sdk.Handler(func(ctx *sdk.Ctx, m SetMsg) (any, error) {
			ctx.Logf("set %d", m.Value)
			return nil, value.Set(ctx, m.Value)
		}),
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
			ctx.Logf("calling %v", m.Contract)
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
		"tour": sdk.Handler(tour),
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
