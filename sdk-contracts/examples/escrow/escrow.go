// Command escrow holds deposits until an arbiter releases them to a
// recipient, or until they expire and the depositor takes them back.
//
//	instantiate {}
//	execute     {"create":{"id":"job-1","arbiter":"sos1...","recipient":"sos1...","expires_at":1200}}
//	            with funds: the deposit
//	            {"approve":{"id":"job-1"}}   arbiter only, before expiry: pays the recipient
//	            {"refund":{"id":"job-1"}}    anyone, at or after the expiry height: repays the depositor
//	query       {"escrow":{"id":"job-1"}}    the escrow
//	            {"list":{"start_after":"job-0","limit":10}}
//
// An escrow is deleted when it is paid out, so a second approve or refund
// fails with ErrNotFound.
package main

import (
	"errors"
	"fmt"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
)

// Errors.
var (
	ErrUnauthorized = errors.New("escrow: unauthorized")
	ErrExpired      = errors.New("escrow: expired")
	ErrNotExpired   = errors.New("escrow: not expired")
	ErrExists       = errors.New("escrow: id already used")
	ErrInvalid      = errors.New("escrow: invalid")
)

// Escrow is one deposit.
type Escrow struct {
	ID        string      `json:"id"`
	Depositor sdk.Address `json:"depositor"`
	Arbiter   sdk.Address `json:"arbiter"`
	Recipient sdk.Address `json:"recipient"`
	ExpiresAt uint64      `json:"expires_at"` // block height
	Funds     sdk.Coins   `json:"funds"`
}

// Messages.
type (
	InstantiateMsg struct{}
	CreateMsg      struct {
		ID        string      `json:"id"`
		Arbiter   sdk.Address `json:"arbiter"`
		Recipient sdk.Address `json:"recipient"`
		ExpiresAt uint64      `json:"expires_at"`
	}
	IDMsg struct {
		ID string `json:"id"`
	}
	ListQuery struct {
		StartAfter string `json:"start_after,omitempty"`
		Limit      int    `json:"limit,omitempty"`
	}
	ListResponse struct {
		Escrows []Escrow `json:"escrows"`
	}
)

const maxLimit = 30

var escrows = sdk.NewMap[string, Escrow]("escrow")

var contract = sdk.Contract{
	Name:        "sos-example/escrow",
	Version:     "1.0.0",
	Instantiate: sdk.Handler(func(*sdk.Ctx, InstantiateMsg) (any, error) { return nil, nil }),
	Execute: sdk.Handlers{
		"create":  sdk.Handler(create),
		"approve": sdk.Handler(approve),
		"refund":  sdk.Handler(refund),
	},
	Query: sdk.Handlers{
		"escrow": sdk.Handler(queryEscrow),
		"list":   sdk.Handler(queryList),
	},
}

func main() { sdk.Main(contract) } // natively: `go run . schema`

func create(ctx *sdk.Ctx, msg CreateMsg) (any, error) {
	if msg.ID == "" || len(msg.ID) > 64 {
		return nil, fmt.Errorf("%w: id must have 1 to 64 bytes", ErrInvalid)
	}
	if msg.ExpiresAt <= ctx.BlockHeight() {
		return nil, fmt.Errorf("%w: expiry %d is not after the current height %d", ErrInvalid, msg.ExpiresAt, ctx.BlockHeight())
	}
	if msg.Arbiter.IsZero() || msg.Recipient.IsZero() {
		return nil, fmt.Errorf("%w: arbiter and recipient are required", ErrInvalid)
	}
	funds := ctx.Funds()
	if len(funds) == 0 {
		return nil, fmt.Errorf("%w: send the deposit as funds", ErrInvalid)
	}
	if escrows.Has(ctx, msg.ID) {
		return nil, fmt.Errorf("%w: %q", ErrExists, msg.ID)
	}
	e := Escrow{ID: msg.ID, Depositor: ctx.Caller(), Arbiter: msg.Arbiter, Recipient: msg.Recipient, ExpiresAt: msg.ExpiresAt, Funds: funds}
	ctx.Emit("escrow_created", "id", e.ID, "funds", funds.String())
	return nil, escrows.Set(ctx, msg.ID, e)
}

func payOut(ctx *sdk.Ctx, e Escrow, to sdk.Address, event string) error {
	escrows.Delete(ctx, e.ID)
	for _, c := range e.Funds {
		if err := ctx.Transfer(to, c.Denom, c.Amount); err != nil {
			return err
		}
	}
	ctx.Emit(event, "id", e.ID, "to", to.String(), "funds", e.Funds.String())
	return nil
}

func approve(ctx *sdk.Ctx, msg IDMsg) (any, error) {
	e, err := escrows.Get(ctx, msg.ID)
	if err != nil {
		return nil, err
	}
	if ctx.Caller() != e.Arbiter {
		return nil, fmt.Errorf("%w: only the arbiter may approve", ErrUnauthorized)
	}
	if ctx.BlockHeight() >= e.ExpiresAt {
		return nil, fmt.Errorf("%w: at height %d", ErrExpired, e.ExpiresAt)
	}
	return nil, payOut(ctx, e, e.Recipient, "escrow_approved")
}

func refund(ctx *sdk.Ctx, msg IDMsg) (any, error) {
	e, err := escrows.Get(ctx, msg.ID)
	if err != nil {
		return nil, err
	}
	if ctx.BlockHeight() < e.ExpiresAt {
		return nil, fmt.Errorf("%w: until height %d", ErrNotExpired, e.ExpiresAt)
	}
	return nil, payOut(ctx, e, e.Depositor, "escrow_refunded")
}

func queryEscrow(ctx *sdk.Ctx, q IDMsg) (any, error) { return escrows.Get(ctx, q.ID) }

func queryList(ctx *sdk.Ctx, q ListQuery) (any, error) {
	b := sdk.Bounds[string]{Limit: q.Limit}
	if b.Limit <= 0 || b.Limit > maxLimit {
		b.Limit = maxLimit
	}
	if q.StartAfter != "" {
		b.Start = sdk.Exclusive(q.StartAfter)
	}
	out := ListResponse{Escrows: []Escrow{}}
	for _, e := range escrows.Range(ctx, b) {
		out.Escrows = append(out.Escrows, e)
	}
	return out, nil
}
