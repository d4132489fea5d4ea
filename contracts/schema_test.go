package contracts

import (
	"errors"
	"testing"
)

func TestCheckSchema(t *testing.T) {
	ok := []string{
		`{"schema_format":"sos-contract-schema/v1"}`,
		`{"schema_format":"sos-contract-schema/v1","contract_name":"x","instantiate":{},"execute":{"oneOf":[]},"query":{ },"migrate":{"type":"object"}}`,
	}
	bad := []string{
		`[]`, `{}`, `{"schema_format":"sos-contract-schema/v2"}`, `{"schema_format":1}`,
		`{"schema_format":"sos-contract-schema/v1","execute":[]}`,
		`{"schema_format":"sos-contract-schema/v1","migrate":"x"}`,
		`{"schema_format":"sos-contract-schema/v1","query":null}`,
	}
	for _, s := range ok {
		if err := checkSchema([]byte(s)); err != nil {
			t.Errorf("checkSchema(%s): %v", s, err)
		}
	}
	for _, s := range bad {
		if err := checkSchema([]byte(s)); !errors.Is(err, ErrSchema) {
			t.Errorf("checkSchema(%s) = %v, want ErrSchema", s, err)
		}
	}
}

// FuzzCheckSchema: upload schemas are untrusted transaction bytes; the
// check never panics and gives the same answer twice (it is consensus).
func FuzzCheckSchema(f *testing.F) {
	f.Add([]byte(`{"schema_format":"sos-contract-schema/v1","execute":{"oneOf":[]}}`))
	f.Add([]byte(`{"schema_format":"sos-contract-schema/v1","query":[1],"migrate":"x"}`))
	f.Add([]byte(`{"schema_format":"sos-contract-schema/v1","schema_format":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e1, e2 := checkSchema(b), checkSchema(b)
		if (e1 == nil) != (e2 == nil) || e1 != nil && e1.Error() != e2.Error() {
			t.Fatalf("two checks differ: %v / %v", e1, e2)
		}
	})
}
