package sdk_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/sos-kernel/sos/sdk-contracts/sdk"
	"github.com/sos-kernel/sos/sdk-contracts/sdk/sdktest"
)

type (
	schemaInit struct {
		Owner    sdk.Address       `json:"owner" desc:"who may reset"`
		Limit    *uint32           `json:"limit"`
		Note     string            `json:"note,omitempty"`
		Blob     []byte            `json:"blob,omitempty"`
		Tags     map[string]int8   `json:"tags,omitempty"`
		Funds    sdk.Coins         `json:"funds,omitempty"`
		Big      uint64            `json:"big,string"`
		Skip     string            `json:"-"`
		Raw      json.RawMessage   `json:"raw,omitempty"`
		Tree     *schemaNode       `json:"tree,omitempty"`
		Fixed    [2]bool           `json:"fixed"`
		Embedded                   // promoted fields
		Extra    map[uint64]string `json:"extra,omitempty"`
	}
	Embedded struct {
		Depth int    `json:"depth"`
		Note  string `json:"note"` // shadowed by schemaInit.Note
	}
	schemaNode struct {
		Children []schemaNode `json:"children"`
	}
	incMsg struct {
		By uint64 `json:"by,omitempty"`
	}
)

func schemaContract() sdk.Contract {
	return sdk.Contract{
		Name: "schema-test", Version: "0.1.0",
		Instantiate: sdk.Handler(func(*sdk.Ctx, schemaInit) (any, error) { return nil, nil }),
		Execute: sdk.Handlers{
			"inc": sdk.Handler(func(*sdk.Ctx, incMsg) (any, error) { return nil, nil }),
			"raw": func(ctx *sdk.Ctx, _ json.RawMessage) (any, error) { return ctx.Sender(), nil }, // no type: any JSON
		},
		Query: sdk.Handlers{"get": sdk.Handler(func(*sdk.Ctx, struct{}) (any, error) { return nil, nil })},
	}
}

// get walks a decoded JSON document: path elements are object keys or,
// for arrays, decimal indexes.
func get(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[p]; !ok {
				t.Fatalf("no %q in %v (path %v)", p, x, path)
			}
		case []any:
			i := int(p[0] - '0')
			v = x[i]
		default:
			t.Fatalf("path %v: %T at %q", path, v, p)
		}
	}
	return v
}

func TestSchemaFollowsEncodingJSON(t *testing.T) {
	s, err := schemaContract().Schema()
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["schema_format"] != sdk.SchemaFormat || doc["contract_name"] != "schema-test" || doc["contract_version"] != "0.1.0" {
		t.Fatalf("header: %v", doc)
	}
	if _, ok := doc["migrate"]; ok {
		t.Error("migrate schema for a contract without migrate")
	}
	inst := get(t, doc, "instantiate").(map[string]any)
	if inst["$schema"] != sdk.JSONSchemaDraft || inst["$ref"] != "#/$defs/schemaInit" {
		t.Fatalf("instantiate root: %v", inst)
	}
	def := get(t, inst, "$defs", "schemaInit").(map[string]any)
	p := get(t, def, "properties").(map[string]any)
	want := map[string]string{
		"owner": `{"description":"who may reset","pattern":"^sos1[02-9ac-hj-np-z]{6,}$","type":"string"}`,
		"limit": `{"anyOf":[{"maximum":4294967295,"minimum":0,"type":"integer"},{"type":"null"}]}`,
		"note":  `{"type":"string"}`,
		"blob":  `{"contentEncoding":"base64","type":"string"}`,
		"tags":  `{"additionalProperties":{"maximum":127,"minimum":-128,"type":"integer"},"type":"object"}`,
		"funds": `{"items":{"$ref":"#/$defs/Coin"},"type":"array"}`,
		"big":   `{"pattern":"^[0-9]+$","type":"string"}`,
		"raw":   `{}`,
		"tree":  `{"anyOf":[{"$ref":"#/$defs/schemaNode"},{"type":"null"}]}`,
		"fixed": `{"items":{"type":"boolean"},"maxItems":2,"minItems":2,"type":"array"}`,
		"depth": `{"type":"integer"}`,
		"extra": `{"additionalProperties":{"type":"string"},"type":"object"}`,
	}
	for k, w := range want {
		got, _ := json.Marshal(p[k])
		if string(got) != w {
			t.Errorf("property %s: %s, want %s", k, got, w)
		}
	}
	if len(p) != len(want) {
		t.Errorf("properties %v, want exactly %d (no Skip, hidden, Embedded)", reflect.ValueOf(p).MapKeys(), len(want))
	}
	req, _ := json.Marshal(def["required"])
	if string(req) != `["owner","big","fixed","depth"]` {
		t.Errorf("required %s", req)
	}
	if def["additionalProperties"] != false {
		t.Error("struct schema allows unknown fields, but Handler rejects them")
	}
	coin, _ := json.Marshal(get(t, inst, "$defs", "Coin"))
	if string(coin) != `{"additionalProperties":false,"properties":{"amount":{"pattern":"^[0-9]+$","type":"string"},"denom":{"type":"string"}},"required":["denom","amount"],"type":"object"}` {
		t.Errorf("Coin: %s", coin)
	}
	node, _ := json.Marshal(get(t, inst, "$defs", "schemaNode"))
	if string(node) != `{"additionalProperties":false,"properties":{"children":{"items":{"$ref":"#/$defs/schemaNode"},"type":"array"}},"required":["children"],"type":"object"}` {
		t.Errorf("recursive schemaNode: %s", node)
	}

	exec := get(t, doc, "execute")
	if get(t, exec, "title") != "ExecuteMsg" {
		t.Error("execute title")
	}
	inc, _ := json.Marshal(get(t, exec, "oneOf", "0"))
	if string(inc) != `{"additionalProperties":false,"properties":{"inc":{"$ref":"#/$defs/incMsg"}},"required":["inc"],"title":"inc","type":"object"}` {
		t.Errorf("inc branch: %s", inc)
	}
	raw, _ := json.Marshal(get(t, exec, "oneOf", "1", "properties", "raw"))
	if string(raw) != `{}` {
		t.Errorf("untyped handler: %s, want {}", raw)
	}
	get2, _ := json.Marshal(get(t, doc, "query", "oneOf", "0", "properties", "get"))
	if string(get2) != `{"additionalProperties":false,"properties":{},"type":"object"}` {
		t.Errorf("anonymous empty struct: %s", get2)
	}
}

