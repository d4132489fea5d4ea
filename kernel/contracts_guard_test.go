package kernel

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/contracts"
	"github.com/sos-kernel/sos/ledger"
)

// TestMigrateGuardsContractName: counter records "sos-example/counter" and
// chaos "sos-test/chaos" (Contract.Name in the SDK). Migrating a counter to
// chaos code is refused, leaving code and state as they were, unless the
// migrate transaction is forced; migrating to code of the same name is not
// affected. Before the guard the first migration succeeded silently.
func TestMigrateGuardsContractName(t *testing.T) {
	tn := withContracts(t, newTestChain(t, 1))
	alice := tn.users[0]
	counterID := tn.upload(t, alice, buildWasm(t, "counter"))
	chaosID := tn.upload(t, alice, buildWasm(t, "chaos"))
	addr := tn.instantiate(t, alice, counterID, `{"count":41}`, alice.Address())
	info := func() string {
		raw, err := ledger.NewState(tn.store).Get(append([]byte{ledger.PrefixContract, 0x04}, append(addr[:], contracts.ContractInfoKey...)...))
		if err != nil {
			t.Fatal(err)
		}
		return string(raw)
	}
	if got := info(); got != `{"contract":"sos-example/counter","version":"1.0.0"}` {
		t.Fatalf("contract_info after instantiate: %s", got)
	}

	// Same name: allowed.
	if r := tn.exec1(t, alice, &ledger.ContractMigrate{Contract: addr, CodeID: counterID, Msg: []byte(`{}`)}); r.Code != ledger.CodeOK {
		t.Fatalf("migrate to the same contract: %v %s", r.Code, r.Error)
	}

	// Another contract: refused, nothing changes.
	r := tn.exec1(t, alice, &ledger.ContractMigrate{Contract: addr, CodeID: chaosID, Msg: []byte(`{}`)})
	if r.Code != ledger.CodeInvalidPayload || !strings.Contains(r.Error, `records contract "sos-example/counter"`) || !strings.Contains(r.Error, `"sos-test/chaos"`) || !strings.Contains(r.Error, "--force") {
		t.Fatalf("migrate to another contract: %v %q", r.Code, r.Error)
	}
	in, err := tn.chain.engine.Instance(ledger.NewState(tn.store), addr)
	if err != nil || in.CodeID != counterID {
		t.Fatalf("refused migrate left code %v (%v), want the counter's", in.CodeID, err)
	}
	if got, err := tn.query(t, addr, `{"get":{}}`); err != nil || got != `{"count":41}` {
		t.Fatalf("refused migrate: count %s %v", got, err)
	}
	if got := info(); !strings.Contains(got, "sos-example/counter") {
		t.Fatalf("refused migrate changed contract_info: %s", got)
	}

	// Forced: allowed, and the receipt says so.
	r = tn.exec1(t, alice, &ledger.ContractMigrate{Contract: addr, CodeID: chaosID, Msg: []byte(`{}`), Force: true})
	if r.Code != ledger.CodeOK {
		t.Fatalf("forced migrate: %v %s", r.Code, r.Error)
	}
	if ev := fmt.Sprint(r.Events); !strings.Contains(ev, "forced true") || !strings.Contains(ev, "contract_name sos-test/chaos") {
		t.Fatalf("forced migrate events: %s", ev)
	}
	if got, err := tn.query(t, addr, `{"get":{}}`); err != nil || got != "1000" {
		t.Fatalf("after the forced migrate chaos answers %s %v, want its migrate's 1000", got, err)
	}
	supplyInvariant(t, tn)
}

// TestUploadStoresSchema: an upload may carry the schema of its messages;
// the chain checks it is a schema document, stores it with the code, lets
// the uploader add one to code uploaded without, and never replaces one.
func TestUploadStoresSchema(t *testing.T) {
	tn := withContracts(t, newTestChain(t, 2))
	alice, bob := tn.users[0], tn.users[1]
	wasm := buildWasm(t, "counter")
	schema := []byte(`{"schema_format":"` + contracts.SchemaFormat + `","contract_name":"sos-example/counter","execute":{"oneOf":[]}}`)
	id := ledger.HashBytes(wasm)
	schemaOf := func() (string, error) {
		b, err := tn.chain.engine.Schema(ledger.NewState(tn.store), id)
		return string(b), err
	}

	if err := (&ledger.ContractUpload{Wasm: wasm, Schema: []byte(`[1,2]`)}).ValidateBasic(); !errors.Is(err, ledger.ErrMalformed) {
		t.Fatalf("a schema that is not a JSON object passed ValidateBasic: %v", err)
	}
	for _, bad := range []string{`{"schema_format":"v0"}`, `{"schema_format":"` + contracts.SchemaFormat + `","query":[1]}`} {
		r := tn.exec1(t, alice, &ledger.ContractUpload{Wasm: wasm, Schema: []byte(bad)})
		if r.Code != ledger.CodeInvalidPayload {
			t.Fatalf("upload with schema %s: %v %q", bad, r.Code, r.Error)
		}
	}
	if _, err := tn.chain.engine.Code(ledger.NewState(tn.store), id); err == nil {
		t.Fatal("a refused upload stored the code")
	}

	// Uploaded without a schema: none is served.
	tn.upload(t, alice, wasm)
	if _, err := schemaOf(); !errors.Is(err, contracts.ErrNoSchema) {
		t.Fatalf("schema of code uploaded without: %v", err)
	}
	// Only the uploader may add one.
	if r := tn.exec1(t, bob, &ledger.ContractUpload{Wasm: wasm, Schema: schema}); r.Code != ledger.CodeInvalidPayload || !strings.Contains(r.Error, "only the uploader") {
		t.Fatalf("bob adds a schema: %v %q", r.Code, r.Error)
	}
	r := tn.exec1(t, alice, &ledger.ContractUpload{Wasm: wasm, Schema: schema})
	if r.Code != ledger.CodeOK || !strings.Contains(fmt.Sprint(r.Events), "schema_size") {
		t.Fatalf("alice adds a schema: %v %q %v", r.Code, r.Error, r.Events)
	}
	if got, err := schemaOf(); err != nil || got != string(schema) {
		t.Fatalf("stored schema %q %v", got, err)
	}
	// The same again is a no-op; another one is refused.
	if r := tn.exec1(t, alice, &ledger.ContractUpload{Wasm: wasm, Schema: schema}); r.Code != ledger.CodeOK {
		t.Fatalf("same schema again: %v %q", r.Code, r.Error)
	}
	other := []byte(strings.Replace(string(schema), "counter", "other", 1))
	if r := tn.exec1(t, alice, &ledger.ContractUpload{Wasm: wasm, Schema: other}); r.Code != ledger.CodeInvalidPayload || !strings.Contains(r.Error, "never changes") {
		t.Fatalf("another schema: %v %q", r.Code, r.Error)
	}
	if got, _ := schemaOf(); got != string(schema) {
		t.Fatalf("schema replaced: %s", got)
	}
	// A first upload with a schema stores both at once.
	chaos := buildWasm(t, "chaos")
	r = tn.exec1(t, bob, &ledger.ContractUpload{Wasm: chaos, Schema: schema})
	if r.Code != ledger.CodeOK {
		t.Fatalf("upload with schema: %v %q", r.Code, r.Error)
	}
	if b, err := tn.chain.engine.Schema(ledger.NewState(tn.store), ledger.HashBytes(chaos)); err != nil || string(b) != string(schema) {
		t.Fatalf("schema of chaos %q %v", b, err)
	}
}
