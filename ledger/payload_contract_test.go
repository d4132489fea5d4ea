package ledger

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestContractPayloadsCarrySchemaAndForce: an upload's schema and a
// migration's force flag survive the transaction encoding, and the schema
// is checked for size and shape without state.
func TestContractPayloadsCarrySchemaAndForce(t *testing.T) {
	c := NewCodec()
	wasm := []byte("\x00asm\x01\x00\x00\x00")
	for _, p := range []Payload{
		&ContractUpload{Wasm: wasm, Schema: []byte(`{"schema_format":"sos-contract-schema/v1"}`)},
		&ContractUpload{Wasm: wasm},
		&ContractMigrate{Contract: Address{1}, CodeID: Hash{2}, Msg: []byte(`{}`), Force: true},
		&ContractMigrate{Contract: Address{1}, CodeID: Hash{2}, Msg: []byte(`{}`)},
	} {
		if err := p.ValidateBasic(); err != nil {
			t.Fatalf("%s: %v", p.Kind(), err)
		}
		tx, err := c.DecodeTx(jobTx(t, c, p))
		if err != nil {
			t.Fatalf("%s: %v", p.Kind(), err)
		}
		if !reflect.DeepEqual(tx.Payload, p) {
			t.Fatalf("%s: decoded %+v, want %+v", p.Kind(), tx.Payload, p)
		}
	}
	for schema, errHas := range map[string]string{
		`[1]`:   "not a JSON object",
		`{"a":`: "not a JSON object",
		`{"a":"` + strings.Repeat("x", MaxContractSchemaBytes) + `"}`: "limit",
	} {
		err := (&ContractUpload{Wasm: wasm, Schema: []byte(schema)}).ValidateBasic()
		if err == nil || !strings.Contains(err.Error(), errHas) {
			t.Errorf("schema %.20s: %v, want an error containing %q", schema, err, errHas)
		}
		if errHas == "not a JSON object" && !errors.Is(err, ErrMalformed) {
			t.Errorf("schema %s: %v is not ErrMalformed", schema, err)
		}
	}
	js, _ := (&ContractUpload{Wasm: wasm, Schema: []byte(`{}`)}).MarshalJSON()
	if !strings.Contains(string(js), `"schema_size":2`) {
		t.Errorf("upload JSON %s lacks the schema size", js)
	}
}
