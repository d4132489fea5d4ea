package sdk

import (
	"encoding"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
)

// SchemaFormat names the layout of Schema; a node or tool reading a schema
// checks it before trusting the other fields.
const SchemaFormat = "sos-contract-schema/v1"

// JSONSchemaDraft is the JSON Schema dialect of every message schema.
const JSONSchemaDraft = "https://json-schema.org/draft/2020-12/schema"

// Schema describes a contract's messages: one JSON Schema (draft 2020-12)
// per entry point, generated from the Go types its handlers decode. It is
// what `go run . schema` prints for a contract whose main calls Main, what
// `sos contract upload --schema` stores with the code, and what the CLI
// checks a message against before sending it.
//
// Execute and Query are a oneOf of single-key objects, one per handler:
// {"increment":{}} matches the branch titled "increment". A handler written
// as a plain HandlerFunc (not through Handler) accepts any JSON: {}.
type Schema struct {
	Format      string         `json:"schema_format"`
	Contract    string         `json:"contract_name,omitempty"`
	Version     string         `json:"contract_version,omitempty"`
	Instantiate map[string]any `json:"instantiate,omitempty"`
	Execute     map[string]any `json:"execute,omitempty"`
	Query       map[string]any `json:"query,omitempty"`
	Migrate     map[string]any `json:"migrate,omitempty"`
}

// JSONSchemaer lets a type state its own JSON Schema (for a type whose JSON
// form is not what its Go shape suggests). Address implements it.
type JSONSchemaer interface {
	JSONSchema() map[string]any
}

// JSONSchema describes an address: a bech32 string with the chain's prefix.
func (Address) JSONSchema() map[string]any {
	return map[string]any{"type": "string", "pattern": "^" + AddressPrefix + "1[02-9ac-hj-np-z]{6,}$", "description": "bech32 address"}
}

// Schema returns the JSON Schema of c's messages. Its errors are errors in
// the contract's types (a map key type JSON cannot encode, a channel or
// func field), found natively before the contract is ever uploaded.
func (c Contract) Schema() (*Schema, error) {
	s := &Schema{Format: SchemaFormat, Contract: c.Name, Version: c.Version}
	var err error
	if c.Instantiate != nil {
		if s.Instantiate, err = wholeSchema("InstantiateMsg", c.Instantiate); err != nil {
			return nil, fmt.Errorf("sdk: schema of instantiate: %w", err)
		}
	}
	if c.Migrate != nil {
		if s.Migrate, err = wholeSchema("MigrateMsg", c.Migrate); err != nil {
			return nil, fmt.Errorf("sdk: schema of migrate: %w", err)
		}
	}
	if c.Execute != nil {
		if s.Execute, err = namedSchema("ExecuteMsg", c.Execute); err != nil {
			return nil, fmt.Errorf("sdk: schema of execute: %w", err)
		}
	}
	if c.Query != nil {
		if s.Query, err = namedSchema("QueryMsg", c.Query); err != nil {
			return nil, fmt.Errorf("sdk: schema of query: %w", err)
		}
	}
	return s, nil
}

// describe asks f for its message type without running it: a handler made
// by Handler answers through ctx.describe. Any other HandlerFunc runs with no
// host and no message; whatever it does (a panic on the missing host,
// most likely) means "type unknown".
func describe(f HandlerFunc) (t reflect.Type) {
	defer func() {
		if recover() != nil {
			t = nil
		}
	}()
	ctx := &Ctx{describe: &t}
	_, _ = f(ctx, nil)
	return t
}

func wholeSchema(title string, f HandlerFunc) (map[string]any, error) {
	g := newSchemaGen()
	body := map[string]any{}
	if t := describe(f); t != nil {
		var err error
		if body, err = g.of(t); err != nil {
			return nil, err
		}
	}
	return g.root(title, body), nil
}

func namedSchema(title string, hs Handlers) (map[string]any, error) {
	g := newSchemaGen()
	names := make([]string, 0, len(hs))
	for n := range hs {
		names = append(names, n)
	}
	slices.Sort(names)
	branches := make([]any, 0, len(names))
	for _, n := range names {
		body := map[string]any{}
		if t := describe(hs[n]); t != nil {
			var err error
			if body, err = g.of(t); err != nil {
				return nil, fmt.Errorf("message %q: %w", n, err)
			}
		}
		branches = append(branches, map[string]any{
			"title": n, "type": "object",
			"properties": map[string]any{n: body}, "required": []any{n},
			"additionalProperties": false,
		})
	}
	return g.root(title, map[string]any{"oneOf": branches}), nil
}

