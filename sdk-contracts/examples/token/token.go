// Command token is a CW20-like fungible token: balances, transfers, burns,
// mints by a minter up to an optional cap, and allowances that let a spender
// move an owner's tokens.
//
//	instantiate {"name":"Flop","symbol":"FLOP","decimals":6,
//	             "initial_balances":[{"address":"sos1...","amount":"100"}],
//	             "mint":{"minter":"sos1...","cap":"1000000"}}
//	execute     {"transfer":{"recipient":"sos1...","amount":"5"}}
//	            {"burn":{"amount":"5"}}
//	            {"mint":{"recipient":"sos1...","amount":"5"}}            minter only
//	            {"increase_allowance":{"spender":"sos1...","amount":"5"}}
//	            {"decrease_allowance":{"spender":"sos1...","amount":"5"}}
//	            {"transfer_from":{"owner":"sos1...","recipient":"sos1...","amount":"5"}}
//	query       {"balance":{"address":"sos1..."}}          {"balance":"5"}
//	            {"token_info":{}}                          {"name":..,"symbol":..,"decimals":..,"total_supply":".."}
//	            {"allowance":{"owner":"sos1...","spender":"sos1..."}}  {"allowance":"5"}
//
// The acting account is ctx.Caller(), so contracts can hold and move tokens.
package main

import (
	"errors"
	"fmt"
	"math"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
)

// Errors.
var (
	ErrInsufficientBalance   = errors.New("token: insufficient balance")
	ErrInsufficientAllowance = errors.New("token: insufficient allowance")
	ErrUnauthorized          = errors.New("token: unauthorized")
	ErrCapExceeded           = errors.New("token: cap exceeded")
	ErrInvalid               = errors.New("token: invalid")
)

// Messages.
type (
	InstantiateMsg struct {
		Name            string    `json:"name"`
		Symbol          string    `json:"symbol"`
		Decimals        uint8     `json:"decimals"`
		InitialBalances []Balance `json:"initial_balances"`
		Mint            *Minter   `json:"mint,omitempty"`
	}
	Balance struct {
		Address sdk.Address `json:"address"`
		Amount  uint64      `json:"amount,string"`
	}
	Minter struct {
		Minter sdk.Address `json:"minter"`
		Cap    uint64      `json:"cap,string,omitempty"` // 0: no cap
	}
	TransferMsg struct {
		Recipient sdk.Address `json:"recipient"`
		Amount    uint64      `json:"amount,string"`
	}
	BurnMsg struct {
		Amount uint64 `json:"amount,string"`
	}
	MintMsg      = TransferMsg
	AllowanceMsg struct {
		Spender sdk.Address `json:"spender"`
		Amount  uint64      `json:"amount,string"`
	}
	TransferFromMsg struct {
		Owner     sdk.Address `json:"owner"`
		Recipient sdk.Address `json:"recipient"`
		Amount    uint64      `json:"amount,string"`
	}
	BalanceQuery struct {
		Address sdk.Address `json:"address"`
	}
	BalanceResponse struct {
		Balance uint64 `json:"balance,string"`
	}
	TokenInfoQuery struct{}
	TokenInfo      struct {
		Name        string `json:"name"`
		Symbol      string `json:"symbol"`
		Decimals    uint8  `json:"decimals"`
		TotalSupply uint64 `json:"total_supply,string"`
	}
	AllowanceQuery struct {
		Owner   sdk.Address `json:"owner"`
		Spender sdk.Address `json:"spender"`
	}
	AllowanceResponse struct {
		Allowance uint64 `json:"allowance,string"`
	}
)

// State.
var (
	info       = sdk.NewItem[TokenInfo]("info")
	minter     = sdk.NewItem[Minter]("minter")
	balances   = sdk.NewMap[sdk.Address, uint64]("balance")
	allowances = sdk.NewMap[[]byte, uint64]("allowance") // owner ‖ spender
)

