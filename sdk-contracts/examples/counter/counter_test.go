package main

import (
	"errors"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/sdktest"
)

func setup(t *testing.T, start uint64) (*sdktest.App, sdk.Address, sdk.Address) {
	t.Helper()
	app := sdktest.New(sdktest.Config{})
	alice := app.Account("alice")
	addr, err := app.Instantiate(contract, alice, InstantiateMsg{Count: start}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return app, addr, alice
}

func getCount(t *testing.T, app *sdktest.App, addr sdk.Address) uint64 {
	t.Helper()
	var r CountResponse
	if err := app.Query(addr, `{"get":{}}`, &r); err != nil {
		t.Fatal(err)
	}
	return r.Count
}

func TestCounter(t *testing.T) {
	type step struct {
		sender  string
		msg     string
		wantErr error // matched with errors.Is; nil means success
	}
	for _, tc := range []struct {
		name  string
		start uint64
		steps []step
		want  uint64
	}{
		{"instantiate", 7, nil, 7},
		{"increment twice", 1, []step{{"bob", `{"increment":{}}`, nil}, {"alice", `{"increment":{}}`, nil}}, 3},
		{"owner resets", 5, []step{{"alice", `{"reset":{"count":42}}`, nil}}, 42},
		{"stranger cannot reset", 5, []step{{"bob", `{"reset":{"count":0}}`, ErrUnauthorized}}, 5},
		{"unknown message", 5, []step{{"alice", `{"decrement":{}}`, sdk.ErrUnknownMessage}}, 5},
		{"unknown field", 5, []step{{"alice", `{"reset":{"cnt":1}}`, sdk.ErrInvalidMessage}}, 5},
		{"two keys", 5, []step{{"alice", `{"increment":{},"reset":{"count":1}}`, sdk.ErrInvalidMessage}}, 5},
		{"not an object", 5, []step{{"alice", `"increment"`, sdk.ErrInvalidMessage}}, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			app, addr, _ := setup(t, tc.start)
			for _, s := range tc.steps {
				_, err := app.Execute(addr, app.Account(s.sender), s.msg, nil)
				switch {
				case s.wantErr == nil && err != nil:
					t.Fatalf("%s by %s: %v", s.msg, s.sender, err)
				case s.wantErr != nil && !errors.Is(err, s.wantErr):
					t.Fatalf("%s by %s: err = %v, want %v", s.msg, s.sender, err, s.wantErr)
				case s.wantErr != nil && !errors.Is(err, sdktest.ErrContract):
					t.Fatalf("%s: err = %v, want a contract error", s.msg, err)
				}
			}
			if got := getCount(t, app, addr); got != tc.want {
				t.Fatalf("count = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestIncrementResultAndEvents(t *testing.T) {
	app, addr, alice := setup(t, 0)
	res, err := app.Execute(addr, alice, `{"increment":{}}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Data) != `{"count":1}` {
		t.Fatalf("result = %s", res.Data)
	}
	res, err = app.Execute(addr, alice, ResetMsgEnvelope{Reset: ResetMsg{Count: 9}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 1 || res.Events[0].Type != "reset" || res.Events[0].Attrs[0] != (sdk.Attr{Key: "count", Value: "9"}) {
		t.Fatalf("events = %+v", res.Events)
	}
	if res.Events[0].Contract != addr {
		t.Fatalf("event from %v, want %v", res.Events[0].Contract, addr)
	}
}

// ResetMsgEnvelope shows the typed way to build a message for a test.
type ResetMsgEnvelope struct {
	Reset ResetMsg `json:"reset"`
}

func TestMigrate(t *testing.T) {
	app, addr, alice := setup(t, 3)
	if _, err := app.Migrate(addr, app.Account("mallory"), contract, `{}`); !errors.Is(err, sdktest.ErrUnauthorized) {
		t.Fatalf("migrate by a stranger: err = %v, want ErrUnauthorized", err)
	}
	if _, err := app.Migrate(addr, alice, contract, `{}`); err != nil {
		t.Fatal(err)
	}
	if got := getCount(t, app, addr); got != 3 {
		t.Fatalf("count after migrate = %d, want 3", got)
	}
	noMigrate := contract
	noMigrate.Migrate = nil
	if _, err := app.Migrate(addr, alice, noMigrate, `{}`); !errors.Is(err, sdk.ErrNoEntryPoint) {
		t.Fatalf("migrate to code without migrate: err = %v", err)
	}
}

func TestQueryCannotWrite(t *testing.T) {
	app, addr, _ := setup(t, 0)
	// Execute handlers run as queries must not write: the harness traps like the VM.
	writer := contract
	writer.Query = sdk.Handlers{"increment": contract.Execute["increment"]}
	if _, err := app.Migrate(addr, app.Account("alice"), writer, `{}`); err != nil {
		t.Fatal(err)
	}
	if err := app.Query(addr, `{"increment":{}}`, nil); !errors.Is(err, sdktest.ErrTrap) {
		t.Fatalf("write in query: err = %v, want ErrTrap", err)
	}
}

func BenchmarkIncrement(b *testing.B) {
	app := sdktest.New(sdktest.Config{})
	alice := app.Account("alice")
	addr, err := app.Instantiate(contract, alice, InstantiateMsg{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	msg := []byte(`{"increment":{}}`)
	for b.Loop() {
		if _, err := app.Execute(addr, alice, msg, nil); err != nil {
			b.Fatal(err)
		}
	}
}
