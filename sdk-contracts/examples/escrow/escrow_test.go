package main

import (
	"errors"
	"fmt"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/sdktest"
)

const denom = "uTFLP"

type env struct {
	app                          *sdktest.App
	escrow                       sdk.Address
	alice, arbiter, bob, mallory sdk.Address
}

func setup(t *testing.T) env {
	t.Helper()
	app := sdktest.New(sdktest.Config{Height: 100})
	e := env{app: app, alice: app.Account("alice"), arbiter: app.Account("arbiter"), bob: app.Account("bob"), mallory: app.Account("mallory")}
	app.Mint(e.alice, sdk.NewCoin(denom, 1000))
	var err error
	if e.escrow, err = app.Instantiate(contract, e.alice, InstantiateMsg{}, nil); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e env) create(id string, expires uint64, amount uint64) error {
	_, err := e.app.Execute(e.escrow, e.alice, map[string]CreateMsg{"create": {ID: id, Arbiter: e.arbiter, Recipient: e.bob, ExpiresAt: expires}},
		sdk.Coins{sdk.NewCoin(denom, amount)})
	return err
}

func TestEscrow(t *testing.T) {
	type step struct {
		advance int    // blocks to advance first
		who     string // alice, arbiter, bob, mallory
		msg     string
		wantErr error
	}
	for _, tc := range []struct {
		name           string
		steps          []step
		alice, bob, in uint64 // balances afterwards: alice, bob, escrow contract
	}{
		{"held", nil, 900, 0, 100},
		{"approve pays the recipient", []step{{0, "arbiter", `{"approve":{"id":"e1"}}`, nil}}, 900, 100, 0},
		{"double approve", []step{
			{0, "arbiter", `{"approve":{"id":"e1"}}`, nil},
			{0, "arbiter", `{"approve":{"id":"e1"}}`, sdk.ErrNotFound},
		}, 900, 100, 0},
		{"only the arbiter approves", []step{{0, "mallory", `{"approve":{"id":"e1"}}`, ErrUnauthorized}}, 900, 0, 100},
		{"recipient cannot approve", []step{{0, "bob", `{"approve":{"id":"e1"}}`, ErrUnauthorized}}, 900, 0, 100},
		{"approve after expiry", []step{{10, "arbiter", `{"approve":{"id":"e1"}}`, ErrExpired}}, 900, 0, 100},
		{"refund before expiry", []step{{9, "alice", `{"refund":{"id":"e1"}}`, ErrNotExpired}}, 900, 0, 100},
		{"refund after expiry", []step{{10, "mallory", `{"refund":{"id":"e1"}}`, nil}}, 1000, 0, 0},
		{"refund after approve", []step{
			{0, "arbiter", `{"approve":{"id":"e1"}}`, nil},
			{20, "alice", `{"refund":{"id":"e1"}}`, sdk.ErrNotFound},
		}, 900, 100, 0},
		{"unknown escrow", []step{{0, "arbiter", `{"approve":{"id":"nope"}}`, sdk.ErrNotFound}}, 900, 0, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := setup(t)
			if err := e.create("e1", 110, 100); err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				e.app.AdvanceBlocks(s.advance)
				_, err := e.app.Execute(e.escrow, e.app.Account(s.who), s.msg, nil)
				if s.wantErr == nil && err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if s.wantErr != nil && !errors.Is(err, s.wantErr) {
					t.Fatalf("step %d: err = %v, want %v", i, err, s.wantErr)
				}
			}
			got := [3]uint64{e.app.Balance(e.alice, denom), e.app.Balance(e.bob, denom), e.app.Balance(e.escrow, denom)}
			if want := [3]uint64{tc.alice, tc.bob, tc.in}; got != want {
				t.Fatalf("alice, bob, escrow balances = %v, want %v", got, want)
			}
		})
	}
}

func TestCreateValidation(t *testing.T) {
	e := setup(t)
	if err := e.create("dup", 200, 1); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		id      string
		expires uint64
		amount  uint64
		want    error
	}{
		{"duplicate id", "dup", 200, 1, ErrExists},
		{"expiry in the past", "x", 100, 1, ErrInvalid},
		{"no funds", "x", 200, 0, ErrInvalid},
		{"more than the balance", "x", 200, 5000, sdk.ErrInsufficientFunds},
		{"empty id", "", 200, 1, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := e.app.Balance(e.alice, denom)
			var err error
			if tc.amount == 0 {
				_, err = e.app.Execute(e.escrow, e.alice, fmt.Sprintf(`{"create":{"id":%q,"arbiter":%q,"recipient":%q,"expires_at":%d}}`, tc.id, e.arbiter, e.bob, tc.expires), nil)
			} else {
				err = e.create(tc.id, tc.expires, tc.amount)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if after := e.app.Balance(e.alice, denom); after != before {
				t.Fatalf("failed create moved funds: %d -> %d", before, after)
			}
		})
	}
}

func TestList(t *testing.T) {
	e := setup(t)
	for _, id := range []string{"c", "a", "d", "b"} {
		if err := e.create(id, 200, 1); err != nil {
			t.Fatal(err)
		}
	}
	var page ListResponse
	var ids []string
	for after := ""; ; {
		if err := e.app.Query(e.escrow, map[string]ListQuery{"list": {StartAfter: after, Limit: 3}}, &page); err != nil {
			t.Fatal(err)
		}
		for _, x := range page.Escrows {
			ids = append(ids, x.ID)
		}
		if len(page.Escrows) < 3 {
			break
		}
		after = page.Escrows[len(page.Escrows)-1].ID
	}
	if fmt.Sprint(ids) != "[a b c d]" {
		t.Fatalf("ids = %v", ids)
	}
	var one Escrow
	if err := e.app.Query(e.escrow, `{"escrow":{"id":"b"}}`, &one); err != nil || one.Depositor != e.alice || one.Funds.AmountOf(denom) != 1 {
		t.Fatalf("escrow b = %+v, %v", one, err)
	}
}