var contract = sdk.Contract{
	Name:        "sos-example/token",
	Version:     "1.0.0",
	Instantiate: sdk.Handler(instantiate),
	Execute: sdk.Handlers{
		"transfer":           sdk.Handler(transfer),
		"burn":               sdk.Handler(burn),
		"mint":               sdk.Handler(mint),
		"increase_allowance": sdk.Handler(increaseAllowance),
		"decrease_allowance": sdk.Handler(decreaseAllowance),
		"transfer_from":      sdk.Handler(transferFrom),
	},
	Query: sdk.Handlers{
		"balance":    sdk.Handler(queryBalance),
		"token_info": sdk.Handler(queryTokenInfo),
		"allowance":  sdk.Handler(queryAllowance),
	},
}

func main() { sdk.Main(contract) } // natively: `go run . schema`

func allowanceKey(owner, spender sdk.Address) []byte { return append(owner[:], spender[:]...) }

func instantiate(ctx *sdk.Ctx, msg InstantiateMsg) (any, error) {
	if len(msg.Name) < 3 || len(msg.Name) > 50 {
		return nil, fmt.Errorf("%w: name must have 3 to 50 bytes", ErrInvalid)
	}
	if len(msg.Symbol) < 3 || len(msg.Symbol) > 12 {
		return nil, fmt.Errorf("%w: symbol must have 3 to 12 bytes", ErrInvalid)
	}
	if msg.Decimals > 18 {
		return nil, fmt.Errorf("%w: at most 18 decimals", ErrInvalid)
	}
	var supply uint64
	for _, b := range msg.InitialBalances {
		if supply > math.MaxUint64-b.Amount {
			return nil, fmt.Errorf("%w: initial supply overflows", ErrInvalid)
		}
		supply += b.Amount
		if err := add(ctx, b.Address, b.Amount); err != nil {
			return nil, err
		}
	}
	if m := msg.Mint; m != nil {
		if m.Cap != 0 && supply > m.Cap {
			return nil, fmt.Errorf("%w: initial supply %d above cap %d", ErrCapExceeded, supply, m.Cap)
		}
		if err := minter.Set(ctx, *m); err != nil {
			return nil, err
		}
	}
	return nil, info.Set(ctx, TokenInfo{Name: msg.Name, Symbol: msg.Symbol, Decimals: msg.Decimals, TotalSupply: supply})
}

func add(ctx *sdk.Ctx, who sdk.Address, n uint64) error {
	_, err := balances.Update(ctx, who, func(b uint64, _ bool) (uint64, error) {
		if b > math.MaxUint64-n {
			return 0, fmt.Errorf("%w: balance overflows", ErrInvalid)
		}
		return b + n, nil
	})
	return err
}

func sub(ctx *sdk.Ctx, who sdk.Address, n uint64) error {
	b, _, err := balances.Lookup(ctx, who)
	if err != nil {
		return err
	}
	if b < n {
		return fmt.Errorf("%w: %v has %d, needs %d", ErrInsufficientBalance, who, b, n)
	}
	if b == n {
		balances.Delete(ctx, who)
		return nil
	}
	return balances.Set(ctx, who, b-n)
}

func move(ctx *sdk.Ctx, from, to sdk.Address, n uint64) error {
	if n == 0 {
		return fmt.Errorf("%w: zero amount", ErrInvalid)
	}
	if err := sub(ctx, from, n); err != nil {
		return err
	}
	if err := add(ctx, to, n); err != nil {
		return err
	}
	ctx.Emit("transfer", "from", from.String(), "to", to.String(), "amount", fmt.Sprint(n))
	return nil
}

func transfer(ctx *sdk.Ctx, msg TransferMsg) (any, error) {
	return nil, move(ctx, ctx.Caller(), msg.Recipient, msg.Amount)
}

func burn(ctx *sdk.Ctx, msg BurnMsg) (any, error) {
	if msg.Amount == 0 {
		return nil, fmt.Errorf("%w: zero amount", ErrInvalid)
	}
	if err := sub(ctx, ctx.Caller(), msg.Amount); err != nil {
		return nil, err
	}
	_, err := info.Update(ctx, func(ti TokenInfo, _ bool) (TokenInfo, error) {
		ti.TotalSupply -= msg.Amount // cannot underflow: the supply includes the burner's balance
		return ti, nil
	})
	ctx.Emit("burn", "from", ctx.Caller().String(), "amount", fmt.Sprint(msg.Amount))
	return nil, err
}