// schemaGen turns Go types into JSON Schema the way encoding/json encodes
// them. Named structs go to $defs (so recursive types work); the rest is
// inline.
type schemaGen struct {
	defs  map[string]any
	names map[reflect.Type]string
}

func newSchemaGen() *schemaGen {
	return &schemaGen{defs: map[string]any{}, names: map[reflect.Type]string{}}
}

func (g *schemaGen) root(title string, body map[string]any) map[string]any {
	out := map[string]any{"$schema": JSONSchemaDraft, "title": title}
	for k, v := range body {
		out[k] = v
	}
	if len(g.defs) > 0 {
		out["$defs"] = g.defs
	}
	return out
}

var (
	rawMessageType    = reflect.TypeFor[json.RawMessage]()
	jsonMarshalerType = reflect.TypeFor[json.Marshaler]()
	textMarshalerType = reflect.TypeFor[encoding.TextMarshaler]()
	schemaerType      = reflect.TypeFor[JSONSchemaer]()
)

func (g *schemaGen) of(t reflect.Type) (map[string]any, error) {
	if t.Implements(schemaerType) {
		return reflect.Zero(t).Interface().(JSONSchemaer).JSONSchema(), nil
	}
	switch {
	case t == rawMessageType:
		return map[string]any{}, nil
	case t.Implements(jsonMarshalerType) || reflect.PointerTo(t).Implements(jsonMarshalerType):
		return map[string]any{}, nil // its own JSON form: unknown shape
	case t.Implements(textMarshalerType) || reflect.PointerTo(t).Implements(textMarshalerType):
		return map[string]any{"type": "string"}, nil
	}
	switch t.Kind() {
	case reflect.Bool:
		return map[string]any{"type": "boolean"}, nil
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer"}, nil
	case reflect.Int8, reflect.Int16, reflect.Int32:
		bits := t.Bits()
		return map[string]any{"type": "integer", "minimum": -(int64(1) << (bits - 1)), "maximum": int64(1)<<(bits-1) - 1}, nil
	case reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return map[string]any{"type": "integer", "minimum": 0}, nil
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return map[string]any{"type": "integer", "minimum": 0, "maximum": uint64(1)<<t.Bits() - 1}, nil
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}, nil
	case reflect.String:
		return map[string]any{"type": "string"}, nil
	case reflect.Interface:
		return map[string]any{}, nil
	case reflect.Pointer:
		elem, err := g.of(t.Elem())
		if err != nil {
			return nil, err
		}
		return map[string]any{"anyOf": []any{elem, map[string]any{"type": "null"}}}, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && !reflect.PointerTo(t.Elem()).Implements(textMarshalerType) {
			return map[string]any{"type": "string", "contentEncoding": "base64"}, nil
		}
		items, err := g.of(t.Elem())
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "array", "items": items}, nil
	case reflect.Array:
		items, err := g.of(t.Elem())
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "array", "items": items, "minItems": t.Len(), "maxItems": t.Len()}, nil
	case reflect.Map:
		k := t.Key()
		keyOK := k.Kind() == reflect.String || reflect.PointerTo(k).Implements(textMarshalerType)
		switch k.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
			keyOK = true
		}
		if !keyOK {
			return nil, fmt.Errorf("map key type %v has no JSON form", k)
		}
		vals, err := g.of(t.Elem())
		if err != nil {
			return nil, err
		}
		return map[string]any{"type": "object", "additionalProperties": vals}, nil
	case reflect.Struct:
		return g.structRef(t)
	}
	return nil, fmt.Errorf("type %v has no JSON form", t)
}