func TestSchemaIsDeterministic(t *testing.T) {
	a, _ := schemaContract().Schema()
	b, _ := schemaContract().Schema()
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) {
		t.Fatal("two schemas of one contract differ")
	}
}

func TestSchemaRejectsTypesWithoutJSON(t *testing.T) {
	type bad struct {
		C chan int `json:"c"`
	}
	type badKey struct {
		M map[[2]int]string `json:"m"`
	}
	for _, c := range []sdk.Contract{
		{Instantiate: sdk.Handler(func(*sdk.Ctx, bad) (any, error) { return nil, nil })},
		{Execute: sdk.Handlers{"x": sdk.Handler(func(*sdk.Ctx, badKey) (any, error) { return nil, nil })}},
	} {
		if _, err := c.Schema(); err == nil || !strings.Contains(err.Error(), "no JSON form") {
			t.Errorf("Schema() error %v, want one naming the type without a JSON form", err)
		}
	}
}

func TestRunMain(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := sdk.RunMain(schemaContract(), []string{"schema"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var s sdk.Schema
	if err := json.Unmarshal(out.Bytes(), &s); err != nil || s.Contract != "schema-test" || s.Execute == nil {
		t.Fatalf("output %q: %v", out.String(), err)
	}
	out.Reset()
	if code := sdk.RunMain(schemaContract(), nil, &out, &errOut); code != 2 || out.Len() != 0 || !strings.Contains(errOut.String(), "usage") {
		t.Errorf("no arguments: exit %d, stderr %q", code, errOut.String())
	}
}

// versioned is a contract named name at version, whose migrate handler
// returns the contract info recorded before it (the previous code's).
func versioned(name, version string) sdk.Contract {
	return sdk.Contract{
		Name: name, Version: version,
		Instantiate: sdk.Handler(func(*sdk.Ctx, struct{}) (any, error) { return nil, nil }),
		Query: sdk.Handlers{"info": sdk.Handler(func(ctx *sdk.Ctx, _ struct{}) (any, error) {
			info, _, err := sdk.ReadContractInfo(ctx)
			return info, err
		})},
		Migrate: sdk.Handler(func(ctx *sdk.Ctx, _ struct{}) (any, error) {
			info, ok, err := sdk.ReadContractInfo(ctx)
			if !ok {
				return nil, errors.New("no previous info")
			}
			return info, err
		}),
	}
}

func TestContractInfoAndMigrateGuard(t *testing.T) {
	app := sdktest.New(sdktest.Config{})
	admin := app.Account("admin")
	addr, err := app.Instantiate(versioned("acme-counter", "1.0.0"), admin, `{}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	info := func() sdk.ContractInfo {
		var i sdk.ContractInfo
		if err := app.Query(addr, `{"info":{}}`, &i); err != nil {
			t.Fatal(err)
		}
		return i
	}
	if got := info(); got != (sdk.ContractInfo{Contract: "acme-counter", Version: "1.0.0"}) {
		t.Fatalf("after instantiate: %+v", got)
	}

	// Same name, new version: allowed; the handler saw the old record.
	res, err := app.Migrate(addr, admin, versioned("acme-counter", "1.1.0"), `{}`)
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Data) != `{"contract":"acme-counter","version":"1.0.0"}` {
		t.Errorf("migrate handler saw %s, want the previous record", res.Data)
	}
	if got := info(); got.Version != "1.1.0" {
		t.Fatalf("after migrate: %+v", got)
	}

	// Another contract's code: refused and reverted...
	_, err = app.Migrate(addr, admin, versioned("acme-token", "1.0.0"), `{}`)
	if !errors.Is(err, sdktest.ErrContractNameChanged) {
		t.Fatalf("migrate to another contract: %v, want ErrContractNameChanged", err)
	}
	if got := info(); got != (sdk.ContractInfo{Contract: "acme-counter", Version: "1.1.0"}) {
		t.Fatalf("refused migrate left %+v", got)
	}
	// ...unless forced.
	if _, err := app.MigrateForce(addr, admin, versioned("acme-token", "1.0.0"), `{}`); err != nil {
		t.Fatal(err)
	}
	if got := info(); got.Contract != "acme-token" {
		t.Fatalf("forced migrate left %+v", got)
	}
	if err := sdk.SetContractInfo(nil, "", "1"); err == nil {
		t.Error("SetContractInfo accepted an empty name")
	}
}