func mint(ctx *sdk.Ctx, msg MintMsg) (any, error) {
	m, ok, err := minter.Lookup(ctx)
	if err != nil {
		return nil, err
	}
	if !ok || m.Minter != ctx.Caller() {
		return nil, fmt.Errorf("%w: only the minter may mint", ErrUnauthorized)
	}
	if msg.Amount == 0 {
		return nil, fmt.Errorf("%w: zero amount", ErrInvalid)
	}
	if _, err := info.Update(ctx, func(ti TokenInfo, _ bool) (TokenInfo, error) {
		if ti.TotalSupply > math.MaxUint64-msg.Amount || (m.Cap != 0 && ti.TotalSupply+msg.Amount > m.Cap) {
			return ti, fmt.Errorf("%w: supply %d + %d", ErrCapExceeded, ti.TotalSupply, msg.Amount)
		}
		ti.TotalSupply += msg.Amount
		return ti, nil
	}); err != nil {
		return nil, err
	}
	ctx.Emit("mint", "to", msg.Recipient.String(), "amount", fmt.Sprint(msg.Amount))
	return nil, add(ctx, msg.Recipient, msg.Amount)
}

func increaseAllowance(ctx *sdk.Ctx, msg AllowanceMsg) (any, error) {
	return changeAllowance(ctx, msg, func(a uint64) (uint64, error) {
		if a > math.MaxUint64-msg.Amount {
			return math.MaxUint64, nil
		}
		return a + msg.Amount, nil
	})
}

func decreaseAllowance(ctx *sdk.Ctx, msg AllowanceMsg) (any, error) {
	return changeAllowance(ctx, msg, func(a uint64) (uint64, error) { return a - min(a, msg.Amount), nil })
}

func changeAllowance(ctx *sdk.Ctx, msg AllowanceMsg, f func(uint64) (uint64, error)) (any, error) {
	owner := ctx.Caller()
	if msg.Spender == owner {
		return nil, fmt.Errorf("%w: cannot set an allowance for yourself", ErrInvalid)
	}
	k := allowanceKey(owner, msg.Spender)
	a, _, err := allowances.Lookup(ctx, k)
	if err != nil {
		return nil, err
	}
	if a, err = f(a); err != nil {
		return nil, err
	}
	if a == 0 {
		allowances.Delete(ctx, k)
	} else if err := allowances.Set(ctx, k, a); err != nil {
		return nil, err
	}
	ctx.Emit("allowance", "owner", owner.String(), "spender", msg.Spender.String(), "allowance", fmt.Sprint(a))
	return AllowanceResponse{Allowance: a}, nil
}

func transferFrom(ctx *sdk.Ctx, msg TransferFromMsg) (any, error) {
	k := allowanceKey(msg.Owner, ctx.Caller())
	a, _, err := allowances.Lookup(ctx, k)
	if err != nil {
		return nil, err
	}
	if a < msg.Amount {
		return nil, fmt.Errorf("%w: %d allowed, %d asked", ErrInsufficientAllowance, a, msg.Amount)
	}
	if a == msg.Amount {
		allowances.Delete(ctx, k)
	} else if err := allowances.Set(ctx, k, a-msg.Amount); err != nil {
		return nil, err
	}
	return nil, move(ctx, msg.Owner, msg.Recipient, msg.Amount)
}

func queryBalance(ctx *sdk.Ctx, q BalanceQuery) (any, error) {
	b, _, err := balances.Lookup(ctx, q.Address)
	return BalanceResponse{Balance: b}, err
}

func queryTokenInfo(ctx *sdk.Ctx, _ TokenInfoQuery) (any, error) { return info.Get(ctx) }

func queryAllowance(ctx *sdk.Ctx, q AllowanceQuery) (any, error) {
	a, _, err := allowances.Lookup(ctx, allowanceKey(q.Owner, q.Spender))
	return AllowanceResponse{Allowance: a}, err
}