// structRef puts a named struct in $defs and refers to it; an anonymous
// struct is inlined.
func (g *schemaGen) structRef(t reflect.Type) (map[string]any, error) {
	if t.Name() == "" {
		return g.structSchema(t)
	}
	if name, ok := g.names[t]; ok {
		return map[string]any{"$ref": "#/$defs/" + name}, nil
	}
	name := defName(t)
	for i := 2; g.defs[name] != nil; i++ {
		name = fmt.Sprintf("%s%d", defName(t), i)
	}
	g.names[t] = name
	g.defs[name] = map[string]any{} // reserved: a recursive reference finds the name
	s, err := g.structSchema(t)
	if err != nil {
		return nil, err
	}
	g.defs[name] = s
	return map[string]any{"$ref": "#/$defs/" + name}, nil
}

// defName is a $defs key for t: its name with generic brackets spelled out.
func defName(t reflect.Type) string {
	r := strings.NewReplacer("[", "_", "]", "", ",", "_", "*", "", ".", "_", "/", "_", " ", "")
	return r.Replace(t.Name())
}

// field is one JSON property of a struct.
type field struct {
	name     string
	schema   map[string]any
	required bool
}

// structSchema follows encoding/json's field rules: exported fields, the
// json tag's name, "-" to skip, omitempty/omitzero (and pointers) for
// optional fields, ",string" for numbers in quotes, and the fields of
// untagged embedded structs promoted unless a shallower field has the name.
// A field tagged desc:"..." gets that description. The decoder of Handler
// rejects unknown fields, hence additionalProperties: false.
func (g *schemaGen) structSchema(t reflect.Type) (map[string]any, error) {
	fields, err := g.fields(t, map[reflect.Type]bool{})
	if err != nil {
		return nil, err
	}
	props := map[string]any{}
	required := []any{}
	for _, f := range fields {
		props[f.name] = f.schema
		if f.required {
			required = append(required, f.name)
		}
	}
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		s["required"] = required
	}
	return s, nil
}

func (g *schemaGen) fields(t reflect.Type, seen map[reflect.Type]bool) ([]field, error) {
	if seen[t] {
		return nil, nil
	}
	seen[t] = true
	var own, promoted []field
	for i := range t.NumField() {
		sf := t.Field(i)
		tag := sf.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		ft := sf.Type
		if sf.Anonymous && name == "" {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				inner, err := g.fields(et, seen)
				if err != nil {
					return nil, err
				}
				promoted = append(promoted, inner...)
				continue
			}
		}
		if !sf.IsExported() {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		s, err := g.of(ft)
		if err != nil {
			return nil, fmt.Errorf("field %s.%s: %w", t.Name(), sf.Name, err)
		}
		if hasOpt(opts, "string") && isScalar(ft) {
			s = quoted(ft)
		}
		if d := sf.Tag.Get("desc"); d != "" {
			s = withDescription(s, d)
		}
		optional := hasOpt(opts, "omitempty") || hasOpt(opts, "omitzero") || ft.Kind() == reflect.Pointer
		own = append(own, field{name: name, schema: s, required: !optional})
	}
	for _, p := range promoted {
		if !slices.ContainsFunc(own, func(f field) bool { return f.name == p.name }) {
			own = append(own, p)
		}
	}
	return own, nil
}

func withDescription(s map[string]any, d string) map[string]any {
	out := make(map[string]any, len(s)+1)
	for k, v := range s {
		out[k] = v
	}
	out["description"] = d
	return out
}

func hasOpt(opts, want string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		if o == want {
			return true
		}
	}
	return false
}

// quoted is the schema of a scalar encoded with ",string".
func quoted(t reflect.Type) map[string]any {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "string", "pattern": "^-?[0-9]+$"}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return map[string]any{"type": "string", "pattern": "^[0-9]+$"}
	}
	return map[string]any{"type": "string"}
}

func isScalar(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.String, reflect.Float32, reflect.Float64,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	}
	return false
}

// RunMain is Main's work, with the arguments and output streams given; it
// returns the exit status.
func RunMain(c Contract, args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && args[0] == "schema" {
		s, err := c.Schema()
		if err == nil {
			var b []byte
			if b, err = json.MarshalIndent(s, "", "  "); err == nil {
				_, err = stdout.Write(append(b, '\n'))
			}
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	}
	fmt.Fprint(stderr, "usage: go run . schema    print the JSON Schema of the contract's messages\n"+
		"(a contract runs on the node as Wasm: build it with GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared)\n")
	return 2
}
